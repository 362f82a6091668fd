// LINT-ONLY STUB of the UltraScale+ IBUFDS_GTE4 primitive (GT reference clock input buffer,
// UG576).  Port and parameter names as in the UNISIM library; no behaviour.  Vivado uses the
// real primitive; this file is never part of a build (build.tcl does not read stubs/).

`default_nettype none

module IBUFDS_GTE4 #(
  parameter logic       REFCLK_EN_TX_PATH  = 1'b0,
  parameter logic [1:0] REFCLK_HROW_CK_SEL = 2'b00,
  parameter logic [1:0] REFCLK_ICNTL_RX    = 2'b00
) (
  input logic I,
  input logic IB,
  input logic CEB,
  output logic O,
  output logic ODIV2
);
  assign O     = 1'b0;
  assign ODIV2 = 1'b0;
endmodule

`default_nettype wire
