"""Float comparisons across kernels, batch sizes and CPUs (the rule is in tests/README.md).

Two float computations that are not the same operation on the same shapes may sum in another order: another
batch size, another runtime (ONNX Runtime vs torch), another instruction set (AVX2, AVX-512, AMX). Each sum of
n float32 terms is then off by at most about n * eps * sum|terms| (Higham, Accuracy and Stability of Numerical
Algorithms, 3.1); the suite compares such results with that bound, scaled by the largest reference value.
"""

from __future__ import annotations

import numpy as np

FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 1.19e-7


def float32_atol(reduction_length: int, scale: float = 1.0) -> float:
    """Absolute tolerance for float32 results built from sums of `reduction_length` terms of magnitude ~scale."""
    return reduction_length * FLOAT32_EPS * max(1.0, float(scale))


def assert_float32_close(got: np.ndarray, want: np.ndarray, reduction_length: int) -> None:
    """got == want up to the summation-order bound of the longest reduction behind each value."""
    want = np.asarray(want, dtype=np.float64)
    scale = float(np.abs(want).max()) if want.size else 1.0
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=float32_atol(reduction_length, scale))
