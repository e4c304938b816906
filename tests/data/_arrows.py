"""Orientation-dependent image folders for the tests: class = the direction an arrow points.

Each image is a noisy 16 x 16 frame with one arrow (a shaft and a head) pointing up, right, down or left, at a
random offset. The four classes are rotations of one another, so a model made invariant to rotations and flips
(`data.augment: dihedral`) cannot tell them apart (chance, 25%), and one made invariant to the left-right mirror
(`flips`) confuses left with right; only `none` can learn them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DIRECTIONS = ("down", "left", "right", "up")  # sorted, as the folder's classes are
SIDE = 16


def _arrow_up() -> np.ndarray:
    g = np.zeros((9, 9), np.float64)
    g[2:9, 4] = 1.0  # shaft
    for r in range(4):  # head: a wedge widening downwards from the tip
        g[r, 4 - r : 5 + r] = 1.0
    return g


def arrow_images(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (4 n, 16, 16) and labels in DIRECTIONS order."""
    rng = np.random.default_rng(seed)
    up = _arrow_up()
    glyphs = {"up": up, "left": np.rot90(up, 1), "down": np.rot90(up, 2), "right": np.rot90(up, 3)}
    images, labels = [], []
    for label, name in enumerate(DIRECTIONS):
        for _ in range(n_per_class):
            img = rng.normal(50.0, 12.0, (SIDE, SIDE))
            r, c = rng.integers(2, 6, 2)  # the glyph within 2 px of the centre
            img[r : r + 9, c : c + 9] += 160.0 * glyphs[name]
            images.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def arrow_folder(root: Path, n_per_class: int, seed: int = 0) -> Path:
    """An image folder (one subfolder per direction) of `arrow_images`."""
    images, labels = arrow_images(n_per_class, seed)
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = root / DIRECTIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root
