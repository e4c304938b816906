"""The hardware cost model of an hls4ml 1.3.0 design: latency, initiation interval and resources, without a
vendor tool (source: "estimate"). The fit search (edgekd.hls.fit), suggest-student, distributed arithmetic
(edgekd.hls.da) and the sweep import it; edgekd.report only renders its figures.

Layout (the public API is re-exported here):

* edgekd.estimate.layers: `LayerSpec`, `LayerCost`, the layer-type families, `layers_from_hls_model`;
* edgekd.estimate.resources: technology constants, multipliers, adder trees, pipeline registers, memories/FIFOs;
* edgekd.estimate.timing: how Vitis HLS schedules hls4ml's kernels and loops (kernel depth, the io_stream
  convolution's per-pixel interval, loop overheads), each rule pinned to a template and fitted to vendor rows;
* edgekd.estimate.cost: `estimate_layer`, the cycle and resource model of each layer family;
* edgekd.estimate.stream: the io_stream dataflow (aliases, `input_arrival_times`, the event schedule);
* edgekd.estimate.model: `estimate`, the whole design;
* edgekd.estimate.fit: `fits`, used vs available on a board.

docs/latency_model.md writes every formula down.
"""

from edgekd.estimate.model import *  # noqa: F401,F403 - the public API
from edgekd.estimate.model import __all__ as _model_all
from edgekd.estimate.model import (  # noqa: F401 - constants and helpers other modules and benchmarks read
    ADDER_LEVELS_PER_CYCLE,
    BRAM_BITS,
    BRAM_DEPTH,
    BRAM_WIDTH,
    CSD_DIGITS,
    CSD_DIGITS_PER_EXTRA_BIT,
    DSP_PORT_A,
    DSP_PORT_B,
    DSP_WIDTH_THRESHOLD,
    FF_PER_PRODUCT_BIT,
    IOType,
    LUT_CONST_MAX_BITS,
    LUT_PER_DIGIT_BIT,
    LUT_PER_PRODUCT_OFFSET,
    LUT_PER_WEIGHT_BIT,
    LUTRAM_MAX_BITS,
    _memory_bram,
    _stream_schedule,
    _with_stream_aliases,
)

__all__ = list(_model_all)
