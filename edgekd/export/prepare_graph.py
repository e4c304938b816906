"""What every exact rewrite of edgekd.export.prepare reads and writes: power-of-two grids, constant Quant
parameters and values, and navigation of the QONNX graph.

The rewrites differ in what they fold; they agree on what makes a constant exact (`exact_grid`,
`is_power_of_two`), on how a QONNX Quant rounds (`quant_values`) and on how a new constant enters the graph
(`_const_quant`). Kept in one module so that these conditions are written once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper

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


def set_attribute(node, name: str, value: Any) -> None:
    """`node`'s attribute `name` set to `value` (replacing any it had)."""
    drop_attributes(node, name)
    node.attribute.append(helper.make_attribute(name, value))


def drop_attributes(node, *names: str) -> None:
    for a in [a for a in node.attribute if a.name in names]:
        node.attribute.remove(a)


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
