// hil_ep: the endpoint's user logic behind the UltraScale+ PCIe4 hard IP.
//
// The hard IP forwards every configuration access as a one-cycle strobe on its configuration
// extension interface (PG213 cfg_ext_*). This block owns the register window
// CFG_EXT_BASE_REG .. CFG_EXT_BASE_REG + CFG_EXT_NUM_REGS - 1 of function 0: it answers every
// read in the window exactly one cycle later (0 where no capability sits) and leaves all other
// accesses to the hard IP. The window holds the DOE capability at DOE_CAP_OFFSET and the IDE
// capability after it. Behind them: the IDE TLP path on the hard IP's TLP streams (ide_tlp,
// with BAR0's memory), the TDISP interface state (tdi), the firmware register port that the
// device firmware uses for both, Function Level Reset, and telemetry.

`default_nettype none

module hil_ep
  import hil_ep_regs_pkg::*;
#(
  // DOE write mailbox depth in DW (largest request object); power of 2, 8 .. 2^18.
  parameter int unsigned DOE_WR_DEPTH_DW = 1024,
  // DOE read buffer depth in DW (queued response objects); power of 2, >= 8.
  parameter int unsigned DOE_RD_DEPTH_DW = 1024,
  // BAR0 size, log2 bytes (12 .. 16): a 64-bit memory BAR with a memory of that size behind it.
  // The hard IP's BAR0 must be configured the same.
  parameter int unsigned BAR0_SIZE_LOG2 = 12,
  // Largest TLP data payload the IDE TLP path takes or sends, in DW (power of 2, 4 .. 256).
  parameter int unsigned MAX_PAYLOAD_DW = 64,
  // 1: IDE PCRC built (ide_cap advertises it, ide_tlp generates and checks it, §6.33.4).
  parameter bit IDE_PCRC = 1'b1,
  // 1: IDE Partial Header Encryption built (ide_cap advertises it, ide_tlp decrypts the
  // selected header fields of received requests, §6.33.4).
  parameter bit IDE_PHE = 1'b1,
  // 1: Selective IDE for Configuration Requests built (ide_cap advertises it, IDE Capability b7;
  // ide_tlp does IDE Configuration Requests through cfg_mgmt_* and holds the plain ones with
  // cfg_ide_hold_o, §6.33.4). It needs a hard IP that hands such TLPs to user logic.
  parameter bit IDE_CFG = 1'b1,
  // 1: IDE Aggregation built (ide_cap advertises it, ide_tlp takes aggregated units, §6.33.6).
  parameter bit IDE_AGG = 1'b1,
  // Link IDE Streams (TCs, §6.33.1): as many as fit in the cfg_ext window beside the two
  // Selective streams (hdl/ide_cap/README.md): 0 .. 2 with the address blocks below.
  parameter int unsigned IDE_LINK_TCS = 1,
  // IDE Address Association blocks of each Selective stream, 4 bits per stream (stream j in
  // bits [4j+3:4j], 1 .. 15; ide_cap STREAM_ADDR_BLOCKS): stream 0 has 1, stream 1 has 2.
  parameter logic [31:0] IDE_ADDR_BLOCKS = 32'h0000_0021,
  // 1: the DMA engine (ide_tlp DMA_SUPPORTED): the function's own Memory Writes, on the stream
  // the Address Association blocks choose (§6.33.4). It needs a hard IP that takes
  // user-logic requests with an IDE prefix (hdl/boards/vcu118/README.md).
  parameter bit IDE_DMA = 1'b1,
  // Seeded bugs for the mutation harness (hil/mutants.py), passed to the blocks; never set
  // outside it. Keep 0: see hdl/tdi and hdl/ide_cap README.md.
  parameter bit MUTANT_TDI_CFG_WR_LOCKED = 1'b0,
  parameter bit MUTANT_IDE_K_SET_STOP_IGNORED = 1'b0,
  parameter bit MUTANT_TLP_SKIP_MAC_CHECK = 1'b0,
  parameter bit MUTANT_TLP_SKIP_PCRC_CHECK = 1'b0,
  parameter bit MUTANT_TLP_NO_TX_PCRC = 1'b0,
  parameter bit MUTANT_TLP_NO_RID_CHECK = 1'b0,
  parameter bit MUTANT_TLP_LINK_TAKES_PLAIN = 1'b0,
  parameter bit MUTANT_TLP_NO_MAC_DROPPED = 1'b0,
  parameter bit MUTANT_TLP_PHE_WIRE_HEADER = 1'b0,
  parameter bit MUTANT_TLP_CFG_PLAIN_TAKEN = 1'b0,
  parameter bit MUTANT_TLP_AGG_K_UNCHECKED = 1'b0,
  parameter bit MUTANT_TLP_DMA_BLOCK0_ONLY = 1'b0,
  parameter bit MUTANT_TLP_DMA_TEE_LIMIT_IGNORED = 1'b0,
  parameter bit MUTANT_TLP_CPL_RID_UNCHECKED = 1'b0
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
  output logic        fw_rvalid_o,  // one cycle after fw_rd_i

  // TLP receive stream from the hard IP: memory requests, one TLP per packet, wire byte order
  // (byte k of the TLP in bits [8k+7:8k] of the beat; hdl/ide_tlp/README.md)
  input  logic [127:0] tlp_rx_data_i,
  input  logic [15:0]  tlp_rx_keep_i,
  input  logic         tlp_rx_valid_i,
  input  logic         tlp_rx_last_i,
  output logic         tlp_rx_ready_o,

  // TLP transmit stream to the hard IP: completions and the DMA engine's Memory Writes, same
  // format
  output logic [127:0] tlp_tx_data_o,
  output logic [15:0]  tlp_tx_keep_o,
  output logic         tlp_tx_valid_o,
  output logic         tlp_tx_last_o,
  input  logic         tlp_tx_ready_i,

  // The function's own ID {bus, device, function}, as the hard IP captured it from CfgWr0
  input  logic [15:0]  cfg_completer_id_i,

  // Configuration management (PG213 cfg_mgmt_*): the function's configuration space as the
  // hard IP serves it, for Configuration Requests that arrived as IDE TLPs (IDE_CFG)
  output logic [9:0]   cfg_mgmt_addr_o,
  output logic         cfg_mgmt_write_o,
  output logic [31:0]  cfg_mgmt_write_data_o,
  output logic [3:0]   cfg_mgmt_byte_enable_o,
  output logic         cfg_mgmt_read_o,
  input  logic [31:0]  cfg_mgmt_read_data_i,
  input  logic         cfg_mgmt_read_write_done_i,
  // The hard IP must discard Configuration Requests that arrive as non-IDE TLPs (§6.33.4)
  output logic         cfg_ide_hold_o,

  // Function Level Reset of function 0 (PG213 cfg_flr_in_process / cfg_flr_done)
  input  logic         cfg_flr_in_process_i,
  output logic         cfg_flr_done_o,     // one-cycle pulse: the function's reset is done

  // Telemetry (to the UART bridge on a board)
  output logic [1:0]   tel_tdi_state_o,         // TDISP TDI_STATE code
  output logic [7:0]   tel_stream_state_o,      // 4 bits per IDE stream: Status.State
  output logic [31:0]  tel_doe_errors_o,        // DOE Error events since reset, saturating
  output logic [31:0]  tel_ide_check_failures_o // IDE Check Failed events since reset, saturating
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
  localparam int unsigned IdeAll = IdeStreams + IDE_LINK_TCS;  // stream indices, Link last
  localparam int unsigned IdeSel0 = 3 + 2 * IDE_LINK_TCS;      // first Selective block DW
  // Address Association blocks: the most any stream has (the width of ide_cap's
  // stream_addr_o), and the capability's size.
  localparam int unsigned IdeAddrMax = ide_cap_pkg::ide_addr_blocks_max(IdeStreams, 1,
                                                                        IDE_ADDR_BLOCKS);
  localparam int unsigned IdeAddrW = ide_cap_pkg::IDE_ADDR_OUT_W;

  // DW of Selective stream j's register block, and where it starts.
  function automatic int unsigned ide_blk_dw(int unsigned j);
    return 5 + 3 * ide_cap_pkg::ide_addr_blocks_of(j, 1, IDE_ADDR_BLOCKS);
  endfunction
  function automatic int unsigned ide_blk_start(int unsigned j);
    int unsigned o;
    o = IdeSel0;
    for (int unsigned i = 0; i < j; i++) begin
      o = o + ide_blk_dw(i);
    end
    return o;
  endfunction

  if (ide_blk_start(IdeStreams) > IdeNumRegs) begin : gen_bad_ide_size
    $fatal(1, "hil_ep: IDE_LINK_TCS and IDE_ADDR_BLOCKS take %0d DW, the window has %0d",
           ide_blk_start(IdeStreams), IdeNumRegs);
  end

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

  /////////////////////////////
  // Function Level Reset    //
  /////////////////////////////

  // FLR (§6.6.2) resets the function's state: DOE, the IDE streams and their keys, the TDI
  // and the TLP path. The hard IP raises cfg_flr_in_process; the reset is held for
  // FlrCycles clocks, then cfg_flr_done pulses. rst_fn_n comes from a flop (glitch free).
  localparam int unsigned FlrCycles = 8;

  logic       flr_in_q;       // cfg_flr_in_process_i last clock
  logic       flr_active_q;   // the function is held in reset
  logic [3:0] flr_cnt_q;
  logic       flr_done_q;
  logic       rst_fn_n;       // conventional reset or FLR

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_flr
    if (!rst_ni) begin
      flr_in_q     <= 1'b0;
      flr_active_q <= 1'b0;
      flr_cnt_q    <= '0;
      flr_done_q   <= 1'b0;
    end else begin
      flr_in_q     <= cfg_flr_in_process_i;
      flr_done_q   <= flr_active_q && (flr_cnt_q == 4'(FlrCycles - 1));
      if (cfg_flr_in_process_i && !flr_in_q) begin
        flr_active_q <= 1'b1;
        flr_cnt_q    <= '0;
      end else if (flr_active_q) begin
        flr_cnt_q    <= flr_cnt_q + 4'd1;
        flr_active_q <= (flr_cnt_q != 4'(FlrCycles - 1));
      end
    end
  end

  assign rst_fn_n       = rst_ni && !flr_active_q;
  assign cfg_flr_done_o = flr_done_q;

  ////////////////////
  // DOE capability //
  ////////////////////

  logic doe_err;

  doe_mbx #(
    .WR_DEPTH_DW    (DOE_WR_DEPTH_DW),
    .RD_DEPTH_DW    (DOE_RD_DEPTH_DW),
    .NEXT_CAP_OFFSET(DOE_CAP_NEXT)
  ) u_doe_mbx (
    .clk_i,
    .rst_ni         (rst_fn_n),
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
    .irq_o          (msi_req_o),
    .err_o          (doe_err)
  );

  ////////////////////////////
  // Firmware register port //
  ////////////////////////////

  // DW address map: 0x000..0x0FF and 0x800.. ide_cap, 0x100..0x11F tdi, 0x200..0x23F
  // ide_tlp (counters); the rest reads 0 (hdl/hil_ep/README.md).
  logic        fw_tdi, fw_tlp, fw_ide;
  logic [31:0] fw_ide_rdata, fw_tdi_rdata, fw_tlp_rdata;
  logic        fw_ide_rvalid, fw_tdi_rvalid, fw_tlp_rvalid;
  logic        fw_rd_q;  // any firmware read answers the next clock (0 where nothing is mapped)

  assign fw_tdi = (fw_addr_i[11:5] == 7'b0001_000);
  assign fw_tlp = (fw_addr_i[11:6] == 6'b0010_00);
  assign fw_ide = (fw_addr_i[11:8] == 4'h0) || fw_addr_i[11];

  assign fw_rdata_o  = (fw_ide_rvalid ? fw_ide_rdata : '0) |
                       (fw_tdi_rvalid ? fw_tdi_rdata : '0) |
                       (fw_tlp_rvalid ? fw_tlp_rdata : '0);
  assign fw_rvalid_o = fw_rd_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_fw_rd
    if (!rst_ni) begin
      fw_rd_q <= 1'b0;
    end else begin
      fw_rd_q <= fw_rd_i;
    end
  end

  ////////////////////
  // IDE capability //
  ////////////////////

  logic [8*IdeAll-1:0]      stream_id;
  logic [IdeAll-1:0]        stream_enable, stream_secure, check_failed;
  logic [IdeStreams-1:0]    ide_stream_wr;
  logic [12*IdeAll-1:0]     stream_slot_go;
  logic [IdeAll-1:0]        stream_pcrc, stream_link;
  logic [4*IdeAll-1:0]      stream_phe;
  logic [IdeAll-1:0]        stream_default;
  logic [3*IdeAll-1:0]      stream_tc;
  logic [16*IdeAll-1:0]     stream_rid_base, stream_rid_limit;
  logic [IdeAll-1:0]        stream_tee_limited;
  logic [IdeStreams*IdeAddrMax*IdeAddrW-1:0] sel_addr;     // ide_cap: Selective streams
  logic [IdeAll*IdeAddrMax*IdeAddrW-1:0]     stream_addr;  // ide_tlp: Link indices too (0)
  logic                     key_rd, key_go, key_rvalid;
  logic [2:0]               key_stream;
  logic [3:0]               key_slot;
  logic [255:0]             key;
  logic [63:0]              ifv;

  // A config write to stream j's Selective IDE register block (for the TDI's rules).
  always_comb begin
    for (int j = 0; j < IdeStreams; j++) begin
      ide_stream_wr[j] = cfg_ext_write_received_i && ide_hit &&
                         (32'(ide_idx) >= ide_blk_start(j)) &&
                         (32'(ide_idx) < ide_blk_start(j + 1));
    end
  end

  // A Link IDE Stream has no Address Association: its entries are 0 (not Valid).
  assign stream_addr = (IdeAll * IdeAddrMax * IdeAddrW)'(sel_addr);

  ide_cap #(
    .NUM_STREAMS    (IdeStreams),
    .NUM_ADDR_BLOCKS(1),
    .STREAM_ADDR_BLOCKS(IDE_ADDR_BLOCKS),
    .NUM_LINK_TCS   (IDE_LINK_TCS),
    .NEXT_CAP_OFFSET(IDE_CAP_NEXT),
    .PCRC_SUPPORTED (IDE_PCRC),
    .PHE_SUPPORTED  (IDE_PHE),
    .CFG_IDE_SUPPORTED(IDE_CFG),
    .AGG_SUPPORTED  (IDE_AGG),
    .MUTANT_K_SET_STOP_IGNORED(MUTANT_IDE_K_SET_STOP_IGNORED)
  ) u_ide_cap (
    .clk_i,
    .rst_ni              (rst_fn_n),
    .reg_wr_i            (cfg_ext_write_received_i && ide_hit),
    .reg_rd_i            (cfg_ext_read_received_i && ide_hit),
    .reg_idx_i           (ide_idx),
    .reg_wdata_i         (cfg_ext_write_data_i),
    .reg_be_i            (cfg_ext_write_byte_enable_i),
    .reg_rdata_o         (ide_rdata),
    .reg_rvalid_o        (ide_rvalid),
    .fw_wr_i             (fw_wr_i && fw_ide),
    .fw_rd_i             (fw_rd_i && fw_ide),
    .fw_addr_i,
    .fw_wdata_i,
    .fw_rdata_o          (fw_ide_rdata),
    .fw_rvalid_o         (fw_ide_rvalid),
    .check_failed_i      (check_failed),
    .fail_msg_rx_i       ('0),   // IDE Fail Messages are not received (no Msg TLPs taken)
    .fail_msg_tx_o       (),     // nor sent: README "Limits"
    .stream_id_o         (stream_id),
    .stream_enable_o     (stream_enable),
    .stream_secure_o     (stream_secure),
    .stream_tc_o         (stream_tc),
    .stream_default_o    (stream_default),
    .stream_tee_limited_o(stream_tee_limited),
    .stream_pcrc_o       (stream_pcrc),
    .stream_phe_o        (stream_phe),
    .stream_link_o       (stream_link),
    .stream_rid_base_o   (stream_rid_base),
    .stream_rid_limit_o  (stream_rid_limit),
    .stream_slot_go_o    (stream_slot_go),
    .stream_addr_o       (sel_addr),
    .tlp_key_rd_i        (key_rd),
    .tlp_key_stream_i    (key_stream),
    .tlp_key_slot_i      (key_slot),
    .tlp_key_o           (key),
    .tlp_ifv_o           (ifv),
    .tlp_key_go_o        (key_go),
    .tlp_key_rvalid_o    (key_rvalid)
  );

  /////////
  // TDI //
  /////////

  logic [1:0]  tdi_state;
  logic [2:0]  tdi_bound_stream;
  logic        tdi_bound, mem_enable, bus_master, tlp_poisoned;
  logic [63:0] bar0_base;

  tdi #(
    .NUM_STREAMS   (IdeStreams),
    .BAR0_SIZE_LOG2(BAR0_SIZE_LOG2),
    .MUTANT_CFG_WR_LOCKED(MUTANT_TDI_CFG_WR_LOCKED)
  ) u_tdi (
    .clk_i,
    .rst_ni             (rst_fn_n),
    .cfg_wr_i           (cfg_ext_write_received_i),
    .cfg_func_i         (cfg_ext_function_number_i),
    .cfg_reg_i          (cfg_ext_register_number_i),
    .cfg_be_i           (cfg_ext_write_byte_enable_i),
    .cfg_wdata_i        (cfg_ext_write_data_i),
    .ide_stream_reg_wr_i(ide_stream_wr),
    .stream_secure_i    (stream_secure[IdeStreams-1:0]),  // a TDI binds Selective streams
    .tlp_poisoned_i     (tlp_poisoned),
    .fw_wr_i            (fw_wr_i && fw_tdi),
    .fw_rd_i            (fw_rd_i && fw_tdi),
    .fw_addr_i          (fw_addr_i[4:0]),
    .fw_wdata_i,
    .fw_rdata_o         (fw_tdi_rdata),
    .fw_rvalid_o        (fw_tdi_rvalid),
    .tdi_state_o        (tdi_state),
    .bound_stream_o     (tdi_bound_stream),
    .bound_o            (tdi_bound),
    .bar0_base_o        (bar0_base),
    .mem_enable_o       (mem_enable),
    .bus_master_o       (bus_master)
  );

  //////////////////
  // IDE TLP path //
  //////////////////

  logic [31:0] ide_check_failures;

  ide_tlp #(
    .NUM_STREAMS   (IdeAll),
    .BAR0_SIZE_LOG2(BAR0_SIZE_LOG2),
    .MAX_PAYLOAD_DW(MAX_PAYLOAD_DW),
    .PCRC_SUPPORTED(IDE_PCRC),
    .PHE_SUPPORTED(IDE_PHE),
    .CFG_IDE_SUPPORTED(IDE_CFG),
    .AGG_SUPPORTED(IDE_AGG),
    .DMA_SUPPORTED(IDE_DMA),
    .ADDR_BLOCKS(IdeAddrMax),
    .MUTANT_DMA_BLOCK0_ONLY(MUTANT_TLP_DMA_BLOCK0_ONLY),
    .MUTANT_DMA_TEE_LIMIT_IGNORED(MUTANT_TLP_DMA_TEE_LIMIT_IGNORED),
    .MUTANT_CPL_RID_UNCHECKED(MUTANT_TLP_CPL_RID_UNCHECKED),
    .MUTANT_SKIP_MAC_CHECK(MUTANT_TLP_SKIP_MAC_CHECK),
    .MUTANT_SKIP_PCRC_CHECK(MUTANT_TLP_SKIP_PCRC_CHECK),
    .MUTANT_NO_TX_PCRC(MUTANT_TLP_NO_TX_PCRC),
    .MUTANT_NO_RID_CHECK(MUTANT_TLP_NO_RID_CHECK),
    .MUTANT_LINK_TAKES_PLAIN(MUTANT_TLP_LINK_TAKES_PLAIN),
    .MUTANT_NO_MAC_DROPPED(MUTANT_TLP_NO_MAC_DROPPED),
    .MUTANT_PHE_WIRE_HEADER(MUTANT_TLP_PHE_WIRE_HEADER),
    .MUTANT_CFG_PLAIN_TAKEN(MUTANT_TLP_CFG_PLAIN_TAKEN),
    .MUTANT_AGG_K_UNCHECKED(MUTANT_TLP_AGG_K_UNCHECKED)
  ) u_ide_tlp (
    .clk_i,
    .rst_ni            (rst_fn_n),
    .rx_data_i         (tlp_rx_data_i),
    .rx_keep_i         (tlp_rx_keep_i),
    .rx_valid_i        (tlp_rx_valid_i),
    .rx_last_i         (tlp_rx_last_i),
    .rx_ready_o        (tlp_rx_ready_o),
    .tx_data_o         (tlp_tx_data_o),
    .tx_keep_o         (tlp_tx_keep_o),
    .tx_valid_o        (tlp_tx_valid_o),
    .tx_last_o         (tlp_tx_last_o),
    .tx_ready_i        (tlp_tx_ready_i),
    .completer_id_i    (cfg_completer_id_i),
    .bar0_base_i       (bar0_base),
    .mem_enable_i      (mem_enable),
    .bus_master_i      (bus_master),
    .tdi_state_i       (tdi_state),
    .tdi_bound_i       (tdi_bound),
    .tdi_bound_stream_i(tdi_bound_stream),
    .tlp_poisoned_o    (tlp_poisoned),
    .stream_id_i       (stream_id),
    .stream_enable_i   (stream_enable),
    .stream_secure_i   (stream_secure),
    .stream_slot_go_i  (stream_slot_go),
    .stream_pcrc_i     (stream_pcrc),
    .stream_phe_i      (stream_phe),
    .cfg_mgmt_addr_o,
    .cfg_mgmt_write_o,
    .cfg_mgmt_write_data_o,
    .cfg_mgmt_byte_enable_o,
    .cfg_mgmt_read_o,
    .cfg_mgmt_read_data_i,
    .cfg_mgmt_read_write_done_i,
    .cfg_ide_hold_o,
    .stream_link_i     (stream_link),
    .stream_tc_i       (stream_tc),
    .stream_default_i  (stream_default),
    .stream_rid_base_i (stream_rid_base),
    .stream_rid_limit_i(stream_rid_limit),
    .stream_tee_limited_i(stream_tee_limited),
    .stream_addr_i     (stream_addr),
    .check_failed_o    (check_failed),
    .key_rd_o          (key_rd),
    .key_stream_o      (key_stream),
    .key_slot_o        (key_slot),
    .key_i             (key),
    .ifv_i             (ifv),
    .key_go_i          (key_go),
    .key_rvalid_i      (key_rvalid),
    .fw_rd_i           (fw_rd_i && fw_tlp),
    .fw_wr_i           (fw_wr_i && fw_tlp),
    .fw_addr_i         (fw_addr_i[5:0]),
    .fw_wdata_i,
    .fw_rdata_o        (fw_tlp_rdata),
    .fw_rvalid_o       (fw_tlp_rvalid),
    .check_failures_o  (ide_check_failures)
  );

  ///////////////
  // Telemetry //
  ///////////////

  logic        doe_err_q;
  logic [31:0] doe_errors_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_tel
    if (!rst_ni) begin
      doe_err_q    <= 1'b0;
      doe_errors_q <= '0;
    end else begin
      doe_err_q <= doe_err;
      if (doe_err && !doe_err_q && doe_errors_q != '1) begin
        doe_errors_q <= doe_errors_q + 32'd1;
      end
    end
  end

  always_comb begin
    tel_stream_state_o = '0;
    for (int j = 0; j < IdeStreams; j++) begin
      tel_stream_state_o[4*j +: 4] = stream_secure[j] ? 4'b0010 : 4'b0000;
    end
  end

  assign tel_tdi_state_o          = tdi_state;
  assign tel_doe_errors_o         = doe_errors_q;
  assign tel_ide_check_failures_o = ide_check_failures;

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
