"""Each scheduling rule of edgekd.estimate.timing, derived by hand from hls4ml 1.3.0's templates, and the vendor
figures it is fitted to (the 8-bit LeNet-5, Vitis HLS 2023.2: tests/data/hls4ml_synthesis_baselines.json and the
per-function csynth reports cited in edgekd/estimate/timing.py). Integer cycle counts: exact equality."""

from __future__ import annotations

from edgekd.estimate import LayerSpec, estimate, estimate_layer
from edgekd.estimate.cost import last_window_item
from edgekd.estimate.resources import _fifo_bram
from edgekd.estimate.timing import (
    conv_pixel_interval,
    kernel_cycles,
    output_buffer_latency,
    resource_kernel_cycles,
    stream_dense_read_cycles,
)

B8 = dict(weight_bits=8, input_bits=8, result_bits=8)


def _conv(h, c, f, k=5, nnz=None, **kw):
    return LayerSpec("conv", "Conv2D", (h, h, c), (h - k + 1, h - k + 1, f), filt_height=k, filt_width=k,
                     n_nonzero_weights=nnz, **{**B8, **kw})


def test_narrow_kernel_depth_fitted_to_the_lenet5_instances():
    # dense_latency instances of the LeNet-5 report: products per output -> levels -> max(1, levels - 4)
    assert kernel_cycles(_conv(28, 1, 6, nnz=110)) == 1    # 18.3 -> 5 levels: 1 (report: 1)
    assert kernel_cycles(_conv(12, 6, 16, nnz=1751)) == 3  # 109.4 -> 7 levels: 3 (report: 3)
    dense1 = LayerSpec("d1", "Dense", (256,), (16,), n_nonzero_weights=2966, **B8)
    dense2 = LayerSpec("d2", "Dense", (16,), (16,), n_nonzero_weights=187, **B8)
    assert kernel_cycles(dense1) == 4 and kernel_cycles(dense2) == 1  # 185.4 -> 8: 4; 11.7 -> 4: 1 (report: 4, 1)
    # reuse factor R: R rounds through the shared multipliers
    assert kernel_cycles(_conv(12, 6, 16, nnz=1751, reuse_factor=4)) == 3 + 3
    # 16-bit products on DSPs: a product stage + ceil(levels / 4) (hls4ml's 16-bit baselines)
    assert kernel_cycles(_conv(12, 6, 16, weight_bits=16, input_bits=16)) == 1 + 2  # 150 inputs, 8 levels


def test_conv_pixel_interval_is_the_output_buffer_latency():
    # compute_output_buffer_2d is INLINE OFF with static state: the PIPELINE II=R pixel loop waits for each call
    assert [output_buffer_latency(k) for k in (1, 2, 3, 4)] == [3, 5, 6, 8]
    conv1, conv2 = _conv(28, 1, 6, nnz=110), _conv(12, 6, 16, nnz=1751)
    assert conv_pixel_interval(conv1, 1) == 3 and conv_pixel_interval(conv2, 3) == 6  # "II achieved 3, target 1"
    # the processes: N x II + 3 (loop entry/exit): 784 x 3 + 3 = 2,355 and 144 x 6 + 3 = 867, as csynth reports
    assert estimate_layer(conv1, "io_stream").cycles == 2355
    assert estimate_layer(conv2, "io_stream").cycles == 867
    assert estimate([conv1], 200, "io_stream", input_interval=1.0)["cycles"] == 2355
    # a reuse factor above the buffer's latency sets the II
    assert conv_pixel_interval(_conv(28, 1, 6, reuse_factor=8), 1 + 7) == max(8, output_buffer_latency(8))


def test_resource_and_depthwise_and_da_pixel_loops():
    # Resource: conv_2d_buffer_resource_cl's pixel loop has no PIPELINE: the same INLINE OFF buffer around the
    # kernel (R-iteration loop + tree over n/R products) + 1 loop state per pixel. 150 products / R 5 = 30 per
    # round: 5 levels -> 1 cycle, kernel 5 + 1 = 6, buffer 6 + 2 + 3 = 11, + 1 = 12 cycles per pixel
    res = _conv(12, 6, 16, reuse_factor=5, strategy="resource")
    assert resource_kernel_cycles(res) == 5 + 1
    assert conv_pixel_interval(res, 6) == 11 + 1
    assert estimate_layer(res, "io_stream").item_ii == 12
    # depthwise (compute_depthwise_output_buffer_2d, plain INLINE) pipelines at R per pixel
    dw = LayerSpec("dw", "DepthwiseConv2D", (12, 12, 6), (10, 10, 6), filt_height=3, filt_width=3, **B8)
    assert estimate_layer(dw, "io_stream").item_ii == 1
    # distributed arithmetic takes the Latency path: the buffer's latency around da4ml's depth (3 -> 6)
    da = _conv(12, 6, 16, strategy="distributed_arithmetic", da_lut=1000, da_ff=100, da_depth=3)
    c = estimate_layer(da, "io_stream")
    assert (c.item_ii, c.cycles, c.dsp, c.lut > 1000) == (6, 144 * 6 + 3, 0, True)


def test_pooling_at_ii_2_and_the_stream_dense_read_loop():
    pool = LayerSpec("p", "Pooling2D", (24, 24, 6), (12, 12, 6), pool_height=2, pool_width=2, stride_height=2,
                     stride_width=2, **B8)
    c = estimate_layer(pool, "io_stream")
    assert (c.item_ii, c.cycles) == (2, 1155)  # qmaxpool1: 2 x 576 + 3 = 1,155 (csynth: 1,155)
    # nnet::dense in io_stream: DataPrepare (n + 2, 2 call states) + kernel + one write
    assert stream_dense_read_cycles(16) == 20 and stream_dense_read_cycles(1) == 1
    d1 = LayerSpec("d1", "Dense", (256,), (16,), n_nonzero_weights=2966, in_packets=16, **B8)
    assert estimate_layer(d1, "io_stream").cycles == 20 + 4 + 1  # csynth: 25
    d2 = LayerSpec("d2", "Dense", (16,), (16,), n_nonzero_weights=187, **B8)
    assert estimate_layer(d2, "io_stream").cycles == 1 + 1 + 1  # csynth: 3


def test_a_flooring_pool_cuts_the_output_dependency():
    # 9 x 9 -> 4 x 4 (pool 2, stride 2): the last window ends at row 7, column 7: input item 7 x 9 + 7 = 70 of 81
    pool = LayerSpec("p", "Pooling2D", (9, 9, 4), (4, 4, 4), pool_height=2, pool_width=2, stride_height=2,
                     stride_width=2, **B8)
    assert last_window_item(pool, 2, 2, 2, 2) == 70
    even = LayerSpec("p", "Pooling2D", (8, 8, 4), (4, 4, 4), pool_height=2, pool_width=2, stride_height=2,
                     stride_width=2, **B8)
    assert last_window_item(even, 2, 2, 2, 2) is None  # the last item completes the last window
    # a conv (3 cycles per pixel) into the flooring pool and a dense: the logits wait for conv output 70, not 80,
    # 10 conv outputs = 10 input pixels x 3 cycles = 30 cycles earlier than "last input + depth" says
    conv = _conv(11, 1, 4, k=3)
    flat = LayerSpec("f", "Reshape", (4, 4, 4), (64,), **B8)
    fc = LayerSpec("fc", "Dense", (64,), (2,), **B8)
    floors = estimate([conv, pool, flat, fc], 250, "io_stream", input_interval=1.0)
    conv_only = estimate([conv], 250, "io_stream", input_interval=1.0)
    # conv: last pixel read at 120 x 3 = 360; output 70 of 81 comes from input pixel 9 x 11 + 9 = 108, read at 324
    assert conv_only["cycles"] == 360 + 3 + 1 + 2
    pool_fc = 2 + (stream_dense_read_cycles(16) - 16) + kernel_cycles(LayerSpec("fc", "Dense", (64,), (2,), **B8)) + 1
    assert floors["cycles"] <= 324 + 3 + pool_fc + 1 + 6  # + the spread of the pool's reads (uniform model)
    # "last input + depth" would put the logits after the conv's last output (366 - 2 exit + pool_fc)
    assert floors["cycles"] < conv_only["cycles"] - 20


def test_fifo_bram_as_vitis_maps_it():
    # a FIFO of 576 items of 16 x 8 = 128 bits: ceil(128 / 18) = 8 BRAM18K (the 512 x 36 rule said 4)
    assert _fifo_bram(576, 128) == (8, 0)
    assert _fifo_bram(2304, 8) == (1 * 3, 0)  # 8 bits: 1 tile per 1,024 entries
    assert _fifo_bram(16, 32)[0] == 0  # 512 bits: LUTRAM
