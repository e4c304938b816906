"""Resource model of the estimator: the technology constants and the building blocks every layer is priced with.

Multipliers on DSP slices or LUTs (with the narrow-arithmetic calibration: a narrow product by a constant
weight is a canonical-signed-digit shift-and-add on LUTs, priced from the Yosys fit of
benchmarks/narrow_cost_fit.py), the adder trees summing them, pipeline registers, and memories / FIFOs as
LUTRAM or BRAM18K tiles. Kept apart from the per-layer loop structure (edgekd.estimate.cost) because
these constants are what calibration changes; every one is documented in docs/latency_model.md.
"""

from __future__ import annotations

import math

from edgekd.estimate.layers import LayerSpec

# --- technology constants (documented in docs/latency_model.md) ------------------------------------------
#: above this operand width a product is bound to a DSP slice; at or below it HLS builds it from LUTs
#: (Duarte et al., JINST 13 P07027 (2018), Fig. 12: DSP use falls to ~0 below ~10-bit precision).
DSP_WIDTH_THRESHOLD = 10
#: DSP48E2 multiplier port widths (27 x 18); wider products take two slices
DSP_PORT_A, DSP_PORT_B = 27, 18
#: a product by a constant weight of at most this many bits is built from LUTs whatever the input width (the
#: hls4ml tutorial's 16-bit x 6-bit fc1 put 23 of 247 products on DSPs; an 8-bit-scale BatchNorm of 25-bit
#: inputs none), see docs/latency_model.md "Narrow products"
LUT_CONST_MAX_BITS = 8
#: expected non-zero canonical-signed-digit (CSD) count of a non-zero w-bit trained weight (Laplace-shaped
#: weights quantised to w bits, benchmarks/yosys_calibration.py); +CSD_DIGITS_PER_EXTRA_BIT per bit above 10
CSD_DIGITS = {1: 1.0, 2: 1.0, 3: 1.106, 4: 1.266, 5: 1.483, 6: 1.743, 7: 2.023, 8: 2.323, 9: 2.638, 10: 2.95}
CSD_DIGITS_PER_EXTRA_BIT = 0.31
#: LUTs of one LUT-built product with its adder in the tree, per non-zero weight (Yosys synth_xilinx fit,
#: benchmarks/narrow_cost_fit.py): LUT_PER_DIGIT_BIT * CSD digits * a + LUT_PER_WEIGHT_BIT * w
#: + LUT_PER_PRODUCT_OFFSET; each CSD digit adds one a-bit term to the sum
LUT_PER_DIGIT_BIT = 0.98
LUT_PER_WEIGHT_BIT = 0.99
LUT_PER_PRODUCT_OFFSET = -1.8
#: pipeline FFs per LUT-built product: FF_PER_PRODUCT_BIT * (a + w) (Vitis HLS 2023.2, 8-bit LeNet-5 Dense/Conv)
FF_PER_PRODUCT_BIT = 0.29
#: adder-tree levels that fit in one clock cycle at 200-250 MHz
ADDER_LEVELS_PER_CYCLE = 4
#: BRAM18K geometry used for FIFOs and weight memories: 18 Kb as 512 x 36
BRAM_DEPTH, BRAM_WIDTH, BRAM_BITS = 512, 36, 18432
#: below this many bits a FIFO / memory is built from LUTRAM/SRL instead of BRAM
LUTRAM_MAX_BITS = 1024
#: Vitis HLS builds a stream FIFO in BRAM18K tiles of 1K x 18: ceil(width / 18) tiles per 1,024 entries (the
#: tool does not pack a wide FIFO into 512 x 36 tiles the way a weight memory is priced)
FIFO_BRAM_WIDTH, FIFO_BRAM_DEPTH = 18, 1024


# --- building blocks ---------------------------------------------------------------------------------------

def _clog2(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def _csd_digits(wbits: int) -> float:
    """Expected non-zero CSD digits of a non-zero trained weight of `wbits` bits (shift-and-add terms)."""
    if wbits in CSD_DIGITS:
        return CSD_DIGITS[wbits]
    return CSD_DIGITS[10] + CSD_DIGITS_PER_EXTRA_BIT * (wbits - 10)


def _lut_products(wbits: int, abits: int) -> bool:
    """True when HLS builds a constant-weight product from LUTs (shift-and-add), not a DSP slice."""
    return max(wbits, abits) <= DSP_WIDTH_THRESHOLD or wbits <= LUT_CONST_MAX_BITS


def _multipliers(n_products: int, wbits: int, abits: int) -> tuple[int, int]:
    """(DSP, LUT) for `n_products` parallel products of an `abits` input by a `wbits` constant weight.

    A LUT-built product is a CSD shift-and-add: (digits - 1) adders of about `abits` bits; a weight that is a
    power of two (one digit) is a wire. The adder tree that sums the products is priced by `_tree_lut`."""
    if n_products <= 0:
        return 0, 0
    if _lut_products(wbits, abits):
        per = LUT_PER_DIGIT_BIT * (_csd_digits(wbits) - 1.0) * abits  # the extra digits' shift-and-add adders
        return 0, math.ceil(n_products * per)
    big, small = max(wbits, abits), min(wbits, abits)
    # a product wider than one DSP48E2 (27 x 18) is split over cascaded slices; Vivado HLS 2020.1 used 2 per
    # 32 x 32 product in the hls4ml depthwise2d baseline (the remaining partial products go to LUTs)
    per = max(math.ceil(big / DSP_PORT_A), math.ceil(small / DSP_PORT_B))
    return n_products * per, 0


def _accum_bits(spec: LayerSpec) -> int:
    return spec.weight_bits + spec.input_bits + _clog2(max(2, spec.kernel_inputs))


def _tree_lut(n_mult: int, spec: LayerSpec) -> int:
    """LUTs of the adder tree(s) summing `n_mult` products: one adder per product. A LUT-built product's
    adder costs LUT_PER_DIGIT_BIT * a + LUT_PER_WEIGHT_BIT * w + LUT_PER_PRODUCT_OFFSET: sums grow by about
    w bits over the input and low bits of shifted terms pass through (fitted with `_multipliers` on Yosys,
    docs/latency_model.md "Narrow products"); a DSP product's adder is accumulator-wide (1 LUT per bit)."""
    w, a = spec.weight_bits, spec.input_bits
    if _lut_products(w, a):
        per = LUT_PER_DIGIT_BIT * a + LUT_PER_WEIGHT_BIT * w + LUT_PER_PRODUCT_OFFSET
        return math.ceil(n_mult * max(0.0, per))
    return n_mult * _accum_bits(spec)


def _pipeline_ff(n_mult: int, spec: LayerSpec, dsp_share: float) -> int:
    """Pipeline registers of one kernel: LUT-built products FF_PER_PRODUCT_BIT * (a + w) each; DSP products
    `dsp_share` of an accumulator-wide register each (1 in io_parallel, 1/2 in io_stream)."""
    if _lut_products(spec.weight_bits, spec.input_bits):
        return math.ceil(n_mult * FF_PER_PRODUCT_BIT * (spec.weight_bits + spec.input_bits))
    return int(n_mult * _accum_bits(spec) * dsp_share)


def _memory_bram(depth: int, width: int) -> tuple[int, int]:
    """(BRAM18K, LUT) for a memory/FIFO of depth x width bits: LUTRAM when small, else BRAM18K tiles."""
    bits = depth * width
    if depth <= 2 or bits <= LUTRAM_MAX_BITS:
        return 0, math.ceil(width * max(1, math.ceil(depth / 32)) / 2) if depth > 2 else 0
    return math.ceil(width / BRAM_WIDTH) * math.ceil(depth / BRAM_DEPTH), 0


def _fifo_bram(depth: int, width: int) -> tuple[int, int]:
    """(BRAM18K, LUT) of a stream FIFO of depth x width bits as Vitis HLS maps it: SRL/LUTRAM when small, else
    ceil(width / 18) BRAM18K per 1,024 entries."""
    if depth <= 2 or depth * width <= LUTRAM_MAX_BITS:
        return _memory_bram(depth, width)
    return math.ceil(width / FIFO_BRAM_WIDTH) * math.ceil(depth / FIFO_BRAM_DEPTH), 0
