"""The arms a distilled student is judged against, each trained from the same seed, labels, validation and steps.

An expert asks of any distillation gain: would a simpler use of the same teacher, or of the teacher's own
labelled pool, have done as well? Each arm is one call of `train_arm`, on one `ArmData`:

- `labels_only`: cross-entropy on the lab's labelled training images alone.
- `pseudo_labels`: cross-entropy on every training image, the teacher's top class standing in for each
  missing label (hard pseudo-labels; the trainer's rule for rows without a label).
- `pool_direct`: cross-entropy on the teacher's labelled pool plus the lab's labels, no teacher at all: the
  upper bound a lab that has the pool could reach without distilling (needs `ArmData.x_pool`).
- `kd`: Hinton KD on every training image (labels where there are labels, the teacher's top class elsewhere).
- `function_matching`: Beyer et al. 2022, the teacher run online on the student's own mixed-up view, on a
  schedule `fm_schedule` times longer than the other arms (their gains need long schedules).
- `kd_finetune`: `kd`, then `finetune_epochs` of cross-entropy on the labelled images at a tenth of the lr.

Every arm keeps the epoch with the best validation accuracy on the lab's validation images (which come out of
the label budget: edgekd.data.cells), and all arms of one seed start from the same initial weights and draw
their batches from the same generator seed. The student is trained in float (quantization-aware fine-tuning
is the build's job; a benchmark can add it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from edgekd.config import DistillConfig, StudentConfig
from edgekd.determinism import seed_everything
from edgekd.distill.trainer import predict_logits, train_student
from edgekd.registry import STUDENTS

log = logging.getLogger(__name__)

ARMS = ("labels_only", "pseudo_labels", "pool_direct", "kd", "function_matching", "kd_finetune")

__all__ = ["ARMS", "ArmData", "ArmResult", "train_arm"]


@dataclass
class ArmData:
    """Student inputs (N, C, S, S): the training pool (labels, UNLABELLED = -1 where hidden), the teacher's
    logits on it (per view (V, N, K) or (N, K)), validation and test; the teacher's own labelled pool (student
    inputs and labels in the task's classes) for `pool_direct`; an OnlineTeacher for `function_matching`."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    teacher_logits: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: np.ndarray
    num_classes: int
    x_pool: torch.Tensor | None = None
    y_pool: torch.Tensor | None = None
    online_teacher: object | None = None
    in_channels: int = 1


@dataclass
class ArmResult:
    arm: str
    test_pred: np.ndarray  # predicted class per test image
    test_accuracy: float
    val_accuracy: float
    best_epoch: int
    train_accuracy_labelled: float  # on the labelled training images: data- vs capacity-limited
    state_dict: dict | None = None


def _fit(student_cfg: StudentConfig, cfg: DistillConfig, data: ArmData, loss: str, xs, ys, teacher, *,
         epochs: int, lr: float, steps: int, online=None, init: dict | None = None, label: str = ""):
    seed_everything(cfg.seed)  # same initial weights in every arm of this seed
    model = STUDENTS.get(student_cfg.name)(student_cfg, data.num_classes, quantized=False,
                                           in_channels=data.in_channels)
    if init is not None:
        model.load_state_dict(init)
    run = train_student(model, xs, ys, teacher, data.x_val, data.y_val, cfg, loss, label, epochs=epochs, lr=lr,
                        steps_per_epoch=steps, online_teacher=online)
    return model, run


def train_arm(arm: str, student_cfg: StudentConfig, cfg: DistillConfig, data: ArmData, *, steps_per_epoch: int,
              fm_schedule: int = 3, finetune_epochs: int = 5, lr_labels_only: float | None = None,
              kd_result: ArmResult | None = None) -> ArmResult:
    """Train the float student of `arm` (see the module docstring) for cfg.epochs x steps_per_epoch optimizer
    steps (function matching: fm_schedule times as many); `lr_labels_only` is the labels-only arm's own
    learning rate (chosen on validation), cfg.lr otherwise. `kd_finetune` starts from `kd_result` (the kd arm
    of the same seed and settings) when given, instead of training kd again."""
    if arm not in ARMS:
        raise ValueError(f"unknown baseline arm '{arm}'; choose from {', '.join(ARMS)}")
    lab = data.y_train >= 0
    t = data.teacher_logits
    common = dict(epochs=cfg.epochs, lr=cfg.lr, steps=steps_per_epoch, label=arm)
    if arm == "labels_only":
        common["lr"] = lr_labels_only or cfg.lr
        model, run = _fit(student_cfg, cfg, data, "ce", data.x_train[lab], data.y_train[lab], None, **common)
    elif arm == "pseudo_labels":
        model, run = _fit(student_cfg, cfg, data, "ce", data.x_train, data.y_train, t, **common)
    elif arm == "pool_direct":
        if data.x_pool is None:
            raise ValueError("arm pool_direct needs the teacher's labelled pool (ArmData.x_pool, y_pool)")
        xs = torch.cat([data.x_pool, data.x_train[lab]])
        ys = torch.cat([data.y_pool, data.y_train[lab]])
        model, run = _fit(student_cfg, cfg, data, "ce", xs, ys, None, **common)
    elif arm == "kd" or (arm == "kd_finetune" and kd_result is None):
        model, run = _fit(student_cfg, cfg, data, "kd", data.x_train, data.y_train, t, **common)
        if arm == "kd_finetune":
            kd_result = ArmResult("kd", np.zeros(0), 0.0, 0.0, run.best_epoch, 0.0, run.state_dict)
    if arm == "kd_finetune":
        model, run = _fit(student_cfg, cfg, data, "ce", data.x_train[lab], data.y_train[lab], None,
                          epochs=finetune_epochs, lr=cfg.lr / 10, steps=steps_per_epoch, init=kd_result.state_dict,
                          label="kd_finetune")
        run.best_epoch = kd_result.best_epoch * 1000 + run.best_epoch  # kd's epoch, then the fine-tuning epoch
    elif arm == "function_matching":
        if data.online_teacher is None:
            raise ValueError("arm function_matching needs an online teacher (ArmData.online_teacher)")
        common["epochs"] = cfg.epochs * fm_schedule
        model, run = _fit(student_cfg, cfg, data, "function_matching", data.x_train, data.y_train, t,
                          online=data.online_teacher, **common)
    pred = predict_logits(model, data.x_test).argmax(1)
    val = max(h["val_accuracy"] for h in run.history)
    xl, yl = data.x_train[lab], data.y_train[lab].numpy()
    train_acc = float((predict_logits(model, xl).argmax(1) == yl).mean()) if len(yl) else float("nan")
    return ArmResult(arm, pred, float((pred == data.y_test).mean()), float(val), run.best_epoch, train_acc,
                     run.state_dict)
