"""Fixed-point grids as plain data: the student's input quantizer and the host features share them.

Kept outside `edgekd.students` (which registers every student, and so imports torch models) so that data
modules such as the host log-mel front end can put values on a grid without importing a student.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def fixed_input_scale(bits: int, max_abs: float) -> float:
    """Power-of-two scale of a signed `bits`-bit grid that covers [-max_abs, max_abs)."""
    if max_abs <= 0:
        raise ValueError(f"input range must be positive, got {max_abs}")
    return 2.0 ** math.ceil(math.log2(max_abs)) / 2 ** (bits - 1)


@dataclass(frozen=True)
class FixedPointFormat:
    """A fixed-point grid: `total_bits` bits, `int_bits` of them left of the binary point (sign included)."""

    total_bits: int
    int_bits: int
    signed: bool

    @property
    def scale(self) -> float:
        return 2.0 ** (self.int_bits - self.total_bits)

    def hls_type(self) -> str:
        return f"{'' if self.signed else 'u'}fixed<{self.total_bits},{self.int_bits}>"

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Round half to even and saturate, like brevitas' ROUND + clamp."""
        lo = -(2 ** (self.total_bits - 1)) if self.signed else 0
        hi = 2 ** (self.total_bits - 1) - 1 if self.signed else 2**self.total_bits - 1
        return torch.clamp(torch.round(x / self.scale), lo, hi) * self.scale
