"""SPDM signatures with RSA (RSASSA, RSAPSS) and ECDSA P-521, checked against independent models.

RSASSA-PKCS1-v1_5 is deterministic, so the signature is compared byte for byte with textbook RSA
over the RFC 8017 §9.2 encoding built here.  RSASSA-PSS is randomised, so the signature is opened
with the public key and its encoding checked by an EMSA-PSS-VERIFY (RFC 8017 §9.1.2) written
here with hashlib: that pins the MGF1 hash and the salt length (= hash length).
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from hil.codec.spdm import BaseAsymAlgo
from hil.codec.spdm_crypto import (
    SHA256,
    SHA384,
    HashAlg,
    SigningOperation,
    asym_algs_for_key,
    sign,
    sign_message,
    signature_size,
    signing_context,
    verify,
    verify_message,
)
from hil.errors import LocalProtocolError

_KEYS: dict[int, rsa.RSAPrivateKey] = {}


def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    if bits not in _KEYS:  # RSA key generation is slow: one key per size per session
        _KEYS[bits] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _KEYS[bits]


SSA = {2048: BaseAsymAlgo.RSASSA_2048, 3072: BaseAsymAlgo.RSASSA_3072}
PSS = {2048: BaseAsymAlgo.RSAPSS_2048, 3072: BaseAsymAlgo.RSAPSS_3072}

# RFC 8017 §9.2 note 1: DER of DigestInfo up to the digest itself.
DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
}


def _numbers(key: rsa.RSAPrivateKey) -> tuple[int, int, int, int]:
    priv = key.private_numbers()
    return priv.public_numbers.n, priv.public_numbers.e, priv.d, (key.key_size + 7) // 8


def _pkcs1_v15(key: rsa.RSAPrivateKey, message: bytes, hash_alg: HashAlg) -> bytes:
    """Textbook RSASSA-PKCS1-v1_5: EM = 00 01 FF.. 00 || DigestInfo || H(M); s = EM^d mod n."""
    n, _, d, k = _numbers(key)
    t = DIGEST_INFO[hash_alg.name] + hashlib.new(hash_alg.name, message).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


def _mgf1(seed: bytes, length: int, name: str) -> bytes:
    out, counter = b"", 0
    while len(out) < length:
        out += hashlib.new(name, seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def _pss_salt(key: rsa.RSAPrivateKey, m_hash: bytes, signature: bytes, name: str) -> bytes:
    """EMSA-PSS-VERIFY (RFC 8017 §9.1.2) of the message hash ``m_hash`` with MGF1(``name``);
    returns the salt, or fails an assertion."""
    n, e, _, _ = _numbers(key)
    em_bits = key.key_size - 1
    em_len = (em_bits + 7) // 8
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(em_len, "big")
    h_len = hashlib.new(name).digest_size
    assert em[-1] == 0xBC
    masked_db, h = em[: em_len - h_len - 1], em[em_len - h_len - 1 : -1]
    db = bytearray(a ^ b for a, b in zip(masked_db, _mgf1(h, len(masked_db), name), strict=True))
    db[0] &= 0xFF >> (8 * em_len - em_bits)
    separator = db.index(1)
    assert not any(db[:separator]), "PS must be zeros"
    salt = bytes(db[separator + 1 :])
    assert hashlib.new(name, bytes(8) + m_hash + salt).digest() == h
    return salt


TH = {h.name: h.digest(b"VCA || B || CHALLENGE || CHALLENGE_AUTH") for h in (SHA256, SHA384)}
OP = SigningOperation.CHALLENGE_AUTH


@pytest.mark.parametrize("bits", [2048, 3072])
@pytest.mark.parametrize("hash_alg", [SHA256, SHA384], ids=lambda h: h.name)
def test_rsassa_is_pkcs1_v15_over_context_and_transcript_hash(bits: int, hash_alg: HashAlg) -> None:
    key = rsa_key(bits)
    th = TH[hash_alg.name]
    sig = sign(key, 0x12, OP, th, hash_alg, asym_alg=SSA[bits])
    assert len(sig) == signature_size(key) == bits // 8
    assert sig == _pkcs1_v15(key, signing_context(0x12, OP) + th, hash_alg)
    assert verify(key.public_key(), 0x12, OP, th, hash_alg, sig, asym_alg=SSA[bits])


@pytest.mark.parametrize("bits", [2048, 3072])
@pytest.mark.parametrize("hash_alg", [SHA256, SHA384], ids=lambda h: h.name)
def test_rsapss_uses_mgf1_of_the_hash_and_a_hash_long_salt(bits: int, hash_alg: HashAlg) -> None:
    key = rsa_key(bits)
    th = TH[hash_alg.name]
    sig = sign(key, 0x13, OP, th, hash_alg, asym_alg=PSS[bits])
    assert len(sig) == bits // 8
    m_hash = hashlib.new(hash_alg.name, signing_context(0x13, OP) + th).digest()
    salt = _pss_salt(key, m_hash, sig, hash_alg.name)
    assert len(salt) == hash_alg.size
    assert sign(key, 0x13, OP, th, hash_alg, asym_alg=PSS[bits]) != sig  # randomised
    assert verify(key.public_key(), 0x13, OP, th, hash_alg, sig, asym_alg=PSS[bits])


@pytest.mark.parametrize("hash_alg", [SHA256, SHA384], ids=lambda h: h.name)
def test_rsapss_verify_accepts_any_salt_length(hash_alg: HashAlg) -> None:
    key = rsa_key(2048)
    th = TH[hash_alg.name]
    message = signing_context(0x12, OP) + th
    for salt_length in (padding.PSS.MAX_LENGTH, 0):
        pad = padding.PSS(mgf=padding.MGF1(hash_alg.algorithm()), salt_length=salt_length)
        sig = key.sign(message, pad, hash_alg.algorithm())
        assert verify(key.public_key(), 0x12, OP, th, hash_alg, sig, asym_alg=PSS[2048])


def test_rsa_signature_defects_do_not_verify() -> None:
    key = rsa_key(2048)
    pub, th = key.public_key(), TH["sha384"]
    for alg, other in ((SSA[2048], PSS[2048]), (PSS[2048], SSA[2048])):
        sig = sign(key, 0x12, OP, th, SHA384, asym_alg=alg)
        assert verify(pub, 0x12, OP, th, SHA384, sig, asym_alg=alg)
        assert not verify(pub, 0x12, OP, th, SHA384, sig, asym_alg=other)  # other padding
        assert not verify(pub, 0x12, SigningOperation.FINISH, th, SHA384, sig, asym_alg=alg)
        assert not verify(pub, 0x13, OP, th, SHA384, sig, asym_alg=alg)
        assert not verify(pub, 0x12, OP, th, SHA384, sig[1:], asym_alg=alg)
        assert not verify(pub, 0x12, OP, th, SHA384, b"\x00" + sig, asym_alg=alg)
        tampered = bytearray(sig)
        tampered[100] ^= 0x40
        assert not verify(pub, 0x12, OP, th, SHA384, bytes(tampered), asym_alg=alg)
        other_key = rsa_key(3072).public_key()
        assert not verify(other_key, 0x12, OP, th, SHA384, sig, asym_alg=SSA[3072])


def test_spdm_1_1_rsa_signs_the_transcript_hash_as_the_digest() -> None:
    key = rsa_key(2048)
    th = SHA256.digest(b"M1")
    sig = sign(key, 0x11, OP, th, SHA256, asym_alg=SSA[2048])
    key.public_key().verify(sig, th, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    assert verify(key.public_key(), 0x11, OP, th, SHA256, sig, asym_alg=SSA[2048])
    pss = sign(key, 0x11, OP, th, SHA256, asym_alg=PSS[2048])
    assert len(_pss_salt(key, th, pss, "sha256")) == 32  # mHash is the transcript hash


def test_message_level_api() -> None:
    key = rsa_key(3072)
    sig = sign_message(key, b"any bytes", SHA384, asym_alg=SSA[3072])
    key.public_key().verify(sig, b"any bytes", padding.PKCS1v15(), hashes.SHA384())
    assert verify_message(key.public_key(), b"any bytes", SHA384, sig, asym_alg=SSA[3072])
    assert not verify_message(key.public_key(), b"other bytes", SHA384, sig, asym_alg=SSA[3072])


def test_p521_signatures_are_r_and_s_of_66_bytes() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    th = TH["sha384"]
    sig = sign(key, 0x12, OP, th, SHA384)
    assert len(sig) == signature_size(key) == 132
    der = encode_dss_signature(int.from_bytes(sig[:66], "big"), int.from_bytes(sig[66:], "big"))
    key.public_key().verify(der, signing_context(0x12, OP) + th, ec.ECDSA(hashes.SHA384()))
    assert verify(key.public_key(), 0x12, OP, th, SHA384, sig, asym_alg=BaseAsymAlgo.ECDSA_P521)


def test_algorithms_for_keys() -> None:
    assert asym_algs_for_key(rsa_key(2048)) == SSA[2048] | PSS[2048]
    assert asym_algs_for_key(rsa_key(3072).public_key()) == SSA[3072] | PSS[3072]
    assert asym_algs_for_key(ec.generate_private_key(ec.SECP256R1())) == BaseAsymAlgo.ECDSA_P256
    with pytest.raises(LocalProtocolError, match="RSA-1024"):
        asym_algs_for_key(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(LocalProtocolError, match="secp224r1"):
        asym_algs_for_key(ec.generate_private_key(ec.SECP224R1()))


def test_algorithm_must_fit_the_key() -> None:
    key, th = rsa_key(2048), TH["sha256"]
    with pytest.raises(LocalProtocolError, match="RSASSA or RSAPSS"):
        sign(key, 0x12, OP, th, SHA256)
    with pytest.raises(LocalProtocolError, match="cannot be used as"):
        sign(key, 0x12, OP, th, SHA256, asym_alg=SSA[3072])
    with pytest.raises(LocalProtocolError, match="exactly one"):
        sign(key, 0x12, OP, th, SHA256, asym_alg=SSA[2048] | PSS[2048])
    p256 = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(LocalProtocolError, match="cannot be used as"):
        sign(p256, 0x12, OP, th, SHA256, asym_alg=BaseAsymAlgo.ECDSA_P384)
    with pytest.raises(LocalProtocolError, match="cannot be used as"):
        verify(p256.public_key(), 0x12, OP, th, SHA256, bytes(64), asym_alg=SSA[2048])
    sig = sign(p256, 0x12, OP, th, SHA256, asym_alg=BaseAsymAlgo.ECDSA_P256)
    assert verify(p256.public_key(), 0x12, OP, th, SHA256, sig)
