"""SPDM codec: byte-exact layouts, round trips both ways, decode errors, fuzzed decoders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.codec.spdm import (
    MEASUREMENT_OP_ALL,
    MEASUREMENT_OP_COUNT,
    AeadSuite,
    Algorithms,
    AlgStruct,
    AlgType,
    BaseAsymAlgo,
    BaseHashAlgo,
    Capabilities,
    CapFlag,
    CertChain,
    Certificate,
    Challenge,
    ChallengeAuth,
    DheGroup,
    Digests,
    DmtfMeasurementType,
    EndSession,
    EndSessionAck,
    ErrorCode,
    ErrorResponse,
    Finish,
    FinishRsp,
    GetCapabilities,
    GetCertificate,
    GetDigests,
    GetMeasurements,
    GetVersion,
    Heartbeat,
    HeartbeatAck,
    KeyExchange,
    KeyExchangeRsp,
    KeySchedule,
    KeyUpdate,
    KeyUpdateAck,
    KeyUpdateOp,
    MeasurementBlock,
    MeasurementHashAlgo,
    Measurements,
    MeasurementSummaryHashType,
    MutAuthRequest,
    NegotiateAlgorithms,
    NegotiatedSizes,
    OpaqueDataFmt1,
    OpaqueElement,
    OpaqueSupportedVersions,
    OpaqueVersionSelection,
    OtherParams,
    PciProtocolId,
    RequestCode,
    RespondIfReady,
    ResponseCode,
    ResponseNotReadyData,
    SpdmDecodeError,
    SpdmHeader,
    SpdmVersion,
    StandardId,
    VendorDefinedRequest,
    VendorDefinedResponse,
    VersionNumberEntry,
    VersionResponse,
    decode_request,
    decode_response,
    dhe_size,
    hash_size,
    measurement_hash_size,
    peek_header,
    signature_size,
)
from hil.errors import LocalProtocolError, PeerProtocolError

H, S, D = 48, 96, 96  # SHA-384, ECDSA P-384, secp384r1
CTX = NegotiatedSizes(hash_size=H, signature_size=S, dhe_size=D, req_signature_size=S)


def hx(text: str) -> bytes:
    return bytes.fromhex(text.replace("\n", " "))


def blob(byte: int, n: int) -> bytes:
    return bytes([byte]) * n


# --------------------------------------------------------------------------------------------
# Sample messages: one or more of every kind, each with the context its decode needs
# --------------------------------------------------------------------------------------------

REQ_FLAGS = (
    CapFlag.CERT
    | CapFlag.CHAL
    | CapFlag.ENCRYPT
    | CapFlag.MAC
    | CapFlag.MUT_AUTH
    | CapFlag.KEY_EX
    | CapFlag.ENCAP
    | CapFlag.HBEAT
    | CapFlag.KEY_UPD
    | CapFlag.CHUNK
)
RSP_FLAGS = (
    CapFlag.CERT
    | CapFlag.CHAL
    | CapFlag.MEAS_SIG
    | CapFlag.MEAS_FRESH
    | CapFlag.ENCRYPT
    | CapFlag.MAC
    | CapFlag.KEY_EX
    | CapFlag.HBEAT
    | CapFlag.KEY_UPD
)
FOUR_TABLES = (
    AlgStruct(AlgType.DHE, DheGroup.SECP256R1 | DheGroup.SECP384R1),
    AlgStruct(AlgType.AEAD, AeadSuite.AES_256_GCM),
    AlgStruct(AlgType.REQ_BASE_ASYM_ALG, BaseAsymAlgo.ECDSA_P256 | BaseAsymAlgo.ECDSA_P384),
    AlgStruct(AlgType.KEY_SCHEDULE, KeySchedule.SPDM),
)
SELECTED = (
    AlgStruct(AlgType.DHE, DheGroup.SECP384R1),
    AlgStruct(AlgType.AEAD, AeadSuite.AES_256_GCM),
    AlgStruct(AlgType.REQ_BASE_ASYM_ALG, BaseAsymAlgo.ECDSA_P384),
    AlgStruct(AlgType.KEY_SCHEDULE, KeySchedule.SPDM),
)
NONCE = bytes(range(32))
CONTEXT = b"reqctx01"
DIGEST = blob(0xD1, H)
SIG = blob(0x5A, S)
DHE_PUB = blob(0x0E, D)
BLOCKS = (
    MeasurementBlock(1, DmtfMeasurementType.IMMUTABLE_ROM, blob(0x11, H)),
    MeasurementBlock(2, DmtfMeasurementType.MUTABLE_FIRMWARE, blob(0x22, H)),
    MeasurementBlock(0xFD, DmtfMeasurementType.MEASUREMENT_MANIFEST, b"manifest", raw=True),
)
SUPPORTED_SM = OpaqueSupportedVersions((VersionNumberEntry(1, 0), VersionNumberEntry(1, 1)))
SELECTED_SM = OpaqueVersionSelection(VersionNumberEntry(1, 1))

REQUESTS: list[Any] = [
    GetVersion(),
    GetCapabilities(version=SpdmVersion.V10),
    GetCapabilities(version=SpdmVersion.V11, ct_exponent=5, flags=CapFlag.CERT | CapFlag.CHAL),
    GetCapabilities(
        ct_exponent=12, flags=REQ_FLAGS, data_transfer_size=0x1000, max_spdm_msg_size=0x10000
    ),
    NegotiateAlgorithms(
        version=SpdmVersion.V10,
        base_asym_algo=BaseAsymAlgo.RSASSA_3072,
        base_hash_algo=BaseHashAlgo.SHA_256,
    ),
    NegotiateAlgorithms(
        other_params=OtherParams.OPAQUE_FMT1,
        base_asym_algo=BaseAsymAlgo.ECDSA_P256 | BaseAsymAlgo.ECDSA_P384,
        base_hash_algo=BaseHashAlgo.SHA_256 | BaseHashAlgo.SHA_384,
        alg_structs=FOUR_TABLES,
    ),
    NegotiateAlgorithms(
        version=SpdmVersion.V13,
        other_params=OtherParams.OPAQUE_FMT1 | OtherParams.MULTI_KEY_CONN,
        base_asym_algo=BaseAsymAlgo.ECDSA_P384,
        base_hash_algo=BaseHashAlgo.SHA_384,
        mel_specification=1,
        ext_asym=(b"\x03\x00\x01\x00",),
        ext_hash=(b"\x03\x00\x02\x00",),
        alg_structs=(AlgStruct(AlgType.DHE, DheGroup.SECP384R1, (b"\x03\x00\x07\x00",)),),
    ),
    GetDigests(),
    GetCertificate(slot_id=2, offset=0x100, length=0x400),
    GetCertificate(version=SpdmVersion.V13, length=0, slot_size_requested=True),
    Challenge(measurement_summary_hash_type=MeasurementSummaryHashType.TCB, nonce=NONCE),
    Challenge(
        version=SpdmVersion.V13,
        slot_id=0xFF,
        measurement_summary_hash_type=MeasurementSummaryHashType.ALL,
        nonce=NONCE,
        requester_context=CONTEXT,
    ),
    GetMeasurements(operation=MEASUREMENT_OP_ALL, raw_bit_stream_requested=True),
    GetMeasurements(operation=3, signature_requested=True, nonce=NONCE, slot_id=3),
    GetMeasurements(version=SpdmVersion.V10, signature_requested=True, nonce=NONCE),
    GetMeasurements(
        version=SpdmVersion.V13, operation=MEASUREMENT_OP_COUNT, requester_context=CONTEXT
    ),
    GetMeasurements(
        version=SpdmVersion.V13,
        signature_requested=True,
        new_measurement_requested=True,
        nonce=NONCE,
        slot_id=0xF,
        requester_context=CONTEXT,
    ),
    KeyExchange(
        measurement_summary_hash_type=MeasurementSummaryHashType.TCB,
        slot_id=1,
        req_session_id=0xFFFE,
        session_policy=1,
        random_data=blob(0x77, 32),
        exchange_data=DHE_PUB,
        opaque_data=SUPPORTED_SM.encode(),
    ),
    KeyExchange(
        version=SpdmVersion.V11, req_session_id=1, random_data=NONCE, exchange_data=DHE_PUB
    ),
    Finish(requester_verify_data=DIGEST),
    Finish(signature=SIG, req_slot_id=1, requester_verify_data=DIGEST),
    Heartbeat(),
    KeyUpdate(operation=KeyUpdateOp.VERIFY_NEW_KEY, tag=9),
    EndSession(clear_negotiated_state=True),
    VendorDefinedRequest.pci_sig(PciProtocolId.TDISP, b"\x10\x81\x00\x00"),
    VendorDefinedRequest(standard_id=StandardId.DMTF, vendor_id=b"", payload=b""),
    RespondIfReady(request_code=RequestCode.GET_MEASUREMENTS, token=7),
]

SUMMARY = replace(CTX, measurement_summary=True)
SIGNED = replace(CTX, measurement_signed=True)
CLEAR = replace(CTX, handshake_in_the_clear=True)
RESPONSES: list[tuple[Any, NegotiatedSizes]] = [
    (VersionResponse(entries=(SpdmVersion.V12.entry(), VersionNumberEntry(1, 3, 1, 0))), CTX),
    (Capabilities(version=SpdmVersion.V10, ct_exponent=3, flags=CapFlag.CERT), CTX),
    (Capabilities(version=SpdmVersion.V11, ct_exponent=14, flags=RSP_FLAGS), CTX),
    (
        Capabilities(
            ct_exponent=20, flags=RSP_FLAGS, data_transfer_size=0x1000, max_spdm_msg_size=0x1000
        ),
        CTX,
    ),
    (
        Capabilities(
            version=SpdmVersion.V13,
            flags=RSP_FLAGS | CapFlag.CHUNK | CapFlag.MEL | CapFlag.MULTI_KEY_NEG,
            data_transfer_size=42,
            max_spdm_msg_size=0x100000,
        ),
        CTX,
    ),
    (
        Algorithms(
            version=SpdmVersion.V10,
            measurement_specification_sel=1,
            measurement_hash_algo=MeasurementHashAlgo.RAW_BIT_STREAM_ONLY,
            ext_asym_sel=(b"\x03\x00\x05\x00",),
        ),
        CTX,
    ),
    (
        Algorithms(
            measurement_specification_sel=1,
            other_params_sel=OtherParams.OPAQUE_FMT1,
            measurement_hash_algo=MeasurementHashAlgo.SHA_384,
            base_asym_sel=BaseAsymAlgo.ECDSA_P384,
            base_hash_sel=BaseHashAlgo.SHA_384,
            alg_structs=SELECTED,
        ),
        CTX,
    ),
    (
        Algorithms(
            version=SpdmVersion.V13,
            other_params_sel=OtherParams.OPAQUE_FMT1 | OtherParams.MULTI_KEY_CONN,
            base_hash_sel=BaseHashAlgo.SHA_256,
            mel_specification_sel=1,
            alg_structs=(AlgStruct(AlgType.AEAD, 0), AlgStruct(AlgType.KEY_SCHEDULE, 1)),
        ),
        CTX,
    ),
    (Digests(slot_mask=0b101, digests=(DIGEST, blob(0xD2, H))), CTX),
    (
        Digests(
            version=SpdmVersion.V13, slot_mask=0b1, digests=(DIGEST,), supported_slot_mask=0b11
        ),
        CTX,
    ),
    (Digests(slot_mask=0, digests=()), CTX),
    (Certificate(slot_id=2, portion=b"\x30\x82" + blob(0xCC, 100), remainder_length=900), CTX),
    (Certificate(version=SpdmVersion.V13, portion=b"", certificate_info=1), CTX),
    (
        ChallengeAuth(
            slot_id=0,
            slot_mask=0b1,
            cert_chain_hash=DIGEST,
            nonce=NONCE,
            measurement_summary_hash=blob(0x33, H),
            opaque_data=b"opaque",
            signature=SIG,
        ),
        SUMMARY,
    ),
    (
        ChallengeAuth(
            version=SpdmVersion.V13,
            slot_id=0xF,
            cert_chain_hash=DIGEST,
            nonce=NONCE,
            requester_context=CONTEXT,
            signature=SIG,
        ),
        CTX,
    ),
    (
        ChallengeAuth(
            version=SpdmVersion.V11,
            slot_id=7,
            slot_mask=0xFF,
            basic_mut_auth_requested=True,
            cert_chain_hash=DIGEST,
            nonce=NONCE,
            signature=SIG,
        ),
        CTX,
    ),
    (Measurements(blocks=BLOCKS, nonce=NONCE, content_changed=2), CTX),
    (Measurements(total_count=4, nonce=NONCE), CTX),
    (
        Measurements(
            version=SpdmVersion.V13,
            slot_id=3,
            blocks=BLOCKS[:1],
            nonce=NONCE,
            opaque_data=b"op",
            requester_context=CONTEXT,
            signature=SIG,
        ),
        SIGNED,
    ),
    (
        KeyExchangeRsp(
            heartbeat_period=10,
            rsp_session_id=0xFFFF,
            mut_auth_requested=MutAuthRequest.WITH_ENCAP_REQUEST,
            req_slot_id=1,
            random_data=blob(0x66, 32),
            exchange_data=DHE_PUB,
            measurement_summary_hash=blob(0x44, H),
            opaque_data=SELECTED_SM.encode(),
            signature=SIG,
            responder_verify_data=blob(0x99, H),
        ),
        SUMMARY,
    ),
    (
        KeyExchangeRsp(rsp_session_id=2, random_data=NONCE, exchange_data=DHE_PUB, signature=SIG),
        CLEAR,
    ),
    (FinishRsp(), CTX),
    (FinishRsp(responder_verify_data=DIGEST), CLEAR),
    (HeartbeatAck(), CTX),
    (KeyUpdateAck(operation=KeyUpdateOp.UPDATE_ALL_KEYS, tag=9), CTX),
    (EndSessionAck(), CTX),
    (VendorDefinedResponse.pci_sig(PciProtocolId.IDE_KM, b"\x01\x00\x00"), CTX),
    (
        ErrorResponse(
            error_code=ErrorCode.RESPONSE_NOT_READY,
            extended=ResponseNotReadyData(10, RequestCode.GET_MEASUREMENTS, 7, 3),
        ),
        CTX,
    ),
    (ErrorResponse(error_code=ErrorCode.UNSUPPORTED_REQUEST, error_data=0xE6), CTX),
    (ErrorResponse(error_code=ErrorCode.VENDOR_DEFINED, extended=b"\x00\x01\x02"), CTX),
]


def direct_decoder(msg: Any, ctx: NegotiatedSizes) -> Callable[[bytes], Any]:
    """The class's own decode, with the sizes it needs taken from ``ctx``."""
    cls = type(msg)
    sized: dict[type, Callable[[bytes], Any]] = {
        Digests: lambda b: Digests.decode(b, hash_size=ctx.hash_size),
        ChallengeAuth: lambda b: ChallengeAuth.decode(
            b,
            hash_size=ctx.hash_size,
            signature_size=ctx.signature_size,
            measurement_summary=ctx.measurement_summary,
        ),
        Measurements: lambda b: Measurements.decode(
            b, signature_size=ctx.signature_size if ctx.measurement_signed else 0
        ),
        KeyExchange: lambda b: KeyExchange.decode(b, dhe_size=ctx.dhe_size),
        KeyExchangeRsp: lambda b: KeyExchangeRsp.decode(
            b,
            dhe_size=ctx.dhe_size,
            hash_size=ctx.hash_size,
            signature_size=ctx.signature_size,
            measurement_summary=ctx.measurement_summary,
            responder_verify_data=not ctx.handshake_in_the_clear,
        ),
        Finish: lambda b: Finish.decode(
            b, hash_size=ctx.hash_size, signature_size=ctx.req_signature_size
        ),
        FinishRsp: lambda b: FinishRsp.decode(
            b, hash_size=ctx.hash_size, responder_verify_data=ctx.handshake_in_the_clear
        ),
    }
    return sized.get(cls, cls.decode)


ALL_SAMPLES: list[tuple[Any, NegotiatedSizes, bool]] = [(m, CTX, True) for m in REQUESTS] + [
    (m, c, False) for m, c in RESPONSES
]


def sample_id(sample: tuple[Any, NegotiatedSizes, bool]) -> str:
    msg = sample[0]
    return f"{type(msg).__name__}-{int(msg.version):x}"


# --------------------------------------------------------------------------------------------
# Byte-exact layouts, written by hand from the wire diagrams
# --------------------------------------------------------------------------------------------


def test_get_version_is_four_bytes() -> None:
    assert GetVersion().encode() == hx("10 84 00 00")
    assert decode_request(hx("10 84 00 00")) == GetVersion()


def test_version_response_layout() -> None:
    msg = VersionResponse(entries=(SpdmVersion.V12.entry(), SpdmVersion.V13.entry()))
    assert msg.encode() == hx("10 04 00 00  00 02  00 12  00 13")
    assert VersionNumberEntry.from_int(0x1231) == VersionNumberEntry(1, 2, 3, 1)
    assert VersionNumberEntry(1, 2, 3, 1).to_int() == 0x1231
    assert VersionNumberEntry(1, 2).version == SpdmVersion.V12


def test_capabilities_12_layout() -> None:
    # CERT|CHAL|MEAS_SIG|ENCRYPT|MAC|KEY_EX|HBEAT|KEY_UPD = 0x62D6, CTExponent 20, 4 KiB, no CHUNK
    wire = hx("12 61 00 00  00 14 00 00  d6 62 00 00  00 10 00 00  00 10 00 00")
    msg = Capabilities(
        ct_exponent=20,
        flags=CapFlag.CERT
        | CapFlag.CHAL
        | CapFlag.MEAS_SIG
        | CapFlag.ENCRYPT
        | CapFlag.MAC
        | CapFlag.KEY_EX
        | CapFlag.HBEAT
        | CapFlag.KEY_UPD,
        data_transfer_size=4096,
        max_spdm_msg_size=4096,
    )
    assert msg.encode() == wire
    assert Capabilities.decode(wire) == msg
    assert decode_response(wire) == msg


def test_capabilities_10_and_11_layouts_are_shorter() -> None:
    assert GetCapabilities(version=0x10).encode() == hx("10 e1 00 00")
    assert GetCapabilities(version=0x11, ct_exponent=7, flags=CapFlag.CERT).encode() == hx(
        "11 e1 00 00  00 07 00 00  02 00 00 00"
    )
    rsp10 = hx("10 61 00 00  00 03 00 00  13 00 00 00")  # CACHE|CERT|MEAS_SIG
    assert Capabilities.decode(rsp10) == Capabilities(
        version=0x10, ct_exponent=3, flags=CapFlag.CACHE | CapFlag.CERT | CapFlag.MEAS_SIG
    )
    with pytest.raises(SpdmDecodeError, match="trailing"):
        Capabilities.decode(rsp10 + bytes(8))  # a 1.2 body under a 1.0 header


def test_get_capabilities_13_param1_asks_for_the_supported_algorithms_block() -> None:
    """DSP0274 1.3 GET_CAPABILITIES Param1 bit 0; reserved (ignored when read) before 1.3."""
    msg = GetCapabilities(
        version=0x13,
        flags=CapFlag.CERT | CapFlag.CHUNK,
        data_transfer_size=4096,
        max_spdm_msg_size=8192,
        supported_algorithms_requested=True,
    )
    wire = hx("13 e1 01 00  00 00 00 00  02 00 02 00  00 10 00 00  00 20 00 00")
    assert msg.encode() == wire
    assert GetCapabilities.decode(wire) == msg
    as_12 = GetCapabilities.decode(bytes([0x12]) + wire[1:])
    assert not as_12.supported_algorithms_requested
    with pytest.raises(LocalProtocolError, match=r"before SPDM 1\.3"):
        replace(msg, version=0x12)


def test_negotiate_algorithms_with_four_tables() -> None:
    wire = hx(
        "12 e3 04 00  30 00 01 02  90 00 00 00  03 00 00 00"  # Length 48, DMTF, OpaqueDataFmt1
        " 00 00 00 00 00 00 00 00 00 00 00 00  00 00 00 00"  # reserved, A=0, E=0, rsvd, MEL
        " 02 20 18 00  03 20 02 00  04 20 90 00  05 20 01 00"  # DHE, AEAD, ReqAsym, KeySchedule
    )
    msg = NegotiateAlgorithms(
        other_params=OtherParams.OPAQUE_FMT1,
        base_asym_algo=BaseAsymAlgo.ECDSA_P256 | BaseAsymAlgo.ECDSA_P384,
        base_hash_algo=BaseHashAlgo.SHA_256 | BaseHashAlgo.SHA_384,
        alg_structs=FOUR_TABLES,
    )
    assert msg.length == 48
    assert msg.encode() == wire
    assert NegotiateAlgorithms.decode(wire) == msg
    assert NegotiateAlgorithms.decode(wire).alg_structs[0].algorithms == DheGroup(0x18)


def test_algorithms_layout_and_sizes() -> None:
    wire = hx(
        "12 63 04 00  34 00 01 02  04 00 00 00  80 00 00 00  02 00 00 00"
        " 00 00 00 00 00 00 00 00 00 00 00  00  00 00 00 00"
        " 02 20 10 00  03 20 02 00  04 20 80 00  05 20 01 00"
    )
    msg = Algorithms.decode(wire)
    assert msg.length == 52
    assert msg.base_asym_sel == BaseAsymAlgo.ECDSA_P384
    assert msg.dhe_group == DheGroup.SECP384R1
    assert msg.aead_suite == AeadSuite.AES_256_GCM
    assert msg.req_base_asym_alg == BaseAsymAlgo.ECDSA_P384
    assert msg.key_schedule == KeySchedule.SPDM
    assert msg.encode() == wire
    sizes = NegotiatedSizes.from_algorithms(msg, handshake_in_the_clear=True)
    assert sizes == NegotiatedSizes(
        version=SpdmVersion.V12,
        hash_size=48,
        signature_size=96,
        dhe_size=96,
        req_signature_size=96,
        handshake_in_the_clear=True,
    )


def test_more_hand_written_layouts() -> None:
    assert GetCertificate(length=0x400).encode() == hx("12 82 00 00  00 00 00 04")
    assert KeyUpdate(operation=KeyUpdateOp.UPDATE_KEY, tag=5).encode() == hx("12 e9 01 05")
    assert EndSession(clear_negotiated_state=True).encode() == hx("12 ec 01 00")
    assert RespondIfReady(request_code=0xE0, token=7).encode() == hx("12 ff e0 07")
    rnr = ErrorResponse(
        error_code=ErrorCode.RESPONSE_NOT_READY,
        extended=ResponseNotReadyData(10, RequestCode.GET_MEASUREMENTS, 7, 3),
    )
    assert rnr.encode() == hx("12 7f 42 00  0a e0 07 03")
    assert rnr.extended.ready_after_us == 1024  # type: ignore[union-attr]
    assert rnr.extended.give_up_after_us == 3072  # type: ignore[union-attr]
    ide_km_query = VendorDefinedRequest.pci_sig(PciProtocolId.IDE_KM, b"\x00\x00\x00")
    assert ide_km_query.encode() == hx("12 fe 00 00  03 00  02  01 00  04 00  00 00 00 00")
    assert ide_km_query.pci_protocol_id == PciProtocolId.IDE_KM
    assert VendorDefinedRequest(standard_id=4, vendor_id=b"", payload=b"x").pci_protocol_id is None
    block = MeasurementBlock(1, DmtfMeasurementType.MUTABLE_FIRMWARE, blob(0xAB, 32))
    assert block.encode() == hx("01 01 23 00  01 20 00") + blob(0xAB, 32)
    raw = MeasurementBlock(0xFE, DmtfMeasurementType.DEVICE_MODE, b"\x01\x02", raw=True)
    assert raw.encode() == hx("fe 01 05 00  85 02 00 01 02")
    assert MeasurementBlock.decode(raw.encode()) == raw


def test_challenge_13_carries_requester_context() -> None:
    msg = Challenge(version=0x13, slot_id=0, nonce=NONCE, requester_context=CONTEXT)
    assert msg.encode() == hx("13 83 00 00") + NONCE + CONTEXT
    assert Challenge(nonce=NONCE).encode() == hx("12 83 00 00") + NONCE
    with pytest.raises(SpdmDecodeError, match="truncated in RequesterContext"):
        Challenge.decode(hx("13 83 00 00") + NONCE)


def test_get_measurements_layouts() -> None:
    assert GetMeasurements().encode() == hx("12 e0 00 ff")
    signed = GetMeasurements(operation=1, signature_requested=True, nonce=NONCE, slot_id=2)
    assert signed.encode() == hx("12 e0 01 01") + NONCE + b"\x02"
    v10 = GetMeasurements(version=0x10, operation=1, signature_requested=True, nonce=NONCE)
    assert v10.encode() == hx("10 e0 01 01") + NONCE
    # 1.3: the RequesterContext is there whether or not a signature is asked for
    assert GetMeasurements(version=0x13, requester_context=CONTEXT).encode() == (
        hx("13 e0 00 ff") + CONTEXT
    )


def test_measurements_layout() -> None:
    msg = Measurements(blocks=BLOCKS[:1], nonce=NONCE, opaque_data=b"\xaa")
    record = BLOCKS[0].encode()
    assert len(record) == 7 + H
    wire = hx("12 60 00 00  01") + len(record).to_bytes(3, "little") + record
    wire += NONCE + hx("01 00 aa")
    assert msg.encode() == wire
    assert Measurements.decode(wire) == msg
    with pytest.raises(SpdmDecodeError, match="trailing"):
        Measurements.decode(wire + SIG)  # unsigned: a signature is not expected
    signed = replace(msg, slot_id=1, signature=SIG).encode()
    assert signed[3] == 0x01
    assert Measurements.decode(signed, signature_size=S).signature == SIG


def test_key_exchange_layouts() -> None:
    req = KeyExchange(
        req_session_id=0x1234,
        random_data=blob(0x77, 32),
        exchange_data=DHE_PUB,
        opaque_data=b"\x01\x02",
    )
    assert req.encode() == hx("12 e4 00 00  34 12 00 00") + blob(0x77, 32) + DHE_PUB + hx(
        "02 00 01 02"
    )
    rsp = KeyExchangeRsp(
        rsp_session_id=0xABCD,
        random_data=blob(0x66, 32),
        exchange_data=DHE_PUB,
        signature=SIG,
        responder_verify_data=DIGEST,
    )
    wire = hx("12 64 00 00  cd ab 00 00") + blob(0x66, 32) + DHE_PUB + hx("00 00") + SIG + DIGEST
    assert rsp.encode() == wire
    assert decode_response(wire, CTX) == rsp
    # handshake in the clear: the same bytes end with 48 bytes too many
    with pytest.raises(SpdmDecodeError, match="trailing"):
        decode_response(wire, CLEAR)


def test_finish_layouts() -> None:
    assert Finish(requester_verify_data=DIGEST).encode() == hx("12 e5 00 00") + DIGEST
    signed = Finish(signature=SIG, req_slot_id=0xFF, requester_verify_data=DIGEST)
    assert signed.encode() == hx("12 e5 01 ff") + SIG + DIGEST
    assert FinishRsp().encode() == hx("12 65 00 00")
    assert decode_response(hx("12 65 00 00") + DIGEST, CLEAR).responder_verify_data == DIGEST


def test_cert_chain_container() -> None:
    certs = hx("30 03 02 01 01  30 81 01 05")
    chain = CertChain(root_hash=blob(0xAA, 32), certificates=certs)
    wire = hx("2d 00 00 00") + blob(0xAA, 32) + certs  # Length = 4 + 32 + 9
    assert chain.encode() == wire
    assert CertChain.decode(wire, hash_size=32) == chain
    assert chain.der_certificates() == (hx("30 03 02 01 01"), hx("30 81 01 05"))
    with pytest.raises(SpdmDecodeError, match="Length says 46"):
        CertChain.decode(hx("2e 00") + wire[2:], hash_size=32)
    with pytest.raises(SpdmDecodeError, match="no certificate"):
        CertChain.decode(hx("24 00 00 00") + blob(0xAA, 32), hash_size=32)
    with pytest.raises(SpdmDecodeError, match="not a DER SEQUENCE"):
        CertChain(root_hash=b"r", certificates=b"\x31\x00").der_certificates()
    with pytest.raises(SpdmDecodeError, match="truncated"):
        CertChain(root_hash=b"r", certificates=b"\x30\x05\x00").der_certificates()


def test_opaque_data_fmt1_version_negotiation() -> None:
    wire = hx("01 00 00 00  00 00 07 00  01 01 02 00 10 00 11 00")  # 1.0, 1.1; 1 pad byte
    assert SUPPORTED_SM.encode() == wire
    assert OpaqueSupportedVersions.decode(wire) == SUPPORTED_SM
    sel = hx("01 00 00 00  00 00 04 00  01 00 00 11")
    assert SELECTED_SM.encode() == sel
    assert OpaqueVersionSelection.decode(sel) == SELECTED_SM
    # another element (vendor-defined) before ours is skipped
    vendor = OpaqueElement(StandardId.PCI_SIG, b"\x99", vendor_id=b"\x01\x00")
    mixed = OpaqueDataFmt1((vendor, *SELECTED_SM.to_fmt1().elements)).encode()
    assert OpaqueVersionSelection.decode(mixed) == SELECTED_SM
    with pytest.raises(SpdmDecodeError, match="0 DMTF version selection"):
        OpaqueVersionSelection.decode(wire)
    with pytest.raises(SpdmDecodeError, match="AlignPadding"):
        OpaqueSupportedVersions.decode(wire[:-1])
    with pytest.raises(SpdmDecodeError, match="trailing"):
        OpaqueDataFmt1.decode(wire + bytes(4))


def test_size_helpers() -> None:
    assert hash_size(BaseHashAlgo.SHA_256) == 32
    assert hash_size(BaseHashAlgo.SHA_384) == 48
    assert hash_size(BaseHashAlgo.SHA3_512) == 64
    assert signature_size(BaseAsymAlgo.ECDSA_P256) == 64
    assert signature_size(BaseAsymAlgo.ECDSA_P384) == 96
    assert signature_size(BaseAsymAlgo.ECDSA_P521) == 132
    assert signature_size(BaseAsymAlgo.RSAPSS_3072) == 384
    assert signature_size(BaseAsymAlgo.EDDSA_ED448) == 114
    assert dhe_size(DheGroup.SECP256R1) == 64
    assert dhe_size(DheGroup.SECP384R1) == 96
    assert dhe_size(DheGroup.SECP521R1) == 132
    assert dhe_size(DheGroup.FFDHE_2048) == 256
    assert dhe_size(DheGroup.FFDHE_4096) == 512
    assert measurement_hash_size(MeasurementHashAlgo.RAW_BIT_STREAM_ONLY) == 0
    for bad in (0, BaseHashAlgo.SHA_256 | BaseHashAlgo.SHA_384, 0x80):
        with pytest.raises(LocalProtocolError):
            hash_size(bad)


def test_codes_cover_the_reference_tables() -> None:
    assert RequestCode.CHUNK_GET == 0x86 and ResponseCode.CHUNK_RESPONSE == 0x06
    assert RequestCode.GET_ENDPOINT_INFO == 0x87 and ResponseCode.ENDPOINT_INFO == 0x07
    assert RequestCode.GET_SUPPORTED_EVENT_TYPES == 0xE2
    assert RequestCode.GET_MEASUREMENT_EXTENSION_LOG == 0xEF
    assert {0x41, 0x42, 0x43, 0x44, 0x45, 0x11, 0xFF} <= {int(c) for c in ErrorCode}
    assert CapFlag.HANDSHAKE_IN_THE_CLEAR == 1 << 15 and CapFlag.ALIAS_CERT == 1 << 18
    assert MeasurementSummaryHashType.ALL == 0xFF


# --------------------------------------------------------------------------------------------
# Round trips, both directions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("msg", REQUESTS, ids=lambda m: f"{type(m).__name__}-{m.version:x}")
def test_request_round_trip(msg: Any) -> None:
    wire = msg.encode()
    assert peek_header(wire) == SpdmHeader(msg.version, msg.CODE, wire[2], wire[3])
    assert direct_decoder(msg, CTX)(wire) == msg
    assert decode_request(wire, CTX) == msg


@pytest.mark.parametrize(
    ("msg", "ctx"), RESPONSES, ids=[f"{type(m).__name__}-{m.version:x}" for m, _ in RESPONSES]
)
def test_response_round_trip(msg: Any, ctx: NegotiatedSizes) -> None:
    wire = msg.encode()
    assert direct_decoder(msg, ctx)(wire) == msg
    assert decode_response(wire, ctx) == msg


def test_requester_and_responder_back_to_back() -> None:
    """A whole VCA + authentication + session flow through both decoders."""
    ctx = NegotiatedSizes()
    req_caps = GetCapabilities(
        ct_exponent=12, flags=REQ_FLAGS, data_transfer_size=0x1000, max_spdm_msg_size=0x10000
    )
    neg = NegotiateAlgorithms(
        other_params=OtherParams.OPAQUE_FMT1,
        base_asym_algo=BaseAsymAlgo.ECDSA_P384,
        base_hash_algo=BaseHashAlgo.SHA_384,
        alg_structs=FOUR_TABLES,
    )
    alg = Algorithms(
        measurement_specification_sel=1,
        other_params_sel=OtherParams.OPAQUE_FMT1,
        measurement_hash_algo=MeasurementHashAlgo.SHA_384,
        base_asym_sel=BaseAsymAlgo.ECDSA_P384,
        base_hash_sel=BaseHashAlgo.SHA_384,
        alg_structs=SELECTED,
    )
    for request, response in [(GetVersion(), RESPONSES[0][0]), (req_caps, RESPONSES[3][0])]:
        assert decode_request(request.encode(), ctx) == request
        assert decode_response(response.encode(), ctx) == response
    assert decode_request(neg.encode(), ctx) == neg
    got = decode_response(alg.encode(), ctx)
    assert isinstance(got, Algorithms)
    ctx = NegotiatedSizes.from_algorithms(got)
    assert ctx == replace(CTX, version=SpdmVersion.V12)
    challenge = REQUESTS[10]
    assert decode_request(challenge.encode(), ctx) == challenge
    auth = RESPONSES[13][0]
    assert decode_response(auth.encode(), ctx.for_response_to(challenge)) == auth
    get_meas = REQUESTS[13]
    meas = Measurements(slot_id=3, blocks=BLOCKS, nonce=NONCE, signature=SIG)
    assert decode_response(meas.encode(), ctx.for_response_to(get_meas)) == meas
    key_ex = REQUESTS[17]
    key_ex_rsp = RESPONSES[19][0]
    assert decode_response(key_ex_rsp.encode(), ctx.for_response_to(key_ex)) == key_ex_rsp
    assert OpaqueSupportedVersions.decode(decode_request(key_ex.encode(), ctx).opaque_data) == (
        SUPPORTED_SM
    )
    assert ctx.for_response_to(GetDigests()) == ctx


# --------------------------------------------------------------------------------------------
# Decode errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ALL_SAMPLES, ids=sample_id)
def test_every_truncation_is_the_peers_error(sample: tuple[Any, NegotiatedSizes, bool]) -> None:
    msg, ctx, is_request = sample
    wire = msg.encode()
    decode = direct_decoder(msg, ctx)
    dispatch = decode_request if is_request else decode_response
    if isinstance(msg, ErrorResponse) and not isinstance(msg.extended, ResponseNotReadyData):
        wire = wire[:4]  # raw extended data has no length: any prefix >= 4 is an ERROR
    for cut in range(len(wire)):
        for fn in (decode, lambda b: dispatch(b, ctx)):
            with pytest.raises(SpdmDecodeError) as info:
                fn(wire[:cut])
            assert info.value.error_code in (ErrorCode.INVALID_REQUEST, ErrorCode.VERSION_MISMATCH)


@pytest.mark.parametrize(
    "sample", [s for s in ALL_SAMPLES if not isinstance(s[0], ErrorResponse)], ids=sample_id
)
def test_a_trailing_byte_is_the_peers_error(sample: tuple[Any, NegotiatedSizes, bool]) -> None:
    msg, ctx, _ = sample
    with pytest.raises(SpdmDecodeError) as info:
        direct_decoder(msg, ctx)(msg.encode() + b"\x00")
    assert info.value.error_code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("wire", "why", "code"),
    [
        (hx("15 84 00 00"), "SPDMVersion 0x15", ErrorCode.VERSION_MISMATCH),
        (hx("12 84 00 00"), "must be 0x10", ErrorCode.VERSION_MISMATCH),
        (hx("10 e8 00 00"), "HEARTBEAT does not exist in SPDM 1.0", ErrorCode.VERSION_MISMATCH),
        (hx("12 e6 00 00"), "0xe6 \\(PSK_EXCHANGE\\)", ErrorCode.UNSUPPORTED_REQUEST),
        (hx("12 04 00 00"), "0x04", ErrorCode.UNSUPPORTED_REQUEST),
        (hx("12 84"), "cannot hold", ErrorCode.INVALID_REQUEST),
        (
            hx("12 e5 00 00") + DIGEST,
            "needs the negotiated hash size",
            ErrorCode.UNEXPECTED_REQUEST,
        ),
        (hx("12 e9 00 01"), "operation 0x0 is a reserved", ErrorCode.INVALID_REQUEST),
        (hx("12 e9 04 01"), "operation 0x4 is a reserved", ErrorCode.INVALID_REQUEST),
        (hx("12 83 00 02") + NONCE, "MeasurementSummaryHashType 0x2", ErrorCode.INVALID_REQUEST),
        (hx("12 83 08 00") + NONCE, "not a slot", ErrorCode.INVALID_REQUEST),
        (hx("12 82 08 00 00 00 00 01"), "not a slot", ErrorCode.INVALID_REQUEST),
        (hx("12 e0 01 ff") + NONCE + b"\x09", "not a slot", ErrorCode.INVALID_REQUEST),
    ],
)
def test_request_errors_carry_the_answer(wire: bytes, why: str, code: ErrorCode) -> None:
    with pytest.raises(SpdmDecodeError, match=why) as info:
        decode_request(wire, NegotiatedSizes())
    assert info.value.error_code == code
    assert isinstance(info.value, PeerProtocolError)
    answer = info.value.error_response(SpdmVersion.V12)
    assert answer.encode()[:3] == bytes((0x12, 0x7F, code))


def test_unsupported_request_answer_names_the_code() -> None:
    with pytest.raises(SpdmDecodeError) as info:
        decode_request(hx("12 ed 00 00"))
    assert info.value.error_response(0x12).encode() == hx("12 7f 07 ed")


def test_the_negotiated_version_is_enforced_when_known() -> None:
    ctx = replace(CTX, version=SpdmVersion.V12)
    assert decode_request(GetVersion().encode(), ctx) == GetVersion()  # always 1.0
    assert decode_response(RESPONSES[0][0].encode(), ctx) == RESPONSES[0][0]
    for wire, dispatch in [
        (Heartbeat(version=0x13).encode(), decode_request),
        (Challenge(version=0x11, nonce=NONCE).encode(), decode_request),
        (HeartbeatAck(version=0x11).encode(), decode_response),
    ]:
        with pytest.raises(SpdmDecodeError, match=r"1\.2 was negotiated") as info:
            dispatch(wire, ctx)
        assert info.value.error_code == ErrorCode.VERSION_MISMATCH


def test_responses_before_algorithms_are_unexpected() -> None:
    for wire in (hx("12 01 00 01") + DIGEST, RESPONSES[13][0].encode()):
        with pytest.raises(SpdmDecodeError, match="not known") as info:
            decode_response(wire)
        assert info.value.error_code == ErrorCode.UNEXPECTED_REQUEST
    with pytest.raises(SpdmDecodeError, match="0x05 \\(CHUNK_SEND_ACK\\)") as info:
        decode_response(hx("12 05 00 00"), CTX)
    assert info.value.error_code == ErrorCode.INVALID_RESPONSE_CODE


def negotiate_wire() -> bytearray:
    return bytearray(REQUESTS[5].encode())


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda b: b.__setitem__(4, 47), "Length says 47"),
        (lambda b: b.__setitem__(4, 49), "Length says 49"),
        (lambda b: b.__setitem__(33, 0x10), "FixedAlgCount is 1"),
        (lambda b: b.__setitem__(33, 0x30), "FixedAlgCount is 3"),
        (lambda b: b.__setitem__(32, 0x07), "reserved AlgType 7"),
        (lambda b: b.__setitem__(36, 0x02), "AlgType repeated"),
        (lambda b: b.__setitem__(2, 5), "truncated in AlgStruct\\[4\\]"),
        (lambda b: b.__setitem__(2, 3), "trailing"),
    ],
)
def test_negotiate_algorithms_field_errors(mutate: Callable[[bytearray], None], why: str) -> None:
    wire = negotiate_wire()
    mutate(wire)
    with pytest.raises(SpdmDecodeError, match=why):
        NegotiateAlgorithms.decode(bytes(wire))


def test_negotiate_algorithms_limits() -> None:
    twenty_one = bytearray(negotiate_wire()[:32])
    twenty_one[28] = 21  # ExtAsymCount 21 (> 20), though 32 + 84 bytes fit the 128 limit
    twenty_one += bytes(84)
    twenty_one[2] = 0
    twenty_one[4:6] = len(twenty_one).to_bytes(2, "little")
    with pytest.raises(SpdmDecodeError, match="21 extended algorithms"):
        NegotiateAlgorithms.decode(bytes(twenty_one))
    long = bytearray(twenty_one)
    long[28], long[29] = 6, 20  # 26 entries: Length 136 > 128
    long += bytes(20)
    long[4:6] = len(long).to_bytes(2, "little")
    with pytest.raises(SpdmDecodeError, match=r"26 extended algorithms|exceeds 128"):
        NegotiateAlgorithms.decode(bytes(long))
    unsorted = NegotiateAlgorithms(
        version=0x11,
        base_asym_algo=BaseAsymAlgo.ECDSA_P384,
        base_hash_algo=BaseHashAlgo.SHA_384,
        alg_structs=(FOUR_TABLES[1], FOUR_TABLES[0]),
    ).encode()  # 1.1 allows any order; 1.2 wants ascending AlgType
    with pytest.raises(SpdmDecodeError, match="ascending"):
        NegotiateAlgorithms.decode(b"\x12" + unsorted[1:])


def test_algorithms_must_select_one() -> None:
    wire = bytearray(RESPONSES[6][0].encode())
    wire[12] = 0x90  # BaseAsymSel P-256 | P-384
    with pytest.raises(SpdmDecodeError, match="more than one"):
        Algorithms.decode(bytes(wire))
    wire = bytearray(RESPONSES[6][0].encode())
    wire[38] = 0x18  # DHE secp256r1 | secp384r1
    with pytest.raises(SpdmDecodeError, match="more than one"):
        Algorithms.decode(bytes(wire))


def test_capabilities_field_errors() -> None:
    good = bytearray(RESPONSES[3][0].encode())
    for offset, value, why in [
        (8, 0x18, "MEAS_CAP = 11b"),  # MEAS_NO_SIG | MEAS_SIG
        (12, 41, "below 42"),  # DataTransferSize 41 (and MaxSPDMmsgSize 4096)
        (17, 0x20, "must equal DataTransferSize"),  # Max 0x2000 != DTS without CHUNK
    ]:
        wire = bytearray(good)
        wire[offset] = value
        if offset == 12:
            wire[13] = 0
        with pytest.raises(SpdmDecodeError, match=why):
            Capabilities.decode(bytes(wire))
    psk = bytearray(good)
    psk[9] |= 0x0C  # PSK_CAP = 11b
    with pytest.raises(SpdmDecodeError, match="PSK_CAP = 11b"):
        Capabilities.decode(bytes(psk))
    req = bytearray(REQUESTS[3].encode())
    req[9] |= 0x08  # PSK_CAP = 10b is reserved for a requester
    with pytest.raises(SpdmDecodeError, match="PSK_CAP = 10b"):
        GetCapabilities.decode(bytes(req))


def test_reserved_fields_are_ignored_when_read() -> None:
    """DSP0274 conventions: reserved fields are written 0 and ignored when read."""
    clean = RESPONSES[3][0]
    dirty = bytearray(clean.encode())
    dirty[2] = dirty[3] = 0x55  # Param1/Param2 reserved
    dirty[4] = dirty[6] = dirty[7] = 0xFF  # reserved bytes around CTExponent
    dirty[11] |= 0xC0  # Flags bits 30, 31 (undefined)
    assert Capabilities.decode(bytes(dirty)) == clean
    assert Capabilities.decode(bytes(dirty)).encode() == clean.encode()
    # requester-only: MEAS_CAP and CACHE are reserved in GET_CAPABILITIES
    req = REQUESTS[3]
    dirty = bytearray(req.encode())
    dirty[8] |= 0x19
    assert GetCapabilities.decode(bytes(dirty)) == req
    # the slot nibble's upper half, and ChallengeAuth's reserved Param1 bits in 1.2
    assert GetCertificate.decode(hx("12 82 f2 00 00 00 00 04")).slot_id == 2
    auth = RESPONSES[13][0]
    wire = bytearray(auth.encode())
    wire[2] |= 0xF0  # [6:4] reserved, [7] BasicMutAuthReq is reserved from 1.2 on
    assert (
        ChallengeAuth.decode(bytes(wire), hash_size=H, signature_size=S, measurement_summary=True)
        == auth
    )


def test_measurement_record_errors() -> None:
    good = RESPONSES[16][0].encode()
    wire = bytearray(good)
    wire[4] = 2  # NumberOfBlocks 2, record holds 3
    with pytest.raises(SpdmDecodeError, match="NumberOfBlocks 2, record has 3"):
        Measurements.decode(bytes(wire))
    wire = bytearray(good)
    wire[9] = 0x02  # first block's MeasurementSpecification
    with pytest.raises(SpdmDecodeError, match="not DMTF"):
        Measurements.decode(bytes(wire))
    wire = bytearray(good)
    wire[10] += 1  # first block's MeasurementSize one too big
    with pytest.raises(SpdmDecodeError):
        Measurements.decode(bytes(wire))
    wire = bytearray(good)
    wire[8] = 0  # block index 0 is reserved
    with pytest.raises(SpdmDecodeError, match="index 0"):
        Measurements.decode(bytes(wire))


def test_other_length_and_value_errors() -> None:
    with pytest.raises(SpdmDecodeError, match="VersionNumberEntryCount is 0"):
        VersionResponse.decode(hx("10 04 00 00 00 00"))
    with pytest.raises(SpdmDecodeError, match="truncated in VersionNumberEntry\\[1\\]"):
        VersionResponse.decode(hx("10 04 00 00 00 02 00 12"))
    with pytest.raises(SpdmDecodeError, match="truncated in CertChain portion"):
        Certificate.decode(hx("12 02 00 00 05 00 00 00 01 02"))
    with pytest.raises(SpdmDecodeError, match="ResponseNotReady extended data is 4"):
        ErrorResponse.decode(hx("12 7f 42 00 01 02 03"))
    long_opaque = (1025).to_bytes(2, "little") + bytes(1025)
    with pytest.raises(SpdmDecodeError, match="more than 1024"):
        KeyExchange.decode(
            hx("12 e4 00 00 01 00 00 00") + NONCE + DHE_PUB + long_opaque, dhe_size=D
        )
    rsp = bytearray(RESPONSES[19][0].encode())
    rsp[6] = 0x03  # MutAuthRequested: two bits
    with pytest.raises(SpdmDecodeError, match="several bits"):
        decode_response(bytes(rsp), SUMMARY)
    with pytest.raises(SpdmDecodeError, match="no requester signature"):
        Finish.decode(hx("12 e5 01 00") + DIGEST, hash_size=H)
    with pytest.raises(SpdmDecodeError, match="provisioned slots"):
        Digests.decode(hx("13 01 01 02") + DIGEST, hash_size=H)
    with pytest.raises(SpdmDecodeError, match="expected DIGESTS") as info:
        Digests.decode(hx("12 02 00 00"), hash_size=H)
    assert info.value.error_code == ErrorCode.INVALID_RESPONSE_CODE
    with pytest.raises(SpdmDecodeError, match="4 bytes"):
        SpdmHeader.decode(hx("10 84 00 00 00"))


# --------------------------------------------------------------------------------------------
# Building something illegal is this side's error
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: GetVersion(version=0x12),
        lambda: Heartbeat(version=0x10),
        lambda: GetDigests(version=0x14),
        lambda: GetCapabilities(flags=CapFlag.CERT, data_transfer_size=41, max_spdm_msg_size=41),
        lambda: GetCapabilities(version=0x10, flags=CapFlag.CERT),
        lambda: GetCapabilities(version=0x11, flags=CapFlag.CHUNK),
        lambda: Capabilities(version=0x11, data_transfer_size=64),
        lambda: Capabilities(
            version=0x12, flags=CapFlag.MEL, data_transfer_size=64, max_spdm_msg_size=64
        ),
        lambda: Challenge(nonce=b"short"),
        lambda: Challenge(nonce=NONCE, requester_context=CONTEXT),  # 1.2 has none
        lambda: Challenge(version=0x13, nonce=NONCE),  # 1.3 needs one
        lambda: Challenge(nonce=NONCE, measurement_summary_hash_type=2),
        lambda: Challenge(nonce=NONCE, slot_id=8),
        lambda: GetMeasurements(nonce=NONCE),  # a nonce without a signature request
        lambda: GetMeasurements(version=0x11, raw_bit_stream_requested=True),
        lambda: GetCertificate(length=0x10000),
        lambda: KeyUpdate(operation=0),
        lambda: KeyUpdate(operation=1, tag=256),
        lambda: KeyExchange(req_session_id=1, random_data=NONCE, exchange_data=b""),
        lambda: KeyExchange(
            version=0x11,
            req_session_id=1,
            session_policy=1,
            random_data=NONCE,
            exchange_data=DHE_PUB,
        ),
        lambda: KeyExchangeRsp(
            rsp_session_id=1,
            mut_auth_requested=3,
            random_data=NONCE,
            exchange_data=DHE_PUB,
            signature=SIG,
        ),
        lambda: ChallengeAuth(
            cert_chain_hash=DIGEST, nonce=NONCE, signature=SIG, opaque_data=bytes(1025)
        ),
        lambda: ChallengeAuth(
            cert_chain_hash=DIGEST, nonce=NONCE, signature=SIG, measurement_summary_hash=b"x"
        ),
        lambda: Digests(slot_mask=0b11, digests=(DIGEST,)),
        lambda: Algorithms(base_hash_sel=BaseHashAlgo.SHA_256 | BaseHashAlgo.SHA_384),
        lambda: Algorithms(alg_structs=(AlgStruct(AlgType.DHE, 0x18),)),
        lambda: AlgStruct(7, 1),
        lambda: NegotiateAlgorithms(base_asym_algo=1, base_hash_algo=1, mel_specification=1),
        lambda: NegotiateAlgorithms(
            base_asym_algo=1, base_hash_algo=1, alg_structs=(FOUR_TABLES[1], FOUR_TABLES[0])
        ),
        lambda: NegotiateAlgorithms(base_asym_algo=1, base_hash_algo=1, ext_asym=(bytes(4),) * 21),
        lambda: Measurements(nonce=NONCE, slot_id=1),  # slot without a signature
        lambda: MeasurementBlock(0, 1, b""),
        lambda: Finish(requester_verify_data=DIGEST, req_slot_id=1),
        lambda: ErrorResponse(error_code=ErrorCode.RESPONSE_NOT_READY),
        lambda: ErrorResponse(error_code=1, extended=ResponseNotReadyData(1, 2, 3, 4)),
        lambda: VersionResponse(entries=()),
        lambda: VersionNumberEntry(16, 0),
        lambda: VendorDefinedRequest(standard_id=3, vendor_id=bytes(256), payload=b""),
        lambda: CertChain(root_hash=b"", certificates=b"\x30\x00"),
        lambda: OpaqueSupportedVersions(()),
        lambda: SpdmHeader(0x12, 0x100),
        lambda: NegotiatedSizes(hash_size=-1),
    ],
)
def test_building_illegal_messages_is_a_local_error(build: Callable[[], Any]) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_decoders_reject_meaningless_sizes_locally() -> None:
    with pytest.raises(LocalProtocolError):
        Digests.decode(hx("12 01 00 00"), hash_size=0)
    with pytest.raises(LocalProtocolError):
        KeyExchange.decode(hx("12 e4 00 00"), dhe_size=-1)


# --------------------------------------------------------------------------------------------
# Fuzzing: only SpdmDecodeError may leave a decoder, and what decodes re-encodes stably
# --------------------------------------------------------------------------------------------

CONTEXTS = [
    NegotiatedSizes(),
    CTX,
    SUMMARY,
    SIGNED,
    CLEAR,
    replace(CTX, hash_size=1, dhe_size=1),
    replace(SUMMARY, version=SpdmVersion.V13),
]
DECODERS: list[Callable[[bytes], Any]] = [
    *(lambda b, c=c: decode_request(b, c) for c in CONTEXTS),
    *(lambda b, c=c: decode_response(b, c) for c in CONTEXTS),
    *(direct_decoder(m, c) for m, c, _ in ALL_SAMPLES),
    lambda b: CertChain.decode(b, hash_size=2),
    OpaqueDataFmt1.decode,
    OpaqueSupportedVersions.decode,
    OpaqueVersionSelection.decode,
    MeasurementBlock.decode,
    ResponseNotReadyData.decode,
    SpdmHeader.decode,
    peek_header,
]
CODES = [int(c) for c in RequestCode] + [int(c) for c in ResponseCode] + [0x00, 0x80]


def check_decoder(decode: Callable[[bytes], Any], data: bytes) -> None:
    try:
        obj = decode(data)
    except SpdmDecodeError:
        return
    if hasattr(obj, "encode"):
        assert decode(obj.encode()) == obj  # decoding normalises: a second pass changes nothing
    if isinstance(obj, CertChain):
        try:
            obj.der_certificates()
        except SpdmDecodeError:
            pass


spdm_like = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda v, c, p, body: bytes((v, c)) + p + body,
        st.sampled_from([0x10, 0x11, 0x12, 0x13, 0x14]),
        st.sampled_from(CODES),
        st.binary(min_size=2, max_size=2),
        st.binary(max_size=300),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(range(len(DECODERS))), spdm_like)
def test_random_bytes_only_raise_decode_errors(index: int, data: bytes) -> None:
    check_decoder(DECODERS[index], data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(CONTEXTS))), spdm_like)
def test_dispatchers_on_random_bytes(index: int, data: bytes) -> None:
    check_decoder(lambda b: decode_request(b, CONTEXTS[index]), data)
    check_decoder(lambda b: decode_response(b, CONTEXTS[index]), data)


mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 10_000), st.integers(1, 255)
)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(range(len(ALL_SAMPLES))), st.lists(mutation, min_size=1, max_size=3))
def test_mutated_encodings_only_raise_decode_errors(
    index: int, mutations: list[tuple[str, int, int]]
) -> None:
    msg, ctx, is_request = ALL_SAMPLES[index]
    wire = bytearray(msg.encode())
    for kind, pos, value in mutations:
        at = pos % (len(wire) + 1)
        if kind == "insert":
            wire.insert(at, value)
        elif wire and kind == "flip":
            wire[at % len(wire)] ^= value
        elif wire:
            del wire[at % len(wire)]
    data = bytes(wire)
    check_decoder(direct_decoder(msg, ctx), data)
    dispatch = decode_request if is_request else decode_response
    check_decoder(lambda b: dispatch(b, ctx), data)


@given(
    st.integers(0, 0xFF).map(lambda i: max(i, 1)),
    st.integers(0, 0x7F),
    st.binary(max_size=200),
    st.booleans(),
)
def test_measurement_block_round_trip(index: int, kind: int, value: bytes, raw: bool) -> None:
    block = MeasurementBlock(index, kind, value, raw)
    assert MeasurementBlock.decode(block.encode()) == block


@given(st.integers(1, 5), st.binary(min_size=1, max_size=64))
def test_opaque_elements_round_trip_with_padding(n: int, data: bytes) -> None:
    opaque = OpaqueDataFmt1(tuple(OpaqueElement(i, data[: i + 1]) for i in range(n)))
    wire = opaque.encode()
    assert len(wire) % 4 == 0
    assert OpaqueDataFmt1.decode(wire) == opaque
