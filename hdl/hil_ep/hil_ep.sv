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
  output logic        msi_req_o,    // one-cycle pulse: request an MSI (DOE interrupt)

  // Firmware register port (the DSM programs IDE keys and stream state here)
  input  logic        fw_wr_i,
  input  logic        fw_rd_i,
  input  logic [11:0] fw_addr_i,    // DW address (hdl/ide_cap/README.md)
  input  logic [31:0] fw_wdata_i,
  output logic [31:0] fw_rdata_o,   // valid with fw_rvalid_o
  output logic        fw_rvalid_o   // one cycle after fw_rd_i
);

  ////////////
  // Decode //
  ////////////

  // Capabilities in the window, by first register number and size in DW.
  localparam logic [9:0]  DoeBaseReg = DOE_CAP_OFFSET[11:2];
  localparam int unsigned DoeNumRegs = 6;  // 0x18 bytes (§7.9.24)
  localparam logic [9:0]  IdeBaseReg = IDE_CAP_OFFSET[11:2];
  localparam int unsigned IdeNumRegs = 26;  // 0x498..0x4FF: the rest of the window
  localparam int unsigned IdeStreams = 2;   // Selective IDE streams (all that fit in 26 DW)

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
  logic        ide_hit;
  logic [5:0]  ide_idx;
  logic [31:0] ide_rdata;
  logic        ide_rvalid;

  // True if register number reg_num lies in [base, base + num).
  function automatic logic reg_in(logic [9:0] reg_num, logic [9:0] base, int unsigned num);
    return (reg_num >= base) && (32'(reg_num) < 32'(base) + num);
  endfunction

  assign win_hit = (cfg_ext_function_number_i == 8'h00) &&
                   reg_in(cfg_ext_register_number_i, CFG_EXT_BASE_REG, CFG_EXT_NUM_REGS);
  // One line per capability; the IDE capability goes after DOE at 0x498.
  assign doe_hit = win_hit && reg_in(cfg_ext_register_number_i, DoeBaseReg, DoeNumRegs);
  assign doe_idx = 3'(cfg_ext_register_number_i - DoeBaseReg);
  assign ide_hit = win_hit && reg_in(cfg_ext_register_number_i, IdeBaseReg, IdeNumRegs);
  assign ide_idx = 6'(cfg_ext_register_number_i - IdeBaseReg);

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

  ////////////////////
  // IDE capability //
  ////////////////////

  // The TLP path (IDE on the link) is not built yet: no check failures, no IDE Fail Messages
  // arrive, and nothing reads the key slots.  Their outputs stay unconnected (lint.vlt).
  ide_cap #(
    .NUM_STREAMS    (IdeStreams),
    .NUM_ADDR_BLOCKS(1),
    .NEXT_CAP_OFFSET(IDE_CAP_NEXT)
  ) u_ide_cap (
    .clk_i,
    .rst_ni,
    .reg_wr_i            (cfg_ext_write_received_i && ide_hit),
    .reg_rd_i            (cfg_ext_read_received_i && ide_hit),
    .reg_idx_i           (ide_idx),
    .reg_wdata_i         (cfg_ext_write_data_i),
    .reg_be_i            (cfg_ext_write_byte_enable_i),
    .reg_rdata_o         (ide_rdata),
    .reg_rvalid_o        (ide_rvalid),
    .fw_wr_i,
    .fw_rd_i,
    .fw_addr_i,
    .fw_wdata_i,
    .fw_rdata_o,
    .fw_rvalid_o,
    .check_failed_i      ('0),
    .fail_msg_rx_i       ('0),
    .fail_msg_tx_o       (),
    .stream_id_o         (),
    .stream_enable_o     (),
    .stream_secure_o     (),
    .stream_tc_o         (),
    .stream_default_o    (),
    .stream_tee_limited_o(),
    .stream_slot_go_o    (),
    .tlp_key_rd_i        (1'b0),
    .tlp_key_stream_i    ('0),
    .tlp_key_slot_i      ('0),
    .tlp_key_o           (),
    .tlp_ifv_o           (),
    .tlp_key_go_o        (),
    .tlp_key_rvalid_o    ()
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
  assign cfg_ext_read_data_o       = doe_rvalid ? doe_rdata :
                                     ide_rvalid ? ide_rdata : '0;

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  // A capability answers only reads of the window, exactly one cycle after the strobe.
  CapRvalid_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (doe_rvalid || ide_rvalid) |-> win_rd_q);
  ReadValidKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({cfg_ext_read_data_valid_o, msi_req_o, dsm_abort_o}));
  ReadDataKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      cfg_ext_read_data_valid_o |-> !$isunknown(cfg_ext_read_data_o));
`endif

endmodule

`default_nettype wire
