"""C-simulation against the QONNX model, for any model: required bit-exact, or measured layer by layer.

A model whose every layer should be exact (`strict`) stops the build on the first mismatch, naming the layer
(edgekd.hls.verify); an approximate one (a bring-your-own model with float scales, or `allow_inexact`) is
measured instead: the model-level mismatch, and each layer's own error from one traced C-simulation.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def csim_fidelity(hls_model, qonnx_path: Path, x: np.ndarray, reference: np.ndarray, *, strict: bool,
                  classifier: bool) -> tuple[dict, np.ndarray]:
    """({n, exact, samples_exact, max_abs_diff, first_diverging_layer, reference_layer, csim_images_per_s,
    source, [class_agreement], [per_layer]}, C-simulated outputs) of `hls_model` on `x`.

    `strict`: C-sim against a fresh QONNX execution, stopping the build at the first diverging layer
    (edgekd.hls.verify). Otherwise against `reference` (the export step's QONNX outputs on the same inputs),
    with one traced build measuring each layer's own error when they differ."""
    if strict:
        from edgekd.hls.verify import verify_csim_against_qonnx

        fidelity = verify_csim_against_qonnx(hls_model, qonnx_path, x, raise_on_mismatch=True, return_outputs=True)
        y_csim = np.asarray(fidelity.pop("csim_outputs"), dtype=np.float64)
        y_ref = np.asarray(reference, dtype=np.float64).reshape(y_csim.shape)
    else:
        from edgekd.hls.csim import predict_csim

        t0 = time.perf_counter()
        y_csim = np.asarray(predict_csim(hls_model, x, progress=False), dtype=np.float64)
        rate = len(x) / max(time.perf_counter() - t0, 1e-9)
        y_ref = np.asarray(reference, dtype=np.float64).reshape(y_csim.shape)
        a, b = y_csim.reshape(len(x), -1), y_ref.reshape(len(x), -1)
        equal = a == b
        fidelity = {"n": len(x), "exact": float(equal.mean()), "samples_exact": float(equal.all(axis=1).mean()),
                    "max_abs_diff": float(np.max(np.abs(a - b), initial=0.0)), "first_diverging_layer": None,
                    "reference_layer": None, "csim_images_per_s": rate}
        bad = np.flatnonzero(~equal.all(axis=1))
        if bad.size:  # one traced build: each layer's own error on the mismatching samples (and some exact ones)
            picked = np.sort(np.concatenate([bad, np.setdiff1d(np.arange(len(x)), bad)])[:256])
            try:
                per_layer, first, first_ref = measure_layers(hls_model, qonnx_path, x[picked])
                fidelity.update(per_layer=per_layer, first_diverging_layer=first or "<output>",
                                reference_layer=first_ref)
            except Exception as err:  # noqa: BLE001 - a failed trace build leaves the model-level figures
                log.warning("per-layer measurement failed: %s", err)
                fidelity["first_diverging_layer"] = "<unknown>"
        log.info("C-simulation vs QONNX on %d inputs: %.2f%% of outputs bit-equal (max |diff| %g)", len(x),
                 100 * fidelity["exact"], fidelity["max_abs_diff"])
    fidelity["source"] = "csim"
    if classifier:
        fidelity["class_agreement"] = class_agreement(y_csim, y_ref)
    return fidelity, y_csim


def class_agreement(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a).reshape(len(a), -1)
    b = np.asarray(b).reshape(len(b), -1)
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def measure_layers(hls_model, qonnx_path: Path, xs: np.ndarray) -> tuple[dict[str, dict], str | None, str | None]:
    """Per QONNX node, the error of the hls4ml layer that computes it: the traced C-simulation (recompiled with
    tracing, seconds) against the QONNX execution on `xs`. Returns ({node: {hls_layer, n, exact, max_abs_diff,
    source}}, first diverging hls4ml layer, its QONNX counterpart); unmatched layers are left out."""
    import re

    from edgekd.export.qonnx import load_qonnx, run_qonnx
    from edgekd.export.verify import locate_divergence, qonnx_activations
    from edgekd.hls.csim import trace_csim
    from edgekd.hls.verify import qonnx_names_for_hls_layer

    qmodel = load_qonnx(qonnx_path)
    xs = np.asarray(xs, dtype=np.float32)
    traces = trace_csim(hls_model, xs)
    ctx = run_qonnx(qmodel, xs, return_all=True)
    acts = [(node, arr) for node, _t, arr in qonnx_activations(qmodel, ctx, len(xs))]
    first, first_ref = locate_divergence(list(traces.items()), acts,
                                         hint=lambda name: qonnx_names_for_hls_layer(qmodel, name))
    ref: dict[str, np.ndarray] = {}
    for node, arr in acts:
        ref.setdefault(node, arr)
    nodes = {nd.name for nd in qmodel.graph.node}
    out: dict[str, dict] = {}
    by_name = {nd.name: nd for nd in qmodel.graph.node}
    for layer, arr in traces.items():
        if layer.endswith("_scale"):
            # hls4ml's ApplyAlpha into the integer domain of a float-scale quantizer: its output times the
            # quantizer's scale is what the QONNX Quant computes
            q = by_name.get(layer[: -len("_scale")])
            scale = qmodel.get_initializer(q.input[1]) if q is not None and q.op_type == "Quant" else None
            zp = qmodel.get_initializer(q.input[2]) if scale is not None else None
            if scale is None or np.size(scale) != 1 or zp is None or np.any(zp != 0) or q.name not in ref:
                continue
            arr = arr.astype(np.float32) * np.float32(np.ravel(scale)[0])  # k * s as QONNX computes it
            base = q.name
        else:
            base = re.sub(r"_(act|rescale)$", "", layer)
        chain = [base] if base in nodes else qonnx_names_for_hls_layer(qmodel, layer)
        cands = [(c, ref[c]) for c in chain if c in ref and ref[c].shape == arr.shape]
        if not cands:
            continue
        _name, best = min(cands, key=lambda c: float(np.max(np.abs(c[1] - arr), initial=0.0)))
        diff = np.abs(best.astype(np.float64) - arr.astype(np.float64))
        if diff.max(initial=0.0) > max(float(np.max(np.abs(best), initial=0.0)), 1e-12):
            continue  # larger than the signal: hls4ml holds this tensor on another scale (moved ApplyAlpha)
        out[chain[0]] = {"hls_layer": layer, "n": len(xs), "exact": float(np.mean(diff == 0)),
                         "max_abs_diff": float(diff.max(initial=0.0)), "source": "csim trace"}
    if first is not None and first.endswith("_scale"):
        # an ApplyAlpha into a float quantizer's integer domain never equals a QONNX tensor: name the first
        # layer whose own (matched) values differ instead
        first, first_ref = next(((v["hls_layer"], k) for k, v in out.items() if v["exact"] < 1.0), (first, first_ref))
    return out, first, first_ref
