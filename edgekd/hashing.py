"""Content hashes used as cache keys (data, teacher weights, files)."""

from __future__ import annotations

import hashlib
import json

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


def sha256_json(obj: object) -> str:
    """SHA-256 of an object's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


#: CPU features that change which float kernels torch, oneDNN and numpy dispatch to (and so their summation order)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16")


def cpu_isa_flags() -> list[str]:
    """The ISA_FLAGS this CPU has (from /proc/cpuinfo; empty where it is not readable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in ISA_FLAGS if flag in flags]


def float_environment() -> dict[str, object]:
    """What decides the bytes of a float computation besides its inputs: the torch and numpy versions, the
    instruction set torch's CPU kernels dispatch to and the CPU's ISA flags (AVX2, AVX-512, AMX differ in
    summation order; ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA cap them) and the thread count. Part of the key
    of every cache that stores float results computed here."""
    import os

    import torch

    return {"torch": torch.__version__, "numpy": np.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_flags": cpu_isa_flags(),
            "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""), "threads": torch.get_num_threads()}
