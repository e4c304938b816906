"""Distillation losses, registered by name so a config says `distill: {loss: kd}`.

Every loss has the signature `loss(student_logits, labels, teacher_logits, cfg) -> scalar tensor`;
`teacher_logits` is None for the labels-only baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.config import DistillConfig
from edgekd.registry import LOSSES


@LOSSES.register("ce")
def cross_entropy(
    student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
) -> torch.Tensor:
    """Labels only: CE(s, y). The baseline that shows what distillation buys."""
    return F.cross_entropy(student, labels)


@LOSSES.register("kd")
def hinton_kd(
    student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
) -> torch.Tensor:
    """Hinton KD: (1 - a) CE(s, y) + a T^2 KL(softmax(t / T) || softmax(s / T)).

    Source: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network" (2015). The T^2
    factor keeps the soft term's gradient scale independent of T.
    """
    if teacher is None:
        raise ValueError("loss 'kd' needs teacher logits")
    t = cfg.temperature
    soft = F.kl_div(
        F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="batchmean", log_target=True
    )
    return (1.0 - cfg.alpha) * F.cross_entropy(student, labels) + cfg.alpha * t * t * soft
