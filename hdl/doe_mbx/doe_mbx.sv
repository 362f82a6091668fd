// DOE mailbox: the Data Object Exchange extended capability (PCIe 6.x §6.30, §7.9.24).
//
// The host writes a data object DW by DW into the Write Data Mailbox and sets Go. Discovery
// objects (vendor 0001h, type 00h) are answered here; CMA/SPDM (01h) and Secured CMA/SPDM (02h)
// objects are streamed whole to the device security manager (DSM), whose response objects are
// queued in the read buffer and read by the host DW by DW through the Read Data Mailbox.
// Anything else, and any object whose DW count differs from its Length, is dropped silently.
// See README.md for the register map, the DSM port protocol and the Abort timing.

`default_nettype none

module doe_mbx
  import hil_ep_regs_pkg::*;
#(
  // Write mailbox depth in DW (largest request object accepted); power of 2, 8 .. 2^18.
  parameter int unsigned WR_DEPTH_DW = 1024,
  // Read buffer depth in DW (room for queued response objects); power of 2, >= 8.
  parameter int unsigned RD_DEPTH_DW = 1024,
  // Next Capability Offset reported in the extended capability header (0: last in the list).
  parameter logic [11:0] NEXT_CAP_OFFSET = DOE_CAP_NEXT
) (
  input  logic        clk_i,
  input  logic        rst_ni,

  // Register port: one DW access per cycle, decoded by the endpoint from config space
  input  logic        reg_wr_i,     // write strobe
  input  logic        reg_rd_i,     // read strobe
  input  logic [2:0]  reg_idx_i,    // DW index within the capability
  input  logic [31:0] reg_wdata_i,
  input  logic [3:0]  reg_be_i,
  output logic [31:0] reg_rdata_o,  // valid with reg_rvalid_o
  output logic        reg_rvalid_o, // one cycle after reg_rd_i

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
  output logic        dsm_abort_o,  // one-cycle pulse: the mailbox was aborted
  output logic        irq_o,        // one-cycle pulse: Interrupt Status went 0 -> 1
  output logic        err_o         // DOE Status.Error (set by a protocol error, cleared by Abort)
);

  ///////////////////////////
  // Parameters and types  //
  ///////////////////////////

  // Largest data object: Length is 18 bits and 0 encodes 2^18 DW (§6.30.1).
  localparam int unsigned MaxObjDw = 2 ** 18;

  if (WR_DEPTH_DW < 8 || WR_DEPTH_DW > MaxObjDw ||
      (WR_DEPTH_DW & (WR_DEPTH_DW - 1)) != 0) begin : gen_bad_wr_depth
    $fatal(1, "doe_mbx: WR_DEPTH_DW must be a power of 2 in 8 .. 2^18");
  end
  if (RD_DEPTH_DW < 8 || (RD_DEPTH_DW & (RD_DEPTH_DW - 1)) != 0) begin : gen_bad_rd_depth
    $fatal(1, "doe_mbx: RD_DEPTH_DW must be a power of 2 and >= 8");
  end
  if (NEXT_CAP_OFFSET[1:0] != 2'b00 ||
      (NEXT_CAP_OFFSET != 12'h000 && NEXT_CAP_OFFSET < 12'h100)) begin : gen_bad_next_cap
    $fatal(1, "doe_mbx: NEXT_CAP_OFFSET must be 0 or a DW-aligned offset >= 0x100");
  end

  localparam int unsigned WrAw = $clog2(WR_DEPTH_DW);  // write mailbox address width
  localparam int unsigned WrCw = WrAw + 1;             // write mailbox count width
  localparam int unsigned RdAw = $clog2(RD_DEPTH_DW);  // read buffer address width
  localparam int unsigned RdCw = RdAw + 1;             // read buffer count width

  // Object header fields (§6.30.1)
  localparam logic [15:0] VendorPcisig = 16'h0001;
  localparam logic [7:0]  TypeDiscovery = 8'h00;
  localparam logic [7:0]  TypeCma = 8'h01;
  localparam logic [7:0]  TypeSecuredCma = 8'h02;

  // Discovery table (§6.30.1.1): entry i answers Index i; entry 0 must be Discovery itself.
  typedef struct packed {
    logic [7:0]  obj_type;
    logic [15:0] vendor_id;
  } disc_entry_t;

  localparam int unsigned DiscEntries = 3;
  localparam disc_entry_t DiscTable [DiscEntries] = '{
    '{vendor_id: VendorPcisig, obj_type: TypeDiscovery},
    '{vendor_id: VendorPcisig, obj_type: TypeCma},
    '{vendor_id: VendorPcisig, obj_type: TypeSecuredCma}
  };
  localparam int unsigned DiscRspDw = 3;  // discovery response length in DW

  typedef enum logic [1:0] {
    StIdle,    // collect the request object; Go validates and dispatches it
    StDsmReq,  // Busy: stream the request object to the DSM
    StDisc     // Busy: write the discovery response into the read buffer
  } state_e;

  //////////////////
  // Declarations //
  //////////////////

  state_e            state_q, state_d;
  logic [WrCw-1:0]   wr_cnt_q, wr_cnt_d;    // DWs in the write mailbox
  logic [23:0]       hdr_dw0_q, hdr_dw0_d;  // request DW0: type and vendor
  logic [17:0]       hdr_len_q, hdr_len_d;  // request DW1: Length
  logic [7:0]        disc_idx_q, disc_idx_d;  // request DW2: discovery Index
  logic [WrAw-1:0]   req_idx_q, req_idx_d;  // request DW on the DSM stream
  logic [1:0]        disc_cnt_q, disc_cnt_d;  // discovery response DW being written

  logic [RdAw-1:0]   rd_head_q, rd_head_d;  // oldest unread response DW
  logic [RdCw-1:0]   rd_cnt_q, rd_cnt_d;    // committed response DWs (DOR = rd_cnt_q != 0)
  logic [RdCw-1:0]   rsp_cnt_q, rsp_cnt_d;  // DWs stored so far of the incoming DSM object
  logic              rsp_mid_q, rsp_mid_d;  // a DSM response object is mid-stream
  logic              rsp_ovf_q, rsp_ovf_d;  // ... and did not fit: drop it, set Error
  logic              rsp_drop_q, rsp_drop_d;  // ... and was aborted: drop it

  logic              err_q, err_d;
  logic              int_en_q, int_en_d;
  logic              int_sts_q, int_sts_d;
  logic              irq_q, irq_d;
  logic              abort_q;

  logic [31:0]       rdata_q, rdata_d;      // register read data (all but the read mailbox)
  logic              rvalid_q;
  logic              rmbx_rd_q, rmbx_rd_d;  // the read returns the read buffer head

  // Memories (no reset)
  logic [31:0]       wmem_q [WR_DEPTH_DW];
  logic [31:0]       wmem_rdata_q;
  logic              wmem_we;
  logic [31:0]       rmem_q [RD_DEPTH_DW];
  logic [31:0]       rmem_rdata_q;
  logic              rmem_we;
  logic [RdAw-1:0]   rmem_waddr;
  logic [31:0]       rmem_wdata;

  // Register write decode
  logic              wr_full, wr_part;
  logic              sel_ctrl, sel_status, sel_wmbx, sel_rmbx;
  logic              abort, go, wmbx_wr, rmbx_ack, int_clr, part_err;

  // Request side
  logic              busy;
  logic [18:0]       obj_len;
  logic              len_ok, is_disc, is_dsm;
  logic [31:0]       disc_dw2;
  logic              disc_we, disc_commit, disc_err, wr_ovf_err;

  // Response side
  logic [RdAw-1:0]   rd_tail;
  logic              dor, dor_next;
  logic              rsp_hs, rsp_fits, rsp_store, rsp_commit, rsp_err;

  ////////////////////////////
  // Register write decode  //
  ////////////////////////////

  assign wr_full    = reg_wr_i && (reg_be_i == 4'hF);
  assign wr_part    = reg_wr_i && (reg_be_i != 4'hF);
  assign sel_ctrl   = (reg_idx_i == DOE_REG_CTRL);
  assign sel_status = (reg_idx_i == DOE_REG_STATUS);
  assign sel_wmbx   = (reg_idx_i == DOE_REG_WMBX);
  assign sel_rmbx   = (reg_idx_i == DOE_REG_RMBX);

  // Partial writes to Control, Status or the mailboxes only set Error (§7.9.24).
  assign part_err = wr_part && (sel_ctrl || sel_status || sel_wmbx || sel_rmbx);
  assign abort    = wr_full && sel_ctrl && reg_wdata_i[DOE_CTRL_ABORT_BIT];
  assign go       = wr_full && sel_ctrl && reg_wdata_i[DOE_CTRL_GO_BIT] && !abort;
  assign wmbx_wr  = wr_full && sel_wmbx;
  assign rmbx_ack = wr_full && sel_rmbx && dor;
  assign int_clr  = wr_full && sel_status && reg_wdata_i[DOE_STATUS_INT_STATUS_BIT];

  //////////////////
  // Request side //
  //////////////////

  assign busy = (state_q != StIdle);

  // Length 0 encodes 2^18 DW. Fewer than two DWs written: there is no Length to check.
  assign obj_len = (hdr_len_q == '0) ? 19'(MaxObjDw) : {1'b0, hdr_len_q};
  assign len_ok  = (wr_cnt_q >= WrCw'(2)) && (32'(wr_cnt_q) == 32'(obj_len));
  assign is_disc = (hdr_dw0_q == {TypeDiscovery, VendorPcisig}) && (obj_len >= 19'(DiscRspDw));
  assign is_dsm  = (hdr_dw0_q == {TypeCma, VendorPcisig}) ||
                   (hdr_dw0_q == {TypeSecuredCma, VendorPcisig});

  // Discovery response DW2: {next index, type, vendor}; past the table: vendor FFFFh.
  always_comb begin
    disc_dw2 = {8'h00, 8'h00, 16'hFFFF};
    for (int unsigned i = 0; i < DiscEntries; i++) begin
      if (32'(disc_idx_q) == i) begin
        disc_dw2 = {(i == DiscEntries - 1) ? 8'h00 : 8'(i + 1), DiscTable[i]};
      end
    end
  end

  always_comb begin
    state_d     = state_q;
    wr_cnt_d    = wr_cnt_q;
    hdr_dw0_d   = hdr_dw0_q;
    hdr_len_d   = hdr_len_q;
    disc_idx_d  = disc_idx_q;
    req_idx_d   = req_idx_q;
    disc_cnt_d  = disc_cnt_q;
    wmem_we     = 1'b0;
    wr_ovf_err  = 1'b0;
    disc_we     = 1'b0;
    disc_commit = 1'b0;
    disc_err    = 1'b0;

    unique case (state_q)
      // Idle: full-DW writes append to the write mailbox (none while Error, overflow sets
      // Error); Go checks the object and hands it to the DSM or the discovery responder.
      StIdle: begin
        if (wmbx_wr && !err_q) begin
          if (wr_cnt_q == WrCw'(WR_DEPTH_DW)) begin
            wr_ovf_err = 1'b1;
          end else begin
            wmem_we  = 1'b1;
            wr_cnt_d = wr_cnt_q + WrCw'(1);
            unique case (wr_cnt_q)
              WrCw'(0): hdr_dw0_d  = reg_wdata_i[23:0];
              WrCw'(1): hdr_len_d  = reg_wdata_i[17:0];
              WrCw'(2): disc_idx_d = reg_wdata_i[7:0];
              default: ;
            endcase
          end
        end
        if (go && !err_q && wr_cnt_q != '0) begin
          wr_cnt_d = '0;  // consumed or dropped
          if (len_ok && is_dsm) begin
            wr_cnt_d = wr_cnt_q;  // the stream reads it out
            state_d  = StDsmReq;
          end else if (len_ok && is_disc) begin
            state_d = StDisc;
          end
        end
      end

      // DsmReq: present DW req_idx_q until the DSM takes the last one.
      StDsmReq: begin
        if (dsm_req_ready_i) begin
          req_idx_d = req_idx_q + WrAw'(1);
          if (dsm_req_last_o) begin
            req_idx_d = '0;
            wr_cnt_d  = '0;
            state_d   = StIdle;
          end
        end
      end

      // Disc: once no DSM response is mid-stream, write the three response DWs (the DSM
      // response input is held off for those cycles) and commit them; no room: Error.
      StDisc: begin
        if (!rsp_mid_q) begin
          if (disc_cnt_q == '0 && 32'(rd_cnt_q) > RD_DEPTH_DW - DiscRspDw) begin
            disc_err = 1'b1;
            state_d  = StIdle;
          end else begin
            disc_we    = 1'b1;
            disc_cnt_d = disc_cnt_q + 2'd1;
            if (disc_cnt_q == 2'(DiscRspDw - 1)) begin
              disc_commit = 1'b1;
              disc_cnt_d  = '0;
              state_d     = StIdle;
            end
          end
        end
      end

      default: state_d = StIdle;
    endcase

    if (abort) begin
      state_d    = StIdle;
      wr_cnt_d   = '0;
      req_idx_d  = '0;
      disc_cnt_d = '0;
    end
  end

  assign dsm_req_valid_o = (state_q == StDsmReq);
  assign dsm_req_last_o  = dsm_req_valid_o && ({1'b0, req_idx_q} == wr_cnt_q - WrCw'(1));
  assign dsm_req_data_o  = wmem_rdata_q;

  // Write mailbox: the read port prefetches the DW the stream presents next cycle.
  always_ff @(posedge clk_i) begin : p_wmem
    if (wmem_we) begin
      wmem_q[wr_cnt_q[WrAw-1:0]] <= reg_wdata_i;
    end
    wmem_rdata_q <= wmem_q[req_idx_d];
  end

  ///////////////////
  // Response side //
  ///////////////////

  assign rd_tail  = rd_head_q + rd_cnt_q[RdAw-1:0];  // first free DW
  assign dor      = (rd_cnt_q != '0);  // Data Object Ready
  assign dor_next = (rd_cnt_d != '0);

  // The DSM response input pauses only while a discovery response is written (3 cycles).
  assign dsm_rsp_ready_o = !(state_q == StDisc && !rsp_mid_q);
  assign rsp_hs          = dsm_rsp_valid_i && dsm_rsp_ready_o;
  // The DW fits if the committed DWs plus this object's DWs stay within the buffer.
  assign rsp_fits        = (32'(rd_cnt_q) + 32'(rsp_cnt_q) < RD_DEPTH_DW);
  assign rsp_store       = rsp_hs && !abort && !rsp_drop_q && !rsp_ovf_q && rsp_fits;
  assign rsp_commit      = rsp_store && dsm_rsp_last_i;
  assign rsp_err         = rsp_hs && dsm_rsp_last_i && !abort && !rsp_drop_q && !rsp_commit;

  always_comb begin
    rmem_we    = 1'b0;
    rmem_waddr = rd_tail + RdAw'(rsp_cnt_q);
    rmem_wdata = dsm_rsp_data_i;
    if (disc_we) begin
      rmem_we    = 1'b1;
      rmem_waddr = rd_tail + RdAw'(disc_cnt_q);
      unique case (disc_cnt_q)
        2'd0:    rmem_wdata = {8'h00, TypeDiscovery, VendorPcisig};
        2'd1:    rmem_wdata = 32'(DiscRspDw);
        default: rmem_wdata = disc_dw2;
      endcase
    end else if (rsp_store) begin
      rmem_we = 1'b1;
    end
  end

  always_comb begin
    rsp_cnt_d  = rsp_cnt_q;
    rsp_mid_d  = rsp_mid_q;
    rsp_ovf_d  = rsp_ovf_q;
    rsp_drop_d = rsp_drop_q;
    rd_head_d  = rd_head_q;
    rd_cnt_d   = rd_cnt_q;

    if (rsp_hs) begin
      if (dsm_rsp_last_i) begin
        rsp_cnt_d  = '0;
        rsp_mid_d  = 1'b0;
        rsp_ovf_d  = 1'b0;
        rsp_drop_d = 1'b0;
      end else begin
        rsp_mid_d = 1'b1;
        if (rsp_store) begin
          rsp_cnt_d = rsp_cnt_q + RdCw'(1);
        end else if (!rsp_drop_q) begin
          rsp_ovf_d = 1'b1;  // stays set to the last DW: no holes in a stored object
        end
      end
    end

    if (rmbx_ack) begin
      rd_head_d = rd_head_q + RdAw'(1);
    end
    rd_cnt_d = rd_cnt_q - RdCw'(rmbx_ack);
    if (rsp_commit) begin
      rd_cnt_d = rd_cnt_d + rsp_cnt_q + RdCw'(1);
    end else if (disc_commit) begin
      rd_cnt_d = rd_cnt_d + RdCw'(DiscRspDw);
    end

    // Abort empties the read buffer and drops the rest of a response that is mid-stream.
    if (abort) begin
      rd_head_d  = '0;
      rd_cnt_d   = '0;
      rsp_cnt_d  = '0;
      rsp_ovf_d  = 1'b0;
      rsp_drop_d = rsp_mid_d;
    end
  end

  always_ff @(posedge clk_i) begin : p_rmem
    if (rmem_we) begin
      rmem_q[rmem_waddr] <= rmem_wdata;
    end
    rmem_rdata_q <= rmem_q[rd_head_q];
  end

  ///////////////////////////////////
  // Status, interrupt, read data  //
  ///////////////////////////////////

  always_comb begin
    err_d = err_q || part_err || wr_ovf_err || disc_err || rsp_err;
    if (abort) begin
      err_d = 1'b0;  // Error is cleared only by Abort (§7.9.24.4)
    end

    int_en_d = int_en_q;
    if (wr_full && sel_ctrl) begin
      int_en_d = reg_wdata_i[DOE_CTRL_INT_EN_BIT];
    end

    // Set wins over a simultaneous RW1C clear so no event is lost.
    int_sts_d = int_sts_q && !int_clr;
    if (int_en_q && ((dor_next && !dor) || (err_d && !err_q))) begin
      int_sts_d = 1'b1;
    end
    irq_d = int_sts_d && !int_sts_q;
  end

  always_comb begin
    rdata_d   = '0;
    rmbx_rd_d = 1'b0;
    if (reg_rd_i) begin
      unique case (reg_idx_i)
        DOE_REG_HEADER: rdata_d = {NEXT_CAP_OFFSET, DOE_CAP_VERSION, DOE_CAP_ID};
        DOE_REG_CAP:    rdata_d[DOE_CAP_INT_SUPPORT_BIT] = 1'b1;
        DOE_REG_CTRL:   rdata_d[DOE_CTRL_INT_EN_BIT] = int_en_q;
        DOE_REG_STATUS: begin
          rdata_d[DOE_STATUS_BUSY_BIT]       = busy;
          rdata_d[DOE_STATUS_INT_STATUS_BIT] = int_sts_q;
          rdata_d[DOE_STATUS_ERROR_BIT]      = err_q;
          rdata_d[DOE_STATUS_READY_BIT]      = dor;
        end
        DOE_REG_RMBX:   rmbx_rd_d = dor;
        default: ;
      endcase
    end
  end

  assign reg_rdata_o  = rmbx_rd_q ? rmem_rdata_q : rdata_q;
  assign reg_rvalid_o = rvalid_q;
  assign dsm_abort_o  = abort_q;
  assign irq_o        = irq_q;
  assign err_o        = err_q;

  ///////////////
  // Registers //
  ///////////////

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_regs
    if (!rst_ni) begin
      state_q    <= StIdle;
      wr_cnt_q   <= '0;
      hdr_dw0_q  <= '0;
      hdr_len_q  <= '0;
      disc_idx_q <= '0;
      req_idx_q  <= '0;
      disc_cnt_q <= '0;
      rd_head_q  <= '0;
      rd_cnt_q   <= '0;
      rsp_cnt_q  <= '0;
      rsp_mid_q  <= 1'b0;
      rsp_ovf_q  <= 1'b0;
      rsp_drop_q <= 1'b0;
      err_q      <= 1'b0;
      int_en_q   <= 1'b0;
      int_sts_q  <= 1'b0;
      irq_q      <= 1'b0;
      abort_q    <= 1'b0;
      rdata_q    <= '0;
      rvalid_q   <= 1'b0;
      rmbx_rd_q  <= 1'b0;
    end else begin
      state_q    <= state_d;
      wr_cnt_q   <= wr_cnt_d;
      hdr_dw0_q  <= hdr_dw0_d;
      hdr_len_q  <= hdr_len_d;
      disc_idx_q <= disc_idx_d;
      req_idx_q  <= req_idx_d;
      disc_cnt_q <= disc_cnt_d;
      rd_head_q  <= rd_head_d;
      rd_cnt_q   <= rd_cnt_d;
      rsp_cnt_q  <= rsp_cnt_d;
      rsp_mid_q  <= rsp_mid_d;
      rsp_ovf_q  <= rsp_ovf_d;
      rsp_drop_q <= rsp_drop_d;
      err_q      <= err_d;
      int_en_q   <= int_en_d;
      int_sts_q  <= int_sts_d;
      irq_q      <= irq_d;
      abort_q    <= abort;
      rdata_q    <= rdata_d;
      rvalid_q   <= reg_rd_i;
      rmbx_rd_q  <= rmbx_rd_d;
    end
  end

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  // Control outputs are never X after reset; data is known whenever it is valid.
  CtrlKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({reg_rvalid_o, dsm_req_valid_o, dsm_req_last_o, dsm_rsp_ready_o,
                   dsm_abort_o, irq_o}));
  RdataKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      reg_rvalid_o |-> !$isunknown(reg_rdata_o));
  ReqDataKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      dsm_req_valid_o |-> !$isunknown(dsm_req_data_o));
  // The register port carries one access per cycle.
  OneAccess_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !(reg_wr_i && reg_rd_i));
  // A stalled request DW stays put unless the mailbox is aborted.
  ReqStable_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      $past(dsm_req_valid_o && !dsm_req_ready_i) && !dsm_abort_o
      |-> dsm_req_valid_o && $stable(dsm_req_data_o) && $stable(dsm_req_last_o));
  // irq_o is a single-cycle pulse.
  IrqPulse_A: assert property (@(posedge clk_i) disable iff (!rst_ni) irq_o |=> !irq_o);
  // Committed response DWs never exceed the read buffer.
  RdCntBound_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      32'(rd_cnt_q) <= RD_DEPTH_DW);
`endif

endmodule

`default_nettype wire
