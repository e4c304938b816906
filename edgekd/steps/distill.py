"""Step `distill`: train the quantization-aware student from the cached teacher logits.

Besides the distilled student it trains, with the same seed and budget, the same student on labels
alone (`distill.baseline`) and the same student in float (`distill.float_reference`), so the report
shows what distillation bought and what quantization cost.
"""

from __future__ import annotations

import logging

import torch

from edgekd.data.cells import CellSplits
from edgekd.data.transforms import to_model_input
from edgekd.distill.metrics import classification_metrics
from edgekd.distill.trainer import predict_logits, train_student
from edgekd.io import load_npy, write_json
from edgekd.pipeline import BuildContext
from edgekd.registry import STUDENTS
from edgekd.students.cell_cnn import count_macs, count_params

log = logging.getLogger(__name__)


def run(ctx: BuildContext) -> None:
    cfg = ctx.config
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    k = len(splits.class_names)
    size = cfg.student.input_size
    x_train, x_val, x_test = (to_model_input(x, size) for x in (splits.x_train, splits.x_val, splits.x_test))
    y_train, y_val = torch.as_tensor(splits.y_train), torch.as_tensor(splits.y_val)
    teacher_logits = torch.as_tensor(load_npy(ctx.dir("teacher") / "logits_train.npy"))
    if teacher_logits.shape != (len(x_train), k):
        raise ValueError(
            f"teacher logits have shape {tuple(teacher_logits.shape)}, expected ({len(x_train)}, {k}): "
            "re-run the teacher step (edgekd build --from teacher)"
        )

    runs = [("student", True, cfg.distill.loss, teacher_logits)]
    if cfg.distill.baseline:
        runs.append(("baseline_no_kd", True, "ce", None))
    if cfg.distill.float_reference:
        runs.append(("float", False, cfg.distill.loss, teacher_logits))

    build_student = STUDENTS.get(cfg.student.name)
    metrics: dict[str, dict] = {}
    training: dict[str, dict] = {}
    params = None
    for label, quantized, loss, teacher in runs:
        model = build_student(cfg.student, k, quantized=quantized)
        params = count_params(model) if quantized else params
        result = train_student(model, x_train, y_train, teacher, x_val, y_val, cfg.distill, loss, label)
        torch.save(result.state_dict, ctx.work / f"{label}.pt")
        key = {"student": "quant"}.get(label, label)
        metrics[key] = classification_metrics(splits.y_test, predict_logits(model, x_test), splits.class_names)
        training[label] = {"loss": loss, "quantized": quantized, "best_epoch": result.best_epoch, "history": result.history}
        log.info("%s: test accuracy %.4f", label, metrics[key]["accuracy"])

    write_json(
        ctx.work / "distill.json",
        {
            "name": cfg.student.name,
            "params": params,
            "macs": count_macs(cfg.student, k),
            "loss": cfg.distill.loss,
            "metrics": metrics,
            "training": training,
        },
    )
