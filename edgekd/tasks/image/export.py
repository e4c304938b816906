"""Step `export` of image classification: brevitas -> QONNX (cleaned, channels-last), op check, torch == QONNX.

It writes the hardware contract (edgekd.contract): the verification inputs (test images on the input
quantizer's grid) and the QONNX outputs, so the `hls` step compares the C-simulation against exactly these
numbers, and the whole test and validation splits on the grid with their labels, for the emulator. With
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
from edgekd.io import write_json
from edgekd.context import BuildContext
from edgekd.contract import HardwareContract
from edgekd.registry import STUDENTS
from edgekd.students.cell_cnn import input_quant_format, model_input_shape, quantize_input


def run(ctx: BuildContext) -> None:
    cfg = ctx.config
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    k = len(splits.class_names)
    size = cfg.student.input_size
    channels = splits.channels  # data.channels: 1 grey, 3 colour
    model = STUDENTS.get(cfg.student.name)(cfg.student, k, quantized=True, in_channels=channels)
    model.load_state_dict(torch.load(ctx.dir("distill") / "student.pt", map_location="cpu", weights_only=True))
    model.eval()

    block = cfg.student.input_block
    input_shape = [1, *model_input_shape(cfg.student, channels)]  # (1, C, S, S), or blocked (1, C k^2, S/k, S/k)
    clean_path = export_student_qonnx(model, tuple(input_shape), ctx.work)
    support = check_hardware_support(clean_path)

    n = min(cfg.hls.verify_samples, len(splits.x_test))
    x_test = quantize_input(model, to_model_input(splits.x_test, size, block)).numpy().astype(np.float32)
    x_val = quantize_input(model, to_model_input(splits.x_val, size, block)).numpy().astype(np.float32)
    x = x_test[:n]
    fidelity = verify_torch_against_qonnx(model, clean_path, x, return_outputs=True)
    fmt = input_quant_format(model)
    HardwareContract(
        qonnx=clean_path.name, input_precision=fmt.hls_type(), input_shape=input_shape,
        output_names=list(splits.class_names), classifier=True,
        scoring={"kind": "classification", "class_names": list(splits.class_names)},
        input_block=block, image_shape=[channels, size, size],
    ).save(ctx.work, x, fidelity.pop("qonnx_outputs"), verify_labels=splits.y_test[:n],
           splits={"test": (x_test, {"labels": splits.y_test}), "val": (x_val, {"labels": splits.y_val})})
    write_json(
        ctx.work / "export.json",
        {
            "qonnx": clean_path.name,
            "qonnx_raw": "student.qonnx.onnx",
            "input_shape": input_shape,
            "input_block": block,  # k x k pixel blocks per stream item (1: one pixel)
            "image_shape": [channels, size, size],
            "input_precision": fmt.hls_type(),
            "support": support,
            "fidelity": fidelity,
        },
    )
