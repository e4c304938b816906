"""Dry-run a generated Tcl script under plain `tclsh`, with stubs standing in for the vendor commands.

The stubs record every vendor call (command and arguments) and do the little a later script relies on
(`csynth_design` leaves the RTL folder and csynth report, `export_design` the IP, `make_wrapper` the
wrapper, `launch_runs` the hardware handoff, `write_*`/`report_*` their output file). Everything else is
real Tcl: a syntax error, an undefined variable or command, or a missing source file (`add_files` and
`read_verilog` check that what they are given exists) makes the run fail with tclsh's message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["TclCheckError", "VENDOR_COMMANDS", "dry_run_tcl", "tclsh_available"]

# Stubs that only record; the ones with behaviour are defined in _PRELUDE below.
VENDOR_COMMANDS = (
    # Vitis HLS / Vivado HLS
    "set_part", "set_clock_uncertainty", "config_compile", "config_interface", "config_schedule",
    "config_array_partition", "csim_design", "cosim_design", "close_project", "close_solution",
    # Vivado
    "update_ip_catalog", "create_bd_design", "create_bd_cell", "apply_bd_automation", "connect_bd_intf_net",
    "connect_bd_net", "validate_bd_design", "save_bd_design", "wait_on_run", "open_run", "synth_design",
    "opt_design", "place_design", "route_design", "startgroup", "endgroup", "reset_run",
)

_PRELUDE = r"""
set ::edgekd_log [open $::env(EDGEKD_TCL_LOG) a]
set ::edgekd_top ""
set ::edgekd_prj ""
proc edgekd_record {args} {
    set clean {}
    foreach a $args { lappend clean [string map [list "\n" "\\n" "\t" "\\t"] $a] }
    puts $::edgekd_log [join $clean "\t"]
    flush $::edgekd_log
}
proc edgekd_touch {path {content ""}} {
    file mkdir [file dirname $path]
    set f [open $path w]
    puts -nonewline $f $content
    close $f
}
proc edgekd_check_files {cmd argv valued} {
    set skip 0
    foreach a $argv {
        if {$skip} { set skip 0; continue }
        if {[lsearch -exact $valued $a] >= 0} { set skip 1; continue }
        if {[string match -* $a]} { continue }
        foreach p $a {
            if {![file exists $p]} { error "$cmd: no such file or folder: $p" }
        }
    }
}
foreach cmd $::edgekd_plain_stubs {
    proc $cmd {args} "edgekd_record $cmd {*}\$args"
}
proc open_project {args} { edgekd_record open_project {*}$args; set ::edgekd_prj [lindex $args end]; file mkdir $::edgekd_prj }
proc set_top {name} { edgekd_record set_top $name; set ::edgekd_top $name }
proc open_solution {args} { edgekd_record open_solution {*}$args }
proc add_files {args} {
    edgekd_record add_files {*}$args
    edgekd_check_files add_files $args {-cflags -csimflags -fileset -of_objects}
}
proc read_verilog {args} { edgekd_record read_verilog {*}$args; edgekd_check_files read_verilog $args {-library} }
proc create_clock {args} { edgekd_record create_clock {*}$args }
proc csynth_design {args} {
    edgekd_record csynth_design {*}$args
    set sol [file join $::edgekd_prj solution1]
    edgekd_touch [file join $sol syn verilog ${::edgekd_top}.v] "// stub RTL\n"
    edgekd_touch [file join $sol syn report ${::edgekd_top}_csynth.xml] "<profile/>\n"
}
proc export_design {args} {
    edgekd_record export_design {*}$args
    set i [lsearch -exact $args -output]
    if {$i >= 0} {
        edgekd_touch [lindex $args [expr {$i + 1}]] "stub\n"
    } else {
        set ip [file join $::edgekd_prj solution1 impl ip]
        edgekd_touch [file join $ip component.xml] "<component/>\n"
        edgekd_touch [file join $ip edgekd_${::edgekd_top}_1_0.zip] "stub\n"
    }
}
proc create_project {args} { edgekd_record create_project {*}$args; file mkdir [lindex [lsearch -all -inline -not -glob $args -*] 1] }
proc current_project {args} { return current_project }
proc current_fileset {args} { return sources_1 }
proc set_property {args} { edgekd_record set_property {*}$args }
proc get_property {name args} {
    edgekd_record get_property $name {*}$args
    if {$name eq "PROGRESS"} { return "100%" }
    return ""
}
proc get_ipdefs {args} { set pat [lindex $args end]; return [string map {* 1.0} $pat] }
proc get_board_parts {args} { return {} }
proc get_bd_cells {args} { return [lindex $args end] }
proc get_bd_pins {args} { return [lindex $args end] }
proc get_bd_intf_pins {args} { return [lindex $args end] }
proc get_ports {args} { return [lindex $args end] }
proc get_runs {args} { return [lindex $args end] }
proc get_files {args} { return [lindex $args end] }
proc make_wrapper {args} {
    edgekd_record make_wrapper {*}$args
    set path vivado_prj/edgekd_vivado.gen/sources_1/bd/edgekd_bd/hdl/edgekd_bd_wrapper.v
    edgekd_touch $path "// stub wrapper\n"
    return $path
}
proc launch_runs {args} {
    edgekd_record launch_runs {*}$args
    edgekd_touch vivado_prj/edgekd_vivado.gen/sources_1/bd/edgekd_bd/hw_handoff/edgekd_bd.hwh "<stub/>\n"
}
proc edgekd_output_stub {cmd args} {
    edgekd_record $cmd {*}$args
    set i [lsearch -exact $args -file]
    if {$i >= 0} {
        edgekd_touch [lindex $args [expr {$i + 1}]] "stub\n"
    } else {
        set files [lsearch -all -inline -not -glob $args -*]
        if {[llength $files]} { edgekd_touch [lindex $files end] "stub\n" }
    }
}
foreach cmd {report_utilization report_timing_summary write_bitstream write_checkpoint} {
    proc $cmd {args} "edgekd_output_stub $cmd {*}\$args"
}
"""


class TclCheckError(RuntimeError):
    """The script failed under tclsh (message: tclsh's error and the script)."""


def tclsh_available() -> bool:
    return shutil.which("tclsh") is not None


def dry_run_tcl(script: Path | str, cwd: Path | str, env: dict[str, str] | None = None,
                argv: list[str] | None = None) -> list[list[str]]:
    """Run `script` under tclsh with the vendor stubs, in `cwd`; returns the recorded vendor calls.

    Raises TclCheckError when tclsh exits non-zero (a Tcl error) and FileNotFoundError without tclsh.
    """
    script = Path(script).resolve()
    if not tclsh_available():
        raise FileNotFoundError("tclsh not found on PATH")
    with tempfile.TemporaryDirectory(prefix="edgekd-tcl-") as tmp:
        log = Path(tmp) / "calls.log"
        log.touch()
        driver = Path(tmp) / "driver.tcl"
        stubs = " ".join(VENDOR_COMMANDS)
        driver.write_text(
            f"set ::edgekd_plain_stubs {{{stubs}}}\n{_PRELUDE}\n"
            f"set argv {{{' '.join(argv or [])}}}\nset argc {len(argv or [])}\n"
            f"set ::argv0 {{{script}}}\n"
            f"source {{{script}}}\n"
        )
        proc = subprocess.run(["tclsh", str(driver)], cwd=cwd, capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {}), "EDGEKD_TCL_LOG": str(log)})
        if proc.returncode != 0:
            raise TclCheckError(f"{script.name} failed under tclsh (exit {proc.returncode}):\n{proc.stderr.strip()}"
                                f"\n{proc.stdout.strip()[-2000:]}")
        return [line.split("\t") for line in log.read_text().splitlines() if line]
