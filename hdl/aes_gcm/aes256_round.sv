// One round of AES-256 (FIPS-197 §5.1) and one step of its key expansion (§5.2), combinational.
//
// The round constants come in as ports rather than parameters, so all 14 rounds are the same
// module; synthesis folds the constants away once the design is flattened. The round is
// written as per-byte continuous assignments, which Verilator turns into compact code.
//
// Blocks are in engine order: byte j in bits [127 - 8j -: 8]; state byte (r, c) is byte r + 4c.

`default_nettype none

module aes256_round (
  // Data path
  input  logic [127:0] st_i,     // state after round r - 1
  input  logic         final_i,  // last round: no MixColumns
  output logic [127:0] st_o,     // state after round r

  // Key schedule
  input  logic [255:0] ks_i,     // round keys r - 1 and r (round key r in [127:0])
  input  logic         rot_i,    // the next word index is a multiple of 8: RotWord and Rcon
  input  logic [7:0]   rcon_i,   // Rcon for that word
  output logic [255:0] ks_o      // round keys r and r + 1
);

  logic [15:0][7:0] in_b;     // st_i by byte index (in_b[j] is byte j)
  logic [15:0][7:0] sr;       // after SubBytes and ShiftRows, by byte index
  logic [15:0][7:0] mc;       // after MixColumns, by byte index
  logic [127:0]     shifted;  // sr in engine order
  logic [127:0]     mixed;    // mc in engine order
  logic [31:0]      w_last, w_rot, w_sub, temp;
  logic [3:0][31:0] w;        // the new round key, w[3] first

  ///////////
  // Round //
  ///////////

  for (genvar j = 0; j < 16; j++) begin : gen_byte
    assign in_b[j]                   = st_i[127 - 8 * j -: 8];
    assign shifted[127 - 8 * j -: 8] = sr[j];
    assign mixed[127 - 8 * j -: 8]   = mc[j];
  end

  for (genvar c = 0; c < 4; c++) begin : gen_col
    logic [7:0] s0, s1, s2, s3;  // column c after ShiftRows
    logic [7:0] d0, d1, d2, d3;  // ... times 02h

    for (genvar r = 0; r < 4; r++) begin : gen_row
      // SubBytes, and ShiftRows: row r rotates left by r columns.
      aes_sbox u_sbox (
        .a_i (in_b[r + 4 * ((c + r) % 4)]),
        .s_o (sr[r + 4 * c])
      );
    end

    assign s0 = sr[4 * c];
    assign s1 = sr[4 * c + 1];
    assign s2 = sr[4 * c + 2];
    assign s3 = sr[4 * c + 3];
    assign d0 = aes_gcm_pkg::xtime(s0);
    assign d1 = aes_gcm_pkg::xtime(s1);
    assign d2 = aes_gcm_pkg::xtime(s2);
    assign d3 = aes_gcm_pkg::xtime(s3);

    // MixColumns (FIPS-197 §5.1.3): the circulant {02 03 01 01}, 03h * s = 02h * s ^ s.
    assign mc[4 * c]     = d0 ^ d1 ^ s1 ^ s2 ^ s3;
    assign mc[4 * c + 1] = s0 ^ d1 ^ d2 ^ s2 ^ s3;
    assign mc[4 * c + 2] = s0 ^ s1 ^ d2 ^ d3 ^ s3;
    assign mc[4 * c + 3] = d0 ^ s0 ^ s1 ^ s2 ^ d3;
  end

  // AddRoundKey with round key r.
  assign st_o = (final_i ? shifted : mixed) ^ ks_i[127:0];

  //////////////////
  // Key schedule //
  //////////////////

  // Round key r + 1 from round key r - 1 (ks_i[255:128]) and the last word of round key r:
  // SubWord(RotWord(w)) xor Rcon when the new word's index is a multiple of 8, else
  // SubWord(w) (Nk = 8 > 6).
  assign w_last = ks_i[31:0];
  assign w_rot  = rot_i ? {w_last[23:0], w_last[31:24]} : w_last;

  for (genvar k = 0; k < 4; k++) begin : gen_sub_word
    aes_sbox u_sbox (
      .a_i (w_rot[8 * k +: 8]),
      .s_o (w_sub[8 * k +: 8])
    );
  end

  assign temp   = w_sub ^ (rot_i ? {rcon_i, 24'h0} : 32'h0);
  assign w[3]   = ks_i[255:224] ^ temp;
  assign w[2]   = ks_i[223:192] ^ w[3];
  assign w[1]   = ks_i[191:160] ^ w[2];
  assign w[0]   = ks_i[159:128] ^ w[1];
  assign ks_o   = {ks_i[127:0], w};

endmodule

`default_nettype wire
