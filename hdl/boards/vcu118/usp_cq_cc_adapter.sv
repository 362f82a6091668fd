// usp_cq_cc_adapter: the UltraScale+ PCIe4 hard IP's completer interfaces (PG213 CQ and CC,
// 128-bit, DWORD-aligned, no straddling) to and from raw TLP streams in wire byte order.
//
// CQ -> TLP: each request packet starts with a 128-bit descriptor (address, DWORD count,
// request type, requester ID, tag, target function, BAR ID/aperture, TC, attributes; first and
// last byte enables in tuser).  Memory reads, memory writes and locked memory reads are rebuilt
// as TLPs: a 3-DW header when the address is below 4 GiB, a 4-DW header otherwise (the header
// a requester is required to use), payload DWs after it.  Every other request type is consumed
// and dropped (cq_drop_o).  The descriptor carries an 8-bit tag, so T9/T8 of the rebuilt
// header are 0; TD is 0 (the hard IP strips and checks ECRC), EP is 0 (the hard IP does not
// forward poisoned requests' poison bit on CQ).
//
// TLP -> CC: a completion TLP (Cpl, CplD, CplLk, CplDLk; 3-DW header) becomes a 96-bit
// completer completion descriptor in the first 12 bytes of the first beat, which is exactly
// where the header was, so the payload passes through unmoved.  The Completer ID Enable bit
// is 0: the hard IP fills in its own captured bus and device number.  A packet that is not a
// completion is consumed and dropped (tx_drop_o).
//
// TLP byte k lies in bits [8k+7:8k] of a beat (byte 0 = Fmt/Type); keep has one bit per byte
// and is a contiguous low prefix; one TLP per packet.  Both directions have one output
// register; a 3-DW request with payload costs one extra beat at its end.

`default_nettype none

module usp_cq_cc_adapter (
  input  logic         clk_i,
  input  logic         rst_ni,

  // Completer reQuest interface from the hard IP (m_axis_cq_*)
  input  logic [127:0] cq_tdata_i,
  input  logic [3:0]   cq_tkeep_i,        // one bit per DW
  input  logic         cq_tlast_i,
  input  logic [87:0]  cq_tuser_i,        // [3:0] first BE, [7:4] last BE, [41] discontinue
  input  logic         cq_tvalid_i,
  output logic         cq_tready_o,

  // Request TLPs to the endpoint (wire byte order)
  output logic [127:0] tlp_rx_data_o,
  output logic [15:0]  tlp_rx_keep_o,
  output logic         tlp_rx_valid_o,
  output logic         tlp_rx_last_o,
  input  logic         tlp_rx_ready_i,

  // Completion TLPs from the endpoint (wire byte order)
  input  logic [127:0] tlp_tx_data_i,
  input  logic [15:0]  tlp_tx_keep_i,
  input  logic         tlp_tx_valid_i,
  input  logic         tlp_tx_last_i,
  output logic         tlp_tx_ready_o,

  // Completer Completion interface to the hard IP (s_axis_cc_*)
  output logic [127:0] cc_tdata_o,
  output logic [3:0]   cc_tkeep_o,        // one bit per DW
  output logic         cc_tlast_o,
  output logic [32:0]  cc_tuser_o,        // [0] discontinue, [32:1] parity (unused)
  output logic         cc_tvalid_o,
  input  logic         cc_tready_i,

  // Events (one-cycle pulses)
  output logic         cq_drop_o,         // a request of a type not forwarded was dropped
  output logic         cq_discontinue_o,  // the hard IP flagged a forwarded request bad
  output logic         tx_drop_o          // a TX packet that is not a completion was dropped
);

  ///////////////
  // Constants //
  ///////////////

  // CQ descriptor request types (PG213).
  localparam logic [3:0] ReqMemRead   = 4'b0000;
  localparam logic [3:0] ReqMemWrite  = 4'b0001;
  localparam logic [3:0] ReqMemLocked = 4'b0111;

  // TLP Type field values.
  localparam logic [4:0] TypeMem    = 5'b00000;
  localparam logic [4:0] TypeMemLk  = 5'b00001;
  localparam logic [4:0] TypeCpl    = 5'b01010;
  localparam logic [4:0] TypeCplLk  = 5'b01011;

  // Byte-keep mask of the low n DWs of a beat.
  function automatic logic [15:0] dw_bytes(logic [3:0] dw_keep);
    logic [15:0] keep;
    for (int i = 0; i < 4; i++) begin
      keep[4*i +: 4] = {4{dw_keep[i]}};
    end
    return keep;
  endfunction

  ////////////////////////
  // CQ -> request TLPs //
  ////////////////////////

  typedef enum logic [2:0] {
    CqDesc,   // the next beat is a descriptor
    CqPass,   // 4-DW header sent: payload beats pass through
    CqShift,  // 3-DW header held: payload moves up by 3 DWs
    CqFlush,  // the last DWs of a shifted payload go out as one more beat
    CqDrop    // consume the rest of a dropped request
  } cq_state_e;

  cq_state_e    cq_state_d, cq_state_q;
  logic [95:0]  carry_d, carry_q;        // DWs held back in CqShift/CqFlush
  logic [3:0]   flush_keep_d, flush_keep_q;
  logic [127:0] rx_data_d, rx_data_q;
  logic [15:0]  rx_keep_d, rx_keep_q;
  logic         rx_last_d, rx_last_q;
  logic         rx_valid_d, rx_valid_q;
  logic         rx_free;                 // the output register can take a beat this cycle
  logic         cq_fire;

  // Descriptor fields of the current beat.
  logic [63:0]  d_addr;
  logic [1:0]   d_at;
  logic [9:0]   d_length;                // DWORD count mod 1024 (1024 -> 0)
  logic [3:0]   d_req_type;
  logic [15:0]  d_req_id;
  logic [7:0]   d_tag;
  logic [2:0]   d_tc;
  logic [2:0]   d_attr;
  logic [3:0]   d_first_be;
  logic [3:0]   d_last_be;
  logic         d_four_dw;
  logic         d_has_data;
  logic         d_forward;
  logic [4:0]   d_type;
  logic [127:0] hdr;                     // the rebuilt header, TLP byte order

  assign d_at       = cq_tdata_i[1:0];
  assign d_addr     = {cq_tdata_i[63:2], 2'b00};
  assign d_length   = cq_tdata_i[73:64];  // [74:64] is the DWORD count
  assign d_req_type = cq_tdata_i[78:75];
  assign d_req_id   = cq_tdata_i[95:80];   // bus in [95:88], device/function in [87:80]
  assign d_tag      = cq_tdata_i[103:96];
  assign d_tc       = cq_tdata_i[123:121];
  assign d_attr     = cq_tdata_i[126:124]; // [0] no snoop, [1] relaxed ordering, [2] IDO
  assign d_first_be = cq_tuser_i[3:0];
  assign d_last_be  = cq_tuser_i[7:4];

  assign d_four_dw  = d_addr[63:32] != '0;
  assign d_has_data = d_req_type == ReqMemWrite;
  assign d_forward  = d_req_type inside {ReqMemRead, ReqMemWrite, ReqMemLocked};
  assign d_type     = (d_req_type == ReqMemLocked) ? TypeMemLk : TypeMem;

  always_comb begin
    hdr = '0;
    hdr[7:0]   = {1'b0, d_has_data, d_four_dw, d_type};     // Fmt, Type
    hdr[15:8]  = {1'b0, d_tc, 1'b0, d_attr[2], 2'b00};      // T9, TC, T8, Attr[2], LN, TH
    hdr[23:16] = {2'b00, d_attr[1:0], d_at, d_length[9:8]};  // TD, EP, Attr[1:0], AT, Length
    hdr[31:24] = d_length[7:0];
    hdr[39:32] = d_req_id[15:8];
    hdr[47:40] = d_req_id[7:0];
    hdr[55:48] = d_tag;
    hdr[63:56] = {d_last_be, d_first_be};
    if (d_four_dw) begin
      hdr[71:64]   = d_addr[63:56];
      hdr[79:72]   = d_addr[55:48];
      hdr[87:80]   = d_addr[47:40];
      hdr[95:88]   = d_addr[39:32];
      hdr[103:96]  = d_addr[31:24];
      hdr[111:104] = d_addr[23:16];
      hdr[119:112] = d_addr[15:8];
      hdr[127:120] = d_addr[7:0];                             // PH = 00
    end else begin
      hdr[71:64]   = d_addr[31:24];
      hdr[79:72]   = d_addr[23:16];
      hdr[87:80]   = d_addr[15:8];
      hdr[95:88]   = d_addr[7:0];
    end
  end

  assign rx_free     = !rx_valid_q || tlp_rx_ready_i;
  assign cq_tready_o = rx_free && (cq_state_q != CqFlush);
  assign cq_fire     = cq_tvalid_i && cq_tready_o;

  always_comb begin
    cq_state_d       = cq_state_q;
    carry_d          = carry_q;
    flush_keep_d     = flush_keep_q;
    rx_data_d        = rx_data_q;
    rx_keep_d        = rx_keep_q;
    rx_last_d        = rx_last_q;
    rx_valid_d       = rx_valid_q && !tlp_rx_ready_i;
    cq_drop_o        = 1'b0;
    cq_discontinue_o = 1'b0;

    unique case (cq_state_q)
      // A descriptor: rebuild the header, or start dropping.
      CqDesc: begin
        if (cq_fire) begin
          if (!d_forward) begin
            cq_drop_o  = 1'b1;
            cq_state_d = cq_tlast_i ? CqDesc : CqDrop;
          end else if (d_four_dw || cq_tlast_i) begin
            // The whole header fits this beat; any payload follows unmoved.
            rx_valid_d = 1'b1;
            rx_data_d  = hdr;
            rx_keep_d  = d_four_dw ? 16'hFFFF : 16'h0FFF;
            rx_last_d  = cq_tlast_i;
            cq_state_d = cq_tlast_i ? CqDesc : CqPass;
          end else begin
            carry_d    = hdr[95:0];
            cq_state_d = CqShift;
          end
        end
      end
      // Payload after a 4-DW header.
      CqPass: begin
        if (cq_fire) begin
          rx_valid_d = 1'b1;
          rx_data_d  = cq_tdata_i;
          rx_keep_d  = dw_bytes(cq_tkeep_i);
          rx_last_d  = cq_tlast_i;
          cq_discontinue_o = cq_tlast_i && cq_tuser_i[41];
          if (cq_tlast_i) begin
            cq_state_d = CqDesc;
          end
        end
      end
      // Payload after a 3-DW header: three held DWs, then the beat's first DW.
      CqShift: begin
        if (cq_fire) begin
          rx_valid_d = 1'b1;
          rx_data_d  = {cq_tdata_i[31:0], carry_q};
          rx_keep_d  = 16'hFFFF;
          rx_last_d  = cq_tlast_i && !cq_tkeep_i[1];
          carry_d    = cq_tdata_i[127:32];
          cq_discontinue_o = cq_tlast_i && cq_tuser_i[41];
          if (cq_tlast_i) begin
            flush_keep_d = {1'b0, cq_tkeep_i[3:1]};
            cq_state_d   = cq_tkeep_i[1] ? CqFlush : CqDesc;
          end
        end
      end
      // The DWs left over from the last shifted beat.
      CqFlush: begin
        if (rx_free) begin
          rx_valid_d = 1'b1;
          rx_data_d  = {32'h0, carry_q};
          rx_keep_d  = dw_bytes(flush_keep_q);
          rx_last_d  = 1'b1;
          cq_state_d = CqDesc;
        end
      end
      // The rest of a dropped request.
      CqDrop: begin
        if (cq_fire && cq_tlast_i) begin
          cq_state_d = CqDesc;
        end
      end
      default: cq_state_d = CqDesc;
    endcase
  end

  assign tlp_rx_data_o  = rx_data_q;
  assign tlp_rx_keep_o  = rx_keep_q;
  assign tlp_rx_valid_o = rx_valid_q;
  assign tlp_rx_last_o  = rx_last_q;

  ///////////////////////////
  // Completion TLPs -> CC //
  ///////////////////////////

  typedef enum logic [1:0] {
    TxHead,   // the next beat starts a TLP
    TxPass,   // payload beats of a completion pass through
    TxDrop    // consume the rest of a dropped packet
  } tx_state_e;

  tx_state_e    tx_state_d, tx_state_q;
  logic [127:0] cc_data_d, cc_data_q;
  logic [3:0]   cc_keep_d, cc_keep_q;
  logic         cc_last_d, cc_last_q;
  logic         cc_valid_d, cc_valid_q;
  logic         cc_free;
  logic         tx_fire;

  // Completion header fields of the current beat (TLP bytes 0..11).
  logic [7:0]   t_fmt_type;
  logic         t_is_cpl;
  logic         t_has_data;
  logic [9:0]   t_length;
  logic [11:0]  t_byte_count;
  logic [95:0]  desc;                    // the completer completion descriptor
  logic [3:0]   tx_dw_keep;

  logic [11:0][7:0] tb;                  // tb[k]: TLP byte k of the header
  assign tb = tlp_tx_data_i[95:0];

  assign t_fmt_type   = tb[0];
  // A completion has a 3-DW header (Fmt 000 or 010) and Type 01010 or 01011.
  assign t_is_cpl     = (t_fmt_type[7:5] inside {3'b000, 3'b010}) &&
                        (t_fmt_type[4:0] inside {TypeCpl, TypeCplLk});
  assign t_has_data   = t_fmt_type[6];
  assign t_length     = {tb[2][1:0], tb[3]};
  assign t_byte_count = {tb[6][3:0], tb[7]};
  for (genvar i = 0; i < 4; i++) begin : gen_tx_dw_keep
    assign tx_dw_keep[i] = tlp_tx_keep_i[4*i];
  end

  always_comb begin
    desc = '0;
    desc[6:0]   = tb[11][6:0];                   // lower address
    desc[28:16] = (t_byte_count == '0) ? 13'd4096 : {1'b0, t_byte_count};
    desc[29]    = t_fmt_type[4:0] == TypeCplLk;                      // locked read completion
    if (t_has_data) begin
      desc[42:32] = (t_length == '0) ? 11'd1024 : {1'b0, t_length};  // DWORD count
    end
    desc[45:43] = tb[6][7:5];                    // completion status
    desc[46]    = tb[2][6];                      // poisoned (EP)
    desc[63:56] = tb[8];                         // requester bus
    desc[55:48] = tb[9];                         // requester device/function
    desc[71:64] = tb[10];                        // tag
    desc[87:80] = tb[4];                         // completer bus
    desc[79:72] = tb[5];                         // completer device/function
    desc[88]    = 1'b0;                                              // completer ID enable
    desc[91:89] = tb[1][6:4];                    // TC
    desc[94:92] = {tb[1][2], tb[2][5:4]}; // attributes
    desc[95]    = 1'b0;                                              // force ECRC
  end

  assign cc_free        = !cc_valid_q || cc_tready_i;
  assign tlp_tx_ready_o = cc_free;
  assign tx_fire        = tlp_tx_valid_i && tlp_tx_ready_o;

  always_comb begin
    tx_state_d = tx_state_q;
    cc_data_d  = cc_data_q;
    cc_keep_d  = cc_keep_q;
    cc_last_d  = cc_last_q;
    cc_valid_d = cc_valid_q && !cc_tready_i;
    tx_drop_o  = 1'b0;

    unique case (tx_state_q)
      // The first beat: the header becomes the descriptor in place.
      TxHead: begin
        if (tx_fire) begin
          if (t_is_cpl) begin
            cc_valid_d = 1'b1;
            cc_data_d  = {tlp_tx_data_i[127:96], desc};
            cc_keep_d  = tx_dw_keep;
            cc_last_d  = tlp_tx_last_i;
            tx_state_d = tlp_tx_last_i ? TxHead : TxPass;
          end else begin
            tx_drop_o  = 1'b1;
            tx_state_d = tlp_tx_last_i ? TxHead : TxDrop;
          end
        end
      end
      // Payload beats.
      TxPass: begin
        if (tx_fire) begin
          cc_valid_d = 1'b1;
          cc_data_d  = tlp_tx_data_i;
          cc_keep_d  = tx_dw_keep;
          cc_last_d  = tlp_tx_last_i;
          if (tlp_tx_last_i) begin
            tx_state_d = TxHead;
          end
        end
      end
      // The rest of a dropped packet.
      TxDrop: begin
        if (tx_fire && tlp_tx_last_i) begin
          tx_state_d = TxHead;
        end
      end
      default: tx_state_d = TxHead;
    endcase
  end

  assign cc_tdata_o  = cc_data_q;
  assign cc_tkeep_o  = cc_keep_q;
  assign cc_tlast_o  = cc_last_q;
  assign cc_tvalid_o = cc_valid_q;
  assign cc_tuser_o  = '0;

  ///////////////
  // Registers //
  ///////////////

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_regs
    if (!rst_ni) begin
      cq_state_q   <= CqDesc;
      carry_q      <= '0;
      flush_keep_q <= '0;
      rx_data_q    <= '0;
      rx_keep_q    <= '0;
      rx_last_q    <= 1'b0;
      rx_valid_q   <= 1'b0;
      tx_state_q   <= TxHead;
      cc_data_q    <= '0;
      cc_keep_q    <= '0;
      cc_last_q    <= 1'b0;
      cc_valid_q   <= 1'b0;
    end else begin
      cq_state_q   <= cq_state_d;
      carry_q      <= carry_d;
      flush_keep_q <= flush_keep_d;
      rx_data_q    <= rx_data_d;
      rx_keep_q    <= rx_keep_d;
      rx_last_q    <= rx_last_d;
      rx_valid_q   <= rx_valid_d;
      tx_state_q   <= tx_state_d;
      cc_data_q    <= cc_data_d;
      cc_keep_q    <= cc_keep_d;
      cc_last_q    <= cc_last_d;
      cc_valid_q   <= cc_valid_d;
    end
  end

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  OutputsKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({cq_tready_o, tlp_rx_valid_o, tlp_tx_ready_o, cc_tvalid_o,
                   cq_drop_o, cq_discontinue_o, tx_drop_o}));
  RxBeatKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      tlp_rx_valid_o |-> !$isunknown({tlp_rx_last_o, tlp_rx_keep_o}));
  CcBeatKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      cc_tvalid_o |-> !$isunknown({cc_tlast_o, cc_tkeep_o}));
  RxHeld_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      tlp_rx_valid_o && !tlp_rx_ready_i |=> tlp_rx_valid_o && $stable(tlp_rx_data_o));
  CcHeld_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      cc_tvalid_o && !cc_tready_i |=> cc_tvalid_o && $stable(cc_tdata_o));
`endif

endmodule

`default_nettype wire
