"""Content hashes used as cache keys (data, teacher weights, files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order): equal arrays, equal hashes."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(arr.dtype.str.encode())
    h.update(repr(tuple(arr.shape)).encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def file_sha256(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
