// LINT-ONLY STUB of the UltraScale+ BUFG_GT primitive (global clock buffer driven from a GT
// clock, UG572).  Port names as in the UNISIM library; no behaviour.  Vivado uses the real
// primitive; this file is never part of a build (build.tcl does not read stubs/).

`default_nettype none

module BUFG_GT (
  input logic       I,
  input logic       CE,
  input logic       CEMASK,
  input logic       CLR,
  input logic       CLRMASK,
  input logic [2:0] DIV,
  output logic       O
);
  assign O = 1'b0;
endmodule

`default_nettype wire
