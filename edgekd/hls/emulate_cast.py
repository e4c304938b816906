"""Tensors with a proven integer range, planned steps, and the range-aware cast between fixed types.

Every intermediate carries the range [lo, hi] its values provably lie in (from the input type and the
weights, fixed when the plan is built), so a cast that provably changes nothing is skipped and a
round + saturate (+ ReLU) runs as three in-place tensor passes. Every layer family ends in `_cast`,
which is why it sits in its own module under them; each shortcut states why it is exact where it is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from edgekd.hls.emulate_fixed import FixedType
from edgekd.hls.emulate_int import _F64_EXACT, _engine, _is_torch, _to_engine, requantize


@dataclass
class _Tensor:
    data: Any  # (N, *shape) integers in some engine
    frac: int
    lo: int  # lo <= every value <= hi (integers; a proven range, not necessarily attained)
    hi: int

    @property
    def bound(self) -> int:
        return max(-self.lo, self.hi, 0)


@dataclass
class _Step:
    name: str
    cls: str
    op: str
    result: FixedType
    info: dict
    fn: Callable[[_Tensor], _Tensor]
    inputs: list[str]
    outputs: list[str]


def _sat_range(t: FixedType) -> tuple[int, int]:
    """Values a cast to t leaves unchanged. SAT_SYM (signed) maps the most negative code to -hi even
    without overflow (``underflow |= neg_src && lower bits == 0`` in ap_fixed_base), so it is excluded."""
    return (-t.hi if (t.saturation == "SAT_SYM" and t.signed) else t.lo), t.hi


def _cast_range(lo: int, hi: int, src_frac: int, t: FixedType) -> tuple[int, int]:
    """Range of cast(x, t) for lo <= x <= hi: every rounding mode gives floor or ceil, then overflow."""
    s = t.frac - src_frac
    if s >= 0:
        lo, hi = lo * 2**s, hi * 2**s
    else:
        lo, hi = lo // 2**-s, -(-hi // 2**-s)
    slo, shi = _sat_range(t)
    if slo <= lo and hi <= shi:
        return lo, hi
    if t.saturation in ("SAT", "SAT_SYM"):
        return min(max(lo, slo), shi), max(min(hi, shi), slo)
    if t.saturation == "SAT_ZERO":
        return min(max(lo, t.lo), 0), max(min(hi, t.hi), 0)
    return t.lo, t.hi  # WRAP: anything


def _relu_data(data: Any) -> Any:
    return torch.clamp_min(data, 0.0) if _is_torch(data) else np.where(data > 0, data, 0)


def _cast(x: _Tensor, t: FixedType, relu: bool = False) -> _Tensor:
    """Cast a tensor (after ``max(x, 0)`` with relu) to t, doing only the work the proven range needs."""
    lo, hi = (max(x.lo, 0), max(x.hi, 0)) if relu else (x.lo, x.hi)
    s = t.frac - x.frac
    slo, shi = _sat_range(t)
    if s >= 0 and slo <= lo * 2**s and hi * 2**s <= shi:
        # same or finer grid and provably in range: the cast is exact, at most a scaling by 2^s
        data = _relu_data(x.data) if relu and x.lo < 0 else x.data
        if s > 0:
            data = (_to_engine(data, _engine(max(-lo, hi) * 2**s)) if _is_torch(data) else data) * (2**s)
        return _Tensor(data, t.frac, lo * 2**s, hi * 2**s)
    out_lo, out_hi = _cast_range(lo, hi, x.frac, t)
    if (-64 <= s < 0 and _is_torch(x.data) and t.rounding in ("RND_CONV", "TRN")
            and t.saturation in ("SAT", "SAT_SYM")):
        # Fused round + saturate (+ relu) in three tensor passes. x * 2^s is exact in the engine that holds
        # x (a power-of-two scale of an integer); torch.round is ties-to-even (AP_RND_CONV) and floor is
        # AP_TRN, both exact and never larger in magnitude than |x|. Rounding is monotone and keeps 0, so
        # round(max(x, 0)) == max(round(x), 0), and saturation to [L, H] with L <= 0 <= H after max(., 0)
        # is a clamp to [0, H]: relu costs nothing more.
        y = x.data * (2.0**s)
        y = y.round_() if t.rounding == "RND_CONV" else y.floor_()
        return _Tensor(y.clamp_(float(max(slo, 0) if relu else slo), float(shi)), t.frac, out_lo, out_hi)
    data = _relu_data(x.data) if relu and x.lo < 0 else x.data
    work = max(x.bound, x.bound * 2 ** max(0, s)) + 1 + (2**t.width if t.saturation == "WRAP" else 0)
    out = requantize(_to_engine(data, _engine(work)), x.frac, t)
    return _Tensor(out, t.frac, out_lo, out_hi)


def _to_float(x: _Tensor) -> np.ndarray:
    """Integers -> float64 values (exact whenever the C-simulation's double output is exact)."""
    data = x.data
    n = data.shape[0]
    if _is_torch(data):
        arr = data.to(torch.float64).numpy()
    else:
        arr = np.array([math.ldexp(int(v), 0) if abs(int(v)) < _F64_EXACT else float(int(v)) for v in data.ravel()],
                       dtype=np.float64).reshape(data.shape)
    return np.ldexp(arr, -x.frac).reshape(n, -1)
