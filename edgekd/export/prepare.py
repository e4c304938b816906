"""Graph preparation of a bring-your-own QONNX model: rewrites that keep the hardware bit-exact.

Each rewrite is a qonnx `Transformation` with one job. Contract shared by all of them:

* input: a QONNX model after `cleanup_model` and `GemmToMatMul`, still channels-first (run them before
  `ConvertToChannelsLastAndClean`);
* a rewrite changes the graph only where its exactness condition holds (stated in its docstring); elsewhere
  it leaves the nodes alone and records why in `skipped`, so the verdicts can call them approximate;
* every rewrite it makes is recorded in `folds` ({kind, nodes, into, detail}) for the report;
* the conditions are necessary, not a proof: `edgekd.export.byo.prepare_model` runs the original and the
  prepared model on the same inputs and accepts the preparation only when every output is bit-equal.

Transformations:
    SplitHostPostprocessing   trailing Softmax / LogSoftmax / ArgMax / TopK -> host post-processing stage
    FoldInputNormalisation    scalar Mul/Div/Add/Sub before the input quantizer -> first layer's weights/bias
    FoldBatchNorm             BatchNormalization after MatMul/Conv -> that layer's weights and bias
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

__all__ = [
    "HOST_OPS",
    "FoldBatchNorm",
    "FoldInputNormalisation",
    "SplitHostPostprocessing",
    "apply_host_postprocessing",
    "exact_grid",
    "is_power_of_two",
    "quant_values",
]

HOST_OPS = ("Softmax", "LogSoftmax", "ArgMax", "TopK")
_QUANT_DOMAIN = "qonnx.custom_op.general"
# widest fixed-point constant a fold may create; beyond it the fold is refused (not exact in practice)
_MAX_CONST_BITS = 32


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def is_power_of_two(values: Any) -> bool:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return False
    m, _ = np.frexp(v)
    return bool(np.all(m == 0.5))


def exact_grid(values: np.ndarray) -> tuple[int, int] | None:
    """(fractional bits f, signed bit width b) of the coarsest power-of-two grid 2^-f holding every value
    exactly, or None when that needs more than `_MAX_CONST_BITS` bits."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):
        return None
    f = 0
    nz = v[v != 0]
    if nz.size:
        for f in range(-64, 80):
            scaled = nz * 2.0 ** f
            if np.all(scaled == np.round(scaled)):
                break
        else:
            return None
    ints = np.round(v * 2.0 ** f)
    max_abs = float(np.max(np.abs(ints), initial=0.0))
    bits = max(2, int(math.ceil(math.log2(max_abs + 1))) + 1)
    if bits > _MAX_CONST_BITS:
        return None
    return f, bits


def _attr(node, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _quant_params(model: ModelWrapper, node) -> dict | None:
    """Constant parameters of a Quant node, or None when any is computed at run time."""
    scale, zp, bits = (model.get_initializer(node.input[i]) for i in (1, 2, 3))
    if scale is None or zp is None or bits is None:
        return None
    rounding = _attr(node, "rounding_mode", b"ROUND")
    return {
        "scale": np.asarray(scale, dtype=np.float64),
        "zero_point": np.asarray(zp, dtype=np.float64),
        "bits": float(np.ravel(bits)[0]),
        "signed": bool(_attr(node, "signed", 1)),
        "narrow": bool(_attr(node, "narrow", 0)),
        "rounding": rounding.decode() if isinstance(rounding, bytes) else str(rounding),
    }


def quant_values(x: np.ndarray, p: dict) -> np.ndarray:
    """QONNX Quant (ROUND = half to even) of `x` with the parameters of `_quant_params`, in float64."""
    from qonnx.custom_op.general.quant import quant

    return np.asarray(
        quant(np.asarray(x, dtype=np.float64), p["scale"], p["zero_point"], np.asarray(p["bits"]), p["signed"],
              p["narrow"], p["rounding"]), dtype=np.float64)


def _const_quant(model: ModelWrapper, name: str, values: np.ndarray) -> str | None:
    """Initializer `values` behind a Quant node on its exact power-of-two grid (an identity on them, which
    tells hls4ml the precision); returns the Quant's output tensor, or None when the grid is too wide."""
    grid = exact_grid(values)
    if grid is None:
        return None
    f, bits = grid
    raw = model.make_new_valueinfo_name()
    model.set_initializer(raw, np.asarray(values, dtype=np.float32))
    for suffix, value in (("scale", np.float32(2.0 ** -f)), ("zp", np.float32(0.0)), ("bits", np.float32(bits))):
        model.set_initializer(f"{name}_{suffix}", np.asarray(value, dtype=np.float32))
    out = f"{name}_out"
    node = helper.make_node(
        "Quant", [raw, f"{name}_scale", f"{name}_zp", f"{name}_bits"], [out], name=name, domain=_QUANT_DOMAIN,
        signed=1, narrow=0, rounding_mode="ROUND",
    )
    model.graph.node.insert(0, node)
    model.set_tensor_shape(out, list(np.shape(values)))
    return out


def remove_dead_nodes(model: ModelWrapper) -> None:
    """Drop nodes whose outputs nobody reads (a replaced bias quantizer); hls4ml chokes on dangling constants."""
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        if not dead:
            return
        for n in dead:
            model.graph.node.remove(n)


def _producer(model: ModelWrapper, tensor: str):
    return model.find_producer(tensor)


def _consumers(model: ModelWrapper, tensor: str) -> list:
    return list(model.find_consumers(tensor) or [])


def _dynamic_input(model: ModelWrapper, node) -> int | None:
    """Index of the single non-constant input of a two-input node (the other is an initializer)."""
    consts = [model.get_initializer(i) is not None for i in node.input]
    if len(node.input) != 2 or sum(consts) != 1:
        return None
    return consts.index(False)


def _const_value(model: ModelWrapper, tensor: str) -> np.ndarray | None:
    """Value of a constant tensor: an initializer, or a Quant node applied to one."""
    init = model.get_initializer(tensor)
    if init is not None:
        return np.asarray(init, dtype=np.float64)
    q = _producer(model, tensor)
    if q is None or q.op_type != "Quant" or model.get_initializer(q.input[0]) is None:
        return None
    p = _quant_params(model, q)
    return None if p is None else quant_values(model.get_initializer(q.input[0]), p)


def _add_with_const(model: ModelWrapper, node) -> tuple[int, np.ndarray] | None:
    """(index of the dynamic input, constant value) of an Add of a tensor and a constant, else None."""
    if node is None or node.op_type != "Add" or len(node.input) != 2:
        return None
    values = [_const_value(model, t) for t in node.input]
    if sum(v is not None for v in values) != 1:
        return None
    dyn = 0 if values[0] is None else 1
    return dyn, values[1 - dyn]


def _weight_quant(model: ModelWrapper, layer) -> tuple[Any, dict, np.ndarray] | None:
    """(Quant node, params, float initializer) feeding the weight input of a MatMul/Conv."""
    q = _producer(model, layer.input[1])
    if q is None or q.op_type != "Quant":
        return None
    p = _quant_params(model, q)
    w = model.get_initializer(q.input[0])
    if p is None or w is None or p["rounding"] != "ROUND":
        return None
    return q, p, np.asarray(w, dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# 1. host post-processing
# --------------------------------------------------------------------------------------------------


class SplitHostPostprocessing(Transformation):
    """Remove trailing Softmax / LogSoftmax / ArgMax / TopK nodes: the hardware returns their input.

    Exact by construction (the hardware computes the graph up to the removed node; the host applies the
    removed ops with `apply_host_postprocessing`). hls4ml's Softmax is a lookup table and ArgMax/TopK have
    no converter, so on the FPGA they could only be approximate or refused.
    Records `host_ops` ([{name, op_type, axis, k, output}], in the order the host applies them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.host_ops: list[dict] = []
        self.folds: list[dict] = []

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        out = model.graph.output[0]
        node = _producer(model, out.name)
        if node is None or node.op_type not in HOST_OPS or len(model.graph.output) > 1 and node.op_type != "TopK":
            return model, False
        if model.get_initializer(node.input[0]) is not None or len(_consumers(model, node.input[0])) != 1:
            return model, False
        entry: dict[str, Any] = {"name": node.name, "op_type": node.op_type, "axis": int(_attr(node, "axis", -1))}
        if node.op_type == "ArgMax":
            entry["keepdims"] = int(_attr(node, "keepdims", 1))
        if node.op_type == "TopK":
            k = model.get_initializer(node.input[1])
            if k is None:
                return model, False
            entry["k"] = int(np.ravel(k)[0])
            entry["output"] = "indices" if out.name == node.output[1] else "values"
            entry["largest"] = int(_attr(node, "largest", 1))
        src = node.input[0]
        shape = model.get_tensor_shape(src)
        model.graph.node.remove(node)
        while len(model.graph.output):
            model.graph.output.pop()
        for vi in [v for v in model.graph.value_info if v.name == src]:
            model.graph.value_info.remove(vi)  # a graph output must not also be an intermediate value_info
        model.graph.output.append(helper.make_tensor_value_info(src, TensorProto.FLOAT, shape))
        self.host_ops.insert(0, entry)
        self.folds.append({"kind": "host", "nodes": [node.name], "into": "host post-processing",
                           "detail": f"{node.op_type} applied by the host driver and the report's metrics"})
        return model, True  # repeat: a Softmax before an ArgMax goes to the host too


def apply_host_postprocessing(y: np.ndarray, host_ops: list[dict]) -> np.ndarray:
    """Apply the host stage recorded by `SplitHostPostprocessing` to hardware outputs `y` (N, ...)."""
    y = np.asarray(y, dtype=np.float64)
    for op in host_ops:
        axis = op["axis"]
        if op["op_type"] == "Softmax":
            e = np.exp(y - y.max(axis=axis, keepdims=True))
            y = e / e.sum(axis=axis, keepdims=True)
        elif op["op_type"] == "LogSoftmax":
            m = y.max(axis=axis, keepdims=True)
            y = y - m - np.log(np.exp(y - m).sum(axis=axis, keepdims=True))
        elif op["op_type"] == "ArgMax":
            y = np.argmax(y, axis=axis)
            if op.get("keepdims", 1):
                y = np.expand_dims(y, axis)
        elif op["op_type"] == "TopK":
            order = np.argsort(-y if op.get("largest", 1) else y, axis=axis, kind="stable")
            idx = np.take(order, np.arange(op["k"]), axis=axis)
            y = idx if op.get("output") == "indices" else np.take_along_axis(y, idx, axis=axis)
    return y


# --------------------------------------------------------------------------------------------------
# 2. input normalisation
# --------------------------------------------------------------------------------------------------

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
        for n in list(q.attribute):
            if n.name == "signed":
                q.attribute.remove(n)
        q.attribute.append(helper.make_attribute("signed", int(signed)))
        for n in chain:
            model.graph.node.remove(n)
        remove_dead_nodes(model)
        return None


# --------------------------------------------------------------------------------------------------
# 3. BatchNormalization after MatMul / Conv
# --------------------------------------------------------------------------------------------------


class FoldBatchNorm(Transformation):
    """Fold BatchNormalization (eval mode) that directly follows a MatMul / Conv (optionally via its bias Add)
    into that layer.

    Exact when every per-channel factor a = gamma / sqrt(var + eps) (computed in float32, as ONNX Runtime
    does) is a positive power of two, the layer's weights come from a constant ROUND Quant, and the folded
    bias a*b + beta - a*mean fits an exact power-of-two grid of at most 32 bits. The folded weights a*Wq are
    on the grid s_w * min(a) and are fed through one Quant of that scale, widened by log2(max a / min a)
    bits, which is the identity on them (per-tensor scale: hls4ml maps it to a fixed-point type).
    A BatchNormalization that fails a condition stays (hls4ml runs it approximately) and goes to `skipped`.
    """

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
        for n in list(wnode.attribute):
            if n.name == "narrow":
                wnode.attribute.remove(n)
        wnode.attribute.append(helper.make_attribute("narrow", 0))
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
