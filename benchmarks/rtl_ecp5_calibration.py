"""The RTL cost model on Lattice ECP5 (edgekd.estimate.rtl, family ecp5) calibrated on Yosys synth_ecp5 counts.

    nice .venv/bin/python benchmarks/rtl_ecp5_calibration.py [--designs mlp-16-8-5,...] [--builds build/cells_ecp5 ...]
                                                             [--no-synth] [--timeout 600]

What the open flow compares with bitstream.max_utilisation is the self-test top's logic slots as nextpnr
counts them: LUT4 + 2 per CCU2C carry cell (each CCU2C takes both LUT slots of a slice half), Yosys synth_ecp5.
The model predicts the network top's LUT4, CCU2C and FF (linear in alkaid's adder cost of the kernels and in
the stream's register bits, no intercept, least squares of the relative error over the designs' network synthesis), and the self-test
top adds a measured constant (the vectors' block RAM, the comparator, the cycle counter and the UART: the
difference self-test top - network top on the designs where both were synthesised).

Designs (each synthesised as the network top `edgekd_top` with synth_ecp5 under a timeout):
- the test nets of benchmarks/open_bitstream.py (edgekd.rtl.testnets, random power-of-two weights, seed 0):
  mlp-16-8-5, mlp-16-32-5, cnn-9x7x3; their self-test tops' counts are in benchmarks/results/open_bitstream.json;
- new shapes: mlp-32-24-5 (a wider dense layer), conv-8x8x4 (3x3 conv 4 -> 16 + pool + dense),
  conv-10x10x8 (3x3 conv 8 -> 8, 3x3 conv 8 -> 8, dense);
- finished builds of open boards (--builds: their rtl/rtl.json manifest and network synthesis, and the self-test
  top's counts in bitstream/bitstream.json): the cell student (examples/cells_ecp5.yaml) and the zoo's jet tagger
  (`edgekd convert qkeras_jettagging.onnx --board ulx3s-85f`);
- builds or RTL folders with time-multiplexed dense layers (--reuse-builds: rtl.reuse > 1, edgekd.rtl.reuse):
  the network's counts against edgekd.estimate.rtl.estimate_reuse_design (its reuse factors fitted by
  benchmarks/rtl_reuse.py) on top of this calibration (`reuse_fit.errors`).
Prints the table (estimate vs measured, error %) and saves benchmarks/results/rtl_ecp5_calibration.json (rows of
earlier runs are kept; a design run again replaces its row). Never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "rtl_ecp5_calibration"
RESULTS = ROOT / "benchmarks" / "results" / "rtl_ecp5_calibration.json"
OPEN_BITSTREAM = ROOT / "benchmarks" / "results" / "open_bitstream.json"

sys.path.insert(0, str(Path(__file__).resolve().parent))

# name -> (input shape, layers) of edgekd.rtl.testnets; the first three are benchmarks/open_bitstream.py's
DESIGNS = {
    "mlp-16-8-5": ((16,), [{"dense": 8}, {"relu_q": (6, 4)}, {"dense": 5}, {"q": (12, 8)}]),
    "mlp-16-32-5": ((16,), [{"dense": 32}, {"relu_q": (6, 4)}, {"dense": 5}, {"q": (12, 8)}]),
    "cnn-9x7x3": ((9, 7, 3), [{"conv": (3, 3, 1)}, {"pool": (2, 2)}, {"relu_q": (6, 4)}, {"conv": ((2, 1), 2, 1)},
                              {"relu_q": (5, 3)}, {"flatten": True}, {"dense": 3}, {"q": (12, 8)}]),
    "mlp-32-24-5": ((32,), [{"dense": 24}, {"relu_q": (6, 4)}, {"dense": 5}, {"q": (12, 8)}]),
    "conv-8x8x4": ((8, 8, 4), [{"conv": (3, 16, 1)}, {"pool": (2, 2)}, {"relu_q": (6, 4)}, {"flatten": True},
                               {"dense": 3}, {"q": (12, 8)}]),
    "conv-10x10x8": ((10, 10, 8), [{"conv": (3, 8, 1)}, {"relu_q": (6, 4)}, {"conv": (3, 8, 1)}, {"pool": (2, 2)},
                                   {"relu_q": (6, 4)}, {"flatten": True}, {"dense": 4}, {"q": (12, 8)}]),
}
DEFAULT = list(DESIGNS)
KEYS = ("lut4", "ccu2c", "ff")


def _selftest_counts() -> dict[str, dict]:
    """Self-test top counts (synth_ecp5 of edgekd_board_top) by design name from open_bitstream.json."""
    if not OPEN_BITSTREAM.is_file():
        return {}
    doc = json.loads(OPEN_BITSTREAM.read_text())
    return {r["design"]: r["synthesis"] for r in doc.get("designs", []) if r.get("synthesis")}


def measure_testnet(name: str, synth: bool, timeout: float) -> dict:
    from edgekd.estimate.rtl import estimate_rtl
    from edgekd.rtl.generate import generate_rtl
    from edgekd.rtl.synth import synthesize
    from edgekd.rtl.testnets import make_contract

    shape, layers = DESIGNS[name]
    folder = WORK / name
    contract = make_contract(folder / "export", shape, layers, n=16)  # as benchmarks/open_bitstream.py (seed 0)
    t0 = time.perf_counter()
    manifest = generate_rtl(contract, folder / "rtl", family="ecp5")
    row = {"design": name, "kind": "testnet", "spec": {"input": list(shape), "layers": layers},
           "generate_s": round(time.perf_counter() - t0, 2)}
    row.update(_manifest_facts(manifest))
    if synth:
        s = synthesize(folder / "rtl", "ecp5", timeout=timeout)
        row["network"] = {"lut4": s["lut"], "ccu2c": s["carry"], "ff": s["ff"], "dsp": s["dsp"],
                          "yosys_s": s["seconds"], "tool": s["tool"], "command": s["command"]}
    st = _selftest_counts().get(name)
    if st:
        row["selftest"] = {k: st[k] for k in KEYS} | {"source": "benchmarks/results/open_bitstream.json"}
    row["estimate"] = estimate_rtl(manifest, "ecp5")
    return row


def _manifest_facts(m: dict) -> dict:
    from edgekd.estimate.rtl import stream_bits

    return {"alkaid_cost": round(float(m["alkaid_cost"]), 1), "stream_bits": stream_bits(m),
            "latency_cutoff": m.get("latency_cutoff"), "stages": sum(int(s["latency"]) for s in m["stages"]),
            "layers": [{k: v for k, v in layer.items() if k != "nodes"} for layer in m["layers"]]}


def measure_build(folder: Path) -> dict:
    from edgekd.estimate.rtl import estimate_rtl

    m = json.loads((folder / "rtl" / "rtl.json").read_text())
    s = m.get("synthesis")
    if not s or s.get("family") != "ecp5":
        raise SystemExit(f"{folder}: its rtl step has no synth_ecp5 counts (build it for an ECP5 board)")
    row = {"design": f"build:{folder.name}", "kind": "build", "build_folder": str(folder)}
    row.update(_manifest_facts(m))
    row["network"] = {"lut4": s["lut"], "ccu2c": s["carry"], "ff": s["ff"], "dsp": s["dsp"], "yosys_s": s["seconds"],
                      "tool": s["tool"], "command": s["command"]}
    bit = folder / "bitstream" / "bitstream.json"
    if bit.is_file():
        st = json.loads(bit.read_text()).get("synthesis") or {}
        if st:
            row["selftest"] = {k: st[k] for k in KEYS} | {"source": f"{folder}/bitstream/bitstream.json"}
    row["estimate"] = estimate_rtl(m, "ecp5")
    return row


def measure_reuse_build(folder: Path) -> dict:
    """A finished open-board build (FOLDER/rtl/rtl.json) or an RTL folder (FOLDER/rtl.json, e.g. those of
    benchmarks/rtl_reuse.py) whose dense layers are time-multiplexed (rtl.json `reuse`): the network top's
    synth_ecp5 counts against edgekd.estimate.rtl.estimate_reuse_design."""
    from edgekd.estimate.rtl import estimate_reuse_design

    path = folder / "rtl" / "rtl.json" if (folder / "rtl" / "rtl.json").is_file() else folder / "rtl.json"
    m = json.loads(path.read_text())
    s = m.get("synthesis")
    if not s or s.get("family") != "ecp5" or not any(int(r) > 1 for r in (m.get("reuse") or {}).values()):
        raise SystemExit(f"{folder}: not an ECP5 build with reuse kernels and Yosys counts")
    row = {"design": f"reuse:{folder.parent.name + '/' if path.parent == folder else ''}{folder.name}",
           "kind": "reuse build", "build_folder": str(folder),
           "reuse": m["reuse"], "manifest": {k: m[k] for k in ("layers", "stages", "input_kif", "lanes",
                                                              "latency_cutoff", "alkaid_cost", "reuse")}}
    row["network"] = {"lut4": s["lut"], "ccu2c": s["carry"], "ff": s["ff"], "dsp": s["dsp"], "yosys_s": s["seconds"],
                      "tool": s["tool"], "command": s["command"]}
    est = estimate_reuse_design(m, "ecp5")
    row["estimate"] = {k: est[k] for k in ("lut4", "ccu2c", "ff", "dsp", "logic_slots")}
    return row


def reuse_fit(rows: list[dict]) -> dict | None:
    """Every reuse build's error with the package's reuse factors (edgekd.estimate.rtl.REUSE_CALIBRATION, fitted
    by benchmarks/rtl_reuse.py) on top of this calibration's unrolled model: the design-level check the open
    fit search relies on."""
    from edgekd.estimate import rtl

    rs = [r for r in rows if r.get("kind") == "reuse build"]
    if not rs:
        return None
    out: dict = {"designs": [r["design"] for r in rs], "factors": dict(rtl.REUSE_CALIBRATION["ecp5"]),
                 "factors_source": "benchmarks/rtl_reuse.py (benchmarks/results/rtl_reuse.json)", "errors": {}}
    for r in rs:
        est = rtl.estimate_reuse_design(r["manifest"], "ecp5")
        n = r["network"]
        out["errors"][r["design"]] = {k: _pct(est[k], n[k]) for k in ("lut4", "ccu2c", "ff")}
        out["errors"][r["design"]]["logic_slots"] = _pct(est["logic_slots"], n["lut4"] + 2 * n["ccu2c"])
    return out


def fit(rows: list[dict]) -> dict:
    """Relative least squares (no intercept) of the network's LUT4 / CCU2C / FF on (alkaid cost, stream bits), and the
    self-test top's overhead (mean of self-test - network over the designs with both)."""
    import numpy as np

    net = [r for r in rows if r.get("network") and r.get("kind") != "reuse build"]
    a = np.array([[r["alkaid_cost"], r["stream_bits"]] for r in net], dtype=float)
    out: dict = {"designs": [r["design"] for r in net]}
    for key in KEYS:
        y = np.array([r["network"][key] for r in net], dtype=float)
        # relative least squares (each row divided by its count): small and large designs weigh the same
        coef, *_ = np.linalg.lstsq(a / y[:, None], np.ones_like(y), rcond=None)
        out[key] = {"cost": round(float(coef[0]), 4), "bits": round(float(coef[1]), 4)}
    both = [r for r in rows if r.get("network") and r.get("selftest") and r.get("kind") != "reuse build"]
    out["selftest_overhead"] = {k: int(round(float(np.mean([r["selftest"][k] - r["network"][k] for r in both]))))
                                for k in KEYS} if both else None
    out["selftest_overhead_from"] = [r["design"] for r in both]
    return out


def errors(rows: list[dict]) -> list[dict]:
    """Per design: the model (edgekd.estimate.rtl, as calibrated in the package) against Yosys, in % of Yosys."""
    from edgekd.estimate.rtl import SELFTEST_OVERHEAD

    table = []
    for r in rows:
        est = r["estimate"]
        t = {"design": r["design"], "alkaid_cost": r["alkaid_cost"], "stream_bits": r["stream_bits"]}
        if r.get("network"):
            n = r["network"]
            t["network"] = {k: {"estimate": est[k], "yosys": n[k], "error_pct": _pct(est[k], n[k])} for k in KEYS}
            slots = n["lut4"] + 2 * n["ccu2c"]
            t["network"]["logic_slots"] = {"estimate": est["logic_slots"], "yosys": slots,
                                           "error_pct": _pct(est["logic_slots"], slots)}
        if r.get("selftest"):
            s = r["selftest"]
            slots = s["lut4"] + 2 * s["ccu2c"]
            e = est["logic_slots"] + SELFTEST_OVERHEAD["lut4"] + 2 * SELFTEST_OVERHEAD["ccu2c"]
            t["selftest_logic_slots"] = {"estimate": e, "yosys": slots, "error_pct": _pct(e, slots)}
        table.append(t)
    return table


def _pct(est: float, meas: float) -> float | None:
    return round(100.0 * (est - meas) / meas, 1) if meas else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default=",".join(DEFAULT), help="comma-separated; '' for none")
    ap.add_argument("--builds", nargs="*", type=Path, default=[], help="finished builds of open boards")
    ap.add_argument("--reuse-builds", nargs="*", type=Path, default=[],
                    help="finished open-board builds with time-multiplexed dense layers (rtl.reuse)")
    ap.add_argument("--no-synth", action="store_true", help="estimates only (keep earlier Yosys counts)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per Yosys run")
    args = ap.parse_args(argv)
    prev = {}
    if RESULTS.is_file():
        prev = {r["design"]: r for r in json.loads(RESULTS.read_text()).get("rows", [])}
    todo = [d for d in args.designs.split(",") if d]
    for name in todo:
        try:
            row = measure_testnet(name, not args.no_synth, args.timeout)
        except Exception as e:  # noqa: BLE001 - one design's failure must not lose the others' rows
            print(f"{name}: FAILED: {e}", flush=True)
            continue
        if args.no_synth and name in prev and prev[name].get("network"):
            row["network"] = prev[name]["network"]
        row["measured_by"] = "nice .venv/bin/python benchmarks/rtl_ecp5_calibration.py " + " ".join(argv or sys.argv[1:])
        prev[name] = row
    for folder in args.reuse_builds:
        row = measure_reuse_build(folder)
        row["measured_by"] = "nice .venv/bin/python benchmarks/rtl_ecp5_calibration.py " + " ".join(argv or sys.argv[1:])
        prev[row["design"]] = row
    for folder in args.builds:
        row = measure_build(folder)
        row["measured_by"] = "nice .venv/bin/python benchmarks/rtl_ecp5_calibration.py " + " ".join(argv or sys.argv[1:])
        prev[row["design"]] = row
    rows = sorted(prev.values(), key=lambda r: r["design"])
    from edgekd.estimate.rtl import ECP5_CALIBRATION, SELFTEST_OVERHEAD

    for r in rows:  # the estimate of the coefficients in the package now (after a refit: the new ones)
        if r.get("kind") != "reuse build":
            r["estimate"] = _reestimate(r)
    doc = {"benchmark": "rtl_ecp5_calibration",
           "command": "nice .venv/bin/python benchmarks/rtl_ecp5_calibration.py " + " ".join(argv or sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "model": {"ecp5": ECP5_CALIBRATION, "selftest_overhead": SELFTEST_OVERHEAD}, "fit": fit(rows),
           "errors": errors([r for r in rows if r.get("kind") != "reuse build"]), "reuse_fit": reuse_fit(rows),
           "rows": rows}
    table = doc["errors"]
    for key in ("lut4", "ccu2c", "ff", "logic_slots"):
        vals = [abs(t["network"][key]["error_pct"]) for t in table if t.get("network")]
        doc.setdefault("max_abs_error_pct", {})[f"network_{key}"] = max(vals) if vals else None
    vals = [abs(t["selftest_logic_slots"]["error_pct"]) for t in table if t.get("selftest_logic_slots")]
    doc["max_abs_error_pct"]["selftest_logic_slots"] = max(vals) if vals else None
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{'design':24s} {'cost':>8s} {'bits':>6s} | network LUT4 est/yosys  CCU2C est/yosys  FF est/yosys  "
          f"slots err% | self-test slots est/yosys err%")
    for t in table:
        n = t.get("network") or {}
        s = t.get("selftest_logic_slots") or {}

        def f(k: str) -> str:
            return f"{n[k]['estimate']}/{n[k]['yosys']}" if k in n else "-"
        print(f"{t['design']:24s} {t['alkaid_cost']:8.0f} {t['stream_bits']:6d} | {f('lut4'):>12s} {f('ccu2c'):>14s} "
              f"{f('ff'):>12s} {n['logic_slots']['error_pct'] if n else '-':>7} | "
              f"{str(s.get('estimate', '-')) + '/' + str(s.get('yosys', '-')):>14s} {s.get('error_pct', '-')}")
    print("refit:", json.dumps(doc["fit"]))
    if doc["reuse_fit"]:
        print("reuse builds, error % with the package's reuse factors:", json.dumps(doc["reuse_fit"]["errors"]))
    print("max |error| %:", json.dumps(doc["max_abs_error_pct"]))
    print(f"saved {RESULTS}")


def _reestimate(row: dict) -> dict:
    """The package's estimate from the row's stored facts (alkaid cost, stream bits): no generation needed."""
    from edgekd.estimate.rtl import ecp5_counts

    return {**ecp5_counts(row["alkaid_cost"], row["stream_bits"]), "alkaid_cost": row["alkaid_cost"],
            "stream_bits": row["stream_bits"]}


if __name__ == "__main__":
    main()
