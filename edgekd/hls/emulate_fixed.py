"""ap_fixed types for the emulator: `FixedType`, reading it from hls4ml, and the refusal error.

Split out of edgekd.hls.emulate because every other emulator module (and edgekd.hls.verify) needs the
types and `UnsupportedLayerError` but none of the arithmetic; this module imports neither torch nor edgekd
(hls4ml only when a precision object is converted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_ROUNDING = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
_SATURATION = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")


class UnsupportedLayerError(NotImplementedError):
    """The emulator cannot reproduce this hls4ml layer exactly; `layer` names it."""

    def __init__(self, layer: str, reason: str) -> None:
        super().__init__(f"emulator: layer '{layer}': {reason}; not emulated (never approximated)")
        self.layer = layer
        self.reason = reason


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


def _type_bound(t: FixedType) -> int:
    return max(-t.lo, t.hi)


def _precision(layer: Any, key: str) -> FixedType:
    t = layer.types.get(key) if hasattr(layer, "types") else None
    if t is None:
        raise UnsupportedLayerError(layer.name, f"has no {key}")
    return FixedType.from_hls(t.precision, layer.name)


def _result_type(layer: Any) -> FixedType:
    return FixedType.from_hls(layer.get_output_variable().type.precision, layer.name)
