"""Step `teacher`: train or load the teacher, evaluate it, and annotate the training set once.

The training-set logits are cached under `build/<name>/cache/` keyed by the teacher's and the
data's hashes, so distillation (and any re-run with the same teacher and data) never runs the
teacher again.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from edgekd.config import TeacherConfig
from edgekd.data.batches import batches_per_pass
from edgekd.data.cells import CellSplits, array_sha256, load_cell_splits
from edgekd.determinism import seed_everything
from edgekd.data.views import VIEW_NAMES, view_images
from edgekd.tasks.image.data import data_views
from edgekd.distill.metrics import classification_metrics
from edgekd.io import read_json, save_npy, write_json
from edgekd.context import BuildContext
from edgekd.errors import BuildError
from edgekd.registry import TEACHERS
from edgekd.teachers.annotate import annotate_with_teacher
from edgekd.teachers.runner import (
    MergedClassesRunner,
    TeacherLoadError,
    TeacherRunner,
    TorchTeacherRunner,
    load_teacher,
)
from edgekd.teachers.train import train_teacher

log = logging.getLogger(__name__)


def teacher_identity(cfg: TeacherConfig, runner: TeacherRunner) -> dict:
    """Where the teacher came from and which one it is: the head of every task's teacher.json."""
    return {
        "source": cfg.source,
        "arch": cfg.arch if cfg.source in ("train", "checkpoint") else None,
        "path": str(cfg.path) if cfg.path else None,
        "sha256": runner.sha256,
        "params": runner.num_params,
    }


def _teacher_pool(cfg: TeacherConfig, splits: CellSplits) -> CellSplits:
    """The images and labels the teacher trains on: `teacher.data` when set, else this build's splits."""
    if cfg.data is None:
        return splits
    pool = load_cell_splits(cfg.data)
    if pool.channels != splits.channels:
        raise BuildError(f"teacher.data has {pool.channels}-channel images but the build's data has {splits.channels}; "
                         "give teacher.data the same data.channels")
    if pool.class_names != splits.class_names:
        raise BuildError(f"teacher.data has classes {pool.class_names} but the build's data has {splits.class_names}; "
                         "give teacher.data the same classes (data.num_classes, class folders)")
    # the teacher must not have seen the build's test images, nor (silently) the images whose labels are hidden
    seen = {bytes(img) for img in pool.x_train}
    if any(bytes(img) in seen for img in splits.x_test):
        raise BuildError("teacher.data contains test images of the build's data: the teacher would be scored on "
                         "images it trained on; give teacher.data another pool (another seed, folder or dataset)")
    hidden = sum(bytes(img) in seen for img in splits.x_train[~splits.labelled])
    if hidden:
        raise BuildError(f"teacher.data holds {hidden} of the build's training images whose labels data.labelled "
                         "hides: the teacher would learn the hidden labels; give teacher.data another pool")
    return pool


def _loaded_teacher(cfg: TeacherConfig, splits: CellSplits) -> TeacherRunner:
    """A loaded teacher; a checkpoint of a B/T4/T8 teacher (teacher.pt of a build with fine labels) answers a
    B-vs-T task through the same logsumexp merge as a teacher trained here."""
    fine = splits.fine_class_names
    if cfg.source == "checkpoint" and cfg.fine_labels and fine is not None and len(fine) != len(splits.class_names):
        try:
            return MergedClassesRunner(load_teacher(cfg, len(fine), splits.channels), [[0], [1, 2]])
        except TeacherLoadError:
            pass  # a checkpoint of a teacher trained on the task's own classes
    return load_teacher(cfg, len(splits.class_names), splits.channels)


def teacher_runner(ctx: BuildContext, splits: CellSplits) -> TeacherRunner:
    """The build's teacher, as the teacher step left it (teacher.pt, or the loaded file), for a method that runs
    it during distillation (function matching); its hash must be the one teacher.json recorded."""
    cfg = ctx.config.teacher
    info = read_json(ctx.dir("teacher") / "teacher.json")
    if cfg.source == "train":
        classes = info["trained_on_classes"]
        model = TEACHERS.get(cfg.arch)(len(classes), cfg, in_channels=splits.channels)
        model.load_state_dict(torch.load(ctx.dir("teacher") / "teacher.pt", map_location="cpu", weights_only=True))
        runner: TeacherRunner = TorchTeacherRunner(model, cfg.input_size, len(classes))
        if len(classes) != len(splits.class_names):
            runner = MergedClassesRunner(runner, [[0], [1, 2]])
    else:
        runner = _loaded_teacher(cfg, splits)
    if runner.sha256 != info["sha256"]:
        raise BuildError("the teacher differs from the one the teacher step recorded (teacher.json sha256); "
                         "re-run the teacher step (edgekd build --from teacher)")
    return runner


def warn_if_majority_rate(accuracy: float, y_test: np.ndarray) -> bool:
    """Warn loudly when the teacher is no better than answering the majority class (within 1 point): its
    annotations cannot teach the student anything the labels do not. True when it warned."""
    if not len(y_test):
        return False
    majority = float(np.bincount(y_test).max() / len(y_test))
    if accuracy > majority + 0.01:
        return False
    log.warning("THE TEACHER CANNOT TEACH: its test accuracy %.2f%% is at the majority-class rate (%.2f%%); the "
                "student will learn little from its annotations. Check teacher.data, teacher.epochs and teacher.lr",
                100 * accuracy, 100 * majority)
    return True


def run(ctx: BuildContext) -> None:
    cfg = ctx.config.teacher
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    views = data_views(ctx)  # the label-preserving views the data step chose (data.augment)
    history: list[dict] = []
    trained_on = splits.class_names
    trained_on_images = 0  # a loaded teacher saw no labels here
    steps = None
    if cfg.source == "train":
        # teacher.data: a teacher trained elsewhere, on another labelled pool (say a public dataset), as a lab
        # that loads a pretrained teacher would have it; by default the labelled part of this build's data
        pool = _teacher_pool(cfg, splits)
        fine = cfg.fine_labels and pool.fine_class_names is not None
        y_train, y_val = (pool.y_train_fine, pool.y_val_fine) if fine else (pool.y_train, pool.y_val)
        trained_on = pool.fine_class_names if fine else pool.class_names
        seed_everything(ctx.config.seed)  # initial weights from the seed, not from the process's RNG history
        model = TEACHERS.get(cfg.arch)(len(trained_on), cfg, in_channels=splits.channels)
        lab = pool.labelled  # data.labelled: the teacher learns from the labelled part, annotates everything
        trained_on_images = int(lab.sum())
        # the steps it would get on every training image: few labels need more passes, not fewer steps; and an
        # epoch of at least teacher.min_epoch_images images: a small data set needs more passes too
        steps = batches_per_pass(max(len(pool.x_train), cfg.min_epoch_images or 0), cfg.batch_size)
        history = train_teacher(model, pool.x_train[lab], y_train[lab], pool.x_val, y_val, cfg,
                                seed=ctx.config.seed, steps_per_epoch=steps, views=views)
        torch.save(model.state_dict(), ctx.work / "teacher.pt")
        runner = TorchTeacherRunner(model, cfg.input_size, len(trained_on))
        if fine:  # B/T4/T8 teacher answering B vs T: T's logit is logsumexp(T4, T8)
            runner = MergedClassesRunner(runner, [[0], [1, 2]])
    else:
        runner = _loaded_teacher(cfg, splits)

    # One annotation per label-preserving view of every training image (data.augment), so distillation can
    # train on those views with the teacher's answer for exactly that view (edgekd.data.views).
    annotations = []
    for view in views:
        images = view_images(splits.x_train, view)
        annotations.append(annotate_with_teacher(runner, images, ctx.cache_dir / "teacher_logits", array_sha256(images)))
    save_npy(ctx.work / "logits_train.npy", annotations[0])
    save_npy(ctx.work / "logits_train_views.npy", np.stack(annotations))
    test_logits = runner.logits(splits.x_test)
    save_npy(ctx.work / "logits_test.npy", test_logits)
    metrics = classification_metrics(splits.y_test, test_logits, splits.class_names)
    warn_if_majority_rate(metrics["accuracy"], splits.y_test)
    write_json(
        ctx.work / "teacher.json",
        {
            **teacher_identity(cfg, runner),
            "input_size": cfg.input_size,
            "views": [VIEW_NAMES[v] for v in views],
            "steps_per_epoch": steps,
            "trained_on_classes": list(trained_on),
            "trained_on_images": trained_on_images,
            "annotated_images": int(len(splits.x_train)),
            "metrics": metrics,
            "history": history,
        },
    )
