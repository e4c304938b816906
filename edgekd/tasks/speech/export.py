"""Step `export` of speech emotion: the hardware student -> QONNX, torch == QONNX, and the hardware contract.

The hardware student reads host log-mel features on its input grid (edgekd.data.logmel), so the contract's
inputs are those features: the verification sample and every test window, with the teacher's annotations,
the labels (when the corpus has them) and each window's clip, so the emulator's outputs are scored at window
and clip level (edgekd.scoring, kind regression).
"""

from __future__ import annotations

import torch

from edgekd.context import BuildContext
from edgekd.contract import HardwareContract
from edgekd.io import load_npy, write_json
from edgekd.registry import STUDENTS
from edgekd.tasks.speech.model import NAMES, _hw_student_name, _splits, host_features


def _load_hw_student(ctx: BuildContext, splits) -> torch.nn.Module:
    model = STUDENTS.get(_hw_student_name(ctx))(ctx.config.student, len(NAMES), True, n_samples=splits.window)
    model.load_state_dict(torch.load(ctx.dir("distill") / "student.pt", map_location="cpu", weights_only=True))
    return model.eval()


def run(ctx: BuildContext) -> None:
    from edgekd.export.qonnx import export_student_qonnx
    from edgekd.export.support import check_hardware_support
    from edgekd.export.verify import verify_torch_against_qonnx
    from edgekd.students.cell_cnn import input_quant_format
    from edgekd.students.wav2small import HW_REPLACEMENTS

    cfg = ctx.config
    splits = _splits(ctx)
    model = _load_hw_student(ctx, splits)
    shape = tuple(model.input_shape)
    clean_path = export_student_qonnx(model, shape, ctx.work)
    support = check_hardware_support(clean_path)
    n = min(cfg.hls.verify_samples, len(splits.x["test"]))
    x_test = host_features(splits.x["test"], cfg.student, splits.window)
    x = x_test[:n]
    fidelity = verify_torch_against_qonnx(model, clean_path, x, return_outputs=True)
    precision = input_quant_format(model).hls_type()
    targets = {"teacher": load_npy(ctx.dir("teacher") / "annotations_test.npy")}
    if splits.has_labels:
        targets.update(labels=splits.y["test"], clip=splits.clip["test"], clip_labels=splits.clip_labels["test"])
    HardwareContract(
        qonnx=clean_path.name, input_precision=precision, input_shape=list(shape), output_names=list(NAMES),
        classifier=False,
        scoring={"kind": "regression", "names": list(NAMES), "against": {"vs_teacher": "teacher", "vs_labels": "labels"},
                 "clips": {"labels": ["clip", "clip_labels"]}},
    ).save(ctx.work, x, fidelity.pop("qonnx_outputs"), splits={"test": (x_test, targets)})
    write_json(
        ctx.work / "export.json",
        {
            "qonnx": clean_path.name,
            "qonnx_raw": "student.qonnx.onnx",
            "input_shape": list(shape),
            "input_precision": precision,
            "input": "host log-mel (edgekd.data.logmel.features_on_grid)",
            "hw_replacements": HW_REPLACEMENTS,
            "support": support,
            "fidelity": fidelity,
        },
    )
