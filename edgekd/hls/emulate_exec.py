"""Running a plan: exact float math and whole cache-sized chunks of images on worker threads.

The float engines are exact only if every product and partial sum is a correctly rounded IEEE operation:
for the duration of a run `_exact_float_math` switches NNPACK (Winograd/FFT convolutions) off, runs float32
matmuls at 'highest' precision and refuses reduced-precision oneDNN math. `_map_chunks` spreads the
independent chunks over worker threads. Nothing here knows about layers: it is the driver's machinery,
kept out of `Emulator`.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import torch


@contextlib.contextmanager
def _exact_float_math() -> Iterator[None]:
    """Float kernels that are exact on exact integers: each product and partial sum is a correctly
    rounded IEEE operation, so integers below 2^24 (float32) / 2^53 (float64) stay exact in any order.
    NNPACK (Winograd/FFT convolutions) is switched off and float32 matmuls run at 'highest' precision
    (both restored on return); reduced-precision oneDNN float32 math (TF32/BF16) is refused."""
    matmul = torch.get_float32_matmul_precision()
    try:
        if matmul != "highest":
            torch.set_float32_matmul_precision("highest")
        mk = torch.backends.mkldnn
        for where in (mk, getattr(mk, "conv", None), getattr(mk, "matmul", None)):
            prec = getattr(where, "fp32_precision", "none")
            if prec not in ("none", "ieee"):
                raise RuntimeError(f"emulator: oneDNN float32 precision '{prec}' is not exact; set it to 'ieee'")
        with torch.backends.nnpack.flags(enabled=False):
            yield
    finally:
        if matmul != "highest":
            torch.set_float32_matmul_precision(matmul)


def _map_chunks(fn: Callable[[Any], Any], items: list) -> list:
    """[fn(item) for item in items] under exact float math, spread over torch's intra-op thread count.

    Chunks are small (cache-sized), so parallelising each tensor op inside a chunk costs one OpenMP
    barrier per op: slow, and very slow when another process competes for the cores. Instead
    ``torch.get_num_threads()`` Python workers each run whole chunks with one torch thread (torch
    releases the GIL inside its kernels); the thread count is restored on return. Steps only read
    their plan, so chunks are independent, and the results come back in order.
    """
    n_threads = torch.get_num_threads()
    workers = min(n_threads, len(items))

    def run(item: Any) -> Any:
        with torch.inference_mode():
            return fn(item)

    with _exact_float_math():
        if workers <= 1:
            return [run(item) for item in items]
        torch.set_num_threads(1)  # new worker threads start from this count
        try:
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(run, items))
        finally:
            torch.set_num_threads(n_threads)
