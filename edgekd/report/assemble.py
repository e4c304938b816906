"""Assemble report.json, the source of truth of a build, from the steps' own JSON files.

Every figure carries where it came from: `torch` (the student evaluated in PyTorch fake-quant),
`qonnx` (QONNX execution), `csim` (hls4ml C-simulation compiled with g++), later `estimate`,
`synthesis` and `board`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from edgekd import __version__
from edgekd.config import BuildConfig
from edgekd.io import read_json

# The published cell-sorting student (arXiv 2503.12622), for side-by-side comparison.
PAPER_CELL_STUDENT = {
    "source": "arXiv 2503.12622 (Student2, B vs T)",
    "params": 5682,
    "float_accuracy": 0.895,
    "fpga_latency_us": 14.5,
}


def assemble_report(cfg: BuildConfig, build_dir: Path) -> dict:
    data = read_json(build_dir / "data" / "data.json")
    teacher = read_json(build_dir / "teacher" / "teacher.json")
    distill = read_json(build_dir / "distill" / "distill.json")
    export = read_json(build_dir / "export" / "export.json")
    hls = read_json(build_dir / "hls" / "hls.json")
    timings_path = build_dir / "time_per_step.json"
    timings = read_json(timings_path) if timings_path.exists() else {}

    metrics = distill["metrics"]
    quant_acc = metrics["quant"]["accuracy"]
    summary = {
        "teacher_accuracy": teacher["metrics"]["accuracy"],
        "student_accuracy": quant_acc,
        "student_minus_teacher": quant_acc - teacher["metrics"]["accuracy"],
    }
    if "baseline_no_kd" in metrics:
        summary["kd_gain_over_baseline"] = quant_acc - metrics["baseline_no_kd"]["accuracy"]
    if "float" in metrics:
        summary["quantization_cost"] = metrics["float"]["accuracy"] - quant_acc

    return {
        "edgekd_version": __version__,
        "name": cfg.name,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_sha256": cfg.sha256(),
        "task": cfg.task,
        "data": data,
        "teacher": {
            "source": teacher["source"],
            "arch": teacher["arch"],
            "params": teacher["params"],
            "sha256": teacher["sha256"],
            "metrics": teacher["metrics"],
            "metrics_source": "torch",
        },
        "student": {
            "name": distill["name"],
            "params": distill["params"],
            "macs": distill["macs"],
            "loss": distill["loss"],
            "metrics": metrics,
            "metrics_source": "torch",
        },
        "summary": summary,
        "fidelity": {
            "n": export["fidelity"]["n"],
            "torch_vs_qonnx_exact": export["fidelity"]["exact"],
            "qonnx_vs_csim_exact": hls["fidelity"]["exact"],
            "max_abs_diff": max(export["fidelity"]["max_abs_diff"], hls["fidelity"]["max_abs_diff"]),
            "first_diverging_layer": hls["fidelity"].get("first_diverging_layer"),
        },
        "hw_metrics": {**hls["csim_metrics"], "source": "csim"},
        "hls": {
            k: hls[k]
            for k in (
                "backend", "io_type", "part", "clock_mhz", "clock_period_ns",
                "reuse_factor", "strategy", "input_precision", "project_dir",
            )
        },
        "export": {"qonnx": f"export/{export['qonnx']}", "ops": export["support"]},
        "reference": PAPER_CELL_STUDENT,
        "timings_s": timings,
    }
