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

__all__ = ["FidelityError", "verify_csim_against_qonnx", "qonnx_names_for_hls_layer"]

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
