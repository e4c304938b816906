"""Rewrite 1 of edgekd.export.prepare: trailing Softmax / LogSoftmax / ArgMax / TopK become a host
post-processing stage (`SplitHostPostprocessing`), and the host applies it (`apply_host_postprocessing`).

The only rewrite that is exact by construction rather than by a condition on the weights; its host half
(`apply_host_postprocessing`) is also what edgekd.report.byo applies to hardware outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from edgekd.export.prepare_graph import _attr, _consumers, _producer

HOST_OPS = ("Softmax", "LogSoftmax", "ArgMax", "TopK")
# trailing elementwise ops with a constant operand (any broadcast shape) and a trailing bipolar sign: exact on
# the host in float32 (the same IEEE operation ONNX Runtime does); on the FPGA hls4ml would run the arithmetic
# as a fixed-point ApplyAlpha and fuse a sign after it into a layer with no io_stream implementation
HOST_ELEMENTWISE = ("Mul", "Div", "Add", "Sub", "BipolarQuant")


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
        if node is None or node.op_type not in HOST_OPS + HOST_ELEMENTWISE or (
                len(model.graph.output) > 1 and node.op_type != "TopK"):
            return model, False
        entry: dict[str, Any] = {"name": node.name, "op_type": node.op_type, "axis": int(_attr(node, "axis", -1))}
        if node.op_type in HOST_ELEMENTWISE:
            dyn = [i for i, t in enumerate(node.input) if model.get_initializer(t) is None]
            if len(dyn) != 1 or (node.op_type == "BipolarQuant" and dyn != [0]):
                return model, False
            if node.op_type != "BipolarQuant" and not self._after_layer(model, node.input[dyn[0]]):
                return model, False
            const = np.asarray(model.get_initializer(node.input[1 - dyn[0]]), dtype=np.float32)
            entry.update({"const": const.tolist(), "const_shape": list(const.shape), "dynamic_input": dyn[0]})
            del entry["axis"]
            node_input = node.input[dyn[0]]
        else:
            node_input = node.input[0]
        if model.get_initializer(node_input) is not None or len(_consumers(model, node_input)) != 1:
            return model, False

        if node.op_type == "ArgMax":
            entry["keepdims"] = int(_attr(node, "keepdims", 1))
        if node.op_type == "TopK":
            k = model.get_initializer(node.input[1])
            if k is None:
                return model, False
            entry["k"] = int(np.ravel(k)[0])
            entry["output"] = "indices" if out.name == node.output[1] else "values"
            entry["largest"] = int(_attr(node, "largest", 1))
        src = node_input
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

    @staticmethod
    def _after_layer(model: ModelWrapper, tensor: str) -> bool:
        """Elementwise arithmetic goes to the host only after the last layer's accumulator (MatMul / Conv,
        possibly through other such arithmetic): a bias Add right after a layer stays in the layer only when it
        is followed by more layers, which a trailing op is not."""
        node = _producer(model, tensor)
        while node is not None and node.op_type in ("Mul", "Div", "Add", "Sub"):
            dyn = [t for t in node.input if model.get_initializer(t) is None]
            if len(dyn) != 1:
                return False
            node = _producer(model, dyn[0])
        return node is not None and node.op_type in ("MatMul", "Conv", "Gemm", "BatchNormalization")


def apply_host_postprocessing(y: np.ndarray, host_ops: list[dict]) -> np.ndarray:
    """Apply the host stage recorded by `SplitHostPostprocessing` to hardware outputs `y` (N, ...)."""
    y = np.asarray(y, dtype=np.float64)
    for op in host_ops:
        if op["op_type"] in HOST_ELEMENTWISE:
            y = _elementwise(y, op)
            continue
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


def _elementwise(y: np.ndarray, op: dict) -> np.ndarray:
    """One trailing elementwise op in float32, as ONNX Runtime computes it (then widened back to float64)."""
    v = np.asarray(y, dtype=np.float32)
    c = np.asarray(op["const"], dtype=np.float32).reshape(op["const_shape"])
    if op["op_type"] == "BipolarQuant":
        return (np.where(v >= 0, np.float32(1), np.float32(-1)) * c).astype(np.float64)
    a, b = (v, c) if op.get("dynamic_input", 0) == 0 else (c, v)
    fn = {"Mul": np.multiply, "Div": np.divide, "Add": np.add, "Sub": np.subtract}[op["op_type"]]
    return fn(a, b, dtype=np.float32).astype(np.float64)
