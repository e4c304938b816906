"""The RTL backend measured (Verilator cycles, Yosys counts) against its cost model (edgekd.estimate.rtl).

    .venv/bin/python benchmarks/rtl_vs_estimate.py [--designs tiny_mlp,tiny_cnn,jet,cell_arch,cells,audio,audio_tiny]
                            [--family xcu (default xcu; the audio designs: their board's)] [--n 200] [--no-synth] [--synth-timeout 1800]
                            [--out benchmarks/results/rtl_vs_estimate.json]

Rows of earlier runs in the JSON are kept (a run with --designs X replaces only X's row).

Designs:
- tiny_mlp / tiny_cnn: small nets like those of tests/rtl (random 8-bit weights; tiny_cnn with valid padding);
- jet: the public QONNX zoo's 16-64-32-32-5 jet tagger (/work/zoo/qkeras_jettagging.onnx or $EDGEKD_ZOO),
  through edgekd's bring-your-own export (input on the default fixed<16,6> grid, softmax left to the host);
- cell_arch: the demo's cell student architecture (examples/cells.yaml: 48x48 grey in 2x2 blocks = 24x24x4,
  Conv 3x3 16 + MaxPool 2 + ReLU/Quant 8 bit, Conv 3x3 16 + MaxPool 2, Flatten 256, Dense 2) with random
  8-bit weights (the RTL is the same for trained weights; LUTs differ with the weights' bit patterns), two
  blocks per clock through the first conv and pool (rtl.lanes 2);
- cells: the demo itself (examples/cells.yaml, trained in build/cells) through the build's rtl step: the
  sample and all 2,000 test images bit-exact, the camera top at the frame grabber's 8 pixels per clock
  (framing, 2x2 blocks, decision word) with its first-beat-to-decision latency and interval, Yosys for the
  XCKU035 (synth_xilinx -family xcu);
- audio: the audio task's hardware student (examples/wav2small.yaml, trained to its export in build/wav2small;
  or $EDGEKD_AUDIO_EXPORT): 249 log-mel frames x 26 bands, seven 3x3 'same'-padded convs (padded windows with
  flush beats and the top's frame gap), two 2x2 pools, the (T, 1) time-average conv, the dense head; synthesised
  for its board's family (ZCU104: synth_xilinx -family xcup) unless --family is given;
- audio_tiny: the same student as the test suite's tiny audio build exports it (tests/e2e/test_audio_build.py:
  width 4, 0.25 s = 124 frames; pynq-z2 -> xc7), trained to its export in build/rtl_vs_estimate/audio_tiny.
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


# tests/e2e/test_audio_build.py's tiny audio build (the wav2small_hw student at width 4 on 0.25 s windows): the
# test's own config, so the benchmark measures what the suite builds
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from test_audio_build import TINY_AUDIO  # noqa: E402

BOARD_FAMILY = {"audio": "examples/wav2small.yaml", "audio_tiny": TINY_AUDIO}  # synthesised for their board's family


def board_family(name: str) -> str | None:
    """The Yosys family of a design's board (the rtl step's rtl.family 'auto'), None: the --family default."""
    import yaml

    from edgekd.hw import load_board
    from edgekd.steps.rtl import family_for_part

    src = BOARD_FAMILY.get(name)
    if src is None:
        return None
    raw = src if isinstance(src, dict) else yaml.safe_load((ROOT / src).read_text())
    hls = raw.get("hls", {})
    return family_for_part(hls.get("part") or load_board(hls["board"]).part)


LANES = {"cell_arch": 2}  # the cell student's 2x2 blocks at 8 pixels per clock: two blocks per clock


def contract_for(name: str, n: int):
    from edgekd.contract import HardwareContract
    from edgekd.rtl.testnets import make_contract

    folder = WORK / name / "export"
    if name != "audio" and (folder / "contract.json").exists():
        return HardwareContract.load(folder)
    if name == "tiny_mlp":
        return make_contract(folder, (6,), TINY_MLP, n=min(n, 64))
    if name == "tiny_cnn":
        return make_contract(folder, (9, 7, 3), TINY_CNN, n=min(n, 64), seed=3)
    if name == "cell_arch":
        return make_contract(folder, (24, 24, 4), CELL_ARCH, n=n, seed=11)
    if name == "audio":  # the audio task's hardware student (wav2small_hw): $EDGEKD_AUDIO_EXPORT, else the
        # demo's build (examples/wav2small.yaml, trained to its export step in build/wav2small)
        import yaml

        from edgekd.config import parse_config
        from edgekd.pipeline import run_build

        given = os.environ.get("EDGEKD_AUDIO_EXPORT")
        if given:
            return HardwareContract.load(Path(given))
        folder = ROOT / "build" / "wav2small"
        if not (folder / "export" / "contract.json").exists():
            cfg = parse_config(yaml.safe_load((ROOT / "examples" / "wav2small.yaml").read_text()))
            run_build(cfg, folder, to_step="export")
        return HardwareContract.load(folder / "export")
    if name == "audio_tiny":
        from edgekd.config import parse_config
        from edgekd.pipeline import run_build

        run_build(parse_config(TINY_AUDIO), WORK / name, to_step="export")
        return HardwareContract.load(folder)
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


def measure_build(name: str, config: str, synth: bool) -> dict:
    """A trained build through the rtl step (build/<name>, the config with rtl.enabled): generation, Verilator on
    the sample and the whole test split, the camera top on pixel-stream boards, Yosys."""
    import yaml

    from edgekd.config import parse_config
    from edgekd.estimate.rtl import estimate_rtl
    from edgekd.io import read_json
    from edgekd.pipeline import run_build

    raw = yaml.safe_load((ROOT / config).read_text())
    raw["rtl"] = {**raw.get("rtl", {}), "enabled": True, "synthesize": synth}
    cfg = parse_config(raw)
    folder = ROOT / "build" / name
    t0 = time.perf_counter()
    run_build(cfg, folder, to_step="rtl")
    wall = time.perf_counter() - t0
    m = read_json(folder / "rtl" / "rtl.json")
    sim, est = m["simulation"], m.get("estimate") or estimate_rtl(m)
    row = {"design": name, "config": config, "family": m["family"], "n": sim["n"], "exact": sim["exact"],
           "test_split": sim.get("test_split"), "latency_cycles": sim["latency_cycles"],
           "interval_cycles": sim["interval_cycles"], "beats_per_image": m["beats_per_image"], "lanes": m.get("lanes", 1),
           "alkaid_cost": m["alkaid_cost"], "estimate": est,
           "manifest": {**{k: m[k] for k in ("layers", "stages", "input_kif", "alkaid_cost", "family", "lanes")},
                        **({"pixel_top": {k: v for k, v in m["pixel_top"].items() if k != "simulation"}}
                           if m.get("pixel_top") else {})},
           "seconds": {"generate": m.get("generate_seconds"), "verilator_build": sim["build_seconds"],
                       "simulate": sim["run_seconds"], "rtl_step": round(wall, 1)}}
    top = m.get("pixel_top")
    if top and top.get("simulation"):
        ps = top["simulation"]
        row["pixel_top"] = {"pixels_per_clock": top["frame"]["pixels_per_clock"],
                            "beats_per_region": top["beats_per_image"], "decisions_exact": ps["exact"], "n": ps["n"],
                            "test_split": ps.get("test_split"), "latency_cycles": ps["latency_cycles"],
                            "interval_cycles": ps["interval_cycles"], "estimate": est.get("pixel_top"),
                            "verilator_build_seconds": ps["build_seconds"], "simulate_seconds": ps["run_seconds"]}
    if m.get("synthesis"):
        s = m["synthesis"]
        row["synthesis"] = {k: s[k] for k in ("lut", "ff", "carry", "dsp", "bram_18k", "lutram", "tool")}
        row["seconds"]["yosys"] = s["seconds"]
        row["error_pct"] = {k: round(100 * (est[k] - s[k]) / s[k], 1) for k in ("lut", "ff") if s[k]}
    est_lat = (est.get("pixel_top") or {}).get("network_latency_cycles", est["latency_cycles"])
    row["error_pct"] = {**row.get("error_pct", {}),
                        "latency": round(100 * (est_lat - sim["latency_cycles"]) / sim["latency_cycles"], 1)}
    return row


BUILDS = {"cells": "examples/cells.yaml"}


def measure(name: str, family: str, n: int, synth: bool, synth_timeout: float = 1800) -> dict:
    if name in BUILDS:
        return measure_build(name, BUILDS[name], synth)
    from edgekd.estimate.rtl import estimate_rtl
    from edgekd.rtl.generate import generate_rtl
    from edgekd.rtl.sim import run_sim
    from edgekd.rtl.synth import synthesize

    from edgekd.rtl import RTLUnsupportedError

    family = family or board_family(name) or "xcu"
    contract = contract_for(name, n)
    out = WORK / name / "rtl"
    t0 = time.perf_counter()
    try:
        # the audio sample's windows are 6,474 pixels each: --n of them (Verilator at -O0 runs ~1.5k cycles/s there)
        manifest = generate_rtl(contract, out, family=family, lanes=LANES.get(name, 1),
                                n_vectors=n if name.startswith("audio") else None)
    except RTLUnsupportedError as e:  # a clear per-layer refusal is a result too
        import onnx

        nodes = onnx.load(str(contract.qonnx_path)).graph.node
        padded = [n.name for n in nodes if n.op_type == "Conv"
                  and any(v for a in n.attribute if a.name == "pads" for v in a.ints)]
        return {"design": name, "family": family, "refused": str(e), "qonnx": str(contract.qonnx_path),
                "ops": [f"{n.name}:{n.op_type}" for n in nodes if n.op_type != "Quant"], "padded_convs": padded}
    gen_s = time.perf_counter() - t0
    sim = run_sim(out, manifest)
    est = estimate_rtl(manifest)
    row = {"design": name, "family": family, "n": sim["n"], "exact": sim["exact"],
           "latency_cycles": sim["latency_cycles"], "interval_cycles": sim["interval_cycles"],
           "beats_per_image": manifest["beats_per_image"], "alkaid_cost": manifest["alkaid_cost"],
           "frame_gap_cycles": manifest.get("frame_gap_cycles", 0), "qonnx": str(contract.qonnx_path),
           "estimate": est,
           "manifest": {k: manifest[k] for k in ("layers", "stages", "input_kif", "alkaid_cost", "family", "lanes")},
           "seconds": {"generate": round(gen_s, 1), "verilator_build": sim["build_seconds"],
                                        "simulate": sim["run_seconds"]}}
    if synth:
        s = synthesize(out, family, timeout=synth_timeout)
        row["synthesis"] = {k: s[k] for k in ("lut", "ff", "carry", "dsp", "bram_18k", "lutram", "tool")}
        row["seconds"]["yosys"] = s["seconds"]
        row["error_pct"] = {k: round(100 * (est[k] - s[k]) / s[k], 1) for k in ("lut", "ff") if s[k]}
    row["error_pct"] = {**row.get("error_pct", {}),
                        "latency": round(100 * (est["latency_cycles"] - sim["latency_cycles"])
                                         / sim["latency_cycles"], 1)}
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default="tiny_mlp,tiny_cnn,jet,cell_arch,cells,audio,audio_tiny")
    ap.add_argument("--family", default=None, help="Yosys family (default: xcu; the audio designs: their board's)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--synth-timeout", type=float, default=1800,
                    help="seconds Yosys may take per design (the full audio student needs more than 1,800)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rtl_vs_estimate.json")
    args = ap.parse_args(argv)
    rows = []
    prev = {}
    if args.out.exists():
        from edgekd.io import read_json

        prev = {r["design"]: r for r in read_json(args.out).get("rows", [])}
    for name in args.designs.split(","):
        try:
            row = measure(name, args.family, args.n, not args.no_synth, args.synth_timeout)
        except Exception as e:  # noqa: BLE001 - one design's failure must not lose the others' rows
            import traceback

            traceback.print_exc()
            print(f"{name:10s} FAILED: {e}", flush=True)
            continue
        rows.append(row)
        prev[name] = row
        if "refused" in row:
            print(f"{name:10s} refused: {row['refused']}", flush=True)
            write_json(args.out, {"command": " ".join(["benchmarks/rtl_vs_estimate.py", *(argv or sys.argv[1:])]),
                                  "rows": list(prev.values())})
            continue
        syn = row.get("synthesis") or {}
        est_lat = (row["estimate"].get("pixel_top") or {}).get("network_latency_cycles",
                                                              row["estimate"]["latency_cycles"])
        print(f"{name:10s} exact {row['exact']:.3f} (n={row['n']}, test split {row.get('test_split')})  latency "
              f"{row['latency_cycles']} (est {est_lat})  interval {row['interval_cycles']} "
              f"(est {row['estimate']['interval_cycles']})  LUT {syn.get('lut')} (est {row['estimate']['lut']})  "
              f"FF {syn.get('ff')} (est {row['estimate']['ff']})  times {row['seconds']}", flush=True)
        if row.get("pixel_top"):
            pt = row["pixel_top"]
            print(f"{'':10s} camera top at {pt['pixels_per_clock']} px/clock: decisions exact {pt['decisions_exact']:.3f} "
                  f"(n={pt['n']}{', test split ' + str(pt['test_split']) if pt.get('test_split') else ''})  first beat -> "
                  f"decision {pt['latency_cycles']} (est {(pt.get('estimate') or {}).get('latency_cycles')})  interval "
                  f"{pt['interval_cycles']} ({pt['beats_per_region']} beats per region)", flush=True)
        write_json(args.out, {"command": " ".join(["benchmarks/rtl_vs_estimate.py", *(argv or sys.argv[1:])]),
                              "rows": list(prev.values()), "fit": fit(list(prev.values()))})
    doc_fit = fit(list(prev.values()))
    for fam, f in doc_fit.items():
        print(f"fit {fam}: {f}")
    print(f"saved {args.out}")


def fit(rows: list[dict]) -> dict:
    """Least squares of Yosys LUT and FF on (alkaid cost, stream bits) per family (no intercept): the
    coefficients of edgekd.estimate.rtl.CALIBRATION and the fit's error per design."""
    import numpy as np

    out = {}
    for fam in sorted({r.get("family") for r in rows if r.get("synthesis")}):
        rs = [r for r in rows if r.get("family") == fam and r.get("synthesis")]
        if len(rs) < 2:
            continue
        a = np.array([[r["estimate"]["alkaid_cost"], r["estimate"]["stream_bits"]] for r in rs], dtype=float)
        res = {"designs": [r["design"] for r in rs]}
        for key in ("lut", "ff"):
            y = np.array([r["synthesis"][key] for r in rs], dtype=float)
            coef, *_ = np.linalg.lstsq(a, y, rcond=None)
            pred = a @ coef
            res[key] = {"cost": round(float(coef[0]), 3), "bits": round(float(coef[1]), 3),
                        "error_pct": {r["design"]: round(float(100 * (p - t) / t), 1) for r, p, t in zip(rs, pred, y)},
                        "max_abs_error_pct": round(float(np.max(np.abs(100 * (pred - y) / y))), 1)}
        out[fam] = res
    return out


if __name__ == "__main__":
    main()
