"""Parsers of Vivado's implementation reports: `report_utilization` (7-series "Slice LUTs" / UltraScale "CLB
LUTs"; Block RAM tiles converted to BRAM18K = 2 x tiles) and `report_timing_summary` (WNS, TNS, WHS, THS, met).

Apart from the HLS reports (edgekd.report.vendor_hls) because they come from a later tool, Vivado's
synthesis / place and route of the exported RTL, in a different text format.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgekd.report.vendor_common import VendorReportError, _cells, _num, _read_text

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
