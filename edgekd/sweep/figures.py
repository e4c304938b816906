"""A point's figures, read from its build folder's own JSON files (distill, export, hls, estimate).

Accuracy comes in four forms: `quant` (the quantized student in torch fake-quant), `float` (the same student
before QAT), `labels_only` (the same student trained on labels alone, `distill.baseline`) and `hardware` (the
bit-exact emulator on the whole test split; equal to `quant` up to torch's float rounding). The sweep ranks
by `hardware`. `latency.us` is the decision's latency: on a pixel-stream board the sort trigger's (network +
the wrapper's few cycles, edgekd.project.trigger), elsewhere the network's estimate.
"""

from __future__ import annotations

from pathlib import Path

from edgekd.io import read_json

__all__ = ["point_figures", "weight_hashes"]


def _acc(metrics: dict | None) -> float | None:
    return None if not metrics else metrics.get("accuracy")


def _decision_latency(est: dict, export: dict, n_classes: int) -> dict:
    board = est.get("board") or {}
    out = {"cycles": est["cycles"], "us": est["us"], "ii_cycles": est.get("ii_cycles"),
           "network_cycles": est["cycles"], "network_us": est["us"], "kind": "network", "source": "estimate"}
    if est.get("model") == "rtl":  # an open board: the RTL design at the clock of the nearest measured design
        clock = est.get("clock") or {}
        out.update(kind="network, RTL", clock_mhz=est.get("clock_mhz"), clock_from=clock.get("from"),
                   clock_extrapolated=clock.get("extrapolated"), us_at_board_clock=est.get("us_at_board_clock"),
                   source="estimate (RTL cost model)")
    if board.get("interface") == "pixel_stream":
        from edgekd.project.interface import packing_stages
        from edgekd.project.trigger import groups_fifo_in_bram, trigger_latency

        # the same model as the board project's README (edgekd.project.generate): network + wrapper stages,
        # not before the region's last beat
        channels = int((export.get("image_shape") or [1])[0])  # packed colour packs like blocks
        k, p = int(export.get("input_block", 1)), int(board.get("pixels_per_clock") or 1)
        pack = packing_stages(p, k, channels)
        arrival = est.get("input_arrival") or {}
        n_values = int(arrival.get("items", 0)) * int(arrival.get("values_per_item", 0))
        bram = pack > 1 and n_values > 0 and groups_fifo_in_bram(p, k, channels, n_values, 8)
        trig = trigger_latency(est["cycles"], n_classes, est["clock_mhz"], pack_cycles=pack, groups_fifo_bram=bram,
                               beats=arrival.get("beats"))
        out.update(cycles=trig["latency_cycles"], us=trig["latency_us"], kind="trigger")
    return out


def weight_hashes(build_dir: Path) -> dict:
    """sha256 of the student's weights, its QONNX and the HLS project's firmware (from manifest.json)."""
    steps = read_json(build_dir / "manifest.json").get("steps", {})
    outputs = {k: v for s in ("distill", "export", "hls") for k, v in (steps.get(s) or {}).get("outputs", {}).items()}
    picked = {k: outputs[k] for k in ("distill/student.pt", "distill/float.pt", "export/student.qonnx.onnx",
                                      "export/student.clean.onnx") if k in outputs}
    firmware = {k: v for k, v in sorted(outputs.items()) if k.startswith("hls/project/firmware/")}
    if firmware:
        from edgekd.config import sha256_json

        picked["hls/project/firmware/*"] = sha256_json(firmware)
    return picked


def point_figures(build_dir: Path) -> dict:
    """The figures sweep.json keeps per point (classification builds through `hls`)."""
    distill = read_json(build_dir / "distill" / "distill.json")
    export = read_json(build_dir / "export" / "export.json")
    hls = read_json(build_dir / "hls" / "hls.json")
    est = read_json(build_dir / "hls" / "estimate.json")
    metrics = distill.get("metrics", {})
    hw = hls.get("hw_metrics") or {}
    fit = est.get("fit") or {}
    binding = fit.get("binding")
    if binding is None and fit.get("resources"):  # fits: the fullest resource binds
        binding = max(fit["resources"], key=lambda r: fit["resources"][r].get("fraction") or 0.0)
    binding_row = (fit.get("resources") or {}).get(binding, {}) if binding else {}
    n_classes = len(hw.get("per_class", {})) or len(metrics.get("quant", {}).get("per_class", {})) or 2
    return {
        "student": distill.get("name"),
        "params": distill.get("params"),
        "macs": distill.get("macs"),
        "accuracy": {
            "hardware": _acc(hw), "quant": _acc(metrics.get("quant")), "float": _acc(metrics.get("float")),
            "labels_only": _acc(metrics.get("baseline_no_kd")), "hardware_n": hw.get("n"),
        },
        "bit_exact": {
            "torch_vs_qonnx": export["fidelity"]["exact"] == 1.0,
            "qonnx_vs_csim": hls["fidelity"]["exact"] == 1.0,
            "emulator_vs_csim": hls["emulator_vs_csim"]["exact"] == 1.0,
            "emulator_vs_qonnx": hls["emulator_vs_qonnx"]["exact"] == 1.0,
            "verified_samples": hls["fidelity"].get("n"),
            "test_samples": hls["emulator_vs_qonnx"].get("n"),
        },
        "latency": _decision_latency(est, export, n_classes),
        "resources": {
            "board": (est.get("board") or {}).get("name"),
            "estimate": est.get("resources"),
            "fits": fit.get("fits_limits", fit.get("fits")),
            "binding": binding,
            "binding_fraction": binding_row.get("fraction"),
            "fractions": {r: row.get("fraction") for r, row in (fit.get("resources") or {}).items()},
            "limits": fit.get("limits"),
            "source": "estimate (RTL cost model; lut = logic slots LUT4 + 2 x CCU2C)" if est.get("model") == "rtl"
            else "estimate",
        },
        "layer_settings": hls.get("layer_settings"),
        "rtl_settings": ((fit.get("search") or {}).get("settings") if est.get("model") == "rtl" else None),
        "hashes": weight_hashes(build_dir),
    }
