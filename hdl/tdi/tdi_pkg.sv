// tdi_pkg: constants of the TDI (TEE Device Interface) block: the TDISP interface state codes
// (PCIe 6.x §11.2), firmware commands, statuses and ERROR causes, the firmware register map
// and the Type 0 header registers the block watches. See hdl/tdi/README.md for the tables.

`default_nettype none

package tdi_pkg;

  //////////////////////////////
  // TDI state (TDISP codes)  //
  //////////////////////////////

  // The values are the TDI_STATE codes of the TDISP DEVICE_INTERFACE_STATE response, so the
  // firmware can copy the register field into its response unchanged.
  typedef enum logic [1:0] {
    TdiConfigUnlocked = 2'd0,  // CONFIG_UNLOCKED: configurable, not bound to a stream
    TdiConfigLocked   = 2'd1,  // CONFIG_LOCKED: configuration frozen, bound, not yet running
    TdiRun            = 2'd2,  // RUN: bound, TEE traffic accepted
    TdiError          = 2'd3   // ERROR: locked configuration broken; only STOP leaves it
  } tdi_state_e;

  ///////////////////////////
  // Firmware commands     //
  ///////////////////////////

  // TDI_CMD write [3:0]
  typedef enum logic [3:0] {
    TdiOpLock  = 4'h1,  // CONFIG_UNLOCKED -> CONFIG_LOCKED, bind the stream in [10:8]
    TdiOpStart = 4'h2,  // CONFIG_LOCKED -> RUN
    TdiOpStop  = 4'h3,  // any -> CONFIG_UNLOCKED, unbind, cause cleared
    TdiOpFail  = 4'h4   // CONFIG_LOCKED / RUN -> ERROR (firmware-detected failure)
  } tdi_op_e;

  // TDI_CMD read [3:0]: status of the last command
  typedef enum logic [3:0] {
    TdiStsOk        = 4'h0,  // done
    TdiStsBadState  = 4'h1,  // not allowed in the current state
    TdiStsBadOp     = 4'h2,  // unknown op
    TdiStsBadStream = 4'h3   // LOCK: stream index >= NUM_STREAMS or the stream is not Secure
  } tdi_sts_e;

  // TDI_STATE [15:8]: cause of the last entry into ERROR (0 since reset or STOP)
  typedef enum logic [7:0] {
    TdiCauseNone     = 8'h00,
    TdiCauseCfgWrite = 8'h01,  // config write to Command, a BAR, the ROM BAR or bound IDE regs
    TdiCauseInsecure = 8'h02,  // the bound IDE stream left Secure
    TdiCauseFwFail   = 8'h03,  // firmware FAIL command
    TdiCausePoisoned = 8'h04   // poisoned request addressed to the interface
  } tdi_cause_e;

  /////////////////////////////
  // Firmware register map   //
  /////////////////////////////

  // DW offsets in the block's 32-DW region (firmware addresses 0x100 + offset).
  localparam logic [4:0] TDI_FW_STATE       = 5'd0;  // RO: state, binding, cause, version
  localparam logic [4:0] TDI_FW_CMD         = 5'd1;  // W: command; R: last command status
  localparam logic [4:0] TDI_FW_BAR0_LO     = 5'd2;  // RO: BAR0 low register shadow
  localparam logic [4:0] TDI_FW_BAR0_HI     = 5'd3;  // RO: BAR0 high register shadow
  localparam logic [4:0] TDI_FW_BAR0_INFO   = 5'd4;  // RO: BAR0 size log2, MSE, BME
  localparam logic [4:0] TDI_FW_NUM_STREAMS = 5'd5;  // RO: NUM_STREAMS
  localparam logic [7:0] TDI_FW_MAP_VERSION = 8'h01; // TDI_STATE[31:24]

  // Field positions
  localparam int unsigned TDI_STATE_STREAM_LSB = 4;   // TDI_STATE [6:4] bound stream index
  localparam int unsigned TDI_STATE_BOUND_BIT  = 7;   // TDI_STATE b7 bound
  localparam int unsigned TDI_STATE_CAUSE_LSB  = 8;   // TDI_STATE [15:8] cause
  localparam int unsigned TDI_STATE_VER_LSB    = 24;  // TDI_STATE [31:24] map version
  localparam int unsigned TDI_CMD_STREAM_LSB   = 8;   // TDI_CMD write [10:8] stream (LOCK)
  localparam int unsigned TDI_INFO_MSE_BIT     = 8;   // BAR0_INFO b8 Memory Space Enable
  localparam int unsigned TDI_INFO_BME_BIT     = 9;   // BAR0_INFO b9 Bus Master Enable

  //////////////////////////////////////////
  // Type 0 configuration header (§7.5.1) //
  //////////////////////////////////////////

  // DW register numbers
  localparam logic [9:0] CFG_REG_COMMAND = 10'd1;   // Command (bytes 0-1) / Status (2-3)
  localparam logic [9:0] CFG_REG_BAR0    = 10'd4;   // Base Address Register 0
  localparam logic [9:0] CFG_REG_BAR1    = 10'd5;   // BAR1 = BAR0 upper half (64-bit BAR0)
  localparam logic [9:0] CFG_REG_BAR5    = 10'd9;   // Base Address Register 5
  localparam logic [9:0] CFG_REG_EXP_ROM = 10'd12;  // Expansion ROM Base Address

  // Command register bits
  localparam int unsigned CFG_CMD_MSE_BIT = 1;  // Memory Space Enable
  localparam int unsigned CFG_CMD_BME_BIT = 2;  // Bus Master Enable

  // BAR low bits [3:0] of a 64-bit non-prefetchable memory BAR: Prefetchable 0, Type 10b
  // (64-bit), Memory Space Indicator 0.
  localparam logic [3:0] CFG_BAR_MEM64_NP = 4'b0100;

endpackage

`default_nettype wire
