"""Device identities: a throw-away test PKI, SPDM certificate chains, vendor identities, validation.

- :class:`TestPki` makes a root CA, an intermediate CA and a leaf (ECDSA P-384 by default; P-256,
  P-521 and RSA 2048/3072/4096 on request).  A responder leaf's Subject Alternative Name carries
  the PCIe CMA device identity; a requester leaf (mutual authentication) carries the SPDM
  requester EKU.  Its keys exist only in memory until :meth:`TestPki.write_pem` writes them.
- :func:`build_spdm_chain` / :func:`parse_spdm_chain` speak the SPDM certificate chain format.
- :class:`Identity` is a certificate chain plus the leaf's private key (ECDSA or RSA);
  :meth:`Identity.load` reads a vendor's files, :meth:`Identity.sign` makes SPDM signatures.
- :func:`validate_chain` checks a peer's chain against a trust anchor: RFC 5280 path validation
  by ``cryptography.x509.verification``, then the SPDM leaf certificate rules.

SPDM certificate chain (DSP0274 GET_CERTIFICATE, "Certificate chain format"; 1.2/1.3)::

    +------------+--------------+----------------------+--------------------------------+
    | Length (2) | Reserved (2) | RootHash (H)         | DER certificates, root first   |
    +------------+--------------+----------------------+--------------------------------+

  Length (little-endian) counts the whole chain including this header; RootHash is the hash of
  the root certificate's DER.  (SPDM 1.4 widens Length to 4 bytes; not handled here.)

CMA leaf Subject Alternative Name: an ``otherName`` whose type-id is 2.23.147 (the PCI-SIG arc;
the OID the Linux CMA series' ``OID_CMA`` uses, PCIe r6.1 §6.31.3) and whose value is a
UTF8String ``Vendor=%04x:Device=%04x:CC=%06x:REV=%02x``, followed by
``:SSVID=%04x:SSID=%04x`` for type-0 functions and ``:%016x`` with the Device Serial Number when
the device has one (Linux ``pci_cma_construct_san``).  PCIe r6.2 dropped the wording; the
series keeps it as the de facto form.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from .codec.spdm import BaseAsymAlgo
from .codec.spdm_crypto import HashAlg, SigningKey, asym_algs_for_key, signature_size
from .codec.spdm_crypto import sign as spdm_sign
from .errors import HilError, LocalProtocolError, PeerProtocolError

__all__ = [
    "CMA_SAN_OID",
    "DEFAULT_TEST_DEVICE",
    "DMTF_SPDM_EXTENSION_OID",
    "EKU_SPDM_REQUESTER_AUTH",
    "EKU_SPDM_RESPONDER_AUTH",
    "INTERMEDIATE_PROFILE",
    "NOT_AFTER",
    "NOT_BEFORE",
    "ROOT_PROFILE",
    "BadCertSignature",
    "CertProfile",
    "CertificateChainError",
    "CertificatePolicyError",
    "ChainFormatError",
    "CmaDeviceId",
    "Curve",
    "Identity",
    "IdentityError",
    "IssuerNotCa",
    "KeyType",
    "LeafBasicConstraintsError",
    "LeafEkuError",
    "LeafIsCa",
    "LeafKeyUsageError",
    "NotValidAtTime",
    "PemFiles",
    "Role",
    "TestPki",
    "UntrustedRoot",
    "build_spdm_chain",
    "cma_san_names",
    "issue_certificate",
    "leaf_profile",
    "load_certificates",
    "load_private_key",
    "parse_spdm_chain",
    "requester_leaf_profile",
    "validate_chain",
]

# PCI-SIG OID arc, used as the otherName type-id of the CMA SAN (Linux OID_CMA, 2.23.147).
CMA_SAN_OID = x509.ObjectIdentifier("2.23.147")
# DSP0274 id-DMTF-eku-responder-auth / -requester-auth (libspdm spdm.h SPDM_OID_DMTF_EKU_*).
EKU_SPDM_RESPONDER_AUTH = x509.ObjectIdentifier("1.3.6.1.4.1.412.274.3")
EKU_SPDM_REQUESTER_AUTH = x509.ObjectIdentifier("1.3.6.1.4.1.412.274.4")
# DSP0274 id-DMTF-SPDM-extension (a non-critical extension listing SPDM certificate OIDs).
DMTF_SPDM_EXTENSION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.412.274.6")

# A fixed window so tests never depend on the clock: from a past date to the RFC 5280 §4.1.2.5
# "no well-defined expiration" value.
NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)

# Key types an identity may have: the SPDM ECDSA curves and RSA moduli (DSP0274 BaseAsymAlgo).
KeyType = Literal["P-256", "P-384", "P-521", "RSA-2048", "RSA-3072", "RSA-4096"]
Curve = KeyType  # the name the ECDSA-only API used
_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}
_RSA_SIZES = {"RSA-2048": 2048, "RSA-3072": 3072, "RSA-4096": 4096}
# Whose chain is checked: the SPDM responder's (the usual case) or the requester's (mutual auth).
Role = Literal["responder", "requester"]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class IdentityError(HilError):
    """A certificate chain or key file is unreadable, malformed or inconsistent."""


class CertificateChainError(PeerProtocolError):
    """The peer's certificate chain is not acceptable."""


class ChainFormatError(CertificateChainError):
    """The SPDM certificate chain bytes are malformed."""


class BadCertSignature(CertificateChainError):
    """A certificate's signature does not verify with its issuer's key."""


class NotValidAtTime(CertificateChainError):
    """A certificate is outside its validity period."""


class IssuerNotCa(CertificateChainError):
    """A certificate that issues another lacks CA basicConstraints or keyCertSign."""


class LeafIsCa(CertificateChainError):
    """The leaf certificate is marked as a CA."""


class LeafKeyUsageError(CertificateChainError):
    """The leaf certificate's keyUsage is missing or lacks digitalSignature."""


class LeafEkuError(CertificateChainError):
    """The leaf's extendedKeyUsage names only the other SPDM role's authentication OID."""


class LeafBasicConstraintsError(CertificateChainError):
    """An SPDM 1.3 leaf certificate has no basicConstraints extension."""


class CertificatePolicyError(CertificateChainError):
    """A certificate breaks an RFC 5280 rule of path validation not covered by the classes above
    (an unknown critical extension, a forbidden algorithm or key size, a malformed field)."""


class UntrustedRoot(CertificateChainError):
    """The chain does not start at, or under, the trust anchor."""


# --------------------------------------------------------------------------------------------
# The CMA Subject Alternative Name
# --------------------------------------------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_utf8string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"\x0c" + _der_length(len(raw)) + raw


def _read_der_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, header length, content length) of the DER element at ``offset``; ValueError if bad."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER header")
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0 or count > 4 or offset + 2 + count > len(data):
        raise ValueError("unsupported or truncated DER length")
    return tag, 2 + count, int.from_bytes(data[offset + 2 : offset + 2 + count], "big")


@dataclass(frozen=True)
class CmaDeviceId:
    """The device identity a CMA leaf certificate binds (Linux ``pci_cma_construct_san``)."""

    vendor_id: int
    device_id: int
    class_code: int
    revision: int
    subsystem_vendor_id: int | None = None
    subsystem_id: int | None = None
    serial_number: int | None = None

    def __post_init__(self) -> None:
        for name, bits in (
            ("vendor_id", 16),
            ("device_id", 16),
            ("class_code", 24),
            ("revision", 8),
        ):
            if not 0 <= getattr(self, name) < 1 << bits:
                raise LocalProtocolError(f"{name} {getattr(self, name):#x} is not {bits} bits")
        if (self.subsystem_vendor_id is None) != (self.subsystem_id is None):
            raise LocalProtocolError("give both subsystem_vendor_id and subsystem_id, or neither")

    def san(self) -> str:
        text = (
            f"Vendor={self.vendor_id:04x}:Device={self.device_id:04x}"
            f":CC={self.class_code:06x}:REV={self.revision:02x}"
        )
        if self.subsystem_vendor_id is not None:
            text += f":SSVID={self.subsystem_vendor_id:04x}:SSID={self.subsystem_id:04x}"
        if self.serial_number:
            text += f":{self.serial_number:016x}"
        return text

    def general_name(self) -> x509.OtherName:
        return x509.OtherName(CMA_SAN_OID, _der_utf8string(self.san()))


# The IDs of the simulated endpoint (hil.sim.hardip): Xilinx, 9048h, processing accelerator.
DEFAULT_TEST_DEVICE = CmaDeviceId(
    vendor_id=0x10EE, device_id=0x9048, class_code=0x120000, revision=0
)


def cma_san_names(cert: x509.Certificate) -> list[str]:
    """The CMA otherName strings in ``cert``'s Subject Alternative Name (often one, or none)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id != CMA_SAN_OID:
            continue
        try:
            tag, hlen, clen = _read_der_header(other.value, 0)
        except ValueError:
            continue
        if tag == 0x0C and hlen + clen == len(other.value):
            names.append(other.value[hlen:].decode("utf-8", errors="replace"))
    return names


# --------------------------------------------------------------------------------------------
# Issuing certificates
# --------------------------------------------------------------------------------------------

_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


@dataclass(frozen=True)
class CertProfile:
    """What goes into a certificate besides its subject, key and issuer.

    ``ca`` None leaves basicConstraints out; ``key_usage`` None leaves keyUsage out (otherwise
    the names of the set flags, as in :class:`cryptography.x509.KeyUsage`).
    """

    ca: bool | None
    path_length: int | None = None
    key_usage: frozenset[str] | None = None
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()
    subject_alt_names: tuple[x509.GeneralName, ...] = ()
    not_before: dt.datetime = NOT_BEFORE
    not_after: dt.datetime = NOT_AFTER

    def __post_init__(self) -> None:
        unknown = set(self.key_usage or ()) - set(_KEY_USAGE_FLAGS)
        if unknown:
            raise LocalProtocolError(f"unknown keyUsage flags {sorted(unknown)}")


ROOT_PROFILE = CertProfile(ca=True, key_usage=frozenset({"key_cert_sign", "crl_sign"}))
INTERMEDIATE_PROFILE = CertProfile(
    ca=True, path_length=0, key_usage=frozenset({"key_cert_sign", "crl_sign"})
)


def leaf_profile(device: CmaDeviceId | None = DEFAULT_TEST_DEVICE) -> CertProfile:
    """A CMA device leaf: not a CA, digitalSignature, SPDM responder EKU, the CMA SAN."""
    return CertProfile(
        ca=False,
        key_usage=frozenset({"digital_signature"}),
        extended_key_usage=(EKU_SPDM_RESPONDER_AUTH,),
        subject_alt_names=(device.general_name(),) if device is not None else (),
    )


def requester_leaf_profile() -> CertProfile:
    """A requester leaf for mutual authentication: not a CA, digitalSignature, the SPDM
    requester EKU (DSP0274 1.2 §10.8.2.1), no device SAN."""
    return CertProfile(
        ca=False,
        key_usage=frozenset({"digital_signature"}),
        extended_key_usage=(EKU_SPDM_REQUESTER_AUTH,),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hil test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _signing_hash(key: SigningKey) -> hashes.HashAlgorithm:
    """The certificate signature hash for an issuer key: as strong as the key."""
    bits = key.curve.key_size if isinstance(key, ec.EllipticCurvePrivateKey) else key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return hashes.SHA512() if bits > 384 else hashes.SHA384() if bits > 256 else hashes.SHA256()
    return hashes.SHA256() if bits <= 2048 else hashes.SHA384()


def issue_certificate(
    subject: x509.Name | str,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    profile: CertProfile,
    *,
    issuer: x509.Certificate | None,
    issuer_key: SigningKey,
    serial_number: int | None = None,
) -> x509.Certificate:
    """Issue one certificate; ``issuer`` None makes it self-signed (``issuer_key`` signs)."""
    if isinstance(subject, str):
        subject = _name(subject)
    issuer_name = subject if issuer is None else issuer.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial_number or x509.random_serial_number())
        .not_valid_before(profile.not_before)
        .not_valid_after(profile.not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    signer_public = issuer_key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_public), critical=False
    )
    if profile.ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(
                ca=profile.ca, path_length=profile.path_length if profile.ca else None
            ),
            critical=True,
        )
    if profile.key_usage is not None:
        flags = {name: name in profile.key_usage for name in _KEY_USAGE_FLAGS}
        if not flags["key_agreement"]:
            flags["encipher_only"] = flags["decipher_only"] = False
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    if profile.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(profile.extended_key_usage)), critical=False
        )
    if profile.subject_alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(profile.subject_alt_names)), critical=False
        )
    return builder.sign(issuer_key, _signing_hash(issuer_key))


def _generate_key(key_type: KeyType, seed_label: str | None, role: str) -> SigningKey:
    """A fresh key of ``key_type``, or with ``seed_label`` one derived from (label, role)."""
    if key_type in _RSA_SIZES:
        if seed_label is not None:
            # cryptography has no seeded RSA key generation, and primes are not made by hand here.
            raise LocalProtocolError(f"seed_label needs an ECDSA key type, not {key_type}")
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_SIZES[key_type])
    if key_type not in _CURVES:
        raise LocalProtocolError(f"key type {key_type!r} is not one of {sorted(_CURVES)}")
    curve = _CURVES[key_type]
    if seed_label is None:
        return ec.generate_private_key(curve)
    return _derive_key(curve, seed_label, role)


def _derive_key(curve: ec.EllipticCurve, seed_label: str, role: str) -> ec.EllipticCurvePrivateKey:
    """A private key that depends only on (label, role): reproducible, and public by design."""
    size = (curve.key_size + 7) // 8
    for counter in range(256):
        info = f"hil test PKI/{seed_label}/{role}/{curve.name}/{counter}".encode()
        raw = HKDFExpand(hashes.SHA384(), size, info).derive(b"hil")
        candidate = int.from_bytes(raw, "big") >> (8 * size - curve.key_size)  # P-521: 521 bits
        if candidate == 0:
            continue
        try:
            return ec.derive_private_key(candidate, curve)
        except ValueError:  # not below the group order: try the next counter
            continue
    raise LocalProtocolError("could not derive a test key")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Loading and writing identities
# --------------------------------------------------------------------------------------------


def _split_der(data: bytes) -> list[bytes]:
    """Split concatenated DER certificates (each a SEQUENCE); ValueError on malformed input."""
    out, offset = [], 0
    while offset < len(data):
        tag, hlen, clen = _read_der_header(data, offset)
        if tag != 0x30:
            raise ValueError(f"byte {offset}: tag {tag:#04x} is not a DER SEQUENCE")
        end = offset + hlen + clen
        if end > len(data):
            raise ValueError(f"byte {offset}: certificate runs past the end of the data")
        out.append(bytes(data[offset:end]))
        offset = end
    return out


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Certificates from a PEM bundle or concatenated DER, in file order."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(der) for der in _split_der(data)]
    except ValueError as exc:
        raise IdentityError(f"not a PEM bundle or DER certificates: {exc}") from exc
    if not certs:
        raise IdentityError("no certificates found")
    return certs


def load_private_key(data: bytes) -> SigningKey:
    """An unencrypted SPDM signing key, PEM or DER (PKCS#8, SEC1 or PKCS#1): ECDSA P-256, P-384
    or P-521, or RSA 2048, 3072 or 4096."""
    loader = (
        serialization.load_pem_private_key
        if b"-----BEGIN" in data
        else serialization.load_der_private_key
    )
    try:
        key = loader(data, password=None)
    except TypeError as exc:  # raised for encrypted keys when no password is given
        raise IdentityError(f"encrypted private keys are not supported: {exc}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise IdentityError(f"not a readable private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise IdentityError(f"{type(key).__name__} is not an ECDSA or RSA key")
    try:
        asym_algs_for_key(key)
    except LocalProtocolError as exc:
        raise IdentityError(str(exc)) from exc
    return key


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class PemFiles:
    """Where :meth:`Identity.write_pem` put things (``hil serve --cert-chain/--key``,
    ``--trust-anchor``)."""

    chain: Path
    key: Path
    root: Path


@dataclass(frozen=True)
class Identity:
    """A certificate chain (root first, leaf last) and the leaf's private key (ECDSA or RSA)."""

    chain: tuple[x509.Certificate, ...]
    key: SigningKey = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "chain", tuple(self.chain))
        if not self.chain:
            raise IdentityError("an identity needs at least one certificate")
        if not isinstance(self.key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise IdentityError(f"{type(self.key).__name__} is not an ECDSA or RSA key")
        try:
            asym_algs_for_key(self.key)
        except LocalProtocolError as exc:
            raise IdentityError(str(exc)) from exc
        if _public_der(self.key.public_key()) != _public_der(self.leaf.public_key()):
            raise IdentityError(
                "the private key does not match the leaf certificate "
                f"{self.leaf.subject.rfc4514_string()}"
            )

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[-1]

    @property
    def root(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def asym_algs(self) -> BaseAsymAlgo:
        """The BaseAsymAlgo (or ReqBaseAsymAlg) bits this identity can sign with: its curve's
        ECDSA bit, or RSASSA and RSAPSS of its modulus size."""
        return asym_algs_for_key(self.key)

    @property
    def signature_size(self) -> int:
        """Bytes of this identity's SPDM signatures."""
        return signature_size(self.key)

    def sign(
        self,
        version: int,
        operation: str,
        transcript_hash: bytes,
        *,
        hash_alg: HashAlg,
        asym_alg: int | None = None,
    ) -> bytes:
        """The SPDM signature of ``transcript_hash`` for ``operation`` (a
        :class:`~hil.codec.spdm_crypto.SigningOperation`), as :func:`hil.codec.spdm_crypto.sign`.

        ``asym_alg`` is the negotiated BaseAsymSel / ReqBaseAsymSel bit; an RSA identity needs it
        (RSASSA or RSAPSS), an ECDSA one may leave it out.
        """
        return spdm_sign(self.key, version, operation, transcript_hash, hash_alg, asym_alg=asym_alg)

    def spdm_chain(self, hash_alg: HashAlg) -> bytes:
        return build_spdm_chain(self.chain, hash_alg)

    @classmethod
    def load(cls, chain_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> Identity:
        """Read a chain file and a key file.

        The chain is a PEM bundle or DER certificates concatenated with nothing between them, root
        first (DMTF's ``bundle_*.certchain.der`` is of that kind).  The key is PEM or DER, ECDSA
        or RSA (:func:`load_private_key`).
        """
        try:
            chain_data = Path(chain_path).read_bytes()
            key_data = Path(key_path).read_bytes()
        except OSError as exc:
            raise IdentityError(f"cannot read identity files: {exc}") from exc
        return cls(tuple(load_certificates(chain_data)), load_private_key(key_data))

    def write_pem(self, directory: str | os.PathLike[str], *, stem: str = "device") -> PemFiles:
        """Write ``<stem>-chain.pem``, ``<stem>-key.pem`` (mode 0600) and ``<stem>-root.pem``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        files = PemFiles(
            chain=out / f"{stem}-chain.pem",
            key=out / f"{stem}-key.pem",
            root=out / f"{stem}-root.pem",
        )
        files.chain.write_bytes(_pem(self.chain))
        fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_key_pem(self.key))
        files.root.write_bytes(_pem([self.root]))
        return files


@dataclass(frozen=True)
class TestPki:
    """A throw-away root CA, intermediate CA and leaf.  Never for production use."""

    __test__ = False  # not a pytest test class despite the name

    root: x509.Certificate
    root_key: SigningKey = field(repr=False)
    intermediate: x509.Certificate
    intermediate_key: SigningKey = field(repr=False)
    leaf: x509.Certificate
    leaf_key: SigningKey = field(repr=False)

    @classmethod
    def generate(
        cls,
        *,
        key_type: KeyType | None = None,
        curve: Curve | None = None,
        device: CmaDeviceId | None = DEFAULT_TEST_DEVICE,
        seed_label: str | None = None,
        role: Role = "responder",
    ) -> TestPki:
        """Make the three certificates, all with keys of ``key_type`` (``curve`` is the older
        name of the same option; default P-384).

        ``role`` "responder" makes a device leaf (:func:`leaf_profile`, with ``device`` in its
        SAN); "requester" a mutual-authentication leaf (:func:`requester_leaf_profile`).
        Keys are fresh random keys, or, with ``seed_label``, derived from the label so a run can
        be repeated (ECDSA only; such keys are public knowledge: test use only).  Certificate
        signatures and serial numbers are random either way.
        """
        if key_type is not None and curve is not None and key_type != curve:
            raise LocalProtocolError(f"key_type {key_type!r} and curve {curve!r} disagree")
        kind: KeyType = key_type or curve or "P-384"
        if kind not in _CURVES and kind not in _RSA_SIZES:
            raise LocalProtocolError(
                f"key type {kind!r} is not one of {sorted([*_CURVES, *_RSA_SIZES])}"
            )
        # The requester PKI's keys are derived under their own labels, apart from the device's.
        prefix = "" if role == "responder" else "requester-"
        root_key, inter_key, leaf_key = (
            _generate_key(kind, seed_label, prefix + name)
            for name in ("root", "intermediate", "leaf")
        )
        root = issue_certificate(
            "hil test root CA",
            root_key.public_key(),
            ROOT_PROFILE,
            issuer=None,
            issuer_key=root_key,
        )
        inter = issue_certificate(
            "hil test intermediate CA",
            inter_key.public_key(),
            INTERMEDIATE_PROFILE,
            issuer=root,
            issuer_key=root_key,
        )
        if role == "responder":
            subject, profile = "hil test device", leaf_profile(device)
        else:
            subject, profile = "hil test requester", requester_leaf_profile()
        leaf = issue_certificate(
            subject, leaf_key.public_key(), profile, issuer=inter, issuer_key=inter_key
        )
        return cls(root, root_key, inter, inter_key, leaf, leaf_key)

    @classmethod
    def generate_requester(
        cls, *, key_type: KeyType = "RSA-3072", seed_label: str | None = None
    ) -> TestPki:
        """A requester PKI for mutual authentication: by default an RSA-3072 leaf with the SPDM
        requester EKU (the key type DMTF's responder accepts with its default options)."""
        return cls.generate(key_type=key_type, seed_label=seed_label, role="requester")

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return (self.root, self.intermediate, self.leaf)

    @property
    def trust_anchor(self) -> x509.Certificate:
        return self.root

    @property
    def identity(self) -> Identity:
        return Identity(self.chain, self.leaf_key)

    def write_pem(self, directory: str | os.PathLike[str], *, stem: str = "device") -> PemFiles:
        return self.identity.write_pem(directory, stem=stem)

    def reissue_leaf(self, profile: CertProfile) -> TestPki:
        """The same PKI with the leaf re-issued under ``profile`` (to build defective chains)."""
        leaf = issue_certificate(
            self.leaf.subject,
            self.leaf_key.public_key(),
            profile,
            issuer=self.intermediate,
            issuer_key=self.intermediate_key,
        )
        return replace(self, leaf=leaf)


# --------------------------------------------------------------------------------------------
# The SPDM certificate chain format
# --------------------------------------------------------------------------------------------

_CHAIN_HEADER = 4


def build_spdm_chain(certs: Sequence[x509.Certificate], hash_alg: HashAlg) -> bytes:
    """Length | Reserved | RootHash | DER certificates (``certs`` root first)."""
    if not certs:
        raise LocalProtocolError("an SPDM certificate chain needs at least one certificate")
    ders = [c.public_bytes(serialization.Encoding.DER) for c in certs]
    total = _CHAIN_HEADER + hash_alg.size + sum(len(d) for d in ders)
    if total > 0xFFFF:
        raise LocalProtocolError(f"SPDM certificate chain of {total} bytes exceeds 65535")
    return total.to_bytes(2, "little") + bytes(2) + hash_alg.digest(ders[0]) + b"".join(ders)


def parse_spdm_chain(data: bytes, hash_alg: HashAlg) -> list[x509.Certificate]:
    """The certificates of an SPDM chain; checks Length and RootHash (Reserved is ignored)."""
    head = _CHAIN_HEADER + hash_alg.size
    if len(data) < head:
        raise ChainFormatError(f"certificate chain of {len(data)} bytes is shorter than its header")
    length = int.from_bytes(data[:2], "little")
    if length != len(data):
        raise ChainFormatError(f"certificate chain Length {length} but {len(data)} bytes")
    try:
        ders = _split_der(data[head:])
        certs = [x509.load_der_x509_certificate(d) for d in ders]
    except ValueError as exc:
        raise ChainFormatError(f"certificate chain holds malformed DER: {exc}") from exc
    if not certs:
        raise ChainFormatError("certificate chain holds no certificates")
    if hash_alg.digest(ders[0]) != data[_CHAIN_HEADER:head]:
        raise ChainFormatError("RootHash is not the hash of the first certificate")
    return certs


# --------------------------------------------------------------------------------------------
# Chain validation
# --------------------------------------------------------------------------------------------
#
# Two layers: DSP0274 chains are X.509 v3 certificates, each issued by the one before, checked
# as RFC 5280 says; on top of that DSP0274 puts requirements on the leaf certificate.
#
# 1. RFC 5280 §6 path validation by ``cryptography.x509.verification``, with extension policies
#    that follow RFC 5280 instead of the CA/Browser Forum web profile (which would refuse the
#    DMTF sample chains: non-critical basicConstraints and critical EKU on CAs, no AKI):
#    - a CA must have basicConstraints with cA TRUE, critical or not (§6.1.4 (k); §4.2.1.9 asks
#      CAs to mark it critical, which path validation does not check);
#    - a CA's keyUsage, if present, must assert keyCertSign (§6.1.4 (n)); an absent keyUsage is no
#      restriction (§4.2.1.3), so a root with basicConstraints and no keyUsage is a CA;
#    - pathLenConstraint, validity at the given time, signatures and name chaining as §6.1.3-4;
#    - any extension may be present; an unrecognised critical one fails the certificate (§4.2).
#    The verifier also enforces what it checks for every policy: X.509 v3, serial numbers of 1-20
#    octets, RSA keys of 2048 bits or more, RSA/ECDSA signatures with SHA-256/384/512 (the SPDM
#    algorithms PCIe CMA allows; EdDSA and SM2 chains are refused), UTCTime for dates before 2050.
#    It decides; its failures are then explained link by link so the error names the rule and the
#    certificate (:func:`_walk`), with the verifier's own text appended.
# 2. The SPDM leaf rules (:func:`_check_leaf`).
#
# One exception to "the verifier decides": DSP0274's leaf field table (since 1.0 §4.9.2.4.1,
# Validity) suggests notBefore be the generalized time 19700101000000Z, which RFC 5280 §4.1.2.5
# tells CAs not to issue (UTCTime up to 2049) and the verifier refuses outright.  A chain with
# such a date is judged by the same checks run link by link instead, so a device that follows
# DSP0274 is not failed for it.


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:#x}"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _same_certificate_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a.subject == b.subject and _public_der(a.public_key()) == _public_der(b.public_key())


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _ca_basic_constraints(
    policy: verification.Policy, cert: x509.Certificate, bc: x509.BasicConstraints
) -> None:
    if not bc.ca:
        raise ValueError("basicConstraints cA is FALSE in a certificate that issues another")


def _ca_key_usage(
    policy: verification.Policy, cert: x509.Certificate, ku: x509.KeyUsage | None
) -> None:
    if ku is not None and not ku.key_cert_sign:
        raise ValueError("keyUsage is present and lacks keyCertSign")


def _verifier(
    anchor: x509.Certificate, when: dt.datetime, depth: int
) -> verification.ClientVerifier:
    agnostic = verification.Criticality.AGNOSTIC
    ca_policy = (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, agnostic, _ca_basic_constraints)
        .may_be_present(x509.KeyUsage, agnostic, _ca_key_usage)
    )
    return (
        verification.PolicyBuilder()
        .store(verification.Store([anchor]))
        .time(when)
        .max_chain_depth(min(255, max(8, depth)))
        .extension_policies(
            ca_policy=ca_policy, ee_policy=verification.ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )


# -- the link-by-link checks ------------------------------------------------------------------

_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


def _check_certificate(cert: x509.Certificate) -> None:
    """The per-certificate rules the verifier applies whatever the extension policy."""
    if cert.version != x509.Version.v3:
        raise CertificatePolicyError(f"{_describe(cert)} is not an X.509 v3 certificate")
    for ext in cert.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise CertificatePolicyError(
                f"{_describe(cert)} has an unrecognised critical extension {ext.oid.dotted_string}"
                " (RFC 5280 §4.2)"
            )
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise CertificatePolicyError(f"{_describe(cert)} has an RSA-{key.key_size} key")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CertificatePolicyError(f"{_describe(cert)} has a {type(key).__name__}")
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if not isinstance(algorithm, _SIGNATURE_HASHES):
        name = (
            algorithm.name if algorithm is not None else cert.signature_algorithm_oid.dotted_string
        )
        raise CertificatePolicyError(f"{_describe(cert)} is signed with {name}")


def _check_validity(cert: x509.Certificate, at: dt.datetime) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise NotValidAtTime(
            f"{_describe(cert)} is valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC, not at {at:%Y-%m-%d %H:%M:%S}"
        )


def _check_issuer(cert: x509.Certificate, below: int) -> None:
    """``cert`` issues the next certificate; ``below`` CA certificates follow it in the chain."""
    bc = _extension(cert, x509.BasicConstraints)
    if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
        raise IssuerNotCa(
            f"{_describe(cert)} issues a certificate but is not a CA (basicConstraints cA, "
            "RFC 5280 §6.1.4 (k))"
        )
    ku = _extension(cert, x509.KeyUsage)
    if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
        raise IssuerNotCa(
            f"{_describe(cert)} issues a certificate but its keyUsage lacks keyCertSign "
            "(RFC 5280 §6.1.4 (n))"
        )
    if bc.path_length is not None and below > bc.path_length:
        raise IssuerNotCa(
            f"{_describe(cert)} has pathLenConstraint {bc.path_length} but {below} CAs follow it"
        )


def _check_signature(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    if cert.issuer != issuer.subject:
        raise BadCertSignature(
            f"{_describe(cert)} names {cert.issuer.rfc4514_string()} as its issuer, but the "
            f"certificate before it is {_describe(issuer)}"
        )
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature as exc:
        raise BadCertSignature(
            f"signature of {_describe(cert)} does not verify with {_describe(issuer)}'s key"
        ) from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadCertSignature(
            f"{_describe(cert)} is not verifiably issued by {_describe(issuer)}: {exc}"
        ) from exc


def _walk(path: Sequence[x509.Certificate], anchor: x509.Certificate, at: dt.datetime) -> None:
    """Check ``path`` (root side first, issued by ``anchor``) link by link; raise the typed error
    of the first defect found."""
    _check_validity(anchor, at)
    issuer, cas_after = anchor, len(path) - 1  # CA certificates below the anchor: all but the leaf
    for cert in path:
        _check_certificate(cert)
        _check_validity(cert, at)
        _check_issuer(issuer, max(cas_after, 0))
        _check_signature(cert, issuer)
        issuer, cas_after = cert, cas_after - 1


def _generalized_time_before_2050(cert: x509.Certificate) -> bool:
    """Whether ``cert``'s validity holds a GeneralizedTime before 2050 (RFC 5280 §4.1.2.5)."""
    tbs = cert.tbs_certificate_bytes
    try:
        _, offset, _ = _read_der_header(tbs, 0)  # into TBSCertificate
        skip = 4 if tbs[offset] == 0xA0 else 3  # [0] version, serial, signature, issuer
        for _ in range(skip):
            _, hlen, clen = _read_der_header(tbs, offset)
            offset += hlen + clen
        _, hlen, clen = _read_der_header(tbs, offset)  # Validity
        inner, end = offset + hlen, offset + hlen + clen
        while inner < end:
            tag, hlen, clen = _read_der_header(tbs, inner)
            if tag == 0x18 and int(tbs[inner + hlen : inner + hlen + 4]) < 2050:
                return True
            inner += hlen + clen
    except (ValueError, IndexError):
        return False
    return False


def _path_validate(path: list[x509.Certificate], anchor: x509.Certificate, at: dt.datetime) -> None:
    """RFC 5280 path validation of ``path`` (root side first) under ``anchor``."""
    try:
        built = _verifier(anchor, at, len(path)).verify(path[-1], path[:-1]).chain
    except verification.VerificationError as exc:
        reason = str(exc)
        try:
            _walk(path, anchor, at)
        except CertificateChainError as defect:
            raise type(defect)(f"{defect} (path validation: {reason})") from exc
        if any(_generalized_time_before_2050(c) for c in [*path, anchor]):
            return  # judged by the link-by-link checks alone, see above
        raise CertificatePolicyError(f"RFC 5280 path validation failed: {reason}") from exc
    if [_der(c) for c in built] != [_der(c) for c in [*reversed(path), anchor]]:
        # A path exists, but not in the order the chain lists its certificates.
        _walk(path, anchor, at)
        raise ChainFormatError(
            "the certificates are not a chain in order, each issuing the next: validation "
            "had to skip or reorder some"
        )


# -- the SPDM leaf rules ----------------------------------------------------------------------

_ROLE_EKU = {"responder": EKU_SPDM_RESPONDER_AUTH, "requester": EKU_SPDM_REQUESTER_AUTH}


def _check_leaf(cert: x509.Certificate, role: Role, version: int | None) -> None:
    """DSP0274 leaf certificate requirements (1.2.2 "Required fields" / Table 32 "Optional
    fields"; 1.3.0 Table 42 "Field requirements"; 1.2 §10.8.2.1 EKU authentication OIDs):

    - basicConstraints: optional up to 1.2, required from 1.3; if present, cA is FALSE;
    - keyUsage: required, with digitalSignature (DMTF's libspdm refuses a leaf without it too,
      ``libspdm_x509_common_certificate_check``);
    - extendedKeyUsage: optional and may list any purposes, but a certificate for one role must
      not carry only the other role's SPDM authentication OID (id-DMTF-eku-responder-auth
      1.3.6.1.4.1.412.274.3, id-DMTF-eku-requester-auth ...274.4).
    """
    bc = _extension(cert, x509.BasicConstraints)
    if isinstance(bc, x509.BasicConstraints) and bc.ca:
        raise LeafIsCa(f"leaf {_describe(cert)} is marked as a CA")
    if bc is None and version is not None and version >= 0x13:
        raise LeafBasicConstraintsError(
            f"leaf {_describe(cert)} has no basicConstraints, which SPDM 1.3 requires "
            "(DSP0274 1.3.0 Table 42)"
        )
    ku = _extension(cert, x509.KeyUsage)
    if not isinstance(ku, x509.KeyUsage):
        raise LeafKeyUsageError(
            f"leaf {_describe(cert)} has no keyUsage extension (a required leaf field, DSP0274)"
        )
    if not ku.digital_signature:
        raise LeafKeyUsageError(f"leaf {_describe(cert)} keyUsage lacks digitalSignature")
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if isinstance(eku, x509.ExtendedKeyUsage):
        own = _ROLE_EKU[role]
        other = (
            EKU_SPDM_REQUESTER_AUTH if own == EKU_SPDM_RESPONDER_AUTH else EKU_SPDM_RESPONDER_AUTH
        )
        if other in eku and own not in eku:
            raise LeafEkuError(
                f"leaf {_describe(cert)} of the SPDM {role} lists only the other role's "
                f"authentication EKU {other.dotted_string} (DSP0274 1.2 §10.8.2.1)"
            )


def validate_chain(
    certs: Sequence[x509.Certificate],
    trust_anchor: x509.Certificate,
    at: dt.datetime | None = None,
    *,
    role: Role = "responder",
    version: int | None = None,
) -> None:
    """Check a root-first chain against ``trust_anchor``; raise a :class:`CertificateChainError`.

    The first certificate is either the anchor itself (same subject and public key) or one the
    anchor issued, and each certificate issues the next (DSP0274 certificate chain format).  The
    chain must pass RFC 5280 path validation at ``at`` (default: now; naive means UTC) and its
    leaf the SPDM leaf rules for ``role``, the role of the peer that sent the chain ("responder",
    or "requester" under mutual authentication).  ``version`` is the negotiated SPDM version
    byte, when known: from 0x13 the leaf must have basicConstraints.
    """
    if role not in _ROLE_EKU:
        raise LocalProtocolError(f"role {role!r} is not 'responder' or 'requester'")
    if not certs:
        raise ChainFormatError("empty certificate chain")
    when = at or dt.datetime.now(dt.UTC)
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    first = certs[0]
    if _same_certificate_key(first, trust_anchor):
        path = list(certs[1:])
        if not path:  # the chain is the anchor alone; the leaf rules below refuse a CA leaf
            _check_validity(first, when)
    elif first.issuer == trust_anchor.subject:
        try:
            first.verify_directly_issued_by(trust_anchor)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise UntrustedRoot(
                f"{_describe(first)} names the anchor as issuer but its key did not sign it"
            ) from exc
        path = list(certs)
    else:
        raise UntrustedRoot(
            f"chain starts at {_describe(first)}, which is neither the trust anchor "
            f"{_describe(trust_anchor)} nor issued by it"
        )
    if path:
        _path_validate(path, trust_anchor, when)
    _check_leaf(certs[-1], role, version)
