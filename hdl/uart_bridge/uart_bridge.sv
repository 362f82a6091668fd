// uart_bridge: the endpoint's DSM port and firmware register port over one UART line.
//
// Speaks the frames of hil/codec/uart.py: COBS({channel, seq, length u16 LE, payload,
// CRC-32 IEEE u32 LE}) followed by 0x00.  Device to controller: each object on the DSM request
// stream becomes a DSM_REQUEST frame, a dsm_abort_i pulse a DSM_ABORT frame, the answer to a
// REG_READ a REG_DATA frame, and the telemetry inputs a TELEMETRY frame when they change
// (rate-limited) or when a TELEMETRY_REQ asks.  Controller to device: a DSM_RESPONSE payload
// streams out on the DSM response port (unless it answers an aborted request: responses are
// dropped from an abort until the controller has acknowledged every abort notice with a
// DSM_ABORT_ACK), REG_WRITE/REG_READ drive the firmware register port, TELEMETRY_REQ asks for
// telemetry.  Received frames
// that fail the COBS, CRC or length checks (or are not acted on) are counted and dropped; the
// receiver resynchronises at every 0x00.  Limits: README.md.

`default_nettype none

module uart_bridge #(
  // Clock cycles per UART bit (8N1 on both lines); >= 4.
  parameter int unsigned CLKS_PER_BIT = 4,
  // Largest DOE object in DW, per direction (one buffer each); 2 .. 4096 (MAX_PAYLOAD).
  parameter int unsigned MAX_OBJ_DW   = 1024,
  // IDE streams reported in telemetry; 1 .. 8.
  parameter int unsigned NUM_STREAMS  = 2,
  // Clock frequency in Hz: CLK_HZ / 1000 cycles make one millisecond of uptime; >= 1000.
  parameter int unsigned CLK_HZ       = 250_000_000,
  // Fewest cycles from one telemetry frame to the next one sent for a change; >= 1.
  parameter int unsigned TEL_GAP_CYCLES = CLK_HZ / 100
) (
  input  logic        clk_i,
  input  logic        rst_ni,

  // UART line (idle high)
  input  logic        uart_rx_i,       // from the controller, asynchronous
  output logic        uart_tx_o,       // to the controller

  // DSM request stream from the endpoint: whole DOE objects, DW0 first
  input  logic [31:0] dsm_req_data_i,
  input  logic        dsm_req_valid_i,
  input  logic        dsm_req_last_i,
  output logic        dsm_req_ready_o,

  // DSM response stream to the endpoint: whole DOE objects, DW0 first
  output logic [31:0] dsm_rsp_data_o,
  output logic        dsm_rsp_valid_o,
  output logic        dsm_rsp_last_o,
  input  logic        dsm_rsp_ready_i,

  // Events from the endpoint
  input  logic        dsm_abort_i,     // one-cycle pulse: the DOE mailbox was aborted

  // Firmware register port of the endpoint
  output logic        fw_wr_o,
  output logic        fw_rd_o,
  output logic [11:0] fw_addr_o,       // DW address
  output logic [31:0] fw_wdata_o,
  input  logic [31:0] fw_rdata_i,      // valid with fw_rvalid_i
  input  logic        fw_rvalid_i,     // some cycles after fw_rd_o

  // Telemetry from the endpoint: any change sends a TELEMETRY frame (hil.codec.uart.Telemetry)
  input  logic [7:0]               tel_tdi_state_i,
  input  logic [8*NUM_STREAMS-1:0] tel_stream_state_i,        // stream j at [8j+7:8j]
  input  logic [31:0]              tel_doe_errors_i,
  input  logic [31:0]              tel_ide_check_failures_i,

  // Status
  output logic [15:0] drop_count_o     // frames received and dropped (saturating)
);

  ////////////////
  // Parameters //
  ////////////////

  if (CLKS_PER_BIT < 4) begin : gen_bad_clks_per_bit
    $fatal(1, "uart_bridge: CLKS_PER_BIT must be at least 4");
  end
  if (MAX_OBJ_DW < 2 || MAX_OBJ_DW > 4096) begin : gen_bad_max_obj_dw
    $fatal(1, "uart_bridge: MAX_OBJ_DW must lie in 2 .. 4096 (hil.codec.uart.MAX_PAYLOAD)");
  end
  if (NUM_STREAMS < 1 || NUM_STREAMS > 8) begin : gen_bad_num_streams
    $fatal(1, "uart_bridge: NUM_STREAMS must lie in 1 .. 8");
  end
  if (CLK_HZ < 1000) begin : gen_bad_clk_hz
    $fatal(1, "uart_bridge: CLK_HZ must be at least 1000");
  end
  if (TEL_GAP_CYCLES < 1) begin : gen_bad_tel_gap
    $fatal(1, "uart_bridge: TEL_GAP_CYCLES must be at least 1");
  end

  localparam int unsigned AW = (MAX_OBJ_DW > 1) ? $clog2(MAX_OBJ_DW) : 1;  // buffer address
  localparam int unsigned CW = $clog2(CLKS_PER_BIT * 3 / 2 + 1);            // bit timer

  localparam logic [7:0]  ChDsmRequest  = 8'h01;
  localparam logic [7:0]  ChDsmResponse = 8'h02;
  localparam logic [7:0]  ChDsmAbort    = 8'h03;
  localparam logic [7:0]  ChDsmAbortAck = 8'h04;
  localparam logic [7:0]  ChRegWrite    = 8'h10;
  localparam logic [7:0]  ChRegRead     = 8'h11;
  localparam logic [7:0]  ChRegData     = 8'h12;
  localparam logic [7:0]  ChTelemetry   = 8'h20;
  localparam logic [7:0]  ChTelemetryReq = 8'h21;
  localparam logic [31:0] CrcInit       = 32'hFFFF_FFFF;
  // Raw CRC register after running over a message and its own (inverted, LE) CRC.
  localparam logic [31:0] CrcResidue    = 32'hDEBB_20E3;
  localparam logic [16:0] MaxObjBytes   = 17'(MAX_OBJ_DW * 4);
  // TELEMETRY payload: tdi_state, n, n stream states, DOE errors, IDE failures, uptime.
  localparam int unsigned TelBytes      = 14 + NUM_STREAMS;
  localparam int unsigned TelValueBits  = 8 + 8 * NUM_STREAMS + 64;  // all but n and uptime
  localparam int unsigned CyclesPerMs   = CLK_HZ / 1000;

  // CRC-32 IEEE (reflected, polynomial 0xEDB88320), one byte.
  function automatic logic [31:0] crc32_byte(logic [31:0] crc, logic [7:0] data);
    logic [31:0] c;
    c = crc ^ {24'h0, data};
    for (int i = 0; i < 8; i++) begin
      c = c[0] ? ((c >> 1) ^ 32'hEDB8_8320) : (c >> 1);
    end
    return c;
  endfunction

  ///////////////////
  // UART receiver //
  ///////////////////

  typedef enum logic [1:0] {
    UrIdle,   // waiting for a start bit
    UrStart,  // checking the start bit at its middle
    UrData,   // sampling eight data bits, LSB first
    UrStop    // sampling the stop bit
  } urx_state_e;

  urx_state_e      urx_state_d, urx_state_q;
  logic [1:0]      rx_sync_q;       // two-flop synchroniser
  logic [CW-1:0]   urx_timer_d, urx_timer_q;
  logic [2:0]      urx_bit_d, urx_bit_q;
  logic [7:0]      urx_shift_d, urx_shift_q;
  logic            rx_line;
  logic            rx_byte_valid;   // one cycle: rx_byte holds a received byte
  logic            rx_frame_err;    // one cycle: a byte without its stop bit
  logic [7:0]      rx_byte;

  assign rx_line = rx_sync_q[1];
  assign rx_byte = urx_shift_q;

  always_comb begin
    urx_state_d   = urx_state_q;
    urx_timer_d   = urx_timer_q;
    urx_bit_d     = urx_bit_q;
    urx_shift_d   = urx_shift_q;
    rx_byte_valid = 1'b0;
    rx_frame_err  = 1'b0;
    if (urx_timer_q != '0) begin
      urx_timer_d = urx_timer_q - 1'b1;
    end
    unique case (urx_state_q)
      // Line idle: a low level starts a character; look again at the middle of the bit.
      UrIdle: begin
        if (!rx_line) begin
          urx_timer_d = CW'(CLKS_PER_BIT / 2 - 1);
          urx_state_d = UrStart;
        end
      end
      // Middle of the start bit: still low, or it was a glitch.
      UrStart: begin
        if (urx_timer_q == '0) begin
          urx_timer_d = CW'(CLKS_PER_BIT - 1);
          urx_bit_d   = '0;
          urx_state_d = rx_line ? UrIdle : UrData;
        end
      end
      // Middle of each data bit.
      UrData: begin
        if (urx_timer_q == '0) begin
          urx_shift_d = {rx_line, urx_shift_q[7:1]};
          urx_timer_d = CW'(CLKS_PER_BIT - 1);
          urx_bit_d   = urx_bit_q + 1'b1;
          if (urx_bit_q == 3'd7) begin
            urx_state_d = UrStop;
          end
        end
      end
      // Middle of the stop bit: high delivers the byte, low is a framing error.
      UrStop: begin
        if (urx_timer_q == '0) begin
          rx_byte_valid = rx_line;
          rx_frame_err  = !rx_line;
          urx_state_d   = UrIdle;
        end
      end
      default: urx_state_d = UrIdle;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_urx
    if (!rst_ni) begin
      rx_sync_q   <= 2'b11;
      urx_state_q <= UrIdle;
      urx_timer_q <= '0;
      urx_bit_q   <= '0;
      urx_shift_q <= '0;
    end else begin
      rx_sync_q   <= {rx_sync_q[0], uart_rx_i};
      urx_state_q <= urx_state_d;
      urx_timer_q <= urx_timer_d;
      urx_bit_q   <= urx_bit_d;
      urx_shift_q <= urx_shift_d;
    end
  end

  //////////////////////
  // UART transmitter //
  //////////////////////

  logic            utx_busy_q, utx_busy_d;
  logic [9:0]      utx_shift_q, utx_shift_d;   // {stop, data, start}, LSB goes first
  logic [3:0]      utx_bits_q, utx_bits_d;
  logic [CW-1:0]   utx_timer_q, utx_timer_d;
  logic            utx_valid;                  // from the frame FSM: send utx_byte
  logic [7:0]      utx_byte;
  logic            utx_ready;

  assign utx_ready = !utx_busy_q;
  assign uart_tx_o = utx_busy_q ? utx_shift_q[0] : 1'b1;

  always_comb begin
    utx_busy_d  = utx_busy_q;
    utx_shift_d = utx_shift_q;
    utx_bits_d  = utx_bits_q;
    utx_timer_d = utx_timer_q;
    if (!utx_busy_q) begin
      if (utx_valid) begin
        utx_busy_d  = 1'b1;
        utx_shift_d = {1'b1, utx_byte, 1'b0};
        utx_bits_d  = 4'd9;
        utx_timer_d = CW'(CLKS_PER_BIT - 1);
      end
    end else if (utx_timer_q != '0) begin
      utx_timer_d = utx_timer_q - 1'b1;
    end else if (utx_bits_q == '0) begin
      utx_busy_d = 1'b0;
    end else begin
      utx_shift_d = {1'b1, utx_shift_q[9:1]};
      utx_bits_d  = utx_bits_q - 1'b1;
      utx_timer_d = CW'(CLKS_PER_BIT - 1);
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_utx
    if (!rst_ni) begin
      utx_busy_q  <= 1'b0;
      utx_shift_q <= '1;
      utx_bits_q  <= '0;
      utx_timer_q <= '0;
    end else begin
      utx_busy_q  <= utx_busy_d;
      utx_shift_q <= utx_shift_d;
      utx_bits_q  <= utx_bits_d;
      utx_timer_q <= utx_timer_d;
    end
  end

  ////////////////////////////////////////
  // Receive: COBS decode, check, apply //
  ////////////////////////////////////////

  logic [7:0]      rx_cnt_d, rx_cnt_q;       // data bytes left in this COBS block
  logic [7:0]      rx_code_d, rx_code_q;     // code byte of this COBS block
  logic            rx_first_d, rx_first_q;   // no byte of this frame seen yet
  logic            rx_bad_d, rx_bad_q;       // framing error in this frame
  logic [16:0]     rx_idx_d, rx_idx_q;       // decoded bytes so far (saturating)
  logic [31:0]     rx_crc_d, rx_crc_q;
  logic [7:0]      rx_chan_d, rx_chan_q;
  logic [15:0]     rx_len_d, rx_len_q;
  logic            rx_to_mem_d, rx_to_mem_q; // this frame's payload goes to the buffer
  logic [31:0]     rx_word_d, rx_word_q;     // payload DW being assembled
  logic [63:0]     rx_args_d, rx_args_q;     // first 8 payload bytes (register frames)
  logic            dec_valid;                // one decoded byte this cycle
  logic [7:0]      dec_byte;
  logic [16:0]     pay_idx;                  // payload byte index of dec_byte
  logic            rx_drop;                  // a received frame was dropped
  logic            frame_ok;                 // a frame passed COBS, CRC and length checks
  logic            rx_mem_we;
  logic [AW-1:0]   rx_mem_waddr;
  logic [31:0]     rx_mem_wdata;

  // Response delivery and register port.
  logic            rsp_pending_d, rsp_pending_q;  // a response waits in the buffer
  logic [12:0]     rsp_dw_d, rsp_dw_q;            // its length in DW
  logic [12:0]     rsp_idx_d, rsp_idx_q;          // next DW to deliver
  logic [31:0]     rx_mem_rdata_q;
  logic            rd_wait_d, rd_wait_q;          // a register read is outstanding
  logic [11:0]     rd_addr_d, rd_addr_q;
  logic            rd_done_d, rd_done_q;          // REG_DATA waits to be sent
  logic [31:0]     rd_data_d, rd_data_q;
  logic            fw_wr_d, fw_wr_q, fw_rd_d, fw_rd_q;
  logic [11:0]     fw_addr_d, fw_addr_q;
  logic [31:0]     fw_wdata_d, fw_wdata_q;
  logic            reg_data_sent;                 // from the transmit FSM
  logic            tel_req_d, tel_req_q;          // a TELEMETRY_REQ waits for its answer
  logic            abort_ack;                     // a DSM_ABORT_ACK arrived
  logic            rsp_stale;                     // a response now answers an aborted request
  logic            tel_taken;                     // from the transmit FSM: telemetry started

  assign pay_idx = rx_idx_q - 17'd4;

  // COBS decoder: at most one decoded byte per line byte (a code byte after a block shorter
  // than 254 bytes stands for the 0x00 that ended that block).
  always_comb begin
    rx_cnt_d   = rx_cnt_q;
    rx_code_d  = rx_code_q;
    rx_first_d = rx_first_q;
    rx_bad_d   = rx_bad_q || rx_frame_err;
    dec_valid  = 1'b0;
    dec_byte   = rx_byte;
    if (rx_byte_valid && rx_byte != 8'h00) begin
      if (rx_cnt_q == '0) begin
        dec_valid  = !rx_first_q && rx_code_q != 8'hFF;
        dec_byte   = 8'h00;
        rx_cnt_d   = rx_byte - 1'b1;
        rx_code_d  = rx_byte;
        rx_first_d = 1'b0;
      end else begin
        dec_valid = 1'b1;
        rx_cnt_d  = rx_cnt_q - 1'b1;
      end
    end else if (rx_byte_valid) begin
      // The delimiter: a new frame starts.
      rx_cnt_d   = '0;
      rx_code_d  = '0;
      rx_first_d = 1'b1;
      rx_bad_d   = 1'b0;
    end
  end

  // Decoded bytes: header fields, CRC, payload into the buffer or the argument register.
  always_comb begin
    rx_idx_d     = rx_idx_q;
    rx_crc_d     = rx_crc_q;
    rx_chan_d    = rx_chan_q;
    rx_len_d     = rx_len_q;
    rx_to_mem_d  = rx_to_mem_q;
    rx_word_d    = rx_word_q;
    rx_args_d    = rx_args_q;
    rx_mem_we    = 1'b0;
    rx_mem_waddr = AW'(pay_idx >> 2);
    rx_mem_wdata = {dec_byte, rx_word_q[23:0]};
    if (dec_valid) begin
      rx_crc_d = crc32_byte(rx_crc_q, dec_byte);
      if (rx_idx_q != '1) begin
        rx_idx_d = rx_idx_q + 1'b1;
      end
      unique case (rx_idx_q)
        17'd0: begin
          rx_chan_d   = dec_byte;
          rx_to_mem_d = dec_byte == ChDsmResponse && !rsp_pending_q;
        end
        17'd1: ;  // seq: not checked
        17'd2: rx_len_d[7:0]  = dec_byte;
        17'd3: rx_len_d[15:8] = dec_byte;
        default: begin
          if (pay_idx < {1'b0, rx_len_q}) begin
            rx_word_d[8*pay_idx[1:0] +: 8] = dec_byte;
            if (pay_idx < 17'd8) begin
              rx_args_d[8*pay_idx[2:0] +: 8] = dec_byte;
            end
            rx_mem_we = rx_to_mem_q && pay_idx[1:0] == 2'd3 && pay_idx < MaxObjBytes;
          end
        end
      endcase
    end
    if (rx_byte_valid && rx_byte == 8'h00) begin
      rx_idx_d = '0;
      rx_crc_d = CrcInit;
    end
  end

  // A frame ends at its delimiter; check it and act on it.
  assign frame_ok = rx_byte_valid && rx_byte == 8'h00 && !rx_first_q && !rx_bad_q &&
                    rx_cnt_q == '0 && rx_idx_q == {1'b0, rx_len_q} + 17'd8 &&
                    rx_crc_q == CrcResidue;

  always_comb begin
    rx_drop       = 1'b0;
    rsp_pending_d = rsp_pending_q;
    rsp_dw_d      = rsp_dw_q;
    rsp_idx_d     = rsp_idx_q;
    rd_wait_d     = rd_wait_q;
    rd_addr_d     = rd_addr_q;
    rd_done_d     = rd_done_q;
    rd_data_d     = rd_data_q;
    fw_wr_d       = 1'b0;
    fw_rd_d       = 1'b0;
    fw_addr_d     = fw_addr_q;
    fw_wdata_d    = fw_wdata_q;
    tel_req_d     = tel_req_q && !tel_taken;
    abort_ack     = 1'b0;

    // Delivery of a buffered response, one DW per accepted beat.
    if (dsm_rsp_valid_o && dsm_rsp_ready_i) begin
      rsp_idx_d = rsp_idx_q + 1'b1;
      if (dsm_rsp_last_o) begin
        rsp_pending_d = 1'b0;
        rsp_idx_d     = '0;
      end
    end

    // Register read data, then its REG_DATA frame.
    if (rd_wait_q && fw_rvalid_i) begin
      rd_wait_d = 1'b0;
      rd_done_d = 1'b1;
      rd_data_d = fw_rdata_i;
    end
    if (reg_data_sent) begin
      rd_done_d = 1'b0;
    end

    if (rx_byte_valid && rx_byte == 8'h00 && !rx_first_q) begin
      rx_drop = 1'b1;
      if (frame_ok) begin
        unique case (rx_chan_q)
          ChDsmResponse: begin
            if (rx_to_mem_q && rx_len_q != '0 && rx_len_q[1:0] == 2'b00 &&
                {1'b0, rx_len_q} <= MaxObjBytes && !rsp_stale) begin
              rx_drop       = 1'b0;
              rsp_pending_d = 1'b1;
              rsp_dw_d      = 13'(rx_len_q >> 2);
              rsp_idx_d     = '0;
            end
          end
          ChRegWrite: begin
            if (rx_len_q == 16'd8 && rx_args_q[31:12] == '0) begin
              rx_drop    = 1'b0;
              fw_wr_d    = 1'b1;
              fw_addr_d  = rx_args_q[11:0];
              fw_wdata_d = rx_args_q[63:32];
            end
          end
          ChRegRead: begin
            if (rx_len_q == 16'd4 && rx_args_q[31:12] == '0 && !rd_wait_q && !rd_done_q) begin
              rx_drop   = 1'b0;
              fw_rd_d   = 1'b1;
              fw_addr_d = rx_args_q[11:0];
              rd_addr_d = rx_args_q[11:0];
              rd_wait_d = 1'b1;
            end
          end
          ChDsmAbortAck: begin
            if (rx_len_q == '0 && rsp_stale) begin
              rx_drop   = 1'b0;
              abort_ack = 1'b1;
            end
          end
          ChTelemetryReq: begin
            if (rx_len_q == '0) begin
              rx_drop   = 1'b0;
              tel_req_d = 1'b1;
            end
          end
          default: ;  // a channel this side does not take
        endcase
      end
    end
  end

  assign dsm_rsp_valid_o = rsp_pending_q;
  assign dsm_rsp_data_o  = rx_mem_rdata_q;
  assign dsm_rsp_last_o  = rsp_pending_q && rsp_idx_q == rsp_dw_q - 1'b1;
  assign fw_wr_o         = fw_wr_q;
  assign fw_rd_o         = fw_rd_q;
  assign fw_addr_o       = fw_addr_q;
  assign fw_wdata_o      = fw_wdata_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_rx
    if (!rst_ni) begin
      rx_cnt_q      <= '0;
      rx_code_q     <= '0;
      rx_first_q    <= 1'b1;
      rx_bad_q      <= 1'b0;
      rx_idx_q      <= '0;
      rx_crc_q      <= CrcInit;
      rx_chan_q     <= '0;
      rx_len_q      <= '0;
      rx_to_mem_q   <= 1'b0;
      rx_word_q     <= '0;
      rx_args_q     <= '0;
      rsp_pending_q <= 1'b0;
      rsp_dw_q      <= '0;
      rsp_idx_q     <= '0;
      rd_wait_q     <= 1'b0;
      rd_addr_q     <= '0;
      rd_done_q     <= 1'b0;
      rd_data_q     <= '0;
      fw_wr_q       <= 1'b0;
      fw_rd_q       <= 1'b0;
      fw_addr_q     <= '0;
      fw_wdata_q    <= '0;
      tel_req_q     <= 1'b0;
    end else begin
      rx_cnt_q      <= rx_cnt_d;
      rx_code_q     <= rx_code_d;
      rx_first_q    <= rx_first_d;
      rx_bad_q      <= rx_bad_d;
      rx_idx_q      <= rx_idx_d;
      rx_crc_q      <= rx_crc_d;
      rx_chan_q     <= rx_chan_d;
      rx_len_q      <= rx_len_d;
      rx_to_mem_q   <= rx_to_mem_d;
      rx_word_q     <= rx_word_d;
      rx_args_q     <= rx_args_d;
      rsp_pending_q <= rsp_pending_d;
      rsp_dw_q      <= rsp_dw_d;
      rsp_idx_q     <= rsp_idx_d;
      rd_wait_q     <= rd_wait_d;
      rd_addr_q     <= rd_addr_d;
      rd_done_q     <= rd_done_d;
      rd_data_q     <= rd_data_d;
      fw_wr_q       <= fw_wr_d;
      fw_rd_q       <= fw_rd_d;
      fw_addr_q     <= fw_addr_d;
      fw_wdata_q    <= fw_wdata_d;
      tel_req_q     <= tel_req_d;
    end
  end

  // Response buffer: read with the next index, so the data of rsp_idx_q is ready.
  logic [31:0] rx_mem [MAX_OBJ_DW];

  always_ff @(posedge clk_i) begin : p_rx_mem
    if (rx_mem_we) begin
      rx_mem[rx_mem_waddr] <= rx_mem_wdata;
    end
    rx_mem_rdata_q <= rx_mem[AW'(rsp_idx_d)];
  end

  ////////////////////////////////////////
  // Request buffer: one object at most //
  ////////////////////////////////////////

  typedef enum logic [1:0] {
    ReqFill,  // taking an object from the request stream
    ReqFull,  // a whole object waits for the line
    ReqSend   // its frame is on the line
  } req_state_e;

  req_state_e    req_state_d, req_state_q;
  logic [12:0]   req_cnt_d, req_cnt_q;     // DWs taken so far
  logic          req_over_d, req_over_q;   // the object is longer than the buffer
  logic          req_drop;                 // an object too long was discarded
  logic          req_mem_we;
  logic          abort_pending_d, abort_pending_q;
  logic          req_sent;                 // from the transmit FSM
  logic          req_start;                // from the transmit FSM
  logic          abort_taken;              // from the transmit FSM

  assign dsm_req_ready_o = req_state_q == ReqFill;

  always_comb begin
    req_state_d     = req_state_q;
    req_cnt_d       = req_cnt_q;
    req_over_d      = req_over_q;
    req_drop        = 1'b0;
    req_mem_we      = 1'b0;
    // A new pulse stays pending while the transmitter takes the last one.
    abort_pending_d = (abort_pending_q && !abort_taken) || dsm_abort_i;
    unique case (req_state_q)
      // Each beat goes into the buffer; an object too long is taken whole and discarded.
      ReqFill: begin
        if (dsm_req_valid_i) begin
          req_mem_we = req_cnt_q < 13'(MAX_OBJ_DW);
          req_cnt_d  = req_cnt_q + 1'b1;
          if (req_cnt_q >= 13'(MAX_OBJ_DW)) begin
            req_over_d = 1'b1;
            req_cnt_d  = req_cnt_q;
          end
          if (dsm_req_last_i) begin
            if (req_over_d) begin
              req_drop   = 1'b1;
              req_cnt_d  = '0;
              req_over_d = 1'b0;
            end else begin
              req_state_d = ReqFull;
            end
          end
        end
      end
      // Waiting for the transmitter.
      ReqFull: begin
        if (req_start) begin
          req_state_d = ReqSend;
        end
      end
      // On the line: the buffer is free once the frame is out.
      ReqSend: begin
        if (req_sent) begin
          req_state_d = ReqFill;
          req_cnt_d   = '0;
        end
      end
      default: req_state_d = ReqFill;
    endcase
    // Abort: what is not yet on the line is stale.
    if (dsm_abort_i && req_state_q != ReqSend) begin
      req_state_d = ReqFill;
      req_cnt_d   = '0;
      req_over_d  = 1'b0;
    end
  end

  ///////////////
  // Telemetry //
  ///////////////

  // The values as the TELEMETRY payload carries them, tdi_state in the low byte: a frame is
  // due when they differ from those last sent (zeros after reset) and TEL_GAP_CYCLES have
  // passed since the last telemetry frame, or at once when the controller asked.
  logic [TelValueBits-1:0] tel_cur;
  logic [TelValueBits-1:0] tel_sent_d, tel_sent_q;  // values of the last frame
  logic [31:0]             tel_up_d, tel_up_q;      // uptime of the last frame
  logic [31:0]             uptime_d, uptime_q;      // ms since reset (wraps)
  logic [31:0]             ms_div_d, ms_div_q;      // cycles into this millisecond
  logic [31:0]             tel_gap_d, tel_gap_q;    // cycles until a change may be sent
  logic                    tel_due;                 // a telemetry frame should go out
  logic [255:0]            tel_payload;             // payload byte k at [8k+7:8k]

  assign tel_cur = {tel_ide_check_failures_i, tel_doe_errors_i, tel_stream_state_i,
                    tel_tdi_state_i};
  assign tel_due = tel_req_q || (tel_cur != tel_sent_q && tel_gap_q == '0);
  assign tel_payload = 256'({tel_up_q, tel_sent_q[TelValueBits-1:8], 8'(NUM_STREAMS),
                             tel_sent_q[7:0]});

  always_comb begin
    ms_div_d   = ms_div_q + 1'b1;
    uptime_d   = uptime_q;
    tel_gap_d  = (tel_gap_q != '0) ? tel_gap_q - 1'b1 : '0;
    tel_sent_d = tel_sent_q;
    tel_up_d   = tel_up_q;
    if (ms_div_q == 32'(CyclesPerMs - 1)) begin
      ms_div_d = '0;
      uptime_d = uptime_q + 1'b1;
    end
    if (tel_taken) begin
      tel_sent_d = tel_cur;
      tel_up_d   = uptime_q;
      tel_gap_d  = 32'(TEL_GAP_CYCLES - 1);
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_tel
    if (!rst_ni) begin
      tel_sent_q <= '0;
      tel_up_q   <= '0;
      uptime_q   <= '0;
      ms_div_q   <= '0;
      tel_gap_q  <= '0;
    end else begin
      tel_sent_q <= tel_sent_d;
      tel_up_q   <= tel_up_d;
      uptime_q   <= uptime_d;
      ms_div_q   <= ms_div_d;
      tel_gap_q  <= tel_gap_d;
    end
  end

  ////////////////////////////////////////
  // Transmit: CRC, COBS encode, 0x00   //
  ////////////////////////////////////////

  typedef enum logic [2:0] {
    TxIdle,   // choosing the next frame
    TxCrc,    // running the CRC over header and payload
    TxScan,   // finding the end of the next COBS block
    TxCode,   // sending the block's code byte
    TxData,   // sending the block's data bytes
    TxDelim   // sending the 0x00 delimiter
  } tx_state_e;

  typedef enum logic [1:0] {
    SrcNone,  // empty payload (DSM_ABORT)
    SrcMem,   // the request buffer (DSM_REQUEST)
    SrcRegs,  // address and read data (REG_DATA)
    SrcTel    // the telemetry snapshot (TELEMETRY)
  } tx_src_e;

  tx_state_e     tx_state_d, tx_state_q;
  tx_src_e       tx_src_d, tx_src_q;
  logic [7:0]    tx_chan_d, tx_chan_q;
  logic [7:0]    tx_seq_d, tx_seq_q;
  logic [15:0]   tx_len_d, tx_len_q;
  logic [16:0]   tx_idx_d, tx_idx_q;     // raw frame byte index
  logic [16:0]   tx_blk_d, tx_blk_q;     // first byte of the COBS block
  logic [7:0]    tx_run_d, tx_run_q;     // non-zero bytes in the block
  logic          tx_zero_d, tx_zero_q;   // the block ends at a 0x00 of the frame
  logic [31:0]   tx_crc_d, tx_crc_q;
  logic [31:0]   tx_mem_rdata_q;
  logic [16:0]   tx_raw_len;             // header, payload and CRC
  logic [16:0]   tx_pay_idx;
  logic [1:0]    tx_crc_idx;             // CRC byte index
  logic [7:0]    tx_raw;                 // raw frame byte tx_idx_q
  logic [63:0]   reg_data_payload;

  assign tx_raw_len       = {1'b0, tx_len_q} + 17'd8;
  assign tx_pay_idx       = tx_idx_q - 17'd4;
  assign tx_crc_idx       = tx_pay_idx[1:0] - tx_len_q[1:0];
  assign reg_data_payload = {rd_data_q, 20'h0, rd_addr_q};

  always_comb begin
    if (tx_idx_q < 17'd4) begin
      unique case (tx_idx_q[1:0])
        2'd0:    tx_raw = tx_chan_q;
        2'd1:    tx_raw = tx_seq_q;
        2'd2:    tx_raw = tx_len_q[7:0];
        default: tx_raw = tx_len_q[15:8];
      endcase
    end else if (tx_pay_idx < {1'b0, tx_len_q}) begin
      unique case (tx_src_q)
        SrcMem:  tx_raw = tx_mem_rdata_q[8*tx_pay_idx[1:0] +: 8];
        SrcTel:  tx_raw = tel_payload[8*tx_pay_idx[4:0] +: 8];
        default: tx_raw = reg_data_payload[8*tx_pay_idx[2:0] +: 8];
      endcase
    end else begin
      tx_raw = tx_crc_q[8*tx_crc_idx +: 8];
    end
  end

  always_comb begin
    tx_state_d    = tx_state_q;
    tx_src_d      = tx_src_q;
    tx_chan_d     = tx_chan_q;
    tx_seq_d      = tx_seq_q;
    tx_len_d      = tx_len_q;
    tx_idx_d      = tx_idx_q;
    tx_blk_d      = tx_blk_q;
    tx_run_d      = tx_run_q;
    tx_zero_d     = tx_zero_q;
    tx_crc_d      = tx_crc_q;
    utx_valid     = 1'b0;
    utx_byte      = tx_raw;
    req_start     = 1'b0;
    abort_taken   = 1'b0;
    req_sent      = 1'b0;
    reg_data_sent = 1'b0;
    tel_taken     = 1'b0;
    unique case (tx_state_q)
      // Abort notices first, then register data, telemetry, requests.
      TxIdle: begin
        tx_idx_d = '0;
        tx_crc_d = CrcInit;
        if (abort_pending_q) begin
          abort_taken = 1'b1;
          tx_state_d = TxCrc;
          tx_src_d   = SrcNone;
          tx_chan_d  = ChDsmAbort;
          tx_len_d   = '0;
        end else if (rd_done_q) begin
          tx_state_d = TxCrc;
          tx_src_d   = SrcRegs;
          tx_chan_d  = ChRegData;
          tx_len_d   = 16'd8;
        end else if (tel_due) begin
          tel_taken  = 1'b1;
          tx_state_d = TxCrc;
          tx_src_d   = SrcTel;
          tx_chan_d  = ChTelemetry;
          tx_len_d   = 16'(TelBytes);
        end else if (req_state_q == ReqFull && !dsm_abort_i) begin
          tx_state_d = TxCrc;
          tx_src_d   = SrcMem;
          tx_chan_d  = ChDsmRequest;
          tx_len_d   = 16'({req_cnt_q, 2'b00});
          req_start  = 1'b1;
        end
      end
      // One byte per cycle; the CRC then stands inverted in its place.
      TxCrc: begin
        if (tx_idx_q == {1'b0, tx_len_q} + 17'd4) begin
          tx_crc_d   = ~tx_crc_q;
          tx_idx_d   = '0;
          tx_blk_d   = '0;
          tx_run_d   = '0;
          tx_state_d = TxScan;
        end else begin
          tx_crc_d = crc32_byte(tx_crc_q, tx_raw);
          tx_idx_d = tx_idx_q + 1'b1;
        end
      end
      // Up to 254 non-zero bytes, ended by a 0x00 or the end of the frame.
      TxScan: begin
        if (tx_idx_q == tx_raw_len || tx_raw == 8'h00 || tx_run_q == 8'd254) begin
          tx_zero_d  = tx_idx_q != tx_raw_len && tx_raw == 8'h00 && tx_run_q != 8'd254;
          tx_idx_d   = tx_blk_q;
          tx_state_d = TxCode;
        end else begin
          tx_run_d = tx_run_q + 1'b1;
          tx_idx_d = tx_idx_q + 1'b1;
        end
      end
      TxCode: begin
        utx_valid = 1'b1;
        utx_byte  = tx_run_q + 1'b1;
        if (utx_ready) begin
          tx_state_d = TxData;
        end
      end
      // The block's bytes; then skip its 0x00 (and open another block) or end the frame.
      TxData: begin
        if (tx_idx_q == tx_blk_q + 17'(tx_run_q)) begin
          tx_run_d = '0;
          if (tx_zero_q) begin
            tx_idx_d   = tx_idx_q + 1'b1;
            tx_blk_d   = tx_idx_q + 1'b1;
            tx_state_d = TxScan;
          end else if (tx_idx_q != tx_raw_len) begin
            tx_blk_d   = tx_idx_q;
            tx_state_d = TxScan;
          end else begin
            tx_state_d = TxDelim;
          end
        end else begin
          utx_valid = 1'b1;
          if (utx_ready) begin
            tx_idx_d = tx_idx_q + 1'b1;
          end
        end
      end
      TxDelim: begin
        utx_valid = 1'b1;
        utx_byte  = 8'h00;
        if (utx_ready) begin
          tx_seq_d      = tx_seq_q + 1'b1;
          req_sent      = tx_src_q == SrcMem;
          reg_data_sent = tx_src_q == SrcRegs;
          tx_state_d    = TxIdle;
        end
      end
      default: tx_state_d = TxIdle;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_tx
    if (!rst_ni) begin
      req_state_q     <= ReqFill;
      req_cnt_q       <= '0;
      req_over_q      <= 1'b0;
      abort_pending_q <= 1'b0;
      tx_state_q      <= TxIdle;
      tx_src_q        <= SrcNone;
      tx_chan_q       <= '0;
      tx_seq_q        <= '0;
      tx_len_q        <= '0;
      tx_idx_q        <= '0;
      tx_blk_q        <= '0;
      tx_run_q        <= '0;
      tx_zero_q       <= 1'b0;
      tx_crc_q        <= CrcInit;
    end else begin
      req_state_q     <= req_state_d;
      req_cnt_q       <= req_cnt_d;
      req_over_q      <= req_over_d;
      abort_pending_q <= abort_pending_d;
      tx_state_q      <= tx_state_d;
      tx_src_q        <= tx_src_d;
      tx_chan_q       <= tx_chan_d;
      tx_seq_q        <= tx_seq_d;
      tx_len_q        <= tx_len_d;
      tx_idx_q        <= tx_idx_d;
      tx_blk_q        <= tx_blk_d;
      tx_run_q        <= tx_run_d;
      tx_zero_q       <= tx_zero_d;
      tx_crc_q        <= tx_crc_d;
    end
  end

  // Request buffer: read with the next byte index, so the DW of tx_idx_q is ready.
  logic [31:0]  tx_mem [MAX_OBJ_DW];
  logic [AW-1:0] tx_rd_word;

  assign tx_rd_word = AW'((tx_idx_d - 17'd4) >> 2);

  always_ff @(posedge clk_i) begin : p_tx_mem
    if (req_mem_we) begin
      tx_mem[AW'(req_cnt_q)] <= dsm_req_data_i;
    end
    tx_mem_rdata_q <= tx_mem[tx_rd_word];
  end

  //////////////////
  // Drop counter //
  //////////////////

  logic [15:0] drop_count_d, drop_count_q;

  always_comb begin
    drop_count_d = drop_count_q;
    if (rx_drop && drop_count_d != '1) begin
      drop_count_d = drop_count_d + 1'b1;
    end
    if (req_drop && drop_count_d != '1) begin
      drop_count_d = drop_count_d + 1'b1;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_drop
    if (!rst_ni) begin
      drop_count_q <= '0;
    end else begin
      drop_count_q <= drop_count_d;
    end
  end

  assign drop_count_o = drop_count_q;

  ///////////////////////////////////
  // Abort notices not yet acked   //
  ///////////////////////////////////

  // The controller may have answered a request before it read the abort notice; that answer
  // must not reach the emptied mailbox.  Frames are ordered on each line, so every response
  // that arrives before the controller's DSM_ABORT_ACK of the last notice is stale.
  logic [7:0] acks_due_d, acks_due_q;  // notices sent, not yet acknowledged (saturating)

  always_comb begin
    acks_due_d = acks_due_q;
    if (abort_taken && !abort_ack && acks_due_q != '1) begin
      acks_due_d = acks_due_q + 1'b1;
    end else if (abort_ack && !abort_taken && acks_due_q != '0) begin
      acks_due_d = acks_due_q - 1'b1;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_acks
    if (!rst_ni) begin
      acks_due_q <= '0;
    end else begin
      acks_due_q <= acks_due_d;
    end
  end

  assign rsp_stale = abort_pending_q || acks_due_q != '0;

  ////////////////
  // Assertions //
  ////////////////

`ifndef SYNTHESIS
  OutputsKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !$isunknown({uart_tx_o, dsm_req_ready_o, dsm_rsp_valid_o, fw_wr_o, fw_rd_o}));
  RspLastKnown_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      dsm_rsp_valid_o |-> !$isunknown({dsm_rsp_last_o, dsm_rsp_data_o}));
  FwStrobes_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
      !(fw_wr_o && fw_rd_o));
`endif

endmodule

`default_nettype wire
