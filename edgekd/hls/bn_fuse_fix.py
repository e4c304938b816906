"""A fix to hls4ml 1.3.0's FuseBatchNormalization for a per-position scale that is the same at every position.

hls4ml's QONNX flow turns a Quant's scale into an ApplyAlpha (a BatchNormalization) whose scale and bias can
come out with the layer's whole output shape, e.g. (2, 2, 4) after a stride-3 Conv (an AveragePool a float-scale
quantizer feeds, edgekd.export.prepare_conv). FuseBatchNormalization then multiplies that by the Conv's
(3, 3, 4, 4) weight and fails with "operands could not be broadcast together". When the values are the same at
every position (what a quantizer's scale is), they are one value per channel: reduced to that, the fuse is
exact. Anything else keeps hls4ml's own behaviour. For upstream: the same reduction (or a match() that rejects
a scale not broadcastable to the weight) in hls4ml/model/optimizer/passes/bn_fuse.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

_MARK = "_edgekd_per_channel_fix"


def per_channel(values: np.ndarray) -> np.ndarray | None:
    """`values` of shape (..., C) that are equal at every position -> shape (C,); otherwise None."""
    values = np.asarray(values)
    if values.ndim <= 1:
        return None
    flat = values.reshape(-1, values.shape[-1])
    return flat[0].copy() if np.array_equal(flat, np.broadcast_to(flat[0], flat.shape)) else None


@contextmanager
def bn_fuse_fixed() -> Iterator[None]:
    """hls4ml's FuseBatchNormalization with the fix, for the duration of the block (edgekd's conversions);
    outside it hls4ml is as released, so a plain-hls4ml baseline in the same process stays plain."""
    from hls4ml.model.optimizer.passes import bn_fuse

    cls = bn_fuse.FuseBatchNormalization
    original = cls.transform
    if getattr(original, _MARK, False):  # nested: already fixed
        yield
        return

    def transform(self: Any, model: Any, node: Any) -> bool:
        scale, bias = node.weights["scale"], node.weights["bias"]
        saved = scale.data, bias.data
        reduced = [per_channel(w.data) for w in (scale, bias)]
        if any(r is not None for r in reduced) and all(r is not None or w.data.ndim <= 1
                                                       for r, w in zip(reduced, (scale, bias))):
            scale.data = reduced[0] if reduced[0] is not None else scale.data
            bias.data = reduced[1] if reduced[1] is not None else bias.data
        fused = original(self, model, node)
        if not fused:  # the node stays: as hls4ml made it
            scale.data, bias.data = saved
        return fused

    setattr(transform, _MARK, True)
    cls.transform = transform
    try:
        yield
    finally:
        cls.transform = original
