"""Bit-reproducible builds: fixed thread count, deterministic kernels, seeded random streams.

Why builds were not reproducible before (measured on torch 2.13 CPU):

- torch seeds its global generator from the OS at start-up (`torch.initial_seed()` differs between
  processes), and the teacher and student modules were built *before* training called
  `torch.manual_seed`, so their initial weights were random per process. The same held for a resumed
  build, whose steps see a different global RNG history than an uninterrupted one.
- Float reductions in CPU convolution backward split work across threads: the same seed gives
  different weights with 1 and with 2 threads. A fixed thread count makes them repeatable.
- hls4ml names the C-simulation library with a random `uuid4()` stamp that lands in `build_lib.sh`
  and `hls4ml_config.yml` (`edgekd.hls.convert` derives it from the model instead).

`configure_determinism()` runs once per build (edgekd.pipeline), `seed_step()` before each step, and
the steps call `seed_everything(seed)` right before they construct a model. The thread count is
`EDGEKD_THREADS` when set, otherwise the CPUs this process may use, capped at 8; the report records
it, and a build reproduces bit for bit on the same machine with the same thread count.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "build_threads", "configure_determinism", "cpu_features", "determinism_info", "seed_everything", "seed_step",
]

THREADS_ENV = "EDGEKD_THREADS"
MAX_DEFAULT_THREADS = 8


def build_threads() -> int:
    """Threads a build uses for torch: `EDGEKD_THREADS`, or the usable CPUs capped at 8."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV}={value!r}: expected a positive whole number of threads")
        return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


def configure_determinism(threads: int | None = None) -> int:
    """Fixed torch thread count and deterministic algorithms for this process; returns the thread count."""
    import torch

    n = build_threads() if threads is None else threads
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    # warn_only: an op without a deterministic CPU kernel is logged, not refused (none in edgekd's models).
    torch.use_deterministic_algorithms(True, warn_only=True)
    log.debug("determinism: %d torch threads, deterministic algorithms", n)
    return n


def seed_everything(seed: int) -> None:
    """Seed torch's global generator, numpy's legacy global one and Python's `random`."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def seed_step(step: str, seed: int = 0) -> int:
    """Seed every global stream from (step name, seed), so a step never depends on what ran before it."""
    derived = int.from_bytes(hashlib.sha256(f"{step}:{seed}".encode()).digest()[:4], "little")
    seed_everything(derived)
    return derived


def cpu_features() -> dict:
    """The x86 vector features that change integer and float kernels (onnxruntime's MLAS, torch, numpy).

    Read through numpy's runtime CPUID dispatch, so it is what this process's libraries see (under an
    emulator too), not /proc/cpuinfo. AVX-VNNI (256-bit, newer Intel) is only in /proc/cpuinfo.
    """
    import platform

    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    flags: set[str] = set()
    try:
        for line in open("/proc/cpuinfo", encoding="ascii", errors="replace"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "avx2": bool(feats.get("AVX2")),
        "avx512f": bool(feats.get("AVX512F")),
        "avx512_vnni": bool(feats.get("AVX512VNNI")),
        "avx_vnni": "avx_vnni" in flags,
    }


def determinism_info() -> dict:
    """What a reproduction needs besides the config: the thread count and deterministic-kernel mode,
    and the CPU features that select onnxruntime's integer kernels and the float summation order."""
    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cpu": cpu_features(),
    }
