"""The streaming templates (edgekd_window, edgekd_maxpool) against numpy, on odd shapes, in one Verilator build.

Every configuration runs side by side in one harness: its own pixel stream with random valid gaps, the whole
harness with random clock-enable stalls (the AXI backpressure), two images back to back. Windows are compared
in order with numpy's (kh, kw, c) slices at every stride position; max pools with numpy's maxima (signed and
unsigned).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from edgekd.rtl.generate import _pack, unpack_words
from edgekd.rtl.sim import verilator_cmd
from edgekd.rtl.templates import STREAM_LIB, flush_beats, padded_out

# (kind, H, W, C, B, KH, KW, SH, SW, signed, pads (top, left, bottom, right))
NOPAD = (0, 0, 0, 0)
CONFIGS = [
    ("window", 5, 7, 1, 8, 3, 3, 1, 1, 0, NOPAD),
    ("window", 6, 5, 3, 5, 2, 3, 2, 1, 0, NOPAD),   # non-square kernel, row stride
    ("window", 7, 7, 1, 4, 1, 1, 1, 1, 0, NOPAD),   # k = 1
    ("window", 9, 8, 3, 3, 4, 4, 3, 2, 0, NOPAD),   # k = 4, strides 3 x 2, ragged edges
    ("pool", 6, 7, 3, 6, 2, 2, 2, 2, 1, NOPAD),     # signed max pool, odd width
    ("pool", 5, 5, 1, 5, 3, 3, 2, 2, 0, NOPAD),     # overlapping unsigned 3x3 / 2
    # zero padding (flush beats after each image's last pixel)
    ("window", 5, 7, 1, 8, 3, 3, 1, 1, 0, (1, 1, 1, 1)),   # 'same' 3x3, one channel
    ("window", 4, 6, 3, 5, 5, 5, 1, 1, 0, (2, 2, 2, 2)),   # 'same' 5x5 on fewer rows than the kernel, 3 channels
    ("window", 6, 5, 3, 4, 3, 3, 2, 2, 0, (1, 1, 1, 1)),   # 'same' at stride 2, odd width
    ("window", 7, 4, 1, 6, 3, 5, 1, 1, 0, (0, 2, 2, 1)),   # asymmetric, non-square kernel
    ("window", 3, 9, 1, 8, 2, 2, 1, 1, 0, (0, 0, 1, 1)),   # TF-style 'same' of an even kernel (bottom/right)
    ("window", 9, 1, 3, 7, 3, 1, 1, 1, 0, (1, 0, 1, 0)),   # one column (a 1-D feature map)
    ("window", 8, 6, 1, 4, 3, 3, 1, 1, 0, (1, 1, 0, 0)),   # top/left only: no flush
]
IMAGES = 2

TB = r"""
#include <cstdio>
#include <cstdint>
#include <vector>
#include "Vharness.h"
#include "verilated.h"
static const int DIN64 = %(din64)d, WIN64 = %(win64)d;
template <typename T> static void set_port(T& p, const uint64_t* w) { p = (T)w[0]; }
template <std::size_t N> static void set_port(VlWide<N>& p, const uint64_t* w) {
    for (std::size_t i = 0; i < N; ++i) p[i] = (uint32_t)((w[i / 2] >> (32 * (i %% 2))) & 0xffffffffu); }
template <typename T> static void get_port(const T& p, uint64_t* w) { w[0] = (uint64_t)p; }
template <std::size_t N> static void get_port(const VlWide<N>& p, uint64_t* w) {
    for (int j = 0; j < WIN64; ++j) w[j] = 0;
    for (std::size_t i = 0; i < N; ++i) w[i / 2] |= ((uint64_t)p[i]) << (32 * (i %% 2)); }
int main(int argc, char** argv) {
    FILE* f = fopen(argv[1], "rb"); FILE* o = fopen(argv[2], "wb");
    Vharness* t = new Vharness;
    t->rst = 1; t->ce = 1; t->vin = 0; t->clk = 0; t->eval();
    for (int i = 0; i < 3; ++i) { t->clk = 1; t->eval(); t->clk = 0; t->eval(); }
    t->rst = 0;
    std::vector<uint64_t> rec(2 + DIN64), out(2 + WIN64);
    while (fread(rec.data(), 8, rec.size(), f) == rec.size()) {
        t->clk = 0; t->ce = rec[0]; t->vin = rec[1]; set_port(t->din, &rec[2]); t->eval();
        out[0] = t->ce; out[1] = t->vout; get_port(t->win, &out[2]);
        fwrite(out.data(), 8, out.size(), o);
        t->clk = 1; t->eval();
    }
    fclose(f); fclose(o); delete t; return 0;
}
"""


def _harness() -> tuple[str, list[int], list[int]]:
    din_w, win_w, lines = [], [], []
    for i, (kind, h, w, c, b, kh, kw, sh, sw, s, pads) in enumerate(CONFIGS):
        din_w.append(c * b)
        win_w.append(kh * kw * c * b if kind == "window" else c * b)
    d_off, w_off = np.cumsum([0] + din_w), np.cumsum([0] + win_w)
    for i, (kind, h, w, c, b, kh, kw, sh, sw, s, pads) in enumerate(CONFIGS):
        din = f"din[{d_off[i + 1] - 1}:{d_off[i]}]"
        if kind == "window":
            pad = "".join(f", .{n}({v})" for n, v in zip(("PT", "PL", "PB", "PR"), pads))
            lines.append(f"edgekd_window #(.H({h}), .W({w}), .C({c}), .B({b}), .KH({kh}), .KW({kw}), .SH({sh}), "
                         f".SW({sw}){pad}) u{i} (.clk(clk), .rst(rst), .ce(ce), .din({din}), .vin(vin[{i}]), "
                         ".first(1'b0), "
                         f".win(win[{w_off[i + 1] - 1}:{w_off[i]}]), .vout(vout[{i}]));")
        else:
            lines.append(f"wire [{kh * kw * c * b - 1}:0] pw{i}; wire pv{i};")
            lines.append(f"edgekd_window #(.H({h}), .W({w}), .C({c}), .B({b}), .KH({kh}), .KW({kw}), .SH({sh}), "
                         f".SW({sw})) u{i} (.clk(clk), .rst(rst), .ce(ce), .din({din}), .vin(vin[{i}]), .first(1'b0), "
                         f".win(pw{i}), .vout(pv{i}));")
            lines.append(f"edgekd_maxpool #(.N({kh * kw}), .C({c}), .B({b}), .S({s})) p{i} (.clk(clk), .rst(rst), "
                         f".ce(ce), .win(pw{i}), .vin(pv{i}), .dout(win[{w_off[i + 1] - 1}:{w_off[i]}]), "
                         f".vout(vout[{i}]));")
    n = len(CONFIGS)
    top = (f"module harness (input clk, input rst, input ce, input [{d_off[-1] - 1}:0] din, input [{n - 1}:0] vin,\n"
           f"    output [{w_off[-1] - 1}:0] win, output [{n - 1}:0] vout);\n" + "\n".join(lines) + "\nendmodule\n")
    return top, din_w, win_w


def _expected(cfg, images: np.ndarray) -> list[np.ndarray]:
    kind, h, w, c, b, kh, kw, sh, sw, s, (pt, pl, pb, pr) = cfg
    out = []
    for img in images:
        img = np.pad(img, ((pt, pb), (pl, pr), (0, 0)))  # QONNX pads with 0 (the integer code of 0)
        for r in range(0, img.shape[0] - kh + 1, sh):
            for q in range(0, img.shape[1] - kw + 1, sw):
                win = img[r:r + kh, q:q + kw, :]
                out.append(win.reshape(-1) if kind == "window" else win.reshape(-1, c).max(axis=0))
    return out


@pytest.fixture(scope="module")
def harness_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtl_templates")
    top, din_w, win_w = _harness()
    (folder / "stream.v").write_text(STREAM_LIB)
    (folder / "harness.v").write_text(top)
    din64, win64 = (sum(din_w) + 63) // 64, (sum(win_w) + 63) // 64
    (folder / "tb.cpp").write_text(TB % {"din64": din64, "win64": win64})
    subprocess.run(["nice", *verilator_cmd(), "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", "-Wno-lint",
                    "-Wno-style", "--top-module", "harness", "-MAKEFLAGS",
                    "CFG_CXXFLAGS_PCH_I=-include CXX=g++ OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O0",
                    "stream.v", "harness.v", "tb.cpp"], cwd=folder, check=True, capture_output=True, timeout=600)
    rng = np.random.default_rng(7)
    streams, data = [], []
    for kind, h, w, c, b, kh, kw, sh, sw, s, pads in CONFIGS:
        lo, hi = (-(2 ** (b - 1)), 2 ** (b - 1)) if s else (0, 2**b)
        imgs = rng.integers(lo, hi, (IMAGES, h, w, c))
        data.append(imgs)
        streams.append(imgs.reshape(-1, c))
    # a padded window needs `flush_beats` idle enabled clocks after each image's last pixel (the top's frame gap)
    gaps = [flush_beats(h, w, kh, kw, sh, sw, pads) for _, h, w, c, b, kh, kw, sh, sw, s, pads in CONFIGS]
    pos, hold = [0] * len(CONFIGS), [0] * len(CONFIGS)
    records = []
    while any(p < len(st) for p, st in zip(pos, streams)) or len(records) < 10 or records[-1][0] < 0:
        ce = int(rng.random() < 0.8)
        vin, pix = 0, []
        for i, st in enumerate(streams):
            go = pos[i] < len(st) and hold[i] == 0 and rng.random() < 0.7
            px = st[pos[i]] if pos[i] < len(st) else np.zeros(st.shape[1], dtype=np.int64)
            pix.append(px)
            if go:
                vin |= 1 << i
                if ce:
                    pos[i] += 1
                    if pos[i] % (len(st) // IMAGES) == 0:
                        hold[i] = gaps[i]
            elif ce and hold[i]:
                hold[i] -= 1
        word = 0
        off = 0
        for i, px in enumerate(pix):
            bits = CONFIGS[i][4]
            for e, v in enumerate(px):
                word |= (int(v) & ((1 << bits) - 1)) << (off + e * bits)
            off += din_w[i]
        records.append([ce, vin] + [(word >> (64 * j)) & (2**64 - 1) for j in range(din64)])
        if len(records) > 20000:
            break
    records += [[1, 0] + [0] * din64] * (20 + max(gaps))  # drain (and flush)
    np.array(records, dtype=np.uint64).tofile(folder / "in.bin")
    subprocess.run(["./obj_dir/Vharness", "in.bin", "out.bin"], cwd=folder, check=True, timeout=60)
    out = np.fromfile(folder / "out.bin", dtype=np.uint64).reshape(-1, 2 + win64)
    return data, out, win_w


@pytest.mark.parametrize("idx", range(len(CONFIGS)), ids=[f"{c[0]}{c[1]}x{c[2]}x{c[3]}_k{c[5]}x{c[6]}_s{c[7]}x{c[8]}"
                                                         + ("_p" + "".join(map(str, c[10])) if any(c[10]) else "")
                                                         for c in CONFIGS])
def test_template_matches_numpy(harness_run, idx):
    data, out, win_w = harness_run
    kind, h, w, c, b, kh, kw, sh, sw, s, pads = CONFIGS[idx]
    off = int(sum(win_w[:idx]))
    got = []
    for row in out:
        if row[0] and (int(row[1]) >> idx) & 1:
            word = sum(int(row[2 + j]) << (64 * j) for j in range(len(row) - 2))
            seg = (word >> off) & ((1 << win_w[idx]) - 1)
            n_el = win_w[idx] // b
            n64 = (win_w[idx] + 63) // 64
            vals = unpack_words(np.array([[(seg >> (64 * j)) & (2**64 - 1) for j in range(n64)]], dtype=np.uint64),
                                b, n_el, bool(s))[0]
            got.append(np.array(vals, dtype=np.int64))
    want = _expected(CONFIGS[idx], data[idx])
    assert len(got) == len(want) and len(want) == IMAGES * int(np.prod(padded_out(h, w, kh, kw, sh, sw, pads)))
    for j, (g, e) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, e, err_msg=f"output {j}")


def test_pack_round_trips_signed_words():
    v = np.array([[[-3, 5, -128, 127]]])
    words = _pack(v, 8, 4)
    assert words.shape == (1, 1, 1)
    np.testing.assert_array_equal(unpack_words(words, 8, 4, True).astype(np.int64), v)
