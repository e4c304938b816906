"""Time-multiplexed (reuse) dense kernels on the zoo's jet tagger (16-64-32-32-5): Verilator and Yosys per R.

For each reuse configuration: the RTL backend's Verilog (edgekd.rtl.generate_rtl with rtl.reuse), Verilator
on the contract's verification sample (bit-exact against QONNX, latency and interval in cycles, compile
time), Yosys `synth_ecp5` (LUT4, CCU2C, TRELLIS_FF, MULT18X18D, DP16KD and the logic slots nextpnr places:
LUT4 + 2 per CCU2C, as edgekd.openfpga counts them) and the cost model's estimate (edgekd.estimate.rtl
`estimate_reuse_design`) beside it.

The contract is the export folder of a convert build of the zoo model:

    edgekd convert /work/zoo/qkeras_jettagging.onnx --board ulx3s-85f --allow-inexact --out build/qkeras_jettagging
    flock /tmp/edgekd-heavy.lock nice -n 10 .venv/bin/python benchmarks/rtl_reuse.py \
        --export build/qkeras_jettagging/export --configs r4 r16 r32 r64

Prints and saves benchmarks/results/rtl_reuse.json (merged by configuration name with earlier runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "rtl_reuse.json"
LUT_SLOTS_85F = 83640
LUT_POST, CARRY_POST = 1.30, 0.98  # per unit of alkaid cost of the requantisation networks (see `fit`)

# name -> rtl.reuse
CONFIGS: dict[str, int | dict[str, int]] = {
    "r1": 1,
    "r4": 4,
    "r16": 16,
    "r32": 32,
    "r64": 64,  # the 32x5 layer: gcd(64, 32) = 32 input slices x 2 groups of 3 outputs (one padded)
}


def run(name: str, export: Path, work: Path) -> dict:
    from edgekd.contract import HardwareContract
    from edgekd.estimate.rtl import estimate_reuse_design
    from edgekd.rtl.generate import generate_rtl
    from edgekd.rtl.sim import run_sim
    from edgekd.rtl.synth import synthesize

    contract = HardwareContract.load(export)
    out = work / name
    t0 = time.perf_counter()
    manifest = generate_rtl(contract, out, family="ecp5", reuse=CONFIGS[name])
    gen_s = time.perf_counter() - t0
    sim = run_sim(out, manifest)
    syn = synthesize(out, "ecp5")
    slots = syn["lut"] + 2 * syn["carry"]
    est = estimate_reuse_design(manifest, "ecp5")
    return {
        "config": name, "reuse": manifest["reuse"], "generate_s": round(gen_s, 2),
        "interval_cycles_per_image": manifest["interval_cycles_per_image"],
        "kernels": [{k: s[k] for k in ("layer", "ii", "latency", "cost")} | ({"structure": s["reuse"]} if "reuse" in s else {})
                    for s in manifest["stages"] if s["stage"].startswith("kernel")],
        "simulation": {k: sim[k] for k in ("exact", "n", "latency_cycles", "interval_cycles", "tlast_ok",
                                           "build_seconds", "run_seconds")},
        "synthesis": {**{k: syn[k] for k in ("lut", "ff", "carry", "dsp", "bram_18k", "cells", "seconds", "tool",
                                             "command")},
                      "logic_slots": slots, "slot_fraction_85f": round(slots / LUT_SLOTS_85F, 4)},
        "estimate": est,
    }


def features(row: dict) -> dict[str, float]:
    """The structural counts of a row's reuse kernels (edgekd.estimate.rtl.reuse_dense_counts' terms)."""
    f = {"rom_luts": 0.0, "mux_bits": 0.0, "adder_bits": 0.0, "register_bits": 0.0, "post_cost": 0.0}
    for k in row["kernels"]:
        s = k.get("structure")
        f["post_cost"] += float(k.get("cost", 0.0))
        if not s:
            continue
        f["rom_luts"] += s["rom_word_bits"] * max(1, -(-s["reuse"] // 16))
        f["mux_bits"] += (s["slice_inputs"] * s["r_in"] * s["input_bits"] if s["r_in"] > 1 else 0) + \
            s["group_outputs"] * s["acc_bits"]
        f["adder_bits"] += s["group_outputs"] * s["slice_inputs"] * s["acc_bits"]
        f["register_bits"] += s["register_bits"]
    return f


def fit(rows: list[dict]) -> dict:
    """Least squares (no intercept) of Yosys's ECP5 counts on the structural counts. The alkaid bias +
    requantisation networks are the same in every row, so their factors cannot be fitted here: they are
    Yosys's own per-module counts of them in the R = 32 design (the _post_s* modules: 2,768 LUT4 and 2,094
    CCU2C for alkaid cost 2,128, i.e. 1.30 and 0.98 per unit; their registers are in the structural count)."""
    import numpy as np

    rows = [r for r in rows if r.get("synthesis")]
    if len(rows) < 2:
        return {}
    fs = [features(r) for r in rows]
    post = np.array([f["post_cost"] for f in fs])
    syn = {k: np.array([float(r["synthesis"][k]) for r in rows]) for k in ("lut", "ff", "carry")}
    a_lut = np.array([[f["rom_luts"], f["mux_bits"]] for f in fs])
    c_lut, *_ = np.linalg.lstsq(a_lut, syn["lut"] - LUT_POST * post, rcond=None)
    c_carry = float(np.dot([f["adder_bits"] / 2 for f in fs], syn["carry"] - CARRY_POST * post)
                    / np.dot([f["adder_bits"] / 2 for f in fs], [f["adder_bits"] / 2 for f in fs]))
    c_ff = float(np.dot([f["register_bits"] for f in fs], syn["ff"])
                 / np.dot([f["register_bits"] for f in fs], [f["register_bits"] for f in fs]))
    coef = {"lut_rom": round(float(c_lut[0]), 3), "lut_mux": round(float(c_lut[1]), 3), "lut_post": LUT_POST,
            "carry_add": round(c_carry, 3), "carry_post": CARRY_POST, "ff_reg": round(c_ff, 3), "ff_post": 0.0}
    pred = {"lut": a_lut @ c_lut + LUT_POST * post,
            "carry": np.array([f["adder_bits"] / 2 for f in fs]) * c_carry + CARRY_POST * post,
            "ff": np.array([f["register_bits"] for f in fs]) * c_ff}
    err = {r["config"]: {k: round(float(pred[k][i] / syn[k][i] - 1) * 100, 1) for k in pred}
           for i, r in enumerate(rows)}
    return {"family": "ecp5", "coefficients": coef, "error_percent": err,
            "features": {r["config"]: f for r, f in zip(rows, fs)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", type=Path, required=True, help="the jet tagger's contract (a build's export folder)")
    ap.add_argument("--configs", nargs="*", default=["r4", "r16", "r32", "r64"], choices=sorted(CONFIGS))
    ap.add_argument("--work", type=Path, default=Path("build/rtl_reuse"))
    args = ap.parse_args()
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    rows = {r["config"]: r for r in old.get("designs", [])}
    command = "flock /tmp/edgekd-heavy.lock nice -n 10 .venv/bin/python benchmarks/rtl_reuse.py " + " ".join(sys.argv[1:])
    for name in args.configs:
        row = run(name, args.export, args.work)
        row["measured_by"] = command
        row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        rows[name] = row
        print(json.dumps(row, indent=1), flush=True)
        out = {"benchmark": "rtl_reuse", "model": "zoo qkeras_jettagging.onnx (16-64-32-32-5)",
               "contract": str(args.export), "command": command,
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "designs": sorted(rows.values(), key=lambda r: r["config"])}
        out["fit"] = fit(out["designs"])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out.get("fit"), indent=1))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
