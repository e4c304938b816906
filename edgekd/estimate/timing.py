"""How Vitis HLS schedules hls4ml 1.3.0's kernels and stream loops: the cycle rules of the cost model.

Each rule names the template it comes from (hls4ml/templates/{vivado,vitis}/nnet_utils) and, where a number is
fitted, the vendor rows it is fitted to (tests/data/hls4ml_synthesis_baselines.json and the per-function csynth
reports of the same LeNet-5 build: abdennour-GUESSOUM/Lenet5-hls4ml, commit 4fcac1bd1cfe20b560381ede9b75d8ab06683c94,
lenet5_quantifié_8_4/myproject_prj/solution1/syn/report/, Vitis HLS 2023.2, xczu9eg, 5 ns). docs/latency_model.md
has the table; tests/estimate/test_timing.py pins every rule by hand.

- `kernel_cycles`: latency of one `dense_latency` evaluation (one output pixel of a convolution, one Dense).
  LUT-built (narrow, constant-weight) products: Vitis chains the products and the first adder levels into one
  cycle and then needs about one cycle per further level of the tree that sums one output's non-zero products:
  `max(1, ceil(log2(non-zero products per output)) - FREE_LEVELS) + (R - 1)`. Fitted: the four dense_latency
  instances of the LeNet-5 report (12, 18, 109 and 185 products per output: 1, 1, 3 and 4 cycles). DSP products:
  a product stage plus ADDER_LEVELS_PER_CYCLE tree levels per cycle (hls4ml's 16-bit baselines).
- `conv_pixel_interval`: the io_stream line-buffer convolution (vitis/nnet_conv2d_stream.h
  `conv_2d_buffer_latency_cl`) calls `compute_output_buffer_2d` (vivado/nnet_conv_stream.h) once per input pixel
  inside a loop with `PIPELINE II=R`; that function carries `#pragma HLS INLINE OFF` and static state (pX, pY, sX, sY,
  kernel_data), which it reads at its start and writes at its end, so one call cannot start before the previous one
  ends: the loop's II is the function's latency, `k + 2 + floor(k / 2)` for a kernel of k cycles (the shift and the
  window test, the kernel, the output register and write; fitted to the two instances: k = 1 -> 3, k = 3 -> 6, and
  the csynth summary "II achieved 3, target 1"), and never below R.
  Resource strategy (`conv_2d_buffer_resource_cl`): the pixel loop has no PIPELINE pragma: each pixel costs the
  same function's latency around dense_resource's kernel (an R-iteration loop and its tree) + 1 loop state. Distributed arithmetic takes the
  Latency path with da4ml's kernel depth. The depthwise template (`compute_depthwise_output_buffer_2d`, plain
  INLINE) pipelines at R cycles per pixel (hls4ml's depthwise baselines: 1,028 cycles for 1,024 pixels).
- `POOL_ITEM_II`: `pooling2d_cl` (vitis/nnet_pooling_stream.h) reads one pixel per 2 cycles in Vitis HLS 2023.2
  (qmaxpool1: 1,155 cycles for 576 pixels = 2 x 575 + 5).
- `stream_dense_read_cycles`: `nnet::dense` in io_stream (vivado/nnet_dense_stream.h) reads its input packets in
  the DataPrepare loop, a pipelined loop in its own function when there is more than one packet: n + 2 cycles and
  2 call states (qdense1: 16 packets, 18 + kernel 4 + 3 = 25 cycles); one packet is read in one cycle (qdense2 and
  qoutput: 1 + 1 + 1 = 3).
- `LOOP_OVERHEAD`: a pipelined loop in a DATAFLOW process adds about 3 cycles to N x II (conv1: 784 x 3 + 3 = 2,355;
  conv2: 144 x 6 + 3 = 867).

Fitted at a 5 ns clock; at a shorter period Vitis fits fewer adder levels per cycle, so kernels at 250 MHz may
take a cycle more than this says (not modelled).
"""

from __future__ import annotations

import math

from edgekd.estimate.layers import LayerSpec
from edgekd.estimate.resources import ADDER_LEVELS_PER_CYCLE, _clog2, _lut_products

#: adder levels Vitis HLS 2023.2 schedules together with the LUT-built products in a kernel's first cycle
FREE_LEVELS = 4
#: cycles per input pixel of hls4ml's stream pooling in Vitis HLS 2023.2 (the LeNet-5 qmaxpool1 process)
POOL_ITEM_II = 2
#: cycles a pipelined stream loop adds to items x II (loop entry and exit, the process's start and done)
LOOP_OVERHEAD = 3
#: states a Resource-strategy pixel loop (no PIPELINE) adds per pixel: the loop test
RESOURCE_LOOP_STATE = 1


def products_per_output(spec: LayerSpec) -> float:
    """Non-zero products summed into one output value (pruned weights are not built)."""
    outs = spec.n_chan if spec.is_depthwise else spec.n_filt
    return spec.weights_nonzero / max(1, outs)


def tree_cycles(spec: LayerSpec, products: float) -> int:
    """Cycles of the products and the adder tree that sums `products` of them into one output."""
    levels = _clog2(max(1, math.ceil(products)))
    if _lut_products(spec.weight_bits, spec.input_bits):
        return max(1, levels - FREE_LEVELS)
    return (1 if products > 1 else 0) + math.ceil(levels / ADDER_LEVELS_PER_CYCLE)


def kernel_cycles(spec: LayerSpec) -> int:
    """Latency of one kernel evaluation, Latency strategy (`dense_latency`, PIPELINE II=R): R rounds share the
    multipliers. DSP products: all inputs count (a zero weight still passes through the DSP's tree)."""
    lut = _lut_products(spec.weight_bits, spec.input_bits)
    return tree_cycles(spec, products_per_output(spec) if lut else spec.kernel_inputs) + (spec.reuse_factor - 1)


def resource_kernel_cycles(spec: LayerSpec) -> int:
    """Latency of one `dense_resource` evaluation: an R-iteration loop pipelined at II 1 (rewind), then the tree
    over one block of n_in / R products."""
    r = spec.reuse_factor
    lut = _lut_products(spec.weight_bits, spec.input_bits)
    block = (products_per_output(spec) if lut else spec.kernel_inputs) / r
    return r + tree_cycles(spec, max(1, int(block)))


def output_buffer_latency(k: int) -> int:
    """Latency of one `compute_output_buffer_2d` / `_1d` call (INLINE OFF) around a kernel of k cycles."""
    return k + 2 + k // 2


def conv_pixel_interval(spec: LayerSpec, kernel: int) -> int:
    """Cycles per input pixel of an io_stream line-buffer convolution whose kernel takes `kernel` cycles."""
    r = spec.reuse_factor
    if spec.is_depthwise:
        return r  # plain INLINE: the pixel loop pipelines at its PIPELINE II=R
    if spec.strategy == "resource":
        # the same INLINE OFF function around dense_resource, in a pixel loop without PIPELINE: + the loop state
        return output_buffer_latency(kernel) + RESOURCE_LOOP_STATE
    return max(r, output_buffer_latency(kernel))


def stream_dense_read_cycles(packets: int) -> int:
    """Cycles of `nnet::dense`'s DataPrepare loop for `packets` input packets (io_stream)."""
    return 1 if packets <= 1 else packets + 2 + 2
