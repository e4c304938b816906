"""Per board: build the tiny cell config, then check the generated project's files, part, clock, scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.hw import load_board
from edgekd.io import read_json
from edgekd.project.tclcheck import dry_run_tcl, tclsh_available
from edgekd.project.vendorcli import check_link_config, read_xo_kernels

from _boards import BOARDS, CUSTOM_BOARD

pytestmark = pytest.mark.slow
ALL = BOARDS + ["custom"]
BITSTREAM_SCRIPT = {"axi_stream_dma": "block_design.tcl", "pixel_stream": "ooc_synth.tcl", "xrt_kernel": None}
COMMON_FILES = ["Makefile", "README.md", "hls/myproject_test.cpp", "hls/firmware/myproject.cpp",
                "hls/firmware/parameters.h", "hls/firmware/ap_types/ap_fixed.h", "hls/tb_data/tb_input_features.dat",
                "hls/tb_data/tb_output_predictions.dat", "top/edgekd_top.h", "top/edgekd_top.cpp",
                "top/edgekd_top_test.cpp", "scripts/hls_top.tcl", "scripts/export_ip.tcl", "scripts/cosim.tcl",
                "test_vectors/inputs.npy", "test_vectors/expected.npy"]
EXTRA_FILES = {"axi_stream_dma": ["scripts/block_design.tcl", "driver/edgekd_driver.py"],
               "xrt_kernel": ["scripts/link.cfg", "driver/edgekd_driver.py"],
               "pixel_stream": ["scripts/ooc_synth.tcl"]}


def _expected_board(name: str):
    if name == "custom":
        from edgekd.hw import parse_board

        return parse_board(CUSTOM_BOARD)
    return load_board(name)


@pytest.mark.parametrize("name", ALL)
def test_project_files_part_and_clock(board_builds, name):
    board = _expected_board(name)
    project = board_builds[name] / "project"
    meta = read_json(project / "project.json")
    assert meta["board"] == board.name
    assert meta["part"] == board.part
    assert meta["clock_mhz"] == pytest.approx(board.default_clock_mhz)
    assert meta["interface"] == board.interface
    for rel in COMMON_FILES + EXTRA_FILES[board.interface]:
        assert (project / rel).is_file(), rel
        assert rel in meta["files"]
    assert not list(project.rglob("*.so")), "compiled C-sim libraries must not travel"
    assert meta["csim"]["passed"] and meta["csim"]["exact"] == 1.0 and meta["csim"]["wrapper"]["passed"]
    assert meta["csim"]["network_code"] == "hls C-sim library"  # the hls step's library of this firmware, linked
    assert board.part in (project / "scripts" / "hls_top.tcl").read_text()
    assert f"{board.part}" in (project / "hls" / "project.tcl").read_text()
    report = read_json(board_builds[name] / "report" / "report.json")
    assert report["project"]["board"] == board.name and report["project"]["csim"]["exact"] == 1.0
    if board.interface == "pixel_stream":
        trig = meta["trigger"]
        est = read_json(board_builds[name] / "hls" / "estimate.json")
        assert trig["latency_cycles"] == est["cycles"] + trig["wrapper_cycles"]
        assert report["project"]["trigger"]["latency_us"] == trig["latency_us"]
        assert "trigger latency" in (board_builds[name] / "report" / "report.md").read_text()


@pytest.mark.parametrize("name", ALL)
def test_project_is_self_contained(board_builds, name):
    """No text file in the project names the build folder (every path is relative)."""
    build = board_builds[name]
    project = build / "project"
    needle = str(build.parent)
    for p in project.rglob("*"):
        if p.is_file() and p.suffix not in (".npy",):
            assert needle not in p.read_text(errors="replace"), p


@pytest.mark.skipif(not tclsh_available(), reason="tclsh not installed")
@pytest.mark.parametrize("name", ALL)
def test_tcl_flow_runs_under_stubs(board_builds, name, tmp_path):
    """hls_top.tcl -> export_ip.tcl -> bitstream script, as `make bitstream` runs them, from a copy of the project."""
    board = _expected_board(name)
    project = tmp_path / "prj"
    shutil.copytree(board_builds[name] / "project", project)
    hls = dry_run_tcl(project / "scripts" / "hls_top.tcl", cwd=tmp_path)
    names = [c[0] for c in hls]
    assert ["set_part", board.part] in hls
    assert ["create_clock", "-period", str(round(1000.0 / board.default_clock_mhz, 6)).rstrip("0").rstrip("."),
            "-name", "default"] in hls or any(c[0] == "create_clock" and float(c[2]) == pytest.approx(
                1000.0 / board.default_clock_mhz) for c in hls)
    assert names.index("csim_design") < names.index("csynth_design")
    assert ["set_top", "edgekd_top"] in hls
    cosim = dry_run_tcl(project / "scripts" / "cosim.tcl", cwd=tmp_path)  # make cosim
    assert ["cosim_design", "-rtl", "verilog", "-trace_level", "none"] in cosim
    export = dry_run_tcl(project / "scripts" / "export_ip.tcl", cwd=tmp_path)
    fmt = [c for c in export if c[0] == "export_design"][0]
    assert fmt[2] == ("xo" if board.interface == "xrt_kernel" else "ip_catalog")
    script = BITSTREAM_SCRIPT[board.interface]
    if script is None:
        cfg = (project / "scripts" / "link.cfg").read_text()
        assert "nk=edgekd_top:1:edgekd_top_1" in cfg and f"kernel_frequency={int(board.default_clock_mhz)}" in cfg
        # every sp= argument is an argument of the exported kernel (HLS keeps in_words / out_words)
        kernels = read_xo_kernels([project / "ip" / "edgekd_top.xo"])
        assert kernels == {"edgekd_top": ["in_words", "out_words", "n"]}
        assert check_link_config(project / "scripts" / "link.cfg", kernels) == {"edgekd_top_1": "edgekd_top"}
        return
    assert (project / "ip" / "edgekd_top.zip").is_file()
    calls = dry_run_tcl(project / "scripts" / script, cwd=tmp_path)
    if board.interface == "axi_stream_dma":
        assert calls[0][:2] == ["create_project", "edgekd_vivado"] and board.part in calls[0]
        ps = "zynq_ultra_ps_e" if board.part.startswith("xczu") else "processing_system7"
        assert any(c[0] == "create_bd_cell" and ps in c[4] for c in calls)
        assert any(c[0] == "create_bd_cell" and "axi_dma" in c[4] for c in calls)
        assert any(c[0] == "create_bd_cell" and c[4] == "edgekd.org:hls:edgekd_top:1.0" for c in calls)
        assert ["validate_bd_design"] in calls
        assert ["write_bitstream", "-force", "output/edgekd.bit"] in calls
        assert (project / "output" / "edgekd.hwh").is_file()
        clock = [c for c in calls if c[0] == "set_property" and c[1] == "-dict" and "FREQMHZ" in c[2]][0]
        assert f"{float(board.default_clock_mhz)}" in clock[2]
        if ps == "zynq_ultra_ps_e":
            assert "CONFIG.PSU__USE__M_AXI_GP1 0" in clock[2]
    else:
        assert ["create_ip", "-vlnv", "edgekd.org:hls:edgekd_top:1.0", "-module_name", "edgekd_top_0"] in calls
        assert (project / "output" / "edgekd_top_synth.dcp").is_file()
        assert not any(c[0] == "write_checkpoint" for c in calls)  # no routed checkpoint without a pblock


def _tool_stand_ins(folder: Path) -> Path:
    """Executables named like the vendor tools that run edgekd's stand-ins (usage check + Tcl stubs)."""
    folder.mkdir()
    for tool in ("vitis_hls", "vitis-run", "vivado", "v++"):
        exe = folder / tool
        exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edgekd.project.vendorcli tool {tool} "$@"\n')
        exe.chmod(0o755)
    return folder


@pytest.mark.skipif(not tclsh_available() or shutil.which("make") is None, reason="tclsh or make not installed")
@pytest.mark.parametrize("hls", ["vitis_hls -f", "vitis-run --mode hls --tcl"], ids=["vitis_hls", "vitis-run"])
@pytest.mark.parametrize("name", ALL)
def test_make_bitstream_runs_with_tool_stand_ins(board_builds, name, hls, tmp_path):
    """`make bitstream` for real: each tool's command line as that tool accepts it, each script under the stubs,
    each step's output where the next step reads it."""
    board = _expected_board(name)
    project = tmp_path / "prj"
    shutil.copytree(board_builds[name] / "project", project)
    bin_dir = _tool_stand_ins(tmp_path / "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
    proc = subprocess.run(["make", "bitstream", f"HLS={hls}"], cwd=project, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = {"axi_stream_dma": "output/edgekd.bit", "xrt_kernel": "output/edgekd.xclbin",
           "pixel_stream": "output/edgekd_top_synth.dcp"}[board.interface]
    assert (project / out).is_file()
    assert f"{hls} scripts/hls_top.tcl" in proc.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target", ["hls", "cosim", "ip", "bitstream", "clean"])
@pytest.mark.parametrize("name", ["pynq-z2", "alveo-u250", "frame-grabber-ku035"])
def test_make_dry_run(board_builds, name, target):
    project = board_builds[name] / "project"
    # Run as a top-level make even when the tests themselves run under `make test`.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    proc = subprocess.run(["make", "-n", target], cwd=project, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    if target == "hls":
        # `vitis_hls -f` or `vitis-run --mode hls --tcl`, whichever is installed (test_tclcheck checks both syntaxes)
        assert "vitis_hls -f scripts/hls_top.tcl" in out or "vitis-run --mode hls --tcl scripts/hls_top.tcl" in out
    if target == "cosim":
        assert "scripts/hls_top.tcl" in out and "scripts/cosim.tcl" in out and "_cosim.rpt" in out
    if target == "ip":
        assert "scripts/hls_top.tcl" in out and "scripts/export_ip.tcl" in out
    if target == "bitstream":
        expected = {"pynq-z2": "-source scripts/block_design.tcl", "alveo-u250": "--config scripts/link.cfg",
                    "frame-grabber-ku035": "-source scripts/ooc_synth.tcl"}[name]
        assert expected in out and "scripts/export_ip.tcl" in out
    if target == "clean":
        assert out.startswith("rm -rf")


def test_csim_command_passes_and_catches_a_mismatch(board_builds, tmp_path):
    build = board_builds["pynq-z2"]
    ok = CliRunner().invoke(app, ["csim", str(build)])
    assert ok.exit_code == 0, ok.output
    # A relative path (the default build/<name>) works too: the compilers run in another folder.
    cwd = os.getcwd()
    try:
        os.chdir(build.parent)
        rel = CliRunner().invoke(app, ["csim", build.name])
    finally:
        os.chdir(cwd)
    assert rel.exit_code == 0, rel.output
    assert "100.00%" in ok.output and "passed" in ok.output
    # one expected value off by one LSB: both testbenches must fail, exit status 1
    bad = tmp_path / "bad"
    shutil.copytree(build / "project", bad / "project")
    dat = bad / "project" / "hls" / "tb_data" / "tb_output_predictions.dat"
    lines = dat.read_text().splitlines()
    first = lines[0].split()
    first[0] = repr(float(first[0]) + 2.0**-16)
    lines[0] = " ".join(first) + " "
    dat.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(app, ["csim", str(bad)])
    assert res.exit_code == 1, res.output
    assert "FAILED" in res.output
    assert CliRunner().invoke(app, ["csim", str(tmp_path / "nothing")]).exit_code == 2


def test_pixel_stream_wrapper_decisions_match_the_python_reference(board_builds):
    meta = read_json(board_builds["frame-grabber-ku035"] / "project" / "project.json")
    w = meta["csim"]["wrapper"]
    assert w["interface"] == "pixel_stream" and w["decisions_equal"] and w["passed"]
    # the packed decision word decodes by the documented bit positions; dropped beats / stray TLAST recover
    assert w["decision_word_layout_ok"] and w["framing_checks"] == "passed"
    assert w["triggers"] == meta["trigger"]["fires_on_test_vectors"]


def test_default_sort_trigger_is_chosen_on_validation_and_scored_on_test(board_builds):
    trig = read_json(board_builds["frame-grabber-ku035"] / "project" / "project.json")["trigger"]
    assert trig["choice"]["chosen_on"] == "validation" and trig["trigger_class"] is not None
    assert trig["threshold"] > 0 and trig["threshold_on_grid"] == trig["threshold"]
    for split in ("validation", "test"):
        assert trig[split]["source"] == "emulator" and trig[split]["n"] > 0
        assert trig[split]["sort_rate"] < 1.0  # the old default fired on every sample
    if trig["choice"]["target_met"]:
        assert trig["validation"]["precision"] >= trig["choice"]["target_precision"]
    report = read_json(board_builds["frame-grabber-ku035"] / "report" / "report.json")
    assert report["project"]["trigger"]["test"] == trig["test"]
    assert "trigger on test" in (board_builds["frame-grabber-ku035"] / "report" / "report.md").read_text()


def test_generated_driver_runs_against_a_fake_overlay(board_builds):
    import importlib.util

    import numpy as np

    from test_driver import FakeHardware, FakeOverlay, _allocate

    project = board_builds["zcu104"] / "project"
    spec = importlib.util.spec_from_file_location("zcu104_driver", project / "driver" / "edgekd_driver.py")
    drv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drv)
    x, y = drv.load_vectors()
    hw = FakeHardware.__new__(FakeHardware)
    hw.table = {tuple(drv.to_words(xi)): np.round(yi * 2.0**drv.OUT_FRAC_BITS).astype(np.int32) for xi, yi in zip(x, y)}
    hw.corrupt, hw.calls = False, 0
    check, lat = drv.run_vectors(drv.PynqAccelerator(overlay=FakeOverlay(hw), allocate=_allocate), x, y)
    assert check["exact"] == 1.0 and len(lat) == len(x)
