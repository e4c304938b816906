"""Rewrite 3 of edgekd.export.prepare: BatchNormalization after a MatMul / Conv folded into that layer
(`FoldBatchNorm`), when every per-channel factor is a power of two so the weights stay on a quantization grid.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from edgekd.export.prepare_graph import (
    _MAX_CONST_BITS,
    _add_with_const,
    _attr,
    _const_quant,
    _const_value,
    _consumers,
    _producer,
    _weight_quant,
    is_power_of_two,
    quant_values,
    remove_dead_nodes,
    set_attribute,
)


class BatchNormFolder(Transformation):
    """Each BatchNormalization offered once to `_fold` (None: folded; else why not, recorded in `skipped`)."""

    def __init__(self) -> None:
        super().__init__()
        self.folds: list[dict] = []
        self.skipped: list[dict] = []
        self._seen: set[str] = set()

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for bn in model.get_nodes_by_op_type("BatchNormalization"):
            if bn.name in self._seen:
                continue
            self._seen.add(bn.name)
            why = self._fold(model, bn)
            if why is None:
                return model, True
            self.skipped.append({"nodes": [bn.name], "reason": why})
        return model, False

    def _fold(self, model: ModelWrapper, bn) -> str | None:
        raise NotImplementedError


class FoldBatchNorm(BatchNormFolder):
    """Fold BatchNormalization (eval mode) that directly follows a MatMul / Conv (optionally via its bias Add)
    into that layer.

    Exact when every per-channel factor a = gamma / sqrt(var + eps) (computed in float32, as ONNX Runtime
    does) is a positive power of two, the layer's weights come from a constant ROUND Quant, and the folded
    bias a*b + beta - a*mean fits an exact power-of-two grid of at most 32 bits. The folded weights a*Wq are
    on the grid s_w * min(a) and are fed through one Quant of that scale, widened by log2(max a / min a)
    bits, which is the identity on them (per-tensor scale: hls4ml maps it to a fixed-point type).
    A BatchNormalization that fails a condition stays (hls4ml runs it approximately) and goes to `skipped`.
    """

    def _fold(self, model: ModelWrapper, bn) -> str | None:
        params = [model.get_initializer(t) for t in bn.input[1:5]]
        if any(v is None for v in params):
            return "its parameters are not constants"
        gamma, beta, mean, var = (np.asarray(v, dtype=np.float32) for v in params)
        eps = np.float32(_attr(bn, "epsilon", 1e-5))
        a32 = gamma / np.sqrt(var + eps)
        if not is_power_of_two(a32):
            bad = np.unique(a32[~np.isin(a32, a32[np.frexp(a32.astype(np.float64))[0] == 0.5])])[:3]
            return (f"its scale gamma/sqrt(var+eps) ({', '.join(f'{v:.6g}' for v in bad)}, ...) is not a power of "
                    "two, so folding it would put the weights off their quantization grid")
        a = a32.astype(np.float64)
        prod = _producer(model, bn.input[0])
        bias_add, old_bias = None, np.zeros(a.shape)
        found = _add_with_const(model, prod)
        if found is not None:
            bias_add, old_bias = prod, np.asarray(found[1], dtype=np.float64).reshape(a.shape)
            prod = _producer(model, prod.input[found[0]])
        if prod is None or prod.op_type not in ("MatMul", "Conv"):
            return "it does not follow a MatMul or Conv"
        layer = prod
        if len(_consumers(model, layer.output[0])) != 1 or (
                bias_add is not None and len(_consumers(model, bias_add.output[0])) != 1):
            return f"{layer.name}'s output also feeds other nodes"
        wq = _weight_quant(model, layer)
        if wq is None:
            return f"{layer.name}'s weights do not come from a constant ROUND Quant"
        wnode, wp, w = wq
        if wp["scale"].size != 1:
            return f"{layer.name}'s weight quantizer has per-channel scales"
        w_int = quant_values(w, wp)
        if layer.op_type == "Conv" and len(layer.input) > 2:
            conv_bias = _const_value(model, layer.input[2])
            if conv_bias is None:
                return f"{layer.name}'s bias is neither constant nor a constant Quant"
            old_bias = old_bias + conv_bias.reshape(a.shape)
        new_bias = a * old_bias + (beta.astype(np.float64) - a * mean.astype(np.float64))
        if layer.op_type == "MatMul":
            w_new = w_int * a.reshape(1, -1)
        else:
            w_new = w_int * a.reshape(-1, *([1] * (w_int.ndim - 1)))
        s_new = float(wp["scale"].item()) * float(a.min())
        extra = int(round(math.log2(float(a.max()) / float(a.min()))))
        bits_new = int(wp["bits"]) + extra
        if bits_new > _MAX_CONST_BITS:
            return f"the folded weights of {layer.name} need more than {_MAX_CONST_BITS} bits"
        bias_t = _const_quant(model, f"{layer.name}_bn_bias", new_bias)
        if bias_t is None:
            return f"the folded bias of {layer.name} needs more than {_MAX_CONST_BITS} bits"
        model.set_initializer(wnode.input[0], w_new.astype(np.float32))
        model.set_initializer(wnode.input[1], np.asarray(s_new, dtype=np.float32))
        model.set_initializer(wnode.input[3], np.asarray(bits_new, dtype=np.float32))
        set_attribute(wnode, "narrow", 0)
        out = bn.output[0]
        if layer.op_type == "Conv":
            if len(layer.input) > 2:
                layer.input[2] = bias_t
            else:
                layer.input.append(bias_t)
            layer.output[0] = out
            if bias_add is not None:
                model.graph.node.remove(bias_add)
        else:
            if bias_add is None:
                bias_add = helper.make_node("Add", [layer.output[0], bias_t], [out], name=f"{layer.name}_bias")
                model.graph.node.insert(list(model.graph.node).index(layer) + 1, bias_add)
            else:
                bias_add.input[1 - found[0]] = bias_t
                bias_add.output[0] = out
        model.graph.node.remove(bn)
        remove_dead_nodes(model)
        self.folds.append({"kind": "batchnorm", "nodes": [bn.name], "into": layer.name,
                           "detail": f"per-channel factors {sorted(set(a.tolist()))[:4]} (powers of two) and shift "
                                     f"folded into {layer.name}'s weights and bias"})
        return None


class ChannelScalesIntoBatchNorm(Transformation):
    """A MatMul whose weights have per-output-channel float scales (brevitas' per-channel weight quantizers, e.g.
    the zoo's kwsmlp_w3a3) followed by a BatchNormalization: the weights become their integer codes (scale 1,
    exact) and each channel's scale moves into the BatchNormalization's factor.

    hls4ml 1.3.0 cannot move per-channel weight scales below a MatMul ('Failed to propagate quantization scales
    down MatMul node') and then fails with an IndexError; after this rewrite it sees integer weights and one
    BatchNormalization, which it runs in fixed point. Not bit-exact: the same real-number function, but float32
    rounds s_c * (x . k) and (s_c * x) . k differently, so an activation quantizer downstream can differ at an
    exact tie; `verify_preparation` measures how often (the fold is recorded as approximate).
    """

    def __init__(self) -> None:
        super().__init__()
        self.folds: list[dict] = []
        self.skipped: list[dict] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for bn in model.get_nodes_by_op_type("BatchNormalization"):
            layer = _producer(model, bn.input[0])
            if layer is None or layer.op_type != "MatMul" or len(_consumers(model, layer.output[0])) != 1:
                continue
            wq = _weight_quant(model, layer)
            if wq is None:
                continue
            wnode, wp, w = wq
            n_out = w.shape[-1]
            scale = wp["scale"]
            if scale.size != n_out or scale.size == 1 or np.any(wp["zero_point"] != 0) or \
                    len(_consumers(model, wnode.output[0])) != 1 or np.any(scale <= 0):
                continue
            if any(model.get_initializer(t) is None for t in bn.input[1:5]):
                continue
            s = scale.reshape(-1)
            codes = quant_values(w, wp) / s.reshape(1, -1)
            gamma, beta, mean, var = (np.asarray(model.get_initializer(t), dtype=np.float64) for t in bn.input[1:5])
            a = gamma / np.sqrt(var + float(_attr(bn, "epsilon", 1e-5)))
            model.set_initializer(wnode.input[0], np.round(codes).astype(np.float32))
            model.set_initializer(wnode.input[1], np.asarray(1.0, dtype=np.float32))
            model.set_initializer(bn.input[1], (a * s).astype(np.float32))
            model.set_initializer(bn.input[2], (beta - a * mean).astype(np.float32))
            model.set_initializer(bn.input[3], np.zeros_like(mean, dtype=np.float32))
            model.set_initializer(bn.input[4], np.ones_like(var, dtype=np.float32))
            set_attribute(bn, "epsilon", 0.0)
            from qonnx.core.datatype import DataType

            model.set_tensor_datatype(layer.output[0], DataType["FLOAT32"])
            self.folds.append({"kind": "channel_scales", "nodes": [wnode.name], "into": bn.name, "approximate": True,
                               "detail": f"{layer.name}'s per-channel weight scales ({s.min():.4g}..{s.max():.4g}) "
                                         f"moved into {bn.name} (integer weights; float32 rounding may differ)"})
            return model, True
        return model, False
