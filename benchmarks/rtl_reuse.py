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
    layers = {l["name"]: l["out_shape"][2] for l in manifest["layers"]}
    return {
        "config": name, "reuse": manifest["reuse"], "generate_s": round(gen_s, 2),
        "interval_cycles_per_image": manifest["interval_cycles_per_image"],
        "kernels": [{k: s[k] for k in ("layer", "ii", "latency", "cost")} | {"n_out": layers[s["layer"]]}
                    | ({"structure": s["reuse"]} if "reuse" in s else {})
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
    from edgekd.estimate.rtl import reuse_dense_counts

    f = {"rom_luts": 0.0, "mux_bits": 0.0, "adder2_bits": 0.0, "adder_multi_bits": 0.0, "register_bits": 0.0,
         "post_cost": 0.0}
    for k in row["kernels"]:
        s = k.get("structure")
        f["post_cost"] += float(k.get("cost", 0.0))
        if not s:
            continue
        n_in, n_out = s["slice_inputs"] * s["r_in"], k.get("n_out") or s["group_outputs"] * s["r_out"]
        c = reuse_dense_counts(n_in, n_out, s["input_bits"], s["weight_bits"], s["reuse"], acc_bits=s["acc_bits"])
        for key in ("rom_luts", "mux_bits", "adder2_bits", "adder_multi_bits"):
            f[key] += c[key]
        f["register_bits"] += s["register_bits"]
    return f


def fit(rows: list[dict]) -> dict:
    """Least squares (no intercept) of Yosys's ECP5 counts on the structural counts. The alkaid bias +
    requantisation networks are the same in every row, so their LUT/CCU2C factors cannot be fitted here: they
    are Yosys's own per-module counts of them in the R = 32 design (the _post_s* modules: 2,768 LUT4 and 2,094
    CCU2C for alkaid cost 2,128, i.e. 1.30 and 0.98 per unit). Two-operand sums (one input per slice) map to
    CCU2C carry chains, sums of more products mostly to LUT4 (Yosys's macc mapping)."""
    import numpy as np

    rows = [r for r in rows if r.get("synthesis")]
    if len(rows) < 3:
        return {}
    fs = [features(r) for r in rows]
    post = np.array([f["post_cost"] for f in fs])
    syn = {k: np.array([float(r["synthesis"][k]) for r in rows]) for k in ("lut", "ff", "carry")}
    a_lut = np.array([[f["rom_luts"], f["mux_bits"], f["adder_multi_bits"]] for f in fs])
    c_lut, *_ = np.linalg.lstsq(a_lut, syn["lut"] - LUT_POST * post, rcond=None)
    a_carry = np.array([[f["adder2_bits"] / 2, f["adder_multi_bits"] / 2] for f in fs])
    c_carry, *_ = np.linalg.lstsq(a_carry, syn["carry"] - CARRY_POST * post, rcond=None)
    a_ff = np.array([[f["register_bits"], f["post_cost"]] for f in fs])
    c_ff, *_ = np.linalg.lstsq(a_ff, syn["ff"], rcond=None)
    coef = {"lut_rom": float(c_lut[0]), "lut_mux": float(c_lut[1]), "lut_add_multi": float(c_lut[2]),
            "lut_post": LUT_POST, "carry_add2": float(c_carry[0]), "carry_add_multi": float(c_carry[1]),
            "carry_post": CARRY_POST, "ff_reg": float(c_ff[0]), "ff_post": float(c_ff[1])}
    pred = {"lut": a_lut @ c_lut + LUT_POST * post, "carry": a_carry @ c_carry + CARRY_POST * post,
            "ff": a_ff @ c_ff}
    err = {r["config"]: {k: round(float(pred[k][i] / syn[k][i] - 1) * 100, 1) for k in pred}
           for i, r in enumerate(rows)}
    return {"family": "ecp5", "coefficients": {k: round(v, 3) for k, v in coef.items()}, "error_percent": err,
            "features": {r["config"]: f for r, f in zip(rows, fs)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", type=Path, required=True, help="the jet tagger's contract (a build's export folder)")
    ap.add_argument("--configs", nargs="*", default=["r4", "r16", "r32", "r64"], choices=sorted(CONFIGS))
    ap.add_argument("--work", type=Path, default=Path("build/rtl_reuse"))
    ap.add_argument("--refit", action="store_true", help="only refit the saved rows (no tools)")
    args = ap.parse_args()
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    rows = {r["config"]: r for r in old.get("designs", [])}
    if args.refit:  # and the estimates of the saved designs (their rtl.json under --work) with the new factors
        from edgekd.estimate.rtl import estimate_reuse_design

        for row in old.get("designs", []):
            saved = args.work / row["config"] / "rtl.json"
            if saved.is_file():
                row["estimate"] = estimate_reuse_design(json.loads(saved.read_text()), "ecp5")
        old["fit"] = fit(old.get("designs", []))
        RESULTS.write_text(json.dumps(old, indent=1) + "\n")
        print(json.dumps(old["fit"], indent=1))
        return
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
