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
- `parse_board_measurements`: latencies measured on a board, JSON or CSV (format below).

XML is read with defusedxml (no entity expansion, no external entities). A file that cannot be read as the
format it claims to be raises `VendorReportError` (a ValueError) naming the file and the element or line.

Board measurement formats:
  JSON: {"unit": "us" | "ns" | "ms" | "cycles", "latencies": [..numbers..],
         optional "board": str, "clock_mhz": number (required for unit "cycles"), "n": int (must match),
         "description": str}
  CSV:  a header row with a `latency_us` column (or `latency_ns`), one measurement per row; other columns
        are ignored.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

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


class VendorReportError(ValueError):
    """A vendor report or measurement file that cannot be parsed; names the file and the element/line."""


_UNDEF = {"undef", "na", "n/a", "-", ""}
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


def _num(text: str | None, path: Path, where: str) -> int | float | None:
    """A number from a report cell; None for undef/NA; error naming the file and element otherwise."""
    if text is None:
        return None
    t = text.strip()
    if t.lower() in _UNDEF:
        return None
    t = t.replace(",", "")
    for suffix in (" ns", "ns", " us", "us", " ms", "ms", "%"):
        if t.endswith(suffix):
            t = t[: -len(suffix)].strip()
            break
    t = t.lstrip("~<>")
    try:
        v = float(t)
    except ValueError:
        raise VendorReportError(f"{path}: {where}: expected a number, found {text.strip()!r}") from None
    return int(v) if v.is_integer() and "." not in t else v


def _read_text(path: Path | str) -> tuple[Path, str]:
    path = Path(path)
    try:
        return path, path.read_text(errors="replace")
    except OSError as err:
        raise VendorReportError(f"{path}: cannot read ({err.strerror})") from None


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

_ROW = re.compile(r"^\s*\|(.*)\|\s*$")


def _cells(line: str) -> list[str] | None:
    m = _ROW.match(line)
    if not m:
        return None
    return [c.strip() for c in m.group(1).split("|")]


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


# --- Vivado utilization / timing ---------------------------------------------------------------------------

_UTIL_ROWS = {
    "lut": ("CLB LUTs", "Slice LUTs"),
    "ff": ("CLB Registers", "Slice Registers"),
    "bram_tile": ("Block RAM Tile",),
    "dsp": ("DSPs",),
    "uram": ("URAM",),
}


def parse_utilization_rpt(path: Path | str) -> dict[str, Any]:
    """Vivado `report_utilization` text -> {resources: {lut, ff, dsp, bram_18k, uram}, available: {...}}.

    Block RAM is counted in 36 Kb tiles by Vivado (halves allowed); it is reported here as BRAM18K = 2 x tiles.
    """
    path, text = _read_text(path)
    used: dict[str, Any] = {}
    avail: dict[str, Any] = {}
    for i, line in enumerate(text.splitlines()):
        c = _cells(line)
        if not c or len(c) < 4:
            continue
        name = c[0].rstrip("*").strip()
        for key, labels in _UTIL_ROWS.items():
            if name in labels and key not in used:
                where = f"line {i + 1} ({name})"
                used[key] = _num(c[1], path, where)
                # columns: Site Type | Used | Fixed | [Prohibited |] Available | Util%
                avail[key] = _num(c[-2], path, where)
    missing = [k for k in ("lut", "ff") if k not in used]
    if missing:
        raise VendorReportError(f"{path}: no {' / '.join(_UTIL_ROWS[missing[0]])} row found (not a utilization report?)")

    def to_bram18(v: Any) -> Any:
        return None if v is None else (int(v * 2) if float(v * 2).is_integer() else v * 2)

    res = {"lut": used["lut"], "ff": used["ff"], "dsp": used.get("dsp"), "bram_18k": to_bram18(used.get("bram_tile")),
           "uram": used.get("uram", 0)}
    av = {"lut": avail["lut"], "ff": avail["ff"], "dsp": avail.get("dsp"),
          "bram_18k": to_bram18(avail.get("bram_tile")), "uram": avail.get("uram", 0)}
    return {"resources": res, "available": av, "source": "synthesis"}


def parse_timing_summary_rpt(path: Path | str) -> dict[str, Any]:
    """Vivado `report_timing_summary`: {wns_ns, tns_ns, whs_ns, ths_ns, failing_endpoints, met}."""
    path, text = _read_text(path)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "WNS(ns)" in line and "TNS(ns)" in line:
            header = re.split(r"\s{2,}", line.strip())
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or set(lines[j].strip()) <= {"-", " "}):
                j += 1
            if j >= len(lines):
                raise VendorReportError(f"{path}: line {i + 1}: design timing summary has no value row")
            values = lines[j].split()
            if len(values) < len(header):
                raise VendorReportError(
                    f"{path}: line {j + 1}: expected {len(header)} values under the timing summary header, "
                    f"found {len(values)}")
            row = dict(zip(header, values))
            where = f"line {j + 1} (design timing summary)"
            out = {
                "wns_ns": _num(row.get("WNS(ns)"), path, where),
                "tns_ns": _num(row.get("TNS(ns)"), path, where),
                "tns_failing_endpoints": _num(row.get("TNS Failing Endpoints"), path, where),
                "whs_ns": _num(row.get("WHS(ns)"), path, where),
                "ths_ns": _num(row.get("THS(ns)"), path, where),
                "ths_failing_endpoints": _num(row.get("THS Failing Endpoints"), path, where),
            }
            if "All user specified timing constraints are met" in text:
                met = True
            elif "Timing constraints are not met" in text:
                met = False
            else:
                met = (out["wns_ns"] is not None and out["wns_ns"] >= 0
                       and (out["whs_ns"] is None or out["whs_ns"] >= 0))
            out["met"] = met
            out["source"] = "synthesis"
            return out
    raise VendorReportError(f"{path}: no 'Design Timing Summary' header (WNS(ns) TNS(ns) ...) found")


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


# --- board measurements ------------------------------------------------------------------------------------

_UNIT_TO_US = {"us": 1.0, "ns": 1e-3, "ms": 1e3, "s": 1e6}


def parse_board_measurements(path: Path | str, bins: int = 20) -> dict[str, Any]:
    """Latencies measured on hardware (JSON or CSV, see the module docstring) -> summary statistics in us.

    Returns {n, median_us, p99_us, min_us, max_us, mean_us, histogram: {edges, counts}, source: "board",
    board?, clock_mhz?}.
    """
    path, text = _read_text(path)
    meta: dict[str, Any] = {}
    if path.suffix.lower() == ".json":
        values, meta = _board_json(path, text)
    elif path.suffix.lower() == ".csv":
        values = _board_csv(path, text)
    else:
        raise VendorReportError(f"{path}: board measurements must be a .json or .csv file")
    if not values:
        raise VendorReportError(f"{path}: no latency values")
    return _summary(values, bins) | meta | {"source": "board"}


def _board_json(path: Path, text: str) -> tuple[list[float], dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise VendorReportError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise VendorReportError(f"{path}: the top level must be an object with 'unit' and 'latencies'")
    allowed = {"unit", "latencies", "board", "clock_mhz", "n", "description"}
    unknown = set(data) - allowed
    if unknown:
        raise VendorReportError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    unit = data.get("unit")
    if unit not in (*_UNIT_TO_US, "cycles"):
        raise VendorReportError(f"{path}: unit: must be one of us, ns, ms, s, cycles (got {unit!r})")
    lat = data.get("latencies")
    if not isinstance(lat, list):
        raise VendorReportError(f"{path}: latencies: must be a list of numbers")
    meta: dict[str, Any] = {}
    clock = data.get("clock_mhz")
    if clock is not None and (isinstance(clock, bool) or not isinstance(clock, (int, float)) or clock <= 0):
        raise VendorReportError(f"{path}: clock_mhz: must be a positive number (got {clock!r})")
    if unit == "cycles":
        if clock is None:
            raise VendorReportError(f"{path}: clock_mhz: required when unit is 'cycles'")
        scale = 1.0 / clock
    else:
        scale = _UNIT_TO_US[unit]
    values: list[float] = []
    for i, v in enumerate(lat):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise VendorReportError(f"{path}: latencies[{i}]: expected a non-negative number, found {v!r}")
        values.append(float(v) * scale)
    if "n" in data and data["n"] != len(values):
        raise VendorReportError(f"{path}: n: says {data['n']!r} but latencies holds {len(values)} values")
    if "board" in data:
        meta["board"] = str(data["board"])
    if clock is not None:
        meta["clock_mhz"] = float(clock)
    return values, meta


def _board_csv(path: Path, text: str) -> list[float]:
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise VendorReportError(f"{path}: empty CSV file") from None
    header = [h.strip() for h in header]
    if "latency_us" in header:
        col, scale = header.index("latency_us"), 1.0
    elif "latency_ns" in header:
        col, scale = header.index("latency_ns"), 1e-3
    else:
        raise VendorReportError(f"{path}: line 1: no 'latency_us' (or 'latency_ns') column in header {header}")
    values: list[float] = []
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if col >= len(row):
            raise VendorReportError(f"{path}: line {lineno}: missing the {header[col]} column")
        try:
            v = float(row[col])
        except ValueError:
            raise VendorReportError(f"{path}: line {lineno}: {header[col]} is not a number ({row[col]!r})") from None
        if not math.isfinite(v) or v < 0:
            raise VendorReportError(f"{path}: line {lineno}: {header[col]} must be a non-negative number ({v})")
        values.append(v * scale)
    return values


def _summary(values: list[float], bins: int) -> dict[str, Any]:
    import numpy as np

    a = np.asarray(values, dtype=float)
    n_bins = max(1, min(bins, len(values)))
    counts, edges = np.histogram(a, bins=n_bins)
    return {
        "n": int(a.size),
        "median_us": float(np.median(a)),
        "p99_us": float(np.percentile(a, 99)),
        "min_us": float(a.min()),
        "max_us": float(a.max()),
        "mean_us": float(a.mean()),
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }
