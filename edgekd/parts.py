"""The FPGA parts edgekd knows by name: their family, and for Lattice ECP5 the packages, speed grades, ball
grids and datasheet resources the open flow (Yosys `synth_ecp5`, nextpnr-ecp5) needs.

A board file names its part; `family_of_part` refuses a part it does not know (naming it and what is known)
instead of letting a synthesis tool fail minutes later. AMD families are the `-family` names of Yosys's
`synth_xilinx` (xc7: 7-series and Zynq-7000; xcu: UltraScale; xcup: UltraScale+, Zynq MPSoC, Alveo).

ECP5 sources: Lattice FPGA-DS-02012 (ECP5 and ECP5-5G family data sheet), table 1.1 (LUT4s, EBR blocks of
18 Kb, 18x18 multipliers) and its package/pin tables; nextpnr-ecp5's device options (`--85k`, `--um-85k`,
`--um5g-85k`, `--package`, `--speed`). A ball name is a row letter (I, O, Q, S, X, Z are not used) and a
column number inside the package's grid; whether that ball is a user I/O and not a supply ball is checked
by nextpnr when it places the pin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ECP5_DEVICES", "ECP5_PACKAGES", "Ecp5Device", "PartError", "check_ball", "ecp5_device",
           "family_of_part", "nextpnr_device_args"]


class PartError(ValueError):
    """A part, package, speed grade or pin that edgekd does not know; the message names it."""


AMD_FAMILIES = ("xc7", "xcu", "xcup")
FAMILIES = (*AMD_FAMILIES, "ecp5")

# (pattern on the lower-case AMD part, family); the first match wins
_AMD_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^xc7[zaksv]\d", "xc7"),          # 7-series, Zynq-7000
    (r"^xc(ku|vu)\d+p", "xcup"),        # Kintex/Virtex UltraScale+ (xcku5p, xcvu9p)
    (r"^xczu\d", "xcup"),               # Zynq UltraScale+ MPSoC / RFSoC
    (r"^xcu\d", "xcup"),                # Alveo cards (xcu250, xcu280, xcu50)
    (r"^xc(ku|vu)\d", "xcu"),           # Kintex/Virtex UltraScale (xcku035, xcvu095)
)


@dataclass(frozen=True)
class Ecp5Device:
    lut4: int
    ebr_18k: int
    mult_18x18: int
    packages: tuple[str, ...]


# FPGA-DS-02012 table 1.1; packages per device from its ordering tables
ECP5_DEVICES: dict[str, Ecp5Device] = {
    "12F": Ecp5Device(12096, 32, 28, ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144")),
    "25F": Ecp5Device(24288, 56, 28, ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144")),
    "45F": Ecp5Device(43848, 108, 72, ("CABGA256", "CABGA381", "CABGA554", "CSFBGA285", "TQFP144")),
    "85F": Ecp5Device(83640, 208, 156, ("CABGA381", "CABGA554", "CABGA756", "CSFBGA285")),
}

# Ball grids edgekd can check pin names against: rows (letters without I, O, Q, S, X, Z) x columns.
_ROWS = "ABCDEFGHJKLMNPRTUVWY"
ECP5_PACKAGES: dict[str, tuple[str, int]] = {
    "CABGA256": (_ROWS[:16], 16),   # 14 x 14 mm, 1.0 mm pitch, rows A-T
    "CABGA381": (_ROWS[:20], 20),   # 17 x 17 mm, 0.8 mm pitch, rows A-Y
}
_SPEEDS = (6, 7, 8)
_ECP5_RE = re.compile(r"^LFE5(U|UM|UM5G)-(12|25|45|85)F$")


def family_of_part(part: str) -> str:
    """The family of a known part (xc7, xcu, xcup, ecp5); PartError naming the part otherwise."""
    if _ECP5_RE.match(part):
        ecp5_device(part)
        return "ecp5"
    low = part.lower()
    for pattern, family in _AMD_PATTERNS:
        if re.match(pattern, low):
            return family
    raise PartError(
        f"part {part!r} is not a part edgekd knows: AMD 7-series (xc7z/xc7a/xc7k/xc7v/xc7s...), UltraScale "
        f"(xcku/xcvu + number), UltraScale+ (xczu, xcku/xcvu + number + p, Alveo xcu...), or Lattice ECP5 "
        f"(LFE5U-, LFE5UM-, LFE5UM5G- with 12F/25F/45F/85F, package and speed given separately)"
    )


def ecp5_device(part: str) -> Ecp5Device:
    m = _ECP5_RE.match(part)
    if not m:
        raise PartError(f"part {part!r} is not a Lattice ECP5 part (LFE5U-85F, LFE5UM-45F, LFE5UM5G-85F, ...)")
    if m.group(1) != "U" and m.group(2) == "12":
        raise PartError(f"part {part!r} does not exist: the 12F comes only as LFE5U-12F")
    return ECP5_DEVICES[f"{m.group(2)}F"]


def check_ecp5_package(part: str, package: str | None, speed: int | None) -> None:
    dev = ecp5_device(part)
    if package is None or speed is None:
        raise PartError(f"part {part}: an ECP5 board must give package (e.g. CABGA381) and speed (6, 7 or 8)")
    if package not in dev.packages:
        raise PartError(f"package {package!r} is not made for {part}; its packages: {', '.join(dev.packages)}")
    if speed not in _SPEEDS:
        raise PartError(f"speed {speed!r} of {part}: ECP5 speed grades are {', '.join(map(str, _SPEEDS))}")


def check_ball(package: str, ball: str) -> None:
    """PartError unless `ball` (e.g. G2) is a ball of `package`'s grid."""
    if package not in ECP5_PACKAGES:
        raise PartError(
            f"package {package}: edgekd does not know its ball grid, so pin {ball!r} cannot be checked (known: "
            f"{', '.join(ECP5_PACKAGES)}); add the grid to ECP5_PACKAGES in edgekd/parts.py"
        )
    rows, cols = ECP5_PACKAGES[package]
    m = re.fullmatch(r"([A-Z])(\d{1,2})", ball)
    if not m or m.group(1) not in rows or not 1 <= int(m.group(2)) <= cols:
        raise PartError(f"pin {ball!r} is not a ball of {package} (rows {rows[0]}-{rows[-1]} without I/O/Q/S, "
                        f"columns 1-{cols})")


def nextpnr_device_args(part: str, package: str, speed: int) -> list[str]:
    """nextpnr-ecp5's options selecting the die, package and speed grade of a part."""
    m = _ECP5_RE.match(part)
    if not m:
        raise PartError(f"part {part!r} is not a Lattice ECP5 part")
    prefix = {"U": "", "UM": "um-", "UM5G": "um5g-"}[m.group(1)]
    return [f"--{prefix}{m.group(2)}k", "--package", package, "--speed", str(speed)]
