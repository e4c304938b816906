"""Step `distill`: train the quantization-aware student from the cached teacher logits.

Each student is trained in float first, then fine-tuned quantization-aware from those weights.
Besides the distilled student it trains, with the same seed and budget, the same student on labels
alone (`distill.baseline`), so the report shows what distillation bought (baseline) and what
quantization cost (the float phase's result).
"""

from __future__ import annotations

import logging

import torch

from edgekd.data.batches import batches_per_pass
from edgekd.data.cells import CellSplits
from edgekd.data.logistic import logistic_baseline
from edgekd.tasks.image.data import data_views
from edgekd.determinism import seed_everything
from edgekd.modelcheck import check_finite_weights
from edgekd.data.transforms import to_model_input
from edgekd.distill.metrics import classification_metrics
from edgekd.distill.trainer import predict_logits, train_student
from edgekd.io import load_npy, write_json
from edgekd.context import BuildContext
from edgekd.registry import LOSSES, STUDENTS
from edgekd.students.cell_cnn import count_macs, count_params, load_float_weights

log = logging.getLogger(__name__)


def run(ctx: BuildContext) -> None:
    cfg = ctx.config
    if cfg.teacher.label_smoothing > 0 and cfg.distill.loss == "kd" and cfg.distill.temperature > 1.5:
        # label smoothing erases the teacher's between-class information that high temperatures would
        # expose (Mueller et al. 2019): distil such teachers at low temperature
        log.warning(
            "teacher.label_smoothing is %g: distil a label-smoothed teacher at low temperature "
            "(distill.temperature <= 1.5; it is %g)", cfg.teacher.label_smoothing, cfg.distill.temperature,
        )
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    k = len(splits.class_names)
    size = cfg.student.input_size
    x_train, x_val, x_test = (to_model_input(x, size) for x in (splits.x_train, splits.x_val, splits.x_test))
    y_train, y_val = torch.as_tensor(splits.y_train), torch.as_tensor(splits.y_val)
    views = data_views(ctx)  # the label-preserving views (data.augment); the teacher annotated each, in order
    teacher_file = "logits_train_views.npy" if cfg.distill.augment else "logits_train.npy"
    teacher_logits = torch.as_tensor(load_npy(ctx.dir("teacher") / teacher_file))
    stale_views = teacher_logits.ndim == 3 and len(teacher_logits) != len(views)
    if teacher_logits.shape[-2:] != (len(x_train), k) or stale_views:
        raise ValueError(
            f"teacher logits have shape {tuple(teacher_logits.shape)}, expected ({len(x_train)}, {k}) for each of the "
            f"{len(views)} views of data.augment: "
            "re-run the teacher step (edgekd build --from teacher)"
        )

    build_student = STUDENTS.get(cfg.student.name)
    metrics: dict[str, dict] = {}
    training: dict[str, dict] = {}
    params = None
    # Two phases per student: float training (fast on CPU, and the float reference the report
    # compares against), then quantization-aware fine-tuning from those weights. The labels-only
    # baseline gets the same phases, budget and seed.
    # With a label budget (data.labelled / data.unlabelled) the distilled student learns from the teacher's
    # annotations on every training image; the baseline learns from the labelled part alone, with the same
    # optimizer steps per epoch (so the same budget in steps, schedule and validation points).
    lab = torch.as_tensor(splits.labelled)
    steps = batches_per_pass(len(x_train), cfg.distill.batch_size)
    online = None
    if getattr(LOSSES.get(cfg.distill.loss), "online_teacher", False):  # function matching: teacher on each batch
        from edgekd.tasks.image.teacher import teacher_runner
        from edgekd.teachers.online import OnlineTeacher

        online = OnlineTeacher(teacher_runner(ctx, splits), splits.x_train)
    runs = [("student", cfg.distill.loss, teacher_logits, x_train, y_train)]
    if cfg.distill.baseline:
        runs.append(("baseline_no_kd", "ce", None, x_train[lab], y_train[lab]))
    for label, loss, teacher, xs, ys in runs:
        seed_everything(cfg.distill.seed)  # initial weights from the seed, not from the process's RNG history
        float_model = build_student(cfg.student, k, quantized=False, in_channels=splits.channels)
        float_run = train_student(
            float_model, xs, ys, teacher, x_val, y_val, cfg.distill, loss, f"{label} (float)",
            epochs=cfg.distill.epochs, lr=cfg.distill.lr, steps_per_epoch=steps,
            online_teacher=online if teacher is not None else None, views=views,
        )
        model = build_student(cfg.student, k, quantized=True, in_channels=splits.channels)
        load_float_weights(model, float_run.state_dict)
        params = count_params(model)
        history = {"float": float_run.history}
        if cfg.distill.qat_epochs > 0:
            qat_run = train_student(
                model, xs, ys, teacher, x_val, y_val, cfg.distill, loss, f"{label} (QAT)",
                epochs=cfg.distill.qat_epochs, lr=cfg.distill.qat_lr, steps_per_epoch=steps,
                online_teacher=online if teacher is not None else None, views=views,
            )
            history["qat"] = qat_run.history
        check_finite_weights(float_run.state_dict, f"{label} (float phase)")  # a diverged run stops here
        check_finite_weights(model.state_dict(), f"{label} (quantization-aware phase)")
        torch.save(model.state_dict(), ctx.work / f"{label}.pt")
        metrics["quant" if label == "student" else label] = classification_metrics(
            splits.y_test, predict_logits(model, x_test), splits.class_names
        )
        if label == "student":
            torch.save(float_run.state_dict, ctx.work / "float.pt")
            metrics["float"] = classification_metrics(
                splits.y_test, predict_logits(float_model, x_test), splits.class_names
            )
        training[label] = {"loss": loss, "history": history}
        log.info("%s: test accuracy %.4f", label, metrics["quant" if label == "student" else label]["accuracy"])

    # the simple reference of every classification report: a logistic regression on the student's input pixels
    write_json(ctx.work / "logistic.json", logistic_baseline(splits, size))
    if "baseline_no_kd" in metrics and metrics["quant"]["accuracy"] < metrics["baseline_no_kd"]["accuracy"]:
        log.warning("THE DISTILLED STUDENT IS BELOW ITS LABELS-ONLY BASELINE: %.2f%% against %.2f%% on the test split; "
                    "the teacher's annotations hurt here (a weak or shifted teacher?)",
                    100 * metrics["quant"]["accuracy"], 100 * metrics["baseline_no_kd"]["accuracy"])
    write_json(
        ctx.work / "distill.json",
        {
            "name": cfg.student.name,
            "params": params,
            "macs": count_macs(cfg.student, k, splits.channels),
            "loss": cfg.distill.loss,
            "online_teacher_batches": online.calls if online is not None else 0,  # function matching
            "labelled": int(lab.sum()),
            "unlabelled": int((~lab).sum()),
            "steps_per_epoch": steps,
            "metrics": metrics,
            "training": training,
        },
    )
