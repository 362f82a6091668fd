// AES-256-GCM engine (NIST SP 800-38D, 96-bit IV), one 16-byte block per clock.
//
// Per packet the input stream carries a header beat (key, IV, direction, tag length), AAD
// beats and payload (text) beats; the output stream returns the payload encrypted or decrypted,
// in order, then one tag beat (the 128-bit tag or its first 96 bits, and for decryption
// whether it matched the expected tag). See README.md for the port protocol.
//
// Structure: every packet takes 2 + (text beats) + (AAD beats) slots of a fully pipelined
// AES-256 whose round keys travel with the data (aes256_enc): E_K(0) for H, E_K(J0) for the
// tag mask, one slot per AAD block (carried past the AES unused, which keeps it in order with
// the rest) and E_K(counter) per text block. Behind the pipeline a single-clock GHASH
// multiplier folds in the AAD and ciphertext, then the length block, and the tag follows.
// Output beats go through a FIFO whose entries are reserved when the input beat is accepted,
// so the pipeline never stalls and back-pressure on the output never loses data.

`default_nettype none

module aes_gcm
#(
  // Output FIFO depth in beats; power of 2, >= 2. The input takes a beat only while two
  // entries are free beyond those reserved by beats in flight, so a depth below the
  // round trip (about 20 beats) throttles the input; correctness does not depend on it.
  parameter int unsigned OUT_DEPTH = 32
) (
  input  logic         clk_i,
  input  logic         rst_ni,

  // Input stream: header beat, AAD beats, text beats; s_last_i on the packet's last beat
  input  logic         s_valid_i,
  output logic         s_ready_o,
  input  logic [1:0]   s_kind_i,     // aes_gcm_pkg::kind_e: 0 header, 1 AAD, 2 text
  input  logic         s_last_i,     // last beat of the packet (the header if it has no data)
  input  logic [127:0] s_data_i,     // AAD/text: byte k in [8k+7:8k]
  input  logic [15:0]  s_keep_i,     // AAD/text: valid bytes 0 .. n-1 (n >= 1)
  input  logic [255:0] s_key_i,      // header: AES-256 key, byte k in [8k+7:8k]
  input  logic [95:0]  s_iv_i,       // header: IV, byte k in [8k+7:8k]
  input  logic         s_decrypt_i,  // header: 1 decrypt, 0 encrypt
  input  logic         s_tag96_i,    // header: 1 tag is the first 96 bits (IDE MAC), 0 128 bits
  input  logic [127:0] s_tag_i,      // last beat: expected tag for decryption, byte k in [8k+7:8k]

  // Output stream: text beats, then the tag beat (m_last_o)
  output logic         m_valid_o,
  input  logic         m_ready_i,
  output logic [127:0] m_data_o,     // text or tag, byte k in [8k+7:8k]; bytes past keep are 0
  output logic [15:0]  m_keep_o,     // text: as on input; tag: 0FFFh (96 bits) or FFFFh
  output logic         m_last_o,     // this beat is the tag, the packet's last beat
  output logic         m_tag_ok_o    // tag beat of a decryption: tag matched (0 otherwise)
);

  ///////////////////////////
  // Parameters and types  //
  ///////////////////////////

  if (OUT_DEPTH < 2 || (OUT_DEPTH & (OUT_DEPTH - 1)) != 0) begin : gen_bad_out_depth
    $fatal(1, "aes_gcm: OUT_DEPTH must be a power of 2 and >= 2");
  end

  localparam int unsigned PtrW  = $clog2(OUT_DEPTH);   // FIFO pointer width
  localparam int unsigned CntW  = PtrW + 1;            // FIFO count width

  // Output FIFO entry, in port order.
  typedef struct packed {
    logic         last;
    logic         tag_ok;
    logic [15:0]  keep;
    logic [127:0] data;
  } out_t;

  //////////////////
  // Declarations //
  //////////////////

  // Input side
  logic            s_hs, hdr_hs, aad_hs, txt_hs;
  logic [1:0]      need;                     // output entries the beat reserves
  logic            j0_pend_q, j0_pend_d;     // issue the E_K(J0) slot this clock
  logic [255:0]    key_q, key_d;             // packet key, engine order
  logic [95:0]     iv_q, iv_d;               // packet IV, engine order
  logic [31:0]     ctr_q, ctr_d;             // counter of the next text block
  logic            dec_q, dec_d;
  logic            tag96_q, tag96_d;
  logic            hdr_last_q, hdr_last_d;   // the header was the last beat
  logic [127:0]    hdr_tag_q, hdr_tag_d;     // ... and carried the expected tag
  logic [CntW-1:0] used_q, used_d;           // output entries reserved (in flight + queued)

  // AES pipeline
  logic            in_valid;
  logic [255:0]    in_key;
  logic [127:0]    in_block;
  aes_gcm_pkg::side_t in_side;             // side band of the slot
  logic            o_valid;
  logic [127:0]    o_aes;
  aes_gcm_pkg::side_t o_side;
  localparam int unsigned SideW = $bits(in_side);
  logic            o_h, o_j0, o_aad, o_txt;

  // GHASH and tag
  logic [127:0]    o_mask;                   // valid bytes of the slot, engine order
  logic [127:0]    ct;                       // text out, engine order
  logic            gh_valid;
  logic [127:0]    gh_blk, gh_y;
  logic [127:0]    ej0_q, ej0_d;             // E_K(J0)
  logic [31:0]     len_a_q, len_a_d;         // AAD bytes so far
  logic [31:0]     len_c_q, len_c_d;         // text bytes so far
  logic            lpend_q, lpend_d;         // GHASH the length block this clock
  logic            tpend_q, tpend_d;         // the tag is ready this clock
  logic [127:0]    etag_q, etag_d;           // expected tag, port order
  logic            gdec_q, gdec_d;           // direction of the packet being closed
  logic            gtag96_q, gtag96_d;       // tag length of the packet being closed
  logic [127:0]    tag_mask, tag;            // port order
  logic            tag_ok;

  // Output FIFO
  out_t            fifo_wdata, fifo_rdata;
  localparam int unsigned FifoW = $bits(fifo_wdata);
  // Plain vectors, not out_t: Yosys keeps only one entry of an unpacked array of structs.
  logic [FifoW-1:0] fifo_q [OUT_DEPTH];
  logic            fifo_we, pop;
  logic [PtrW-1:0] wptr_q, wptr_d, rptr_q, rptr_d;
  logic [CntW-1:0] cnt_q, cnt_d;

  ////////////////
  // Input side //
  ////////////////

  // The input waits while the J0 slot is issued and while the output might not have room.
  assign s_ready_o = !j0_pend_q && (used_q <= CntW'(OUT_DEPTH - 2));
  assign s_hs      = s_valid_i && s_ready_o;
  assign hdr_hs    = s_hs && (s_kind_i == aes_gcm_pkg::KindHdr);
  assign aad_hs    = s_hs && (s_kind_i == aes_gcm_pkg::KindAad);
  assign txt_hs    = s_hs && (s_kind_i == aes_gcm_pkg::KindText);
  assign need      = {1'b0, txt_hs} + {1'b0, (hdr_hs || aad_hs || txt_hs) && s_last_i};

  always_comb begin
    j0_pend_d  = hdr_hs;
    key_d      = key_q;
    iv_d       = iv_q;
    ctr_d      = ctr_q;
    dec_d      = dec_q;
    tag96_d    = tag96_q;
    hdr_last_d = hdr_last_q;
    hdr_tag_d  = hdr_tag_q;
    if (hdr_hs) begin
      key_d      = aes_gcm_pkg::bswap256(s_key_i);
      iv_d       = aes_gcm_pkg::bswap96(s_iv_i);
      ctr_d      = 32'd2;  // J0 has counter 1; the first text block inc32(J0)
      dec_d      = s_decrypt_i;
      tag96_d    = s_tag96_i;
      hdr_last_d = s_last_i;
      hdr_tag_d  = s_tag_i;
    end else if (txt_hs) begin
      ctr_d = ctr_q + 32'd1;  // inc32 (SP 800-38D §6.2)
    end
  end

  // Slot into the AES pipeline: the J0 slot the clock after a header, else the beat taken.
  always_comb begin
    in_valid       = j0_pend_q || hdr_hs || aad_hs || txt_hs;
    in_key         = key_q;
    in_block       = {iv_q, ctr_q};
    in_side.kind   = txt_hs ? aes_gcm_pkg::SlotText : aes_gcm_pkg::SlotAad;
    in_side.last   = s_last_i;
    in_side.dec    = dec_q;
    in_side.tag96  = tag96_q;
    in_side.nbytes = aes_gcm_pkg::keep_count(s_keep_i);
    in_side.data   = aes_gcm_pkg::bswap128(s_data_i & aes_gcm_pkg::byte_mask(s_keep_i));
    in_side.etag   = s_tag_i;
    if (j0_pend_q) begin
      in_block      = {iv_q, 32'd1};
      in_side.kind  = aes_gcm_pkg::SlotJ0;
      in_side.last  = hdr_last_q;
      in_side.etag  = hdr_tag_q;
    end else if (hdr_hs) begin
      in_key        = aes_gcm_pkg::bswap256(s_key_i);
      in_block      = '0;
      in_side.kind  = aes_gcm_pkg::SlotH;
      in_side.last  = 1'b0;  // the J0 slot closes a packet without data
      in_side.dec   = s_decrypt_i;
      in_side.tag96 = s_tag96_i;
    end
  end

  aes256_enc #(
    .USER_W (SideW)
  ) u_aes (
    .clk_i,
    .rst_ni,
    .in_valid_i  (in_valid),
    .in_key_i    (in_key),
    .in_block_i  (in_block),
    .in_user_i   (in_side),
    .out_valid_o (o_valid),
    .out_block_o (o_aes),
    .out_user_o  (o_side)
  );

  ////////////////////
  // GHASH and tag  //
  ////////////////////

  assign o_h   = o_valid && (o_side.kind == aes_gcm_pkg::SlotH);
  assign o_j0  = o_valid && (o_side.kind == aes_gcm_pkg::SlotJ0);
  assign o_aad = o_valid && (o_side.kind == aes_gcm_pkg::SlotAad);
  assign o_txt = o_valid && (o_side.kind == aes_gcm_pkg::SlotText);

  assign o_mask = aes_gcm_pkg::bswap128(
                    aes_gcm_pkg::byte_mask(aes_gcm_pkg::keep_of(o_side.nbytes)));
  assign ct     = o_side.data ^ (o_aes & o_mask);

  // GHASH input: AAD, then the ciphertext (what comes out when encrypting, what went in when
  // decrypting), then len(A) || len(C) in bits, 64 bits each (SP 800-38D §7.1 step 5).
  always_comb begin
    gh_valid = lpend_q || o_aad || o_txt;
    if (lpend_q) begin
      gh_blk = {29'd0, len_a_q, 3'd0, 29'd0, len_c_q, 3'd0};
    end else if (o_aad || o_side.dec) begin
      gh_blk = o_side.data;
    end else begin
      gh_blk = ct;
    end
  end

  // The H slot of the next packet may arrive while the length block of this one is hashed
  // (ghash uses the old H in that clock), and its J0 slot while the tag is formed: the
  // accumulator, lengths and E_K(J0) are replaced only at the end of that clock.
  ghash u_ghash (
    .clk_i,
    .rst_ni,
    .h_we_i      (o_h),
    .h_i         (o_aes),
    .clr_i       (o_j0),
    .blk_valid_i (gh_valid),
    .blk_i       (gh_blk),
    .y_o         (gh_y)
  );

  always_comb begin
    ej0_d    = o_j0 ? o_aes : ej0_q;
    len_a_d  = o_j0 ? 32'd0 : len_a_q + (o_aad ? 32'(o_side.nbytes) : 32'd0);
    len_c_d  = o_j0 ? 32'd0 : len_c_q + (o_txt ? 32'(o_side.nbytes) : 32'd0);
    lpend_d  = o_valid && o_side.last;
    tpend_d  = lpend_q;
    etag_d   = etag_q;
    gdec_d   = gdec_q;
    gtag96_d = gtag96_q;
    if (o_valid && o_side.last) begin
      etag_d   = o_side.etag;
      gdec_d   = o_side.dec;
      gtag96_d = o_side.tag96;
    end
  end

  // Tag = MSB_t(GHASH xor E_K(J0)) (SP 800-38D §7.1 step 6, §5.2.1.2).
  assign tag_mask = gtag96_q ? {32'd0, {96{1'b1}}} : {128{1'b1}};
  assign tag      = aes_gcm_pkg::bswap128(gh_y ^ ej0_q) & tag_mask;
  assign tag_ok   = gdec_q && (tag == (etag_q & tag_mask));

  /////////////////
  // Output FIFO //
  /////////////////

  always_comb begin
    fifo_we           = o_txt || tpend_q;
    fifo_wdata.last   = 1'b0;
    fifo_wdata.tag_ok = 1'b0;
    fifo_wdata.keep   = aes_gcm_pkg::keep_of(o_side.nbytes);
    fifo_wdata.data   = aes_gcm_pkg::bswap128(ct);
    if (tpend_q) begin
      fifo_wdata.last   = 1'b1;
      fifo_wdata.tag_ok = tag_ok;
      fifo_wdata.keep   = gtag96_q ? 16'h0fff : 16'hffff;
      fifo_wdata.data   = tag;
    end
  end

  assign fifo_rdata = fifo_q[rptr_q];
  assign m_valid_o  = (cnt_q != '0);
  assign m_data_o   = fifo_rdata.data;
  assign m_keep_o   = fifo_rdata.keep;
  assign m_last_o   = fifo_rdata.last;
  assign m_tag_ok_o = fifo_rdata.tag_ok;
  assign pop        = m_valid_o && m_ready_i;

  always_comb begin
    wptr_d = wptr_q + PtrW'(fifo_we);
    rptr_d = rptr_q + PtrW'(pop);
    cnt_d  = cnt_q + CntW'(fifo_we) - CntW'(pop);
    used_d = used_q + CntW'(need) - CntW'(pop);
  end

  always_ff @(posedge clk_i) begin : p_fifo
    if (fifo_we) begin
      fifo_q[wptr_q] <= fifo_wdata;
    end
  end

  ///////////////
  // Registers //
  ///////////////

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_ctrl
    if (!rst_ni) begin
      j0_pend_q <= 1'b0;
      used_q    <= '0;
      lpend_q   <= 1'b0;
      tpend_q   <= 1'b0;
      wptr_q    <= '0;
      rptr_q    <= '0;
      cnt_q     <= '0;
    end else begin
      j0_pend_q <= j0_pend_d;
      used_q    <= used_d;
      lpend_q   <= lpend_d;
      tpend_q   <= tpend_d;
      wptr_q    <= wptr_d;
      rptr_q    <= rptr_d;
      cnt_q     <= cnt_d;
    end
  end

  // Packet state: always written before it is read, so it needs no reset.
  always_ff @(posedge clk_i) begin : p_data
    key_q      <= key_d;
    iv_q       <= iv_d;
    ctr_q      <= ctr_d;
    dec_q      <= dec_d;
    tag96_q    <= tag96_d;
    hdr_last_q <= hdr_last_d;
    hdr_tag_q  <= hdr_tag_d;
    ej0_q      <= ej0_d;
    len_a_q    <= len_a_d;
    len_c_q    <= len_c_d;
    etag_q     <= etag_d;
    gdec_q     <= gdec_d;
    gtag96_q   <= gtag96_d;
  end

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  // Input protocol bookkeeping.
  logic in_pkt_q, in_pkt_d;      // a header was taken and the packet's last beat was not
  logic txt_seen_q, txt_seen_d;  // the packet has had a text beat
  logic aad_part_q, aad_part_d;  // the packet's last AAD beat was partial
  logic txt_part_q, txt_part_d;  // the packet's last text beat was partial

  always_comb begin
    in_pkt_d   = in_pkt_q;
    txt_seen_d = txt_seen_q || txt_hs;
    aad_part_d = aad_part_q || (aad_hs && s_keep_i != 16'hffff);
    txt_part_d = txt_part_q || (txt_hs && s_keep_i != 16'hffff);
    if (hdr_hs) begin
      in_pkt_d   = 1'b1;
      txt_seen_d = 1'b0;
      aad_part_d = 1'b0;
      txt_part_d = 1'b0;
    end
    if (s_hs && s_last_i) begin
      in_pkt_d = 1'b0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_assert_state
    if (!rst_ni) begin
      in_pkt_q   <= 1'b0;
      txt_seen_q <= 1'b0;
      aad_part_q <= 1'b0;
      txt_part_q <= 1'b0;
    end else begin
      in_pkt_q   <= in_pkt_d;
      txt_seen_q <= txt_seen_d;
      aad_part_q <= aad_part_d;
      txt_part_q <= txt_part_d;
    end
  end

  // Outputs are never X; output data is known whenever it is valid.
  CtrlKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({s_ready_o, m_valid_o}));
  OutKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      m_valid_o |-> !$isunknown({m_data_o, m_keep_o, m_last_o, m_tag_ok_o}));
  // A beat offered and not taken stays offered, unchanged (valid/ready rule).
  OutStable_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      m_valid_o && !m_ready_i |=> m_valid_o && $stable({m_data_o, m_keep_o, m_last_o,
                                                         m_tag_ok_o}));
  // The input obeys the same rule.
  InStable_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      s_valid_i && !s_ready_o |=> s_valid_i && $stable({s_kind_i, s_last_i, s_data_i,
                                                         s_keep_i}));
  // Input beats: known kind; a header only between packets, data only inside one;
  // AAD before text; keep a non-empty prefix, partial only on the last beat of its kind.
  KindLegal_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      s_valid_i |-> s_kind_i inside {aes_gcm_pkg::KindHdr, aes_gcm_pkg::KindAad,
                                     aes_gcm_pkg::KindText});
  HdrOutside_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      hdr_hs |-> !in_pkt_q);
  DataInside_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (aad_hs || txt_hs) |-> in_pkt_q);
  AadBeforeText_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      aad_hs |-> !txt_seen_q);
  KeepPrefix_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (aad_hs || txt_hs) |-> s_keep_i != '0 && (s_keep_i & (s_keep_i + 16'd1)) == '0);
  PartialLast_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !((aad_hs && aad_part_q) || (txt_hs && txt_part_q)));
  // Slot order behind the pipeline: the clock after a packet's last slot brings at most the
  // next packet's H slot, the clock after that no data.
  LenSlot_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      lpend_q |-> !(o_j0 || o_aad || o_txt));
  TagSlot_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      tpend_q |-> !(o_aad || o_txt));
  // Reservations keep the FIFO from overflowing.
  FifoRoom_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      fifo_we |-> (32'(cnt_q) < OUT_DEPTH) || pop);
  Reserved_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      32'(used_q) <= OUT_DEPTH && cnt_q <= used_q);
`endif

endmodule

`default_nettype wire
