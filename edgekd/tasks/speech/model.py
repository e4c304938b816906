"""Speech emotion regression (A/D/V): the model half's data, teacher and distill steps.

- data:    splits.npz (fixed-length windows, see edgekd.data.audio), data.json
- teacher: teacher.pt (built-in), teacher.json, annotations_{train,val,test}.npy (the teacher's A/D/V per
           window, computed once and cached under cache/teacher_annotations by teacher and data hashes)
- distill: wav2small.pt + wav2small.onnx / wav2small.int8.onnx (float reference), float.pt and student.pt
           (wav2small_hw float phase and QAT), baseline_no_kd.pt, predictions_test.npz, distill.json
The export step (edgekd.tasks.speech.export) hands the hardware half its contract.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from edgekd.config import DistillConfig
from edgekd.data.audio import AudioSplits, aggregate_windows, load_audio_splits
from edgekd.data.batches import batches_per_pass
from edgekd.data.cells import array_sha256
from edgekd.data.synthetic_speech import DIMENSIONS
from edgekd.distill.metrics import regression_metrics
from edgekd.io import load_npy, save_npy, write_json
from edgekd.context import BuildContext
from edgekd.errors import BuildError
from edgekd.registry import STUDENTS, TEACHERS

log = logging.getLogger(__name__)

NAMES = list(DIMENSIONS)
FLOAT_STUDENT = "wav2small"
HW_STUDENTS = ("wav2small_hw",)


def _seed(seed: int) -> None:
    """Initial weights from the seed, not from the process's RNG history (edgekd.determinism)."""
    from edgekd.determinism import seed_everything

    seed_everything(seed)


def _check_finite(state: dict, what: str) -> None:
    """A diverged training run stops the build here, naming the model (edgekd.modelcheck)."""
    from edgekd.modelcheck import check_finite_weights

    check_finite_weights(state, what)


# ----------------------------------------------------------------------------------------------- data
def run_data(ctx: BuildContext) -> None:
    splits = load_audio_splits(ctx.config.data)
    latent = splits.meta.pop("latent_test", None)
    if latent is not None:  # synthetic corpus: the noise-free labels, for the generator's own figures
        save_npy(ctx.work / "latent_test.npy", np.asarray(latent, np.float32))
    splits.save(ctx.work / "splits.npz")
    write_json(ctx.work / "data.json", {"source": ctx.config.data.source, **splits.summary()})


def _splits(ctx: BuildContext) -> AudioSplits:
    return AudioSplits.load(ctx.dir("data") / "splits.npz")


# -------------------------------------------------------------------------------------------- teacher
def _label_metrics(splits: AudioSplits, pred_windows: np.ndarray, split: str = "test") -> dict | None:
    """Window- and clip-level metrics against the corpus labels, or None for an unlabelled corpus."""
    if not splits.has_labels or len(pred_windows) == 0:
        return None
    clip_pred = aggregate_windows(pred_windows, splits.clip[split], len(splits.clip_labels[split]))
    return {
        **regression_metrics(splits.y[split], pred_windows, NAMES),
        "clips": regression_metrics(splits.clip_labels[split], clip_pred, NAMES),
    }


def _teacher_pool(ctx: BuildContext, splits: AudioSplits) -> tuple[AudioSplits, str]:
    """The windows and labels the teacher trains on: `teacher.data` (another labelled corpus, cut into this
    build's windows) when set, else this build's splits. Returns (splits, where they came from)."""
    from edgekd.config import AUDIO_SOURCES

    pool_cfg = ctx.config.teacher.data
    if pool_cfg is None:
        return splits, "the build's labelled clips"
    if pool_cfg.source not in AUDIO_SOURCES:
        raise BuildError(f"teacher.data.source '{pool_cfg.source}' is an image source; the audio task's teacher "
                         f"needs a labelled speech corpus ({' or '.join(AUDIO_SOURCES)})")
    data = ctx.config.data  # the teacher annotates this build's windows: it learns on windows of that length
    pool_cfg = pool_cfg.model_copy(update={"window_seconds": data.window_seconds,
                                           "window_hop_seconds": data.window_hop_seconds})
    pool = load_audio_splits(pool_cfg)
    pool.meta.pop("latent_test", None)
    if not pool.has_labels:
        raise BuildError("teacher.data has no arousal/dominance/valence labels; the teacher needs a labelled corpus")
    # the teacher must not have seen the build's test clips, nor (silently) the clips whose labels are hidden
    seen = {bytes(w) for s in ("train", "val") for w in pool.x[s]}
    if any(bytes(w) in seen for w in splits.x["test"]):
        raise BuildError("teacher.data contains test clips of the build's data: the teacher would be scored on clips "
                         "it trained on; give teacher.data another corpus (another seed, folder or CSV)")
    hidden_windows = ~np.isfinite(splits.y["train"]).all(1)
    hidden = {int(c) for c, w in zip(splits.clip["train"][hidden_windows], splits.x["train"][hidden_windows])
              if bytes(w) in seen}
    if hidden:
        raise BuildError(f"teacher.data holds {len(hidden)} of the build's training clips whose labels data.labelled "
                         "hides: the teacher would learn the hidden labels; give teacher.data another corpus")
    return pool, f"teacher.data ({pool_cfg.source})"


def warn_if_constant(pred: np.ndarray, rel: float = 1e-3) -> bool:
    """Warn loudly when the teacher's test outputs are (nearly) constant: a regression teacher that answers the
    same for every window has nothing to teach. Constant = sd below `rel` of the labels' range [0, 1]."""
    if len(pred) < 2:
        return False
    sd = np.asarray(pred, np.float64).std(axis=0)
    flat = [n for n, v in zip(NAMES, sd) if v < rel]
    if flat:
        log.warning("THE TEACHER CANNOT TEACH: its test outputs for %s are constant (sd %s); check teacher.data, "
                    "teacher.epochs and teacher.lr", ", ".join(flat), ", ".join(f"{v:.2g}" for v in sd))
    return bool(flat)


def run_teacher(ctx: BuildContext) -> None:
    from edgekd.teachers.annotate import annotate_with_teacher
    from edgekd.teachers.audio_runner import TorchAudioTeacherRunner, load_audio_teacher
    from edgekd.teachers.wav2vec import train_audio_teacher
    from edgekd.tasks.image.teacher import teacher_identity

    cfg = ctx.config.teacher
    splits = _splits(ctx)
    history: list[dict] = []
    trained_on: dict = {"windows": 0, "clips": 0, "from": None}  # a loaded teacher saw no labels here
    if cfg.source == "train":
        # teacher.data: a teacher trained elsewhere on its own labelled corpus (as Wav2Small's teacher on
        # MSP-Podcast), which then annotates this build's clips; by default the build's labelled clips
        pool, where = _teacher_pool(ctx, splits)
        if not pool.has_labels:
            raise BuildError("teacher.source is 'train' but the corpus CSV has no arousal/dominance/valence "
                             "columns; label the corpus or load a teacher (teacher.source: onnx or torchscript)")
        _seed(ctx.config.seed)
        model = TEACHERS.get(cfg.arch)(len(NAMES), cfg)
        lab = np.isfinite(pool.y["train"]).all(1)  # data.labelled / unlabelled CSV rows: labelled windows only
        if not lab.any():
            raise BuildError("teacher.source is 'train' but no training clip has labels; label some clips or load "
                             "a teacher (teacher.source: onnx or torchscript)")
        trained_on = {"windows": int(lab.sum()), "clips": int(len(np.unique(pool.clip["train"][lab]))), "from": where}
        steps = batches_per_pass(len(lab), cfg.batch_size)  # the steps it would get on every window
        history = train_audio_teacher(model, pool.x["train"][lab], pool.y["train"][lab], pool.x["val"],
                                      pool.y["val"], cfg, seed=ctx.config.seed, steps_per_epoch=steps)
        _check_finite(model.state_dict(), "teacher")
        torch.save(model.state_dict(), ctx.work / "teacher.pt")
        runner = TorchAudioTeacherRunner(model, splits.window)
    else:
        runner = load_audio_teacher(cfg, splits.window)

    annotations = {}
    for split in ("train", "val", "test"):
        x = splits.x[split]
        annotations[split] = annotate_with_teacher(
            runner, x, ctx.cache_dir / "teacher_annotations", array_sha256(x)
        ) if len(x) else np.zeros((0, 3), np.float32)
        save_npy(ctx.work / f"annotations_{split}.npy", annotations[split])
    metrics = _label_metrics(splits, annotations["test"])
    warn_if_constant(annotations["test"])
    latent_path = ctx.dir("data") / "latent_test.npy"
    extra = {}
    if latent_path.exists():
        clip_pred = aggregate_windows(annotations["test"], splits.clip["test"], len(splits.clip_labels["test"]))
        extra["metrics_vs_latent_clips"] = regression_metrics(load_npy(latent_path), clip_pred, NAMES)
    write_json(
        ctx.work / "teacher.json",
        {
            **teacher_identity(cfg, runner),
            "window_samples": splits.window,
            "outputs": NAMES,
            "trained_on": trained_on,
            "annotated_windows": int(len(splits.x["train"])),
            "metrics": metrics,
            **extra,
            "history": history,
        },
    )


# -------------------------------------------------------------------------------------------- distill
def host_features(waves: np.ndarray, student_cfg, n_samples: int, chunk: int = 256) -> np.ndarray:
    """The hardware student's input: host log-mel (edgekd.data.logmel) on its input grid, (N, 1, F_hw, 26)."""
    from edgekd.data.logmel import features_on_grid, log_mel

    if len(waves) == 0:
        one = features_on_grid(log_mel(np.zeros((1, n_samples), np.float32)), student_cfg)
        return np.zeros((0, *one.shape[1:]), np.float32)
    parts = [features_on_grid(log_mel(waves[i : i + chunk]), student_cfg) for i in range(0, len(waves), chunk)]
    return np.concatenate(parts).astype(np.float32)


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    model.eval()
    x = torch.as_tensor(x)
    if len(x) == 0:
        return np.zeros((0, 3), np.float32)
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).float().numpy()


def train_regression(
    model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None,
    x_val: torch.Tensor, target_val: np.ndarray, cfg: DistillConfig, loss_name: str, label: str, epochs: int,
    lr: float, steps_per_epoch: int | None = None,
) -> dict:
    """Train in place with every task's loop (edgekd.distill.trainer.train_student: AdamW, one-cycle schedule
    peaking at `lr`, the registered loss, stateful KD methods included); keep the state with the best
    validation mean CCC against `target_val` (teacher annotations, or labels for the labels-only baseline).
    Returns {best_epoch, history}."""
    from edgekd.distill.trainer import train_student

    def val_ccc(m: torch.nn.Module) -> float:
        return regression_metrics(target_val, predict(m, x_val), NAMES)["ccc_mean"] if len(x_val) else 0.0

    no_views = cfg.model_copy(update={"augment": False})  # image symmetries mean nothing for audio
    result = train_student(model, x, labels, teacher, x_val, torch.zeros(0), no_views, loss_name, label, epochs,
                           lr, steps_per_epoch, score=val_ccc, score_name="val_ccc_mean", min_batch=2)
    log.info("%s: best validation mean CCC %.4f at epoch %d", label,
             max(h["val_ccc_mean"] for h in result.history) if result.history else float("nan"), result.best_epoch)
    return {"best_epoch": result.best_epoch, "history": result.history}


def _student_metrics(pred: np.ndarray, annotations: np.ndarray, splits: AudioSplits) -> dict:
    return {"vs_teacher": regression_metrics(annotations, pred, NAMES), "vs_labels": _label_metrics(splits, pred)}


def _hw_student_name(ctx: BuildContext) -> str:
    name = ctx.config.student.name
    if name not in HW_STUDENTS:
        raise BuildError(f"student.name '{name}': the audio task's hardware student must take host features; "
                         f"use one of {', '.join(HW_STUDENTS)} (the float '{FLOAT_STUDENT}' is always trained as the "
                         "accuracy reference)")
    return name


def run_distill(ctx: BuildContext) -> None:
    from edgekd.students.wav2small import count_wav2small_params, export_float_onnx, export_int8_onnx, int8_agreement

    cfg, dcfg = ctx.config, ctx.config.distill
    splits = _splits(ctx)
    n_samples = splits.window
    hw_name = _hw_student_name(ctx)
    ann = {s: load_npy(ctx.dir("teacher") / f"annotations_{s}.npy") for s in ("train", "val", "test")}
    teacher_train = torch.as_tensor(ann["train"])
    waves = {s: torch.as_tensor(splits.x[s]) for s in ("train", "val", "test")}
    t0 = time.perf_counter()
    feats = {s: torch.as_tensor(host_features(splits.x[s], cfg.student, n_samples)) for s in ("train", "val", "test")}
    log.info("host log-mel features for %d windows in %.1f s", sum(len(v) for v in feats.values()),
             time.perf_counter() - t0)
    labels_train = torch.as_tensor(splits.y["train"])
    metrics: dict[str, dict] = {}
    training: dict[str, dict] = {}
    preds: dict[str, np.ndarray] = {}

    # 1. the float Wav2Small on the waveform: the accuracy reference
    _seed(dcfg.seed)
    ref = STUDENTS.get(FLOAT_STUDENT)(cfg.student, len(NAMES), False, n_samples=n_samples)
    training[FLOAT_STUDENT] = train_regression(ref, waves["train"], labels_train, teacher_train, waves["val"],
                                               ann["val"], dcfg, dcfg.loss, FLOAT_STUDENT, dcfg.epochs, dcfg.lr)
    _check_finite(ref.state_dict(), FLOAT_STUDENT)
    torch.save(ref.state_dict(), ctx.work / "wav2small.pt")
    preds[FLOAT_STUDENT] = predict(ref, waves["test"])
    metrics[FLOAT_STUDENT] = _student_metrics(preds[FLOAT_STUDENT], ann["test"], splits)
    onnx_path = export_float_onnx(ref, ctx.work / "wav2small.onnx", n_samples)
    int8 = export_int8_onnx(onnx_path, ctx.work / "wav2small.int8.onnx")
    wav2small_info = {"params": count_wav2small_params(ref), "onnx_bytes": onnx_path.stat().st_size,
                      "int8_onnx_bytes": int8["bytes"], "onnx": "wav2small.onnx", "int8_onnx": "wav2small.int8.onnx",
                      "int8_format": int8["format"],
                      "int8_corr_vs_float": int8_agreement(onnx_path, ctx.work / "wav2small.int8.onnx", waves["test"])}

    # 2. the hardware student (float phase, then QAT from the folded weights), 3. the labels-only baseline
    # The distilled student learns from the annotations on every window; the baseline from the labelled
    # windows alone (data.labelled, unlabelled CSV rows), with the same optimizer steps per epoch.
    lab = torch.as_tensor(np.isfinite(splits.y["train"]).all(1))
    steps = batches_per_pass(len(lab), dcfg.batch_size)
    everything = (feats["train"], labels_train)
    runs = [("student", dcfg.loss, teacher_train, ann["val"], everything)]
    if dcfg.baseline:
        if splits.has_labels and bool(lab.any()):
            runs.append(("baseline_no_kd", dcfg.loss, None, splits.y["val"], (feats["train"][lab], labels_train[lab])))
        else:
            log.warning("distill.baseline: the corpus has no labels; no labels-only baseline")
    hw_params = None
    for label, loss, teacher, val_target, (x_fit, y_fit) in runs:
        _seed(dcfg.seed)
        float_model = STUDENTS.get(hw_name)(cfg.student, len(NAMES), False, n_samples=n_samples)
        float_run = train_regression(float_model, x_fit, y_fit, teacher, feats["val"], val_target,
                                     dcfg, loss, f"{label} (float)", dcfg.epochs, dcfg.lr, steps)
        model = STUDENTS.get(hw_name)(cfg.student, len(NAMES), True, n_samples=n_samples)
        model.load_float_weights(float_model.state_dict())
        hw_params = count_wav2small_params(model)
        history = {"float": float_run}
        if dcfg.qat_epochs > 0:
            history["qat"] = train_regression(model, x_fit, y_fit, teacher, feats["val"], val_target,
                                              dcfg, loss, f"{label} (QAT)", dcfg.qat_epochs, dcfg.qat_lr, steps)
        _check_finite(float_model.state_dict(), f"{label} (float phase)")
        _check_finite(model.state_dict(), f"{label} (quantization-aware phase)")
        torch.save(model.state_dict(), ctx.work / f"{label}.pt")
        key = "quant" if label == "student" else label
        preds[key] = predict(model, feats["test"])
        metrics[key] = _student_metrics(preds[key], ann["test"], splits)
        if label == "student":
            torch.save(float_model.state_dict(), ctx.work / "float.pt")
            preds["float"] = predict(float_model, feats["test"])
            metrics["float"] = _student_metrics(preds["float"], ann["test"], splits)
        training[label] = {"loss": loss, "target": "teacher" if teacher is not None else "labels", **history}
        log.info("%s: test mean CCC vs teacher %.4f", label, metrics[key]["vs_teacher"]["ccc_mean"])

    np.savez(ctx.work / "predictions_test.npz", **preds)
    ref_ccc = metrics[FLOAT_STUDENT]["vs_teacher"]["ccc_mean"]
    hw_ccc = metrics["quant"]["vs_teacher"]["ccc_mean"]
    write_json(
        ctx.work / "distill.json",
        {
            "name": hw_name,
            "params": hw_params["trainable"] if hw_params else None,
            "params_detail": hw_params,
            "loss": dcfg.loss,
            "labelled": int(lab.sum()),
            "unlabelled": int((~lab).sum()),
            "steps_per_epoch": steps,
            "metrics": metrics,
            "wav2small": wav2small_info,
            "target": {
                "rule": "hardware student keeps >= 90% of the float wav2small's mean CCC against the teacher",
                "hw_ccc_mean_vs_teacher": hw_ccc,
                "wav2small_ccc_mean_vs_teacher": ref_ccc,
                "ratio": hw_ccc / ref_ccc if ref_ccc > 0 else None,
                "met": bool(ref_ccc > 0 and hw_ccc >= 0.9 * ref_ccc),
            },
            "training": training,
        },
    )
