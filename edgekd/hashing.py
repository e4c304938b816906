"""Content hashes used as cache keys (data, teacher weights, files)."""

from __future__ import annotations

import hashlib

import numpy as np

from edgekd.io import file_sha256  # noqa: F401  (one file hash for the whole project)


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order): equal arrays, equal hashes."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(arr.dtype.str.encode())
    h.update(repr(tuple(arr.shape)).encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()
