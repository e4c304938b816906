"""Assemble report.json, the source of truth of a build, from the steps' own JSON files.

Every figure carries where it came from: `torch` (the student evaluated in PyTorch fake-quant),
`qonnx` (QONNX execution), `csim` (hls4ml C-simulation compiled with g++), later `estimate`,
`synthesis` and `board`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from edgekd import __version__
from edgekd.determinism import determinism_info
from edgekd.config import BuildConfig
from edgekd.io import read_json
from edgekd.report.lab import lab_board, lab_synthesis

# The published cell-sorting student (arXiv 2503.12622), for side-by-side comparison.
PAPER_CELL_STUDENT = {
    "source": "arXiv 2503.12622 (Student2, B vs T)",
    "params": 5682,
    "float_accuracy": 0.895,
    "fpga_latency_us": 14.5,
    "trigger_latency_us": 24.7,
}


def toolchain_versions() -> dict:
    """Versions of everything whose behaviour a bit-exact result depends on."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    out: dict = {}
    for pkg in ("torch", "brevitas", "qonnx", "hls4ml", "onnx", "onnxruntime", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    try:
        out["g++"] = subprocess.run(["g++", "-dumpfullversion"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["g++"] = None
    return out


def _synthesis_section(vendor: dict, clock_mhz: float) -> dict | None:
    """Latency and resources from the lab's vendor reports (csynth, cosim, Vivado), or None. Co-simulation's
    measured latency / interval are the figures when there is one (source "cosim"), csynth's otherwise."""
    if not vendor:
        return None
    out: dict = {"source": "synthesis", "files": {k: v.get("file") for k, v in vendor.items()}}
    csynth = vendor.get("csynth")
    if csynth:
        clock = 1000.0 / csynth["target_clock_ns"] if csynth.get("target_clock_ns") else clock_mhz
        worst = csynth.get("latency_worst")
        out.update(
            cycles=worst,
            us=None if worst is None else round(worst / clock, 4),
            ii_cycles=csynth.get("interval_max"),
            estimated_clock_ns=csynth.get("estimated_clock_ns"),
            tool_version=csynth.get("tool_version"),
        )
    cosim = vendor.get("cosim")
    if cosim:
        out["cosim"] = cosim
        # co-simulation MEASURES the RTL on the test vectors: its latency and interval win over csynth's
        # schedule estimate (which a free-running top with a region loop cannot even state)
        lat = cosim.get("latency_max") if cosim.get("latency_max") is not None else cosim.get("latency_avg")
        if lat is not None:
            clock = (1000.0 / csynth["target_clock_ns"]) if csynth and csynth.get("target_clock_ns") else clock_mhz
            if csynth:
                out["csynth_cycles"], out["csynth_ii_cycles"] = out.get("cycles"), out.get("ii_cycles")
            out.update(source="cosim", cycles=lat, us=round(lat / clock, 4),
                       ii_cycles=cosim.get("interval_max") if cosim.get("interval_max") is not None
                       else out.get("ii_cycles") if csynth else None)
    if vendor.get("timing"):
        out["timing"] = vendor["timing"]
    return out


def _synthesis_resources(vendor: dict) -> dict | None:
    # Post-implementation utilization beats the HLS estimate in csynth when the lab has both.
    if vendor.get("utilization"):
        return {**vendor["utilization"].get("resources", {}), "source": "vivado"}
    if vendor.get("csynth"):
        return {**vendor["csynth"]["resources"], "source": "csynth"}
    return None


def _project_section(build_dir: Path) -> dict | None:
    """The board project (project/project.json): target, emulated csim_design result, sort trigger."""
    path = build_dir / "project" / "project.json"
    if not path.is_file():
        return None
    p = read_json(path)
    csim = p.get("csim") or {}
    return {
        "dir": "project",
        "board": p["board"],
        "part": p["part"],
        "clock_mhz": p["clock_mhz"],
        "interface": p["interface"],
        "vendor_flow": p.get("vendor_flow"),
        "files": len(p.get("files", [])),
        "csim": {k: csim.get(k) for k in ("n", "exact", "max_abs_diff", "passed")}
        | {"wrapper_passed": (csim.get("wrapper") or {}).get("passed"), "source": "csim"},
        "trigger": p.get("trigger"),
    }


def rtl_section(build_dir: Path, clock_mhz: float | None = None, board_lut: int | None = None) -> dict | None:
    """The RTL backend (rtl/rtl.json, step rtl): Verilator's bit-exactness and cycles, Yosys's counts."""
    path = build_dir / "rtl" / "rtl.json"
    if not path.is_file():
        return None
    m = read_json(path)
    sim = m.get("simulation") or {}
    syn = m.get("synthesis")
    out = {
        "dir": "rtl", "top": m["top"], "family": m["family"], "pixels_per_beat": m["pixels_per_beat"],
        "beats_per_image": m["beats_per_image"], "stages": len(m.get("stages", [])),
        "simulation": {k: sim.get(k) for k in ("exact", "n", "latency_cycles", "first_output_cycles",
                                               "interval_cycles", "tool")}
        | {"test_split": sim.get("test_split"), "source": "verilator"},
        "synthesis": None if syn is None else {k: syn.get(k) for k in ("lut", "ff", "carry", "dsp", "bram_18k",
                                                                        "lutram", "tool", "family", "seconds")}
        | {"source": "yosys"},
        "estimate": m.get("estimate"),
    }
    if clock_mhz and sim.get("latency_cycles") is not None:
        out["simulation"]["latency_us"] = sim["latency_cycles"] / clock_mhz
        out["simulation"]["clock_mhz"] = clock_mhz
    out["lanes"] = m.get("lanes", 1)
    if any(int(r) > 1 for r in (m.get("reuse") or {}).values()):  # time-multiplexed dense layers (rtl.reuse)
        out["reuse"] = {"per_layer": m["reuse"], "interval_cycles_per_image": m.get("interval_cycles_per_image"),
                        "multipliers": sum(s["reuse"]["multipliers"] for s in m.get("stages", []) if s.get("reuse"))}
    top = m.get("pixel_top") or {}
    psim = top.get("simulation")
    if psim:  # the camera top: first beat of a region -> its decision word (pixel-stream boards)
        out["pixel_top"] = {
            "pixels_per_clock": top["frame"]["pixels_per_clock"], "beats_per_region": top["beats_per_image"],
            "decisions_exact": psim["exact"], "n": psim["n"], "latency_cycles": psim["latency_cycles"],
            "interval_cycles": psim["interval_cycles"], "test_split": psim.get("test_split"),
            "estimate": (m.get("estimate") or {}).get("pixel_top"), "source": "verilator"}
        if clock_mhz:
            out["pixel_top"]["latency_us"] = psim["latency_cycles"] / clock_mhz
    if syn is not None and board_lut:
        out["synthesis"]["lut_fraction"] = syn["lut"] / board_lut
    from edgekd.report.openfpga import open_flow_section

    flow = open_flow_section(build_dir)  # open boards: the bitstream step's self-test, place and route, bitstream
    if flow is not None:
        out.update(flow)
    return out


def latency_and_resources(build_dir: Path) -> tuple[dict, dict]:
    """The report's `latency` and `resources` sections: the hls step's estimate beside what a lab measured
    (synthesis and board files ingested by edgekd.report.lab). Shared by every task's report."""
    est = read_json(build_dir / "hls" / "estimate.json")
    vendor = lab_synthesis(build_dir)
    latency = {
        "clock_mhz": est["clock_mhz"],
        "estimate": {k: est[k] for k in ("cycles", "us", "ii_cycles", "throughput_per_s", "per_layer", "source")},
        "synthesis": _synthesis_section(vendor, est["clock_mhz"]),
        "board": lab_board(build_dir),
    }
    resources = {
        "board": est["board"]["name"],
        "available": est["board"]["resources"],
        "estimate": {**est["resources"], "source": "estimate"},
        "fit": est["fit"],
        "synthesis": _synthesis_resources(vendor),
    }
    return latency, resources


def fit_summary(resources: dict, latency: dict) -> dict | None:
    """The summary's first line: does the design fit its board, which resource binds, how fast is it."""
    fit = resources.get("fit")
    if not fit:
        return None
    binding = fit.get("binding")
    row = fit["resources"].get(binding, {}) if binding else {}
    search = fit.get("search") or {}
    return {
        "fits": fit.get("fits_limits", fit.get("fits")),
        "board": fit.get("board"),
        "part": fit.get("part"),
        "binding": binding,
        "binding_fraction": row.get("fraction"),
        "limit": (fit.get("limits") or {}).get(binding) if binding else None,
        "binding_layer": search.get("binding_layer"),
        "settings": search.get("mode"),
        "latency_us": latency["estimate"]["us"],
        "advice": search.get("advice"),
    }


def logistic_section(build_dir: Path) -> dict | None:
    """The logistic-regression reference (distill/logistic.json, edgekd.data.logistic), or None (older builds,
    or a label budget with fewer than 2 labelled classes)."""
    path = build_dir / "distill" / "logistic.json"
    if not path.is_file():
        return None
    info = read_json(path)
    return {**info, "metrics_source": "scikit-learn"} if info.get("metrics") else None


def majority_rate(split: dict) -> float | None:
    """Share of the largest class in a data.json split ({"n", "per_class"}); None for an empty split."""
    counts = list(split.get("per_class", {}).values())
    return max(counts) / sum(counts) if counts and sum(counts) else None


def teaching_warnings(data: dict, teacher_acc: float, student_acc: float, labels_only_acc: float | None) -> list[str]:
    """What a reader must not miss: a teacher no better than always answering the majority class (it cannot
    teach), and a distilled student below the same student trained on the labels alone (distillation hurt)."""
    out = []
    majority = majority_rate(data.get("test", {}))
    if majority is not None and teacher_acc <= majority + 0.01:
        out.append(f"the teacher's test accuracy {100 * teacher_acc:.2f}% is at the majority-class rate "
                   f"({100 * majority:.2f}%): it cannot teach; check its training data and settings")
    if labels_only_acc is not None and student_acc < labels_only_acc:
        out.append(f"the distilled student ({100 * student_acc:.2f}%) is below the same student trained on the labels "
                   f"alone ({100 * labels_only_acc:.2f}%): distillation cost {100 * (labels_only_acc - student_acc):.2f} "
                   "points here; use the labels-only student or a better teacher")
    return out


def _board_lut(hls: dict) -> int | None:
    try:
        from edgekd.hw import load_board

        return load_board(hls["board"]).resources.lut
    except Exception:  # noqa: BLE001 - a board file gone since the build: no fraction
        return None


def assemble_report(cfg: BuildConfig, build_dir: Path) -> dict:
    """Build report.json from the build folder, including what a lab measured (edgekd.report.lab)."""
    data = read_json(build_dir / "data" / "data.json")
    teacher = read_json(build_dir / "teacher" / "teacher.json")
    distill = read_json(build_dir / "distill" / "distill.json")
    export = read_json(build_dir / "export" / "export.json")
    hls = read_json(build_dir / "hls" / "hls.json")
    timings_path = build_dir / "time_per_step.json"
    timings = read_json(timings_path) if timings_path.exists() else {}

    latency, resources = latency_and_resources(build_dir)

    metrics = distill["metrics"]
    quant_acc = metrics["quant"]["accuracy"]
    summary = {
        "fit": fit_summary(resources, latency),
        "teacher_accuracy": teacher["metrics"]["accuracy"],
        "student_accuracy": quant_acc,
        "student_minus_teacher": quant_acc - teacher["metrics"]["accuracy"],
    }
    if "labelled" in distill:  # the label budget: labels used, and images only the teacher annotated
        summary["train_labelled"], summary["train_unlabelled"] = distill["labelled"], distill["unlabelled"]
    if "baseline_no_kd" in metrics:
        summary["kd_gain_over_baseline"] = quant_acc - metrics["baseline_no_kd"]["accuracy"]
    if "float" in metrics:
        summary["quantization_cost"] = metrics["float"]["accuracy"] - quant_acc
    logistic = logistic_section(build_dir)
    if logistic is not None:  # the simple reference: who does not beat a linear model on the same pixels
        summary["logistic_accuracy"] = logistic["metrics"]["accuracy"]
        summary["below_logistic"] = [name for name, acc in (("teacher", summary["teacher_accuracy"]),
                                                            ("student", quant_acc)) if acc < summary["logistic_accuracy"]]
    if "labels_used" in data:
        summary["labels_used"] = data["labels_used"]
    summary["warnings"] = teaching_warnings(data, teacher["metrics"]["accuracy"], quant_acc,
                                            metrics.get("baseline_no_kd", {}).get("accuracy"))

    return {
        "edgekd_version": __version__,
        "name": cfg.name,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_sha256": cfg.sha256(),
        "versions": toolchain_versions(),
        "reproducibility": determinism_info(),  # torch threads: same config + threads -> same bits
        "task": cfg.task,
        "data": data,
        "teacher": {
            "source": teacher["source"],
            "arch": teacher["arch"],
            "params": teacher["params"],
            "trained_on_classes": teacher.get("trained_on_classes"),
            "input_size": teacher.get("input_size"),
            "views": teacher.get("views"),
            "sha256": teacher["sha256"],
            "metrics": teacher["metrics"],
            "metrics_source": "torch",
        },
        "student": {
            "name": distill["name"],
            "params": distill["params"],
            "macs": distill["macs"],
            "input_size": cfg.student.input_size,
            "loss": distill["loss"],
            "metrics": metrics,
            "metrics_source": "torch",
        },
        "logistic_baseline": logistic_section(build_dir),
        "summary": summary,
        "fidelity": {
            "n": export["fidelity"]["n"],
            "torch_vs_qonnx_exact": export["fidelity"]["exact"],
            "qonnx_vs_csim_exact": hls["fidelity"]["exact"],
            "max_abs_diff": max(export["fidelity"]["max_abs_diff"], hls["fidelity"]["max_abs_diff"]),
            "first_diverging_layer": hls["fidelity"].get("first_diverging_layer"),
            "emulator_vs_csim_exact": hls["emulator_vs_csim"]["exact"],
            "emulator_vs_qonnx": {k: hls["emulator_vs_qonnx"][k] for k in ("n", "exact", "max_abs_diff")},
        },
        # The whole test split through the bit-exact emulator (== C-sim on the sample, == QONNX on all).
        "hw_metrics": hls["hw_metrics"],
        "csim_metrics": {**hls["csim_metrics"], "source": "csim"},
        "latency": latency,
        "resources": resources,
        "hls": {
            k: hls[k]
            for k in (
                "board", "backend", "io_type", "part", "clock_mhz", "clock_period_ns",
                "reuse_factor", "strategy", "input_precision", "project_dir",
            )
        } | {"layer_settings": hls.get("layer_settings")},
        "export": {"qonnx": f"export/{export['qonnx']}", "ops": export["support"]},
        "project": _project_section(build_dir),
        "rtl": rtl_section(build_dir, hls.get("clock_mhz"), _board_lut(hls)),
        # the published cell student compares only with a cell task (B vs T, or B/T4/T8); other image folders: none
        "reference": PAPER_CELL_STUDENT if data.get("class_names") in (["B", "T"], ["B", "T4", "T8"]) else None,
        "timings_s": timings,
    }
