"""Step `bitstream` (open boards, after the rtl step): a real bitstream without vendor tools.

Reads build/<name>/rtl/ (rtl.json + vectors.npz, edgekd.rtl) and writes build/<name>/bitstream/
(edgekd.openfpga.flow): the self-test top around the network (the verification sample in block RAM, every
output compared, a hardware cycle counter, LEDs and a UART line), its Verilator run (it must pass, else the step
fails and no bitstream is written), Yosys synth_ecp5, nextpnr-ecp5 (seeded, the board's clock as constraint,
progress logged every 30 s while it runs) and ecppack; bitstream.json with the facts the report shows under
rtl.place_route and rtl.bitstream.

No bitstream, stated with the reason in bitstream.json and the report (rtl.bitstream.why_not), when:
- the routed design is slower than its clock (the clock it meets is reported; bitstream.on_timing_miss: write
  writes it anyway);
- Yosys's count is above bitstream.max_utilisation of the part's logic slots (place and route is not attempted:
  above about half of an 85F it does not finish on 2 cores), with the utilisation;
- nextpnr did not finish within bitstream.timeout_minutes (its time, memory and what it was placing recorded).
A tool that fails, or a self-test that does not pass, stops the build. Like every step it runs in a staging
folder and is skipped when its inputs are unchanged, so a killed build resumes here.
"""

from __future__ import annotations

import logging
import shutil

from edgekd.context import BuildContext
from edgekd.errors import BuildError
from edgekd.hw import load_board
from edgekd.io import write_json

log = logging.getLogger(__name__)

RESULT = "bitstream.json"


def run(ctx: BuildContext) -> None:
    from edgekd.openfpga.design import load_rtl_design
    from edgekd.openfpga.flow import build_bitstream
    from edgekd.openfpga.pnr import PlaceRouteError, tool_versions

    cfg = ctx.config.bitstream
    board = load_board(ctx.config.hls.board)
    if not board.is_open:
        raise BuildError(f"board {board.name} is built by a lab's {board.toolchain}, not the open flow; the bitstream "
                         "step is for boards with toolchain: open")
    design = load_rtl_design(ctx.dir("rtl"))
    log.info("bitstream: self-test top of %s (%d images) on %s; then Yosys, nextpnr-ecp5 (timeout %g min per tool) "
             "and ecppack", design.top, design.n_images, board.name, cfg.timeout_minutes)
    try:
        result = build_bitstream(ctx.work, design, board, seed=cfg.seed, clock_mhz=cfg.clock_mhz,
                                 timeout_s=60.0 * cfg.timeout_minutes, on_timing_miss=cfg.on_timing_miss,
                                 max_utilisation=cfg.max_utilisation)
    except PlaceRouteError as err:
        if err.kind not in ("utilisation", "timeout") or err.result is None:
            raise
        # not a failure of the design: it passed its self-test and has Yosys's counts; the reason is the result
        result = err.result
        result.setdefault("place_route", None)
        result["bitstream"] = {"path": None, "sha256": None, "tools": tool_versions(), "why_not": str(err),
                               "reason": err.kind}
        log.warning("bitstream: none written for %s: %s", board.name, err)
    # the Verilated model and the netlist are large and rebuilt on demand; the logs, reports and .bit stay
    shutil.rmtree(ctx.work / "sim" / "obj", ignore_errors=True)
    for big in ("synth.json", "pnr.config"):
        (ctx.work / "pnr" / big).unlink(missing_ok=True)
    bit = result["bitstream"]
    if bit["path"] is not None:
        bit["path"] = f"bitstream/{bit['path']}"  # relative to the build folder
    write_json(ctx.work / RESULT, result)
    pr, st = result.get("place_route") or {}, result["selftest"]
    if bit["path"]:
        log.info("bitstream for %s: self-test %s under Verilator (%d images, %d cycles first beat -> decision = "
                 "%.3f us at the achieved %.1f MHz; constraint %.1f MHz), %s", board.name, st["status"], st["images"],
                 st["latency_cycles"], st["latency_cycles"] / pr["fmax_mhz"], pr["fmax_mhz"], pr["constraint_mhz"],
                 bit["path"])
