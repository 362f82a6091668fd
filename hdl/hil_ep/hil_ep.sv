// hil_ep: the endpoint's user logic behind the UltraScale+ PCIe4 hard IP.
//
// The hard IP forwards every configuration access as a one-cycle strobe on its configuration
// extension interface (PG213 cfg_ext_*). This block owns the register window
// CFG_EXT_BASE_REG .. CFG_EXT_BASE_REG + CFG_EXT_NUM_REGS - 1 of function 0: it answers every
// read in the window exactly one cycle later (0 where no capability sits) and leaves all other
// accesses to the hard IP. The window holds the DOE capability at DOE_CAP_OFFSET.

`default_nettype none

module hil_ep
  import hil_ep_regs_pkg::*;
#(
  // DOE write mailbox depth in DW (largest request object); power of 2, 8 .. 2^18.
  parameter int unsigned DOE_WR_DEPTH_DW = 1024,
  // DOE read buffer depth in DW (queued response objects); power of 2, >= 8.
  parameter int unsigned DOE_RD_DEPTH_DW = 1024
) (
  input  logic        clk_i,
  input  logic        rst_ni,

  // Configuration extension interface from the hard IP (PG213)
  input  logic        cfg_ext_read_received_i,
  input  logic        cfg_ext_write_received_i,
  input  logic [9:0]  cfg_ext_register_number_i,  // DW address in config space
  input  logic [7:0]  cfg_ext_function_number_i,
  input  logic [31:0] cfg_ext_write_data_i,
  input  logic [3:0]  cfg_ext_write_byte_enable_i,
  output logic [31:0] cfg_ext_read_data_o,
  output logic        cfg_ext_read_data_valid_o,   // one cycle after an owned read

  // DSM request stream: whole CMA/SPDM objects, DW0 first
  output logic [31:0] dsm_req_data_o,
  output logic        dsm_req_valid_o,
  output logic        dsm_req_last_o,
  input  logic        dsm_req_ready_i,

  // DSM response stream: whole DOE objects including both header DWs
  input  logic [31:0] dsm_rsp_data_i,
  input  logic        dsm_rsp_valid_i,
  input  logic        dsm_rsp_last_i,
  output logic        dsm_rsp_ready_o,

  // Events
  output logic        dsm_abort_o,  // one-cycle pulse: the DOE mailbox was aborted
  output logic        msi_req_o     // one-cycle pulse: request an MSI (DOE interrupt)
);

  ////////////
  // Decode //
  ////////////

  // Capabilities in the window, by first register number and size in DW.
  localparam logic [9:0]  DoeBaseReg = DOE_CAP_OFFSET[11:2];
  localparam int unsigned DoeNumRegs = 6;  // 0x18 bytes (§7.9.24)

  // Every capability lies inside the window.
  if (32'(DoeBaseReg) < 32'(CFG_EXT_BASE_REG) ||
      32'(DoeBaseReg) + DoeNumRegs > 32'(CFG_EXT_BASE_REG) + CFG_EXT_NUM_REGS)
  begin : gen_bad_doe_offset
    $fatal(1, "hil_ep: the DOE capability lies outside the cfg_ext window");
  end

  logic        win_hit;   // the access targets the window of function 0
  logic        win_rd_q;  // a window read was received last cycle
  logic        doe_hit;
  logic [2:0]  doe_idx;
  logic [31:0] doe_rdata;
  logic        doe_rvalid;

  // True if register number reg_num lies in [base, base + num).
  function automatic logic reg_in(logic [9:0] reg_num, logic [9:0] base, int unsigned num);
    return (reg_num >= base) && (32'(reg_num) < 32'(base) + num);
  endfunction

  assign win_hit = (cfg_ext_function_number_i == 8'h00) &&
                   reg_in(cfg_ext_register_number_i, CFG_EXT_BASE_REG, CFG_EXT_NUM_REGS);
  // One line per capability; the IDE capability goes after DOE at 0x498.
  assign doe_hit = win_hit && reg_in(cfg_ext_register_number_i, DoeBaseReg, DoeNumRegs);
  assign doe_idx = 3'(cfg_ext_register_number_i - DoeBaseReg);

  ////////////////////
  // DOE capability //
  ////////////////////

  doe_mbx #(
    .WR_DEPTH_DW    (DOE_WR_DEPTH_DW),
    .RD_DEPTH_DW    (DOE_RD_DEPTH_DW),
    .NEXT_CAP_OFFSET(DOE_CAP_NEXT)
  ) u_doe_mbx (
    .clk_i,
    .rst_ni,
    .reg_wr_i       (cfg_ext_write_received_i && doe_hit),
    .reg_rd_i       (cfg_ext_read_received_i && doe_hit),
    .reg_idx_i      (doe_idx),
    .reg_wdata_i    (cfg_ext_write_data_i),
    .reg_be_i       (cfg_ext_write_byte_enable_i),
    .reg_rdata_o    (doe_rdata),
    .reg_rvalid_o   (doe_rvalid),
    .dsm_req_data_o,
    .dsm_req_valid_o,
    .dsm_req_last_o,
    .dsm_req_ready_i,
    .dsm_rsp_data_i,
    .dsm_rsp_valid_i,
    .dsm_rsp_last_i,
    .dsm_rsp_ready_o,
    .dsm_abort_o,
    .irq_o          (msi_req_o)
  );

  ///////////////
  // Read data //
  ///////////////

  // Capabilities answer one cycle after the strobe; the rest of the window reads 0.
  always_ff @(posedge clk_i or negedge rst_ni) begin : p_rd
    if (!rst_ni) begin
      win_rd_q <= 1'b0;
    end else begin
      win_rd_q <= cfg_ext_read_received_i && win_hit;
    end
  end

  assign cfg_ext_read_data_valid_o = win_rd_q;
  assign cfg_ext_read_data_o       = doe_rvalid ? doe_rdata : '0;

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  // A capability answers only reads of the window, exactly one cycle after the strobe.
  CapRvalid_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      doe_rvalid |-> win_rd_q);
  ReadValidKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({cfg_ext_read_data_valid_o, msi_req_o, dsm_abort_o}));
  ReadDataKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      cfg_ext_read_data_valid_o |-> !$isunknown(cfg_ext_read_data_o));
`endif

endmodule

`default_nettype wire
