"""Distillation against labels-only at 1%, 5%, 20% and 100% of the cell training labels, over seeds.

Each point is a build of examples/cells_paper.yaml up to `distill` with `data.labelled` set to the budget and
the seed (student init and batches, and which images keep their labels: `seed`, `distill.seed`,
`data.split_seed`) set to s. The teacher (default `--teacher pool`) is the example's: the ResNet trained once
on another labelled pool (5,400 synthetic cells of seed POOL_SEED, B/T4/T8 merged to B vs T), as a lab's
pretrained teacher would be, and loaded by every point (`teacher.source: checkpoint`); it annotates every
training image (8 views). With `--teacher labelled` each point trains its teacher on its own labelled images
(with the optimizer steps it would get on all of them). The quantized student is distilled on all images
(the teacher's top class stands in for missing labels); `baseline_no_kd` is the same student on the
labelled images alone, same seed, same steps. KD and labels-only are therefore paired runs: the gain is
computed per seed, then averaged.

Figures (test split, 2,000 images): quantized student accuracy with KD and labels-only, mean and sample
standard deviation over seeds, the paired gain (mean, sd, per seed), the teacher's accuracy, and the
issue-15 targets: at <= 5% labelled the gain is >= 3 points and exceeds twice the larger sd; at 100% KD is
not worse than labels-only beyond the seed spread.

    .venv/bin/python benchmarks/kd_label_budget.py                 # 4 budgets x 3 seeds, 2 workers
    .venv/bin/python benchmarks/kd_label_budget.py --budgets 0.05 --seeds 5
    .venv/bin/python benchmarks/kd_label_budget.py --audio     # wav2small at 25% labelled clips, 3 seeds
    .venv/bin/python benchmarks/kd_label_budget.py --loss function_matching --workers 1   # vs kd at 5%, 3 seeds

Audio (`--audio`): examples/wav2small.yaml with a quarter of the training clips labelled; the figure is the
quantized wav2small_hw student's mean CCC against the corpus labels on the test windows (unseen speakers),
the distilled student (teacher annotations on every window) against the same student on the labelled clips.
The teacher (default `--teacher pool`) is the example's Wav2Vec2-style teacher trained once on its own labelled
corpus (AUDIO_POOL_CLIPS synthetic clips of seed POOL_SEED: other voices, all labelled), as Wav2Small's teacher
is trained on MSP-Podcast, and loaded by every point; `--teacher labelled` trains it per point on the
quarter of labelled clips (results/kd_label_budget_audio_teacher_on_labelled.json).

Methods (`--loss NAME`, cells): NAME (e.g. function_matching, Beyer et al. 2022) against kd at 5% labelled,
same pool teacher and seeds, paired by seed (results/kd_label_budget_NAME.json); the NAME points skip the
labels-only baseline (the kd point of the same seed has it); `--kd-from results/kd_label_budget.json` takes the
kd points from a saved run instead of re-running them (the summary says whether both arms' teacher scored the same).

Points run in worker processes with one torch thread each (`--workers`, default 2); a finished point's
build folder is reused (the builds resume), so a killed benchmark continues where it stopped. Prints and
saves benchmarks/results/kd_label_budget.json; never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
POOL_SEED = 1  # the other pool the "teacher trained elsewhere" learns from (the example's data use seed 0)
AUDIO_POOL_CLIPS = 1600  # the audio teacher's own corpus: twice the example's clips, all labelled
ROOT = HERE.parent


def _pool_teacher(config_path: str, out_root: str, audio: bool = False, pool_clips: int = AUDIO_POOL_CLIPS) -> Path:
    """The "teacher trained elsewhere": the example's teacher trained once on another labelled pool (synthetic
    cells of another seed, standing for a public dataset; for audio another synthetic speech corpus: other
    seed, other voices, `pool_clips` clips, all labelled, as Wav2Small's teacher on MSP-Podcast), as a build
    to `teacher`; returns its teacher.pt."""
    import logging

    logging.disable(logging.INFO)
    from edgekd.config import load_config
    from edgekd.pipeline import run_build

    cfg = load_config(Path(config_path))
    cfg.name = "audio-teacher-pool" if audio else "teacher-pool"
    if audio:
        cfg.data.speech.seed, cfg.data.speech.n_train = POOL_SEED, pool_clips
    else:
        cfg.data.synthetic.seed = POOL_SEED
    cfg.data.labelled = None
    cfg.teacher.source, cfg.teacher.data = "train", None
    out = Path(out_root) / cfg.name
    run_build(cfg, out, to_step="teacher")
    return out / "teacher" / "teacher.pt"


def _build_point(config_path: str, prefix: str, budget: float, seed: int, out_root: str,
                 teacher_pt: str | None, loss: str | None = None) -> tuple[dict, dict, float]:
    """Build one point to `distill` (1 torch thread); returns (distill.json, teacher.json, seconds). `loss`
    other than the config's: that distillation method, without the labels-only baseline (the config's own
    points of the same seed have it)."""
    os.environ["EDGEKD_THREADS"] = "1"
    import logging

    logging.disable(logging.INFO)
    from edgekd.config import load_config
    from edgekd.io import read_json
    from edgekd.pipeline import run_build

    cfg = load_config(Path(config_path))
    cfg.name = f"{prefix}budget{budget:g}-seed{seed}"
    cfg.seed, cfg.distill.seed, cfg.data.split_seed = seed, seed, seed
    cfg.data.labelled = None if budget >= 1.0 else budget
    if loss is not None and loss != cfg.distill.loss:
        cfg.name = f"{loss}-{cfg.name}"
        cfg.distill.loss, cfg.distill.baseline = loss, False
    if teacher_pt is not None:  # the teacher trained elsewhere, loaded (it sees no labels of this pool)
        cfg.name = f"pool-{cfg.name}"
        cfg.teacher = cfg.teacher.model_copy(update={"source": "checkpoint", "path": Path(teacher_pt), "data": None})
    out = Path(out_root) / cfg.name
    t0 = time.perf_counter()
    run_build(cfg, out, to_step="distill")
    return (read_json(out / "distill" / "distill.json"), read_json(out / "teacher" / "teacher.json"),
            round(time.perf_counter() - t0, 1))


def _point(args: tuple) -> dict:
    config_path, budget, seed, out_root, teacher_pt, *rest = args
    loss = rest[0] if rest else None
    d, t, seconds = _build_point(config_path, "", budget, seed, out_root, teacher_pt, loss)
    m = d["metrics"]
    return {
        "budget": budget, "seed": seed, "labelled": d.get("labelled"), "unlabelled": d.get("unlabelled"),
        "loss": d["loss"], "teacher_trained_on": "another pool" if teacher_pt else "the labelled images",
        "teacher": t["metrics"]["accuracy"], "kd_quant": m["quant"]["accuracy"], "kd_float": m["float"]["accuracy"],
        "labels_only": m["baseline_no_kd"]["accuracy"] if "baseline_no_kd" in m else None, "seconds": seconds,
    }


def _audio_point(args: tuple[str, float, int, str, str | None]) -> dict:
    """One audio build to distill: CCC against the corpus labels on the test windows, KD vs labels-only."""
    config_path, budget, seed, out_root, teacher_pt = args
    d, t, seconds = _build_point(config_path, "audio-", budget, seed, out_root, teacher_pt)
    m = d["metrics"]
    return {
        "budget": budget, "seed": seed, "labelled": d["labelled"], "unlabelled": d["unlabelled"],
        "teacher_trained_on": "another corpus" if teacher_pt else "the labelled clips",
        "teacher": t["metrics"]["ccc_mean"], "kd_quant": m["quant"]["vs_labels"]["ccc_mean"],
        "kd_float": m["float"]["vs_labels"]["ccc_mean"], "labels_only": m["baseline_no_kd"]["vs_labels"]["ccc_mean"],
        "seconds": seconds,
    }


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def summarise(points: list[dict], audio: bool = False) -> dict:
    rows = {}
    for budget in sorted({p["budget"] for p in points}):
        ps = sorted((p for p in points if p["budget"] == budget), key=lambda p: p["seed"])
        kd, base = _stats([p["kd_quant"] for p in ps]), _stats([p["labels_only"] for p in ps])
        gain = _stats([p["kd_quant"] - p["labels_only"] for p in ps])
        row = {
            "labelled": ps[0]["labelled"], "unlabelled": ps[0]["unlabelled"], "seeds": [p["seed"] for p in ps],
            "teacher": _stats([p["teacher"] for p in ps]), "kd_quant": kd, "labels_only": base,
            "kd_float": _stats([p["kd_float"] for p in ps]), "paired_gain": gain,
        }
        spread = max(kd["sd"], base["sd"])
        if audio:
            row["target"] = {"kd_beats_labels_only_every_seed": all(g > 0 for g in gain["values"]),
                             "gain_above_twice_larger_sd": gain["mean"] > 2 * spread}
        elif budget <= 0.05:
            row["target"] = {"gain_at_least_3_points": gain["mean"] >= 0.03,
                             "gain_above_twice_larger_sd": gain["mean"] > 2 * spread}
        elif budget >= 1.0:
            row["target"] = {"kd_not_worse_beyond_spread": gain["mean"] >= -spread}
        rows[f"{budget:g}"] = row
    return rows


def summarise_method(points: list[dict], method: str) -> dict:
    """`method` against plain kd (the config's loss) and labels-only, paired by seed, per budget."""
    rows = {}
    for budget in sorted({p["budget"] for p in points}):
        kd = {p["seed"]: p for p in points if p["budget"] == budget and p["loss"] != method}
        other = {p["seed"]: p for p in points if p["budget"] == budget and p["loss"] == method}
        seeds = sorted(set(kd) & set(other))
        if not seeds:
            continue
        m_vals, kd_vals = [other[s]["kd_quant"] for s in seeds], [kd[s]["kd_quant"] for s in seeds]
        base = [kd[s]["labels_only"] for s in seeds]
        gain = _stats([a - b for a, b in zip(m_vals, kd_vals)])
        spread = max(_stats(m_vals)["sd"], _stats(kd_vals)["sd"])
        rows[f"{budget:g}"] = {
            "labelled": kd[seeds[0]]["labelled"], "seeds": seeds, "teacher": _stats([kd[s]["teacher"] for s in seeds]),
            method: _stats(m_vals), f"{method}_float": _stats([other[s]["kd_float"] for s in seeds]),
            "kd": _stats(kd_vals), "labels_only": _stats(base), "paired_gain_vs_kd": gain,
            f"paired_gain_{method}_vs_labels_only": _stats([a - b for a, b in zip(m_vals, base)]),
            "same_teacher_both_arms": all(kd[s]["teacher"] == other[s]["teacher"] for s in seeds),
            "helps": {"gain_vs_kd_positive_every_seed": all(g > 0 for g in gain["values"]),
                      "gain_vs_kd_above_twice_larger_sd": gain["mean"] > 2 * spread},
        }
    return rows


def main_method(config: Path, budgets: list[float], seeds: int, workers: int, out_root: Path, method: str,
                kd_from: Path | None = None) -> dict:
    """Cells: `method` (e.g. function_matching) against plain kd, both from the pool teacher, paired by seed.
    `kd_from`: take the kd points (same config, seeds, pool teacher, 1 thread) from a saved kd_label_budget.json
    instead of re-running them; `same_teacher_both_arms` in the summary checks the teacher's test accuracy."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1) as pool:
        teacher_pt = str(pool.submit(_pool_teacher, str(config), str(out_root)).result())
    points: list[dict] = []
    losses: tuple[str, ...] = ("kd", method)
    if kd_from is not None:
        saved = json.loads(kd_from.read_text())
        for p in saved["points"]:  # summarise_method checks both arms' teacher scored the same on the test split
            if p["budget"] in budgets and p["seed"] < seeds:
                points.append({**p, "loss": p.get("loss", "kd"), "from": str(kd_from.name)})
        losses = (method,)
    jobs = [(str(config), b, s, str(out_root), teacher_pt, loss) for b in budgets for s in range(seeds)
            for loss in losses]  # kd and the method of one seed next to each other: pairs finish together
    dest = HERE / "results" / f"kd_label_budget_{method}.json"
    from edgekd.determinism import cpu_features

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_point, job) for job in jobs]
        for fut in as_completed(futures):
            points.append(fut.result())
            out = {
                "benchmark": f"kd_label_budget_{method}",
                "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
                "what": f"quantized cell student test accuracy: distill.loss {method} against kd (the config's "
                        "loss and settings) and labels-only, same pool teacher, same seeds, same steps; paired by seed",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu": cpu_features(),
                            "torch_threads_per_point": 1, "workers": workers},
                "wall_s": round(time.perf_counter() - t0, 1),
                "teacher": f"trained once on another labelled pool (synthetic seed {POOL_SEED}, all labels)",
                "points": sorted(points, key=lambda p: (p["budget"], p["seed"], p["loss"])),
                "budgets": summarise_method(points, method),
            }
            dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["budgets"], indent=1))
    return out


def main(config: Path, budgets: list[float], seeds: int, workers: int, out_root: Path, audio: bool = False,
         teacher: str = "pool") -> dict:
    t0 = time.perf_counter()
    teacher_pt = None
    if teacher == "pool":
        with ProcessPoolExecutor(max_workers=1) as pool:  # one worker: its torch threads as the points'
            teacher_pt = str(pool.submit(_pool_teacher, str(config), str(out_root), audio).result())
    jobs = [(str(config), b, s, str(out_root), teacher_pt) for b in budgets for s in range(seeds)]
    points: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:  # jobs start in the order of --budgets
        futures = [pool.submit(_audio_point if audio else _point, job) for job in jobs]
        for fut in as_completed(futures):
            points.append(fut.result())
            out = _save(points, config, audio, teacher, workers, t0)  # a killed run keeps what is done
    print(json.dumps(out["budgets"], indent=1))
    return out


def _save(points: list[dict], config: Path, audio: bool, teacher: str, workers: int, t0: float) -> dict:
    from edgekd.determinism import cpu_features

    out = {
        "benchmark": "kd_label_budget_audio" if audio else "kd_label_budget",
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "what": ("wav2small_hw quantized student, mean CCC vs corpus labels on the test windows, KD (teacher "
                 "annotations on all training windows) vs labels-only (labelled clips alone, same steps), paired by seed"
                 if audio else
                 "quantized cell student test accuracy, KD (teacher annotations on all training images) vs "
                 "labels-only (labelled images alone, same steps), paired by seed"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu": cpu_features(),
                    "torch_threads_per_point": 1, "workers": workers},
        "wall_s": round(time.perf_counter() - t0, 1),
        "points": sorted(points, key=lambda p: (p["budget"], p["seed"])),
        "teacher": (f"trained once on another labelled corpus (synthetic speech seed {POOL_SEED}: other voices, "
                    f"{AUDIO_POOL_CLIPS} clips, all labelled), loaded by every point" if audio and teacher == "pool"
                    else "trained once on another labelled pool (synthetic seed "
                    f"{POOL_SEED}, all labels), loaded by every point" if teacher == "pool"
                    else "trained per point on that point's labelled " + ("clips" if audio else "images")),
        "budgets": summarise(points, audio),
    }
    suffix = "" if teacher == "pool" else "_teacher_on_labelled"
    if config.stem not in ("cells_paper", "wav2small"):  # another recipe (e.g. examples/cells.yaml): its own file
        suffix += f"_{config.stem}"
    dest = HERE / "results" / f"{out['benchmark']}{suffix}.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "cells_paper.yaml")
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.05, 1.0, 0.01, 0.2])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-label-budget")
    ap.add_argument("--teacher", choices=["pool", "labelled"], default="pool",
                    help="pool: a teacher trained elsewhere (another labelled pool); labelled: per point, on its labels")
    ap.add_argument("--audio", action="store_true",
                    help="the audio task: examples/wav2small.yaml at a quarter of the clips labelled")
    ap.add_argument("--loss", default=None,
                    help="cells: also a distillation method (e.g. function_matching) against kd, paired by seed "
                         "(results/kd_label_budget_<loss>.json); default budget 0.05")
    ap.add_argument("--kd-from", type=Path, default=None,
                    help="with --loss: the kd points from this saved kd_label_budget.json (same config and pool "
                         "teacher) instead of re-running them")
    args = ap.parse_args()
    if args.loss:
        budgets = args.budgets if args.budgets != ap.get_default("budgets") else [0.05]
        main_method(args.config, budgets, args.seeds, args.workers, args.out, args.loss, args.kd_from)
    elif args.audio:
        config = args.config if args.config != ap.get_default("config") else ROOT / "examples" / "wav2small.yaml"
        budgets = args.budgets if args.budgets != ap.get_default("budgets") else [0.25]
        main(config, budgets, args.seeds, args.workers, args.out, audio=True, teacher=args.teacher)
    else:
        main(args.config, args.budgets, args.seeds, args.workers, args.out, teacher=args.teacher)
