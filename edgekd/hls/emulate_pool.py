"""Planning the layers whose only operation is a maximum: ReLU / linear activations and max pooling.

ReLU is ``x > 0 ? x : 0`` cast to result_t (fused into the cast's clamp where that is exact), linear is
the cast alone; max pooling takes the maximum over each window (separably, on strided views) and casts it.
Other activations, average pooling and padded pooling are refused with `UnsupportedLayerError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgekd.hls.emulate_cast import _cast, _Step, _Tensor
from edgekd.hls.emulate_fixed import FixedType, UnsupportedLayerError
from edgekd.hls.emulate_int import _is_torch


def plan_activation(layer: Any, t: FixedType, base: dict) -> _Step:
    """linear: the cast to result_t; relu: ``x > 0 ? x : 0`` then the cast; anything else is refused."""
    name, cls, inputs, outputs = base["name"], layer.class_name, base["inputs"], base["outputs"]
    act = str(layer.get_attr("activation", "")).lower()
    if act not in ("linear", "relu"):
        raise UnsupportedLayerError(name, f"activation '{act}' (only linear and relu are emulated)")
    if act == "linear":
        return _Step(name, cls, "linear", t, {}, lambda x, t=t: _cast(x, t), inputs, outputs)

    def fn_relu(x: _Tensor, t=t) -> _Tensor:
        return _cast(x, t, relu=True)  # x > 0 ? x : 0, then the cast (fused where exact)

    return _Step(name, cls, "relu", t, {}, fn_relu, inputs, outputs)


def plan_pool(layer: Any, t: FixedType, base: dict) -> _Step:
    """Max pooling without padding: the window maximum, cast to result_t."""
    name = layer.name
    op = str(layer.get_attr("pool_op", "Max"))
    if op != "Max":
        raise UnsupportedLayerError(name, f"{op} pooling (only max pooling is emulated)")
    two_d = layer.get_attr("pool_height") is not None
    pads = [int(layer.get_attr(k, 0) or 0) for k in ("pad_top", "pad_bottom", "pad_left", "pad_right")]
    if any(pads):
        raise UnsupportedLayerError(name, f"pooling with padding {pads}")
    if str(layer.get_attr("data_format", "channels_last")) != "channels_last":
        raise UnsupportedLayerError(name, "channels_first pooling")
    if two_d:
        k = (int(layer.get_attr("pool_height")), int(layer.get_attr("pool_width")))
        s = (int(layer.get_attr("stride_height")), int(layer.get_attr("stride_width")))
    else:
        k = (int(layer.get_attr("pool_width")),)
        s = (int(layer.get_attr("stride_width")),)
    out_shape = tuple(int(d) for d in layer.get_output_variable().shape)

    def fn_pool(x: _Tensor, k=k, s=s, t=t, out_shape=out_shape) -> _Tensor:
        data = x.data
        y = _window_max(data, k, s)
        if tuple(y.shape[1:]) != out_shape:
            raise UnsupportedLayerError(base["name"], f"pooling output {tuple(y.shape[1:])} != {out_shape}")
        return _cast(_Tensor(y, x.frac, x.lo, x.hi), t)

    info = {"pool": list(k), "stride": list(s)}
    return _Step(name, layer.class_name, "maxpool", t, info, fn_pool, base["inputs"], base["outputs"])


def _window_max(x: Any, k: tuple[int, ...], s: tuple[int, ...]) -> Any:
    """Max over k windows with stride s on (N, *spatial, C), one spatial axis at a time.

    Exact: the maximum over a rectangle is the maximum over its columns of the maxima over its rows, and
    max only ever returns one of its inputs. Separable passes touch (k0-1)*oh*W + (k1-1)*oh*ow elements
    instead of (k0*k1-1)*oh*ow, on strided views (no copies of the input).
    """
    for axis, (kk, ss) in enumerate(zip(k, s), start=1):
        n_out = (x.shape[axis] - kk) // ss + 1
        lead = (slice(None),) * axis

        def part(i: int, lead=lead, ss=ss, n_out=n_out) -> Any:
            return x[lead + (slice(i, i + ss * (n_out - 1) + 1, ss),)]

        if kk == 1:
            x = part(0)
            continue
        if _is_torch(x):
            out = torch.maximum(part(0), part(1))
            for i in range(2, kk):
                torch.maximum(out, part(i), out=out)
        else:
            out = np.maximum(part(0), part(1))
            for i in range(2, kk):
                out = np.maximum(out, part(i))
        x = out
    return x
