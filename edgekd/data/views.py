"""The 8 symmetries of the square (rotations by 90 degrees, with and without a flip).

A cell's class does not change under them, so they are free extra training views. The teacher
annotates each view once (its logits are cached per view), and the student is trained on random
views with the teacher's logits for exactly that view: a consistent teacher, in the sense of Beyer
et al., "Knowledge distillation: A good teacher is patient and consistent" (CVPR 2022).
"""

from __future__ import annotations

import numpy as np
import torch

N_VIEWS = 8


def view_images(images: np.ndarray, view: int) -> np.ndarray:
    """View `view` (0..7) of uint8 images (N, H, W): rotate by 90 * (view // 2), then flip if view is odd."""
    out = np.rot90(images, view // 2, axes=(1, 2))
    if view % 2:
        out = out[:, :, ::-1]
    return np.ascontiguousarray(out)


def view_tensor(x: torch.Tensor, view: int) -> torch.Tensor:
    """The same view of a (N, C, H, W) tensor (used on the student's preprocessed inputs)."""
    out = torch.rot90(x, view // 2, dims=(2, 3))
    return torch.flip(out, dims=(3,)) if view % 2 else out
