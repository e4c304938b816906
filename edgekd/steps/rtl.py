"""Step `rtl` (config `rtl.enabled`): the RTL backend from the hardware contract, measured, not estimated.

Writes build/<name>/rtl/ (edgekd.rtl): the Verilog, rtl.json (the manifest, with "simulation" and
"synthesis"), vectors.npz (the verification sample's beats and QONNX's output beats). Verilator runs the
testbench on the verification sample (bit-exact, latency and interval in cycles); with rtl.simulate_split
and a handed-over test split whose emulator outputs hls checked equal to QONNX, on the whole split too. Yosys
synthesises the top for the board's family (rtl.family, 'auto' from the part). An exact model whose RTL
outputs differ from QONNX stops the build (like the hls step), after rtl.json records the comparison.
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
    from edgekd.rtl.generate import generate_rtl, write_vectors
    from edgekd.rtl.sim import run_sim
    from edgekd.rtl.synth import synthesize

    cfg = ctx.config.rtl
    contract = HardwareContract.load(ctx.dir("export"))
    board = load_board(ctx.config.hls.board)
    family = family_for_part(ctx.config.hls.part or board.part) if cfg.family == "auto" else cfg.family
    out = ctx.work
    manifest = generate_rtl(contract, out, family=family, pixels_per_beat=cfg.pixels_per_beat,
                            latency_cutoff=cfg.latency_cutoff)
    sim = run_sim(out, manifest)
    result = {"sample": sim}
    split = _test_split(ctx, contract) if cfg.simulate_split else None
    if split is not None:
        x, y = split
        write_vectors(manifest, contract, x, y, out / "vectors_test.npz")
        whole = run_sim(out, read_json(out / "rtl.json"), vectors="vectors_test.npz", record=False)
        result["test_split"] = {k: whole[k] for k in ("exact", "n", "interval_cycles", "mismatched")}
    from edgekd.estimate.rtl import estimate_rtl

    manifest = read_json(out / "rtl.json")
    manifest["estimate"] = estimate_rtl(manifest, family)
    manifest["simulation"] = {**sim, **({"test_split": result["test_split"]} if "test_split" in result else {})}
    write_json(out / "rtl.json", manifest)
    if cfg.synthesize:
        synth = synthesize(out, family)
        log.info("rtl: Yosys %s: %d LUT, %d FF, %d carry, %d DSP (%.0f s)", family, synth["lut"], synth["ff"],
                 synth["carry"], synth["dsp"], synth["seconds"])
    shutil.rmtree(out / "sim" / "obj_dir", ignore_errors=True)  # the Verilated model: megabytes, rebuilt on demand
    exact = min([sim["exact"]] + ([result["test_split"]["exact"]] if "test_split" in result else []))
    log.info("rtl: %s bit-equal to QONNX on %d sample images%s; latency %d cycles, interval %.1f cycles",
             f"{100 * sim['exact']:.1f}%", sim["n"],
             f" and {100 * result['test_split']['exact']:.1f}% of {result['test_split']['n']} test images"
             if "test_split" in result else "", sim["latency_cycles"], sim["interval_cycles"] or 0)
    if exact < 1.0 and contract.exact and not contract.allow_inexact:
        raise BuildError(f"rtl: the Verilated RTL differs from QONNX ({100 * exact:.2f}% of images bit-equal; first "
                         f"mismatched images {sim['mismatched'][:5]}); see {out / 'rtl.json'}")


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
