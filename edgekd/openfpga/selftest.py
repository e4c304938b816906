"""The self-test top of open boards: the build's vectors in block RAM, streamed through the network, every
output compared, a hardware cycle counter, results on the LEDs and a UART line.

`RtlDesign` is what the RTL backend hands over (build/<name>/rtl/rtl.json + vectors.npz, or the stand-in of
edgekd.openfpga.standin); `write_selftest` renders `edgekd_selftest.v` (the self-test core and the board
wrapper `edgekd_board_top`), the two hex files the block RAMs load and the board's LPF.

The UART line (LINE_FORMAT) is fixed-width ASCII so the hardware can write it from a character table:

    EDGEKD PASS images=000A errors=0000 first=0000001C max=0000001C total=00000046 clock_hz=017D7840 design=1A2B3C4D

status PASS / FAIL (an output differed) / TIME (no output for TIMEOUT_CYCLES); then, in hexadecimal: the images
whose decision arrived, the output beats that differed (data or TLAST), the cycles from the first image's first
beat to its decision, the largest such count over the images (streamed back to back), the cycles from the
first image's first beat to the last decision, the clock the board runs the top at, and the first 32 bits of
the sha256 of the vectors (which design this is). `parse_line` / `read_result` read it back.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

import numpy as np

from edgekd import __version__
from edgekd.errors import BuildError
from edgekd.hw import Board
from edgekd.io import write_text

__all__ = ["BOARD_TOP", "LINE_FORMAT", "RtlDesign", "SelfTestError", "SelfTestResult", "parse_line",
           "read_result", "write_selftest"]

BOARD_TOP = "edgekd_board_top"
IN_HEX, OUT_HEX = "selftest_in.hex", "selftest_out.hex"
BAUD = 115200
LINE_FORMAT = ("EDGEKD <PASS|FAIL|TIME> images=%04X errors=%04X first=%08X max=%08X total=%08X clock_hz=%08X "
               "design=%08X\\r\\n")
# (name, hex digits, Verilog expression in edgekd_selftest or None for a constant known at generation)
_FIELDS: tuple[tuple[str, int, str | None], ...] = (
    ("images", 4, "images"), ("errors", 4, "errors"), ("first", 8, "lat_first"), ("max", 8, "lat_max"),
    ("total", 8, "total"), ("clock_hz", 8, None), ("design", 8, None),
)
_LINE_RE = re.compile(
    r"EDGEKD (?P<status>PASS|FAIL|TIME)" + "".join(rf" {n}=(?P<{n}>[0-9A-F]{{{d}}})" for n, d, _ in _FIELDS)
)


class SelfTestError(BuildError):
    """The self-test cannot be generated or did not pass; the message says what and where."""


@dataclass(frozen=True)
class RtlDesign:
    """A streaming network with the RTL backend's ports and the beats of its verification sample."""

    folder: Path                 # where the Verilog files are
    top: str
    verilog: tuple[str, ...]     # relative to folder, in compile order
    in_width: int
    out_width: int
    beats_per_image: int
    outputs_per_image: int
    in_beats: tuple[int, ...]    # all images' input beats, image after image
    out_beats: tuple[int, ...]   # the expected output beats
    family: str = "ecp5"
    extra: dict = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.in_beats) // self.beats_per_image

    def check(self) -> None:
        if self.beats_per_image < 1 or self.outputs_per_image < 1:
            raise SelfTestError(f"{self.folder}: beats_per_image and outputs_per_image must be at least 1")
        if len(self.in_beats) % self.beats_per_image or not self.in_beats:
            raise SelfTestError(f"{self.folder}: {len(self.in_beats)} input beats are not whole images of "
                                f"{self.beats_per_image} beats")
        if len(self.out_beats) != self.n_images * self.outputs_per_image:
            raise SelfTestError(f"{self.folder}: {len(self.out_beats)} expected output beats for {self.n_images} "
                                f"images of {self.outputs_per_image} outputs")
        for name, beats, width in (("input", self.in_beats, self.in_width), ("output", self.out_beats, self.out_width)):
            bad = next((i for i, b in enumerate(beats) if not 0 <= b < 1 << width), None)
            if bad is not None:
                raise SelfTestError(f"{self.folder}: {name} beat {bad} ({beats[bad]:#x}) does not fit {width} bits")
        for rel in self.verilog:
            if not (self.folder / rel).is_file():
                raise SelfTestError(f"{self.folder}: Verilog file {rel} named by the design is missing")

    def vectors_sha256(self) -> str:
        h = hashlib.sha256()
        for beats in (self.in_beats, self.out_beats):
            h.update(" ".join(f"{b:x}" for b in beats).encode() + b"\n")
        return h.hexdigest()


def beats_from_array(arr: np.ndarray, width: int) -> tuple[int, ...]:
    """Beats as Python ints from an array of ints (n,), of little-endian words (n, k) of any unsigned type, or
    of words per image (images, beats, k) as the RTL backend writes them (edgekd.rtl.generate)."""
    a = np.asarray(arr)
    if a.ndim == 3:
        a = a.reshape(-1, a.shape[-1])
    if a.ndim == 1:
        return tuple(int(v) for v in a.astype(object))
    if a.ndim == 2:
        bits = a.dtype.itemsize * 8
        return tuple(sum(int(w) << (bits * k) for k, w in enumerate(row)) & ((1 << width) - 1) for row in a)
    raise SelfTestError(f"beats array of shape {a.shape}: expected (beats,) or (beats, words)")


def _clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def _hex_lines(beats: Iterable[int], width: int) -> str:
    digits = (width + 3) // 4
    return "".join(f"{b:0{digits}x}\n" for b in beats)


def _line_chars(clock_hz: int, design: int) -> list[tuple[int, str, str | int]]:
    """(index, kind, value) per character of the UART line: a fixed char, the status, or a hex nibble."""
    out: list[tuple[int, str, str | int]] = []

    def text(s: str) -> None:
        base = len(out)
        out.extend([(base + k, "char", ord(c)) for k, c in enumerate(s)])

    text("EDGEKD ")
    for k in range(4):  # PASS / FAIL / TIME, chosen by st
        p, f, t = (ord(w[k]) for w in ("PASS", "FAIL", "TIME"))
        out.append((len(out), "status", f"(st == 4'd0 ? 8'd{p} : st == 4'd1 ? 8'd{f} : 8'd{t})"))
    constants = {"clock_hz": clock_hz, "design": design}
    for name, digits, expr in _FIELDS:
        text(f" {name}=")
        for d in reversed(range(digits)):
            if expr is None:
                text(f"{(constants[name] >> 4 * d) & 0xF:X}")
            else:
                out.append((len(out), "hex", f"{expr}[{4 * d + 3}:{4 * d}]"))
    text("\r\n")
    return out


def selftest_params(design: RtlDesign, board: Board, clock_hz: int, baud: int = BAUD) -> dict:
    """The template's values (also what edgekd.openfpga.verilator overrides for a fast simulation)."""
    n_in, n_out = len(design.in_beats), len(design.out_beats)
    design_id = int(design.vectors_sha256()[:8], 16)
    chars = _line_chars(clock_hz, design_id)
    pins = board.pins
    return {
        "version": __version__, "board_name": board.name, "part": board.part, "net_top": design.top,
        "board_top": BOARD_TOP, "in_hex": IN_HEX, "out_hex": OUT_HEX,
        "in_w": design.in_width, "out_w": design.out_width, "n_in": n_in, "n_out": n_out,
        "n_images": design.n_images, "beats_per_image": design.beats_per_image,
        "outs_per_image": design.outputs_per_image,
        "in_idx_w": _clog2(n_in + 1), "out_idx_w": _clog2(n_out + 1), "in_addr_w": _clog2(n_in),
        "out_addr_w": _clog2(n_out), "in_beat_w": _clog2(design.beats_per_image),
        "out_beat_w": _clog2(design.outputs_per_image), "img_w": _clog2(design.n_images + 1),
        "clks_per_bit": round(clock_hz / baud), "baud": baud, "repeat_cycles": clock_hz, "repeat_ms": 1000,
        "timeout_cycles": clock_hz, "line_chars": chars, "line_len": len(chars), "char_w": _clog2(len(chars)),
        "line_example": "".join(chr(v) if k == "char" else "?" for _, k, v in chars).strip(),
        "n_leds": len(pins["led"].sites), "has_reset_button": "reset_button" in pins,
        "reset_active_low": "reset_button" in pins and pins["reset_button"].active_low,
        "n_tie_high": len(pins["tie_high"].sites) if "tie_high" in pins else 0, "design_id": design_id,
    }


def write_selftest(out_dir: Path, design: RtlDesign, board: Board, *, clock_hz: int | None = None) -> dict:
    """Write edgekd_selftest.v, the hex files and the LPF into `out_dir`; returns the facts for the manifest."""
    from edgekd.openfpga.lpf import write_lpf
    from edgekd.project.generate import template_env

    design.check()
    if not board.is_open:
        raise SelfTestError(f"board {board.name} is built by a lab's {board.toolchain}; the self-test top is for "
                            "open boards (toolchain: open)")
    clock_hz = int(round(board.default_clock_mhz * 1e6)) if clock_hz is None else clock_hz
    params = selftest_params(design, board, clock_hz)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = template_env().get_template("openfpga/edgekd_selftest.v.j2").render(**params)
    write_text(out_dir / "edgekd_selftest.v", text)
    write_text(out_dir / IN_HEX, _hex_lines(design.in_beats, design.in_width))
    write_text(out_dir / OUT_HEX, _hex_lines(design.out_beats, design.out_width))
    write_lpf(out_dir / f"{board.name}.lpf", board, clock_mhz=board.default_clock_mhz)
    return {"top": BOARD_TOP, "files": ["edgekd_selftest.v", IN_HEX, OUT_HEX, f"{board.name}.lpf"],
            "images": design.n_images, "in_beats": len(design.in_beats), "out_beats": len(design.out_beats),
            "clock_hz": clock_hz, "baud": BAUD, "design_id": f"{params['design_id']:08X}",
            "vectors_sha256": design.vectors_sha256(), "line_format": LINE_FORMAT}


@dataclass(frozen=True)
class SelfTestResult:
    status: str          # PASS, FAIL or TIME
    images: int
    errors: int
    first_cycles: int    # first image: first beat -> decision
    max_cycles: int      # largest over the images streamed back to back
    total_cycles: int    # first beat of the first image -> last decision
    clock_hz: int
    design: str

    @property
    def passed(self) -> bool:
        return self.status == "PASS" and self.errors == 0

    @property
    def first_us(self) -> float:
        return self.first_cycles / self.clock_hz * 1e6

    def as_dict(self) -> dict:
        return {"status": self.status, "passed": self.passed, "images": self.images, "errors": self.errors,
                "latency_cycles": self.first_cycles, "latency_max_cycles": self.max_cycles,
                "total_cycles": self.total_cycles, "clock_hz": self.clock_hz, "design": self.design,
                "interval_cycles": round(self.total_cycles / self.images, 2) if self.images else None}


def parse_line(line: str) -> SelfTestResult | None:
    """The result in one UART line, or None when the line is not a (whole) self-test line."""
    m = _LINE_RE.search(line)
    if not m:
        return None
    v = {n: int(m.group(n), 16) for n, _, _ in _FIELDS}
    return SelfTestResult(status=m.group("status"), images=v["images"], errors=v["errors"], first_cycles=v["first"],
                          max_cycles=v["max"], total_cycles=v["total"], clock_hz=v["clock_hz"],
                          design=f"{v['design']:08X}")


def read_result(stream: IO, *, max_lines: int = 1000) -> SelfTestResult:
    """The first whole self-test line of a text or bytes stream (a serial port, a capture file, stdout).

    The top repeats its line, so a reader that starts mid-line simply takes the next one."""
    for k, raw in enumerate(stream):
        if k >= max_lines:
            break
        line = raw.decode("ascii", errors="replace") if isinstance(raw, (bytes, bytearray)) else raw
        result = parse_line(line)
        if result is not None:
            return result
    raise SelfTestError(f"no self-test line (format: {LINE_FORMAT}) in the first {max_lines} lines read")
