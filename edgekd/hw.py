"""Target boards: part, clock, interface and the resources a design may use.

A board is a small YAML file in `hw/boards/<name>.yaml` (read with `yaml.safe_load`, validated by the strict
pydantic model `Board`, unknown keys are errors). `load_board("pynq-z2")` reads a built-in board;
`load_board("my/board.yaml")` reads any file. A bad file raises `BoardError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from edgekd.io import read_yaml
from edgekd.parts import PartError, check_ball, check_ecp5_package, ecp5_device, family_of_part
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["Board", "BoardError", "BoardPin", "BoardResources", "PIN_ROLES", "boards_dir", "list_boards",
           "load_board"]


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


# What a board's pins are for. The self-test top of open boards (edgekd.openfpga) uses clock, led, uart_tx and
# (when given) reset_button and tie_high; uart_rx is recorded so a later top can use it.
PIN_ROLES = ("clock", "led", "uart_tx", "uart_rx", "reset_button", "tie_high")


class BoardPin(_Strict):
    """Balls of one role, from the board's published constraint file (one ball per bit, bit 0 first)."""

    sites: list[str] = Field(..., min_length=1)
    io_type: Literal["LVCMOS33", "LVCMOS25", "LVCMOS18"] = "LVCMOS33"
    drive: Literal[4, 8, 12, 16] | None = None
    pullmode: Literal["NONE", "UP", "DOWN"] | None = None
    active_low: bool = False
    names: list[str] | None = Field(None, description="the signals' names in the board's own constraint file")


class Board(_Strict):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    part: str = Field(..., min_length=3, description="AMD part (xc7z020clg400-1) or Lattice ECP5 part (LFE5U-85F)")
    default_clock_mhz: float = Field(..., gt=0, le=1000)
    interface: Literal["axi_stream_dma", "xrt_kernel", "pixel_stream", "self_test"]
    vendor_flow: Literal["vivado", "vitis"] | None = Field(None, description="AMD boards; default: the toolchain")
    toolchain: Literal["vivado", "vitis", "open"] | None = Field(
        None, description="vivado/vitis (AMD, a lab's vendor tools) or open (Yosys + nextpnr here); default: "
        "vendor_flow")
    family: Literal["xc7", "xcu", "xcup", "ecp5"] | None = Field(None, description="default: from the part")
    package: str | None = Field(None, description="ECP5: package, e.g. CABGA381 (AMD: part of the part name)")
    speed: int | None = Field(None, description="ECP5: speed grade 6, 7 or 8")
    pins: dict[str, BoardPin] = Field(default_factory=dict, description=f"role -> balls; roles: {PIN_ROLES}")
    resources: BoardResources
    pixels_per_clock: int = Field(
        1, ge=1, le=64,
        description="pixel_stream boards: pixels the frame grabber hands the user logic per clock (row-major)",
    )
    description: str | None = None
    source: str | None = Field(None, description="where the pins and counts come from")

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.default_clock_mhz

    @property
    def is_open(self) -> bool:
        """Built here with the open flow (Yosys, nextpnr, ecppack) rather than by a lab's vendor tools."""
        return self.toolchain == "open"

    @model_validator(mode="after")
    def _consistent(self) -> "Board":
        # PartError / ValueError raised here become field errors naming the board file (parse_board)
        family = family_of_part(self.part)
        if self.family is not None and self.family != family:
            raise ValueError(f"family: {self.family!r} does not match part {self.part} (a {family} part)")
        self.__dict__["family"] = family
        if self.toolchain is None:
            if self.vendor_flow is None:
                raise ValueError("toolchain: give toolchain (vivado, vitis or open) or vendor_flow")
            self.__dict__["toolchain"] = self.vendor_flow
        if family == "ecp5":
            return self._check_open()
        if self.toolchain == "open":
            raise ValueError(f"toolchain: open builds Lattice ECP5 parts only; part {self.part} needs vivado or vitis")
        if self.vendor_flow is None:
            self.__dict__["vendor_flow"] = self.toolchain
        elif self.vendor_flow != self.toolchain:
            raise ValueError(f"vendor_flow {self.vendor_flow!r} and toolchain {self.toolchain!r} disagree")
        if self.interface == "self_test":
            raise ValueError("interface: self_test is the open boards' top; AMD boards use axi_stream_dma, "
                             "xrt_kernel or pixel_stream")
        return self

    def _check_open(self) -> "Board":
        if self.toolchain != "open" or self.vendor_flow is not None:
            raise ValueError(f"toolchain: part {self.part} is built with toolchain: open (no vendor_flow)")
        if self.interface != "self_test":
            raise ValueError("interface: open boards run the self-test top (interface: self_test)")
        check_ecp5_package(self.part, self.package, self.speed)
        unknown = sorted(set(self.pins) - set(PIN_ROLES))
        if unknown:
            raise ValueError(f"pins: unknown pin role {unknown[0]!r}; roles: {', '.join(PIN_ROLES)}")
        for role in ("clock", "led", "uart_tx"):
            if role not in self.pins:
                raise ValueError(f"pins: the self-test top needs a {role!r} pin (board clock, LEDs, UART TX)")
        for role, pin in self.pins.items():
            for site in pin.sites:
                try:
                    check_ball(self.package, site)  # type: ignore[arg-type]
                except PartError as err:
                    raise ValueError(f"pins.{role}: {err}") from None
            if role != "led" and role != "tie_high" and len(pin.sites) != 1:
                raise ValueError(f"pins.{role}: one ball, got {len(pin.sites)}")
        dev = ecp5_device(self.part)
        r = self.resources
        if (r.lut, r.bram_18k, r.dsp) != (dev.lut4, dev.ebr_18k, dev.mult_18x18):
            raise ValueError(f"resources: {self.part} has {dev.lut4} LUT4, {dev.ebr_18k} EBR (bram_18k) and "
                             f"{dev.mult_18x18} 18x18 multipliers (dsp) (Lattice FPGA-DS-02012)")
        return self


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
        if e["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
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
