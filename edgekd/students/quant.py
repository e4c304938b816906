"""Power-of-two (fixed-point) quantizer presets for brevitas students.

Only power-of-two scales map onto hls4ml's `ap_fixed<W,I>` types without rounding error, so these
presets are the only quantizers edgekd students use. Each factory returns a brevitas quantizer
*class* (a subclass of a brevitas fixed-point preset with `bit_width` set), cached so the same bit
width always yields the same class.

Grid of a signed b-bit fixed-point quantizer with scale 2^-f: ap_fixed<b, b-f>; unsigned: ap_ufixed<b, b-f>.
"""

from __future__ import annotations

import math
from functools import lru_cache

from brevitas.inject.enum import ScalingImplType
from brevitas.quant.fixed_point import (
    Int8ActPerTensorFixedPoint,
    Int8BiasPerTensorFixedPointInternalScaling,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
)

from edgekd.fixedpoint import fixed_input_scale  # noqa: F401 - re-exported

__all__ = ["weight_quant", "act_quant", "bias_quant", "input_quant", "fixed_input_scale"]


def _check_bits(bits: int, what: str, lo: int = 2, hi: int = 32) -> None:
    if not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{what} bit width must be an integer in [{lo}, {hi}], got {bits!r}")


@lru_cache(maxsize=None)
def weight_quant(bits: int) -> type:
    """Narrow-range signed per-tensor weights, scale = power of two from the max |w| (no learned scale)."""
    _check_bits(bits, "weight", 2, 16)
    return type(f"Int{bits}WeightPerTensorFixedPoint", (Int8WeightPerTensorFixedPoint,), {"bit_width": bits})


@lru_cache(maxsize=None)
def act_quant(bits: int, signed: bool) -> type:
    """Per-tensor activation quantizer with a learned power-of-two scale.

    The scale is initialised from runtime statistics over the first 300 training steps (brevitas'
    `collect_stats_steps`), then learned; in eval mode before any training step it is 1.0.
    """
    _check_bits(bits, "activation", 2, 32)
    base = Int8ActPerTensorFixedPoint if signed else Uint8ActPerTensorFixedPoint
    kind = "Int" if signed else "Uint"
    return type(f"{kind}{bits}ActPerTensorFixedPoint", (base,), {"bit_width": bits})


@lru_cache(maxsize=None)
def bias_quant(bits: int) -> type:
    """Signed per-tensor fixed-point bias with its own power-of-two scale (needs no input scale)."""
    _check_bits(bits, "bias", 4, 32)
    return type(
        f"Int{bits}BiasPerTensorFixedPointInternalScaling",
        (Int8BiasPerTensorFixedPointInternalScaling,),
        {"bit_width": bits},
    )


@lru_cache(maxsize=None)
def input_quant(bits: int, max_abs: float) -> type:
    """Signed input quantizer with a CONSTANT power-of-two scale covering [-max_abs, max_abs).

    A constant (not learned) scale keeps the input's fixed-point format a function of the config
    alone, so the hardware input port and the host-side pre-quantization can never drift apart.
    """
    _check_bits(bits, "input", 2, 16)
    if max_abs <= 0:
        raise ValueError(f"input range must be positive, got {max_abs}")
    # brevitas divides the threshold by 2^(bits-1) for a signed power-of-two quantizer, and rounds
    # the threshold up to a power of two (CeilSte), so scale == fixed_input_scale(bits, max_abs).
    return type(
        f"Int{bits}InputPerTensorFixedPointConst",
        (Int8ActPerTensorFixedPoint,),
        {"bit_width": bits, "scaling_impl_type": ScalingImplType.CONST, "scaling_init": float(max_abs)},
    )
