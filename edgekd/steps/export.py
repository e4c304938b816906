"""Step `export`: brevitas -> QONNX (cleaned, channels-last), op check, torch == QONNX exactly.

The verification inputs (test images on the input quantizer's grid) and the QONNX outputs are
saved here so the `hls` step compares the C-simulation against exactly these numbers. With
`student.input_block` k > 1 the exported model's input, and so every crossing after this step, is the
blocked image (1, k^2, S/k, S/k) (edgekd.data.transforms.space_to_depth); export.json records `input_block`
and `image_shape` for the hardware half.
"""

from __future__ import annotations

import numpy as np
import torch

from edgekd.data.cells import CellSplits
from edgekd.data.transforms import to_model_input
from edgekd.export.qonnx import export_student_qonnx
from edgekd.export.support import check_hardware_support
from edgekd.export.verify import verify_torch_against_qonnx
from edgekd.io import save_npy, write_json
from edgekd.pipeline import BuildContext
from edgekd.registry import STUDENTS
from edgekd.students.cell_cnn import input_quant_format, model_input_shape, quantize_input


def run(ctx: BuildContext) -> None:
    if ctx.config.task == "regression":  # speech emotion: edgekd.steps.audio
        from edgekd.steps import audio

        return audio.run_export(ctx)
    cfg = ctx.config
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    k = len(splits.class_names)
    size = cfg.student.input_size
    model = STUDENTS.get(cfg.student.name)(cfg.student, k, quantized=True)
    model.load_state_dict(torch.load(ctx.dir("distill") / "student.pt", map_location="cpu", weights_only=True))
    model.eval()

    block = cfg.student.input_block
    input_shape = [1, *model_input_shape(cfg.student)]  # (1, 1, S, S), or blocked (1, k^2, S/k, S/k)
    clean_path = export_student_qonnx(model, tuple(input_shape), ctx.work)
    support = check_hardware_support(clean_path)

    n = min(cfg.hls.verify_samples, len(splits.x_test))
    x = quantize_input(model, to_model_input(splits.x_test[:n], size, block)).numpy().astype(np.float32)
    fidelity = verify_torch_against_qonnx(model, clean_path, x, return_outputs=True)
    save_npy(ctx.work / "verify_inputs.npy", x)
    save_npy(ctx.work / "verify_labels.npy", splits.y_test[:n])
    save_npy(ctx.work / "qonnx_outputs.npy", fidelity.pop("qonnx_outputs"))
    fmt = input_quant_format(model)
    write_json(
        ctx.work / "export.json",
        {
            "qonnx": clean_path.name,
            "qonnx_raw": "student.qonnx.onnx",
            "input_shape": input_shape,
            "input_block": block,  # k x k pixel blocks per stream item (1: one pixel)
            "image_shape": [1, size, size],
            "input_precision": fmt.hls_type(),
            "support": support,
            "fidelity": fidelity,
        },
    )
