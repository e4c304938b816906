"""Vectorised fixed-point emulator of a converted hls4ml design, bit for bit equal to its C-simulation.

hls4ml's own emulation (`predict()` on the g++-compiled project) runs one image at a time through
`ap_fixed` arithmetic: ~26 images/s for the cell student. This module rebuilds the same computation
from the hls4ml model's layers and the exact types hls4ml chose for every result, accumulator, weight
and bias, and evaluates it on whole batches in integers (torch float32/float64 tensors holding exact
integers where every intermediate provably stays below 2^24 / 2^53, Python integers otherwise).

Speed (~40 images/s for hls4ml predict() on the cell student; this emulator is several hundred times
faster) comes from proofs made once, when the plan is built, and from cache-sized chunks of images:
every tensor carries a proven integer range, so a cast that provably changes nothing is skipped; a
conv/dense whose accumulator cannot overflow runs as one float conv/matmul with the bias and the
product -> accumulator shift folded in; round + saturate (+ ReLU) is three in-place passes; max pooling
is separable. Each shortcut states why it is exact where it is taken.

Semantics reproduced (the installed hls4ml templates under templates/vivado are the reference):

* A value of type ``ap_[u]fixed<W,I,Q,O,N>`` is an integer ``v`` times ``2^-(W-I)``.
* A cast from a finer grid rounds with Q: TRN (floor), TRN_ZERO, RND (ties up), RND_ZERO, RND_MIN_INF,
  RND_INF, RND_CONV (ties to even); then overflow with O: WRAP (N=0, modular), SAT, SAT_ZERO, SAT_SYM.
  (``ap_fixed_base::operator=`` / ``quantization_adjust`` / ``overflow_adjust``.)
* Weights and biases are what the C-simulation loads: the writer prints each value with
  ``precision_fmt`` ('{:.Ff}'), the bridge parses that decimal as a double and converts it to the
  weight type (``operator>>``).
* Dense and Conv1D/Conv2D (``dense_latency`` / ``conv_*_latency_cl`` / the io_stream line buffer):
  every product ``a*w`` is exact and cast to accum_t, the accumulator starts at the bias cast to
  accum_t, adds the products in accum_t, and the sum is cast to result_t. With a WRAP accumulator the
  order of additions does not matter (modular arithmetic); a saturating accumulator is emulated only when
  no partial sum can overflow (checked from the weights and the input type's range).
  Strategy distributed_arithmetic: the da4ml kernel hls4ml generated computes x @ W + b exactly and casts
  it to result_t; W and b are read from that kernel (edgekd.hls.emulate_da).
* Max pooling: maximum over the window, cast to result_t. ReLU: ``x > 0 ? x : 0`` cast to result_t;
  linear: the cast alone. Transpose and Reshape move values (with a cast to their result type);
  ZeroPadding (inserted by hls4ml before padded io_stream convs) adds zeros around the cast input.

Anything else (other activations, average pooling, padding in pooling, Resource strategy, binary or
exponent weights, merges...) is refused with `UnsupportedLayerError` naming
the layer: never approximated.
"""

from __future__ import annotations

import contextlib
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FixedType",
    "Emulator",
    "UnsupportedLayerError",
    "quantize_float",
    "requantize",
]

_ROUNDING = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
_SATURATION = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")
_F32_EXACT = 2**24
_F64_EXACT = 2**53
_CHUNK_VALUES = 2**20  # values of the largest intermediate per chunk: keeps a chunk in L2/L3 cache


class UnsupportedLayerError(NotImplementedError):
    """The emulator cannot reproduce this hls4ml layer exactly; `layer` names it."""

    def __init__(self, layer: str, reason: str) -> None:
        super().__init__(f"emulator: layer '{layer}': {reason}; not emulated (never approximated)")
        self.layer = layer
        self.reason = reason


# --------------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedType:
    """``ap_[u]fixed<width, integer, rounding, saturation, saturation_bits>``; ints are integer == width."""

    width: int
    integer: int
    signed: bool
    rounding: str = "TRN"
    saturation: str = "WRAP"
    saturation_bits: int = 0

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"fixed-point width must be >= 1, got {self.width}")
        if self.rounding not in _ROUNDING:
            raise ValueError(f"rounding mode {self.rounding} is not one of {_ROUNDING}")
        if self.saturation not in _SATURATION:
            raise ValueError(f"saturation mode {self.saturation} is not one of {_SATURATION}")

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @property
    def lo(self) -> int:
        return -(2 ** (self.width - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return 2 ** (self.width - 1) - 1 if self.signed else 2**self.width - 1

    def __str__(self) -> str:
        return (f"{'' if self.signed else 'u'}fixed<{self.width},{self.integer},{self.rounding},"
                f"{self.saturation},{self.saturation_bits}>")

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        """'fixed<8,3>', 'ufixed<8,0,RND_CONV,SAT>', 'int<8>', 'uint<4>' (the AP_ prefix is optional)."""
        s = text.replace(" ", "").replace("AP_", "").replace("ap_", "")
        m = re.fullmatch(r"(u?)(fixed|int)<(-?\d+)(?:,(-?\d+))?(?:,([A-Z_]+))?(?:,([A-Z_]+))?(?:,(\d+))?>", s)
        if not m:
            raise ValueError(f"'{text}' is not a fixed-point type such as 'fixed<8,3>'")
        uns, kind, w, i, q, o, n = m.groups()
        width = int(w)
        integer = width if kind == "int" else int(i)
        return cls(width, integer, not uns, q or "TRN", o or "WRAP", int(n or 0))

    @classmethod
    def from_hls(cls, precision: Any, where: str) -> "FixedType":
        """From an hls4ml precision object; refuses float, exponent, xnor and unknown types."""
        from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType

        if isinstance(precision, FixedPrecisionType):
            width, integer = int(precision.width), int(precision.integer)
        elif isinstance(precision, IntegerPrecisionType):
            width = integer = int(precision.width)
        else:
            raise UnsupportedLayerError(where, f"type {precision} ({type(precision).__name__}) is not fixed-point")
        signed = bool(precision.signed)
        rnd = getattr(precision, "rounding_mode", None)
        sat = getattr(precision, "saturation_mode", None)
        rnd = "TRN" if rnd is None else str(getattr(rnd, "name", rnd)).replace("AP_", "")
        sat = "WRAP" if sat is None else str(getattr(sat, "name", sat)).replace("AP_", "")
        bits = int(getattr(precision, "saturation_bits", 0) or 0)
        if rnd not in _ROUNDING:
            raise UnsupportedLayerError(where, f"rounding mode {rnd} of {precision}")
        if sat not in _SATURATION or (sat == "WRAP" and bits != 0):
            raise UnsupportedLayerError(where, f"overflow mode {sat} (N={bits}) of {precision}")
        return cls(width, integer, signed, rnd, sat, bits)


# --------------------------------------------------------------------------------------------------
# Integer arrays: torch float tensors holding exact integers, or numpy object arrays of Python ints
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# The plan: one step per hls4ml layer
# --------------------------------------------------------------------------------------------------


@dataclass
class _Tensor:
    data: Any  # (N, *shape) integers in some engine
    frac: int
    lo: int  # lo <= every value <= hi (integers; a proven range, not necessarily attained)
    hi: int

    @property
    def bound(self) -> int:
        return max(-self.lo, self.hi, 0)


def _type_bound(t: FixedType) -> int:
    return max(-t.lo, t.hi)


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


def _precision(layer: Any, key: str) -> FixedType:
    t = layer.types.get(key) if hasattr(layer, "types") else None
    if t is None:
        raise UnsupportedLayerError(layer.name, f"has no {key}")
    return FixedType.from_hls(t.precision, layer.name)


def _result_type(layer: Any) -> FixedType:
    return FixedType.from_hls(layer.get_output_variable().type.precision, layer.name)


def _weights_as_loaded(layer: Any, key: str) -> tuple[np.ndarray, FixedType]:
    """Integers the C-simulation holds for `layer.weights[key]` (decimal text -> double -> ap_fixed)."""
    var = layer.weights[key]
    t = FixedType.from_hls(var.type.precision, layer.name)
    texts = [var.precision_fmt.format(v) for v in np.nditer(var.data, order="C")]
    values = np.array([float(s) for s in texts], dtype=np.float64).reshape(np.shape(var.data))
    return quantize_float(values, t), t


def _da_weights(layer: Any, x_t: FixedType) -> tuple[np.ndarray, FixedType, np.ndarray, FixedType, FixedType]:
    """A distributed_arithmetic layer's da4ml kernel (hls4ml drops a DA Dense's weights) read from its generated
    code: exact x @ W + b. Returned as (w, w_t, b, b_t, acc_t) with products and bias on the accumulator's
    grid and an accumulator that can hold any sum, so the Dense/Conv step computes it without rounding/wrap."""
    from edgekd.hls.emulate_da import DAKernelError, da_kernel_affine

    try:
        w, b, frac = da_kernel_affine(getattr(layer.attributes.get("da_codegen"), "code", ""), x_t.frac, x_t.lo, x_t.hi)
    except DAKernelError as err:
        raise UnsupportedLayerError(layer.name, str(err)) from None

    def signed(bound: int, f: int) -> FixedType:
        width = max(2, int(bound).bit_length() + 1)
        return FixedType(width, width - f, True)

    col = max((sum(abs(int(v)) for v in w[:, j]) for j in range(w.shape[1])), default=0)
    b_bound = max((abs(int(v)) for v in b), default=0)
    w_t = signed(max((abs(int(v)) for v in w.ravel()), default=0), frac - x_t.frac)
    return w, w_t, b, signed(b_bound, frac), signed(col * _type_bound(x_t) + b_bound + 1, frac)


def _int_array(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=object)


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


class Emulator:
    """Bit-exact batched emulation of a converted (not necessarily compiled) hls4ml model.

    ``Emulator(hls_model)`` builds a plan from ``hls_model.get_layers()`` and raises
    `UnsupportedLayerError` for any layer it cannot reproduce exactly. ``predict(x)`` takes the same
    input as edgekd's C-simulation (NCHW, like torch, or the model's own input layout) and returns
    float64 outputs (N, outputs); ``trace(x)`` returns every layer's output like `trace_csim`.
    """

    def __init__(self, hls_model: Any) -> None:
        cfg = hls_model.config
        backend = str(cfg.get_config_value("Backend") or "")
        if backend.lower() not in ("vivado", "vitis"):
            raise UnsupportedLayerError("<model>", f"backend '{backend}' (only Vivado/Vitis ap_fixed types are emulated)")
        self.io_type = str(cfg.get_config_value("IOType"))
        self.input_shape = tuple(int(d) for d in hls_model.get_input_variables()[0].shape)
        self.output_names = list(hls_model.outputs)
        self.steps: list[_Step] = []
        if len(hls_model.get_input_variables()) != 1:
            raise UnsupportedLayerError("<inputs>", "more than one graph input")
        for layer in hls_model.get_layers():
            self.steps.append(self._plan(layer))
        # images per chunk: the largest intermediate (values per image) stays within ~4 MiB of float32
        largest = max([int(np.prod(l.get_output_variable().shape)) for l in hls_model.get_layers()] + [1])
        self.chunk_size = int(min(256, max(8, _CHUNK_VALUES // largest)))

    # -- planning -----------------------------------------------------------------------------------

    def _plan(self, layer: Any) -> _Step:
        cls = layer.class_name
        kind = type(layer).__name__
        name = layer.name
        strategy = str(layer.get_attr("strategy", "latency") or "latency").lower()
        inputs = list(getattr(layer, "inputs", []) or [])
        outputs = list(getattr(layer, "outputs", []) or [])
        base = {"name": name, "inputs": inputs, "outputs": outputs}

        if kind.endswith("Input") or cls in ("Input", "InputLayer"):
            t = _result_type(layer)
            shape = tuple(int(d) for d in layer.get_output_variable().shape)

            def fn_input(x: _Tensor, t=t) -> _Tensor:
                return x  # converted from double in predict()

            return _Step(name, cls, "input", t, {"shape": list(shape)}, fn_input, [], outputs)

        if len(inputs) != 1:
            raise UnsupportedLayerError(name, f"{cls} with {len(inputs)} inputs (merges are not emulated)")
        t = _result_type(layer)

        if cls == "Transpose" or kind.endswith("Transpose"):
            perm = [int(p) for p in layer.get_attr("perm")]

            def fn_t(x: _Tensor, perm=perm, t=t) -> _Tensor:
                axes = [0] + [p + 1 for p in perm]
                data = x.data.permute(*axes) if _is_torch(x.data) else np.transpose(x.data, axes)
                return _cast(_Tensor(data, x.frac, x.lo, x.hi), t)

            return _Step(name, cls, "transpose", t, {"perm": perm}, fn_t, inputs, outputs)

        if cls == "Reshape" or kind.endswith("Reshape"):
            shape = tuple(int(d) for d in layer.get_output_variable().shape)

            def fn_r(x: _Tensor, shape=shape, t=t) -> _Tensor:
                data = x.data.reshape((x.data.shape[0], *shape))
                return _cast(_Tensor(data, x.frac, x.lo, x.hi), t)

            return _Step(name, cls, "reshape", t, {"shape": list(shape)}, fn_r, inputs, outputs)

        if cls in ("ZeroPadding1D", "ZeroPadding2D") or kind.endswith(("ZeroPadding1D", "ZeroPadding2D")):
            return self._plan_zeropad(layer, t, base)

        if cls == "Activation" or kind.endswith("Activation"):
            act = str(layer.get_attr("activation", "")).lower()
            if act not in ("linear", "relu"):
                raise UnsupportedLayerError(name, f"activation '{act}' (only linear and relu are emulated)")
            if act == "linear":
                return _Step(name, cls, "linear", t, {}, lambda x, t=t: _cast(x, t), inputs, outputs)

            def fn_relu(x: _Tensor, t=t) -> _Tensor:
                return _cast(x, t, relu=True)  # x > 0 ? x : 0, then the cast (fused where exact)

            return _Step(name, cls, "relu", t, {}, fn_relu, inputs, outputs)

        if cls in ("Pooling1D", "Pooling2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
                   "AveragePooling2D") or kind.endswith(("Pooling1D", "Pooling2D")):
            return self._plan_pool(layer, t, base)

        if cls in ("Dense", "Conv1D", "Conv2D") or kind.endswith(("Dense", "Conv1D", "Conv2D")):
            if strategy not in ("latency", "distributed_arithmetic"):
                raise UnsupportedLayerError(
                    name, f"{cls} with strategy '{strategy}' (only Latency and distributed_arithmetic are emulated)")
            return self._plan_linear(layer, t, base)

        raise UnsupportedLayerError(name, f"layer class {cls} ({kind})")

    def _plan_zeropad(self, layer: Any, t: FixedType, base: dict) -> _Step:
        """hls4ml inserts ZeroPadding before a padded io_stream conv (``zeropad{1,2}d_cl``): zeros of
        result_t around the input cast to result_t. Casting first is the same (0 is exact in every type)."""
        name = layer.name
        if str(layer.get_attr("data_format", "channels_last")) != "channels_last":
            raise UnsupportedLayerError(name, "channels_first zero padding")
        two_d = layer.class_name.endswith("2D") or type(layer).__name__.endswith("2D")
        keys = ("pad_top", "pad_bottom", "pad_left", "pad_right") if two_d else ("pad_left", "pad_right")
        pads = [int(layer.get_attr(k, 0) or 0) for k in keys]
        out_shape = tuple(int(d) for d in layer.get_output_variable().shape)
        # channels-last (N, [H,] W, C): torch's pad lists the last dimension first
        torch_pad = (0, 0, pads[-2], pads[-1]) + ((pads[0], pads[1]) if two_d else ())
        np_pad = [(0, 0)] + ([(pads[0], pads[1])] if two_d else []) + [(pads[-2], pads[-1]), (0, 0)]

        def fn_zp(x: _Tensor, t=t) -> _Tensor:
            y = _cast(x, t)
            data = F.pad(y.data, torch_pad) if _is_torch(y.data) else np.pad(y.data, np_pad, constant_values=0)
            if tuple(data.shape[1:]) != out_shape:
                raise UnsupportedLayerError(name, f"zero padding output {tuple(data.shape[1:])} != {out_shape}")
            return _Tensor(data, y.frac, min(y.lo, 0), max(y.hi, 0))

        return _Step(name, layer.class_name, "zeropad", t, {"pads": pads}, fn_zp, base["inputs"], base["outputs"])

    def _plan_pool(self, layer: Any, t: FixedType, base: dict) -> _Step:
        name = layer.name
        op = str(layer.get_attr("pool_op", "Max"))
        if op != "Max":
            raise UnsupportedLayerError(name, f"{op} pooling (only max pooling is emulated)")
        two_d = layer.get_attr("pool_height") is not None
        pads = [int(layer.get_attr(k, 0) or 0) for k in ("pad_top", "pad_bottom", "pad_left", "pad_right")]
        if any(pads):
            raise UnsupportedLayerError(name, f"pooling with padding {pads}")
        if str(layer.get_attr("data_format", "channels_last")) != "channels_last":
            raise UnsupportedLayerError(name, "channels_first pooling")
        if two_d:
            k = (int(layer.get_attr("pool_height")), int(layer.get_attr("pool_width")))
            s = (int(layer.get_attr("stride_height")), int(layer.get_attr("stride_width")))
        else:
            k = (int(layer.get_attr("pool_width")),)
            s = (int(layer.get_attr("stride_width")),)
        out_shape = tuple(int(d) for d in layer.get_output_variable().shape)

        def fn_pool(x: _Tensor, k=k, s=s, t=t, out_shape=out_shape) -> _Tensor:
            data = x.data
            y = _window_max(data, k, s)
            if tuple(y.shape[1:]) != out_shape:
                raise UnsupportedLayerError(base["name"], f"pooling output {tuple(y.shape[1:])} != {out_shape}")
            return _cast(_Tensor(y, x.frac, x.lo, x.hi), t)

        info = {"pool": list(k), "stride": list(s)}
        return _Step(name, layer.class_name, "maxpool", t, info, fn_pool, base["inputs"], base["outputs"])

    def _plan_linear(self, layer: Any, t: FixedType, base: dict) -> _Step:
        name = layer.name
        cls = layer.class_name
        if str(layer.get_attr("strategy", "")).lower() == "distributed_arithmetic":
            w_int, w_t, b_int, b_t, acc_t = _da_weights(layer, self._input_type_of(layer))
        else:
            acc_t = _precision(layer, "accum_t")
            w_int, w_t = _weights_as_loaded(layer, "weight")
            from hls4ml.model.types import IntegerPrecisionType

            if isinstance(layer.weights["weight"].type.precision, IntegerPrecisionType) and w_t.width == 2 and w_t.signed:
                # weight_ternary product: w == -2 would act as +1
                if np.any(w_int == -2):
                    raise UnsupportedLayerError(name, "2-bit integer weights equal to -2 (ternary product)")
            # the bias array is what the C-simulation adds, whatever 'use_bias' says (a fused Add sets it)
            if "bias" not in layer.weights:
                b_int, b_t = np.zeros(int(layer.get_output_variable().shape[-1]), dtype=object), acc_t
            else:
                b_int, b_t = _weights_as_loaded(layer, "bias")
        if str(layer.get_attr("data_format", "channels_last")) != "channels_last":
            raise UnsupportedLayerError(name, "channels_first convolution")

        if cls == "Dense" or type(layer).__name__.endswith("Dense"):
            n_in, n_out = int(layer.get_attr("n_in")), int(layer.get_attr("n_out"))
            if w_int.size != n_in * n_out:
                raise UnsupportedLayerError(name, f"weight shape {w_int.shape} for {n_in}x{n_out}")
            w2 = w_int.reshape(n_in, n_out)
            geom: dict = {"kind": "dense", "n_in": n_in, "n_out": n_out}
        else:
            two_d = cls == "Conv2D" or type(layer).__name__.endswith("Conv2D")
            dil = [int(layer.get_attr(k, 1) or 1) for k in ("dilation_height", "dilation_width")]
            if any(d != 1 for d in dil):
                raise UnsupportedLayerError(name, f"dilation {dil}")
            n_chan, n_filt = int(layer.get_attr("n_chan")), int(layer.get_attr("n_filt"))
            if two_d:
                k = (int(layer.get_attr("filt_height")), int(layer.get_attr("filt_width")))
                s = (int(layer.get_attr("stride_height")), int(layer.get_attr("stride_width")))
                pad = tuple(int(layer.get_attr(p, 0) or 0) for p in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
            else:
                k = (int(layer.get_attr("filt_width")),)
                s = (int(layer.get_attr("stride_width")),)
                pad = tuple(int(layer.get_attr(p, 0) or 0) for p in ("pad_left", "pad_right"))
            w2 = w_int.reshape(int(np.prod(k)) * n_chan, n_filt)  # (kh, kw, cin) x cout, C order
            geom = {"kind": "conv", "kernel": list(k), "stride": list(s), "pad": list(pad),
                    "n_chan": n_chan, "n_filt": n_filt}

        x_in_t = self._input_type_of(layer)
        return self._linear_step(layer, t, acc_t, w_t, b_t, x_in_t, w2, b_int, geom, base)

    def _input_type_of(self, layer: Any) -> FixedType:
        var = layer.get_input_variable()
        return FixedType.from_hls(var.type.precision, layer.name)

    def _linear_step(self, layer, t, acc_t, w_t, b_t, x_t, w2, b_int, geom, base) -> _Step:
        name = layer.name
        p_frac = x_t.frac + w_t.frac
        shift = acc_t.frac - p_frac  # products -> accum grid
        xmax = _type_bound(x_t)
        abs_w = np.abs(w2).astype(object)
        # exact bound of |sum of products| for any input of the input type, per output column
        col = [int(sum(abs_w[:, j])) * xmax for j in range(abs_w.shape[1])]
        sum_bound = max(col) if col else 0
        max_prod = int(np.max(abs_w)) * xmax if abs_w.size else 0
        b_acc = requantize(np.asarray(b_int, dtype=object), b_t.frac, acc_t)
        b_abs = int(np.max(np.abs(b_acc))) if b_acc.size else 0
        per_product = shift < 0
        acc_lo, acc_hi = _sat_range(acc_t)
        if not per_product:
            prod_fits = max_prod * 2**shift <= acc_hi and -max_prod * 2**shift >= acc_lo
            total = sum_bound * 2**shift + b_abs
            sum_fits = total <= acc_hi and -total >= acc_lo
        else:
            prod_fits = True
            total = sum_bound + b_abs
            sum_fits = total <= acc_hi and -total >= acc_lo
        if acc_t.saturation != "WRAP" and not (prod_fits and sum_fits):
            raise UnsupportedLayerError(
                name, f"saturating accumulator {acc_t} may overflow (the result depends on the order of additions)")
        if per_product and acc_t.saturation != "WRAP" and not sum_fits:
            raise UnsupportedLayerError(name, f"accumulator {acc_t} rounds products and may overflow")
        mm_engine = _engine(sum_bound if not per_product else max_prod)
        post_bound = (sum_bound * 2 ** max(shift, 0) + b_abs + 1) if not per_product else (total + 1)
        needs_overflow = not (prod_fits and sum_fits)
        post_engine = _engine(post_bound + (2**acc_t.width if needs_overflow else 0))
        kind = geom["kind"]
        w_nd = {e: _to_engine(np.asarray(w2, dtype=object), e) for e in ("f32", "f64")} if mm_engine != "int" else {}
        b_post = _to_engine(b_acc, post_engine)

        def conv_patches(x: Any) -> Any:
            """numpy object im2col: (N, *out, K) with K ordered (kh, kw, cin) like the weights."""
            k, s, pad = geom["kernel"], geom["stride"], geom["pad"]
            if len(k) == 2:
                x = np.pad(x, ((0, 0), (pad[0], pad[1]), (pad[2], pad[3]), (0, 0)), constant_values=0)
                n, h, w, c = x.shape
                oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
                cols = [x[:, i:i + s[0] * (oh - 1) + 1:s[0], j:j + s[1] * (ow - 1) + 1:s[1], :]
                        for i in range(k[0]) for j in range(k[1])]
                return np.stack(cols, axis=3).reshape(n, oh, ow, k[0] * k[1] * c)
            x = np.pad(x, ((0, 0), (pad[0], pad[1]), (0, 0)), constant_values=0)
            n, w, c = x.shape
            ow = (w - k[0]) // s[0] + 1
            cols = [x[:, j:j + s[0] * (ow - 1) + 1:s[0], :] for j in range(k[0])]
            return np.stack(cols, axis=2).reshape(n, ow, k[0] * c)

        def conv_weight(w: torch.Tensor) -> torch.Tensor:
            """(K, cout) matrix -> torch conv weight (cout, cin, *kernel), channels_last for 2-D."""
            k = geom["kernel"]
            if len(k) == 2:
                wk = w.reshape(k[0], k[1], geom["n_chan"], geom["n_filt"]).permute(3, 2, 0, 1)
                return wk.contiguous(memory_format=torch.channels_last)
            return w.reshape(k[0], geom["n_chan"], geom["n_filt"]).permute(2, 1, 0).contiguous()

        def torch_conv(x: torch.Tensor, wk: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
            k, s, pad = geom["kernel"], geom["stride"], geom["pad"]
            if len(k) == 2:
                # NHWC data viewed as NCHW in channels_last memory: oneDNN's fast path, no copies
                xc = x.permute(0, 3, 1, 2)
                if geom["n_chan"] > 1:
                    xc = xc.contiguous(memory_format=torch.channels_last)
                if any(pad):
                    xc = F.pad(xc, (pad[2], pad[3], pad[0], pad[1]))
                return F.conv2d(xc, wk, bias, stride=tuple(s)).permute(0, 2, 3, 1)
            xc = x.permute(0, 2, 1)
            if any(pad):
                xc = F.pad(xc, (pad[0], pad[1]))
            return F.conv1d(xc, wk, bias, stride=tuple(s)).permute(0, 2, 1)

        out_shape = tuple(int(d) for d in layer.get_output_variable().shape)
        w_obj = np.asarray(w2, dtype=object)
        if mm_engine != "int":
            w_nd = {e: conv_weight(w) for e, w in w_nd.items()} if kind == "conv" else w_nd
        # Fused path: products exact, accumulator cannot overflow, and every partial sum of
        # bias + sum(x * w * 2^shift), in any order, is an integer of magnitude < post_bound, exact in
        # fused_engine. So the bias and the 2^shift can go into one conv/matmul (oneDNN/MKL, any blocking).
        fused_engine = _engine(post_bound) if not (per_product or needs_overflow) else "int"
        if fused_engine != "int":
            w_fused = _to_engine(np.asarray(w2, dtype=object) * 2**max(shift, 0), fused_engine)
            w_fused = conv_weight(w_fused) if kind == "conv" else w_fused
            b_fused = _to_engine(b_acc, fused_engine)
        acc_range = (max(-post_bound, acc_t.lo), min(post_bound, acc_t.hi)) if not needs_overflow else (acc_t.lo, acc_t.hi)

        def fn(x: _Tensor) -> _Tensor:
            if x.frac != x_t.frac:
                raise UnsupportedLayerError(name, f"input grid 2^-{x.frac} differs from its type {x_t}")
            data = x.data
            if kind == "dense":
                data = data.reshape(data.shape[0], -1)
            if fused_engine != "int":
                xe = _to_engine(data, fused_engine)
                if kind == "dense":
                    acc = torch.addmm(b_fused, xe, w_fused)
                else:
                    acc = torch_conv(xe, w_fused, b_fused)
            elif not per_product:
                if mm_engine == "int":
                    xo = _to_engine(data, "int")
                    s = (xo @ w_obj) if kind == "dense" else conv_patches(xo) @ w_obj
                else:
                    xe = _to_engine(data, mm_engine)
                    s = xe @ w_nd[mm_engine] if kind == "dense" else torch_conv(xe, w_nd[mm_engine])
                s = _to_engine(s, post_engine)
                if shift > 0:
                    s = s * (2**shift)
                acc = s + b_post
            else:
                xo = _to_engine(data, "int")
                patches = xo if kind == "dense" else conv_patches(xo)
                prods = patches[..., :, None] * w_obj  # (..., K, M)
                q = requantize(prods, p_frac, acc_t)
                acc = _to_engine(q.sum(axis=-2), post_engine) + b_post
            if needs_overflow:
                acc = _overflow(acc, acc_t)  # WRAP: modular, order-free
            res = _cast(_Tensor(acc, acc_t.frac, *acc_range), t)
            if tuple(res.data.shape[1:]) != out_shape:
                raise UnsupportedLayerError(name, f"output {tuple(res.data.shape[1:])} != {out_shape}")
            return res

        info = {
            **{k: v for k, v in geom.items() if k != "kind"},
            "accum": str(acc_t), "weight": str(w_t), "bias": str(b_t), "input": str(x_t),
            "product_frac": p_frac, "products_per_element": "rounded" if per_product else "exact",
            "sum_bound_bits": int(sum_bound).bit_length(), "matmul_engine": mm_engine,
            "post_engine": post_engine, "accum_may_overflow": needs_overflow, "fused_engine": fused_engine,
        }
        return _Step(name, layer.class_name, kind, t, info, fn, base["inputs"], base["outputs"])

    # -- running ------------------------------------------------------------------------------------

    def _input_layout(self, x: np.ndarray) -> np.ndarray:
        """NCHW (like torch) or the model's own layout -> (N, *input_shape), a view where possible."""
        want = self.input_shape
        if x.ndim == 4 and tuple(x.shape[1:]) != want and tuple(x.shape[2:]) + (x.shape[1],) == want:
            x = x.transpose(0, 2, 3, 1)
        if tuple(x.shape[1:]) != want:
            if int(np.prod(x.shape[1:])) != int(np.prod(want)):
                raise ValueError(f"emulator input has shape {x.shape}; the hls4ml model takes (N, {want}) "
                                 "(pass NCHW as for torch)")
            x = x.reshape((x.shape[0], *want))
        return x

    def _input_ints(self, x: np.ndarray) -> _Tensor:
        """double inputs -> integers of the input type (what the C-simulation's conversion gives)."""
        t = self.steps[0].result
        x = self._input_layout(np.asarray(x))
        bound = _type_bound(t)
        if x.dtype in (np.float32, np.float64) and t.frac >= 0 and x.size:
            # Fast exact path: x * 2^frac (frac >= 0: a power-of-two scale, exact unless it overflows to
            # inf, which the range test rejects) already integral and in range needs no rounding, and the
            # conversion of a float32 input to double is exact.
            xt = torch.from_numpy(x if x.flags.writeable and min(x.strides, default=0) >= 0 else np.array(x))
            y = xt * (2.0**t.frac)
            lo, hi = torch.aminmax(y)
            if bool(torch.equal(y, torch.round(y))) and float(lo) >= t.lo and float(hi) <= t.hi:
                return _Tensor(_to_engine(y, _engine(bound)), t.frac, t.lo, t.hi)
        q = quantize_float(np.asarray(x, dtype=np.float64), t)  # rounds, saturates or raises (NaN, inf)
        return _Tensor(_to_engine(q, _engine(bound)), t.frac, t.lo, t.hi)

    def _run(self, x: np.ndarray, keep: bool) -> tuple[dict[str, _Tensor], dict[str, np.ndarray]]:
        env: dict[str, _Tensor] = {}
        traces: dict[str, np.ndarray] = {}
        first = self.steps[0]
        env[first.outputs[0]] = self._input_ints(x)
        for step in self.steps[1:]:
            out = step.fn(env[step.inputs[0]])
            for o in step.outputs:
                env[o] = out
            if keep:
                traces[step.name] = _to_float(out)
        return env, traces

    def _chunks(self, n: int, batch_size: int) -> list[tuple[int, int]]:
        step = max(1, min(int(batch_size), self.chunk_size))
        return [(i, min(i + step, n)) for i in range(0, n, step)]

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Outputs (N, outputs) as float64, exactly what the C-simulation returns.

        Runs at most `batch_size` images at a time, and fewer (`chunk_size`) when the largest
        intermediate of a bigger batch would not stay in cache: the result does not depend on either.
        """
        x = np.asarray(x)

        def one(span: tuple[int, int]) -> np.ndarray:
            env, _ = self._run(x[span[0]:span[1]], keep=False)
            return _to_float(env[self.output_names[0]])

        outs = _map_chunks(one, self._chunks(x.shape[0], batch_size))
        return np.concatenate(outs, axis=0) if outs else np.zeros((0, 0))

    def trace(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{hls layer name: (N, -1) float64} for every layer after the input, channels-last like the C-sim."""
        x = np.asarray(x)
        parts = _map_chunks(lambda span: self._run(x[span[0]:span[1]], keep=True)[1],
                            self._chunks(x.shape[0], x.shape[0]))
        return {name: np.concatenate([p[name] for p in parts], axis=0) for name in (parts[0] if parts else {})}

    def plan(self) -> list[dict]:
        """JSON-ready description of every layer: op, result type and the types it computes with."""
        return [{"name": s.name, "class": s.cls, "op": s.op, "result": str(s.result), **s.info} for s in self.steps]

    def to_json(self) -> dict:
        return {"io_type": self.io_type, "input_shape": list(self.input_shape), "layers": self.plan()}


def _window_max(x: Any, k: tuple[int, ...], s: tuple[int, ...]) -> Any:
    """Max over k windows with stride s on (N, *spatial, C), one spatial axis at a time.

    Exact: the maximum over a rectangle is the maximum over its columns of the maxima over its rows, and
    max only ever returns one of its inputs. Separable passes touch (k0-1)*oh*W + (k1-1)*oh*ow elements
    instead of (k0*k1-1)*oh*ow, on strided views (no copies of the input).
    """
    for axis, (kk, ss) in enumerate(zip(k, s), start=1):
        n_out = (x.shape[axis] - kk) // ss + 1
        lead = (slice(None),) * axis

        def part(i: int, lead=lead, ss=ss, n_out=n_out) -> Any:
            return x[lead + (slice(i, i + ss * (n_out - 1) + 1, ss),)]

        if kk == 1:
            x = part(0)
            continue
        if _is_torch(x):
            out = torch.maximum(part(0), part(1))
            for i in range(2, kk):
                torch.maximum(out, part(i), out=out)
        else:
            out = np.maximum(part(0), part(1))
            for i in range(2, kk):
                out = np.maximum(out, part(i))
        x = out
    return x


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
