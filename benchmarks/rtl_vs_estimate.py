"""The RTL backend measured (Verilator cycles, Yosys counts) against its cost model (edgekd.estimate.rtl).

    .venv/bin/python benchmarks/rtl_vs_estimate.py [--designs tiny_mlp,tiny_cnn,jet,cell_arch] [--family xcu]
                                                   [--n 200] [--out benchmarks/results/rtl_vs_estimate.json]

Designs:
- tiny_mlp / tiny_cnn: the test nets of tests/rtl (random 8-bit weights);
- jet: the public QONNX zoo's 16-64-32-32-5 jet tagger (/work/zoo/qkeras_jettagging.onnx or $EDGEKD_ZOO),
  through edgekd's bring-your-own export (input on the default fixed<16,6> grid, softmax left to the host);
- cell_arch: the demo's cell student architecture (examples/cells.yaml: 48x48 grey in 2x2 blocks = 24x24x4,
  Conv 3x3 16 + MaxPool 2 + ReLU/Quant 8 bit, Conv 3x3 16 + MaxPool 2, Flatten 256, Dense 2) with random
  8-bit weights (the RTL is the same for trained weights; LUTs differ with the weights' bit patterns).
Per design: generation, Verilator build and run, Yosys wall times; bit-exactness vs QONNX on n inputs; latency
and interval in cycles; LUT/FF/carry/DSP; and the cost model's cycles and LUT/FF. Prints a table, saves JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from edgekd.io import write_json

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "rtl_vs_estimate"

TINY_MLP = [{"dense": 8}, {"relu_q": (6, 4)}, {"dense": 3}, {"q": (12, 8)}]
TINY_CNN = [{"conv": (3, 3, 1)}, {"pool": (2, 2)}, {"relu_q": (6, 4)}, {"conv": ((2, 1), 2, 1)}, {"relu_q": (5, 3)},
            {"flatten": True}, {"dense": 3}, {"q": (12, 8)}]
CELL_ARCH = [{"conv": (3, 16, 1)}, {"pool": (2, 2)}, {"relu_q": (8, 7)}, {"conv": (3, 16, 1)}, {"pool": (2, 2)},
             {"relu_q": (8, 8)}, {"flatten": True}, {"dense": 2}, {"q": (16, 10)}]


def contract_for(name: str, n: int):
    from edgekd.contract import HardwareContract
    from edgekd.rtl.testnets import make_contract

    folder = WORK / name / "export"
    if (folder / "contract.json").exists():
        return HardwareContract.load(folder)
    if name == "tiny_mlp":
        return make_contract(folder, (6,), TINY_MLP, n=min(n, 64))
    if name == "tiny_cnn":
        return make_contract(folder, (9, 7, 3), TINY_CNN, n=min(n, 64), seed=3)
    if name == "cell_arch":
        return make_contract(folder, (24, 24, 4), CELL_ARCH, n=n, seed=11)
    if name == "jet":
        from edgekd.config import parse_config
        from edgekd.pipeline import run_build

        zoo = Path(os.environ.get("EDGEKD_ZOO", "/work/zoo")) / "qkeras_jettagging.onnx"
        if not zoo.exists():
            raise SystemExit(f"{zoo}: the zoo's jet tagger is not here (set EDGEKD_ZOO)")
        cfg = parse_config({"name": "jet", "student": {"qonnx": str(zoo), "allow_inexact": True},
                            "hls": {"board": "zcu104"}})
        run_build(cfg, WORK / name, to_step="export")
        return HardwareContract.load(folder)
    raise SystemExit(f"unknown design {name}")


def measure(name: str, family: str, n: int, synth: bool) -> dict:
    from edgekd.estimate.rtl import estimate_rtl
    from edgekd.rtl.generate import generate_rtl
    from edgekd.rtl.sim import run_sim
    from edgekd.rtl.synth import synthesize

    contract = contract_for(name, n)
    out = WORK / name / "rtl"
    t0 = time.perf_counter()
    manifest = generate_rtl(contract, out, family=family)
    gen_s = time.perf_counter() - t0
    sim = run_sim(out, manifest)
    est = estimate_rtl(manifest)
    row = {"design": name, "family": family, "n": sim["n"], "exact": sim["exact"],
           "latency_cycles": sim["latency_cycles"], "interval_cycles": sim["interval_cycles"],
           "beats_per_image": manifest["beats_per_image"], "alkaid_cost": manifest["alkaid_cost"],
           "estimate": est,
           "manifest": {k: manifest[k] for k in ("layers", "stages", "input_kif", "alkaid_cost", "family")},
           "seconds": {"generate": round(gen_s, 1), "verilator_build": sim["build_seconds"],
                                        "simulate": sim["run_seconds"]}}
    if synth:
        s = synthesize(out, family)
        row["synthesis"] = {k: s[k] for k in ("lut", "ff", "carry", "dsp", "bram_18k", "lutram", "tool")}
        row["seconds"]["yosys"] = s["seconds"]
        row["error_pct"] = {k: round(100 * (est[k] - s[k]) / s[k], 1) for k in ("lut", "ff") if s[k]}
    row["error_pct"] = {**row.get("error_pct", {}),
                        "latency": round(100 * (est["latency_cycles"] - sim["latency_cycles"])
                                         / sim["latency_cycles"], 1)}
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default="tiny_mlp,tiny_cnn,jet,cell_arch")
    ap.add_argument("--family", default="xcu")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rtl_vs_estimate.json")
    args = ap.parse_args(argv)
    rows = []
    prev = {}
    if args.out.exists():
        from edgekd.io import read_json

        prev = {r["design"]: r for r in read_json(args.out).get("rows", [])}
    for name in args.designs.split(","):
        row = measure(name, args.family, args.n, not args.no_synth)
        rows.append(row)
        prev[name] = row
        syn = row.get("synthesis") or {}
        print(f"{name:10s} exact {row['exact']:.3f} (n={row['n']})  latency {row['latency_cycles']} "
              f"(est {row['estimate']['latency_cycles']})  interval {row['interval_cycles']} "
              f"(est {row['estimate']['interval_cycles']})  LUT {syn.get('lut')} (est {row['estimate']['lut']})  "
              f"FF {syn.get('ff')} (est {row['estimate']['ff']})  times {row['seconds']}", flush=True)
        write_json(args.out, {"command": " ".join(["benchmarks/rtl_vs_estimate.py", *(argv or sys.argv[1:])]),
                              "rows": list(prev.values())})
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
