"""Distil one student config with one method, the way the `distill` step does, and score it on a test split.

Used by the method comparison (benchmarks/kd_methods.py) and the validation of `edgekd suggest-student`
(benchmarks/suggest_student_validation.py): float phase, then quantization-aware fine-tuning from the
float weights, then metrics of the quantized student on the test split. Nothing is written to disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from edgekd.config import DistillConfig, StudentConfig
from edgekd.distill.metrics import classification_metrics
from edgekd.distill.trainer import predict_logits, train_student
from edgekd.registry import STUDENTS
from edgekd.students.cell_cnn import count_params, load_float_weights

__all__ = ["DistillData", "distill_and_score"]


@dataclass
class DistillData:
    """Preprocessed student inputs and labels; teacher logits (N, K) or per view (V, N, K), or None."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    teacher_logits: torch.Tensor | None


def distill_and_score(student_cfg: StudentConfig, cfg: DistillConfig, data: DistillData, loss: str | None = None) -> dict:
    """Train the student (float `cfg.epochs`, then QAT `cfg.qat_epochs`) with `loss` (default cfg.loss).

    Returns {"loss", "seed", "params", "float_accuracy", "quant_accuracy", "seconds", "history"}.
    The labels-only loss `ce` is trained without teacher logits.
    """
    loss = loss or cfg.loss
    teacher = None if loss == "ce" else data.teacher_logits
    k = len(data.class_names)
    build = STUDENTS.get(student_cfg.name)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)  # same initial weights for every method with this seed, whatever ran before
    float_model = build(student_cfg, k, quantized=False)
    float_run = train_student(
        float_model, data.x_train, data.y_train, teacher, data.x_val, data.y_val, cfg, loss, f"{loss} float",
        epochs=cfg.epochs, lr=cfg.lr,
    )
    float_acc = classification_metrics(data.y_test.numpy(), predict_logits(float_model, data.x_test), data.class_names)
    model = build(student_cfg, k, quantized=True)
    load_float_weights(model, float_run.state_dict)
    history = {"float": float_run.history}
    if cfg.qat_epochs > 0:
        qat_run = train_student(
            model, data.x_train, data.y_train, teacher, data.x_val, data.y_val, cfg, loss, f"{loss} QAT",
            epochs=cfg.qat_epochs, lr=cfg.qat_lr,
        )
        history["qat"] = qat_run.history
    quant = classification_metrics(data.y_test.numpy(), predict_logits(model, data.x_test), data.class_names)
    return {
        "loss": loss,
        "seed": cfg.seed,
        "params": count_params(model),
        "float_accuracy": float_acc["accuracy"],
        "quant_accuracy": quant["accuracy"],
        "seconds": round(time.perf_counter() - t0, 1),
        "history": history,
    }
