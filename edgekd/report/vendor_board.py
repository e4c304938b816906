"""Latencies measured on a board (source "board"), JSON or CSV, summarised in microseconds.

Not a vendor tool's report but the lab's own log, so its formats are edgekd's:
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
from pathlib import Path
from typing import Any

from edgekd.report.vendor_common import VendorReportError, _read_text

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
