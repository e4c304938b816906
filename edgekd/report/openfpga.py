"""The open flow's figures for report.json (step bitstream, bitstream/bitstream.json): under `rtl`,
`place_route` (achieved Fmax, constraint, utilisation per resource, timing verdict; source nextpnr),
`bitstream` (path, sha256, tool versions) and `selftest` (the self-test top under Verilator: pass/fail, images,
cycles from first beat to decision, and that latency in microseconds at the achieved Fmax and at the board's
clock)."""

from __future__ import annotations

from pathlib import Path

from edgekd.io import read_json

__all__ = ["open_flow_section"]


def open_flow_section(build_dir: Path) -> dict | None:
    path = build_dir / "bitstream" / "bitstream.json"
    if not path.is_file():
        return None
    r = read_json(path)
    pr, bit, st = r["place_route"], r["bitstream"], r.get("selftest") or {}
    place_route = {
        "fmax_mhz": pr["fmax_mhz"], "constraint_mhz": pr["constraint_mhz"], "timing_met": pr["timing"]["met"],
        "meets_mhz": pr["timing"]["meets_mhz"], "seed": pr["seed"],
        "utilisation": {k: {"used": v["used"], "available": v["available"], "fraction": v["fraction"]}
                        for k, v in pr["utilisation"].items()},
        "board": r["board"], "part": r["part"], "source": "nextpnr",
    }
    selftest = None
    if st:
        lat = st["latency_cycles"]
        selftest = {k: st.get(k) for k in ("status", "passed", "images", "errors", "latency_cycles",
                                           "latency_max_cycles", "total_cycles", "interval_cycles")}
        selftest.update(latency_us_at_fmax=round(lat / pr["fmax_mhz"], 4),
                        latency_us_at_board_clock=round(lat / pr["constraint_mhz"], 4), source="verilator")
    return {
        "place_route": place_route,
        "bitstream": {"path": bit["path"], "sha256": bit["sha256"], "bytes": bit.get("bytes"), "tools": bit["tools"],
                      "why_not": bit.get("why_not")},
        "selftest": selftest,
        "tool_seconds": {k: v["seconds"] for k, v in r.get("tools", {}).items()},
    }
