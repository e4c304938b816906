"""A stand-in network with the RTL backend's stream ports and exactly known outputs.

It lets the open flow (self-test top, Verilator, Yosys, nextpnr, ecppack) be tested and benchmarked on its
own, at any size: `lanes` constant-weight dot products over each beat's `pixels` values, accumulated over an
image, one output word per image (the XOR of the lanes' low `out_width` bits). Its cost grows with
lanes x pixels (constant multipliers and adders), so the benchmark scales it to about 5k, 20k and 60k LUT4.
`reference` computes the outputs in numpy; `write_standin` writes the Verilog, rtl.json and vectors.npz in the
layout the RTL backend writes them, so `load_rtl_design` reads both alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd import __version__
from edgekd.io import write_json, write_text
from edgekd.openfpga.selftest import RtlDesign

__all__ = ["STANDIN_TOP", "reference", "standin_design", "write_standin"]

STANDIN_TOP = "edgekd_standin_net"


def _weights(lanes: int, pixels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-127, 128, size=(lanes, pixels))


def reference(x: np.ndarray, weights: np.ndarray, out_width: int) -> np.ndarray:
    """Outputs per image of `x` (images, beats, pixels) unsigned values: XOR over lanes of the low bits of
    sum over beats and pixels of w[lane, pixel] * x (exact integers, wrapped to 32-bit two's complement)."""
    acc = np.einsum("nbp,lp->nl", x.astype(np.int64), weights.astype(np.int64))
    acc = acc & 0xFFFFFFFF  # the RTL's 32-bit accumulators
    low = acc & ((1 << out_width) - 1)
    return np.bitwise_xor.reduce(low, axis=1)


def standin_design(folder: Path, *, lanes: int = 4, pixels: int = 4, bits: int = 8, beats_per_image: int = 3,
                   images: int = 6, out_width: int = 16, seed: int = 0) -> RtlDesign:
    """Write the stand-in into `folder` (Verilog, rtl.json, vectors.npz) and return it as an RtlDesign."""
    write_standin(folder, lanes=lanes, pixels=pixels, bits=bits, beats_per_image=beats_per_image, images=images,
                  out_width=out_width, seed=seed)
    from edgekd.openfpga.design import load_rtl_design

    return load_rtl_design(folder)


def write_standin(folder: Path, *, lanes: int, pixels: int, bits: int, beats_per_image: int, images: int,
                  out_width: int, seed: int) -> None:
    from edgekd.project.generate import template_env

    folder.mkdir(parents=True, exist_ok=True)
    w = _weights(lanes, pixels, seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.integers(0, 1 << bits, size=(images, beats_per_image, pixels))
    y = reference(x, w, out_width)
    in_w = pixels * bits
    shifts = np.arange(pixels, dtype=object) * bits
    in_beats = [int(sum(int(v) << int(s) for v, s in zip(beat, shifts))) for img in x for beat in img]
    text = template_env().get_template("openfpga/standin_net.v.j2").render(
        version=__version__, top=STANDIN_TOP, lanes=lanes, pixels=pixels, bits=bits, in_w=in_w, out_w=out_width,
        weights=[[f"{'-' if v < 0 else ''}32'sd{abs(int(v))}" for v in row] for row in w])
    write_text(folder / "standin_net.v", text)
    words = (in_w + 63) // 64
    in_arr = np.array([[(b >> (64 * k)) & (2**64 - 1) for k in range(words)] for b in in_beats], dtype=np.uint64)
    np.savez(folder / "vectors.npz", in_beats=in_arr, out_beats=y.astype(np.uint64))
    write_json(folder / "rtl.json", {
        "top": STANDIN_TOP, "verilog": ["standin_net.v"], "family": "ecp5", "in_width": in_w,
        "out_width": out_width, "beats_per_image": beats_per_image, "pixels_per_beat": pixels,
        "outputs_per_image": 1, "images": images,
        "stand_in": {"lanes": lanes, "pixels": pixels, "bits": bits, "seed": seed},
    })
