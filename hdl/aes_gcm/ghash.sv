// GHASH (NIST SP 800-38D §6.4): Y <- (Y xor X) * H in GF(2^128), one block per clock.
//
// The multiplier is bit-parallel and combinational, so Horner's rule runs at one block per
// clock with no accumulation hazard and no powers of H to precompute when the key changes.
// Product = xor over i of x_i * (H * x^i): the 128 multiples H * x^i are linear in H (each a
// shift with at most a few folded bits, SP 800-38D Algorithm 1), and the 128 partial products
// are summed in a balanced xor tree (depth 7), so the path is H or Y -> and -> 7 xor levels.
//
// Blocks are in engine order: the coefficient of x^i is bit 127 - i.

`default_nettype none

module ghash
(
  input  logic         clk_i,
  input  logic         rst_ni,

  // Hash subkey: loaded at the end of the clock; a block in the same clock uses the old H
  input  logic         h_we_i,
  input  logic [127:0] h_i,

  // Accumulator
  input  logic         clr_i,        // Y <- 0
  input  logic         blk_valid_i,  // Y <- (Y xor blk_i) * H
  input  logic [127:0] blk_i,
  output logic [127:0] y_o
);

  logic [127:0]        h_q, h_d;
  logic [127:0]        y_q, y_d;
  logic [127:0]        x;
  logic [127:0][127:0] hx;     // hx[i] = H * x^i
  logic [127:0][127:0] terms;  // partial products, then the xor tree in place
  logic [127:0]        prod;

  ////////////////
  // Multiplier //
  ////////////////

  assign x = y_q ^ blk_i;

  always_comb begin
    hx = aes_gcm_pkg::gf128_mulx_table(h_q);
    // Partial product i: H * x^i where X has the coefficient of x^i (bit 127 - i). The loops
    // stay loops in simulation (Verilator would otherwise unroll them into a lot of code).
    /* verilator unroll_disable */
    for (int unsigned i = 0; i < 128; i++) begin
      terms[i] = {128{x[127-i]}} & hx[i];
    end
    // Balanced xor tree: each level halves the number of terms.
    /* verilator unroll_disable */
    for (int unsigned w = 64; w >= 1; w = w / 2) begin
      /* verilator unroll_disable */
      for (int unsigned i = 0; i < w; i++) begin
        terms[i] = terms[2*i] ^ terms[2*i+1];
      end
    end
    prod = terms[0];
  end

  /////////////////
  // Accumulator //
  /////////////////

  always_comb begin
    h_d = h_we_i ? h_i : h_q;
    y_d = y_q;
    if (clr_i) begin
      y_d = '0;
    end else if (blk_valid_i) begin
      y_d = prod;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_regs
    if (!rst_ni) begin
      h_q <= '0;
      y_q <= '0;
    end else begin
      h_q <= h_d;
      y_q <= y_d;
    end
  end

  assign y_o = y_q;

`ifndef SYNTHESIS
  // Clearing and accumulating in the same clock would drop the block.
  ClrOrBlk_A: assert property (@(posedge clk_i) disable iff (!rst_ni) !(clr_i && blk_valid_i));
`endif

endmodule

`default_nettype wire
