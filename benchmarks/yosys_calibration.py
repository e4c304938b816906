"""Open-synthesis calibration of narrow (2-8 bit) constant-weight matrix-vector products (issue 14).

    nice -n 10 .venv/bin/python benchmarks/yosys_calibration.py [--grid quick|full] [--seed 0]

hls4ml's Latency strategy at reuse factor 1 builds a Dense / Conv kernel as fully unrolled products of the
input vector with CONSTANT weights, then an adder tree per output, pipelined at II 1. Vivado/Vitis HLS turn
a product by a constant of <= ~10 bits into LUT logic (shift-and-add after constant propagation), not a
DSP. This script writes Verilog of that arithmetic (N b-bit inputs, signed or unsigned (post-ReLU), an
N x M matrix of w-bit constant weights drawn like trained weights: many small values, some zeros), runs
Yosys `synth_xilinx -family xcu -nodsp -top mvm; flatten` (UltraScale, the XCKU035's family) on it, and
records LUT (LUT1..LUT6), carry, FF and DSP counts with the weight statistics the cost model can use.
The design is flattened AFTER mapping, not before (`-flatten`): flattened first, Yosys' `alumacc` merges
every adder of a dot product, `(* keep *)` or not, into one carry-save `$macc` block mapped to LUT6/MUXF
logic (3.3x the LUTs of the adder form on a 16x4 8-bit product; Vivado keeps each HLS adder as a carry
chain). Each adder is therefore one `addsub` instance, synthesised on its own.

Verilog form (`--form`):
- `csd` (default, what HLS builds): each non-zero weight is a canonical-signed-digit shift-and-add of its
  input (a power of two is a wire), products are summed by a balanced tree of two-input adders sized to
  their operands' exact value ranges (bits below an operand's shift pass through as wires; a negative
  weight's sign becomes a subtraction in the tree).
- `mul`: the behavioural `x * W` sum (Yosys chooses the structure); used only to check the other form.

Pipeline registers follow the latency model (docs/latency_model.md): inputs registered, one register stage
after the products, then one every ADDER_LEVELS_PER_CYCLE (4) tree levels and at the output, so the FF
count is the one a II=1 pipeline of that depth needs. Outputs keep the full accumulator width (no
truncation; a narrower result type would let synthesis drop the upper adder bits).

Rows go to tests/data/narrow_arithmetic_calibration.json, each with its source (Yosys version and command,
this generator, seed); Verilog is written under build/yosys_calibration/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "narrow_arithmetic_calibration.json"
WORK = ROOT / "build" / "yosys_calibration"
GENERATOR = "benchmarks/yosys_calibration.py"
YOSYS_SCRIPT = "synth_xilinx -family xcu -nodsp -top mvm; flatten"
ADDER_LEVELS_PER_CYCLE = 4


# --- weights ---------------------------------------------------------------------------------------------

def trained_like_weights(n_in: int, n_out: int, wbits: int, rng: np.random.Generator,
                         dist: str = "laplace") -> np.ndarray:
    """Signed w-bit integer weights shaped like a quantization-aware-trained layer's.

    `laplace`: Laplace(0, 1) samples on a power-of-two grid where 4 scale units map to full scale
    (2^(w-1)), rounded and clipped: many small values, zeros where |x| < half a step (63 % at 2 bits,
    22 % at 4 bits, 1.5 % at 8 bits), ~2 % at the rails. `uniform`: every code equally likely (a
    pessimistic bound with few zeros and many non-zero digits).
    """
    lo, hi = -(1 << (wbits - 1)), (1 << (wbits - 1)) - 1
    if dist == "uniform":
        return rng.integers(lo, hi + 1, size=(n_in, n_out))
    x = rng.laplace(0.0, 1.0, size=(n_in, n_out))
    return np.clip(np.round(x * (1 << (wbits - 1)) / 4.0), lo, hi).astype(np.int64)


def csd_digits(v: int) -> list[tuple[int, int]]:
    """Canonical signed digits of v as (shift, +1/-1), least significant first."""
    out, k = [], 0
    while v != 0:
        if v & 1:
            d = 2 - (v & 3)  # +1 if v = 1 mod 4, -1 if v = 3 mod 4
            out.append((k, d))
            v -= d
        v >>= 1
        k += 1
    return out


def weight_stats(W: np.ndarray) -> dict[str, float]:
    nz = W[W != 0]
    csd = [len(csd_digits(int(v))) for v in nz.ravel()]
    pop = [bin(abs(int(v))).count("1") for v in nz.ravel()]
    return {"n_weights": int(W.size), "n_nonzero": int(nz.size),
            "zero_fraction": round(1 - nz.size / W.size, 4),
            "mean_csd_digits_nonzero": round(float(np.mean(csd)) if csd else 0.0, 4),
            "mean_popcount_nonzero": round(float(np.mean(pop)) if pop else 0.0, 4),
            "n_pow2_nonzero": int(sum(1 for c in csd if c == 1))}


# --- Verilog ---------------------------------------------------------------------------------------------

def _bits_for(lo: int, hi: int) -> int:
    """Signed two's-complement width holding [lo, hi]."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


@dataclass(frozen=True)
class _Term:
    """A signal `name` whose raw value lies in [lo, hi]; its arithmetic value is (-1)^neg * raw * 2^shift."""

    name: str
    lo: int
    hi: int
    shift: int = 0
    neg: bool = False

    @property
    def width(self) -> int:
        return _bits_for(self.lo, self.hi)


ADDSUB = """module addsub #(parameter WA = 1, WB = 1, WO = 1, SUB = 0)
  (input signed [WA-1:0] a, input signed [WB-1:0] b, output signed [WO-1:0] o);
  // one HLS add/sub operation: Vivado builds it as a carry-chain adder and never merges two of them
  generate if (SUB) begin : g_sub assign o = a - b; end else begin : g_add assign o = a + b; end endgenerate
endmodule
"""


class _Net:
    """Accumulates Verilog of one module: adders (addsub instances), wires and pipeline registers."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.regs: list[str] = []
        self.n = 0
        self.adder_bits = 0  # sum of adder output widths (the LUT count a carry-chain mapping needs)
        self.n_adders = 0

    def new(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def addsub(self, a: str, wa: int, b: str, wb: int, sub: bool, lo: int, hi: int) -> str:
        name = self.new("s")
        wo = _bits_for(lo, hi)
        self.lines.append(f"  wire signed [{wo - 1}:0] {name};")
        self.lines.append(f"  addsub #(.WA({wa}), .WB({wb}), .WO({wo}), .SUB({int(sub)})) u{name} "
                          f"(.a({a}), .b({b}), .o({name}));")
        self.adder_bits += wo
        self.n_adders += 1
        return name

    def wire(self, expr: str, width: int) -> str:
        name = self.new("w")
        self.lines.append(f"  wire signed [{width - 1}:0] {name} = {expr};")
        return name

    def reg(self, t: _Term) -> _Term:
        name = self.new("r")
        self.lines.append(f"  reg signed [{t.width - 1}:0] {name};")
        self.regs.append(f"    {name} <= {t.name};")
        return _Term(name, t.lo, t.hi, t.shift, t.neg)


def _add(net: _Net, a: _Term, b: _Term) -> _Term:
    """One two-input adder: the operand with the lower shift comes first and its low bits below the other's
    shift pass through as wires (a shifted input costs no LUTs there); a negated operand makes it a
    subtraction; two negated operands add and stay negated (HLS folds a negative constant into the tree)."""
    f, t = (a, b) if (a.shift, a.neg) <= (b.shift, b.neg) else (b, a)
    sub = f.neg != t.neg
    d = t.shift - f.shift
    flo, fhi = f.lo >> d, f.hi >> d
    hlo, hhi = (flo - t.hi, fhi - t.lo) if sub else (flo + t.lo, fhi + t.hi)
    fexpr = f.name
    if d:
        ext = net.wire(f.name, max(f.width, d + 1))
        fexpr = f"({ext} >>> {d})"
    hi_name = net.addsub(fexpr, _bits_for(flo, fhi), t.name, t.width, sub, hlo, hhi)
    lo, hi = ((f.lo - (t.hi << d), f.hi - (t.lo << d)) if sub else (f.lo + (t.lo << d), f.hi + (t.hi << d)))
    if d:
        name = net.wire(f"{{{hi_name}, {ext}[{d - 1}:0]}}", _bits_for(hlo, hhi) + d)
    else:
        name = hi_name
    return _Term(name, lo, hi, f.shift, f.neg)


def _const_product(x: _Term, v: int, net: _Net) -> _Term | None:
    """x * v as canonical-signed-digit shift-and-add (what HLS/Vivado build for a constant multiplier); a
    negative weight's sign is carried into the adder tree instead of costing a negation; None for v == 0."""
    if v == 0:
        return None
    terms = [_Term(x.name, x.lo, x.hi, shift, d < 0) for shift, d in csd_digits(abs(v))]
    acc = terms[0]
    for t in terms[1:]:
        acc = _add(net, acc, t)
    return _Term(acc.name, acc.lo, acc.hi, acc.shift, acc.neg != (v < 0))


def _tree(net: _Net, items: list[_Term]) -> tuple[_Term, int]:
    """Balanced two-input adder tree with a register stage every ADDER_LEVELS_PER_CYCLE levels; a negated
    root costs one negation (0 - x)."""
    level = 0
    items = sorted(items, key=lambda t: t.neg)  # pair positive with negated terms where possible
    if len(items) > 2:
        items = [items[i // 2] if i % 2 == 0 else items[-(i // 2) - 1] for i in range(len(items))]
    while len(items) > 1:
        nxt = [_add(net, items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
        level += 1
        if level % ADDER_LEVELS_PER_CYCLE == 0 and len(items) > 1:
            items = [net.reg(t) for t in items]
    root = items[0]
    if root.neg:
        name = net.addsub("1'b0", 1, root.name, root.width, True, -root.hi, -root.lo)
        root = _Term(name, -root.hi, -root.lo, root.shift, False)
    return root, level


def matvec_verilog(W: np.ndarray, bbits: int, signed_in: bool, form: str = "csd") -> tuple[str, dict[str, int]]:
    """Verilog of y = W^T x (module `mvm`) and its adder statistics."""
    n_in, n_out = W.shape
    xlo, xhi = (-(1 << (bbits - 1)), (1 << (bbits - 1)) - 1) if signed_in else (0, (1 << bbits) - 1)
    net = _Net()
    xs = []
    for i in range(n_in):
        sl = f"x_in[{i * bbits + bbits - 1}:{i * bbits}]"
        src = f"$signed({sl})" if signed_in else f"$signed({{1'b0, {sl}}})"
        net.lines.append(f"  reg signed [{_bits_for(xlo, xhi) - 1}:0] x{i};")
        net.regs.append(f"    x{i} <= {src};")
        xs.append(_Term(f"x{i}", xlo, xhi))
    outs: list[_Term] = []
    for j in range(n_out):
        col = [int(v) for v in W[:, j]]
        if form == "mul":
            terms = [f"({xs[i].name} * {v})" for i, v in enumerate(col) if v]
            lo = sum(min(v * xlo, v * xhi) for v in col)
            hi = sum(max(v * xlo, v * xhi) for v in col)
            outs.append(net.reg(_Term(net.wire(" + ".join(terms) if terms else "0", _bits_for(lo, hi)), lo, hi)))
            continue
        prods = [p for p in (_const_product(xs[i], v, net) for i, v in enumerate(col)) if p is not None]
        if not prods:
            outs.append(net.reg(_Term(net.wire("0", 1), 0, 0)))
            continue
        prods = [net.reg(p) for p in prods]  # the multiply stage register
        s, _ = _tree(net, prods)
        outs.append(net.reg(s))
    widths = [o.width for o in outs]
    total = sum(widths)
    assigns, off = [], 0
    for name, w in zip((o.name for o in outs), widths):
        assigns.append(f"  assign y_out[{off + w - 1}:{off}] = {name};")
        off += w
    text = "\n".join([
        f"// generated by {GENERATOR}: {n_in}x{n_out} constant matrix-vector product, "
        f"{bbits}-bit {'signed' if signed_in else 'unsigned'} inputs, form {form}",
        f"module mvm(input clk, input [{n_in * bbits - 1}:0] x_in, output [{total - 1}:0] y_out);",
        *net.lines,
        "  always @(posedge clk) begin",
        *net.regs,
        "  end",
        *assigns,
        "endmodule",
        "",
        ADDSUB,
    ])
    return text, {"adders": net.n_adders, "adder_bits": net.adder_bits}


# --- Yosys -----------------------------------------------------------------------------------------------

def yosys_version() -> str:
    out = subprocess.run(["yosys", "-V"], capture_output=True, text=True, check=True).stdout.strip()
    return out


def run_yosys(vfile: Path, nodsp: bool = True, timeout: float = 1800.0) -> dict[str, Any]:
    script = YOSYS_SCRIPT if nodsp else YOSYS_SCRIPT.replace(" -nodsp", "")
    stat = vfile.with_suffix(".stat.json" if nodsp else ".dsp.stat.json")
    cmd = ["yosys", "-q", "-p", f"read_verilog {vfile.name}; {script}; tee -q -o {stat.name} stat -json"]
    t0 = time.time()
    subprocess.run(cmd, cwd=vfile.parent, check=True, timeout=timeout, capture_output=True)
    cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    return {"lut": lut, "ff": ff, "dsp": sum(v for k, v in cells.items() if k.startswith("DSP")),
            "carry": sum(v for k, v in cells.items() if k.startswith("CARRY")),
            "muxf": sum(v for k, v in cells.items() if k.startswith("MUXF")),
            "srl": sum(v for k, v in cells.items() if k.startswith("SRL")),
            "inv": cells.get("INV", 0),
            "cells": cells, "seconds": round(time.time() - t0, 1), "script": script}


# --- grid ------------------------------------------------------------------------------------------------

def grid(kind: str) -> list[dict[str, Any]]:
    pts = []
    if kind in ("quick", "full"):
        for w in (2, 3, 4, 6, 8):
            for b in (2, 3, 4, 6, 8):
                pts.append({"n_in": 16, "n_out": 4, "w": w, "b": b, "signed_in": True})
        for w, b in ((2, 8), (4, 4), (8, 2), (8, 8), (4, 8), (8, 4)):
            pts.append({"n_in": 16, "n_out": 4, "w": w, "b": b, "signed_in": False})
        for w, b in ((8, 8), (4, 4)):
            pts.append({"n_in": 16, "n_out": 4, "w": w, "b": b, "signed_in": True, "dist": "uniform"})
        # Yosys' own structure for `x * W` (merged carry-save $macc), with and without DSP mapping
        pts.append({"n_in": 16, "n_out": 4, "w": 8, "b": 8, "signed_in": True, "form": "mul"})
        pts.append({"n_in": 16, "n_out": 4, "w": 8, "b": 8, "signed_in": True, "form": "mul", "nodsp": False})
    if kind == "full":
        for w, b in ((2, 2), (3, 3), (4, 4), (6, 6), (8, 8), (4, 8), (8, 4), (2, 8)):
            pts.append({"n_in": 64, "n_out": 8, "w": w, "b": b, "signed_in": True})
        for w, b in ((4, 4), (8, 8)):
            pts.append({"n_in": 64, "n_out": 8, "w": w, "b": b, "signed_in": False})
        for w, b in ((4, 4), (8, 8), (6, 6)):
            pts.append({"n_in": 144, "n_out": 16, "w": w, "b": b, "signed_in": False})
    return pts


def run_point(p: dict[str, Any], seed: int, version: str) -> dict[str, Any]:
    form, dist, nodsp = p.get("form", "csd"), p.get("dist", "laplace"), p.get("nodsp", True)
    sign = "s" if p["signed_in"] else "u"
    pid = f"mvm{p['n_in']}x{p['n_out']}_w{p['w']}_b{p['b']}{sign}_{dist}_{form}{'' if nodsp else '_dsp'}_seed{seed}"
    rng = np.random.default_rng([seed, p["n_in"], p["n_out"], p["w"], p["b"], int(p["signed_in"])])
    W = trained_like_weights(p["n_in"], p["n_out"], p["w"], rng, dist)
    WORK.mkdir(parents=True, exist_ok=True)
    vfile = WORK / f"{pid}.v"
    text, adders = matvec_verilog(W, p["b"], p["signed_in"], form)
    vfile.write_text(text)
    res = run_yosys(vfile, nodsp=nodsp)
    acc_bits = p["w"] + p["b"] + math.ceil(math.log2(p["n_in"]))
    return {
        "id": pid, "kind": "matvec", "n_in": p["n_in"], "n_out": p["n_out"], "weight_bits": p["w"],
        "input_bits": p["b"], "input_signed": p["signed_in"], "weight_distribution": dist, "form": form,
        "accum_bits": acc_bits, **weight_stats(W), **adders,
        "measured": {k: res[k] for k in ("lut", "ff", "dsp", "carry", "muxf", "srl", "inv")},
        "cells": res["cells"], "yosys_seconds": res["seconds"],
        "source": f"{version} `{res['script']}`; Verilog from {GENERATOR} (form {form}, weights "
                  f"{dist}, seed {seed}); pre place-and-route cell counts",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", choices=("quick", "full"), default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", default=None, help="regex on row ids to run (others kept from --out)")
    args = ap.parse_args()
    version = yosys_version()
    doc = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    have = {r["id"]: r for r in doc.get("rows", [])}
    for p in grid(args.grid):
        row_id_probe = None
        try:
            row = run_point(p, args.seed, version) if (args.only is None or re.search(args.only, _pid(p, args.seed))) \
                else None
        except subprocess.TimeoutExpired:
            print(f"timeout: {p}", file=sys.stderr)
            continue
        if row is None:
            continue
        have[row["id"]] = row
        m = row["measured"]
        print(f"{row['id']:48s} LUT {m['lut']:6d} FF {m['ff']:6d} DSP {m['dsp']:3d} carry {m['carry']:4d} "
              f"nnz {row['n_nonzero']:5d} ({row['yosys_seconds']} s)", flush=True)
        doc = _doc(list(have.values()), version)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        del row_id_probe


def _pid(p: dict[str, Any], seed: int) -> str:
    sign = "s" if p["signed_in"] else "u"
    return (f"mvm{p['n_in']}x{p['n_out']}_w{p['w']}_b{p['b']}{sign}_{p.get('dist', 'laplace')}_{p.get('form', 'csd')}"
            f"{'' if p.get('nodsp', True) else '_dsp'}_seed{seed}")


def _doc(rows: list[dict[str, Any]], version: str) -> dict[str, Any]:
    return {
        "description": "Open-synthesis (Yosys) LUT/FF/DSP counts of the arithmetic hls4ml's Latency strategy "
                       "builds at reuse factor 1: an n_in-input vector times a constant n_in x n_out weight "
                       "matrix (CSD shift-and-add products, balanced adder tree, II=1 pipeline registers). "
                       "Counts are Yosys cells before place and route (LUT = LUT1..LUT6). Regenerate with "
                       f"`nice -n 10 .venv/bin/python {GENERATOR}`.",
        "tool": version,
        "rows": sorted(rows, key=lambda r: (r["n_in"] * r["n_out"], r["id"])),
    }


if __name__ == "__main__":
    main()
