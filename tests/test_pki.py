from __future__ import annotations

import datetime as dt
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hil.codec.spdm import BaseAsymAlgo
from hil.codec.spdm_crypto import SHA256, SHA384, HashAlg, SigningOperation, verify
from hil.errors import LocalProtocolError, PeerProtocolError
from hil.pki import (
    CMA_SAN_OID,
    EKU_SPDM_REQUESTER_AUTH,
    INTERMEDIATE_PROFILE,
    NOT_AFTER,
    NOT_BEFORE,
    BadCertSignature,
    CertificateChainError,
    CertProfile,
    ChainFormatError,
    CmaDeviceId,
    Curve,
    Identity,
    IdentityError,
    IssuerNotCa,
    KeyType,
    LeafEkuError,
    LeafIsCa,
    LeafKeyUsageError,
    NotValidAtTime,
    TestPki,
    UntrustedRoot,
    build_spdm_chain,
    cma_san_names,
    issue_certificate,
    leaf_profile,
    load_certificates,
    load_private_key,
    parse_spdm_chain,
    validate_chain,
)

AT = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.generate()


@pytest.fixture(scope="module")
def other_pki() -> TestPki:
    return TestPki.generate()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# -- the generated PKI ------------------------------------------------------------------------


@pytest.mark.parametrize("curve", ["P-256", "P-384", "P-521"])
def test_generated_chain_validates(curve: Curve) -> None:
    p = TestPki.generate(curve=curve)
    validate_chain(p.chain, p.trust_anchor, AT)
    validate_chain(p.chain, p.trust_anchor)  # and now, whenever now is
    names = {"P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1"}
    assert isinstance(p.leaf_key, ec.EllipticCurvePrivateKey)
    assert p.leaf_key.curve.name == names[curve]


@pytest.mark.parametrize(
    ("key_type", "bits", "signature"),
    [
        ("RSA-2048", 2048, x509.SignatureAlgorithmOID.RSA_WITH_SHA256),
        ("RSA-3072", 3072, x509.SignatureAlgorithmOID.RSA_WITH_SHA384),
    ],
)
def test_generated_rsa_chain(
    key_type: KeyType, bits: int, signature: x509.ObjectIdentifier
) -> None:
    p = TestPki.generate(key_type=key_type)
    validate_chain(p.chain, p.trust_anchor, AT)
    for key in (p.root_key, p.intermediate_key, p.leaf_key):
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits
    assert p.leaf.signature_algorithm_oid == signature
    assert cma_san_names(p.leaf) == ["Vendor=10ee:Device=9048:CC=120000:REV=00"]
    ident = p.identity
    assert ident.signature_size == bits // 8
    sizes = {2048: BaseAsymAlgo.RSASSA_2048 | BaseAsymAlgo.RSAPSS_2048}
    sizes[3072] = BaseAsymAlgo.RSASSA_3072 | BaseAsymAlgo.RSAPSS_3072
    assert ident.asym_algs == sizes[bits]


def test_generated_certificates(pki: TestPki) -> None:
    for cert in pki.chain:
        assert cert.not_valid_before_utc == NOT_BEFORE
        assert cert.not_valid_after_utc == NOT_AFTER
    assert pki.root.issuer == pki.root.subject
    assert pki.intermediate.issuer == pki.root.subject
    assert pki.leaf.issuer == pki.intermediate.subject
    leaf_bc = pki.leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert leaf_bc.critical and not leaf_bc.value.ca
    ku = pki.leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    inter_bc = pki.intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert inter_bc.ca and inter_bc.path_length == 0
    assert pki.intermediate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert pki.leaf.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384


def test_leaf_carries_the_cma_san(pki: TestPki) -> None:
    assert cma_san_names(pki.leaf) == ["Vendor=10ee:Device=9048:CC=120000:REV=00"]
    san = pki.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    (other,) = san.get_values_for_type(x509.OtherName)
    assert other.type_id == CMA_SAN_OID == x509.ObjectIdentifier("2.23.147")
    raw = b"Vendor=10ee:Device=9048:CC=120000:REV=00"
    assert other.value == bytes([0x0C, len(raw)]) + raw  # a DER UTF8String
    assert cma_san_names(pki.root) == []


def test_cma_san_string_forms() -> None:
    full = CmaDeviceId(
        vendor_id=0x8086,
        device_id=0x0B25,
        class_code=0x010802,
        revision=0x1,
        subsystem_vendor_id=0x8086,
        subsystem_id=0x7,
        serial_number=0x00C0FFEE_1D5EC0DE,
    )
    assert full.san() == (
        "Vendor=8086:Device=0b25:CC=010802:REV=01:SSVID=8086:SSID=0007:00c0ffee1d5ec0de"
    )
    p = TestPki.generate(curve="P-256", device=full)
    assert cma_san_names(p.leaf) == [full.san()]
    assert cma_san_names(TestPki.generate(curve="P-256", device=None).leaf) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vendor_id": 0x10000},
        {"class_code": 1 << 24},
        {"revision": 256},
        {"subsystem_vendor_id": 1},
    ],
)
def test_cma_device_id_checks_fields(kwargs: dict[str, int]) -> None:
    base = {"vendor_id": 1, "device_id": 2, "class_code": 3, "revision": 4}
    with pytest.raises(LocalProtocolError, match=r"bits|subsystem"):
        CmaDeviceId(**{**base, **kwargs})


def test_requester_pki(tmp_path: Path) -> None:
    p = TestPki.generate_requester()
    assert isinstance(p.leaf_key, rsa.RSAPrivateKey) and p.leaf_key.key_size == 3072
    eku = p.leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [EKU_SPDM_REQUESTER_AUTH]
    assert cma_san_names(p.leaf) == []
    ku = p.leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    validate_chain(p.chain, p.root, AT, role="requester")
    with pytest.raises(LeafEkuError, match="responder"):
        validate_chain(p.chain, p.root, AT, role="responder")
    # PEM files written and read back, as hil run --requester-cert-chain/--requester-key take them
    files = p.write_pem(tmp_path, stem="requester")
    ident = Identity.load(files.chain, files.key)
    assert ident.chain == p.chain and ident.asym_algs & BaseAsymAlgo.RSAPSS_3072
    th = SHA384.digest(b"transcript")
    sig = ident.sign(
        0x12, SigningOperation.FINISH, th, hash_alg=SHA384, asym_alg=BaseAsymAlgo.RSAPSS_3072
    )
    assert verify(
        p.leaf.public_key(),
        0x12,
        SigningOperation.FINISH,
        th,
        SHA384,
        sig,
        asym_alg=BaseAsymAlgo.RSAPSS_3072,
    )
    with pytest.raises(LocalProtocolError, match="RSASSA or RSAPSS"):
        ident.sign(0x12, SigningOperation.FINISH, th, hash_alg=SHA384)
    with pytest.raises(LocalProtocolError, match="cannot be used as"):
        ident.sign(
            0x12, SigningOperation.FINISH, th, hash_alg=SHA384, asym_alg=BaseAsymAlgo.ECDSA_P384
        )
    ec_requester = TestPki.generate_requester(key_type="P-256", seed_label="bench")
    assert ec_requester.identity.asym_algs == BaseAsymAlgo.ECDSA_P256
    ec_sig = ec_requester.identity.sign(0x12, SigningOperation.FINISH, th[:32], hash_alg=SHA256)
    assert len(ec_sig) == 64


def test_generate_option_checks() -> None:
    with pytest.raises(LocalProtocolError, match="seed_label needs an ECDSA key type"):
        TestPki.generate(key_type="RSA-2048", seed_label="x")
    with pytest.raises(LocalProtocolError, match="disagree"):
        TestPki.generate(key_type="P-256", curve="P-384")
    with pytest.raises(LocalProtocolError, match="is not one of"):
        TestPki.generate(key_type="P-224")  # type: ignore[arg-type]


def test_seed_label_separates_roles_and_reaches_p521() -> None:
    device = TestPki.generate(curve="P-256", seed_label="bench-1")
    requester = TestPki.generate_requester(key_type="P-256", seed_label="bench-1")
    assert isinstance(device.leaf_key, ec.EllipticCurvePrivateKey)
    assert isinstance(requester.leaf_key, ec.EllipticCurvePrivateKey)
    assert (
        device.leaf_key.private_numbers().private_value
        != requester.leaf_key.private_numbers().private_value
    )
    a = TestPki.generate(key_type="P-521", seed_label="p521")
    b = TestPki.generate(key_type="P-521", seed_label="p521")
    assert isinstance(a.leaf_key, ec.EllipticCurvePrivateKey)
    assert isinstance(b.leaf_key, ec.EllipticCurvePrivateKey)
    assert a.leaf_key.private_numbers() == b.leaf_key.private_numbers()
    validate_chain(a.chain, a.root, AT)


def test_seed_label_reproduces_keys() -> None:
    a = TestPki.generate(curve="P-256", seed_label="bench-1")
    b = TestPki.generate(curve="P-256", seed_label="bench-1")
    c = TestPki.generate(curve="P-256", seed_label="bench-2")

    def value(k: ec.EllipticCurvePrivateKey) -> int:
        return k.private_numbers().private_value

    assert [value(k) for k in (a.root_key, a.intermediate_key, a.leaf_key)] == [
        value(k) for k in (b.root_key, b.intermediate_key, b.leaf_key)
    ]
    assert value(a.leaf_key) != value(c.leaf_key)
    assert len({value(a.root_key), value(a.intermediate_key), value(a.leaf_key)}) == 3
    validate_chain(a.chain, a.root, AT)


# -- chain defects ----------------------------------------------------------------------------


def test_expired_and_not_yet_valid_leaf(pki: TestPki) -> None:
    profile = replace(
        leaf_profile(),
        not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2024, 12, 31, tzinfo=dt.UTC),
    )
    short = pki.reissue_leaf(profile)
    validate_chain(short.chain, short.root, dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    with pytest.raises(NotValidAtTime, match="hil test device"):
        validate_chain(short.chain, short.root, AT)
    with pytest.raises(NotValidAtTime):
        validate_chain(pki.chain, pki.root, dt.datetime(2023, 12, 31, tzinfo=dt.UTC))
    with pytest.raises(NotValidAtTime):  # a naive time is taken as UTC
        validate_chain(short.chain, short.root, dt.datetime(2025, 1, 1))


def test_leaf_marked_ca(pki: TestPki) -> None:
    bad = pki.reissue_leaf(replace(leaf_profile(), ca=True))
    with pytest.raises(LeafIsCa, match="marked as a CA"):
        validate_chain(bad.chain, bad.root, AT)


@pytest.mark.parametrize(
    ("key_usage", "why"),
    [(None, "no keyUsage"), (frozenset({"key_agreement"}), "lacks digitalSignature")],
)
def test_leaf_key_usage(pki: TestPki, key_usage: frozenset[str] | None, why: str) -> None:
    bad = pki.reissue_leaf(replace(leaf_profile(), key_usage=key_usage))
    with pytest.raises(LeafKeyUsageError, match=why):
        validate_chain(bad.chain, bad.root, AT)


def test_wrong_anchor(pki: TestPki, other_pki: TestPki) -> None:
    assert pki.root.subject == other_pki.root.subject  # same name, different key
    with pytest.raises(UntrustedRoot):
        validate_chain(pki.chain, other_pki.root, AT)
    with pytest.raises(UntrustedRoot):  # without the root in the chain as well
        validate_chain(pki.chain[1:], other_pki.root, AT)
    with pytest.raises(UntrustedRoot, match="neither"):
        validate_chain(pki.chain, other_pki.intermediate, AT)


def test_chain_without_its_root_validates_under_the_anchor(pki: TestPki) -> None:
    validate_chain(pki.chain[1:], pki.root, AT)


def test_broken_signature(pki: TestPki) -> None:
    der = bytearray(_der(pki.leaf))
    der[-1] ^= 0x01  # last byte of the signature's s
    broken = x509.load_der_x509_certificate(bytes(der))
    with pytest.raises(BadCertSignature, match="does not verify"):
        validate_chain([pki.root, pki.intermediate, broken], pki.root, AT)


def test_leaf_from_another_pki(pki: TestPki, other_pki: TestPki) -> None:
    with pytest.raises(BadCertSignature):
        validate_chain([pki.root, pki.intermediate, other_pki.leaf], pki.root, AT)


@pytest.mark.parametrize(
    ("profile", "why"),
    [
        (replace(INTERMEDIATE_PROFILE, ca=False), "not a CA"),
        (replace(INTERMEDIATE_PROFILE, ca=None), "not a CA"),
        (replace(INTERMEDIATE_PROFILE, key_usage=frozenset({"crl_sign"})), "keyCertSign"),
        (
            replace(INTERMEDIATE_PROFILE, key_usage=frozenset({"digital_signature"})),
            "keyCertSign",
        ),
    ],
)
def test_intermediate_without_ca_rights(pki: TestPki, profile: CertProfile, why: str) -> None:
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = issue_certificate(
        "bad intermediate",
        inter_key.public_key(),
        profile,
        issuer=pki.root,
        issuer_key=pki.root_key,
    )
    leaf = issue_certificate(
        "leaf", pki.leaf_key.public_key(), leaf_profile(), issuer=inter, issuer_key=inter_key
    )
    with pytest.raises(IssuerNotCa, match=why):
        validate_chain([pki.root, inter, leaf], pki.root, AT)


def test_path_length_constraint(pki: TestPki) -> None:
    # pathLen 0 on the intermediate: no further CA may sit below it.
    sub_key = ec.generate_private_key(ec.SECP384R1())
    sub = issue_certificate(
        "sub CA",
        sub_key.public_key(),
        replace(INTERMEDIATE_PROFILE, path_length=None),
        issuer=pki.intermediate,
        issuer_key=pki.intermediate_key,
    )
    leaf = issue_certificate(
        "leaf", pki.leaf_key.public_key(), leaf_profile(), issuer=sub, issuer_key=sub_key
    )
    with pytest.raises(IssuerNotCa, match="pathLenConstraint"):
        validate_chain([pki.root, pki.intermediate, sub, leaf], pki.root, AT)


def test_every_chain_error_is_a_peer_protocol_error() -> None:
    for cls in (
        BadCertSignature,
        NotValidAtTime,
        IssuerNotCa,
        LeafIsCa,
        LeafKeyUsageError,
        UntrustedRoot,
        ChainFormatError,
    ):
        assert issubclass(cls, CertificateChainError)
        assert issubclass(cls, PeerProtocolError)


# -- the SPDM certificate chain format --------------------------------------------------------


@pytest.mark.parametrize("hash_alg", [SHA256, SHA384], ids=lambda h: h.name)
def test_spdm_chain_round_trip(pki: TestPki, hash_alg: HashAlg) -> None:
    data = build_spdm_chain(pki.chain, hash_alg)
    ders = b"".join(_der(c) for c in pki.chain)
    assert int.from_bytes(data[:2], "little") == len(data) == 4 + hash_alg.size + len(ders)
    assert data[2:4] == b"\x00\x00"
    assert data[4 : 4 + hash_alg.size] == hash_alg.digest(_der(pki.root))
    assert data[4 + hash_alg.size :] == ders
    assert parse_spdm_chain(data, hash_alg) == list(pki.chain)
    assert pki.identity.spdm_chain(hash_alg) == data


def test_spdm_chain_malformed(pki: TestPki) -> None:
    data = build_spdm_chain(pki.chain, SHA384)
    bad_der = b"\x30\x82\xff\xff\x00"  # claims 65535 content bytes, has one
    cases = {
        "shorter than its header": data[:20],
        "Length": data[:-1],
        "RootHash": data[:4] + bytes(48) + data[52:],
        "malformed DER": (52 + len(bad_der)).to_bytes(2, "little") + data[2:52] + bad_der,
    }
    for why, blob in cases.items():
        with pytest.raises(ChainFormatError, match=why):
            parse_spdm_chain(blob, SHA384)
    empty = (52).to_bytes(2, "little") + data[2:52]
    with pytest.raises(ChainFormatError, match="no certificates"):
        parse_spdm_chain(empty, SHA384)


# -- loading identities -----------------------------------------------------------------------


def _key_bytes(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    encoding: serialization.Encoding,
    fmt: serialization.PrivateFormat,
    encryption: serialization.KeySerializationEncryption | None = None,
) -> bytes:
    return key.private_bytes(encoding, fmt, encryption or serialization.NoEncryption())


def test_load_pem_bundle_and_der_concatenation(pki: TestPki) -> None:
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in pki.chain)
    der = b"".join(_der(c) for c in pki.chain)
    assert load_certificates(pem) == list(pki.chain)
    assert load_certificates(der) == list(pki.chain)


@pytest.mark.parametrize(
    ("encoding", "fmt"),
    [
        (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8),
        (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
        (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8),
        (serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL),
    ],
)
def test_load_private_key_forms(
    pki: TestPki, encoding: serialization.Encoding, fmt: serialization.PrivateFormat
) -> None:
    key = load_private_key(_key_bytes(pki.leaf_key, encoding, fmt))
    assert key.private_numbers() == pki.leaf_key.private_numbers()


def test_load_rsa_private_key_forms() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for encoding, fmt in (
        (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),  # PKCS#1
        (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8),
        (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8),
    ):
        loaded = load_private_key(_key_bytes(key, encoding, fmt))
        assert isinstance(loaded, rsa.RSAPrivateKey)
        assert loaded.private_numbers() == key.private_numbers()


def test_load_identity_from_files(pki: TestPki, tmp_path: Path) -> None:
    files = pki.write_pem(tmp_path)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert load_certificates(files.root.read_bytes()) == [pki.root]
    ident = Identity.load(files.chain, files.key)
    assert ident.chain == pki.chain
    assert ident.leaf == pki.leaf and ident.root == pki.root
    der_chain = tmp_path / "chain.der"
    der_chain.write_bytes(b"".join(_der(c) for c in pki.chain))
    der_key = tmp_path / "key.der"
    der_key.write_bytes(
        _key_bytes(pki.leaf_key, serialization.Encoding.DER, serialization.PrivateFormat.PKCS8)
    )
    assert Identity.load(der_chain, der_key).chain == pki.chain


def test_key_must_match_the_leaf(pki: TestPki, other_pki: TestPki, tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="does not match the leaf"):
        Identity(pki.chain, other_pki.leaf_key)
    files = pki.write_pem(tmp_path / "a")
    other = other_pki.write_pem(tmp_path / "b")
    with pytest.raises(IdentityError, match="does not match"):
        Identity.load(files.chain, other.key)


def test_bad_identity_files(pki: TestPki, tmp_path: Path) -> None:
    encrypted = _key_bytes(
        pki.leaf_key,
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    ed_key = _key_bytes(
        ed25519.Ed25519PrivateKey.generate(),
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
    )
    p224 = _key_bytes(
        ec.generate_private_key(ec.SECP224R1()),
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
    )
    rsa1024 = _key_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
    )
    for blob, why in (
        (encrypted, "encrypted"),
        (ed_key, "not an ECDSA or RSA key"),
        (p224, "secp224r1 is not an SPDM ECDSA curve"),
        (rsa1024, "RSA-1024 is not an SPDM key size"),
        (b"garbage", "not a readable private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "readable"),
    ):
        with pytest.raises(IdentityError, match=why):
            load_private_key(blob)
    for blob in (b"", b"\x30\x05\x02\x01", b"\x04\x00", b"-----BEGIN CERTIFICATE-----\nxx\n"):
        with pytest.raises(IdentityError):
            load_certificates(blob)
    with pytest.raises(IdentityError, match="cannot read"):
        Identity.load(tmp_path / "missing.pem", tmp_path / "missing.key")
