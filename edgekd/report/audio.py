"""report.json of an audio build (task: regression, speech emotion A/D/V), from the steps' JSON files.

Same skeleton as the cell report (edgekd.report.assemble: versions, fidelity, latency, resources, project,
timings), with regression figures: CCC per arousal/dominance/valence and their mean, computed over the
whole test split of windows (clip-level figures average each clip's windows). Every figure says where it
came from (`torch`, `qonnx`, `csim`, `emulator`, `estimate`, `synthesis`, `board`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from edgekd import __version__
from edgekd.config import BuildConfig
from edgekd.io import read_json
from edgekd.report.assemble import (
    _board_lut,
    _project_section,
    fit_summary,
    latency_and_resources,
    rtl_section,
    toolchain_versions,
)

# The published Wav2Small figures (arXiv 2408.13920, REFERENCE.md section 2), for side-by-side comparison.
PAPER_WAV2SMALL = {
    "source": "arXiv 2408.13920 (Wav2Small)",
    "teacher_ccc": {"arousal": 0.762, "dominance": 0.684, "valence": 0.676},
    "wav2small_params": 72000,
    "wav2small_int8_onnx_bytes": 60000,
    "cpu_ms_per_10s_clip": {"wav2vec2": 670.0, "mobilenetv4": 7.0},
}


def assemble_audio_report(cfg: BuildConfig, build_dir: Path) -> dict:
    data = read_json(build_dir / "data" / "data.json")
    teacher = read_json(build_dir / "teacher" / "teacher.json")
    distill = read_json(build_dir / "distill" / "distill.json")
    export = read_json(build_dir / "export" / "export.json")
    hls = read_json(build_dir / "hls" / "hls.json")
    timings_path = build_dir / "time_per_step.json"
    timings = read_json(timings_path) if timings_path.exists() else {}
    latency, resources = latency_and_resources(build_dir)

    metrics = distill["metrics"]
    students = {
        key: {
            "model": {"wav2small": "wav2small", "float": f"{distill['name']} (float phase)",
                      "quant": f"{distill['name']} (QAT)", "baseline_no_kd": f"{distill['name']} on corpus labels"}[key],
            "ccc_vs_teacher": m["vs_teacher"]["ccc"] | {"mean": m["vs_teacher"]["ccc_mean"]},
            "ccc_vs_labels": None if m["vs_labels"] is None else m["vs_labels"]["ccc"] | {"mean": m["vs_labels"]["ccc_mean"]},
            "ccc_vs_labels_clips": None if m["vs_labels"] is None
            else m["vs_labels"]["clips"]["ccc"] | {"mean": m["vs_labels"]["clips"]["ccc_mean"]},
            "source": "torch",
        }
        for key, m in metrics.items()
    }
    t_metrics = teacher["metrics"]
    hw_metrics = hls["hw_metrics"]
    fidelity = {
        "n": export["fidelity"]["n"],
        "torch_vs_qonnx_exact": export["fidelity"]["exact"],
        "qonnx_vs_csim_exact": hls["fidelity"]["exact"],
        "max_abs_diff": max(export["fidelity"]["max_abs_diff"], hls["fidelity"]["max_abs_diff"]),
        "first_diverging_layer": hls["fidelity"].get("first_diverging_layer"),
    }
    if "emulator_vs_qonnx" in hls:
        fidelity["emulator_vs_csim_exact"] = hls["emulator_vs_csim"]["exact"]
        fidelity["emulator_vs_qonnx"] = hls["emulator_vs_qonnx"]
    return {
        "edgekd_version": __version__,
        "name": cfg.name,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_sha256": cfg.sha256(),
        "versions": toolchain_versions(),
        "task": "regression",
        "summary": {"fit": fit_summary(resources, latency)},
        "outputs": data["outputs"],
        "data": data,
        "teacher": {
            "source": teacher["source"],
            "arch": teacher["arch"],
            "params": teacher["params"],
            "sha256": teacher["sha256"],
            "ccc_vs_labels": None if t_metrics is None else t_metrics["ccc"] | {"mean": t_metrics["ccc_mean"]},
            "ccc_vs_labels_clips": None if t_metrics is None
            else t_metrics["clips"]["ccc"] | {"mean": t_metrics["clips"]["ccc_mean"]},
            "ccc_vs_latent_clips": (teacher.get("metrics_vs_latent_clips") or {}).get("ccc"),
            "metrics": t_metrics,
            "metrics_source": "torch",
        },
        "student": {
            "name": distill["name"],
            "params": distill["params"],
            "loss": distill["loss"],
            "students": students,
            "metrics": metrics,
            "wav2small": distill["wav2small"],
            "hw_replacements": export.get("hw_replacements"),
            "input": export.get("input"),
            "metrics_source": "torch",
        },
        "target": distill["target"],
        "fidelity": fidelity,
        "hw_metrics": hw_metrics,
        "csim_metrics": hls["csim_metrics"],
        "emulator": hls.get("emulator"),
        "latency": latency | {"window_seconds": data["window_samples"] / data["sample_rate"]},
        "resources": resources,
        "hls": {k: hls[k] for k in ("board", "backend", "io_type", "part", "clock_mhz", "clock_period_ns",
                                    "reuse_factor", "strategy", "input_precision", "project_dir")}
        | {"layer_settings": hls.get("layer_settings")},
        "export": {"qonnx": f"export/{export['qonnx']}", "ops": export["support"]},
        "project": _project_section(build_dir),
        "rtl": rtl_section(build_dir, hls.get("clock_mhz"), _board_lut(hls)),
        "reference": PAPER_WAV2SMALL,
        "timings_s": timings,
    }
