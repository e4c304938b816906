"""Exact ap_fixed arithmetic on whole arrays of integers: the emulator's numeric core.

A value of type ``ap_[u]fixed<W,I,Q,O,N>`` is an integer ``v`` times ``2^-(W-I)``. The integers live in
the cheapest exact "engine": torch float32 / float64 tensors while every value provably stays below 2^24 /
2^53, numpy object arrays of Python ints otherwise. `requantize` is ``ap_fixed_base::operator=`` (rounding
with Q, then overflow with O); `quantize_float` is the double -> ap_fixed conversion the C-simulation does
on its inputs and weights. Kept apart from the layers so that the one place where rounding and overflow
semantics are written down is small enough to check line by line against the ap_types headers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgekd.hls.emulate_fixed import FixedType

_F32_EXACT = 2**24
_F64_EXACT = 2**53


def _engine(bound: int) -> str:
    """Cheapest exact representation for integers of magnitude <= bound."""
    if bound < _F32_EXACT:
        return "f32"
    if bound < _F64_EXACT:
        return "f64"
    return "int"


def _to_engine(x: Any, engine: str) -> Any:
    if engine == "int":
        if isinstance(x, torch.Tensor):
            x = x.to(torch.float64).numpy()
        if x.dtype != object:
            return np.vectorize(lambda v: int(v), otypes=[object])(x) if x.size else x.astype(object)
        return x
    dtype = torch.float32 if engine == "f32" else torch.float64
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x.astype(np.float64)).to(dtype)
    return x if x.dtype == dtype else x.to(dtype)


def _is_torch(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def _floor_div(x: Any, d: int) -> Any:
    if _is_torch(x):
        return torch.floor(x * (1.0 / d))  # d is a power of two: exact
    return x // d


def _where(c: Any, a: Any, b: Any) -> Any:
    if _is_torch(c):
        if not _is_torch(a):
            a = torch.full_like(c, float(a), dtype=b.dtype if _is_torch(b) else torch.float64)
        if not _is_torch(b):
            b = torch.full_like(c, float(b), dtype=a.dtype)
        return torch.where(c, a, b)
    return np.where(c, a, b)


def _clip(x: Any, lo: int, hi: int) -> Any:
    if _is_torch(x):
        return torch.clamp(x, float(lo), float(hi))
    return np.minimum(np.maximum(x, lo), hi)


def _mod(x: Any, m: int) -> Any:
    if _is_torch(x):
        return torch.remainder(x, float(m))
    return x % m


def requantize(x: Any, src_frac: int, t: FixedType) -> Any:
    """Cast integers `x` (value x * 2^-src_frac) to type `t`; returns integers with t.frac fraction bits.

    The caller picks an engine in which |x| * 2^max(0, t.frac - src_frac) is exact.
    """
    s = src_frac - t.frac
    if s > 0 and _is_torch(x) and t.rounding in ("RND_CONV", "TRN"):
        # x * 2^-s is exact; torch.round is round-half-to-even (= AP_RND_CONV), floor is AP_TRN
        y = x * (2.0**-s)
        x = y.round_() if t.rounding == "RND_CONV" else y.floor_()
        return _overflow(x, t, inplace=True)
    if s < 0:
        x = x * (2 ** (-s))
    elif s > 0:
        d = 2**s
        q = _floor_div(x, d)
        if t.rounding != "TRN":
            r = x - q * d
            half = d // 2
            neg = x < 0
            if t.rounding == "TRN_ZERO":
                inc = neg & (r != 0)
            elif t.rounding == "RND":
                inc = r >= half
            elif t.rounding == "RND_ZERO":
                inc = (r > half) | ((r == half) & neg)
            elif t.rounding == "RND_MIN_INF":
                inc = r > half
            elif t.rounding == "RND_INF":
                inc = (r > half) | ((r == half) & ~neg)
            else:  # RND_CONV
                inc = (r > half) | ((r == half) & (_mod(q, 2) == 1))
            q = q + (inc.to(q.dtype) if _is_torch(inc) else inc.astype(object))
        x = q
    return _overflow(x, t)


def _overflow(x: Any, t: FixedType, inplace: bool = False) -> Any:
    lo, hi = t.lo, t.hi
    if t.saturation == "WRAP":
        r = _mod(x, 2**t.width)  # in [0, 2^W): every intermediate stays below max(|x|, 2^W)
        return _where(r > hi, r - 2**t.width, r) if t.signed else r
    if t.saturation == "SAT":
        return x.clamp_(float(lo), float(hi)) if (inplace and _is_torch(x)) else _clip(x, lo, hi)
    if t.saturation == "SAT_SYM":
        return _clip(x, -hi if t.signed else 0, hi)
    # SAT_ZERO
    out = (x < lo) | (x > hi)
    return _where(out, 0, x) if _is_torch(x) else np.where(out, 0, x)


def _round_ties(y: np.ndarray, mode: str) -> np.ndarray:
    """Round float64 `y` (exact products x * 2^F) to integers with an ap rounding mode."""
    fl = np.floor(y)
    r = y - fl
    neg = y < 0
    if mode == "TRN":
        inc = np.zeros(y.shape, dtype=bool)
    elif mode == "TRN_ZERO":
        inc = neg & (r != 0)
    elif mode == "RND":
        inc = r >= 0.5
    elif mode == "RND_ZERO":
        inc = (r > 0.5) | ((r == 0.5) & neg)
    elif mode == "RND_MIN_INF":
        inc = r > 0.5
    elif mode == "RND_INF":
        inc = (r > 0.5) | ((r == 0.5) & ~neg)
    else:
        inc = (r > 0.5) | ((r == 0.5) & (np.mod(fl, 2) == 1))
    return fl + inc


def quantize_float(x: np.ndarray, t: FixedType) -> np.ndarray:
    """double -> ap_fixed conversion (``ap_fixed_base(double)``): integers (object array) with t.frac bits.

    Exact for any finite double: x * 2^frac is computed exactly by ldexp, then rounded and overflowed.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot convert NaN or inf to a fixed-point type")
    y = np.ldexp(x, t.frac)
    q = _round_ties(y, t.rounding)
    if np.all(np.abs(q) < _F64_EXACT):
        qi = q.astype(np.int64).astype(object)
    else:  # huge magnitudes: exact conversion through Python's float -> int
        qi = np.vectorize(lambda v: int(v), otypes=[object])(q)
    return _overflow(qi, t)
