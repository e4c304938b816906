"""Label budgets: which training images keep their labels, and images that never had any.

A cell-sorting lab labels a few hundred cells and records millions. `data.labelled` keeps the labels of
a stratified subset of the training split (a fraction, or a whole count per class) and hides the rest;
`data.unlabelled` adds images without labels (a folder of PNG/TIFF, or an IDX image file) to the training
pool. Hidden and missing labels are `UNLABELLED` (-1) in `CellSplits.y_train`: the teacher trains on the
labelled part only and annotates every training image; the distilled student learns from those
annotations on all images; the labels-only baseline sees the labelled part alone. The validation and
test splits keep their labels (model selection and scoring).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from edgekd.data.formats import IMAGE_SIZE, IMAGE_SUFFIXES, DataFormatError, read_idx, read_image

log = logging.getLogger(__name__)

UNLABELLED = -1

__all__ = ["UNLABELLED", "label_budget_mask", "load_unlabelled_images", "stratified_subset"]


def stratified_subset(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of k items keeping class proportions (largest-remainder rounding)."""
    labels = np.asarray(labels)
    n = len(labels)
    if k >= n:
        return np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (k / n)
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: k - take.sum()]:
        take[i] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:t] for c, t in zip(classes, take)]
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def label_budget_mask(labels: np.ndarray, budget: int | float | None, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the training rows whose labels are used.

    budget None or 1.0: all; a float f in (0, 1): round(f n) rows stratified by class (plus one of any
    class that rounding left out); an int k: k rows of every class (all of a class that has fewer).
    """
    labels = np.asarray(labels)
    mask = np.zeros(len(labels), bool)
    if budget is None or (isinstance(budget, float) and budget >= 1.0):
        mask[:] = True
        return mask
    if isinstance(budget, float):
        classes = np.unique(labels)
        k = max(1, int(round(budget * len(labels))))
        mask[stratified_subset(labels, k, rng)] = True
        # stratified rounding can leave a rare class out at tiny budgets: give it one label
        for c in classes:
            if not mask[labels == c].any():
                mask[rng.choice(np.flatnonzero(labels == c))] = True
        return mask
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        mask[rng.permutation(rows)[:budget]] = True
    return mask


def load_unlabelled_images(path: Path | str, size: int = IMAGE_SIZE, channels: int = 1) -> np.ndarray:
    """uint8 images (N, size, size), or (N, size, size, 3) with `channels` 3, from a folder of image files
    (subfolders included, sorted; `edgekd.data.formats.read_image`) or one IDX image file (N, H, W) of uint8
    (grey; replicated into R = G = B for colour)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataFormatError(f"{path}: data.unlabelled holds no PNG or TIFF images")
        images = np.stack([read_image(f, size, channels) for f in files])
    elif path.is_file():
        arr = read_idx(path)
        if arr.ndim != 3 or arr.dtype != np.uint8 or len(arr) == 0:
            raise DataFormatError(
                f"{path}: data.unlabelled must be an IDX file of uint8 images (N, H, W); got {arr.dtype} {arr.shape}"
            )
        if arr.shape[1:] != (size, size):
            arr = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in arr])
        images = arr if channels == 1 else np.repeat(arr[..., None], channels, axis=-1)
    else:
        raise DataFormatError(f"{path}: data.unlabelled does not exist; give a folder of images or an IDX file")
    log.info("unlabelled images from %s: %d", path, len(images))
    return images
