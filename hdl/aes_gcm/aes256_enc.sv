// AES-256 encryption (FIPS-197), fully unrolled: one block per clock, a new key per block.
//
// Stage 0 registers the block XOR round key 0; stage r (1..14) registers the state after
// round r. The key schedule runs alongside: every stage also carries round keys r and r + 1
// and computes round key r + 2 while the data path computes round r + 1, so a block may use a
// different key from the block before it at no cost. Latency is 15 clocks from in_valid_i to
// out_valid_o; there is no back-pressure, every clock takes a slot. A side band (in_user_i)
// travels with each block and comes out beside it.

`default_nettype none

module aes256_enc
#(
  // Width of the side band carried alongside each block.
  parameter int unsigned USER_W = 1
) (
  input  logic              clk_i,
  input  logic              rst_ni,

  // Input: one block per clock, no back-pressure
  input  logic              in_valid_i,
  input  logic [255:0]      in_key_i,    // key, byte 0 in [255:248]
  input  logic [127:0]      in_block_i,  // plaintext block, byte 0 in [127:120]
  input  logic [USER_W-1:0] in_user_i,   // side band, delayed with the block

  // Output: Latency clocks later
  output logic              out_valid_o,
  output logic [127:0]      out_block_o,  // E_K(block), byte 0 in [127:120]
  output logic [USER_W-1:0] out_user_o
);

  if (USER_W < 1) begin : gen_bad_user_w
    $fatal(1, "aes256_enc: USER_W must be at least 1");
  end

  localparam int unsigned Rounds = aes_gcm_pkg::AesRounds;
  localparam int unsigned Stages = Rounds + 1;  // stage 0 plus one per round

  //////////////////
  // Declarations //
  //////////////////

  // Stage registers. Only the valid bits are reset: the datapath and the side band need no
  // reset (and become shift-register primitives on FPGAs where the tools find them).
  logic [Stages-1:0]              vld_q, vld_d;
  logic [Stages-1:0][127:0]       st_q, st_d;    // state after round r
  logic [Rounds-1:0][255:0]       ks_q, ks_d;    // round keys r and r + 1
  logic [Stages-1:0][USER_W-1:0]  usr_q, usr_d;

  ////////////////
  // Stage 0    //
  ////////////////

  // AddRoundKey with round key 0; round keys 0 and 1 are the key itself.
  assign vld_d[0] = in_valid_i;
  assign st_d[0]  = in_block_i ^ in_key_i[255:128];
  assign ks_d[0]  = in_key_i;
  assign usr_d[0] = in_user_i;

  ////////////
  // Rounds //
  ////////////

  for (genvar r = 1; r <= Rounds; r++) begin : gen_round
    // Round r uses round key r, the lower half of what stage r - 1 carries, and computes
    // round key r + 1, whose first word w[4r + 4] takes RotWord and Rcon[(r + 1) / 2] when
    // r is odd. Stage r carries round keys r and r + 1; after the last round none is needed.
    logic [255:0] ks_next;

    aes256_round u_round (
      .st_i    (st_q[r-1]),
      .final_i (1'(r == Rounds)),
      .st_o    (st_d[r]),
      .ks_i    (ks_q[r-1]),
      .rot_i   (1'(r % 2 == 1)),
      .rcon_i  (8'(1 << ((r + 1) / 2 - 1))),
      .ks_o    (ks_next)
    );

    assign vld_d[r] = vld_q[r-1];
    assign usr_d[r] = usr_q[r-1];
    if (r < Rounds) begin : gen_key
      assign ks_d[r] = ks_next;
    end
  end

  ///////////////
  // Registers //
  ///////////////

  always_ff @(posedge clk_i or negedge rst_ni) begin : p_vld
    if (!rst_ni) begin
      vld_q <= '0;
    end else begin
      vld_q <= vld_d;
    end
  end

  always_ff @(posedge clk_i) begin : p_data
    st_q  <= st_d;
    ks_q  <= ks_d;
    usr_q <= usr_d;
  end

  assign out_valid_o = vld_q[Stages-1];
  assign out_block_o = st_q[Stages-1];
  assign out_user_o  = usr_q[Stages-1];

endmodule

`default_nettype wire
