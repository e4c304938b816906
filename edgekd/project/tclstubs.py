"""Tcl stubs of the Vitis HLS / Vivado commands the generated scripts use (run by `edgekd.project.tclcheck`).

The stubs record every vendor call and model what the scripts rely on, closely enough that the class of
defect a lab would otherwise find in the vendor tool fails here:

- HLS: `cosim_design` needs a synthesized solution and writes `<solution>/sim/report/<top>_cosim.rpt` (a
  stub without a result row); `csynth_design` needs a part and a clock, and derives the top's ports from its C signature and
  INTERFACE pragmas (`python -m edgekd.project.vendorcli interfaces`, with HLS's renaming of reserved
  words: `in` -> `in_r`); `export_design` needs a synthesized solution, writes the IP archive (or .xo)
  with those ports where `-output` says, else where the modelled release puts it by default
  (EDGEKD_STUB_HLS_VERSION: 2020.1 `impl/ip/<vendor>_<library>_<top>_<version>.zip`, 2022.2/2023.2
  `impl/export.zip`, 2024.2 `impl/<top>.zip`); a `.xo` needs `-flow_target vitis`.
- Vivado IP catalog: `update_ip_catalog -add_ip ZIP -repo_path DIR` reads an archive `export_design` wrote;
  `create_bd_cell` / `create_ip` refuse a VLNV the catalog lacks.
- Block design: cells carry interface pins with their clock pins and reset pins, as configured
  (`CONFIG.*` properties, board presets: the zcu102/zcu104 presets enable M_AXI_HPM1_FPD); connecting a
  pin that does not exist fails; `apply_bd_automation` (axi4, clkrst) connects clocks and resets the way
  Vivado's does; `validate_bd_design` fails on an unconnected clock or reset pin.
- Files: runs write their checkpoint / handoff where Vivado does (`<dir>/<project>.runs/...`,
  `.gen/.../hw_handoff`), `open_checkpoint` and `add_files`/`read_verilog` need existing files.
"""

from __future__ import annotations

from edgekd.project.tclstubs_vivado import VIVADO_STUBS

__all__ = ["PRELUDE", "PLAIN_STUBS", "HLS_VERSION_LAYOUTS"]

# Stubs that only record.
PLAIN_STUBS = (
    "set_clock_uncertainty", "config_compile", "config_interface", "config_schedule", "config_array_partition",
    "csim_design", "close_project", "close_solution",
    "save_bd_design", "synth_design", "opt_design", "place_design", "route_design", "startgroup", "endgroup",
    "reset_run",
)

#: HLS release -> where `export_design -format ip_catalog` puts the archive without -output
HLS_VERSION_LAYOUTS = {
    "2020.1": "impl/ip/{vendor}_{library}_{top}_{version}.zip",
    "2022.2": "impl/export.zip",
    "2023.2": "impl/export.zip",
    "2024.2": "impl/{top}.zip",
}

_COMMON_AND_HLS = r"""
set ::edgekd_log [open $::env(EDGEKD_TCL_LOG) a]
set ::edgekd_top ""
set ::edgekd_prj ""
set ::edgekd_sol ""
set ::edgekd_flow_target vivado
set ::edgekd_part ""
set ::edgekd_clock ""
set ::edgekd_sources {}
set ::edgekd_catalog [dict create]
foreach v {xilinx.com:ip:processing_system7:5.5 xilinx.com:ip:zynq_ultra_ps_e:3.5 xilinx.com:ip:axi_dma:7.1
           xilinx.com:ip:proc_sys_reset:5.0 xilinx.com:ip:smartconnect:1.0} {
    dict set ::edgekd_catalog $v {}
}
set ::edgekd_cells [dict create]
set ::edgekd_connected [dict create]
set ::edgekd_bd ""
set ::edgekd_bd_valid 0
set ::edgekd_vproj ""
set ::edgekd_ips [dict create]
set ::edgekd_runs [dict create]

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
proc edgekd_read {path} {
    set f [open $path r]
    set text [read $f]
    close $f
    return $text
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
# value of option `name` in an argument list, or `default`
proc edgekd_opt {argv name {default ""}} {
    set i [lsearch -exact $argv $name]
    if {$i < 0} { return $default }
    return [lindex $argv [expr {$i + 1}]]
}
# arguments that are neither options nor option values
proc edgekd_positional {argv valued} {
    set out {}
    set skip 0
    foreach a $argv {
        if {$skip} { set skip 0; continue }
        if {[lsearch -exact $valued $a] >= 0} { set skip 1; continue }
        if {[string match -* $a]} { continue }
        lappend out $a
    }
    return $out
}
foreach cmd $::edgekd_plain_stubs {
    proc $cmd {args} "edgekd_record $cmd {*}\$args"
}

# ---------------------------------------------------------------------------------------------- HLS
proc open_project {args} {
    edgekd_record open_project {*}$args
    set ::edgekd_prj [lindex [edgekd_positional $args {}] end]
    file mkdir $::edgekd_prj
}
proc set_top {name} { edgekd_record set_top $name; set ::edgekd_top $name }
proc open_solution {args} {
    edgekd_record open_solution {*}$args
    set name [lindex [edgekd_positional $args {-flow_target}] 0]
    set ::edgekd_sol [file join $::edgekd_prj $name]
    file mkdir $::edgekd_sol
    set ft [edgekd_opt $args -flow_target ""]
    set state [file join $::edgekd_sol .edgekd_flow_target]
    if {$ft ne ""} {
        if {$ft ni {vivado vitis}} { error "open_solution: -flow_target must be vivado or vitis, not $ft" }
        edgekd_touch $state $ft
    } elseif {![file exists $state]} {
        edgekd_touch $state vivado
    }
    set ::edgekd_flow_target [edgekd_read $state]
}
proc set_part {args} { edgekd_record set_part {*}$args; set ::edgekd_part [lindex $args end] }
proc create_clock {args} {
    edgekd_record create_clock {*}$args
    set ::edgekd_clock [edgekd_opt $args -period ""]
}
proc add_files {args} {
    edgekd_record add_files {*}$args
    edgekd_check_files add_files $args {-cflags -csimflags -fileset -of_objects}
    if {[lsearch -exact $args -tb] < 0 && $::edgekd_prj ne ""} {
        foreach p [edgekd_positional $args {-cflags -csimflags -fileset -of_objects}] {
            foreach f $p { lappend ::edgekd_sources [file normalize $f] }
        }
    }
}
proc csynth_design {args} {
    edgekd_record csynth_design {*}$args
    if {$::edgekd_sol eq ""} { error "csynth_design: no open solution (open_solution)" }
    if {$::edgekd_part eq ""} { error "csynth_design: no part set (set_part)" }
    if {$::edgekd_clock eq ""} { error "csynth_design: no clock (create_clock -period)" }
    if {$::edgekd_top eq ""} { error "csynth_design: no top function (set_top)" }
    set ports [exec $::env(EDGEKD_PYTHON) -m edgekd.project.vendorcli interfaces $::edgekd_top {*}$::edgekd_sources]
    edgekd_touch [file join $::edgekd_sol .edgekd_ports] $ports
    set v "// stub RTL\nmodule ${::edgekd_top} (ap_clk, ap_rst_n"
    foreach p $ports { append v ", [lindex $p 1]" }
    edgekd_touch [file join $::edgekd_sol syn verilog ${::edgekd_top}.v] "$v);\nendmodule\n"
    edgekd_touch [file join $::edgekd_sol syn report ${::edgekd_top}_csynth.xml] "<profile/>\n"
}
proc cosim_design {args} {
    edgekd_record cosim_design {*}$args
    if {$::edgekd_sol eq ""} { error "cosim_design: no open solution" }
    if {![file exists [file join $::edgekd_sol syn report ${::edgekd_top}_csynth.xml]]} {
        error "cosim_design: solution $::edgekd_sol has not been synthesized (csynth_design)"
    }
    set rtl [edgekd_opt $args -rtl verilog]
    if {$rtl ni {verilog vhdl}} { error "cosim_design: -rtl must be verilog or vhdl, not $rtl" }
    set trace [edgekd_opt $args -trace_level none]
    if {$trace ni {none port all}} { error "cosim_design: -trace_level must be none, port or all, not $trace" }
    # where Vitis writes the report; the stub's content is not a report (no result row), so it cannot be ingested
    edgekd_touch [file join $::edgekd_sol sim report ${::edgekd_top}_cosim.rpt] "edgekd-stub-cosim\n"
}
proc export_design {args} {
    edgekd_record export_design {*}$args
    if {$::edgekd_sol eq ""} { error "export_design: no open solution" }
    set ports_file [file join $::edgekd_sol .edgekd_ports]
    if {![file exists [file join $::edgekd_sol syn report ${::edgekd_top}_csynth.xml]] || ![file exists $ports_file]} {
        error "export_design: solution $::edgekd_sol has not been synthesized (csynth_design)"
    }
    set ports [edgekd_read $ports_file]
    set format [edgekd_opt $args -format ip_catalog]
    set out [edgekd_opt $args -output ""]
    set top $::edgekd_top
    if {$format eq "xo"} {
        if {$::edgekd_flow_target ne "vitis"} {
            error "export_design: -format xo needs a solution opened with -flow_target vitis"
        }
        if {$out eq ""} { set out [file join $::edgekd_sol impl export.xo] }
        set text "edgekd-stub-xo\nkernel $top\n"
        foreach p $ports { append text "arg [lindex $p 1] [lindex $p 2]\n" }
        edgekd_touch $out $text
        return
    }
    set vendor [edgekd_opt $args -vendor xilinx.com]
    set library [edgekd_opt $args -library hls]
    set version [edgekd_opt $args -version 1.0]
    if {$out eq ""} {
        set layout [dict get $::edgekd_hls_layouts $::edgekd_hls_version]
        set rel [string map [list "{vendor}" [string map {. _} $vendor] "{library}" $library "{top}" $top \
                             "{version}" [string map {. _} $version]] $layout]
        set out [file join $::edgekd_sol $rel]
    }
    set text "edgekd-stub-ip\nvlnv $vendor:$library:$top:$version\n"
    foreach p $ports { append text "intf [lindex $p 1] [lindex $p 2]\n" }
    edgekd_touch $out $text
}

"""

PRELUDE = _COMMON_AND_HLS + VIVADO_STUBS
