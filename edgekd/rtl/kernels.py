"""Per-pixel arithmetic of a layer as a pipelined constant-weight network traced with alkaid.

A conv's kernel takes one k_h x k_w x C window (elements ordered (kh, kw, c), element 0 in the lowest bits)
and returns the M outputs of that pixel: products, bias, ReLU and the requantisation (QONNX Quant: round
half to even, saturate) of the next layer's type, exactly (alkaid traces the fixed-point arithmetic bit for
bit; its RND_CONV is QONNX's ROUND). A dense layer's kernel takes the whole flattened vector. The traced
program is split into latency-balanced stages (alkaid's splitter); each stage is its own combinational module
and this module writes the registers between them, with a clock enable (the stream's stall) and a valid bit.

Tensor words between layers hold every element on one grid per tensor, (k, i, f): k sign bit, i integer bits,
f fractional bits, two's complement, element e at bits [e*W +: W] with W = k + i + f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgekd.rtl.network import Layer, RTLUnsupportedError

KIF = tuple[int, int, int]


@dataclass
class Kernel:
    module: str
    verilog: str
    in_kif: KIF
    out_kif: KIF
    n_in: int
    n_out: int
    stages: int          # pipeline registers = cycles from input to output
    cost: float          # alkaid's adder-cost estimate (LUT-ish)
    trace_s: float
    ii: int = 1          # cycles between input vectors (a reuse kernel: its reuse factor R)
    reuse: dict | None = None  # a time-multiplexed kernel's structure (edgekd.rtl.reuse)

    @property
    def in_width(self) -> int:
        return self.n_in * sum(self.in_kif)

    @property
    def out_width(self) -> int:
        return self.n_out * sum(self.out_kif)


def _apply(v, op: tuple, channels: int | None = None):
    kind = op[0]
    if kind == "quant":
        _, k, i, f, ov = op
        return v.quantize(k, i, f, ov, "RND_CONV")
    if kind == "relu":
        return v.relu()
    c = np.asarray(op[1], dtype=np.float64)
    if channels is not None and c.size > 1:
        c = np.tile(c, len(v) // c.size)
    return v + c if kind == "add" else v * c


def trace_layer(layer: Layer, in_kif: KIF):
    """alkaid CombLogic of the layer's per-pixel kernel (window or flattened vector -> M outputs)."""
    from alkaid.trace import FVArrayInput, trace

    k, i, f = in_kif
    n_in = layer.weight.shape[0]
    x = FVArrayInput(n_in).quantize(k, i, f)
    cin = layer.in_shape[2]
    for op in layer.pre:
        x = _apply(x, op, channels=cin)
    y = x @ layer.weight
    if layer.bias is not None:
        y = y + np.asarray(layer.bias, dtype=np.float64).reshape(-1)
    for op in layer.post:
        y = _apply(y, op, channels=y.shape[0])
    return trace(x, y, keep_dead_inputs=True)


def _out_kif(comb) -> KIF:
    kifs = np.asarray(comb.out_kifs).reshape(3, -1)
    live = [j for j in range(kifs.shape[1]) if kifs[:, j].sum() > 0 and comb.out_idxs[j] >= 0]
    if not live:
        return (0, 1, 0)
    k = int(max(kifs[0, j] for j in live))
    i = int(max(kifs[0, j] + kifs[1, j] for j in live)) - k
    f = int(max(kifs[2, j] for j in live))
    if k + i + f < 1:
        i = 1 - k - f
    return k, i, f


def build_kernel(layer: Layer, in_kif: KIF, module: str, latency_cutoff: float = 3.0) -> Kernel:
    """Trace, split into stages and write the Verilog of one layer's kernel (module `module`)."""
    import time

    t0 = time.perf_counter()
    comb = trace_layer(layer, in_kif)
    return wrap_comb(comb, layer.name, in_kif, module, latency_cutoff, time.perf_counter() - t0)


def wrap_comb(comb, name: str, in_kif: KIF, module: str, latency_cutoff: float = 3.0, trace_s: float = 0.0) -> Kernel:
    """A traced alkaid CombLogic (inputs on the grid `in_kif`, element e at bits [e*W +: W]) as a pipelined
    kernel module `module`: latency-balanced stages with registers, a clock enable and a valid bit; outputs
    aligned to one (k, i, f) grid. `name` names the layer in errors."""
    from alkaid.codegen.rtl import verilog_comb_logic_gen
    from alkaid.trace.pipeline import _split_comb_logic

    n_in, n_out = comb.shape
    inp = np.asarray(comb.inp_kifs).reshape(3, -1)
    outk = np.asarray(comb.out_kifs).reshape(3, -1)
    kc, ic, fc = in_kif
    w_in = kc + ic + fc
    # the constant outputs alkaid leaves undriven (index -1) must be zero
    zero_out = np.asarray(comb(np.zeros(n_in)), dtype=np.float64).reshape(-1)
    for j in range(n_out):
        if comb.out_idxs[j] < 0 and zero_out[j] != 0:
            raise RTLUnsupportedError(f"{name}: output {j} is the constant {zero_out[j]} (not generated)")
    ok = _out_kif(comb)
    w_out = sum(ok)
    lat = max([float(op.latency) for op in comb.ops] + [0.0])
    n_stages = max(1, math.ceil(lat / latency_cutoff)) if latency_cutoff else 1
    stages = _split_comb_logic(comb, n_stages=n_stages, verbose=False) if n_stages > 1 else (comb,)
    n_stages = len(stages)
    lines = []
    for s, st in enumerate(stages):
        lines.append(verilog_comb_logic_gen(st, f"{module}_s{s}"))
    widths_in = [int(np.asarray(st.inp_kifs).sum()) for st in stages]
    widths_out = [int(np.asarray(st.out_kifs).sum()) for st in stages]
    for s in range(n_stages - 1):
        if widths_out[s] != widths_in[s + 1]:
            raise RTLUnsupportedError(f"{name}: alkaid stage {s} -> {s + 1} widths differ")
    body = [f"module {module} (input clk, input rst, input ce, input [{n_in * w_in - 1}:0] din, input vin,",
            f"    output [{n_out * w_out - 1}:0] dout, output vout);"]
    body.append(f"    wire [{max(widths_in[0], 1) - 1}:0] s0_in;")
    off = 0
    for e in range(n_in):
        k, i, f = (int(v) for v in inp[:, e])
        w = k + i + f
        if w <= 0:
            continue
        lo = e * w_in + (fc - f)
        if f > fc or k > kc or lo + w > (e + 1) * w_in:
            raise RTLUnsupportedError(f"{name}: kernel input {e} ({k},{i},{f}) outside its type {in_kif}")
        body.append(f"    assign s0_in[{off + w - 1}:{off}] = din[{lo + w - 1}:{lo}];")
        off += w
    if widths_in[0] == 0:
        body.append("    assign s0_in = 1'b0;")
    for s in range(n_stages):
        wi, wo = max(widths_in[s], 1), max(widths_out[s], 1)
        src = "s0_in" if s == 0 else f"r{s - 1}"
        body.append(f"    wire [{wo - 1}:0] s{s}_out; reg [{wo - 1}:0] r{s}; reg v{s};")
        body.append(f"    {module}_s{s} u{s} (.model_inp({src}), .model_out(s{s}_out));" if widths_in[s] else
                    f"    {module}_s{s} u{s} (.model_out(s{s}_out));")
        prev_v = "vin" if s == 0 else f"v{s - 1}"
        body.append(f"    always @(posedge clk) begin if (rst) v{s} <= 1'b0; else if (ce) v{s} <= {prev_v}; "
                    f"if (ce) r{s} <= s{s}_out; end")
    last = f"r{n_stages - 1}"
    off = 0
    for e in range(n_out):
        k, i, f = (int(v) for v in outk[:, e])
        w = k + i + f
        dst = f"dout[{(e + 1) * w_out - 1}:{e * w_out}]"
        if w <= 0 or comb.out_idxs[e] < 0:
            body.append(f"    assign {dst} = {w_out}'d0;")
            off += max(w, 0)
            continue
        sh = ok[2] - f
        ext = w_out - w - sh
        if sh < 0 or ext < 0:
            raise RTLUnsupportedError(f"{name}: kernel output {e} ({k},{i},{f}) outside {ok}")
        raw = f"{last}[{off + w - 1}:{off}]"
        sign = f"{last}[{off + w - 1}]" if k else "1'b0"
        parts = ([f"{{{ext}{{{sign}}}}}"] if ext else []) + [raw] + ([f"{sh}'d0"] if sh else [])
        body.append(f"    assign {dst} = {{{', '.join(parts)}}};")
        off += w
    body.append(f"    assign vout = v{n_stages - 1};")
    body.append("endmodule")
    # alkaid's stage modules do not declare `wire` for model_inp of width 0; the wrapper is plain Verilog-2005
    text = "\n\n".join(lines) + "\n\n" + "\n".join(body) + "\n"
    cost = float(sum(getattr(op, "cost", 0.0) for op in comb.ops))
    return Kernel(module, text, in_kif, ok, n_in, n_out, n_stages, cost, trace_s)
