"""`edgekd sweep` on the cell task: 16 points with 1 worker and with 2 workers, the Pareto set, the target.

The grid is examples/sweep_cells.yaml (4 input geometries x 2 conv widths x 2 weight bit widths); its first
point is the example's student (examples/cells.yaml: 48 px, 2x2 pixel blocks, channels [16, 16], 8 bits),
the reference. The recipe is examples/cells.yaml reduced so that a point takes about a minute on one
thread (stated in the JSON): 2,400 training / 1,000 test cells (5% labelled), a teacher of width 16 trained
10 epochs on its own 4,000-cell pool, students 20 float + 2 QAT epochs, no labels-only baseline, 128 verified
samples. Accuracies are single-seed figures of this recipe (one point's spread between seeds is about
1 point, README "Designs that fit the FPGA"); latency and resources are the builds' estimates.

    nice -n 10 .venv/bin/python benchmarks/sweep_cells.py            # 1 worker, then 2 workers
    .venv/bin/python benchmarks/sweep_cells.py --workers 1 2 4
    nice -n 10 .venv/bin/python benchmarks/sweep_cells.py --extend   # + 9 points (8 near half the latency)

The teacher is built once (in the 1-worker run) and copied into the other runs' folders, so each run's
"points" wall time is the points alone; the sweep's own wall time is saved too. Saves
benchmarks/results/sweep_cells.json and prints a summary. Never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

REDUCED = {  # dotted key -> value, applied to examples/cells.yaml
    "data.synthetic.n_train": 2400,
    "data.synthetic.n_test": 1000,
    "teacher.data.synthetic.n_train": 4000,
    "teacher.width": 16,
    "teacher.epochs": 10,
    "distill.epochs": 20,
    "distill.qat_epochs": 2,
    "distill.baseline": False,
    "hls.verify_samples": 128,
}


# --extend: 9 more points: 8 in the region of half the reference's latency (32 px, 2x2 blocks: 1.14 us), wider
# and larger-kernel students and a longer float phase, and the reference with that longer phase; run in the
# last run's folder so that the 16 points come from its cache
EXTENSION = [
    {"student.input_size": 32, "student.input_block": 2, "student.channels": ch, "student.kernel_sizes": ks,
     "distill.epochs": ep}
    for ch, ks in (([32, 32], [3, 3]), ([16, 32], [5, 3]), ([32, 32], [5, 3]), ([32, 64], [3, 3]))
    for ep in (20, 40)
] + [{"distill.epochs": 40}]  # the reference student with the longer float phase: a fair comparison


def reduced_config(dest: Path) -> Path:
    from edgekd.sweep.points import set_dotted

    data = yaml.safe_load((ROOT / "examples" / "cells.yaml").read_text())
    for key, value in REDUCED.items():
        set_dotted(data, key, value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def _row(r: dict) -> dict:
    return {k: r.get(k) for k in ("index", "label", "status", "params", "macs", "accuracy", "bit_exact", "latency",
                                  "resources", "wall_s", "worker", "within_budgets", "pareto_latency",
                                  "pareto_utilization", "failed_step", "error", "hashes")}


def target(points: list[dict]) -> dict:
    """Is there a point at least as accurate as the reference (point 0) with at most half its latency?"""
    ref = points[0]
    ok = [p for p in points if p["status"] == "ok"]
    hits = [p["index"] for p in ok if p["index"] != 0 and p["accuracy"]["hardware"] >= ref["accuracy"]["hardware"]
            and p["latency"]["us"] <= ref["latency"]["us"] / 2]
    fast = [p for p in ok if p["latency"]["us"] <= ref["latency"]["us"] / 2]
    best_fast = max(fast, key=lambda p: p["accuracy"]["hardware"]) if fast else None
    return {
        "reference": {"index": 0, "label": ref["label"], "accuracy": ref["accuracy"]["hardware"],
                      "latency_us": ref["latency"]["us"]},
        "half_latency_us": ref["latency"]["us"] / 2,
        "points_at_half_latency": [p["index"] for p in fast],
        "most_accurate_at_half_latency": None if best_fast is None else {
            "index": best_fast["index"], "label": best_fast["label"], "accuracy": best_fast["accuracy"]["hardware"],
            "latency_us": best_fast["latency"]["us"]},
        "met_by": hits,
        "met": bool(hits),
    }


def same_recipe_target(points: list[dict]) -> dict:
    """The target per float-phase length: the reference student (48 px, 2x2 blocks, [16, 16], 8 bits) and the
    points at half its latency trained with the same distill.epochs (a longer phase helps every student)."""
    out = {}
    ok = [p for p in points if p["status"] == "ok"]
    for epochs in sorted({p["config"]["distill"]["epochs"] for p in ok}):
        same = [p for p in ok if p["config"]["distill"]["epochs"] == epochs]
        ref = next((p for p in same if p["config"]["student"]["input_size"] == 48
                    and p["config"]["student"]["input_block"] == 2 and p["config"]["student"]["channels"] == [16, 16]
                    and p["config"]["student"]["weight_bits"] == 8), None)
        if ref is None:
            continue
        fast = [p for p in same if p["latency"]["us"] <= ref["latency"]["us"] / 2]
        top = max(fast, key=lambda p: p["accuracy"]["hardware"]) if fast else None
        out[str(epochs)] = {
            "reference": {"index": ref["index"], "accuracy": ref["accuracy"]["hardware"], "latency_us": ref["latency"]["us"]},
            "most_accurate_at_half_latency": None if top is None else {
                "index": top["index"], "label": top["label"], "accuracy": top["accuracy"]["hardware"],
                "latency_us": top["latency"]["us"]},
            "met": bool(top) and top["accuracy"]["hardware"] >= ref["accuracy"]["hardware"],
        }
    return out


def extend(result: dict, config: Path, args) -> None:
    """Run the sweep again with the EXTENSION points added, in the last run's folder (the 16 points cached)."""
    from edgekd.sweep.run import run_sweep

    points = result["points"]
    spec = yaml.safe_load(args.sweep.read_text())
    spec["points"] = [*spec.get("points", []), *EXTENSION]
    ext_path = args.out / "sweep_cells_extended.yaml"
    ext_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    t0 = time.perf_counter()
    ext = run_sweep(config, ext_path, out=args.out / f"workers{args.workers[-1]}", workers=args.workers[-1])
    result["extended"] = {
        "points_added": EXTENSION, "wall_s": round(time.perf_counter() - t0, 1), "built": ext["summary"]["built"],
        "cached": ext["summary"]["cached"], "pareto_latency": ext["summary"]["pareto_latency"],
        "pareto_utilization": ext["summary"]["pareto_utilization"], "best": ext["summary"]["best"],
        "target": target(ext["points"]), "points": [_row(r) for r in ext["points"][len(points):]],
        "target_same_recipe": same_recipe_target(ext["points"]),
    }
    print(f"extended: {ext['summary']['built']} built, {ext['summary']['cached']} cached; target "
          f"{'met by ' + str(result['extended']['target']['met_by']) if result['extended']['target']['met'] else 'not met'}"
          f"; most accurate at half latency: {result['extended']['target']['most_accurate_at_half_latency']}")
    for epochs, t in result["extended"]["target_same_recipe"].items():
        top = t["most_accurate_at_half_latency"]
        print(f"same recipe ({epochs} float epochs): reference {100 * t['reference']['accuracy']:.2f}% at "
              f"{t['reference']['latency_us']} us; best at half latency "
              + (f"point {top['index']} {100 * top['accuracy']:.2f}% at {top['latency_us']} us" if top else "none")
              + f": target {'met' if t['met'] else 'not met'}")
    for p in result["extended"]["points"]:
        if p["status"] == "ok":
            print(f"{p['index']:3d} {p['label'][:90]:90s} {p['params']:6d} {100 * p['accuracy']['hardware']:6.2f}% "
                  f"{p['latency']['us']:7.3f} {p['resources']['binding']} {100 * p['resources']['binding_fraction']:.0f}%")
        else:
            print(f"{p['index']:3d} {p['label'][:90]:90s} FAILED at {p['failed_step']}: {p['error'][:80]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", type=Path, default=ROOT / "examples" / "sweep_cells.yaml")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-sweep-cells")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "sweep_cells.json")
    ap.add_argument("--extend", action="store_true",
                    help="add the 9 EXTENSION points to the saved result (its last run's folder: the 16 are cached)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from edgekd.sweep.run import run_sweep
    from edgekd.sweep.task import MARKER

    config = reduced_config(args.out / "cells_reduced.yaml")
    if args.extend:
        result = json.loads(args.json.read_text())
        extend(result, config, args)
        args.json.write_text(json.dumps(result, indent=1))
        print(f"saved {args.json}")
        return
    runs, docs = [], {}
    first = None
    for n in args.workers:
        out = args.out / f"workers{n}"
        if first is not None and not out.exists():  # the same teacher: copy the first run's base build
            out.mkdir(parents=True)
            shutil.copy2(first / MARKER, out / MARKER)
            shutil.copytree(first / "base", out / "base")
        t0 = time.perf_counter()
        doc = run_sweep(config, args.sweep, out=out, workers=n)
        wall = time.perf_counter() - t0
        docs[n] = doc
        base_s = doc["base"]["seconds"]
        runs.append({"workers": n, "wall_s": round(wall, 1), "teacher_s": base_s,
                     "points_wall_s": round(wall - base_s, 1), "built": doc["summary"]["built"],
                     "cached": doc["summary"]["cached"], "sum_point_s": doc["summary"]["points_wall_s"],
                     "base_steps": doc["base"]["steps"]})
        print(f"{n} worker(s): {wall:.0f} s ({base_s:.0f} s teacher, {wall - base_s:.0f} s points), "
              f"{doc['summary']['built']} built, {doc['summary']['cached']} cached", flush=True)
        first = first or out
    ref_run = runs[0]
    for r in runs:
        r["speedup_vs_first"] = round(ref_run["points_wall_s"] / r["points_wall_s"], 3) if r["points_wall_s"] else None
    doc = docs[args.workers[-1]]
    points = [_row(r) for r in doc["points"]]
    same = all(a["hashes"] == b["hashes"] for a, b in zip(docs[args.workers[0]]["points"], doc["points"])
               if a["status"] == b["status"] == "ok")
    from edgekd.determinism import cpu_features

    result = {
        "command": "benchmarks/sweep_cells.py --workers " + " ".join(map(str, args.workers)),
        "sweep": str(args.sweep.relative_to(ROOT)) if args.sweep.is_relative_to(ROOT) else str(args.sweep),
        "recipe": {"base": "examples/cells.yaml", "reduced": REDUCED},
        "runs": runs,
        "same_weights_across_runs": same,
        "pareto_latency": doc["summary"]["pareto_latency"],
        "pareto_utilization": doc["summary"]["pareto_utilization"],
        "best": doc["summary"]["best"],
        "budgets": doc["budgets"],
        "target": target(doc["points"]),
        "teacher": doc["base"]["teacher"],
        "points": points,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu": cpu_features(),
                    "loadavg_at_end": os.getloadavg()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"\n{'pt':>3s} {'student':58s} {'params':>6s} {'hw acc':>7s} {'lat us':>7s} {'binding':>10s}  pareto")
    for p in points:
        if p["status"] != "ok":
            print(f"{p['index']:3d} {p['label']:58s} FAILED at {p['failed_step']}: {p['error'][:60]}")
            continue
        print(f"{p['index']:3d} {p['label'][:58]:58s} {p['params']:6d} {100 * p['accuracy']['hardware']:6.2f}% "
              f"{p['latency']['us']:7.3f} {p['resources']['binding']:>4s} {100 * p['resources']['binding_fraction']:4.0f}%"
              f"  {'P' if p['pareto_latency'] else ''}{' best' if p['index'] == result['best'] else ''}")
    for r in runs:
        print(f"{r['workers']} worker(s): points {r['points_wall_s']:.0f} s, speedup {r['speedup_vs_first']}x")
    t = result["target"]
    print(f"target (>= point 0's accuracy {100 * t['reference']['accuracy']:.2f}% at <= {t['half_latency_us']:.3f} us): "
          f"{'met by ' + str(t['met_by']) if t['met'] else 'not met'}; most accurate at half latency: "
          f"{t['most_accurate_at_half_latency']}")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
