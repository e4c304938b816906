"""The Vivado script for the RTL backend's Verilog on AMD boards (issue 26), dry-run under the stub tclsh."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.hw import load_board
from edgekd.openfpga.standin import standin_design
from edgekd.openfpga.vivado import write_vivado_rtl_script
from edgekd.project.tclcheck import TclCheckError, dry_run_tcl, tclsh_available

needs_tclsh = pytest.mark.skipif(not tclsh_available(), reason="tclsh not installed")


@needs_tclsh
def test_vivado_rtl_script_reads_every_file_in_order_and_constrains_the_clock(tmp_path: Path):
    rtl = tmp_path / "rtl"
    standin_design(rtl, images=2)
    (rtl / "extra.v").write_text("module extra; endmodule\n")
    import json

    m = json.loads((rtl / "rtl.json").read_text())
    m["verilog"] = ["extra.v", *m["verilog"]]
    (rtl / "rtl.json").write_text(json.dumps(m))
    board = load_board("frame-grabber-ku035")
    script = write_vivado_rtl_script(rtl, board)
    calls = dry_run_tcl(script, cwd=tmp_path)
    names = [c[0] for c in calls]
    assert [c[1] for c in calls if c[0] == "read_verilog"] == ["extra.v", "standin_net.v"]
    synth = next(c for c in calls if c[0] == "synth_design")
    assert synth[1:] == ["-top", "edgekd_standin_net", "-part", "xcku035-fbva676-2-e", "-mode", "out_of_context"]
    clock = next(c for c in calls if c[0] == "create_clock")
    assert clock[1:3] == ["-period", "4"]     # 250 MHz
    assert names.index("synth_design") < names.index("create_clock") < names.index("route_design")
    assert (tmp_path / "rtl" / "reports" / "rtl_timing_summary_routed.rpt").is_file()
    assert (tmp_path / "rtl" / "output" / "edgekd_standin_net_routed.dcp").is_file()
    # a file the manifest names but that is missing fails the dry run, as Vivado would
    (rtl / "extra.v").unlink()
    with pytest.raises(TclCheckError, match="extra.v"):
        dry_run_tcl(script, cwd=tmp_path)
    with pytest.raises(ValueError, match="open flow"):
        write_vivado_rtl_script(rtl, load_board("ulx3s-85f"))
