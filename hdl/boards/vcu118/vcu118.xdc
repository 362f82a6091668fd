# Constraints for vcu118_top on the AMD VCU118 board (XCVU9P-L2FLGA2104E).
#
# Pin numbers follow the VCU118 Evaluation Board User Guide (UG1224), its FPGA pin tables and
# master constraints.  The UG1224 text itself could not be consulted while this file was
# written: every pin below was taken from VCU118 constraint files of independent public
# designs that agree with one another, and is marked "check against UG1224" until someone
# compares it with the guide (README.md, "Before the first build").

# Configuration bank and bitstream (UG1224: configuration banks at 1.8 V; the board boots
# from its dual-quad SPI flash) -- check against UG1224
set_property CFGBVS GND                          [current_design]
set_property CONFIG_VOLTAGE 1.8                  [current_design]
set_property BITSTREAM.GENERAL.COMPRESS TRUE     [current_design]
set_property BITSTREAM.CONFIG.SPI_BUSWIDTH 8     [current_design]
set_property BITSTREAM.CONFIG.SPI_32BIT_ADDR YES [current_design]

######################
# PCI Express (x4)   #
######################

# PCIe reference clock from the edge connector (100 MHz).  UG1224: the host clock is buffered
# to MGTREFCLK0 of GTY quads 225 and 227; lane 0 of a x4 link sits in quad 227, so this design
# uses MGTREFCLK0_227.  Check against UG1224.
set_property PACKAGE_PIN AC9 [get_ports pcie_refclk_p_i] ;# MGTREFCLK0P_227 -- check against UG1224
set_property PACKAGE_PIN AC8 [get_ports pcie_refclk_n_i] ;# MGTREFCLK0N_227 -- check against UG1224
create_clock -period 10.000 -name pcie_refclk [get_ports pcie_refclk_p_i]

# PERST# from the edge connector, level-shifted to 1.8 V.
set_property -dict {PACKAGE_PIN AM17 IOSTANDARD LVCMOS18 PULLUP TRUE} [get_ports pcie_perst_ni] ;# check against UG1224
set_false_path -from [get_ports pcie_perst_ni]

# Lanes 0..3 of the edge connector: GTY quad 227, lane 0 in channel 3 (X1Y35) down to lane 3
# in channel 0 (X1Y32).  The IP's own constraints place its GT channels from select_quad in
# build.tcl; these LOCs only pin the top-level ports to the same sites.  Check against UG1224.
set_property PACKAGE_PIN AA4 [get_ports {pcie_rx_p_i[0]}] ;# MGTYRXP3_227 -- check against UG1224
set_property PACKAGE_PIN AA3 [get_ports {pcie_rx_n_i[0]}] ;# MGTYRXN3_227
set_property PACKAGE_PIN Y7  [get_ports {pcie_tx_p_o[0]}] ;# MGTYTXP3_227
set_property PACKAGE_PIN Y6  [get_ports {pcie_tx_n_o[0]}] ;# MGTYTXN3_227
set_property PACKAGE_PIN AB2 [get_ports {pcie_rx_p_i[1]}] ;# MGTYRXP2_227 -- check against UG1224
set_property PACKAGE_PIN AB1 [get_ports {pcie_rx_n_i[1]}] ;# MGTYRXN2_227
set_property PACKAGE_PIN AB7 [get_ports {pcie_tx_p_o[1]}] ;# MGTYTXP2_227
set_property PACKAGE_PIN AB6 [get_ports {pcie_tx_n_o[1]}] ;# MGTYTXN2_227
set_property PACKAGE_PIN AC4 [get_ports {pcie_rx_p_i[2]}] ;# MGTYRXP1_227 -- check against UG1224
set_property PACKAGE_PIN AC3 [get_ports {pcie_rx_n_i[2]}] ;# MGTYRXN1_227
set_property PACKAGE_PIN AD7 [get_ports {pcie_tx_p_o[2]}] ;# MGTYTXP1_227
set_property PACKAGE_PIN AD6 [get_ports {pcie_tx_n_o[2]}] ;# MGTYTXN1_227
set_property PACKAGE_PIN AD2 [get_ports {pcie_rx_p_i[3]}] ;# MGTYRXP0_227 -- check against UG1224
set_property PACKAGE_PIN AD1 [get_ports {pcie_rx_n_i[3]}] ;# MGTYRXN0_227
set_property PACKAGE_PIN AF7 [get_ports {pcie_tx_p_o[3]}] ;# MGTYTXP0_227
set_property PACKAGE_PIN AF6 [get_ports {pcie_tx_n_o[3]}] ;# MGTYTXN0_227

# The user clock (250 MHz) and its constraints come from the IP's own XDC.

######################
# USB-UART           #
######################

# UG1224: the CP2105 USB-UART bridge connects one of its two UARTs to the FPGA at 1.8 V.  Net names there are from the bridge's point of view: the FPGA receives on
# USB_UART_TX and drives USB_UART_RX.  Check against UG1224 (pins and which COM port).
set_property -dict {PACKAGE_PIN AW25 IOSTANDARD LVCMOS18} [get_ports uart_rxd_i] ;# USB_UART_TX -- check against UG1224
set_property -dict {PACKAGE_PIN BB21 IOSTANDARD LVCMOS18 SLEW SLOW DRIVE 8} [get_ports uart_txd_o] ;# USB_UART_RX -- check against UG1224
# uart_bridge synchronises its receive line; the lines are asynchronous to every clock.
set_false_path -from [get_ports uart_rxd_i]
set_false_path -to [get_ports uart_txd_o]

######################
# User LEDs          #
######################

# UG1224: GPIO_LED_0..7, driven at 1.2 V.  Check against UG1224.
set_property -dict {PACKAGE_PIN AT32 IOSTANDARD LVCMOS12} [get_ports {led_o[0]}] ;# GPIO_LED_0 -- check against UG1224
set_property -dict {PACKAGE_PIN AV34 IOSTANDARD LVCMOS12} [get_ports {led_o[1]}] ;# GPIO_LED_1 -- check against UG1224
set_property -dict {PACKAGE_PIN AY30 IOSTANDARD LVCMOS12} [get_ports {led_o[2]}] ;# GPIO_LED_2 -- check against UG1224
set_property -dict {PACKAGE_PIN BB32 IOSTANDARD LVCMOS12} [get_ports {led_o[3]}] ;# GPIO_LED_3 -- check against UG1224
set_property -dict {PACKAGE_PIN BF32 IOSTANDARD LVCMOS12} [get_ports {led_o[4]}] ;# GPIO_LED_4 -- check against UG1224
set_property -dict {PACKAGE_PIN AU37 IOSTANDARD LVCMOS12} [get_ports {led_o[5]}] ;# GPIO_LED_5 -- check against UG1224
set_property -dict {PACKAGE_PIN AV36 IOSTANDARD LVCMOS12} [get_ports {led_o[6]}] ;# GPIO_LED_6 -- check against UG1224
set_property -dict {PACKAGE_PIN BA37 IOSTANDARD LVCMOS12} [get_ports {led_o[7]}] ;# GPIO_LED_7 -- check against UG1224
set_false_path -to [get_ports {led_o[*]}]
