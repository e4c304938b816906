"""Error of the analytical latency/resource estimator against real hls4ml C-synthesis figures.

    .venv/bin/python benchmarks/estimator_accuracy.py [--data tests/data/hls4ml_synthesis_baselines.json]

Reads the collected baselines (each row: the layers of a small hls4ml design, its io_type and the figures
Vivado HLS / Vitis HLS reported), runs `edgekd.report.latency.estimate` on the same layers, and prints and
saves the median and worst absolute % error for latency (worst-case cycles) and for DSP and LUT. Rows whose
measured value is 0 have no % error; they are counted separately with the absolute error in cycles/units.
Saved to benchmarks/results/estimator_accuracy.json. Never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from edgekd.io import read_json, write_json
from edgekd.report.latency import LayerSpec, estimate

ROOT = Path(__file__).resolve().parents[1]


def _pct(est: float, meas: float) -> float | None:
    return None if meas == 0 else abs(est - meas) / meas * 100.0


def _stats(errors: list[float | None], abs_errors: list[float]) -> dict[str, Any]:
    pct = [e for e in errors if e is not None]
    zero_rows = [a for e, a in zip(errors, abs_errors) if e is None]
    return {
        "n_pct": len(pct),
        "median_abs_pct": round(statistics.median(pct), 1) if pct else None,
        "worst_abs_pct": round(max(pct), 1) if pct else None,
        "n_measured_zero": len(zero_rows),
        "worst_abs_error_where_measured_zero": max(zero_rows) if zero_rows else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "hls4ml_synthesis_baselines.json")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "estimator_accuracy.json")
    args = ap.parse_args()
    doc = read_json(args.data)
    rows_out = []
    errs: dict[str, list] = {k: [] for k in ("latency", "dsp", "lut")}
    abs_errs: dict[str, list] = {k: [] for k in ("latency", "dsp", "lut")}
    print(f"{'design':42s} {'io':11s} {'lat est/meas':>14s} {'DSP est/meas':>14s} {'LUT est/meas':>16s}")
    for row in doc["rows"]:
        defaults = {"reuse_factor": row.get("reuse_factor", 1), "strategy": row.get("strategy", "latency")}
        bits = int(row.get("precision", "ap_fixed<16,6>").split("<")[1].split(",")[0])
        specs = []
        for d in row["layers"]:
            d = {"weight_bits": bits, "input_bits": bits, "result_bits": bits, **defaults, **d}
            specs.append(LayerSpec.from_dict(d))
        # csynth measures the design alone: its input port delivers one stream word per cycle
        est = estimate(specs, 1000.0 / row["clock_ns"], row["io_type"], input_interval=1.0)
        m = row["measured"]
        pairs = {"latency": (est["cycles"], m["latency_worst"]), "dsp": (est["resources"]["dsp"], m["dsp"]),
                 "lut": (est["resources"]["lut"], m["lut"])}
        for k, (e, mv) in pairs.items():
            errs[k].append(_pct(e, mv))
            abs_errs[k].append(abs(e - mv))
        print(f"{row['id']:42s} {row['io_type']:11s} {pairs['latency'][0]:>6d}/{pairs['latency'][1]:<7d} "
              f"{pairs['dsp'][0]:>6d}/{pairs['dsp'][1]:<7d} {pairs['lut'][0]:>7d}/{pairs['lut'][1]:<8d}")
        rows_out.append({"id": row["id"], "io_type": row["io_type"], "tool_version": row["tool_version"],
                         "backend": row["backend"],
                         "estimate": {"latency_cycles": pairs["latency"][0], "ii_cycles": est["ii_cycles"],
                                      **est["resources"]},
                         "measured": m, "source": row["source"]})
    summary = {k: _stats(errs[k], abs_errs[k]) for k in errs}
    for k, s in summary.items():
        print(f"{k:8s} median |err| {s['median_abs_pct']}%  worst {s['worst_abs_pct']}%  over {s['n_pct']} rows; "
              f"{s['n_measured_zero']} rows measured 0 (worst abs error there {s['worst_abs_error_where_measured_zero']})")
    write_json(args.json, {"data": str(args.data.relative_to(ROOT)) if args.data.is_relative_to(ROOT) else str(args.data),
                           "n_rows": len(rows_out), "summary": summary, "rows": rows_out})
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
