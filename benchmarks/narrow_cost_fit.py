"""Fit the LUT / FF cost of narrow (<= 8-bit) constant products and their adder tree (issue 14).

    .venv/bin/python benchmarks/narrow_cost_fit.py

Model (edgekd/estimate/model.py, docs/latency_model.md "Narrow products"), per non-zero product of an a-bit
input by a w-bit constant weight built from LUTs:

    LUT = LUT_PER_DIGIT_BIT * D(w) * a + LUT_PER_WEIGHT_BIT * w + LUT_PER_PRODUCT_OFFSET
    FF  = FF_PER_PRODUCT_BIT * (a + w)                       # pipeline registers

Each non-zero CSD digit of the weight adds one a-bit term to the sum (in the product's shift-and-add or in the
tree), so the LUTs grow with D(w) * a; the sums grow by about w bits over the input; the (negative) offset is
what low bits that pass through shifted terms save. The estimator books LUT_PER_DIGIT_BIT * (D(w) - 1) * a to
the product (`_multipliers`) and the rest to the product's adder in the tree (`_tree_lut`).

D(w) is the expected non-zero canonical-signed-digit count of a non-zero trained weight (`CSD_DIGITS`). The two
LUT constants are a relative least-squares fit on the Yosys rows (tests/data/narrow_arithmetic_calibration.json,
Laplace-shaped weights, CSD form). The FF constant cannot come from Yosys (its registers are the generator's
choice): it is the median over the 8-bit LeNet-5 Dense/Conv processes synthesised by Vitis HLS 2023.2
(tests/data/hls4ml_synthesis_baselines.json, `scope: layer`) of (FF - window/input buffer - output register)
/ (products x (a + w)). Prints the constants and the fit's error; the estimator keeps rounded values.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from edgekd.io import read_json
from edgekd.estimate import CSD_DIGITS, LayerSpec

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    rows = [r for r in read_json(ROOT / "tests" / "data" / "narrow_arithmetic_calibration.json")["rows"]
            if r.get("form", "csd") == "csd" and r.get("weight_distribution", "laplace") == "laplace"]
    X, y = [], []
    for r in rows:
        w, a, nnz = r["weight_bits"], r["input_bits"], r["n_nonzero"]
        X.append([nnz * CSD_DIGITS[w] * a, nnz * w, nnz])
        y.append(r["measured"]["lut"])
    X, y = np.asarray(X, float), np.asarray(y, float)
    coef, *_ = np.linalg.lstsq(X / y[:, None], np.ones_like(y), rcond=None)
    err = np.abs(X @ coef - y) / y * 100
    print(f"LUT fit over {len(rows)} Yosys rows: LUT_PER_DIGIT_BIT = {coef[0]:.3f}, LUT_PER_WEIGHT_BIT = {coef[1]:.3f}, "
          f"LUT_PER_PRODUCT_OFFSET = {coef[2]:.3f}; "
          f"|err| median {np.median(err):.1f}%, worst {err.max():.1f}%")
    by_size: dict[str, list[float]] = {}
    for r, e in zip(rows, err):
        by_size.setdefault(f"{r['n_in']}x{r['n_out']}", []).append(float(e))
    for k, v in by_size.items():
        print(f"  {k:8s} median |err| {statistics.median(v):.1f}% over {len(v)} rows")
    # FF: Vitis HLS per-layer rows of 8-bit products
    per = []
    for r in read_json(ROOT / "tests" / "data" / "hls4ml_synthesis_baselines.json")["rows"]:
        if r.get("scope") != "layer":
            continue
        s = LayerSpec.from_dict(r["layers"][0])
        buf = s.kernel_inputs * s.input_bits + s.n_filt * s.result_bits
        per.append((r["measured"]["ff"] - buf) / (s.weights_nonzero * (s.weight_bits + s.input_bits)))
        print(f"  {r['id']:48s} FF per product bit {per[-1]:.3f}")
    print(f"FF_PER_PRODUCT_BIT = median {statistics.median(per):.3f} over {len(per)} Vitis HLS layers")


if __name__ == "__main__":
    main()
