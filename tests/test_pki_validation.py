"""Chain validation: RFC 5280 path validation plus the SPDM leaf rules.

The chains built here mimic the extension shapes of DMTF's libspdm sample certificates (a root
with basicConstraints and no keyUsage, a CA with non-critical basicConstraints and critical EKU,
leaves with a DMTF otherName SAN, critical TLS EKUs and the id-DMTF-SPDM-extension), so the suite
covers them without the DMTF build.  With ``HIL_DMTF_BIN`` naming the bin folder of a built
spdm-emu, the DMTF sample chains themselves are checked too.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hil.codec.spdm import BaseAsymAlgo
from hil.codec.spdm_crypto import SHA384, SigningOperation, verify
from hil.errors import LocalProtocolError
from hil.pki import (
    DMTF_SPDM_EXTENSION_OID,
    EKU_SPDM_REQUESTER_AUTH,
    EKU_SPDM_RESPONDER_AUTH,
    BadCertSignature,
    CertificatePolicyError,
    ChainFormatError,
    Identity,
    IssuerNotCa,
    KeyType,
    LeafBasicConstraintsError,
    LeafEkuError,
    LeafIsCa,
    NotValidAtTime,
    Role,
    TestPki,
    UntrustedRoot,
    leaf_profile,
    load_certificates,
    validate_chain,
)

AT = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2034, 1, 1, tzinfo=dt.UTC)
DMTF_DEVICE_INFO_OID = x509.ObjectIdentifier("1.3.6.1.4.1.412.274.1")
DMTF_ENV = "HIL_DMTF_BIN"

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _new_key(key_type: KeyType) -> Key:
    if key_type.startswith("RSA-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    return ec.generate_private_key(curve[key_type])


def _hash(key: Key) -> hashes.HashAlgorithm:
    return hashes.SHA256() if key.public_key().key_size <= 256 else hashes.SHA384()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ku(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    )
    return x509.KeyUsage(
        **{n: flags.get(n, False) for n in names}, encipher_only=False, decipher_only=False
    )


# (extension, critical) lists in the DMTF sample shapes.
def _root_extensions(key: Key) -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False),
        (x509.BasicConstraints(ca=True, path_length=None), True),  # and no keyUsage at all
    ]


def _intermediate_extensions(key: Key) -> list[tuple[x509.ExtensionType, bool]]:
    every_usage = _ku(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=True,
        data_encipherment=True,
        key_agreement=True,
        key_cert_sign=True,
        crl_sign=True,
    )
    return [
        (x509.BasicConstraints(ca=True, path_length=None), False),  # not critical
        (every_usage, False),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        (
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            True,
        ),
    ]


def _leaf_extensions(
    key: Key, spdm_ekus: tuple[x509.ObjectIdentifier, ...] = ()
) -> list[tuple[x509.ExtensionType, bool]]:
    text = b"ACME:WIDGET:1234567890"
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_ku(digital_signature=True, content_commitment=True, key_encipherment=True), False),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        (
            x509.SubjectAlternativeName(
                [x509.OtherName(DMTF_DEVICE_INFO_OID, b"\x0c" + bytes([len(text)]) + text)]
            ),
            False,
        ),
        (
            x509.ExtendedKeyUsage(
                [
                    ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH,
                    ExtendedKeyUsageOID.OCSP_SIGNING,
                    *spdm_ekus,
                ]
            ),
            True,
        ),
        # id-DMTF-SPDM-extension: SEQUENCE { SEQUENCE { OID id-DMTF-hardware-identity } }
        (
            x509.UnrecognizedExtension(
                DMTF_SPDM_EXTENSION_OID,
                bytes.fromhex("300e300c060a2b0601040183 1c821202".replace(" ", "")),
            ),
            False,
        ),
    ]


def _cert(
    subject: str,
    key: Key,
    extensions: list[tuple[x509.ExtensionType, bool]],
    *,
    issuer: x509.Certificate | None,
    issuer_key: Key,
    not_before: dt.datetime = START,
    not_after: dt.datetime = END,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(subject) if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, _hash(issuer_key))


@dataclass(frozen=True)
class Shaped:
    """A DMTF-shaped root, intermediate and leaf."""

    root: x509.Certificate
    root_key: Key
    inter: x509.Certificate
    inter_key: Key
    leaf: x509.Certificate
    leaf_key: Key

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.root, self.inter, self.leaf]

    def with_leaf(
        self, extensions: list[tuple[x509.ExtensionType, bool]], **kw: dt.datetime
    ) -> Shaped:
        leaf = _cert(
            "leaf", self.leaf_key, extensions, issuer=self.inter, issuer_key=self.inter_key, **kw
        )
        return replace(self, leaf=leaf)

    def with_inter(self, extensions: list[tuple[x509.ExtensionType, bool]]) -> Shaped:
        inter = _cert(
            "intermediate", self.inter_key, extensions, issuer=self.root, issuer_key=self.root_key
        )
        leaf = _cert(
            "leaf",
            self.leaf_key,
            _leaf_extensions(self.leaf_key),
            issuer=inter,
            issuer_key=self.inter_key,
        )
        return replace(self, inter=inter, leaf=leaf)


def _shaped(key_type: KeyType) -> Shaped:
    root_key, inter_key, leaf_key = (_new_key(key_type) for _ in range(3))
    root = _cert("root CA", root_key, _root_extensions(root_key), issuer=None, issuer_key=root_key)
    inter = _cert(
        "intermediate",
        inter_key,
        _intermediate_extensions(inter_key),
        issuer=root,
        issuer_key=root_key,
    )
    leaf = _cert("leaf", leaf_key, _leaf_extensions(leaf_key), issuer=inter, issuer_key=inter_key)
    return Shaped(root, root_key, inter, inter_key, leaf, leaf_key)


_SHAPED: dict[str, Shaped] = {}


def shaped(key_type: KeyType = "P-384") -> Shaped:
    if key_type not in _SHAPED:  # RSA keys take a while: one set per key type per session
        _SHAPED[key_type] = _shaped(key_type)
    return _SHAPED[key_type]


# -- the DMTF shapes are accepted --------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["P-256", "P-384", "RSA-2048", "RSA-3072"])
@pytest.mark.parametrize("role", ["responder", "requester"])
def test_dmtf_shaped_chain_is_accepted(key_type: KeyType, role: Role) -> None:
    s = shaped(key_type)
    assert s.root.extensions.get_extension_for_class(x509.BasicConstraints).critical
    with pytest.raises(x509.ExtensionNotFound):
        s.root.extensions.get_extension_for_class(x509.KeyUsage)
    validate_chain(s.chain, s.root, AT, role=role)
    validate_chain(s.chain[1:], s.root, AT, role=role)  # without the root, under the anchor
    validate_chain(s.chain, s.root, AT, role=role, version=0x13)


def test_ca_without_key_usage_is_a_ca() -> None:
    # RFC 5280 §4.2.1.3: no keyUsage, no restriction; the intermediate drops its keyUsage too.
    s = shaped()
    extensions = [
        e for e in _intermediate_extensions(s.inter_key) if not isinstance(e[0], x509.KeyUsage)
    ]
    bare = s.with_inter(extensions)
    validate_chain(bare.chain, bare.root, AT)


def test_generated_pki_matches_the_same_rules() -> None:
    p = TestPki.generate(curve="P-256")
    validate_chain(p.chain, p.root, AT)
    profile = replace(leaf_profile(), extended_key_usage=(EKU_SPDM_REQUESTER_AUTH,))
    with pytest.raises(LeafEkuError):
        validate_chain(p.reissue_leaf(profile).chain, p.root, AT)


# -- negative cases --------------------------------------------------------------------------


def test_ca_without_ca_bit() -> None:
    s = shaped()
    for bc in (x509.BasicConstraints(ca=False, path_length=None), None):
        extensions = [
            (bc, False) if isinstance(e, x509.BasicConstraints) else (e, c)
            for e, c in _intermediate_extensions(s.inter_key)
        ]
        bad = s.with_inter([(e, c) for e, c in extensions if e is not None])
        with pytest.raises(IssuerNotCa, match=r"not a CA .*path validation: "):
            validate_chain(bad.chain, bad.root, AT)


def test_ca_key_usage_without_key_cert_sign() -> None:
    s = shaped()
    extensions = [
        (_ku(digital_signature=True, crl_sign=True), False)
        if isinstance(e, x509.KeyUsage)
        else (e, c)
        for e, c in _intermediate_extensions(s.inter_key)
    ]
    bad = s.with_inter(extensions)
    with pytest.raises(IssuerNotCa, match=r"intermediate .*lacks keyCertSign"):
        validate_chain(bad.chain, bad.root, AT)


def test_root_key_usage_without_key_cert_sign() -> None:
    key = _new_key("P-256")
    extensions = [*_root_extensions(key), (_ku(crl_sign=True), True)]
    root = _cert("narrow root", key, extensions, issuer=None, issuer_key=key)
    s = shaped()
    inter = _cert(
        "intermediate",
        s.inter_key,
        _intermediate_extensions(s.inter_key),
        issuer=root,
        issuer_key=key,
    )
    with pytest.raises(IssuerNotCa, match=r"narrow root .*keyCertSign"):
        validate_chain([root, inter, s.leaf], root, AT)


@pytest.mark.parametrize("key_type", ["P-384", "RSA-2048"])
def test_expired_and_not_yet_valid(key_type: KeyType) -> None:
    s = shaped(key_type)
    with pytest.raises(NotValidAtTime, match="root CA"):
        validate_chain(s.chain, s.root, END + dt.timedelta(days=1))
    short = s.with_leaf(
        _leaf_extensions(s.leaf_key), not_after=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    validate_chain(short.chain, short.root, dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    with pytest.raises(NotValidAtTime, match=r"leaf is valid .*path validation: "):
        validate_chain(short.chain, short.root, AT)


@pytest.mark.parametrize("key_type", ["P-384", "RSA-2048"])
def test_wrong_anchor(key_type: KeyType) -> None:
    s, other = shaped(key_type), _shaped("P-256")
    with pytest.raises(UntrustedRoot):
        validate_chain(s.chain, other.root, AT)
    with pytest.raises(UntrustedRoot):
        validate_chain(s.chain[1:], other.root, AT)


@pytest.mark.parametrize("key_type", ["P-384", "RSA-2048"])
def test_bad_signature(key_type: KeyType) -> None:
    s = shaped(key_type)
    der = bytearray(s.leaf.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    broken = x509.load_der_x509_certificate(bytes(der))
    with pytest.raises(BadCertSignature, match=r"does not verify .*path validation: "):
        validate_chain([s.root, s.inter, broken], s.root, AT)


def test_path_length() -> None:
    s = shaped()
    key = s.root_key
    extensions = [
        (x509.BasicConstraints(ca=True, path_length=0), True)
        if isinstance(e, x509.BasicConstraints)
        else (e, c)
        for e, c in _root_extensions(key)
    ]
    root = _cert("root CA", key, extensions, issuer=None, issuer_key=key)
    inter = _cert(
        "intermediate",
        s.inter_key,
        _intermediate_extensions(s.inter_key),
        issuer=root,
        issuer_key=key,
    )
    leaf = _cert(
        "leaf", s.leaf_key, _leaf_extensions(s.leaf_key), issuer=inter, issuer_key=s.inter_key
    )
    with pytest.raises(IssuerNotCa, match=r"pathLenConstraint 0 but 1 CAs follow"):
        validate_chain([root, inter, leaf], root, AT)
    direct = _cert("leaf", s.leaf_key, _leaf_extensions(s.leaf_key), issuer=root, issuer_key=key)
    validate_chain([root, direct], root, AT)  # pathLen 0 still allows a leaf


def test_unknown_critical_extension() -> None:
    s = shaped()
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    bad = s.with_leaf([*_leaf_extensions(s.leaf_key), (odd, True)])
    with pytest.raises(CertificatePolicyError, match=r"unrecognised critical extension 1\.3\.6"):
        validate_chain(bad.chain, bad.root, AT)
    fine = s.with_leaf([*_leaf_extensions(s.leaf_key), (odd, False)])
    validate_chain(fine.chain, fine.root, AT)


def test_chain_out_of_order_or_with_extra_certificates() -> None:
    s, other = shaped(), _shaped("P-384")
    with pytest.raises(BadCertSignature, match=r"names .* as its issuer"):
        validate_chain([s.root, s.leaf, s.inter], s.root, AT)
    with pytest.raises(BadCertSignature, match=r"names .* as its issuer"):
        validate_chain([s.root, s.inter, other.inter, s.leaf], s.root, AT)


def test_chain_listing_a_certificate_twice() -> None:
    # Every link verifies, but path validation skips the second copy of the root.
    s = shaped()
    with pytest.raises(ChainFormatError, match="not a chain in order"):
        validate_chain([s.root, s.root, s.inter, s.leaf], s.root, AT)


def test_anchor_alone_is_no_leaf() -> None:
    s = shaped()
    with pytest.raises(LeafIsCa):
        validate_chain([s.root], s.root, AT)


# -- the SPDM leaf rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ekus", "responder_ok", "requester_ok"),
    [
        ((), True, True),
        ((EKU_SPDM_RESPONDER_AUTH,), True, False),
        ((EKU_SPDM_REQUESTER_AUTH,), False, True),
        ((EKU_SPDM_RESPONDER_AUTH, EKU_SPDM_REQUESTER_AUTH), True, True),
    ],
)
def test_spdm_eku_by_role(
    ekus: tuple[x509.ObjectIdentifier, ...], responder_ok: bool, requester_ok: bool
) -> None:
    s = shaped()
    chain = s.with_leaf(_leaf_extensions(s.leaf_key, ekus)).chain
    for role, ok in (("responder", responder_ok), ("requester", requester_ok)):
        if ok:
            validate_chain(chain, s.root, AT, role=role)
        else:
            with pytest.raises(LeafEkuError, match=rf"SPDM {role} lists only the other role"):
                validate_chain(chain, s.root, AT, role=role)


def test_spdm_1_3_leaf_needs_basic_constraints() -> None:
    s = shaped()
    extensions = [
        e for e in _leaf_extensions(s.leaf_key) if not isinstance(e[0], x509.BasicConstraints)
    ]
    chain = s.with_leaf(extensions).chain
    validate_chain(chain, s.root, AT)
    validate_chain(chain, s.root, AT, version=0x12)
    with pytest.raises(LeafBasicConstraintsError, match=r"SPDM 1\.3 requires"):
        validate_chain(chain, s.root, AT, version=0x13)


def test_unknown_role() -> None:
    s = shaped()
    with pytest.raises(LocalProtocolError):
        validate_chain(s.chain, s.root, AT, role="verifier")  # type: ignore[arg-type]


# -- a notBefore the way DSP0274 suggests it: GeneralizedTime 19700101000000Z -----------------


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _with_generalized_not_before(cert: x509.Certificate, issuer_key: Key) -> x509.Certificate:
    """``cert`` with notBefore re-encoded as GeneralizedTime 19700101000000Z, re-signed."""
    tbs = cert.tbs_certificate_bytes
    utc = cert.not_valid_before_utc.strftime("%y%m%d%H%M%SZ").encode()
    old_time = _tlv(0x17, utc)
    start = tbs.index(old_time)
    assert tbs[start - 2] == 0x30  # the Validity SEQUENCE, short form
    validity = tbs[start - 2 : start + tbs[start - 1]]
    new_validity = _tlv(0x30, validity[2:].replace(old_time, _tlv(0x18, b"19700101000000Z")))
    body_start = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    tbs = _tlv(0x30, tbs[body_start:].replace(validity, new_validity))
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = issuer_key.sign(tbs, padding.PKCS1v15(), _hash(issuer_key))
    else:
        signature = issuer_key.sign(tbs, ec.ECDSA(_hash(issuer_key)))
    der = cert.public_bytes(serialization.Encoding.DER)
    outer = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    rest = der[outer + len(cert.tbs_certificate_bytes) :]
    alg_len = 2 + rest[1]  # AlgorithmIdentifier, short form
    return x509.load_der_x509_certificate(
        _tlv(0x30, tbs + rest[:alg_len] + _tlv(0x03, b"\x00" + signature))
    )


def test_generalized_time_not_before_is_accepted() -> None:
    s = shaped()
    leaf = _with_generalized_not_before(s.leaf, s.inter_key)
    assert leaf.not_valid_before_utc == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([s.root]))
        .time(AT)
        .build_client_verifier()
    )
    with pytest.raises(verification.VerificationError, match="UtcTime"):
        verifier.verify(leaf, [s.inter])  # what the verifier alone says
    validate_chain([s.root, s.inter, leaf], s.root, AT)
    with pytest.raises(NotValidAtTime):
        validate_chain([s.root, s.inter, leaf], s.root, END + dt.timedelta(days=1))
    stranger = _with_generalized_not_before(s.leaf, _new_key("P-384"))
    with pytest.raises(BadCertSignature):
        validate_chain([s.root, s.inter, stranger], s.root, AT)


# -- DMTF's own sample chains -----------------------------------------------------------------

DMTF_KEY_FOLDERS = ["ecp256", "ecp384", "rsa2048", "rsa3072"]


@pytest.fixture(scope="module")
def dmtf_bin() -> Path:
    folder = os.environ.get(DMTF_ENV)
    if not folder:
        pytest.skip(f"{DMTF_ENV} is not set (the bin folder of a built DMTF spdm-emu)")
    path = Path(folder)
    if not (path / "ecp384" / "ca.cert.der").is_file():
        pytest.skip(f"{DMTF_ENV}={folder} holds no ecp384/ca.cert.der")
    return path


def _dmtf(path: Path) -> list[x509.Certificate]:
    return load_certificates(path.read_bytes())


def _inside(chain: list[x509.Certificate]) -> dt.datetime:
    """A time inside every certificate's validity: the tests do not depend on the clock."""
    return max(c.not_valid_before_utc for c in chain) + dt.timedelta(days=1)


@pytest.mark.parametrize("folder", DMTF_KEY_FOLDERS)
def test_dmtf_sample_chains(dmtf_bin: Path, folder: str) -> None:
    base = dmtf_bin / folder
    (anchor,) = _dmtf(base / "ca.cert.der")
    with pytest.raises(x509.ExtensionNotFound):
        anchor.extensions.get_extension_for_class(x509.KeyUsage)
    for role in ("responder", "requester"):
        chain = _dmtf(base / f"bundle_{role}.certchain.der")
        assert chain[0] == anchor and len(chain) == 3
        validate_chain(chain, anchor, _inside(chain), role=role)
        validate_chain(chain[1:], anchor, _inside(chain), role=role)


@pytest.mark.parametrize("folder", DMTF_KEY_FOLDERS)
def test_dmtf_sample_role_ekus(dmtf_bin: Path, folder: str) -> None:
    base = dmtf_bin / folder
    (anchor,) = _dmtf(base / "ca.cert.der")
    (inter,) = _dmtf(base / "inter.cert.der")
    cases = {
        "end_requester_with_spdm_rsp_eku": {"responder": True, "requester": False},
        "end_responder_with_spdm_req_eku": {"responder": False, "requester": True},
        "end_requester_with_spdm_req_rsp_eku": {"responder": True, "requester": True},
    }
    for name, verdicts in cases.items():
        (leaf,) = _dmtf(base / f"{name}.cert.der")
        chain = [anchor, inter, leaf]
        for role, ok in verdicts.items():
            if ok:
                validate_chain(chain, anchor, _inside(chain), role=role)  # type: ignore[arg-type]
            else:
                with pytest.raises(LeafEkuError):
                    validate_chain(chain, anchor, _inside(chain), role=role)  # type: ignore[arg-type]


@pytest.mark.parametrize("folder", ["rsa3072", "ecp384"])
def test_dmtf_requester_identity(dmtf_bin: Path, folder: str) -> None:
    base = dmtf_bin / folder
    ident = Identity.load(base / "bundle_requester.certchain.der", base / "end_requester.key")
    assert len(ident.chain) == 3 and ident.root == _dmtf(base / "ca.cert.der")[0]
    th = SHA384.digest(b"transcript")
    if folder == "rsa3072":
        assert ident.asym_algs == BaseAsymAlgo.RSASSA_3072 | BaseAsymAlgo.RSAPSS_3072
        algs = [BaseAsymAlgo.RSASSA_3072, BaseAsymAlgo.RSAPSS_3072]
    else:
        assert ident.asym_algs == BaseAsymAlgo.ECDSA_P384
        algs = [BaseAsymAlgo.ECDSA_P384]
    for alg in algs:
        sig = ident.sign(0x12, SigningOperation.FINISH, th, hash_alg=SHA384, asym_alg=alg)
        assert len(sig) == ident.signature_size
        pub = ident.leaf.public_key()
        assert verify(pub, 0x12, SigningOperation.FINISH, th, SHA384, sig, asym_alg=alg)
    validate_chain(ident.chain, ident.root, _inside(list(ident.chain)), role="requester")
