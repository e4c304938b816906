"""Parsers for vendor reports (source: "synthesis") and board measurements (source: "board").

Every parser returns a plain dict of NUMBERS (int/float/bool, None where the tool wrote "undef"/"NA") with
normalised keys, so report.json never holds the tools' strings:

- `parse_csynth_xml`: Vivado HLS 2019/2020 and Vitis HLS 2021-2024 `<top>_csynth.xml` (DSP spelled `DSP48E`
  or `DSP`; resources -> dsp, lut, ff, bram_18k, uram).
- `parse_csynth_rpt`: the text `<top>_csynth.rpt` (timing, latency and utilisation summary tables).
- `parse_cosim_rpt`: C/RTL co-simulation `<top>_cosim.rpt` (latency and interval min/avg/max).
- `parse_utilization_rpt`: Vivado `report_utilization` text (7-series "Slice LUTs" / UltraScale "CLB LUTs";
  Block RAM tiles converted to BRAM18K = 2 x tiles).
- `parse_timing_summary_rpt`: Vivado `report_timing_summary` (WNS, TNS, WHS, THS, met).
- `parse_board_measurements`: latencies measured on a board, JSON or CSV (formats in
  edgekd.report.vendor_board).

XML is read with defusedxml (no entity expansion, no external entities). A file that cannot be read as the
format it claims to be raises `VendorReportError` (a ValueError) naming the file and the element or line.

Layout (the parsers are re-exported here, the public API; this module finds a project's reports):

* edgekd.report.vendor_common: `VendorReportError`, numbers from report cells, table rows;
* edgekd.report.vendor_hls: csynth XML / text report, cosim report;
* edgekd.report.vendor_vivado: utilization and timing summary reports;
* edgekd.report.vendor_board: board measurements.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from edgekd.report.vendor_board import parse_board_measurements
from edgekd.report.vendor_common import VendorReportError
from edgekd.report.vendor_hls import parse_cosim_rpt, parse_csynth_rpt, parse_csynth_xml
from edgekd.report.vendor_vivado import parse_timing_summary_rpt, parse_utilization_rpt

__all__ = [
    "VendorReportError",
    "find_vendor_reports",
    "parse_vendor_reports",
    "parse_csynth_xml",
    "parse_csynth_rpt",
    "parse_cosim_rpt",
    "parse_utilization_rpt",
    "parse_timing_summary_rpt",
    "parse_board_measurements",
]


# --- locating reports --------------------------------------------------------------------------------------

def _first(paths: Iterable[Path]) -> Path | None:
    ps = sorted(paths, key=lambda p: (len(p.parts), str(p)))
    return ps[0] if ps else None


def find_vendor_reports(project_dir: Path | str, top: str | None = None) -> dict[str, Path | None]:
    """Locate the vendor reports of an hls4ml project after a lab run.

    Looks for `<top>_prj/solution1/syn/report/<top>_csynth.{xml,rpt}` (top from `top`, else from the
    `*_prj` folder name, else `myproject`), `.../sim/report/<top>_cosim.rpt`, and Vivado's
    `*utilization*.rpt` (post-route preferred over post-synth) and `*timing_summary*.rpt` anywhere below.
    Returns {csynth_xml, csynth_rpt, cosim_rpt, utilization_rpt, timing_summary_rpt}: a path or None each.
    """
    root = Path(project_dir)
    if not root.is_dir():
        raise VendorReportError(f"{root}: project folder does not exist")
    if top is None:
        prj = _first(p for p in root.rglob("*_prj") if p.is_dir())
        top = prj.name[: -len("_prj")] if prj else "myproject"
    syn = [p for p in root.rglob("*.xml") if p.parent.name == "report" and p.parent.parent.name == "syn"]
    xml = _first(p for p in syn if p.name == f"{top}_csynth.xml") or _first(p for p in syn if p.name == "csynth.xml")
    rpts = [p for p in root.rglob("*.rpt")]
    csynth_rpt = _first(p for p in rpts if p.name == f"{top}_csynth.rpt") or _first(
        p for p in rpts if p.name == "csynth.rpt")
    cosim = _first(p for p in rpts if p.name == f"{top}_cosim.rpt") or _first(
        p for p in rpts if p.name.endswith("_cosim.rpt"))
    util_all = [p for p in rpts if "utilization" in p.name and "hierarchical" not in p.name]
    util = (_first(p for p in util_all if "route" in p.name or "impl" in p.name or "placed" in p.name)
            or _first(util_all))
    timing_all = [p for p in rpts if "timing_summary" in p.name]
    timing = _first(p for p in timing_all if "route" in p.name or "impl" in p.name) or _first(timing_all)
    return {"csynth_xml": xml, "csynth_rpt": csynth_rpt, "cosim_rpt": cosim, "utilization_rpt": util,
            "timing_summary_rpt": timing}


def parse_vendor_reports(project_dir: Path | str, top: str | None = None) -> dict[str, Any]:
    """Find and parse every vendor report of a project: {kind: parsed dict}, only kinds that were found.

    The csynth XML wins over the text report when both exist (the text is parsed only as a fallback).
    """
    found = find_vendor_reports(project_dir, top)
    out: dict[str, Any] = {}
    if found["csynth_xml"]:
        out["csynth"] = parse_csynth_xml(found["csynth_xml"]) | {"file": str(found["csynth_xml"])}
    elif found["csynth_rpt"]:
        out["csynth"] = parse_csynth_rpt(found["csynth_rpt"]) | {"file": str(found["csynth_rpt"])}
    if found["cosim_rpt"]:
        out["cosim"] = parse_cosim_rpt(found["cosim_rpt"]) | {"file": str(found["cosim_rpt"])}
    if found["utilization_rpt"]:
        out["utilization"] = parse_utilization_rpt(found["utilization_rpt"]) | {"file": str(found["utilization_rpt"])}
    if found["timing_summary_rpt"]:
        out["timing"] = parse_timing_summary_rpt(found["timing_summary_rpt"]) | {
            "file": str(found["timing_summary_rpt"])}
    return out
