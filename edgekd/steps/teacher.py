"""Step `teacher`: train or load the teacher, evaluate it, and annotate the training set once.

The training-set logits are cached under `build/<name>/cache/` keyed by the teacher's and the
data's hashes, so distillation (and any re-run with the same teacher and data) never runs the
teacher again.
"""

from __future__ import annotations

import numpy as np
import torch

from edgekd.config import TeacherConfig
from edgekd.data.cells import CellSplits, array_sha256
from edgekd.determinism import seed_everything
from edgekd.data.views import N_VIEWS, view_images
from edgekd.distill.metrics import classification_metrics
from edgekd.io import save_npy, write_json
from edgekd.pipeline import BuildContext
from edgekd.registry import TEACHERS
from edgekd.teachers.annotate import annotate_with_teacher
from edgekd.teachers.runner import MergedClassesRunner, TeacherRunner, TorchTeacherRunner, load_teacher
from edgekd.teachers.train import train_teacher


def teacher_identity(cfg: TeacherConfig, runner: TeacherRunner) -> dict:
    """Where the teacher came from and which one it is: the head of every task's teacher.json."""
    return {
        "source": cfg.source,
        "arch": cfg.arch if cfg.source in ("train", "checkpoint") else None,
        "path": str(cfg.path) if cfg.path else None,
        "sha256": runner.sha256,
        "params": runner.num_params,
    }


def run(ctx: BuildContext) -> None:
    if ctx.config.task == "regression":  # speech emotion: edgekd.steps.audio
        from edgekd.steps import audio

        return audio.run_teacher(ctx)
    cfg = ctx.config.teacher
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    num_classes = len(splits.class_names)
    history: list[dict] = []
    trained_on = splits.class_names
    trained_on_images = 0  # a loaded teacher saw no labels here
    if cfg.source == "train":
        fine = cfg.fine_labels and splits.fine_class_names is not None
        y_train, y_val = (splits.y_train_fine, splits.y_val_fine) if fine else (splits.y_train, splits.y_val)
        trained_on = splits.fine_class_names if fine else splits.class_names
        seed_everything(ctx.config.seed)  # initial weights from the seed, not from the process's RNG history
        model = TEACHERS.get(cfg.arch)(len(trained_on), cfg)
        lab = splits.labelled  # data.labelled: the teacher learns from the labelled part, annotates everything
        trained_on_images = int(lab.sum())
        # the steps it would get on every training image: few labels need more passes, not fewer steps
        steps = max(1, -(-len(splits.x_train) // cfg.batch_size))
        history = train_teacher(model, splits.x_train[lab], y_train[lab], splits.x_val, y_val, cfg,
                                seed=ctx.config.seed, steps_per_epoch=steps)
        torch.save(model.state_dict(), ctx.work / "teacher.pt")
        runner = TorchTeacherRunner(model, cfg.input_size, len(trained_on))
        if fine:  # B/T4/T8 teacher answering B vs T: T's logit is logsumexp(T4, T8)
            runner = MergedClassesRunner(runner, [[0], [1, 2]])
    else:
        runner = load_teacher(cfg, num_classes)

    # One annotation per symmetric view of every training image, so distillation can train on
    # augmented views with the teacher's answer for exactly that view (edgekd.data.views).
    views = []
    for view in range(N_VIEWS):
        images = view_images(splits.x_train, view)
        views.append(annotate_with_teacher(runner, images, ctx.cache_dir / "teacher_logits", array_sha256(images)))
    save_npy(ctx.work / "logits_train.npy", views[0])
    save_npy(ctx.work / "logits_train_views.npy", np.stack(views))
    test_logits = runner.logits(splits.x_test)
    save_npy(ctx.work / "logits_test.npy", test_logits)
    write_json(
        ctx.work / "teacher.json",
        {
            **teacher_identity(cfg, runner),
            "input_size": cfg.input_size,
            "trained_on_classes": list(trained_on),
            "trained_on_images": trained_on_images,
            "annotated_images": int(len(splits.x_train)),
            "metrics": classification_metrics(splits.y_test, test_logits, splits.class_names),
            "history": history,
        },
    )
