"""Fast checks of the project library: fixed-point parsing, test-vector text, the trigger, the Tcl stubs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekd.project.generate import parse_fixed, read_tb_data, templates_dir, write_tb_data, ProjectError
from edgekd.project.tclcheck import TclCheckError, dry_run_tcl, tclsh_available
from edgekd.project.trigger import (
    region_contract,
    sort_decisions,
    threshold_on_grid,
    trigger_latency,
    wrapper_cycles,
)

needs_tclsh = pytest.mark.skipif(not tclsh_available(), reason="tclsh not installed")


@pytest.mark.parametrize(
    "ctype, width, integer, signed",
    [("ap_fixed<8,3>", 8, 3, True), ("ap_ufixed<8,0,AP_RND_CONV,AP_SAT,0>", 8, 0, False),
     ("ap_fixed<16,-1,AP_RND_CONV,AP_SAT,0>", 16, -1, True)],
    ids=["fixed8_3", "ufixed8_0_rnd_sat", "fixed16_neg_int"],
)
def test_parse_fixed(ctype, width, integer, signed):
    t = parse_fixed(ctype)
    assert (t.width, t.integer, t.signed, t.frac) == (width, integer, signed, width - integer)
    assert t.raw_ctype == f"ap_{'' if signed else 'u'}int<{width}>"


def test_parse_fixed_refuses_other_types():
    with pytest.raises(ProjectError, match="not an ap_fixed"):
        parse_fixed("float")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=24), st.integers(0, 40))
def test_tb_data_round_trips_fixed_point_values_exactly(raws, frac):
    x = np.asarray(raws, dtype=np.float64).reshape(1, -1) / 2.0**frac
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_tb_data(Path(tmp), x, x)
        back = read_tb_data(Path(tmp) / "tb_input_features.dat")
        text = (Path(tmp) / "tb_output_predictions.dat").read_text()
    assert np.array_equal(back, x)
    assert text.endswith(" \n")  # hls4ml's layout: values then a space, one sample per line


def test_sort_decisions_margin_argmax_and_threshold():
    z = np.array([[0.5, 0.25, -1.0], [0.0, 0.0, 0.0], [-0.5, 0.75, 0.5]])
    cls, score, fire = sort_decisions(z, 0.25)
    assert cls.tolist() == [0, 0, 1]  # first index on a tie, like the C++ loop
    assert score.tolist() == [0.25, 0.0, 0.25]
    assert fire.tolist() == [True, False, True]
    _, _, only_class1 = sort_decisions(z, 0.25, trigger_class=1)
    assert only_class1.tolist() == [False, False, True]


def test_threshold_rounds_up_onto_the_grid():
    assert threshold_on_grid(0.1, 4) == 0.125
    assert threshold_on_grid(0.125, 4) == 0.125
    assert threshold_on_grid(-0.1, 4) == -0.0625


def test_trigger_latency_adds_the_wrapper_pipeline():
    lat = trigger_latency(292, 2, 250.0)
    assert lat["latency_cycles"] == 292 + wrapper_cycles(2)
    assert math.isclose(lat["latency_us"], lat["latency_cycles"] / 250.0, rel_tol=1e-3)
    # 8 classes: 3 compare levels each for the argmax and the runner-up instead of 1
    assert wrapper_cycles(8) == wrapper_cycles(2) + 4
    assert lat["source"] == "estimate"
    # one grey pixel per clock: slice 1, pack_pixels 1, network start + input FIFO 2, output FIFO 1, read 1,
    # argmax 1, runner-up 1, score 1, register 1, slice 1 = 11; read_beats + write_items with a BRAM groups
    # FIFO: packing 2 and the FIFO's 2-cycle read, 14 (the "about 10-15")
    assert wrapper_cycles(2) == 11 and wrapper_cycles(2, 2, groups_fifo_bram=True) == 14
    assert wrapper_cycles(2, 2, groups_fifo_bram=False) == 13
    # the decision waits for region_ok, written after the region's last beat: 288 beats + 2 + decide (5)
    assert trigger_latency(100, 2, 250.0, beats=288)["latency_cycles"] == 288 + 2 + 5
    assert trigger_latency(1000, 2, 250.0, beats=288)["latency_cycles"] == 1000 + 11


def test_region_contract_from_the_interval():
    # a region every 2,884 cycles; a second region of 288 beats back to back: while it arrives the core frees
    # 288 / 2,884 of a region per beat, so ceil(288 (1 - 288 / 2,884)) = ceil(259.24) = 260 beats wait
    c = region_contract(2884, 288, 250.0)
    assert c["region_interval_cycles"] == 2884 and c["fifo_beats_back_to_back"] == 260
    assert c["region_interval_us"] == 11.536 and c["regions_per_s"] == 86685.2
    assert region_contract(288, 288, 250.0)["fifo_beats_back_to_back"] == 0  # the grabber is the bottleneck


def test_templates_are_found_and_cover_every_interface():
    root = templates_dir()
    for name in ("Makefile.j2", "README.md.j2", "hls/myproject_test.cpp.j2", "top/edgekd_top.h.j2",
                 "top/edgekd_top_test.cpp.j2", "scripts/hls_top.tcl.j2", "scripts/export_ip.tcl.j2", "scripts/cosim.tcl.j2",
                 "scripts/block_design.tcl.j2", "scripts/ooc_synth.tcl.j2", "scripts/link.cfg.j2",
                 "driver/edgekd_driver.py.j2"):
        assert (root / name).is_file(), name
    for interface in ("axi_stream_dma", "xrt_kernel", "pixel_stream"):
        assert (root / "top" / f"edgekd_top_{interface}.cpp.j2").is_file()


@needs_tclsh
def test_tcl_stubs_record_vendor_calls(tmp_path):
    (tmp_path / "a.cpp").write_text("")
    script = tmp_path / "s.tcl"
    script.write_text("set_part xc7z020clg400-1\nadd_files a.cpp -cflags {-O2}\ncsim_design\n")
    calls = dry_run_tcl(script, tmp_path)
    assert calls == [["set_part", "xc7z020clg400-1"], ["add_files", "a.cpp", "-cflags", "-O2"], ["csim_design"]]


@needs_tclsh
@pytest.mark.parametrize(
    "body, message",
    [("set_part $undefined_part\n", "undefined_part"),
     ("add_files missing.cpp\n", "missing.cpp"),
     ("if {1} {\n", "missing close-brace"),
     ("not_a_vendor_command 1\n", "invalid command name")],
    ids=["undefined-variable", "missing-file", "syntax-error", "unknown-command"],
)
def test_tcl_stubs_fail_on_errors(tmp_path, body, message):
    script = tmp_path / "s.tcl"
    script.write_text(body)
    with pytest.raises(TclCheckError, match=message):
        dry_run_tcl(script, tmp_path)


@needs_tclsh
def test_cosim_script_runs_after_synthesis_under_stubs(tmp_path):
    """`make cosim`: scripts/cosim.tcl opens the synthesized solution, co-simulates with -rtl verilog and checks that
    Vitis wrote <top>_prj/solution1/sim/report/<top>_cosim.rpt; before `make hls` it stops with a clear error."""
    from edgekd.project.generate import template_env

    (tmp_path / "scripts").mkdir()
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "edgekd_top.cpp").write_text(
        "void edgekd_top(hls::stream<int> &pixels, hls::stream<int> &decision) {\n"
        "#pragma HLS INTERFACE axis port=pixels\n#pragma HLS INTERFACE axis port=decision\n}\n")
    script = tmp_path / "scripts" / "cosim.tcl"
    script.write_text(template_env().get_template("scripts/cosim.tcl.j2").render(
        top="edgekd_top", edgekd_version="test", board={"name": "frame-grabber-ku035"}, n_samples=4))
    with pytest.raises(TclCheckError, match="run 'make hls' first"):
        dry_run_tcl(script, tmp_path)
    hls = tmp_path / "hls.tcl"
    hls.write_text("open_project -reset edgekd_top_prj\nset_top edgekd_top\nadd_files top/edgekd_top.cpp\n"
                   "open_solution -reset solution1 -flow_target vivado\nset_part xcku035-fbva676-2-e\n"
                   "create_clock -period 4 -name default\ncsynth_design\n")
    dry_run_tcl(hls, tmp_path)
    calls = dry_run_tcl(script, tmp_path)
    assert ["cosim_design", "-rtl", "verilog", "-trace_level", "none"] in calls
    assert (tmp_path / "edgekd_top_prj" / "solution1" / "sim" / "report" / "edgekd_top_cosim.rpt").is_file()
    with pytest.raises(TclCheckError, match="EDGEKD_COSIM_TRACE"):
        dry_run_tcl(script, tmp_path, env={"EDGEKD_COSIM_TRACE": "everything"})
