"""Export a brevitas student to QONNX, clean it and convert it to channels-last for hls4ml.

Flow (each step verified on torch 2.13 / brevitas 0.13.4 / qonnx 1.0.0):
    brevitas.export.export_qonnx (TorchScript exporter) -> cleanup_model
    -> ConvertToChannelsLastAndClean -> GemmToMatMul -> cleanup_model

The cleaned model keeps an NCHW graph input (`global_in`, batch 1) followed by a Transpose to NHWC;
everything after it is channels-last, which is what hls4ml's ONNX frontend wants.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

log = logging.getLogger(__name__)

__all__ = ["RAW_NAME", "CLEAN_NAME", "export_student_qonnx", "clean_qonnx", "load_qonnx", "run_qonnx"]

RAW_NAME = "student.qonnx.onnx"
CLEAN_NAME = "student.clean.onnx"


def clean_qonnx(model: ModelWrapper) -> ModelWrapper:
    """cleanup -> channels-last -> Gemm to MatMul (hls4ml rejects Gemm) -> cleanup."""
    model = cleanup_model(model)
    model = model.transform(ConvertToChannelsLastAndClean())
    with warnings.catch_warnings():
        # GemmToMatMul warns for any Gemm opset other than 9; opset-13+ Gemm with transB converts
        # correctly (checked bit-exact against torch by edgekd.export.verify).
        warnings.filterwarnings("ignore", message="The GemmToMatMul transformation")
        model = model.transform(GemmToMatMul())
    return cleanup_model(model)


def export_student_qonnx(model: torch.nn.Module, input_shape: tuple[int, ...], out_dir: Path | str) -> Path:
    """Export `model` (eval mode, batch 1 of `input_shape` = (C, H, W) or (1, C, H, W)) to QONNX.

    Writes `out_dir/student.qonnx.onnx` (as exported) and `out_dir/student.clean.onnx` (cleaned,
    channels-last inside, NCHW input); returns the path of the cleaned file.
    """
    from brevitas.export import export_qonnx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if shape[0] != 1:
        raise ValueError(f"export input_shape must have batch 1 (hls4ml streams one sample), got {shape}")
    raw_path, clean_path = out_dir / RAW_NAME, out_dir / CLEAN_NAME
    was_training = model.training
    model.eval()
    try:
        # The TorchScript exporter keeps brevitas' node names and takes ~0.1 s; the dynamo exporter
        # (torch's default since 2.9) takes seconds and turns some ops (AdaptiveAvgPool) into
        # ReduceMean, which hls4ml rejects.
        export_qonnx(model, input_t=torch.zeros(shape), export_path=str(raw_path), dynamo=False)
    finally:
        model.train(was_training)
    cleaned = clean_qonnx(ModelWrapper(str(raw_path)))
    _atomic_save(cleaned, clean_path)
    log.info("exported QONNX %s (%d nodes) and cleaned %s (%d nodes)", raw_path,
             len(ModelWrapper(str(raw_path)).graph.node), clean_path, len(cleaned.graph.node))
    return clean_path


def _atomic_save(model: ModelWrapper, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    model.save(str(tmp))
    tmp.replace(path)


def load_qonnx(model: ModelWrapper | Path | str) -> ModelWrapper:
    return model if isinstance(model, ModelWrapper) else ModelWrapper(str(model))


def _quiet_onnxruntime() -> None:
    """qonnx runs standard nodes one by one through onnxruntime, which warns about the opset stamp
    of every single-node model it builds; those warnings are noise here."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)


_BATCHED: dict[tuple[int, int], tuple[ModelWrapper, ModelWrapper]] = {}


def _with_batch(model: ModelWrapper, batch: int) -> ModelWrapper:
    """Copy of `model` whose batch dimension is `batch` (cached; shape inference is the slow part)."""
    key = (id(model), batch)
    # the entry holds the model itself: an id is reused once its model is garbage collected
    if key not in _BATCHED or _BATCHED[key][0] is not model:
        if len(_BATCHED) > 16:
            _BATCHED.clear()
        batched = ModelWrapper(copy.deepcopy(model.model))
        # qonnx's ChangeBatchSize drops all intermediate shapes, and InferShapes cannot recover
        # them through the channels-last custom ops; so set the batch dimension in place.
        graph = batched.graph
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) > 0 and dims[0].dim_value == 1:
                dims[0].dim_value = batch
        for node in batched.get_nodes_by_op_type("Reshape"):
            shape = batched.get_initializer(node.input[1])
            if shape is not None and shape[0] == 1:
                shape = shape.copy()
                shape[0] = batch
                batched.set_initializer(node.input[1], shape)
        _BATCHED[key] = (model, batched)
    return _BATCHED[key][1]


def run_qonnx(
    model: ModelWrapper | Path | str,
    x: np.ndarray,
    return_all: bool = False,
    batch_size: int = 256,
) -> np.ndarray | dict[str, np.ndarray]:
    """Execute a (cleaned) QONNX model on `x` with qonnx's reference executor.

    `x` is NCHW, like torch (the cleaned model's input is NCHW; its first node transposes to NHWC),
    and should already be on the input quantizer's grid (the first Quant node re-rounds it anyway).
    Runs in batches of `batch_size`. Returns the graph output, shape (N, classes); with
    `return_all`, the full execution context {tensor name: array concatenated over the batch}
    (initializers included, taken from the first batch). Intermediate tensors after the
    input Transpose are channels-last (NHWC).
    """
    _quiet_onnxruntime()
    model = load_qonnx(model)
    x = np.asarray(x, dtype=np.float32)
    in_name, out_name = model.graph.input[0].name, model.graph.output[0].name
    in_shape = model.get_tensor_shape(in_name)
    if tuple(x.shape[1:]) != tuple(in_shape[1:]):
        raise ValueError(f"run_qonnx: input has shape {x.shape}; the model's input '{in_name}' takes "
                         f"(N, {', '.join(map(str, in_shape[1:]))}) (NCHW)")
    if x.shape[0] == 0:
        raise ValueError("run_qonnx: empty input")
    chunks: list[dict[str, np.ndarray]] = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        mb = _with_batch(model, xb.shape[0])
        ctx = execute_onnx(mb, {in_name: xb}, return_full_exec_context=return_all)
        chunks.append(ctx)
    if not return_all:
        return np.concatenate([c[out_name] for c in chunks], axis=0)
    if len(chunks) == 1:
        return chunks[0]
    initializers = {i.name for i in model.graph.initializer}
    sizes = [min(batch_size, x.shape[0] - s) for s in range(0, x.shape[0], batch_size)]
    merged: dict[str, np.ndarray] = {}
    for name, first in chunks[0].items():
        per_sample = (
            name not in initializers
            and np.ndim(first) > 0
            and all(np.shape(c[name])[:1] == (n,) for c, n in zip(chunks, sizes))
        )
        merged[name] = np.concatenate([c[name] for c in chunks], axis=0) if per_sample else first
    return merged
