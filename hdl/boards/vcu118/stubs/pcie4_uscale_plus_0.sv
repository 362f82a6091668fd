// LINT-ONLY STUB of the PCIe4 hard IP as Vivado generates it from the customisation in
// ../build.tcl (pcie4_uscale_plus, PG213): Gen3 x4, 128-bit AXI4-Stream at 250 MHz, MSI (not
// MSI-X), PCI Express Extended Configuration Space (cfg_ext_*) enabled.  Port names, directions
// and widths follow the IP's synthesis stub for that customisation; there is no behaviour
// (outputs are 0).  Vivado uses the generated IP; this file is never part of a build.
// build.tcl compares the generated IP's ports with the ones here and stops if they differ.

`default_nettype none

module pcie4_uscale_plus_0 (
  // PCI Express lanes (x4)
  output logic [3:0]     pci_exp_txn,
  output logic [3:0]     pci_exp_txp,
  input logic [3:0]     pci_exp_rxn,
  input logic [3:0]     pci_exp_rxp,
  // Clock and reset
  output logic           user_clk,
  output logic           user_reset,
  output logic           user_lnk_up,
  // Requester reQuest (RQ), 128-bit
  input logic [127:0]   s_axis_rq_tdata,
  input logic [3:0]     s_axis_rq_tkeep,
  input logic           s_axis_rq_tlast,
  output logic [3:0]     s_axis_rq_tready,
  input logic [61:0]    s_axis_rq_tuser,
  input logic           s_axis_rq_tvalid,
  // Requester Completion (RC)
  output logic [127:0]   m_axis_rc_tdata,
  output logic [3:0]     m_axis_rc_tkeep,
  output logic           m_axis_rc_tlast,
  input logic           m_axis_rc_tready,
  output logic [74:0]    m_axis_rc_tuser,
  output logic           m_axis_rc_tvalid,
  // Completer reQuest (CQ)
  output logic [127:0]   m_axis_cq_tdata,
  output logic [3:0]     m_axis_cq_tkeep,
  output logic           m_axis_cq_tlast,
  input logic           m_axis_cq_tready,
  output logic [87:0]    m_axis_cq_tuser,
  output logic           m_axis_cq_tvalid,
  // Completer Completion (CC)
  input logic [127:0]   s_axis_cc_tdata,
  input logic [3:0]     s_axis_cc_tkeep,
  input logic           s_axis_cc_tlast,
  output logic [3:0]     s_axis_cc_tready,
  input logic [32:0]    s_axis_cc_tuser,
  input logic           s_axis_cc_tvalid,
  // RQ sequence numbers and tags
  output logic [5:0]     pcie_rq_seq_num0,
  output logic           pcie_rq_seq_num_vld0,
  output logic [5:0]     pcie_rq_seq_num1,
  output logic           pcie_rq_seq_num_vld1,
  output logic [7:0]     pcie_rq_tag0,
  output logic [7:0]     pcie_rq_tag1,
  output logic [3:0]     pcie_rq_tag_av,
  output logic           pcie_rq_tag_vld0,
  output logic           pcie_rq_tag_vld1,
  // Transmit flow control
  output logic [3:0]     pcie_tfc_nph_av,
  output logic [3:0]     pcie_tfc_npd_av,
  // CQ non-posted credit
  input logic [1:0]     pcie_cq_np_req,
  output logic [5:0]     pcie_cq_np_req_count,
  // Configuration status
  output logic           cfg_phy_link_down,
  output logic [1:0]     cfg_phy_link_status,
  output logic [2:0]     cfg_negotiated_width,
  output logic [1:0]     cfg_current_speed,
  output logic [1:0]     cfg_max_payload,
  output logic [2:0]     cfg_max_read_req,
  output logic [15:0]    cfg_function_status,
  output logic [11:0]    cfg_function_power_state,
  output logic [503:0]   cfg_vf_status,
  output logic [755:0]   cfg_vf_power_state,
  output logic [1:0]     cfg_link_power_state,
  // Configuration management
  input logic [9:0]     cfg_mgmt_addr,
  input logic [7:0]     cfg_mgmt_function_number,
  input logic           cfg_mgmt_write,
  input logic [31:0]    cfg_mgmt_write_data,
  input logic [3:0]     cfg_mgmt_byte_enable,
  input logic           cfg_mgmt_read,
  output logic [31:0]    cfg_mgmt_read_data,
  output logic           cfg_mgmt_read_write_done,
  input logic           cfg_mgmt_debug_access,
  // Configuration status (errors, power management, TPH)
  output logic           cfg_err_cor_out,
  output logic           cfg_err_nonfatal_out,
  output logic           cfg_err_fatal_out,
  output logic           cfg_local_error_valid,
  output logic [4:0]     cfg_local_error_out,
  output logic [5:0]     cfg_ltssm_state,
  output logic [1:0]     cfg_rx_pm_state,
  output logic [1:0]     cfg_tx_pm_state,
  output logic [3:0]     cfg_rcb_status,
  output logic [1:0]     cfg_obff_enable,
  output logic           cfg_pl_status_change,
  output logic [3:0]     cfg_tph_requester_enable,
  output logic [11:0]    cfg_tph_st_mode,
  output logic [251:0]   cfg_vf_tph_requester_enable,
  output logic [755:0]   cfg_vf_tph_st_mode,
  // Configuration received / transmit message
  output logic           cfg_msg_received,
  output logic [7:0]     cfg_msg_received_data,
  output logic [4:0]     cfg_msg_received_type,
  input logic           cfg_msg_transmit,
  input logic [2:0]     cfg_msg_transmit_type,
  input logic [31:0]    cfg_msg_transmit_data,
  output logic           cfg_msg_transmit_done,
  // Configuration flow control
  output logic [7:0]     cfg_fc_ph,
  output logic [11:0]    cfg_fc_pd,
  output logic [7:0]     cfg_fc_nph,
  output logic [11:0]    cfg_fc_npd,
  output logic [7:0]     cfg_fc_cplh,
  output logic [11:0]    cfg_fc_cpld,
  input logic [2:0]     cfg_fc_sel,
  // Configuration control
  input logic [63:0]    cfg_dsn,
  output logic [7:0]     cfg_bus_number,
  input logic           cfg_power_state_change_ack,
  output logic           cfg_power_state_change_interrupt,
  input logic           cfg_err_cor_in,
  input logic           cfg_err_uncor_in,
  output logic [3:0]     cfg_flr_in_process,
  input logic [3:0]     cfg_flr_done,
  output logic [251:0]   cfg_vf_flr_in_process,
  input logic [7:0]     cfg_vf_flr_func_num,
  input logic           cfg_vf_flr_done,
  input logic           cfg_link_training_enable,
  // Configuration Extend (PCI Express Extended Configuration Space enabled)
  output logic           cfg_ext_read_received,
  output logic           cfg_ext_write_received,
  output logic [9:0]     cfg_ext_register_number,
  output logic [7:0]     cfg_ext_function_number,
  output logic [31:0]    cfg_ext_write_data,
  output logic [3:0]     cfg_ext_write_byte_enable,
  input logic [31:0]    cfg_ext_read_data,
  input logic           cfg_ext_read_data_valid,
  // Interrupts: legacy INTx and MSI (MSI-X not enabled)
  input logic [3:0]     cfg_interrupt_int,
  input logic [3:0]     cfg_interrupt_pending,
  output logic           cfg_interrupt_sent,
  output logic [3:0]     cfg_interrupt_msi_enable,
  output logic [11:0]    cfg_interrupt_msi_mmenable,
  output logic           cfg_interrupt_msi_mask_update,
  output logic [31:0]    cfg_interrupt_msi_data,
  input logic [1:0]     cfg_interrupt_msi_select,
  input logic [31:0]    cfg_interrupt_msi_int,
  input logic [31:0]    cfg_interrupt_msi_pending_status,
  input logic           cfg_interrupt_msi_pending_status_data_enable,
  input logic [1:0]     cfg_interrupt_msi_pending_status_function_num,
  output logic           cfg_interrupt_msi_sent,
  output logic           cfg_interrupt_msi_fail,
  input logic [2:0]     cfg_interrupt_msi_attr,
  input logic           cfg_interrupt_msi_tph_present,
  input logic [1:0]     cfg_interrupt_msi_tph_type,
  input logic [7:0]     cfg_interrupt_msi_tph_st_tag,
  input logic [7:0]     cfg_interrupt_msi_function_number,
  // Power management, hot reset, downstream port numbers
  input logic           cfg_pm_aspm_l1_entry_reject,
  input logic           cfg_pm_aspm_tx_l0s_entry_disable,
  output logic           cfg_hot_reset_out,
  input logic           cfg_config_space_enable,
  input logic           cfg_req_pm_transition_l23_ready,
  input logic           cfg_hot_reset_in,
  input logic [7:0]     cfg_ds_port_number,
  input logic [7:0]     cfg_ds_bus_number,
  input logic [4:0]     cfg_ds_device_number,
  // System clock and reset
  input logic           sys_clk,
  input logic           sys_clk_gt,
  input logic           sys_reset,
  output logic           phy_rdy_out
);

  assign pci_exp_txn = '0;
  assign pci_exp_txp = '0;
  assign user_clk = '0;
  assign user_reset = '0;
  assign user_lnk_up = '0;
  assign s_axis_rq_tready = '0;
  assign m_axis_rc_tdata = '0;
  assign m_axis_rc_tkeep = '0;
  assign m_axis_rc_tlast = '0;
  assign m_axis_rc_tuser = '0;
  assign m_axis_rc_tvalid = '0;
  assign m_axis_cq_tdata = '0;
  assign m_axis_cq_tkeep = '0;
  assign m_axis_cq_tlast = '0;
  assign m_axis_cq_tuser = '0;
  assign m_axis_cq_tvalid = '0;
  assign s_axis_cc_tready = '0;
  assign pcie_rq_seq_num0 = '0;
  assign pcie_rq_seq_num_vld0 = '0;
  assign pcie_rq_seq_num1 = '0;
  assign pcie_rq_seq_num_vld1 = '0;
  assign pcie_rq_tag0 = '0;
  assign pcie_rq_tag1 = '0;
  assign pcie_rq_tag_av = '0;
  assign pcie_rq_tag_vld0 = '0;
  assign pcie_rq_tag_vld1 = '0;
  assign pcie_tfc_nph_av = '0;
  assign pcie_tfc_npd_av = '0;
  assign pcie_cq_np_req_count = '0;
  assign cfg_phy_link_down = '0;
  assign cfg_phy_link_status = '0;
  assign cfg_negotiated_width = '0;
  assign cfg_current_speed = '0;
  assign cfg_max_payload = '0;
  assign cfg_max_read_req = '0;
  assign cfg_function_status = '0;
  assign cfg_function_power_state = '0;
  assign cfg_vf_status = '0;
  assign cfg_vf_power_state = '0;
  assign cfg_link_power_state = '0;
  assign cfg_mgmt_read_data = '0;
  assign cfg_mgmt_read_write_done = '0;
  assign cfg_err_cor_out = '0;
  assign cfg_err_nonfatal_out = '0;
  assign cfg_err_fatal_out = '0;
  assign cfg_local_error_valid = '0;
  assign cfg_local_error_out = '0;
  assign cfg_ltssm_state = '0;
  assign cfg_rx_pm_state = '0;
  assign cfg_tx_pm_state = '0;
  assign cfg_rcb_status = '0;
  assign cfg_obff_enable = '0;
  assign cfg_pl_status_change = '0;
  assign cfg_tph_requester_enable = '0;
  assign cfg_tph_st_mode = '0;
  assign cfg_vf_tph_requester_enable = '0;
  assign cfg_vf_tph_st_mode = '0;
  assign cfg_msg_received = '0;
  assign cfg_msg_received_data = '0;
  assign cfg_msg_received_type = '0;
  assign cfg_msg_transmit_done = '0;
  assign cfg_fc_ph = '0;
  assign cfg_fc_pd = '0;
  assign cfg_fc_nph = '0;
  assign cfg_fc_npd = '0;
  assign cfg_fc_cplh = '0;
  assign cfg_fc_cpld = '0;
  assign cfg_bus_number = '0;
  assign cfg_power_state_change_interrupt = '0;
  assign cfg_flr_in_process = '0;
  assign cfg_vf_flr_in_process = '0;
  assign cfg_ext_read_received = '0;
  assign cfg_ext_write_received = '0;
  assign cfg_ext_register_number = '0;
  assign cfg_ext_function_number = '0;
  assign cfg_ext_write_data = '0;
  assign cfg_ext_write_byte_enable = '0;
  assign cfg_interrupt_sent = '0;
  assign cfg_interrupt_msi_enable = '0;
  assign cfg_interrupt_msi_mmenable = '0;
  assign cfg_interrupt_msi_mask_update = '0;
  assign cfg_interrupt_msi_data = '0;
  assign cfg_interrupt_msi_sent = '0;
  assign cfg_interrupt_msi_fail = '0;
  assign cfg_hot_reset_out = '0;
  assign phy_rdy_out = '0;
endmodule

`default_nettype wire
