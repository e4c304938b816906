"""report.json of a bring-your-own QONNX build (the hardware half only), and its markdown/HTML renderings.

The per-layer table says for every node exact / approximate / host (the model-level measured mismatch is
attached to the approximate ones; the first diverging hls4ml layer is named), and the host post-processing
stage is applied to both the C-simulation and the QONNX outputs for the predicted-class agreement.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from edgekd import __version__
from edgekd.config import BuildConfig
from edgekd.io import load_npy, read_json, write_json, write_text
from edgekd.report.assemble import (
    _board_lut,
    _project_section,
    _synthesis_resources,
    _synthesis_section,
    fit_summary,
    rtl_section,
    toolchain_versions,
)
from edgekd.report.lab import lab_board, lab_synthesis


def assemble_byo_report(cfg: BuildConfig, build_dir: Path) -> dict:
    from edgekd.export.prepare import apply_host_postprocessing

    export = read_json(build_dir / "export" / "export.json")
    hls = read_json(build_dir / "hls" / "hls.json")
    est = read_json(build_dir / "hls" / "estimate.json")
    timings_path = build_dir / "time_per_step.json"
    fid = hls["fidelity"]
    vendor = lab_synthesis(build_dir)
    measured = {"exact": fid["exact"], "max_abs_diff": fid["max_abs_diff"], "n": fid["n"], "source": "csim"}
    if "class_agreement" in fid:
        measured["class_agreement"] = fid["class_agreement"]
    per_layer = fid.get("per_layer") or {}
    layers = []
    for row in export["verdicts"]:
        row = dict(row)
        if row["verdict"] == "approximate":
            # the layer's own traced error where hls4ml's layer could be matched, else the model output's
            row["measured"] = per_layer.get(row["name"]) or {**measured, "scope": "model output"}
        layers.append(row)
    y_csim = load_npy(build_dir / "hls" / "csim_outputs.npy")
    y_qonnx = load_npy(build_dir / "export" / "qonnx_outputs.npy").reshape(y_csim.shape)
    host = export["host_postprocessing"]
    host_section = None
    if host:
        h_csim = apply_host_postprocessing(y_csim, host)
        h_qonnx = apply_host_postprocessing(y_qonnx, host)
        same = np.isclose(h_csim, h_qonnx, rtol=0, atol=0) if h_csim.dtype.kind == "i" else np.isclose(h_csim, h_qonnx)
        host_section = {"ops": [op["op_type"] for op in host], "detail": host,
                        "agreement_after_host": float(np.mean(same.reshape(len(same), -1).all(axis=1))),
                        "source": "csim + host"}
    latency = {"clock_mhz": est.get("clock_mhz", hls["clock_mhz"]),
               "estimate": {k: est.get(k) for k in ("cycles", "us", "ii_cycles", "throughput_per_s", "source")},
               "synthesis": _synthesis_section(vendor, hls["clock_mhz"]), "board": lab_board(build_dir)}
    resources = {"board": est["board"]["name"], "estimate": est.get("resources"), "fit": est.get("fit"),
                 "synthesis": _synthesis_resources(vendor)}
    return {
        "edgekd_version": __version__,
        "name": cfg.name,
        "kind": "byo",
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config_sha256": cfg.sha256(),
        "versions": toolchain_versions(),
        "task": cfg.task,
        "model": {"source": export["source"], "sha256": export["source_sha256"], "qonnx": f"export/{export['qonnx']}",
                  "input_shape": export["input_shape"], "output_shape": export["output_shape"],
                  "input_precision": export["input_precision"], "inputs": export["inputs"],
                  "classifier": export["classifier"]},
        "verdict": "exact" if fid["exact"] == 1.0 and export["verdict"] == "exact" else "approximate",
        "static_verdict": export["verdict"],
        "allow_inexact": export["allow_inexact"],
        "layers": layers,
        "folds": export["folds"],
        "not_folded": export["not_folded"],
        "host_postprocessing": host_section,
        "fidelity": {
            "n": fid["n"],
            "qonnx_vs_csim_exact": fid["exact"],
            "samples_exact": fid.get("samples_exact"),
            "max_abs_diff": fid["max_abs_diff"],
            "class_agreement": fid.get("class_agreement"),
            "first_diverging_layer": fid.get("first_diverging_layer"),
            "original_vs_prepared": export["preparation_check"],
            "source": "csim",
        },
        # what a lab measured (`edgekd report BUILD --synthesis ... --board ...`), beside the estimate
        "latency": latency,
        "resources": resources,
        "summary": {"fit": fit_summary(resources, latency) if est.get("cycles") is not None else None},
        "hls": {k: hls[k] for k in ("board", "backend", "io_type", "part", "clock_mhz", "reuse_factor", "strategy",
                                    "input_precision", "project_dir")} | {"layer_settings": hls.get("layer_settings")},
        # types hls4ml left at its default, chosen by edgekd.hls.precision (float-scale models only)
        "precisions": hls.get("precisions", []),
        "project": _project_section(build_dir),
        "rtl": rtl_section(build_dir, hls.get("clock_mhz"), _board_lut(hls)),
        "timings_s": read_json(timings_path) if timings_path.exists() else {},
    }


def _env():
    from edgekd.report.render import _env as render_env

    return render_env()


def render_byo_markdown(report: dict) -> str:
    return _env().get_template("byo_report.md.j2").render(r=report)


def render_byo_html(report: dict) -> str:
    import json

    env = _env()
    env.autoescape = True
    return env.get_template("byo_report.html.j2").render(r=report, report_json=json.dumps(report, indent=1))


def write_byo_report(report: dict, folder: Path) -> None:
    """report.json first (the source of truth), then report.md and a self-contained report.html."""
    write_json(folder / "report.json", report)
    write_text(folder / "report.md", render_byo_markdown(report))
    write_text(folder / "report.html", render_byo_html(report))
