// ide_tlp: constants and pure functions of the endpoint's TLP path.

`default_nettype none

package ide_tlp_pkg;

  // IDE TLP Prefix byte 0: Fmt 100b, Type 1_0010b (End-End prefix E[3:0] = 0010b, §6.33.4).
  localparam logic [7:0] IDE_PREFIX_BYTE0 = 8'h92;
  // The IDE MAC: 96 bits, 3 DW, after the payload (§6.33.4).
  localparam int unsigned MAC_DW = 3;

  // Sub-Streams (§6.33.4): 011b .. 111b are reserved.
  localparam int unsigned SUB_PR  = 0;
  localparam int unsigned SUB_NPR = 1;
  localparam int unsigned SUB_CPL = 2;

  // TDISP TDI_STATE codes (§11.3.13).
  localparam logic [1:0] TDI_UNLOCKED = 2'd0;
  localparam logic [1:0] TDI_LOCKED   = 2'd1;
  localparam logic [1:0] TDI_RUN      = 2'd2;
  localparam logic [1:0] TDI_ERROR    = 2'd3;

  // aes_gcm beat kinds (aes_gcm_pkg::kind_e values).
  localparam logic [1:0] KIND_HDR  = 2'd0;
  localparam logic [1:0] KIND_AAD  = 2'd1;
  localparam logic [1:0] KIND_TEXT = 2'd2;

  // Why an IDE TLP failed its checks (IDE Check Failed, §6.33.8); LAST_FAIL[3:0].
  typedef enum logic [3:0] {
    FailNone        = 4'd0,
    FailMac         = 4'd1,  // the MAC did not match (tampering, replay, reordering)
    FailPrCounter   = 4'd2,  // PR_Sent_Counter larger than the Posted Requests received
    FailSubStream   = 4'd3,  // reserved Sub-Stream value
    FailSubMismatch = 4'd4,  // a request on the wrong Sub-Stream (MWr not on PR, MRd not NPR)
    FailKeySet      = 4'd5,  // K selects a key set that is not armed, stopped or replaced
    FailNoMac       = 4'd6,  // M = 0: no aggregation here, every IDE TLP carries a MAC
    FailPcrc        = 4'd7,  // P = 1 where no PCRC is due (not enabled, or no payload)
    FailAggregation = 4'd8   // an aggregated unit broke §6.33.6 (K changed, > 8 TLPs, > 256 DW)
  } fail_e;

  // A 32-bit word as the wire has it (byte 0 first) <-> as the spec draws it (byte 0 in 31:24).
  // DMA_STATUS[3:0]: what became of the last DMA write (hdl/ide_tlp/README.md, "DMA").
  localparam logic [3:0] DMA_NONE          = 4'd0;  // none yet, or under way
  localparam logic [3:0] DMA_SENT_IDE      = 4'd1;  // sent as an IDE TLP on DMA_STATUS's stream
  localparam logic [3:0] DMA_SENT_PLAIN    = 4'd2;  // sent as a non-IDE TLP
  localparam logic [3:0] DMA_DISCARDED     = 4'd3;  // its stream is not Secure / no Tx key
  localparam logic [3:0] DMA_NO_BUS_MASTER = 4'd4;  // Command.Bus Master Enable is clear
  localparam logic [3:0] DMA_BAD_REQUEST   = 4'd5;  // length 0, too long, past the memory, 4 KB crossed
  localparam logic [3:0] DMA_SYNC_DUE      = 4'd6;  // a PR_Sent_Counter at 245: IDE Sync due (§6.33.5)
  localparam logic [3:0] DMA_READ_DONE     = 4'd7;  // a read's completion is in memory
  localparam logic [3:0] DMA_READ_ERROR    = 4'd8;  // ... came with an error status or length
  localparam logic [3:0] DMA_READ_TIMEOUT  = 4'd9;  // ... did not come (Completion Timeout)
  localparam logic [3:0] DMA_UNSUPPORTED   = 4'd15; // built without the DMA engine

  function automatic logic [31:0] bswap32(logic [31:0] v);
    return {v[7:0], v[15:8], v[23:16], v[31:24]};
  endfunction

  function automatic logic [4:0] popcount16(logic [15:0] v);
    logic [4:0] n;
    n = '0;
    for (int i = 0; i < 16; i++) begin
      n = n + 5'(v[i]);
    end
    return n;
  endfunction

  // ide_cap slot code: {sub-stream[1:0], RxTxB, key set}.
  function automatic logic [3:0] slot_code(logic [1:0] sub, logic rxtxb, logic kset);
    return {sub, rxtxb, kset};
  endfunction

  // ide_cap's key (first key DW in bits 255:224, k[0] in 255:248) as aes_gcm wants it
  // (k[0] in bits 7:0).
  function automatic logic [255:0] key_bytes(logic [255:0] key);
    logic [255:0] b;
    for (int i = 0; i < 32; i++) begin
      b[8*i +: 8] = key[255 - 8*i -: 8];
    end
    return b;
  endfunction

  // The IDE IV for an invocation counter (§6.33.5): bytes 0..3 zero (fixed field), bytes
  // 4..11 the counter, most significant byte first; byte k in bits [8k+7:8k].
  function automatic logic [95:0] iv_bytes(logic [63:0] ctr);
    logic [95:0] b;
    b = '0;
    for (int i = 0; i < 8; i++) begin
      b[8*(4 + i) +: 8] = ctr[63 - 8*i -: 8];
    end
    return b;
  endfunction

  // The counter an IV was made from.
  function automatic logic [63:0] iv_counter(logic [95:0] iv);
    logic [63:0] c;
    for (int i = 0; i < 8; i++) begin
      c[63 - 8*i -: 8] = iv[8*(4 + i) +: 8];
    end
    return c;
  endfunction

  // PCRC (§6.33.4): CRC-32, polynomial 04C1_1DB7h, seed FFFF_FFFFh, over all P content, bit 0
  // of byte 0 first; the result complemented and mapped as ECRC (§2.7.1 Table 2-55: within
  // each byte the bit order reversed), the mapped bits 31:24 sent first. LSB-first processing
  // is the reflected form of the polynomial, EDB8_8320h. pcrc_update takes the first n bytes
  // (0 .. 16) of a beat, byte k in bits [8k+7:8k].
  localparam logic [31:0] PCRC_SEED = 32'hFFFF_FFFF;

  function automatic logic [31:0] pcrc_update(logic [31:0] crc, logic [127:0] beat,
                                              logic [4:0] n);
    logic [31:0] c;
    c = crc;
    for (int k = 0; k < 16; k++) begin
      if (5'(k) < n) begin
        for (int i = 0; i < 8; i++) begin
          c = (c[0] ^ beat[8*k+i]) ? ((c >> 1) ^ 32'hEDB8_8320) : (c >> 1);
        end
      end
    end
    return c;
  endfunction

  // The PCRC field as a buffer DW (wire byte 0 in bits 7:0): the complemented register with
  // each byte's bits reversed and the bytes sent most significant first, which is the whole
  // complemented register bit-reversed.
  function automatic logic [31:0] pcrc_dw(logic [31:0] crc);
    logic [31:0] d;
    for (int i = 0; i < 32; i++) begin
      d[i] = ~crc[31-i];
    end
    return d;
  endfunction


  // Offset of the first enabled byte of a First DW BE (0 when none is enabled).
  function automatic logic [1:0] first_byte(logic [3:0] be);
    return be[0] ? 2'd0 : be[1] ? 2'd1 : be[2] ? 2'd2 : be[3] ? 2'd3 : 2'd0;
  endfunction

  // Byte Count of a memory read's completion (§2.2.9, Table "Calculating Byte Count").
  function automatic logic [11:0] byte_count(logic one_dw, logic [3:0] fbe, logic [3:0] lbe,
                                             logic [10:0] len);
    logic [11:0] n;  // 4096 bytes wraps to 0, which is how Byte Count encodes it
    if (one_dw) begin
      casez (fbe)
        4'b1??1: n = 12'd4;
        4'b01?1: n = 12'd3;
        4'b1?10: n = 12'd3;
        4'b0011: n = 12'd2;
        4'b0110: n = 12'd2;
        4'b1100: n = 12'd2;
        default: n = 12'd1;
      endcase
    end else begin
      // Last DW BE 0000b is illegal with Length > 1 (§2.2.5) and counts as 0001b.
      n = 12'(4 * 32'(len)) - 12'(first_byte(fbe)) -
          (lbe[3] ? 12'd0 : lbe[2] ? 12'd1 : lbe[1] ? 12'd2 : lbe[0] ? 12'd3 : 12'd3);
    end
    return n;
  endfunction

endpackage

`default_nettype wire
