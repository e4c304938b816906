"""Time-multiplexed (reuse) dense kernels: a layer's n_in x n_out products over R cycles, weights from a ROM.

A fully unrolled dense kernel (edgekd.rtl.kernels) is a constant-multiplier network with one input vector per
clock; the zoo's 16-64-32-32-5 jet tagger that way is more than half of an LFE5U-85F, above what open place
and route finishes. With a reuse factor R (config `rtl.reuse`) a dense layer takes a vector every R cycles
(II = R) and computes its products on P = ceil(n_in x n_out / R) general multipliers (Yosys maps `*` to DSPs
where the family has them) with the weights read from a ROM (a registered case statement: LUT ROM or block
RAM, as Yosys chooses):

* R = r_in x r_out with r_in = gcd(R, n_in) input slices and r_out output groups (r_out <= n_out; the last
  group is padded with zero weights when r_out does not divide n_out). Cycle t = o * r_in + i multiplies input
  slice i (s_in = n_in / r_in elements, the input register rotates by one slice per cycle) with the s_out =
  ceil(n_out / r_out) weight columns of group o: s_in x s_out products, summed per output lane into an
  accumulator; the last slice of a group shifts the group's sums into the result register.
* Accumulators are exact: their width covers every sum of the layer's integer products over the input
  grid's whole range (interval bound per output), so no partial sum wraps.
* The input ops before the products (a first layer's input Quant) and the bias + ReLU + requantisation after
  them are the same alkaid-traced, pipelined networks as the unrolled kernel's (edgekd.rtl.kernels.wrap_comb),
  on n_in inputs and on the n_out exact accumulators: the requantisation is QONNX's (round half to even,
  saturate), bit for bit.

The kernel has the unrolled kernel's ports (clk, rst, ce, din, vin, dout, vout) and holds a vector for R
cycles: the top (edgekd.rtl.generate) spaces images at least R clock enables apart at its input (s_axis_tready
low in between), which every stage keeps since they all share the clock enable. Latency in cycles:
pre stages + R + 3 + post stages.
"""

from __future__ import annotations

import math
import time
from typing import Mapping

import numpy as np

from edgekd.rtl.kernels import KIF, Kernel, _apply, wrap_comb
from edgekd.rtl.network import Layer, RTLUnsupportedError


def reuse_split(n_in: int, n_out: int, reuse: int, name: str) -> tuple[int, int, int, int]:
    """(r_in, r_out, s_in, s_out) of reuse factor `reuse` on an n_in x n_out layer; refused naming the layer."""
    r = int(reuse)
    if r < 1:
        raise RTLUnsupportedError(f"rtl.reuse {r} for dense layer {name}: a reuse factor is at least 1")
    r_in = math.gcd(r, n_in)
    r_out = r // r_in
    if r_out > n_out:
        ok = valid_reuse(n_in, n_out)
        near = sorted(ok, key=lambda v: (abs(v - r), v))[:8]
        raise RTLUnsupportedError(
            f"rtl.reuse {r} for dense layer {name} ({n_in} inputs x {n_out} outputs): R must be r_in x r_out with "
            f"r_in dividing the {n_in} inputs and r_out at most the {n_out} outputs (here r_in = gcd(R, {n_in}) = "
            f"{r_in}, r_out = {r_out} > {n_out}); valid R near {r}: {sorted(near)} (largest {max(ok)}); set this "
            f"layer's own factor with a mapping, e.g. rtl.reuse: {{{name}: {max(v for v in ok if v <= r)}}}")
    return r_in, r_out, n_in // r_in, -(-n_out // r_out)


def valid_reuse(n_in: int, n_out: int) -> list[int]:
    """Every reuse factor a n_in x n_out dense layer takes (1 = fully unrolled)."""
    return [r for r in range(1, n_in * n_out + 1) if r // math.gcd(r, n_in) <= n_out]


def resolve_reuse(layers: list[Layer], reuse: int | Mapping[str, int] | None) -> dict[str, int]:
    """{dense layer name: R} of the config's `rtl.reuse` (an int for every dense layer, or {layer: R});
    every factor checked against its layer (errors name the layer and the valid choices)."""
    dense = [l for l in layers if l.kind == "dense"]
    if reuse is None:
        return {l.name: 1 for l in dense}
    if isinstance(reuse, Mapping):
        names = {l.name for l in layers}
        for key, r in reuse.items():
            if key not in names:
                raise RTLUnsupportedError(f"rtl.reuse names layer '{key}', which the network does not have (its dense "
                                          f"layers: {', '.join(l.name for l in dense)})")
            kind = next(l.kind for l in layers if l.name == key)
            if kind != "dense" and int(r) != 1:
                raise RTLUnsupportedError(f"rtl.reuse {r} for layer {key}: a {kind} layer (reuse is for dense "
                                          f"MatMul/Gemm layers: {', '.join(l.name for l in dense)})")
        chosen = {l.name: int(reuse.get(l.name, 1)) for l in dense}
    else:
        chosen = {l.name: int(reuse) for l in dense}
    for l in dense:
        reuse_split(l.weight.shape[0], l.weight.shape[1], chosen[l.name], l.name)
    return chosen


def _int_grid(w: np.ndarray, name: str, what: str) -> tuple[np.ndarray, int]:
    """(integers, f) with w == integers * 2^-f, f as small as it can be."""
    w = np.asarray(w, dtype=np.float64)
    for f in range(0, 48):
        v = w * 2.0**f
        if np.array_equal(v, np.round(v)):
            return np.round(v).astype(np.int64), f
    raise RTLUnsupportedError(f"{name}: {what} not on a power-of-two grid (quantise them with a Quant)")


def _signed_bits(lo: int, hi: int) -> int:
    b = 2
    while lo < -(1 << (b - 1)) or hi > (1 << (b - 1)) - 1:
        b += 1
    return b


def build_reuse_kernel(layer: Layer, in_kif: KIF, module: str, reuse: int, latency_cutoff: float = 3.0) -> Kernel:
    """The dense layer `layer` as a reuse-`reuse` kernel (module `module` and its _pre/_mac/_post parts)."""
    from alkaid.trace import FVArrayInput, trace

    t0 = time.perf_counter()
    n_in, n_out = layer.weight.shape
    r_in, r_out, s_in, s_out = reuse_split(n_in, n_out, reuse, layer.name)
    parts: list[str] = []
    stages = 0
    cost = 0.0
    if layer.pre:  # the input ops (a first layer's input Quant): alkaid, element-wise on the n_in inputs
        x = FVArrayInput(n_in).quantize(*in_kif)
        y = x
        for op in layer.pre:
            y = _apply(y, op, channels=layer.in_shape[2])
        pre = wrap_comb(trace(x, y, keep_dead_inputs=True), f"{layer.name} (input ops)", in_kif, f"{module}_pre",
                        latency_cutoff)
        parts.append(pre.verilog)
        stages += pre.stages
        cost += pre.cost
        x_kif = pre.out_kif
    else:
        pre, x_kif = None, in_kif
    kx, ix, fx = x_kif
    wx = kx + ix + fx
    w_int, fw = _int_grid(layer.weight, layer.name, "weights")
    x_lo, x_hi = (-(1 << (wx - 1)), (1 << (wx - 1)) - 1) if kx else (0, (1 << wx) - 1)
    hi = np.maximum(w_int * x_lo, w_int * x_hi).sum(axis=0)
    lo = np.minimum(w_int * x_lo, w_int * x_hi).sum(axis=0)
    wa = _signed_bits(int(lo.min(initial=0)), int(hi.max(initial=0)))
    ww = _signed_bits(int(w_int.min(initial=0)), int(w_int.max(initial=0)))
    fa = fx + fw
    acc_kif = (1, wa - 1 - fa, fa)
    mac = _mac_verilog(f"{module}_mac", w_int, wx, bool(kx), ww, wa, reuse, r_in, r_out, s_in, s_out)
    parts.append(mac)
    stages += reuse + 3
    a = FVArrayInput(n_out).quantize(*acc_kif)
    y = a
    if layer.bias is not None:
        y = y + np.asarray(layer.bias, dtype=np.float64).reshape(-1)
    for op in layer.post:
        y = _apply(y, op, channels=n_out)
    post = wrap_comb(trace(a, y, keep_dead_inputs=True), f"{layer.name} (bias and requantisation)", acc_kif,
                     f"{module}_post", latency_cutoff)
    parts.append(post.verilog)
    stages += post.stages
    cost += post.cost
    w_in = sum(in_kif)
    top = [f"module {module} (input clk, input rst, input ce, input [{n_in * w_in - 1}:0] din, input vin,",
           f"    output [{n_out * sum(post.out_kif) - 1}:0] dout, output vout);",
           f"    // dense layer {layer.name}: reuse {reuse} (a vector every {reuse} clock enables), "
           f"{s_in * s_out} multipliers",
           f"    wire [{n_in * wx - 1}:0] x; wire vx; wire [{n_out * wa - 1}:0] acc; wire va;"]
    if pre is not None:
        top.append(f"    {module}_pre u_pre (.clk(clk), .rst(rst), .ce(ce), .din(din), .vin(vin), .dout(x), .vout(vx));")
    else:
        top.append("    assign x = din; assign vx = vin;")
    top.append(f"    {module}_mac u_mac (.clk(clk), .rst(rst), .ce(ce), .din(x), .vin(vx), .dout(acc), .vout(va));")
    top.append(f"    {module}_post u_post (.clk(clk), .rst(rst), .ce(ce), .din(acc), .vin(va), .dout(dout), "
               ".vout(vout));")
    top.append("endmodule")
    info = {"reuse": int(reuse), "r_in": r_in, "r_out": r_out, "slice_inputs": s_in, "group_outputs": s_out,
            "multipliers": s_in * s_out, "weight_bits": ww, "input_bits": wx, "acc_bits": wa,
            "rom_bits": reuse * s_in * s_out * ww, "rom_words": reuse, "rom_word_bits": s_in * s_out * ww,
            "register_bits": n_in * wx + s_in * wx + s_in * s_out * (ww + max(wa, wx + 1 + ww))
            + (1 + r_out) * s_out * wa,
            "pre_stages": pre.stages if pre is not None else 0, "post_stages": post.stages}
    text = "\n\n".join(parts) + "\n\n" + "\n".join(top) + "\n"
    return Kernel(module, text, in_kif, post.out_kif, n_in, n_out, stages, cost, time.perf_counter() - t0,
                  ii=int(reuse), reuse=info)


def _mac_verilog(module: str, w_int: np.ndarray, wx: int, x_signed: bool, ww: int, wa: int, reuse: int,
                 r_in: int, r_out: int, s_in: int, s_out: int) -> str:
    """The time-multiplexed multiply-accumulate core: n_in inputs on one integer grid -> n_out exact sums."""
    n_in, n_out = w_int.shape
    cw = max(1, int(reuse).bit_length()) + 1
    siw = s_in * wx
    pw = max(wa, wx + 1 + ww)
    word = s_in * s_out * ww
    mask = (1 << ww) - 1
    v = [f"module {module} (input clk, input rst, input ce, input [{n_in * wx - 1}:0] din, input vin,",
         f"    output [{n_out * wa - 1}:0] dout, output reg vout);",
         f"    // {reuse} cycles per vector, cycle t = o * {r_in} + i: input slice i ({s_in} elements) x weight "
         f"group o ({s_out} outputs)",
         f"    reg [{n_in * wx - 1}:0] xr; reg run; reg [{cw - 1}:0] t, ci, co;",
         "    always @(posedge clk) begin",
         f"        if (rst) begin run <= 1'b0; t <= {cw}'d0; ci <= {cw}'d0; co <= {cw}'d0; end",
         "        else if (ce) begin",
         f"            if (vin) begin run <= 1'b1; t <= {cw}'d0; ci <= {cw}'d0; co <= {cw}'d0; end",
         "            else if (run) begin",
         f"                t <= t + {cw}'d1; if (t == {cw}'d{reuse - 1}) run <= 1'b0;",
         f"                if (ci == {cw}'d{r_in - 1}) begin ci <= {cw}'d0; co <= co + {cw}'d1; end "
         f"else ci <= ci + {cw}'d1;",
         "            end",
         "        end",
         "    end"]
    if r_in > 1:  # the input register rotates by one slice per cycle: slice i is always its lowest bits
        v.append(f"    always @(posedge clk) if (ce) begin if (vin) xr <= din; else if (run) "
                 f"xr <= {{xr[{siw - 1}:0], xr[{n_in * wx - 1}:{siw}]}}; end")
    else:
        v.append("    always @(posedge clk) if (ce && vin) xr <= din;")
    v += ["    // stage A: the slice and the ROM word of cycle t",
          f"    reg va, fa, la, ga; reg [{siw - 1}:0] xa; reg [{word - 1}:0] wa;",
          "    always @(posedge clk) begin",
          "        if (rst) va <= 1'b0; else if (ce) va <= run;",
          f"        if (ce) begin fa <= (ci == {cw}'d0); la <= (ci == {cw}'d{r_in - 1}); "
          f"ga <= (co == {cw}'d{r_out - 1}); xa <= xr[{siw - 1}:0]; end",
          "    end",
          "    always @(posedge clk) if (ce) case (t)"]
    for t in range(reuse):
        o, i = divmod(t, r_in)
        val = 0
        for a in range(s_in):
            for j in range(s_out):
                col = o * s_out + j
                wv = int(w_int[i * s_in + a, col]) if col < n_out else 0
                val |= (wv & mask) << ((a * s_out + j) * ww)
        v.append(f"        {cw}'d{t}: wa <= {word}'h{val:x};")
    v += [f"        default: wa <= {word}'h0;", "    endcase"]
    v.append("    // stage B: the products, registered")
    v.append("    reg vb, fb, lb, gb;")
    v.append("    always @(posedge clk) begin if (rst) vb <= 1'b0; else if (ce) vb <= va; "
             "if (ce) begin fb <= fa; lb <= la; gb <= ga; end end")
    for a in range(s_in):
        sx = f"xa[{a * wx + wx - 1}]" if x_signed else "1'b0"
        v.append(f"    wire signed [{wx}:0] xs{a} = {{{sx}, xa[{a * wx + wx - 1}:{a * wx}]}};")
        for j in range(s_out):
            v.append(f"    wire signed [{ww - 1}:0] w{a}_{j} = wa[{(a * s_out + j) * ww + ww - 1}:{(a * s_out + j) * ww}]; "
                     f"reg signed [{pw - 1}:0] p{a}_{j}; always @(posedge clk) if (ce) p{a}_{j} <= xs{a} * w{a}_{j};")
    v.append("    // stage C: the sums (exact in their width) into the accumulators; a finished group into the results")
    for j in range(s_out):
        terms = " + ".join(f"p{a}_{j}[{wa - 1}:0]" for a in range(s_in))
        v.append(f"    reg [{wa - 1}:0] acc{j}; wire [{wa - 1}:0] s{j} = (fb ? {wa}'d0 : acc{j}) + {terms};")
        v.append(f"    always @(posedge clk) if (ce && vb) acc{j} <= s{j};")
    grp = ", ".join(f"s{j}" for j in reversed(range(s_out)))
    rw = r_out * s_out * wa
    v.append(f"    reg [{rw - 1}:0] res;")
    if r_out > 1:
        v.append(f"    always @(posedge clk) if (ce && vb && lb) res <= {{{grp}, res[{rw - 1}:{s_out * wa}]}};")
    else:
        v.append(f"    always @(posedge clk) if (ce && vb && lb) res <= {{{grp}}};")
    v.append("    always @(posedge clk) if (rst) vout <= 1'b0; else if (ce) vout <= vb && lb && gb;")
    v.append(f"    assign dout = res[{n_out * wa - 1}:0];")
    v.append("endmodule")
    return "\n".join(v)
