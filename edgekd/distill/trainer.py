"""Train a student from preprocessed inputs, labels and (optionally) cached teacher outputs: every task's loop.

The teacher is never run here (except by a loss that runs it online on each batch): distillation reads the
outputs the teacher step cached. Training is deterministic for a given seed (explicit generator for the batch
order), and the state with the best validation score is kept: accuracy by default, or the task's own score
through the `score` hook (speech emotion: mean CCC against the teacher's annotations or the labels).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from edgekd.config import DistillConfig
from edgekd.data.batches import batches_per_pass, shuffled_batches
from edgekd.data.views import N_VIEWS, view_tensor
from edgekd.distill.methods import StatefulLoss, make_loss
from edgekd.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    state_dict: dict
    best_epoch: int
    history: list[dict] = field(default_factory=list)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()


def train_student(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    cfg: DistillConfig,
    loss_name: str,
    label: str,
    epochs: int,
    lr: float,
    steps_per_epoch: int | None = None,
    online_teacher=None,
    *,
    score: Callable[[nn.Module], float] | None = None,
    score_name: str = "val_accuracy",
    min_batch: int = 1,
    views: tuple[int, ...] | None = None,
) -> TrainResult:
    """Train `model` in place for `epochs` (one-cycle schedule peaking at `lr`); returns the
    best-validation state. `loss_name` picks from LOSSES; a stateful loss (edgekd.distill.methods) gets
    a fresh object for this run, its extra trainable modules (OFA heads) join the optimizer but never
    the model, and its hooks are removed when training ends.

    Rows of `y_train` below 0 have no label (edgekd.data.labels): the teacher's top class for the view
    being trained stands in for it, so every loss (KD, PLD, ...) sees a full batch; without teacher logits
    such rows are an error. `steps_per_epoch` (default: one pass over the data) fixes the optimizer steps
    per epoch, drawing batches from successive shuffles: a labels-only run on the labelled part gets the
    same budget in steps as a distilled run on all images.

    A loss that evaluates the teacher online (`online_teacher = True`: function matching) needs
    `online_teacher` (edgekd.teachers.online.OnlineTeacher over the same training images): every batch, the
    loss mixes the student's and the teacher's inputs of the same view and the teacher runs on the mix;
    the cached logits then only stand in for missing labels.

    `score(model) -> float` (higher is better) is the validation score, recorded under `score_name` in the
    history; by default the accuracy on (x_val, y_val). Float targets (regression) have no "missing label"
    rows: the loss handles their NaNs. `min_batch`: batches smaller than this are skipped (CCC and BatchNorm
    need two samples). `views` (edgekd.data.views; `data.augment`): the view numbers trained on when `cfg.augment`,
    default all 8; teacher logits (V, N, classes) hold one annotation per view, in that order."""
    classes = not torch.is_floating_point(torch.as_tensor(y_train))
    if classes and teacher_logits is None and bool((y_train < 0).any()):
        raise ValueError(f"{label}: {int((y_train < 0).sum())} training rows have no label and there is no teacher")
    loss_fn = make_loss(loss_name, cfg)
    stateful = isinstance(loss_fn, StatefulLoss)
    if getattr(loss_fn, "online_teacher", False):
        if online_teacher is None:
            raise ValueError(f"{label}: loss '{loss_name}' runs the teacher on every batch; pass online_teacher")
        if len(online_teacher.images) != len(x_train):
            raise ValueError(f"{label}: the online teacher has {len(online_teacher.images)} images, the training "
                             f"set {len(x_train)}")
    else:
        online_teacher = None
    views = (tuple(views) if views is not None else tuple(range(N_VIEWS))) if cfg.augment else (0,)
    if score is None:
        if not len(x_val):
            raise ValueError(f"{label}: no validation images to choose the epoch on (data.val_fraction is 0?); "
                             "every epoch would score the same and the first epoch's weights would be kept")

        def score(m: nn.Module) -> float:
            return float((predict_logits(m, x_val).argmax(1) == y_val.numpy()).mean())
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    extra_params = loss_fn.attach(model, x_train[:2]) if stateful else []
    try:
        return _train_loop(
            model, x_train, y_train, teacher_logits, cfg, loss_fn, extra_params, label, epochs, lr,
            views, gen, steps_per_epoch, online_teacher, score, score_name, min_batch, classes,
        )
    finally:
        if stateful:
            loss_fn.detach()


def _train_loop(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    cfg: DistillConfig,
    loss_fn,
    extra_params: list,
    label: str,
    epochs: int,
    lr: float,
    views: tuple[int, ...],
    gen: torch.Generator,
    steps_per_epoch: int | None,
    online_teacher,
    score: Callable[[nn.Module], float],
    score_name: str,
    min_batch: int,
    classes: bool,
) -> TrainResult:
    stateful = isinstance(loss_fn, StatefulLoss)
    opt = torch.optim.AdamW(list(model.parameters()) + list(extra_params), lr=lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = steps_per_epoch or batches_per_pass(len(x_train), cfg.batch_size)
    batches = shuffled_batches(len(x_train), cfg.batch_size, gen)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    best, best_epoch, best_state = -np.inf, 0, copy.deepcopy(model.state_dict())
    history: list[dict] = []
    with progress_bar() as bar:
        task = bar.add_task(f"train {label}", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            model.train()
            if stateful:
                loss_fn.begin_epoch(epoch, epochs)
            total, seen = 0.0, 0
            for _ in range(steps_per_epoch):
                idx = next(batches)
                if len(idx) < min_batch:
                    continue
                # teacher_logits is (views, N, classes) when training on symmetric views: draw one
                # view per batch and use the teacher's answer for exactly that view.
                n_views = len(views)
                slot = int(torch.randint(0, n_views, (1,), generator=gen)) if n_views > 1 else 0
                view = views[slot]
                xs = view_tensor(x_train[idx], view) if n_views > 1 else x_train[idx]  # 2-D audio has no views
                t = None
                if teacher_logits is not None:
                    t = teacher_logits[slot][idx] if teacher_logits.ndim == 3 else teacher_logits[idx]
                y = y_train[idx]
                if classes and t is not None:  # no label: the teacher's top class for this view stands in
                    y = torch.where(y >= 0, y, t.argmax(1))
                if online_teacher is not None:  # function matching: the teacher on the student's own mixed view
                    xt = online_teacher.inputs(idx)
                    xs, xt = loss_fn.mix(xs, view_tensor(xt, view) if n_views > 1 else xt, gen)
                    t = online_teacher(xt)
                out = model(xs)
                loss = loss_fn(out, y, t, cfg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                seen += len(idx)
                bar.advance(task)
            val = score(model)
            history.append({"epoch": epoch + 1, "loss": total / max(seen, 1), score_name: val})
            if stateful:
                history[-1].update(loss_fn.state())
            log.debug("%s epoch %d loss %.4f %s %.4f", label, epoch + 1, total / max(seen, 1), score_name, val)
            if val > best:
                best, best_epoch, best_state = val, epoch + 1, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return TrainResult(state_dict=best_state, best_epoch=best_epoch, history=history)
