"""Analytical latency / throughput / resource estimates for hls4ml 1.3.0 designs (source: "estimate").

The model follows the loop structure of hls4ml's Vivado/Vitis templates (`nnet_utils/*.h`):

- io_parallel: each layer is a pipelined block; layers run one after another, so the design latency is
  the SUM of layer latencies and the initiation interval is the largest layer II. A Dense layer is an
  unrolled multiply + adder tree whose II is the reuse factor; a Conv layer (im2col) evaluates its kernel
  once per output pixel (`n_partitions = out_pixels / parallelization_factor`), so its II is
  `n_partitions * reuse_factor`.
- io_stream: every layer is a process in a DATAFLOW region connected by FIFOs (one item per pixel, holding
  all channels). A layer reads one input item per `ii_item` cycles (the reuse factor for conv layers, 1
  otherwise), so the layers OVERLAP: the design latency is the time at which the last item leaves the last
  layer, computed with a streaming recurrence (see `_stream_schedule`), not the plain sum. For a CNN this is
  dominated by streaming the input pixels through the slowest stage, plus the pipeline depths.

Every formula and what the model ignores is written down in docs/latency_model.md; tests in
tests/report/test_latency.py pin the hand-derived cycle counts. Figures are estimates: compare them with a
vendor report (`edgekd.report.vendor`) when one exists.

Inputs are plain `LayerSpec` records (JSON-serialisable), so the estimator can be tested and calibrated
without hls4ml; `layers_from_hls_model` builds them from a converted hls4ml `ModelGraph`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterable, Literal, Mapping

__all__ = [
    "LayerSpec",
    "LayerCost",
    "EstimateError",
    "FREE_TYPES",
    "estimate",
    "estimate_layer",
    "fits",
    "layers_from_hls_model",
    "layer_specs_from_dicts",
    "input_items",
    "input_arrival_times",
]

IOType = Literal["io_parallel", "io_stream"]

#: layer types that cost nothing in hardware (wiring / re-labelling of the same data)
FREE_TYPES = frozenset({"Input", "InputLayer", "Flatten", "Reshape", "Quant", "Dropout", "Identity"})
_CONV_TYPES = frozenset({"Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "PointwiseConv1D",
                         "PointwiseConv2D", "Conv2DBatchnorm", "Conv1DBatchnorm"})
_POOL_TYPES = frozenset({"Pooling1D", "Pooling2D"})
_GLOBAL_POOL_TYPES = frozenset({"GlobalPooling1D", "GlobalPooling2D"})
_ACT_TYPES = frozenset({"Activation", "ParametrizedActivation", "HardActivation", "PReLU", "Softmax",
                        "TernaryTanh", "LeakyReLU", "ReLU", "ELU", "ThresholdedReLU"})
_SCALE_TYPES = frozenset({"BatchNormalization", "ApplyAlpha"})
_PAD_TYPES = frozenset({"ZeroPadding1D", "ZeroPadding2D"})
_MATH_TYPES = frozenset({"Dense"}) | _CONV_TYPES

#: activations computed with comparators only (no lookup table)
_CHEAP_ACTIVATIONS = frozenset({"relu", "linear", "leaky_relu", "leakyrelu", "prelu", "hard_sigmoid",
                                "hard_tanh", "thresholdedrelu", "binary_tanh", "ternary_tanh", "relu6"})

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


from edgekd.errors import EstimateError  # noqa: E402,F401 - defined under everything, raised here


@dataclass
class LayerSpec:
    """One hls4ml layer as plain data (all shapes channels-last, without the batch dimension).

    `in_shape`/`out_shape`: (n,) for dense data, (width, channels) for 1D maps, (height, width, channels)
    for 2D maps. Kernel/pool geometry is only needed for conv and pooling layers. Bit widths are the total
    widths of the fixed-point types (ap_fixed<W, I> -> W).
    """

    name: str
    type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    filt_height: int = 1
    filt_width: int = 1
    stride_height: int = 1
    stride_width: int = 1
    pool_height: int = 1
    pool_width: int = 1
    pool_op: str = "max"
    activation: str | None = None
    reuse_factor: int = 1
    strategy: str = "latency"
    parallelization_factor: int = 1
    weight_bits: int = 16
    input_bits: int = 16
    result_bits: int = 16
    n_weights: int | None = None
    n_nonzero_weights: int | None = None
    #: io_stream: stream items this layer reads per image when they differ from its input pixels (a Dense
    #: after an aliased flatten reads the flatten's input items); None = `in_pixels`
    in_packets: int | None = None
    #: strategy distributed_arithmetic: LUT / FF / pipeline depth of one kernel evaluation from da4ml's cost
    #: model (edgekd.hls.da); DA layers use no DSPs and run at reuse factor 1
    da_lut: int | None = None
    da_ff: int | None = None
    da_depth: int | None = None

    def __post_init__(self) -> None:
        self.in_shape = tuple(int(d) for d in self.in_shape)
        self.out_shape = tuple(int(d) for d in self.out_shape)
        self.strategy = str(self.strategy).lower()
        self.pool_op = str(self.pool_op).lower()
        if self.pool_op == "average":
            self.pool_op = "avg"
        if self.reuse_factor < 1:
            raise EstimateError(f"layer {self.name!r}: reuse_factor must be >= 1 (got {self.reuse_factor})")
        if self.parallelization_factor < 1:
            raise EstimateError(f"layer {self.name!r}: parallelization_factor must be >= 1")
        if not self.in_shape or not self.out_shape or min(self.in_shape + self.out_shape) < 1:
            raise EstimateError(f"layer {self.name!r}: shapes must be non-empty and positive "
                                f"(in {self.in_shape}, out {self.out_shape})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_shape"], d["out_shape"] = list(self.in_shape), list(self.out_shape)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LayerSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise EstimateError(f"layer {d.get('name', '?')!r}: unknown LayerSpec keys {sorted(unknown)}")
        return cls(**dict(d))

    # derived geometry -----------------------------------------------------------------------------------
    @property
    def n_chan(self) -> int:
        return self.in_shape[-1]

    @property
    def n_filt(self) -> int:
        return self.out_shape[-1]

    @property
    def in_pixels(self) -> int:
        return math.prod(self.in_shape[:-1]) if len(self.in_shape) > 1 else 1

    @property
    def out_pixels(self) -> int:
        return math.prod(self.out_shape[:-1]) if len(self.out_shape) > 1 else 1

    @property
    def in_width(self) -> int:
        return self.in_shape[-2] if len(self.in_shape) > 1 else 1

    @property
    def kernel_inputs(self) -> int:
        """Inputs of one kernel evaluation (dense n_in, conv filt_h*filt_w*n_chan, depthwise filt_h*filt_w)."""
        if self.type == "Dense":
            return self.in_shape[-1]
        k = self.filt_width * (self.filt_height if self.is_2d else 1)
        return k if self.is_depthwise else k * self.n_chan

    @property
    def is_2d(self) -> bool:
        return self.type.endswith("2D") or self.type.endswith("2DBatchnorm")

    @property
    def is_depthwise(self) -> bool:
        return self.type.startswith("Depthwise")

    @property
    def weights_total(self) -> int:
        if self.n_weights is not None:
            return self.n_weights
        if self.type == "Dense":
            return self.in_shape[-1] * self.out_shape[-1]
        if self.is_depthwise:
            return self.kernel_inputs * self.n_chan
        return self.kernel_inputs * self.n_filt

    @property
    def weights_nonzero(self) -> int:
        return self.weights_total if self.n_nonzero_weights is None else self.n_nonzero_weights


def layer_specs_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[LayerSpec]:
    return [LayerSpec.from_dict(d) for d in items]


@dataclass
class LayerCost:
    """Cost of one layer. For io_stream the streaming fields drive the dataflow schedule."""

    name: str
    type: str
    cycles: int  # latency of this layer alone (io_stream: one image through this process)
    ii: int  # cycles before the layer accepts the next image
    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram_18k: int = 0
    # io_stream schedule terms
    items_in: int = 1  # stream items (pixels) read per image
    item_ii: int = 1  # cycles per input item
    fill_items: int = 1  # input items needed before the first output item
    depth: int = 0  # pipeline depth from the item that completes an output to that output
    tail: int = 0  # cycles after the last input item that are not pipeline depth (e.g. writing outputs)
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "cycles": self.cycles, "ii": self.ii, "dsp": self.dsp,
                "lut": self.lut, "ff": self.ff, "bram_18k": self.bram_18k}


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


def _kernel_depth(n_in: int, reuse: int, strategy: str) -> int:
    """Cycles of one multiply-accumulate kernel evaluation (dense_latency / dense_resource).

    Latency strategy: products in parallel (1 stage when there is anything to add), then an adder tree of
    ceil(log2 n_in) levels, ADDER_LEVELS_PER_CYCLE levels per cycle; a reuse factor R serialises R rounds.
    Resource strategy: an R-iteration pipelined loop (II 1) plus the same tree over the block.
    """
    levels = _clog2(n_in)
    tree = math.ceil(levels / ADDER_LEVELS_PER_CYCLE)
    mult_stage = 1 if n_in > 1 else 0
    if strategy == "resource":
        return reuse + 1 + math.ceil(_clog2(max(1, n_in // reuse)) / ADDER_LEVELS_PER_CYCLE)
    return mult_stage + tree + (reuse - 1)


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


# --- per layer ---------------------------------------------------------------------------------------------

def estimate_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    """Cost of one layer under `io_type`; raises EstimateError for a layer type it cannot price."""
    t = spec.type
    if t in FREE_TYPES or (t == "Transpose" and io_type == "io_parallel"):
        return _free(spec, io_type)
    if t in _MATH_TYPES:
        return _math_layer(spec, io_type)
    if t in _POOL_TYPES:
        return _pool_layer(spec, io_type)
    if t in _GLOBAL_POOL_TYPES:
        return _global_pool_layer(spec, io_type)
    if t in _ACT_TYPES:
        return _activation_layer(spec, io_type)
    if t in _SCALE_TYPES:
        return _scale_layer(spec, io_type)
    if t in _PAD_TYPES or t == "Transpose":
        return _pad_layer(spec, io_type)
    raise EstimateError(
        f"layer {spec.name!r}: no latency model for type {t!r} (modelled: Dense, Conv1D/2D, Depthwise, "
        f"Pooling1D/2D, GlobalPooling, activations, BatchNormalization/ApplyAlpha, ZeroPadding, reshapes)"
    )


def _free(spec: LayerSpec, io_type: IOType) -> LayerCost:
    if io_type == "io_stream" and _is_stream_alias(spec):
        # InplaceStreamFlatten (hls4ml backends/fpga/passes): no process, the next layer reads the same stream
        return LayerCost(spec.name, spec.type, cycles=0, ii=1, items_in=1, fill_items=1,
                         notes=["alias of its input stream (InplaceStreamFlatten)"])
    if io_type == "io_stream" and spec.type in {"Flatten", "Reshape"} and spec.in_shape[-1] != spec.out_shape[-1]:
        # repack_stream: reads each input packet once (1/cycle), emits when an output packet is full
        n = spec.in_pixels
        per_out = max(1, math.ceil(spec.out_shape[-1] / spec.in_shape[-1]))
        return LayerCost(spec.name, spec.type, cycles=n + 1, ii=n + 1, lut=spec.out_shape[-1] // 8,
                         ff=spec.out_shape[-1] * spec.result_bits, items_in=n, item_ii=1,
                         fill_items=min(n, per_out), depth=1, notes=["repack_stream"])
    return LayerCost(spec.name, spec.type, cycles=0, ii=1, items_in=spec.in_pixels, fill_items=1)


def _math_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    if spec.strategy in ("distributed_arithmetic", "da"):
        return _da_layer(spec, io_type)
    r, s = spec.reuse_factor, spec.strategy
    n_mult = math.ceil(spec.weights_nonzero / r)
    dsp, lut_mult = _multipliers(n_mult, spec.weight_bits, spec.input_bits)
    kdepth = _kernel_depth(spec.kernel_inputs, r, s)
    # adders: one tree adder per product; outputs: bias add + truncation per output channel
    lut = lut_mult + _tree_lut(n_mult, spec) + spec.n_filt * spec.result_bits
    ff = 0
    bram = 0
    weight_bits_total = spec.weights_nonzero * spec.weight_bits
    if s == "resource" or r > 1:
        # weights live in a memory read R times per evaluation: BRAM when large (store_weights_in_bram)
        wb, wl = _memory_bram(r, math.ceil(weight_bits_total / r))
        bram += wb
        lut += wl
    if spec.type == "Dense":
        if io_type == "io_parallel":
            cycles = kdepth
            ii = r
            ff = (_pipeline_ff(n_mult, spec, 1.0) if cycles > 0 else 0) + (spec.n_filt * spec.result_bits if cycles > 0 else 0)
            return LayerCost(spec.name, spec.type, cycles, ii, dsp, lut, ff, bram)
        # io_stream dense: read all input packets (1/cycle), one kernel evaluation, write output packets
        n_in_items = spec.in_packets or spec.in_pixels
        out_items = spec.out_pixels
        ff = _pipeline_ff(n_mult, spec, 0.5) + spec.kernel_inputs * spec.input_bits + spec.n_filt * spec.result_bits
        cycles = n_in_items + kdepth + out_items
        return LayerCost(spec.name, spec.type, cycles, max(cycles, r), dsp, lut, ff, bram,
                         items_in=n_in_items, item_ii=1, fill_items=n_in_items, depth=kdepth + 1,
                         tail=out_items - 1)
    # convolutions
    if io_type == "io_parallel":
        n_part = math.ceil(spec.out_pixels / spec.parallelization_factor)
        dsp *= spec.parallelization_factor
        lut *= spec.parallelization_factor
        ii = n_part * r
        cycles = ii + kdepth + 1
        ff = spec.parallelization_factor * _pipeline_ff(n_mult, spec, 1.0) + spec.out_pixels * spec.n_filt * spec.result_bits
        return LayerCost(spec.name, spec.type, cycles, ii, dsp, lut, ff, bram)
    # io_stream line-buffer convolution: one input pixel per R cycles; the first output needs
    # (filt_h-1) full rows plus filt_w pixels of the current row
    n = spec.in_pixels
    fill = ((spec.filt_height - 1) * spec.in_width + spec.filt_width) if spec.is_2d else spec.filt_width
    lb_lanes = (spec.filt_height - 1 if spec.is_2d else 0) * spec.n_chan * spec.input_bits
    lb_lut = lb_lanes * math.ceil(spec.in_width / 32)  # ap_shift_reg -> SRL32 per bit lane
    window_ff = spec.kernel_inputs * spec.input_bits * (1 if not spec.is_depthwise else spec.n_chan)
    ff = _pipeline_ff(n_mult, spec, 0.5) + window_ff + spec.n_filt * spec.result_bits
    depth = kdepth + 2  # window shift + kernel + output write
    cycles = n * r + depth
    return LayerCost(spec.name, spec.type, cycles, cycles, dsp, lut + lb_lut, ff, bram,
                     items_in=n, item_ii=r, fill_items=min(n, fill), depth=depth)


def _da_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    """A distributed-arithmetic layer: the kernel is a da4ml shift-and-add network (priced by da4ml) that
    evaluates once per cycle; its streaming schedule is that of a Latency layer at reuse factor 1."""
    if spec.da_lut is None or spec.da_ff is None:
        raise EstimateError(f"layer {spec.name!r}: strategy distributed_arithmetic needs da_lut / da_ff "
                            "(da4ml's cost model, edgekd.hls.da.da_layer_costs)")
    if spec.reuse_factor != 1:
        raise EstimateError(f"layer {spec.name!r}: distributed_arithmetic runs at reuse factor 1 only")
    base = _math_layer(replace(spec, strategy="latency", da_lut=None), io_type)
    depth = spec.da_depth if spec.da_depth is not None else _kernel_depth(spec.kernel_inputs, 1, "latency")
    shift = depth - _kernel_depth(spec.kernel_inputs, 1, "latency")
    lut, ff = int(spec.da_lut), int(spec.da_ff)
    if io_type == "io_parallel" and spec.type != "Dense":
        lut, ff = lut * spec.parallelization_factor, ff * spec.parallelization_factor
    if io_type == "io_stream" and spec.type != "Dense":  # + the line buffer and window the kernel reads
        lut += (spec.filt_height - 1 if spec.is_2d else 0) * spec.n_chan * spec.input_bits * math.ceil(spec.in_width / 32)
        ff += spec.kernel_inputs * spec.input_bits
    return replace(base, cycles=base.cycles + shift, ii=max(base.ii, 1), dsp=0, lut=lut, ff=ff, bram_18k=0,
                   depth=base.depth + shift if io_type == "io_stream" else base.depth,
                   notes=[*base.notes, "distributed arithmetic (da4ml cost model)"])


def _pool_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    c, b = spec.n_chan, spec.input_bits
    k = spec.pool_width * (spec.pool_height if spec.type == "Pooling2D" else 1)
    per_out = (k - 1) * b * (2 if spec.pool_op == "max" else 1)  # max: compare + select; avg: adder
    if io_type == "io_parallel":
        lut = spec.out_pixels * c * per_out
        return LayerCost(spec.name, spec.type, cycles=0, ii=1, lut=lut, ff=math.prod(spec.in_shape) * b,
                         notes=["combinational; registers on the layer input"])
    n = spec.in_pixels
    is2d = spec.type == "Pooling2D"
    fill = ((spec.pool_height - 1) * spec.in_width + spec.pool_width) if is2d else spec.pool_width
    lb_lut = (spec.pool_height - 1 if is2d else 0) * c * b * math.ceil(spec.in_width / 32)
    depth = 2
    return LayerCost(spec.name, spec.type, cycles=n + depth, ii=n + depth, lut=c * per_out + lb_lut,
                     ff=c * k * b + c * spec.result_bits, items_in=n, item_ii=1, fill_items=min(n, fill),
                     depth=depth)


def _global_pool_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    c, b = spec.n_chan, spec.input_bits
    n = spec.in_pixels
    if io_type == "io_parallel":
        depth = math.ceil(_clog2(n) / ADDER_LEVELS_PER_CYCLE)
        return LayerCost(spec.name, spec.type, cycles=depth, ii=1, lut=c * (n - 1) * b,
                         ff=math.prod(spec.in_shape) * b)
    return LayerCost(spec.name, spec.type, cycles=n + 2, ii=n + 2, lut=c * 2 * b, ff=c * (b + _clog2(n)),
                     items_in=n, item_ii=1, fill_items=n, depth=2)


def _activation_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    act = (spec.activation or spec.type).lower()
    width = math.prod(spec.in_shape) if io_type == "io_parallel" else spec.n_chan
    cheap = act in _CHEAP_ACTIVATIONS or spec.type in {"PReLU", "LeakyReLU", "ReLU", "ThresholdedReLU"}
    if cheap:
        lut = math.ceil(width * spec.input_bits / 2)
        depth = 0 if io_type == "io_parallel" else 1
        bram = 0
    else:
        # lookup table (1024 entries x result width by default): one BRAM port pair serves two lookups
        lut = width * 20
        depth = 2 if act != "softmax" else 6
        table_bram = max(1, math.ceil(1024 * spec.result_bits / BRAM_BITS))
        bram = table_bram * math.ceil(width / 2) if io_type == "io_parallel" else table_bram * math.ceil(width / 2)
    if io_type == "io_parallel":
        return LayerCost(spec.name, spec.type, cycles=depth, ii=1, lut=lut, ff=(width * spec.result_bits) if depth else 0,
                         bram_18k=bram)
    n = spec.in_pixels
    return LayerCost(spec.name, spec.type, cycles=n + depth, ii=n + depth, lut=lut, ff=width * spec.result_bits,
                     bram_18k=bram, items_in=n, item_ii=1, fill_items=1, depth=depth)


def _scale_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    width = math.prod(spec.in_shape) if io_type == "io_parallel" else spec.n_chan
    dsp, lut = _multipliers(width, spec.weight_bits, spec.input_bits)
    lut += width * spec.result_bits
    if io_type == "io_parallel":
        return LayerCost(spec.name, spec.type, cycles=1, ii=1, dsp=dsp, lut=lut, ff=width * spec.result_bits)
    n = spec.in_pixels
    return LayerCost(spec.name, spec.type, cycles=n + 2, ii=n + 2, dsp=dsp, lut=lut, ff=width * spec.result_bits,
                     items_in=n, item_ii=1, fill_items=1, depth=2)


def _pad_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    if io_type == "io_parallel":
        return LayerCost(spec.name, spec.type, cycles=0, ii=1)
    if spec.type == "Transpose":
        return _transpose_stream(spec)
    # zero padding in a stream (nnet_padding_stream.h): one output item per cycle, more items than it reads
    n_out = spec.out_pixels
    n_in = spec.in_pixels
    return LayerCost(spec.name, spec.type, cycles=max(n_in, n_out) + 1, ii=max(n_in, n_out) + 1, lut=20,
                     ff=spec.n_chan * spec.result_bits, items_in=n_in, item_ii=1, fill_items=1,
                     depth=1, tail=max(0, n_out - n_in))


def _transpose_stream(spec: LayerSpec) -> LayerCost:
    """hls4ml's stream transpose (nnet_transpose_stream.h): two loops in sequence.

    The first reads every input item (II 1) into `data_array[N]`, which is fully partitioned (registers);
    the second writes every output item (II 1) from it. So nothing comes out before the LAST input item is
    in: latency and II are `n_in items (at the input's arrival rate) + n_out items + depth`, FF = N x bits,
    and each output element is an (N / out item size):1 multiplexer (~bits / 4 LUT6 per input element).
    """
    n_in, n_out = spec.in_pixels, spec.out_pixels
    n = math.prod(spec.in_shape)
    depth = 2
    return LayerCost(spec.name, spec.type, cycles=n_in + n_out + depth, ii=n_in + n_out + depth,
                     lut=math.ceil(n * spec.input_bits / 4), ff=n * spec.result_bits, bram_18k=0,
                     items_in=n_in, item_ii=1, fill_items=n_in, depth=depth, tail=n_out - 1,
                     notes=["nnet::transpose: reads the whole tensor before its first output"])


def _is_stream_alias(spec: LayerSpec) -> bool:
    """A Flatten / Reshape to one dimension: hls4ml 1.3.0 makes it an alias in io_stream (InplaceStreamFlatten),
    so it generates no process and the next layer reads the stream items of the flatten's input."""
    return spec.type in {"Flatten", "Reshape"} and len(spec.out_shape) == 1 and len(spec.in_shape) > 1


def _with_stream_aliases(specs: list[LayerSpec]) -> list[LayerSpec]:
    """io_stream: a layer after an aliased flatten reads the flatten's INPUT items (e.g. 100 pixels of 16
    channels, not one item of 1,600): `nnet::dense` reads `n_in / data_T::size` packets."""
    out: list[LayerSpec] = []
    packets: int | None = None
    for spec in specs:
        if packets is not None and spec.in_packets is None:
            spec = LayerSpec.from_dict({**spec.to_dict(), "in_packets": packets})
        packets = None
        if _is_stream_alias(spec):
            packets = spec.in_packets or spec.in_pixels
        out.append(spec)
    return out


def input_items(specs: list[LayerSpec]) -> tuple[int, int]:
    """(stream items per image, elements per item) of the network input (the first layer's input)."""
    first = specs[0]
    per = first.in_shape[-1]
    return math.prod(first.in_shape) // per, per


def input_arrival_times(item_shape: tuple[int, ...], values_per_item: int, pixels_per_clock: int,
                        input_block: int = 1) -> list[float]:
    """Cycle at which each network input item is in the network's input stream, when a grabber hands over
    `pixels_per_clock` (P) pixels per clock in raster order (beat b, 0-based, arrives in cycle b; a C-channel
    pixel travels packed in one pixel slot of the beat) and the pixel-stream top packs them into items
    (docs/latency_model.md, "Input arrival").

    `item_shape` (rows, cols) of items (channels-last, the first layer's input without channels); an item holds
    `values_per_item` values: k^2 C for k x k blocks (`input_block` k) of C-channel pixels. Item (by, bx) is
    complete with the beat carrying its last pixel, pixel (by k + k - 1) W + bx k + k - 1 of the image
    (W = cols k pixels per row); the top writes at most one item per cycle, in order:
    t(j) = max(beat(j), t(j - 1) + 1). So items come in bursts in the last pixel row of each block row, and with
    P = k = 1 item j arrives in cycle j.
    """
    k, p = int(input_block), int(pixels_per_clock)
    if k < 1 or p < 1:
        raise EstimateError(f"input_block and pixels_per_clock must be >= 1 (got {k}, {p})")
    rows, cols = (item_shape[0], item_shape[1]) if len(item_shape) >= 2 else (1, item_shape[0] if item_shape else 1)
    if values_per_item % (k * k):
        raise EstimateError(f"input items of {values_per_item} values cannot be {k}x{k} pixel blocks")
    c = values_per_item // (k * k)
    width = cols * k  # pixels per image row
    out: list[float] = []
    prev = -1.0
    for by in range(rows):
        last_row = by * k + k - 1
        for bx in range(cols):
            last_pixel = last_row * width + bx * k + k - 1
            prev = max(float(last_pixel // p), prev + 1.0)
            out.append(prev)
    return out


# --- whole design ------------------------------------------------------------------------------------------

def _stream_schedule(costs: list[LayerCost], input_interval: float = 1.0,
                     arrivals: list[float] | None = None) -> tuple[float, float, float]:
    """Dataflow recurrence over the layer chain; returns (first, last) output times of the last layer and
    the largest time any one process is busy with one image (its effective initiation interval).

    The input items of layer k arrive spread uniformly over [s, e] (the first and last output times of the
    layer before; the network input arrives one item per `input_interval` cycles). Layer k accepts one item
    per `item_ii` cycles, so it finishes reading at max(e, s + (N-1)*item_ii); it emits its first output
    once `fill_items` items are in, and its last `depth + tail` cycles after reading its last item. A process
    is busy for its own II, stretched by however much longer its inputs take to arrive than it takes to read
    them (a stream transpose fed one row every 48 cycles reads for 48 x 48 cycles, then writes).

    `arrivals` (the network input's item times, `input_arrival_times`) replaces the uniform input: a layer fed
    by an explicit arrival list reads item j at r(j) = max(a(j), r(j - 1) + item_ii) exactly, and a layer that
    maps one input item to one output item (activations, scales: fill 1, no tail) passes r(j) + depth on as
    the next layer's arrival list; after the first layer that changes the item count, uniform spreads again.
    """
    s: float | None = None
    e: float | None = None
    busy = 0.0
    arr = list(arrivals) if arrivals else None
    for c in costs:
        if c.cycles == 0 and c.items_in <= 1 and c.depth == 0:
            continue  # free layer
        n = max(1, c.items_in)
        if arr is not None and len(arr) == n:
            reads: list[float] = []
            for a in arr:
                reads.append(a if not reads else max(a, reads[-1] + c.item_ii))
            first_in = arr[0]
            busy = max(busy, c.ii + (reads[-1] - first_in) - (n - 1) * c.item_ii)
            read_fill = reads[min(n, max(1, c.fill_items)) - 1]
            s, e = read_fill + c.depth, reads[-1] + c.depth + c.tail
            arr = [r + c.depth for r in reads] if c.fill_items <= 1 and c.tail == 0 else None
            continue
        if arr is not None:  # the arrival list does not match this layer's items: spread them uniformly
            s, e, arr = arr[0], arr[-1], None
        if s is None:
            s, e = 0.0, (n - 1) * input_interval
        span = e - s
        read_last = max(e, s + (n - 1) * c.item_ii)
        frac = (c.fill_items - 1) / (n - 1) if n > 1 else 1.0
        read_fill = max(s + span * frac, s + (c.fill_items - 1) * c.item_ii)
        busy = max(busy, c.ii + (read_last - s) - (n - 1) * c.item_ii)
        s, e = read_fill + c.depth, read_last + c.depth + c.tail
    if s is None:
        return 0.0, 0.0, 0.0
    return s, e, busy


def estimate(
    layers: Iterable[LayerSpec | Mapping[str, Any]],
    clock_mhz: float,
    io_type: IOType,
    *,
    input_interval: float | None = None,
    input_elements_per_clock: float = 1.0,
    pixels_per_clock: int | None = None,
    input_block: int = 1,
) -> dict[str, Any]:
    """Estimate latency, initiation interval and resources of an hls4ml design (JSON-ready dict).

    `layers` in graph order (a chain). io_stream: the network's input items (one stream word: all channels
    of a pixel for a channels-last input, a whole row for an NCHW one) arrive at the rate the board's top
    delivers input ELEMENTS, `input_elements_per_clock` (every edgekd top hands over one element per clock:
    one pixel of a grey image per clock on the frame grabber, one 32-bit word per element from a DMA or
    m_axi). So an item arrives every `elements per item / input_elements_per_clock` cycles, at least 1;
    `input_interval` overrides that figure (cycles per item).

    `pixels_per_clock` P (a pixel-stream board, `Board.pixels_per_clock`): the items arrive as the grabber's
    P-value beats complete them (`input_arrival_times`; `input_block` k: items are k x k pixel blocks), at most
    one per cycle, and a new image cannot start before its H W C / P beats are in; `input_arrival` in the result
    says when the first and last items arrive.
    """
    if clock_mhz <= 0:
        raise EstimateError(f"clock_mhz must be > 0 (got {clock_mhz})")
    if io_type not in ("io_parallel", "io_stream"):
        raise EstimateError(f"io_type must be 'io_parallel' or 'io_stream' (got {io_type!r})")
    specs = [l if isinstance(l, LayerSpec) else LayerSpec.from_dict(l) for l in layers]
    if not specs:
        raise EstimateError("no layers to estimate")
    if input_elements_per_clock <= 0:
        raise EstimateError(f"input_elements_per_clock must be > 0 (got {input_elements_per_clock})")
    arrivals: list[float] | None = None
    arrival: dict[str, Any] | None = None
    if io_type == "io_stream":
        specs = _with_stream_aliases(specs)
        if pixels_per_clock is not None:
            if input_interval is not None:
                raise EstimateError("give input_interval or pixels_per_clock, not both")
            n_items, per = input_items(specs)
            arrivals = input_arrival_times(specs[0].in_shape[:-1], per, pixels_per_clock, input_block)
            # P pixels per beat, C = values per item / k^2 values per pixel (packed colour: C = 3)
            beats = math.ceil(n_items * per / (pixels_per_clock * max(1, per // (input_block * input_block))))
            arrival = {"pixels_per_clock": int(pixels_per_clock), "input_block": int(input_block),
                       "items": n_items, "values_per_item": per, "beats": beats,
                       "first_item_cycle": arrivals[0], "last_item_cycle": arrivals[-1]}
            input_interval = (arrivals[-1] - arrivals[0]) / max(1, n_items - 1)
        elif input_interval is None:
            input_interval = max(1.0, input_items(specs)[1] / input_elements_per_clock)
    costs = [estimate_layer(s, io_type) for s in specs]
    if io_type == "io_parallel":
        total = sum(c.cycles for c in costs)
        ii = max(c.ii for c in costs)
        fifo_bram = fifo_lut = 0
    else:
        _, last, busy = _stream_schedule(costs, input_interval, arrivals)
        if arrival is not None:
            busy = max(busy, arrival["beats"])  # the grabber's beats of one image
        total = math.ceil(last) + 1  # + the write of the last output item
        ii = math.ceil(max(busy, max(c.ii for c in costs))) + 1
        # FIFOs between layers: hls4ml's default depth is the number of pixels of the tensor
        fifo_bram = fifo_lut = 0
        for spec, c in zip(specs[:-1], costs[:-1]):
            if c.cycles == 0 and spec.type in FREE_TYPES:
                continue  # an alias or a wire: no FIFO of its own
            b, l = _memory_bram(spec.out_pixels, spec.out_shape[-1] * spec.result_bits)
            fifo_bram += b
            fifo_lut += l
    resources = {
        "dsp": sum(c.dsp for c in costs),
        "lut": sum(c.lut for c in costs) + fifo_lut,
        "ff": sum(c.ff for c in costs),
        "bram_18k": sum(c.bram_18k for c in costs) + fifo_bram,
    }
    us = total / clock_mhz
    return {
        "clock_mhz": float(clock_mhz),
        "io_type": io_type,
        "cycles": int(total),
        "us": round(us, 4),
        "ii_cycles": int(ii),
        "throughput_per_s": round(clock_mhz * 1e6 / ii, 2),
        "per_layer": [c.row() for c in costs],
        "resources": resources,
        "fifo": {"bram_18k": fifo_bram, "lut": fifo_lut} if io_type == "io_stream" else None,
        "input_interval_cycles": float(input_interval) if io_type == "io_stream" else None,
        **({"input_arrival": arrival} if arrival is not None else {}),
        "source": "estimate",
        "model": "edgekd analytical model for hls4ml 1.3.0 (docs/latency_model.md)",
    }


def fits(resources: Mapping[str, float], board: Any) -> dict[str, Any]:
    """Used vs available per resource; `board` is an `edgekd.hw.Board` (or anything with .resources).

    Returns {"fits": bool, "binding": name of the fullest resource, "resources": {name: {used, available,
    fraction}}}. A resource the board lacks (available 0) but the design uses makes `fits` False.
    """
    avail_obj = getattr(board, "resources", board)
    out: dict[str, Any] = {}
    ok = True
    worst, worst_frac = None, -1.0
    for key in ("lut", "ff", "dsp", "bram_18k", "uram"):
        used = resources.get(key)
        if used is None:
            continue
        available = getattr(avail_obj, key, None) if not isinstance(avail_obj, Mapping) else avail_obj.get(key)
        if available is None:
            continue
        frac = (used / available) if available else (0.0 if used == 0 else math.inf)
        out[key] = {"used": used, "available": available, "fraction": round(frac, 6) if math.isfinite(frac) else None}
        if frac > 1.0:
            ok = False
        if frac > worst_frac:
            worst, worst_frac = key, frac
    return {"board": getattr(board, "name", None), "part": getattr(board, "part", None), "fits": ok,
            "binding": worst, "resources": out}


# --- from an hls4ml ModelGraph -----------------------------------------------------------------------------

def _width(precision: Any, default: int) -> int:
    w = getattr(precision, "width", None)
    return int(w) if w is not None else default


def layers_from_hls_model(hls_model: Any) -> list[LayerSpec]:
    """LayerSpecs from a converted hls4ml 1.3.0 ModelGraph (reads attributes only; no compile needed)."""
    cfg = getattr(hls_model, "config", None)
    model_strategy = "latency"
    try:
        model_strategy = str(cfg.get_config_value("HLSConfig")["Model"].get("Strategy", "latency")).lower()
    except Exception:  # noqa: BLE001 - a config without the key: keep the default
        pass
    specs: list[LayerSpec] = []
    for layer in hls_model.get_layers():
        attr = layer.attributes
        kind = layer.class_name
        out_var = layer.get_output_variable()
        out_shape = tuple(int(d) for d in out_var.shape)
        if kind == "Input":
            in_shape = out_shape
        else:
            in_var = layer.get_input_variable()
            in_shape = tuple(int(d) for d in in_var.shape)
        in_bits = _width(getattr(layer.get_input_variable(), "type", None) and layer.get_input_variable().type.precision, 16) \
            if kind != "Input" else _width(out_var.type.precision, 16)
        weight_bits, n_w, n_nz = 16, None, None
        w = layer.weights.get("weight") if hasattr(layer, "weights") else None
        if w is not None:
            weight_bits = _width(w.type.precision, 16)
            data = getattr(w, "data", None)
            if data is not None:
                import numpy as np

                arr = np.asarray(data)
                n_w = int(arr.size)
                n_nz = int(np.count_nonzero(arr))
        elif kind in _SCALE_TYPES and layer.weights.get("scale") is not None:
            weight_bits = _width(layer.weights["scale"].type.precision, 16)
        pool_op = str(attr.get("pool_op", "Max")).lower()
        strategy = str(attr.get("strategy", model_strategy) or model_strategy).lower()
        spec = LayerSpec(
            name=layer.name,
            type=kind,
            in_shape=in_shape,
            out_shape=out_shape,
            filt_height=int(attr.get("filt_height", attr.get("pool_height", 1)) or 1),
            filt_width=int(attr.get("filt_width", attr.get("pool_width", 1)) or 1),
            stride_height=int(attr.get("stride_height", 1) or 1),
            stride_width=int(attr.get("stride_width", 1) or 1),
            pool_height=int(attr.get("pool_height", 1) or 1),
            pool_width=int(attr.get("pool_width", 1) or 1),
            pool_op="avg" if pool_op.startswith("av") else "max",
            activation=attr.get("activation"),
            reuse_factor=int(attr.get("reuse_factor", 1) or 1),
            strategy=strategy,
            parallelization_factor=int(attr.get("parallelization_factor", 1) or 1),
            weight_bits=weight_bits,
            input_bits=in_bits,
            result_bits=_width(out_var.type.precision, 16),
            n_weights=n_w,
            n_nonzero_weights=n_nz,
        )
        specs.append(spec)
    return specs
