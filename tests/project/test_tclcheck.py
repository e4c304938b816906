"""The vendor-command stubs fail on the defects a lab would otherwise meet in Vivado / Vitis (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.project.tclcheck import TclCheckError, dry_run_tcl, tclsh_available
from edgekd.project.vendorcli import (
    LinkConfigError,
    ToolUsageError,
    check_link_config,
    parse_tool_command,
    read_xo_kernels,
    top_ports,
)

needs_tclsh = pytest.mark.skipif(not tclsh_available(), reason="tclsh not installed")

TOP_CPP = """
#include "hls_stream.h"
void top(hls::stream<int> &{a}, hls::stream<int> &{b}) {{
#pragma HLS INTERFACE axis port={a}
#pragma HLS INTERFACE axis port={b}
#pragma HLS INTERFACE ap_ctrl_none port=return
    {b}.write({a}.read());
}}
"""
HLS_TCL = """
open_project -reset top_prj
set_top top
add_files top.cpp
open_solution -reset solution1 -flow_target {flow}
{part}
create_clock -period 5 -name default
csynth_design
"""


def _hls(tmp: Path, a="in_stream", b="out_stream", flow="vivado", part="set_part xczu7ev-ffvc1156-2-e") -> None:
    (tmp / "top.cpp").write_text(TOP_CPP.format(a=a, b=b))
    (tmp / "hls.tcl").write_text(HLS_TCL.format(flow=flow, part=part))
    dry_run_tcl(tmp / "hls.tcl", tmp)


def _run(tmp: Path, body: str, **kw) -> list[list[str]]:
    script = tmp / "s.tcl"
    script.write_text(body)
    return dry_run_tcl(script, tmp, **kw)


EXPORT = """
open_project top_prj
set_top top
open_solution solution1
file mkdir ip
export_design -format ip_catalog -vendor edgekd.org -library hls -version 1.0 -output ip/top.zip
"""

BD = """
create_project p vivado_prj -part xczu7ev-ffvc1156-2-e -force
file mkdir repo
update_ip_catalog -add_ip ip/top.zip -repo_path repo
create_bd_design bd
create_bd_cell -type ip -vlnv [lindex [get_ipdefs -all xilinx.com:ip:zynq_ultra_ps_e:*] end] ps
apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config [list apply_board_preset 1] [get_bd_cells ps]
set_property -dict [list CONFIG.PSU__USE__S_AXI_GP2 {{1}} {ps_extra}] [get_bd_cells ps]
create_bd_cell -type ip -vlnv [lindex [get_ipdefs -all xilinx.com:ip:axi_dma:*] end] dma
set_property -dict [list CONFIG.c_include_sg {{0}}] [get_bd_cells dma]
create_bd_cell -type ip -vlnv edgekd.org:hls:top:1.0 net
connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins net/{in_port}]
connect_bd_intf_net [get_bd_intf_pins net/out_stream] [get_bd_intf_pins dma/S_AXIS_S2MM]
set c /ps/pl_clk0
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master $c Clk_slave $c Clk_xbar $c Master /ps/M_AXI_HPM0_FPD Slave /dma/S_AXI_LITE intc_ip Auto] [get_bd_intf_pins dma/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master $c Clk_slave $c Clk_xbar $c Master /dma/M_AXI_MM2S Slave /ps/S_AXI_HP0_FPD intc_ip Auto] [get_bd_intf_pins /ps/S_AXI_HP0_FPD]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master $c Clk_slave $c Clk_xbar $c Master /dma/M_AXI_S2MM Slave /ps/S_AXI_HP0_FPD intc_ip Auto] [get_bd_intf_pins dma/M_AXI_S2MM]
{net_clock}
validate_bd_design
"""
CLKRST = "apply_bd_automation -rule xilinx.com:bd_rule:clkrst -config [list Clk $c Freq 200] [get_bd_pins net/ap_clk]"
GP_OFF = "CONFIG.PSU__USE__M_AXI_GP1 {0} CONFIG.PSU__USE__M_AXI_GP2 {0}"


@pytest.fixture
def ip(tmp_path):
    _hls(tmp_path)
    _run(tmp_path, EXPORT)
    assert (tmp_path / "ip" / "top.zip").is_file()
    return tmp_path


@needs_tclsh
def test_block_design_that_connects_everything_validates(ip):
    calls = _run(ip, BD.format(ps_extra=GP_OFF, in_port="in_stream", net_clock=CLKRST))
    assert calls[-1] == ["validate_bd_design"]


@needs_tclsh
def test_zcu_preset_leaves_hpm1_clock_unconnected(ip):
    """The zcu102/zcu104 board preset enables M_AXI_HPM1_FPD; left on and unused, its clock pin is open."""
    with pytest.raises(TclCheckError, match="maxihpm1_fpd_aclk"):
        _run(ip, BD.format(ps_extra="", in_port="in_stream", net_clock=CLKRST))


@needs_tclsh
def test_unconnected_reset_pin_fails_validation(ip):
    clock_only = "connect_bd_net [get_bd_pins ps/pl_clk0] [get_bd_pins net/ap_clk]"
    with pytest.raises(TclCheckError, match="reset pins not connected: /net/ap_rst_n"):
        _run(ip, BD.format(ps_extra=GP_OFF, in_port="in_stream", net_clock=clock_only))


@needs_tclsh
def test_unconnected_clock_pin_fails_validation(ip):
    with pytest.raises(TclCheckError, match="/net/ap_clk"):
        _run(ip, BD.format(ps_extra=GP_OFF, in_port="in_stream", net_clock=""))


@needs_tclsh
def test_interface_to_a_missing_port_fails(ip):
    """The HLS IP's port is named after the C argument; `in_r` exists only when the argument is `in`."""
    with pytest.raises(TclCheckError, match="in_r"):
        _run(ip, BD.format(ps_extra=GP_OFF, in_port="in_r", net_clock=CLKRST))


@needs_tclsh
def test_reserved_argument_names_are_renamed_like_hls(tmp_path):
    _hls(tmp_path, a="in", b="out")
    _run(tmp_path, EXPORT)
    text = (tmp_path / "ip" / "top.zip").read_text()
    assert "intf in_r axis" in text and "intf out_r axis" in text
    assert top_ports("top", [tmp_path / "top.cpp"]) == [("in", "in_r", "axis"), ("out", "out_r", "axis")]


OLD_EXPORT = """
open_project top_prj
set_top top
open_solution solution1
file mkdir ip
export_design -format ip_catalog -vendor edgekd.org -library hls -version 1.0
foreach z [glob -nocomplain [file join top_prj solution1 impl ip *.zip]] { file copy -force $z ip/top.zip }
"""
NEXT_STEP = """
create_project p vivado_prj -part xczu7ev-ffvc1156-2-e -force
file mkdir repo
update_ip_catalog -add_ip ip/top.zip -repo_path repo
"""


@needs_tclsh
@pytest.mark.parametrize("version, copied", [("2020.1", True), ("2022.2", False), ("2023.2", False), ("2024.2", False)])
def test_export_layout_per_release_and_the_next_step_needs_the_file(tmp_path, version, copied):
    """The old export script copied impl/ip/*.zip: Vitis HLS 2022.2+ writes elsewhere, so nothing reached ip/."""
    _hls(tmp_path)
    _run(tmp_path, OLD_EXPORT, hls_version=version)
    assert (tmp_path / "ip" / "top.zip").is_file() == copied
    if copied:
        _run(tmp_path, NEXT_STEP)
    else:
        with pytest.raises(TclCheckError, match="no such IP archive: ip/top.zip"):
            _run(tmp_path, NEXT_STEP)


@needs_tclsh
@pytest.mark.parametrize(
    "body, message",
    [(HLS_TCL.format(flow="vivado", part=""), "no part set"),
     (EXPORT, "has not been synthesized"),
     ("create_project p d -part x\nopen_checkpoint output/x.dcp\n", "no such file"),
     ("create_project p d -part x\ncreate_bd_design bd\ncreate_bd_cell -type ip -vlnv edgekd.org:hls:top:1.0 net\n",
      "IP definition not found")],
    ids=["csynth-without-part", "export-before-csynth", "missing-checkpoint", "ip-not-in-catalog"],
)
def test_stubs_refuse_what_the_tools_refuse(tmp_path, body, message):
    (tmp_path / "top.cpp").write_text(TOP_CPP.format(a="x", b="y"))
    if "export_design -format ip" in body:
        (tmp_path / "top_prj" / "solution1").mkdir(parents=True)
    with pytest.raises(TclCheckError, match=message):
        _run(tmp_path, body)


@needs_tclsh
def test_kernel_object_needs_the_vitis_flow(tmp_path):
    xo = "open_project top_prj\nset_top top\nopen_solution solution1\nexport_design -format xo -output k.xo\n"
    _hls(tmp_path, flow="vivado")
    with pytest.raises(TclCheckError, match="flow_target vitis"):
        _run(tmp_path, xo)
    _hls(tmp_path, flow="vitis")
    _run(tmp_path, xo)
    assert read_xo_kernels([tmp_path / "k.xo"]) == {"top": ["in_stream", "out_stream"]}


LINK = """kernel_frequency=300
[connectivity]
nk=edgekd_top:1:edgekd_top_1
sp=edgekd_top_1.{a}:DDR[0]
sp=edgekd_top_1.{b}:DDR[0]
"""


def test_link_config_argument_names_are_checked_against_the_kernel(tmp_path):
    xo = tmp_path / "k.xo"
    xo.write_text("edgekd-stub-xo\nkernel edgekd_top\narg in_words m_axi\narg out_words m_axi\narg n s_axilite\n")
    kernels = read_xo_kernels([xo])
    cfg = tmp_path / "link.cfg"
    cfg.write_text(LINK.format(a="in_words", b="out_words"))
    assert check_link_config(cfg, kernels) == {"edgekd_top_1": "edgekd_top"}
    cfg.write_text(LINK.format(a="in", b="out"))
    with pytest.raises(LinkConfigError, match="argument 'in'"):
        check_link_config(cfg, kernels)
    cfg.write_text(LINK.format(a="in_words", b="out_words").replace("nk=edgekd_top:", "nk=other:"))
    with pytest.raises(LinkConfigError, match="kernel 'other'"):
        check_link_config(cfg, kernels)


@pytest.mark.parametrize(
    "tool, args, ok",
    [("vitis_hls", ["-f", "s.tcl"], True),
     ("vitis-run", ["--mode", "hls", "--tcl", "s.tcl"], True),
     ("vitis-run", ["--mode", "hls", "--tcl", "-f", "s.tcl"], False),  # the old Makefile's suggestion
     ("vitis_hls", ["s.tcl"], False),
     ("vivado", ["-mode", "batch", "-nojournal", "-log", "r.log", "-source", "s.tcl"], True),
     ("vivado", ["-source", "s.tcl"], False),
     ("vivado_hls", ["-f", "s.tcl"], False)],  # not shipped by 2023-2024 installs: no stand-in
    ids=["vitis_hls", "vitis-run", "vitis-run-with-f", "vitis_hls-no-f", "vivado", "vivado-no-batch", "vivado_hls"],
)
def test_tool_command_lines(tool, args, ok):
    if ok:
        assert parse_tool_command(tool, args)["script"] == "s.tcl"
    else:
        with pytest.raises(ToolUsageError):
            parse_tool_command(tool, args)
