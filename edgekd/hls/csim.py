"""C-simulation of a compiled hls4ml model: batched predictions and per-layer traces.

Layout: edgekd's cleaned QONNX graphs take NCHW and transpose to NHWC inside; hls4ml keeps that
Transpose as a layer, so the C-simulation input is NCHW too. Callers always pass NCHW (like torch);
`to_hls_layout` transposes to NHWC only when the compiled model's input is channels-last.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgekd.hls.convert import quiet_hls4ml

log = logging.getLogger(__name__)

__all__ = ["to_hls_layout", "predict_csim", "trace_csim"]


def to_hls_layout(hls_model: Any, x_nchw: np.ndarray) -> np.ndarray:
    """NCHW batch -> the compiled model's input layout, float64 and C-contiguous."""
    x = np.asarray(x_nchw)
    want = tuple(int(d) for d in hls_model.get_input_variables()[0].shape)
    if x.ndim == 4 and tuple(x.shape[1:]) != want and tuple(x.shape[2:]) + (x.shape[1],) == want:
        x = x.transpose(0, 2, 3, 1)
    elif tuple(x.shape[1:]) != want and int(np.prod(x.shape[1:])) != int(np.prod(want)):
        raise ValueError(f"C-simulation input has shape {x.shape}; the hls4ml model takes (N, {want}) "
                         "(pass NCHW as for torch)")
    # float64: the top function converts to ap_fixed from double, exact for any grid up to 52 bits
    return np.ascontiguousarray(x, dtype=np.float64)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=True)


def predict_csim(hls_model: Any, x_nchw: np.ndarray, chunk: int = 16, progress: bool = True) -> np.ndarray:
    """Run the compiled C-simulation on every sample; returns (N, outputs) float64."""
    x = to_hls_layout(hls_model, x_nchw)
    n = x.shape[0]
    outs: list[np.ndarray] = []
    with _progress() as bar:
        task = bar.add_task("C-simulation", total=n, visible=progress)
        for start in range(0, n, chunk):
            xb = x[start:start + chunk]
            y = np.asarray(hls_model.predict(xb), dtype=np.float64)
            outs.append(y.reshape(xb.shape[0], -1))
            bar.advance(task, xb.shape[0])
    return np.concatenate(outs, axis=0)


def trace_csim(hls_model: Any, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
    """Per-layer outputs {hls layer name: (N, ...) array} from hls4ml's trace build.

    Recompiles the project with tracing on (seconds; through the C-simulation cache when the model has one,
    `hls_model.edgekd_csim_cache`); layers are in hls4ml's layer order and channels-last. Needs 'Trace': True in
    the layer config (edgekd.hls.convert sets it).
    """
    x = to_hls_layout(hls_model, x_nchw)
    with quiet_hls4ml():
        _, trace = _trace(hls_model, x if x.shape[0] > 1 else x[0])
    order = [layer.name for layer in hls_model.get_layers()]
    return {name: np.asarray(trace[name]).reshape(x.shape[0], -1) for name in order if name in trace}


def _trace(hls_model: Any, x: np.ndarray) -> tuple[Any, dict]:
    """hls4ml's `trace`, its library from the C-simulation cache when the model has one: hls4ml's own trace
    recompiles with build_lib.sh (-O3) on every call, the cache compiles a traced design once (-O1)."""
    cache = getattr(hls_model, "edgekd_csim_cache", None)
    if cache is None:
        return hls_model.trace(x)
    from edgekd.hls.csim_cache import compile_cached

    hls_model.config.trace_output = True
    compile_cached(hls_model, cache)  # writes the traced sources, loads their library (compiled on a miss)
    hls_model.compile = lambda: None  # trace() would otherwise recompile what was just loaded
    try:
        return hls_model.trace(x)
    finally:
        del hls_model.compile
