"""Label-preserving views of an image: a subset of the 8 symmetries of the square, stated by the data.

View v (0..7) rotates by 90 * (v // 2) degrees (counter-clockwise, numpy's rot90), then mirrors left-right
if v is odd. Their names:

    0 identity   1 flip_lr   2 rot90   3 antitranspose   4 rot180   5 flip_ud   6 rot270   7 transpose

Which of them keep an image's label is a property of the data (`data.augment`): a cell has no orientation
(`dihedral`: all 8), a photograph survives a left-right mirror (`flips`: identity and flip_lr), a digit or a
letter survives none (`none`: a rotated 6 is a 9). The teacher trains on random views of the set, annotates
each view of the set once (its logits are cached per view), and the student is trained on random views with
the teacher's logits for exactly that view: a consistent teacher, in the sense of Beyer et al., "Knowledge
distillation: A good teacher is patient and consistent" (CVPR 2022).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from edgekd.config_data import AUGMENT_SETS, N_VIEWS, VIEW_NAMES, views_of  # noqa: F401 - the names, re-exported

def view_images(images: np.ndarray, view: int) -> np.ndarray:
    """View `view` (0..7) of uint8 images (N, H, W) or (N, H, W, C): rotate by 90 * (view // 2), then flip if
    view is odd."""
    out = np.rot90(images, view // 2, axes=(1, 2))
    if view % 2:
        out = out[:, :, ::-1]
    return np.ascontiguousarray(out)


def view_tensor(x: torch.Tensor, view: int) -> torch.Tensor:
    """The same view of a (N, C, H, W) tensor (used on the student's preprocessed inputs)."""
    out = torch.rot90(x, view // 2, dims=(2, 3))
    return torch.flip(out, dims=(3,)) if view % 2 else out


def random_views(x: torch.Tensor, views: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """Each image of a (N, C, H, W) batch in a view drawn from `views` (uniformly, per image): the teacher's
    training augmentation. `views` == (0,) returns `x` itself."""
    if tuple(views) == (0,):
        return x
    pick = torch.randint(0, len(views), (x.shape[0],), generator=generator)
    out = x.clone()
    for i, view in enumerate(views):
        sel = pick == i
        if view and bool(sel.any()):
            out[sel] = view_tensor(x[sel], view)
    return out
