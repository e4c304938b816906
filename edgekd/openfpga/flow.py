"""The open flow end to end: self-test top -> Verilator (must pass) -> Yosys -> nextpnr -> ecppack.

`build_bitstream(out_dir, design, board)` writes into `out_dir`:

    top/        edgekd_selftest.v, the vectors' hex files, <board>.lpf
    sim/        the Verilator build and simulation.log (the self-test's UART line)
    pnr/        copies of the sources, synth.json, pnr.config, pnr_report.json and the tools' logs
    edgekd.bit  the bitstream (only when the self-test passed and the routed design meets its clock)

and returns the facts the bitstream step records (bitstream.json) and the report shows under `rtl`:
place_route {fmax_mhz, constraint_mhz, utilisation, timing, seed}, bitstream {path, sha256, bytes, tools},
selftest {the Verilator result}, tools {per tool: seconds, peak_mb}.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Callable

from edgekd.hw import Board
from edgekd.io import file_sha256
from edgekd.openfpga.pnr import (
    PlaceRouteError,
    check_timing,
    log_utilisation,
    parse_nextpnr_report,
    run_ecppack,
    run_nextpnr,
    run_yosys,
    tool_versions,
    yosys_cell_counts,
)
from edgekd.openfpga.selftest import BOARD_TOP, IN_HEX, OUT_HEX, RtlDesign, SelfTestError, selftest_params, write_selftest
from edgekd.openfpga.verilator import run_selftest_sim

__all__ = ["BITSTREAM", "build_bitstream"]

log = logging.getLogger(__name__)

BITSTREAM = "edgekd.bit"


def build_bitstream(out_dir: Path, design: RtlDesign, board: Board, *, seed: int = 1, clock_mhz: float | None = None,
                    timeout_s: float = 3600.0, on_timing_miss: str = "refuse", skip_simulation: bool = False,
                    max_utilisation: float = 1.0,
                    on_progress: Callable[[str, float], None] | None = None) -> dict:
    """Self-test, place and route and bitstream of `design` on `board` (toolchain: open) into `out_dir`.

    `max_utilisation`: the largest fraction of the part's logic slots (Yosys: LUT4 + 2 per CCU2C carry cell)
    handed to nextpnr; above it place and route is not attempted (PlaceRouteError naming the figure)."""
    clock_mhz = board.default_clock_mhz if clock_mhz is None else clock_mhz
    clock_hz = int(round(clock_mhz * 1e6))
    top_dir, sim_dir, pnr_dir = out_dir / "top", out_dir / "sim", out_dir / "pnr"
    info = write_selftest(top_dir, design, board, clock_hz=clock_hz)
    params = selftest_params(design, board, clock_hz)
    result: dict = {"board": board.name, "part": board.part, "package": board.package, "speed": board.speed,
                    "selftest_top": info}

    if skip_simulation:
        result["selftest"] = None
    else:
        sim, sim_facts = run_selftest_sim(sim_dir, design, top_dir, params)
        result["selftest"] = {**sim.as_dict(), **sim_facts, "source": "verilator"}
        if not sim.passed:
            raise SelfTestError(
                f"the self-test failed under Verilator ({sim.status}: {sim.errors} of {len(design.out_beats)} output "
                f"beats differ, {sim.images} of {design.n_images} images decided; {sim_dir / 'simulation.log'}); "
                "no bitstream is written for a design that does not pass its own test")

    # the yowasp tools see only their work folder reliably (/tmp is private to them): copy the sources in
    pnr_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for k, rel in enumerate(design.verilog):
        name = f"net{k}_{Path(rel).name}"
        shutil.copy(design.folder / rel, pnr_dir / name)
        sources.append(name)
    for name in ("edgekd_selftest.v", IN_HEX, OUT_HEX, f"{board.name}.lpf"):
        shutil.copy(top_dir / name, pnr_dir / name)
    sources.append("edgekd_selftest.v")

    tools: dict[str, dict] = {}
    log.info("yosys synth_ecp5 of %s (%d files)", BOARD_TOP, len(sources))
    tools["yosys"] = run_yosys(pnr_dir, sources, BOARD_TOP, timeout_s=timeout_s).as_dict()
    synth = yosys_cell_counts(pnr_dir / "synth_stat.json")
    log.info("yosys: %d LUT4, %d CCU2C, %d FF, %d MULT18, %d DP16KD in %.0f s", synth["lut4"], synth["ccu2c"],
             synth["ff"], synth["mult18"], synth["dp16kd"], tools["yosys"]["seconds"])
    slots = synth["lut4"] + 2 * synth["ccu2c"]
    result["synthesis"] = {**synth, "logic_slots": slots, "slot_fraction": round(slots / board.resources.lut, 6),
                           "tool": "yosys synth_ecp5", "source": "yosys"}
    if slots > max_utilisation * board.resources.lut:
        result["tools"] = tools
        raise _partial(PlaceRouteError(
            f"the self-test top needs {slots} logic slots ({synth['lut4']} LUT4 + 2 x {synth['ccu2c']} CCU2C, Yosys) = "
            f"{100 * slots / board.resources.lut:.0f}% of the {board.part}'s {board.resources.lut}, above the "
            f"{100 * max_utilisation:.0f}% that open place and route finishes on this kind of machine "
            "(bitstream.max_utilisation); make the design smaller (fewer or narrower layers, reuse) or use a "
            "larger part", synthesis=result["synthesis"], kind="utilisation"), result)

    log.info("nextpnr-ecp5 on %s %s speed %s at %g MHz, seed %d (minutes on large designs)", board.part,
             board.package, board.speed, clock_mhz, seed)
    try:
        tools["nextpnr"] = run_nextpnr(pnr_dir, board, lpf=f"{board.name}.lpf", clock_mhz=clock_mhz, seed=seed,
                                       timeout_s=timeout_s, on_progress=on_progress).as_dict()
    except PlaceRouteError as err:
        if err.run is not None:  # did not finish: what it was placing and routing, its time and memory
            tools["nextpnr"] = {**err.run.as_dict(), "finished": False}
            result["place_route"] = {"finished": False, "seconds": round(err.run.seconds, 1),
                                     "utilisation": log_utilisation(pnr_dir / "nextpnr.log"), "seed": seed,
                                     "constraint_mhz": clock_mhz, "source": "nextpnr log"}
        err.synthesis = result["synthesis"]
        result["tools"] = tools
        raise _partial(err, result) from None
    pr = parse_nextpnr_report(pnr_dir / "pnr_report.json")
    timing = check_timing(pr)
    result["place_route"] = {**pr, "finished": True, "timing": timing, "seed": seed, "source": "nextpnr"}
    log.info("nextpnr: %.1f MHz achieved against %.1f MHz (%s), %d of %d LUT slots, in %.0f s", pr["fmax_mhz"],
             pr["constraint_mhz"], "met" if timing["met"] else "MISSED", pr["utilisation"]["lut"]["used"],
             pr["utilisation"]["lut"]["available"], tools["nextpnr"]["seconds"])

    versions = tool_versions()
    if not timing["met"] and on_timing_miss != "write":
        log.warning("the routed design meets %.1f MHz, not the board's %.1f MHz: no bitstream written "
                    "(bitstream.on_timing_miss: write writes it anyway)", timing["fmax_mhz"], clock_mhz)
        result["bitstream"] = {"path": None, "sha256": None, "tools": versions,
                               "why_not": f"timing missed: meets {timing['meets_mhz']:.1f} MHz, not {clock_mhz:g} MHz"}
    else:
        tools["ecppack"] = run_ecppack(pnr_dir, "pnr.config", BITSTREAM, timeout_s=timeout_s).as_dict()
        shutil.move(str(pnr_dir / BITSTREAM), str(out_dir / BITSTREAM))
        result["bitstream"] = {"path": BITSTREAM, "sha256": file_sha256(out_dir / BITSTREAM),
                               "bytes": (out_dir / BITSTREAM).stat().st_size, "tools": versions,
                               "timing_met": timing["met"]}
    result["tools"] = tools
    return result


def _partial(err: PlaceRouteError, result: dict) -> PlaceRouteError:
    """`err` with what the flow measured before it stopped (self-test, synthesis, tool times) as `err.result`."""
    err.result = result
    return err
