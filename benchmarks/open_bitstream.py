"""Open bitstreams for the ULX3S 85F (issue 26): self-test under Verilator, Yosys, nextpnr-ecp5, ecppack.

Per design: the RTL backend's Verilog (edgekd.rtl, alkaid kernels) of a tiny quantised MLP or conv net from
edgekd.rtl.testnets (QONNX with random power-of-two quantised weights, its outputs from QONNX), or the
stand-in network (edgekd.openfpga.standin); the self-test top around it (vectors in block RAM, hardware cycle
counter, UART line) simulated with Verilator (must pass), then `synth_ecp5`, nextpnr-ecp5 on the LFE5U-85F
(CABGA381, speed 6; seed 1; the board's 25 MHz clock as the constraint) and `ecppack`. Recorded: every design
that got a bitstream (sha256, achieved Fmax, the self-test result and its cycles, utilisation), and each
tool's wall time and peak memory (kernel accounting of the child process). A design whose place and route
does not finish in --timeout seconds is recorded under "not_finished" with its Yosys counts.

    nice .venv/bin/python benchmarks/open_bitstream.py                        # the default designs
    nice .venv/bin/python benchmarks/open_bitstream.py --designs mlp-16-32-5 --timeout 1800
    nice .venv/bin/python benchmarks/open_bitstream.py --designs --builds build/cells_ecp5 build/qkeras_jettagging

--builds records finished builds of open boards (`edgekd build` / `edgekd convert --board ulx3s-85f`: their
bitstream step's bitstream.json, with the build's command from its folder) under the design name
"build:<folder name>": a bitstream, or why there is none (above the utilisation open place and route
finishes, or nextpnr did not finish) with Yosys's counts and the self-test result.

Prints and saves benchmarks/results/open_bitstream.json (merged by design name with earlier runs); never part
of the tests. The yowasp tools compile their WebAssembly on first use (about a minute each, cached).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

from edgekd.hw import load_board
from edgekd.openfpga.design import load_rtl_design
from edgekd.openfpga.flow import build_bitstream
from edgekd.openfpga.pnr import PlaceRouteError, tool_versions

RESULTS = Path(__file__).parent / "results" / "open_bitstream.json"

# name -> (kind, spec): rtl testnets (input shape, layers) or the stand-in (lanes, pixels)
DESIGNS = {
    "standin-1x2": ("standin", {"lanes": 1, "pixels": 2, "beats_per_image": 2, "images": 3, "out_width": 8}),
    "mlp-16-8-5": ("rtl", ((16,), [{"dense": 8}, {"relu_q": (6, 4)}, {"dense": 5}, {"q": (12, 8)}])),
    "mlp-16-32-5": ("rtl", ((16,), [{"dense": 32}, {"relu_q": (6, 4)}, {"dense": 5}, {"q": (12, 8)}])),
    "cnn-9x7x3": ("rtl", ((9, 7, 3), [{"conv": (3, 3, 1)}, {"pool": (2, 2)}, {"relu_q": (6, 4)},
                                      {"conv": ((2, 1), 2, 1)}, {"relu_q": (5, 3)}, {"flatten": True},
                                      {"dense": 3}, {"q": (12, 8)}])),
    # about 60k of the 85F's 83.6k LUT slots (the RTL cost model: ~12k LUT4 + carry): above what open P&R finishes
    "mlp-16-64-16-5": ("rtl", ((16,), [{"dense": 64}, {"relu_q": (6, 4)}, {"dense": 16}, {"relu_q": (6, 4)},
                                       {"dense": 5}, {"q": (12, 8)}])),
    "mlp-16-64-32-5": ("rtl", ((16,), [{"dense": 64}, {"relu_q": (6, 4)}, {"dense": 32}, {"relu_q": (6, 4)},
                                       {"dense": 5}, {"q": (12, 8)}])),
}
DEFAULT = ["standin-1x2", "mlp-16-8-5", "cnn-9x7x3", "mlp-16-32-5"]


def _design(name: str, folder: Path):
    kind, spec = DESIGNS[name]
    if kind == "standin":
        from edgekd.openfpga.standin import standin_design

        return standin_design(folder / "net", **spec)
    from edgekd.rtl.generate import generate_rtl
    from edgekd.rtl.testnets import make_contract

    shape, layers = spec
    contract = make_contract(folder / "export", shape, layers, n=16)
    generate_rtl(contract, folder / "rtl", family="ecp5")
    return load_rtl_design(folder / "rtl")


def run_one(name: str, board, timeout: float, keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        design = _design(name, folder)
        gen_s = time.perf_counter() - t0
        try:
            res = build_bitstream(folder / "out", design, board, seed=1, timeout_s=timeout)
        except PlaceRouteError as err:
            if err.result is not None:  # not attempted (utilisation) or did not finish (timeout): what was measured
                res = {**err.result, "bitstream": {"path": None, "why_not": str(err), "reason": err.kind}}
                return _row(name, res, round(gen_s, 2))
            stat = folder / "out" / "pnr" / "synth_stat.json"
            synth = None
            if stat.is_file():
                from edgekd.openfpga.pnr import yosys_cell_counts

                synth = yosys_cell_counts(stat)
            return {"design": name, "finished": False, "error": str(err).splitlines()[0], "synthesis": synth,
                    "generate_s": round(gen_s, 2)}
        return _row(name, res, round(gen_s, 2))


def _row(name: str, res: dict, gen_s: float | None = None) -> dict:
    """The benchmark row of one flow result (edgekd.openfpga.flow.build_bitstream / bitstream.json)."""
    sim, pr, bit = res.get("selftest") or {}, res.get("place_route"), res["bitstream"]
    row = {"design": name, "finished": bool(bit.get("path")), "generate_s": gen_s, "synthesis": res.get("synthesis"),
           "selftest": {k: sim.get(k) for k in ("status", "passed", "images", "errors", "latency_cycles",
                                                "latency_max_cycles", "total_cycles", "interval_cycles")},
           "verilator_compile_s": sim.get("compile_s"),
           "tools": {k: {"peak_source": "rusage", **v} for k, v in (res.get("tools") or {}).items()}}
    if not bit.get("path"):
        row["why_not"] = bit.get("why_not")
        if pr:
            row["place_route"] = pr
        return row
    row.update({
        "bitstream_sha256": bit["sha256"], "bitstream_bytes": bit.get("bytes"),
        "fmax_mhz": pr["fmax_mhz"], "constraint_mhz": pr["constraint_mhz"], "timing": pr["timing"],
        "utilisation": {k: v["used"] for k, v in pr["utilisation"].items()},
        "lut_fraction": pr["utilisation"]["lut"]["fraction"],
        "latency_us_at_fmax": round(sim["latency_cycles"] / pr["fmax_mhz"], 4),
        "latency_us_at_board_clock": round(sim["latency_cycles"] / pr["constraint_mhz"], 4),
    })
    return row


def _reuse_arg(reuse: int | dict) -> str:
    """convert --reuse of a config's rtl.reuse (an int, or {layer: R})."""
    return ",".join(f"{k}={v}" for k, v in reuse.items()) if isinstance(reuse, dict) else str(reuse)


def build_row(folder: Path) -> dict:
    """The row of a finished build of an open board (its bitstream step's bitstream.json)."""
    path = folder / "bitstream" / "bitstream.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run `edgekd build` (or `edgekd convert --board ulx3s-85f`) into "
                         f"{folder} first")
    res = json.loads(path.read_text())
    row = _row(f"build:{folder.name}", res)
    rtl = json.loads((folder / "rtl" / "rtl.json").read_text())
    config = next((c for c in ("convert.yaml", "config.resolved.yaml") if (folder / c).is_file()), None)
    manifest = json.loads((folder / "manifest.json").read_text())
    timings = json.loads((folder / "time_per_step.json").read_text()) if (folder / "time_per_step.json").is_file() \
        else {}
    command = None
    if config == "convert.yaml":
        cv = yaml.safe_load((folder / config).read_text())
        reuse = (cv.get("rtl") or {}).get("reuse", 1)
        command = (f"edgekd convert {cv['student']['qonnx']} --board {cv['hls']['board']} --out {folder}"
                   + (" --allow-inexact" if cv["student"].get("allow_inexact") else "")
                   + (f" --reuse {_reuse_arg(reuse)}" if reuse not in (1, "auto") else ""))
    elif config:
        command = f"edgekd build {folder}/{config} --out {folder}"
    row.update(board=res["board"], build_folder=str(folder), command=command,
               rtl={"top": rtl["top"], "beats_per_image": rtl["beats_per_image"],
                    "reuse": rtl.get("reuse"), "interval_cycles_per_image": rtl.get("interval_cycles_per_image"),
                    "simulation": {k: (rtl.get("simulation") or {}).get(k) for k in
                                   ("exact", "n", "latency_cycles", "interval_cycles")},
                    "synthesis": rtl.get("synthesis"), "estimate": rtl.get("estimate")},
               step_seconds={k: v for k, v in timings.items()}, steps=sorted(manifest.get("steps", {})))
    report = folder / "report" / "report.json"
    if report.is_file():
        rep = json.loads(report.read_text())
        for key in ("hw_metrics", "metrics"):
            if rep.get(key):
                row["accuracy"] = {k: v for k, v in rep[key].items() if not isinstance(v, (list, dict))}
                break
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--designs", nargs="*", default=DEFAULT, choices=sorted(DESIGNS))
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--timeout", type=float, default=1500.0, help="seconds per tool")
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folders under this folder")
    ap.add_argument("--builds", nargs="*", type=Path, default=[], help="finished build folders of open boards")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    board = load_board(args.board)
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    rows = {r["design"]: r for r in old.get("designs", [])}
    for r in rows.values():
        for t in (r.get("tools") or {}).values():  # measured before VmHWM: the child's rusage
            t.setdefault("peak_source", "rusage")
    for r in rows.values():  # rows of earlier runs keep the command that measured them
        r.setdefault("measured_by", old.get("command"))
        r.setdefault("date", old.get("date"))
    this_run = "nice .venv/bin/python benchmarks/open_bitstream.py " + " ".join(sys.argv[1:])
    todo = [(name, None) for name in args.designs] + [(f"build:{b.name}", b) for b in args.builds]
    for name, folder in todo:
        if folder is None:
            row = run_one(name, board, args.timeout, args.keep)
            row["board"] = board.name
        else:
            row = build_row(folder)
        row["measured_by"] = this_run
        row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        rows[name] = row
        print(json.dumps(row, indent=1))
        out = {
            "benchmark": "open_bitstream", "command": this_run, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "tools": tool_versions(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "designs": sorted(rows.values(), key=lambda r: r["design"]),
            "bitstreams": sorted(r["design"] for r in rows.values() if r.get("finished")),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
