"""QONNX execution == hls4ml C-simulation, bit for bit; on a mismatch, name the first hls4ml layer."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from edgekd.export.qonnx import load_qonnx, run_qonnx
from edgekd.export.verify import FidelityError, _compare, locate_divergence, qonnx_activations
from edgekd.hls.csim import predict_csim, trace_csim

log = logging.getLogger(__name__)

__all__ = [
    "FidelityError",
    "verify_csim_against_qonnx",
    "qonnx_names_for_hls_layer",
    "verify_emulator_against_csim",
    "verify_emulator_against_qonnx",
]

# hls4ml folds these nodes into the output type of the layer before them.
_FOLDED_OPS = {"Quant", "Add"}


def qonnx_names_for_hls_layer(model: ModelWrapper, hls_layer: str) -> list[str]:
    """QONNX node names whose outputs an hls4ml layer may equal, most likely first.

    hls4ml names layers after ONNX nodes ('Conv_0' -> 'Conv2D_Conv_0', 'Quant_6' -> 'Quant_6_act',
    'MatMul_0' -> 'Dense_MatMul_0') and folds a following bias Add / Quant into the layer's output
    type, so the chain of such successors is included after the node itself.
    """
    nodes = {n.name: n for n in model.graph.node}
    stripped = re.sub(r"_act$", "", hls_layer)
    base = next((c for c in (hls_layer, stripped, stripped.split("_", 1)[-1]) if c in nodes), None)
    if base is None:
        return []
    chain = [base]
    node = nodes[base]
    while True:
        consumers = model.find_consumers(node.output[0]) or []
        if len(consumers) != 1 or consumers[0].op_type not in _FOLDED_OPS:
            break
        node = consumers[0]
        chain.append(node.name)
    return chain


def verify_csim_against_qonnx(
    hls_model: Any,
    qonnx_path: Path | str | ModelWrapper,
    x: np.ndarray,
    raise_on_mismatch: bool = True,
    progress: bool = True,
    return_outputs: bool = False,
) -> dict:
    """Compare the compiled C-simulation with the QONNX execution on `x` (NCHW, already on the input grid).

    Returns {n, exact, samples_exact, max_abs_diff, first_diverging_layer (hls4ml layer name, None when
    exact), reference_layer (QONNX node), csim_images_per_s}. On a mismatch it recompiles with tracing
    (seconds), compares every traced layer with the QONNX execution context on up to 4 failing samples,
    and raises `FidelityError` naming the first diverging layer (with `raise_on_mismatch`).
    """
    qmodel = load_qonnx(qonnx_path)
    x = np.asarray(x, dtype=np.float32)
    y_ref = run_qonnx(qmodel, x)
    t0 = time.perf_counter()
    y_csim = predict_csim(hls_model, x, progress=progress)
    rate = x.shape[0] / max(time.perf_counter() - t0, 1e-9)

    def localise(bad: np.ndarray):
        xb = x[bad]
        traces = trace_csim(hls_model, xb)
        ctx = run_qonnx(qmodel, xb, return_all=True)
        ref = [(node, arr) for node, _t, arr in qonnx_activations(qmodel, ctx, xb.shape[0])]
        return locate_divergence(list(traces.items()), ref, hint=lambda n: qonnx_names_for_hls_layer(qmodel, n))

    where = str(qonnx_path) if not isinstance(qonnx_path, ModelWrapper) else "<model>"
    try:
        result = _compare("C-simulation", "QONNX", y_csim, y_ref, raise_on_mismatch, localise, where)
    except FidelityError as err:
        err.result["csim_images_per_s"] = rate
        raise
    result["csim_images_per_s"] = rate
    if return_outputs:
        result["csim_outputs"] = y_csim
    return result


# --------------------------------------------------------------------------------------------------
# The fixed-point emulator (edgekd.hls.emulate) against the C-simulation and against QONNX
# --------------------------------------------------------------------------------------------------


def _first_diverging(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> str | None:
    for name, arr in a.items():
        other = b.get(name)
        if other is None or other.shape != arr.shape or not np.array_equal(arr, other):
            return name
    return None


def _emu_result(y_emu: np.ndarray, y_ref: np.ndarray) -> dict:
    y_emu = np.asarray(y_emu, dtype=np.float64).reshape(y_ref.shape[0], -1)
    y_ref = np.asarray(y_ref, dtype=np.float64).reshape(y_ref.shape[0], -1)
    equal = y_emu == y_ref
    return {
        "n": int(y_ref.shape[0]),
        "exact": float(equal.mean()) if equal.size else 1.0,
        "samples_exact": float(equal.all(axis=1).mean()) if equal.size else 1.0,
        "max_abs_diff": float(np.max(np.abs(y_emu - y_ref), initial=0.0)),
        "first_diverging_layer": None,
    }, np.flatnonzero(~equal.all(axis=1))


def verify_emulator_against_csim(
    emulator: Any, hls_model: Any, x: np.ndarray, y_csim: np.ndarray | None = None, raise_on_mismatch: bool = True
) -> dict:
    """Emulator == compiled C-simulation on `x` (NCHW on the input grid), bit for bit.

    On a mismatch, both are traced on up to 4 failing samples (the C-simulation recompiles with
    tracing) and `FidelityError` names the first hls4ml layer whose outputs differ.
    """
    x = np.asarray(x, dtype=np.float32)
    if y_csim is None:
        y_csim = predict_csim(hls_model, x, progress=False)
    y_emu = emulator.predict(x)
    result, bad = _emu_result(y_emu, np.asarray(y_csim))
    if bad.size:
        xb = x[bad[:4]]
        layer = _first_diverging(emulator.trace(xb), trace_csim(hls_model, xb)) or "<output>"
        result["first_diverging_layer"] = layer
        msg = (f"emulator and C-simulation differ on {bad.size}/{result['n']} samples "
               f"(max |diff| {result['max_abs_diff']:.3g}); first diverging layer: '{layer}'")
        if raise_on_mismatch:
            raise FidelityError(msg, result)
        log.error(msg)
    else:
        log.info("emulator == C-simulation bit-exact on %d samples", result["n"])
    return result


def verify_emulator_against_qonnx(
    emulator: Any,
    qonnx_path: Path | str | ModelWrapper,
    x: np.ndarray,
    raise_on_mismatch: bool = True,
    return_outputs: bool = False,
) -> dict:
    """Emulator == QONNX execution on `x` (NCHW on the input grid, e.g. the whole test split).

    Returns {n, exact, samples_exact, max_abs_diff, first_diverging_layer, emulator_images_per_s};
    on a mismatch the emulator's per-layer outputs are matched against the QONNX execution context on
    up to 4 failing samples and `FidelityError` names the first hls4ml layer that matches nothing.
    """
    qmodel = load_qonnx(qonnx_path)
    x = np.asarray(x, dtype=np.float32)
    t0 = time.perf_counter()
    y_emu = emulator.predict(x)
    rate = x.shape[0] / max(time.perf_counter() - t0, 1e-9)
    y_ref = run_qonnx(qmodel, x)
    result, bad = _emu_result(y_emu, y_ref)
    result["emulator_images_per_s"] = rate
    if bad.size:
        xb = x[bad[:4]]
        ctx = run_qonnx(qmodel, xb, return_all=True)
        ref = [(node, arr) for node, _t, arr in qonnx_activations(qmodel, ctx, xb.shape[0])]
        layer, ref_layer = locate_divergence(list(emulator.trace(xb).items()), ref,
                                             hint=lambda n: qonnx_names_for_hls_layer(qmodel, n))
        result["first_diverging_layer"] = layer or "<output>"
        result["reference_layer"] = ref_layer
        msg = (f"emulator and QONNX differ on {bad.size}/{result['n']} samples (max |diff| "
               f"{result['max_abs_diff']:.3g}); first diverging layer: '{result['first_diverging_layer']}' "
               f"(QONNX counterpart: {ref_layer!r})")
        if raise_on_mismatch:
            raise FidelityError(msg, result)
        log.error(msg)
    else:
        log.info("emulator == QONNX bit-exact on %d samples", result["n"])
    if return_outputs:
        result["emulator_outputs"] = y_emu
    return result
