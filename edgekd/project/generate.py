"""Render the board project: a self-contained folder a lab turns into a bitstream with one command.

Layout of the generated folder (every path inside it is relative to it):

    Makefile              targets hls, ip, bitstream, clean (and csim: the vendor C-simulation)
    README.md             what is in it, how to build and run it, what to send back for `edgekd report`
    hls/                  the hls4ml project (firmware/, weights, ap_types) with edgekd's exact testbench
      myproject_test.cpp  reads tb_data/, compares every output bit for bit, exits non-zero on a mismatch
      tb_data/            tb_input_features.dat, tb_output_predictions.dat (hls4ml's text format)
    top/                  edgekd_top.h/.cpp: the interface wrapper; edgekd_top_test.cpp: its testbench
    scripts/              hls_top.tcl, export_ip.tcl, block_design.tcl | ooc_synth.tcl, link.cfg (Alveo)
    driver/               edgekd_driver.py (PYNQ or XRT), absent for the frame grabber
    test_vectors/         inputs.npy (float64, in the network's input layout: NHWC for edgekd students), expected.npy, labels.npy

Every file is a jinja2 template from `firmware_templates/` rendered with StrictUndefined; no code is
built by joining strings. Test vectors are written with Python's shortest round-trip repr, so a value
on the fixed-point grid reads back exactly.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from edgekd import __version__
from edgekd.errors import ProjectError
from edgekd.hw import Board
from edgekd.io import load_npy, read_json, save_npy, write_text
from edgekd.project.interface import frame_geometry, pixel_channels_of_input
from edgekd.project.trigger import (
    groups_fifo_in_bram,
    region_contract,
    sort_decisions,
    threshold_on_grid,
    trigger_latency,
)

log = logging.getLogger(__name__)

__all__ = ["FixedType", "ProjectError", "generate_project", "parse_fixed", "templates_dir", "template_env",
           "write_tb_data", "read_tb_data", "TOP_NAME", "HLS_PROJECT_NAME", "decision_word_layout",
           "decode_decision_words"]

TOP_NAME = "edgekd_top"
HLS_PROJECT_NAME = "myproject"
# Vivado part prefix -> processing system of the block design
_PS_BY_PART = (("xczu", "zynq_ultra"), ("xc7z", "zynq7"))
# Vivado board files (board presets for the processing system); a custom board builds for the bare part
BOARD_PARTS = {
    "pynq-z2": "tul.com.tw:pynq-z2:part0:1.0",
    "zcu104": "xilinx.com:zcu104:part0:1.1",
    "zcu102": "xilinx.com:zcu102:part0:3.4",
}
DEFAULT_ALVEO_PLATFORM = {"alveo-u250": "xilinx_u250_gen3x16_xdma_4_1_202210_1"}
# hls4ml build artifacts that must not travel (compiled C-sim libraries; absolute paths inside)
_SKIP_FROM_HLS = ("*.so", "*.o", "hls4ml_config.yml", "build_lib.sh", "myproject_bridge.cpp")


def templates_dir() -> Path:
    """`firmware_templates/`: the wheel's copy (edgekd/resources/firmware_templates) first, then the repo root."""
    pkg = Path(__file__).resolve().parents[1]
    candidates = [pkg / "resources" / "firmware_templates", pkg.parent / "firmware_templates"]
    for c in candidates:
        if (c / "Makefile.j2").is_file():
            return c
    raise ProjectError(f"firmware templates not found (looked in {', '.join(str(c) for c in candidates)})")


def template_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class FixedType:
    """An ap_fixed / ap_ufixed element type: the C++ spelling and its grid."""

    ctype: str
    width: int
    integer: int
    signed: bool

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @property
    def raw_ctype(self) -> str:
        return f"ap_{'' if self.signed else 'u'}int<{self.width}>"

    def as_dict(self) -> dict[str, Any]:
        return {"ctype": self.ctype, "width": self.width, "integer": self.integer, "signed": self.signed,
                "frac": self.frac, "raw_ctype": self.raw_ctype}


_FIXED = re.compile(r"^ap_(u?)fixed<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,[^>]*)?>$")


def parse_fixed(ctype: str) -> FixedType:
    m = _FIXED.match(ctype.strip())
    if not m:
        raise ProjectError(f"'{ctype}' is not an ap_fixed/ap_ufixed type")
    return FixedType(ctype.strip(), int(m.group(2)), int(m.group(3)), m.group(1) != "u")


def _stream_types(defines_h: Path) -> dict[str, tuple[FixedType, int]]:
    """input_t and result_t of an io_stream hls4ml project: (element type, elements per stream word)."""
    text = defines_h.read_text()
    out: dict[str, tuple[FixedType, int]] = {}
    for name in ("input_t", "result_t"):
        m = re.search(r"typedef\s+nnet::array<\s*(ap_u?fixed<[^>]*>)\s*,\s*([0-9*\s]+)>\s+" + name + r"\s*;", text)
        if not m:
            raise ProjectError(
                f"{defines_h}: no 'typedef nnet::array<ap_fixed<...>, N> {name};' (the board project needs an "
                "io_stream hls4ml project with fixed-point input and output)")
        out[name] = (parse_fixed(m.group(1)), math.prod(int(t) for t in m.group(2).split("*")))
    return out


def _fmt(v: float) -> str:
    # repr is the shortest string that reads back to the same double; ap_fixed values up to 52 bits are exact
    return repr(float(v))


def write_tb_data(folder: Path, inputs: np.ndarray, expected: np.ndarray) -> None:
    """hls4ml's testbench format: one sample per line, values separated by spaces (flattened in the order
    the network reads them)."""
    x = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
    y = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    write_text(folder / "tb_input_features.dat", "".join(" ".join(map(_fmt, row)) + " \n" for row in x))
    write_text(folder / "tb_output_predictions.dat", "".join(" ".join(map(_fmt, row)) + " \n" for row in y))


def read_tb_data(path: Path) -> np.ndarray:
    rows = [[float(t) for t in line.split()] for line in Path(path).read_text().splitlines() if line.strip()]
    return np.asarray(rows, dtype=np.float64)


def _check_on_grid(x: np.ndarray, t: FixedType, what: str) -> None:
    scaled = np.asarray(x, dtype=np.float64) * 2.0 ** t.frac
    if not np.all(scaled == np.round(scaled)):
        raise ProjectError(f"{what} are not on the {t.ctype} grid; the test vectors would not be exact")


def decision_word_layout(score_bits: int, class_bits: int) -> dict[str, Any]:
    """Bit fields of the pixel-stream top's decision word (TDATA, LSB first; width rounded up to bytes)."""
    fields, lsb = [], 0
    for name, width, what in (
        ("score", score_bits, "raw score_t (two's complement; value = raw / 2^frac)"),
        ("cls", class_bits, "argmax of the logits"),
        ("trigger", 1, "sort pulse: valid, score >= threshold (and class == trigger class)"),
        ("valid", 1, "the region arrived whole (TUSER first, TLAST at every line end, no early TUSER)"),
    ):
        fields.append({"name": name, "lsb": lsb, "width": width, "what": what})
        lsb += width
    return {"fields": fields, "used": lsb, "width": 8 * math.ceil(lsb / 8)}


def decode_decision_words(words: np.ndarray, layout: dict[str, Any], score_frac: int) -> dict[str, np.ndarray]:
    """Raw decision words -> {score (value), cls, trigger, valid}, by the documented bit positions."""
    w = [int(v) for v in np.asarray(words).reshape(-1)]
    out: dict[str, np.ndarray] = {}
    for f in layout["fields"]:
        raw = np.array([(v >> f["lsb"]) & ((1 << f["width"]) - 1) for v in w], dtype=np.int64)
        if f["name"] == "score":
            raw = np.where(raw >= 1 << (f["width"] - 1), raw - (1 << f["width"]), raw)
            out["score"] = raw.astype(np.float64) / 2.0**score_frac
        else:
            out[f["name"]] = raw
    return out


def _input_block(export_dir: Path) -> int:
    """The student's k x k pixel blocks per stream item (export.json or contract.json `input_block`; 1 when
    absent)."""
    for name in ("export.json", "contract.json"):
        path = Path(export_dir) / name
        if path.is_file():
            return int(read_json(path).get("input_block", 1))
    return 1


def _pack_cycles(board: Board, export_dir: Path, channels: int = 1) -> int:
    """Pipeline stages of the pixel-stream top's packing: pack_pixels (1) at one grey pixel per clock without
    blocks, read_beats + write_items (2) otherwise (several pixels per beat, k x k blocks or packed colour)."""
    from edgekd.project.interface import packing_stages

    return packing_stages(board.pixels_per_clock, _input_block(export_dir), channels)


def _ps_kind(part: str) -> str | None:
    for prefix, kind in _PS_BY_PART:
        if part.lower().startswith(prefix):
            return kind
    return None


def _render(env: Environment, template: str, dest: Path, ctx: dict[str, Any]) -> None:
    write_text(dest, env.get_template(template).render(**ctx))


def generate_project(
    out_dir: Path,
    *,
    hls_dir: Path,
    export_dir: Path,
    board: Board,
    name: str,
    class_names: list[str],
    trigger_threshold: float | None = 0.0,
    trigger_class: int | None = None,
    host_postprocessing: list[dict] | None = None,
    trigger_rule: dict | None = None,
    trigger_evaluation: dict | None = None,
) -> dict[str, Any]:
    """Write the board project into `out_dir` from a build's `hls/` and `export/` folders.

    `trigger_threshold` None: 0 (sort every decision; a caller with a labelled validation split chooses one,
    see edgekd.steps.project.sort_trigger). `trigger_rule` / `trigger_evaluation` (how the trigger was chosen;
    its precision and recall on validation and test) are recorded with the trigger.

    Returns the facts the step records in project.json (board, part, clock, interface, files, trigger).
    """
    out_dir = Path(out_dir)
    hls = read_json(hls_dir / "hls.json")
    estimate = read_json(hls_dir / "estimate.json")
    src = hls_dir / "project"
    if hls["io_type"] != "io_stream":
        raise ProjectError(
            f"hls.io_type is {hls['io_type']!r}: the board wrappers feed hls4ml's stream interface; "
            "set hls.io_type: io_stream")
    types = _stream_types(src / "firmware" / "defines.h")
    in_t, in_word = types["input_t"]
    out_t, out_word = types["result_t"]
    for t, what in ((in_t, "input"), (out_t, "output")):
        if t.width > 32:
            raise ProjectError(f"the {what} type {t.ctype} is wider than the 32-bit words of the interfaces")

    x = load_npy(export_dir / "verify_inputs.npy").astype(np.float64)
    # The network reads its input in the order of its graph input: channels-last (NHWC, the order a camera
    # delivers pixels) for edgekd's students; the test vectors travel in that order.
    layout = hls.get("input_layout", "NCHW")
    if layout == "NHWC" and x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = load_npy(export_dir / "qonnx_outputs.npy").astype(np.float64).reshape(len(x), -1)
    labels_path = export_dir / "verify_labels.npy"
    labels = load_npy(labels_path) if labels_path.exists() else np.full(len(x), -1)
    n_in, n_out = int(np.prod(x.shape[1:])), int(y.shape[1])
    if n_in % in_word or n_out % out_word:
        raise ProjectError(f"stream words ({in_word} in, {out_word} out) do not divide {n_in} inputs / {n_out} outputs")
    _check_on_grid(x, in_t, "export/verify_inputs.npy values")
    _check_on_grid(y, out_t, "export/qonnx_outputs.npy values")
    if trigger_class is not None and not 0 <= trigger_class < n_out:
        raise ProjectError(f"hls.trigger_class {trigger_class} is not a class index (0..{n_out - 1})")
    block = _input_block(export_dir)
    channels = pixel_channels_of_input(x.shape, layout, block, board.interface)

    # 1. the hls4ml project, minus build artifacts, plus edgekd's exact testbench and the test vectors
    hls_out = out_dir / "hls"
    shutil.copytree(src, hls_out, ignore=shutil.ignore_patterns(*_SKIP_FROM_HLS, "tb_data"))
    write_tb_data(hls_out / "tb_data", x, y)
    save_npy(out_dir / "test_vectors" / "inputs.npy", x)
    save_npy(out_dir / "test_vectors" / "expected.npy", y)
    save_npy(out_dir / "test_vectors" / "labels.npy", np.asarray(labels, dtype=np.int64))

    interface = board.interface
    clock_mhz = float(hls["clock_mhz"])
    if trigger_threshold is None:
        trigger_threshold = 0.0
        trigger_rule = trigger_rule or {"chosen_on": "default", "rule": "threshold 0: every decision sorts"}
    score_t = FixedType(f"ap_fixed<{out_t.width + 1},{out_t.integer + 1}>", out_t.width + 1, out_t.integer + 1, True)
    thr_grid = threshold_on_grid(trigger_threshold, score_t.frac)
    # clamp into the score range so the C++ constant does not wrap
    thr_grid = min(max(thr_grid, -(2.0 ** (score_t.integer - 1))), 2.0 ** (score_t.integer - 1) - 2.0 ** -score_t.frac)
    geometry = frame_geometry(board, x.shape, layout, block, in_word, channels)
    trigger = None
    if interface == "pixel_stream":
        pack = _pack_cycles(board, export_dir, channels)
        trigger = {
            "threshold": float(trigger_threshold),
            "threshold_on_grid": thr_grid,
            "trigger_class": trigger_class,
            "score": "logit[class] - largest other logit",
            **trigger_latency(estimate["cycles"], n_out, clock_mhz, pack_cycles=pack,
                              groups_fifo_bram=pack > 1 and groups_fifo_in_bram(
                                  geometry.pixels_per_clock, block, channels, n_in, in_t.width),
                              beats=geometry.n_beats),
            "region": region_contract(estimate["ii_cycles"], geometry.n_beats, clock_mhz),
        }
        _, _, fire = sort_decisions(y, thr_grid, trigger_class)
        trigger["fires_on_test_vectors"] = int(fire.sum())
        trigger["choice"] = trigger_rule or {"chosen_on": "config"}
        if trigger_evaluation is not None:
            trigger.update(trigger_evaluation)

    ctx: dict[str, Any] = {
        "name": name,
        "edgekd_version": __version__,
        "top": TOP_NAME,
        "project_name": HLS_PROJECT_NAME,
        "board": board.model_dump(mode="json"),
        "interface": interface,
        "vendor_flow": board.vendor_flow,
        "part": hls["part"],
        "clock_mhz": clock_mhz,
        "clock_period_ns": float(hls["clock_period_ns"]),
        "hls_backend": hls["backend"],
        "hls_tool": "vitis_hls",  # or vitis-run --mode hls --tcl (Vitis 2024.2+); see the Makefile
        "ps": _ps_kind(hls["part"]),
        "board_part": BOARD_PARTS.get(board.name, ""),
        "platform": DEFAULT_ALVEO_PLATFORM.get(board.name, "xilinx_u250_gen3x16_xdma_4_1_202210_1"),
        "in_t": in_t.as_dict(),
        "out_t": out_t.as_dict(),
        "score_t": score_t.as_dict(),
        "n_in": n_in,
        "n_out": n_out,
        "in_word": in_word,
        "out_word": out_word,
        "input_shape": list(x.shape[1:]),
        "n_samples": int(len(x)),
        "class_names": list(class_names),
        # a bring-your-own model's trailing Softmax/ArgMax/TopK, applied by the driver (edgekd.export.prepare)
        "host_postprocessing": list(host_postprocessing or []),
        "class_bits": max(1, math.ceil(math.log2(n_out))),
        "trigger": trigger,
        "trigger_threshold_literal": _fmt(thr_grid),
        "trigger_class_literal": -1 if trigger_class is None else int(trigger_class),
        "estimate": {"cycles": estimate["cycles"], "us": estimate["us"], "ii_cycles": estimate["ii_cycles"]},
        "input_layout": layout,
        "pixel_bits": 8 * math.ceil(in_t.width / 8),
        "frame": geometry.frame(),
        "pixels_per_clock": geometry.pixels_per_clock,
        "input_block": int(block),
        # values per pixel on the pixel stream: 1 grey, 3 packed colour (channel c of pixel p in value slot p C + c)
        "channels": int(channels),
        "n_beats": geometry.n_beats,
        "n_groups": geometry.n_groups,
        "decision_word": decision_word_layout(score_t.width, max(1, math.ceil(math.log2(n_out)))),
    }
    if trigger is not None:
        trigger["decision_word"] = ctx["decision_word"]
    if interface == "axi_stream_dma" and ctx["ps"] is None:
        raise ProjectError(f"board {board.name}: part {hls['part']} is not a Zynq (xc7z*) or Zynq UltraScale+ "
                           "(xczu*) part; the AXI-DMA block design needs a processing system")

    env = template_env()
    _render(env, "hls/myproject_test.cpp.j2", hls_out / f"{HLS_PROJECT_NAME}_test.cpp", ctx)
    _render(env, "top/edgekd_top.h.j2", out_dir / "top" / f"{TOP_NAME}.h", ctx)
    _render(env, f"top/edgekd_top_{interface}.cpp.j2", out_dir / "top" / f"{TOP_NAME}.cpp", ctx)
    _render(env, "top/edgekd_top_test.cpp.j2", out_dir / "top" / f"{TOP_NAME}_test.cpp", ctx)
    _render(env, "scripts/hls_top.tcl.j2", out_dir / "scripts" / "hls_top.tcl", ctx)
    _render(env, "scripts/export_ip.tcl.j2", out_dir / "scripts" / "export_ip.tcl", ctx)
    _render(env, "scripts/cosim.tcl.j2", out_dir / "scripts" / "cosim.tcl", ctx)
    if interface == "axi_stream_dma":
        _render(env, "scripts/block_design.tcl.j2", out_dir / "scripts" / "block_design.tcl", ctx)
    elif interface == "xrt_kernel":
        _render(env, "scripts/link.cfg.j2", out_dir / "scripts" / "link.cfg", ctx)
    else:
        _render(env, "scripts/ooc_synth.tcl.j2", out_dir / "scripts" / "ooc_synth.tcl", ctx)
    if interface in ("axi_stream_dma", "xrt_kernel"):
        _render(env, "driver/edgekd_driver.py.j2", out_dir / "driver" / "edgekd_driver.py", ctx)
    _render(env, "Makefile.j2", out_dir / "Makefile", ctx)
    _render(env, "README.md.j2", out_dir / "README.md", ctx)

    files = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    return {
        "board": board.name,
        "part": hls["part"],
        "clock_mhz": clock_mhz,
        "interface": interface,
        "vendor_flow": board.vendor_flow,
        "hls_backend": hls["backend"],
        "top": TOP_NAME,
        "n_samples": int(len(x)),
        "input_type": in_t.ctype,
        "output_type": out_t.ctype,
        "files": files,
        "trigger": trigger,
    }
