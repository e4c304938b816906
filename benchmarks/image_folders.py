"""Image folders at the accuracy a user expects (issue 30): teacher, quantized student and the logistic-regression
baseline on real folders read from a path, with the augmentation and input sizes the build chose, 3 seeds.

Each folder is built as a new user would: `data: {source: folder, path: DIR}` and the board, nothing else unless
`--set` says so (data.augment, the input sizes and the teacher's epoch length then come from the data). Seed s sets
`seed` (teacher) and `distill.seed`; the test split is the same for every seed (data.split_seed 0), so the logistic
baseline (deterministic) is one figure per folder. Seed 0 runs through `hls` (the fit search and the latency
estimate on the board), the other seeds through `distill`. Targets: the quantized student within 3 points of the
logistic baseline or above it, the teacher above it (means over the seeds).

    .venv/bin/python benchmarks/export_image_folders.py digits /tmp/digits
    .venv/bin/python benchmarks/export_image_folders.py textures /tmp/textures
    .venv/bin/python benchmarks/image_folders.py --folder digits=/tmp/digits --folder textures=/tmp/textures
    .venv/bin/python benchmarks/image_folders.py --folder digits=/tmp/digits --set data.augment=dihedral \\
        --set teacher.input_size=64 --set student.input_size=48 --tag old_defaults      # the defaults before

Prints a table and saves benchmarks/results/image_folders[_TAG].json. Builds run in worker processes with one
torch thread each; finished builds are reused (--out). Never part of the tests.
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

import yaml

HERE = Path(__file__).resolve().parent


def _config(name: str, path: str, seed: int, board: str, sets: list[str]) -> dict:
    cfg: dict = {"name": name, "seed": seed, "data": {"source": "folder", "path": path},
                 "distill": {"seed": seed}, "hls": {"board": board}}
    for item in sets:
        key, _, value = item.partition("=")
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return cfg


def _build(args: tuple[str, str, int, str, str, list[str]]) -> dict:
    folder, path, seed, out_root, board, sets = args
    os.environ["EDGEKD_THREADS"] = "1"
    import logging

    logging.disable(logging.INFO)
    from edgekd.config import parse_config
    from edgekd.io import read_json
    from edgekd.pipeline import run_build

    cfg = parse_config(_config(f"{folder}-seed{seed}", path, seed, board, sets))
    out = Path(out_root) / cfg.name
    t0 = time.perf_counter()
    run_build(cfg, out, to_step="hls" if seed == 0 else "distill")
    data = read_json(out / "data" / "data.json")
    teacher = read_json(out / "teacher" / "teacher.json")
    distill = read_json(out / "distill" / "distill.json")
    logistic = read_json(out / "distill" / "logistic.json")
    m = distill["metrics"]
    row = {
        "folder": folder, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
        "augment": data["augment"], "image_size": data["image_size"],
        "teacher_input_size": cfg.teacher.input_size, "student_input_size": cfg.student.input_size,
        "teacher_steps_per_epoch": teacher.get("steps_per_epoch"), "teacher_epochs": cfg.teacher.epochs,
        "n": {k: data[k]["n"] for k in ("train", "val", "test")},
        "teacher": teacher["metrics"]["accuracy"], "student_quant": m["quant"]["accuracy"],
        "student_float": m["float"]["accuracy"], "labels_only": m.get("baseline_no_kd", {}).get("accuracy"),
        "logistic": logistic["metrics"]["accuracy"], "logistic_C": logistic["C"],
        "student_params": distill["params"], "student_macs": distill["macs"],
    }
    est = out / "hls" / "estimate.json"
    if est.is_file():
        e = read_json(est)
        row["latency"] = {"us": e["us"], "cycles": e["cycles"], "board": e["board"]["name"],
                          "fits": e["fit"].get("fits_limits", e["fit"].get("fits")), "binding": e["fit"].get("binding")}
    return row


def _mean_sd(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for folder in sorted({r["folder"] for r in rows}):
        rs = sorted((r for r in rows if r["folder"] == folder), key=lambda r: r["seed"])
        first = rs[0]
        s = {k: _mean_sd([r[k] for r in rs]) for k in ("teacher", "student_quant", "student_float")}
        if all(r["labels_only"] is not None for r in rs):
            s["labels_only"] = _mean_sd([r["labels_only"] for r in rs])
        logistic = first["logistic"]
        s.update({
            "logistic": logistic, "seeds": [r["seed"] for r in rs],
            "augment": first["augment"], "image_size": first["image_size"],
            "teacher_input_size": first["teacher_input_size"], "student_input_size": first["student_input_size"],
            "student_params": first["student_params"], "student_macs": first["student_macs"],
            "latency": next((r["latency"] for r in rs if "latency" in r), None), "n": first["n"],
            "target": {
                "student_within_3_points_of_logistic": s["student_quant"]["mean"] >= logistic - 0.03,
                "teacher_above_logistic": s["teacher"]["mean"] > logistic,
            },
        })
        out[folder] = s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", action="append", required=True, help="NAME=PATH of an image folder (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--board", default="zcu104")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE config override, e.g. distill.epochs=10")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the results file")
    parser.add_argument("--out", type=Path, default=Path("build/bench-image-folders"))
    args = parser.parse_args()
    folders = dict(item.split("=", 1) for item in args.folder)
    tag = f"_{args.tag}" if args.tag else ""
    out_root = args.out.resolve() / (args.tag or "default")
    jobs = [(name, str(Path(path).resolve()), seed, str(out_root), args.board, args.set)
            for seed in args.seeds for name, path in folders.items()]
    t0 = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for fut in as_completed([pool.submit(_build, job) for job in jobs]):
            row = fut.result()
            rows.append(row)
            print(f"{row['folder']} seed {row['seed']}: teacher {row['teacher']:.4f}, student {row['student_quant']:.4f}"
                  f" (float {row['student_float']:.4f}), logistic {row['logistic']:.4f} ({row['seconds']} s)", flush=True)
    summary = summarise(rows)
    print(f"\n{'folder':10} {'aug':9} {'size t/s':9} {'teacher':>16} {'student (quant)':>16} {'logistic':>9} {'MACs':>9}")
    for folder, s in summary.items():
        t, st = s["teacher"], s["student_quant"]
        print(f"{folder:10} {s['augment']['setting']:9} {s['teacher_input_size']}/{s['student_input_size']:<6} "
              f"{t['mean']:.4f} ± {t['sd']:.4f}  {st['mean']:.4f} ± {st['sd']:.4f}  {s['logistic']:.4f}  "
              f"{s['student_macs']:>9,}  targets {s['target']}")
    result = {
        "benchmark": "image_folders", "command": " ".join(["benchmarks/image_folders.py", *os.sys.argv[1:]]),
        "folders": folders, "overrides": args.set, "board": args.board, "summary": summary,
        "rows": sorted(rows, key=lambda r: (r["folder"], r["seed"])),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch_threads_per_build": 1,
                    "workers": args.workers},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    dest = HERE / "results" / f"image_folders{tag}.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {dest}")


if __name__ == "__main__":
    main()
