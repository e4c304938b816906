"""Reading a bring-your-own QONNX file: the forms the QONNX ecosystem writes, checked as untrusted input.

`load_checked` takes what brevitas, QKeras (via tf2onnx + qonnx) and FINN write: custom nodes in the legacy
domains `onnx.brevitas` / `finn.custom_op.general` / `finn` with or without an opset import for them (via
`edgekd.safety.read_untrusted_qonnx`), files without value_info (qonnx shape and datatype inference), a
symbolic or fixed batch dimension, weights listed as graph inputs. `_run_original` executes the user's model
in batches for the preparation check; `materialise_bias_quants` is one exact rewrite for rescaled models.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ByoError", "load_checked", "materialise_bias_quants"]


class ByoError(ValueError):
    """A bring-your-own model that cannot be used; the message names the file, node or field."""



def load_checked(path: Path) -> Any:
    """Read an untrusted QONNX file (`edgekd.safety.read_untrusted_qonnx`: size, external data, custom
    domains, onnx.checker), then a qonnx ModelWrapper after shape and datatype inference and cleanup."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.util.cleanup import cleanup_model

    from edgekd.safety import read_untrusted_qonnx

    proto = read_untrusted_qonnx(path, ByoError)
    model = _fix_batch_dim(ModelWrapper(proto), path)
    _neutral_initializer_names(model)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*old-style domain")
            model = cleanup_model(model)  # qonnx InferShapes: files without value_info get every shape here
            model = model.transform(InferDataTypes())
    except Exception as err:  # noqa: BLE001 - qonnx raises bare exceptions for shapes it cannot infer
        raise ByoError(f"{path}: qonnx cannot infer the model's shapes and types ({type(err).__name__}: "
                       f"{str(err)[:200]})") from None
    missing = [vi for vi in model.graph.value_info if not _has_shape(vi)]
    missing += [o for o in model.graph.output if not _has_shape(o)]
    if missing:
        producer = model.find_producer(missing[0].name)
        where = f" (output of {producer.op_type} '{producer.name}')" if producer is not None else ""
        raise ByoError(f"{path}: qonnx cannot infer the shape of tensor '{missing[0].name}'{where}; export the "
                       "model with fixed input shapes")
    return model


def _neutral_initializer_names(model) -> None:
    """Rename every constant to `edgekd_const_<i>` before qonnx's cleanup. Its GiveReadableTensorNames renames
    only tensors with value_info to temporary names first, so a file whose scalar constants already carry
    readable names in another numbering (`Quant_1_param1` on what cleanup calls Quant_0) collides
    ('Found multiple get_by_name matches'); the readable names come back with the cleanup."""
    inputs = {i.name for i in model.graph.input}
    for i, init in enumerate(list(model.graph.initializer)):
        if init.name not in inputs:
            model.rename_tensor(init.name, f"edgekd_const_{i}")


def _drop_initializer_value_info(model) -> None:
    """qonnx's ModelWrapper gives initializers value_info; edgekd's batched execution (run_qonnx) would then
    resize a constant whose first dimension is 1 (a TopK's k, a 1-row weight) to the batch."""
    inits = {i.name for i in model.graph.initializer}
    for vi in [v for v in model.graph.value_info if v.name in inits]:
        model.graph.value_info.remove(vi)


def _has_shape(vi) -> bool:
    t = vi.type.tensor_type
    return t.HasField("shape") and all(d.dim_value > 0 for d in t.shape.dim)


def _fix_batch_dim(model, path: Path):
    """The batch dimension becomes 1, whether symbolic ('N', 'unk__0': QKeras/tf2onnx and dynamic-axis exports)
    or fixed to another size: hls4ml streams one sample at a time and qonnx executes fixed shapes.
    Intermediate shapes with a symbolic dimension are dropped (shape inference recomputes them); a symbolic
    input dimension other than the batch is refused."""
    from qonnx.transformation.change_batchsize import ChangeBatchSize

    graph = model.graph
    for vi in [v for v in graph.input if v.name not in {i.name for i in graph.initializer}]:
        dims = vi.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if d.dim_value <= 0 and i > 0:
                raise ByoError(f"{path}: input '{vi.name}' has a symbolic dimension {i} ('{d.dim_param}'); "
                               "export the model with a fixed input shape")
    for vi in [v for v in graph.value_info if any(d.dim_value <= 0 for d in v.type.tensor_type.shape.dim)]:
        graph.value_info.remove(vi)
    inits = {i.name for i in graph.initializer}  # older exporters list the weights as graph inputs too
    batch = [vi.type.tensor_type.shape.dim[0].dim_value for vi in [*graph.input, *graph.output]
             if len(vi.type.tensor_type.shape.dim) and vi.name not in inits]
    if any(b != 1 for b in batch):
        model = model.transform(ChangeBatchSize(1))  # also the batch entry of constant Reshape shapes
        for vi in model.graph.output[1:]:
            if len(vi.type.tensor_type.shape.dim):
                vi.type.tensor_type.shape.dim[0].dim_value = 1
    return model


def _run_original(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """qonnx execution of the user's (cleaned, channels-first) model on `x` in batches: the batch size set with
    qonnx's ChangeBatchSize and shapes inferred again, so constants of shape (1, ...) (a TopK's k) stay."""
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    from edgekd.export.qonnx import _quiet_onnxruntime

    _quiet_onnxruntime()
    in_name, out_name = model.graph.input[0].name, model.graph.output[0].name
    x = np.asarray(x, dtype=np.float32)
    batched: dict[int, Any] = {}
    outs = []
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        if len(xb) not in batched:
            batched[len(xb)] = model.transform(ChangeBatchSize(len(xb))).transform(InferShapes())
        outs.append(execute_onnx(batched[len(xb)], {in_name: xb})[out_name])
    return np.concatenate(outs, axis=0)


def materialise_bias_quants(model) -> list[str]:
    """Replace each Quant of a constant that feeds only bias inputs (an Add, a Conv's third input) by its
    quantized values. Exact (the same float values). For models hls4ml rescales (float scales): its
    scale-moving passes fold such a bias into an ApplyAlpha from the *unquantized* constant (hls4ml 1.3.0
    warns 'Failed to propagate quantization bias down Add node'), off by up to half a bias step.
    Returns the replaced Quant nodes' names."""
    from edgekd.export.prepare import _quant_params, quant_values

    done = []
    for node in list(model.graph.node):
        if node.op_type != "Quant" or model.get_initializer(node.input[0]) is None:
            continue
        cons = model.find_consumers(node.output[0]) or []
        if not cons or not all(c.op_type == "Add" or (c.op_type == "Conv" and list(c.input).index(node.output[0]) == 2)
                               for c in cons):
            continue
        p = _quant_params(model, node)
        if p is None:
            continue
        values = quant_values(model.get_initializer(node.input[0]), p).astype(np.float32)
        model.graph.node.remove(node)
        model.set_initializer(node.output[0], values)
        done.append(node.name)
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)
    _drop_initializer_value_info(model)
    return done
