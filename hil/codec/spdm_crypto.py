"""SPDM cryptography: hashes and transcripts, 1.2+ signatures, ECDHE, the session key schedule.

Sans-IO: every function here is a pure computation over bytes.  Every primitive (hash, HMAC,
HKDF, ECDSA, RSA, ECDH, AEAD) comes from ``cryptography``; this module only arranges inputs the way
DSP0274 and DSP0277 define them.

Version arguments are the SPDM version *byte* as carried in the message header: ``0x12`` for
SPDM 1.2, ``0x13`` for 1.3 (major in the high nibble, minor in the low one).

Signing input, SPDM 1.2+ (DSP0274 §15, signature generation)::

    +------------------------------------------------------------------+
    | "dmtf-spdm-v1.2.*" x 4                            (64 bytes)     |  digits follow the version
    +---------------------------------------+--------------------------+
    | zero padding                          | operation string         |  36 bytes, right-aligned
    +---------------------------------------+--------------------------+
    | Hash(transcript)                                   (H bytes)     |
    +------------------------------------------------------------------+

  The signature algorithm hashes context || Hash(transcript) with the negotiated hash, so the
  signed digest is a hash of a hash.  libspdm ``libspdm_asym_sign``/``libspdm_asym_verify``
  build the 100 + H byte buffer and hash it again before the RSA or ECDSA call
  (``libspdm_asym_func_need_hash`` is true for every RSA and ECDSA algorithm).  SPDM 1.0/1.1
  sign the transcript hash itself as the digest.

Signature algorithms and encodings (DSP0274 1.2 NEGOTIATE_ALGORITHMS BaseAsymAlgo table: the
TPM_ALG_* names of the TPM 2.0 Library spec; 1.2 also fixes the byte order of signatures,
libspdm ``doc/crypto_endianness.md``)::

    TPM_ALG_ECDSA_ECC_NIST_P256/P384/P521   ECDSA, r || s, each big-endian, as wide as the order
    TPM_ALG_RSASSA_2048/3072/4096           RSASSA-PKCS1-v1_5 (RFC 8017 §8.2), DigestInfo of H
    TPM_ALG_RSAPSS_2048/3072/4096           RSASSA-PSS (RFC 8017 §8.1), MGF1 with H
    RSA signatures                          big-endian, exactly the modulus size (256/384/512)

  H is always the negotiated BaseHashSel hash.  The PSS salt length is not fixed by DSP0274:
  TPM 2.0 Part 1 §B.7 (which TPM_ALG_RSAPSS points to) first asked for the largest salt that
  fits, later for the digest size.  libspdm signs with salt = hash length (mbedtls backend
  ``libspdm_rsa_pss_sign``: ``mbedtls_rsa_rsassa_pss_sign`` picks the hash length when it fits;
  OpenSSL backend: ``RSA_PSS_SALTLEN_DIGEST``) and its mbedtls ``libspdm_rsa_pss_verify``
  accepts any salt length (``MBEDTLS_RSA_SALT_LEN_ANY``) while its OpenSSL one demands the
  hash length.  So this module signs with salt = hash length, what every libspdm build accepts,
  and verifies with any salt length, as RFC 8017 §9.1.1 allows: a peer that follows the older
  TPM wording is not failed for it.

Key schedule (DSP0274 §12)::

    BinConcat(L, label, ctx) = L (u16 little-endian) || "spdm1.2 " || label || ctx

    HS            = HKDF-Extract(salt = 0^H, IKM = DHE secret)
    req_hs        = HKDF-Expand(HS, BinConcat(H, "req hs data", TH1), H)
    rsp_hs        = HKDF-Expand(HS, BinConcat(H, "rsp hs data", TH1), H)
    finished_key  = HKDF-Expand(x_hs, BinConcat(H, "finished"), H)
    salt1         = HKDF-Expand(HS, BinConcat(H, "derived"), H)
    MS            = HKDF-Extract(salt = salt1, IKM = 0^H)
    req_data      = HKDF-Expand(MS, BinConcat(H, "req app data", TH2), H)
    rsp_data      = HKDF-Expand(MS, BinConcat(H, "rsp app data", TH2), H)
    export_ms     = HKDF-Expand(MS, BinConcat(H, "exp master", TH2), H)
    key(x)        = HKDF-Expand(x, BinConcat(K, "key"), K)       K = AEAD key size (32)
    iv(x)         = HKDF-Expand(x, BinConcat(12, "iv"), 12)
    KEY_UPDATE    x' = HKDF-Expand(x, BinConcat(H, "traffic upd"), H); new key/iv; seq = 0

  Checked against libspdm ``libspdm_crypt_key_schedule.c`` (``libspdm_bin_concat``,
  ``libspdm_generate_handshake_key``, ``libspdm_generate_data_key``),
  ``libspdm_secmes_session.c`` (``libspdm_generate_aead_key_and_iv``,
  ``libspdm_create_update_session_data_key``) and the label table in
  ``spdm_secured_message.h``/``spdm.h``:

  - the version prefix is 8 bytes with a trailing space: "spdm1.2 " (libspdm writes the template
    "spdmx.x " and patches the two digits from the negotiated SPDM version);
  - L is copied from a host ``uint16_t`` on little-endian targets, i.e. little-endian on the wire;
    NIST's ACVTS SPDM KDF (which cites DSP0274 §12) encodes it least-significant byte first too;
  - the "derived" step has no context (unlike TLS 1.3, no Hash("") is appended);
  - the context, when present, is the H-byte transcript hash;
  - the 1.3 PSK variant salts the first extract with 0xFF bytes; DHE always uses zeros.

Per-message nonce (DSP0277 §4.2.3, per-message nonce derivation): the 64-bit sequence number of
the direction is XORed into the IV.  DSP0277 1.2 fixes its encoding as little-endian in IV bytes
0..7; libspdm uses that unconditionally for secured-message version 1.2 and as its default for
1.0/1.1, where the byte order was ill-defined (libspdm ``doc/crypto_endianness.md``,
``generate_iv`` in ``libspdm_secmes_encode_decode.c``).  The sequence number must not wrap:
libspdm refuses a record once the counter reaches 2^64 - 1.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ..errors import LocalProtocolError, PeerProtocolError
from .spdm import BaseAsymAlgo

__all__ = [
    "MAX_SEQUENCE_NUMBER",
    "SHA256",
    "SHA384",
    "SIGNING_CONTEXT_SIZE",
    "AeadAlg",
    "DataSecrets",
    "DheGroup",
    "DheKeyPair",
    "HandshakeSecrets",
    "HashAlg",
    "KeySchedule",
    "SigningKey",
    "SigningOperation",
    "TrafficSecret",
    "Transcript",
    "VerifyingKey",
    "aead_nonce",
    "asym_algs_for_key",
    "bin_concat",
    "hkdf_expand",
    "hkdf_extract",
    "sign",
    "sign_message",
    "signature_size",
    "signing_context",
    "verify",
    "verify_data",
    "verify_message",
]

SIGNING_CONTEXT_SIZE = 100
_PREFIX_SIZE = 64
_OPERATION_FIELD_SIZE = SIGNING_CONTEXT_SIZE - _PREFIX_SIZE

# The last usable sequence number is 2^64 - 2: libspdm treats a counter equal to
# LIBSPDM_MAX_SPDM_SESSION_SEQUENCE_NUMBER (all ones) as overflow so the nonce can never repeat.
MAX_SEQUENCE_NUMBER = (1 << 64) - 2


def _version_digits(version: int) -> tuple[int, int]:
    major, minor = version >> 4, version & 0xF
    if not 0 <= version <= 0xFF or major == 0 or major > 9 or minor > 9:
        raise LocalProtocolError(f"SPDM version byte {version:#x} is not of the form 0xMN")
    return major, minor


# --------------------------------------------------------------------------------------------
# Hashes and transcripts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HashAlg:
    """A negotiated SPDM hash (BaseHashAlgo, DSP0274 NEGOTIATE_ALGORITHMS)."""

    name: str
    size: int
    spdm_id: int
    _factory: type[hashes.HashAlgorithm] = field(repr=False, compare=False)

    def algorithm(self) -> hashes.HashAlgorithm:
        return self._factory()

    def digest(self, data: bytes) -> bytes:
        h = hashes.Hash(self.algorithm())
        h.update(data)
        return h.finalize()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        mac = hmac.HMAC(key, self.algorithm())
        mac.update(data)
        return mac.finalize()

    def transcript(self, data: bytes = b"") -> Transcript:
        return Transcript(self, data)

    @staticmethod
    def from_spdm(spdm_id: int) -> HashAlg:
        """The hash for a BaseHashSel value of ALGORITHMS (exactly one bit set)."""
        for alg in (SHA256, SHA384):
            if alg.spdm_id == spdm_id:
                return alg
        raise PeerProtocolError(f"BaseHashSel {spdm_id:#x} is not SHA-256 (0x1) or SHA-384 (0x2)")


SHA256 = HashAlg("sha256", 32, 0x01, hashes.SHA256)
SHA384 = HashAlg("sha384", 48, 0x02, hashes.SHA384)


class Transcript:
    """A running hash of message bytes; :meth:`digest` does not end it."""

    def __init__(self, hash_alg: HashAlg, data: bytes = b"") -> None:
        self.hash_alg = hash_alg
        self._ctx = hashes.Hash(hash_alg.algorithm())
        self._length = 0
        self.update(data)

    def update(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self._ctx.update(chunk)
            self._length += len(chunk)

    def digest(self) -> bytes:
        return self._ctx.copy().finalize()

    def copy(self) -> Transcript:
        """An independent transcript with the same content so far (for TH1 vs TH2 branches)."""
        twin = Transcript.__new__(Transcript)
        twin.hash_alg = self.hash_alg
        twin._ctx = self._ctx.copy()
        twin._length = self._length
        return twin

    def __len__(self) -> int:
        return self._length


# --------------------------------------------------------------------------------------------
# Signatures (DSP0274 §15)
# --------------------------------------------------------------------------------------------


class SigningOperation(StrEnum):
    """Operation strings of the 1.2+ signing context (libspdm spdm.h ``*_SIGN_CONTEXT``)."""

    CHALLENGE_AUTH = "responder-challenge_auth signing"
    MUT_CHALLENGE_AUTH = "requester-challenge_auth signing"
    MEASUREMENTS = "responder-measurements signing"
    KEY_EXCHANGE_RSP = "responder-key_exchange_rsp signing"
    FINISH = "requester-finish signing"


def signing_context(version: int, operation: str) -> bytes:
    """The 100-byte SPDM 1.2+ signing context for ``operation`` (DSP0274 §15)."""
    major, minor = _version_digits(version)
    if version < 0x12:
        raise LocalProtocolError(f"SPDM {major}.{minor} has no signing context (1.2+ only)")
    op = operation.encode("ascii")
    if len(op) > _OPERATION_FIELD_SIZE:
        raise LocalProtocolError(f"operation string of {len(op)} bytes exceeds 36")
    prefix = f"dmtf-spdm-v{major}.{minor}.*".encode() * 4
    return prefix + bytes(_OPERATION_FIELD_SIZE - len(op)) + op


def _coordinate_size(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# BaseAsymAlgo bits by key: RSA modulus size -> (RSASSA bit, RSAPSS bit); curve -> ECDSA bit.
_RSA_ALGS: dict[int, tuple[BaseAsymAlgo, BaseAsymAlgo]] = {
    2048: (BaseAsymAlgo.RSASSA_2048, BaseAsymAlgo.RSAPSS_2048),
    3072: (BaseAsymAlgo.RSASSA_3072, BaseAsymAlgo.RSAPSS_3072),
    4096: (BaseAsymAlgo.RSASSA_4096, BaseAsymAlgo.RSAPSS_4096),
}
_ECDSA_ALGS: dict[str, BaseAsymAlgo] = {
    "secp256r1": BaseAsymAlgo.ECDSA_P256,
    "secp384r1": BaseAsymAlgo.ECDSA_P384,
    "secp521r1": BaseAsymAlgo.ECDSA_P521,
}
_RSAPSS = BaseAsymAlgo.RSAPSS_2048 | BaseAsymAlgo.RSAPSS_3072 | BaseAsymAlgo.RSAPSS_4096


def asym_algs_for_key(key: SigningKey | VerifyingKey) -> BaseAsymAlgo:
    """The BaseAsymAlgo bits ``key`` can sign or verify: its curve's ECDSA bit, or both the
    RSASSA and the RSAPSS bit of its modulus size.  Other keys give LocalProtocolError."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        alg = _ECDSA_ALGS.get(key.curve.name)
        if alg is None:
            raise LocalProtocolError(f"curve {key.curve.name} is not an SPDM ECDSA curve")
        return alg
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        pair = _RSA_ALGS.get(key.key_size)
        if pair is None:
            raise LocalProtocolError(f"RSA-{key.key_size} is not an SPDM key size (2048/3072/4096)")
        return pair[0] | pair[1]
    raise LocalProtocolError(f"{type(key).__name__} is not an RSA or ECDSA key")


def _resolve_alg(key: SigningKey | VerifyingKey, asym_alg: int | None) -> BaseAsymAlgo:
    """The one algorithm to use with ``key``: ``asym_alg`` checked against the key, or, for an
    ECDSA key, the key's own curve when ``asym_alg`` is None."""
    usable = asym_algs_for_key(key)
    if asym_alg is None:
        if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            raise LocalProtocolError("an RSA key needs asym_alg: RSASSA or RSAPSS")
        return usable
    alg = BaseAsymAlgo(asym_alg)
    if not alg or alg & (alg - 1):
        raise LocalProtocolError(f"asym_alg {int(asym_alg):#x} is not exactly one BaseAsymAlgo bit")
    if not alg & usable:
        raise LocalProtocolError(f"a key for {usable!r} cannot be used as {alg!r}")
    return alg


def signature_size(key: SigningKey | VerifyingKey) -> int:
    """Bytes of an SPDM signature made with ``key``: r || s for ECDSA (64 for P-256, 96 for
    P-384, 132 for P-521), the modulus size for RSA (256, 384, 512)."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return (key.key_size + 7) // 8
    return 2 * _coordinate_size(key.curve)


def _hash_for(hash_alg: HashAlg, prehashed: bool) -> hashes.HashAlgorithm | Prehashed:
    return Prehashed(hash_alg.algorithm()) if prehashed else hash_alg.algorithm()


def sign_message(
    private_key: SigningKey,
    message: bytes,
    hash_alg: HashAlg,
    *,
    asym_alg: int | None = None,
    prehashed: bool = False,
) -> bytes:
    """Sign ``message`` with the negotiated hash and asymmetric algorithm, SPDM encoded.

    ``prehashed`` means ``message`` already is the digest to sign (SPDM 1.0/1.1).  ECDSA returns
    r || s, RSA the signature as a big-endian number as wide as the modulus.
    """
    alg = _resolve_alg(private_key, asym_alg)
    if prehashed and len(message) != hash_alg.size:
        raise LocalProtocolError(
            f"digest of {len(message)} bytes, {hash_alg.name} gives {hash_alg.size}"
        )
    algorithm = _hash_for(hash_alg, prehashed)
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(message, _rsa_padding(alg, hash_alg, signing=True), algorithm)
    der = private_key.sign(message, ec.ECDSA(algorithm))
    r, s = decode_dss_signature(der)
    n = _coordinate_size(private_key.curve)
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def verify_message(
    public_key: VerifyingKey,
    message: bytes,
    hash_alg: HashAlg,
    signature: bytes,
    *,
    asym_alg: int | None = None,
    prehashed: bool = False,
) -> bool:
    """Whether ``signature`` (SPDM encoded, see :func:`sign_message`) signs ``message``."""
    alg = _resolve_alg(public_key, asym_alg)
    if prehashed and len(message) != hash_alg.size:
        return False
    if len(signature) != signature_size(public_key):
        return False
    algorithm = _hash_for(hash_alg, prehashed)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            pad = _rsa_padding(alg, hash_alg, signing=False)
            public_key.verify(signature, message, pad, algorithm)
        else:
            n = _coordinate_size(public_key.curve)
            r, s = int.from_bytes(signature[:n], "big"), int.from_bytes(signature[n:], "big")
            if r == 0 or s == 0:
                return False
            public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def _rsa_padding(
    alg: BaseAsymAlgo, hash_alg: HashAlg, *, signing: bool
) -> padding.PKCS1v15 | padding.PSS:
    if not alg & _RSAPSS:
        return padding.PKCS1v15()
    # Sign with salt length = hash length; accept any salt length (see the module docstring).
    salt = padding.PSS.DIGEST_LENGTH if signing else padding.PSS.AUTO
    return padding.PSS(mgf=padding.MGF1(hash_alg.algorithm()), salt_length=salt)


def _signed_message(
    version: int, operation: str, transcript_hash: bytes, hash_alg: HashAlg
) -> bytes:
    if len(transcript_hash) != hash_alg.size:
        raise LocalProtocolError(
            f"transcript hash of {len(transcript_hash)} bytes, "
            f"{hash_alg.name} gives {hash_alg.size}"
        )
    _version_digits(version)
    if version >= 0x12:
        return signing_context(version, operation) + transcript_hash
    return transcript_hash


def sign(
    private_key: SigningKey,
    version: int,
    operation: str,
    transcript_hash: bytes,
    hash_alg: HashAlg,
    *,
    asym_alg: int | None = None,
) -> bytes:
    """Sign ``transcript_hash`` for ``operation``; returns the SPDM-encoded signature.

    ``asym_alg`` is the negotiated BaseAsymSel (or ReqBaseAsymSel) bit; it may be left out for
    an ECDSA key (the key's curve decides) but not for an RSA key (RSASSA or RSAPSS).
    1.2+ signs the signing context || transcript hash with the negotiated hash; 1.0/1.1 sign
    the transcript hash itself as the digest.
    """
    message = _signed_message(version, operation, transcript_hash, hash_alg)
    return sign_message(private_key, message, hash_alg, asym_alg=asym_alg, prehashed=version < 0x12)


def verify(
    public_key: VerifyingKey,
    version: int,
    operation: str,
    transcript_hash: bytes,
    hash_alg: HashAlg,
    signature: bytes,
    *,
    asym_alg: int | None = None,
) -> bool:
    """Whether ``signature`` is the peer's signature over ``transcript_hash`` (see :func:`sign`)."""
    message = _signed_message(version, operation, transcript_hash, hash_alg)
    return verify_message(
        public_key, message, hash_alg, signature, asym_alg=asym_alg, prehashed=version < 0x12
    )


# --------------------------------------------------------------------------------------------
# ECDHE (DSP0274 KEY_EXCHANGE ExchangeData: X || Y big-endian; the shared secret is X)
# --------------------------------------------------------------------------------------------


class DheGroup(IntEnum):
    """DHE named groups of NEGOTIATE_ALGORITHMS (AlgType 2); the ECC ones PCIe CMA allows."""

    SECP256R1 = 0x08
    SECP384R1 = 0x10

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1() if self is DheGroup.SECP256R1 else ec.SECP384R1()

    @property
    def coordinate_size(self) -> int:
        return _coordinate_size(self.curve)

    @property
    def exchange_size(self) -> int:
        """Bytes of ExchangeData (X || Y)."""
        return 2 * self.coordinate_size


class DheKeyPair:
    """An ephemeral ECDH key pair of one :class:`DheGroup`."""

    def __init__(self, group: DheGroup, private_key: ec.EllipticCurvePrivateKey) -> None:
        if private_key.curve.name != group.curve.name:
            raise LocalProtocolError(f"a {private_key.curve.name} key is not a {group.name} key")
        self.group = group
        self._key = private_key

    @classmethod
    def generate(cls, group: DheGroup) -> DheKeyPair:
        return cls(group, ec.generate_private_key(group.curve))

    def public_bytes(self) -> bytes:
        """ExchangeData: X || Y, each big-endian and as wide as the field."""
        numbers = self._key.public_key().public_numbers()
        n = self.group.coordinate_size
        return numbers.x.to_bytes(n, "big") + numbers.y.to_bytes(n, "big")

    def shared_secret(self, peer_xy: bytes) -> bytes:
        """The DHE secret with the peer's ExchangeData: the X coordinate of the shared point."""
        if len(peer_xy) != self.group.exchange_size:
            raise PeerProtocolError(
                f"{self.group.name} ExchangeData of {len(peer_xy)} bytes, "
                f"expected {self.group.exchange_size}"
            )
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self.group.curve, b"\x04" + peer_xy)
        except ValueError as exc:
            raise PeerProtocolError(
                f"peer DHE public key is not a point on {self.group.name}"
            ) from exc
        return self._key.exchange(ec.ECDH(), peer)


# --------------------------------------------------------------------------------------------
# HKDF and the key schedule (DSP0274 §12)
# --------------------------------------------------------------------------------------------


def hkdf_extract(hash_alg: HashAlg, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2): HMAC-Hash(salt, IKM); an empty salt means H zero bytes."""
    return hash_alg.hmac(salt or bytes(hash_alg.size), ikm)


def hkdf_expand(hash_alg: HashAlg, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    return HKDFExpand(hash_alg.algorithm(), length, info).derive(prk)


def bin_concat(version: int, length: int, label: str | bytes, context: bytes = b"") -> bytes:
    """DSP0274 §12 BinConcat: u16 LE length || "spdmM.N " || label || context."""
    major, minor = _version_digits(version)
    if not 0 <= length <= 0xFFFF:
        raise LocalProtocolError(f"BinConcat length {length} is not 16 bits")
    if isinstance(label, str):
        label = label.encode("ascii")
    return struct.pack("<H", length) + f"spdm{major}.{minor} ".encode() + label + context


def verify_data(hash_alg: HashAlg, finished_key: bytes, th_hash: bytes) -> bytes:
    """RequesterVerifyData / ResponderVerifyData: HMAC(finished_key, transcript hash)."""
    return hash_alg.hmac(finished_key, th_hash)


class AeadAlg(IntEnum):
    """AEAD cipher suites of NEGOTIATE_ALGORITHMS (AlgType 3).  PCIe CMA requires AES-256-GCM."""

    AES_128_GCM = 0x01
    AES_256_GCM = 0x02
    CHACHA20_POLY1305 = 0x04

    @property
    def key_size(self) -> int:
        return 16 if self is AeadAlg.AES_128_GCM else 32

    @property
    def iv_size(self) -> int:
        return 12

    @property
    def tag_size(self) -> int:
        return 16

    def cipher(self, key: bytes) -> AESGCM | ChaCha20Poly1305:
        if len(key) != self.key_size:
            raise LocalProtocolError(f"{self.name} key of {len(key)} bytes, needs {self.key_size}")
        if self is AeadAlg.CHACHA20_POLY1305:
            return ChaCha20Poly1305(key)
        return AESGCM(key)


def aead_nonce(
    iv: bytes, sequence_number: int, byteorder: Literal["little", "big"] = "little"
) -> bytes:
    """The per-message nonce: ``iv`` XOR the zero-extended 64-bit sequence number.

    DSP0277 1.2 puts the sequence number little-endian in IV bytes 0..7 (the default).  ``"big"``
    gives the TLS 1.3 style (big-endian in the last 8 bytes) that some 1.0/1.1 peers used.
    """
    if not 0 <= sequence_number <= MAX_SEQUENCE_NUMBER:
        raise LocalProtocolError(f"sequence number {sequence_number} outside 0..2^64-2")
    if len(iv) < 8:
        raise LocalProtocolError(f"IV of {len(iv)} bytes is shorter than the sequence number")
    if byteorder == "little":
        pad = sequence_number.to_bytes(8, "little") + bytes(len(iv) - 8)
    else:
        pad = bytes(len(iv) - 8) + sequence_number.to_bytes(8, "big")
    return bytes(a ^ b for a, b in zip(iv, pad, strict=True))


@dataclass(frozen=True)
class TrafficSecret:
    """A directional major secret and the AEAD key and IV derived from it."""

    secret: bytes = field(repr=False)
    key: bytes = field(repr=False)
    iv: bytes = field(repr=False)


@dataclass(frozen=True)
class HandshakeSecrets:
    """Everything derived from the DHE secret and TH1."""

    handshake_secret: bytes = field(repr=False)
    request: TrafficSecret
    response: TrafficSecret
    request_finished_key: bytes = field(repr=False)
    response_finished_key: bytes = field(repr=False)


@dataclass(frozen=True)
class DataSecrets:
    """Everything derived from the handshake secret and TH2."""

    master_secret: bytes = field(repr=False)
    request: TrafficSecret
    response: TrafficSecret
    export_master_secret: bytes = field(repr=False)


@dataclass(frozen=True)
class KeySchedule:
    """The DSP0274 §12 key schedule for one negotiated (version, hash, AEAD) triple."""

    version: int
    hash_alg: HashAlg
    aead: AeadAlg = AeadAlg.AES_256_GCM

    def __post_init__(self) -> None:
        _version_digits(self.version)
        if self.version < 0x11:
            raise LocalProtocolError("sessions and the key schedule need SPDM 1.1 or later")

    def _expand(self, secret: bytes, label: str, length: int, context: bytes = b"") -> bytes:
        info = bin_concat(self.version, length, label, context)
        return hkdf_expand(self.hash_alg, secret, info, length)

    def _check_th(self, th: bytes, name: str) -> None:
        if len(th) != self.hash_alg.size:
            raise LocalProtocolError(f"{name} of {len(th)} bytes, expected {self.hash_alg.size}")

    def traffic(self, secret: bytes) -> TrafficSecret:
        """AEAD key and IV from a directional major secret ("key", "iv")."""
        key = self._expand(secret, "key", self.aead.key_size)
        iv = self._expand(secret, "iv", self.aead.iv_size)
        return TrafficSecret(secret, key, iv)

    def finished_key(self, handshake_secret: bytes) -> bytes:
        return self._expand(handshake_secret, "finished", self.hash_alg.size)

    def handshake(self, dhe_secret: bytes, th1: bytes) -> HandshakeSecrets:
        """Handshake secrets, finished keys and handshake AEAD keys from the DHE secret and TH1."""
        self._check_th(th1, "TH1")
        h = self.hash_alg.size
        hs = hkdf_extract(self.hash_alg, bytes(h), dhe_secret)
        req = self._expand(hs, "req hs data", h, th1)
        rsp = self._expand(hs, "rsp hs data", h, th1)
        return HandshakeSecrets(
            handshake_secret=hs,
            request=self.traffic(req),
            response=self.traffic(rsp),
            request_finished_key=self.finished_key(req),
            response_finished_key=self.finished_key(rsp),
        )

    def data(self, handshake: HandshakeSecrets, th2: bytes) -> DataSecrets:
        """Master secret, data secrets, data AEAD keys and the export master secret from TH2."""
        self._check_th(th2, "TH2")
        h = self.hash_alg.size
        salt1 = self._expand(handshake.handshake_secret, "derived", h)
        master = hkdf_extract(self.hash_alg, salt1, bytes(h))
        req = self._expand(master, "req app data", h, th2)
        rsp = self._expand(master, "rsp app data", h, th2)
        return DataSecrets(
            master_secret=master,
            request=self.traffic(req),
            response=self.traffic(rsp),
            export_master_secret=self._expand(master, "exp master", h, th2),
        )

    def update(self, traffic: TrafficSecret) -> TrafficSecret:
        """KEY_UPDATE for one direction: the next secret ("traffic upd") and its key and IV."""
        return self.traffic(self._expand(traffic.secret, "traffic upd", self.hash_alg.size))

    def update_data(
        self, secrets: DataSecrets, *, request: bool = True, response: bool = False
    ) -> DataSecrets:
        """KEY_UPDATE UpdateKey (request direction only) or UpdateAllKeys (both directions)."""
        return DataSecrets(
            master_secret=secrets.master_secret,
            request=self.update(secrets.request) if request else secrets.request,
            response=self.update(secrets.response) if response else secrets.response,
            export_master_secret=secrets.export_master_secret,
        )

    def verify_data(self, finished_key: bytes, th_hash: bytes) -> bytes:
        self._check_th(th_hash, "transcript hash")
        return verify_data(self.hash_alg, finished_key, th_hash)

    def check_verify_data(self, finished_key: bytes, th_hash: bytes, received: bytes) -> bool:
        """Constant-time comparison of a received VerifyData with the expected HMAC."""
        self._check_th(th_hash, "transcript hash")
        mac = hmac.HMAC(finished_key, self.hash_alg.algorithm())
        mac.update(th_hash)
        try:
            mac.verify(received)
        except InvalidSignature:
            return False
        return True
