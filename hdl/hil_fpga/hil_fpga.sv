// hil_fpga: the board-independent FPGA top: the endpoint (hil_ep) and its UART (uart_bridge).
//
// A board top instantiates this block between the vendor's PCIe hard IP and the board's UART
// pins.  Inside, the endpoint's DSM port and firmware register port go over the UART to the
// lab controller, where the device firmware runs (hil/lab/serial_link.py), and the endpoint's
// telemetry (TDI state, IDE stream states, error counters) goes out as TELEMETRY frames.
// Every port that faces the hard IP is hil_ep's, passed through under the same name.

`default_nettype none

module hil_fpga #(
  // DOE write mailbox depth in DW (hil_ep.DOE_WR_DEPTH_DW).
  parameter int unsigned DOE_WR_DEPTH_DW = 1024,
  // DOE read buffer depth in DW (hil_ep.DOE_RD_DEPTH_DW).
  parameter int unsigned DOE_RD_DEPTH_DW = 1024,
  // Largest DOE object the UART carries per direction, in DW; 2 .. 4096.  The bridge drops
  // longer objects, so it defaults to the larger DOE depth (at most 4096).
  parameter int unsigned UART_MAX_OBJ_DW =
      (DOE_WR_DEPTH_DW > 4096 || DOE_RD_DEPTH_DW > 4096) ? 4096 :
      (DOE_WR_DEPTH_DW > DOE_RD_DEPTH_DW) ? DOE_WR_DEPTH_DW : DOE_RD_DEPTH_DW,
  // Clock cycles per UART bit (8N1, both lines); >= 4.  84 at 250 MHz is 2.98 Mbaud, within
  // 1 % of the 3 Mbaud of rigs/lab-example.toml.
  parameter int unsigned CLKS_PER_BIT = 84,
  // Frequency of clk_i in Hz (telemetry uptime).
  parameter int unsigned CLK_HZ = 250_000_000,
  // Fewest cycles between two telemetry frames sent for a change.
  parameter int unsigned TEL_GAP_CYCLES = CLK_HZ / 100
) (
  input  logic         clk_i,                        // the hard IP's user clock
  input  logic         rst_ni,                       // asynchronous, active low

  // Configuration extension interface from the hard IP (PG213)
  input  logic         cfg_ext_read_received_i,
  input  logic         cfg_ext_write_received_i,
  input  logic [9:0]   cfg_ext_register_number_i,    // DW address in config space
  input  logic [7:0]   cfg_ext_function_number_i,
  input  logic [31:0]  cfg_ext_write_data_i,
  input  logic [3:0]   cfg_ext_write_byte_enable_i,
  output logic [31:0]  cfg_ext_read_data_o,
  output logic         cfg_ext_read_data_valid_o,    // one cycle after an owned read

  // TLP receive stream from the hard IP: memory requests, one TLP per packet, wire byte order
  input  logic [127:0] tlp_rx_data_i,
  input  logic [15:0]  tlp_rx_keep_i,
  input  logic         tlp_rx_valid_i,
  input  logic         tlp_rx_last_i,
  output logic         tlp_rx_ready_o,

  // TLP transmit stream to the hard IP: completions, same format
  output logic [127:0] tlp_tx_data_o,
  output logic [15:0]  tlp_tx_keep_o,
  output logic         tlp_tx_valid_o,
  output logic         tlp_tx_last_o,
  input  logic         tlp_tx_ready_i,

  // The function's own ID {bus, device, function}, as the hard IP captured it
  input  logic [15:0]  cfg_completer_id_i,

  // Function Level Reset of function 0 (PG213)
  input  logic         cfg_flr_in_process_i,
  output logic         cfg_flr_done_o,               // one-cycle pulse: the reset is done

  // Interrupt
  output logic         msi_req_o,                    // one-cycle pulse: request an MSI

  // UART to the lab controller (8N1, idle high)
  input  logic         uart_rx_i,                    // asynchronous, synchronised inside
  output logic         uart_tx_o,

  // Status
  output logic [15:0]  uart_drop_count_o             // UART frames dropped (saturating)
);

  // hil_ep reports 4 bits of stream state per IDE stream; the UART carries a byte per stream.
  localparam int unsigned NumStreams = 2;

  ///////////////////////////////////////
  // Endpoint <-> bridge interconnect //
  ///////////////////////////////////////

  logic [31:0] dsm_req_data;
  logic        dsm_req_valid;
  logic        dsm_req_last;
  logic        dsm_req_ready;
  logic [31:0] dsm_rsp_data;
  logic        dsm_rsp_valid;
  logic        dsm_rsp_last;
  logic        dsm_rsp_ready;
  logic        dsm_abort;
  logic        fw_wr;
  logic        fw_rd;
  logic [11:0] fw_addr;
  logic [31:0] fw_wdata;
  logic [31:0] fw_rdata;
  logic        fw_rvalid;
  logic [1:0]                  tel_tdi_state;
  logic [4*NumStreams-1:0]     tel_stream_state;
  logic [31:0]                 tel_doe_errors;
  logic [31:0]                 tel_ide_check_failures;
  logic [8*NumStreams-1:0]     tel_stream_bytes;

  for (genvar j = 0; j < NumStreams; j++) begin : gen_stream_bytes
    assign tel_stream_bytes[8*j +: 8] = {4'h0, tel_stream_state[4*j +: 4]};
  end

  //////////////
  // Endpoint //
  //////////////

  // The board's hard IP answers Configuration Requests itself and its requester/completer
  // interfaces carry no TLP prefixes (hdl/boards/vcu118/README.md): no Configuration Request
  // reaches user logic as an IDE TLP, so Selective IDE for Configuration Requests is not
  // built (IDE_CFG = 0) and its configuration management port is idle. The board's adapter
  // carries the completer side only (CQ/CC), so the DMA engine's requests have no way out
  // (IDE_DMA = 0). Both Selective streams keep one Address Association block: Linux uses the
  // Selective blocks only up to the first whose count differs from block 0's
  // (drivers/pci/ide.c), and the board is where Linux drives the device.
  hil_ep #(
    .DOE_WR_DEPTH_DW(DOE_WR_DEPTH_DW),
    .DOE_RD_DEPTH_DW(DOE_RD_DEPTH_DW),
    .IDE_CFG        (1'b0),
    .IDE_DMA        (1'b0),
    .IDE_ADDR_BLOCKS(32'h0000_0011)
  ) u_hil_ep (
    .clk_i,
    .rst_ni,
    .cfg_ext_read_received_i,
    .cfg_ext_write_received_i,
    .cfg_ext_register_number_i,
    .cfg_ext_function_number_i,
    .cfg_ext_write_data_i,
    .cfg_ext_write_byte_enable_i,
    .cfg_ext_read_data_o,
    .cfg_ext_read_data_valid_o,
    .dsm_req_data_o          (dsm_req_data),
    .dsm_req_valid_o         (dsm_req_valid),
    .dsm_req_last_o          (dsm_req_last),
    .dsm_req_ready_i         (dsm_req_ready),
    .dsm_rsp_data_i          (dsm_rsp_data),
    .dsm_rsp_valid_i         (dsm_rsp_valid),
    .dsm_rsp_last_i          (dsm_rsp_last),
    .dsm_rsp_ready_o         (dsm_rsp_ready),
    .dsm_abort_o             (dsm_abort),
    .msi_req_o,
    .fw_wr_i                 (fw_wr),
    .fw_rd_i                 (fw_rd),
    .fw_addr_i               (fw_addr),
    .fw_wdata_i              (fw_wdata),
    .fw_rdata_o              (fw_rdata),
    .fw_rvalid_o             (fw_rvalid),
    .tlp_rx_data_i,
    .tlp_rx_keep_i,
    .tlp_rx_valid_i,
    .tlp_rx_last_i,
    .tlp_rx_ready_o,
    .tlp_tx_data_o,
    .tlp_tx_keep_o,
    .tlp_tx_valid_o,
    .tlp_tx_last_o,
    .tlp_tx_ready_i,
    .cfg_completer_id_i,
    .cfg_mgmt_addr_o           (),
    .cfg_mgmt_write_o          (),
    .cfg_mgmt_write_data_o     (),
    .cfg_mgmt_byte_enable_o    (),
    .cfg_mgmt_read_o           (),
    .cfg_mgmt_read_data_i      ('0),
    .cfg_mgmt_read_write_done_i(1'b0),
    .cfg_ide_hold_o            (),
    .cfg_flr_in_process_i,
    .cfg_flr_done_o,
    .tel_tdi_state_o         (tel_tdi_state),
    .tel_stream_state_o      (tel_stream_state),
    .tel_doe_errors_o        (tel_doe_errors),
    .tel_ide_check_failures_o(tel_ide_check_failures)
  );

  /////////////////
  // UART bridge //
  /////////////////

  uart_bridge #(
    .CLKS_PER_BIT  (CLKS_PER_BIT),
    .MAX_OBJ_DW    (UART_MAX_OBJ_DW),
    .NUM_STREAMS   (NumStreams),
    .CLK_HZ        (CLK_HZ),
    .TEL_GAP_CYCLES(TEL_GAP_CYCLES)
  ) u_uart_bridge (
    .clk_i,
    .rst_ni,
    .uart_rx_i,
    .uart_tx_o,
    .dsm_req_data_i          (dsm_req_data),
    .dsm_req_valid_i         (dsm_req_valid),
    .dsm_req_last_i          (dsm_req_last),
    .dsm_req_ready_o         (dsm_req_ready),
    .dsm_rsp_data_o          (dsm_rsp_data),
    .dsm_rsp_valid_o         (dsm_rsp_valid),
    .dsm_rsp_last_o          (dsm_rsp_last),
    .dsm_rsp_ready_i         (dsm_rsp_ready),
    .dsm_abort_i             (dsm_abort),
    .fw_wr_o                 (fw_wr),
    .fw_rd_o                 (fw_rd),
    .fw_addr_o               (fw_addr),
    .fw_wdata_o              (fw_wdata),
    .fw_rdata_i              (fw_rdata),
    .fw_rvalid_i             (fw_rvalid),
    .tel_tdi_state_i         ({6'h00, tel_tdi_state}),
    .tel_stream_state_i      (tel_stream_bytes),
    .tel_doe_errors_i        (tel_doe_errors),
    .tel_ide_check_failures_i(tel_ide_check_failures),
    .drop_count_o            (uart_drop_count_o)
  );

endmodule

`default_nettype wire
