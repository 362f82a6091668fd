// IDE capability: the Integrity and Data Encryption extended capability of the endpoint
// (PCIe 6.x §6.33, §7.9.26), its IDE_KM key slots and the state of its Selective IDE Streams
// and Link IDE Streams.
//
// Three ports:
// - the config register port (the host's view, decoded by the endpoint from config space):
//   header, IDE Capability, IDE Control, one Link IDE Stream register block per Link IDE TC and
//   one Selective IDE Stream register block per Selective stream;
// - the firmware port (the device firmware that answers IDE_KM): writes key slots, issues
//   K_SET_GO / K_SET_STOP / stream wipes, reads stream state and a copy of the capability;
// - the TLP path: per stream configuration and state out, IDE Check Failed and received IDE
//   Fail Message in, and the only read port of the key slots.
// No key or IFV bit is readable through the config or firmware port. See README.md for the
// register maps and the stream state rules.

`default_nettype none

module ide_cap
  import ide_cap_pkg::*;
#(
  // Number of Selective IDE Streams (register blocks and key slot sets); >= 2.
  parameter int unsigned NUM_STREAMS = 2,
  // IDE Address Association register blocks per Selective stream; 1 .. 15.
  parameter int unsigned NUM_ADDR_BLOCKS = 1,
  // Per-stream counts (§7.9.26.5.1: each Selective IDE Stream Capability register gives its
  // own block's count): 4 bits per Selective stream, stream j in [4j+3:4j]; 0 there means
  // NUM_ADDR_BLOCKS. Stream j's register block is 5 + 3 x its count DW and starts after stream
  // j - 1's. Nibbles of streams >= NUM_STREAMS must be 0.
  parameter logic [31:0] STREAM_ADDR_BLOCKS = 32'h0,
  // Link IDE Streams (one register block per TC, §7.9.26.4); 0 .. 8, and NUM_STREAMS +
  // NUM_LINK_TCS <= 8. The Link streams take stream indices NUM_STREAMS and up (key slots,
  // firmware map, TLP path), after the Selective ones.
  parameter int unsigned NUM_LINK_TCS = 0,
  // Next Capability Offset reported in the extended capability header (0: last in the list).
  parameter logic [11:0] NEXT_CAP_OFFSET = 12'h000,
  // Room for the capability in configuration space in DW (<= 64); the capability must fit.
  parameter int unsigned MAX_CAP_DW = IDE_CAP_MAX_DW,
  // 1: the TLP path generates and checks PCRC (§6.33.4): IDE Capability bit 5 is Set and each
  // stream's PCRC Enable (Control bit 8) is writable; 0: both read 0.
  parameter bit PCRC_SUPPORTED = 1'b0,
  // 1: the TLP path decrypts Partial Header Encryption (§6.33.4): IDE Capability bit 3 is Set
  // and each stream's Partial Header Encryption Mode (Control [13:10]) takes 0000b..0100b;
  // 0: both read 0.
  parameter bit PHE_SUPPORTED = 1'b0,
  // 1: the TLP path takes Configuration Requests as IDE TLPs (§6.33.4): IDE Capability bit 7
  // (Selective IDE for Configuration Requests Supported) is Set. Nothing here changes: the
  // Configuration Requests Enable bit (Stream Control b9) is a Root Port's, reserved here.
  parameter bit CFG_IDE_SUPPORTED = 1'b0,
  // 1: the TLP path takes aggregated units (§6.33.6): IDE Capability bit 4 (Aggregation
  // Supported) is Set and each stream's Tx Aggregation Mode fields (Control [7:2]) are
  // writable; 0: both read 0. The transmitter (completions) never aggregates, which a
  // Transmitter "is permitted" (§6.33.6: "to aggregate fewer TLPs than the number permitted").
  parameter bit AGG_SUPPORTED = 1'b0,
  // Seeded bug for the mutation harness (hil/mutants.py), never for a real build: 1 =
  // K_SET_STOP reports done and leaves the slot armed and keyed. Keep 0.
  parameter bit MUTANT_K_SET_STOP_IGNORED = 1'b0
) (
  input  logic                       clk_i,
  input  logic                       rst_ni,

  // Config register port: one DW access per cycle, decoded by the endpoint from config space
  input  logic                       reg_wr_i,     // write strobe
  input  logic                       reg_rd_i,     // read strobe
  input  logic [5:0]                 reg_idx_i,    // DW index within the capability
  input  logic [31:0]                reg_wdata_i,
  input  logic [3:0]                 reg_be_i,     // byte enables of the write
  output logic [31:0]                reg_rdata_o,  // valid with reg_rvalid_o
  output logic                       reg_rvalid_o, // one cycle after reg_rd_i

  // Firmware port: one DW access per cycle (map in README.md)
  input  logic                       fw_wr_i,
  input  logic                       fw_rd_i,
  input  logic [11:0]                fw_addr_i,    // DW address
  input  logic [31:0]                fw_wdata_i,
  output logic [31:0]                fw_rdata_o,   // valid with fw_rvalid_o
  output logic                       fw_rvalid_o,  // one cycle after fw_rd_i

  // TLP path events, one bit per stream index (Selective streams, then Link streams)
  input  logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      check_failed_i,  // pulse: IDE Check Failed
  input  logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      fail_msg_rx_i,   // pulse: IDE Fail Message in
  output logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      fail_msg_tx_o,   // pulse: send IDE Fail Message

  // TLP path: stream configuration and state, stream index j in bits [j*W +: W]
  output logic [(NUM_STREAMS+NUM_LINK_TCS)*8-1:0]  stream_id_o,
  output logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      stream_enable_o,
  output logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      stream_secure_o,
  output logic [(NUM_STREAMS+NUM_LINK_TCS)*3-1:0]  stream_tc_o,
  output logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      stream_default_o,
  output logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      stream_tee_limited_o,
  output logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      stream_pcrc_o,      // PCRC Enable (fixed
                                                                       // while enabled)
  output logic [(NUM_STREAMS+NUM_LINK_TCS)*4-1:0]  stream_phe_o,       // PHE Mode (fixed while
                                                                       // enabled)
  output logic [NUM_STREAMS+NUM_LINK_TCS-1:0]      stream_link_o,      // a Link IDE Stream
  output logic [(NUM_STREAMS+NUM_LINK_TCS)*16-1:0] stream_rid_base_o,  // RID Base (fixed while
                                                                       // enabled; Link: 0)
  output logic [(NUM_STREAMS+NUM_LINK_TCS)*16-1:0] stream_rid_limit_o, // RID Limit (as Base)
  output logic [(NUM_STREAMS+NUM_LINK_TCS)*12-1:0] stream_slot_go_o,   // armed slots
  // Address Association (§7.9.26.5.5), Selective streams only: entry (j, b) in bits
  // [IDE_ADDR_OUT_W*(j*MaxBlk + b) +: IDE_ADDR_OUT_W] = {Valid, Memory Base[63:20], Memory
  // Limit[63:20]}, MaxBlk = ide_addr_blocks_max(); entries past stream j's count are 0
  output logic [NUM_STREAMS*IDE_ADDR_OUT_W*
                ide_addr_blocks_max(NUM_STREAMS, NUM_ADDR_BLOCKS, STREAM_ADDR_BLOCKS)-1:0]
                                                   stream_addr_o,

  // TLP path: key slot read port, the only reader of keys and IFVs
  input  logic                       tlp_key_rd_i,
  input  logic [2:0]                 tlp_key_stream_i,  // stream index
  input  logic [3:0]                 tlp_key_slot_i,    // {sub-stream[1:0], RxTxB, key set}
  output logic [255:0]               tlp_key_o,         // first key DW in bits 255:224
  output logic [63:0]                tlp_ifv_o,         // IFV[63:32] = slot DW 8
  output logic                       tlp_key_go_o,      // the slot is armed
  output logic                       tlp_key_rvalid_o   // one cycle after tlp_key_rd_i
);

  ///////////////////////////
  // Parameters and types  //
  ///////////////////////////

  localparam int unsigned NumAll = NUM_STREAMS + NUM_LINK_TCS;  // stream indices in use
  // Largest Address Association block count over the Selective streams: entries per stream
  // in addr_q and stream_addr_o.
  localparam int unsigned MaxBlk =
      ide_addr_blocks_max(NUM_STREAMS, NUM_ADDR_BLOCKS, STREAM_ADDR_BLOCKS);
  localparam int unsigned SelDw0 = IDE_REG_LINK0 + IDE_LINK_BLK_DW * NUM_LINK_TCS;
  localparam int unsigned CapDw =
      ide_sel_base(NUM_STREAMS, NUM_LINK_TCS, NUM_ADDR_BLOCKS, STREAM_ADDR_BLOCKS);
  // Address Association blocks of all Selective streams together.
  localparam int unsigned AllBlk = (CapDw - SelDw0 - IDE_SEL_FIXED_DW * NUM_STREAMS) /
                                   IDE_ADDR_BLK_DW;

  if (NUM_STREAMS < 2 || NUM_STREAMS > 8) begin : gen_bad_num_streams
    $fatal(1, "ide_cap: NUM_STREAMS must be 2 .. 8");
  end
  if (NUM_LINK_TCS > 8 || NUM_STREAMS + NUM_LINK_TCS > 8) begin : gen_bad_num_link_tcs
    $fatal(1, "ide_cap: NUM_LINK_TCS must be 0 .. 8 and NUM_STREAMS + NUM_LINK_TCS <= 8");
  end
  if (NUM_ADDR_BLOCKS < 1 || NUM_ADDR_BLOCKS > 15) begin : gen_bad_num_addr_blocks
    $fatal(1, "ide_cap: NUM_ADDR_BLOCKS must be 1 .. 15");
  end
  if (NUM_STREAMS < 8 && (STREAM_ADDR_BLOCKS >> (4 * NUM_STREAMS)) != 32'h0)
  begin : gen_bad_stream_addr_blocks
    $fatal(1, "ide_cap: STREAM_ADDR_BLOCKS %h sets a count for a stream >= NUM_STREAMS (%0d)",
           STREAM_ADDR_BLOCKS, NUM_STREAMS);
  end
  if (MAX_CAP_DW > 64) begin : gen_bad_max_cap_dw
    $fatal(1, "ide_cap: MAX_CAP_DW must be <= 64 (reg_idx_i is 6 bits)");
  end
  if (CapDw > MAX_CAP_DW) begin : gen_cap_too_big
    $fatal(1, "ide_cap: %0d Link TCs, %0d streams with %0d address blocks in all take %0d DW, more than MAX_CAP_DW",
           NUM_LINK_TCS, NUM_STREAMS, AllBlk, CapDw);
  end
  if (NEXT_CAP_OFFSET[1:0] != 2'b00 ||
      (NEXT_CAP_OFFSET != 12'h000 && NEXT_CAP_OFFSET < 12'h100)) begin : gen_bad_next_cap
    $fatal(1, "ide_cap: NEXT_CAP_OFFSET must be 0 or a DW-aligned offset >= 0x100");
  end

  // IDE Capability register (§7.9.26.2): Selective IDE and the IDE_KM responder, AES-GCM-256
  // with a 96-bit MAC, TEE-Limited Streams, and Link IDE, PCRC, Partial Header Encryption and
  // Selective IDE for Configuration Requests and Aggregation if built with them. No
  // Flow-Through (reserved for endpoints).
  localparam logic [31:0] IdeCapReg = (32'(NUM_LINK_TCS != 0) << IDE_CAP_LINK_BIT) |
                                      (32'(NUM_LINK_TCS != 0 ? NUM_LINK_TCS - 1 : 0)
                                          << IDE_CAP_LINK_TCS_LSB) |
                                      (32'd1 << IDE_CAP_SEL_BIT) |
                                      (32'(PCRC_SUPPORTED) << IDE_CAP_PCRC_BIT) |
                                      (32'(PHE_SUPPORTED) << IDE_CAP_PHE_BIT) |
                                      (32'(CFG_IDE_SUPPORTED) << IDE_CAP_SEL_CFG_BIT) |
                                      (32'(AGG_SUPPORTED) << IDE_CAP_AGGR_BIT) |
                                      (32'd1 << IDE_CAP_IDE_KM_BIT) |
                                      (32'(IDE_ALG_AES_GCM_256) << IDE_CAP_ALG_LSB) |
                                      (32'(NUM_STREAMS - 1) << IDE_CAP_NUM_SEL_LSB) |
                                      (32'd1 << IDE_CAP_TEE_LIM_BIT);

  // Slots of key set 0 and 1 (slot code {sub-stream[1:0], RxTxB, key set}).
  localparam logic [IDE_NUM_SLOTS-1:0] KeySet0Slots = 12'h555;
  localparam logic [IDE_NUM_SLOTS-1:0] KeySet1Slots = 12'hAAA;

  // Software-visible state of one Selective IDE Stream register block (a Link IDE Stream block
  // uses enable, alg, tc, pcrc, sid and fail_rx; the rest stays 0)
  typedef struct packed {
    logic        enable;     // Selective IDE Stream Enable
    logic [4:0]  alg;        // Selected Algorithm (sampled while enabled)
    logic [2:0]  tc;         // TC
    logic        dflt;       // Default Stream
    logic        tee_lim;    // TEE-Limited Stream (sampled while enabled)
    logic        pcrc;       // PCRC Enable (fixed while enabled)
    logic [3:0]  phe;        // Partial Header Encryption Mode (sampled while enabled)
    logic [5:0]  agg;        // Tx Aggregation Mode NPR, PR, CPL (fixed while enabled)
    logic [7:0]  sid;        // Stream ID
    logic        fail_rx;    // Received IDE Fail Message (RW1C)
    logic [15:0] rid_limit;  // RID Limit (fixed while enabled)
    logic [15:0] rid_base;   // RID Base (fixed while enabled)
    logic        rid_v;      // RID Association Valid (fixed while enabled)
  } sel_cfg_t;

  // One IDE Address Association register block
  typedef struct packed {
    logic        v;
    logic [11:0] base_lo;   // Memory Base Lower, address [31:20]
    logic [11:0] limit_lo;  // Memory Limit Lower, address [31:20]
    logic [31:0] limit_hi;  // Memory Limit Upper, address [63:32]
    logic [31:0] base_hi;   // Memory Base Upper, address [63:32]
  } addr_blk_t;

  typedef logic [IDE_NUM_SLOTS-1:0] slot_mask_t;
  typedef logic [IDE_SLOT_DW-1:0][31:0] slot_t;  // DW 0..7 key, DW 8..9 IFV

  // Address Association blocks of Selective stream j (§7.9.26.5.1)
  function automatic int unsigned addr_blocks(int unsigned j);
    return ide_addr_blocks_of(j, NUM_ADDR_BLOCKS, STREAM_ADDR_BLOCKS);
  endfunction

  // DW index of register off in the Selective IDE Stream block of stream j: the blocks before
  // it may each have their own number of Address Association blocks.
  function automatic int unsigned sel_reg(int unsigned j, int unsigned off);
    return ide_sel_base(j, NUM_LINK_TCS, NUM_ADDR_BLOCKS, STREAM_ADDR_BLOCKS) + off;
  endfunction

  // DW index of the Control (off 0) or Status (off 1) register of Link IDE block i
  function automatic int unsigned link_reg(int unsigned i, int unsigned off);
    return IDE_REG_LINK0 + i * IDE_LINK_BLK_DW + off;
  endfunction

  //////////////////
  // Declarations //
  //////////////////

  sel_cfg_t   [NumAll-1:0]                           cfg_q, cfg_d;
  addr_blk_t  [NUM_STREAMS-1:0][MaxBlk-1:0]          addr_q, addr_d;  // b >= count: 0
  logic       [NumAll-1:0]                           secure_q, secure_d;
  logic       [NumAll-1:0]                           relock_q, relock_d;  // Enable must be
                                                                          // written 0 first
  logic       [NumAll-1:0]                           fail_tx_q, fail_tx_d;
  slot_mask_t [NumAll-1:0]                           go_q, go_d;          // armed slots
  logic       [NumAll-1:0][IDE_NUM_SLOTS-1:0][IDE_SLOT_DW-1:0]      ldm_q, ldm_d;  // DWs written
  slot_t      [NumAll-1:0][IDE_NUM_SLOTS-1:0]        key_q, key_d;

  logic [31:0] cap_regs [CapDw];  // the capability as the host reads it

  // Config port
  logic [31:0] reg_cur, reg_wmask, reg_wval;
  logic [31:0] reg_rdata_q, reg_rdata_d;
  logic        reg_rvalid_q;

  // Firmware port
  logic              fw_key, fw_key_wr, fw_cmd_wr;
  logic [2:0]        fw_stream;
  logic [3:0]        fw_slot, fw_dw;
  ide_cmd_e          cmd_op;
  logic [7:0]        cmd_stream;
  logic [3:0]        cmd_sub;
  logic [3:0]        cmd_slot;
  logic              cmd_loaded, cmd_go, cmd_stop, cmd_wipe;
  ide_cmd_sts_e      cmd_sts_q, cmd_sts_d;
  logic [31:0]       fw_rdata_q, fw_rdata_d;
  logic              fw_rvalid_q;

  // Stream state
  logic [NumAll-1:0] wipe_cmd, leave, wipe;

  // TLP key read port
  logic [2:0] tlp_stream_q, tlp_stream_d;
  logic [3:0] tlp_slot_q, tlp_slot_d;
  logic       tlp_rvalid_q;

  ///////////////////////////
  // Capability registers  //
  ///////////////////////////

  always_comb begin
    for (int unsigned i = 0; i < CapDw; i++) begin
      cap_regs[i] = '0;
    end
    cap_regs[IDE_REG_HEADER] = {NEXT_CAP_OFFSET, IDE_CAP_VERSION, IDE_CAP_ID};
    cap_regs[IDE_REG_CAP]    = IdeCapReg;
    // IDE Control: its only field (Flow-Through IDE Stream Enabled) is reserved for endpoints.
    cap_regs[IDE_REG_CTRL]   = '0;
    // Link IDE Stream Control and Status (§7.9.26.4), block i = stream index NUM_STREAMS + i.
    for (int i = 0; i < int'(NUM_LINK_TCS); i++) begin
      cap_regs[link_reg(i, 0)][IDE_SEL_CTRL_EN_BIT]       = cfg_q[NUM_STREAMS + i].enable;
      cap_regs[link_reg(i, 0)][IDE_SEL_CTRL_PCRC_BIT]     = cfg_q[NUM_STREAMS + i].pcrc;
      cap_regs[link_reg(i, 0)][IDE_SEL_CTRL_AGG_LSB +: 6] = cfg_q[NUM_STREAMS + i].agg;
      cap_regs[link_reg(i, 0)][IDE_SEL_CTRL_PHE_LSB +: 4] = cfg_q[NUM_STREAMS + i].phe;
      cap_regs[link_reg(i, 0)][IDE_SEL_CTRL_ALG_LSB +: 5] = cfg_q[NUM_STREAMS + i].alg;
      cap_regs[link_reg(i, 0)][IDE_SEL_CTRL_TC_LSB +: 3]  = cfg_q[NUM_STREAMS + i].tc;
      cap_regs[link_reg(i, 0)][IDE_SEL_CTRL_SID_LSB +: 8] = cfg_q[NUM_STREAMS + i].sid;
      cap_regs[link_reg(i, 1)][IDE_SEL_STS_FAIL_RX_BIT]   = cfg_q[NUM_STREAMS + i].fail_rx;
      cap_regs[link_reg(i, 1)][3:0] =
          secure_q[NUM_STREAMS + i] ? IDE_STATE_SECURE : IDE_STATE_INSECURE;
    end
    for (int unsigned j = 0; j < NUM_STREAMS; j++) begin
      cap_regs[sel_reg(j, IDE_SEL_CAP)]  = 32'(addr_blocks(j));
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_EN_BIT]       = cfg_q[j].enable;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_ALG_LSB +: 5] = cfg_q[j].alg;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_TC_LSB +: 3]  = cfg_q[j].tc;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_DEFAULT_BIT]  = cfg_q[j].dflt;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_TEE_LIM_BIT]  = cfg_q[j].tee_lim;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_PCRC_BIT]     = cfg_q[j].pcrc;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_PHE_LSB +: 4] = cfg_q[j].phe;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_AGG_LSB +: 6] = cfg_q[j].agg;
      cap_regs[sel_reg(j, IDE_SEL_CTRL)][IDE_SEL_CTRL_SID_LSB +: 8] = cfg_q[j].sid;
      cap_regs[sel_reg(j, IDE_SEL_STATUS)][IDE_SEL_STS_FAIL_RX_BIT] = cfg_q[j].fail_rx;
      cap_regs[sel_reg(j, IDE_SEL_STATUS)][3:0] =
          secure_q[j] ? IDE_STATE_SECURE : IDE_STATE_INSECURE;
      cap_regs[sel_reg(j, IDE_SEL_RID1)][IDE_RID1_LIMIT_LSB +: 16] = cfg_q[j].rid_limit;
      // Segment Base [31:24] is reserved: the link never runs in Flit Mode (PCIe4 hard IP).
      cap_regs[sel_reg(j, IDE_SEL_RID2)][IDE_RID2_BASE_LSB +: 16]  = cfg_q[j].rid_base;
      cap_regs[sel_reg(j, IDE_SEL_RID2)][IDE_RID2_V_BIT]           = cfg_q[j].rid_v;
      for (int unsigned b = 0; b < MaxBlk; b++) begin
        if (b < addr_blocks(j)) begin
          cap_regs[sel_reg(j, IDE_SEL_ADDR + IDE_ADDR_BLK_DW * b)] =
              {addr_q[j][b].limit_lo, addr_q[j][b].base_lo, 7'b0, addr_q[j][b].v};
          cap_regs[sel_reg(j, IDE_SEL_ADDR + IDE_ADDR_BLK_DW * b + 1)] = addr_q[j][b].limit_hi;
          cap_regs[sel_reg(j, IDE_SEL_ADDR + IDE_ADDR_BLK_DW * b + 2)] = addr_q[j][b].base_hi;
        end
      end
    end
  end

  //////////////////////////
  // Config register port //
  //////////////////////////

  // The addressed register as read; beyond the capability: 0.
  always_comb begin
    reg_cur = '0;
    for (int unsigned i = 0; i < CapDw; i++) begin
      if (32'(reg_idx_i) == i) begin
        reg_cur = cap_regs[i];
      end
    end
  end

  // A write changes only the enabled bytes (ordinary config space); fields take their new value
  // from reg_wval, read-only and reserved bits are simply not taken.
  assign reg_wmask = {{8{reg_be_i[3]}}, {8{reg_be_i[2]}}, {8{reg_be_i[1]}}, {8{reg_be_i[0]}}};
  assign reg_wval  = (reg_cur & ~reg_wmask) | (reg_wdata_i & reg_wmask);
  assign reg_rdata_d = reg_rd_i ? reg_cur : '0;

  // A Partial Header Encryption Mode write: 0001b..0100b select Address[17:2] .. [41:2]
  // (§7.9.26.5.2); the other values are reserved and taken as 0000b (none), as is every value
  // when PHE is not built (the field is reserved then).
  function automatic logic [3:0] phe_mode(logic [3:0] v);
    return (PHE_SUPPORTED && v <= 4'd4) ? v : 4'd0;
  endfunction

  always_comb begin
    cfg_d  = cfg_q;
    addr_d = addr_q;
    for (int unsigned j = 0; j < NUM_STREAMS; j++) begin
      if (reg_wr_i) begin
        if (32'(reg_idx_i) == sel_reg(j, IDE_SEL_CTRL)) begin
          cfg_d[j].enable = reg_wval[IDE_SEL_CTRL_EN_BIT];
          cfg_d[j].tc     = reg_wval[IDE_SEL_CTRL_TC_LSB +: 3];
          cfg_d[j].dflt   = reg_wval[IDE_SEL_CTRL_DEFAULT_BIT];
          cfg_d[j].sid    = reg_wval[IDE_SEL_CTRL_SID_LSB +: 8];
          // Selected Algorithm, TEE-Limited Stream and the PHE Mode are sampled while Enable
          // is Set and read-only then, and PCRC Enable must not change while it is Set
          // (§7.9.26.5.2); the write that sets Enable still writes them.
          if (!cfg_q[j].enable) begin
            cfg_d[j].alg     = reg_wval[IDE_SEL_CTRL_ALG_LSB +: 5];
            cfg_d[j].tee_lim = reg_wval[IDE_SEL_CTRL_TEE_LIM_BIT];
            cfg_d[j].pcrc    = PCRC_SUPPORTED && reg_wval[IDE_SEL_CTRL_PCRC_BIT];
            cfg_d[j].phe     = phe_mode(reg_wval[IDE_SEL_CTRL_PHE_LSB +: 4]);
            // "Software must enable aggregation prior to enabling the IDE Stream" (§6.33.6).
            cfg_d[j].agg     = AGG_SUPPORTED ? reg_wval[IDE_SEL_CTRL_AGG_LSB +: 6] : '0;
          end
        end
        if (32'(reg_idx_i) == sel_reg(j, IDE_SEL_STATUS) && reg_be_i[3] &&
            reg_wdata_i[IDE_SEL_STS_FAIL_RX_BIT]) begin
          cfg_d[j].fail_rx = 1'b0;
        end
        // RID Limit, RID Base and V must not change while Enable is Set (§7.9.26.5.2, the
        // result is undefined): here such writes are ignored, so they keep the sampled value.
        if (32'(reg_idx_i) == sel_reg(j, IDE_SEL_RID1) && !cfg_q[j].enable) begin
          cfg_d[j].rid_limit = reg_wval[IDE_RID1_LIMIT_LSB +: 16];
        end
        if (32'(reg_idx_i) == sel_reg(j, IDE_SEL_RID2) && !cfg_q[j].enable) begin
          cfg_d[j].rid_base = reg_wval[IDE_RID2_BASE_LSB +: 16];
          cfg_d[j].rid_v    = reg_wval[IDE_RID2_V_BIT];
        end
        // Address Association stays writable whatever Enable is (§7.9.26.5.5); a stream
        // has only its own count of blocks (§7.9.26.5.1), the entries past it stay 0.
        for (int unsigned b = 0; b < MaxBlk; b++) begin
          if (b < addr_blocks(j)) begin
            if (32'(reg_idx_i) == sel_reg(j, IDE_SEL_ADDR + IDE_ADDR_BLK_DW * b)) begin
              addr_d[j][b].v        = reg_wval[IDE_ADDR1_V_BIT];
              addr_d[j][b].base_lo  = reg_wval[IDE_ADDR1_BASE_LSB +: 12];
              addr_d[j][b].limit_lo = reg_wval[IDE_ADDR1_LIMIT_LSB +: 12];
            end
            if (32'(reg_idx_i) == sel_reg(j, IDE_SEL_ADDR + IDE_ADDR_BLK_DW * b + 1)) begin
              addr_d[j][b].limit_hi = reg_wval;
            end
            if (32'(reg_idx_i) == sel_reg(j, IDE_SEL_ADDR + IDE_ADDR_BLK_DW * b + 2)) begin
              addr_d[j][b].base_hi = reg_wval;
            end
          end
        end
      end
    end
    // Link IDE Stream Control: the same field rules as a Selective block's, for the fields
    // it has (§7.9.26.4.1).
    for (int i = 0; i < int'(NUM_LINK_TCS); i++) begin
      if (reg_wr_i && 32'(reg_idx_i) == link_reg(i, 0)) begin
        cfg_d[NUM_STREAMS + i].enable = reg_wval[IDE_SEL_CTRL_EN_BIT];
        cfg_d[NUM_STREAMS + i].tc     = reg_wval[IDE_SEL_CTRL_TC_LSB +: 3];
        cfg_d[NUM_STREAMS + i].sid    = reg_wval[IDE_SEL_CTRL_SID_LSB +: 8];
        if (!cfg_q[NUM_STREAMS + i].enable) begin
          cfg_d[NUM_STREAMS + i].alg  = reg_wval[IDE_SEL_CTRL_ALG_LSB +: 5];
          cfg_d[NUM_STREAMS + i].pcrc = PCRC_SUPPORTED && reg_wval[IDE_SEL_CTRL_PCRC_BIT];
          cfg_d[NUM_STREAMS + i].phe  = phe_mode(reg_wval[IDE_SEL_CTRL_PHE_LSB +: 4]);
          cfg_d[NUM_STREAMS + i].agg  = AGG_SUPPORTED ? reg_wval[IDE_SEL_CTRL_AGG_LSB +: 6] : '0;
        end
      end
      if (reg_wr_i && 32'(reg_idx_i) == link_reg(i, 1) && reg_be_i[3] &&
          reg_wdata_i[IDE_SEL_STS_FAIL_RX_BIT]) begin
        cfg_d[NUM_STREAMS + i].fail_rx = 1'b0;
      end
    end
    // A received IDE Fail Message wins over a simultaneous RW1C clear.
    for (int unsigned j = 0; j < NumAll; j++) begin
      if (fail_msg_rx_i[j]) begin
        cfg_d[j].fail_rx = 1'b1;
      end
    end
  end

  ///////////////////
  // Firmware port //
  ///////////////////

  // Key region: {1, stream[2:0], slot[3:0], dw[3:0]}
  assign fw_key    = fw_addr_i[IDE_FW_KEY_BIT];
  assign fw_stream = fw_addr_i[10:8];
  assign fw_slot   = fw_addr_i[7:4];
  assign fw_dw     = fw_addr_i[3:0];
  assign fw_key_wr = fw_wr_i && fw_key;
  assign fw_cmd_wr = fw_wr_i && (fw_addr_i == IDE_FW_CMD);

  // Command: [19:16] op, [15:8] stream index, [7:0] the IDE_KM KeySubStream byte
  // (bit 0 key set, bit 1 RxTxB, bits 7:4 sub-stream).
  assign cmd_op     = ide_cmd_e'(fw_wdata_i[19:16]);
  assign cmd_stream = fw_wdata_i[15:8];
  assign cmd_sub    = fw_wdata_i[7:4];
  assign cmd_slot   = {fw_wdata_i[5:4], fw_wdata_i[1], fw_wdata_i[0]};

  always_comb begin
    cmd_loaded = 1'b0;
    for (int unsigned j = 0; j < NumAll; j++) begin
      for (int unsigned s = 0; s < IDE_NUM_SLOTS; s++) begin
        if (32'(cmd_stream) == j && 32'(cmd_slot) == s) begin
          cmd_loaded = &ldm_q[j][s];
        end
      end
    end
  end

  always_comb begin
    cmd_sts_d = cmd_sts_q;
    cmd_go    = 1'b0;
    cmd_stop  = 1'b0;
    cmd_wipe  = 1'b0;
    if (fw_cmd_wr) begin
      if (!(cmd_op inside {IdeCmdKSetGo, IdeCmdKSetStop, IdeCmdWipe})) begin
        cmd_sts_d = IdeStsBadOp;
      end else if (32'(cmd_stream) >= NumAll) begin
        cmd_sts_d = IdeStsBadStream;
      end else if (cmd_op != IdeCmdWipe && cmd_sub > 4'd2) begin
        cmd_sts_d = IdeStsBadSubStream;
      end else if (cmd_op == IdeCmdKSetGo && !cmd_loaded) begin
        cmd_sts_d = IdeStsNotLoaded;
      end else begin
        cmd_sts_d = IdeStsOk;
        cmd_go    = (cmd_op == IdeCmdKSetGo);
        cmd_stop  = (cmd_op == IdeCmdKSetStop) && !MUTANT_K_SET_STOP_IGNORED;
        cmd_wipe  = (cmd_op == IdeCmdWipe);
      end
    end
  end

  // Reads: the key region always returns 0; no read path leads to key_q.
  always_comb begin
    fw_rdata_d = '0;
    if (fw_rd_i && !fw_key) begin
      if (fw_addr_i == IDE_FW_INFO) begin
        // [11:8]: the largest Address Association block count; each stream's own count is
        // in its Selective IDE Stream Capability register (CAP window).
        fw_rdata_d = {IDE_FW_MAP_VERSION, 8'(CapDw), 4'(NUM_LINK_TCS), 4'(MaxBlk),
                      8'(NUM_STREAMS)};
      end
      if (fw_addr_i == IDE_FW_CMD) begin
        fw_rdata_d = {28'b0, cmd_sts_q};
      end
      for (int unsigned j = 0; j < NumAll; j++) begin
        if (32'(fw_addr_i) == 32'(IDE_FW_STREAM) + 2 * j) begin
          fw_rdata_d = {cfg_q[j].sid, 18'b0, relock_q[j], cfg_q[j].enable,
                        secure_q[j] ? IDE_STATE_SECURE : IDE_STATE_INSECURE};
        end
        if (32'(fw_addr_i) == 32'(IDE_FW_STREAM) + 2 * j + 1) begin
          for (int unsigned s = 0; s < IDE_NUM_SLOTS; s++) begin
            fw_rdata_d[s]      = go_q[j][s];
            fw_rdata_d[16 + s] = &ldm_q[j][s];
          end
        end
      end
      for (int unsigned i = 0; i < CapDw; i++) begin
        if (32'(fw_addr_i) == 32'(IDE_FW_CFG) + i) begin
          fw_rdata_d = cap_regs[i];
        end
      end
    end
  end

  ///////////////////
  // Stream state  //
  ///////////////////

  // Per stream (PCIe 6.x §6.33.1, §6.33.3, §6.33.8; README "Stream state"):
  // - Insecure -> Secure: Enable = 1, RID Association V = 1 (Selective streams: a Link stream
  //   has no RID Association), Selected Algorithm supported, no
  //   failure since Enable was last written 0, and all six slots (Rx and Tx, PR/NPR/CPL) of
  //   one key set armed by K_SET_GO.
  // - Secure -> Insecure: Enable cleared, IDE Check Failed, IDE Fail Message received, or a
  //   firmware wipe. Every exit, and every wipe, zeroes all key slots of the stream.
  always_comb begin
    for (int unsigned j = 0; j < NumAll; j++) begin
      wipe_cmd[j] = cmd_wipe && 32'(cmd_stream) == j;
      leave[j]    = check_failed_i[j] || fail_msg_rx_i[j] || wipe_cmd[j] || !cfg_d[j].enable;
      wipe[j]     = (secure_q[j] && leave[j]) || wipe_cmd[j];
      // An IDE Fail Message goes to the partner on every exit but Enable cleared and a
      // received IDE Fail Message (§6.33.8).
      fail_tx_d[j] = secure_q[j] && (check_failed_i[j] || wipe_cmd[j]);
      // After a failure the stream stays Insecure until Enable is written 0 and Set again.
      relock_d[j] = cfg_d[j].enable &&
                    (relock_q[j] || wipe_cmd[j] ||
                     (secure_q[j] && (check_failed_i[j] || fail_msg_rx_i[j])));
    end
  end

  always_comb begin
    key_d = key_q;
    ldm_d = ldm_q;
    go_d  = go_q;
    for (int unsigned j = 0; j < NumAll; j++) begin
      for (int unsigned s = 0; s < IDE_NUM_SLOTS; s++) begin
        // KEY_PROG data: dropped while the slot is armed (K_SET_STOP it first).
        if (fw_key_wr && 32'(fw_stream) == j && 32'(fw_slot) == s && !go_q[j][s]) begin
          for (int unsigned d = 0; d < IDE_SLOT_DW; d++) begin
            if (32'(fw_dw) == d) begin
              key_d[j][s][d] = fw_wdata_i;
              ldm_d[j][s][d] = 1'b1;
            end
          end
        end
        if (cmd_go && 32'(cmd_stream) == j && 32'(cmd_slot) == s) begin
          go_d[j][s] = 1'b1;
        end
        // K_SET_STOP invalidates and renders unreadable the slot (§6.33.3); a wipe does so
        // for the whole stream. Either wins over a key write or K_SET_GO in the same cycle.
        if ((cmd_stop && 32'(cmd_stream) == j && 32'(cmd_slot) == s) || wipe[j]) begin
          key_d[j][s] = '0;
          ldm_d[j][s] = '0;
          go_d[j][s]  = 1'b0;
        end
      end
    end
  end

  always_comb begin
    for (int unsigned j = 0; j < NumAll; j++) begin
      if (secure_q[j]) begin
        secure_d[j] = !leave[j];
      end else begin
        secure_d[j] = cfg_d[j].enable && (j >= NUM_STREAMS || cfg_d[j].rid_v) &&
                      !relock_d[j] &&
                      (cfg_d[j].alg == IDE_ALG_AES_GCM_256) &&
                      ((go_d[j] & KeySet0Slots) == KeySet0Slots ||
                       (go_d[j] & KeySet1Slots) == KeySet1Slots);
      end
    end
  end

  ///////////////////////
  // TLP path outputs  //
  ///////////////////////

  always_comb begin
    for (int unsigned j = 0; j < NumAll; j++) begin
      stream_link_o[j]              = (j >= NUM_STREAMS);
      stream_id_o[8*j +: 8]         = cfg_q[j].sid;
      stream_enable_o[j]            = cfg_q[j].enable;
      stream_secure_o[j]            = secure_q[j];
      stream_tc_o[3*j +: 3]         = cfg_q[j].tc;
      stream_default_o[j]           = cfg_q[j].dflt;
      stream_tee_limited_o[j]       = cfg_q[j].tee_lim;
      stream_pcrc_o[j]              = cfg_q[j].pcrc;
      stream_phe_o[4*j +: 4]        = cfg_q[j].phe;
      stream_rid_base_o[16*j +: 16] = cfg_q[j].rid_base;
      stream_rid_limit_o[16*j +: 16] = cfg_q[j].rid_limit;
      stream_slot_go_o[12*j +: 12]  = go_q[j];
    end
    // Address Association of the Selective streams, straight from the registers: base =
    // {Memory Base Upper, Memory Base Lower}, limit = {Memory Limit Upper, Memory Limit Lower},
    // address bits [63:20] (§7.9.26.5.5); blocks past a stream's count stay 0 in addr_q.
    for (int unsigned j = 0; j < NUM_STREAMS; j++) begin
      for (int unsigned b = 0; b < MaxBlk; b++) begin
        stream_addr_o[IDE_ADDR_OUT_W * (j * MaxBlk + b) +: IDE_ADDR_OUT_W] =
            {addr_q[j][b].v, addr_q[j][b].base_hi, addr_q[j][b].base_lo,
             addr_q[j][b].limit_hi, addr_q[j][b].limit_lo};
      end
    end
  end

  assign tlp_stream_d = tlp_key_rd_i ? tlp_key_stream_i : tlp_stream_q;
  assign tlp_slot_d   = tlp_key_rd_i ? tlp_key_slot_i : tlp_slot_q;

  // The slot read last cycle, as it is now (a wipe in between shows zeros); 0 when idle.
  always_comb begin
    tlp_key_o    = '0;
    tlp_ifv_o    = '0;
    tlp_key_go_o = 1'b0;
    for (int unsigned j = 0; j < NumAll; j++) begin
      for (int unsigned s = 0; s < IDE_NUM_SLOTS; s++) begin
        if (tlp_rvalid_q && 32'(tlp_stream_q) == j && 32'(tlp_slot_q) == s) begin
          for (int unsigned d = 0; d < IDE_KEY_DW; d++) begin
            tlp_key_o[255 - 32 * d -: 32] = key_q[j][s][d];
          end
          tlp_ifv_o    = {key_q[j][s][IDE_KEY_DW], key_q[j][s][IDE_KEY_DW + 1]};
          tlp_key_go_o = go_q[j][s];
        end
      end
    end
  end

  assign tlp_key_rvalid_o = tlp_rvalid_q;
  assign fail_msg_tx_o    = fail_tx_q;
  assign reg_rdata_o      = reg_rdata_q;
  assign reg_rvalid_o     = reg_rvalid_q;
  assign fw_rdata_o       = fw_rdata_q;
  assign fw_rvalid_o      = fw_rvalid_q;

  // Command word bits without a meaning here (reserved bits of the command and KeySubStream).
  logic unused_cmd;
  assign unused_cmd = ^{fw_wdata_i[31:20], fw_wdata_i[3:2]};

  ///////////////
  // Registers //
  ///////////////

  // Reset (conventional reset or FLR of function 0) makes every stream Insecure and zeroes
  // every key and IFV (§6.33.8).
  always_ff @(posedge clk_i or negedge rst_ni) begin : p_regs
    if (!rst_ni) begin
      cfg_q        <= '0;
      addr_q       <= '0;
      secure_q     <= '0;
      relock_q     <= '0;
      fail_tx_q    <= '0;
      go_q         <= '0;
      ldm_q        <= '0;
      for (int unsigned j = 0; j < NumAll; j++) begin
        key_q[j] <= '0;  // per stream: one fill of all streams' keys is a very wide constant
      end
      cmd_sts_q    <= IdeStsOk;
      reg_rdata_q  <= '0;
      reg_rvalid_q <= 1'b0;
      fw_rdata_q   <= '0;
      fw_rvalid_q  <= 1'b0;
      tlp_stream_q <= '0;
      tlp_slot_q   <= '0;
      tlp_rvalid_q <= 1'b0;
    end else begin
      cfg_q        <= cfg_d;
      addr_q       <= addr_d;
      secure_q     <= secure_d;
      relock_q     <= relock_d;
      fail_tx_q    <= fail_tx_d;
      go_q         <= go_d;
      ldm_q        <= ldm_d;
      key_q        <= key_d;
      cmd_sts_q    <= cmd_sts_d;
      reg_rdata_q  <= reg_rdata_d;
      reg_rvalid_q <= reg_rd_i;
      fw_rdata_q   <= fw_rdata_d;
      fw_rvalid_q  <= fw_rd_i;
      tlp_stream_q <= tlp_stream_d;
      tlp_slot_q   <= tlp_slot_d;
      tlp_rvalid_q <= tlp_key_rd_i;
    end
  end

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  // Control outputs are never X after reset; data is known whenever it is valid.
  CtrlKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({reg_rvalid_o, fw_rvalid_o, tlp_key_rvalid_o, fail_msg_tx_o,
                   stream_enable_o, stream_secure_o, stream_slot_go_o}));
  RdataKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      reg_rvalid_o |-> !$isunknown(reg_rdata_o));
  FwRdataKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      fw_rvalid_o |-> !$isunknown(fw_rdata_o));
  TlpKeyKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      tlp_key_rvalid_o |-> !$isunknown({tlp_key_o, tlp_ifv_o, tlp_key_go_o}));
  // Each port carries one access per cycle.
  RegOneAccess_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !(reg_wr_i && reg_rd_i));
  FwOneAccess_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !(fw_wr_i && fw_rd_i));
  // The firmware port never returns key material: its key region reads 0.
  FwKeyReadsZero_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      fw_rd_i && fw_key |=> fw_rdata_o == '0);
  // A stream is Secure only while enabled, and a failure-locked stream is not Secure.
  SecureEnabled_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (stream_secure_o & ~stream_enable_o) == '0);
  SecureNotRelocked_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (secure_q & relock_q) == '0);
  // An IDE Fail Message is requested only as the stream leaves Secure.
  FailTxOnExit_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (fail_msg_tx_o & stream_secure_o) == '0);
`endif

endmodule

`default_nettype wire
