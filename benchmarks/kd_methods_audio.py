"""Audio section of benchmarks/kd_methods.py: the regression losses on the wav2small hardware student.

Same protocol as the cell section: one synthetic speech corpus and one teacher (trained once, its A/D/V
annotations cached by the build), then the hardware student (wav2small_hw on host log-mel, float phase +
QAT) trained with each loss (ccc, mse, ccc_mse, and ccc on the corpus labels alone as the baseline) with
the same budget and seeds. Figures: mean CCC (arousal, dominance, valence) of the quantized student on the
test windows (speakers unseen in training) against the corpus labels and against the teacher.

Reduced budget: 400 training clips of 1.5 s (0.5 s windows), a small Wav2Vec2-style teacher (2 layers,
dim 64, 4 epochs), 2 float epochs + 1 QAT epoch, batch 32.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import torch

from edgekd.config import BuildConfig, DistillConfig
from edgekd.data.audio import AudioSplits
from edgekd.distill.metrics import regression_metrics
from edgekd.io import load_npy, read_json, write_json
from edgekd.pipeline import run_build
from edgekd.registry import STUDENTS

log = logging.getLogger("kd_methods.audio")

AUDIO_METHODS: dict[str, dict] = {
    "ccc on labels only (baseline)": {"loss": "ccc", "labels_only": True},
    "ccc (teacher)": {"loss": "ccc"},
    "mse (teacher)": {"loss": "mse"},
    "ccc_mse a=0.5 (teacher)": {"loss": "ccc_mse", "alpha": 0.5},
}


def audio_config() -> BuildConfig:
    return BuildConfig.model_validate(
        {
            "name": "bench-kd-audio",
            "task": "regression",
            "data": {"source": "synthetic_speech", "window_seconds": 0.5,
                     "speech": {"n_train": 400, "n_test": 150, "n_speakers": 40, "clip_seconds": 1.5}},
            "teacher": {"epochs": 4, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-2,
                        "wav2vec": {"conv_channels": 64, "dim": 64, "layers": 2, "heads": 4}},
            "student": {"name": "wav2small_hw", "width": 13},
            "distill": {"loss": "ccc", "epochs": 2, "qat_epochs": 1, "batch_size": 32, "lr": 3e-3},
        }
    )


def _summary(values: list[float]) -> dict:
    return {
        "mean": round(statistics.mean(values), 4),
        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def audio_section(seeds: list[int], build_dir: Path, cache: dict, cache_path: Path, epochs: int | None = None,
                  qat_epochs: int | None = None) -> dict:
    from edgekd.tasks.speech.model import NAMES, host_features, predict, train_regression

    cfg = audio_config()
    if epochs is not None or qat_epochs is not None:
        cfg.distill = cfg.distill.model_copy(update={k: v for k, v in (("epochs", epochs), ("qat_epochs", qat_epochs))
                                                     if v is not None})
    run_build(cfg, build_dir, to_step="teacher")
    splits = AudioSplits.load(build_dir / "data" / "splits.npz")
    ann = {s: load_npy(build_dir / "teacher" / f"annotations_{s}.npy") for s in ("train", "val", "test")}
    n_samples = splits.window
    feats = {s: torch.as_tensor(host_features(splits.x[s], cfg.student, n_samples)) for s in ("train", "val", "test")}
    labels = torch.as_tensor(splits.y["train"])
    teacher_train = torch.as_tensor(ann["train"])
    build = STUDENTS.get(cfg.student.name)
    out: dict = {}
    for label, spec in AUDIO_METHODS.items():
        runs = []
        for seed in seeds:
            key = f"audio|{label}|{seed}|{cfg.distill.epochs}|{cfg.distill.qat_epochs}"
            if key not in cache:
                t0 = time.perf_counter()
                dcfg = DistillConfig.model_validate({**cfg.distill.model_dump(), "seed": seed,
                                                     **{k: v for k, v in spec.items() if k != "labels_only"}})
                teacher = None if spec.get("labels_only") else teacher_train
                val_target = splits.y["val"] if teacher is None else ann["val"]
                torch.manual_seed(seed)
                float_model = build(cfg.student, len(NAMES), False, n_samples=n_samples)
                train_regression(float_model, feats["train"], labels, teacher, feats["val"], val_target, dcfg,
                                 dcfg.loss, f"{label} float", dcfg.epochs, dcfg.lr)
                model = build(cfg.student, len(NAMES), True, n_samples=n_samples)
                model.load_float_weights(float_model.state_dict())
                if dcfg.qat_epochs > 0:
                    train_regression(model, feats["train"], labels, teacher, feats["val"], val_target, dcfg,
                                     dcfg.loss, f"{label} QAT", dcfg.qat_epochs, dcfg.qat_lr)
                pred = predict(model, feats["test"])
                cache[key] = {
                    "ccc_vs_labels": regression_metrics(splits.y["test"], pred, NAMES)["ccc_mean"],
                    "ccc_vs_teacher": regression_metrics(ann["test"], pred, NAMES)["ccc_mean"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                write_json(cache_path, cache)
                log.info("audio / %s / seed %d: CCC vs labels %.4f (%.0f s)", label, seed,
                         cache[key]["ccc_vs_labels"], cache[key]["seconds"])
            runs.append(cache[key])
        out[label] = {
            "config": spec,
            "ccc_vs_labels": _summary([r["ccc_vs_labels"] for r in runs]),
            "ccc_vs_teacher": _summary([r["ccc_vs_teacher"] for r in runs]),
            "seconds_per_run": round(statistics.mean(r["seconds"] for r in runs), 1),
        }
    teacher_json = read_json(build_dir / "teacher" / "teacher.json")
    return {
        "student": f"{cfg.student.name} width {cfg.student.width}, 8-bit (QAT)",
        "corpus": cfg.data.speech.model_dump(),
        "window_seconds": cfg.data.window_seconds,
        "windows": {s: len(splits.x[s]) for s in ("train", "val", "test")},
        "float_epochs": cfg.distill.epochs,
        "qat_epochs": cfg.distill.qat_epochs,
        "teacher_ccc_vs_labels": (teacher_json.get("metrics") or {}).get("ccc_mean"),
        "methods": out,
    }


def markdown_rows(section: dict) -> list[str]:
    rows = []
    for label, s in section["methods"].items():
        a, t = s["ccc_vs_labels"], s["ccc_vs_teacher"]
        rows.append(f"| audio (A/D/V) | {label} | CCC vs labels {a['mean']:.4f} ± {a['std']:.4f} | "
                    f"{a['min']:.4f} - {a['max']:.4f} | CCC vs teacher {t['mean']:.4f} | {s['seconds_per_run']:.0f} |")
    return rows


if __name__ == "__main__":  # standalone smoke run: python benchmarks/kd_methods_audio.py BUILD_DIR
    import sys

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("edgekd").setLevel(logging.WARNING)
    d = Path(sys.argv[1])
    c: dict = {}
    print(audio_section([0], d, c, d / "audio_runs.json", epochs=1, qat_epochs=1))
