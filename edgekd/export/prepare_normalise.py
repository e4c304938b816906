"""Rewrite 2 of edgekd.export.prepare: a scalar affine input normalisation folded into the first MatMul / Conv
(`FoldInputNormalisation`).

The longest rewrite: it walks the chain between the graph input and the input quantizer, states when the
quantizer stays the identity on every hardware input, and rewrites weights, bias and the input quantizer.
"""

from __future__ import annotations

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
    _dynamic_input,
    _quant_params,
    _weight_quant,
    is_power_of_two,
    quant_values,
    remove_dead_nodes,
    set_attribute,
)

_SCALAR_OPS = ("Mul", "Div", "Add", "Sub")
_PASS_THROUGH = ("Flatten", "Reshape")


class FoldInputNormalisation(Transformation):
    """Fold a scalar affine input normalisation x -> a*x + c (a chain of Mul/Div/Add/Sub by constants between
    the graph input and the input quantizer Q) into the first MatMul/Conv after Q.

    Exact when: a is a positive power of two; Q is a constant ROUND quantizer with zero point 0, a scalar
    power-of-two scale s and no narrow range; c is a multiple of s, with c/s either 0 or the offset that
    turns Q's signed range into an unsigned one (or back), so that Q is the identity on every value of the
    hardware input type (grid s/a; see below) and clips nothing; Q feeds (through Flatten/Reshape only) one
    MatMul, or one Conv without padding, whose weights come from a constant ROUND Quant.

    The rewrite: x -> Q'(scale s/a, Q's width, signedness of the shifted range) -> layer with weights
    Quant(a*W; a*s_w) == a*Quant(W; s_w) and bias b + c * (sum of the quantized weights per output), the new
    bias on its own exact power-of-two grid. Q' is the new input quantizer: the identity on the inputs the
    hardware can receive, and the source of the input precision.
    """

    def __init__(self) -> None:
        super().__init__()
        self.folds: list[dict] = []
        self.skipped: list[dict] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        if self.folds or self.skipped:
            return model, False
        x = model.graph.input[0].name
        chain, a, c = [], 1.0, 0.0
        tensor = x
        while True:
            cons = _consumers(model, tensor)
            if len(cons) != 1:
                return model, False
            node = cons[0]
            if node.op_type not in _SCALAR_OPS:
                break
            idx = _dynamic_input(model, node)
            if idx is None:
                return model, False
            k = np.asarray(model.get_initializer(node.input[1 - idx]), dtype=np.float64)
            if k.size != 1:
                return model, False  # per-channel normalisation: left to the verdicts
            k = float(k.ravel()[0])
            if node.op_type == "Mul":
                a, c = a * k, c * k
            elif node.op_type == "Add":
                c = c + k
            elif node.op_type == "Sub":
                a, c = (a, c - k) if idx == 0 else (-a, k - c)
            elif node.op_type == "Div":
                if idx != 0 or k == 0:
                    return model, False
                a, c = a / k, c / k
            chain.append(node)
            tensor = node.output[0]
        if not chain:
            return model, False
        names = [n.name for n in chain]
        q = node
        if q.op_type != "Quant":
            self.skipped.append({"nodes": names, "reason": f"followed by {q.op_type}, not by an input quantizer"})
            return model, False
        p = _quant_params(model, q)
        why = self._why_not(model, q, p, a, c)
        layer, path = None, []
        if why is None:
            t = q.output[0]
            while True:
                cons = _consumers(model, t)
                if len(cons) != 1:
                    why = "the input quantizer feeds more than one node"
                    break
                if cons[0].op_type in _PASS_THROUGH:
                    path.append(cons[0])
                    t = cons[0].output[0]
                    continue
                layer = cons[0]
                break
            if layer is not None and layer.op_type not in ("MatMul", "Conv"):
                why, layer = f"the first layer is {layer.op_type}, not MatMul/Conv", None
            if layer is not None and layer.op_type == "Conv" and any(_attr(layer, "pads", [0]) or [0]):
                why, layer = "the first Conv pads its input (the padding would not be normalised)", None
        if why is None and layer is not None:
            why = self._fold(model, chain, q, p, layer, a, c)
        if why is not None:
            self.skipped.append({"nodes": names + [q.name], "reason": why})
            return model, False
        self.folds.append({
            "kind": "input_normalisation", "nodes": names, "into": layer.name,
            "detail": f"x*{a:g} + {c:g} folded into {layer.name}'s weights and bias; input grid {p['scale'].item() / a:g}",
        })
        return model, True

    @staticmethod
    def _why_not(model: ModelWrapper, q, p: dict | None, a: float, c: float) -> str | None:
        if p is None:
            return "the input quantizer's scale/zero point/bit width are not constants"
        if not is_power_of_two(a):
            return f"the normalisation multiplies by {a:g}, not a positive power of two"
        if p["scale"].size != 1 or not is_power_of_two(p["scale"]):
            return "the input quantizer's scale is not one power of two"
        if np.any(p["zero_point"] != 0) or p["narrow"] or p["rounding"] != "ROUND":
            return "the input quantizer has a zero point, narrow range or a rounding other than ROUND"
        s, b = float(p["scale"].item()), int(p["bits"])
        z = c / s
        half = 2.0 ** (b - 1)
        if z not in (0.0, -half if p["signed"] else half):
            return (f"the offset {c:g} is not 0 or half the quantizer's range ({half * s:g}), so the quantizer "
                    "would clip inputs the hardware input type can hold")
        return None

    @staticmethod
    def _fold(model: ModelWrapper, chain: list, q, p: dict, layer, a: float, c: float) -> str | None:
        wq = _weight_quant(model, layer)
        if wq is None:
            return f"{layer.name}'s weights do not come from a constant ROUND Quant"
        wnode, wp, w = wq
        if len(_consumers(model, wnode.output[0])) != 1:
            return f"{layer.name}'s weight quantizer is shared"
        w_int = quant_values(w, wp)  # the quantized weights the original model uses
        # bias of the layer: Conv input 2, or an Add with a constant right after the MatMul
        bias_add = None
        if layer.op_type == "Conv":
            shift = c * w_int.reshape(w_int.shape[0], -1).sum(axis=1)
            old_bias = _const_value(model, layer.input[2]) if len(layer.input) > 2 else np.zeros(shift.shape)
            if old_bias is None:
                return f"{layer.name}'s bias is neither constant nor a constant Quant"
        else:
            shift = c * w_int.sum(axis=0)
            cons = _consumers(model, layer.output[0])
            found = _add_with_const(model, cons[0]) if len(cons) == 1 else None
            old_bias = np.zeros(shift.shape)
            if found is not None:
                bias_add, old_bias = cons[0], found[1]
        new_bias = np.asarray(old_bias, dtype=np.float64).reshape(shift.shape) + shift
        bias_t = _const_quant(model, f"{layer.name}_folded_bias", new_bias.astype(np.float64))
        if bias_t is None:
            return f"the folded bias of {layer.name} needs more than {_MAX_CONST_BITS} bits"
        # weights: Quant(a*W; a*s_w) == a*Quant(W; s_w) for a power of two
        model.set_initializer(wnode.input[0], (w * a).astype(np.float32))
        model.set_initializer(wnode.input[1], (wp["scale"] * a).astype(np.float32))
        # bias
        if layer.op_type == "Conv":
            if len(layer.input) > 2:
                layer.input[2] = bias_t
            else:
                layer.input.append(bias_t)
        elif bias_add is not None:
            bias_add.input[1 - _add_with_const(model, bias_add)[0]] = bias_t
        else:
            out = layer.output[0]
            mid = model.make_new_valueinfo_name()
            layer.output[0] = mid
            model.set_tensor_shape(mid, model.get_tensor_shape(out))
            idx = list(model.graph.node).index(layer)
            model.graph.node.insert(idx + 1, helper.make_node("Add", [mid, bias_t], [out], name=f"{layer.name}_bias"))
        # input quantizer Q' on the hardware input grid s/a, then drop the chain
        s = float(p["scale"].item())
        signed = p["signed"] if c == 0 else not p["signed"]
        q.input[0] = model.graph.input[0].name
        model.set_initializer(q.input[1], np.asarray(s / a, dtype=np.float32))
        set_attribute(q, "signed", int(signed))
        for n in chain:
            model.graph.node.remove(n)
        remove_dead_nodes(model)
        return None
