"""Distillation methods from the literature: DTS, PLD, OFA and function matching, registered by name like the losses.

Plain losses are functions `loss(student_logits, labels, teacher_logits, cfg) -> scalar`. A method that
keeps state across iterations (DTS's smoothed temperature) or trains extra modules (OFA's heads) is a
`StatefulLoss` subclass registered by class: `make_loss(name, cfg)` gives the trainer a fresh object per
training run (float phase and QAT phase each get their own), and the trainer calls

    extra_params = loss.attach(model, sample_inputs)   # once, before the optimizer is built
    loss.begin_epoch(epoch, epochs)                     # at the start of every epoch
    loss(student_logits, labels, teacher_logits, cfg)   # every iteration (may update state)
    loss.state()                                        # logged in the epoch's history
    loss.detach()                                       # always, at the end (removes hooks)

Nothing a StatefulLoss creates is part of the student: OFA's heads live in the loss object and its
forward hooks are removed by `detach`, so the exported student has exactly the structure it had.

A method whose class sets `online_teacher = True` (function matching) is not given cached teacher logits:
the trainer asks it to `mix` the student's and the teacher's inputs of each batch, runs the teacher on the
mixed view (edgekd.teachers.online.OnlineTeacher) and passes those logits to the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.config import DistillConfig
from edgekd.distill.losses import soft_kl
from edgekd.registry import LOSSES

__all__ = [
    "DynamicTemperatureKD",
    "FunctionMatchingKD",
    "LossFn",
    "OneForAllKD",
    "StatefulLoss",
    "dts_target_temperature",
    "make_loss",
    "ofa_term",
    "plackett_luce_kd",
]


class StatefulLoss:
    """Base of losses with state; the default hooks do nothing. Subclasses implement `__call__`."""

    def __init__(self, cfg: DistillConfig) -> None:
        self.cfg = cfg

    def attach(self, model: nn.Module, sample: torch.Tensor) -> list[nn.Parameter]:
        """Called once before training; returns extra trainable parameters (added to the optimizer)."""
        return []

    def detach(self) -> None:
        """Called once after training (also on errors): undo whatever `attach` did to the model."""

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Called at the start of epoch `epoch` (0-based) of `epochs`."""

    def state(self) -> dict[str, float]:
        """Numbers worth logging per epoch (JSON-ready)."""
        return {}

    def __call__(
        self, student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
    ) -> torch.Tensor:
        raise NotImplementedError


LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", DistillConfig], torch.Tensor] | StatefulLoss


def make_loss(name: str, cfg: DistillConfig) -> LossFn:
    """The registered loss `name`, ready to call: a function as registered, or a new StatefulLoss object."""
    entry = LOSSES.get(name)
    if isinstance(entry, type) and issubclass(entry, StatefulLoss):
        return entry(cfg)
    return entry


def _need_teacher(name: str, teacher: torch.Tensor | None) -> torch.Tensor:
    if teacher is None:
        raise ValueError(f"loss '{name}' needs teacher logits (the labels-only baseline uses loss 'ce')")
    return teacher


# --- DTS --------------------------------------------------------------------------------------------------


def dts_target_temperature(progress: float, ce_teacher: float, ce_student: float, t0: float, t_min: float,
                           t_max: float) -> float:
    """T* of one iteration of the Dynamic Temperature Scheduler, before smoothing.

    c = (1 + cos(pi p)) / 2; d = CE_teacher - CE_student; s = d / (d + 1); if s > 1 (only when the student's
    CE exceeds the teacher's by more than 1 nat): s = 1.35 where s > 2, T* = T0 c s; else T* = T0 c;
    then T* = clamp(T*, Tmin, Tmax).
    """
    c = (1.0 + math.cos(math.pi * progress)) / 2.0
    d = ce_teacher - ce_student
    s = math.inf if d + 1.0 == 0.0 else d / (d + 1.0)
    if s > 1.0:
        if s > 2.0:
            s = min(s, 1.35)
        target = t0 * c * s
    else:
        target = t0 * c
    return min(max(target, t_min), t_max)


@LOSSES.register("dts")
class DynamicTemperatureKD(StatefulLoss):
    """Hinton KD with the Dynamic Temperature Scheduler: w_ce CE(s, y) + w_kd T^2 KL(softmax(t/T) || softmax(s/T)).

    Every iteration, before the loss is computed: p = epoch / E (E = epochs of this training run),
    T* = dts_target_temperature(p, CE(t, y), CE(s, y), T0, Tmin, Tmax) with the batch-mean CEs, and
    T <- m T + (1 - m) T* (m = 0.9); T starts at T0. Defaults (distill.dts) are the paper's: T0 = 4,
    Tmin = 2, Tmax = 4, w_ce = 0.1, w_kd = 0.9.

    Source: "Dynamic Temperature Scheduler for Knowledge Distillation" (arXiv 2025), rule as written in
    the project's REFERENCE.md section 3. The float and the QAT phase each run their own schedule.
    """

    def __init__(self, cfg: DistillConfig) -> None:
        super().__init__(cfg)
        self.temperature = cfg.dts.t0
        self.progress = 0.0
        self.iterations = 0

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        self.progress = epoch / max(epochs, 1)

    def state(self) -> dict[str, float]:
        return {"temperature": float(self.temperature), "progress": float(self.progress)}

    def step_temperature(self, ce_teacher: float, ce_student: float) -> float:
        d = self.cfg.dts
        target = dts_target_temperature(self.progress, ce_teacher, ce_student, d.t0, d.t_min, d.t_max)
        self.temperature = d.momentum * self.temperature + (1.0 - d.momentum) * target
        self.iterations += 1
        return self.temperature

    def loss_at(self, student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
        """The loss at a fixed temperature `t` (no state change)."""
        d = self.cfg.dts
        return d.ce_weight * F.cross_entropy(student, labels) + d.kd_weight * t * t * soft_kl(student, teacher, t)

    def __call__(
        self, student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
    ) -> torch.Tensor:
        teacher = _need_teacher("dts", teacher)
        with torch.no_grad():
            ce_t = float(F.cross_entropy(teacher, labels))
            ce_s = float(F.cross_entropy(student, labels))
        return self.loss_at(student, labels, teacher, self.step_temperature(ce_t, ce_s))


# --- PLD --------------------------------------------------------------------------------------------------


def plackett_luce_order(labels: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """pi*: the true label first, then the other classes by descending teacher logit (ties: lower index first)."""
    key = teacher.detach().clone().to(torch.float64)
    key.scatter_(1, labels.view(-1, 1), math.inf)
    return torch.sort(key, dim=1, descending=True, stable=True).indices


@LOSSES.register("pld")
def plackett_luce_kd(
    student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
) -> torch.Tensor:
    """Plackett-Luce distillation: L = sum_k a_k (logsumexp_{j >= k} s_{pi*_j} - s_{pi*_k}), mean over the batch.

    pi* = the true label first, then the other classes by descending teacher logit; a_k = softmax(t / tau)
    at class pi*_k (tau = distill.pld.tau). A list-wise (Plackett-Luce) ranking loss weighted by the
    teacher's confidence; it already pushes the true label to the top, so there is no separate CE term.

    Source: "Plackett-Luce Distillation" (PLD, 2025), as summarised in REFERENCE.md section 3.
    """
    teacher = _need_teacher("pld", teacher)
    order = plackett_luce_order(labels, teacher)
    s_ranked = student.gather(1, order)
    weights = F.softmax(teacher / cfg.pld.tau, dim=1).gather(1, order)
    tail_lse = torch.logcumsumexp(s_ranked.flip(1), dim=1).flip(1)  # logsumexp over ranks j >= k
    return (weights * (tail_lse - s_ranked)).sum(dim=1).mean()


# --- OFA --------------------------------------------------------------------------------------------------


def ofa_term(
    student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, eps: float, temperature: float = 1.0
) -> torch.Tensor:
    """One OFA term: mean_b sum_c -((p_t,c + m_c)^eps - m_c) log p_s,c, with m the one-hot label mask.

    For the target class the weight is (1 + p_t)^eps - 1 (eps > 1 enhances the target class); for the
    others p_t^eps. eps = 1 gives plain soft-label cross-entropy. p = softmax(logits / temperature).
    """
    mask = F.one_hot(labels, student.shape[1]).to(student.dtype)
    p_t = F.softmax(teacher / temperature, dim=1)
    weights = (p_t + mask) ** eps - mask
    return -(weights * F.log_softmax(student / temperature, dim=1)).sum(dim=1).mean()


def ofa_feature_modules(model: nn.Module) -> list[nn.Module]:
    """The student stages whose outputs get an OFA head: every conv block but the last (whose output
    the student's own dense layer turns into the final logits)."""
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        raise TypeError(
            f"loss 'ofa' needs a student with its conv stages in a `blocks` ModuleList (like cell_cnn); "
            f"{type(model).__name__} has none: use loss kd, dts or pld for this student"
        )
    return list(blocks)[:-1]


class _Head(nn.Sequential):
    """Feature map (N, C, H, W) -> logits (N, K): conv 3x3 + ReLU + global average pool + dense."""

    def __init__(self, in_channels: int, hidden: int, num_classes: int, spatial: int) -> None:
        stride = 2 if spatial >= 8 else 1
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, stride=stride, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(hidden, num_classes),
        )


@LOSSES.register("ofa")
class OneForAllKD(StatefulLoss):
    """One-for-All KD: w_ce CE(z, y) + w_ofa (OFA(z, t) + sum_i OFA(head_i(f_i), t)).

    z: the student's final logits; f_i: the output of conv stage i (all but the last); head_i: a small
    conv + pool + dense projector into the logit space, trained with the student and thrown away after
    training (it lives in this loss object, never in the student, so export sees the student unchanged).
    OFA(z, t) = ofa_term(z, t, y, eps, T) (distill.ofa.eps, distill.ofa.temperature).

    Source: Hao et al., "One-for-All: Bridge the Gap Between Heterogeneous Architectures in Knowledge
    Distillation" (NeurIPS 2023); defaults follow its CNN settings (eps = 1, T = 1, weights 1).
    """

    def __init__(self, cfg: DistillConfig) -> None:
        super().__init__(cfg)
        self.heads = nn.ModuleList()
        self._features: list[torch.Tensor | None] = []
        self._handles: list = []

    def attach(self, model: nn.Module, sample: torch.Tensor) -> list[nn.Parameter]:
        modules = ofa_feature_modules(model)
        self._features = [None] * len(modules)
        shapes: list[tuple[int, ...]] = [()] * len(modules)

        def make_hook(i: int):
            def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
                shapes[i] = tuple(output.shape)
                # only training forwards are distilled; validation forwards leave no references behind
                self._features[i] = output if module.training else None

            return hook

        self._handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(modules)]
        was_training = model.training
        model.eval()
        with torch.no_grad():
            num_classes = int(model(sample[:2]).shape[1])
        model.train(was_training)
        hidden = self.cfg.ofa.head_channels
        self.heads = nn.ModuleList(_Head(s[1], hidden, num_classes, s[-1]) for s in shapes)
        self.heads.train(was_training)
        return list(self.heads.parameters())

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._features = []

    def __call__(
        self, student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
    ) -> torch.Tensor:
        teacher = _need_teacher("ofa", teacher)
        o = cfg.ofa
        total = ofa_term(student, teacher, labels, o.eps, o.temperature)
        for i, head in enumerate(self.heads):
            feat = self._features[i]
            if feat is None:
                raise RuntimeError(
                    f"loss 'ofa': no features from stage {i} in this iteration; call attach(model, ...) before "
                    "training and compute the loss right after the student's training-mode forward"
                )
            head.train(True)
            total = total + ofa_term(head(feat), teacher, labels, o.eps, o.temperature)
            self._features[i] = None
        return o.ce_weight * F.cross_entropy(student, labels) + o.weight * total


# --- function matching ------------------------------------------------------------------------------------


@LOSSES.register("function_matching")
class FunctionMatchingKD(StatefulLoss):
    """Function matching: (1 - w) T^2 KL(softmax(t(x~)/T) || softmax(s(x~)/T)) + w [lam CE(s, y) + (1 - lam) CE(s, y_p)].

    x~ = lam x + (1 - lam) x_p: the batch mixed with a permutation p of itself (mixup, lam ~ Beta(m, m) per
    batch, m = distill.fm.mixup), after the same random view (edgekd.data.views) for teacher and student;
    t(x~) is the teacher evaluated online on exactly that input (never cached annotations), so the student
    matches the teacher's function on points between and around the training images. Defaults (distill.fm):
    T = 1, w = 0 (the paper's pure KL), m = 1 (lam uniform). Long ("patient") schedules are distill.epochs.

    Source: Beyer, Zhai, Royer, Markeeva, Anil, Kolesnikov, "Knowledge distillation: A good teacher is
    patient and consistent" (CVPR 2022).
    """

    online_teacher = True

    def __init__(self, cfg: DistillConfig) -> None:
        super().__init__(cfg)
        self.lam = 1.0
        self.perm: torch.Tensor | None = None

    def mix(self, x_student: torch.Tensor, x_teacher: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix both inputs of one batch with one coefficient and one permutation (remembered for the CE term)."""
        m = self.cfg.fm.mixup
        n = len(x_student)
        if m <= 0 or n < 2:
            self.lam, self.perm = 1.0, None
            return x_student, x_teacher
        # torch's Beta sampler takes no generator: draw a seed from the batch generator, so runs repeat
        self.lam = float(np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen))).beta(m, m))
        self.perm = torch.randperm(n, generator=gen)
        lam = self.lam
        return lam * x_student + (1 - lam) * x_student[self.perm], lam * x_teacher + (1 - lam) * x_teacher[self.perm]

    def state(self) -> dict[str, float]:
        return {"last_lambda": float(self.lam)}

    def __call__(
        self, student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None, cfg: DistillConfig
    ) -> torch.Tensor:
        teacher = _need_teacher("function_matching", teacher)
        f = cfg.fm
        t = f.temperature
        loss = (1.0 - f.label_weight) * t * t * soft_kl(student, teacher, t)
        if f.label_weight > 0:
            ce = F.cross_entropy(student, labels)
            if self.perm is not None:
                ce = self.lam * ce + (1.0 - self.lam) * F.cross_entropy(student, labels[self.perm])
            loss = loss + f.label_weight * ce
        return loss
