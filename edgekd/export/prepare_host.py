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
