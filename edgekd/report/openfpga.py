"""The open flow's figures for report.json (step bitstream, bitstream/bitstream.json): under `rtl`,
`place_route` (achieved Fmax, constraint, utilisation per resource, timing verdict; source nextpnr),
`bitstream` (path, sha256, tool versions; or none and why not), `selftest` (the self-test top under Verilator:
pass/fail, images, cycles from first beat to decision, and that latency in microseconds at the achieved Fmax and
at the board's clock) and `synthesis_open` (Yosys synth_ecp5 of the whole self-test top: LUT4, carry, FF and the
fraction of the part's logic slots).

A design above the utilisation that open place and route finishes has no place_route (not attempted); one whose
nextpnr did not finish has place_route.finished false with what it had to place (from nextpnr's log)."""

from __future__ import annotations

from pathlib import Path

from edgekd.io import read_json

__all__ = ["open_flow_section"]


def open_flow_section(build_dir: Path) -> dict | None:
    path = build_dir / "bitstream" / "bitstream.json"
    if not path.is_file():
        return None
    r = read_json(path)
    pr, bit, st = r.get("place_route"), r["bitstream"], r.get("selftest") or {}
    place_route = None
    if pr:
        util = {k: {"used": v["used"], "available": v["available"], "fraction": v["fraction"]}
                for k, v in (pr.get("utilisation") or {}).items()}
        if pr.get("finished", True):
            place_route = {
                "finished": True, "fmax_mhz": pr["fmax_mhz"], "constraint_mhz": pr["constraint_mhz"],
                "timing_met": pr["timing"]["met"], "meets_mhz": pr["timing"]["meets_mhz"], "seed": pr["seed"],
                "utilisation": util, "board": r["board"], "part": r["part"], "source": "nextpnr",
            }
        else:
            place_route = {"finished": False, "seconds": pr.get("seconds"), "constraint_mhz": pr.get("constraint_mhz"),
                           "seed": pr.get("seed"), "utilisation": util, "board": r["board"], "part": r["part"],
                           "source": "nextpnr log"}
    selftest = None
    if st:
        lat = st["latency_cycles"]
        selftest = {k: st.get(k) for k in ("status", "passed", "images", "errors", "latency_cycles",
                                           "latency_max_cycles", "total_cycles", "interval_cycles")}
        selftest["source"] = "verilator"
        if place_route and place_route["finished"]:
            selftest.update(latency_us_at_fmax=round(lat / place_route["fmax_mhz"], 4),
                            latency_us_at_board_clock=round(lat / place_route["constraint_mhz"], 4))
    syn = r.get("synthesis")
    return {
        "place_route": place_route,
        "bitstream": {"path": bit["path"], "sha256": bit["sha256"], "bytes": bit.get("bytes"), "tools": bit["tools"],
                      "why_not": bit.get("why_not"), "timing_met": bit.get("timing_met")},
        "selftest": selftest,
        "synthesis_open": None if not syn else {k: syn.get(k) for k in ("lut4", "ccu2c", "ff", "mult18", "dp16kd",
                                                                          "logic_slots", "slot_fraction")}
        | {"tool": syn.get("tool"), "source": "yosys"},
        "tool_seconds": {k: v["seconds"] for k, v in (r.get("tools") or {}).items()},
        "tool_peak_mb": {k: v.get("peak_mb") for k, v in (r.get("tools") or {}).items()},
    }
