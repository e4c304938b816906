"""Distillation against labels-only at 1%, 5%, 20% and 100% of the cell training labels, over seeds.

Each point is a build of examples/cells.yaml up to `distill` with `data.labelled` set to the budget and
the seed (teacher init, student init and batches, and which images keep their labels: `seed`,
`distill.seed`, `data.split_seed`) set to s. Per point: the ResNet teacher trains on the labelled images
only (with the optimizer steps it would get on all of them), annotates every training image (8 views);
the quantized student is distilled on all images (the teacher's top class stands in for missing labels);
`baseline_no_kd` is the same student on the labelled images alone, same seed, same steps. KD and
labels-only are therefore paired runs: the gain is computed per seed, then averaged.

Figures (test split, 2,000 images): quantized student accuracy with KD and labels-only, mean and sample
standard deviation over seeds, the paired gain (mean, sd, per seed), the teacher's accuracy, and the
issue-15 targets: at <= 5% labelled the gain is >= 3 points and exceeds twice the larger sd; at 100% KD is
not worse than labels-only beyond the seed spread.

    .venv/bin/python benchmarks/kd_label_budget.py                 # 4 budgets x 3 seeds, 2 workers
    .venv/bin/python benchmarks/kd_label_budget.py --budgets 0.05 --seeds 5

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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _point(args: tuple[str, float, int, str]) -> dict:
    config_path, budget, seed, out_root = args
    os.environ["EDGEKD_THREADS"] = "1"
    import logging

    logging.disable(logging.INFO)
    from edgekd.config import load_config
    from edgekd.io import read_json
    from edgekd.pipeline import run_build

    cfg = load_config(Path(config_path))
    cfg.name = f"budget{budget:g}-seed{seed}"
    cfg.seed = seed
    cfg.distill.seed = seed
    cfg.data.split_seed = seed
    cfg.data.labelled = None if budget >= 1.0 else budget
    out = Path(out_root) / cfg.name
    t0 = time.perf_counter()
    run_build(cfg, out, to_step="distill")
    d = read_json(out / "distill" / "distill.json")
    t = read_json(out / "teacher" / "teacher.json")
    m = d["metrics"]
    return {
        "budget": budget, "seed": seed, "labelled": d.get("labelled"), "unlabelled": d.get("unlabelled"),
        "teacher": t["metrics"]["accuracy"], "kd_quant": m["quant"]["accuracy"], "kd_float": m["float"]["accuracy"],
        "labels_only": m["baseline_no_kd"]["accuracy"], "seconds": round(time.perf_counter() - t0, 1),
    }


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def summarise(points: list[dict]) -> dict:
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
        if budget <= 0.05:
            row["target"] = {"gain_at_least_3_points": gain["mean"] >= 0.03,
                             "gain_above_twice_larger_sd": gain["mean"] > 2 * spread}
        elif budget >= 1.0:
            row["target"] = {"kd_not_worse_beyond_spread": gain["mean"] >= -spread}
        rows[f"{budget:g}"] = row
    return rows


def main(config: Path, budgets: list[float], seeds: int, workers: int, out_root: Path) -> dict:
    jobs = [(str(config), b, s, str(out_root)) for b in budgets for s in range(seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        points = list(pool.map(_point, jobs))
    from edgekd.determinism import cpu_features

    out = {
        "benchmark": "kd_label_budget",
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "what": "quantized cell student test accuracy, KD (teacher annotations on all training images) vs "
                "labels-only (labelled images alone, same steps), paired by seed",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu": cpu_features(),
                    "torch_threads_per_point": 1, "workers": workers},
        "wall_s": round(time.perf_counter() - t0, 1),
        "points": points,
        "budgets": summarise(points),
    }
    print(json.dumps(out["budgets"], indent=1))
    dest = HERE / "results" / "kd_label_budget.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "cells_paper.yaml")
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.01, 0.05, 0.2, 1.0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-label-budget")
    args = ap.parse_args()
    main(args.config, args.budgets, args.seeds, args.workers, args.out)
