"""Analytical latency / throughput / resource estimates for hls4ml 1.3.0 designs (source: "estimate").

The model follows the loop structure of hls4ml's Vivado/Vitis templates (`nnet_utils/*.h`):

- io_parallel: each layer is a pipelined block; layers run one after another, so the design latency is
  the SUM of layer latencies and the initiation interval is the largest layer II. A Dense layer is an
  unrolled multiply + adder tree whose II is the reuse factor; a Conv layer (im2col) evaluates its kernel
  once per output pixel (`n_partitions = out_pixels / parallelization_factor`), so its II is
  `n_partitions * reuse_factor`.
- io_stream: every layer is a process in a DATAFLOW region connected by FIFOs (one item per pixel, holding
  all channels). A layer reads one input item per `item_ii` cycles (a stock hls4ml 1.3.0 convolution: the
  latency of its INLINE OFF output buffer; pooling 2; most others 1: edgekd.estimate.timing), so the layers OVERLAP: the design latency is the time at which the last item leaves the last
  layer, computed with a streaming recurrence (see `_stream_schedule`), not the plain sum. For a CNN this is
  dominated by streaming the input pixels through the slowest stage, plus the pipeline depths.

Every formula and what the model ignores is written down in docs/latency_model.md; tests in
tests/estimate/test_latency.py pin the hand-derived cycle counts. Figures are estimates: compare them with a
vendor report (`edgekd.report.vendor`) when one exists.

Inputs are plain `LayerSpec` records (JSON-serialisable), so the estimator can be tested and calibrated
without hls4ml; `layers_from_hls_model` builds them from a converted hls4ml `ModelGraph`.

This module makes the whole-design estimate; the package edgekd.estimate re-exports its public names.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from edgekd.errors import EstimateError  # noqa: F401 - defined under everything, raised here
from edgekd.estimate.cost import estimate_layer
from edgekd.estimate.fit import fits  # noqa: F401
from edgekd.estimate.layers import (  # noqa: F401
    FREE_TYPES,
    IOType,
    LayerCost,
    LayerSpec,
    layer_specs_from_dicts,
    layers_from_hls_model,
)
from edgekd.estimate.resources import (  # noqa: F401 - the calibrated constants, documented there
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
    LUT_CONST_MAX_BITS,
    LUT_PER_DIGIT_BIT,
    LUT_PER_PRODUCT_OFFSET,
    LUT_PER_WEIGHT_BIT,
    LUTRAM_MAX_BITS,
    _fifo_bram,
    _memory_bram,
)
from edgekd.estimate.stream import _stream_schedule, _with_stream_aliases, input_arrival_times, input_items

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


# --- whole design ------------------------------------------------------------------------------------------

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
        # + the write of the last output item, + the last process's loop exit (csynth counts it; the output is out)
        total = math.ceil(last) + 1 + costs[-1].exit
        ii = math.ceil(max(busy, max(c.ii for c in costs))) + 1
        # FIFOs between layers: hls4ml's default depth is the number of pixels of the tensor
        fifo_bram = fifo_lut = 0
        for spec, c in zip(specs[:-1], costs[:-1]):
            if c.cycles == 0 and spec.type in FREE_TYPES:
                continue  # an alias or a wire: no FIFO of its own
            b, l = _fifo_bram(spec.out_pixels, spec.out_shape[-1] * spec.result_bits)
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
