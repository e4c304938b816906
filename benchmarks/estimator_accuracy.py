"""Error of the analytical latency/resource estimator against real synthesis figures, per resource and bit width.

    .venv/bin/python benchmarks/estimator_accuracy.py [--compare-rev REV]

Two kinds of rows:
- `tests/data/hls4ml_synthesis_baselines.json`: the layers of small hls4ml designs, their io_type and the
  figures Vivado HLS / Vitis HLS reported (csynth). `estimate` runs on the same layers.
- `benchmarks/results/rtl_vs_estimate.json` and `rtl_vs_estimate_audio_synth.json` (RTL rows): whole designs of the RTL backend, Verilator cycles and
  Yosys LUT/FF against `edgekd.estimate.rtl` (re-evaluated on each design's saved manifest).
- `tests/data/narrow_arithmetic_calibration.json`: Yosys `synth_xilinx` counts of the arithmetic hls4ml's
  Latency strategy builds for one Dense kernel at reuse factor 1 (constant-weight products and adder tree,
  `benchmarks/yosys_calibration.py`). The estimate is that of a Dense layer with the same shape, widths and
  non-zero weights in io_parallel, minus the per-output bias/cast adders the Verilog does not have.

For each resource (latency in worst-case cycles, LUT, FF, DSP) it prints and saves the median and worst
absolute % error, overall and per bit-width band (<= 8, 9-16, > 16 bits). A row's band is the widest weight
type of its multiplying layers (the product width the calibration is about), or its data width when it has no
weights. Rows whose measured value is 0 have no % error; they are counted with the worst absolute error.

`--compare-rev REV` also evaluates the estimator (`edgekd.estimate`, or `edgekd.report.latency` at revisions before
issue 27 moved it) as it was at git revision REV (the estimator before a refit) on the same rows, so one run shows
before and after. Saved to
benchmarks/results/estimator_accuracy.json. Never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from edgekd.io import read_json, write_json
from edgekd import estimate as latency_now

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ("latency", "lut", "ff", "dsp")
BANDS = ("<=8", "9-16", ">16")
_WEIGHTED = ("Dense", "Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "PointwiseConv1D", "PointwiseConv2D",
             "BatchNormalization")


def _band(bits: int) -> str:
    return "<=8" if bits <= 8 else ("9-16" if bits <= 16 else ">16")


def _pct(est: float, meas: float) -> float | None:
    return None if meas == 0 else abs(est - meas) / meas * 100.0


def _stats(items: list[tuple[float | None, float]]) -> dict[str, Any]:
    pct = [e for e, _ in items if e is not None]
    zero_rows = [a for e, a in items if e is None]
    return {
        "n_pct": len(pct),
        "median_abs_pct": round(statistics.median(pct), 1) if pct else None,
        "worst_abs_pct": round(max(pct), 1) if pct else None,
        "n_measured_zero": len(zero_rows),
        "worst_abs_error_where_measured_zero": max(zero_rows) if zero_rows else None,
    }


def _load_rev(rev: str) -> ModuleType:
    """The estimator as it was at git revision `rev`, with the package it imports at that revision (the
    estimator is several modules since the split): `git archive` into a temporary folder, imported first on
    sys.path, then the current package is put back (the old module keeps its own globals)."""
    tmp = Path(tempfile.mkdtemp())
    archive = subprocess.run(["git", "archive", rev, "edgekd"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp, filter="data")
    ours = {k: v for k, v in sys.modules.items() if k == "edgekd" or k.startswith("edgekd.")}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, str(tmp))
    try:  # the estimator's package since issue 27; edgekd/report/latency.py before
        if (tmp / "edgekd" / "estimate" / "__init__.py").exists():
            return importlib.import_module("edgekd.estimate")
        return importlib.import_module("edgekd.report.latency")
    finally:
        sys.path.remove(str(tmp))
        for name in [k for k in sys.modules if k == "edgekd" or k.startswith("edgekd.")]:
            del sys.modules[name]
        sys.modules.update(ours)


def _hls_rows(doc: dict[str, Any], lat: ModuleType) -> list[dict[str, Any]]:
    out = []
    for row in doc["rows"]:
        defaults = {"reuse_factor": row.get("reuse_factor", 1), "strategy": row.get("strategy", "latency")}
        bits = int(row.get("precision", "ap_fixed<16,6>").split("<")[1].split(",")[0])
        specs = []
        known = {f for f in lat.LayerSpec.__dataclass_fields__}
        for d in row["layers"]:
            d = {"weight_bits": bits, "input_bits": bits, "result_bits": bits, **defaults, **d}
            specs.append(lat.LayerSpec.from_dict({k: v for k, v in d.items() if k in known}))
        wbits = [s.weight_bits for s in specs if s.type in _WEIGHTED]
        # csynth measures the design alone: its input port delivers one stream word per cycle
        est = lat.estimate(specs, 1000.0 / row["clock_ns"], row["io_type"], input_interval=1.0)
        m = row["measured"]
        out.append({"id": row["id"], "kind": "hls4ml csynth", "scope": row.get("scope", "design"),
                    "band": _band(max(wbits) if wbits else bits),
                    "pairs": {"latency": (est["cycles"], m["latency_worst"]), "lut": (est["resources"]["lut"], m["lut"]),
                              "ff": (est["resources"]["ff"], m["ff"]), "dsp": (est["resources"]["dsp"], m["dsp"])},
                    "source": row["source"]})
    return out


def _yosys_rows(doc: dict[str, Any], lat: ModuleType) -> list[dict[str, Any]]:
    out = []
    for row in doc["rows"]:
        if row.get("form", "csd") != "csd" or row.get("kind") != "matvec":
            continue  # Yosys' own `x * W` structure is not what HLS builds
        spec = lat.LayerSpec("mvm", "Dense", (row["n_in"],), (row["n_out"],), weight_bits=row["weight_bits"],
                             input_bits=row["input_bits"], result_bits=row["accum_bits"],
                             n_weights=row["n_weights"], n_nonzero_weights=row["n_nonzero"])
        c = lat.estimate_layer(spec, "io_parallel")
        bias_lut = row["n_out"] * row["accum_bits"]  # the Verilog has no bias / cast adders
        m = row["measured"]
        out.append({"id": row["id"], "kind": "yosys", "scope": "kernel",
                    "band": _band(max(row["weight_bits"], row["input_bits"])),
                    "pairs": {"lut": (max(0, c.lut - bias_lut), m["lut"]), "ff": (c.ff, m["ff"]),
                              "dsp": (c.dsp, m["dsp"])},
                    "source": row["source"]})
    return out


def _rtl_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole RTL-backend designs (benchmarks/rtl_vs_estimate.py): Verilator cycles and Yosys LUT/FF against
    edgekd.estimate.rtl evaluated now on each design's saved manifest."""
    from edgekd.estimate.rtl import estimate_pixel_top, estimate_rtl

    out = []
    for row in doc.get("rows", []):
        if "manifest" not in row:
            continue
        est = estimate_rtl(row["manifest"], row["family"])
        pairs = {"latency": (est["latency_cycles"], row["latency_cycles"])}
        if row["manifest"].get("pixel_top") and row.get("pixel_top"):  # measured at the camera top
            cam = estimate_pixel_top(row["manifest"])
            pairs = {"latency": (cam["network_latency_cycles"], row["latency_cycles"]),
                     "decision_latency": (cam["latency_cycles"], row["pixel_top"]["latency_cycles"])}
        if row.get("synthesis"):
            pairs |= {"lut": (est["lut"], row["synthesis"]["lut"]), "ff": (est["ff"], row["synthesis"]["ff"]),
                      "dsp": (0, row["synthesis"]["dsp"])}
        out.append({"id": f"rtl {row['design']} ({row['family']})", "kind": "rtl", "scope": "design",
                    "band": _band(8), "pairs": pairs, "source": "benchmarks/rtl_vs_estimate.py"})
    return out


def evaluate(lat: ModuleType, hls_doc: dict[str, Any], yosys_doc: dict[str, Any] | None,
             rtl_doc: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = _hls_rows(hls_doc, lat) + (_yosys_rows(yosys_doc, lat) if yosys_doc else []) + \
        (_rtl_rows(rtl_doc) if rtl_doc else [])
    summary: dict[str, Any] = {}
    for kind in ("hls4ml csynth", "yosys", "rtl"):
        sel = [r for r in rows if r["kind"] == kind]
        per: dict[str, Any] = {}
        for res in RESOURCES:
            items = [(_pct(*r["pairs"][res]), abs(r["pairs"][res][0] - r["pairs"][res][1])) for r in sel if res in r["pairs"]]
            if not items:
                continue
            per[res] = {"all": _stats(items)}
            for band in BANDS:
                b = [(_pct(*r["pairs"][res]), abs(r["pairs"][res][0] - r["pairs"][res][1]))
                     for r in sel if res in r["pairs"] and r["band"] == band]
                if b:
                    per[res][band] = _stats(b)
        summary[kind] = per
    return {"summary": summary,
            "rows": [{"id": r["id"], "kind": r["kind"], "scope": r["scope"], "band": r["band"],
                      "estimate": {k: v[0] for k, v in r["pairs"].items()},
                      "measured": {k: v[1] for k, v in r["pairs"].items()}, "source": r["source"]} for r in rows]}


def _print(label: str, res: dict[str, Any]) -> None:
    print(f"\n== {label}")
    for kind, per in res["summary"].items():
        for resource, bands in per.items():
            cells = []
            for band in ("all", *BANDS):
                s = bands.get(band)
                if s:
                    cells.append(f"{band}: {s['median_abs_pct']}% / {s['worst_abs_pct']}% (n={s['n_pct']}"
                                 f"{', ' + str(s['n_measured_zero']) + ' zero' if s['n_measured_zero'] else ''})")
            print(f"{kind:14s} {resource:8s} median/worst |err|  " + "; ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "hls4ml_synthesis_baselines.json")
    ap.add_argument("--yosys-data", type=Path, default=ROOT / "tests" / "data" / "narrow_arithmetic_calibration.json")
    # the full audio student's Yosys run (50 min) has its own file: a later file's row replaces the same design's
    ap.add_argument("--rtl-data", type=Path, nargs="+",
                    default=[ROOT / "benchmarks" / "results" / "rtl_vs_estimate.json",
                             ROOT / "benchmarks" / "results" / "rtl_vs_estimate_audio_synth.json"])
    ap.add_argument("--compare-rev", default=None, help="git revision of the estimator to compare with")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "estimator_accuracy.json")
    args = ap.parse_args()
    hls_doc = read_json(args.data)
    yosys_doc = read_json(args.yosys_data) if args.yosys_data.exists() else None
    rtl_rows = {r["design"]: r for path in args.rtl_data if path.exists() for r in read_json(path).get("rows", [])}
    rtl_doc = {"rows": list(rtl_rows.values())} if rtl_rows else None
    after = evaluate(latency_now, hls_doc, yosys_doc, rtl_doc)
    print(f"{'row':56s} {'band':5s} " + "  ".join(f"{k + ' est/meas':>17s}" for k in RESOURCES))
    for r in after["rows"]:
        cols = "  ".join(f"{r['estimate'][k]:>8d}/{r['measured'][k]:<8d}" if k in r["estimate"] else f"{'-':>17s}"
                         for k in RESOURCES)
        print(f"{r['id'][:56]:56s} {r['band']:5s} {cols}")
    out: dict[str, Any] = {
        "data": [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in (args.data, args.yosys_data)],
        "bands": "widest weight type of the multiplying layers (data width when none): <=8, 9-16, >16 bits",
        "current": after,
    }
    if args.compare_rev:
        before = evaluate(_load_rev(args.compare_rev), hls_doc, yosys_doc)
        out["before"] = {"rev": args.compare_rev, **before}
        _print(f"before (the estimator at {args.compare_rev})", before)
    _print("current edgekd.estimate", after)
    write_json(args.json, out)
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
