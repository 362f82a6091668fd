// vcu118_top: the endpoint on the AMD VCU118 board (XCVU9P, UltraScale+ PCIe4 hard block).
//
// The PCIe4 hard IP (pcie4_uscale_plus_0, customised in build.tcl: Gen3 x4, 128-bit
// AXI4-Stream at 250 MHz, BAR0 64-bit 4 KiB memory, Configuration Extend window 0x480-0x4FF,
// DSN, AER, one MSI vector) sits between the edge connector and hil_fpga, the
// board-independent FPGA top (hil_ep + uart_bridge):
//
// - configuration: cfg_ext_* straight to hil_fpga (the hard IP owns everything outside the
//   window and serves it itself);
// - memory requests: CQ -> usp_cq_cc_adapter -> hil_fpga's TLP receive stream, completions
//   back the other way to CC;
// - FLR: cfg_flr_in_process[0] in, cfg_flr_done[0] out (function 0, no VFs);
// - interrupts: hil_fpga's msi_req_o pulse becomes MSI vector 0 when MSI is enabled;
// - the Device Serial Number capability reads DSN;
// - UART: the board's USB-UART bridge to the lab controller.
//
// The requester side of the hard IP (RQ/RC) is unused: the endpoint never initiates requests.
// LEDs show link and reset state, the user clock, MSI and error events (README.md).

`default_nettype none

module vcu118_top #(
  // Device Serial Number (the DSN capability's 64-bit value).
  parameter logic [63:0] DSN          = 64'h00C0_FFEE_1D5E_C0DE,
  // UART line rate in baud; the lab rig's `baudrate` must match.  The USB-UART bridge on the
  // board limits it (README.md).
  parameter int unsigned UART_BAUD    = 2_000_000,
  // User clock of the hard IP in Hz (the IP's AXI4-Stream frequency, build.tcl).
  parameter int unsigned USER_CLK_HZ  = 250_000_000
) (
  // PCI Express edge connector
  input logic        pcie_refclk_p_i,   // 100 MHz reference clock from the host
  input logic        pcie_refclk_n_i,
  input logic        pcie_perst_ni,     // PERST#, active low
  input logic [3:0]  pcie_rx_p_i,
  input logic [3:0]  pcie_rx_n_i,
  output logic [3:0]  pcie_tx_p_o,
  output logic [3:0]  pcie_tx_n_o,

  // USB-UART to the lab controller (8N1)
  input logic        uart_rxd_i,        // from the bridge chip's TX
  output logic        uart_txd_o,        // to the bridge chip's RX

  // User LEDs GPIO_LED_0..7
  output logic [7:0]  led_o
);

  ////////////////
  // Parameters //
  ////////////////

  localparam int unsigned ClksPerBit = USER_CLK_HZ / UART_BAUD;
  // The achieved rate, in parts per thousand of UART_BAUD, must lie within 2 %.
  localparam int unsigned RateErrPpt =
      (1000 * (UART_BAUD * ClksPerBit > USER_CLK_HZ ? UART_BAUD * ClksPerBit - USER_CLK_HZ
                                                    : USER_CLK_HZ - UART_BAUD * ClksPerBit))
      / USER_CLK_HZ;

  if (ClksPerBit < 4) begin : gen_bad_baud
    $fatal(1, "vcu118_top: UART_BAUD needs at least 4 user clocks per bit");
  end
  if (RateErrPpt > 20) begin : gen_bad_baud_error
    $fatal(1, "vcu118_top: UART_BAUD is more than 2 %% off at this user clock");
  end

  localparam int unsigned LedStretch = USER_CLK_HZ / 10;  // 100 ms: a pulse one can see

  ///////////////////////////
  // Reference clock, reset //
  ///////////////////////////

  logic sys_clk_gt;  // to the GTs
  logic sys_clk_div2;
  logic sys_clk;     // to the hard IP's fabric logic

  IBUFDS_GTE4 #(
    .REFCLK_HROW_CK_SEL(2'b00)  // ODIV2 = O / 1 (100 MHz), as PG213's example design
  ) u_refclk_ibuf (
    .I    (pcie_refclk_p_i),
    .IB   (pcie_refclk_n_i),
    .CEB  (1'b0),
    .O    (sys_clk_gt),
    .ODIV2(sys_clk_div2)
  );

  BUFG_GT u_refclk_bufg (
    .I      (sys_clk_div2),
    .CE     (1'b1),
    .CEMASK (1'b0),
    .CLR    (1'b0),
    .CLRMASK(1'b0),
    .DIV    (3'd0),
    .O      (sys_clk)
  );

  logic       user_clk;
  logic       user_reset;    // from the hard IP, active high, synchronous to user_clk
  logic       user_lnk_up;
  logic [1:0] rst_sync_q;    // user_reset, asserted at once, released after two clocks
  logic       rst_n;

  always_ff @(posedge user_clk or posedge user_reset) begin : p_rst_sync
    if (user_reset) begin
      rst_sync_q <= '0;
    end else begin
      rst_sync_q <= {rst_sync_q[0], 1'b1};
    end
  end
  assign rst_n = rst_sync_q[1];

  /////////////
  // Hard IP //
  /////////////

  // Completer interfaces
  logic [127:0] cq_tdata;
  logic [3:0]   cq_tkeep;
  logic         cq_tlast;
  logic [87:0]  cq_tuser;
  logic         cq_tvalid;
  logic         cq_tready;
  logic [127:0] cc_tdata;
  logic [3:0]   cc_tkeep;
  logic         cc_tlast;
  logic [32:0]  cc_tuser;
  logic         cc_tvalid;
  logic [3:0]   cc_tready;   // four copies of one ready (PG213)

  // Configuration Extend
  logic         cfg_ext_read_received;
  logic         cfg_ext_write_received;
  logic [9:0]   cfg_ext_register_number;
  logic [7:0]   cfg_ext_function_number;
  logic [31:0]  cfg_ext_write_data;
  logic [3:0]   cfg_ext_write_byte_enable;
  logic [31:0]  cfg_ext_read_data;
  logic         cfg_ext_read_data_valid;

  // The bus number the hard IP captured from the host's CfgWr0 (an endpoint is device 0)
  logic [7:0]   cfg_bus_number;

  // FLR and interrupts
  logic [3:0]   cfg_flr_in_process;
  logic         flr_done;
  logic [3:0]   cfg_interrupt_msi_enable;
  logic         cfg_interrupt_msi_sent;
  logic         cfg_interrupt_msi_fail;
  logic         msi_int;     // one-cycle pulse on MSI vector 0

  pcie4_uscale_plus_0 u_pcie (
    .pci_exp_txn                                  (pcie_tx_n_o),
    .pci_exp_txp                                  (pcie_tx_p_o),
    .pci_exp_rxn                                  (pcie_rx_n_i),
    .pci_exp_rxp                                  (pcie_rx_p_i),
    .user_clk                                     (user_clk),
    .user_reset                                   (user_reset),
    .user_lnk_up                                  (user_lnk_up),
    // Requester side: unused (the endpoint issues no requests)
    .s_axis_rq_tdata                              ('0),
    .s_axis_rq_tkeep                              ('0),
    .s_axis_rq_tlast                              (1'b0),
    .s_axis_rq_tready                             (),
    .s_axis_rq_tuser                              ('0),
    .s_axis_rq_tvalid                             (1'b0),
    .m_axis_rc_tdata                              (),
    .m_axis_rc_tkeep                              (),
    .m_axis_rc_tlast                              (),
    .m_axis_rc_tready                             (1'b1),
    .m_axis_rc_tuser                              (),
    .m_axis_rc_tvalid                             (),
    // Completer side
    .m_axis_cq_tdata                              (cq_tdata),
    .m_axis_cq_tkeep                              (cq_tkeep),
    .m_axis_cq_tlast                              (cq_tlast),
    .m_axis_cq_tready                             (cq_tready),
    .m_axis_cq_tuser                              (cq_tuser),
    .m_axis_cq_tvalid                             (cq_tvalid),
    .s_axis_cc_tdata                              (cc_tdata),
    .s_axis_cc_tkeep                              (cc_tkeep),
    .s_axis_cc_tlast                              (cc_tlast),
    .s_axis_cc_tready                             (cc_tready),
    .s_axis_cc_tuser                              (cc_tuser),
    .s_axis_cc_tvalid                             (cc_tvalid),
    .pcie_rq_seq_num0                             (),
    .pcie_rq_seq_num_vld0                         (),
    .pcie_rq_seq_num1                             (),
    .pcie_rq_seq_num_vld1                         (),
    .pcie_rq_tag0                                 (),
    .pcie_rq_tag1                                 (),
    .pcie_rq_tag_av                               (),
    .pcie_rq_tag_vld0                             (),
    .pcie_rq_tag_vld1                             (),
    .pcie_tfc_nph_av                              (),
    .pcie_tfc_npd_av                              (),
    // One non-posted credit every cycle: non-posted requests are never held back by credit
    // (the adapter's backpressure is enough; memory reads are answered in order).
    .pcie_cq_np_req                               (2'b01),
    .pcie_cq_np_req_count                         (),
    // Status
    .cfg_phy_link_down                            (),
    .cfg_phy_link_status                          (),
    .cfg_negotiated_width                         (),
    .cfg_current_speed                            (),
    .cfg_max_payload                              (),
    .cfg_max_read_req                             (),
    .cfg_function_status                          (),
    .cfg_function_power_state                     (),
    .cfg_vf_status                                (),
    .cfg_vf_power_state                           (),
    .cfg_link_power_state                         (),
    // Configuration management: unused
    .cfg_mgmt_addr                                ('0),
    .cfg_mgmt_function_number                     ('0),
    .cfg_mgmt_write                               (1'b0),
    .cfg_mgmt_write_data                          ('0),
    .cfg_mgmt_byte_enable                         ('0),
    .cfg_mgmt_read                                (1'b0),
    .cfg_mgmt_read_data                           (),
    .cfg_mgmt_read_write_done                     (),
    .cfg_mgmt_debug_access                        (1'b0),
    .cfg_err_cor_out                              (),
    .cfg_err_nonfatal_out                         (),
    .cfg_err_fatal_out                            (),
    .cfg_local_error_valid                        (),
    .cfg_local_error_out                          (),
    .cfg_ltssm_state                              (),
    .cfg_rx_pm_state                              (),
    .cfg_tx_pm_state                              (),
    .cfg_rcb_status                               (),
    .cfg_obff_enable                              (),
    .cfg_pl_status_change                         (),
    .cfg_tph_requester_enable                     (),
    .cfg_tph_st_mode                              (),
    .cfg_vf_tph_requester_enable                  (),
    .cfg_vf_tph_st_mode                           (),
    // Messages: none sent, received ones not used
    .cfg_msg_received                             (),
    .cfg_msg_received_data                        (),
    .cfg_msg_received_type                        (),
    .cfg_msg_transmit                             (1'b0),
    .cfg_msg_transmit_type                        ('0),
    .cfg_msg_transmit_data                        ('0),
    .cfg_msg_transmit_done                        (),
    .cfg_fc_ph                                    (),
    .cfg_fc_pd                                    (),
    .cfg_fc_nph                                   (),
    .cfg_fc_npd                                   (),
    .cfg_fc_cplh                                  (),
    .cfg_fc_cpld                                  (),
    .cfg_fc_sel                                   ('0),
    // Control
    .cfg_dsn                                      (DSN),
    .cfg_bus_number                               (cfg_bus_number),
    .cfg_power_state_change_ack                   (1'b1),
    .cfg_power_state_change_interrupt             (),
    .cfg_err_cor_in                               (1'b0),
    .cfg_err_uncor_in                             (1'b0),
    .cfg_flr_in_process                           (cfg_flr_in_process),
    .cfg_flr_done                                 ({3'b000, flr_done}),
    .cfg_vf_flr_in_process                        (),
    .cfg_vf_flr_func_num                          ('0),
    .cfg_vf_flr_done                              (1'b0),
    .cfg_link_training_enable                     (1'b1),
    // Configuration Extend
    .cfg_ext_read_received                        (cfg_ext_read_received),
    .cfg_ext_write_received                       (cfg_ext_write_received),
    .cfg_ext_register_number                      (cfg_ext_register_number),
    .cfg_ext_function_number                      (cfg_ext_function_number),
    .cfg_ext_write_data                           (cfg_ext_write_data),
    .cfg_ext_write_byte_enable                    (cfg_ext_write_byte_enable),
    .cfg_ext_read_data                            (cfg_ext_read_data),
    .cfg_ext_read_data_valid                      (cfg_ext_read_data_valid),
    // Interrupts: MSI vector 0 of function 0; no INTx
    .cfg_interrupt_int                            ('0),
    .cfg_interrupt_pending                        ('0),
    .cfg_interrupt_sent                           (),
    .cfg_interrupt_msi_enable                     (cfg_interrupt_msi_enable),
    .cfg_interrupt_msi_mmenable                   (),
    .cfg_interrupt_msi_mask_update                (),
    .cfg_interrupt_msi_data                       (),
    .cfg_interrupt_msi_select                     (2'b00),
    .cfg_interrupt_msi_int                        ({31'b0, msi_int}),
    .cfg_interrupt_msi_pending_status             ('0),
    .cfg_interrupt_msi_pending_status_data_enable (1'b0),
    .cfg_interrupt_msi_pending_status_function_num(2'b00),
    .cfg_interrupt_msi_sent                       (cfg_interrupt_msi_sent),
    .cfg_interrupt_msi_fail                       (cfg_interrupt_msi_fail),
    .cfg_interrupt_msi_attr                       ('0),
    .cfg_interrupt_msi_tph_present                (1'b0),
    .cfg_interrupt_msi_tph_type                   ('0),
    .cfg_interrupt_msi_tph_st_tag                 ('0),
    .cfg_interrupt_msi_function_number            ('0),
    // Power management, hot reset, downstream port (not a switch)
    .cfg_pm_aspm_l1_entry_reject                  (1'b0),
    .cfg_pm_aspm_tx_l0s_entry_disable             (1'b1),
    .cfg_hot_reset_out                            (),
    .cfg_config_space_enable                      (1'b1),
    .cfg_req_pm_transition_l23_ready              (1'b0),
    .cfg_hot_reset_in                             (1'b0),
    .cfg_ds_port_number                           ('0),
    .cfg_ds_bus_number                            ('0),
    .cfg_ds_device_number                         ('0),
    // System clock and PERST#
    .sys_clk                                      (sys_clk),
    .sys_clk_gt                                   (sys_clk_gt),
    .sys_reset                                    (pcie_perst_ni),
    .phy_rdy_out                                  ()
  );

  ////////////////////////////
  // CQ/CC <-> TLP streams //
  ////////////////////////////

  logic [127:0] tlp_rx_data;
  logic [15:0]  tlp_rx_keep;
  logic         tlp_rx_valid;
  logic         tlp_rx_last;
  logic         tlp_rx_ready;
  logic [127:0] tlp_tx_data;
  logic [15:0]  tlp_tx_keep;
  logic         tlp_tx_valid;
  logic         tlp_tx_last;
  logic         tlp_tx_ready;
  logic         cq_drop;
  logic         cq_discontinue;
  logic         tx_drop;

  usp_cq_cc_adapter u_adapter (
    .clk_i           (user_clk),
    .rst_ni          (rst_n),
    .cq_tdata_i      (cq_tdata),
    .cq_tkeep_i      (cq_tkeep),
    .cq_tlast_i      (cq_tlast),
    .cq_tuser_i      (cq_tuser),
    .cq_tvalid_i     (cq_tvalid),
    .cq_tready_o     (cq_tready),
    .tlp_rx_data_o   (tlp_rx_data),
    .tlp_rx_keep_o   (tlp_rx_keep),
    .tlp_rx_valid_o  (tlp_rx_valid),
    .tlp_rx_last_o   (tlp_rx_last),
    .tlp_rx_ready_i  (tlp_rx_ready),
    .tlp_tx_data_i   (tlp_tx_data),
    .tlp_tx_keep_i   (tlp_tx_keep),
    .tlp_tx_valid_i  (tlp_tx_valid),
    .tlp_tx_last_i   (tlp_tx_last),
    .tlp_tx_ready_o  (tlp_tx_ready),
    .cc_tdata_o      (cc_tdata),
    .cc_tkeep_o      (cc_tkeep),
    .cc_tlast_o      (cc_tlast),
    .cc_tuser_o      (cc_tuser),
    .cc_tvalid_o     (cc_tvalid),
    .cc_tready_i     (cc_tready[0]),
    .cq_drop_o       (cq_drop),
    .cq_discontinue_o(cq_discontinue),
    .tx_drop_o       (tx_drop)
  );

  //////////////
  // hil_fpga //
  //////////////

  logic        msi_req;
  logic [15:0] uart_drop_count;

  hil_fpga #(
    .CLKS_PER_BIT(ClksPerBit),
    .CLK_HZ      (USER_CLK_HZ)
  ) u_hil_fpga (
    .clk_i                      (user_clk),
    .rst_ni                     (rst_n),
    .cfg_ext_read_received_i    (cfg_ext_read_received),
    .cfg_ext_write_received_i   (cfg_ext_write_received),
    .cfg_ext_register_number_i  (cfg_ext_register_number),
    .cfg_ext_function_number_i  (cfg_ext_function_number),
    .cfg_ext_write_data_i       (cfg_ext_write_data),
    .cfg_ext_write_byte_enable_i(cfg_ext_write_byte_enable),
    .cfg_ext_read_data_o        (cfg_ext_read_data),
    .cfg_ext_read_data_valid_o  (cfg_ext_read_data_valid),
    .tlp_rx_data_i              (tlp_rx_data),
    .tlp_rx_keep_i              (tlp_rx_keep),
    .tlp_rx_valid_i             (tlp_rx_valid),
    .tlp_rx_last_i              (tlp_rx_last),
    .tlp_rx_ready_o             (tlp_rx_ready),
    .tlp_tx_data_o              (tlp_tx_data),
    .tlp_tx_keep_o              (tlp_tx_keep),
    .tlp_tx_valid_o             (tlp_tx_valid),
    .tlp_tx_last_o              (tlp_tx_last),
    .tlp_tx_ready_i             (tlp_tx_ready),
    .cfg_completer_id_i         ({cfg_bus_number, 5'd0, 3'd0}),
    .cfg_flr_in_process_i       (cfg_flr_in_process[0]),
    .cfg_flr_done_o             (flr_done),
    .msi_req_o                  (msi_req),
    .uart_rx_i                  (uart_rxd_i),
    .uart_tx_o                  (uart_txd_o),
    .uart_drop_count_o          (uart_drop_count)
  );

  /////////
  // MSI //
  /////////

  // PG213: a bit of cfg_interrupt_msi_int is pulsed for one cycle, and the next request waits
  // for cfg_interrupt_msi_sent or _fail.  One request may wait while another is in flight;
  // requests while MSI is disabled are not remembered (the DOE status bit stays readable).
  logic msi_busy_d, msi_busy_q;
  logic msi_pend_d, msi_pend_q;

  always_comb begin
    msi_busy_d = msi_busy_q;
    msi_pend_d = msi_pend_q || (msi_req && cfg_interrupt_msi_enable[0]);
    msi_int    = 1'b0;
    if (msi_busy_q) begin
      if (cfg_interrupt_msi_sent || cfg_interrupt_msi_fail) begin
        msi_busy_d = 1'b0;
      end
    end else if (msi_pend_q) begin
      msi_int    = 1'b1;
      msi_busy_d = 1'b1;
      msi_pend_d = msi_req && cfg_interrupt_msi_enable[0];
    end
    if (!cfg_interrupt_msi_enable[0]) begin
      msi_pend_d = 1'b0;
    end
  end

  //////////
  // LEDs //
  //////////

  // Sticky or stretched so that a person sees them.
  logic [31:0] heartbeat_d, heartbeat_q;
  logic [31:0] msi_led_d, msi_led_q;           // stretches MSI sent
  logic        cq_err_d, cq_err_q;             // a request was dropped or discontinued
  logic        tx_err_d, tx_err_q;             // a non-completion was dropped on TX

  always_comb begin
    heartbeat_d = heartbeat_q + 32'd1;
    msi_led_d   = cfg_interrupt_msi_sent ? 32'(LedStretch)
                : (msi_led_q != '0) ? msi_led_q - 32'd1 : '0;
    cq_err_d    = cq_err_q || cq_drop || cq_discontinue;
    tx_err_d    = tx_err_q || tx_drop;
  end

  assign led_o[0] = user_lnk_up;                       // link up
  assign led_o[1] = rst_n;                             // out of reset (PERST# released)
  assign led_o[2] = heartbeat_q[27];                   // user clock running (~1 Hz at 250 MHz)
  assign led_o[3] = cfg_interrupt_msi_enable[0];       // the host enabled MSI
  assign led_o[4] = msi_led_q != '0;                   // an MSI went out
  assign led_o[5] = cfg_flr_in_process[0];             // FLR in progress
  assign led_o[6] = cq_err_q || tx_err_q;              // the adapter dropped something
  assign led_o[7] = uart_drop_count != '0;             // the UART dropped a frame

  ///////////////
  // Registers //
  ///////////////

  always_ff @(posedge user_clk or negedge rst_n) begin : p_regs
    if (!rst_n) begin
      msi_busy_q  <= 1'b0;
      msi_pend_q  <= 1'b0;
      heartbeat_q <= '0;
      msi_led_q   <= '0;
      cq_err_q    <= 1'b0;
      tx_err_q    <= 1'b0;
    end else begin
      msi_busy_q  <= msi_busy_d;
      msi_pend_q  <= msi_pend_d;
      heartbeat_q <= heartbeat_d;
      msi_led_q   <= msi_led_d;
      cq_err_q    <= cq_err_d;
      tx_err_q    <= tx_err_d;
    end
  end

endmodule

`default_nettype wire
