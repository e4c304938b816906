"""The input side of a bring-your-own QONNX model: what values the graph input takes (its datatype annotation)
and an input preamble that cannot fold into the first layer, run on the host instead.

Exporters put arithmetic between the graph input and the first quantizer or layer: FINN's TFC computes
``Quant(2 * reshape(x) - 1)``, brevitas' UNSW-NB15 MLP ``Gemm((x + 1) / 2)`` from a BIPOLAR-annotated input,
image models subtract a per-channel mean. `FoldInputNormalisation` folds a scalar affine preamble exactly into
the first layer when the grids allow it; everything else that is elementwise with constant operands (Mul,
Div, Add, Sub, any broadcast shape) and the Reshape / Flatten / Transpose around it is cut off here as a
**host input stage**: an ONNX sub-graph (the user's own nodes and constants, unchanged) that the host runs on
each input, followed by the first quantizer when one comes next. The hardware then takes the stage's output,
whose values lie on that quantizer's grid (or, without one, on the exact grid of the stage's image of the
annotated input datatype), so the hardware input type holds every value it can receive.

Exact by construction: the hardware graph starts at the tensor the stage computes (the quantizer stays in
the hardware graph and is the identity on its own grid); `edgekd.export.byo.verify_preparation` checks
original(x) == hardware(stage(x)) bit for bit on the build's inputs.

Inputs: the graph input's `finn_datatype` annotation (BIPOLAR, BINARY, INTn, UINTn, FIXED<w,i>) says which
values a user sends; without one, inputs are the preimage of the first quantizer's grid under the stage's
affine arithmetic (every code equally likely).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto, helper

from edgekd.export.prepare_graph import _attr, exact_grid

__all__ = ["InputDomain", "InputStage", "input_domain", "split_input_stage"]

_ARITH = ("Mul", "Div", "Add", "Sub")
_MOVES = ("Reshape", "Flatten", "Transpose")
_QUANTS = ("Quant", "BipolarQuant")
# a finite domain is enumerated to find the hardware input grid up to this many values
_MAX_ENUMERATE = 1 << 16


@dataclass(frozen=True)
class InputDomain:
    """The values one element of the graph input takes: k * scale for integer k in [lo, hi] (bipolar: +-1)."""

    name: str  # the annotation ('BIPOLAR', 'INT8', 'FIXED<8,3>') or how it was derived
    scale: float
    lo: int
    hi: int
    bipolar: bool = False

    def values(self) -> np.ndarray:
        if self.bipolar:
            return np.array([-1.0, 1.0]) * self.scale
        return np.arange(self.lo, self.hi + 1, dtype=np.float64) * self.scale

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if self.bipolar:
            return ((2 * rng.integers(0, 2, size=shape) - 1) * self.scale).astype(np.float32)
        return (rng.integers(self.lo, self.hi + 1, size=shape) * self.scale).astype(np.float32)


def input_domain(model) -> InputDomain | None:
    """The graph input's `finn_datatype` annotation as an `InputDomain`; None when absent or FLOAT32."""
    name = model.graph.input[0].name
    for qa in model.graph.quantization_annotation:
        if qa.tensor_name != name:
            continue
        for kv in qa.quant_parameter_tensor_names:
            if kv.key == "finn_datatype":
                return _domain_from_name(kv.value)
    return None


def _domain_from_name(text: str) -> InputDomain | None:
    from qonnx.core.datatype import DataType

    try:
        dt = DataType[text]
    except (KeyError, ValueError, AttributeError):
        return None
    if text == "BIPOLAR":
        return InputDomain(text, 1.0, -1, 1, bipolar=True)
    if dt.is_integer():
        return InputDomain(text, 1.0, int(dt.min()), int(dt.max()))
    if dt.is_fixed_point():
        sf = float(dt.scale_factor())
        return InputDomain(text, sf, int(round(dt.min() / sf)), int(round(dt.max() / sf)))
    return None


@dataclass
class InputStage:
    """The host input stage: `model` (a qonnx ModelWrapper) maps the user's input to the hardware input."""

    model: Any
    nodes: list[str]
    ops: list[str]
    quantizer: str | None  # the first quantizer, applied by the host and kept in the hardware graph
    arith: list[tuple[str, int, np.ndarray]]  # (op, index of the dynamic input, constant) in order, for inversion
    moves: list[tuple[str, Any]]  # ('Reshape', shape) / ('Transpose', perm) in chain order (None: an arith op)
    shapes: list[list[int]]  # shape of the tensor entering each chain node

    def run(self, x: np.ndarray) -> np.ndarray:
        from edgekd.export.byo_load import _run_original

        return np.asarray(_run_original(self.model, np.asarray(x, dtype=np.float32)), dtype=np.float32)

    def record(self) -> dict:
        return {"kind": "host_input", "nodes": self.nodes, "into": "host pre-processing",
                "detail": f"{' -> '.join(self.ops)} run by the host on each input (elementwise with constants, "
                          "not foldable exactly into the first layer); the hardware takes the result"
                          + (f", on the grid of {self.quantizer}" if self.quantizer else "")}

    def invert(self, y: np.ndarray) -> np.ndarray | None:
        """Inputs x with stage(x) == y, for y on the quantizer's grid (float64 inverse of the affine chain);
        None when an op has no inverse (multiplication by 0)."""
        x = np.asarray(y, dtype=np.float64)
        n = len(x)
        arith = list(self.arith)
        for (kind, arg), shape in zip(reversed(self.moves), reversed(self.shapes)):
            if kind is None:
                op, idx, c = arith.pop()
                if op == "Mul":
                    if np.any(c == 0):
                        return None
                    x = x / c
                elif op == "Div":
                    x = x * c if idx == 0 else c / x
                elif op == "Add":
                    x = x - c
                else:  # Sub
                    x = x + c if idx == 0 else c - x
            elif kind == "Transpose":
                x = np.transpose(x, np.argsort(arg))
            x = x.reshape(n, *shape[1:])
        return x.astype(np.float32)


def split_input_stage(model) -> InputStage | None:
    """Cut the preamble (see the module docstring) off `model` (a cleaned qonnx ModelWrapper, in place).
    Returns the stage, or None when the graph input meets no elementwise arithmetic before the first
    quantizer / layer (pure Reshape / Transpose preambles fold into the first layer's weights instead)."""
    from qonnx.core.modelwrapper import ModelWrapper

    graph = model.graph
    x = graph.input[0].name
    tensor, chain, arith, moves, shapes = x, [], [], [], []
    while True:
        cons = model.find_consumers(tensor) or []
        if len(cons) != 1:
            break
        node = cons[0]
        shape = model.get_tensor_shape(tensor)
        if node.op_type in _ARITH:
            consts = [model.get_initializer(i) for i in node.input]
            if len(node.input) != 2 or sum(c is not None for c in consts) != 1:
                break
            idx = 0 if consts[0] is None else 1
            arith.append((node.op_type, idx, np.asarray(consts[1 - idx], dtype=np.float64)))
            moves.append((None, None))
        elif node.op_type in _MOVES:
            if node.op_type == "Reshape" and model.get_initializer(node.input[1]) is None:
                break
            moves.append(("Transpose", list(_attr(node, "perm", []))) if node.op_type == "Transpose"
                         else ("Reshape", None))
        else:
            break
        shapes.append(list(shape))
        chain.append(node)
        tensor = node.output[0]
    if not arith:
        return None
    while chain and chain[-1].op_type in _MOVES:  # trailing moves stay in the hardware graph (folded later)
        chain.pop()
        moves.pop()
        shapes.pop()
    cons = model.find_consumers(tensor) or []
    quant = None
    tail = chain[-1].output[0]
    cons = model.find_consumers(tail) or []
    if len(cons) == 1 and cons[0].op_type in _QUANTS and all(
            model.get_initializer(i) is not None for i in cons[0].input[1:]):
        quant = cons[0]
    stage_nodes = chain + ([quant] if quant is not None else [])
    out_name = quant.output[0] if quant is not None else tail
    used = {i for n in stage_nodes for i in n.input}
    inits = [copy.deepcopy(i) for i in graph.initializer if i.name in used]
    in_vi = copy.deepcopy(graph.input[0])
    out_vi = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, model.get_tensor_shape(tail))
    sub = helper.make_graph([copy.deepcopy(n) for n in stage_nodes], "host_input_stage", [in_vi], [out_vi],
                            initializer=inits)
    proto = helper.make_model(sub, opset_imports=list(model.model.opset_import))
    proto.ir_version = model.model.ir_version
    stage_model = ModelWrapper(proto)
    for qa in graph.quantization_annotation:  # the input's datatype annotation goes with it
        if qa.tensor_name == x:
            stage_model.graph.quantization_annotation.append(copy.deepcopy(qa))
    # the hardware graph starts at the chain's output (the quantizer, if any, stays: identity on its grid)
    new_shape = model.get_tensor_shape(tail)
    for node in chain:
        graph.node.remove(node)
    for vi in [v for v in graph.value_info if v.name == tail]:
        graph.value_info.remove(vi)
    graph.input.remove(graph.input[0])
    graph.input.insert(0, helper.make_tensor_value_info(tail, TensorProto.FLOAT, new_shape))
    for qa in [q for q in graph.quantization_annotation if q.tensor_name == x]:
        graph.quantization_annotation.remove(qa)
    still = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in still]:
        graph.initializer.remove(init)
    return InputStage(model=stage_model, nodes=[n.name for n in chain], ops=[n.op_type for n in stage_nodes],
                      quantizer=quant.name if quant is not None else None, arith=arith, moves=moves,
                      shapes=shapes)


def grid_of_values(values: np.ndarray) -> tuple[float, int, bool, int, int] | None:
    """(scale, bits, signed, lowest code, highest code) of the coarsest power-of-two fixed-point type holding
    every value in `values` exactly (None when too wide): the fields of edgekd.export.byo.InputGrid."""
    v = np.unique(np.asarray(values, dtype=np.float64))
    g = exact_grid(v)
    if g is None:
        return None
    f, _bits = g
    scale = 2.0 ** -f
    lo, hi = int(np.round(v.min() / scale)), int(np.round(v.max() / scale))
    signed = lo < 0
    if signed:
        bits = max(2, int(np.ceil(np.log2(max(-lo, hi + 1)))) + 1)
        lo_t, hi_t = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        bits = max(1, int(np.ceil(np.log2(hi + 1))))
        lo_t, hi_t = 0, 2 ** bits - 1
    return scale, bits, signed, lo_t, hi_t


def stage_image(stage: InputStage | None, domain: InputDomain, shape: list[int]) -> np.ndarray | None:
    """Every value the hardware input can take: the stage applied to inputs filled with each domain value."""
    vals = domain.values()
    if vals.size > _MAX_ENUMERATE:
        return None
    if stage is None:
        return vals
    x = np.broadcast_to(vals.reshape(-1, *([1] * (len(shape) - 1))), (len(vals), *shape[1:])).astype(np.float32)
    return np.unique(stage.run(x))
