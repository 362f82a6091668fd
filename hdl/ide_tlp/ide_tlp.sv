// ide_tlp: the endpoint's TLP path: IDE on received requests and on sent completions, BAR0.
//
// One TLP at a time, store and forward. A received TLP is taken whole into a DW buffer, its
// header parsed, and, when it carries the IDE TLP Prefix, checked and decrypted in place by the
// AES-256-GCM engine with the Rx key the prefix's Stream_ID, Sub-Stream and K select. A request
// that passes (IDE checks, BAR0 range, the TDISP rules) is executed on the BAR0 memory; a read
// gets a completion, protected on the stream the read came on with the Tx key set of that
// stream's Completion sub-stream. Failures pulse check_failed_o for the stream (ide_cap makes it
// Insecure and wipes its keys). With DMA_SUPPORTED the path also sends Memory Writes of its own
// (BAR0 memory to a host address, started on the firmware port) on the stream the Address
// Association blocks, the Default Stream and Link IDE choose (§6.33.4). See README.md for the
// stream format, the checks, the DMA engine and counters.

`default_nettype none

module ide_tlp
  import ide_tlp_pkg::*;
#(
  // IDE streams, Selective and Link (ide_cap NUM_STREAMS + NUM_LINK_TCS); 1 .. 8.
  parameter int unsigned NUM_STREAMS = 2,
  // BAR0 size, log2 bytes; 12 .. 16 (the memory behind it is BAR0-sized).
  parameter int unsigned BAR0_SIZE_LOG2 = 12,
  // Largest data payload of a request or completion, in DW; power of 2, 4 .. 256.
  parameter int unsigned MAX_PAYLOAD_DW = 64,
  // 1: PCRC (§6.33.4) on streams whose PCRC Enable is Set: checked on received requests with
  // data, generated on completions with data. 0: a TLP with P = 1 is IDE Check Failed.
  parameter bit PCRC_SUPPORTED = 1'b0,
  // 1: Partial Header Encryption (§6.33.4) on received requests of streams whose PHE Mode
  // (stream_phe_i) is 0001b..0100b. 0: the mode is ignored (ide_cap reads it as 0 then).
  parameter bit PHE_SUPPORTED = 1'b0,
  // 1: Selective IDE for Configuration Requests (§6.33.4): a Type 1 Configuration Request that
  // arrives as an IDE TLP on a Selective stream for this function is done through the hard
  // IP's configuration management port (cfg_mgmt_*) and answered on the stream; from then on
  // cfg_ide_hold_o tells the hard IP to discard plain ones. 0: such requests are UR.
  parameter bit CFG_IDE_SUPPORTED = 1'b0,
  // 1: Aggregation (§6.33.6): an IDE TLP without a MAC (M = 0) is held, with the other TLPs of
  // its unit, until the unit's last TLP (M = 1); the unit is then decrypted and checked as one
  // AES-GCM invocation and its TLPs are done in order. Interleaved TLPs of other Sub-Streams
  // and streams go on meanwhile (each Sub-Stream of each stream has its own unit store).
  // 0: an IDE TLP without a MAC is IDE Check Failed.
  parameter bit AGG_SUPPORTED = 1'b0,
  // 1: the function's own requests (§6.33.4, "For a Transmitter to associate a specific TLP
  // with a specific Selective IDE Stream"): a DMA engine, started from the firmware port,
  // writes BAR0 memory to a host address as a Memory Write. Its stream is chosen by the
  // Selective streams' Address Association blocks (stream_addr_i), then the Default Stream,
  // then the TC's Link IDE Stream, else it goes as a non-IDE TLP. 0: no requests are sent.
  parameter bit DMA_SUPPORTED = 1'b0,
  // Address Association blocks per stream index in stream_addr_i (ide_cap's largest count).
  parameter int unsigned ADDR_BLOCKS = 1,
  // Seeded bug for the mutation harness (hil/mutants.py), never for a real build: 1 = a
  // received IDE TLP whose MAC does not verify is taken as good. Keep 0.
  parameter bit MUTANT_SKIP_MAC_CHECK = 1'b0,
  // Seeded bugs, as above: 1 = a received PCRC is not checked (a wrong or missing one passes);
  // 1 = completions go without PCRC on a stream with PCRC Enable. Keep 0.
  parameter bit MUTANT_SKIP_PCRC_CHECK = 1'b0,
  parameter bit MUTANT_NO_TX_PCRC = 1'b0,
  // Seeded bug, as above: 1 = the RID association range is not applied. Keep 0.
  parameter bit MUTANT_NO_RID_CHECK = 1'b0,
  // Seeded bug, as above: 1 = non-IDE requests on a Link IDE Stream's TC are taken after its
  // IDE TLPs began. Keep 0.
  parameter bit MUTANT_LINK_TAKES_PLAIN = 1'b0,
  // Seeded bug, as above: 1 = an IDE TLP without a MAC (M = 0) is measured as if it had one,
  // so it is dropped as malformed instead of failing the stream. Keep 0.
  parameter bit MUTANT_NO_MAC_DROPPED = 1'b0,
  // Seeded bug, as above: 1 = with PHE, the request keeps the byte enables and address bits
  // as received (ciphertext) instead of the decrypted ones. Keep 0.
  parameter bit MUTANT_PHE_WIRE_HEADER = 1'b0,
  // Seeded bug, as above: 1 = cfg_ide_hold_o stays low, so plain Configuration Requests are
  // still taken after one came as an IDE TLP. Keep 0.
  parameter bit MUTANT_CFG_PLAIN_TAKEN = 1'b0,
  // Seeded bug, as above: 1 = a K that changes inside an aggregated unit is not checked (the
  // unit is decrypted with its first TLP's key set). Keep 0.
  parameter bit MUTANT_AGG_K_UNCHECKED = 1'b0,
  // Seeded bugs, as above: 1 = only the first Address Association block of each stream is
  // looked at; 1 = a request with T = 0 may take a TEE-Limited stream. Keep 0.
  parameter bit MUTANT_DMA_BLOCK0_ONLY = 1'b0,
  parameter bit MUTANT_DMA_TEE_LIMIT_IGNORED = 1'b0,
  // Seeded bug, as above: 1 = a completion for a DMA read is taken whatever its Completer ID,
  // outside the stream's RID association too. Keep 0.
  parameter bit MUTANT_CPL_RID_UNCHECKED = 1'b0,
  // Clocks a DMA read waits for its completion before DMA_STATUS reports a Completion Timeout
  // (§2.8; the default range is 50 us .. 50 ms: 16384 clocks are 65.5 us at 250 MHz).
  parameter int unsigned DMA_CPL_TIMEOUT = 16384
) (
  input  logic                       clk_i,
  input  logic                       rst_ni,

  // Receive stream (requests from the hard IP), one TLP per packet, wire byte order
  input  logic [127:0]               rx_data_i,
  input  logic [15:0]                rx_keep_i,
  input  logic                       rx_valid_i,
  input  logic                       rx_last_i,
  output logic                       rx_ready_o,

  // Transmit stream (completions to the hard IP), same format
  output logic [127:0]               tx_data_o,
  output logic [15:0]                tx_keep_o,
  output logic                       tx_valid_o,
  output logic                       tx_last_o,
  input  logic                       tx_ready_i,

  // The function: its ID for completions, BAR0, Memory Space Enable
  input  logic [15:0]                completer_id_i,
  input  logic [63:0]                bar0_base_i,
  input  logic                       mem_enable_i,
  input  logic                       bus_master_i,      // Command.Bus Master Enable

  // TDISP interface state (tdi)
  input  logic [1:0]                 tdi_state_i,       // TDISP TDI_STATE code
  input  logic                       tdi_bound_i,
  input  logic [2:0]                 tdi_bound_stream_i,
  output logic                       tlp_poisoned_o,    // pulse: poisoned request to BAR0

  // IDE streams (ide_cap)
  input  logic [8*NUM_STREAMS-1:0]   stream_id_i,
  input  logic [NUM_STREAMS-1:0]     stream_enable_i,
  input  logic [NUM_STREAMS-1:0]     stream_secure_i,
  input  logic [12*NUM_STREAMS-1:0]  stream_slot_go_i,
  input  logic [NUM_STREAMS-1:0]     stream_pcrc_i,     // PCRC Enable (ide_cap)
  input  logic [4*NUM_STREAMS-1:0]   stream_phe_i,      // PHE Mode (ide_cap)
  input  logic [NUM_STREAMS-1:0]     stream_link_i,     // a Link IDE Stream (ide_cap)
  input  logic [3*NUM_STREAMS-1:0]   stream_tc_i,       // its TC (ide_cap)
  input  logic [NUM_STREAMS-1:0]     stream_default_i,  // Default Stream (ide_cap)
  input  logic [16*NUM_STREAMS-1:0]  stream_rid_base_i, // RID Association (ide_cap)
  input  logic [16*NUM_STREAMS-1:0]  stream_rid_limit_i,
  input  logic [NUM_STREAMS-1:0]     stream_tee_limited_i, // TEE-Limited Stream (ide_cap)
  // Address Association (ide_cap stream_addr_o): entry (j, b) in bits
  // [89*(j*ADDR_BLOCKS+b) +: 89] = {Valid, Memory Base[63:20], Memory Limit[63:20]}
  input  logic [89*NUM_STREAMS*ADDR_BLOCKS-1:0] stream_addr_i,
  output logic [NUM_STREAMS-1:0]     check_failed_o,    // pulse per stream: IDE Check Failed

  // Key slot read port (ide_cap tlp_key_*)
  output logic                       key_rd_o,
  output logic [2:0]                 key_stream_o,
  output logic [3:0]                 key_slot_o,
  input  logic [255:0]               key_i,             // first key DW in bits 255:224
  input  logic [63:0]                ifv_i,
  input  logic                       key_go_i,
  input  logic                       key_rvalid_i,

  // Configuration management (the hard IP's own configuration space, PG213 cfg_mgmt_*): the
  // accesses of Configuration Requests that arrived as IDE TLPs. A request holds until done.
  output logic [9:0]                 cfg_mgmt_addr_o,   // DW register number
  output logic                       cfg_mgmt_write_o,
  output logic [31:0]                cfg_mgmt_write_data_o,
  output logic [3:0]                 cfg_mgmt_byte_enable_o,
  output logic                       cfg_mgmt_read_o,
  input  logic [31:0]                cfg_mgmt_read_data_i,
  input  logic                       cfg_mgmt_read_write_done_i,
  // A Selective stream took a Configuration Request as an IDE TLP and is still enabled: the
  // hard IP must discard Configuration Requests that arrive as non-IDE TLPs (§6.33.4).
  output logic                       cfg_ide_hold_o,

  // Firmware register port: counters and the DMA engine (DW index; hdl/ide_tlp/README.md)
  input  logic                       fw_rd_i,
  input  logic                       fw_wr_i,
  input  logic [5:0]                 fw_addr_i,
  input  logic [31:0]                fw_wdata_i,
  output logic [31:0]                fw_rdata_o,
  output logic                       fw_rvalid_o,

  // Telemetry
  output logic [31:0]                check_failures_o   // IDE Check Failed events, saturating
);

  ////////////////
  // Parameters //
  ////////////////

  if (NUM_STREAMS < 1 || NUM_STREAMS > 8) begin : gen_bad_streams
    $fatal(1, "ide_tlp: NUM_STREAMS must be 1 .. 8");
  end
  if (BAR0_SIZE_LOG2 < 12 || BAR0_SIZE_LOG2 > 16) begin : gen_bad_bar
    $fatal(1, "ide_tlp: BAR0_SIZE_LOG2 must be 12 .. 16");
  end
  if (MAX_PAYLOAD_DW < 4 || MAX_PAYLOAD_DW > 256 ||
      (MAX_PAYLOAD_DW & (MAX_PAYLOAD_DW - 1)) != 0) begin : gen_bad_payload
    $fatal(1, "ide_tlp: MAX_PAYLOAD_DW must be a power of 2 in 4 .. 256");
  end

  if (DMA_CPL_TIMEOUT < 1 || DMA_CPL_TIMEOUT > 65535) begin : gen_bad_cpl_timeout
    $fatal(1, "ide_tlp: DMA_CPL_TIMEOUT must be 1 .. 65535 clocks");
  end

  // A TLP: IDE prefix (1 DW), header (<= 4 DW), payload, PCRC (1 DW), MAC (3 DW); rounded up
  // to beats.
  localparam int unsigned BufDw    = ((1 + 4 + MAX_PAYLOAD_DW + 1 + MAC_DW + 3) / 4) * 4;
  localparam int unsigned BufBeats = BufDw / 4;
  // Index width; with aggregation also wide enough for a unit's engine beats and P bytes.
  localparam int unsigned IdxW     = (AGG_SUPPORTED && $clog2(BufDw + 4) < 7) ? 7 :
                                     $clog2(BufDw + 4);
  localparam int unsigned MemDw    = (1 << BAR0_SIZE_LOG2) / 4;
  localparam int unsigned MemAw    = BAR0_SIZE_LOG2 - 2;
  localparam int unsigned LenW     = $clog2(MAX_PAYLOAD_DW + 1);
  localparam int unsigned StrW     = NUM_STREAMS > 1 ? $clog2(NUM_STREAMS) : 1;

  // Aggregation (§6.33.6): a unit store per stream and request Sub-Stream (Posted,
  // Non-Posted). A unit holds at most 8 TLPs and 256 DW of payload: its A (prefix and header,
  // at most 20 bytes a TLP) fits AggAW beats, its P (payload, PHE fronts of up to 6 bytes,
  // the PCRC) AggPW beats. Without aggregation nothing writes them and synthesis drops them.
  localparam int unsigned AGG_MAX_TLPS = 8;
  localparam int unsigned AGG_MAX_DW   = 256;
  localparam int unsigned AggSlots = 2 * NUM_STREAMS;
  localparam int unsigned AggAW    = (AGG_MAX_TLPS * 20 + 15) / 16;
  localparam int unsigned AggPW    = (4 * AGG_MAX_DW + 6 * AGG_MAX_TLPS + 4 + 15) / 16 + 1;
  localparam int unsigned AggSlW   = $clog2(AggSlots);
  localparam int unsigned AggAIW   = $clog2(AggSlots * AggAW);
  localparam int unsigned AggPIW   = $clog2(AggSlots * AggPW);

  /////////////
  // Buffers //
  /////////////

  // Received TLP, DW n = wire bytes 4n .. 4n+3 (byte 4n in bits 7:0); decrypted in place.
  logic [31:0] rbuf_q [BufDw];
  // Completion being built and sent, same layout.
  logic [31:0] tbuf_q [BufDw];
  // BAR0 memory, DW n = bytes 4n .. 4n+3 of BAR0 (byte 4n in bits 7:0).
  logic [31:0] mem_q [MemDw];
  // Unit stores (aggregation), slot = 2 x stream + (Non-Posted): the unit's A and P packed in
  // byte order as the engine takes them (byte k of a beat in bits [8k+7:8k]), and per TLP of
  // the unit its prefix and header as received, its PHE front length and its payload in DW.
  logic [127:0] agg_a_q [AggSlots * AggAW];
  logic [127:0] agg_p_q [AggSlots * AggPW];
  logic [159:0] agg_hdr_q [AggSlots * AGG_MAX_TLPS];
  logic [2:0]   agg_fl_q [AggSlots * AGG_MAX_TLPS];
  logic [8:0]   agg_ln_q [AggSlots * AGG_MAX_TLPS];
  // Per slot: TLPs held, the unit's K, A and P bytes stored, payload DW (§6.33.6 limits).
  logic [3:0]   agg_n_q   [AggSlots];
  logic         agg_k_q   [AggSlots];
  logic [7:0]   agg_ab_q  [AggSlots];
  logic [11:0]  agg_pb_q  [AggSlots];
  logic [9:0]   agg_pdw_q [AggSlots];

  // Sixteen bytes of slot sl's P store from byte o (any alignment).
  function automatic logic [127:0] agg_p_win(logic [AggSlW-1:0] sl, logic [11:0] o);
    logic [255:0] two;
    int unsigned  w;
    w   = 32'(sl) * AggPW + 32'(o >> 4);
    two = {(w + 1 < AggSlots * AggPW) ? agg_p_q[w + 1] : 128'd0,
           (w < AggSlots * AggPW) ? agg_p_q[w] : 128'd0};
    return 128'(two >> (8 * 32'(o[3:0])));
  endfunction

  // Four consecutive DWs of a buffer from DW index i, as one 16-byte beat.
  function automatic logic [127:0] rbuf_beat(logic [IdxW-1:0] i);
    logic [127:0] b;
    for (int k = 0; k < 4; k++) begin
      b[32*k +: 32] = (32'(i) + 32'(k) < BufDw) ? rbuf_q[32'(i) + 32'(k)] : '0;
    end
    return b;
  endfunction

  function automatic logic [127:0] tbuf_beat(logic [IdxW-1:0] i);
    logic [127:0] b;
    for (int k = 0; k < 4; k++) begin
      b[32*k +: 32] = (32'(i) + 32'(k) < BufDw) ? tbuf_q[32'(i) + 32'(k)] : '0;
    end
    return b;
  endfunction

  // Saturating increment.
  function automatic logic [31:0] sat_inc(logic [31:0] v);
    return (v == '1) ? v : v + 32'd1;
  endfunction

  // Keep mask for n bytes of a beat (16 or more: all).
  function automatic logic [15:0] keep_bytes(int unsigned n);
    return (n >= 16) ? 16'hFFFF : 16'((17'h1 << n) - 17'h1);
  endfunction

  // DW enables of payload beat b (DWs 4b .. 4b+3 from pay_q) within the first n DWs.
  function automatic logic [3:0] pay_dwen(logic [IdxW-1:0] b, logic [IdxW-1:0] n);
    logic [3:0] e;
    for (int k = 0; k < 4; k++) begin
      e[k] = (4 * 32'(b) + 32'(k)) < 32'(n);
    end
    return e;
  endfunction

  // Partial Header Encryption (§6.33.4) of a 4 DW memory request header, header byte k in
  // bits [8k+7:8k]. Mode m (1..4) encrypts Address[msb:2], msb = 9 + 8m (17, 25, 33, 41): m + 1
  // address bytes, and the BE byte (header byte 7) where `be` says so. The reference is
  // hil.codec.ide_tlp.phe_split, which explains the packing of A.

  // The address field (header bytes 8..15) as a number: Address[63:2], PH[1:0].
  function automatic logic [63:0] phe_field(logic [127:0] hdr);
    logic [63:0] x;
    for (int k = 0; k < 8; k++) begin
      x[8*(7-k) +: 8] = hdr[8*(8+k) +: 8];
    end
    return x;
  endfunction

  // What A holds of the header: bytes 0..6, the BE byte unless encrypted, then Address[63:msb+1]
  // and PH packed most significant bit first (7 - m bytes); 14 .. 18 bytes with the prefix.
  function automatic logic [127:0] phe_a_hdr(logic [127:0] hdr, logic [2:0] mode, logic be);
    logic [63:0]  x, kept;
    logic [127:0] a;
    int unsigned  n, kn;
    x    = phe_field(hdr);
    kept = ((x >> (10 + 8 * int'(mode))) << 2) | {62'd0, x[1:0]};
    a    = '0;
    a[55:0] = hdr[55:0];
    n = 7;
    if (!be) begin
      a[63:56] = hdr[63:56];
      n = 8;
    end
    kn = 7 - int'(mode);
    for (int unsigned j = 0; j < 6; j++) begin
      if (j < kn) begin
        a[8*(n+j) +: 8] = kept[8*(kn-1-j) +: 8];
      end
    end
    return a;
  endfunction

  // The front of P: the BE byte if encrypted, then Address[msb:2] most significant byte first.
  function automatic logic [47:0] phe_front(logic [127:0] hdr, logic [2:0] mode, logic be);
    logic [63:0] h;
    logic [47:0] f;
    int unsigned o, nb;
    h  = phe_field(hdr) >> 2;
    nb = int'(mode) + 1;
    f  = '0;
    o  = 0;
    if (be) begin
      f[7:0] = hdr[63:56];
      o = 1;
    end
    for (int unsigned j = 0; j < 5; j++) begin
      if (j < nb) begin
        f[8*(o+j) +: 8] = h[8*(nb-1-j) +: 8];
      end
    end
    return f;
  endfunction

  // Address[msb:2] from a (decrypted) front, as the low 40 bits of Address[41:2].
  function automatic logic [39:0] phe_hidden(logic [47:0] f, logic [2:0] mode, logic be);
    logic [39:0] v;
    int unsigned o, nb;
    nb = int'(mode) + 1;
    o  = be ? 1 : 0;
    v  = '0;
    for (int unsigned j = 0; j < 5; j++) begin
      if (j < nb) begin
        v[8*(nb-1-j) +: 8] = f[8*(o+j) +: 8];
      end
    end
    return v;
  endfunction

  // The PCRC register after a PHE front of n bytes, padded to 64 bits with leading zeros
  // (§6.33.4), from the seed.
  function automatic logic [31:0] pcrc_front(logic [47:0] f, logic [2:0] n);
    return pcrc_update(PCRC_SEED,
                       {80'd0, f & ((48'd1 << (8 * 32'(n))) - 48'd1)} << (8 * (8 - 32'(n))),
                       5'd8);
  endfunction

  // A header with the front f (ciphertext, as phe_front lays it out) put in place of the BE
  // byte and Address[msb:2]: the header a transmitter sends with PHE (§6.33.4).
  function automatic logic [127:0] phe_put(logic [127:0] hdr, logic [47:0] f, logic [2:0] mode,
                                           logic be);
    logic [63:0]  x, m;
    logic [127:0] o;
    x = phe_field(hdr);
    m = ((64'd1 << (8 * (int'(mode) + 1))) - 64'd1) << 2;
    x = (x & ~m) | ((64'(phe_hidden(f, mode, be)) << 2) & m);
    o = hdr;
    if (be) begin
      o[63:56] = f[7:0];
    end
    for (int k = 0; k < 8; k++) begin
      o[8*(8+k) +: 8] = x[8*(7-k) +: 8];
    end
    return o;
  endfunction

  //////////////////
  // State machine //
  //////////////////

  typedef enum logic [4:0] {
    StIdle,      // wait for a TLP
    StRecv,      // take the TLP's beats into rbuf (or drain one too long)
    StParse,     // decode prefix and header, classify
    StRxKey,     // read the Rx key slot
    StRxAes,     // feed the engine, write plaintext back into rbuf
    StRxCheck,   // tag and counters
    StRxPcrc,    // PCRC over the decrypted payload, 16 bytes per clock
    StExec,      // TDISP and BAR checks, decide the answer
    StWrite,     // memory write, one DW per clock
    StRead,      // memory read into tbuf, one DW per clock
    StTxPcrc,    // PCRC of the completion's payload, appended to it
    StCplHdr,    // build the completion header (and prefix)
    StTxKey,     // read the Tx key slot
    StTxAes,     // encrypt the completion payload in place, append the MAC
    StSend,      // stream tbuf out
    StCfgRd,     // an IDE Configuration Read through cfg_mgmt, into the completion
    StCfgWr,     // an IDE Configuration Write through cfg_mgmt, after its completion went out
    StAggStore,  // add the TLP's A and P to its unit store (aggregation)
    StAggPcrc,   // PCRC over the unit's decrypted P content, TLP by TLP
    StAggLoad,   // put the unit's next TLP (header, decrypted payload) into rbuf
    StAggParse,  // decode it and do it as a checked IDE TLP
    StDmaSel,    // a DMA write: choose its stream (§6.33.4), then read its payload (StRead)
    StDmaHdr,    // its prefix and header into tbuf (two clocks)
    StDmaFin,    // PHE: the encrypted header fields into the header, then the MAC
    StCplRx      // a Completion for the DMA read: match it, then its data into memory
  } state_e;

  state_e state_q, state_d;

  // Receive bookkeeping
  logic [IdxW-1:0]  rx_beat_q, rx_beat_d;       // beats taken
  logic [IdxW+2:0]  rx_bytes_q, rx_bytes_d;     // bytes taken
  logic             rx_long_q, rx_long_d;       // more beats than the buffer holds

  // Parsed request
  logic             ide_q, ide_d;               // IDE prefix present
  logic [2:0]       sub_q, sub_d;               // prefix Sub-Stream
  logic             kset_q, kset_d;             // prefix K
  logic             tee_q, tee_d;               // prefix T
  logic [7:0]       prs_q, prs_d;               // prefix PR_Sent_Counter
  logic [StrW-1:0]  str_q, str_d;               // stream index (IDE)
  logic             write_q, write_d;           // MWr (else MRd)
  logic [LenW-1:0]  len_q, len_d;               // payload / read length in DW
  logic [IdxW-1:0]  pay_q, pay_d;               // payload start DW in rbuf
  logic [15:0]      rid_q, rid_d;               // requester ID
  logic [7:0]       tag_q, tag_d;
  logic [2:0]       tc_q, tc_d;
  logic [2:0]       attr_q, attr_d;             // {Attr[2], Attr[1:0]}
  logic [3:0]       fbe_q, fbe_d, lbe_q, lbe_d;
  logic [63:0]      addr_q, addr_d;
  logic             poison_q, poison_d;
  logic             pcrc_q, pcrc_d;             // prefix P: the TLP carries a PCRC
  logic             pdue_q, pdue_d;             // the stream expects a PCRC on this TLP
  logic             txp_q, txp_d;               // the completion gets a PCRC
  logic [31:0]      crc_q, crc_d;               // PCRC register
  logic [2:0]       phe_q, phe_d;               // PHE mode of the request (0: none)
  logic             phe_be_q, phe_be_d;         // PHE covers its byte enables
  logic [47:0]      phe_pf_q, phe_pf_d;         // the decrypted front of P (PHE)
  logic [127:0]     phe_prev_q, phe_prev_d;     // the previous plaintext beat (PHE)
  logic [IdxW+2:0]  aad_b_q, aad_b_d;           // Rx AAD length in bytes
  logic             cfg_q, cfg_d;               // a Configuration Request
  logic             cfg_t1_q, cfg_t1_d;         // ... of Type 1
  logic [15:0]      cfg_tgt_q, cfg_tgt_d;       // its Target ID
  logic [9:0]       cfg_reg_q, cfg_reg_d;       // its register (DW number)
  logic             cfg_held_q;                 // a Selective stream took one as IDE TLP
  logic [StrW-1:0]  cfg_str_q;                  // ... which
  logic             ev_cfg_take;                // this clock: stream str_q takes one

  // Aggregation
  logic             mbit_q, mbit_d;             // prefix M of the TLP (0: a unit member)
  logic             unit_q, unit_d;             // the TLP closes a unit held in the store
  logic             st_ph_q, st_ph_d;           // StAggStore: 0 A, 1 P
  logic [11:0]      st_i_q, st_i_d;             // ... bytes of it stored
  logic             rep_q, rep_d;               // the unit's TLPs are being done
  logic [3:0]       rep_k_q, rep_k_d;           // ... the next one
  logic [11:0]      rep_off_q, rep_off_d;       // ... its P content's first byte in the store
  logic [IdxW-1:0]  rep_c_q, rep_c_d;           // StAggLoad / StAggPcrc step
  logic             ev_agg_store;               // this clock: the TLP joins slot cur_sl
  logic             ev_agg_clear;               // this clock: slot cur_sl is emptied
  logic             ev_pr_member;               // this clock: count a member's PR_Sent_Counter
  logic             aa_wr, ap_wr;               // unit store writes of this clock
  logic [AggAIW-1:0] aa_idx;
  logic [AggPIW-1:0] ap_idx;
  logic [127:0]     aa_data, ap_data;
  logic [15:0]      aa_be, ap_be;

  // The function's own requests (DMA_SUPPORTED): one DMA write at a time, started from the
  // firmware port, built in tbuf with its payload from DW 8 (beat aligned) and its header
  // (3 or 4 DW) and IDE prefix right before it.
  logic             dma_q, dma_d;               // the TLP in tbuf is a DMA write
  logic             dma_pend_q;                 // started, not yet taken by the FSM
  logic [63:0]      dma_addr_q;                 // DMA_ADDR: the host address
  logic [9:0]       dma_len_q;                  // DMA_CTRL: payload DW
  logic [2:0]       dma_tc_q;                   // ... TC
  logic             dma_t_q;                    // ... T (a TDI's request, for TEE memory)
  logic [13:0]      dma_src_q;                  // ... BAR0 memory DW of the first payload DW
  logic [3:0]       dma_res_q;                  // DMA_STATUS: the last one's result
  logic [StrW-1:0]  dma_str_q;                  // ... its stream index
  logic             dma_busy;
  logic             ev_dma_take;                // this clock: StDmaSel takes the request
  logic             ev_dma_res;                 // this clock: the request's result
  logic [3:0]       ev_dma_code;
  logic             hdr4_q, hdr4_d;             // the DMA write has a 4 DW header
  logic [IdxW-1:0]  tx_o_q, tx_o_d;             // first tbuf DW sent
  logic [95:0]      mac_q, mac_d;               // the MAC, held for StDmaFin (PHE)
  logic             dma_rd_q;                   // DMA_CTRL READ: host memory into BAR0's
  logic [7:0]       dma_tag_q;                  // the next DMA read's Tag
  logic             rd_wait_q;                  // a DMA read waits for its completion
  logic [7:0]       rd_tag_q;                   // ... its Tag
  logic             rd_ide_q;                   // ... it went as an IDE TLP
  logic [StrW-1:0]  rd_str_q;                   // ... on this stream
  logic [LenW-1:0]  rd_len_q;                   // ... its length
  logic [15:0]      rd_timer_q;                 // ... clocks waited
  logic             ev_rd_sent;                 // this clock: a DMA read went out
  logic             ev_rd_end;                  // this clock: its completion was taken
  logic             ev_unexp;                   // this clock: an Unexpected Completion
  logic             cplt_q, cplt_d;             // the received TLP is a Completion
  logic [2:0]       cst_q, cst_d;               // ... its Completion Status
  logic [15:0]      creq_q, creq_d;             // ... its Requester ID
  logic [7:0]       ctag_q, ctag_d;             // ... its Tag
  logic [31:0]      cnt_unexp_q;                // Unexpected Completions (counter 0x27)
  logic             s_ide;                      // StDmaSel: the write goes on a stream ...
  logic [StrW-1:0]  s_str;                      // ... this one

  // AES feeding
  logic [IdxW-1:0]  feed_q, feed_d;             // input beats handed over
  logic [IdxW-1:0]  drain_q, drain_d;           // output text beats taken
  logic [255:0]     key_q, key_d;               // the AES key, byte k in [8k+7:8k]
  logic [95:0]      iv_q, iv_d;                 // the IV, byte k in [8k+7:8k]
  logic             tag_ok_q, tag_ok_d;

  // Execution
  logic [LenW-1:0]  cnt_q, cnt_d;               // DWs done (write / read)
  logic             rd_pend_q, rd_pend_d;       // a memory read is in flight
  logic [LenW-1:0]  rd_idx_q, rd_idx_d;         // its payload DW index
  logic             ur_q, ur_d;                 // answer with Unsupported Request
  logic [IdxW-1:0]  tx_dw_q, tx_dw_d;           // completion length in DW
  logic [IdxW-1:0]  tx_beat_q, tx_beat_d;

  // Per-stream IDE receive state (PR and NPR sub-streams, key sets 0/1)
  // Per-stream IDE receive state, by sub-stream (0 Posted, 1 Non-Posted, 2 Completion: the
  // completions of the DMA engine's reads) and key set
  logic [63:0]      rx_ctr_q [NUM_STREAMS][3][2];
  logic             rx_ctr_ld_q [NUM_STREAMS][3][2];   // counter loaded from the IFV
  logic             rx_retired_q [NUM_STREAMS][3][2];  // replaced by the other key set
  logic             rx_cur_q [NUM_STREAMS][3];         // key set in use
  logic             rx_cur_vld_q [NUM_STREAMS][3];
  logic             lk_lock_q [NUM_STREAMS][3];        // Link: an IDE TLP came on the sub-stream
  logic [31:0]      rx_pr_q [NUM_STREAMS];             // PR_Received_Counter-NPR (§6.33.5)
  logic [31:0]      rx_prc_q [NUM_STREAMS];            // PR_Received_Counter-CPL
  // Per-stream IDE transmit state, by sub-stream as above: Posted (DMA writes), Non-Posted
  // (DMA reads), Completion
  logic [63:0]      tx_ctr_q [NUM_STREAMS][3][2];
  logic             tx_ctr_ld_q [NUM_STREAMS][3][2];
  logic             tx_k_q [NUM_STREAMS][3];           // Tx key set (last armed)
  logic [7:0]       tx_prs_q [NUM_STREAMS];            // PR_Sent_Counter-CPL (§6.33.5)
  logic [7:0]       tx_prn_q [NUM_STREAMS];            // PR_Sent_Counter-NPR
  logic [1:0]       txs;                               // sub-stream of the TLP in tbuf
  logic [12*NUM_STREAMS-1:0] slot_go_q;                // stream_slot_go_i last clock

  // Counters
  logic [31:0]      cnt_rx_ok_q [NUM_STREAMS];
  logic [31:0]      cnt_tx_q [NUM_STREAMS];
  logic [31:0]      cnt_fail_q [NUM_STREAMS];
  logic [8:0]       last_fail_q [NUM_STREAMS];
  logic [31:0]      cnt_misrouted_q, cnt_discard_q, cnt_plain_q, cnt_ur_q, cnt_malformed_q;
  logic [31:0]      cnt_pcrc_q;
  logic [31:0]      fail_total_q;

  // Events of this clock (set by the FSM)
  logic             ev_fail;
  fail_e            ev_fail_reason;
  logic [2:0]       ev_fail_sub;
  logic             ev_fail_k;
  logic [StrW-1:0]  ev_fail_str;
  logic             ev_rx_ok, ev_tx, ev_misrouted, ev_discard, ev_plain, ev_ur, ev_malformed;
  logic             ev_pcrc;                     // PCRC Check Failed (reported; not fatal)
  logic             ev_ctr_commit;               // StRxCheck passed: advance Rx state
  logic             ev_tx_commit;                // a protected completion went out

  // Buffer writes of this clock
  logic             rb_wr;                       // write up to 4 DWs of rbuf
  logic [IdxW-1:0]  rb_idx;
  logic [127:0]     rb_data;
  logic [3:0]       rb_dwen;
  logic             tb_wr;
  logic [IdxW-1:0]  tb_idx;
  logic [127:0]     tb_data;
  logic [3:0]       tb_dwen;

  // Memory port
  logic             mem_we, mem_re;
  logic [MemAw-1:0] mem_addr;
  logic [31:0]      mem_wdata;
  logic [3:0]       mem_be;
  logic [31:0]      mem_rdata_q;

  // AES engine
  logic             aes_s_valid, aes_s_ready, aes_s_last, aes_s_decrypt;
  logic [1:0]       aes_s_kind;
  logic [127:0]     aes_s_data, aes_s_tag;
  logic [15:0]      aes_s_keep;
  logic             aes_m_valid, aes_m_last, aes_m_tag_ok;
  logic [127:0]     aes_m_data;
  logic [15:0]      aes_m_keep;

  //////////////////////
  // Header decoding  //
  //////////////////////

  // Wire DW n of rbuf as the spec draws it (byte 0 in bits 31:24).
  function automatic logic [31:0] rwire(logic [IdxW-1:0] n);
    return bswap32(rbuf_q[n]);
  endfunction

  logic [31:0] w_pfx, w_dw0, w_dw1, w_dw2, w_dw3;
  logic        p_ide, p_4dw, p_data, p_mem, p_len_ok;
  logic [IdxW-1:0] p_hdr;                         // first header DW
  logic [10:0] p_len;                             // Length in DW (0 -> 1024)
  logic [IdxW+2:0] p_bytes;                       // bytes the TLP must have
  logic [StrW-1:0] p_str;
  logic        p_str_hit;
  logic        p_lk_drop;                          // a non-IDE request on a Link IDE TC
  logic        p_cfg;                              // CfgRd / CfgWr, Type 0 or 1
  logic        p_cplt;                             // Cpl / CplD (a DMA read's answer)
  logic [2:0]  p_phe;                              // the stream's PHE mode for this request
  logic        p_phe_be;                           // PHE covers its byte enables
  logic [63:0] p_addr;                             // the header's address
  logic [63:0] p_phe_mask;                         // the address bits its PHE mode hides
  logic [AggSlW-1:0] p_sl;                         // unit store of the prefix's Sub-Stream
  logic        p_open;                             // ... holds TLPs of a unit

  always_comb begin
    w_pfx  = rwire('0);
    p_ide  = (w_pfx[31:24] == IDE_PREFIX_BYTE0);
    p_hdr  = p_ide ? IdxW'(1) : '0;
    w_dw0  = rwire(p_hdr);
    w_dw1  = rwire(p_hdr + IdxW'(1));
    w_dw2  = rwire(p_hdr + IdxW'(2));
    w_dw3  = rwire(p_hdr + IdxW'(3));
    p_4dw  = w_dw0[29];                            // Fmt bit 0: 4 DW header
    p_data = w_dw0[30];                            // Fmt bit 1: with data
    p_mem  = (w_dw0[31] == 1'b0) && (w_dw0[28:24] == 5'b00000);   // MRd / MWr
    p_cplt = DMA_SUPPORTED && (w_dw0[31:29] == 3'b000 || w_dw0[31:29] == 3'b010) &&
             (w_dw0[28:24] == 5'b01010);
    p_cfg  = (w_dw0[31:30] == 2'b00 || w_dw0[31:29] == 3'b010) &&
             (w_dw0[28:25] == 4'b0010);                             // CfgRd / CfgWr, 3 DW
    p_len  = (w_dw0[9:0] == 10'd0) ? 11'd1024 : {1'b0, w_dw0[9:0]};
    p_len_ok = (p_len <= 11'(MAX_PAYLOAD_DW));
    // An IDE TLP carries a MAC when M = 1; with M = 0 (a member of an aggregated unit) it has
    // none, and is then taken whole and failed as such below (§6.33.6).
    p_bytes = (IdxW+3)'(4 * (32'(p_hdr) + (p_4dw ? 4 : 3) +
                             (p_data ? 32'(p_len) : 0) +
                             ((p_ide && (w_pfx[2] || MUTANT_NO_MAC_DROPPED)) ? MAC_DW : 0) +
                             ((p_ide && w_pfx[3]) ? 1 : 0)));
    // The enabled stream with the prefix's Stream ID (the lowest index if several). A Link
    // IDE Stream carries the TLPs of its TC only (§6.33.1); an IDE TLP with its Stream ID on
    // another TC has no stream here and is a Misrouted IDE TLP (§6.33.8). The spec states
    // no rule for that case: Stream IDs are unique per Port, and a Link stream is the TC's.
    p_str     = '0;
    p_str_hit = 1'b0;
    for (int j = NUM_STREAMS - 1; j >= 0; j--) begin
      if (stream_enable_i[j] && stream_id_i[8*j +: 8] == w_pfx[15:8] &&
          (!stream_link_i[j] || stream_tc_i[3*j +: 3] == w_dw0[22:20]))
      begin
        p_str     = StrW'(j);
        p_str_hit = 1'b1;
      end
    end
    // PHE (§6.33.4) applies to the Memory Requests of a stream with a mode set; it covers the
    // byte enables except a Translation Request's (AT = 01b; TH is never taken here).
    p_phe    = (PHE_SUPPORTED && p_ide && p_str_hit && p_mem) ? stream_phe_i[4*p_str +: 3] : '0;
    p_phe_be = p_data || (w_dw0[11:10] != 2'b01);
    p_addr   = p_4dw ? {w_dw2, w_dw3[31:2], 2'b00} : {32'd0, w_dw2[31:2], 2'b00};
    p_phe_mask = ((64'd1 << (8 * (32'(p_phe) + 1))) - 64'd1) << 2;
    p_sl     = AggSlW'(2 * 32'(p_str) + 32'(w_pfx[4]));
    p_open   = AGG_SUPPORTED && !p_cplt && agg_n_q[p_sl] != '0;
    // §6.33.4: once a Link IDE Stream is enabled, a receiver takes non-IDE TLPs of its TC on
    // a Sub-Stream only until the first IDE TLP on that Sub-Stream; from then on, while the
    // stream is enabled, it discards them (no error is logged).
    p_lk_drop = 1'b0;
    for (int j = 0; j < NUM_STREAMS; j++) begin
      if (stream_link_i[j] && stream_enable_i[j] && stream_tc_i[3*j +: 3] == w_dw0[22:20] &&
          lk_lock_q[j][p_cplt ? SUB_CPL : p_data ? SUB_PR : SUB_NPR] &&
          !MUTANT_LINK_TAKES_PLAIN) begin
        p_lk_drop = 1'b1;
      end
    end
  end

  //////////////////////////////////
  // Request checks and answers   //
  //////////////////////////////////

  logic [63:0]  bar_mask;
  logic [63:0]  x_end;                             // one past the last byte addressed
  logic         x_bar_hit, x_tee_ok, x_rid_ok, x_accept;
  logic [11:0]  x_byte_count;
  logic [6:0]   x_lower_addr;
  logic [MemAw-1:0] x_dw;                          // first memory DW

  assign bar_mask = ~((64'd1 << BAR0_SIZE_LOG2) - 64'd1);
  assign x_end    = addr_q + 64'(4 * 32'(len_q));
  assign x_dw     = addr_q[BAR0_SIZE_LOG2-1:2];

  always_comb begin
    x_bar_hit = mem_enable_i && ((addr_q & bar_mask) == (bar0_base_i & bar_mask)) &&
                (((x_end - 64'd1) & bar_mask) == (bar0_base_i & bar_mask));
    // TDISP (§11.2, protocols.md §5 "TLP rules"): outside RUN a request with T = 1 is
    // rejected; in RUN the interface's MMIO (all of BAR0) takes only T = 1 requests that
    // arrived on the bound stream.
    if (tdi_state_i == TDI_RUN) begin
      x_tee_ok = ide_q && tee_q && tdi_bound_i && (32'(str_q) == 32'(tdi_bound_stream_i));
    end else begin
      x_tee_ok = !tee_q;
    end
    // RID association (§6.33.4, for a TEE-IO device): "A Completer receiving a Request on a
    // Selective IDE Stream other than the Default Stream must handle it as an Unsupported
    // Request if the Requester ID ... is less than the RID Base or greater than the RID Limit".
    // A Link IDE Stream has no RID association.
    x_rid_ok = !ide_q || stream_default_i[str_q] || stream_link_i[str_q] || MUTANT_NO_RID_CHECK ||
               (rid_q >= stream_rid_base_i[16*str_q +: 16] &&
                rid_q <= stream_rid_limit_i[16*str_q +: 16]);
    x_accept = x_bar_hit && x_tee_ok && x_rid_ok && !poison_q;
    x_byte_count = byte_count(len_q == LenW'(1), fbe_q, lbe_q, 11'(len_q));
    x_lower_addr = {addr_q[6:2], first_byte(fbe_q)};
  end

  // The stream of a DMA write (§6.33.4, "For a Transmitter to associate a specific TLP with a
  // specific Selective IDE Stream"): an enabled Selective stream on the request's TC whose
  // Address Association holds the address ("the destination address must be greater than or
  // equal to the Memory Base value and less than or equal to Memory Limit value in a Selective
  // IDE Address Association Register block"; the lowest index where ranges overlap: "it is
  // implementation specific which"); else the Default Stream on the TC ("For a TLP not already
  // associated with any other Stream"). A TEE-Limited stream takes only T = 1: "Requests that
  // otherwise would be associated with this Selective IDE Stream and have the T bit Clear must
  // be Transmitted as non-IDE TLPs if Link IDE is not enabled, or as Link IDE TLPs if Link IDE
  // is enabled". What no Selective stream takes goes on the TC's Link IDE Stream ("TLPs not
  // associated with any Selective IDE Stream must use Link IDE"), else as a non-IDE TLP.
  // (Worked out only in StDmaSel.)
  logic [NUM_STREAMS-1:0] s_addr_hit, s_dflt_hit, s_link_hit;
  logic                   s_found, s_link_found, s_to_link;
  logic [StrW-1:0]        s_sel, s_link;
  logic [88:0]            s_blk;

  always_comb begin
    s_addr_hit   = '0;
    s_dflt_hit   = '0;
    s_link_hit   = '0;
    s_found      = 1'b0;
    s_link_found = 1'b0;
    s_sel        = '0;
    s_link       = '0;
    s_blk        = '0;
    s_to_link    = 1'b1;
    s_ide        = 1'b0;
    s_str        = '0;
    if (DMA_SUPPORTED && state_q == StDmaSel) begin
      for (int j = 0; j < NUM_STREAMS; j++) begin
        if (stream_enable_i[j] && stream_tc_i[3*j +: 3] == dma_tc_q) begin
          if (stream_link_i[j]) begin
            s_link_hit[j] = 1'b1;
          end else begin
            s_dflt_hit[j] = stream_default_i[j];
            for (int b = 0; b < int'(ADDR_BLOCKS); b++) begin
              s_blk = stream_addr_i[89 * (j * int'(ADDR_BLOCKS) + b) +: 89];
              if (s_blk[88] && (b == 0 || !MUTANT_DMA_BLOCK0_ONLY) &&
                  dma_addr_q[63:20] >= s_blk[87:44] && dma_addr_q[63:20] <= s_blk[43:0]) begin
                s_addr_hit[j] = 1'b1;
              end
            end
          end
        end
      end
      for (int j = NUM_STREAMS - 1; j >= 0; j--) begin
        if (s_addr_hit[j]) begin
          s_found = 1'b1;
          s_sel   = StrW'(j);
        end
        if (s_link_hit[j]) begin
          s_link_found = 1'b1;
          s_link       = StrW'(j);
        end
      end
      if (!s_found) begin
        for (int j = NUM_STREAMS - 1; j >= 0; j--) begin
          if (s_dflt_hit[j]) begin
            s_found = 1'b1;
            s_sel   = StrW'(j);
          end
        end
      end
      s_to_link = !s_found ||
                  (stream_tee_limited_i[s_sel] && !dma_t_q && !MUTANT_DMA_TEE_LIMIT_IGNORED);
      s_ide = !s_to_link || s_link_found;
      s_str = s_to_link ? s_link : s_sel;
    end
  end

  // Beat arithmetic of the engine's packets.
  logic [IdxW-1:0] aad_beats, rx_plen, pay_beats, p, tx_plen, tx_pay_beats, tx_p, hd;
  logic [2:0]      phe_flen;                                // PHE front of P, bytes (0: none)
  logic [IdxW+2:0] rx_pbytes;                               // Rx P content, bytes
  logic [255:0]    phe_a;                                   // Rx A with PHE (prefix first)
  logic [47:0]     phe_cf;                                  // the ciphertext front (PHE)
  logic [127:0]    phe_text;                                // Rx P beat p with PHE
  logic [63:0]     phe_mask;                                // Address bits PHE selects
  logic [31:0]     phe_crc;                                 // PCRC after the padded front
  logic [4:0]      crc_n;                                   // PCRC bytes this clock
  logic [31:0]     h0, h1, h2, pfx;
  logic [31:0]     dh0, dh1, dh2, dh3, dpfx;                // a DMA write's header, prefix
  logic [127:0]    dma_hdr;                                 // ... its header as tbuf holds it
  logic [IdxW-1:0] d_hdw, d_a0, d_aad_beats, d_pay_beats, d_p;
  logic [IdxW+2:0] d_aad_bytes, d_p_bytes;                  // its engine A and P bytes
  logic [AggSlW-1:0] cur_sl;                                // unit store of the request
  logic [IdxW+2:0] aad_bytes;                               // engine A bytes (TLP, unit)
  logic [11:0]     p_bytes_all;                             // engine P bytes (TLP, unit)
  logic [159:0]    st_a_src;                                // the TLP's A, byte 0 first
  logic [127:0]    st_win;                                  // its P content from byte st_i_q
  logic [11:0]     st_len, st_o, st_n;                      // StAggStore: bytes, offset, step
  logic [IdxW-1:0] st_d;                                    // ... payload DW at st_i_q
  logic [159:0]    u_hdr;                                   // the unit's next TLP: header
  logic [2:0]      u_fl;                                    // ... PHE front bytes
  logic [8:0]      u_ln;                                    // ... payload DW
  logic [IdxW-1:0] u_pay;                                   // ... payload's first rbuf DW
  logic [11:0]     u_done;                                  // StAggPcrc payload bytes done
  logic [4:0]      u_n;                                     // ... this clock
  logic [11:0]     u_off;                                   // the P store byte read now
  logic [127:0]    u_win;                                   // ... and the 16 bytes from it

  always_comb begin
    cur_sl       = AggSlW'(2 * 32'(str_q) + 32'(sub_q[0]));
    aad_bytes    = unit_q ? (IdxW+3)'(agg_ab_q[cur_sl]) : aad_b_q;
    aad_beats    = IdxW'((aad_bytes + (IdxW+3)'(15)) >> 4);
    // P content: the payload (a write's) and the PCRC, after the PHE front if any.
    rx_plen      = (write_q ? IdxW'(len_q) : '0) + IdxW'(pcrc_q);  // in DW, from pay_q
    phe_flen     = (phe_q != '0) ? phe_q + 3'd1 + 3'(phe_be_q) : 3'd0;
    rx_pbytes    = (IdxW+3)'(4 * 32'(rx_plen) + 32'(phe_flen));
    p_bytes_all  = unit_q ? agg_pb_q[cur_sl] : 12'(rx_pbytes);
    pay_beats    = IdxW'((32'(p_bytes_all) + 15) >> 4);
    p            = feed_q - IdxW'(1) - aad_beats;          // Rx payload beat being fed
    // PHE (§6.33.4): A is the prefix and what the header keeps; P is the front (ciphertext
    // taken from the header's fields) then the payload, so each P beat is a byte-shifted
    // window of the payload, the first one led by the front.
    // (Worked out only for a PHE request: the wide shifts cost simulation time every clock.)
    // No data: an Unsupported Request, or a Configuration Write's Cpl.
    // A DMA read: no payload, its PCRC at most.
    tx_plen      = (ur_q || (cfg_q && write_q)) ? '0 :
                   (dma_q && !write_q) ? IdxW'(txp_q) : IdxW'(len_q) + IdxW'(txp_q);
    // A DMA write's (§2.2.4.1, §2.2.7): 4 DW when the address needs it or PHE is on (PHE
    // covers 64-bit addresses), then its prefix (Posted sub-stream, PR_Sent_Counter reserved).
    // Its A is the prefix and header (tbuf DW d_a0 on), its P the payload from DW 8.
    d_hdw   = hdr4_q ? IdxW'(4) : IdxW'(3);
    d_a0    = IdxW'(8) - d_hdw - IdxW'(ide_q);
    d_aad_bytes = (phe_q != '0) ? (IdxW+3)'(18 - 32'(phe_q)) : (IdxW+3)'(4 * (32'(d_hdw) + 1));
    d_aad_beats = IdxW'((d_aad_bytes + (IdxW+3)'(15)) >> 4);
    d_p_bytes   = (IdxW+3)'(4 * 32'(tx_plen) + 32'(phe_flen));
    d_pay_beats = IdxW'((d_p_bytes + (IdxW+3)'(15)) >> 4);
    d_p     = feed_q - IdxW'(1) - d_aad_beats;
    dh0 = {1'b0, write_q, hdr4_q, 5'b00000, 1'b0, tc_q, 4'b0000, 1'b0, 1'b0, 2'b00, 2'b00,
           10'(len_q)};
    dh1 = {completer_id_i, write_q ? 8'd0 : tag_q, (len_q == LenW'(1)) ? 4'h0 : 4'hF, 4'hF};
    dh2 = hdr4_q ? addr_q[63:32] : {addr_q[31:2], 2'b00};
    dh3 = {addr_q[31:2], 2'b00};
    // A read carries PR_Sent_Counter-NPR (§6.33.5); for a write the field is reserved.
    dpfx = {IDE_PREFIX_BYTE0, write_q ? 8'd0 : tx_prn_q[str_q], stream_id_i[8*str_q +: 8],
            1'b0, write_q ? 3'(SUB_PR) : 3'(SUB_NPR), txp_q, 1'b1, tx_k_q[str_q][txs], tee_q};
    dma_hdr = {bswap32(dh3), bswap32(dh2), bswap32(dh1), bswap32(dh0)};
    phe_a        = '0;
    phe_cf       = '0;
    phe_text     = '0;
    phe_crc      = '0;
    if (PHE_SUPPORTED && phe_q != '0 && dma_q) begin
      // A DMA write being encrypted: header and payload in tbuf, the front in the clear.
      phe_a    = {96'd0, phe_a_hdr(tbuf_beat(IdxW'(4)), phe_q, 1'b1), tbuf_q[3]};
      phe_cf   = phe_front(tbuf_beat(IdxW'(4)), phe_q, 1'b1);
      phe_text = 128'({tbuf_beat(IdxW'(8) + IdxW'(4) * d_p),
                       (d_p == '0) ? ({80'd0, phe_cf} << (8 * (16 - 32'(phe_flen)))) :
                                     tbuf_beat(IdxW'(8) + IdxW'(4) * (d_p - IdxW'(1)))}
                      >> (8 * (16 - 32'(phe_flen))));
    end else if (PHE_SUPPORTED && phe_q != '0) begin
      phe_a    = {96'd0, phe_a_hdr(rbuf_beat(IdxW'(1)), phe_q, phe_be_q), rbuf_q[0]};
      phe_cf   = phe_front(rbuf_beat(IdxW'(1)), phe_q, phe_be_q);
      phe_text = 128'({rbuf_beat(pay_q + IdxW'(4) * p),
                       (p == '0) ? ({80'd0, phe_cf} << (8 * (16 - 32'(phe_flen)))) :
                                   rbuf_beat(pay_q + IdxW'(4) * (p - IdxW'(1)))}
                      >> (8 * (16 - 32'(phe_flen))));
    end
    if (PHE_SUPPORTED && phe_q != '0) begin
      phe_crc  = pcrc_front(phe_pf_q, phe_flen);
    end
    phe_mask     = ((64'd1 << (8 * (32'(phe_q) + 1))) - 64'd1) << 2;
    crc_n        = (4 * 32'(len_q) - 16 * 32'(cnt_q) >= 16) ? 5'd16 :
                   5'(4 * 32'(len_q) - 16 * 32'(cnt_q));
    tx_pay_beats = (tx_plen + IdxW'(3)) >> 2;
    tx_p         = feed_q - IdxW'(2);                      // Tx payload beat being fed
    hd           = ide_q ? IdxW'(1) : '0;
    // The completion's header (§2.2.9) and IDE prefix (§6.33.4).
    // A Configuration Request's completion: Byte Count 4, Lower Address 0 (§2.2.9).
    h0 = {(tx_plen == '0) ? 3'b000 : 3'b010, 5'b01010, 1'b0, tc_q, 1'b0, attr_q[2], 1'b0, 1'b0,
          1'b0, 1'b0, attr_q[1:0], 2'b00, (tx_plen == '0) ? 10'd0 : 10'(len_q)};
    h1 = {completer_id_i, ur_q ? 3'b001 : 3'b000, 1'b0, cfg_q ? 12'd4 : x_byte_count};
    h2 = {rid_q, tag_q, 1'b0, (ur_q || cfg_q) ? 7'd0 : x_lower_addr};
    // PR_Sent_Counter: the Posted Requests sent on the stream since its last Completion
    // (PR_Sent_Counter-CPL, §6.33.5).
    pfx = {IDE_PREFIX_BYTE0, tx_prs_q[str_q], stream_id_i[8*str_q +: 8],
           1'b0, 3'(SUB_CPL), txp_q, 1'b1, tx_k_q[str_q][1], tee_q};
    // Aggregation: a TLP's A (its prefix and header, or what PHE leaves of them) and its P
    // content (the PHE front, the payload, a last TLP's PCRC) as byte streams for the store.
    st_a_src = '0;
    st_len   = '0;
    st_o     = '0;
    st_n     = '0;
    st_d     = '0;
    st_win   = '0;
    if (AGG_SUPPORTED && state_q == StAggStore) begin
      st_a_src = (phe_q != '0) ? phe_a[159:0] :
                                 {rbuf_q[4], rbuf_q[3], rbuf_q[2], rbuf_q[1], rbuf_q[0]};
      st_len   = st_ph_q ? 12'(rx_pbytes) : 12'(aad_b_q);
      st_o     = (st_ph_q ? agg_pb_q[cur_sl] : 12'(agg_ab_q[cur_sl])) + st_i_q;
      st_n     = (st_len - st_i_q < 12'd16 - 12'(st_o[3:0])) ? st_len - st_i_q :
                                                                12'd16 - 12'(st_o[3:0]);
      st_d     = pay_q + IdxW'((32'(st_i_q) - 32'(phe_flen)) >> 2);
      if (32'(st_i_q) < 32'(phe_flen)) begin
        st_win = 128'((({48'd0, rbuf_beat(pay_q + IdxW'(4)), rbuf_beat(pay_q)} << (8 * 32'(phe_flen)))
                       | {256'd0, phe_cf}) >> (8 * 32'(st_i_q)));
      end else begin
        st_win = 128'({rbuf_beat(st_d + IdxW'(4)), rbuf_beat(st_d)} >>
                      (8 * ((32'(st_i_q) - 32'(phe_flen)) & 3)));
      end
    end
    u_hdr   = '0;
    u_fl    = '0;
    u_ln    = '0;
    u_pay   = '0;
    u_done  = '0;
    u_n     = '0;
    u_off   = '0;
    u_win   = '0;
    if (AGG_SUPPORTED && (state_q == StAggPcrc || state_q == StAggLoad ||
                          state_q == StAggParse)) begin
      // The unit's TLP rep_k_q, as held.
      u_hdr  = agg_hdr_q[32'(cur_sl) * AGG_MAX_TLPS + 32'(rep_k_q[2:0])];
      u_fl   = agg_fl_q[32'(cur_sl) * AGG_MAX_TLPS + 32'(rep_k_q[2:0])];
      u_ln   = agg_ln_q[32'(cur_sl) * AGG_MAX_TLPS + 32'(rep_k_q[2:0])];
      // Header DW 0 is rbuf DW 1; its Fmt[0] (4 DW header, wire bit 29) is byte 4 bit 5.
      u_pay  = IdxW'(1) + (u_hdr[37] ? IdxW'(4) : IdxW'(3));
      u_done = 12'd16 * 12'(rep_c_q - IdxW'(1));
      u_n    = (12'(4 * 32'(u_ln)) - u_done < 12'd16) ? 5'(12'(4 * 32'(u_ln)) - u_done) : 5'd16;
      // One window of the P store a clock: a TLP's front (or, after the last, the PCRC) at
      // rep_off_q, else 16 bytes of its payload (StAggPcrc step c >= 1, StAggLoad c >= 2).
      if (state_q == StAggPcrc) begin
        u_off = (rep_k_q == agg_n_q[cur_sl] || rep_c_q == '0) ? rep_off_q :
                rep_off_q + 12'(u_fl) + u_done;
      end else begin
        u_off = (rep_c_q <= IdxW'(1)) ? rep_off_q :
                rep_off_q + 12'(u_fl) + 12'd16 * 12'(rep_c_q - IdxW'(2));
      end
      u_win = agg_p_win(cur_sl, u_off);
    end
  end

  ///////////////////
  // Main process  //
  ///////////////////

  always_comb begin
    state_d    = state_q;
    rx_beat_d  = rx_beat_q;
    rx_bytes_d = rx_bytes_q;
    rx_long_d  = rx_long_q;
    ide_d      = ide_q;
    sub_d      = sub_q;
    kset_d     = kset_q;
    tee_d      = tee_q;
    prs_d      = prs_q;
    str_d      = str_q;
    write_d    = write_q;
    len_d      = len_q;
    pay_d      = pay_q;
    rid_d      = rid_q;
    tag_d      = tag_q;
    tc_d       = tc_q;
    attr_d     = attr_q;
    fbe_d      = fbe_q;
    lbe_d      = lbe_q;
    addr_d     = addr_q;
    poison_d   = poison_q;
    pcrc_d     = pcrc_q;
    pdue_d     = pdue_q;
    txp_d      = txp_q;
    crc_d      = crc_q;
    feed_d     = feed_q;
    drain_d    = drain_q;
    aad_b_d    = aad_b_q;
    cfg_d      = cfg_q;
    cfg_t1_d   = cfg_t1_q;
    cfg_tgt_d  = cfg_tgt_q;
    cfg_reg_d  = cfg_reg_q;
    ev_cfg_take = 1'b0;
    mbit_d     = mbit_q;
    unit_d     = unit_q;
    st_ph_d    = st_ph_q;
    st_i_d     = st_i_q;
    rep_d      = rep_q;
    rep_k_d    = rep_k_q;
    rep_off_d  = rep_off_q;
    rep_c_d    = rep_c_q;
    ev_agg_store = 1'b0;
    ev_agg_clear = 1'b0;
    ev_pr_member = 1'b0;
    aa_wr   = 1'b0;
    aa_idx  = '0;
    aa_data = '0;
    aa_be   = '0;
    ap_wr   = 1'b0;
    ap_idx  = '0;
    ap_data = '0;
    ap_be   = '0;
    cfg_mgmt_addr_o        = cfg_reg_q;
    cfg_mgmt_write_o       = 1'b0;
    cfg_mgmt_write_data_o  = rbuf_q[pay_q];
    cfg_mgmt_byte_enable_o = fbe_q;
    cfg_mgmt_read_o        = 1'b0;
    phe_d      = phe_q;
    phe_be_d   = phe_be_q;
    phe_pf_d   = phe_pf_q;
    phe_prev_d = phe_prev_q;
    key_d      = key_q;
    iv_d       = iv_q;
    tag_ok_d   = tag_ok_q;
    cnt_d      = cnt_q;
    rd_pend_d  = 1'b0;
    rd_idx_d   = rd_idx_q;
    ur_d       = ur_q;
    tx_dw_d    = tx_dw_q;
    tx_beat_d  = tx_beat_q;
    dma_d      = dma_q;
    hdr4_d     = hdr4_q;
    tx_o_d     = tx_o_q;
    mac_d      = mac_q;
    ev_dma_take = 1'b0;
    ev_dma_res  = 1'b0;
    ev_dma_code = DMA_NONE;
    ev_rd_sent  = 1'b0;
    ev_rd_end   = 1'b0;
    ev_unexp    = 1'b0;
    cplt_d      = cplt_q;
    cst_d       = cst_q;
    creq_d      = creq_q;
    ctag_d      = ctag_q;

    rx_ready_o = 1'b0;
    tx_valid_o = 1'b0;
    tx_data_o  = '0;
    tx_keep_o  = '0;
    tx_last_o  = 1'b0;
    key_rd_o     = 1'b0;
    key_stream_o = 3'(str_q);
    key_slot_o   = '0;
    tlp_poisoned_o = 1'b0;

    ev_fail        = 1'b0;
    ev_fail_reason = FailMac;
    ev_fail_sub    = sub_q;
    ev_fail_k      = kset_q;
    ev_fail_str    = str_q;
    ev_rx_ok       = 1'b0;
    ev_tx          = 1'b0;
    ev_misrouted   = 1'b0;
    ev_discard     = 1'b0;
    ev_plain       = 1'b0;
    ev_ur          = 1'b0;
    ev_malformed   = 1'b0;
    ev_pcrc        = 1'b0;
    ev_ctr_commit  = 1'b0;
    ev_tx_commit   = 1'b0;

    rb_wr   = 1'b0;
    rb_idx  = '0;
    rb_data = '0;
    rb_dwen = '0;
    tb_wr   = 1'b0;
    tb_idx  = '0;
    tb_data = '0;
    tb_dwen = '0;

    mem_we    = 1'b0;
    mem_re    = 1'b0;
    mem_addr  = ((dma_q || cplt_q) ? MemAw'(dma_src_q) : x_dw) + MemAw'(cnt_q);
    mem_wdata = '0;
    mem_be    = '0;

    aes_s_valid   = 1'b0;
    aes_s_kind    = KIND_HDR;
    aes_s_last    = 1'b0;
    aes_s_data    = '0;
    aes_s_keep    = '0;
    aes_s_decrypt = 1'b0;
    aes_s_tag     = '0;

    // Decode a received TLP (StParse) or a TLP of a checked unit (StAggParse) into the
    // request registers.
    if (state_q == StParse || state_q == StAggParse) begin
      ide_d    = p_ide;
      sub_d    = w_pfx[6:4];
      kset_d   = w_pfx[1];
      tee_d    = p_ide && w_pfx[0];
      prs_d    = w_pfx[23:16];
      str_d    = p_str;
      write_d  = p_data;
      len_d    = LenW'(p_len_ok ? p_len : 11'd1);
      pay_d    = p_hdr + (p_4dw ? IdxW'(4) : IdxW'(3));
      rid_d    = w_dw1[31:16];
      tag_d    = w_dw1[15:8];
      tc_d     = w_dw0[22:20];
      attr_d   = {w_dw0[18], w_dw0[13:12]};
      fbe_d    = w_dw1[3:0];
      lbe_d    = w_dw1[7:4];
      addr_d   = p_addr;
      poison_d = w_dw0[14];
      pcrc_d   = p_ide && w_pfx[3];
      pdue_d   = PCRC_SUPPORTED && p_ide && (p_data || p_phe != '0) && stream_pcrc_i[p_str];
      cfg_d    = p_cfg;
      cplt_d   = p_cplt;
      cst_d    = w_dw1[15:13];
      creq_d   = w_dw2[31:16];
      ctag_d   = w_dw2[15:8];
      cfg_t1_d = w_dw0[24];
      cfg_tgt_d = w_dw2[31:16];
      cfg_reg_d = w_dw2[11:2];
      txp_d    = 1'b0;
      phe_d    = p_phe;
      phe_be_d = p_phe_be;
      // A: the prefix and header, or with PHE the prefix, header bytes 0..6, the BE byte
      // unless encrypted and 7 - m bytes of address (hil.codec.ide_tlp.phe_split).
      aad_b_d  = (p_phe != '0) ? (IdxW+3)'(18 - 32'(p_phe) + (p_phe_be ? 0 : 1)) :
                                 (IdxW+3)'(4 * (32'(p_hdr) + (p_4dw ? 4 : 3)));
      ur_d     = !p_len_ok && !p_cplt;           // a read longer than one completion
      dma_d    = 1'b0;
    end

    unique case (state_q)
      // Wait for the first beat of a TLP.
      // Wait for the first beat of a TLP; while a checked unit's TLPs are being done, do the
      // next one instead (or, once all are done or the stream left Secure, empty its store).
      StIdle: begin
        rx_beat_d  = '0;
        rx_bytes_d = '0;
        rx_long_d  = 1'b0;
        if (rep_q) begin
          if (rep_k_q == agg_n_q[cur_sl] || !stream_secure_i[str_q]) begin
            rep_d        = 1'b0;
            ev_agg_clear = 1'b1;
          end else begin
            rep_c_d = '0;
            state_d = StAggLoad;
          end
        end else if (rx_valid_i) begin
          state_d = StRecv;
        end else if (DMA_SUPPORTED && dma_pend_q) begin
          state_d = StDmaSel;
        end
      end

      // Take beats until the last one; beats past the buffer are drained and the TLP dropped.
      StRecv: begin
        rx_ready_o = 1'b1;
        if (rx_valid_i) begin
          if (32'(rx_beat_q) < BufBeats) begin
            rb_wr   = 1'b1;
            rb_idx  = IdxW'(4 * 32'(rx_beat_q));
            rb_data = rx_data_i;
            rb_dwen = 4'hF;
            rx_beat_d = rx_beat_q + IdxW'(1);
          end else begin
            rx_long_d = 1'b1;
          end
          rx_bytes_d = rx_bytes_q + (IdxW+3)'(popcount16(rx_keep_i));
          if (rx_last_i) begin
            state_d = StParse;
          end
        end
      end

      // Decode. Malformed TLPs and TLPs this function does not take are dropped and counted;
      // an IDE TLP is first matched to a stream and its prefix checked (§6.33.4, §6.33.8).
      StParse: begin
        mbit_d   = w_pfx[2];
        unit_d   = 1'b0;
        state_d  = StIdle;
        if (rx_long_q || rx_bytes_q != p_bytes) begin
          ev_malformed = 1'b1;                     // the length does not match the header
        end else if (!p_mem && !(p_cfg && p_ide) && !p_cplt) begin
          ev_ur = 1'b1;                            // not a request taken here
        end else if (p_data && !p_len_ok) begin
          ev_malformed = 1'b1;                     // more payload than any we accept
        end else if (!p_ide && p_lk_drop) begin
          ev_discard = 1'b1;                       // non-IDE on a Link IDE TC (§6.33.4)
        end else if (!p_ide) begin
          state_d = (p_len_ok || p_cplt) ? StExec : StCplHdr;
        end else if (!p_str_hit) begin
          ev_misrouted = 1'b1;                     // Misrouted IDE TLP: no such stream
        end else if (p_phe != '0 && !p_4dw) begin
          ev_malformed = 1'b1;                     // PHE needs 64-bit addressing (§2.2.4.1)
        end else if (!stream_secure_i[p_str]) begin
          ev_discard = 1'b1;                       // Insecure: discarded, nothing logged
        end else begin
          // IDE checks on the prefix itself (§6.33.4, §6.33.8), then the key.
          ev_fail_sub = w_pfx[6:4];
          ev_fail_k   = w_pfx[1];
          ev_fail_str = p_str;
          if (w_pfx[6:4] > 3'(SUB_CPL)) begin
            ev_fail = 1'b1;
            ev_fail_reason = FailSubStream;
          end else if (w_pfx[6:4] != (p_cplt ? 3'(SUB_CPL) :
                                      (p_data && !p_cfg) ? 3'(SUB_PR) : 3'(SUB_NPR))) begin
            // A MWr is Posted; a MRd and both Configuration Requests are Non-Posted.
            ev_fail = 1'b1;
            ev_fail_reason = FailSubMismatch;
          end else if (p_cplt && !w_pfx[2]) begin
            // A DMA read is answered by one completion (it never crosses 64 bytes), so no unit
            // of completions can form: M = 0 on one is taken as a violation (README "DMA").
            ev_fail = 1'b1;
            ev_fail_reason = FailNoMac;
          end else if (!w_pfx[2] && !AGG_SUPPORTED) begin
            // §6.33.6: "If an IDE TLP without a MAC is received at a Receiver where
            // Aggregation is not supported, ... this is an IDE Check Failed error."
            ev_fail = 1'b1;
            ev_fail_reason = FailNoMac;
          end else if (p_open && w_pfx[1] != agg_k_q[p_sl] && !MUTANT_AGG_K_UNCHECKED) begin
            // §6.33.6: "If the K bit is to be toggled, it must only be toggled for the first
            // TLP of an aggregated unit"; "Receivers must check for violations of this rule".
            ev_fail = 1'b1;
            ev_fail_reason = FailAggregation;
          end else if ((p_open || !w_pfx[2]) && 32'(agg_n_q[p_sl]) == AGG_MAX_TLPS) begin
            // A ninth TLP: a unit is "up to the lesser of 8 TLPs" (§6.33.6).
            ev_fail = 1'b1;
            ev_fail_reason = FailAggregation;
          end else if (p_open &&
                       32'(agg_pdw_q[p_sl]) + (p_data ? 32'(p_len) : 0) > AGG_MAX_DW) begin
            // "the sum of the data payloads of all TLPs of an aggregated unit" <= 256 DW.
            ev_fail = 1'b1;
            ev_fail_reason = FailAggregation;
          end else if (w_pfx[3] &&
                       (!w_pfx[2] ||
                        !(PCRC_SUPPORTED && stream_pcrc_i[p_str] &&
                          (p_data || p_phe != '0 || (p_open && agg_pb_q[p_sl] != '0)))))
          begin
            // P = 1 where no PCRC is due: PCRC not enabled for the stream (or not built), or
            // a TLP (unit) without P content (§6.33.4: PCRC iff there is P content; with PHE
            // a read has some, the encrypted header fields), or a TLP of a unit without the
            // MAC ("the TLPs of an aggregated unit that do not include a MAC also must not
            // include PCRC").
            ev_fail = 1'b1;
            ev_fail_reason = FailPcrc;
          end else if (!w_pfx[2] && w_pfx[4] && 32'(w_pfx[23:16]) > rx_pr_q[p_str]) begin
            // A Non-Posted member's PR_Sent_Counter counts as it arrives (§6.33.5).
            ev_fail = 1'b1;
            ev_fail_reason = FailPrCounter;
          end else if (!w_pfx[2] || p_open) begin
            // A TLP of a unit: into the store; the last one then decrypts the unit.
            st_ph_d = 1'b0;
            st_i_d  = '0;
            state_d = StAggStore;
          end else begin
            state_d = StRxKey;
          end
        end
      end

      // Read the Rx key of (stream, sub-stream, K); the answer comes the next clock.
      StRxKey: begin
        key_rd_o   = 1'b1;
        key_slot_o = slot_code(sub_q[1:0], 1'b0, kset_q);
        if (key_rvalid_i) begin
          if (!key_go_i || rx_retired_q[str_q][sub_q[1:0]][kset_q]) begin
            ev_fail = 1'b1;                        // stopped, never armed, or replaced
            ev_fail_reason = FailKeySet;
            state_d = StIdle;
          end else begin
            key_d   = key_bytes(key_i);
            iv_d    = iv_bytes(rx_ctr_ld_q[str_q][sub_q[1:0]][kset_q] ?
                               rx_ctr_q[str_q][sub_q[1:0]][kset_q] : ifv_i);
            feed_d  = '0;
            drain_d = '0;
            state_d = StRxAes;
          end
        end
      end

      // Header beat, AAD beats (prefix + header), payload beats; plaintext comes back in place.
      StRxAes: begin
        begin
          aes_s_decrypt = 1'b1;
          if (32'(feed_q) <= 32'(aad_beats) + 32'(pay_beats)) begin
            aes_s_valid = 1'b1;
            aes_s_last  = (32'(feed_q) == 32'(aad_beats) + 32'(pay_beats));
            aes_s_tag   = rbuf_beat(pay_q + rx_plen);
            aes_s_tag[127:96] = '0;
            if (feed_q == '0) begin
              aes_s_kind = KIND_HDR;
            end else if (feed_q <= aad_beats) begin
              aes_s_kind = KIND_AAD;
              aes_s_data = unit_q ? agg_a_q[32'(cur_sl) * AggAW + 32'(feed_q) - 1] :
                           (phe_q == '0) ? rbuf_beat(IdxW'(4) * (feed_q - IdxW'(1))) :
                           (feed_q == IdxW'(1)) ? phe_a[127:0] : phe_a[255:128];
              aes_s_keep = keep_bytes(32'(32'(aad_bytes) - 16 * (32'(feed_q) - 1)));
            end else begin
              aes_s_kind = KIND_TEXT;
              aes_s_data = unit_q ? agg_p_q[32'(cur_sl) * AggPW + 32'(p)] :
                           (phe_q == '0) ? rbuf_beat(pay_q + IdxW'(4) * p) : phe_text;
              aes_s_keep = keep_bytes(32'(32'(p_bytes_all) - 16 * 32'(p)));
            end
            if (aes_s_ready) begin
              feed_d = feed_q + IdxW'(1);
            end
          end
          if (aes_m_valid && unit_q) begin
            // A unit: its plaintext goes back into its store, beat for beat.
            if (aes_m_last) begin
              tag_ok_d = aes_m_tag_ok;
              state_d  = StRxCheck;
            end else begin
              ap_wr   = 1'b1;
              ap_idx  = AggPIW'(32'(cur_sl) * AggPW + 32'(drain_q));
              ap_data = aes_m_data;
              ap_be   = aes_m_keep;
              drain_d = drain_q + IdxW'(1);
            end
          end else if (aes_m_valid) begin
            if (aes_m_last) begin
              tag_ok_d = aes_m_tag_ok;
              state_d  = StRxCheck;
              if (phe_q != '0) begin
                // PHE: the last payload beat, from the plaintext beat kept back.
                rb_wr   = 1'b1;
                rb_idx  = pay_q + IdxW'(4) * (drain_q - IdxW'(1));
                rb_data = 128'({128'd0, phe_prev_q} >> (8 * 32'(phe_flen)));
                rb_dwen = pay_dwen(drain_q - IdxW'(1), rx_plen);
              end
            end else if (phe_q != '0) begin
              // PHE: the first plaintext beat leads with the clear header fields; payload
              // beat d - 1 is the plaintext shifted back by the front's length.
              if (drain_q == '0) begin
                phe_pf_d = aes_m_data[47:0];
              end else begin
                rb_wr   = 1'b1;
                rb_idx  = pay_q + IdxW'(4) * (drain_q - IdxW'(1));
                rb_data = 128'({aes_m_data, phe_prev_q} >> (8 * 32'(phe_flen)));
                rb_dwen = pay_dwen(drain_q - IdxW'(1), rx_plen);
              end
              phe_prev_d = aes_m_data;
              drain_d    = drain_q + IdxW'(1);
            end else begin
              rb_wr   = 1'b1;
              rb_idx  = pay_q + IdxW'(4) * drain_q;
              rb_data = aes_m_data;
              rb_dwen = {|aes_m_keep[15:12], |aes_m_keep[11:8], |aes_m_keep[7:4],
                         |aes_m_keep[3:0]};
              drain_d = drain_q + IdxW'(1);
            end
          end
        end
      end

      // MAC, then the PR_Sent_Counter rule (§6.33.5): an NPR may not claim more Posted
      // Requests than were received since the last one.
      StRxCheck: begin
        state_d = StIdle;
        if (!tag_ok_q && !MUTANT_SKIP_MAC_CHECK) begin
          ev_fail = 1'b1;
          ev_fail_reason = FailMac;
        end else if ((sub_q == 3'(SUB_NPR) && 32'(prs_q) > rx_pr_q[str_q]) ||
                     (sub_q == 3'(SUB_CPL) && 32'(prs_q) > rx_prc_q[str_q])) begin
          // An NPR, or a Completion, may not claim more Posted Requests than were received
          // since the last one (PR_Received_Counter-NPR / -CPL, §6.33.5).
          ev_fail = 1'b1;
          ev_fail_reason = FailPrCounter;
        end else if (unit_q) begin
          // A unit passed: one invocation consumed; its PCRC, then its TLPs one by one, each
          // counted as received when it is done.
          ev_ctr_commit = 1'b1;
          crc_d         = PCRC_SEED;
          rep_k_d       = '0;
          rep_off_d     = '0;
          rep_c_d       = '0;
          if (PCRC_SUPPORTED && stream_pcrc_i[str_q] &&
              agg_pb_q[cur_sl] != (pcrc_q ? 12'd4 : 12'd0)) begin
            state_d = StAggPcrc;
          end else begin
            rep_d   = 1'b1;
            state_d = StAggLoad;
          end
        end else begin
          ev_rx_ok      = 1'b1;
          ev_ctr_commit = 1'b1;
          cnt_d         = '0;
          crc_d         = (phe_q != '0) ? phe_crc : PCRC_SEED;
          state_d       = ur_q ? StCplHdr : (pdue_q ? StRxPcrc : StExec);
          if (phe_q != '0 && !MUTANT_PHE_WIRE_HEADER) begin
            // The complete header reconstructed (§6.33.4): the decrypted byte enables and
            // Address[msb:2] in place of the ciphertext the header carried.
            addr_d = (addr_q & ~phe_mask) |
                     ((64'(phe_hidden(phe_pf_q, phe_q, phe_be_q)) << 2) & phe_mask);
            if (phe_be_q) begin
              fbe_d = phe_pf_q[3:0];
              lbe_d = phe_pf_q[7:4];
            end
          end
          if (phe_q != '0) begin
            if (pdue_q && !write_q && !ur_q) begin
              // A read's P content is the front alone: its PCRC follows at once.
              if ((pcrc_q && rbuf_q[pay_q] == pcrc_dw(phe_crc)) || MUTANT_SKIP_PCRC_CHECK) begin
                state_d = StExec;
              end else begin
                ev_pcrc = 1'b1;
                state_d = StIdle;
              end
            end
          end
        end
      end

      // PCRC over the decrypted payload, then the decrypted PCRC compared (§6.33.4). A TLP
      // that passed the MAC but whose PCRC is wrong or missing is PCRC Check Failed: reported
      // and not used ("strongly recommended that the corrupted data not be used"); the stream
      // stays Secure (PCRC Check Failed is not among the §6.33.8 causes of Insecure).
      StRxPcrc: begin
        crc_d = pcrc_update(crc_q, rbuf_beat(pay_q + IdxW'(4) * IdxW'(cnt_q)), crc_n);
        cnt_d = cnt_q + LenW'(1);
        if (crc_n != 5'd16 || 16 * (32'(cnt_q) + 1) == 4 * 32'(len_q)) begin
          if ((pcrc_q && rbuf_q[pay_q + IdxW'(len_q)] == pcrc_dw(crc_d)) ||
              MUTANT_SKIP_PCRC_CHECK) begin
            state_d = StExec;
          end else begin
            ev_pcrc = 1'b1;
            state_d = StIdle;
          end
        end
      end

      // The request is good IDE-wise (or plain): BAR0, TDISP rules, then act.
      StExec: begin
        cnt_d = '0;
        if (!ide_q) begin
          ev_plain = 1'b1;
        end
        if (cplt_q) begin
          state_d = StCplRx;
        end else if (cfg_q) begin
          // Selective IDE for Configuration Requests (§6.33.4): "Configuration Requests
          // associated with a Selective IDE Stream will be received at an Upstream Port as
          // Type 1"; taken "provided the Target RID is an implemented Function", else UR.
          // Once one was taken on a stream, those on other IDE streams are discarded.
          if (cfg_held_q && cfg_str_q != str_q) begin
            ev_discard = 1'b1;
            state_d    = StIdle;
          end else if (!CFG_IDE_SUPPORTED || stream_link_i[str_q] || !cfg_t1_q ||
                       cfg_tgt_q != completer_id_i) begin
            ev_ur   = 1'b1;
            ur_d    = 1'b1;
            state_d = StCplHdr;
          end else begin
            ev_cfg_take = 1'b1;
            state_d     = write_q ? StCplHdr : StCfgRd;  // a write: its completion first
          end
        end else begin
          if (poison_q && x_bar_hit) begin
            tlp_poisoned_o = 1'b1;                 // §11.2: may send the TDI to ERROR
          end
          if (x_accept) begin
            state_d = write_q ? StWrite : StRead;
          end else begin
            ev_ur   = 1'b1;
            ur_d    = 1'b1;
            state_d = write_q ? StIdle : StCplHdr; // posted: dropped; non-posted: UR
          end
        end
      end

      // The hard IP reads the register (its own or, in the user window, ours over cfg_ext);
      // the value is the completion's payload.
      StCfgRd: begin
        cfg_mgmt_read_o = 1'b1;
        if (cfg_mgmt_read_write_done_i) begin
          tb_wr   = 1'b1;
          tb_idx  = IdxW'(4);
          tb_data = {96'd0, cfg_mgmt_read_data_i};
          tb_dwen = 4'b0001;
          txp_d   = PCRC_SUPPORTED && stream_pcrc_i[str_q] && !MUTANT_NO_TX_PCRC;
          cnt_d   = '0;
          crc_d   = PCRC_SEED;
          state_d = (PCRC_SUPPORTED && stream_pcrc_i[str_q] && !MUTANT_NO_TX_PCRC) ?
                    StTxPcrc : StCplHdr;
        end
      end

      // "For a Configuration Request that stops IDE, the Port must first return the
      // Configuration Completion as an IDE TLP, and then stop IDE" (§6.33.4): the Cpl was
      // encrypted before the write, so it stays an IDE TLP whatever the write does to the
      // stream; it is sent once the write is done, so that a requester that has its
      // Completion finds the write in effect.
      StCfgWr: begin
        cfg_mgmt_write_o = 1'b1;
        if (cfg_mgmt_read_write_done_i) begin
          state_d = StSend;
        end
      end

      // One DW per clock, byte enables on the first and last DW (§2.2.5).
      StWrite: begin
        mem_we    = 1'b1;
        mem_wdata = rbuf_q[pay_q + IdxW'(cnt_q)];
        mem_be    = cplt_q ? 4'hF :
                    (cnt_q == '0) ? fbe_q :
                    (cnt_q == len_q - LenW'(1)) ? lbe_q : 4'hF;
        cnt_d     = cnt_q + LenW'(1);
        if (cnt_q == len_q - LenW'(1)) begin
          state_d     = StIdle;
          ev_rd_end   = cplt_q;                    // a DMA read's data is in memory
          ev_dma_res  = cplt_q;
          ev_dma_code = DMA_READ_DONE;
        end
      end

      // A Completion (§2.2.9) for the DMA read: it must answer the outstanding read (its Tag
      // and Requester ID) on the stream the read went on ("For a Completion, the Stream ID must
      // match those in the corresponding Non-Posted Request", §6.33.4), and, on a Selective
      // stream other than the Default Stream, come from a Completer ID within the RID
      // association: "A Requester receiving a Completion on a Selective IDE Stream other than
      // the Default Stream must handle it as an Unexpected Completion if the Completer ID field
      // of the Completion is less than the RID Base or greater than the RID Limit". Else it is
      // an Unexpected Completion (§2.3.2): dropped and counted, the read still waits. A status
      // other than Successful Completion, or a length other than the read's, ends the read
      // with DMA_READ_ERROR; a good one goes to memory (StWrite).
      StCplRx: begin
        state_d = StIdle;
        if (!rd_wait_q || ctag_q != rd_tag_q || creq_q != completer_id_i ||
            ide_q != rd_ide_q || (ide_q && str_q != rd_str_q) ||
            (ide_q && !stream_default_i[str_q] && !stream_link_i[str_q] &&
             !MUTANT_CPL_RID_UNCHECKED &&
             (rid_q < stream_rid_base_i[16*str_q +: 16] ||
              rid_q > stream_rid_limit_i[16*str_q +: 16]))) begin
          ev_unexp = 1'b1;
        end else if (cst_q != 3'b000 || !write_q || len_q != rd_len_q) begin
          ev_rd_end   = 1'b1;
          ev_dma_res  = 1'b1;
          ev_dma_code = DMA_READ_ERROR;
        end else begin
          state_d = StWrite;
        end
      end

      // Synchronous reads: the data of read n lands in tbuf the clock after.
      StRead: begin
        if (cnt_q < len_q) begin
          mem_re    = 1'b1;
          rd_pend_d = 1'b1;
          rd_idx_d  = cnt_q;
          cnt_d     = cnt_q + LenW'(1);
        end else if (!rd_pend_q && dma_q) begin
          // A DMA write: its PCRC (after the PHE front, padded as a receiver pads it), header.
          cnt_d   = '0;
          crc_d   = (phe_q != '0) ? pcrc_front(phe_front(dma_hdr, phe_q, 1'b1), phe_flen) :
                                    PCRC_SEED;
          state_d = txp_q ? StTxPcrc : StDmaHdr;
        end else if (!rd_pend_q) begin
          // A completion with data on a stream with PCRC Enable gets a PCRC (§6.33.4).
          txp_d   = PCRC_SUPPORTED && ide_q && stream_pcrc_i[str_q] && !MUTANT_NO_TX_PCRC;
          cnt_d   = '0;
          crc_d   = PCRC_SEED;
          state_d = (PCRC_SUPPORTED && ide_q && stream_pcrc_i[str_q] && !MUTANT_NO_TX_PCRC) ?
                    StTxPcrc : StCplHdr;
        end
      end

      // PCRC of the plaintext payload (after the prefix and 3 DW header), appended after it.
      StTxPcrc: begin
        crc_d = pcrc_update(crc_q, tbuf_beat((dma_q ? IdxW'(8) : IdxW'(4)) +
                                             IdxW'(4) * IdxW'(cnt_q)), crc_n);
        cnt_d = cnt_q + LenW'(1);
        if (crc_n != 5'd16 || 16 * (32'(cnt_q) + 1) == 4 * 32'(len_q)) begin
          tb_wr   = 1'b1;
          tb_idx  = (dma_q ? IdxW'(8) : IdxW'(4)) + IdxW'(len_q);
          tb_data = {96'd0, pcrc_dw(crc_d)};
          tb_dwen = 4'b0001;
          cnt_d   = '0;
          state_d = dma_q ? StDmaHdr : StCplHdr;
        end
      end

      // Prefix and header of the completion (§2.2.9): CplD with the data read, or Cpl with
      // status UR. Protected on the request's stream, Completion sub-stream, T as requested.
      StCplHdr: begin
        begin
          tb_wr   = 1'b1;
          tb_idx  = '0;
          tb_dwen = ide_q ? 4'hF : 4'h7;
          tb_data = ide_q ? {bswap32(h2), bswap32(h1), bswap32(h0), bswap32(pfx)} :
                            {32'd0, bswap32(h2), bswap32(h1), bswap32(h0)};
          tx_dw_d   = hd + IdxW'(3) + tx_plen + (ide_q ? IdxW'(MAC_DW) : '0);
          tx_beat_d = '0;
          tx_o_d    = '0;
          if (!ide_q) begin
            state_d = StSend;
          end else if (!stream_secure_i[str_q]) begin
            ev_discard = 1'b1;                     // the stream went Insecure: dropped
            state_d    = StIdle;
          end else begin
            state_d = StTxKey;
          end
        end
      end

      StTxKey: begin
        key_rd_o   = 1'b1;
        key_slot_o = slot_code(txs, 1'b1, tx_k_q[str_q][txs]);
        if (key_rvalid_i) begin
          if (!key_go_i) begin
            ev_discard  = 1'b1;                    // no armed Tx key: nothing is sent
            ev_dma_res  = dma_q;
            ev_dma_code = DMA_DISCARDED;
            state_d     = StIdle;
          end else begin
            key_d   = key_bytes(key_i);
            iv_d    = iv_bytes(tx_ctr_ld_q[str_q][txs][tx_k_q[str_q][txs]] ?
                               tx_ctr_q[str_q][txs][tx_k_q[str_q][txs]] : ifv_i);
            feed_d  = '0;
            drain_d = '0;
            state_d = StTxAes;
          end
        end
      end

      // AAD = prefix + 3 DW header (one beat); payload beats are encrypted in place and the
      // tag goes right after the payload.
      StTxAes: begin
        if (dma_q) begin
          // A DMA write: A = the prefix and header (or what PHE leaves of them), P = the PHE
          // front then the payload and PCRC; the ciphertext goes back in place, the MAC after.
          if (32'(feed_q) <= 32'(d_aad_beats) + 32'(d_pay_beats)) begin
            aes_s_valid = 1'b1;
            aes_s_last  = (32'(feed_q) == 32'(d_aad_beats) + 32'(d_pay_beats));
            if (feed_q == '0) begin
              aes_s_kind = KIND_HDR;
            end else if (feed_q <= d_aad_beats) begin
              aes_s_kind = KIND_AAD;
              aes_s_data = (phe_q == '0) ? tbuf_beat(d_a0 + IdxW'(4) * (feed_q - IdxW'(1))) :
                           (feed_q == IdxW'(1)) ? phe_a[127:0] : phe_a[255:128];
              aes_s_keep = keep_bytes(32'(32'(d_aad_bytes) - 16 * (32'(feed_q) - 1)));
            end else begin
              aes_s_kind = KIND_TEXT;
              aes_s_data = (phe_q == '0) ? tbuf_beat(IdxW'(8) + IdxW'(4) * d_p) : phe_text;
              aes_s_keep = keep_bytes(32'(32'(d_p_bytes) - 16 * 32'(d_p)));
            end
            if (aes_s_ready) begin
              feed_d = feed_q + IdxW'(1);
            end
          end
          if (aes_m_valid) begin
            tb_wr = 1'b1;
            if (aes_m_last) begin
              ev_tx_commit = 1'b1;
              cnt_d        = '0;
              if (phe_q != '0) begin
                // The last payload beat from the ciphertext beat kept back; the MAC waits.
                tb_idx  = IdxW'(8) + IdxW'(4) * (drain_q - IdxW'(1));
                tb_data = 128'({128'd0, phe_prev_q} >> (8 * 32'(phe_flen)));
                tb_dwen = pay_dwen(drain_q - IdxW'(1), tx_plen);
                mac_d   = aes_m_data[95:0];
                state_d = StDmaFin;
              end else begin
                tb_idx  = IdxW'(8) + tx_plen;
                tb_data = aes_m_data;
                tb_dwen = 4'h7;
                state_d = StSend;
              end
            end else if (phe_q != '0) begin
              // The first ciphertext beat leads with the encrypted header fields (they go into
              // the header in StDmaFin); payload beat d - 1 is the ciphertext shifted back.
              if (drain_q == '0) begin
                tb_wr    = 1'b0;
                phe_pf_d = aes_m_data[47:0];
              end else begin
                tb_idx  = IdxW'(8) + IdxW'(4) * (drain_q - IdxW'(1));
                tb_data = 128'({aes_m_data, phe_prev_q} >> (8 * 32'(phe_flen)));
                tb_dwen = pay_dwen(drain_q - IdxW'(1), tx_plen);
              end
              phe_prev_d = aes_m_data;
              drain_d    = drain_q + IdxW'(1);
            end else begin
              tb_idx  = IdxW'(8) + IdxW'(4) * drain_q;
              tb_data = aes_m_data;
              tb_dwen = {|aes_m_keep[15:12], |aes_m_keep[11:8], |aes_m_keep[7:4],
                         |aes_m_keep[3:0]};
              drain_d = drain_q + IdxW'(1);
            end
          end
        end else begin
          if (32'(feed_q) <= 1 + 32'(tx_pay_beats)) begin
            aes_s_valid = 1'b1;
            aes_s_last  = (32'(feed_q) == 1 + 32'(tx_pay_beats));
            if (feed_q == '0) begin
              aes_s_kind = KIND_HDR;
            end else if (feed_q == IdxW'(1)) begin
              aes_s_kind = KIND_AAD;
              aes_s_data = tbuf_beat('0);
              aes_s_keep = 16'hFFFF;
            end else begin
              aes_s_kind = KIND_TEXT;
              aes_s_data = tbuf_beat(IdxW'(4) + IdxW'(4) * tx_p);
              aes_s_keep = keep_bytes(32'(4 * (32'(tx_plen) - 4 * 32'(tx_p))));
            end
            if (aes_s_ready) begin
              feed_d = feed_q + IdxW'(1);
            end
          end
          if (aes_m_valid) begin
            tb_wr = 1'b1;
            if (aes_m_last) begin
              tb_idx  = IdxW'(4) + tx_plen;
              tb_data = aes_m_data;
              tb_dwen = 4'h7;
              ev_tx_commit = 1'b1;
              // A Configuration Write's Cpl is protected now, with the stream's keys as
              // they are, and sent once the write is done (below).
              state_d = (cfg_q && write_q && !ur_q) ? StCfgWr : StSend;
            end else begin
              tb_idx  = IdxW'(4) + IdxW'(4) * drain_q;
              tb_data = aes_m_data;
              tb_dwen = {|aes_m_keep[15:12], |aes_m_keep[11:8], |aes_m_keep[7:4],
                         |aes_m_keep[3:0]};
              drain_d = drain_q + IdxW'(1);
            end
          end
        end
      end

      // Four DWs per beat.
      StSend: begin
        tx_valid_o = 1'b1;
        tx_data_o  = tbuf_beat(tx_o_q + IdxW'(4) * tx_beat_q);
        tx_keep_o  = keep_bytes(32'(4 * (32'(tx_dw_q) - 4 * 32'(tx_beat_q))));
        tx_last_o  = (4 * (32'(tx_beat_q) + 1) >= 32'(tx_dw_q));
        if (tx_ready_i) begin
          tx_beat_d = tx_beat_q + IdxW'(1);
          if (tx_last_o) begin
            ev_tx       = 1'b1;
            ev_dma_res  = dma_q && write_q;        // a read: its completion decides
            ev_rd_sent  = dma_q && !write_q;
            ev_dma_code = ide_q ? DMA_SENT_IDE : DMA_SENT_PLAIN;
            state_d     = StIdle;
          end
        end
      end

      // Aggregation: the TLP's A, then its P content, into its unit store, up to 16 bytes a
      // clock (as many as fit in the beat being filled). A TLP without a MAC is then held (its
      // PR_Sent_Counter counted, §6.33.5); the last one goes on to decrypt the unit.
      StAggStore: begin
        if (!st_ph_q) begin
          aa_wr   = (st_n != '0);
          aa_idx  = AggAIW'(32'(cur_sl) * AggAW + 32'(st_o >> 4));
          aa_data = 128'(st_a_src >> (8 * 32'(st_i_q))) << (8 * 32'(st_o[3:0]));
          aa_be   = keep_bytes(32'(st_n)) << st_o[3:0];
          st_i_d  = st_i_q + st_n;
          if (st_i_q + st_n >= st_len) begin
            st_ph_d = 1'b1;
            st_i_d  = '0;
          end
        end else begin
          ap_wr   = (st_n != '0);
          ap_idx  = AggPIW'(32'(cur_sl) * AggPW + 32'(st_o >> 4));
          ap_data = st_win << (8 * 32'(st_o[3:0]));
          ap_be   = keep_bytes(32'(st_n)) << st_o[3:0];
          st_i_d  = st_i_q + st_n;
          if (st_i_q + st_n >= st_len) begin
            ev_agg_store = 1'b1;
            ev_pr_member = !mbit_q;
            unit_d       = mbit_q;
            // The unit's key set is its first TLP's (§6.33.6: K toggles only there).
            if (agg_n_q[cur_sl] != '0) begin
              kset_d = agg_k_q[cur_sl];
            end
            state_d      = mbit_q ? StRxKey : StIdle;
          end
        end
      end

      // The unit's PCRC (§6.33.4): one over all its P content, each TLP's PHE front padded to
      // 64 bits with leading zeros; it follows the last TLP's P content. A wrong or missing
      // one is PCRC Check Failed: no TLP of the unit is used, the stream stays Secure.
      StAggPcrc: begin
        if (rep_k_q == agg_n_q[cur_sl]) begin
          if ((pcrc_q && u_win[31:0] == pcrc_dw(crc_q)) ||
              MUTANT_SKIP_PCRC_CHECK) begin
            rep_d     = 1'b1;
            rep_k_d   = '0;
            rep_off_d = '0;
            rep_c_d   = '0;
            state_d   = StAggLoad;
          end else begin
            ev_pcrc      = 1'b1;
            ev_agg_clear = 1'b1;
            state_d      = StIdle;
          end
        end else if (rep_c_q == '0) begin
          if (u_fl != '0) begin
            crc_d = pcrc_update(crc_q,
                                {80'd0, u_win[47:0] &
                                        ((48'd1 << (8 * 32'(u_fl))) - 48'd1)}
                                    << (8 * (8 - 32'(u_fl))),
                                5'd8);
          end
          rep_c_d = IdxW'(1);
        end else begin
          crc_d = pcrc_update(crc_q, u_win, u_n);
          if (u_done + 12'd16 >= 12'(4 * 32'(u_ln))) begin
            rep_k_d   = rep_k_q + 4'd1;
            rep_off_d = rep_off_q + 12'(u_fl) + 12'(4 * 32'(u_ln));
            rep_c_d   = '0;
          end else begin
            rep_c_d = rep_c_q + IdxW'(1);
          end
        end
      end

      // The unit's next TLP into rbuf: prefix and header as received, its decrypted front
      // (PHE) aside, its decrypted payload after the header, four DWs a clock.
      StAggLoad: begin
        rb_wr = 1'b1;
        if (rep_c_q == '0) begin
          rb_idx  = '0;
          rb_data = u_hdr[127:0];
          rb_dwen = 4'hF;
        end else if (rep_c_q == IdxW'(1)) begin
          rb_idx   = IdxW'(4);
          rb_data  = {96'd0, u_hdr[159:128]};
          rb_dwen  = 4'b0001;
          phe_pf_d = u_win[47:0];
        end else begin
          rb_idx  = u_pay + IdxW'(4) * (rep_c_q - IdxW'(2));
          rb_data = u_win;
          rb_dwen = pay_dwen(rep_c_q - IdxW'(2), IdxW'(u_ln));
        end
        rep_c_d = rep_c_q + IdxW'(1);
        if (rep_c_q != '0 && 4 * (32'(rep_c_q) - 1) >= 32'(u_ln)) begin
          state_d = StAggParse;
        end
      end

      // Decoded by the shared block above; the stream and Sub-Stream stay the unit's. With
      // PHE the clear header is rebuilt from the decrypted front, as in StRxCheck.
      StAggParse: begin
        str_d     = str_q;
        sub_d     = sub_q;
        ev_rx_ok  = 1'b1;
        cnt_d     = '0;
        rep_k_d   = rep_k_q + 4'd1;
        rep_off_d = rep_off_q + 12'(u_fl) + 12'(4 * 32'(u_ln));
        state_d   = p_len_ok ? StExec : StCplHdr;
        if (p_phe != '0 && !MUTANT_PHE_WIRE_HEADER) begin
          addr_d = (p_addr & ~p_phe_mask) |
                   ((64'(phe_hidden(phe_pf_q, p_phe, p_phe_be)) << 2) & p_phe_mask);
          if (p_phe_be) begin
            fbe_d = phe_pf_q[3:0];
            lbe_d = phe_pf_q[7:4];
          end
        end
      end

      // A DMA write: its stream (above), then its payload from BAR0 memory (StRead). Refused
      // (DMA_STATUS says why, nothing is sent): a length of 0, past MAX_PAYLOAD_DW or past
      // the memory, or a write that would cross a 4 KB boundary (§2.2.7); Bus Master Enable clear (§7.5.1.1.3: the Function "is not permitted to
      // issue any Memory or I/O Requests"); 245 Posted Requests sent on the stream since its
      // last Completion, or since the stream became Secure (no NPR is sent: PR_Sent_Counter-NPR
      // only grows), as §6.33.5 wants an IDE Sync Message then, which this path does not send. On an enabled stream that is not Secure the write is discarded (§6.33.4: "the
      // Transmitter must instead discard the TLP"; also when Link IDE is enabled: "must not
      // use Link IDE for the TLP").
      StDmaSel: begin
        ev_dma_take = 1'b1;
        dma_d    = 1'b1;
        ide_d    = s_ide;
        str_d    = s_str;
        sub_d    = dma_rd_q ? 3'(SUB_NPR) : 3'(SUB_PR);
        tc_d     = dma_tc_q;
        tee_d    = s_ide && dma_t_q;
        write_d  = !dma_rd_q;
        tag_d    = dma_tag_q;
        cplt_d   = 1'b0;
        len_d    = LenW'(dma_len_q);
        addr_d   = dma_addr_q;
        attr_d   = '0;
        cfg_d    = 1'b0;
        ur_d     = 1'b0;
        cnt_d    = '0;
        phe_d    = (PHE_SUPPORTED && s_ide) ? stream_phe_i[4*s_str +: 3] : '0;
        phe_be_d = 1'b1;
        hdr4_d   = (dma_addr_q[63:32] != '0) || (PHE_SUPPORTED && s_ide &&
                                                  stream_phe_i[4*s_str +: 3] != '0);
        // A PCRC where there is P content: a write's payload; a read's PHE front alone.
        txp_d    = PCRC_SUPPORTED && s_ide && stream_pcrc_i[s_str] && !MUTANT_NO_TX_PCRC &&
                   (!dma_rd_q || (PHE_SUPPORTED && stream_phe_i[4*s_str +: 3] != '0));
        state_d  = StIdle;
        ev_dma_res = 1'b1;
        if (dma_len_q == '0 || 32'(dma_len_q) > MAX_PAYLOAD_DW ||
            32'(dma_src_q) + 32'(dma_len_q) > MemDw ||
            32'(dma_addr_q[11:0]) + 4 * 32'(dma_len_q) > 4096 ||
            (dma_rd_q && 32'(dma_addr_q[5:0]) + 4 * 32'(dma_len_q) > 64)) begin
          ev_dma_code = DMA_BAD_REQUEST;
        end else if (!bus_master_i) begin
          ev_dma_code = DMA_NO_BUS_MASTER;
        end else if (s_ide && !stream_secure_i[s_str]) begin
          ev_discard  = 1'b1;
          ev_dma_code = DMA_DISCARDED;
        end else if (s_ide && !dma_rd_q &&
                     (tx_prs_q[s_str] >= 8'd245 || tx_prn_q[s_str] >= 8'd245)) begin
          ev_dma_code = DMA_SYNC_DUE;
        end else begin
          ev_dma_res = 1'b0;
          state_d    = dma_rd_q ? StDmaHdr : StRead;  // a read has no payload to fetch
        end
      end

      // The prefix and header: header DWs 4..7 (a 3 DW header after the prefix in DW 4), then
      // the prefix of a 4 DW header in DW 3. Sent from d_a0 (the prefix, or the header).
      StDmaHdr: begin
        tb_wr = 1'b1;
        cnt_d = cnt_q + LenW'(1);
        if (cnt_q == '0) begin
          tb_idx  = IdxW'(4);
          tb_data = hdr4_q ? dma_hdr : {bswap32(dh2), bswap32(dh1), bswap32(dh0), bswap32(dpfx)};
          tb_dwen = 4'hF;
        end else if (cnt_q == LenW'(1)) begin
          tb_idx    = IdxW'(3);
          tb_data   = {96'd0, bswap32(dpfx)};
          tb_dwen   = 4'b0001;
          tx_o_d    = d_a0;
          tx_dw_d   = IdxW'(ide_q) + d_hdw + tx_plen + (ide_q ? IdxW'(MAC_DW) : '0);
          tx_beat_d = '0;
          feed_d    = '0;
          drain_d   = '0;
          if (write_q || !txp_q) begin
            state_d = ide_q ? StTxKey : StSend;
          end
        end else begin
          // A read's PCRC: its P content is the PHE front alone, padded to 64 bits.
          tb_idx  = IdxW'(8);
          tb_data = {96'd0, pcrc_dw(pcrc_front(phe_front(dma_hdr, phe_q, 1'b1), phe_flen))};
          tb_dwen = 4'b0001;
          state_d = StTxKey;
        end
      end

      // PHE: the header gets the encrypted BE byte and Address[msb:2]; then the MAC.
      StDmaFin: begin
        tb_wr = 1'b1;
        cnt_d = cnt_q + LenW'(1);
        if (cnt_q == '0) begin
          tb_idx  = IdxW'(4);
          tb_data = phe_put(tbuf_beat(IdxW'(4)), phe_pf_q, phe_q, 1'b1);
          tb_dwen = 4'hF;
        end else begin
          tb_idx  = IdxW'(8) + tx_plen;
          tb_data = {32'd0, mac_q};
          tb_dwen = 4'h7;
          state_d = StSend;
        end
      end

      default: state_d = StIdle;
    endcase

  end

  ///////////////////
  // AES engine    //
  ///////////////////

  aes_gcm #(
    .OUT_DEPTH(32)
  ) u_aes_gcm (
    .clk_i,
    .rst_ni,
    .s_valid_i  (aes_s_valid),
    .s_ready_o  (aes_s_ready),
    .s_kind_i   (aes_s_kind),
    .s_last_i   (aes_s_last),
    .s_data_i   (aes_s_data),
    .s_keep_i   (aes_s_keep),
    .s_key_i    (key_q),
    .s_iv_i     (iv_q),
    .s_decrypt_i(aes_s_decrypt),
    .s_tag96_i  (1'b1),
    .s_tag_i    (aes_s_tag),
    .m_valid_o  (aes_m_valid),
    .m_ready_i  (1'b1),
    .m_data_o   (aes_m_data),
    .m_keep_o   (aes_m_keep),
    .m_last_o   (aes_m_last),
    .m_tag_ok_o (aes_m_tag_ok)
  );

  ///////////////
  // Registers //
  ///////////////

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_fsm
    if (!rst_ni) begin
      state_q    <= StIdle;
      rx_beat_q  <= '0;
      rx_bytes_q <= '0;
      rx_long_q  <= 1'b0;
      ide_q      <= 1'b0;
      sub_q      <= '0;
      kset_q     <= 1'b0;
      tee_q      <= 1'b0;
      prs_q      <= '0;
      str_q      <= '0;
      write_q    <= 1'b0;
      len_q      <= '0;
      pay_q      <= '0;
      rid_q      <= '0;
      tag_q      <= '0;
      tc_q       <= '0;
      attr_q     <= '0;
      fbe_q      <= '0;
      lbe_q      <= '0;
      addr_q     <= '0;
      poison_q   <= 1'b0;
      pcrc_q     <= 1'b0;
      pdue_q     <= 1'b0;
      txp_q      <= 1'b0;
      crc_q      <= '0;
      feed_q     <= '0;
      drain_q    <= '0;
      aad_b_q    <= '0;
      cfg_q      <= 1'b0;
      cfg_t1_q   <= 1'b0;
      cfg_tgt_q  <= '0;
      cfg_reg_q  <= '0;
      phe_q      <= '0;
      phe_be_q   <= 1'b0;
      phe_pf_q   <= '0;
      phe_prev_q <= '0;
      key_q      <= '0;
      iv_q       <= '0;
      tag_ok_q   <= 1'b0;
      cnt_q      <= '0;
      rd_pend_q  <= 1'b0;
      rd_idx_q   <= '0;
      ur_q       <= 1'b0;
      tx_dw_q    <= '0;
      tx_beat_q  <= '0;
      mbit_q     <= 1'b0;
      unit_q     <= 1'b0;
      st_ph_q    <= 1'b0;
      st_i_q     <= '0;
      rep_q      <= 1'b0;
      rep_k_q    <= '0;
      rep_off_q  <= '0;
      rep_c_q    <= '0;
      dma_q      <= 1'b0;
      hdr4_q     <= 1'b0;
      tx_o_q     <= '0;
      mac_q      <= '0;
      cplt_q     <= 1'b0;
      cst_q      <= '0;
      creq_q     <= '0;
      ctag_q     <= '0;
    end else begin
      state_q    <= state_d;
      rx_beat_q  <= rx_beat_d;
      rx_bytes_q <= rx_bytes_d;
      rx_long_q  <= rx_long_d;
      ide_q      <= ide_d;
      sub_q      <= sub_d;
      kset_q     <= kset_d;
      tee_q      <= tee_d;
      prs_q      <= prs_d;
      str_q      <= str_d;
      write_q    <= write_d;
      len_q      <= len_d;
      pay_q      <= pay_d;
      rid_q      <= rid_d;
      tag_q      <= tag_d;
      tc_q       <= tc_d;
      attr_q     <= attr_d;
      fbe_q      <= fbe_d;
      lbe_q      <= lbe_d;
      addr_q     <= addr_d;
      poison_q   <= poison_d;
      pcrc_q     <= pcrc_d;
      pdue_q     <= pdue_d;
      txp_q      <= txp_d;
      crc_q      <= crc_d;
      feed_q     <= feed_d;
      drain_q    <= drain_d;
      aad_b_q    <= aad_b_d;
      cfg_q      <= cfg_d;
      cfg_t1_q   <= cfg_t1_d;
      cfg_tgt_q  <= cfg_tgt_d;
      cfg_reg_q  <= cfg_reg_d;
      phe_q      <= phe_d;
      phe_be_q   <= phe_be_d;
      phe_pf_q   <= phe_pf_d;
      phe_prev_q <= phe_prev_d;
      // The key leaves the register when the packet is done (no copy outlives its use).
      key_q      <= (state_d == StRxAes || state_d == StTxAes) ? key_d : '0;
      iv_q       <= iv_d;
      tag_ok_q   <= tag_ok_d;
      cnt_q      <= cnt_d;
      rd_pend_q  <= rd_pend_d;
      rd_idx_q   <= rd_idx_d;
      ur_q       <= ur_d;
      tx_dw_q    <= tx_dw_d;
      tx_beat_q  <= tx_beat_d;
      mbit_q     <= mbit_d;
      unit_q     <= unit_d;
      st_ph_q    <= st_ph_d;
      st_i_q     <= st_i_d;
      rep_q      <= rep_d;
      rep_k_q    <= rep_k_d;
      rep_off_q  <= rep_off_d;
      rep_c_q    <= rep_c_d;
      dma_q      <= dma_d;
      hdr4_q     <= hdr4_d;
      tx_o_q     <= tx_o_d;
      mac_q      <= mac_d;
      cplt_q     <= cplt_d;
      cst_q      <= cst_d;
      creq_q     <= creq_d;
      ctag_q     <= ctag_d;
    end
  end

  // Buffers and memory: no reset (contents are written before they are read).
  always_ff @(posedge clk_i) begin : p_rbuf
    if (rb_wr) begin
      for (int k = 0; k < 4; k++) begin
        if (rb_dwen[k] && 32'(rb_idx) + 32'(k) < BufDw) begin
          rbuf_q[32'(rb_idx) + 32'(k)] <= rb_data[32*k +: 32];
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin : p_tbuf
    if (tb_wr) begin
      for (int k = 0; k < 4; k++) begin
        if (tb_dwen[k] && 32'(tb_idx) + 32'(k) < BufDw) begin
          tbuf_q[32'(tb_idx) + 32'(k)] <= tb_data[32*k +: 32];
        end
      end
    end else if (rd_pend_q) begin
      tbuf_q[(dma_q ? 8 : ide_q ? 4 : 3) + 32'(rd_idx_q)] <= mem_rdata_q;
    end
  end

  always_ff @(posedge clk_i) begin : p_bar_mem
    if (mem_we) begin
      for (int b = 0; b < 4; b++) begin
        if (mem_be[b]) begin
          mem_q[mem_addr][8*b +: 8] <= mem_wdata[8*b +: 8];
        end
      end
    end
    if (mem_re) begin
      mem_rdata_q <= mem_q[mem_addr];
    end
  end

  // Unit stores (aggregation): contents without reset (written before read), bookkeeping
  // with. A slot empties when its unit is done or refused, and whenever its stream is not
  // Secure (a failed check makes it Insecure; nothing held survives).
  always_ff @(posedge clk_i) begin : p_agg_mem
    if (AGG_SUPPORTED) begin
      if (aa_wr) begin
        for (int b = 0; b < 16; b++) begin
          if (aa_be[b]) begin
            agg_a_q[aa_idx][8*b +: 8] <= aa_data[8*b +: 8];
          end
        end
      end
      if (ap_wr) begin
        for (int b = 0; b < 16; b++) begin
          if (ap_be[b]) begin
            agg_p_q[ap_idx][8*b +: 8] <= ap_data[8*b +: 8];
          end
        end
      end
      if (ev_agg_store) begin
        agg_hdr_q[32'(cur_sl) * AGG_MAX_TLPS + 32'(agg_n_q[cur_sl][2:0])] <=
            {rbuf_q[4], rbuf_q[3], rbuf_q[2], rbuf_q[1], rbuf_q[0]};
        agg_fl_q[32'(cur_sl) * AGG_MAX_TLPS + 32'(agg_n_q[cur_sl][2:0])]  <= phe_flen;
        agg_ln_q[32'(cur_sl) * AGG_MAX_TLPS + 32'(agg_n_q[cur_sl][2:0])]  <=
            write_q ? 9'(len_q) : 9'd0;
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_agg
    if (!rst_ni) begin
      for (int sl = 0; sl < int'(AggSlots); sl++) begin
        agg_n_q[sl]   <= '0;
        agg_k_q[sl]   <= 1'b0;
        agg_ab_q[sl]  <= '0;
        agg_pb_q[sl]  <= '0;
        agg_pdw_q[sl] <= '0;
      end
    end else if (AGG_SUPPORTED) begin
      if (ev_agg_store) begin
        agg_n_q[cur_sl]   <= agg_n_q[cur_sl] + 4'd1;
        agg_ab_q[cur_sl]  <= agg_ab_q[cur_sl] + 8'(aad_b_q);
        agg_pb_q[cur_sl]  <= agg_pb_q[cur_sl] + 12'(rx_pbytes);
        agg_pdw_q[cur_sl] <= agg_pdw_q[cur_sl] + (write_q ? 10'(len_q) : 10'd0);
        if (agg_n_q[cur_sl] == '0) begin
          agg_k_q[cur_sl] <= kset_q;
        end
      end
      for (int sl = 0; sl < int'(AggSlots); sl++) begin
        if ((ev_agg_clear && 32'(cur_sl) == 32'(sl)) ||
            (ev_fail && 32'(ev_fail_str) == 32'(sl) / 2) ||
            !stream_secure_i[32'(sl) / 2]) begin
          agg_n_q[sl]   <= '0;
          agg_ab_q[sl]  <= '0;
          agg_pb_q[sl]  <= '0;
          agg_pdw_q[sl] <= '0;
        end
      end
    end
  end

  ///////////////////////////////
  // IDE stream state, counters //
  ///////////////////////////////

  logic [NUM_STREAMS-1:0] fail_pulse;

  always_comb begin
    fail_pulse = '0;
    if (ev_fail) begin
      fail_pulse[ev_fail_str] = 1'b1;
    end
  end

  assign check_failed_o   = fail_pulse;
  assign cfg_ide_hold_o   = cfg_held_q && stream_enable_i[cfg_str_q] && !MUTANT_CFG_PLAIN_TAKEN;
  assign check_failures_o = fail_total_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_streams
    if (!rst_ni) begin
      for (int j = 0; j < NUM_STREAMS; j++) begin
        for (int s = 0; s < 3; s++) begin
          for (int k = 0; k < 2; k++) begin
            rx_ctr_q[j][s][k]     <= '0;
            rx_ctr_ld_q[j][s][k]  <= 1'b0;
            rx_retired_q[j][s][k] <= 1'b0;
          end
          rx_cur_q[j][s]     <= 1'b0;
          rx_cur_vld_q[j][s] <= 1'b0;
          lk_lock_q[j][s]    <= 1'b0;
        end
        for (int s = 0; s < 3; s++) begin
          for (int k = 0; k < 2; k++) begin
            tx_ctr_q[j][s][k]    <= '0;
            tx_ctr_ld_q[j][s][k] <= 1'b0;
          end
          tx_k_q[j][s] <= 1'b0;
        end
        rx_pr_q[j]  <= '0;
        rx_prc_q[j] <= '0;
        tx_prs_q[j] <= '0;
        tx_prn_q[j] <= '0;
      end
      slot_go_q <= '0;
      cfg_held_q <= 1'b0;
      cfg_str_q  <= '0;
    end else begin
      slot_go_q <= stream_slot_go_i;
      // §6.33.4: "Once a Configuration Request has been received as an IDE TLP on that
      // Selective IDE Stream, then the Port must accept only Configuration Requests associated
      // with that Selective IDE Stream ... for as long as that Selective IDE Stream is enabled".
      if (ev_cfg_take) begin
        cfg_held_q <= 1'b1;
        cfg_str_q  <= str_q;
      end else if (!stream_enable_i[cfg_str_q]) begin
        cfg_held_q <= 1'b0;
      end
      // A good IDE TLP advances its key set's invocation counter and, on a new K, retires
      // the old set for that sub-stream (§6.33.3).
      if (ev_ctr_commit) begin
        rx_ctr_q[str_q][sub_q[1:0]][kset_q] <=
            (rx_ctr_ld_q[str_q][sub_q[1:0]][kset_q] ? rx_ctr_q[str_q][sub_q[1:0]][kset_q] :
                                                      iv_counter(iv_q)) + 64'd1;
        rx_ctr_ld_q[str_q][sub_q[1:0]][kset_q] <= 1'b1;
        if (rx_cur_vld_q[str_q][sub_q[1:0]] && rx_cur_q[str_q][sub_q[1:0]] != kset_q) begin
          rx_retired_q[str_q][sub_q[1:0]][!kset_q] <= 1'b1;
        end
        rx_cur_q[str_q][sub_q[1:0]]     <= kset_q;
        rx_cur_vld_q[str_q][sub_q[1:0]] <= 1'b1;
        lk_lock_q[str_q][sub_q[1:0]]    <= stream_link_i[str_q];
      end
      // PR_Received_Counter-NPR and -CPL (§6.33.5): a Posted Request adds to both, an NPR
      // subtracts its PR_Sent_Counter from the first, a Completion from the second; a held TLP
      // of a unit counts when it arrives.
      if (ev_ctr_commit || ev_pr_member) begin
        if (sub_q == 3'(SUB_NPR)) begin
          rx_pr_q[str_q] <= rx_pr_q[str_q] - 32'(prs_q);
        end else if (sub_q == 3'(SUB_CPL)) begin
          rx_prc_q[str_q] <= rx_prc_q[str_q] - 32'(prs_q);
        end else begin
          rx_pr_q[str_q]  <= sat_inc(rx_pr_q[str_q]);
          rx_prc_q[str_q] <= sat_inc(rx_prc_q[str_q]);
        end
      end
      // A protected TLP sent: its invocation counter advances; a Posted Request counts in
      // PR_Sent_Counter-CPL, which a Completion carries and clears (§6.33.5).
      if (ev_tx_commit) begin
        tx_ctr_q[str_q][txs][tx_k_q[str_q][txs]] <=
            (tx_ctr_ld_q[str_q][txs][tx_k_q[str_q][txs]] ?
                 tx_ctr_q[str_q][txs][tx_k_q[str_q][txs]] : iv_counter(iv_q)) + 64'd1;
        tx_ctr_ld_q[str_q][txs][tx_k_q[str_q][txs]] <= 1'b1;
        if (txs == 2'(SUB_PR)) begin
          tx_prs_q[str_q] <= tx_prs_q[str_q] + 8'd1;
          tx_prn_q[str_q] <= tx_prn_q[str_q] + 8'd1;
        end else if (txs == 2'(SUB_NPR)) begin
          tx_prn_q[str_q] <= '0;
        end else begin
          tx_prs_q[str_q] <= '0;
        end
      end
      for (int j = 0; j < NUM_STREAMS; j++) begin
        // A slot armed anew starts from its IFV; a Tx Completion slot armed anew is the
        // key set the transmitter uses from now on.
        for (int s = 0; s < 3; s++) begin
          for (int k = 0; k < 2; k++) begin
            if (stream_slot_go_i[12*j + 4*s + k] && !slot_go_q[12*j + 4*s + k]) begin
              rx_ctr_ld_q[j][s][k]  <= 1'b0;
              rx_retired_q[j][s][k] <= 1'b0;
            end
          end
        end
        for (int s = 0; s < 3; s++) begin
          for (int k = 0; k < 2; k++) begin
            if (stream_slot_go_i[12*j + 4*s + 2 + k] && !slot_go_q[12*j + 4*s + 2 + k]) begin
              tx_ctr_ld_q[j][s][k] <= 1'b0;
              tx_k_q[j][s]         <= k[0];
            end
          end
        end
        // A Link stream's hold on its TC's non-IDE TLPs lasts while it is enabled.
        if (!stream_enable_i[j]) begin
          for (int s = 0; s < 3; s++) begin
            lk_lock_q[j][s] <= 1'b0;
          end
        end
        // Insecure: every piece of receive and transmit state of the stream starts over.
        if (!stream_secure_i[j]) begin
          for (int s = 0; s < 3; s++) begin
            for (int k = 0; k < 2; k++) begin
              rx_ctr_ld_q[j][s][k]  <= 1'b0;
              rx_retired_q[j][s][k] <= 1'b0;
            end
            rx_cur_vld_q[j][s] <= 1'b0;
          end
          rx_pr_q[j]  <= '0;
          rx_prc_q[j] <= '0;
          tx_prs_q[j] <= '0;
          tx_prn_q[j] <= '0;
          for (int s = 0; s < 3; s++) begin
            for (int k = 0; k < 2; k++) begin
              tx_ctr_ld_q[j][s][k] <= 1'b0;
            end
          end
        end
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_counters
    if (!rst_ni) begin
      for (int j = 0; j < NUM_STREAMS; j++) begin
        cnt_rx_ok_q[j] <= '0;
        cnt_tx_q[j]    <= '0;
        cnt_fail_q[j]  <= '0;
        last_fail_q[j] <= '0;
      end
      cnt_misrouted_q <= '0;
      cnt_discard_q   <= '0;
      cnt_plain_q     <= '0;
      cnt_ur_q        <= '0;
      cnt_malformed_q <= '0;
      cnt_pcrc_q      <= '0;
      cnt_unexp_q     <= '0;
      fail_total_q    <= '0;
    end else begin
      if (ev_rx_ok)     cnt_rx_ok_q[str_q] <= sat_inc(cnt_rx_ok_q[str_q]);
      if (ev_tx && ide_q) cnt_tx_q[str_q]  <= sat_inc(cnt_tx_q[str_q]);
      if (ev_fail) begin
        cnt_fail_q[ev_fail_str]  <= sat_inc(cnt_fail_q[ev_fail_str]);
        last_fail_q[ev_fail_str] <= {ev_fail_k, 1'b0, ev_fail_sub, ev_fail_reason};
        fail_total_q       <= sat_inc(fail_total_q);
      end
      if (ev_misrouted) cnt_misrouted_q <= sat_inc(cnt_misrouted_q);
      if (ev_discard)   cnt_discard_q   <= sat_inc(cnt_discard_q);
      if (ev_plain)     cnt_plain_q     <= sat_inc(cnt_plain_q);
      if (ev_ur)        cnt_ur_q        <= sat_inc(cnt_ur_q);
      if (ev_malformed) cnt_malformed_q <= sat_inc(cnt_malformed_q);
      if (ev_pcrc)      cnt_pcrc_q      <= sat_inc(cnt_pcrc_q);
      if (ev_unexp)     cnt_unexp_q     <= sat_inc(cnt_unexp_q);
    end
  end

  //////////////////////////////
  // Firmware counter reads   //
  //////////////////////////////

  logic [31:0]     fw_rdata_d;
  logic [StrW-1:0] fw_str;

  always_comb begin
    fw_rdata_d = '0;
    fw_str     = StrW'(fw_addr_i[4:2]);
    if (fw_addr_i[5] == 1'b0) begin
      if (32'(fw_addr_i[4:2]) < NUM_STREAMS) begin
        unique case (fw_addr_i[1:0])
          2'd0:    fw_rdata_d = cnt_rx_ok_q[fw_str];
          2'd1:    fw_rdata_d = cnt_tx_q[fw_str];
          2'd2:    fw_rdata_d = cnt_fail_q[fw_str];
          default: fw_rdata_d = 32'(last_fail_q[fw_str]);
        endcase
      end
    end else begin
      unique case (fw_addr_i[4:0])
        5'h00:   fw_rdata_d = cnt_misrouted_q;
        5'h01:   fw_rdata_d = cnt_discard_q;
        5'h02:   fw_rdata_d = cnt_plain_q;
        5'h03:   fw_rdata_d = cnt_ur_q;
        5'h04:   fw_rdata_d = cnt_malformed_q;
        5'h05:   fw_rdata_d = {8'(BAR0_SIZE_LOG2), 8'(MAX_PAYLOAD_DW / 4), 4'h0, AGG_SUPPORTED,
                               CFG_IDE_SUPPORTED, PHE_SUPPORTED, PCRC_SUPPORTED,
                               8'(NUM_STREAMS)};
        5'h06:   fw_rdata_d = cnt_pcrc_q;
        5'h10:   fw_rdata_d = DMA_SUPPORTED ? dma_addr_q[31:0] : '0;
        5'h11:   fw_rdata_d = DMA_SUPPORTED ? dma_addr_q[63:32] : '0;
        5'h07:   fw_rdata_d = cnt_unexp_q;
        5'h12:   fw_rdata_d = DMA_SUPPORTED ? {1'b0, dma_rd_q, dma_src_q, dma_t_q, dma_tc_q, 2'b00,
                                               dma_len_q} : '0;
        5'h13:   fw_rdata_d = DMA_SUPPORTED ? {dma_busy, 7'd0, stream_id_i[8*dma_str_q +: 8],
                                               5'd0, 3'(dma_str_q), 4'd0, dma_res_q} :
                                              32'(DMA_UNSUPPORTED);
        default: fw_rdata_d = '0;
      endcase
    end
  end

  // The DMA engine's registers (README "DMA"): DMA_ADDR_LO/HI, then DMA_CTRL starts one.
  // Writes while one is under way are ignored (DMA_STATUS busy).
  assign dma_busy = dma_pend_q || (dma_q && state_q != StIdle) || rd_wait_q;
  assign txs      = !dma_q ? 2'(SUB_CPL) : write_q ? 2'(SUB_PR) : 2'(SUB_NPR);

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_dma
    if (!rst_ni) begin
      dma_pend_q <= 1'b0;
      dma_addr_q <= '0;
      dma_len_q  <= '0;
      dma_tc_q   <= '0;
      dma_t_q    <= 1'b0;
      dma_src_q  <= '0;
      dma_res_q  <= DMA_NONE;
      dma_str_q  <= '0;
      dma_rd_q   <= 1'b0;
      dma_tag_q  <= '0;
      rd_wait_q  <= 1'b0;
      rd_tag_q   <= '0;
      rd_ide_q   <= 1'b0;
      rd_str_q   <= '0;
      rd_len_q   <= '0;
      rd_timer_q <= '0;
    end else if (DMA_SUPPORTED) begin
      if (fw_wr_i && !dma_busy) begin
        unique case (fw_addr_i)
          6'h30: dma_addr_q[31:0]  <= {fw_wdata_i[31:2], 2'b00};
          6'h31: dma_addr_q[63:32] <= fw_wdata_i;
          6'h32: begin
            dma_len_q  <= fw_wdata_i[9:0];
            dma_tc_q   <= fw_wdata_i[14:12];
            dma_t_q    <= fw_wdata_i[15];
            dma_src_q  <= fw_wdata_i[29:16];
            dma_rd_q   <= fw_wdata_i[30];
            dma_pend_q <= 1'b1;
            dma_res_q  <= DMA_NONE;
          end
          default: ;
        endcase
      end
      if (ev_dma_take) begin
        dma_pend_q <= 1'b0;
      end
      if (ev_dma_res) begin
        dma_res_q <= ev_dma_code;
        if (!ev_rd_end) begin
          dma_str_q <= str_d;
        end
      end
      // A DMA read in flight: its Tag, stream and length, until its completion or the
      // Completion Timeout (§2.8), which ends it with DMA_READ_TIMEOUT.
      if (ev_rd_sent) begin
        rd_wait_q  <= 1'b1;
        rd_tag_q   <= tag_q;
        rd_ide_q   <= ide_q;
        rd_str_q   <= str_q;
        rd_len_q   <= len_q;
        rd_timer_q <= '0;
        dma_tag_q  <= dma_tag_q + 8'd1;
        dma_str_q  <= str_q;
      end else if (ev_rd_end) begin
        rd_wait_q <= 1'b0;
      end else if (rd_wait_q) begin
        rd_timer_q <= rd_timer_q + 16'd1;
        if (32'(rd_timer_q) + 1 >= DMA_CPL_TIMEOUT) begin
          rd_wait_q <= 1'b0;
          dma_res_q <= DMA_READ_TIMEOUT;
        end
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_fw
    if (!rst_ni) begin
      fw_rdata_o  <= '0;
      fw_rvalid_o <= 1'b0;
    end else begin
      fw_rdata_o  <= fw_rd_i ? fw_rdata_d : '0;
      fw_rvalid_o <= fw_rd_i;
    end
  end

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  TxKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({tx_valid_o, rx_ready_o, check_failed_o, tlp_poisoned_o}));
  TxData_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      tx_valid_o |-> !$isunknown({tx_data_o, tx_keep_o, tx_last_o}));
  OneFail_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      $onehot0(check_failed_o));
`endif

endmodule

`default_nettype wire
