"""Tcl stubs of the Vivado commands the generated scripts use: projects, the IP catalog, block designs
(cells, interface / clock / reset pins, board presets, automation, validation), IP runs and checkpoints.
Part of the prelude `edgekd.project.tclstubs.PRELUDE`; see that module for what is modelled and why.
"""

__all__ = ["VIVADO_STUBS"]

VIVADO_STUBS = r"""
# ---------------------------------------------------------------------------------------------- Vivado
proc create_project {args} {
    edgekd_record create_project {*}$args
    set pos [edgekd_positional $args {-part}]
    if {[lsearch -exact $args -in_memory] >= 0} { set ::edgekd_vproj ""; return }
    set name [lindex $pos 0]
    set dir [lindex $pos 1]
    if {$dir eq ""} { set dir . }
    file mkdir $dir
    set ::edgekd_vproj [list $name $dir]
}
proc current_project {args} { return current_project }
proc current_fileset {args} { return sources_1 }
proc set_property {args} {
    edgekd_record set_property {*}$args
    if {[lindex $args 0] eq "-dict"} {
        set cell [lindex $args 2]
        if {[dict exists $::edgekd_cells $cell]} {
            foreach {k v} [lindex $args 1] { dict set ::edgekd_cells $cell config $k $v }
        }
    }
}
proc get_property {name args} {
    edgekd_record get_property $name {*}$args
    if {$name eq "PROGRESS"} {
        set run [lindex $args end]
        if {[dict exists $::edgekd_runs $run] && [dict get $::edgekd_runs $run] eq "done"} { return "100%" }
        return "0%"
    }
    return ""
}
proc get_ipdefs {args} {
    set pat [lindex $args end]
    set out {}
    foreach v [dict keys $::edgekd_catalog] { if {[string match $pat $v]} { lappend out $v } }
    return $out
}
# every board part counts as installed, so the board-preset path (apply_board_preset 1) is the one checked
proc get_board_parts {args} { return [lindex $args end] }
proc update_ip_catalog {args} {
    edgekd_record update_ip_catalog {*}$args
    set zip [edgekd_opt $args -add_ip ""]
    if {$zip eq ""} { return }
    set repo [edgekd_opt $args -repo_path ""]
    if {![file exists $zip]} { error "update_ip_catalog: no such IP archive: $zip" }
    if {$repo eq "" || ![file isdirectory $repo]} { error "update_ip_catalog: -repo_path $repo is not a folder" }
    set lines [split [edgekd_read $zip] "\n"]
    if {[lindex $lines 0] ne "edgekd-stub-ip"} { error "update_ip_catalog: $zip is not an IP archive (no component.xml)" }
    set vlnv ""
    set intfs {}
    foreach l $lines {
        if {[lindex $l 0] eq "vlnv"} { set vlnv [lindex $l 1] }
        if {[lindex $l 0] eq "intf"} { lappend intfs [lindex $l 1] }
    }
    dict set ::edgekd_catalog $vlnv $intfs
}

# cells and their pins: {intfs {NAME CLOCKPIN ...} clocks_in {...} resets_in {...} clocks_out {...} resets_out {...}}
proc edgekd_cfg {cell key default} {
    set cfg [dict get $::edgekd_cells $cell config]
    if {[dict exists $cfg CONFIG.$key]} { return [dict get $cfg CONFIG.$key] }
    return $default
}
proc edgekd_pins {cell} {
    set kind [dict get $::edgekd_cells $cell kind]
    set intfs {}
    set cin {}
    set rin {}
    set cout {}
    set rout {}
    switch -- $kind {
        ps7 {
            if {[edgekd_cfg $cell PCW_USE_M_AXI_GP0 1]} { lappend intfs M_AXI_GP0 M_AXI_GP0_ACLK }
            if {[edgekd_cfg $cell PCW_USE_M_AXI_GP1 0]} { lappend intfs M_AXI_GP1 M_AXI_GP1_ACLK }
            if {[edgekd_cfg $cell PCW_USE_S_AXI_HP0 0]} { lappend intfs S_AXI_HP0 S_AXI_HP0_ACLK }
            set cout {FCLK_CLK0}
            set rout {FCLK_RESET0_N}
        }
        zups {
            if {[edgekd_cfg $cell PSU__USE__M_AXI_GP0 1]} { lappend intfs M_AXI_HPM0_FPD maxihpm0_fpd_aclk }
            if {[edgekd_cfg $cell PSU__USE__M_AXI_GP1 1]} { lappend intfs M_AXI_HPM1_FPD maxihpm1_fpd_aclk }
            if {[edgekd_cfg $cell PSU__USE__M_AXI_GP2 1]} { lappend intfs M_AXI_HPM0_LPD maxihpm0_lpd_aclk }
            if {[edgekd_cfg $cell PSU__USE__S_AXI_GP2 0]} { lappend intfs S_AXI_HP0_FPD saxihp0_fpd_aclk }
            set cout {pl_clk0}
            set rout {pl_resetn0}
        }
        dma {
            lappend intfs S_AXI_LITE s_axi_lite_aclk M_AXI_MM2S m_axi_mm2s_aclk M_AXI_S2MM m_axi_s2mm_aclk \
                M_AXIS_MM2S m_axi_mm2s_aclk S_AXIS_S2MM m_axi_s2mm_aclk
            if {[edgekd_cfg $cell c_include_sg 1]} { lappend intfs M_AXI_SG m_axi_sg_aclk }
            set rin {axi_resetn}
        }
        hls {
            foreach i [dict get $::edgekd_cells $cell intfs] { lappend intfs $i ap_clk }
            set cin {ap_clk}
            set rin {ap_rst_n}
        }
        default {}
    }
    foreach {i c} $intfs { if {[lsearch -exact $cin $c] < 0} { lappend cin $c } }
    return [dict create intfs $intfs clocks_in $cin resets_in $rin clocks_out $cout resets_out $rout]
}
proc create_bd_design {args} {
    edgekd_record create_bd_design {*}$args
    set ::edgekd_bd [lindex $args end]
    set ::edgekd_bd_valid 0
}
proc create_bd_cell {args} {
    edgekd_record create_bd_cell {*}$args
    if {$::edgekd_bd eq ""} { error "create_bd_cell: no block design (create_bd_design)" }
    set vlnv [edgekd_opt $args -vlnv ""]
    set name [lindex $args end]
    if {![dict exists $::edgekd_catalog $vlnv]} {
        error "create_bd_cell: \[BD 5-390\] IP definition not found for VLNV: $vlnv"
    }
    set kind other
    foreach {pat k} {*:processing_system7:* ps7 *:zynq_ultra_ps_e:* zups *:axi_dma:* dma xilinx.com:* other * hls} {
        if {[string match $pat $vlnv]} { set kind $k; break }
    }
    dict set ::edgekd_cells $name [dict create kind $kind config {} intfs [dict get $::edgekd_catalog $vlnv]]
    set ::edgekd_bd_valid 0
}
# "/cell/pin" or "cell/pin" -> {cell pin}
proc edgekd_split {path} {
    set p [string trimleft $path /]
    set i [string first / $p]
    if {$i < 0} { return [list $p ""] }
    return [list [string range $p 0 [expr {$i - 1}]] [string range $p [expr {$i + 1}] end]]
}
proc edgekd_pin_exists {path what} {
    lassign [edgekd_split $path] cell pin
    if {![dict exists $::edgekd_cells $cell]} { return 0 }
    set pins [edgekd_pins $cell]
    if {$what eq "intf"} { return [expr {[lsearch -exact [dict keys [dict get $pins intfs]] $pin] >= 0}] }
    foreach k {clocks_in resets_in clocks_out resets_out} {
        if {[lsearch -exact [dict get $pins $k] $pin] >= 0} { return 1 }
    }
    return 0
}
proc edgekd_require_pin {cmd path what} {
    if {$path eq "" || ![edgekd_pin_exists $path $what]} {
        lassign [edgekd_split $path] cell pin
        set have {}
        if {[dict exists $::edgekd_cells $cell]} {
            set pins [edgekd_pins $cell]
            set have [expr {$what eq "intf" ? [dict keys [dict get $pins intfs]] : [concat [dict get $pins clocks_in] [dict get $pins resets_in] [dict get $pins clocks_out] [dict get $pins resets_out]]}]
        }
        error "$cmd: no $what pin '$path' (cell '$cell' has: $have)"
    }
}
proc get_bd_cells {args} { set c [lindex $args end]; if {[dict exists $::edgekd_cells $c]} { return $c }; return "" }
proc get_bd_pins {args} { set p [lindex $args end]; if {[edgekd_pin_exists $p pin]} { return /[string trimleft $p /] }; return "" }
proc get_bd_intf_pins {args} { set p [lindex $args end]; if {[edgekd_pin_exists $p intf]} { return /[string trimleft $p /] }; return "" }
proc edgekd_connect {path} { dict set ::edgekd_connected [string trimleft $path /] 1; set ::edgekd_bd_valid 0 }
proc connect_bd_intf_net {args} {
    edgekd_record connect_bd_intf_net {*}$args
    set ends [edgekd_positional $args {}]
    if {[llength $ends] != 2} { error "connect_bd_intf_net: needs two interface pins, got '$ends' (a get_bd_intf_pins found nothing?)" }
    foreach p $ends { edgekd_require_pin connect_bd_intf_net $p intf; edgekd_connect $p }
}
proc connect_bd_net {args} {
    edgekd_record connect_bd_net {*}$args
    set ends [edgekd_positional $args {}]
    if {[llength $ends] < 2} { error "connect_bd_net: needs at least two pins, got '$ends'" }
    foreach p $ends { edgekd_require_pin connect_bd_net $p pin; edgekd_connect $p }
}
# the clock pin of an interface pin
proc edgekd_intf_clock {path} {
    lassign [edgekd_split $path] cell pin
    return $cell/[dict get [dict get [edgekd_pins $cell] intfs] $pin]
}
proc edgekd_reset_cell {cell} {
    foreach r [dict get [edgekd_pins $cell] resets_in] { edgekd_connect $cell/$r }
}
proc apply_bd_automation {args} {
    edgekd_record apply_bd_automation {*}$args
    set rule [edgekd_opt $args -rule ""]
    set cfg [edgekd_opt $args -config {}]
    set target [lindex $args end]
    if {$target eq ""} { error "apply_bd_automation: no target object (a get_bd_* found nothing?)" }
    switch -glob -- $rule {
        *:bd_rule:processing_system7 - *:bd_rule:zynq_ultra_ps_e {
            set cell [lindex $args end]
            if {[dict exists $cfg apply_board_preset] && [dict get $cfg apply_board_preset] && \
                [dict get $::edgekd_cells $cell kind] eq "zups"} {
                # the zcu102 / zcu104 presets: both FPD masters on, the LPD master off
                foreach {k v} {PSU__USE__M_AXI_GP0 1 PSU__USE__M_AXI_GP1 1 PSU__USE__M_AXI_GP2 0} {
                    dict set ::edgekd_cells $cell config CONFIG.$k $v
                }
            }
        }
        *:bd_rule:axi4 {
            foreach key {Master Slave} {
                if {![dict exists $cfg $key]} { error "apply_bd_automation axi4: no $key in -config" }
                edgekd_require_pin "apply_bd_automation axi4 $key" [dict get $cfg $key] intf
            }
            foreach key {Clk_master Clk_slave Clk_xbar} {
                if {[dict exists $cfg $key] && [dict get $cfg $key] ne "Auto"} {
                    edgekd_require_pin "apply_bd_automation axi4 $key" [dict get $cfg $key] pin
                    edgekd_connect [dict get $cfg $key]
                }
            }
            foreach key {Master Slave} {
                set p [dict get $cfg $key]
                edgekd_connect $p
                edgekd_connect [edgekd_intf_clock $p]
                edgekd_reset_cell [lindex [edgekd_split $p] 0]
            }
        }
        *:bd_rule:clkrst {
            if {![dict exists $cfg Clk]} { error "apply_bd_automation clkrst: no Clk in -config" }
            edgekd_require_pin "apply_bd_automation clkrst Clk" [dict get $cfg Clk] pin
            edgekd_require_pin "apply_bd_automation clkrst" $target pin
            edgekd_connect $target
            edgekd_reset_cell [lindex [edgekd_split $target] 0]
        }
        default { error "apply_bd_automation: rule $rule is not modelled by the stubs" }
    }
}
proc validate_bd_design {args} {
    edgekd_record validate_bd_design {*}$args
    set clocks {}
    set resets {}
    dict for {cell _} $::edgekd_cells {
        set pins [edgekd_pins $cell]
        foreach c [dict get $pins clocks_in] { if {![dict exists $::edgekd_connected $cell/$c]} { lappend clocks /$cell/$c } }
        foreach r [dict get $pins resets_in] { if {![dict exists $::edgekd_connected $cell/$r]} { lappend resets /$cell/$r } }
    }
    if {[llength $clocks]} { error "validate_bd_design: \[BD 41-758\] clock pins not connected to a valid clock source: $clocks" }
    if {[llength $resets]} { error "validate_bd_design: reset pins not connected: $resets" }
    set ::edgekd_bd_valid 1
}
proc edgekd_vproj_dir {} {
    if {$::edgekd_vproj eq ""} { error "no Vivado project (create_project)" }
    return [file join [lindex $::edgekd_vproj 1]]
}
proc get_files {args} { return [lindex $args end] }
proc make_wrapper {args} {
    edgekd_record make_wrapper {*}$args
    if {!$::edgekd_bd_valid} { error "make_wrapper: block design $::edgekd_bd not validated (validate_bd_design)" }
    lassign $::edgekd_vproj name dir
    set path [file join $dir $name.gen sources_1 bd $::edgekd_bd hdl ${::edgekd_bd}_wrapper.v]
    edgekd_touch $path "// stub wrapper\n"
    return $path
}
proc get_runs {args} { return [lindex $args end] }
proc get_ips {args} {
    set n [lindex $args end]
    if {[dict exists $::edgekd_ips $n]} { return $n }
    return ""
}
proc create_ip {args} {
    edgekd_record create_ip {*}$args
    set vlnv [edgekd_opt $args -vlnv ""]
    if {![dict exists $::edgekd_catalog $vlnv]} { error "create_ip: IP definition not found for VLNV: $vlnv" }
    dict set ::edgekd_ips [edgekd_opt $args -module_name ""] generated 0
}
proc generate_target {args} {
    edgekd_record generate_target {*}$args
    set ip [lindex $args end]
    if {$ip eq "" || ![dict exists $::edgekd_ips $ip]} { error "generate_target: no IP '$ip'" }
    dict set ::edgekd_ips $ip generated 1
}
proc create_ip_run {args} {
    edgekd_record create_ip_run {*}$args
    set ip [lindex $args end]
    if {$ip eq "" || ![dict exists $::edgekd_ips $ip] || ![dict get $::edgekd_ips $ip generated]} {
        error "create_ip_run: IP '$ip' does not exist or has no generated output products"
    }
    dict set ::edgekd_runs ${ip}_synth_1 created
}
proc launch_runs {args} {
    edgekd_record launch_runs {*}$args
    lassign $::edgekd_vproj name dir
    set run [lindex [edgekd_positional $args {-to_step -jobs}] 0]
    if {$run eq "impl_1"} {
        if {$::edgekd_bd ne "" && !$::edgekd_bd_valid} { error "launch_runs: block design not validated" }
        edgekd_touch [file join $dir $name.gen sources_1 bd $::edgekd_bd hw_handoff $::edgekd_bd.hwh] "<stub/>\n"
    } elseif {[dict exists $::edgekd_runs $run]} {
        set ip [string range $run 0 end-8]
        edgekd_touch [file join $dir $name.runs $run $ip.dcp] "stub\n"
    } else {
        error "launch_runs: no run '$run'"
    }
    dict set ::edgekd_runs $run done
}
proc wait_on_run {args} { edgekd_record wait_on_run {*}$args }
proc open_run {args} { edgekd_record open_run {*}$args }
proc open_checkpoint {args} {
    edgekd_record open_checkpoint {*}$args
    edgekd_check_files open_checkpoint $args {}
}
proc read_verilog {args} { edgekd_record read_verilog {*}$args; edgekd_check_files read_verilog $args {-library} }
proc get_ports {args} { return [lindex $args end] }
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
