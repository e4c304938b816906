"""Refuse, before conversion, every op the QONNX -> hls4ml 1.3.0 flow cannot take bit-exactly.

Verdicts per node:
    supported   verified bit-exact in C-simulation (Quant with power-of-two scales, Conv, MatMul + Add,
                Relu, MaxPool 2D, Flatten/Reshape, Transpose; see REFERENCE.md section 4)
    unverified  hls4ml converts it, but edgekd has no bit-exactness evidence (a warning, not an error)
    unsupported rejected by hls4ml, or converted but wrong; the build stops here

`check_hardware_support` raises `UnsupportedOpError` naming every unsupported node, its op and what
to use instead.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

log = logging.getLogger(__name__)

__all__ = ["UnsupportedOpError", "check_hardware_support", "SUPPORTED", "UNVERIFIED", "UNSUPPORTED"]

SUPPORTED = "supported"
UNVERIFIED = "unverified"
UNSUPPORTED = "unsupported"


class UnsupportedOpError(ValueError):
    """An op the hardware flow cannot take exactly; `report` holds the per-node verdicts."""

    def __init__(self, message: str, report: list[dict]) -> None:
        super().__init__(message)
        self.report = report


# An average that hls4ml 1.3.0 computes exactly from QONNX: a Conv (verified bit-exact) with constant
# power-of-two weights. AveragePool itself is no way out: qonnx 1.0.0's ConvertToChannelsLastAndClean
# does not wrap it, and hls4ml then refuses the graph ("convert the model to channels-last").
_AVERAGE_ADVICE = (
    "average with a frozen Conv2d whose kernel covers the averaged extent and whose weights are 2^-k on the "
    "channel diagonal (a power-of-two-scaled sum, exact; see `time_avg` in edgekd.students.wav2small)"
)

# Op -> what to do instead. Each of these was seen to fail loudly or (worse) silently.
_REFUSED: dict[str, str] = {
    "GlobalAveragePool": "hls4ml 1.3.0 converts it but computes wrong values without an error; "
    + _AVERAGE_ADVICE + ", or flatten into the dense layer",
    "GlobalMaxPool": "not verified and shares GlobalAveragePool's code path; use MaxPool2d with a fixed kernel",
    "ReduceMean": "usually AdaptiveAvgPool / mean() exported by the dynamo exporter; hls4ml has no reduction "
    "layers: " + _AVERAGE_ADVICE + "; export with edgekd.export.qonnx.export_student_qonnx (TorchScript exporter)",
    "ReduceSum": "hls4ml has no reduction layers; " + _AVERAGE_ADVICE,
    "Softmax": "apply softmax on the host; the hardware returns logits (hls4ml's softmax is a lookup "
    "table, not bit-exact)",
    "LogSoftmax": "apply log-softmax on the host; the hardware returns logits",
    "BatchNormalization": "fold BatchNorm into the preceding conv/linear before export (float BatchNorm is "
    "not bit-exact in hls4ml)",
    "Gemm": "run GemmToMatMul before conversion (edgekd.export.qonnx.clean_qonnx does this)",
    "MultiThreshold": "export with brevitas.export.export_qonnx (Quant nodes) instead of FINN's streamlined graph",
    "QuantizeLinear": "export with brevitas.export.export_qonnx (Quant nodes), not export_onnx_qcdq",
    "DequantizeLinear": "export with brevitas.export.export_qonnx (Quant nodes), not export_onnx_qcdq",
    "Trunc": "QuantAvgPool's truncation is not mapped by hls4ml 1.3.0; " + _AVERAGE_ADVICE
    + ", followed by a power-of-two activation quantizer",
    "Unsqueeze": "usually a ReduceMean/AdaptiveAvgPool leftover; " + _AVERAGE_ADVICE,
    "Squeeze": "usually a ReduceMean/AdaptiveAvgPool leftover; use nn.Flatten",
    "Sigmoid": "not bit-exact (lookup table); apply it on the host or drop it for logits",
    "Tanh": "not bit-exact (lookup table); use ReLU or a hard-tanh quantizer",
}

_SUPPORTED_OPS = {"Quant", "Conv", "MatMul", "Add", "Relu", "MaxPool", "Flatten", "Reshape", "Transpose"}
_UNVERIFIED_OPS = {"AveragePool", "Sub", "Mul", "Concat", "Pad", "Resize", "LeakyRelu", "Identity", "BipolarQuant"}


def _is_power_of_two(values: np.ndarray) -> bool:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return False
    exps = np.log2(v)
    return bool(np.all(exps == np.round(exps)))


def _producer_op(model: ModelWrapper, tensor: str) -> str | None:
    node = model.find_producer(tensor)
    return node.op_type if node is not None else None


def _check_quant(model: ModelWrapper, node) -> tuple[str, str]:
    scale = model.get_initializer(node.input[1])
    zero_point = model.get_initializer(node.input[2])
    bit_width = model.get_initializer(node.input[3])
    if scale is None:
        return UNSUPPORTED, "its scale is computed at run time; use a power-of-two brevitas quantizer (edgekd.students.quant)"
    if not _is_power_of_two(scale):
        vals = np.unique(np.asarray(scale).ravel())[:4]
        return UNSUPPORTED, (
            f"scale {vals.tolist()} is not a power of two, so hls4ml's fixed-point types cannot represent it "
            "(off by up to ~6%); use the power-of-two presets in edgekd.students.quant"
        )
    if zero_point is None or np.any(np.asarray(zero_point) != 0):
        return UNSUPPORTED, "non-zero zero point; use a symmetric (zero-point 0) power-of-two quantizer"
    if bit_width is None or np.size(bit_width) != 1 or float(np.ravel(bit_width)[0]) != math.floor(float(np.ravel(bit_width)[0])):
        return UNSUPPORTED, "bit width must be a constant integer; use a constant bit-width quantizer"
    rounding = "ROUND"
    for attr in node.attribute:
        if attr.name == "rounding_mode":
            rounding = attr.s.decode() if isinstance(attr.s, bytes) else str(attr.s)
    if rounding.upper() != "ROUND":
        return UNSUPPORTED, f"rounding mode {rounding}; hls4ml maps only ROUND (round half to even) exactly"
    return SUPPORTED, f"{int(np.ravel(bit_width)[0])}-bit power-of-two grid"


def _pool_dims(node) -> int | None:
    for attr in node.attribute:
        if attr.name == "kernel_shape":
            return len(attr.ints)
    return None


def _check_node(model: ModelWrapper, node) -> tuple[str, str]:
    op = node.op_type
    if op in _REFUSED:
        return UNSUPPORTED, _REFUSED[op]
    if op == "Quant":
        return _check_quant(model, node)
    if op in ("MaxPool", "AveragePool"):
        dims = _pool_dims(node)
        if dims != 2:
            what = "MaxPool1d" if op == "MaxPool" else "AvgPool1d"
            instead = ("reshape to (N, C, 1, L) and use MaxPool2d with kernel (1, k)" if op == "MaxPool"
                       else _AVERAGE_ADVICE)
            return UNSUPPORTED, f"{what}-style {dims}-D pooling fails in hls4ml 1.3.0; {instead}"
        if op == "MaxPool":
            return SUPPORTED, "2-D max pooling"
        if node.domain != "qonnx.custom_op.channels_last":
            return UNSUPPORTED, (
                "AvgPool2d: qonnx 1.0.0's channels-last conversion does not wrap AveragePool, so hls4ml 1.3.0 "
                "refuses it; " + _AVERAGE_ADVICE
            )
        return UNVERIFIED, "2-D average pooling, not verified bit-exact"
    if op in ("Conv", "MatMul"):
        w = node.input[1]
        if _producer_op(model, w) != "Quant":
            return UNSUPPORTED, (
                "float weights (no Quant node feeds them), so hls4ml would pick a default precision; use a "
                "brevitas quantized layer with a power-of-two weight quantizer"
            )
        if op == "Conv" and len(node.input) > 2 and _producer_op(model, node.input[2]) != "Quant":
            return UNSUPPORTED, "float bias; use a power-of-two bias quantizer (edgekd.students.quant.bias_quant)"
        return SUPPORTED, "quantized weights"
    if op in _SUPPORTED_OPS:
        return SUPPORTED, ""
    if op in _UNVERIFIED_OPS:
        return UNVERIFIED, "hls4ml converts it; bit-exactness not verified by edgekd"
    return UNSUPPORTED, "hls4ml 1.3.0 has no converter for this op; replace it with Conv/Dense/ReLU/MaxPool2d"


def check_hardware_support(model: ModelWrapper | Path | str, raise_on_error: bool = True) -> list[dict]:
    """Verdict for every node of a cleaned, channels-last QONNX model.

    Returns [{name, op_type, verdict, reason}] in graph order; raises `UnsupportedOpError` listing
    every unsupported node (with `raise_on_error`).
    """
    source = str(model) if not isinstance(model, ModelWrapper) else "<model>"
    model = model if isinstance(model, ModelWrapper) else ModelWrapper(str(model))
    report = []
    for node in model.graph.node:
        verdict, reason = _check_node(model, node)
        report.append({"name": node.name, "op_type": node.op_type, "verdict": verdict, "reason": reason})
        if verdict == UNVERIFIED:
            log.warning("%s: node '%s' (%s): %s", source, node.name, node.op_type, reason)
    bad = [r for r in report if r["verdict"] == UNSUPPORTED]
    if bad and raise_on_error:
        lines = [f"node '{r['name']}' ({r['op_type']}): {r['reason']}" for r in bad]
        raise UnsupportedOpError(
            f"{source}: {len(bad)} node(s) cannot go to hardware bit-exactly:\n  " + "\n  ".join(lines), report
        )
    return report
