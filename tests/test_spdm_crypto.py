from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hil.codec.spdm_crypto import (
    MAX_SEQUENCE_NUMBER,
    SHA256,
    SHA384,
    AeadAlg,
    DheGroup,
    DheKeyPair,
    HashAlg,
    KeySchedule,
    SigningOperation,
    Transcript,
    aead_nonce,
    bin_concat,
    hkdf_expand,
    hkdf_extract,
    sign,
    signature_size,
    signing_context,
    verify,
)
from hil.errors import LocalProtocolError, PeerProtocolError

CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}


# -- HKDF plumbing: RFC 5869 appendix A ---------------------------------------------------------


def test_hkdf_rfc5869_case_1() -> None:
    ikm = bytes([0x0B]) * 22
    salt = bytes(range(0x0D))
    info = bytes(range(0xF0, 0xFA))
    prk = hkdf_extract(SHA256, salt, ikm)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    okm = hkdf_expand(SHA256, prk, info, 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_rfc5869_case_3_empty_salt_is_zero_salt() -> None:
    # Test case 3 has no salt, which RFC 5869 defines as HashLen zeros: the SPDM "salt = 0^H".
    ikm = bytes([0x0B]) * 22
    expected_prk = "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"
    assert hkdf_extract(SHA256, b"", ikm).hex() == expected_prk
    assert hkdf_extract(SHA256, bytes(32), ikm).hex() == expected_prk
    okm = hkdf_expand(SHA256, bytes.fromhex(expected_prk), b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


# -- hashes and transcripts -------------------------------------------------------------------


def test_hash_algs() -> None:
    assert (SHA256.size, SHA384.size) == (32, 48)
    assert HashAlg.from_spdm(0x01) is SHA256
    assert HashAlg.from_spdm(0x02) is SHA384
    assert SHA384.digest(b"abc").hex().startswith("cb00753f45a35e8b")  # FIPS 180-2 "abc"
    with pytest.raises(PeerProtocolError):
        HashAlg.from_spdm(0x04)


def test_transcript_digest_does_not_consume() -> None:
    t = Transcript(SHA384, b"GET_VERSION")
    first = t.digest()
    assert t.digest() == first == SHA384.digest(b"GET_VERSION")
    branch = t.copy()
    t.update(b"VERSION", b"GET_CAPABILITIES")
    assert t.digest() == SHA384.digest(b"GET_VERSIONVERSIONGET_CAPABILITIES")
    assert branch.digest() == first
    assert len(t) == len(b"GET_VERSIONVERSIONGET_CAPABILITIES")
    assert len(SHA256.transcript(b"xy")) == 2


# -- the signing context ----------------------------------------------------------------------


@pytest.mark.parametrize("operation", list(SigningOperation))
@pytest.mark.parametrize(("version", "digits"), [(0x12, b"1.2"), (0x13, b"1.3")])
def test_signing_context_layout(version: int, digits: bytes, operation: str) -> None:
    ctx = signing_context(version, operation)
    assert len(ctx) == 100
    for block in range(4):
        chunk = ctx[16 * block : 16 * block + 16]
        assert chunk == b"dmtf-spdm-v" + digits + b".*"
        assert chunk[11:12] + chunk[13:14] == digits[:1] + digits[2:]
        assert chunk[15:16] == b"*"
    op = operation.encode()
    pad = 36 - len(op)
    assert ctx[64 : 64 + pad] == bytes(pad)
    assert ctx[100 - len(op) :] == op
    assert ctx[64 + pad - 1 : 64 + pad + 1] == b"\x00" + op[:1]  # right-aligned, no gap


def test_signing_context_known_bytes() -> None:
    ctx = signing_context(0x12, "responder-key_exchange_rsp signing")
    assert ctx == b"dmtf-spdm-v1.2.*" * 4 + b"\x00\x00" + b"responder-key_exchange_rsp signing"


def test_signing_operation_strings() -> None:
    assert SigningOperation.CHALLENGE_AUTH == "responder-challenge_auth signing"
    assert SigningOperation.MEASUREMENTS == "responder-measurements signing"
    assert SigningOperation.KEY_EXCHANGE_RSP == "responder-key_exchange_rsp signing"
    assert SigningOperation.FINISH == "requester-finish signing"


@pytest.mark.parametrize(("version", "operation"), [(0x11, "x"), (0x12, "y" * 37), (0xA2, "x")])
def test_signing_context_rejects(version: int, operation: str) -> None:
    with pytest.raises(LocalProtocolError):
        signing_context(version, operation)


# -- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("curve", ["P-256", "P-384"])
@pytest.mark.parametrize("hash_alg", [SHA256, SHA384], ids=lambda h: h.name)
def test_sign_verify(curve: str, hash_alg: HashAlg) -> None:
    key = ec.generate_private_key(CURVES[curve])
    th = hash_alg.digest(b"A || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP")
    op = SigningOperation.KEY_EXCHANGE_RSP
    sig = sign(key, 0x12, op, th, hash_alg)
    assert len(sig) == signature_size(key) == {"P-256": 64, "P-384": 96}[curve]
    pub = key.public_key()
    assert verify(pub, 0x12, op, th, hash_alg, sig)
    tampered = bytearray(sig)
    tampered[len(sig) // 2] ^= 0x01
    assert not verify(pub, 0x12, op, th, hash_alg, bytes(tampered))
    assert not verify(pub, 0x12, SigningOperation.FINISH, th, hash_alg, sig)
    assert not verify(pub, 0x13, op, th, hash_alg, sig)
    assert not verify(pub, 0x12, op, hash_alg.digest(b"other"), hash_alg, sig)
    assert not verify(pub, 0x12, op, th, hash_alg, sig[:-1])
    assert not verify(pub, 0x12, op, th, hash_alg, bytes(len(sig)))
    other = ec.generate_private_key(CURVES[curve]).public_key()
    assert not verify(other, 0x12, op, th, hash_alg, sig)


def test_signature_is_over_hash_of_context_and_transcript_hash() -> None:
    # DSP0274 §15 / libspdm: ECDSA over Hash(context || Hash(transcript)), r || s big-endian.
    key = ec.generate_private_key(ec.SECP384R1())
    th = SHA384.digest(b"transcript")
    sig = sign(key, 0x12, SigningOperation.CHALLENGE_AUTH, th, SHA384)
    digest = SHA384.digest(signing_context(0x12, SigningOperation.CHALLENGE_AUTH) + th)
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    key.public_key().verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA384())))


def test_spdm_1_1_signs_the_transcript_hash_directly() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    th = SHA256.digest(b"M1")
    sig = sign(key, 0x11, SigningOperation.CHALLENGE_AUTH, th, SHA256)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.public_key().verify(der, th, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert verify(key.public_key(), 0x11, SigningOperation.CHALLENGE_AUTH, th, SHA256, sig)


def test_sign_rejects_wrong_hash_length() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(LocalProtocolError):
        sign(key, 0x12, SigningOperation.FINISH, bytes(32), SHA384)


# -- ECDHE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", list(DheGroup))
def test_dhe_back_to_back(group: DheGroup) -> None:
    req, rsp = DheKeyPair.generate(group), DheKeyPair.generate(group)
    assert len(req.public_bytes()) == group.exchange_size == {0x08: 64, 0x10: 96}[group]
    secret = req.shared_secret(rsp.public_bytes())
    assert secret == rsp.shared_secret(req.public_bytes())
    assert len(secret) == group.coordinate_size


def test_dhe_secret_is_the_x_coordinate() -> None:
    # cryptography's ECDH returns the X coordinate of the shared point (SEC 1 §3.3.1), which is
    # what SPDM uses as the DHE secret; ExchangeData is X || Y of the public point.
    group = DheGroup.SECP256R1
    mine = ec.generate_private_key(group.curve)
    peer = DheKeyPair.generate(group)
    pair = DheKeyPair(group, mine)
    peer_point = ec.EllipticCurvePublicKey.from_encoded_point(
        group.curve, b"\x04" + peer.public_bytes()
    )
    assert pair.shared_secret(peer.public_bytes()) == mine.exchange(ec.ECDH(), peer_point)
    numbers = mine.public_key().public_numbers()
    assert pair.public_bytes() == numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


@pytest.mark.parametrize("group", list(DheGroup))
def test_dhe_rejects_points_off_the_curve(group: DheGroup) -> None:
    mine = DheKeyPair.generate(group)
    good = bytearray(DheKeyPair.generate(group).public_bytes())
    good[-1] ^= 0x01  # Y no longer matches X
    for bad in (bytes(good), bytes(group.exchange_size), b"\xff" * group.exchange_size):
        with pytest.raises(PeerProtocolError, match="not a point"):
            mine.shared_secret(bad)
    with pytest.raises(PeerProtocolError, match="ExchangeData of"):
        mine.shared_secret(bytes(good)[:-1])


def test_dhe_key_pair_curve_must_match_group() -> None:
    with pytest.raises(LocalProtocolError):
        DheKeyPair(DheGroup.SECP384R1, ec.generate_private_key(ec.SECP256R1()))


# -- the key schedule -------------------------------------------------------------------------


def test_bin_concat_bytes() -> None:
    assert bin_concat(0x12, 48, "derived") == b"\x30\x00spdm1.2 derived"
    assert bin_concat(0x13, 32, "key") == b"\x20\x00spdm1.3 key"
    assert bin_concat(0x11, 12, b"iv") == b"\x0c\x00spdm1.1 iv"
    th = bytes(range(48))
    assert bin_concat(0x12, 48, "req hs data", th) == b"\x30\x00spdm1.2 req hs data" + th
    assert bin_concat(0x12, 0x0102, "x")[:2] == b"\x02\x01"  # little-endian
    with pytest.raises(LocalProtocolError):
        bin_concat(0x12, 0x10000, "x")


def _session_inputs(hash_alg: HashAlg, group: DheGroup) -> tuple[bytes, bytes, bytes, bytes]:
    req, rsp = DheKeyPair.generate(group), DheKeyPair.generate(group)
    th1 = hash_alg.digest(b"TH1 transcript")
    th2 = hash_alg.digest(b"TH2 transcript")
    return req.shared_secret(rsp.public_bytes()), rsp.shared_secret(req.public_bytes()), th1, th2


@pytest.mark.parametrize("version", [0x12, 0x13])
@pytest.mark.parametrize("hash_alg", [SHA256, SHA384], ids=lambda h: h.name)
def test_key_schedule_back_to_back(version: int, hash_alg: HashAlg) -> None:
    req_secret, rsp_secret, th1, th2 = _session_inputs(hash_alg, DheGroup.SECP384R1)
    requester, responder = KeySchedule(version, hash_alg), KeySchedule(version, hash_alg)
    hs_q, hs_r = requester.handshake(req_secret, th1), responder.handshake(rsp_secret, th1)
    assert hs_q == hs_r
    data_q, data_r = requester.data(hs_q, th2), responder.data(hs_r, th2)
    assert data_q == data_r
    h = hash_alg.size
    secrets = [
        hs_q.handshake_secret,
        hs_q.request.secret,
        hs_q.response.secret,
        hs_q.request_finished_key,
        hs_q.response_finished_key,
        data_q.master_secret,
        data_q.request.secret,
        data_q.response.secret,
        data_q.export_master_secret,
    ]
    assert all(len(s) == h for s in secrets)
    assert len(set(secrets)) == len(secrets)
    for traffic in (hs_q.request, hs_q.response, data_q.request, data_q.response):
        assert (len(traffic.key), len(traffic.iv)) == (32, 12)
    assert len({hs_q.request.key, hs_q.response.key, data_q.request.key, data_q.response.key}) == 4


def test_key_schedule_follows_dsp0274_formulas() -> None:
    # Recompute a few outputs with cryptography's one-shot HKDF (extract + expand together).
    version, h = 0x12, 48
    dhe, _, th1, th2 = _session_inputs(SHA384, DheGroup.SECP384R1)
    ks = KeySchedule(version, SHA384)
    hs = ks.handshake(dhe, th1)
    data = ks.data(hs, th2)

    def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
        return HKDF(hashes.SHA384(), length, salt, info).derive(ikm)

    req_hs = hkdf(bytes(h), dhe, b"\x30\x00spdm1.2 req hs data" + th1, h)
    assert hs.request.secret == req_hs
    assert hs.response.secret == hkdf(bytes(h), dhe, b"\x30\x00spdm1.2 rsp hs data" + th1, h)
    salt1 = hkdf(bytes(h), dhe, b"\x30\x00spdm1.2 derived", h)
    assert data.request.secret == hkdf(salt1, bytes(h), b"\x30\x00spdm1.2 req app data" + th2, h)
    assert data.export_master_secret == hkdf(
        salt1, bytes(h), b"\x30\x00spdm1.2 exp master" + th2, h
    )
    # key/iv/finished are HKDF-Expand only (no extract) from the directional secret.
    assert hs.request.key == hkdf_expand(SHA384, req_hs, b"\x20\x00spdm1.2 key", 32)
    assert hs.request.iv == hkdf_expand(SHA384, req_hs, b"\x0c\x00spdm1.2 iv", 12)
    assert hs.request_finished_key == hkdf_expand(SHA384, req_hs, b"\x30\x00spdm1.2 finished", h)


def test_verify_data() -> None:
    dhe, _, th1, _ = _session_inputs(SHA384, DheGroup.SECP384R1)
    ks = KeySchedule(0x12, SHA384)
    hs = ks.handshake(dhe, th1)
    vd = ks.verify_data(hs.response_finished_key, th1)
    assert vd == SHA384.hmac(hs.response_finished_key, th1)
    assert len(vd) == 48
    assert ks.check_verify_data(hs.response_finished_key, th1, vd)
    assert not ks.check_verify_data(hs.request_finished_key, th1, vd)
    assert not ks.check_verify_data(hs.response_finished_key, th1, vd[:-1] + b"\x00")


def test_key_update_one_direction_or_both() -> None:
    dhe, _, th1, th2 = _session_inputs(SHA384, DheGroup.SECP384R1)
    ks = KeySchedule(0x12, SHA384)
    data = ks.data(ks.handshake(dhe, th1), th2)
    nxt = ks.update(data.request)
    assert nxt.secret == hkdf_expand(
        SHA384, data.request.secret, b"\x30\x00spdm1.2 traffic upd", 48
    )
    assert nxt.key != data.request.key and nxt.iv != data.request.iv
    assert ks.update(data.request) == nxt  # deterministic: the peer derives the same
    one = ks.update_data(data)
    assert one.request == nxt and one.response == data.response
    both = ks.update_data(data, request=True, response=True)
    assert both.request == nxt and both.response == ks.update(data.response)
    assert both.export_master_secret == data.export_master_secret


def test_key_schedule_checks_inputs() -> None:
    ks = KeySchedule(0x12, SHA384)
    with pytest.raises(LocalProtocolError, match="TH1"):
        ks.handshake(bytes(48), bytes(32))
    with pytest.raises(LocalProtocolError):
        KeySchedule(0x10, SHA384)


@pytest.mark.parametrize("aead", list(AeadAlg))
def test_aead_key_sizes(aead: AeadAlg) -> None:
    dhe, _, th1, _ = _session_inputs(SHA256, DheGroup.SECP256R1)
    hs = KeySchedule(0x12, SHA256, aead).handshake(dhe, th1)
    assert len(hs.request.key) == aead.key_size
    assert len(hs.request.iv) == aead.iv_size == 12


# -- sequence numbers and the nonce -----------------------------------------------------------


def test_aead_nonce_little_endian_in_low_bytes() -> None:
    iv = bytes(range(0x10, 0x1C))
    assert aead_nonce(iv, 0) == iv
    assert aead_nonce(iv, 1) == bytes([0x11]) + iv[1:]
    nonce = aead_nonce(bytes(12), 0x0102030405060708)
    assert nonce == bytes([8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0])
    assert aead_nonce(bytes(12), 0x0102030405060708, "big") == bytes(4) + bytes(range(1, 9))
    assert aead_nonce(bytes(12), MAX_SEQUENCE_NUMBER) == b"\xfe" + b"\xff" * 7 + bytes(4)


@pytest.mark.parametrize("seq", [-1, MAX_SEQUENCE_NUMBER + 1, 1 << 64])
def test_aead_nonce_refuses_sequence_numbers_that_would_wrap(seq: int) -> None:
    with pytest.raises(LocalProtocolError):
        aead_nonce(bytes(12), seq)
