"""Read the RTL backend's hand-over (rtl.json + vectors.npz) as an `RtlDesign` for the self-test top.

rtl.json: "top" (module), "verilog" (files relative to its folder, compile order), "family", "in_width",
"out_width", "beats_per_image", "outputs_per_image" (and the word layouts, which the self-test does not need:
it compares whole beats). vectors.npz: the verification sample's input beats and expected output beats, one row
per beat (an integer, or little-endian unsigned words for beats wider than 64 bits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.io import read_json
from edgekd.openfpga.selftest import RtlDesign, SelfTestError, beats_from_array

__all__ = ["load_rtl_design"]

MANIFEST = "rtl.json"
VECTORS = "vectors.npz"
# names of the two arrays in vectors.npz, first match wins
_IN_KEYS = ("in_beats", "input_beats", "inputs")
_OUT_KEYS = ("out_beats", "output_beats", "expected_beats", "outputs")
_REQUIRED = ("top", "verilog", "in_width", "out_width", "beats_per_image", "outputs_per_image")


def _pick(npz, keys: tuple[str, ...], path: Path) -> np.ndarray:
    for k in keys:
        if k in npz.files:
            return npz[k]
    raise SelfTestError(f"{path}: no array named {' or '.join(keys)} (it has {', '.join(npz.files) or 'none'})")


def load_rtl_design(folder: Path | str) -> RtlDesign:
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise SelfTestError(f"{path}: missing; the rtl step writes it (run the build's rtl step first)")
    meta = read_json(path)
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise SelfTestError(f"{path}: missing field(s) {', '.join(missing)}")
    vec_path = folder / VECTORS
    if not vec_path.is_file():
        raise SelfTestError(f"{vec_path}: missing; the rtl step writes the verification sample's beats there")
    with np.load(vec_path, allow_pickle=False) as npz:
        in_arr, out_arr = _pick(npz, _IN_KEYS, vec_path), _pick(npz, _OUT_KEYS, vec_path)
    design = RtlDesign(
        folder=folder, top=str(meta["top"]), verilog=tuple(meta["verilog"]), in_width=int(meta["in_width"]),
        out_width=int(meta["out_width"]), beats_per_image=int(meta["beats_per_image"]),
        outputs_per_image=int(meta["outputs_per_image"]),
        in_beats=beats_from_array(in_arr, int(meta["in_width"])),
        out_beats=beats_from_array(out_arr, int(meta["out_width"])),
        family=str(meta.get("family", "ecp5")), extra={k: v for k, v in meta.items() if k not in _REQUIRED},
    )
    design.check()
    return design
