"""Teacher as annotator: logits for a data set computed once and cached on disk.

Cache file: `<cache_dir>/<teacher_sha[:16]>-<data_sha[:16]>.npy`, so a different teacher or
different images never reuse stale logits. A cache file that cannot be read or has the wrong
shape/dtype is recomputed and overwritten, never trusted.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgekd.io import save_npy
from edgekd.modelcheck import check_finite_logits
from edgekd.teachers.runner import TeacherRunner

log = logging.getLogger(__name__)


def cache_path(cache_dir: Path, teacher_sha256: str, data_sha256: str) -> Path:
    return Path(cache_dir) / f"{teacher_sha256[:16]}-{data_sha256[:16]}.npy"


def _load_cached(path: Path, n: int, num_classes: int | None) -> np.ndarray | None:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        log.warning("%s: unreadable teacher cache (%s); recomputing", path, err)
        return None
    ok = arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[0] == n
    ok = ok and (num_classes is None or arr.shape[1] == num_classes) and bool(np.isfinite(arr).all())
    if not ok:
        log.warning("%s: teacher cache has %s %s, expected float32 (%d, classes); recomputing", path, arr.dtype, arr.shape, n)
        return None
    return arr


def annotate_with_teacher(
    runner: TeacherRunner, images: np.ndarray, cache_dir: Path, data_sha256: str, batch_size: int = 256
) -> np.ndarray:
    """float32 teacher logits (N, classes) for uint8 images (N, H, W), from the cache when valid."""
    path = cache_path(Path(cache_dir), runner.sha256, data_sha256)
    if path.exists():
        cached = _load_cached(path, len(images), runner.num_classes)
        if cached is not None:
            log.info("teacher logits from cache %s", path)
            return cached
    logits = np.ascontiguousarray(runner.logits(images, batch_size=batch_size), dtype=np.float32)
    check_finite_logits(logits, f"teacher {runner.sha256[:12]}")  # never cache (or distil from) NaN/inf
    save_npy(path, logits)
    log.info("teacher logits for %d images cached in %s", len(images), path)
    return logits
