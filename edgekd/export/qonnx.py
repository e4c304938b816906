"""Export a brevitas student to QONNX, clean it and convert it to channels-last for hls4ml.

Flow (each step verified on torch 2.13 / brevitas 0.13.4 / qonnx 1.0.0):
    brevitas.export.export_qonnx (TorchScript exporter) -> cleanup_model
    -> ConvertToChannelsLastAndClean -> GemmToMatMul -> cleanup_model

The cleaned model is channels-last throughout, its graph input (`global_in`, batch 1) included: NHWC,
the order a camera or frame grabber delivers pixels (raster order, channels interleaved per pixel).
qonnx's default would leave an NCHW input followed by a Transpose to NHWC; hls4ml 1.3.0 keeps that
Transpose as an `nnet::transpose` stream layer, which reads the whole image before writing its first
output (about 2 x H x W cycles and H x W x C x bits flip-flops), even for one channel where it moves no
data. `make_input_channels_last=True` removes it; the export step verifies the result against torch,
bit for bit, as always.

Callers still pass NCHW batches (like torch): `run_qonnx` (and the C-simulation and emulator layout
helpers) transpose them to the model's input layout, read from the input's qonnx layout annotation.
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

__all__ = ["RAW_NAME", "CLEAN_NAME", "export_student_qonnx", "clean_qonnx", "load_qonnx", "run_qonnx",
           "input_is_channels_last", "to_model_layout"]

RAW_NAME = "student.qonnx.onnx"
CLEAN_NAME = "student.clean.onnx"


def clean_qonnx(model: ModelWrapper) -> ModelWrapper:
    """cleanup -> channels-last, input included (no input Transpose) -> Gemm to MatMul (hls4ml rejects
    Gemm) -> cleanup."""
    model = cleanup_model(model)
    model = model.transform(ConvertToChannelsLastAndClean(make_input_channels_last=True))
    with warnings.catch_warnings():
        # GemmToMatMul warns for any Gemm opset other than 9; opset-13+ Gemm with transB converts
        # correctly (checked bit-exact against torch by edgekd.export.verify).
        warnings.filterwarnings("ignore", message="The GemmToMatMul transformation")
        model = model.transform(GemmToMatMul())
    return cleanup_model(model)


def export_student_qonnx(model: torch.nn.Module, input_shape: tuple[int, ...], out_dir: Path | str) -> Path:
    """Export `model` (eval mode, batch 1 of `input_shape` = (C, H, W) or (1, C, H, W)) to QONNX.

    Writes `out_dir/student.qonnx.onnx` (as exported) and `out_dir/student.clean.onnx` (cleaned,
    channels-last throughout, NHWC input); returns the path of the cleaned file.
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


def input_is_channels_last(model: ModelWrapper) -> bool:
    """True when the graph input is a 4-D NHWC tensor (qonnx's layout annotation)."""
    name = model.graph.input[0].name
    shape = model.get_tensor_shape(name)
    try:
        layout = model.get_tensor_layout(name)
    except Exception:  # noqa: BLE001 - no annotation: not made channels-last by qonnx
        layout = None
    return len(shape) == 4 and layout is not None and list(layout) == ["N", "H", "W", "C"]


def to_model_layout(model: ModelWrapper, x: np.ndarray) -> np.ndarray:
    """An NCHW batch (like torch) -> the model's input layout (NHWC when the input is channels-last).

    A batch already in the model's layout passes unchanged, except where both readings fit (H == W == C),
    where NCHW wins: callers pass NCHW.
    """
    if not input_is_channels_last(model) or x.ndim != 4:
        return x
    _, h, w, c = model.get_tensor_shape(model.graph.input[0].name)
    if tuple(x.shape[1:]) == (c, h, w):
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


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
        inits = {i.name for i in graph.initializer}  # older exporters list constants as graph inputs too
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            if vi.name in inits:
                continue
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

    `x` is NCHW, like torch (transposed here when the model's input is channels-last, see
    `to_model_layout`), and should already be on the input quantizer's grid (the first Quant node
    re-rounds it anyway).
    Runs in batches of `batch_size`. Returns the graph output, shape (N, classes); with
    `return_all`, the full execution context {tensor name: array concatenated over the batch}
    (initializers included, taken from the first batch). Intermediate 4-D tensors are channels-last
    (NHWC), and so is the graph input of a model made channels-last.
    """
    _quiet_onnxruntime()
    model = load_qonnx(model)
    x = to_model_layout(model, np.asarray(x, dtype=np.float32))
    in_name, out_name = model.graph.input[0].name, model.graph.output[0].name
    in_shape = model.get_tensor_shape(in_name)
    if tuple(x.shape[1:]) != tuple(in_shape[1:]):
        raise ValueError(f"run_qonnx: input has shape {x.shape}; the model's input '{in_name}' takes "
                         f"(N, {', '.join(map(str, in_shape[1:]))}) "
                         f"({'NHWC; pass NCHW as for torch' if input_is_channels_last(model) else 'NCHW'})")
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
