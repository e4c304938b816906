"""The io_stream dataflow model: which stream items each layer reads, when the network input items arrive, and
the recurrence that overlaps the layers (every layer a DATAFLOW process connected by FIFOs).

hls4ml 1.3.0 makes a flatten to one dimension an alias of its input stream, so the layer after it reads the
flatten's input items; a pixel-stream board's grabber completes input items in bursts (`input_arrival_times`);
`_stream_schedule` turns the per-layer streaming terms of edgekd.estimate.cost into the design's
latency and initiation interval (docs/latency_model.md). Only io_stream designs use it.
"""

from __future__ import annotations

import math

from edgekd.errors import EstimateError
from edgekd.estimate.layers import LayerCost, LayerSpec


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


def _last(c: LayerCost, n: int) -> int:
    """Index of the input item layer `c`'s last output depends on (`LayerCost.last_item`, else the last)."""
    return n - 1 if c.last_item is None else min(n - 1, max(0, int(c.last_item)))


def _stream_schedule(costs: list[LayerCost], input_interval: float = 1.0,
                     arrivals: list[float] | None = None) -> tuple[float, float, float]:
    """Dataflow recurrence over the layer chain; returns (first, last) output times of the last layer and
    the largest time any one process is busy with one image (its effective initiation interval).

    The input items of layer k arrive spread uniformly over [s, e] (the first and last output times of the
    layer before; the network input arrives one item per `input_interval` cycles). Layer k accepts one item
    per `item_ii` cycles, so it finishes reading at max(e, s + (N-1)*item_ii); it emits its first output
    once `fill_items` items are in, and its last `depth + tail` cycles after reading the item its last output
    depends on (`last_item`: a pool that floors 21 -> 10 emits its last output 22 items before its input ends). A process
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
            s, e = read_fill + c.depth, reads[_last(c, n)] + c.depth + c.tail
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
        j = _last(c, n)  # the item the last output depends on (a flooring pool: not the last one)
        read_needed = read_last if j == n - 1 else max(s + span * j / (n - 1), s + j * c.item_ii)
        s, e = read_fill + c.depth, read_needed + c.depth + c.tail
    if s is None:
        return 0.0, 0.0, 0.0
    return s, e, busy
