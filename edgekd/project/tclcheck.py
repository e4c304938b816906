"""Dry-run a generated Tcl script under plain `tclsh`, with stubs standing in for the vendor commands.

The stubs (`edgekd.project.tclstubs`) record every vendor call and model what the scripts rely on: the ports
HLS gives the top (from its C signature), where `export_design` puts its archive in each release, the IP
catalog, the block design's interface, clock and reset pins and what Vivado's automation connects, and the
files each run writes. So a script fails here on an unconnected clock or reset pin, a connection to a port
the IP does not have, or a file the next step needs that the previous one did not write. Everything else is
real Tcl: a syntax error, an undefined variable or command, or a missing source file makes the run fail with
tclsh's message.

State that a later script needs travels only through files (as with the real tools), so scripts run one
after another in the same folder chain like `make` runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgekd.project.tclstubs import HLS_VERSION_LAYOUTS, PLAIN_STUBS, PRELUDE

__all__ = ["TclCheckError", "VENDOR_COMMANDS", "DEFAULT_HLS_VERSION", "dry_run_tcl", "tclsh_available"]

VENDOR_COMMANDS = PLAIN_STUBS
#: the release whose default export layout the stubs model unless EDGEKD_STUB_HLS_VERSION says otherwise
DEFAULT_HLS_VERSION = "2023.2"


class TclCheckError(RuntimeError):
    """The script failed under tclsh (message: tclsh's error and the script)."""


def tclsh_available() -> bool:
    return shutil.which("tclsh") is not None


def _tcl_dict(d: dict[str, str]) -> str:
    return " ".join(f"{k} {{{v}}}" for k, v in d.items())


def dry_run_tcl(script: Path | str, cwd: Path | str, env: dict[str, str] | None = None,
                argv: list[str] | None = None, hls_version: str | None = None) -> list[list[str]]:
    """Run `script` under tclsh with the vendor stubs, in `cwd`; returns the recorded vendor calls.

    `hls_version` (or EDGEKD_STUB_HLS_VERSION): the HLS release whose default export layout is modelled
    (a key of `HLS_VERSION_LAYOUTS`). Raises TclCheckError when tclsh exits non-zero (a Tcl error) and
    FileNotFoundError without tclsh.
    """
    script = Path(script).resolve()
    if not tclsh_available():
        raise FileNotFoundError("tclsh not found on PATH")
    version = hls_version or (env or {}).get("EDGEKD_STUB_HLS_VERSION") or os.environ.get(
        "EDGEKD_STUB_HLS_VERSION", DEFAULT_HLS_VERSION)
    if version not in HLS_VERSION_LAYOUTS:
        raise ValueError(f"no export layout modelled for HLS {version} (have {sorted(HLS_VERSION_LAYOUTS)})")
    with tempfile.TemporaryDirectory(prefix="edgekd-tcl-") as tmp:
        log = Path(tmp) / "calls.log"
        log.touch()
        driver = Path(tmp) / "driver.tcl"
        driver.write_text(
            f"set ::edgekd_plain_stubs {{{' '.join(PLAIN_STUBS)}}}\n"
            f"set ::edgekd_hls_layouts {{{_tcl_dict(HLS_VERSION_LAYOUTS)}}}\n"
            f"set ::edgekd_hls_version {{{version}}}\n{PRELUDE}\n"
            f"set argv {{{' '.join(argv or [])}}}\nset argc {len(argv or [])}\n"
            f"set ::argv0 {{{script}}}\n"
            f"source {{{script}}}\n"
        )
        run_env = {**os.environ, **(env or {}), "EDGEKD_TCL_LOG": str(log), "EDGEKD_PYTHON": sys.executable}
        proc = subprocess.run(["tclsh", str(driver)], cwd=cwd, capture_output=True, text=True, timeout=120,
                              env=run_env)
        if proc.returncode != 0:
            raise TclCheckError(f"{script.name} failed under tclsh (exit {proc.returncode}):\n{proc.stderr.strip()}"
                                f"\n{proc.stdout.strip()[-2000:]}")
        return [line.split("\t") for line in log.read_text().splitlines() if line]
