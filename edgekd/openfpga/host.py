"""Read the self-test's result line from the board's UART (or from any capture of it).

    python -m edgekd.openfpga.host /dev/ttyUSB0            # the ULX3S's FTDI port, 115200 8N1 (needs pyserial)
    python -m edgekd.openfpga.host capture.txt             # a file written by any terminal program
    python -m edgekd.openfpga.host - < capture.txt          # standard input

Prints the result as JSON (status, images, errors, cycles from first beat to decision, the clock and the
latency in microseconds at that clock); exit status 0 when the self-test passed, 1 when it did not, 2 when no
line was found. pyserial is needed only for a serial port; parsing works on any file-like stream
(edgekd.openfpga.selftest.read_result).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgekd.openfpga.selftest import BAUD, SelfTestError, read_result


def _open(source: str):
    if source == "-":
        return sys.stdin
    path = Path(source)
    if path.is_file():
        return open(path, "rb")
    if source.startswith(("/dev/", "COM")):
        try:
            import serial  # type: ignore[import-not-found]
        except ImportError:
            raise SystemExit("reading a serial port needs pyserial (pip install pyserial); or capture the port "
                             "with a terminal program and pass the file") from None
        return serial.Serial(source, BAUD, timeout=5)
    raise SystemExit(f"{source}: no such file or serial port")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    stream = _open(argv[0])
    try:
        result = read_result(stream)
    except SelfTestError as err:
        print(str(err), file=sys.stderr)
        return 2
    finally:
        if stream is not sys.stdin:
            stream.close()
    out = {**result.as_dict(), "latency_us": round(result.first_us, 4)}
    print(json.dumps(out, indent=1))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
