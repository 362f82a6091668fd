// ide_cap_pkg: constants of the IDE extended capability (PCIe 6.x §7.9.26) and of the firmware
// register map of ide_cap. See hdl/ide_cap/README.md for the register tables.

`default_nettype none

package ide_cap_pkg;

  ///////////////////////////////////////////////
  // Capability identity and place (§7.9.26.1) //
  ///////////////////////////////////////////////

  localparam logic [15:0] IDE_CAP_ID = 16'h0030;
  localparam logic [3:0]  IDE_CAP_VERSION = 4'h1;
  // In the endpoint's cfg_ext window right after the DOE capability (0x480 + 0x18).
  localparam logic [11:0] IDE_CAP_OFFSET = 12'h498;
  // Room from IDE_CAP_OFFSET to the end of the window (0x4FF), in DW.
  localparam int unsigned IDE_CAP_MAX_DW = 26;

  //////////////////////////////////////////////
  // Register DW index from the capability base //
  //////////////////////////////////////////////

  localparam int unsigned IDE_REG_HEADER = 0;  // 00h Extended Capability Header
  localparam int unsigned IDE_REG_CAP = 1;     // 04h IDE Capability
  localparam int unsigned IDE_REG_CTRL = 2;    // 08h IDE Control
  localparam int unsigned IDE_REG_LINK0 = 3;   // 0Ch first Link IDE Stream block (if any)
  localparam int unsigned IDE_LINK_BLK_DW = 2;  // Link IDE Stream block: Control, Status
  // The first Selective IDE Stream block follows the Link IDE blocks:
  // DW IDE_REG_LINK0 + IDE_LINK_BLK_DW * (number of Link IDE blocks).

  // Selective IDE Stream register block: DW index from the block base (§7.9.26.5)
  localparam int unsigned IDE_SEL_CAP = 0;     // Selective IDE Stream Capability
  localparam int unsigned IDE_SEL_CTRL = 1;    // Selective IDE Stream Control
  localparam int unsigned IDE_SEL_STATUS = 2;  // Selective IDE Stream Status
  localparam int unsigned IDE_SEL_RID1 = 3;    // IDE RID Association Register 1
  localparam int unsigned IDE_SEL_RID2 = 4;    // IDE RID Association Register 2
  localparam int unsigned IDE_SEL_ADDR = 5;    // first IDE Address Association Register block
  localparam int unsigned IDE_SEL_FIXED_DW = 5;  // block size without address blocks
  localparam int unsigned IDE_ADDR_BLK_DW = 3;   // one Address Association block

  // IDE Capability register (§7.9.26.2)
  localparam int unsigned IDE_CAP_LINK_BIT = 0;       // Link IDE Stream Supported
  localparam int unsigned IDE_CAP_SEL_BIT = 1;        // Selective IDE Streams Supported
  localparam int unsigned IDE_CAP_FLOW_THRU_BIT = 2;  // Flow-Through IDE Stream Supported
  localparam int unsigned IDE_CAP_PHE_BIT = 3;        // Partial Header Encryption Supported
  localparam int unsigned IDE_CAP_AGGR_BIT = 4;       // Aggregation Supported
  localparam int unsigned IDE_CAP_PCRC_BIT = 5;       // PCRC Supported
  localparam int unsigned IDE_CAP_IDE_KM_BIT = 6;     // IDE_KM Protocol Supported (responder)
  localparam int unsigned IDE_CAP_SEL_CFG_BIT = 7;    // Selective IDE for Config Requests
  localparam int unsigned IDE_CAP_ALG_LSB = 8;        // [12:8] Supported Algorithms
  localparam int unsigned IDE_CAP_LINK_TCS_LSB = 13;  // [15:13] Number of TCs for Link IDE - 1
  localparam int unsigned IDE_CAP_NUM_SEL_LSB = 16;   // [23:16] Selective IDE Streams - 1
  localparam int unsigned IDE_CAP_TEE_LIM_BIT = 24;   // TEE-Limited Stream Supported

  // Algorithm encoding (Supported / Selected Algorithm)
  localparam logic [4:0] IDE_ALG_AES_GCM_256 = 5'b00000;  // AES-GCM, 256-bit key, 96-bit MAC

  // Selective IDE Stream Control register (§7.9.26.5.2)
  localparam int unsigned IDE_SEL_CTRL_EN_BIT = 0;        // Selective IDE Stream Enable
  localparam int unsigned IDE_SEL_CTRL_AGG_LSB = 2;       // [7:2] Tx Aggregation Mode NPR/PR/CPL
  localparam int unsigned IDE_SEL_CTRL_PCRC_BIT = 8;      // PCRC Enable
  localparam int unsigned IDE_SEL_CTRL_PHE_LSB = 10;      // [13:10] Partial Header Encryption Mode
  localparam int unsigned IDE_SEL_CTRL_ALG_LSB = 14;      // [18:14] Selected Algorithm
  localparam int unsigned IDE_SEL_CTRL_TC_LSB = 19;       // [21:19] TC
  localparam int unsigned IDE_SEL_CTRL_DEFAULT_BIT = 22;  // Default Stream
  localparam int unsigned IDE_SEL_CTRL_TEE_LIM_BIT = 23;  // TEE-Limited Stream
  localparam int unsigned IDE_SEL_CTRL_SID_LSB = 24;      // [31:24] Stream ID

  // Link IDE Stream Control (§7.9.26.4.1) has the same fields at the same places for what it
  // holds: Enable b0, Tx Aggregation Mode [7:2], PCRC Enable b8, Partial Header Encryption Mode [13:10], Selected
  // Algorithm [18:14], TC [21:19], Stream ID [31:24]; its Status (§7.9.26.4.2) is laid out as the Selective one below.

  // Selective IDE Stream Status register (§7.9.26.5.3)
  localparam logic [3:0]  IDE_STATE_INSECURE = 4'b0000;
  localparam logic [3:0]  IDE_STATE_SECURE = 4'b0010;
  localparam int unsigned IDE_SEL_STS_FAIL_RX_BIT = 31;  // Received IDE Fail Message (RW1C)

  // IDE RID Association registers (§7.9.26.5.4)
  localparam int unsigned IDE_RID1_LIMIT_LSB = 8;  // [23:8] RID Limit
  localparam int unsigned IDE_RID2_V_BIT = 0;      // Valid
  localparam int unsigned IDE_RID2_BASE_LSB = 8;   // [23:8] RID Base

  // IDE Address Association Register 1 (§7.9.26.5.5.1)
  localparam int unsigned IDE_ADDR1_V_BIT = 0;       // Valid
  localparam int unsigned IDE_ADDR1_BASE_LSB = 8;    // [19:8] Memory Base Lower
  localparam int unsigned IDE_ADDR1_LIMIT_LSB = 20;  // [31:20] Memory Limit Lower

  // One Address Association block as ide_cap's stream_addr_o carries it to the TLP path:
  // {Valid, Memory Base address[63:20], Memory Limit address[63:20]}, i.e. {V, Memory Base
  // Upper, Memory Base Lower, Memory Limit Upper, Memory Limit Lower} (§7.9.26.5.5).
  localparam int unsigned IDE_ADDR_OUT_W = 1 + 44 + 44;

  /////////////////////////////////////////////////
  // Address Association blocks per stream       //
  /////////////////////////////////////////////////

  // Each Selective IDE Stream register block says in its own Selective IDE Stream Capability
  // register [3:0] how many Address Association blocks it has (§7.9.26.5.1), so the blocks of
  // a capability may differ in size. ide_cap takes the counts as NUM_ADDR_BLOCKS and
  // STREAM_ADDR_BLOCKS (4 bits per stream, stream j in [4j+3:4j], 0: NUM_ADDR_BLOCKS); these
  // functions give a parent the same layout and port widths.

  // Address Association blocks of Selective stream j.
  function automatic int unsigned ide_addr_blocks_of(int unsigned j,
                                                     int unsigned num_addr_blocks,
                                                     logic [31:0] stream_addr_blocks);
    logic [3:0] n;
    n = (j < 8) ? 4'(stream_addr_blocks >> (4 * j)) : 4'd0;
    return (n != 4'd0) ? 32'(n) : num_addr_blocks;
  endfunction

  // The largest count over Selective streams 0 .. num_streams - 1: the number of entries per
  // stream on ide_cap's stream_addr_o.
  function automatic int unsigned ide_addr_blocks_max(int unsigned num_streams,
                                                      int unsigned num_addr_blocks,
                                                      logic [31:0] stream_addr_blocks);
    int unsigned m;
    m = 0;
    for (int unsigned j = 0; j < num_streams; j++) begin
      if (ide_addr_blocks_of(j, num_addr_blocks, stream_addr_blocks) > m) begin
        m = ide_addr_blocks_of(j, num_addr_blocks, stream_addr_blocks);
      end
    end
    return m;
  endfunction

  // DW index, from the capability base, of Selective stream j's register block: after the
  // Link IDE blocks and the Selective blocks before it (each IDE_SEL_FIXED_DW + IDE_ADDR_BLK_DW
  // x its count). j = the number of Selective streams gives the capability's size in DW.
  function automatic int unsigned ide_sel_base(int unsigned j,
                                               int unsigned num_link_tcs,
                                               int unsigned num_addr_blocks,
                                               logic [31:0] stream_addr_blocks);
    int unsigned base;
    base = IDE_REG_LINK0 + IDE_LINK_BLK_DW * num_link_tcs;
    for (int unsigned k = 0; k < j; k++) begin
      base += IDE_SEL_FIXED_DW +
              IDE_ADDR_BLK_DW * ide_addr_blocks_of(k, num_addr_blocks, stream_addr_blocks);
    end
    return base;
  endfunction

  /////////////////////////////
  // Firmware register map   //
  /////////////////////////////

  // DW addresses on the firmware port (fw_addr_i).
  localparam logic [11:0] IDE_FW_INFO = 12'h000;       // RO: block geometry
  localparam logic [11:0] IDE_FW_CMD = 12'h001;        // W: command; R: last command status
  localparam logic [11:0] IDE_FW_STREAM = 12'h010;     // RO: 2 DW per stream (state, slots)
  localparam logic [11:0] IDE_FW_CFG = 12'h040;        // RO: the capability, DW 0..63
  localparam int unsigned IDE_FW_KEY_BIT = 11;         // set: key slot region (write only)
  localparam logic [7:0]  IDE_FW_MAP_VERSION = 8'h02;  // INFO[31:24]; 02h: Link IDE in [15:12]

  // Key slots per stream: 2 key sets x 2 directions x 3 sub-streams. Slot code
  // {sub-stream[1:0], RxTxB, key set} gives 0..11; a slot holds 8 key DW and 2 IFV DW.
  localparam int unsigned IDE_NUM_SLOTS = 12;
  localparam int unsigned IDE_SLOT_DW = 10;
  localparam int unsigned IDE_KEY_DW = 8;

  // Firmware commands (IDE_FW_CMD[19:16])
  typedef enum logic [3:0] {
    IdeCmdKSetGo   = 4'h1,  // arm the addressed key slot (IDE_KM K_SET_GO)
    IdeCmdKSetStop = 4'h2,  // disarm and zero the addressed key slot (IDE_KM K_SET_STOP)
    IdeCmdWipe     = 4'h3   // zero every slot of the stream and make it Insecure
  } ide_cmd_e;

  // Last command status (IDE_FW_CMD read)
  typedef enum logic [3:0] {
    IdeStsOk           = 4'h0,
    IdeStsBadOp        = 4'h1,  // unknown command code
    IdeStsBadStream    = 4'h2,  // stream index >= NUM_STREAMS + NUM_LINK_TCS
    IdeStsBadSubStream = 4'h3,  // sub-stream other than PR, NPR, CPL
    IdeStsNotLoaded    = 4'h4   // K_SET_GO on a slot whose 10 DW were not all written
  } ide_cmd_sts_e;

endpackage

`default_nettype wire
