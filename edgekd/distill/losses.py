"""Distillation losses, registered by name so a config says `distill: {loss: kd}`.

Every loss has the signature `loss(student_logits, labels, teacher_logits, cfg) -> scalar tensor`;
`teacher_logits` is None for the labels-only baseline. Losses from the literature that keep state
(DTS's temperature) or train extra modules (OFA's heads) are in edgekd.distill.methods.
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

    With a = xi > 1 and T = 1 this is the self-distillation objective of Das and Sanghavi,
    "Understanding Self-Distillation in the Presence of Label Noise" (ICML 2023):
    xi CE(softmax(t), s) + (1 - xi) CE(y, s), up to the constant xi H(softmax(t)); xi > 1 can be
    optimal under heavy label noise. Distil a label-smoothed teacher at low T (Mueller et al. 2019).
    """
    if teacher is None:
        raise ValueError("loss 'kd' needs teacher logits")
    t = cfg.temperature
    return (1.0 - cfg.alpha) * F.cross_entropy(student, labels) + cfg.alpha * t * t * soft_kl(student, teacher, t)


def soft_kl(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    """KL(softmax(teacher / t) || softmax(student / t)), mean over the batch (no T^2 factor)."""
    return F.kl_div(
        F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="batchmean", log_target=True
    )


def concordance_cc(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Concordance correlation coefficient per output column over the whole batch/set.

    CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2), population (1/N) moments, as in
    Lin (1989) and the Wav2Small paper (arXiv 2408.13920). `pred`, `target`: (N, D) -> (D,).
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"CCC needs two (N, D) tensors of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    mx, my = pred.mean(dim=0), target.mean(dim=0)
    vx = ((pred - mx) ** 2).mean(dim=0)
    vy = ((target - my) ** 2).mean(dim=0)
    cov = ((pred - mx) * (target - my)).mean(dim=0)
    return 2.0 * cov / (vx + vy + (mx - my) ** 2 + eps)


def _regression_target(labels: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
    # As in the Wav2Small paper, students learn from the teacher's annotations; labels only for the baseline.
    return labels if teacher is None else teacher


@LOSSES.register("ccc")
def ccc_loss(student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig) -> torch.Tensor:
    """1 - mean_d CCC_d(s, t) over the batch (t = teacher annotations, or labels without a teacher).

    Source: Wav2Small (arXiv 2408.13920), following the CCC objective of Wav2Vec2 emotion models.
    """
    return 1.0 - concordance_cc(student, _regression_target(labels, teacher)).mean()


@LOSSES.register("mse")
def mse_loss(student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig) -> torch.Tensor:
    """mean over batch and outputs of (s - t)^2 (t = teacher annotations, or labels without a teacher)."""
    return F.mse_loss(student, _regression_target(labels, teacher))


@LOSSES.register("ccc_mse")
def ccc_mse_loss(
    student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
) -> torch.Tensor:
    """alpha (1 - mean CCC) + (1 - alpha) MSE: CCC fixes the scale and correlation, MSE anchors the offset."""
    target = _regression_target(labels, teacher)
    return cfg.alpha * (1.0 - concordance_cc(student, target).mean()) + (1.0 - cfg.alpha) * F.mse_loss(student, target)
