"""Planning the layers that only move values: the input, Transpose, Reshape and ZeroPadding.

Each returns a `_Step` whose function rearranges the integers (a view where possible) and casts them to
the layer's result type; ZeroPadding (inserted by hls4ml before a padded io_stream conv) adds zeros of
result_t around the cast input. No arithmetic beyond `_cast`, hence one small module for all four.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn.functional as F

from edgekd.hls.emulate_cast import _cast, _Step, _Tensor
from edgekd.hls.emulate_fixed import FixedType, UnsupportedLayerError, _result_type
from edgekd.hls.emulate_int import _is_torch


def plan_input(layer: Any, base: dict) -> _Step:
    """The graph input: its values are converted from double before the plan runs (`Emulator.predict`)."""
    t = _result_type(layer)
    shape = tuple(int(d) for d in layer.get_output_variable().shape)

    def fn_input(x: _Tensor, t=t) -> _Tensor:
        return x  # converted from double in predict()

    return _Step(base["name"], layer.class_name, "input", t, {"shape": list(shape)}, fn_input, [], base["outputs"])


def plan_transpose(layer: Any, t: FixedType, base: dict) -> _Step:
    """Permute the axes after the batch axis (``perm``), then cast to result_t."""
    perm = [int(p) for p in layer.get_attr("perm")]

    def fn_t(x: _Tensor, perm=perm, t=t) -> _Tensor:
        axes = [0] + [p + 1 for p in perm]
        data = x.data.permute(*axes) if _is_torch(x.data) else np.transpose(x.data, axes)
        return _cast(_Tensor(data, x.frac, x.lo, x.hi), t)

    return _Step(base["name"], layer.class_name, "transpose", t, {"perm": perm}, fn_t, base["inputs"], base["outputs"])


def plan_reshape(layer: Any, t: FixedType, base: dict) -> _Step:
    """Reshape to the layer's output shape (C order, like the C-simulation's arrays), then cast."""
    shape = tuple(int(d) for d in layer.get_output_variable().shape)

    def fn_r(x: _Tensor, shape=shape, t=t) -> _Tensor:
        data = x.data.reshape((x.data.shape[0], *shape))
        return _cast(_Tensor(data, x.frac, x.lo, x.hi), t)

    return _Step(base["name"], layer.class_name, "reshape", t, {"shape": list(shape)}, fn_r, base["inputs"],
                 base["outputs"])


def plan_zeropad(layer: Any, t: FixedType, base: dict) -> _Step:
    """hls4ml inserts ZeroPadding before a padded io_stream conv (``zeropad{1,2}d_cl``): zeros of
    result_t around the input cast to result_t. Casting first is the same (0 is exact in every type)."""
    name = layer.name
    if str(layer.get_attr("data_format", "channels_last")) != "channels_last":
        raise UnsupportedLayerError(name, "channels_first zero padding")
    two_d = layer.class_name.endswith("2D") or type(layer).__name__.endswith("2D")
    keys = ("pad_top", "pad_bottom", "pad_left", "pad_right") if two_d else ("pad_left", "pad_right")
    pads = [int(layer.get_attr(k, 0) or 0) for k in keys]
    out_shape = tuple(int(d) for d in layer.get_output_variable().shape)
    # channels-last (N, [H,] W, C): torch's pad lists the last dimension first
    torch_pad = (0, 0, pads[-2], pads[-1]) + ((pads[0], pads[1]) if two_d else ())
    np_pad = [(0, 0)] + ([(pads[0], pads[1])] if two_d else []) + [(pads[-2], pads[-1]), (0, 0)]

    def fn_zp(x: _Tensor, t=t) -> _Tensor:
        y = _cast(x, t)
        data = F.pad(y.data, torch_pad) if _is_torch(y.data) else np.pad(y.data, np_pad, constant_values=0)
        if tuple(data.shape[1:]) != out_shape:
            raise UnsupportedLayerError(name, f"zero padding output {tuple(data.shape[1:])} != {out_shape}")
        return _Tensor(data, y.frac, min(y.lo, 0), max(y.hi, 0))

    return _Step(name, layer.class_name, "zeropad", t, {"pads": pads}, fn_zp, base["inputs"], base["outputs"])
