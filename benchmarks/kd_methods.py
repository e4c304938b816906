"""Fair comparison of the distillation methods on the cell student (synthetic cell task), and the
regression losses on the audio student.

Cells: every method trains the same student (cell_cnn default, 5,682 parameters) with the same budget
(float epochs, QAT epochs, batch size, learning rates), the same data, the same cached teacher logits (8
symmetric views) and the same seeds (which fix the initial weights and the batch order); the labels-only
baseline (`ce`) is included. The figure is the test accuracy of the QUANTIZED student (mean, sample standard
deviation, min and max over seeds).

Data and teacher: those of the fully labelled cell build (examples/cells_paper.yaml: 5,400 training + 600 validation
images, 2,000 test images, ResNet teacher); the benchmark reads build/bench-cells-paper (made
here with `edgekd build examples/cells_paper.yaml --to teacher` when missing) and never runs the
teacher again.

Label noise: 30% of the training and validation labels flipped (test labels clean), self-distillation as
in Das and Sanghavi (2023): the teacher is the same student architecture trained on the noisy labels; the
student is then distilled with the weighting xi = distill.alpha at T = 1: labels only, xi = 1, xi = 1.5.

Audio (benchmarks/kd_methods_audio.py): ccc, mse, ccc_mse and ccc on labels alone on the wav2small hardware
student and a synthetic speech corpus.

Reduced budget (about 15 min for the cells and a few minutes for the audio on 2 cores): 10 float epochs + 2 QAT
epochs, batch 128 (the default build trains 30 + 4 epochs and reaches 0.94); audio 2 + 1 epochs (--audio-epochs).
Runs go to 2 worker processes (1 torch thread each); finished runs are cached in the output folder, so a killed
benchmark resumes. The audio teacher alone took 12 min on the busy machine.

    .venv/bin/python benchmarks/kd_methods.py            # writes benchmarks/results/kd_methods.{json,md}
    .venv/bin/python benchmarks/kd_methods.py --seeds 5 --epochs 30 --qat-epochs 4 --no-audio
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from edgekd.config import DistillConfig, StudentConfig, load_config
from edgekd.data.cells import CellSplits
from edgekd.data.views import N_VIEWS
from edgekd.io import load_npy, read_json, save_npy, write_json, write_text

log = logging.getLogger("kd_methods")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

# method label -> distill overrides (same budget for all; only the method's own keys differ)
METHODS: dict[str, dict] = {
    "ce (labels only)": {"loss": "ce"},
    "kd (T=2, a=0.9)": {"loss": "kd", "temperature": 2.0, "alpha": 0.9},
    "dts (paper defaults)": {"loss": "dts"},
    "pld (tau=1)": {"loss": "pld"},
    "ofa (eps=1, heads)": {"loss": "ofa"},
}
NOISE_METHODS: dict[str, dict] = {
    "ce (noisy labels)": {"loss": "ce"},
    "kd xi=1.0, T=1": {"loss": "kd", "temperature": 1.0, "alpha": 1.0},
    "kd xi=1.5, T=1": {"loss": "kd", "temperature": 1.0, "alpha": 1.5},
}
NOISE_RATE = 0.3


def flip_labels(y: np.ndarray, rate: float, num_classes: int, seed: int) -> np.ndarray:
    """Symmetric label noise: a `rate` share of the labels moved to another class, uniformly."""
    rng = np.random.default_rng(seed)
    y = y.copy()
    idx = rng.choice(len(y), size=round(rate * len(y)), replace=False)
    y[idx] = (y[idx] + rng.integers(1, num_classes, size=len(idx))) % num_classes
    return y


def _data(source: Path, teacher_file: Path, noisy: bool, student_cfg):
    from edgekd.data.transforms import to_model_input
    from edgekd.distill.compare import DistillData

    splits = CellSplits.load(source / "data" / "splits.npz")
    size = student_cfg.input_size
    x_train, x_val, x_test = (to_model_input(x, size) for x in (splits.x_train, splits.x_val, splits.x_test))
    y_train, y_val = splits.y_train, splits.y_val
    if noisy:
        y_train = flip_labels(y_train, NOISE_RATE, splits.num_classes, seed=1)
        y_val = flip_labels(y_val, NOISE_RATE, splits.num_classes, seed=2)
    teacher = torch.as_tensor(load_npy(teacher_file)) if teacher_file is not None else None
    return DistillData(x_train, torch.as_tensor(y_train), x_val, torch.as_tensor(y_val), x_test,
                       torch.as_tensor(splits.y_test), splits.class_names, teacher)


def run_job(job: dict) -> dict:
    """One (method, seed) run in a worker process: 1 torch thread, data loaded here."""
    from edgekd.distill.compare import distill_and_score

    torch.set_num_threads(1)
    logging.getLogger("edgekd").setLevel(logging.WARNING)
    cfg = load_config(job["config"])
    student = StudentConfig.model_validate(job["student"]) if job.get("student") else cfg.student
    data = _data(Path(job["source"]), job["teacher_file"] and Path(job["teacher_file"]), job["noisy"], student)
    dcfg = DistillConfig.model_validate({**cfg.distill.model_dump(), **job["distill"]})
    result = distill_and_score(student, dcfg, data)
    result.pop("history")
    return result


def noisy_self_teacher(source: Path, config: Path, base: dict, out: Path) -> dict:
    """The self-distillation teacher: the student architecture trained (float, labels only) on the noisy
    labels; its logits for the 8 views of every training image are saved to `out`."""
    from edgekd.data.views import view_tensor
    from edgekd.distill.trainer import predict_logits, train_student
    from edgekd.registry import STUDENTS

    torch.set_num_threads(1)
    cfg = load_config(config)
    data = _data(source, None, True, cfg.student)
    dcfg = DistillConfig.model_validate({**cfg.distill.model_dump(), **base, "loss": "ce", "seed": 100})
    torch.manual_seed(dcfg.seed)
    model = STUDENTS.get(cfg.student.name)(cfg.student, len(data.class_names), quantized=False)
    train_student(model, data.x_train, data.y_train, None, data.x_val, data.y_val, dcfg, "ce", "noisy teacher",
                  epochs=dcfg.epochs, lr=dcfg.lr)
    logits = np.stack([predict_logits(model, view_tensor(data.x_train, v)) for v in range(N_VIEWS)])
    save_npy(out, logits.astype(np.float32))
    acc = float((predict_logits(model, data.x_test).argmax(1) == data.y_test.numpy()).mean())
    write_json(out.with_suffix(".json"), {"test_accuracy": acc, "arch": "cell_cnn (float), trained on noisy labels"})
    return {"test_accuracy": acc}


def summarise(runs: list[dict]) -> dict:
    acc = [r["quant_accuracy"] for r in runs]
    flt = [r["float_accuracy"] for r in runs]
    return {
        "n_seeds": len(acc),
        "quant_accuracy_mean": round(statistics.mean(acc), 4),
        "quant_accuracy_std": round(statistics.stdev(acc), 4) if len(acc) > 1 else 0.0,
        "quant_accuracy_min": round(min(acc), 4),
        "quant_accuracy_max": round(max(acc), 4),
        "float_accuracy_mean": round(statistics.mean(flt), 4),
        "seconds_per_run": round(statistics.mean(r["seconds"] for r in runs), 1),
        "runs": acc,
    }


def markdown(result: dict) -> str:
    lines = [
        "| setting | method | quantized student, test (mean ± sd) | min - max | also | s/run |",
        "|---|---|---|---|---|---|",
    ]
    for section, title in (("clean", "cells"), ("label_noise", f"cells, {int(NOISE_RATE * 100)}% label noise")):
        for label, s in result.get(section, {}).items():
            lines.append(
                f"| {title} | {label} | accuracy {s['quant_accuracy_mean']:.4f} ± {s['quant_accuracy_std']:.4f} | "
                f"{s['quant_accuracy_min']:.4f} - {s['quant_accuracy_max']:.4f} | "
                f"float accuracy {s['float_accuracy_mean']:.4f} | {s['seconds_per_run']:.0f} |"
            )
    if "audio" in result:
        from kd_methods_audio import markdown_rows  # benchmarks/ is on sys.path when run as a script

        lines += markdown_rows(result["audio"])
    return "\n".join(lines) + "\n"


def ensure_source(source: Path) -> Path:
    """The default cell build's data and teacher (built with the pipeline when missing)."""
    if not (source / "teacher" / "logits_train_views.npy").exists():
        from edgekd.pipeline import run_build

        log.info("no cell build in %s: building data and teacher (examples/cells_paper.yaml)", source)
        run_build(load_config(ROOT / "examples" / "cells_paper.yaml"), source, to_step="teacher")
    return source


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10, help="float epochs")
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-noise", action="store_true", help="skip the label-noise section")
    ap.add_argument("--no-audio", action="store_true", help="skip the audio (regression losses) section")
    ap.add_argument("--source", type=Path, default=ROOT / "build" / "bench-cells-paper", help="cell build (data, teacher)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-kd-methods", help="runs cache, noisy teacher")
    ap.add_argument("--audio-build-dir", type=Path, default=ROOT / "build" / "bench-kd-audio")
    ap.add_argument("--audio-epochs", type=int, default=None, help="audio float epochs (default 2)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("edgekd", "brevitas"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    t_start = time.perf_counter()

    source = ensure_source(args.source)
    config = ROOT / "examples" / "cells_paper.yaml"
    base = {"epochs": args.epochs, "qat_epochs": args.qat_epochs, "batch_size": args.batch_size, "baseline": False}
    seeds = list(range(args.seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "kd_methods_runs.json"
    cache = read_json(cache_path) if cache_path.exists() else {}
    teacher_json = read_json(source / "teacher" / "teacher.json")
    splits = CellSplits.load(source / "data" / "splits.npz")
    budget_key = f"{args.epochs}|{args.qat_epochs}|{args.batch_size}"

    sections = [("clean", METHODS, str(source / "teacher" / "logits_train_views.npy"), False)]
    noisy_teacher = args.out / f"noisy_self_teacher_views_{budget_key.replace('|', '_')}.npy"  # same budget
    if not args.no_noise:
        sections.append(("noise", NOISE_METHODS, str(noisy_teacher), True))
    jobs = {}
    for name, methods, teacher_file, noisy in sections:
        for label, overrides in methods.items():
            for seed in seeds:
                key = f"{name}|{label}|{seed}|{budget_key}"
                if key not in cache:
                    jobs[key] = {"config": str(config), "source": str(source), "noisy": noisy,
                                 "teacher_file": None if overrides["loss"] == "ce" else teacher_file,
                                 "distill": {**base, **overrides, "seed": seed}}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(run_job, job): key for key, job in jobs.items() if not job["noisy"]}
        if not args.no_noise and not noisy_teacher.exists():
            log.info("training the self-distillation teacher on noisy labels")
            pool.submit(noisy_self_teacher, source, config, base, noisy_teacher).result()
        futures.update({pool.submit(run_job, job): key for key, job in jobs.items() if job["noisy"]})
        for fut, key in futures.items():
            cache[key] = fut.result()
            write_json(cache_path, cache)
            log.info("%s: quant acc %.4f (%.0f s)", key, cache[key]["quant_accuracy"], cache[key]["seconds"])

    result: dict = {
        "benchmark": "kd_methods",
        "task": "synthetic cells (examples/cells_paper.yaml data), B vs T (2 classes)",
        "student": "cell_cnn default (1x48x48, conv 16-16, 8-bit; 5,682 params)",
        "metric": "test accuracy of the quantized student (QAT), over seeds",
        "budget": {"n_train": len(splits.y_train), "n_val": len(splits.y_val), "n_test": len(splits.y_test),
                   "float_epochs": args.epochs, "qat_epochs": args.qat_epochs, "batch_size": args.batch_size,
                   "augment_views": N_VIEWS, "seeds": seeds},
        "teacher": {"arch": teacher_json.get("arch"), "params": teacher_json.get("params"),
                    "test_accuracy": teacher_json["metrics"]["accuracy"], "source": str(source)},
        "machine": f"{platform.machine()}, shared 2-core machine, {args.workers} workers x 1 torch thread",
        "command": "python benchmarks/kd_methods.py " + " ".join(sys.argv[1:]),
    }
    for name, methods, _, _ in sections:
        out = {label: {"config": o, **summarise([cache[f"{name}|{label}|{s}|{budget_key}"] for s in seeds])}
               for label, o in methods.items()}
        result["clean" if name == "clean" else "label_noise"] = out
    if not args.no_noise:
        result["noise"] = {"rate": NOISE_RATE, "kind": "symmetric flips of train and val labels; test labels clean",
                           "teacher": read_json(noisy_teacher.with_suffix(".json"))}
    if not args.no_audio:
        from kd_methods_audio import audio_section

        torch.set_num_threads(2)
        result["audio"] = audio_section(seeds, args.audio_build_dir, cache, cache_path, epochs=args.audio_epochs)
    result["seconds_total_this_invocation"] = round(time.perf_counter() - t_start, 1)
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "kd_methods.json", result)
    table = markdown(result)
    write_text(RESULTS / "kd_methods.md", table)
    print(table)
    return result


if __name__ == "__main__":
    main()
