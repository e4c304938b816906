"""Fold an input preamble (Transpose / Reshape / Flatten between the graph input and the first MatMul) into
that MatMul's weight rows, so the hardware takes the input flattened in its own memory order.

MLPs exported from image or feature tensors start with `Flatten`, `Reshape(1, -1)` or a `Transpose` then a
reshape (FINN's TFC takes (1, 1, 28, 28); channels-last exporters transpose first). hls4ml 1.3.0 keeps such
a preamble as io_stream Reshape/Transpose layers over a 3-D or 4-D input, which it computes wrongly (an
io_stream Reshape of a (1, 4, 4) input reads its first row four times: measured, 19% of outputs right).

The preamble only permutes the input's elements: y = flatten(P(x)) = x_flat[idx] for an index vector idx.
For y feeding (through an elementwise input quantizer with one scale) a MatMul with weights W, the output
is sum_j x_flat[idx[j]] W[j] = x_flat @ W' with W'[idx[j]] = W[j]: the same numbers added in the same
products, so the rewrite is exact. The graph input becomes (1, n) in the input's own (C) order; the
caller flattens given inputs the same way (`flatten_inputs`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

__all__ = ["fold_input_preamble", "flatten_inputs"]


def _attr(node, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def fold_input_preamble(model) -> dict | None:
    """Rewrite `model` (a cleaned qonnx ModelWrapper, in place) as the module docstring says. Returns the fold
    record {kind, nodes, into, detail} or None when the graph does not start that way."""
    graph = model.graph
    x = graph.input[0].name
    shape = [int(d) for d in model.get_tensor_shape(x)]
    if len(shape) <= 2:
        return None
    idx = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:])
    preamble, elementwise, tensor = [], [], x
    while True:
        cons = model.find_consumers(tensor) or []
        if len(cons) != 1:
            return None
        node = cons[0]
        if node.op_type == "Transpose":
            perm = list(_attr(node, "perm", []))
            if not perm or perm[0] != 0:
                return None
            idx = np.transpose(idx, [p - 1 for p in perm[1:]])
            preamble.append(node)
        elif node.op_type in ("Reshape", "Flatten"):
            out_shape = model.get_tensor_shape(node.output[0])
            if out_shape is None or len(out_shape) != 2:
                return None
            idx = idx.reshape(-1)
            preamble.append(node)
        elif node.op_type in ("Quant", "BipolarQuant"):  # elementwise with one scale: commutes with a permutation
            if any(model.get_initializer(i) is None or np.size(model.get_initializer(i)) != 1 for i in node.input[1:]):
                return None
            elementwise.append(node)
        elif node.op_type == "MatMul" and idx.ndim == 1 and node.input[0] == tensor:
            break
        else:
            return None
        tensor = node.output[0]
    if not preamble:
        return None
    matmul = node
    wq = model.find_producer(matmul.input[1])
    w_name = wq.input[0] if wq is not None and wq.op_type in ("Quant", "BipolarQuant") else matmul.input[1]
    w = model.get_initializer(w_name)
    if w is None or (wq is not None and len(model.find_consumers(wq.output[0]) or []) != 1):
        return None
    w_new = np.zeros_like(w)
    w_new[idx] = w
    model.set_initializer(w_name, w_new)
    n = idx.size
    for node in preamble:  # bypass: whoever read the permuted tensor reads the unpermuted one
        for c in model.find_consumers(node.output[0]) or []:
            c.input[list(c.input).index(node.output[0])] = node.input[0]
        graph.node.remove(node)
    for node in elementwise:
        model.set_tensor_shape(node.output[0], [1, n])
    graph.input.remove(graph.input[0])
    graph.input.insert(0, helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, n]))
    used = {i for nd in graph.node for i in nd.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    return {"kind": "input_preamble", "nodes": [nd.name for nd in preamble], "into": matmul.name,
            "detail": f"{' -> '.join(nd.op_type for nd in preamble)} of the {shape} input folded into "
                      f"{matmul.name}'s weight rows; the hardware takes the input flattened ({n} values, C order)"}


def flatten_inputs(x: np.ndarray, shape: list[int]) -> np.ndarray:
    """Inputs (N, *original shape) as the prepared model takes them, (N, *shape[1:]) (C order)."""
    x = np.asarray(x)
    if tuple(x.shape[1:]) == tuple(shape[1:]):
        return x
    if int(np.prod(x.shape[1:])) == int(np.prod(shape[1:])):
        return x.reshape(x.shape[0], *shape[1:])
    return x


_MOVES = ("Transpose", "Reshape", "Flatten")


def hoist_quants_above_reshapes(model) -> list[str]:
    """Move each Quant / BipolarQuant with scalar parameters above the Transpose / Reshape / Flatten feeding it
    (an elementwise op with one scale commutes with moving values: exact). For models hls4ml rescales: its
    io_stream ApplyAlpha after a Flatten alias reads the stream with the wrong packing (measured: a float-scale
    CNN's dense input wrong from the 5th value on). Returns the moved nodes' names; rewrites in place."""
    moved: list[str] = []
    changed = True
    while changed:
        changed = False
        for q in list(model.graph.node):
            if q.op_type not in ("Quant", "BipolarQuant"):
                continue
            if any(model.get_initializer(i) is None or np.size(model.get_initializer(i)) != 1 for i in q.input[1:]):
                continue
            p = model.find_producer(q.input[0])
            if p is None or p.op_type not in _MOVES or len(model.find_consumers(p.output[0]) or []) != 1:
                continue
            a, b, c = p.input[0], p.output[0], q.output[0]
            t = model.make_new_valueinfo_name()
            model.set_tensor_shape(t, model.get_tensor_shape(a))
            q.input[0], q.output[0] = a, t
            p.input[0], p.output[0] = t, c
            for vi in [v for v in model.graph.value_info if v.name == b]:
                model.graph.value_info.remove(vi)
            nodes = model.graph.node
            nodes.remove(q)
            nodes.insert(list(nodes).index(p), q)
            moved.append(q.name)
            changed = True
    return moved
