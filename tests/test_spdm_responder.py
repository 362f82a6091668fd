"""The device firmware's SPDM responder at 1.2 and 1.3, driven in memory by a minimal requester
built from the codec (so the 1.3 layouts and transcripts are checked independently of
hil.host), with the clauses each expectation rests on."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import pytest

from hil.codec import ide_km as K
from hil.codec import spdm as S
from hil.codec import tdisp as T
from hil.codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from hil.codec.secured import SecuredSession
from hil.codec.spdm_crypto import (
    SHA384,
    AeadAlg,
    DheGroup,
    DheKeyPair,
    KeySchedule,
    SigningOperation,
    verify,
)
from hil.fake import FakeConfigSpace
from hil.firmware import Dsm

V12, V13 = S.SpdmVersion.V12, S.SpdmVersion.V13
REQ_CAPS = (
    S.CapFlag.CERT
    | S.CapFlag.CHAL
    | S.CapFlag.ENCRYPT
    | S.CapFlag.MAC
    | S.CapFlag.KEY_EX
    | S.CapFlag.HBEAT
    | S.CapFlag.KEY_UPD
)
H = SHA384.size
SIG = 96  # ECDSA P-384
D = 96  # secp384r1


def run(coro):
    return asyncio.run(coro)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Session:
    session_id: int
    secured: SecuredSession
    heartbeat_period: int


class Peer:
    """Just enough of a requester: raw requests in the clear and in sessions, the transcripts
    a requester keeps, and signature checks against the device's leaf key."""

    def __init__(self, dsm: Dsm, version: int = V13) -> None:
        self.dsm = dsm
        self.version = version
        self.vca = b""
        self.m1 = b""
        self.l1 = b""

    @property
    def leaf_key(self):
        return self.dsm.identity.leaf.public_key()

    @property
    def chain(self) -> bytes:
        return self.dsm.identity.spdm_chain(SHA384)

    def send(self, message: S.Request | bytes) -> bytes:
        raw = message if isinstance(message, bytes) else message.encode()
        rsp = run(self.dsm.handle(DataObject(PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM, raw)))
        assert rsp is not None, "every CMA/SPDM request gets an answer"
        return rsp.payload

    def error(self, message: S.Request | bytes) -> S.ErrorResponse:
        rsp = S.ErrorResponse.decode(self.send(message))
        return rsp

    def connect(
        self, caps: int = REQ_CAPS, data_transfer_size: int = 4096, fmt1: bool = True
    ) -> S.Algorithms:
        raw = S.GetVersion().encode()
        ver = self.send(raw)
        self.vca = raw + ver
        caps_req = S.GetCapabilities(
            version=self.version,
            ct_exponent=10,
            flags=caps,
            data_transfer_size=data_transfer_size,
            max_spdm_msg_size=data_transfer_size,
        ).encode()
        caps_rsp = self.send(caps_req)
        assert caps_rsp[1] == S.ResponseCode.CAPABILITIES, caps_rsp.hex()
        self.vca += caps_req + caps_rsp
        neg = S.NegotiateAlgorithms(
            version=self.version,
            other_params=S.OtherParams.OPAQUE_FMT1 if fmt1 else 0,
            base_asym_algo=S.BaseAsymAlgo.ECDSA_P384,
            base_hash_algo=S.BaseHashAlgo.SHA_384,
            alg_structs=(
                S.AlgStruct(S.AlgType.DHE, S.DheGroup.SECP384R1),
                S.AlgStruct(S.AlgType.AEAD, S.AeadSuite.AES_256_GCM),
                S.AlgStruct(S.AlgType.REQ_BASE_ASYM_ALG, 0),
                S.AlgStruct(S.AlgType.KEY_SCHEDULE, S.KeySchedule.SPDM),
            ),
        ).encode()
        alg = self.send(neg)
        self.vca += neg + alg
        self.m1 = self.l1 = self.vca
        return S.Algorithms.decode(alg)

    def check(self, operation: str, transcript: bytes, signature: bytes) -> None:
        digest = SHA384.digest(transcript)
        assert verify(self.leaf_key, self.version, operation, digest, SHA384, signature)

    # -- sessions -------------------------------------------------------------------------------
    def key_exchange(
        self, secured_versions: tuple[tuple[int, int], ...] = ((1, 1), (1, 2))
    ) -> tuple[Session, S.KeyExchangeRsp]:
        dhe = DheKeyPair.generate(DheGroup.SECP384R1)
        versions = tuple(S.VersionNumberEntry(*v) for v in secured_versions)
        raw_req = S.KeyExchange(
            version=self.version,
            req_session_id=0xB00C,
            random_data=os.urandom(32),
            exchange_data=dhe.public_bytes(),
            opaque_data=S.OpaqueSupportedVersions(versions).encode(),
        ).encode()
        raw_rsp = self.send(raw_req)
        rsp = S.KeyExchangeRsp.decode(
            raw_rsp, dhe_size=D, hash_size=H, signature_size=SIG, measurement_summary=False
        )
        assert rsp.version == self.version
        ct = SHA384.digest(self.chain)
        signed = self.vca + ct + raw_req + raw_rsp[: -(SIG + H)]
        self.check(SigningOperation.KEY_EXCHANGE_RSP, signed, rsp.signature)
        th1 = SHA384.digest(signed + rsp.signature)
        schedule = KeySchedule(self.version, SHA384, AeadAlg.AES_256_GCM)
        hs = schedule.handshake(dhe.shared_secret(rsp.exchange_data), th1)
        assert schedule.check_verify_data(hs.response_finished_key, th1, rsp.responder_verify_data)
        session_id = rsp.rsp_session_id << 16 | 0xB00C
        secured = SecuredSession(session_id, schedule, hs, requester=True)
        session = Session(session_id, secured, rsp.heartbeat_period)
        transcript = self.vca + ct + raw_req + raw_rsp
        header = S.Finish(version=self.version, requester_verify_data=bytes(H)).encode()[:-H]
        finish = S.Finish(
            version=self.version,
            requester_verify_data=schedule.verify_data(
                hs.request_finished_key, SHA384.digest(transcript + header)
            ),
        ).encode()
        finish_rsp = self.secured(session, finish)
        assert finish_rsp == S.FinishRsp(version=self.version).encode()
        secured.enter_data_phase(SHA384.digest(transcript + finish + finish_rsp))
        return session, rsp

    def secured(self, session: Session, message: S.Request | bytes) -> bytes | None:
        raw = message if isinstance(message, bytes) else message.encode()
        sealed = session.secured.seal(raw)
        obj = DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, sealed)
        rsp = run(self.dsm.handle(obj))
        return None if rsp is None else session.secured.open(rsp.payload)


def _dsm(**kw) -> Dsm:
    return Dsm(hdl_build="unit", **kw)


# -- versions (DSP0274 1.3, "GET_VERSION request and VERSION response messages") --------------
def test_version_lists_1_2_and_1_3_and_the_first_get_capabilities_selects() -> None:
    peer = Peer(_dsm(), V13)
    ver = S.VersionResponse.decode(peer.send(S.GetVersion()))
    assert [e.version for e in ver.entries] == [V12, V13]
    alg = peer.connect()
    assert alg.version == V13 and peer.dsm.spdm.version == V13
    # After selection every request carries 1.3; 1.2 is a mismatch answered at 1.3.
    err = peer.error(S.GetDigests(version=V12))
    assert (err.version, err.error_code) == (V13, S.ErrorCode.VERSION_MISMATCH)


def test_a_version_not_offered_is_a_mismatch_answered_at_1_0() -> None:
    """Validator 2.2.3: before a version is selected the ERROR carries 0x10 (the GET_VERSION
    clause's rule for an invalid GET_VERSION; no other version is common yet)."""
    peer = Peer(_dsm())
    peer.send(S.GetVersion())
    for version in (0x11, 0x14):
        raw = bytearray(
            S.GetCapabilities(
                version=V12, flags=REQ_CAPS, data_transfer_size=4096, max_spdm_msg_size=4096
            ).encode()
        )
        raw[0] = version
        err = peer.error(bytes(raw))
        assert (err.version, err.error_code, err.error_data) == (
            0x10,
            S.ErrorCode.VERSION_MISMATCH,
            0,
        )
    # An offered version whose request is otherwise invalid: the ERROR is at that version.
    good = S.GetCapabilities(
        version=V13, flags=REQ_CAPS, data_transfer_size=4096, max_spdm_msg_size=4096
    )
    err = peer.error(good.encode()[:-8] + (10).to_bytes(4, "little") * 2)  # DTS 10 < 42
    assert (err.version, err.error_code) == (V13, S.ErrorCode.INVALID_REQUEST)


def test_a_1_2_only_responder_refuses_1_3() -> None:
    peer = Peer(_dsm(spdm_versions=(V12,)), V13)
    ver = S.VersionResponse.decode(peer.send(S.GetVersion()))
    assert [e.version for e in ver.entries] == [V12]
    caps = S.GetCapabilities(
        version=V13, flags=REQ_CAPS, data_transfer_size=4096, max_spdm_msg_size=4096
    )
    assert peer.error(caps).error_code == S.ErrorCode.VERSION_MISMATCH
    Peer(peer.dsm, V12).connect()  # and 1.2 still works


def test_supported_algorithms_block_without_chunk_is_invalid() -> None:
    """DSP0274 1.3 GET_CAPABILITIES Param1 bit 0 towards a responder without CHUNK_CAP."""
    peer = Peer(_dsm())
    peer.send(S.GetVersion())
    caps = S.GetCapabilities(
        version=V13,
        flags=REQ_CAPS | S.CapFlag.CHUNK,
        data_transfer_size=4096,
        max_spdm_msg_size=8192,
        supported_algorithms_requested=True,
    )
    assert peer.error(caps).error_code == S.ErrorCode.INVALID_REQUEST


# -- SessionRequired (Table 6) ----------------------------------------------------------------
@pytest.mark.parametrize(
    "request_",
    [
        S.Finish(version=V13, requester_verify_data=bytes(H)),
        S.Heartbeat(version=V13),
        S.KeyUpdate(version=V13, operation=S.KeyUpdateOp.UPDATE_KEY, tag=1),
        S.EndSession(version=V13),
    ],
    ids=["FINISH", "HEARTBEAT", "KEY_UPDATE", "END_SESSION"],
)
def test_session_only_requests_outside_a_session_get_session_required(request_) -> None:
    """Validator 9.11.4, 12.4.4, 13.5.4, 16.4.4."""
    peer = Peer(_dsm())
    peer.send(S.GetVersion())
    # Before the connection is negotiated they are out of order first.
    assert peer.error(request_).error_code == S.ErrorCode.UNEXPECTED_REQUEST
    peer.connect()
    err = peer.error(request_)
    assert (err.version, err.error_code, err.error_data) == (
        V13,
        S.ErrorCode.SESSION_REQUIRED,
        0,
    )


# -- measurements -------------------------------------------------------------------------------
def test_an_invalid_index_or_slot_gets_invalid_request() -> None:
    """Validator 7.4.2: the index is not measured / the signing slot holds no key."""
    peer = Peer(_dsm(), V12)
    peer.connect()
    ctx = b""
    for op, slot in ((7, 0), (1, 1), (1, 7)):
        req = S.GetMeasurements(
            version=V12,
            operation=op,
            signature_requested=True,
            nonce=os.urandom(32),
            slot_id=slot,
            requester_context=ctx,
        )
        err = peer.error(req)
        assert (err.error_code, err.error_data) == (S.ErrorCode.INVALID_REQUEST, 0)
    # A refused GET_MEASUREMENTS leaves no trace in L1: the next signature covers VCA and
    # the exchange it answers only (libspdm's requester starts L1 again on ERROR too).
    peer.send(S.GetMeasurements(version=V12, operation=1))
    peer.error(S.GetMeasurements(version=V12, operation=9))
    req = S.GetMeasurements(
        version=V12, operation=2, signature_requested=True, nonce=os.urandom(32)
    ).encode()
    raw = peer.send(req)
    rsp = S.Measurements.decode(raw, signature_size=SIG)
    peer.check(SigningOperation.MEASUREMENTS, peer.vca + req + raw[:-SIG], rsp.signature)


def test_1_3_measurements_echo_the_context_and_sign_l1() -> None:
    peer = Peer(_dsm(), V13)
    peer.connect()
    l1 = peer.vca
    for signed in (False, True):
        ctx = os.urandom(8)
        req = S.GetMeasurements(
            version=V13,
            operation=S.MEASUREMENT_OP_ALL,
            signature_requested=signed,
            nonce=os.urandom(32) if signed else b"",
            requester_context=ctx,
        ).encode()
        raw = peer.send(req)
        rsp = S.Measurements.decode(raw, signature_size=SIG if signed else 0)
        assert rsp.version == V13 and rsp.requester_context == ctx
        if signed:
            peer.check(SigningOperation.MEASUREMENTS, l1 + req + raw[:-SIG], rsp.signature)
        l1 += req + raw
    # 1.3 without RequesterContext is truncated: InvalidRequest.
    short = S.GetMeasurements(version=V12, operation=1).encode()
    assert peer.error(bytes([V13]) + short[1:]).error_code == S.ErrorCode.INVALID_REQUEST


# -- challenge and M1 ---------------------------------------------------------------------------
def test_1_3_challenge_echoes_the_context_and_m1_skips_what_reset_it() -> None:
    """M1 = VCA || B || C; a GET_MEASUREMENTS before any CHALLENGE completed resets B (DSP0274
    M1/M2 rules), a GET_DIGESTS starts B again."""
    peer = Peer(_dsm(), V13)
    peer.connect()
    digests = S.GetDigests(version=V13).encode()
    peer.send(digests)
    peer.send(S.GetMeasurements(version=V13, operation=1, requester_context=bytes(8)))
    cert_req = S.GetCertificate(version=V13, offset=0, length=64).encode()
    cert_rsp = peer.send(cert_req)
    ctx = os.urandom(8)
    chal = S.Challenge(version=V13, nonce=os.urandom(32), requester_context=ctx).encode()
    raw = peer.send(chal)
    auth = S.ChallengeAuth.decode(raw, hash_size=H, signature_size=SIG, measurement_summary=False)
    assert auth.requester_context == ctx and auth.slot_mask == 0x01
    # B after the reset: the GET_CERTIFICATE only (the DIGESTS went with the reset).
    m1 = peer.vca + cert_req + cert_rsp + chal + raw[:-SIG]
    peer.check(SigningOperation.CHALLENGE_AUTH, m1, auth.signature)
    # After a completed CHALLENGE the same requests no longer reset M1.
    dig_rsp = peer.send(digests)
    peer.send(S.GetMeasurements(version=V13, operation=1, requester_context=bytes(8)))
    raw = peer.send(chal)
    auth = S.ChallengeAuth.decode(raw, hash_size=H, signature_size=SIG, measurement_summary=False)
    peer.check(
        SigningOperation.CHALLENGE_AUTH,
        peer.vca + digests + dig_rsp + chal + raw[:-SIG],
        auth.signature,
    )


def test_1_3_digests_and_certificate_slot_size() -> None:
    peer = Peer(_dsm(), V13)
    peer.connect()
    dig = S.Digests.decode(peer.send(S.GetDigests(version=V13)), hash_size=H)
    assert (dig.slot_mask, dig.supported_slot_mask) == (0x01, 0x01)
    rsp = S.Certificate.decode(
        peer.send(S.GetCertificate(version=V13, length=0, slot_size_requested=True))
    )
    assert (rsp.portion, rsp.remainder_length) == (b"", len(peer.chain))
    # Length 0: no portion, RemainderLength the chain's actual size (wherever Offset points).
    rsp = S.Certificate.decode(peer.send(S.GetCertificate(version=V13, offset=100, length=0)))
    assert (rsp.portion, rsp.remainder_length) == (b"", len(peer.chain))


def test_a_small_data_transfer_size_cuts_portions_and_refuses_larger_responses() -> None:
    """DSP0274 1.3 CAPABILITIES: no response beyond the requester's MaxSPDMmsgSize
    (= DataTransferSize without CHUNK); a CERTIFICATE portion is cut to fit instead."""
    peer = Peer(_dsm(), V12)
    peer.connect(data_transfer_size=64)
    cert = S.Certificate.decode(peer.send(S.GetCertificate(version=V12, length=1024)))
    assert len(cert.portion) == 64 - 8
    measurements = S.GetMeasurements(version=V12, operation=S.MEASUREMENT_OP_ALL)
    err = peer.error(measurements)
    assert err.error_code == S.ErrorCode.RESPONSE_TOO_LARGE
    assert int.from_bytes(err.extended, "little") > 64


# -- sessions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [V12, V13])
def test_a_session_at_each_version(version: int) -> None:
    peer = Peer(_dsm(), version)
    peer.connect()
    session, rsp = peer.key_exchange()
    # Both sides set HBEAT_CAP: a nonzero HeartbeatPeriod (libspdm refuses HEARTBEAT on 0).
    assert rsp.heartbeat_period > 0
    # DSP0277 version: the most preferred of 1.2, 1.1 the requester lists.
    selected = S.OpaqueVersionSelection.decode(rsp.opaque_data).version
    assert (selected.major, selected.minor) == (1, 2)
    ack = peer.secured(session, S.Heartbeat(version=version))
    assert ack == S.HeartbeatAck(version=version).encode()
    # Digests and certificates are served in the application phase (Table 6) ...
    assert peer.secured(session, S.GetDigests(version=version))[1] == S.ResponseCode.DIGESTS
    # ... CHALLENGE is not.
    chal = S.Challenge(
        version=version,
        nonce=bytes(32),
        requester_context=bytes(8) if version >= V13 else b"",
    )
    err = S.ErrorResponse.decode(peer.secured(session, chal))
    assert (err.version, err.error_code) == (version, S.ErrorCode.UNEXPECTED_REQUEST)
    end = peer.secured(session, S.EndSession(version=version))
    assert end == S.EndSessionAck(version=version).encode()
    assert not peer.dsm.spdm.sessions


def test_no_heartbeat_cap_no_heartbeat_period_and_secured_version_fallback() -> None:
    peer = Peer(_dsm(), V13)
    peer.connect(caps=REQ_CAPS & ~S.CapFlag.HBEAT)
    session, rsp = peer.key_exchange(secured_versions=((1, 0), (1, 1)))
    assert rsp.heartbeat_period == 0
    selected = S.OpaqueVersionSelection.decode(rsp.opaque_data).version
    assert (selected.major, selected.minor) == (1, 1)
    peer.secured(session, S.EndSession(version=V13))
    # Nothing in common: InvalidRequest.
    raw = S.KeyExchange(
        version=V13,
        req_session_id=1,
        random_data=bytes(32),
        exchange_data=DheKeyPair.generate(DheGroup.SECP384R1).public_bytes(),
        opaque_data=S.OpaqueSupportedVersions((S.VersionNumberEntry(1, 0),)).encode(),
    )
    assert peer.error(raw).error_code == S.ErrorCode.INVALID_REQUEST


def test_event_all_policy_without_event_cap_is_invalid_in_1_3() -> None:
    peer = Peer(_dsm(), V13)
    peer.connect()
    raw = S.KeyExchange(
        version=V13,
        req_session_id=1,
        session_policy=0x02,
        random_data=bytes(32),
        exchange_data=DheKeyPair.generate(DheGroup.SECP384R1).public_bytes(),
        opaque_data=S.OpaqueSupportedVersions((S.VersionNumberEntry(1, 1),)).encode(),
    )
    assert peer.error(raw).error_code == S.ErrorCode.INVALID_REQUEST


def test_measurements_in_a_session_sign_the_sessions_own_l1() -> None:
    peer = Peer(_dsm(), V13)
    peer.connect()
    session, _ = peer.key_exchange()
    unsigned = S.GetMeasurements(version=V13, operation=1, requester_context=bytes(8)).encode()
    u_rsp = peer.secured(session, unsigned)
    # An unsigned exchange outside the session does not enter the session's L1.
    peer.send(S.GetMeasurements(version=V13, operation=2, requester_context=bytes(8)))
    signed = S.GetMeasurements(
        version=V13,
        operation=2,
        signature_requested=True,
        nonce=os.urandom(32),
        requester_context=os.urandom(8),
    ).encode()
    raw = peer.secured(session, signed)
    rsp = S.Measurements.decode(raw, signature_size=SIG)
    peer.check(
        SigningOperation.MEASUREMENTS,
        peer.vca + unsigned + u_rsp + signed + raw[:-SIG],
        rsp.signature,
    )


def test_a_silent_session_is_terminated_after_twice_the_heartbeat_period() -> None:
    clock = FakeClock()
    config = FakeConfigSpace()
    dsm = _dsm(regs=config.firmware_regs(), clock=clock, heartbeat_period_s=10)
    peer = Peer(dsm, V13)
    peer.connect()
    session, rsp = peer.key_exchange()
    assert rsp.heartbeat_period == 10
    query = S.VendorDefinedRequest.pci_sig(0, K.Query(port_index=0).encode()[1:], version=V13)
    assert peer.secured(session, query) is not None  # the session owns the IDE streams now
    clock.now += 19
    assert peer.secured(session, S.Heartbeat(version=V13)) is not None  # in time
    clock.now += 21
    # Twice the period passed: terminated; a record for it is dropped (DSP0277) ...
    assert peer.secured(session, S.Heartbeat(version=V13)) is None
    assert not dsm.spdm.sessions
    # ... and IDE_KM knows the owner is gone (§6.33.3: the next session's QUERY wipes).
    assert dsm.ide_km.owner is None and dsm.ide_km.wipe_pending


def test_a_record_that_fails_authentication_ends_the_session_for_ide_km_too() -> None:
    config = FakeConfigSpace()
    dsm = _dsm(regs=config.firmware_regs())
    peer = Peer(dsm, V12)
    peer.connect()
    session, _ = peer.key_exchange()
    query = S.VendorDefinedRequest.pci_sig(0, K.Query(port_index=0).encode()[1:], version=V12)
    assert peer.secured(session, query) is not None
    sealed = bytearray(session.secured.seal(S.Heartbeat(version=V12).encode()))
    sealed[-1] ^= 1
    obj = DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, bytes(sealed))
    assert run(dsm.handle(obj)) is None
    assert not dsm.spdm.sessions and dsm.ide_km.owner is None


# -- vendor-defined requests --------------------------------------------------------------------
def test_vendor_requests_nobody_serves_get_unsupported_request() -> None:
    """A CXL IDE_KM QUERY (spdm_requester_emu's step after PCIe TDISP) or any other standard:
    ERROR(UnsupportedRequest, 0xFE), never a missing answer."""
    dsm = _dsm(regs=FakeConfigSpace().firmware_regs())
    peer = Peer(dsm, V13)
    peer.connect()
    cxl = S.VendorDefinedRequest(
        version=V13, standard_id=S.StandardId.PCI_SIG, vendor_id=b"\x98\x1e", payload=b"\x00\x00"
    )
    err = peer.error(cxl)  # outside a session
    assert (err.error_code, err.error_data) == (S.ErrorCode.UNSUPPORTED_REQUEST, 0xFE)
    session, _ = peer.key_exchange()
    err = S.ErrorResponse.decode(peer.secured(session, cxl))
    assert (err.error_code, err.error_data) == (S.ErrorCode.UNSUPPORTED_REQUEST, 0xFE)
    other_protocol = S.VendorDefinedRequest.pci_sig(7, b"\x00", version=V13)
    err = S.ErrorResponse.decode(peer.secured(session, other_protocol))
    assert err.error_code == S.ErrorCode.UNSUPPORTED_REQUEST


def _ide_km(peer: Peer, session: Session, message: K.IdeKmMessage) -> bytes | None:
    raw = message.encode()
    req = S.VendorDefinedRequest.pci_sig(raw[0], raw[1:], version=peer.version)
    return peer.secured(session, req)


def test_an_ide_km_query_for_another_port_index_is_answered_with_an_error() -> None:
    """The endpoint answers PortIndex 00h (§6.33.3); a QUERY for 01h gets SPDM ERROR, not
    silence (spdm_requester_emu asserted on the empty answer it used to get)."""
    dsm = _dsm(regs=FakeConfigSpace().firmware_regs())
    peer = Peer(dsm, V12)
    peer.connect()
    session, _ = peer.key_exchange()
    err = S.ErrorResponse.decode(_ide_km(peer, session, K.Query(port_index=1)))
    assert (err.error_code, err.error_data) == (S.ErrorCode.INVALID_REQUEST, 0)
    rsp = S.VendorDefinedResponse.decode(_ide_km(peer, session, K.Query(port_index=0)))
    resp = K.decode(rsp.payload)
    assert isinstance(resp, K.QueryResp) and resp.max_port_index == 0


def test_a_presented_port_index_is_answered_and_keyed() -> None:
    dsm = _dsm(regs=FakeConfigSpace().firmware_regs(), ide_km_port_index=1)
    peer = Peer(dsm, V13)
    peer.connect()
    session, _ = peer.key_exchange()
    for port in (0, 1):
        rsp = S.VendorDefinedResponse.decode(_ide_km(peer, session, K.Query(port_index=port)))
        resp = K.decode(rsp.payload)
        assert isinstance(resp, K.QueryResp)
        assert (resp.port_index, resp.max_port_index) == (port, 1)
    slot = K.KeySlot.all(0)[0]
    for port, status in ((1, K.KpAckStatus.SUCCESS), (2, K.KpAckStatus.UNSUPPORTED_PORT_INDEX)):
        prog = K.KeyProg(stream_id=0, slot=slot, key=os.urandom(32), ifv=1, port_index=port)
        ack = K.decode(S.VendorDefinedResponse.decode(_ide_km(peer, session, prog)).payload)
        assert isinstance(ack, K.KpAck) and ack.status == status
    go = K.KSetGo(stream_id=0, slot=slot, port_index=1)
    ack = K.decode(S.VendorDefinedResponse.decode(_ide_km(peer, session, go)).payload)
    assert isinstance(ack, K.KGostopAck) and ack.port_index == 1


def test_a_presented_function_id_is_the_tdi_interface_id() -> None:
    dsm = _dsm(regs=FakeConfigSpace().firmware_regs(), function_id=0xBEEF)
    peer = Peer(dsm, V13)
    peer.connect()
    session, _ = peer.key_exchange()

    def tdisp(rid: int) -> T.TdispMessage:
        raw = T.GetTdispVersion(interface_id=T.InterfaceId(rid)).encode()
        req = S.VendorDefinedRequest.pci_sig(raw[0], raw[1:], version=V13)
        return T.decode(S.VendorDefinedResponse.decode(peer.secured(session, req)).payload)

    assert isinstance(tdisp(0xBEEF), T.TdispVersion)
    other = tdisp(0x0100)
    assert isinstance(other, T.TdispError) and other.error_code == T.ErrorCode.INVALID_INTERFACE


def test_ide_km_objects_that_are_not_requests_get_an_error_and_bad_sizes_silence() -> None:
    dsm = _dsm(regs=FakeConfigSpace().firmware_regs())
    peer = Peer(dsm, V13)
    peer.connect()
    session, _ = peer.key_exchange()

    def send(payload: bytes) -> bytes | None:
        req = S.VendorDefinedRequest.pci_sig(payload[0], payload[1:], version=V13)
        return peer.secured(session, req)

    for object_id in (K.ObjectId.QUERY_RESP, K.ObjectId.KP_ACK, 0x7F):
        err = S.ErrorResponse.decode(send(bytes((0, object_id, 0, 0))))
        assert err.error_code == S.ErrorCode.INVALID_REQUEST
    # §6.33.3: a request object of the wrong size must not result in a response ...
    assert send(K.Query(port_index=0).encode() + b"\x00") is None
    # ... except KEY_PROG, whose KP_ACK has a status for it.
    prog = K.KeyProg(stream_id=0, slot=K.KeySlot.all(0)[0], key=bytes(32), ifv=1).encode()
    ack = K.decode(S.VendorDefinedResponse.decode(send(prog[:-4])).payload)
    assert isinstance(ack, K.KpAck) and ack.status == K.KpAckStatus.INCORRECT_LENGTH


def test_every_request_in_a_session_is_answered_unless_a_spec_says_otherwise() -> None:
    """spdm_requester_emu asserted on the empty answer to a request that had a defined one."""
    dsm = _dsm(regs=FakeConfigSpace().firmware_regs())
    peer = Peer(dsm, V13)
    peer.connect()
    session, _ = peer.key_exchange()
    iid = dsm.tdisp.interface_id
    requests: list[S.Request | bytes] = [
        S.GetVersion(),
        S.GetCapabilities(version=V13, data_transfer_size=64, max_spdm_msg_size=64),
        S.Finish(version=V13, requester_verify_data=bytes(H)),
        S.KeyUpdate(version=V13, operation=S.KeyUpdateOp.VERIFY_NEW_KEY, tag=3),
        S.Heartbeat(version=V12),
        bytes((V13, 0xF0, 0, 0)),  # SUBSCRIBE_EVENT_TYPES: not served
        bytes((V13, S.RequestCode.GET_MEASUREMENTS)),  # truncated
        S.VendorDefinedRequest.pci_sig(0, K.Query(port_index=9).encode()[1:], version=V13),
        S.VendorDefinedRequest.pci_sig(
            1, T.GetTdispVersion(interface_id=iid).encode()[1:3], version=V13
        ),
        S.VendorDefinedRequest(version=V13, standard_id=0x1234, vendor_id=b"", payload=b""),
    ]
    for request in requests:
        assert peer.secured(session, request) is not None, request
    assert dsm.spdm.sessions  # and the session survived all of it


def test_no_common_algorithm_selects_nothing_then_asks_for_resynch() -> None:
    """DSP0274 1.3 NEGOTIATE_ALGORITHMS: ALGORITHMS with the selections zero, then
    RequestResynch to everything until GET_VERSION."""
    peer = Peer(_dsm(), V13)
    peer.send(S.GetVersion())
    peer.send(
        S.GetCapabilities(
            version=V13, flags=REQ_CAPS, data_transfer_size=4096, max_spdm_msg_size=4096
        )
    )
    only_p256 = S.NegotiateAlgorithms(
        version=V13,
        base_asym_algo=S.BaseAsymAlgo.ECDSA_P256,
        base_hash_algo=S.BaseHashAlgo.SHA_256,
    )
    alg = S.Algorithms.decode(peer.send(only_p256))
    assert (alg.base_asym_sel, alg.base_hash_sel, alg.measurement_hash_algo) == (0, 0, 0)
    for request in (S.GetDigests(version=V13), bytes((V13, S.RequestCode.KEY_EXCHANGE, 0, 0))):
        err = peer.error(request)
        assert (err.version, err.error_code) == (V13, S.ErrorCode.REQUEST_RESYNCH)
    Peer(peer.dsm, V13).connect()  # GET_VERSION starts again and all is well


@pytest.mark.parametrize(
    "flags",
    [
        S.CapFlag.CERT | S.CapFlag.KEY_EX,  # no ENCRYPT/MAC
        S.CapFlag.CERT | S.CapFlag.ENCRYPT,  # no KEY_EX/PSK
        S.CapFlag.ENCRYPT | S.CapFlag.PSK | S.CapFlag.HANDSHAKE_IN_THE_CLEAR,  # PSK only
        S.CapFlag.CERT | S.CapFlag.PUB_KEY_ID,
    ],
)
def test_an_illegal_requester_flag_combination_is_invalid(flags: int) -> None:
    """DSP0274 1.3 CAPABILITIES: the Responder "shall" answer ERROR(InvalidRequest)."""
    peer = Peer(_dsm(), V13)
    peer.send(S.GetVersion())
    caps = S.GetCapabilities(
        version=V13, flags=flags, data_transfer_size=4096, max_spdm_msg_size=4096
    )
    assert peer.error(caps).error_code == S.ErrorCode.INVALID_REQUEST


def test_a_zero_heartbeat_period_asks_for_none_and_never_times_out() -> None:
    """Table 71: zero is legal with HEARTBEAT supported: no heartbeat desired."""
    clock = FakeClock()
    peer = Peer(_dsm(clock=clock, heartbeat_period_s=0), V13)
    peer.connect()
    session, rsp = peer.key_exchange()
    assert rsp.heartbeat_period == 0
    clock.now += 10**6
    assert peer.secured(session, S.Heartbeat(version=V13)) is not None
