// AES-256-GCM engine: shared types and the pure functions of the datapath.
//
// Bit order inside the engine follows the standards' bit strings: a 128-bit block has its
// first byte (byte 0) in bits [127:120], a 256-bit key its byte 0 in [255:248], and in GHASH
// the coefficient of x^i is bit 127 - i (SP 800-38D §6.3). The ports of aes_gcm use the
// stream convention instead (byte k in bits [8k+7:8k]); the top converts at its boundary.

`default_nettype none

package aes_gcm_pkg;

  ///////////
  // Types //
  ///////////

  // Beat kinds on the input stream of aes_gcm (s_kind_i).
  typedef enum logic [1:0] {
    KindHdr  = 2'd0,  // packet header: key, IV, direction, tag length
    KindAad  = 2'd1,  // additional authenticated data block
    KindText = 2'd2   // payload block: plaintext (encrypt) or ciphertext (decrypt)
  } kind_e;

  // What a slot in the AES pipeline is for.
  typedef enum logic [1:0] {
    SlotH    = 2'd0,  // E_K(0^128): the hash subkey H of a new packet
    SlotJ0   = 2'd1,  // E_K(J0): masks the tag
    SlotAad  = 2'd2,  // AAD block riding along (its AES result is unused)
    SlotText = 2'd3   // E_K(counter block) XOR payload block
  } slot_e;

  // Side band that travels down the AES pipeline with each slot.
  typedef struct packed {
    slot_e        kind;
    logic         last;    // last slot of the packet: GHASH the length block next
    logic         dec;     // packet decrypts
    logic         tag96;   // packet uses the 96-bit tag
    logic [4:0]   nbytes;  // valid bytes of data (1..16) for AAD and text slots
    logic [127:0] data;    // AAD or text block, bytes past nbytes zero (engine order)
    logic [127:0] etag;    // expected tag on the last slot (port order)
  } side_t;

  ////////////////////////////
  // AES (FIPS-197, Nk = 8) //
  ////////////////////////////

  localparam int unsigned AesRounds = 14;

  // Multiplication by x (02h) in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS-197 §4.2).
  function automatic logic [7:0] xtime(logic [7:0] a);
    xtime = {a[6:0], 1'b0} ^ (a[7] ? 8'h1b : 8'h00);
  endfunction

  //////////////////////////////
  // GHASH (SP 800-38D §6.3)  //
  //////////////////////////////

  // R = 11100001 || 0^120: x^128 reduced modulo x^128 + x^7 + x^2 + x + 1.
  localparam logic [127:0] GhashR = {8'he1, 120'h0};

  // Multiplication by x: rightshift, folding the x^127 coefficient (bit 0) back with R.
  function automatic logic [127:0] gf128_mulx(logic [127:0] v);
    gf128_mulx = (v >> 1) ^ (v[0] ? GhashR : 128'h0);
  endfunction

  // The multiples H * x^i, i = 0 .. 127 (entry i in bits [128i+127:128i]), each from the one
  // before by gf128_mulx.
  function automatic logic [128*128-1:0] gf128_mulx_table(logic [127:0] h);
    logic [128*128-1:0] t;
    t[127:0] = h;
    for (int unsigned i = 1; i < 128; i++) begin
      t[128 * i +: 128] = gf128_mulx(t[128 * (i - 1) +: 128]);
    end
    gf128_mulx_table = t;
  endfunction

  ////////////////
  // Byte order //
  ////////////////

  // Reverse the byte order of a vector (engine order <-> port order).
  function automatic logic [127:0] bswap128(logic [127:0] v);
    logic [127:0] r;
    for (int unsigned k = 0; k < 16; k++) begin
      r[8 * k +: 8] = v[127 - 8 * k -: 8];
    end
    bswap128 = r;
  endfunction

  function automatic logic [255:0] bswap256(logic [255:0] v);
    logic [255:0] r;
    for (int unsigned k = 0; k < 32; k++) begin
      r[8 * k +: 8] = v[255 - 8 * k -: 8];
    end
    bswap256 = r;
  endfunction

  function automatic logic [95:0] bswap96(logic [95:0] v);
    logic [95:0] r;
    for (int unsigned k = 0; k < 12; k++) begin
      r[8 * k +: 8] = v[95 - 8 * k -: 8];
    end
    bswap96 = r;
  endfunction

  // Keep mask with bytes 0 .. n-1 set, in port order (byte k = bit k); n in 0 .. 16.
  function automatic logic [15:0] keep_of(logic [4:0] n);
    keep_of = 16'((17'h1 << n) - 17'h1);
  endfunction

  // Number of bytes a keep mask marks valid.
  function automatic logic [4:0] keep_count(logic [15:0] keep);
    logic [4:0] n;
    n = '0;
    for (int unsigned k = 0; k < 16; k++) begin
      n = n + 5'(keep[k]);
    end
    keep_count = n;
  endfunction

  // Expands a keep mask to a bit mask, both in port order.
  function automatic logic [127:0] byte_mask(logic [15:0] keep);
    logic [127:0] m;
    for (int unsigned k = 0; k < 16; k++) begin
      m[8 * k +: 8] = {8{keep[k]}};
    end
    byte_mask = m;
  endfunction

endpackage

`default_nettype wire
