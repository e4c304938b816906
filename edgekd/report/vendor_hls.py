"""Parsers of the HLS tool's own reports (Vivado HLS 2019/2020, Vitis HLS 2021-2024): `<top>_csynth.xml`, the
text `<top>_csynth.rpt` and the C/RTL co-simulation `<top>_cosim.rpt`.

The XML is read with defusedxml (no entity expansion, no external entities). These are the reports of one
hls4ml project's HLS run (source "synthesis", and "cosim" for co-simulation); the Vivado implementation
reports are edgekd.report.vendor_vivado's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from edgekd.report.vendor_common import _UNDEF, VendorReportError, _cells, _num, _read_text

_RESOURCE_KEYS = {
    "BRAM_18K": "bram_18k",
    "DSP48E": "dsp",
    "DSP48E1": "dsp",
    "DSP48E2": "dsp",
    "DSP": "dsp",
    "FF": "ff",
    "LUT": "lut",
    "URAM": "uram",
}


# --- csynth.xml --------------------------------------------------------------------------------------------

def parse_csynth_xml(path: Path | str) -> dict[str, Any]:
    """Vivado HLS / Vitis HLS `<top>_csynth.xml` -> numbers.

    Returns {tool_version, part, top, target_clock_ns, estimated_clock_ns, latency_best, latency_avg,
    latency_worst, interval_min, interval_max, resources: {dsp, lut, ff, bram_18k, uram},
    available: {...}, source: "synthesis"}.
    """
    path, text = _read_text(path)
    try:
        root = DET.fromstring(text)
    except DefusedXmlException as err:
        raise VendorReportError(f"{path}: refused unsafe XML ({type(err).__name__})") from None
    except Exception as err:  # ParseError carries the line/column
        raise VendorReportError(f"{path}: not well-formed XML ({err})") from None
    if root.tag != "profile":
        raise VendorReportError(f"{path}: <{root.tag}>: expected the root element <profile> of a csynth report")

    def text_of(xpath: str, required: bool = True) -> str | None:
        el = root.find(xpath)
        if el is None:
            if required:
                raise VendorReportError(f"{path}: missing element {xpath}")
            return None
        return el.text or ""

    lat = "PerformanceEstimates/SummaryOfOverallLatency"
    out: dict[str, Any] = {
        "tool_version": (text_of("ReportVersion/Version", required=False) or "").strip() or None,
        "part": (text_of("UserAssignments/Part", required=False) or "").strip() or None,
        "top": (text_of("UserAssignments/TopModelName", required=False) or "").strip() or None,
        "target_clock_ns": _num(text_of("UserAssignments/TargetClockPeriod"), path, "UserAssignments/TargetClockPeriod"),
        "estimated_clock_ns": _num(
            text_of("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"), path,
            "PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
    }
    for key, tag, required in (("latency_best", "Best-caseLatency", True), ("latency_avg", "Average-caseLatency", False),
                               ("latency_worst", "Worst-caseLatency", True), ("interval_min", "Interval-min", True),
                               ("interval_max", "Interval-max", True)):
        out[key] = _num(text_of(f"{lat}/{tag}", required), path, f"{lat}/{tag}")
    out["resources"] = _xml_resources(root, "AreaEstimates/Resources", path, required=True)
    out["available"] = _xml_resources(root, "AreaEstimates/AvailableResources", path, required=False)
    if out["estimated_clock_ns"]:
        out["fmax_mhz"] = round(1000.0 / out["estimated_clock_ns"], 3)
    out["source"] = "synthesis"
    return out


def _xml_resources(root: Any, xpath: str, path: Path, required: bool) -> dict[str, Any]:
    node = root.find(xpath)
    if node is None:
        if required:
            raise VendorReportError(f"{path}: missing element {xpath}")
        return {}
    res: dict[str, Any] = {}
    for child in node:
        key = _RESOURCE_KEYS.get(child.tag)
        if key is None:
            continue  # e.g. Vitis' extra counters; keep only the normalised ones
        res[key] = _num(child.text, path, f"{xpath}/{child.tag}")
    if required and not {"lut", "ff"} <= set(res):
        raise VendorReportError(f"{path}: {xpath}: missing LUT/FF counts")
    return res


# --- csynth.rpt --------------------------------------------------------------------------------------------

def parse_csynth_rpt(path: Path | str) -> dict[str, Any]:
    """The text `<top>_csynth.rpt`: clock, latency/interval summary and the utilisation Total row."""
    path, text = _read_text(path)
    lines = text.splitlines()
    out: dict[str, Any] = {"source": "synthesis"}
    # timing: |ap_clk  |  4.00 ns|  3.647 ns|     0.50 ns|
    for i, line in enumerate(lines):
        c = _cells(line)
        if c and c[0] == "ap_clk" and len(c) >= 3:
            out["target_clock_ns"] = _num(c[1], path, f"line {i + 1} (timing summary, Target)")
            out["estimated_clock_ns"] = _num(c[2], path, f"line {i + 1} (timing summary, Estimated)")
            break
    else:
        raise VendorReportError(f"{path}: no timing summary row (|ap_clk| ...) found")
    # latency summary: first data row after '+ Latency'
    start = next((i for i, l in enumerate(lines) if l.strip().startswith("+ Latency")), None)
    if start is None:
        raise VendorReportError(f"{path}: no '+ Latency' section found")
    for i in range(start + 1, min(start + 20, len(lines))):
        c = _cells(lines[i])
        if not c or len(c) < 6 or not re.match(r"^(\d+|undef|\?)$", c[0]):
            continue
        where = f"line {i + 1} (latency summary)"
        out["latency_best"] = _num(c[0], path, where)
        out["latency_worst"] = _num(c[1], path, where)
        out["latency_best_us"] = _abs_us(c[2], path, where)
        out["latency_worst_us"] = _abs_us(c[3], path, where)
        out["interval_min"] = _num(c[4], path, where)
        out["interval_max"] = _num(c[5], path, where)
        out["pipeline_type"] = c[6] if len(c) > 6 and c[6] else None
        break
    else:
        raise VendorReportError(f"{path}: line {start + 1}: latency summary table has no data row")
    # utilisation: header row with BRAM_18K, then |Total| and |Available| rows
    header: list[str] | None = None
    for i, line in enumerate(lines):
        c = _cells(line)
        if not c:
            continue
        if "BRAM_18K" in c and "LUT" in c:
            header = c
            continue
        if header and c[0] in ("Total", "Available"):
            vals: dict[str, Any] = {}
            for name, cell in zip(header[1:], c[1:]):
                key = _RESOURCE_KEYS.get(name)
                if key:
                    vals[key] = _num(cell, path, f"line {i + 1} ({c[0]} {name})")
            out["resources" if c[0] == "Total" else "available"] = vals
            if c[0] == "Available":
                break
    if "resources" not in out:
        raise VendorReportError(f"{path}: no utilisation 'Total' row found")
    return out


def _abs_us(cell: str, path: Path, where: str) -> float | None:
    t = cell.strip()
    if t.lower() in _UNDEF:
        return None
    m = re.match(r"^([0-9.]+)\s*(ns|us|ms|sec|s)?$", t)
    if not m:
        raise VendorReportError(f"{path}: {where}: expected a time, found {cell!r}")
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "sec": 1e6, "s": 1e6, None: 1.0}[m.group(2)]
    return round(float(m.group(1)) * scale, 6)


# --- cosim.rpt ---------------------------------------------------------------------------------------------

def parse_cosim_rpt(path: Path | str) -> dict[str, Any]:
    """C/RTL co-simulation report: the Verilog (else VHDL) row that passed.

    Returns {rtl, status, latency_min, latency_avg, latency_max, interval_min, interval_avg, interval_max,
    total_cycles, source: "cosim"}.
    """
    path, text = _read_text(path)
    rows: dict[str, tuple[int, list[str]]] = {}
    for i, line in enumerate(text.splitlines()):
        c = _cells(line)
        if c and c[0] in ("Verilog", "VHDL", "SystemC"):
            rows[c[0]] = (i + 1, c if len(c) > 1 else [*c, ""])  # a row cut after its first cell has no status
    if not rows:
        raise VendorReportError(f"{path}: no Verilog/VHDL result row found (not a cosim report?)")
    for rtl in ("Verilog", "VHDL", "SystemC"):
        if rtl in rows and rows[rtl][1][1].lower() == "pass":
            lineno, c = rows[rtl]
            break
    else:
        rtl = next(r for r in ("Verilog", "VHDL", "SystemC") if r in rows)
        lineno, c = rows[rtl]
        raise VendorReportError(f"{path}: line {lineno}: co-simulation status is {c[1]!r}, not Pass")
    if len(c) < 8:
        raise VendorReportError(f"{path}: line {lineno}: expected 6 latency/interval columns, found {len(c) - 2}")
    where = f"line {lineno} ({rtl} row)"
    vals = [_num(x, path, where) for x in c[2:9]]
    keys = ["latency_min", "latency_avg", "latency_max", "interval_min", "interval_avg", "interval_max",
            "total_cycles"]
    out: dict[str, Any] = {"rtl": rtl, "status": "pass"}
    out.update({k: v for k, v in zip(keys, vals)})
    out.setdefault("total_cycles", None)
    out["source"] = "cosim"
    return out
