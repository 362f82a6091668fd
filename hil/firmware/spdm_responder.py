"""The device firmware's SPDM responder (DSP0274 1.2, secured messages per DSP0277 over PCI DOE).

It answers CMA/SPDM objects (DOE type 01h) and Secured CMA/SPDM objects (type 02h).  Every
malformed, unsupported or out-of-order request gets the ERROR the spec defines, and the
responder keeps serving afterwards.  What it may answer in each connection state is a table
(:data:`ALLOWED`), not scattered checks.

Transcripts (DSP0274 §10 "transcript and transcript hash"):

- A = GET_VERSION..ALGORITHMS (whole messages), reset by GET_VERSION;
- M1 = A || B (digests/certificate exchanges) || C (CHALLENGE, CHALLENGE_AUTH without signature);
- L1 = A || the measurement exchanges since the last signed one (1.2: A is included);
- per session: A || Ct || K (KEY_EXCHANGE, KEY_EXCHANGE_RSP) || F (FINISH, FINISH_RSP).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from cryptography.hazmat.primitives.asymmetric import ec

from ..codec import spdm as S
from ..codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from ..codec.secured import DecryptError, SecuredSession, peek_session_id
from ..codec.spdm_crypto import (
    AeadAlg,
    DheGroup,
    DheKeyPair,
    HashAlg,
    KeySchedule,
    SigningOperation,
    sign,
)
from ..errors import LocalProtocolError, PeerProtocolError
from ..pki import Identity

__all__ = ["ALLOWED", "ConnectionState", "Measurement", "SpdmResponder", "VendorHandler"]

log = logging.getLogger("hil.firmware.spdm")

VERSION = S.SpdmVersion.V12
#: What this responder can do (DSP0274 CAPABILITIES flags).
RESPONDER_CAPS = (
    S.CapFlag.CERT
    | S.CapFlag.CHAL
    | S.CapFlag.MEAS_SIG
    | S.CapFlag.ENCRYPT
    | S.CapFlag.MAC
    | S.CapFlag.KEY_EX
    | S.CapFlag.HBEAT
    | S.CapFlag.KEY_UPD
)
#: Largest SPDM message: a 4 KiB DOE read buffer less the DOE and secured-message overheads.
MAX_MESSAGE = 4000
CT_EXPONENT = 20  # 2^20 us ~ 1 s: cryptographic operations in firmware (PCIe: <= 2^23 us)
HEARTBEAT_PERIOD = 0  # no heartbeat requirement

#: A handler for VENDOR_DEFINED requests inside a session (IDE_KM, TDISP): the session id and
#: the request in, the response payload (or None: no answer) out.
VendorHandler = Callable[[int, S.VendorDefinedRequest], Awaitable[bytes | None]]


class ConnectionState(Enum):
    NOT_STARTED = auto()  # nothing yet, or after an error that needs GET_VERSION
    AFTER_VERSION = auto()
    AFTER_CAPABILITIES = auto()
    NEGOTIATED = auto()  # ALGORITHMS sent


#: Which requests each connection state takes outside a session (DSP0274 §9 "ordering").
ALLOWED: dict[ConnectionState, frozenset[int]] = {
    ConnectionState.NOT_STARTED: frozenset({S.RequestCode.GET_VERSION}),
    ConnectionState.AFTER_VERSION: frozenset(
        {S.RequestCode.GET_VERSION, S.RequestCode.GET_CAPABILITIES}
    ),
    ConnectionState.AFTER_CAPABILITIES: frozenset(
        {S.RequestCode.GET_VERSION, S.RequestCode.NEGOTIATE_ALGORITHMS}
    ),
    ConnectionState.NEGOTIATED: frozenset(
        {
            S.RequestCode.GET_VERSION,
            S.RequestCode.GET_DIGESTS,
            S.RequestCode.GET_CERTIFICATE,
            S.RequestCode.CHALLENGE,
            S.RequestCode.GET_MEASUREMENTS,
            S.RequestCode.KEY_EXCHANGE,
        }
    ),
}
#: Requests taken inside an established session.
IN_SESSION = frozenset(
    {
        S.RequestCode.GET_MEASUREMENTS,
        S.RequestCode.HEARTBEAT,
        S.RequestCode.KEY_UPDATE,
        S.RequestCode.END_SESSION,
        S.RequestCode.VENDOR_DEFINED_REQUEST,
    }
)


@dataclass(frozen=True)
class Measurement:
    """One measurement block the device reports (DMTF format)."""

    index: int
    value_type: int
    value: bytes
    raw: bool = False


class _SpdmError(Exception):
    """Internal: answer with this ERROR."""

    def __init__(self, code: int, data: int = 0, why: str = "") -> None:
        super().__init__(why or S.ErrorCode(code).name)
        self.code = code
        self.data = data


@dataclass
class _Session:
    session_id: int
    secured: SecuredSession
    transcript: bytes  # A || Ct || K || F (so far)
    established: bool = False
    #: What changes once the response now being sealed is out (new keys, the end).
    after_seal: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class _Negotiated:
    hash_alg: HashAlg
    base_asym: int
    base_hash: int
    meas_hash: int
    dhe: DheGroup | None
    aead: int
    sizes: S.NegotiatedSizes
    chain: bytes = b""  # slot 0's SPDM certificate chain under the negotiated hash


@dataclass
class SpdmResponder:
    """Serves SPDM for one device.  ``handle`` is the DSM's entry point for DOE objects."""

    identity: Identity
    measurements: tuple[Measurement, ...]
    vendor_handler: VendorHandler | None = None
    on_session_end: Callable[[int], None] | None = None
    random: Callable[[int], bytes] = os.urandom
    state: ConnectionState = ConnectionState.NOT_STARTED
    sessions: dict[int, _Session] = field(default_factory=dict)
    errors_sent: int = 0
    _vca: bytes = b""
    _m1: bytes = b""
    _l1: bytes = b""
    _req_caps: int = 0
    _neg: _Negotiated | None = None

    # -- DOE entry point ------------------------------------------------------------------------
    async def handle(self, obj: DataObject) -> DataObject | None:
        """A CMA/SPDM or Secured CMA/SPDM object in; the response object (or None) out."""
        if obj.vendor_id != PCI_SIG_VENDOR_ID:
            return None
        if obj.type == DoeType.CMA_SPDM:
            rsp = await self._plain(obj.payload)
            if rsp is None:
                return None
            return DataObject(PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM, rsp)
        if obj.type == DoeType.SECURED_CMA_SPDM:
            rsp = await self._secured(obj.payload)
            if rsp is None:
                return None
            return DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, rsp)
        return None

    # -- plain (type 01h) -----------------------------------------------------------------------
    async def _plain(self, data: bytes) -> bytes | None:
        try:
            request, raw = self._decode(data)
            if isinstance(request, S.VendorDefinedRequest) and request.pci_protocol_id in (
                S.PciProtocolId.IDE_KM,
                S.PciProtocolId.TDISP,
            ):
                # PCIe §6.33.3, §11.2.2: IDE_KM and TDISP outside a secured session are ignored.
                log.info("PCI-SIG protocol %d outside a session ignored", request.pci_protocol_id)
                return None
            if request.CODE not in ALLOWED[self.state]:
                raise _SpdmError(
                    S.ErrorCode.UNEXPECTED_REQUEST,
                    why=f"{S.RequestCode(request.CODE).name} in state {self.state.name}",
                )
            return self._dispatch(request, raw)
        except _SpdmError as exc:
            return self._error(exc)

    def _decode(self, data: bytes) -> tuple[S.Request, bytes]:
        """Decode a request, trimming the DOE DW padding (up to 3 zero bytes) it may carry."""
        sizes = self._neg.sizes if self._neg else S.NegotiatedSizes()
        try:
            return S.decode_doe_padded(S.decode_request, data, sizes)
        except S.SpdmDecodeError as exc:
            last = exc
        if last.error_code == S.ErrorCode.VERSION_MISMATCH or (
            len(data) >= 2 and data[0] != VERSION and data[1] != S.RequestCode.GET_VERSION
        ):
            raise _SpdmError(S.ErrorCode.VERSION_MISMATCH, why=str(last)) from None
        raise _SpdmError(last.error_code, last.error_data, str(last)) from None

    def _error(self, exc: _SpdmError) -> bytes:
        self.errors_sent += 1
        log.info("SPDM ERROR %s: %s", S.ErrorCode(exc.code).name, exc)
        version = VERSION if self.state is not ConnectionState.NOT_STARTED else S.SpdmVersion.V10
        if exc.code == S.ErrorCode.VERSION_MISMATCH:
            version = S.SpdmVersion.V10 if self.state is ConnectionState.NOT_STARTED else VERSION
        return S.ErrorResponse(version=version, error_code=exc.code, error_data=exc.data).encode()

    def _check_version(self, request: S.Request) -> None:
        if request.version != VERSION:
            raise _SpdmError(
                S.ErrorCode.VERSION_MISMATCH,
                why=f"request version {request.version:#x}, negotiated {VERSION:#x}",
            )

    def _dispatch(self, request: S.Request, raw: bytes) -> bytes:
        if not isinstance(request, S.GetVersion):
            self._check_version(request)
        match request:
            case S.GetVersion():
                return self._version(request, raw)
            case S.GetCapabilities():
                return self._capabilities(request, raw)
            case S.NegotiateAlgorithms():
                return self._algorithms(request, raw)
            case S.GetDigests():
                return self._digests(raw)
            case S.GetCertificate():
                return self._certificate(request, raw)
            case S.Challenge():
                return self._challenge(request, raw)
            case S.GetMeasurements():
                return self._measurements(request, raw)
            case S.KeyExchange():
                return self._key_exchange(request, raw)
        raise _SpdmError(S.ErrorCode.UNEXPECTED_REQUEST)  # pragma: no cover - table guards

    # -- VCA ------------------------------------------------------------------------------------
    def _reset(self) -> None:
        """GET_VERSION starts the connection again; the sessions it held end with it."""
        self.state = ConnectionState.NOT_STARTED
        self._vca = self._m1 = self._l1 = b""
        self._neg = None
        for session_id in list(self.sessions):
            self._end_session(session_id)

    def _version(self, request: S.GetVersion, raw: bytes) -> bytes:
        if request.version != S.SpdmVersion.V10:
            raise _SpdmError(S.ErrorCode.VERSION_MISMATCH, why="GET_VERSION must carry 1.0")
        self._reset()
        rsp = S.VersionResponse(entries=(S.SpdmVersion.V12.entry(),)).encode()
        self._vca = raw + rsp
        self.state = ConnectionState.AFTER_VERSION
        return rsp

    def _capabilities(self, request: S.GetCapabilities, raw: bytes) -> bytes:
        if request.data_transfer_size < S.MIN_DATA_TRANSFER_SIZE:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why="DataTransferSize below 42")
        if request.ct_exponent > 23:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why="CTExponent above 23 (PCIe)")
        self._req_caps = request.flags
        rsp = S.Capabilities(
            ct_exponent=CT_EXPONENT,
            flags=RESPONDER_CAPS,
            data_transfer_size=MAX_MESSAGE,
            max_spdm_msg_size=MAX_MESSAGE,
        ).encode()
        self._vca += raw + rsp
        self.state = ConnectionState.AFTER_CAPABILITIES
        return rsp

    def _leaf_curve(self) -> tuple[int, int, HashAlg, DheGroup]:
        key = self.identity.key
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise LocalProtocolError(f"device key is {type(key).__name__}: only ECDSA is served")
        curve = key.curve
        if isinstance(curve, ec.SECP384R1):
            return S.BaseAsymAlgo.ECDSA_P384, S.BaseHashAlgo.SHA_384, _hash(384), DheGroup.SECP384R1
        if isinstance(curve, ec.SECP256R1):
            return S.BaseAsymAlgo.ECDSA_P256, S.BaseHashAlgo.SHA_256, _hash(256), DheGroup.SECP256R1
        raise LocalProtocolError(f"device key on {curve.name}: only P-256/P-384 are served")

    def _algorithms(self, request: S.NegotiateAlgorithms, raw: bytes) -> bytes:
        asym, base_hash, hash_alg, our_dhe = self._leaf_curve()
        if not request.base_asym_algo & asym or not request.base_hash_algo & base_hash:
            raise _SpdmError(
                S.ErrorCode.INVALID_REQUEST, why="no common signature or hash algorithm"
            )
        offered = {s.alg_type: s.supported for s in request.alg_structs}
        dhe = our_dhe if offered.get(S.AlgType.DHE, 0) & our_dhe else None
        aead = (
            S.AeadSuite.AES_256_GCM
            if offered.get(S.AlgType.AEAD, 0) & S.AeadSuite.AES_256_GCM
            else 0
        )
        key_sched = offered.get(S.AlgType.KEY_SCHEDULE, 0) & S.KeySchedule.SPDM
        meas_hash = {
            S.BaseHashAlgo.SHA_384: S.MeasurementHashAlgo.SHA_384,
            S.BaseHashAlgo.SHA_256: S.MeasurementHashAlgo.SHA_256,
        }[base_hash]
        structs = []
        if S.AlgType.DHE in offered:
            structs.append(S.AlgStruct(S.AlgType.DHE, int(dhe or 0)))
        if S.AlgType.AEAD in offered:
            structs.append(S.AlgStruct(S.AlgType.AEAD, int(aead)))
        if S.AlgType.REQ_BASE_ASYM_ALG in offered:
            structs.append(S.AlgStruct(S.AlgType.REQ_BASE_ASYM_ALG, 0))
        if S.AlgType.KEY_SCHEDULE in offered:
            structs.append(S.AlgStruct(S.AlgType.KEY_SCHEDULE, int(key_sched)))
        opaque = S.OtherParams.OPAQUE_FMT1 if request.other_params else 0
        rsp_msg = S.Algorithms(
            measurement_specification_sel=S.MeasurementSpec.DMTF
            if request.measurement_specification & S.MeasurementSpec.DMTF
            else 0,
            other_params_sel=opaque,
            measurement_hash_algo=meas_hash,
            base_asym_sel=asym,
            base_hash_sel=base_hash,
            alg_structs=tuple(structs),
        )
        rsp = rsp_msg.encode()
        self._vca += raw + rsp
        self._neg = _Negotiated(
            hash_alg=hash_alg,
            base_asym=asym,
            base_hash=base_hash,
            meas_hash=meas_hash,
            dhe=DheGroup(dhe) if dhe and aead and key_sched else None,
            aead=aead,
            sizes=S.NegotiatedSizes.from_algorithms(rsp_msg),
        )
        self._m1 = self._vca
        self._l1 = self._vca
        self.state = ConnectionState.NEGOTIATED
        return rsp

    # -- certificates and challenge -------------------------------------------------------------
    @property
    def neg(self) -> _Negotiated:
        assert self._neg is not None
        return self._neg

    def _chain(self) -> bytes:
        neg = self.neg
        if not neg.chain:
            neg.chain = self.identity.spdm_chain(neg.hash_alg)
        return neg.chain

    def _digests(self, raw: bytes) -> bytes:
        digest = self.neg.hash_alg.digest(self._chain())
        rsp = S.Digests(slot_mask=0x01, digests=(digest,)).encode()
        self._m1 += raw + rsp
        return rsp

    def _certificate(self, request: S.GetCertificate, raw: bytes) -> bytes:
        if request.slot_id != 0:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"slot {request.slot_id} is empty")
        chain = self._chain()
        if request.offset >= len(chain):
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why="offset past the chain")
        room = MAX_MESSAGE - 8
        length = min(request.length, room, len(chain) - request.offset)
        portion = chain[request.offset : request.offset + length]
        rsp = S.Certificate(
            slot_id=0, portion=portion, remainder_length=len(chain) - request.offset - length
        ).encode()
        self._m1 += raw + rsp
        return rsp

    def _summary_hash(self, kind: int) -> bytes:
        if kind == S.MeasurementSummaryHashType.NONE:
            return b""
        blocks = self._blocks(S.MEASUREMENT_OP_ALL)
        if kind == S.MeasurementSummaryHashType.TCB:
            blocks = tuple(b for b in blocks if b.index == 1)
        return self.neg.hash_alg.digest(b"".join(b.encode() for b in blocks))

    def _sign(self, operation: SigningOperation, transcript: bytes) -> bytes:
        h = self.neg.hash_alg
        return sign(self.identity.key, VERSION, operation, h.digest(transcript), h)

    def _sig_size(self) -> int:
        return S.signature_size(self.neg.base_asym)

    def _challenge(self, request: S.Challenge, raw: bytes) -> bytes:
        if request.slot_id != 0:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"slot {request.slot_id} is empty")
        h = self.neg.hash_alg
        fields = {
            "slot_id": 0,
            "slot_mask": 0x01,
            "cert_chain_hash": h.digest(self._chain()),
            "nonce": self.random(32),
            "measurement_summary_hash": self._summary_hash(request.measurement_summary_hash_type),
        }
        unsigned = S.ChallengeAuth(**fields, signature=bytes(self._sig_size())).encode()
        body = unsigned[: -self._sig_size()]
        transcript = self._m1 + raw + body
        signature = self._sign(SigningOperation.CHALLENGE_AUTH, transcript)
        self._m1 = self._vca  # M1 starts again after each CHALLENGE
        return S.ChallengeAuth(**fields, signature=signature).encode()

    # -- measurements ---------------------------------------------------------------------------
    def _blocks(self, operation: int) -> tuple[S.MeasurementBlock, ...]:
        blocks = tuple(
            S.MeasurementBlock(m.index, m.value_type, m.value, m.raw) for m in self.measurements
        )
        if operation == S.MEASUREMENT_OP_ALL:
            return blocks
        return tuple(b for b in blocks if b.index == operation)

    def _measurements(self, request: S.GetMeasurements, raw: bytes) -> bytes:
        op = request.operation
        if op not in (S.MEASUREMENT_OP_COUNT, S.MEASUREMENT_OP_ALL) and not self._blocks(op):
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"no measurement index {op}")
        fields = {
            "total_count": len(self.measurements) if op == S.MEASUREMENT_OP_COUNT else 0,
            "slot_id": 0,
            "blocks": () if op == S.MEASUREMENT_OP_COUNT else self._blocks(op),
            "nonce": self.random(32),
        }
        if not request.signature_requested:
            rsp = S.Measurements(**fields).encode()
            self._l1 += raw + rsp
            return rsp
        unsigned = S.Measurements(**fields, signature=bytes(self._sig_size())).encode()
        transcript = self._l1 + raw + unsigned[: -self._sig_size()]
        signature = self._sign(SigningOperation.MEASUREMENTS, transcript)
        self._l1 = self._vca
        return S.Measurements(**fields, signature=signature).encode()

    # -- sessions -------------------------------------------------------------------------------
    def _key_exchange(self, request: S.KeyExchange, raw: bytes) -> bytes:
        neg = self.neg
        if neg.dhe is None:
            raise _SpdmError(
                S.ErrorCode.UNSUPPORTED_REQUEST,
                S.RequestCode.KEY_EXCHANGE,
                "no DHE/AEAD/key schedule negotiated",
            )
        if not self._req_caps & S.CapFlag.KEY_EX:
            raise _SpdmError(S.ErrorCode.UNEXPECTED_REQUEST, why="requester lacks KEY_EX_CAP")
        if request.slot_id != 0:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"slot {request.slot_id} is empty")
        if len(self.sessions) >= 4:
            raise _SpdmError(S.ErrorCode.SESSION_LIMIT_EXCEEDED)
        try:
            S.OpaqueSupportedVersions.decode(request.opaque_data)
        except S.SpdmDecodeError as exc:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"opaque data: {exc}") from None
        dhe = DheKeyPair.generate(neg.dhe)
        try:
            secret = dhe.shared_secret(request.exchange_data)
        except PeerProtocolError as exc:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=str(exc)) from None
        rsp_id = int.from_bytes(self.random(2), "little") or 1
        session_id = (rsp_id << 16) | request.req_session_id
        h = neg.hash_alg
        fields = {
            "heartbeat_period": HEARTBEAT_PERIOD,
            "rsp_session_id": rsp_id,
            "random_data": self.random(32),
            "exchange_data": dhe.public_bytes(),
            "measurement_summary_hash": self._summary_hash(request.measurement_summary_hash_type),
            "opaque_data": S.OpaqueVersionSelection(S.VersionNumberEntry(1, 1)).encode(),
        }
        sig_size, hsize = self._sig_size(), h.size
        placeholder = S.KeyExchangeRsp(
            **fields, signature=bytes(sig_size), responder_verify_data=bytes(hsize)
        ).encode()
        body = placeholder[: -(sig_size + hsize)]
        ct = h.digest(self._chain())
        signed = self._vca + ct + raw + body
        signature = self._sign(SigningOperation.KEY_EXCHANGE_RSP, signed)
        th1 = h.digest(signed + signature)
        schedule = KeySchedule(VERSION, h, AeadAlg.AES_256_GCM)
        handshake = schedule.handshake(secret, th1)
        verify = schedule.verify_data(handshake.response_finished_key, th1)
        rsp = S.KeyExchangeRsp(**fields, signature=signature, responder_verify_data=verify).encode()
        self.sessions[session_id] = _Session(
            session_id=session_id,
            secured=SecuredSession(session_id, schedule, handshake, requester=False),
            transcript=self._vca + ct + raw + rsp,
        )
        return rsp

    async def _secured(self, data: bytes) -> bytes | None:
        try:
            session_id = peek_session_id(data)
        except PeerProtocolError:
            return None
        session = self.sessions.get(session_id)
        if session is None:
            log.info("secured message for unknown session %#010x dropped", session_id)
            return None
        try:
            inner = session.secured.open(data)
        except DecryptError as exc:
            # DSP0277: a record that fails authentication is dropped; the sequence number it
            # used is gone, so the session cannot continue either.
            log.warning("session %#010x: %s; session ended", session_id, exc)
            self.sessions.pop(session_id, None)
            return None
        except PeerProtocolError as exc:
            log.warning("session %#010x: malformed record: %s", session_id, exc)
            return None
        rsp = await self._in_session(session, inner)
        actions, session.after_seal = session.after_seal, []
        sealed = session.secured.seal(rsp) if rsp is not None else None
        for action in actions:
            action()
        return sealed

    async def _in_session(self, session: _Session, data: bytes) -> bytes | None:
        try:
            request, raw = self._decode(data)
            self._check_version(request)
            if not session.established:
                if not isinstance(request, S.Finish):
                    raise _SpdmError(S.ErrorCode.UNEXPECTED_REQUEST, why="session not finished")
                return self._finish(session, request, raw)
            if request.CODE not in IN_SESSION:
                raise _SpdmError(
                    S.ErrorCode.UNEXPECTED_REQUEST,
                    why=f"{S.RequestCode(request.CODE).name} inside a session",
                )
            match request:
                case S.Heartbeat():
                    return S.HeartbeatAck().encode()
                case S.KeyUpdate():
                    return self._key_update(session, request)
                case S.EndSession():
                    session.after_seal.append(lambda: self._end_session(session.session_id))
                    return S.EndSessionAck().encode()
                case S.GetMeasurements():
                    return self._measurements(request, raw)
                case S.VendorDefinedRequest():
                    return await self._vendor(session, request)
            raise _SpdmError(S.ErrorCode.UNEXPECTED_REQUEST)  # pragma: no cover
        except _SpdmError as exc:
            return self._error(exc)

    def _finish(self, session: _Session, request: S.Finish, raw: bytes) -> bytes:
        h = self.neg.hash_alg
        schedule = session.secured.schedule
        handshake = session.secured.handshake
        header_part = raw[: len(raw) - h.size]
        th_req = h.digest(session.transcript + header_part)
        if not schedule.check_verify_data(
            handshake.request_finished_key, th_req, request.requester_verify_data
        ):
            raise _SpdmError(S.ErrorCode.DECRYPT_ERROR, why="RequesterVerifyData mismatch")
        rsp = S.FinishRsp().encode()
        session.transcript += raw + rsp
        th2 = h.digest(session.transcript)

        def enter_data_phase() -> None:  # FINISH_RSP itself goes under the handshake keys
            session.secured.enter_data_phase(th2)
            session.established = True

        session.after_seal.append(enter_data_phase)
        return rsp

    def _end_session(self, session_id: int) -> None:
        self.sessions.pop(session_id, None)
        if self.on_session_end is not None:
            self.on_session_end(session_id)

    def _key_update(self, session: _Session, request: S.KeyUpdate) -> bytes:
        """DSP0274 KEY_UPDATE: the request arrived under the old request key; the ACK goes
        under the old response key; new keys apply to what follows."""
        op = request.operation
        secured = session.secured
        if op in (S.KeyUpdateOp.UPDATE_KEY, S.KeyUpdateOp.UPDATE_ALL_KEYS):
            if secured.request_channel.update_pending or secured.response_channel.update_pending:
                secured.commit_key_update()
            secured.request_channel.key_update()
            if op == S.KeyUpdateOp.UPDATE_ALL_KEYS:
                session.after_seal.append(secured.response_channel.key_update)
        elif op == S.KeyUpdateOp.VERIFY_NEW_KEY:
            secured.commit_key_update()
        else:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"KEY_UPDATE operation {op}")
        return S.KeyUpdateAck(operation=op, tag=request.tag).encode()

    async def _vendor(self, session: _Session, request: S.VendorDefinedRequest) -> bytes | None:
        if self.vendor_handler is None:
            raise _SpdmError(S.ErrorCode.UNSUPPORTED_REQUEST, S.RequestCode.VENDOR_DEFINED_REQUEST)
        payload = await self.vendor_handler(session.session_id, request)
        if payload is None:
            return None
        return S.VendorDefinedResponse(
            standard_id=request.standard_id, vendor_id=request.vendor_id, payload=payload
        ).encode()


def _hash(bits: int) -> HashAlg:
    from ..codec.spdm_crypto import SHA256, SHA384

    return SHA384 if bits == 384 else SHA256
