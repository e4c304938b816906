"""What a lab measured, brought into a build folder: vendor reports and board latency logs.

`edgekd report BUILD_DIR --synthesis PATH --board PATH` parses the files once and keeps the parsed
numbers in `BUILD_DIR/lab/` (synthesis.json, board.json), so every later report, including the one
a re-run of `edgekd build` writes, shows them beside the estimate without the original files.
"""

from __future__ import annotations

from pathlib import Path

from edgekd.io import read_json, write_json
from edgekd.report.vendor import (
    VendorReportError,
    parse_board_measurements,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_cosim_rpt,
    parse_timing_summary_rpt,
    parse_utilization_rpt,
    parse_vendor_reports,
)

LAB_DIR = "lab"


def parse_synthesis_path(path: Path) -> dict:
    """A project folder after a lab run, or one report file (kind told by its name)."""
    if path.is_dir():
        found = parse_vendor_reports(path)
        if not found:
            raise VendorReportError(
                f"{path}: no csynth, cosim, utilization or timing report found below this folder"
            )
        return found
    if not path.is_file():
        raise VendorReportError(f"{path}: no such file or folder")
    name = path.name.lower()
    if name.endswith(".xml"):
        kind, parsed = "csynth", parse_csynth_xml(path)
    elif name.endswith("_cosim.rpt"):
        kind, parsed = "cosim", parse_cosim_rpt(path)
    elif "utilization" in name:
        kind, parsed = "utilization", parse_utilization_rpt(path)
    elif "timing_summary" in name:
        kind, parsed = "timing", parse_timing_summary_rpt(path)
    elif name.endswith("csynth.rpt"):
        kind, parsed = "csynth", parse_csynth_rpt(path)
    else:
        raise VendorReportError(
            f"{path}: unknown report kind; expected *_csynth.xml, *csynth.rpt, *_cosim.rpt, "
            "*utilization*.rpt or *timing_summary*.rpt, or a project folder"
        )
    return {kind: {**parsed, "file": str(path)}}


def ingest(build_dir: Path, synthesis: list[Path], board: Path | None) -> None:
    """Parse everything first, then write: a bad file leaves lab/ as it was."""
    lab = build_dir / LAB_DIR
    merged: dict = read_json(lab / "synthesis.json") if (lab / "synthesis.json").exists() else {}
    for path in synthesis:
        merged.update(parse_synthesis_path(path))
    measured = parse_board_measurements(board) if board else None
    if synthesis:
        write_json(lab / "synthesis.json", merged)
    if measured is not None:
        write_json(lab / "board.json", {**measured, "file": str(board)})


def lab_synthesis(build_dir: Path) -> dict:
    """Vendor reports: those ingested into lab/, else any found in the board project after `make hls` / `make
    cosim` ran in it (top edgekd_top), else in the generated hls4ml project."""
    ingested = build_dir / LAB_DIR / "synthesis.json"
    if ingested.exists():
        return read_json(ingested)
    board_prj = build_dir / "project"
    if (board_prj / "edgekd_top_prj").is_dir():
        found = parse_vendor_reports(board_prj, top="edgekd_top")
        if found:
            return found
    project = build_dir / "hls" / "project"
    return parse_vendor_reports(project) if project.is_dir() else {}


def lab_board(build_dir: Path) -> dict | None:
    path = build_dir / LAB_DIR / "board.json"
    return read_json(path) if path.exists() else None
