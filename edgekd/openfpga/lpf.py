"""The LPF (Lattice preference file) of an open board: one LOCATE and IOBUF per port bit of the self-test's
board wrapper, and the clock constraint nextpnr-ecp5 places and routes against.

Ports are named by pin role (edgekd.hw.PIN_ROLES): `clk`, `led[i]`, `uart_tx`, `uart_rx`, `reset_button`,
`tie_high[i]`; the board's own signal names (from its published constraint file) are kept as comments.
"""

from __future__ import annotations

from pathlib import Path

from edgekd import __version__
from edgekd.hw import Board
from edgekd.io import write_text

__all__ = ["lpf_ports", "render_lpf", "write_lpf"]

# Port of the board wrapper per pin role; a role with several balls becomes a bus
PORT_OF_ROLE = {"clock": "clk", "led": "led", "uart_tx": "uart_tx", "uart_rx": "uart_rx",
                "reset_button": "reset_button", "tie_high": "tie_high"}
BUS_ROLES = ("led", "tie_high")


def lpf_ports(board: Board, roles: tuple[str, ...] | None = None) -> list[dict]:
    """{port, site, name, attrs} per port bit, for the pin roles `roles` (default: all the board has)."""
    out = []
    for role, pin in board.pins.items():
        if roles is not None and role not in roles:
            continue
        attrs = [f"IO_TYPE={pin.io_type}"]
        if pin.pullmode is not None:
            attrs.append(f"PULLMODE={pin.pullmode}")
        if pin.drive is not None:
            attrs.append(f"DRIVE={pin.drive}")
        for k, site in enumerate(pin.sites):
            port = PORT_OF_ROLE[role] + (f"[{k}]" if role in BUS_ROLES else "")
            name = pin.names[k] if pin.names and k < len(pin.names) else None
            out.append({"port": port, "site": site, "name": name, "attrs": " ".join(attrs)})
    return out


def render_lpf(board: Board, *, clock_mhz: float, top: str = "edgekd_board_top",
               roles: tuple[str, ...] | None = None) -> str:
    from edgekd.project.generate import template_env

    if not board.is_open or board.package is None:
        raise ValueError(f"board {board.name}: an LPF is written for open (ECP5) boards only")
    mhz = f"{clock_mhz:.6f}".rstrip("0").rstrip(".")
    return template_env().get_template("openfpga/board.lpf.j2").render(
        board_name=board.name, part=board.part, package=board.package, speed=board.speed, top=top,
        version=__version__, source=(board.source or "the board file").replace("\n", " "),
        ports=lpf_ports(board, roles), clock_port=PORT_OF_ROLE["clock"], clock_mhz=mhz)


def write_lpf(path: Path, board: Board, *, clock_mhz: float, roles: tuple[str, ...] | None = None) -> Path:
    """Write the LPF for the self-test's board wrapper (the roles it has ports for; uart_rx is unused)."""
    if roles is None:
        roles = tuple(r for r in board.pins if r != "uart_rx")
    write_text(path, render_lpf(board, clock_mhz=clock_mhz, roles=roles))
    return path
