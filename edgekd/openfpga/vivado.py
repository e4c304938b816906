"""A Vivado script for the RTL backend's Verilog on AMD boards (out-of-context synthesis, place and route,
utilisation and timing reports), so a lab can compare the RTL and HLS designs on the same board. Checked here
with the project's stub tclsh (edgekd.project.tclcheck), as the HLS projects' scripts are."""

from __future__ import annotations

from pathlib import Path

from edgekd import __version__
from edgekd.hw import Board
from edgekd.io import read_json, write_text

__all__ = ["SCRIPT", "write_vivado_rtl_script"]

SCRIPT = "scripts/vivado_rtl.tcl"


def write_vivado_rtl_script(rtl_dir: Path, board: Board, *, part: str | None = None,
                            clock_mhz: float | None = None) -> Path:
    """Write rtl_dir/scripts/vivado_rtl.tcl for the design of rtl_dir/rtl.json (files relative to rtl_dir)."""
    from edgekd.project.generate import template_env

    if board.is_open:
        raise ValueError(f"board {board.name} is built with the open flow (edgekd.openfpga), not Vivado")
    manifest = read_json(rtl_dir / "rtl.json")
    clock_mhz = board.default_clock_mhz if clock_mhz is None else clock_mhz
    for f in manifest["verilog"]:
        if any(c in f for c in " {}[]$\\\"") or f.startswith("/"):
            raise ValueError(f"{rtl_dir / 'rtl.json'}: Verilog file name {f!r} must be a plain relative path")
    text = template_env().get_template("openfpga/vivado_rtl.tcl.j2").render(
        top=manifest["top"], part=part or board.part, clock_mhz=clock_mhz,
        clock_period_ns=f"{1000.0 / clock_mhz:.4f}".rstrip("0").rstrip("."), board_name=board.name,
        edgekd_version=__version__, verilog=manifest["verilog"], script_rel=SCRIPT)
    path = rtl_dir / SCRIPT
    write_text(path, text)
    return path
