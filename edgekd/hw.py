"""Target boards: part, clock, interface and the resources a design may use.

A board is a small YAML file in `hw/boards/<name>.yaml` (read with `yaml.safe_load`, validated by the strict
pydantic model `Board`, unknown keys are errors). `load_board("pynq-z2")` reads a built-in board;
`load_board("my/board.yaml")` reads any file. A bad file raises `BoardError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from edgekd.io import read_yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Board", "BoardError", "BoardResources", "boards_dir", "list_boards", "load_board"]


class BoardError(ValueError):
    """A board that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoardResources(_Strict):
    """Programmable-logic resources of the part (datasheet counts; BRAM in 18 Kb halves)."""

    lut: int = Field(..., gt=0)
    ff: int = Field(..., gt=0)
    dsp: int = Field(..., ge=0)
    bram_18k: int = Field(..., ge=0)
    uram: int = Field(0, ge=0)


class Board(_Strict):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    part: str = Field(..., min_length=3, description="Xilinx part, e.g. xc7z020clg400-1")
    default_clock_mhz: float = Field(..., gt=0, le=1000)
    interface: Literal["axi_stream_dma", "xrt_kernel", "pixel_stream"]
    vendor_flow: Literal["vivado", "vitis"]
    resources: BoardResources
    pixels_per_clock: int = Field(
        1, ge=1, le=64,
        description="pixel_stream boards: pixels the frame grabber hands the user logic per clock (row-major)",
    )
    description: str | None = None

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.default_clock_mhz


def boards_dir() -> Path:
    """Folder of the built-in boards.

    `hw/` sits at the repository root next to the package (editable installs and a source checkout); a wheel
    may instead carry it inside the package as `edgekd/hw/boards`. The first that exists wins.
    """
    pkg = Path(__file__).resolve().parent
    candidates = [pkg / "resources" / "hw" / "boards", pkg.parent / "hw" / "boards"]
    for c in candidates:
        if c.is_dir():
            return c
    raise BoardError(f"built-in boards not found (looked in {', '.join(str(c) for c in candidates)})")


def list_boards() -> list[str]:
    """Names of the built-in boards, sorted."""
    return sorted(p.stem for p in boards_dir().glob("*.yaml"))


def _format_error(err: ValidationError, source: Path) -> str:
    lines = [f"{source}: invalid board file"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key (check the spelling)" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_board(data: object, source: Path | str = "<board>") -> Board:
    """Validate an already-parsed mapping as a board."""
    source = Path(source)
    if not isinstance(data, dict):
        raise BoardError(f"{source}: the top level must be a mapping of keys to values")
    try:
        return Board.model_validate(data)
    except ValidationError as err:
        raise BoardError(_format_error(err, source)) from None


def load_board(name_or_path: str | Path) -> Board:
    """A built-in board by name (`list_boards()`), or a board YAML file by path."""
    text_arg = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or text_arg.endswith((".yaml", ".yml")) or "/" in text_arg
    if looks_like_path:
        path = Path(name_or_path)
    else:
        path = boards_dir() / f"{text_arg}.yaml"
        if not path.is_file():
            raise BoardError(f"unknown board {text_arg!r}; built-in boards: {', '.join(list_boards())}")
    board = parse_board(read_yaml(path, BoardError, "board file"), source=path)
    if not looks_like_path and board.name != text_arg:
        raise BoardError(f"{path}: name: {board.name!r} does not match the file name {text_arg!r}")
    return board
