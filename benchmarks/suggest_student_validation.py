"""Does the training-free suggest-student score predict the accuracy after distillation?

Ranks cell_cnn candidates within a small budget (<= 3,000 parameters; widths 4/8/16, 1-3 convs, 4 or 8
bits) with `suggest_students`, against the trained teacher of the fully labelled cell build (build/bench-cells-paper,
see benchmarks/kd_methods.py) and against a randomly initialised teacher (DisWOT's setting). Picks
candidates evenly spread over the trained-teacher ranking, distils each with `kd` at the kd_methods budget
(10 float epochs + 2 QAT epochs, batch 128, seed 0) and reports the Spearman rank correlation between score
and quantized test accuracy, next to the naive predictor "more parameters = better".

    .venv/bin/python benchmarks/suggest_student_validation.py      # -> results/suggest_student_validation.json

Few candidates and one seed each: the correlation is noisy; the JSON lists every pair so it can be judged.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from edgekd.config import load_config
from edgekd.io import read_json, write_json
from edgekd.students.suggest import spearman, suggest_students

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def _kd_methods():
    # benchmarks/ is sys.path[0] when this file runs as a script; a plain import keeps run_job picklable
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import kd_methods

    return kd_methods


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--budget-params", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--qat-epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--source", type=Path, default=ROOT / "build" / "bench-cells-paper")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-kd-methods")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("edgekd", "brevitas"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("suggest_validation")
    t0 = time.perf_counter()
    kd_methods = _kd_methods()

    source = kd_methods.ensure_source(args.source)
    config = ROOT / "examples" / "cells_paper.yaml"
    cfg = load_config(config)
    grid = {"widths": (4, 8, 16), "depths": (1, 2, 3), "bits": (4, 8)}
    t_score = time.perf_counter()
    trained = suggest_students(cfg, source, budget_params=args.budget_params, **grid)
    score_seconds = time.perf_counter() - t_score
    random_teacher = suggest_students(cfg, None, budget_params=args.budget_params, **grid)
    random_scores = {c["label"]: c["score"] for c in random_teacher["candidates"]}
    ranked = trained["candidates"]
    n = min(args.candidates, len(ranked))
    picks = [ranked[round(i * (len(ranked) - 1) / max(n - 1, 1))] for i in range(n)]

    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "suggest_validation_runs.json"
    cache = read_json(cache_path) if cache_path.exists() else {}
    budget = {"epochs": args.epochs, "qat_epochs": args.qat_epochs, "batch_size": args.batch_size, "baseline": False,
              "loss": "kd", "seed": 0}
    jobs = {}
    for c in picks:
        key = f"{c['label']}|{args.epochs}|{args.qat_epochs}|{args.batch_size}"
        if key not in cache:
            jobs[key] = {"config": str(config), "source": str(source), "noisy": False, "student": c["student_config"],
                         "teacher_file": str(source / "teacher" / "logits_train_views.npy"), "distill": budget}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(kd_methods.run_job, job): key for key, job in jobs.items()}
        for fut, key in futures.items():
            cache[key] = fut.result()
            write_json(cache_path, cache)
            log.info("%s: quant acc %.4f (%.0f s)", key, cache[key]["quant_accuracy"], cache[key]["seconds"])
    rows = []
    for c in picks:
        r = cache[f"{c['label']}|{args.epochs}|{args.qat_epochs}|{args.batch_size}"]
        rows.append({"label": c["label"], "params": c["params"], "latency_us": c["latency_us"], "score": c["score"],
                     "score_random_teacher": random_scores.get(c["label"]), "quant_accuracy": r["quant_accuracy"],
                     "float_accuracy": r["float_accuracy"]})
    acc = [r["quant_accuracy"] for r in rows]
    result = {
        "benchmark": "suggest_student_validation",
        "candidates_ranked": len(ranked),
        "candidates_distilled": len(rows),
        "scoring_seconds": round(score_seconds, 1),
        "budget_params": args.budget_params,
        "grid": {k: list(v) for k, v in grid.items()},
        "distill": {**budget, "n_train": 5400, "data": "examples/cells_paper.yaml (synthetic)"},
        "spearman_score_vs_accuracy": round(spearman([r["score"] for r in rows], acc), 3),
        "spearman_random_teacher_score_vs_accuracy": round(spearman([r["score_random_teacher"] for r in rows], acc), 3),
        "spearman_params_vs_accuracy": round(spearman([r["params"] for r in rows], acc), 3),
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "command": "python benchmarks/suggest_student_validation.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "suggest_student_validation.json", result)
    for r in rows:
        print(f"{r['label']:>20}  params {r['params']:>5}  score {r['score']:.4f}  acc {r['quant_accuracy']:.4f}")
    print({k: v for k, v in result.items() if k.startswith("spearman")})
    return result


if __name__ == "__main__":
    main()
