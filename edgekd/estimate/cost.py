"""Cost of one layer: cycles, initiation interval, streaming terms and resources per hls4ml layer family.

`estimate_layer` follows the loop structure of hls4ml's Vivado/Vitis templates (`nnet_utils/*.h`) for each
family: Dense and convolutions (Latency / Resource strategy, and distributed arithmetic priced by da4ml),
pooling, global pooling, activations, BatchNormalization / ApplyAlpha, zero padding, the stream transpose,
and the free layers (wires, reshapes, aliases). It prices parts with the building blocks of
edgekd.estimate.resources; how layers overlap is edgekd.estimate.stream's job.
"""

from __future__ import annotations

import math
from dataclasses import replace

from edgekd.errors import EstimateError
from edgekd.estimate.layers import (
    _ACT_TYPES,
    _GLOBAL_POOL_TYPES,
    _MATH_TYPES,
    _PAD_TYPES,
    _POOL_TYPES,
    _SCALE_TYPES,
    FREE_TYPES,
    IOType,
    LayerCost,
    LayerSpec,
)
from edgekd.estimate.resources import (
    ADDER_LEVELS_PER_CYCLE,
    BRAM_BITS,
    _clog2,
    _memory_bram,
    _multipliers,
    _pipeline_ff,
    _tree_lut,
)
from edgekd.estimate.stream import _is_stream_alias
from edgekd.estimate.timing import (
    LOOP_OVERHEAD,
    POOL_ITEM_II,
    conv_pixel_interval,
    kernel_cycles,
    output_buffer_latency,
    resource_kernel_cycles,
    stream_dense_read_cycles,
)

#: activations computed with comparators only (no lookup table)
_CHEAP_ACTIVATIONS = frozenset({"relu", "linear", "leaky_relu", "leakyrelu", "prelu", "hard_sigmoid",
                                "hard_tanh", "thresholdedrelu", "binary_tanh", "ternary_tanh", "relu6"})


def _kernel_depth(spec: LayerSpec) -> int:
    """Cycles of one multiply-accumulate kernel evaluation (edgekd.estimate.timing: `dense_latency` /
    `dense_resource` as Vitis HLS schedules them)."""
    return resource_kernel_cycles(spec) if spec.strategy == "resource" else kernel_cycles(spec)


def last_window_item(spec: LayerSpec, fh: int, fw: int, sh: int, sw: int) -> int | None:
    """Index (raster order) of the input item that completes the last output window of a valid window layer
    (conv or pool); None when that is the last input item. A layer that floors (a 9-wide input, window 2,
    stride 2 -> 4 outputs) emits its last output before it has read its whole input."""
    if len(spec.in_shape) < 2 or len(spec.out_shape) < 2:
        return None
    if len(spec.in_shape) >= 3 and len(spec.out_shape) >= 3:
        (ih, in_w), (oh, ow) = spec.in_shape[:2], spec.out_shape[:2]
        if (ih - fh) // sh + 1 != oh or (in_w - fw) // sw + 1 != ow:
            return None  # not a valid window layer with these strides: assume the last item
        row, col = (oh - 1) * sh + fh - 1, (ow - 1) * sw + fw - 1
        idx = row * in_w + col
    else:
        if (spec.in_shape[0] - fw) // sw + 1 != spec.out_shape[0]:
            return None
        idx = (spec.out_shape[0] - 1) * sw + fw - 1
    n = spec.in_pixels
    return idx if 0 <= idx < n - 1 else None


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
    kdepth = _kernel_depth(spec)
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
        # io_stream dense (nnet_dense_stream.h): the DataPrepare loop reads every input packet, one kernel
        # evaluation, one write per output packet (edgekd.estimate.timing.stream_dense_read_cycles)
        n_in_items = spec.in_packets or spec.in_pixels
        out_items = spec.out_pixels
        read = stream_dense_read_cycles(n_in_items)
        ff = _pipeline_ff(n_mult, spec, 0.5) + spec.kernel_inputs * spec.input_bits + spec.n_filt * spec.result_bits
        cycles = read + kdepth + out_items
        return LayerCost(spec.name, spec.type, cycles, max(cycles, r), dsp, lut, ff, bram,
                         items_in=n_in_items, item_ii=1, fill_items=n_in_items,
                         depth=(read - n_in_items) + kdepth + 1, tail=out_items - 1)
    # convolutions
    if io_type == "io_parallel":
        n_part = math.ceil(spec.out_pixels / spec.parallelization_factor)
        dsp *= spec.parallelization_factor
        lut *= spec.parallelization_factor
        ii = n_part * r
        cycles = ii + kdepth + 1
        ff = spec.parallelization_factor * _pipeline_ff(n_mult, spec, 1.0) + spec.out_pixels * spec.n_filt * spec.result_bits
        return LayerCost(spec.name, spec.type, cycles, ii, dsp, lut, ff, bram)
    return _conv_stream(spec, kdepth, dsp, lut, bram, n_mult)


def _conv_stream(spec: LayerSpec, kdepth: int, dsp: int, lut: int, bram: int, n_mult: int) -> LayerCost:
    """io_stream line-buffer convolution: one input pixel per `conv_pixel_interval` cycles (the II of the pixel
    loop is the latency of `compute_output_buffer_2d`, INLINE OFF, edgekd.estimate.timing); the first output
    needs (filt_h-1) full rows plus filt_w pixels of the current row, the last one the pixel that completes the
    last window (a strided conv may floor)."""
    n = spec.in_pixels
    px = conv_pixel_interval(spec, kdepth)
    fill = ((spec.filt_height - 1) * spec.in_width + spec.filt_width) if spec.is_2d else spec.filt_width
    lb_lanes = (spec.filt_height - 1 if spec.is_2d else 0) * spec.n_chan * spec.input_bits
    lb_lut = lb_lanes * math.ceil(spec.in_width / 32)  # ap_shift_reg -> SRL32 per bit lane
    window_ff = spec.kernel_inputs * spec.input_bits * (1 if not spec.is_depthwise else spec.n_chan)
    ff = _pipeline_ff(n_mult, spec, 0.5) + window_ff + spec.n_filt * spec.result_bits
    if spec.is_depthwise:
        depth = kdepth + 2  # window shift + kernel + output write, pipelined at R per pixel
    else:
        depth = output_buffer_latency(kdepth)  # compute_output_buffer (INLINE OFF) around either kernel
    exit_ = LOOP_OVERHEAD - 1
    cycles = n * px + (depth if spec.is_depthwise else LOOP_OVERHEAD)
    last = last_window_item(spec, spec.filt_height if spec.is_2d else 1, spec.filt_width,
                            spec.stride_height if spec.is_2d else 1, spec.stride_width)
    notes = [] if spec.is_depthwise else [f"{px} cycles per input pixel (compute_output_buffer, INLINE OFF)"]
    return LayerCost(spec.name, spec.type, cycles, cycles, dsp, lut + lb_lut, ff, bram,
                     items_in=n, item_ii=px, fill_items=min(n, fill), depth=depth, last_item=last,
                     exit=0 if spec.is_depthwise else exit_, notes=notes)


def _da_layer(spec: LayerSpec, io_type: IOType) -> LayerCost:
    """A distributed-arithmetic layer: the kernel is a da4ml shift-and-add network (priced by da4ml) that
    evaluates once per cycle; its streaming schedule is that of a Latency layer at reuse factor 1."""
    if spec.da_lut is None or spec.da_ff is None:
        raise EstimateError(f"layer {spec.name!r}: strategy distributed_arithmetic needs da_lut / da_ff "
                            "(da4ml's cost model, edgekd.hls.da.da_layer_costs)")
    if spec.reuse_factor != 1:
        raise EstimateError(f"layer {spec.name!r}: distributed_arithmetic runs at reuse factor 1 only")
    lat_spec = replace(spec, strategy="latency", da_lut=None, da_ff=None, da_depth=None)
    base = _math_layer(lat_spec, io_type)
    k_lat = kernel_cycles(lat_spec)
    depth = spec.da_depth if spec.da_depth is not None else k_lat
    lut, ff = int(spec.da_lut), int(spec.da_ff)
    if io_type == "io_parallel" and spec.type != "Dense":
        lut, ff = lut * spec.parallelization_factor, ff * spec.parallelization_factor
    notes = [*base.notes, "distributed arithmetic (da4ml cost model)"]
    if io_type == "io_stream" and spec.type != "Dense":
        # + the line buffer and window the kernel reads; the DA kernel sits in the same compute_output_buffer
        # (INLINE OFF) as a Latency kernel, so the pixel interval follows its depth (edgekd.estimate.timing)
        lut += (spec.filt_height - 1 if spec.is_2d else 0) * spec.n_chan * spec.input_bits * math.ceil(spec.in_width / 32)
        ff += spec.kernel_inputs * spec.input_bits
        conv = _conv_stream(lat_spec, max(1, depth), 0, 0, 0, 0)
        return replace(conv, dsp=0, lut=lut, ff=ff, bram_18k=0, notes=[*conv.notes, *notes[len(base.notes):]])
    shift = depth - k_lat
    return replace(base, cycles=base.cycles + shift, ii=max(base.ii, 1), dsp=0, lut=lut, ff=ff, bram_18k=0,
                   depth=base.depth + shift if io_type == "io_stream" else base.depth, notes=notes)


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
    # pooling2d_cl / pooling1d_cl read one pixel per POOL_ITEM_II cycles (edgekd.estimate.timing); a pool
    # that floors emits its last output at the pixel completing its last window
    depth = 2
    last = last_window_item(spec, spec.pool_height if is2d else 1, spec.pool_width,
                            spec.stride_height if is2d else 1, spec.stride_width)
    cycles = n * POOL_ITEM_II + LOOP_OVERHEAD
    return LayerCost(spec.name, spec.type, cycles=cycles, ii=cycles, lut=c * per_out + lb_lut,
                     ff=c * k * b + c * spec.result_bits, items_in=n, item_ii=POOL_ITEM_II,
                     fill_items=min(n, fill), depth=depth, last_item=last, exit=LOOP_OVERHEAD - 1)


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
