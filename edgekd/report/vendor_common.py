"""What every vendor report parser shares: `VendorReportError`, reading a file, and turning a report cell into a
number (`_num`: None for undef/NA, an error naming the file and the element or line otherwise).

Also the reader of the `| a | b |` table rows that Vivado HLS, Vitis HLS and Vivado all print (`_cells`).
Kept under the parsers (edgekd.report.vendor_hls, vendor_vivado, vendor_board) so that the error and the
number rules are written once.
"""

from __future__ import annotations

import re
from pathlib import Path


class VendorReportError(ValueError):
    """A vendor report or measurement file that cannot be parsed; names the file and the element/line."""


_UNDEF = {"undef", "na", "n/a", "-", ""}


def _num(text: str | None, path: Path, where: str) -> int | float | None:
    """A number from a report cell; None for undef/NA; error naming the file and element otherwise."""
    if text is None:
        return None
    t = text.strip()
    if t.lower() in _UNDEF:
        return None
    t = t.replace(",", "")
    for suffix in (" ns", "ns", " us", "us", " ms", "ms", "%"):
        if t.endswith(suffix):
            t = t[: -len(suffix)].strip()
            break
    t = t.lstrip("~<>")
    try:
        v = float(t)
    except ValueError:
        raise VendorReportError(f"{path}: {where}: expected a number, found {text.strip()!r}") from None
    return int(v) if v.is_integer() and "." not in t else v


def _read_text(path: Path | str) -> tuple[Path, str]:
    path = Path(path)
    try:
        return path, path.read_text(errors="replace")
    except OSError as err:
        raise VendorReportError(f"{path}: cannot read ({err.strerror})") from None


_ROW = re.compile(r"^\s*\|(.*)\|\s*$")


def _cells(line: str) -> list[str] | None:
    m = _ROW.match(line)
    if not m:
        return None
    return [c.strip() for c in m.group(1).split("|")]
