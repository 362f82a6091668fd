# Vivado batch build of vcu118_top for the AMD VCU118 board: IP, synthesis, implementation,
# bitstream.  Run through build.sh, which writes the source list from hil/sim/_env.py:
#
#   vivado -mode batch -source build.tcl -tclargs <out_dir> <sources.f> [uart_baud]
#
# Everything is built in memory; outputs go to <out_dir>.  Tested only as far as README.md
# says: this file has not been run here (no Vivado in CI).

if {$argc < 2} {
  error "usage: vivado -mode batch -source build.tcl -tclargs <out_dir> <sources.f> \[uart_baud\]"
}
set here    [file dirname [file normalize [info script]]]
set out     [file normalize [lindex $argv 0]]
set srcs_f  [file normalize [lindex $argv 1]]
set baud    [expr {$argc > 2 ? [lindex $argv 2] : 2000000}]
set part    xcvu9p-flga2104-2L-e
set top     vcu118_top
file mkdir $out

create_project -in_memory -part $part

##########################################
# PCIe4 hard IP: the settings that matter #
##########################################
#
# These must agree with the rest of the project (README.md, "Settings that must match"):
#   - Configuration Extend window: ext_pcie_cfg_space_enabled gives user logic registers
#     0x120..0x13F (bytes 0x480..0x4FF), hil/regmap.py WINDOW;
#   - device ID 0x9048, vendor 0x10EE, class 0x120000: what hil/sim/hardip.py models;
#   - BAR0 64-bit, 4 KiB, non-prefetchable memory: the TDI's BAR0 (hdl/tdi);
#   - Gen3 x4, 128-bit AXI4-Stream at 250 MHz: the width of hil_ep's TLP streams;
#   - CQ/CC DWORD-aligned, no straddling: what usp_cq_cc_adapter expects;
#   - MSI with one vector (not MSI-X), DSN and AER on, FLR capable, no legacy interrupt.
# The block location and GT quad put lane 0 in GTY quad 227 (vcu118.xdc).

create_ip -name pcie4_uscale_plus -vendor xilinx.com -library ip \
  -module_name pcie4_uscale_plus_0 -dir $out/ip
set_property -dict [list \
  CONFIG.mode_selection                          {Advanced} \
  CONFIG.pcie_blk_locn                           {X1Y2} \
  CONFIG.en_gt_selection                         {true} \
  CONFIG.select_quad                             {GTY_Quad_227} \
  CONFIG.PL_LINK_CAP_MAX_LINK_SPEED              {8.0_GT/s} \
  CONFIG.PL_LINK_CAP_MAX_LINK_WIDTH              {X4} \
  CONFIG.axisten_if_width                        {128_bit} \
  CONFIG.axisten_freq                            {250} \
  CONFIG.AXISTEN_IF_CQ_ALIGNMENT_MODE            {DWORD_Aligned} \
  CONFIG.AXISTEN_IF_CC_ALIGNMENT_MODE            {DWORD_Aligned} \
  CONFIG.AXISTEN_IF_RQ_ALIGNMENT_MODE            {DWORD_Aligned} \
  CONFIG.AXISTEN_IF_RC_ALIGNMENT_MODE            {DWORD_Aligned} \
  CONFIG.vendor_id                               {10EE} \
  CONFIG.PF0_DEVICE_ID                           {9048} \
  CONFIG.PF0_CLASS_CODE                          {120000} \
  CONFIG.PF0_SUBSYSTEM_VENDOR_ID                 {10EE} \
  CONFIG.PF0_SUBSYSTEM_ID                        {0007} \
  CONFIG.PF0_REVISION_ID                         {00} \
  CONFIG.pf0_bar0_enabled                        {true} \
  CONFIG.pf0_bar0_type                           {Memory} \
  CONFIG.pf0_bar0_64bit                          {true} \
  CONFIG.pf0_bar0_prefetchable                   {false} \
  CONFIG.pf0_bar0_scale                          {Kilobytes} \
  CONFIG.pf0_bar0_size                           {4} \
  CONFIG.pf0_bar2_enabled                        {false} \
  CONFIG.pf0_bar4_enabled                        {false} \
  CONFIG.ext_pcie_cfg_space_enabled              {true} \
  CONFIG.pf0_dsn_enabled                         {true} \
  CONFIG.pf0_aer_enabled                         {true} \
  CONFIG.pf0_msi_enabled                         {true} \
  CONFIG.PF0_MSI_CAP_MULTIMSGCAP                 {1_vector} \
  CONFIG.pf0_msix_enabled                        {false} \
  CONFIG.PF0_INTERRUPT_PIN                       {NONE} \
  CONFIG.PF0_DEV_CAP_FUNCTION_LEVEL_RESET_CAPABLE {true} \
] [get_ips pcie4_uscale_plus_0]
report_property -file $out/pcie4_uscale_plus_0.properties.txt [get_ips pcie4_uscale_plus_0]

# Synthesise the IP with the design (no out-of-context checkpoint in an in-memory project).
set xci [get_files pcie4_uscale_plus_0.xci]
set_property generate_synth_checkpoint false $xci
generate_target all $xci

#########################################################
# The lint stub must have the generated IP's exact ports #
#########################################################

# Ports of the instantiation template: ".name(...), // input wire [W : 0] name".
proc veo_ports {path} {
  set ports {}
  set f [open $path r]
  foreach line [split [read $f] "\n"] {
    if {[regexp {^\s*\.(\w+)\s*\(.*//\s*(input|output)\s+wire\s*(\[\s*(\d+)\s*:\s*0\s*\])?} \
           $line -> name dir _ msb]} {
      if {$msb eq ""} { set msb 0 }
      lappend ports [list $name $dir [expr {$msb + 1}]]
    }
  }
  close $f
  return [lsort -index 0 $ports]
}

# Ports of the stub: "input logic [W-1:0] name".
proc stub_ports {path} {
  set ports {}
  set f [open $path r]
  foreach line [split [read $f] "\n"] {
    if {[regexp {^\s*(input|output)\s+logic\s*(\[(\d+):0\])?\s*(\w+)} \
           $line -> dir _ msb name]} {
      if {$msb eq ""} { set msb 0 }
      lappend ports [list $name $dir [expr {$msb + 1}]]
    }
  }
  close $f
  return [lsort -index 0 $ports]
}

set veo [lindex [glob -nocomplain $out/ip/pcie4_uscale_plus_0/*.veo] 0]
if {$veo eq ""} {
  error "no instantiation template (.veo) generated for pcie4_uscale_plus_0"
}
set generated [veo_ports $veo]
set stubbed   [stub_ports $here/stubs/pcie4_uscale_plus_0.sv]
if {$generated ne $stubbed} {
  puts "generated IP ports: $generated"
  puts "stub ports:         $stubbed"
  error "stubs/pcie4_uscale_plus_0.sv no longer matches the generated IP: update the stub\
         and vcu118_top.sv from $veo"
}
puts "stubs/pcie4_uscale_plus_0.sv matches the generated IP ([llength $generated] ports)"

##################
# Sources, build #
##################

# The RTL list of hil/sim/_env.py RTL_TOPS["vcu118_top"] without the lint stubs.
set f [open $srcs_f r]
foreach src [split [string trim [read $f]] "\n"] {
  read_verilog -sv $src
}
close $f
read_xdc $here/vcu118.xdc

synth_design -top $top -part $part -generic UART_BAUD=$baud
report_utilization -file $out/utilization_synth.txt
opt_design
place_design
phys_opt_design
route_design
report_timing_summary -file $out/timing.txt
report_utilization -file $out/utilization.txt
write_checkpoint -force $out/$top.dcp

set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
if {$wns < 0} {
  error "timing not met (WNS $wns ns): see $out/timing.txt"
}

write_bitstream -force $out/$top.bit
# The board's configuration flash: two x4 SPI devices in x8 mode (UG1224) -- check the size
# and part against UG1224 before programming the flash.
write_cfgmem -force -format mcs -size 256 -interface SPIx8 \
  -loadbit "up 0x00000000 $out/$top.bit" -file $out/$top.mcs
puts "wrote $out/$top.bit and $out/$top.mcs"
