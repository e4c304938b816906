"""Bring your own quantized model: load, check and prepare any QONNX file for the hardware half.

`prepare_model` turns a user's QONNX file into the cleaned, channels-last model the `hls` step converts:
onnx.checker, qonnx cleanup, Gemm -> MatMul, the exact rewrites of `edgekd.export.prepare` (host
post-processing, input normalisation, BatchNorm), channels-last, cleanup. It then runs the original and the
prepared model on the same inputs and accepts the preparation only when every output is bit-equal.

`layer_verdicts` says for every node of the prepared model whether the hardware will run it
    exact        on a power-of-two fixed-point grid that hls4ml reproduces bit for bit
    approximate  hls4ml converts it, but not exactly (float scales, float BatchNorm, lookup tables)
    refused      hls4ml cannot convert it, or converts it wrong without an error
and the removed post-processing nodes are `host`. The `hls` step then measures the C-simulation against the
QONNX execution: a layer called exact is confirmed (or the build names the first diverging layer).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.export.byo_load import (  # noqa: F401 - part of this module's interface
    ByoError,
    _drop_initializer_value_info,
    _run_original,
    load_checked,
    materialise_bias_quants,
)

log = logging.getLogger(__name__)

__all__ = [
    "APPROXIMATE",
    "EXACT",
    "HOST",
    "REFUSED",
    "ByoError",
    "InexactModelError",
    "PreparedModel",
    "input_quantizer",
    "layer_verdicts",
    "make_inputs",
    "prepare_model",
    "validate_byo_student",
]

EXACT, APPROXIMATE, REFUSED, HOST = "exact", "approximate", "refused", "host"

# hls4ml converts these, but not bit-exactly (float math, lookup tables)
_APPROXIMATE_OPS = {
    "BatchNormalization": "float BatchNorm: hls4ml runs it in fixed point with its default precision (scale and "
    "shift rounded); fold it into a power-of-two scale or retrain with BatchNorm folded",
    "Softmax": "hls4ml's softmax is a lookup table; only a trailing Softmax can move to the host",
    "LogSoftmax": "lookup table; only a trailing LogSoftmax can move to the host",
    "Sigmoid": "hls4ml's sigmoid is a lookup table",
    "Tanh": "hls4ml's tanh is a lookup table",
    "Mul": "a multiplication hls4ml runs as ApplyAlpha with its default precision",
    "Div": "a division hls4ml runs as ApplyAlpha with its default precision",
    "Sub": "a subtraction hls4ml runs as ApplyAlpha with its default precision",
}


class InexactModelError(ByoError):
    """The model cannot run exactly and `allow_inexact` is false; `verdicts` holds the per-layer table."""

    def __init__(self, message: str, verdicts: list[dict]) -> None:
        super().__init__(message)
        self.verdicts = verdicts


# --------------------------------------------------------------------------------------------------
# config validation
# --------------------------------------------------------------------------------------------------


def _input_shape(model, output: bool = False) -> list[int]:
    dims = (model.graph.output if output else model.graph.input)[0].type.tensor_type.shape.dim
    return [d.dim_value if d.dim_value > 0 else 1 for d in dims]


def validate_byo_student(student: Any, source: str = "<config>") -> None:
    """student.qonnx exists and is a valid ONNX model; student.inputs (if any) is a .npy of matching shape.

    Raises `edgekd.errors.ConfigError` naming the field and the file.
    """
    import onnx

    from edgekd.errors import ConfigError

    if student.qonnx is None:
        raise ConfigError(f"{source}: student.inputs is set but student.qonnx is not; inputs are for a QONNX model")
    path = Path(student.qonnx)
    if not path.is_file():
        raise ConfigError(f"{source}: student.qonnx: {path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf raises several types for a non-ONNX file
        raise ConfigError(f"{source}: student.qonnx: {path} is not an ONNX model ({type(err).__name__}: "
                          f"{str(err)[:120]})") from None
    if len(model.graph.node) == 0 or len(model.graph.input) == 0:
        raise ConfigError(f"{source}: student.qonnx: {path} is not an ONNX model with a graph (no nodes or inputs)")
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) != 1 and not any(n.op_type == "TopK" for n in model.graph.node):
        raise ConfigError(f"{source}: student.qonnx: {path} has {len(inputs)} inputs and {len(model.graph.output)} "
                          "outputs; the hardware flow takes one input and one output")
    if student.inputs is not None:
        shape = [d.dim_value if d.dim_value > 0 else 1 for d in inputs[0].type.tensor_type.shape.dim]
        ipath = Path(student.inputs)
        if not ipath.is_file():
            raise ConfigError(f"{source}: student.inputs: {ipath}: no such file")
        try:
            x = np.load(ipath, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError) as err:
            raise ConfigError(f"{source}: student.inputs: {ipath} is not a .npy array ({err})") from None
        if x.dtype.kind not in "fiub":
            raise ConfigError(f"{source}: student.inputs: {ipath} holds {x.dtype}, not numbers")
        if tuple(x.shape[1:]) != tuple(shape[1:]) or x.shape[0] < 1:
            raise ConfigError(
                f"{source}: student.inputs: {ipath} has shape {tuple(x.shape)}; the model's input "
                f"'{inputs[0].name}' takes (N, {', '.join(map(str, shape[1:]))}) with N >= 1")


# --------------------------------------------------------------------------------------------------
# input grid
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputGrid:
    """The first quantizer's grid: values k * scale with k in [lo, hi]."""

    scale: float
    bits: int
    signed: bool
    lo: int
    hi: int
    power_of_two: bool

    def hls_type(self) -> str:
        """The hardware input type: the grid itself when the scale is a power of two; otherwise a type 8 bits
        wider covering the same range (the grid's points are then rounded: part of the measured mismatch)."""
        if self.power_of_two:
            integer = self.bits + int(round(math.log2(self.scale)))
            return f"{'' if self.signed else 'u'}fixed<{self.bits},{integer}>"
        max_abs = max(abs(self.lo), abs(self.hi)) * self.scale
        integer = int(math.floor(math.log2(max_abs))) + 1 + int(self.signed)
        return f"{'' if self.signed else 'u'}fixed<{self.bits + 8},{integer}>"

    def put_on_grid(self, x: np.ndarray) -> np.ndarray:
        k = np.clip(np.round(np.asarray(x, dtype=np.float64) / self.scale), self.lo, self.hi)
        return (k * self.scale).astype(np.float32)


def input_quantizer(model) -> tuple[Any, InputGrid | None, str]:
    """(first Quant node, its grid, reason) following the graph input through Transpose/Reshape/Flatten."""
    from edgekd.export.prepare import _quant_params, is_power_of_two

    tensor = model.graph.input[0].name
    while True:
        cons = model.find_consumers(tensor) or []
        if len(cons) != 1:
            return None, None, "the input feeds several nodes"
        node = cons[0]
        if node.op_type in ("Transpose", "Reshape", "Flatten"):
            tensor = node.output[0]
            continue
        if node.op_type == "BipolarQuant":
            s = model.get_initializer(node.input[1])
            if s is None or np.size(s) != 1:
                return node, None, f"the input quantizer '{node.name}' has a per-channel or run-time scale"
            scale = float(np.ravel(s)[0])
            return node, InputGrid(scale, 2, True, -1, 1, is_power_of_two(scale)), ""
        if node.op_type != "Quant":
            return None, None, f"the input goes to {node.op_type} '{node.name}' before any quantizer"
        p = _quant_params(model, node)
        if p is None or p["scale"].size != 1 or np.any(p["zero_point"] != 0):
            return node, None, f"the input quantizer '{node.name}' has a per-channel or run-time scale or a zero point"
        bits, signed, narrow = int(p["bits"]), p["signed"], p["narrow"]
        lo = (-(2 ** (bits - 1)) + int(narrow)) if signed else 0
        hi = (2 ** (bits - 1) - 1) if signed else 2 ** bits - 1
        scale = float(p["scale"].item())
        return node, InputGrid(scale, bits, signed, lo, hi, is_power_of_two(scale)), ""


def make_inputs(grid: InputGrid, shape: list[int], n: int, seed: int = 0, path: Path | None = None) -> np.ndarray:
    """Inputs on the grid: the .npy at `path` (rounded and clipped onto it), or `n` uniform random grid points
    (every code equally likely, the extremes included)."""
    if path is not None:
        from edgekd.export.preamble import flatten_inputs

        return grid.put_on_grid(flatten_inputs(np.load(path, allow_pickle=False).astype(np.float64), shape))
    rng = np.random.default_rng(seed)
    k = rng.integers(grid.lo, grid.hi + 1, size=(n, *shape[1:]))
    return (k * grid.scale).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# preparation
# --------------------------------------------------------------------------------------------------


@dataclass
class PreparedModel:
    model: Any  # ModelWrapper, cleaned and channels-last
    original: Any  # ModelWrapper after cleanup (what the user's file computes)
    host_ops: list[dict] = field(default_factory=list)
    folds: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    domain: Any = None  # InputDomain of the user's input (its datatype annotation), or None
    stage: Any = None  # InputStage the host runs before the hardware, or None


def prepare_model(path: Path) -> PreparedModel:
    """Load, check and prepare a QONNX file (see the module docstring); exactness is verified later by
    `verify_preparation`, on the build's inputs."""
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    from edgekd.export.prepare import FoldBatchNorm, FoldInputNormalisation, SplitHostPostprocessing

    original = load_checked(path)
    model = copy.deepcopy(original)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The GemmToMatMul transformation")
        model = model.transform(GemmToMatMul())
    model = cleanup_model(model)
    from edgekd.export.prepare_conv import normalise_conv_nodes

    conv_folds = normalise_conv_nodes(model, path)  # ONNX defaults written out; AveragePool -> Conv
    if conv_folds:
        model = cleanup_model(model)
    from edgekd.export.prepare_thresholds import FoldBatchNormSteps

    from edgekd.export.prepare_batchnorm import ChannelScalesIntoBatchNorm

    host, norm, bn, steps = SplitHostPostprocessing(), FoldInputNormalisation(), FoldBatchNorm(), FoldBatchNormSteps()
    chan = ChannelScalesIntoBatchNorm()
    for t in (host, norm, bn, chan, steps):
        model = model.transform(t)
    stepped = {n for f in steps.folds for n in f["nodes"]}
    bn.skipped = [s for s in bn.skipped if not set(s["nodes"]) & stepped]
    model = cleanup_model(model)
    from edgekd.export.preamble import fold_input_preamble
    from edgekd.export.prepare_input import input_domain, split_input_stage

    domain = input_domain(original)
    stage = split_input_stage(model)
    if stage is not None:
        model = cleanup_model(model)
    from edgekd.export.prepare_thresholds import bipolar_inputs_as_quant

    bipolar_inputs_as_quant(model, input_is_bipolar=stage is not None and stage.quantizer is not None)
    preamble = fold_input_preamble(model)
    if preamble is not None:
        model = cleanup_model(model)
    try:
        model = model.transform(ConvertToChannelsLastAndClean())
    except Exception as err:  # noqa: BLE001
        raise ByoError(f"{path}: qonnx cannot convert the model to channels-last ({type(err).__name__}: "
                       f"{str(err)[:200]})") from None
    model = cleanup_model(model)
    _drop_initializer_value_info(model)
    return PreparedModel(model=model, original=original, host_ops=host.host_ops,
                         folds=conv_folds + host.folds + norm.folds + bn.folds + steps.folds + chan.folds + ([stage.record()] if stage else [])
                         + ([preamble] if preamble else []),
                         skipped=norm.skipped + bn.skipped + [s for s in steps.skipped if s["nodes"] not in
                                                              [b["nodes"] for b in bn.folds]],
                         domain=domain, stage=stage)


def hardware_input_grid(prep: PreparedModel, model_grid: InputGrid | None) -> InputGrid | None:
    """The hardware input type when the prepared graph's first quantizer does not give one: the exact grid of
    every value the input can take (the annotated datatype, through the host input stage if any)."""
    if model_grid is not None or prep.domain is None:
        return model_grid
    from edgekd.export.prepare_input import grid_of_values, stage_image

    values = stage_image(prep.stage, prep.domain, _input_shape(prep.original))
    fields = None if values is None else grid_of_values(values)
    return None if fields is None else InputGrid(*fields, True)


def make_build_inputs(prep: PreparedModel, grid: InputGrid, shape: list[int], n: int, seed: int = 0,
                      path: Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(hardware inputs, the user's inputs they come from or None when they are the same values).

    The user's inputs are the .npy at `path`, else `n` random values of the input's annotated datatype
    (bipolar, INT/UINT n, fixed point), else the preimage of the first quantizer's grid under the host input
    stage; the hardware inputs are the host input stage applied to them (or them on the input grid)."""
    from edgekd.export.preamble import flatten_inputs

    orig_shape = _input_shape(prep.original)
    rng = np.random.default_rng(seed)
    x_orig = None
    if path is not None and prep.stage is not None:
        x_orig = np.load(path, allow_pickle=False).astype(np.float32).reshape(-1, *orig_shape[1:])
    elif path is None and prep.domain is not None:
        x_orig = prep.domain.sample((n, *orig_shape[1:]), rng)
    elif path is None and prep.stage is not None and prep.stage.quantizer is not None:
        y = make_inputs(grid, [1, *_input_shape(prep.stage.model, output=True)[1:]], n, seed=seed)
        x_orig = prep.stage.invert(y)
    if x_orig is None:
        return make_inputs(grid, shape, n, seed=seed, path=path), None
    x_hw = prep.stage.run(x_orig) if prep.stage is not None else grid.put_on_grid(x_orig)
    return flatten_inputs(x_hw, shape).astype(np.float32), x_orig


def verify_preparation(prep: PreparedModel, x: np.ndarray, x_orig: np.ndarray | None = None) -> dict:
    """Original (with the host stage applied to the prepared outputs) == prepared model, bit for bit on `x`
    (the original model runs on `x_orig` when the host input stage made `x` from it).

    Returns {n, exact, max_abs_diff, prepared_outputs}; raises ByoError when a fold is not exact.
    """
    from edgekd.export.prepare import apply_host_postprocessing
    from edgekd.export.qonnx import run_qonnx

    y_prep = run_qonnx(prep.model, x)
    orig_shape = prep.original.get_tensor_shape(prep.original.graph.input[0].name)
    x_in = x if x_orig is None else x_orig
    y_orig = np.asarray(_run_original(prep.original, np.reshape(x_in, (len(x_in), *orig_shape[1:]))),
                        dtype=np.float64)
    y_host = apply_host_postprocessing(y_prep, prep.host_ops)
    if y_host.shape != y_orig.shape:
        y_host = y_host.reshape(y_orig.shape)
    if prep.host_ops and prep.host_ops[-1]["op_type"] in ("Softmax", "LogSoftmax"):
        # the host's float64 softmax vs ONNX Runtime's float32 one: equal up to float32 rounding
        ok = np.allclose(y_host, y_orig, rtol=1e-5, atol=1e-6)
    else:
        ok = np.array_equal(y_host, y_orig)
    diff = float(np.max(np.abs(y_host - y_orig), initial=0.0))
    approximate = [f for f in prep.folds if f.get("approximate")]
    if not ok and approximate:  # float rewrites: measured, not required bit-equal
        a, b = y_host.reshape(len(x), -1), y_orig.reshape(len(x), -1)
        agree = float(np.mean(a.argmax(1) == b.argmax(1))) if a.shape[1] > 1 else float(np.mean((a >= 0) == (b >= 0)))
        return {"n": len(x), "exact": False, "samples_equal": float(np.mean(np.all(a == b, axis=1))),
                "class_agreement": agree, "max_abs_diff": diff, "approximate_folds": [f["nodes"] for f in approximate],
                "prepared_outputs": y_prep}
    if not ok:
        folds = "; ".join(f"{f['kind']} {f['nodes']} -> {f['into']}" for f in prep.folds) or "none"
        raise ByoError(f"the prepared graph differs from the original model on {len(x)} inputs (max |diff| {diff:.3g}); "
                       f"rewrites: {folds}. This is an edgekd bug: please report it with the model")
    return {"n": len(x), "exact": True, "max_abs_diff": diff, "prepared_outputs": y_prep}


# --------------------------------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------------------------------


def _quant_verdict(model, node) -> tuple[str, str]:
    from edgekd.export.prepare import _quant_params, is_power_of_two

    p = _quant_params(model, node)
    if p is None:
        return REFUSED, "its scale, zero point or bit width is computed at run time; hls4ml needs constants"
    if p["rounding"] not in ("ROUND", "FLOOR"):
        return REFUSED, f"rounding mode {p['rounding']}: hls4ml maps only ROUND and FLOOR"
    if p["narrow"] and not p["signed"]:
        return REFUSED, "narrow range on an unsigned quantizer: hls4ml refuses it"
    bits = p["bits"]
    if bits != math.floor(bits):
        return REFUSED, f"non-integer bit width {bits}"
    if np.any(p["zero_point"] != 0):
        return APPROXIMATE, "non-zero zero point: hls4ml adds a float scale/shift layer (ApplyAlpha)"
    scale = np.unique(p["scale"])
    if not is_power_of_two(scale):
        shown = ", ".join(f"{v:.6g}" for v in scale[:3]) + (", ..." if scale.size > 3 else "")
        return APPROXIMATE, (f"scale {shown} is not a power of two: hls4ml rescales with a fixed-point ApplyAlpha "
                             "layer, so values are rounded; use power-of-two (fixed-point) quantizers")
    if scale.size > 1:
        return APPROXIMATE, "per-channel power-of-two scales: hls4ml rescales each channel with an ApplyAlpha layer"
    return EXACT, f"{int(bits)}-bit grid, scale 2^{int(round(math.log2(scale[0])))}"


def _node_verdict(model, node) -> tuple[str, str]:
    from edgekd.export.support import UNSUPPORTED, _check_node

    op = node.op_type
    if op == "Quant":
        return _quant_verdict(model, node)
    if op == "BipolarQuant":
        scale = model.get_initializer(node.input[1])
        if scale is None or np.any(np.asarray(scale) != 1.0):
            return APPROXIMATE, "bipolar quantizer with a scale other than 1: hls4ml adds a float ApplyAlpha layer"
        return EXACT, "1-bit bipolar (+1/-1)"
    if op in _APPROXIMATE_OPS:
        return APPROXIMATE, _APPROXIMATE_OPS[op]
    if op in ("Conv", "MatMul"):
        return _layer_verdict(model, node)
    verdict, reason = _check_node(model, node)
    if verdict == UNSUPPORTED:
        return REFUSED, reason
    return EXACT, reason or "fixed-point"


def _layer_verdict(model, node) -> tuple[str, str]:
    """Conv / MatMul: exact when its weights (and a Conv's bias) come from exact quantizers."""
    problems = []
    for idx, what in ((1, "weights"), (2, "bias")):
        if idx >= len(node.input) or not node.input[idx]:
            continue
        q = model.find_producer(node.input[idx])
        if q is not None and q.op_type in ("Quant", "BipolarQuant"):
            v, why = _node_verdict(model, q)
            if v != EXACT:
                problems.append(f"its {what}' quantizer {q.name}: {why}")
        else:
            problems.append(f"float {what} (no quantizer feeds them): hls4ml rounds them to its default precision")
    if problems:
        return APPROXIMATE, "; ".join(problems)
    return EXACT, "quantized weights" if node.op_type == "MatMul" else "quantized weights and bias"


def layer_verdicts(prep: PreparedModel, input_grid: InputGrid | None, input_reason: str = "") -> list[dict]:
    """Per node of the prepared model: {name, op_type, verdict, reason}; folded and host nodes included."""
    model = prep.model
    rows: list[dict] = []
    if input_grid is None or not input_grid.power_of_two:
        rows.append({"name": model.graph.input[0].name, "op_type": "input", "verdict": APPROXIMATE,
                     "reason": input_reason or f"the input quantizer's scale {input_grid.scale:.6g} is not a power of "
                     "two, so the hardware input type cannot hold its grid"})
    for node in model.graph.node:
        verdict, reason = _node_verdict(model, node)
        row = {"name": node.name, "op_type": node.op_type, "verdict": verdict, "reason": reason}
        if node.domain:  # a custom op (legacy domains are read as qonnx.custom_op.general)
            row["domain"] = node.domain
        rows.append(row)
    for s in prep.skipped:  # rewrites that were not possible: say why next to the node
        for row in rows:
            if row["name"] in s["nodes"] and row["verdict"] != EXACT:
                row["reason"] = f"{row['reason']} (not folded: {s['reason']})"
    for f in prep.folds:
        for name in f["nodes"]:
            rows.append({"name": name, "op_type": f["kind"],
                         "verdict": HOST if f["kind"] == "host" else APPROXIMATE if f.get("approximate") else EXACT,
                         "reason": f["detail"], "folded_into": f["into"]})
    return rows


def summarise_verdicts(rows: list[dict]) -> str:
    """The model's verdict: refused if any layer is, else approximate if any layer is, else exact."""
    kinds = {r["verdict"] for r in rows}
    return REFUSED if REFUSED in kinds else APPROXIMATE if APPROXIMATE in kinds else EXACT


def explain(rows: list[dict], kinds: tuple[str, ...]) -> str:
    return "\n  ".join(f"{r['op_type']} '{r['name']}'{' (domain ' + r['domain'] + ')' if r.get('domain') else ''}: "
                       f"{r['verdict']}: {r['reason']}" for r in rows if r["verdict"] in kinds)
