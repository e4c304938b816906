"""generate_rtl: the whole network as synthesizable Verilog in build/<name>/rtl/, with rtl.json and vectors.npz.

See edgekd.rtl (the package docstring) for the files, the top's ports and the manifest's fields.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.contract import HardwareContract
from edgekd.io import write_json, write_text
from edgekd.rtl.kernels import KIF, Kernel, build_kernel
from edgekd.rtl.lanes import LANE_LIB, after_window, compacts, input_geometry, window_params
from edgekd.rtl.network import Layer, RTLUnsupportedError, load_network, parse_fixed
from edgekd.rtl.reuse import build_reuse_kernel, resolve_reuse
from edgekd.rtl.templates import STREAM_LIB, flush_beats, padded_out

log = logging.getLogger(__name__)

MANIFEST = "rtl.json"
VECTORS = "vectors.npz"
FAMILIES = ("xcu", "xcup", "xc7", "ecp5")


def _bits(kif: KIF) -> int:
    return int(sum(kif))


def build_top(layers: list[Layer], in_kif: KIF, top: str, pixels_per_beat: int = 1,
              latency_cutoff: float = 3.0, lanes: int = 1,
              reuse: dict[str, int] | None = None) -> tuple[str, list[Kernel], dict]:
    """Verilog of the kernels and the top module; returns (top text, kernels, info about every stage).

    `lanes` > 1: the first layers take `lanes` adjacent pixels per clock (edgekd.rtl.lanes): one s_axis beat
    of `lanes` pixels per clock, a window and a kernel per lane, down to the first horizontal stride of at
    least `lanes` (a pool), where the stream goes on at one pixel per clock.

    `reuse`: {dense layer name: R} (edgekd.rtl.reuse.resolve_reuse); R > 1 makes that layer a time-multiplexed
    kernel taking a vector every R cycles, and the top then starts an image at most every max(R) clock enables
    (s_axis_tready low on an image's first beat until then)."""
    reuse = reuse or {}
    kernels: list[Kernel] = []
    lines: list[str] = []
    kif = in_kif
    h, w, c = layers[0].in_shape
    pb = c * _bits(kif)
    lanes = int(lanes)
    p = lanes if lanes > 1 else int(pixels_per_beat)
    if lanes > 1 and int(pixels_per_beat) not in (1, lanes):
        raise RTLUnsupportedError(f"rtl.lanes {lanes} takes {lanes} pixels per beat (rtl.pixels_per_beat "
                                  f"{pixels_per_beat})")
    geo = input_geometry(h, w, lanes) if lanes > 1 else None
    if (h * w) % p:
        raise RTLUnsupportedError(f"{h}x{w} input pixels are not a multiple of {p} pixels per beat")
    in_w = p * pb
    stages: list[dict] = []
    lines.append(f"    wire [{(lanes if lanes > 1 else 1) * pb - 1}:0] d0; wire v0, f0;")
    image_cycles = h * w // lanes if lanes > 1 else h * w  # clock enables per image at one beat per clock
    gap = max(reuse.values(), default=1)
    gate = ""
    if gap > image_cycles:  # a reuse kernel holds its vector for `gap` cycles: space the images that far apart
        bpi = h * w // p
        lines.append("    // images start at most every %d clock enables (the reuse kernels' interval)" % gap)
        lines.append("    reg [15:0] g_wait, g_beat; wire g_start = s_axis_tuser || (g_beat == 16'd0);")
        lines.append("    wire g_ok = !g_start || (g_wait == 16'd0); wire g_fire = s_axis_tvalid && s_axis_tready;")
        lines.append("    wire [15:0] g_next = g_start ? 16'd1 : g_beat + 16'd1;")
        lines.append("    always @(posedge clk) begin")
        lines.append("        if (rst) begin g_wait <= 16'd0; g_beat <= 16'd0; end")
        lines.append("        else if (ce) begin")
        lines.append(f"            if (g_fire && g_start) g_wait <= 16'd{gap - 1}; "
                     "else if (g_wait != 16'd0) g_wait <= g_wait - 16'd1;")
        lines.append(f"            if (g_fire) g_beat <= (g_next == 16'd{bpi}) ? 16'd0 : g_next;")
        lines.append("        end")
        lines.append("    end")
        gate = " && g_ok"
    if p == 1 or lanes > 1:
        lines.append("    assign d0 = s_axis_tdata; assign v0 = s_axis_tvalid && s_axis_tready; "
                     "assign f0 = s_axis_tuser;")
        ready = f"ce && !rst{gate}"
    else:
        lines.append("    wire up_ready;")
        lines.append(f"    edgekd_unpack #(.P({p}), .PB({pb})) u_in (.clk(clk), .rst(rst), .ce(ce), "
                     ".din(s_axis_tdata), .vin(s_axis_tvalid), .first_in(s_axis_tuser), .ready(up_ready), "
                     ".dout(d0), .vout(v0), .first(f0));")
        ready = f"ce && up_ready && !rst{gate}"
        stages.append({"stage": "unpack", "ii": p, "latency": 1})
    ready_at = len(lines)  # s_axis_tready goes here once the padded windows' frame gap is known
    cur, n = "0", 0

    def new(width: int, laned: int = 0) -> str:
        nonlocal n
        n += 1
        lines.append(f"    wire [{width - 1}:0] d{n}; wire v{n};" + (f" wire [{laned - 1}:0] l{n};" if laned else ""))
        return str(n)

    def laned_window(idx: int, tag: str, cc: int, b: int, kh: int, kw: int, sh: int, sw: int) -> str:
        nid = new(lanes * kh * kw * cc * b, lanes)
        lines.append(f"    edgekd_lwindow #({window_params(geo, cc, b, kh, kw, sh, sw)}) u_{tag}{idx} (.clk(clk), "
                     f".rst(rst), .ce(ce), .din(d{cur}), .vin(v{cur}), .first({first}), .win(d{nid}), .vl(l{nid}), "
                     f".vout(v{nid}));")
        return nid

    flush_gap = 0  # idle clocks the top leaves after every image: the padded windows' flush beats, in series

    def plain_window(tag: str, hh: int, ww: int, cc: int, b: int, kh: int, kw: int, sh: int, sw: int,
                     pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> str:
        """A one-pixel-per-clock line buffer + kh x kw window on the current stream; returns its wire id."""
        nonlocal flush_gap
        nid = new(kh * kw * cc * b)
        pad = (f", .PT({pads[0]}), .PL({pads[1]}), .PB({pads[2]}), .PR({pads[3]})" if any(pads) else "")
        lines.append(f"    edgekd_window #(.H({hh}), .W({ww}), .C({cc}), .B({b}), .KH({kh}), .KW({kw}), "
                     f".SH({sh}), .SW({sw}){pad}) u_{tag} (.clk(clk), .rst(rst), .ce(ce), .din(d{cur}), "
                     f".vin(v{cur}), .first({first}), .win(d{nid}), .vout(v{nid}));")
        flush_gap += flush_beats(hh, ww, kh, kw, sh, sw, pads)
        return nid

    def per_lane(src: str, in_w: int, out_w: int, inst) -> str:
        nid = new(lanes * out_w, lanes)
        for j in range(lanes):
            lines.append("    " + inst(j, f"d{src}[{j * in_w} +: {in_w}]", f"l{src}[{j}]",
                                      f"d{nid}[{j * out_w} +: {out_w}]", f"l{nid}[{j}]"))
        lines.append(f"    assign v{nid} = |l{nid};")
        return nid

    def leave_window(src: str, width: int, kh: int, kw: int, sh: int, sw: int) -> str:
        """After a laned window's per-lane stage: compact to one pixel per clock, or stay laned."""
        nonlocal geo
        if compacts(geo, kw, sw):
            nid = new(width)
            lines.append(f"    edgekd_lcompact #(.L({lanes}), .PB({width})) u_cmp{src} (.din(d{src}), .vl(l{src}), "
                         f".dout(d{nid}), .vout(v{nid}));")
            geo = None
            return nid
        geo = after_window(geo, kh, kw, sh, sw)
        return src

    first = "f0"
    for idx, layer in enumerate(layers):
        hh, ww, cc = layer.in_shape
        b = _bits(kif)
        if geo is not None and layer.kind in ("conv", "pool"):
            kh, kw = layer.kernel
            sh, sw = layer.stride
            if layer.kind == "conv":
                if any(layer.pads):
                    raise RTLUnsupportedError(f"{layer.name}: a padded Conv (pads {list(layer.pads)}) on a stream of "
                                              f"{lanes} pixels per clock (the laned window takes valid padding only; "
                                              "set rtl.lanes 1, which streams padded convs at one pixel per clock)")
                win = laned_window(idx, "win", cc, b, kh, kw, sh, sw)
                k = build_kernel(layer, kif, f"{top}_k{idx}", latency_cutoff)
                kernels.append(k)
                kin = kh * kw * cc * b
                out = per_lane(win, kin, k.out_width, lambda j, di, vi, do, vo, k=k, idx=idx: (
                    f"{k.module} u_k{idx}_{j} (.clk(clk), .rst(rst), .ce(ce), .din({di}), .vin({vi}), "
                    f".dout({do}), .vout({vo}));"))
                stages.append({"stage": f"window{idx}", "layer": layer.name, "ii": 1, "latency": 1,
                               "pixels_per_clock": lanes})
                stages.append({"stage": f"kernel{idx}", "layer": layer.name, "ii": 1, "latency": k.stages,
                               "cost": k.cost, "instances": lanes, "pixels_per_clock": lanes,
                               "in": list(k.in_kif), "out": list(k.out_kif)})
                first = "1'b0"
                cur = leave_window(out, k.out_width, kh, kw, sh, sw)
                kif = k.out_kif
                pool = layer.pool
                cc = layer.weight.shape[1]
            else:
                pool = (kh, kw, sh, sw)
            if pool:
                ph, pw, psh, psw = pool
                b = _bits(kif)
                if geo is None:  # the conv's stride already brought the stream down to one pixel per clock
                    raise RTLUnsupportedError(f"{layer.name}: a max pool after a strided conv with rtl.lanes "
                                              f"{lanes} (set rtl.lanes 1)")
                win = laned_window(idx, "pwin", cc, b, ph, pw, psh, psw)
                out = per_lane(win, ph * pw * cc * b, cc * b, lambda j, di, vi, do, vo, idx=idx, ph=ph, pw=pw, cc=cc,
                               b=b: (f"edgekd_maxpool #(.N({ph * pw}), .C({cc}), .B({b}), .S({kif[0]})) "
                                     f"u_pool{idx}_{j} (.clk(clk), .rst(rst), .ce(ce), .win({di}), .vin({vi}), "
                                     f".dout({do}), .vout({vo}));"))
                stages.append({"stage": f"pool{idx}", "layer": layer.name, "ii": 1, "latency": 2,
                               "pixels_per_clock": lanes})
                first = "1'b0"
                cur = leave_window(out, cc * b, ph, pw, psh, psw)
        elif layer.kind in ("conv", "pool"):
            kh, kw = layer.kernel
            sh, sw = layer.stride
            if layer.kind == "conv":
                cur = plain_window(f"win{idx}", hh, ww, cc, b, kh, kw, sh, sw, layer.pads)
                stages.append({"stage": f"window{idx}", "layer": layer.name, "ii": 1, "latency": 1,
                               **({"pads": list(layer.pads),
                                   "flush_beats": flush_beats(hh, ww, kh, kw, sh, sw, layer.pads)}
                                  if any(layer.pads) else {})})
                k = build_kernel(layer, kif, f"{top}_k{idx}", latency_cutoff)
                kernels.append(k)
                nid = new(k.out_width)
                lines.append(f"    {k.module} u_k{idx} (.clk(clk), .rst(rst), .ce(ce), .din(d{cur}), .vin(v{cur}), "
                             f".dout(d{nid}), .vout(v{nid}));")
                stages.append({"stage": f"kernel{idx}", "layer": layer.name, "ii": 1, "latency": k.stages,
                               "cost": k.cost, "in": list(k.in_kif), "out": list(k.out_kif)})
                cur, kif = nid, k.out_kif
                first = "1'b0"
                pool = layer.pool
                hh, ww = padded_out(hh, ww, kh, kw, sh, sw, layer.pads)
                cc = layer.weight.shape[1]
            else:
                pool = (kh, kw, sh, sw)
            if pool:
                ph, pw, psh, psw = pool
                b = _bits(kif)
                cur = plain_window(f"pwin{idx}", hh, ww, cc, b, ph, pw, psh, psw)
                nid = new(cc * b)
                lines.append(f"    edgekd_maxpool #(.N({ph * pw}), .C({cc}), .B({b}), .S({kif[0]})) u_pool{idx} "
                             f"(.clk(clk), .rst(rst), .ce(ce), .win(d{cur}), .vin(v{cur}), .dout(d{nid}), "
                             f".vout(v{nid}));")
                stages.append({"stage": f"pool{idx}", "layer": layer.name, "ii": 1, "latency": 2})
                cur = nid
                first = "1'b0"
        else:  # dense: flatten the stream into one vector first
            if geo is not None:
                raise RTLUnsupportedError(f"{layer.name}: a dense layer on a stream of {lanes} pixels per clock "
                                          "(rtl.lanes needs a pool or conv with a horizontal stride of at least "
                                          "the lanes before the flatten; set rtl.lanes 1)")
            npix = hh * ww
            if npix > 1:
                nid = new(npix * cc * b)
                lines.append(f"    edgekd_collect #(.N({npix}), .PB({cc * b})) u_col{idx} (.clk(clk), .rst(rst), "
                             f".ce(ce), .din(d{cur}), .vin(v{cur}), .dout(d{nid}), .vout(v{nid}));")
                stages.append({"stage": f"flatten{idx}", "layer": layer.name, "ii": 1, "latency": 1})
                cur = nid
            r = int(reuse.get(layer.name, 1))
            k = build_reuse_kernel(layer, kif, f"{top}_k{idx}", r, latency_cutoff) if r > 1 else \
                build_kernel(layer, kif, f"{top}_k{idx}", latency_cutoff)
            kernels.append(k)
            nid = new(k.out_width)
            lines.append(f"    {k.module} u_k{idx} (.clk(clk), .rst(rst), .ce(ce), .din(d{cur}), .vin(v{cur}), "
                         f".dout(d{nid}), .vout(v{nid}));")
            stages.append({"stage": f"kernel{idx}", "layer": layer.name, "ii": k.ii, "latency": k.stages,
                           "cost": k.cost, "in": list(k.in_kif), "out": list(k.out_kif),
                           **({"reuse": k.reuse} if k.reuse else {})})
            cur, kif = nid, k.out_kif
            first = "1'b0"
    if geo is not None:
        raise RTLUnsupportedError(f"the network ends on a stream of {lanes} pixels per clock (set rtl.lanes 1)")
    bpi = h * w // p
    # after an image's last beat, hold s_axis_tready low for `flush_gap` clocks (+ the unpack's drain) so that every
    # padded window finds its flush beats idle (each window's idle clocks are the top's, delayed; the windows
    # upstream of it use theirs first, hence the sum)
    hold = flush_gap + (p - 1 if p > 1 and lanes == 1 else 0) if flush_gap else 0
    if flush_gap:
        lines[ready_at:ready_at] = [
            "    // frame gap: idle clocks after every image for the padded windows' flush beats",
            "    reg [31:0] fg_beat; reg [15:0] fg_left;",
            "    wire fg_take = s_axis_tvalid && s_axis_tready;",
            "    wire [31:0] fg_idx = s_axis_tuser ? 32'd0 : fg_beat;",
            "    always @(posedge clk) begin",
            "        if (rst) begin fg_beat <= 32'd0; fg_left <= 16'd0; end",
            "        else if (ce) begin",
            f"            if (fg_take) begin if (fg_idx == {bpi - 1}) begin fg_beat <= 32'd0; fg_left <= {hold}; end",
            "                else fg_beat <= fg_idx + 32'd1; end",
            "            else if (fg_left != 16'd0) fg_left <= fg_left - 16'd1;",
            "        end",
            "    end",
            f"    assign s_axis_tready = {ready} && (fg_left == 16'd0);"]
    else:
        lines.insert(ready_at, f"    assign s_axis_tready = {ready};")
    oh, ow, oc = layers[-1].out_shape
    out_w = oc * _bits(kif)
    opi = oh * ow
    head = [f"module {top} (",
            "    input clk, input rst,",
            f"    input [{in_w - 1}:0] s_axis_tdata, input s_axis_tvalid, output s_axis_tready,",
            "    input s_axis_tlast, input s_axis_tuser,",
            f"    output [{out_w - 1}:0] m_axis_tdata, output m_axis_tvalid, input m_axis_tready,",
            "    output m_axis_tlast);",
            "    // the whole network advances when the output register can move (AXI4-Stream backpressure)",
            "    reg m_v, m_l; reg [%d:0] m_d; reg [15:0] ocnt;" % (out_w - 1),
            "    wire ce = !m_v || m_axis_tready;"]
    tail = ["    always @(posedge clk) begin",
            "        if (rst) begin m_v <= 1'b0; m_l <= 1'b0; ocnt <= 16'd0; end",
            f"        else if (ce) begin m_v <= v{cur}; m_l <= v{cur} && (ocnt == {opi - 1});",
            f"            if (v{cur}) ocnt <= (ocnt == {opi - 1}) ? 16'd0 : ocnt + 16'd1; end",
            f"        if (ce) m_d <= d{cur};",
            "    end",
            "    assign m_axis_tdata = m_d; assign m_axis_tvalid = m_v; assign m_axis_tlast = m_l;",
            "    // s_axis_tlast is not needed: the image size is fixed (framing restarts on s_axis_tuser)",
            "    wire unused_tlast = s_axis_tlast;",
            "endmodule"]
    info = {"in_width": in_w, "out_width": out_w, "pixel_bits": pb, "out_kif": list(kif),
            "outputs_per_image": opi, "out_elements": oc, "stages": stages,
            "beats_per_image": bpi, "lanes": lanes, "frame_gap_cycles": flush_gap,
            "frame_hold_cycles": hold,
            "image_interval_cycles": max(image_cycles + flush_gap, gap)}
    return "\n".join(head + lines + tail) + "\n", kernels, info


def alkaid_primitives() -> dict[str, str]:
    """alkaid's Verilog primitives (shift_adder, negative, mux, ...) the kernels instantiate: {file: text}."""
    import alkaid.codegen.rtl as rtl

    src = Path(rtl.__file__).parent / "verilog" / "source"
    return {f"alkaid_{p.name}": p.read_text() for p in sorted(src.glob("*.v"))}


def _pack(values: np.ndarray, bits: int, per_word: int) -> np.ndarray:
    """(..., per_word) integers -> (..., n64) uint64 words: element e at bits [e*bits +: bits]."""
    total = bits * per_word
    n64 = (total + 63) // 64
    if total <= 64 and np.asarray(values).dtype.kind in "iu":
        v = np.asarray(values, dtype=np.int64)
        m = np.uint64((1 << bits) - 1)
        acc = np.zeros(v.shape[:-1], dtype=np.uint64)
        for e in range(per_word):
            acc |= (v[..., e].astype(np.uint64) & m) << np.uint64(e * bits)
        return acc[..., None]
    v = np.asarray(values, dtype=object)
    shape = v.shape[:-1]
    out = np.zeros(shape + (n64,), dtype=np.uint64)
    mask = (1 << bits) - 1
    flat = v.reshape(-1, per_word)
    o = out.reshape(-1, n64)
    for r in range(flat.shape[0]):
        word = 0
        for e in range(per_word):
            word |= (int(flat[r, e]) & mask) << (e * bits)
        for j in range(n64):
            o[r, j] = (word >> (64 * j)) & 0xFFFFFFFFFFFFFFFF
    return out


def unpack_words(words: np.ndarray, bits: int, per_word: int, signed: bool) -> np.ndarray:
    """Inverse of the packing: (..., n64) uint64 -> (..., per_word) Python-int object array."""
    w = np.asarray(words, dtype=np.uint64)
    shape = w.shape[:-1]
    flat = w.reshape(-1, w.shape[-1])
    out = np.zeros((flat.shape[0], per_word), dtype=object)
    mask = (1 << bits) - 1
    for r in range(flat.shape[0]):
        word = sum(int(flat[r, j]) << (64 * j) for j in range(flat.shape[1]))
        for e in range(per_word):
            x = (word >> (e * bits)) & mask
            if signed and x >> (bits - 1):
                x -= 1 << bits
            out[r, e] = x
    return out.reshape(shape + (per_word,))


def input_raw(contract: HardwareContract, x: np.ndarray, in_kif: KIF, in_shape: tuple[int, ...]) -> np.ndarray:
    """Float inputs (NCHW as the contract hands them) -> integers on the input grid, (N, H*W, C)."""
    k, i, f = in_kif
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 4 and len(in_shape) == 3 and x.shape[1:] != tuple(in_shape):
        x = x.transpose(0, 2, 3, 1)
    x = x.reshape(x.shape[0], -1)
    raw = x * 2.0**f
    if not np.array_equal(raw, np.round(raw)):
        raise RTLUnsupportedError(f"{contract.folder}/verify_inputs.npy: inputs not on the input grid "
                                  f"{contract.input_precision}")
    lo, hi = (-(2 ** (i + f)) if k else 0), 2 ** (i + f) - 1
    if raw.min(initial=0) < lo or raw.max(initial=0) > hi:
        raise RTLUnsupportedError(f"{contract.folder}/verify_inputs.npy: inputs outside {contract.input_precision}")
    c = in_shape[-1] if len(in_shape) == 3 else int(np.prod(in_shape))
    return raw.astype(np.int64).reshape(x.shape[0], -1, c)


def write_vectors(manifest: dict, contract: HardwareContract, x: np.ndarray, y: np.ndarray, path: Path) -> None:
    """vectors.npz of inputs `x` (NCHW, as the contract hands them) and their QONNX outputs `y`: the s_axis
    beats and the expected m_axis beats, packed as the manifest says."""
    in_kif = tuple(manifest["input_kif"])
    raw = input_raw(contract, x, in_kif, tuple(manifest["input_shape"]))  # (N, pixels, C)
    p = manifest["pixels_per_beat"]
    beats = raw.reshape(raw.shape[0], -1, p * raw.shape[2])
    in_words = _pack(beats, _bits(in_kif), p * raw.shape[2])
    lay = manifest["output_layout"]
    k, i, f = lay["kif"]
    y_raw = np.asarray(y, dtype=np.float64).reshape(len(x), -1) * 2.0**f
    if not (np.array_equal(y_raw, np.round(y_raw)) and y_raw.min(initial=0) >= (-(2 ** (i + f)) if k else 0)
            and y_raw.max(initial=0) <= 2 ** (i + f) - 1):
        raise RTLUnsupportedError(f"the QONNX outputs of {contract.qonnx} are not on the RTL output grid "
                                  f"{lay['kif']} (k, i, f): the last layer's type does not hold them")
    out_beats = y_raw.astype(np.int64).reshape(len(x), manifest["outputs_per_image"], lay["elements_per_beat"])
    out_words = _pack(out_beats, lay["element_bits"], lay["elements_per_beat"])
    np.savez(path, inputs=in_words, outputs=out_words)


def generate_rtl(contract: HardwareContract, out_dir: Path | str, family: str = "xcu", pixels_per_beat: int = 1,
                 latency_cutoff: float = 3.0, top: str = "edgekd_top", n_vectors: int | None = None,
                 lanes: int = 1, reuse: int | dict[str, int] | None = None) -> dict[str, Any]:
    """Write the network's Verilog, rtl.json and vectors.npz into `out_dir`; returns the manifest.

    `family`: the synthesis family (xcu, xcup, xc7: AMD via synth_xilinx; ecp5: Lattice via synth_ecp5).
    `pixels_per_beat`: network pixels (channels-last positions, all channels) per s_axis beat.
    `lanes`: network pixels per clock through the first layers (edgekd.rtl.lanes); the beats then hold
    `lanes` pixels each (pixels_per_beat = lanes) and the top takes one beat per clock.
    `n_vectors`: how many verification images go into vectors.npz (default: the whole sample).
    `reuse`: the config's rtl.reuse: a reuse factor R for every dense layer, or {layer name: R} (others 1);
    R > 1: a time-multiplexed kernel (edgekd.rtl.reuse), a vector every R cycles."""
    if family not in FAMILIES:
        raise RTLUnsupportedError(f"rtl family '{family}' unknown (one of {', '.join(FAMILIES)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    layers, in_shape, _ = load_network(contract.qonnx_path)
    in_kif = parse_fixed(contract.input_precision)
    reuse_of = resolve_reuse(layers, reuse)
    top_text, kernels, info = build_top(layers, in_kif, top, pixels_per_beat, latency_cutoff, lanes, reuse_of)
    prims = alkaid_primitives()
    for name, text in prims.items():
        write_text(out / name, text)
    lane_lib = ["edgekd_lanes.v"] if info["lanes"] > 1 else []
    files = [*prims] + ["edgekd_stream.v", *lane_lib] + [f"{k.module}.v" for k in kernels] + [f"{top}.v"]
    write_text(out / "edgekd_stream.v", STREAM_LIB)
    if lane_lib:
        write_text(out / "edgekd_lanes.v", LANE_LIB)
    for k in kernels:
        write_text(out / f"{k.module}.v", k.verilog)
    write_text(out / f"{top}.v", top_text)
    gen_s = time.perf_counter() - t0

    x = contract.verify_inputs()
    if n_vectors is not None:
        x = x[:n_vectors]
    y = np.asarray(contract.reference_outputs(), dtype=np.float64)[: len(x)]
    p = info["lanes"] if info["lanes"] > 1 else int(pixels_per_beat)
    ok, of = info["out_kif"][0], info["out_kif"][2]
    manifest = {
        "top": top,
        "verilog": files,
        "family": family,
        "ports": ["clk", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast", "s_axis_tuser",
                  "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"],
        "reset": "rst: synchronous, active high",
        "in_width": info["in_width"],
        "out_width": info["out_width"],
        "beats_per_image": info["beats_per_image"],
        "pixels_per_beat": p,
        "outputs_per_image": info["outputs_per_image"],
        "input_layout": {"elements_per_beat": p * layers[0].in_shape[2], "element_bits": _bits(in_kif),
                         "signed": bool(in_kif[0]), "frac_bits": in_kif[2], "precision": contract.input_precision,
                         "order": "element e at bits [e*element_bits +: element_bits]; pixels channels-last "
                                  "(row-major H, W; channels innermost), pixel 0 of a beat lowest; TUSER on the "
                                  "first beat of an image, TLAST on its last"},
        "output_layout": {"elements_per_beat": info["out_elements"], "element_bits": _bits(tuple(info["out_kif"])),
                          "signed": bool(ok), "frac_bits": of, "kif": info["out_kif"],
                          "names": list(contract.output_names) if info["out_elements"] == len(contract.output_names)
                          else None,
                          "order": "element e at bits [e*element_bits +: element_bits]; value = signed/unsigned "
                                   "integer * 2^-frac_bits; TLAST on the last beat of an image"},
        "vectors": {"file": VECTORS, "n": int(len(x)),
                    "arrays": "inputs (N, beats_per_image, ceil(in_width/64)) uint64, outputs (N, "
                              "outputs_per_image, ceil(out_width/64)) uint64; word j holds bits [64j +: 64]"},
        "layers": [l.describe() for l in layers],
        "input_shape": list(in_shape),
        "input_kif": list(in_kif),
        "stages": info["stages"],
        "ii_cycles_per_pixel": 1,
        "frame_gap_cycles": info["frame_gap_cycles"],
        "frame_hold_cycles": info["frame_hold_cycles"],  # s_axis_tready low after each image (gap + unpack drain)
        "reuse": {name: r for name, r in reuse_of.items()},
        "interval_cycles_per_image": info["image_interval_cycles"],
        "lanes": info["lanes"],
        "alkaid_cost": float(sum(s.get("cost", 0.0) * s.get("instances", 1) for s in info["stages"])),
        "latency_cutoff": latency_cutoff,
        "generate_seconds": round(gen_s, 2),
    }
    write_vectors(manifest, contract, x, y, out / VECTORS)
    write_json(out / MANIFEST, manifest)
    log.info("RTL for %s: %d kernels, %d files in %s (%.1f s)", contract.qonnx, len(kernels), len(files), out, gen_s)
    return manifest
