"""Per-step wall time and headline figures of the default cell example, saved as JSON.

    .venv/bin/python benchmarks/build_cells.py [--config examples/cells.yaml] [--out build/bench-cells]

Targets (issue 2): the whole build under 10 minutes on 2 cores; the quantized student within
3 points of the teacher's test accuracy and above the labels-only baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from edgekd.config import load_config
from edgekd.io import read_json, write_json
from edgekd.pipeline import run_build

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "cells.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-cells")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "build_cells.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cfg = load_config(args.config)
    start = time.perf_counter()
    run_build(cfg, args.out, force=True)
    total = time.perf_counter() - start
    report = read_json(args.out / "report" / "report.json")
    steps = read_json(args.out / "time_per_step.json")
    teacher = report["teacher"]["metrics"]["accuracy"]
    student = report["student"]["metrics"]["quant"]["accuracy"]
    baseline = report["student"]["metrics"].get("baseline_no_kd", {}).get("accuracy")
    result = {
        "benchmark": "build_cells",
        "config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "total_s": round(total, 1),
        "per_step_s": steps,
        "teacher_accuracy": teacher,
        "student_quant_accuracy": student,
        "student_float_accuracy": report["student"]["metrics"].get("float", {}).get("accuracy"),
        "baseline_no_kd_accuracy": baseline,
        "fidelity": report["fidelity"],
        "targets": {
            "build_under_600_s": total < 600,
            "student_within_3_pts_of_teacher": teacher - student <= 0.03,
            "student_above_baseline": baseline is None or student > baseline,
        },
    }
    write_json(args.json, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
