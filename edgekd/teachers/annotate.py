"""Teacher as annotator: logits for a data set computed once and cached on disk.

Cache file: `<cache_dir>/<teacher_sha[:16]>-<data_sha[:16]>-<recipe[:8]>.npy`, so a different teacher,
different images or a different float environment never reuse stale logits. A cache file that cannot be
read or has the wrong shape/dtype is recomputed and overwritten, never trusted.

Teacher outputs are float: CPU kernels sum in another order for another batch shape (a 12-window audio
annotation differed by 3e-8 between batch 5 and 256 on an AMX Xeon, issue 24), so the teacher always runs
in chunks of ANNOTATION_CHUNK inputs, whatever memory budget the caller has: an annotation recomputed
after a damaged cache or in a resumed build has the same bytes as the first one. What else can change
the bytes (the chunk, the thread count, the kernels' instruction set, the torch version) is the recipe,
part of the cache key.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgekd.hashing import float_environment, sha256_json
from edgekd.io import save_npy
from edgekd.modelcheck import check_finite_logits
from edgekd.teachers.runner import TeacherRunner

log = logging.getLogger(__name__)


#: inputs per teacher call when annotating; fixed so that the summation order never depends on the caller
ANNOTATION_CHUNK = 64


def annotation_recipe() -> str:
    """Hash of what decides an annotation's bytes besides the teacher and the data."""
    return sha256_json({"chunk": ANNOTATION_CHUNK, **float_environment()})


def cache_path(cache_dir: Path, teacher_sha256: str, data_sha256: str) -> Path:
    return Path(cache_dir) / f"{teacher_sha256[:16]}-{data_sha256[:16]}-{annotation_recipe()[:8]}.npy"


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


def annotate_with_teacher(runner: TeacherRunner, images: np.ndarray, cache_dir: Path, data_sha256: str) -> np.ndarray:
    """float32 teacher logits (N, classes) for uint8 images (N, H, W) (or audio windows (N, L)), from the cache
    when valid; computed in chunks of ANNOTATION_CHUNK, so the same teacher and data give the same bytes."""
    path = cache_path(Path(cache_dir), runner.sha256, data_sha256)
    if path.exists():
        cached = _load_cached(path, len(images), runner.num_classes)
        if cached is not None:
            log.info("teacher logits from cache %s", path)
            return cached
    logits = np.ascontiguousarray(runner.logits(images, batch_size=ANNOTATION_CHUNK), dtype=np.float32)
    check_finite_logits(logits, f"teacher {runner.sha256[:12]}")  # never cache (or distil from) NaN/inf
    save_npy(path, logits)
    log.info("teacher logits for %d images cached in %s", len(images), path)
    return logits
