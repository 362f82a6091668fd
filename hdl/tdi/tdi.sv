// TDI: the TDISP interface state of the endpoint's one TEE Device Interface (PCIe 6.x ch. 11,
// §11.2, §11.4.5-11.4.9) and the hardware half of its enforcement.
//
// - The device firmware (the DSM) asks for LOCK, START, STOP and FAIL through the firmware
//   register port; the block refuses a transition the state machine does not allow.
// - The block itself forces CONFIG_LOCKED / RUN -> ERROR on the events that break a locked
//   interface: a config write to Command, a BAR or the Expansion ROM BAR, a write to the bound
//   IDE stream's registers, the bound stream leaving Secure, and a poisoned request.
// - It shadows the Command register's enables and the 64-bit BAR0 from the config writes the
//   hard IP forwards, for the TLP path and for the firmware's interface report.
// See README.md for the register map and the rules.

`default_nettype none

module tdi
  import tdi_pkg::*;
#(
  // IDE streams the interface may bind to (stream index 0 .. NUM_STREAMS-1); 1 .. 8.
  parameter int unsigned NUM_STREAMS = 2,
  // Size of BAR0 (64-bit non-prefetchable memory BAR) as log2 of bytes; 12 .. 31.
  parameter int unsigned BAR0_SIZE_LOG2 = 12,
  // Seeded bug for the mutation harness (hil/mutants.py), never for a real build: 1 = a
  // config write while CONFIG_LOCKED does not force ERROR (it still does in RUN). Keep 0.
  parameter bit MUTANT_CFG_WR_LOCKED = 1'b0
) (
  input  logic                   clk_i,
  input  logic                   rst_ni,  // conventional reset or FLR of function 0

  // Every configuration write the hard IP forwards (one-cycle strobe)
  input  logic                   cfg_wr_i,
  input  logic [7:0]             cfg_func_i,   // function number; only 0 is watched
  input  logic [9:0]             cfg_reg_i,    // DW register number
  input  logic [3:0]             cfg_be_i,     // byte enables
  input  logic [31:0]            cfg_wdata_i,

  // IDE streams (stream index j in bit j)
  input  logic [NUM_STREAMS-1:0] ide_stream_reg_wr_i,  // pulse: config write to stream j's
                                                       // Selective IDE register block
  input  logic [NUM_STREAMS-1:0] stream_secure_i,      // stream j is Secure

  // TLP path events
  input  logic                   tlp_poisoned_i,  // pulse: poisoned request to the interface

  // Firmware register port: one DW access per cycle (map in README.md)
  input  logic                   fw_wr_i,
  input  logic                   fw_rd_i,
  input  logic [4:0]             fw_addr_i,    // DW offset in the block's region
  input  logic [31:0]            fw_wdata_i,
  output logic [31:0]            fw_rdata_o,   // valid with fw_rvalid_o
  output logic                   fw_rvalid_o,  // one cycle after fw_rd_i

  // To the TLP path
  output logic [1:0]             tdi_state_o,     // TDISP TDI_STATE code
  output logic [2:0]             bound_stream_o,  // bound stream index (0 when unbound)
  output logic                   bound_o,         // bound to a stream (not CONFIG_UNLOCKED)
  output logic [63:0]            bar0_base_o,     // BAR0 base address as programmed
  output logic                   mem_enable_o,    // Command.Memory Space Enable
  output logic                   bus_master_o     // Command.Bus Master Enable
);

  ///////////////////////////
  // Parameters and types  //
  ///////////////////////////

  if (NUM_STREAMS < 1 || NUM_STREAMS > 8) begin : gen_bad_num_streams
    $fatal(1, "tdi: NUM_STREAMS must be 1 .. 8 (stream index is 3 bits)");
  end
  if (BAR0_SIZE_LOG2 < 12 || BAR0_SIZE_LOG2 > 31) begin : gen_bad_bar0_size
    $fatal(1, "tdi: BAR0_SIZE_LOG2 must be 12 .. 31 (4 KiB .. 2 GiB)");
  end

  // Writable address bits of the BAR0 low register: [31:BAR0_SIZE_LOG2].
  localparam logic [31:0] Bar0LoAddrMask = ~((32'd1 << BAR0_SIZE_LOG2) - 32'd1);

  //////////////////
  // Declarations //
  //////////////////

  tdi_state_e  state_q, state_d;
  logic [2:0]  stream_q, stream_d;  // bound stream index, 0 when unbound
  tdi_cause_e  cause_q, cause_d;
  tdi_sts_e    sts_q, sts_d;

  // Shadows of the Type 0 header
  logic        mse_q, mse_d;  // Command.Memory Space Enable
  logic        bme_q, bme_d;  // Command.Bus Master Enable
  logic [31:0] bar0_lo_q, bar0_lo_d;  // address bits only ([31:BAR0_SIZE_LOG2])
  logic [31:0] bar0_hi_q, bar0_hi_d;

  // Config writes
  logic        cfg_wr_f0;
  logic [31:0] cfg_wmask;
  logic        cfg_guarded;  // write to a register that a locked interface guards
  logic        cfg_event;    // a guarded write that forces ERROR in this state

  // Events
  logic        bound_reg_wr, bound_secure;
  logic        locked;       // CONFIG_LOCKED or RUN: events apply
  tdi_cause_e  ev_cause;
  tdi_state_e  state_ev;     // the state after this cycle's events, before the command

  // Firmware port
  logic        cmd_wr;
  tdi_op_e     cmd_op;
  logic [2:0]  cmd_stream;
  logic        cmd_stream_ok;  // the stream exists and is Secure
  logic        cmd_do;         // the command is carried out
  logic [31:0] bar0_lo_reg;    // the BAR0 low register as the host reads it
  logic [31:0] fw_rdata_q, fw_rdata_d;
  logic        fw_rvalid_q;

  ///////////////////////////////////
  // Type 0 header shadow (§7.5.1) //
  ///////////////////////////////////

  // The hard IP owns the header and completes every write; the block follows function 0's
  // writes byte by byte, keeping only the bits the hard IP makes writable.
  assign cfg_wr_f0 = cfg_wr_i && (cfg_func_i == 8'd0);
  assign cfg_wmask = {{8{cfg_be_i[3]}}, {8{cfg_be_i[2]}}, {8{cfg_be_i[1]}}, {8{cfg_be_i[0]}}};

  always_comb begin
    mse_d     = mse_q;
    bme_d     = bme_q;
    bar0_lo_d = bar0_lo_q;
    bar0_hi_d = bar0_hi_q;
    if (cfg_wr_f0) begin
      if (cfg_reg_i == CFG_REG_COMMAND && cfg_be_i[0]) begin
        mse_d = cfg_wdata_i[CFG_CMD_MSE_BIT];
        bme_d = cfg_wdata_i[CFG_CMD_BME_BIT];
      end
      if (cfg_reg_i == CFG_REG_BAR0) begin
        bar0_lo_d = ((bar0_lo_q & ~cfg_wmask) | (cfg_wdata_i & cfg_wmask)) & Bar0LoAddrMask;
      end
      if (cfg_reg_i == CFG_REG_BAR1) begin
        bar0_hi_d = (bar0_hi_q & ~cfg_wmask) | (cfg_wdata_i & cfg_wmask);
      end
    end
  end

  // Reads back as a 64-bit non-prefetchable memory BAR; sizing (all ones) gives ~(size-1)|4.
  assign bar0_lo_reg = (bar0_lo_q & Bar0LoAddrMask) | {28'b0, CFG_BAR_MEM64_NP};

  ///////////////////////////////////////////
  // Events that force ERROR (§11.4.5-9)   //
  ///////////////////////////////////////////

  // Config writes that change what a locked interface relies on: the Command register's
  // enables (bytes 0-1; bytes 2-3 are Status), BAR0..5 and the Expansion ROM BAR. A write with
  // no byte enabled changes nothing and does not count.
  assign cfg_guarded = cfg_wr_f0 &&
                       ((cfg_reg_i == CFG_REG_COMMAND && |cfg_be_i[1:0]) ||
                        (cfg_reg_i >= CFG_REG_BAR0 && cfg_reg_i <= CFG_REG_BAR5 && |cfg_be_i) ||
                        (cfg_reg_i == CFG_REG_EXP_ROM && |cfg_be_i));

  always_comb begin
    bound_reg_wr = 1'b0;
    bound_secure = 1'b0;
    cmd_stream_ok = 1'b0;
    for (int unsigned j = 0; j < NUM_STREAMS; j++) begin
      if (32'(stream_q) == j) begin
        bound_reg_wr = ide_stream_reg_wr_i[j];
        bound_secure = stream_secure_i[j];
      end
      if (32'(cmd_stream) == j) begin
        cmd_stream_ok = stream_secure_i[j];
      end
    end
  end

  assign locked = (state_q == TdiConfigLocked) || (state_q == TdiRun);

  assign cfg_event = (cfg_guarded || bound_reg_wr) &&
                     !(MUTANT_CFG_WR_LOCKED && state_q == TdiConfigLocked);

  // One cause per entry into ERROR; when several events coincide the lowest code is recorded.
  always_comb begin
    if (cfg_event) begin
      ev_cause = TdiCauseCfgWrite;
    end else if (!bound_secure) begin
      ev_cause = TdiCauseInsecure;
    end else if (tlp_poisoned_i) begin
      ev_cause = TdiCausePoisoned;
    end else begin
      ev_cause = TdiCauseNone;
    end
  end

  assign state_ev = (locked && ev_cause != TdiCauseNone) ? TdiError : state_q;

  //////////////////////////
  // Firmware commands    //
  //////////////////////////

  assign cmd_wr     = fw_wr_i && (fw_addr_i == TDI_FW_CMD);
  assign cmd_op     = tdi_op_e'(fw_wdata_i[3:0]);
  assign cmd_stream = fw_wdata_i[TDI_CMD_STREAM_LSB +: 3];

  // A command acts on the state this cycle's events left (an event wins over a command in the
  // same cycle); STOP is always done.
  always_comb begin
    sts_d  = sts_q;
    cmd_do = 1'b0;
    if (cmd_wr) begin
      unique case (cmd_op)
        TdiOpLock: begin
          if (state_ev != TdiConfigUnlocked) begin
            sts_d = TdiStsBadState;
          end else if (!cmd_stream_ok) begin
            sts_d = TdiStsBadStream;
          end else begin
            sts_d = TdiStsOk;
          end
        end
        TdiOpStart: sts_d = (state_ev == TdiConfigLocked) ? TdiStsOk : TdiStsBadState;
        TdiOpStop:  sts_d = TdiStsOk;
        TdiOpFail:  sts_d = (state_ev == TdiConfigLocked || state_ev == TdiRun) ?
                            TdiStsOk : TdiStsBadState;
        default:    sts_d = TdiStsBadOp;
      endcase
      cmd_do = (sts_d == TdiStsOk);
    end
  end

  ///////////////////////
  // TDI state machine //
  ///////////////////////

  always_comb begin : p_fsm
    state_d  = state_ev;
    stream_d = stream_q;
    cause_d  = (state_ev != state_q) ? ev_cause : cause_q;
    unique case (state_ev)
      // CONFIG_UNLOCKED: the host may configure the function; nothing is bound and no event
      // applies. LOCK (firmware, after LOCK_INTERFACE_REQUEST checks) binds a Secure stream.
      TdiConfigUnlocked: begin
        if (cmd_do && cmd_op == TdiOpLock) begin
          state_d  = TdiConfigLocked;
          stream_d = cmd_stream;
        end
      end
      // CONFIG_LOCKED: configuration frozen and bound; START_INTERFACE_REQUEST moves on to RUN.
      TdiConfigLocked: begin
        if (cmd_do && cmd_op == TdiOpStart) begin
          state_d = TdiRun;
        end
      end
      // RUN: the interface takes TEE requests on its bound stream.
      TdiRun: ;
      // ERROR: stays until STOP or reset.
      TdiError: ;
      default: begin
        state_d = TdiError;
      end
    endcase
    // FAIL: the firmware saw the interface broken (e.g. its SPDM session ended, §11.4.5).
    if (cmd_do && cmd_op == TdiOpFail) begin
      state_d = TdiError;
      cause_d = TdiCauseFwFail;
    end
    // STOP_INTERFACE_REQUEST: from any state back to CONFIG_UNLOCKED (§11.2).
    if (cmd_do && cmd_op == TdiOpStop) begin
      state_d  = TdiConfigUnlocked;
      stream_d = 3'd0;
      cause_d  = TdiCauseNone;
    end
  end

  ///////////////////
  // Firmware port //
  ///////////////////

  always_comb begin
    fw_rdata_d = '0;
    if (fw_rd_i) begin
      unique case (fw_addr_i)
        TDI_FW_STATE: begin
          fw_rdata_d[1:0]                         = state_q;
          fw_rdata_d[TDI_STATE_STREAM_LSB +: 3]   = stream_q;
          fw_rdata_d[TDI_STATE_BOUND_BIT]         = bound_o;
          fw_rdata_d[TDI_STATE_CAUSE_LSB +: 8]    = cause_q;
          fw_rdata_d[TDI_STATE_VER_LSB +: 8]      = TDI_FW_MAP_VERSION;
        end
        TDI_FW_CMD:         fw_rdata_d[3:0] = sts_q;
        TDI_FW_BAR0_LO:     fw_rdata_d = bar0_lo_reg;
        TDI_FW_BAR0_HI:     fw_rdata_d = bar0_hi_q;
        TDI_FW_BAR0_INFO: begin
          fw_rdata_d[5:0]              = 6'(BAR0_SIZE_LOG2);
          fw_rdata_d[TDI_INFO_MSE_BIT] = mse_q;
          fw_rdata_d[TDI_INFO_BME_BIT] = bme_q;
        end
        TDI_FW_NUM_STREAMS: fw_rdata_d[3:0] = 4'(NUM_STREAMS);
        default:            fw_rdata_d = '0;
      endcase
    end
  end

  /////////////
  // Outputs //
  /////////////

  assign tdi_state_o    = state_q;
  assign bound_o        = (state_q != TdiConfigUnlocked);
  assign bound_stream_o = stream_q;
  assign bar0_base_o    = {bar0_hi_q, bar0_lo_q & Bar0LoAddrMask};
  assign mem_enable_o   = mse_q;
  assign bus_master_o   = bme_q;
  assign fw_rdata_o     = fw_rdata_q;
  assign fw_rvalid_o    = fw_rvalid_q;

  // Command word bits without a meaning here (reserved).
  logic unused_cmd;
  assign unused_cmd = ^{fw_wdata_i[31:11], fw_wdata_i[7:4]};

  ///////////////
  // Registers //
  ///////////////

  // Reset (conventional reset or FLR): CONFIG_UNLOCKED, unbound, no cause, shadows at the
  // header's reset values (§11.2: a reset returns every TDI to CONFIG_UNLOCKED).
  always_ff @(posedge clk_i or negedge rst_ni) begin : p_regs
    if (!rst_ni) begin
      state_q     <= TdiConfigUnlocked;
      stream_q    <= '0;
      cause_q     <= TdiCauseNone;
      sts_q       <= TdiStsOk;
      mse_q       <= 1'b0;
      bme_q       <= 1'b0;
      bar0_lo_q   <= '0;
      bar0_hi_q   <= '0;
      fw_rdata_q  <= '0;
      fw_rvalid_q <= 1'b0;
    end else begin
      state_q     <= state_d;
      stream_q    <= stream_d;
      cause_q     <= cause_d;
      sts_q       <= sts_d;
      mse_q       <= mse_d;
      bme_q       <= bme_d;
      bar0_lo_q   <= bar0_lo_d;
      bar0_hi_q   <= bar0_hi_d;
      fw_rdata_q  <= fw_rdata_d;
      fw_rvalid_q <= fw_rd_i;
    end
  end

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  // Outputs are never X after reset; read data is known whenever it is valid.
  OutputsKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({tdi_state_o, bound_stream_o, bound_o, bar0_base_o, mem_enable_o,
                   fw_rvalid_o}));
  FwRdataKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      fw_rvalid_o |-> !$isunknown(fw_rdata_o));
  // One firmware access per cycle.
  FwOneAccess_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !(fw_wr_i && fw_rd_i));
  // RUN (and CONFIG_LOCKED) imply a binding to an existing stream; unbound shows index 0.
  RunBound_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (tdi_state_o == TdiRun || tdi_state_o == TdiConfigLocked) |-> bound_o);
  BoundStreamExists_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      bound_o |-> 32'(bound_stream_o) < NUM_STREAMS);
  UnboundZero_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !bound_o |-> bound_stream_o == 3'd0);
  // A cause is recorded exactly while the interface is in ERROR.
  CauseInError_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (cause_q != TdiCauseNone) == (state_q == TdiError));
  // RUN is entered only from CONFIG_LOCKED, CONFIG_LOCKED only from CONFIG_UNLOCKED.
  RunFromLocked_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (state_q != TdiRun && state_q != TdiConfigLocked) |=> tdi_state_o != TdiRun);
  LockedFromUnlocked_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (state_q != TdiConfigUnlocked && state_q != TdiConfigLocked) |=>
      tdi_state_o != TdiConfigLocked);
  // A locked interface whose bound stream is not Secure does not stay locked.
  InsecureLeaves_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      locked && !bound_secure |=>
      (tdi_state_o == TdiError || tdi_state_o == TdiConfigUnlocked));
  // ERROR is left only by STOP.
  ErrorSticky_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      state_q == TdiError && !(cmd_wr && cmd_op == TdiOpStop) |=> tdi_state_o == TdiError);
  // BAR0's base is aligned to its size.
  Bar0Aligned_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      (bar0_base_o[31:0] & ~Bar0LoAddrMask) == '0);
`endif

endmodule

`default_nettype wire
