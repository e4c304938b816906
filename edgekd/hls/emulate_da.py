"""Emulation of hls4ml `Strategy: distributed_arithmetic` Dense / Conv layers (da4ml shift-and-add networks).

hls4ml 1.3.0 generates each DA kernel as straight-line C++ (`layer.attributes['da_codegen']`, written by
da4ml's `hls_logic_and_bridge_gen`) and, for Dense layers, deletes the layer's weights. The kernel is
the C-simulation's ground truth, so it is read here: every line is one of

    T vN = model_inp[i];                    an input, cast to T
    T vN = vA + vB;  /  vA - bit_shift<s>(vB);   add / subtract (the second operand times 2^s)
    T vN = vA + T'(c);  /  vA - T'(c);      add a constant
    T vN = c;                               a constant
    model_out[j] = T(vK);  /  T(-bit_shift<s>(vK));  /  0;   the outputs (then cast to the result type)

and evaluated symbolically: each value is an integer affine form of the input integers. Every declared
type T is checked to hold its value exactly for every input of the layer's input type (on its grid and
in its range; da4ml chooses them so), so the kernel computes x @ W + b exactly, and the layer's output
is that exact value cast to result_t. Any other line (ReLU, quantisation, lookup, multiplication,
mux...) raises DAKernelError (reported by edgekd.hls.emulate as UnsupportedLayerError): never approximated.

edgekd.hls.emulate_linear turns (W, b) into the weight / bias / accumulator types of its ordinary Dense/Conv step,
with an accumulator wide enough never to round or wrap. This module imports nothing of edgekd.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

import numpy as np

__all__ = ["DAKernelError", "da_kernel_affine"]

_TYPE = r"ap_(u?)fixed<(-?\d+),(-?\d+)>"
_HEADER = re.compile(r"void\s+(\w+)\(inp_t model_inp\[(\d+)\], out_t model_out\[(\d+)\]\)")
_LINE = re.compile(rf"^{_TYPE} v(\d+) = (.+);$")
_INPUT = re.compile(r"^model_inp\[(\d+)\]$")
_ADD = re.compile(r"^v(\d+) ([+-]) (?:bit_shift<(-?\d+)>\(v(\d+)\)|v(\d+))$")
_CADD = re.compile(rf"^v(\d+) ([+-]) {_TYPE}\(([0-9.eE+-]+)\)$")
_CONST = re.compile(r"^(-?[0-9.eE+-]+)$")
_OUT = re.compile(rf"^model_out\[(\d+)\] = (?:0|{_TYPE}\((-?)(?:bit_shift<(-?\d+)>\(v(\d+)\)|v(\d+))\));$")


class DAKernelError(ValueError):
    """A line of the DA kernel that cannot be reproduced exactly (the caller names the layer)."""


class _Type(NamedTuple):
    """ap_[u]fixed<width, integer> as integers v * 2^-frac with lo <= v <= hi."""

    frac: int
    lo: int
    hi: int

    @classmethod
    def of(cls, uns: str, w: str, i: str) -> "_Type":
        width = int(w)
        signed = not uns
        lo = -(2 ** (width - 1)) if signed else 0
        hi = 2 ** (width - 1) - 1 if signed else 2**width - 1
        return cls(width - int(i), lo, hi)


class _Affine:
    """value * 2^frac == A . X + a0 (integers), X the input integers on the layer input grid."""

    __slots__ = ("a", "a0", "frac")

    def __init__(self, a: np.ndarray, a0: int, frac: int) -> None:
        self.a, self.a0, self.frac = a, a0, frac

    def times_pow2(self, e: int) -> tuple[np.ndarray, int]:
        """(A, a0) * 2^e as integers; refuses a non-integer result (a bit would be lost)."""
        if e >= 0:
            return self.a * (2**e), self.a0 * (2**e)
        d = 2 ** (-e)
        if self.a0 % d or any(int(v) % d for v in self.a):
            raise DAKernelError("the DA kernel drops fractional bits (not exact)")
        return self.a // d, self.a0 // d


def _range(a: np.ndarray, a0: int, x_lo: int, x_hi: int) -> tuple[int, int]:
    lo = hi = int(a0)
    for c in a:
        c = int(c)
        if c > 0:
            lo, hi = lo + c * x_lo, hi + c * x_hi
        elif c < 0:
            lo, hi = lo + c * x_hi, hi + c * x_lo
    return lo, hi


def _check_fits(a: np.ndarray, a0: int, t: _Type, x: _Type, what: str) -> None:
    lo, hi = _range(a, a0, x.lo, x.hi)
    if lo < t.lo or hi > t.hi:
        raise DAKernelError(f"DA kernel {what}: its type holds [{t.lo}, {t.hi}], not [{lo}, {hi}] (would wrap)")


def da_kernel_affine(code: str, x_frac: int, x_lo: int, x_hi: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(W (n_in, n_out), b (n_out,), frac) Python integers with out * 2^frac == X @ W + b exactly, for X the
    input integers of the layer's input type (value X * 2^-x_frac, x_lo <= X <= x_hi) and out the kernel's
    output before the cast to result_t. `code`: the layer's `da_codegen` source."""
    x_t = _Type(x_frac, x_lo, x_hi)
    head = _HEADER.search(code or "")
    if not head:
        raise DAKernelError("DA kernel signature not recognised")
    n_in, n_out = int(head.group(2)), int(head.group(3))
    body = code[head.end():]
    vals: dict[int, _Affine] = {}
    outs: dict[int, tuple[np.ndarray, int, int]] = {}
    zero = np.zeros(n_in, dtype=object)
    for raw in body.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line or line.startswith(("#pragma", "{", "}")):
            continue
        if line.startswith("template") or line.startswith("void"):
            break  # the next function in the same source (a wrapper)
        m_out = _OUT.match(line)
        if m_out:
            j = int(m_out.group(1))
            if m_out.group(2) is None:  # model_out[j] = 0;
                outs[j] = (zero.copy(), 0, 0)
                continue
            t = _Type.of(*m_out.group(2, 3, 4))
            neg, shift = m_out.group(5) == "-", int(m_out.group(6) or 0)
            v = vals[int(m_out.group(7) or m_out.group(8))]
            a, a0 = v.times_pow2(t.frac - v.frac + shift)
            if neg:
                a, a0 = -a, -a0
            _check_fits(a, a0, t, x_t, f"output {j}")
            outs[j] = (a, a0, t.frac)
            continue
        m = _LINE.match(line)
        if not m:
            raise DAKernelError(f"DA kernel line not emulated: {line!r}")
        t, idx, expr = _Type.of(*m.group(1, 2, 3)), int(m.group(4)), m.group(5)
        if (mi := _INPUT.match(expr)) is not None:
            i = int(mi.group(1))
            if t.frac < x_t.frac:
                raise DAKernelError(f"DA kernel input {i} is on a coarser grid than the layer's input type")
            a = zero.copy()
            a[i] = 2 ** (t.frac - x_t.frac)
            _check_fits(a, 0, t, x_t, f"input {i}")
            vals[idx] = _Affine(a, 0, t.frac)
        elif (ma := _ADD.match(expr)) is not None:
            v0, sub = vals[int(ma.group(1))], ma.group(2) == "-"
            shift = int(ma.group(3) or 0)
            v1 = vals[int(ma.group(4) or ma.group(5))]
            a0_, c0 = v0.times_pow2(t.frac - v0.frac)
            a1_, c1 = v1.times_pow2(t.frac - v1.frac + shift)
            a, a0 = (a0_ - a1_, c0 - c1) if sub else (a0_ + a1_, c0 + c1)
            _check_fits(a, a0, t, x_t, f"v{idx}")
            vals[idx] = _Affine(a, a0, t.frac)
        elif (mc := _CADD.match(expr)) is not None:
            v0, sub = vals[int(mc.group(1))], mc.group(2) == "-"
            c = Fraction(mc.group(6)) * 2**t.frac
            if c.denominator != 1:
                raise DAKernelError(f"DA constant {mc.group(6)} is off its type's grid")
            a, a0 = v0.times_pow2(t.frac - v0.frac)
            a0 = a0 - int(c) if sub else a0 + int(c)
            _check_fits(a, a0, t, x_t, f"v{idx}")
            vals[idx] = _Affine(a, a0, t.frac)
        elif (mk := _CONST.match(expr)) is not None:
            c = Fraction(mk.group(1)) * 2**t.frac
            if c.denominator != 1:
                raise DAKernelError(f"DA constant {mk.group(1)} is off its type's grid")
            vals[idx] = _Affine(zero.copy(), int(c), t.frac)
        else:
            raise DAKernelError(f"DA kernel operation not emulated: {line!r}")
    if sorted(outs) != list(range(n_out)):
        raise DAKernelError(f"DA kernel writes outputs {sorted(outs)}, expected 0..{n_out - 1}")
    frac = max([f for _, _, f in outs.values()] + [x_t.frac])
    w = np.zeros((n_in, n_out), dtype=object)
    b = np.zeros(n_out, dtype=object)
    for j, (a, a0, f) in outs.items():
        w[:, j] = a * 2 ** (frac - f)
        b[j] = a0 * 2 ** (frac - f)
    return w, b, frac
