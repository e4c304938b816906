"""Train the built-in teacher on labelled cell images (AdamW + OneCycle, label-preserving augmentation)."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from edgekd.config import TeacherConfig
from edgekd.data.batches import batches_per_pass, shuffled_batches
from edgekd.data.transforms import to_model_input
from edgekd.data.views import AUGMENT_SETS, random_views

log = logging.getLogger(__name__)


def augment_d4(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 90-degree rotation (per batch) and horizontal flip (per image): the dihedral group keeps a cell's class."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    if k:
        x = torch.rot90(x, k, dims=(2, 3))
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    if flip.any():
        x = x.clone()
        x[flip] = torch.flip(x[flip], dims=(3,))
    return x


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def train_teacher(
    model: nn.Module,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    cfg: TeacherConfig,
    seed: int,
    show_progress: bool = True,
    steps_per_epoch: int | None = None,
    views: tuple[int, ...] = AUGMENT_SETS["dihedral"],
) -> dict:
    """Train `model` in place on uint8 images (N, H, W); returns per-epoch history.

    `steps_per_epoch` (default: one pass) fixes the optimizer steps per epoch, batches drawn from
    successive shuffles: a teacher trained on a few labelled images gets the steps it would get on all.
    `views` (edgekd.data.views; `data.augment`) are the label-preserving views the teacher trains on: all 8
    (`augment_d4`: one rotation per batch, a flip per image), or a random view of the set per image.

    History keys: train_loss (mean per epoch), val_accuracy (per epoch, None without a validation
    set), seconds (wall time per epoch).
    """
    if len(x_train) != len(y_train):
        raise ValueError(f"{len(x_train)} training images but {len(y_train)} labels")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt = to_model_input(x_train, cfg.input_size)
    yt = torch.as_tensor(np.asarray(y_train), dtype=torch.int64)
    xv = to_model_input(x_val, cfg.input_size) if x_val is not None and len(x_val) else None
    yv = torch.as_tensor(np.asarray(y_val), dtype=torch.int64) if xv is not None else None

    steps_per_epoch = steps_per_epoch or batches_per_pass(len(xt), cfg.batch_size)
    batches = shuffled_batches(len(xt), cfg.batch_size, gen)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # short warm-up from lr/10: with a few hundred steps in all, a long warm-up from OneCycle's
    # default lr/25 wastes epochs the teacher needs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15, div_factor=10.0,
        final_div_factor=100.0,
    )
    history: dict[str, list] = {"train_loss": [], "val_accuracy": [], "seconds": []}
    columns = (TextColumn("teacher {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show_progress, transient=True) as progress:
        task = progress.add_task("epoch 1", total=cfg.epochs * steps_per_epoch)
        for epoch in range(cfg.epochs):
            t0 = time.perf_counter()
            model.train()
            total, count = 0.0, 0
            for _ in range(steps_per_epoch):
                idx = next(batches)
                if len(idx) < 2:  # BatchNorm cannot train on a single image
                    progress.update(task, advance=1)
                    continue
                xb = augment_d4(xt[idx], gen) if tuple(views) == AUGMENT_SETS["dihedral"] else \
                    random_views(xt[idx], views, gen)
                logits = model(xb)
                loss = F.cross_entropy(logits, yt[idx], label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
                progress.update(task, advance=1, description=f"epoch {epoch + 1}/{cfg.epochs}")
            val_acc = None
            if xv is not None:
                val_acc = float((predict_logits(model, xv).argmax(1) == yv).float().mean())
            history["train_loss"].append(total / max(count, 1))
            history["val_accuracy"].append(val_acc)
            history["seconds"].append(time.perf_counter() - t0)
            log.info(
                "teacher epoch %d/%d: loss %.4f, val acc %s (%.1f s)", epoch + 1, cfg.epochs,
                history["train_loss"][-1], "n/a" if val_acc is None else f"{val_acc:.4f}", history["seconds"][-1],
            )
    model.eval()
    return history


def train_teacher_on_splits(model: nn.Module, splits, cfg: TeacherConfig, seed: int, show_progress: bool = True,
                            views: tuple[int, ...] = AUGMENT_SETS["dihedral"]) -> dict:
    """`train_teacher` on a CellSplits (train split to learn, val split to report)."""
    return train_teacher(
        model, splits.x_train, splits.y_train, splits.x_val, splits.y_val, cfg, seed, show_progress=show_progress,
        views=views,
    )
