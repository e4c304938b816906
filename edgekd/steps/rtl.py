"""Step `rtl` (config `rtl.enabled`): the RTL backend from the hardware contract, measured, not estimated.

Writes build/<name>/rtl/ (edgekd.rtl): the Verilog, rtl.json (the manifest, with "simulation" and
"synthesis"), vectors.npz (the verification sample's beats and QONNX's output beats). Verilator runs the
testbench on the verification sample (bit-exact, latency and interval in cycles); with rtl.simulate_split
and a handed-over test split whose emulator outputs hls checked equal to QONNX, on the whole split too. Yosys
synthesises the top for the board's family (rtl.family, 'auto' from the part). An exact model whose RTL
outputs differ from QONNX stops the build (like the hls step), after rtl.json records the comparison.

On a pixel-stream board (rtl.pixel_top) the camera top edgekd_pixel_top (edgekd.rtl.pixeltop) is generated
around the network with rtl.lanes ('auto': enough network pixels per clock for the board's pixels per clock)
and the board project's sort trigger (project/project.json); one Verilated model of it gives the decision
words, the network's output words (its monitor port: rtl.simulation) and the cycles from the first camera
beat; Yosys then synthesises the camera top.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np

from edgekd.context import BuildContext
from edgekd.contract import HardwareContract
from edgekd.errors import BuildError
from edgekd.hw import load_board
from edgekd.io import load_npy, read_json, write_json
from edgekd.rtl.network import RTLUnsupportedError

log = logging.getLogger(__name__)


def family_for_part(part: str) -> str:
    """Yosys family of an FPGA part: xcku/xcvu (UltraScale) -> xcu, xczu/xcku..p/xcu2xx/xcvu..p -> xcup,
    xc7 -> xc7, LFE5 -> ecp5."""
    p = part.lower()
    if p.startswith("lfe5"):
        return "ecp5"
    if p.startswith("xc7"):
        return "xc7"
    if p.startswith("xczu") or p.startswith("xcu2") or p.startswith("xcu5") or \
            ((p.startswith("xcku") or p.startswith("xcvu")) and "p-" in p[:12]):
        return "xcup"
    if p.startswith("xcku") or p.startswith("xcvu"):
        return "xcu"
    raise BuildError(f"hls.part {part}: no Yosys family known for it; set rtl.family (xcu, xcup, xc7 or ecp5)")


def run(ctx: BuildContext) -> None:
    from edgekd.estimate.rtl import estimate_pixel_top, estimate_reuse_design, estimate_rtl
    from edgekd.rtl.generate import generate_rtl, write_vectors
    from edgekd.rtl.sim import run_sim
    from edgekd.rtl.synth import synthesize

    cfg = ctx.config.rtl
    contract = HardwareContract.load(ctx.dir("export"))
    board = load_board(ctx.config.hls.board)
    family = family_for_part(ctx.config.hls.part or board.part) if cfg.family == "auto" else cfg.family
    out = ctx.work
    lanes = _lanes(cfg, board, contract)
    reuse = _reuse(ctx, cfg, board)
    generate = dict(family=family, pixels_per_beat=cfg.pixels_per_beat, latency_cutoff=cfg.latency_cutoff, reuse=reuse)
    try:
        manifest = generate_rtl(contract, out, lanes=lanes, **generate)
    except RTLUnsupportedError as e:
        if cfg.lanes != "auto" or lanes == 1:
            raise
        log.warning("rtl: %d lanes refused (%s); one pixel per clock instead", lanes, e)
        manifest = generate_rtl(contract, out, lanes=1, **generate)
    split = _test_split(ctx, contract) if cfg.simulate_split else None
    section = _pixel_section(ctx, out, contract, board, split) \
        if board.interface == "pixel_stream" and cfg.pixel_top else None
    if section is not None:
        # one Verilated model: the camera top, whose monitor port carries the network's output words
        psim = run_sim(out, section, sim_name="sim_pixel", vectors=section["vectors"]["file"], record=False)
        if split is not None:
            whole = run_sim(out, section, sim_name="sim_pixel", vectors="vectors_pixel_test.npz", record=False)
            psim["test_split"] = {k: whole[k] for k in ("exact", "n", "interval_cycles", "mismatched")}
            psim["test_split"]["network"] = {k: whole["network"][k] for k in ("exact", "n", "mismatched")}
        net = psim["network"]
        sim = {**{k: psim[k] for k in ("tool", "build_seconds", "build_reused", "run_seconds", "beats_per_image")},
               "exact": net["exact"], "n": net["n"], "mismatched": net["mismatched"],
               "latency_cycles": net["latency_cycles"], "first_output_cycles": net["latency_cycles"],
               "interval_cycles": net["interval_cycles"], "tlast_ok": psim["tlast_ok"],
               "measured_at": f"{section['top']} (first camera beat -> the network's output word)"}
        if "test_split" in psim:
            sim["test_split"] = {**psim["test_split"]["network"], "interval_cycles": psim["test_split"]["interval_cycles"]}
        manifest = read_json(out / "rtl.json")
        manifest["pixel_top"]["simulation"] = psim
    else:
        sim = run_sim(out, manifest)
        if split is not None:
            x, y = split
            write_vectors(manifest, contract, x, y, out / "vectors_test.npz")
            whole = run_sim(out, read_json(out / "rtl.json"), vectors="vectors_test.npz", record=False)
            sim["test_split"] = {k: whole[k] for k in ("exact", "n", "interval_cycles", "mismatched")}
        manifest = read_json(out / "rtl.json")
    manifest["simulation"] = sim
    reused = any(int(r) > 1 for r in (manifest.get("reuse") or {}).values())
    manifest["estimate"] = (estimate_reuse_design if reused else estimate_rtl)(manifest, family)
    if section is not None:  # measured from the camera beats: the estimate on the same footing
        est = manifest["estimate"]
        cam = estimate_pixel_top(manifest)
        est.update({"pixel_top": cam, "network_top_latency_cycles": est["latency_cycles"],
                    "network_top_interval_cycles": est["interval_cycles"],
                    "latency_cycles": cam["network_latency_cycles"], "interval_cycles": cam["interval_cycles"]})
    write_json(out / "rtl.json", manifest)
    if cfg.synthesize:
        synth = synthesize(out, family)
        log.info("rtl: Yosys %s: %d LUT, %d FF, %d carry, %d DSP (%.0f s)", family, synth["lut"], synth["ff"],
                 synth["carry"], synth["dsp"], synth["seconds"])
    for sim_dir in ("sim", "sim_pixel"):  # the Verilated models: megabytes, rebuilt on demand
        shutil.rmtree(out / sim_dir / "obj_dir", ignore_errors=True)
    exacts = [sim["exact"]] + ([sim["test_split"]["exact"]] if "test_split" in sim else [])
    if section is not None:
        psim = manifest["pixel_top"]["simulation"]
        exacts += [psim["exact"]] + ([psim["test_split"]["exact"]] if "test_split" in psim else [])
        log.info("rtl: camera top (%d pixels per clock): %.1f%% of %d decision words equal%s; first beat -> decision "
                 "%d cycles, interval %.1f cycles (%d beats per region)", section["frame"]["pixels_per_clock"],
                 100 * psim["exact"], psim["n"],
                 f" and {100 * psim['test_split']['exact']:.1f}% of {psim['test_split']['n']} test regions"
                 if "test_split" in psim else "", psim["latency_cycles"], psim["interval_cycles"] or 0,
                 section["beats_per_image"])
    log.info("rtl: %s bit-equal to QONNX on %d sample images%s; latency %d cycles, interval %.1f cycles",
             f"{100 * sim['exact']:.1f}%", sim["n"],
             f" and {100 * sim['test_split']['exact']:.1f}% of {sim['test_split']['n']} test images"
             if "test_split" in sim else "", sim["latency_cycles"], sim["interval_cycles"] or 0)
    if min(exacts) < 1.0 and contract.exact and not contract.allow_inexact:
        raise BuildError(f"rtl: the Verilated RTL differs from QONNX ({100 * min(exacts):.2f}% of images bit-equal; "
                         f"first mismatched images {sim['mismatched'][:5]}); see {out / 'rtl.json'}")


def _reuse(ctx: BuildContext, cfg, board) -> int | dict[str, int]:
    """rtl.reuse, or 'auto': on an open board the reuse factors the fit search chose (hls/estimate.json, its
    RTL fit: edgekd.estimate.rtl_fit), else 1 (every dense layer unrolled)."""
    if cfg.reuse != "auto":
        return cfg.reuse
    if not board.is_open:
        return 1
    path = ctx.dir("hls") / "estimate.json"
    est = read_json(path) if path.is_file() else {}
    search = (est.get("fit") or {}).get("search") or {}
    if est.get("model") != "rtl" or "reuse_factors" not in search:
        raise BuildError(f"{path}: no RTL fit search to take rtl.reuse 'auto' from (an open board's hls step writes "
                         "it); run the hls step again, or set rtl.reuse")
    chosen = {k: int(v) for k, v in search["reuse_factors"].items()}
    if chosen:
        log.info("rtl: time-multiplexed dense layers chosen by the fit search: %s", chosen)
    return chosen or 1


def _test_split(ctx: BuildContext, contract: HardwareContract) -> tuple[np.ndarray, np.ndarray] | None:
    """The whole test split and its QONNX outputs (the hls step's emulator outputs, checked == QONNX there)."""
    if "test" not in contract.splits:
        return None
    hls_dir = ctx.dir("hls")
    hls = read_json(hls_dir / "hls.json") if (hls_dir / "hls.json").exists() else {}
    check = hls.get("emulator_vs_qonnx") or {}
    if check.get("exact") != 1.0 or not (hls_dir / "hw_outputs.npy").exists():
        log.info("rtl: the test split's QONNX outputs are not available bit-exact (emulator); sample only")
        return None
    return contract.split_inputs("test"), load_npy(hls_dir / "hw_outputs.npy")


def _lanes(cfg, board, contract: HardwareContract) -> int:
    """rtl.lanes, or 'auto': on a pixel-stream board the fewest that keep up with its pixels per clock."""
    from edgekd.rtl.network import load_network
    from edgekd.rtl.pixeltop import auto_lanes

    if cfg.lanes != "auto":
        if int(cfg.lanes) < 1:
            raise BuildError(f"rtl.lanes {cfg.lanes}: at least 1 (or 'auto')")
        return int(cfg.lanes)
    if board.interface != "pixel_stream":
        return 1
    _, in_shape, _ = load_network(contract.qonnx_path)
    return auto_lanes(in_shape, contract.input_block, board.pixels_per_clock)


def _pixel_section(ctx: BuildContext, out, contract: HardwareContract, board, split) -> dict | None:
    """The camera top (edgekd.rtl.pixeltop) around the network, with the camera beats of the sample (and of
    the test split, vectors_pixel_test.npz); None (logged) when the network does not end in class logits."""
    from edgekd.rtl.generate import input_raw
    from edgekd.rtl.pixeltop import generate_pixel_top, save_section, write_pixel_vectors

    manifest = read_json(out / "rtl.json")
    threshold, trigger_class = _trigger(ctx)
    kif, shape = tuple(manifest["input_kif"]), tuple(manifest["input_shape"])
    n = manifest["vectors"]["n"]
    raw = input_raw(contract, contract.verify_inputs()[:n], kif, shape)
    try:
        section = generate_pixel_top(out, manifest, contract.input_block, board.pixels_per_clock, raw,
                                     np.asarray(contract.reference_outputs())[:n],
                                     threshold=threshold, trigger_class=trigger_class)
    except RTLUnsupportedError as e:
        log.warning("rtl: no camera top: %s", e)
        return None
    save_section(out, manifest, section)
    if split is not None:
        x, y = split
        write_pixel_vectors(out, section, manifest, input_raw(contract, x, kif, shape), y, "vectors_pixel_test.npz")
    return section


def _trigger(ctx: BuildContext) -> tuple[float, int | None]:
    """The sort trigger of the board project (project/project.json: chosen on validation or from the config),
    so the camera top's decision words are the HLS top's; without one, hls.trigger_threshold (0) and class."""
    path = ctx.dir("project") / "project.json"
    trig = (read_json(path).get("trigger") or {}) if path.is_file() else {}
    if trig.get("threshold_on_grid") is not None:
        return float(trig["threshold_on_grid"]), trig.get("trigger_class")
    hls = ctx.config.hls
    return float(hls.trigger_threshold or 0.0), hls.trigger_class
