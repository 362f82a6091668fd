"""The device firmware's SPDM responder (DSP0274 1.2 and 1.3, secured messages per DSP0277,
over PCI DOE).

It answers CMA/SPDM objects (DOE type 01h) and Secured CMA/SPDM objects (type 02h).  Every
malformed, unsupported or out-of-order request gets the ERROR the spec defines, and the
responder keeps serving afterwards; a request gets no answer only where a spec says so (each
case cites its clause).  What it may answer in each connection state, and in each session
phase, is a table (:data:`ALLOWED`, :data:`SESSION_PHASES`), not scattered checks.

Versions: VERSION lists :attr:`SpdmResponder.versions` (1.2 and 1.3 by default).  The version of
the first GET_CAPABILITIES after GET_VERSION selects the connection's version (DSP0274 1.3,
"GET_VERSION request and VERSION response messages"); every layout and transcript rule that
differs between 1.2 and 1.3 follows that selected version, which the codec is handed.

Transcripts (DSP0274 1.2/1.3, "Transcript and transcript hash calculation rules"):

- VCA = GET_VERSION..ALGORITHMS (whole messages), reset by GET_VERSION;
- M1 = VCA || B (the last GET_DIGESTS and the GET_CERTIFICATE exchanges after it) || C
  (CHALLENGE, CHALLENGE_AUTH without its signature); reset by the requests of
  :data:`M1_RESET` while no CHALLENGE has completed on the connection (they "skip CHALLENGE
  completion"; once one has completed, libspdm's requester keeps B across them, and so does
  this responder);
- L1 = VCA || the GET_MEASUREMENTS exchanges since the last signed one; any other request
  resets it.  A session keeps its own L1 for the measurements asked inside it;
- per session: VCA || Hash(cert chain) || K (KEY_EXCHANGE, KEY_EXCHANGE_RSP) || F (FINISH,
  FINISH_RSP); with mutual authentication, Hash(the requester's cert chain) comes between K
  and F, and FINISH's signature covers everything up to FINISH's header.

Mutual authentication (:class:`~hil.firmware.mutual_auth.MutualAuthPolicy`): the device can
require it of requesters that offer it; KEY_EXCHANGE_RSP asks, the encapsulated request flow
in the handshake phase fetches the requester's chain where the mode says so, and FINISH must
carry a signature that verifies (:mod:`hil.firmware.mutual_auth`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from cryptography.hazmat.primitives.asymmetric import ec

from ..codec import spdm as S
from ..codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from ..codec.secured import DecryptError, SecuredSession, peek_session_id
from ..codec.spdm_crypto import (
    SHA256,
    SHA384,
    AeadAlg,
    DheGroup,
    DheKeyPair,
    HashAlg,
    KeySchedule,
    SigningOperation,
    sign,
    verify,
)
from ..errors import LocalProtocolError, PeerProtocolError
from ..pki import Identity
from .mutual_auth import (
    EncapsulatedFlow,
    MutAuthMode,
    MutualAuthError,
    MutualAuthPolicy,
    RequesterProof,
)

__all__ = [
    "ALLOWED",
    "HEARTBEAT_PERIOD_S",
    "SECURED_MESSAGE_VERSIONS",
    "SESSION_PHASES",
    "SUPPORTED_VERSIONS",
    "ConnectionState",
    "Measurement",
    "SpdmResponder",
    "VendorHandler",
    "VendorRequestRefused",
]

log = logging.getLogger("hil.firmware.spdm")

#: The SPDM versions VERSION lists, in the order they appear there.
SUPPORTED_VERSIONS: tuple[int, ...] = (S.SpdmVersion.V12, S.SpdmVersion.V13)
#: DSP0277 secured-message versions, most preferred first.  Both protect records the same way
#: here: 1.2 makes the little-endian sequence number explicit, which 1.1 left to the binding
#: and which libspdm and :mod:`hil.codec.secured` use for both.
SECURED_MESSAGE_VERSIONS = (S.VersionNumberEntry(1, 2), S.VersionNumberEntry(1, 1))
#: What this responder can do (DSP0274 CAPABILITIES flags); the same flags in 1.2 and 1.3.
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
#: KEY_EXCHANGE_RSP HeartbeatPeriod when both sides set HBEAT_CAP.  A session that sees no
#: request for twice this long is terminated (DSP0274 1.2/1.3, HEARTBEAT clause).
HEARTBEAT_PERIOD_S = 60
MAX_SESSIONS = 4
SLOT_MASK = 0x01  # one certificate slot, slot 0 (DeviceCert model)

#: A handler for VENDOR_DEFINED requests inside a session (IDE_KM, TDISP): the session id and
#: the request in; the response payload out, None where the protocol says the request gets no
#: response, or :class:`VendorRequestRefused` for an SPDM ERROR.
VendorHandler = Callable[[int, S.VendorDefinedRequest], Awaitable[bytes | None]]


class VendorRequestRefused(Exception):
    """Raised by a :data:`VendorHandler`: answer the VENDOR_DEFINED_REQUEST with SPDM ERROR
    ``error_code``.  For requests the vendor protocol defines no response to but that cannot
    succeed: DSP0274 1.3, "SPDM response codes": "Upon an unsuccessful completion of an SPDM
    operation, the ERROR response message should be returned"."""

    def __init__(self, error_code: int, why: str, error_data: int = 0) -> None:
        super().__init__(why)
        self.error_code = error_code
        self.error_data = error_data


class ConnectionState(Enum):
    NOT_STARTED = auto()  # nothing yet, or after an error that needs GET_VERSION
    AFTER_VERSION = auto()
    AFTER_CAPABILITIES = auto()
    NEGOTIATED = auto()  # ALGORITHMS sent


_R = S.RequestCode

#: Which requests each connection state takes outside a session (DSP0274 "SPDM messaging
#: protocol": GET_VERSION, GET_CAPABILITIES and NEGOTIATE_ALGORITHMS come first, in order).
ALLOWED: dict[ConnectionState, frozenset[int]] = {
    ConnectionState.NOT_STARTED: frozenset({_R.GET_VERSION}),
    ConnectionState.AFTER_VERSION: frozenset({_R.GET_VERSION, _R.GET_CAPABILITIES}),
    ConnectionState.AFTER_CAPABILITIES: frozenset({_R.GET_VERSION, _R.NEGOTIATE_ALGORITHMS}),
    ConnectionState.NEGOTIATED: frozenset(
        {
            _R.GET_VERSION,
            _R.GET_DIGESTS,
            _R.GET_CERTIFICATE,
            _R.CHALLENGE,
            _R.GET_MEASUREMENTS,
            _R.KEY_EXCHANGE,
            _R.VENDOR_DEFINED_REQUEST,
        }
    ),
}
#: Requests DSP0274 1.3 Table 6 ("SPDM request and response messages validity") prohibits
#: outside a session: answered ERROR(SessionRequired) once the connection is negotiated (1.2+).
#: FINISH is prohibited outside one unless both sides set HANDSHAKE_IN_THE_CLEAR_CAP, which
#: this responder never does.
SESSION_ONLY = frozenset({_R.FINISH, _R.HEARTBEAT, _R.KEY_UPDATE, _R.END_SESSION})
#: The encapsulated request flow's two requests (DSP0274 1.2 §10.18-10.19): in a session's
#: handshake phase they carry mutual authentication (1.3 "Session-based mutual
#: authentication"); anywhere else this responder has nothing of its own to ask.
ENCAP_REQUESTS = frozenset({_R.GET_ENCAPSULATED_REQUEST, _R.DELIVER_ENCAPSULATED_RESPONSE})
#: What each session phase takes (Table 6, "Session phases"); anything else inside a session
#: is UnexpectedRequest (Table 6: "If, during the session handshake phase, an unexpected
#: request is received ... ERROR ... UnexpectedRequest").
SESSION_PHASES: dict[bool, frozenset[int]] = {
    False: frozenset({_R.FINISH}) | ENCAP_REQUESTS,  # handshake phase
    True: frozenset(  # application phase
        {
            _R.GET_MEASUREMENTS,
            _R.GET_DIGESTS,
            _R.GET_CERTIFICATE,
            _R.HEARTBEAT,
            _R.KEY_UPDATE,
            _R.END_SESSION,
            _R.VENDOR_DEFINED_REQUEST,
        }
    )
    | ENCAP_REQUESTS,
}
#: Requests that reset M1 to VCA while no CHALLENGE has completed on the connection
#: (DSP0274 M1/M2 transcript rules: "If the Requester issued GET_MEASUREMENTS or KEY_EXCHANGE
#: or FINISH ... or END_SESSION ... and skipped CHALLENGE completion, M1 and M2 are reset").
M1_RESET = frozenset(
    {_R.GET_MEASUREMENTS, _R.KEY_EXCHANGE, _R.FINISH, _R.HEARTBEAT, _R.KEY_UPDATE, _R.END_SESSION}
)


def _requester_flags_problem(flags: int) -> str | None:
    """An illegal combination of Requester flags (DSP0274 1.2/1.3, requester flag table)."""
    f = S.CapFlag
    session_caps = f.ENCRYPT | f.MAC
    exchanges = f.KEY_EX | f.PSK
    if flags & exchanges and not flags & session_caps:
        return "KEY_EX_CAP or PSK_CAP without ENCRYPT_CAP or MAC_CAP"
    if flags & session_caps and not flags & exchanges:
        return "ENCRYPT_CAP or MAC_CAP without KEY_EX_CAP or PSK_CAP"
    if flags & f.HANDSHAKE_IN_THE_CLEAR and not flags & f.KEY_EX:
        return "HANDSHAKE_IN_THE_CLEAR_CAP without KEY_EX_CAP"
    if flags & f.PUB_KEY_ID and flags & (f.CERT | f.MULTI_KEY_ONLY | f.MULTI_KEY_NEG):
        return "PUB_KEY_ID_CAP with CERT_CAP or MULTI_KEY_CAP"
    return None


@dataclass(frozen=True)
class Measurement:
    """One measurement block the device reports (DMTF format)."""

    index: int
    value_type: int
    value: bytes
    raw: bool = False


class _SpdmError(Exception):
    """Internal: answer with this ERROR."""

    def __init__(self, code: int, data: int = 0, why: str = "", extended: bytes = b"") -> None:
        super().__init__(why or S.ErrorCode(code).name)
        self.code = code
        self.data = data
        self.extended = extended


@dataclass
class _Session:
    session_id: int
    secured: SecuredSession
    transcript: bytes  # VCA || Ct || K || F (so far)
    l1: bytes  # VCA || the measurement exchanges inside this session since the last signed one
    heartbeat_period: int
    last_request: float
    established: bool = False
    #: What changes once the response now being sealed is out (new keys, the end).
    after_seal: list[Callable[[], None]] = field(default_factory=list)
    #: KEY_EXCHANGE_RSP MutAuthRequested (0: the requester is not asked to authenticate).
    mut_auth: int = 0
    #: The encapsulated flow that fetches the requester's chain (MutAuthRequested bit 1/2).
    encap: EncapsulatedFlow | None = None
    #: What FINISH's signature is checked with, once the device holds the requester's chain.
    requester: RequesterProof | None = None


@dataclass
class _Negotiated:
    version: int
    hash_alg: HashAlg
    base_asym: int
    base_hash: int
    meas_hash: int
    dhe: DheGroup | None
    aead: int
    opaque_fmt1: bool
    sizes: S.NegotiatedSizes
    req_asym: int = 0  # ReqBaseAsymSel (mutual authentication), 0 if none
    chain: bytes = b""  # slot 0's SPDM certificate chain under the negotiated hash


@dataclass
class SpdmResponder:
    """Serves SPDM for one device.  ``handle`` is the DSM's entry point for DOE objects."""

    identity: Identity
    measurements: tuple[Measurement, ...]
    vendor_handler: VendorHandler | None = None
    on_session_end: Callable[[int], None] | None = None
    random: Callable[[int], bytes] = os.urandom
    #: The versions VERSION offers (DSP0274 1.2 and 1.3 by default; a subset serves a peer
    #: that must meet exactly one).
    versions: tuple[int, ...] = SUPPORTED_VERSIONS
    heartbeat_period_s: int = HEARTBEAT_PERIOD_S
    #: The device's clock in seconds (the heartbeat timeout); the simulator's time in a sim.
    clock: Callable[[], float] = time.monotonic
    #: Whether sessions require the requester to authenticate (mutual authentication).
    mutual_auth: MutualAuthPolicy = field(default_factory=MutualAuthPolicy)
    state: ConnectionState = ConnectionState.NOT_STARTED
    sessions: dict[int, _Session] = field(default_factory=dict)
    errors_sent: int = 0
    #: Sessions whose FINISH carried a requester signature that verified.
    mutual_authentications: int = 0
    #: The version the first GET_CAPABILITIES after GET_VERSION selected (None before).
    version: int | None = None
    _vca: bytes = b""
    _m1: bytes = b""
    _l1: bytes = b""
    _challenged: bool = False  # a CHALLENGE completed on this connection
    _unusable: bool = False  # ALGORITHMS selected nothing: only GET_VERSION is served
    _req_caps: int = 0
    _req_data_transfer_size: int = 0
    _neg: _Negotiated | None = None

    def __post_init__(self) -> None:
        unknown = [v for v in self.versions if v not in SUPPORTED_VERSIONS]
        if not self.versions or unknown:
            raise LocalProtocolError(
                f"SPDM versions {[hex(v) for v in self.versions]}: this responder serves "
                f"{', '.join(S.SpdmVersion(v).text for v in SUPPORTED_VERSIONS)}"
            )
        if not 0 <= self.heartbeat_period_s <= 0xFF:
            raise LocalProtocolError("HeartbeatPeriod is one byte of seconds (0..255)")

    @property
    def caps(self) -> int:
        """CAPABILITIES Flags: :data:`RESPONDER_CAPS`, with MUT_AUTH_CAP and ENCAP_CAP when
        the device authenticates requesters (a responder with MUT_AUTH_CAP sets ENCAP_CAP:
        DSP0274 1.1's rule, which the DMTF validator checks at every version)."""
        if self.mutual_auth.enabled:
            return RESPONDER_CAPS | S.CapFlag.MUT_AUTH | S.CapFlag.ENCAP
        return RESPONDER_CAPS

    # -- DOE entry point ------------------------------------------------------------------------
    async def handle(self, obj: DataObject) -> DataObject | None:
        """A CMA/SPDM or Secured CMA/SPDM object in; the response object (or None) out.

        None only where the object gets no response by the spec: another vendor's or type's
        object (PCIe §6.30.1: an unsupported data object type is silently discarded), IDE_KM
        or TDISP in the clear, and the secured-message cases of :meth:`_secured`.
        """
        self.expire_sessions()
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

    def expire_sessions(self) -> None:
        """End every established session that has seen no request for twice its
        HeartbeatPeriod (DSP0274 1.2/1.3, HEARTBEAT: the Responder shall terminate it).

        Called on every object received; a host with its own timer may call it as well.
        """
        now = self.clock()
        for session_id, session in list(self.sessions.items()):
            period = session.heartbeat_period
            if session.established and period and now - session.last_request > 2 * period:
                log.info("session %#010x: no request for 2 x %d s; terminated", session_id, period)
                self._end_session(session_id)

    # -- plain (type 01h) -----------------------------------------------------------------------
    async def _plain(self, data: bytes) -> bytes | None:
        request_version = data[0] if data else 0
        try:
            if self._unusable and data[1:2] != bytes((_R.GET_VERSION,)):
                # DSP0274 1.3, NEGOTIATE_ALGORITHMS: after a negotiation that selected nothing
                # the Responder should answer RequestResynch until GET_VERSION.
                raise _SpdmError(S.ErrorCode.REQUEST_RESYNCH, why="no algorithms were selected")
            request, raw = self._decode(data)
            if isinstance(request, S.VendorDefinedRequest) and request.pci_protocol_id in (
                S.PciProtocolId.IDE_KM,
                S.PciProtocolId.TDISP,
            ):
                # PCIe §6.33.3 (IDE_KM) and §11.2.2 (TDISP): a message not transferred in a
                # secured session must not be used and must not result in a response.
                log.info("PCI-SIG protocol %d outside a session ignored", request.pci_protocol_id)
                return None
            code = request.CODE
            if code in ENCAP_REQUESTS and self.state is ConnectionState.NEGOTIATED:
                # No basic mutual authentication (CHALLENGE_AUTH BasicMutAuthReq) is asked for,
                # so outside a session no encapsulated request is ever pending.
                raise self._nothing_pending(code)
            if code not in ALLOWED[self.state]:
                if self.state is ConnectionState.NEGOTIATED and code in SESSION_ONLY:
                    raise _SpdmError(
                        S.ErrorCode.SESSION_REQUIRED,
                        why=f"{_R(code).name} is prohibited outside a session (Table 6)",
                    )
                raise _SpdmError(
                    S.ErrorCode.UNEXPECTED_REQUEST,
                    why=f"{_R(code).name} in state {self.state.name}",
                )
            self._reset_transcripts(code, None)
            return self._fit(self._dispatch(request, raw))
        except _SpdmError as exc:
            if data[1:2] == bytes((_R.GET_MEASUREMENTS,)):
                self._l1 = self._vca  # L1 holds answered exchanges only; start again
            return self._error(exc, request_version)

    def _acceptable_versions(self) -> tuple[int, ...]:
        if self.version is not None:
            return (self.version,)
        if self.state is ConnectionState.AFTER_VERSION:
            return self.versions
        return ()

    def _decode(self, data: bytes) -> tuple[S.Request, bytes]:
        """Decode a request, trimming the DOE DW padding (up to 3 zero bytes) it may carry."""
        sizes = self._neg.sizes if self._neg else S.NegotiatedSizes()
        try:
            return S.decode_doe_padded(S.decode_request, data, sizes)
        except S.SpdmDecodeError as exc:
            last = exc
        if last.error_code == S.ErrorCode.VERSION_MISMATCH or (
            len(data) >= 2
            and data[1] != _R.GET_VERSION
            and self._acceptable_versions()
            and data[0] not in self._acceptable_versions()
        ):
            raise _SpdmError(S.ErrorCode.VERSION_MISMATCH, why=str(last)) from None
        raise _SpdmError(last.error_code, last.error_data, str(last)) from None

    def _error_version(self, request_version: int) -> int:
        """The SPDMVersion of an ERROR: the selected version once there is one; while the
        first GET_CAPABILITIES is selecting it, that request's version if it is offered; 1.0
        otherwise, the one format both sides read before a version is selected (DSP0274 1.3,
        GET_VERSION clause: an invalid GET_VERSION's ERROR carries 0x10)."""
        if self.version is not None:
            return self.version
        if self.state is ConnectionState.AFTER_VERSION and request_version in self.versions:
            return request_version
        return S.SpdmVersion.V10

    def _error(self, exc: _SpdmError, request_version: int) -> bytes:
        self.errors_sent += 1
        log.info("SPDM ERROR %s: %s", S.ErrorCode(exc.code).name, exc)
        return S.ErrorResponse(
            version=self._error_version(request_version),
            error_code=exc.code,
            error_data=exc.data,
            extended=exc.extended,
        ).encode()

    def _fit(self, rsp: bytes) -> bytes:
        """DSP0274 1.3, CAPABILITIES clause: a response larger than the requester's
        MaxSPDMmsgSize (= its DataTransferSize without CHUNK_CAP, which this responder lacks)
        is answered with ERROR(ResponseTooLarge) carrying the response's size."""
        limit = self._req_data_transfer_size
        if limit and len(rsp) > limit:
            raise _SpdmError(
                S.ErrorCode.RESPONSE_TOO_LARGE,
                why=f"response of {len(rsp)} bytes, the requester takes {limit}",
                extended=len(rsp).to_bytes(4, "little"),
            )
        return rsp

    def _check_version(self, request: S.Request) -> None:
        if request.version != self.version:
            raise _SpdmError(
                S.ErrorCode.VERSION_MISMATCH,
                why=f"request version {request.version:#x}, selected {self.version!r}",
            )

    def _reset_transcripts(self, code: int, session: _Session | None) -> None:
        """What a request accepted for processing does to M1 and L1 before it is answered."""
        if session is None:
            if code != _R.GET_MEASUREMENTS:
                self._l1 = self._vca
            if code == _R.GET_DIGESTS or (code in M1_RESET and not self._challenged):
                self._m1 = self._vca
        elif code != _R.GET_MEASUREMENTS:
            session.l1 = self._vca

    def _dispatch(self, request: S.Request, raw: bytes) -> bytes:
        if not isinstance(request, S.GetVersion | S.GetCapabilities):
            self._check_version(request)
        match request:
            case S.GetVersion():
                return self._version(raw)
            case S.GetCapabilities():
                return self._capabilities(request, raw)
            case S.NegotiateAlgorithms():
                return self._algorithms(request, raw)
            case S.GetDigests():
                return self._digests(raw, in_session=False)
            case S.GetCertificate():
                return self._certificate(request, raw, in_session=False)
            case S.Challenge():
                return self._challenge(request, raw)
            case S.GetMeasurements():
                return self._measurements(request, raw, None)
            case S.KeyExchange():
                return self._key_exchange(request, raw)
            case S.VendorDefinedRequest():
                # DSP0274 1.3 "SPDM request codes": an unsupported request gets
                # UnsupportedRequest; no vendor protocol is served outside a session.
                raise _SpdmError(
                    S.ErrorCode.UNSUPPORTED_REQUEST,
                    _R.VENDOR_DEFINED_REQUEST,
                    "no vendor-defined protocol outside a session",
                )
        raise _SpdmError(S.ErrorCode.UNEXPECTED_REQUEST)  # pragma: no cover - table guards

    # -- VCA ------------------------------------------------------------------------------------
    def _reset(self) -> None:
        """GET_VERSION starts the connection again; the sessions it held end with it."""
        self.state = ConnectionState.NOT_STARTED
        self.version = None
        self._vca = self._m1 = self._l1 = b""
        self._challenged = self._unusable = False
        self._req_caps = self._req_data_transfer_size = 0
        self._neg = None
        for session_id in list(self.sessions):
            self._end_session(session_id)

    def _version(self, raw: bytes) -> bytes:
        self._reset()
        entries = tuple(S.SpdmVersion(v).entry() for v in self.versions)
        rsp = S.VersionResponse(entries=entries).encode()
        self._vca = raw + rsp
        self.state = ConnectionState.AFTER_VERSION
        return rsp

    def _capabilities(self, request: S.GetCapabilities, raw: bytes) -> bytes:
        if request.version not in self.versions:
            raise _SpdmError(
                S.ErrorCode.VERSION_MISMATCH,
                why=f"GET_CAPABILITIES at {request.version:#x}, VERSION offered "
                f"{[hex(v) for v in self.versions]}",
            )
        version = request.version
        if request.data_transfer_size < S.MIN_DATA_TRANSFER_SIZE:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why="DataTransferSize below 42")
        if request.ct_exponent > 23:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why="CTExponent above 23 (PCIe)")
        if request.supported_algorithms_requested:
            # DSP0274 1.3, GET_CAPABILITIES: Param1 bit 0 set towards a responder without
            # CHUNK_CAP "shall" get ERROR(InvalidRequest).
            raise _SpdmError(
                S.ErrorCode.INVALID_REQUEST, why="Supported Algorithms Block without CHUNK_CAP"
            )
        problem = _requester_flags_problem(request.flags)
        if problem:
            # DSP0274 1.3, CAPABILITIES: an illegal flag combination from the Requester
            # "shall" get ERROR(InvalidRequest).
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=problem)
        self._req_caps = request.flags
        self._req_data_transfer_size = request.data_transfer_size
        rsp = S.Capabilities(
            version=version,
            ct_exponent=CT_EXPONENT,
            flags=self.caps,
            data_transfer_size=MAX_MESSAGE,
            max_spdm_msg_size=MAX_MESSAGE,
        ).encode()
        self.version = version
        self._vca += raw + rsp
        self.state = ConnectionState.AFTER_CAPABILITIES
        return rsp

    def _leaf_curve(self) -> tuple[int, int, HashAlg, DheGroup]:
        key = self.identity.key
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise LocalProtocolError(f"device key is {type(key).__name__}: only ECDSA is served")
        curve = key.curve
        if isinstance(curve, ec.SECP384R1):
            return S.BaseAsymAlgo.ECDSA_P384, S.BaseHashAlgo.SHA_384, SHA384, DheGroup.SECP384R1
        if isinstance(curve, ec.SECP256R1):
            return S.BaseAsymAlgo.ECDSA_P256, S.BaseHashAlgo.SHA_256, SHA256, DheGroup.SECP256R1
        raise LocalProtocolError(f"device key on {curve.name}: only P-256/P-384 are served")

    def _algorithms(self, request: S.NegotiateAlgorithms, raw: bytes) -> bytes:
        version = request.version
        asym, base_hash, hash_alg, our_dhe = self._leaf_curve()
        if not request.base_asym_algo & asym or not request.base_hash_algo & base_hash:
            # DSP0274 1.3, NEGOTIATE_ALGORITHMS: no common algorithm of a type -> ALGORITHMS
            # with those selections zero; every later request gets RequestResynch.
            log.info("no common signature or hash algorithm: nothing selected")
            rsp = S.Algorithms(version=version).encode()
            self._vca += raw + rsp
            self._unusable = True
            self.state = ConnectionState.NEGOTIATED
            return rsp
        offered = {s.alg_type: s.supported for s in request.alg_structs}
        dhe = our_dhe if offered.get(S.AlgType.DHE, 0) & our_dhe else None
        aead = (
            S.AeadSuite.AES_256_GCM
            if offered.get(S.AlgType.AEAD, 0) & S.AeadSuite.AES_256_GCM
            else 0
        )
        key_sched = offered.get(S.AlgType.KEY_SCHEDULE, 0) & S.KeySchedule.SPDM
        dmtf_meas = bool(request.measurement_specification & S.MeasurementSpec.DMTF)
        # MeasurementHashAlgo: one bit when MeasurementSpecificationSel is set, else 0.
        meas_hash = 0
        if dmtf_meas:
            meas_hash = {
                S.BaseHashAlgo.SHA_384: S.MeasurementHashAlgo.SHA_384,
                S.BaseHashAlgo.SHA_256: S.MeasurementHashAlgo.SHA_256,
            }[base_hash]
        structs = []
        if S.AlgType.DHE in offered:
            structs.append(S.AlgStruct(S.AlgType.DHE, int(dhe or 0)))
        if S.AlgType.AEAD in offered:
            structs.append(S.AlgStruct(S.AlgType.AEAD, int(aead)))
        req_asym = 0
        if self.mutual_auth.enabled and self._req_caps & S.CapFlag.MUT_AUTH:
            # DSP0274 1.3 Table 25: ReqBaseAsymAlg is the algorithm the Responder verifies
            # requester signatures with; "if the Responder will not send any messages that
            # require a signature, this value should be set to zero", which is the case for
            # a requester without MUT_AUTH_CAP (never asked to authenticate).
            req_asym = self.mutual_auth.select_req_asym(offered.get(S.AlgType.REQ_BASE_ASYM_ALG, 0))
        if S.AlgType.REQ_BASE_ASYM_ALG in offered:
            structs.append(S.AlgStruct(S.AlgType.REQ_BASE_ASYM_ALG, req_asym))
        if S.AlgType.KEY_SCHEDULE in offered:
            structs.append(S.AlgStruct(S.AlgType.KEY_SCHEDULE, int(key_sched)))
        # The only opaque data format served is the general one (OpaqueDataFmt1); a requester
        # that offers only its vendor format gets no selection and no OpaqueData fields.
        fmt1 = bool(request.other_params & S.OtherParams.OPAQUE_FMT1)
        rsp_msg = S.Algorithms(
            version=version,
            measurement_specification_sel=S.MeasurementSpec.DMTF if dmtf_meas else 0,
            other_params_sel=S.OtherParams.OPAQUE_FMT1 if fmt1 else 0,
            measurement_hash_algo=meas_hash,
            base_asym_sel=asym,
            base_hash_sel=base_hash,
            alg_structs=tuple(structs),
        )
        rsp = rsp_msg.encode()
        self._vca += raw + rsp
        self._neg = _Negotiated(
            version=version,
            hash_alg=hash_alg,
            base_asym=asym,
            base_hash=base_hash,
            meas_hash=meas_hash,
            dhe=DheGroup(dhe) if dhe and aead and key_sched else None,
            aead=aead,
            opaque_fmt1=fmt1,
            sizes=S.NegotiatedSizes.from_algorithms(rsp_msg),
            req_asym=req_asym,
        )
        self._m1 = self._l1 = self._vca
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

    def _digests(self, raw: bytes, *, in_session: bool) -> bytes:
        digest = self.neg.hash_alg.digest(self._chain())
        rsp = S.Digests(
            version=self.neg.version,
            slot_mask=SLOT_MASK,
            digests=(digest,),
            # 1.3: Param1 SupportedSlotMask (the slots this device has at all).
            supported_slot_mask=SLOT_MASK if self.neg.version >= S.SpdmVersion.V13 else 0,
        ).encode()
        if not in_session:  # exchanges inside a session are not part of M1
            self._m1 += raw + rsp
        return rsp

    def _certificate(self, request: S.GetCertificate, raw: bytes, *, in_session: bool) -> bytes:
        if request.slot_id != 0:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"slot {request.slot_id} is empty")
        chain = self._chain()
        version = self.neg.version
        if request.slot_size_requested:
            # 1.3, GET_CERTIFICATE request attributes: RemainderLength = the bytes the slot
            # can store (Offset and Length ignored), PortionLength 0, no CertChain.
            rsp = S.Certificate(version=version, portion=b"", remainder_length=len(chain))
            return rsp.encode()
        if request.offset >= len(chain):
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why="offset past the chain")
        room = min(MAX_MESSAGE, self._req_data_transfer_size or MAX_MESSAGE) - 8
        length = min(request.length, room, len(chain) - request.offset)
        portion = chain[request.offset : request.offset + length]
        remainder = len(chain) - request.offset - length
        if request.length == 0:
            # 1.3, CERTIFICATE RemainderLength: Length 0 asks for the chain's actual size.
            remainder = len(chain)
        rsp_bytes = S.Certificate(
            version=version, slot_id=0, portion=portion, remainder_length=remainder
        ).encode()
        if not in_session:
            self._m1 += raw + rsp_bytes
        return rsp_bytes

    def _summary_hash(self, kind: int) -> bytes:
        if kind == S.MeasurementSummaryHashType.NONE:
            return b""
        blocks = self._blocks(S.MEASUREMENT_OP_ALL)
        if kind == S.MeasurementSummaryHashType.TCB:
            blocks = tuple(b for b in blocks if b.index == 1)
        return self.neg.hash_alg.digest(b"".join(b.encode() for b in blocks))

    def _sign(self, operation: SigningOperation, transcript: bytes) -> bytes:
        h = self.neg.hash_alg
        return sign(self.identity.key, self.neg.version, operation, h.digest(transcript), h)

    def _sig_size(self) -> int:
        return S.signature_size(self.neg.base_asym)

    def _challenge(self, request: S.Challenge, raw: bytes) -> bytes:
        if request.slot_id != 0:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"slot {request.slot_id} is empty")
        h = self.neg.hash_alg
        fields = {
            "version": self.neg.version,
            "slot_id": 0,
            "slot_mask": SLOT_MASK,
            "cert_chain_hash": h.digest(self._chain()),
            "nonce": self.random(32),
            "measurement_summary_hash": self._summary_hash(request.measurement_summary_hash_type),
            "requester_context": request.requester_context,  # 1.3: echoed
        }
        unsigned = S.ChallengeAuth(**fields, signature=bytes(self._sig_size())).encode()
        body = unsigned[: -self._sig_size()]
        transcript = self._m1 + raw + body
        signature = self._sign(SigningOperation.CHALLENGE_AUTH, transcript)
        self._m1 = self._vca  # M1 starts again after each CHALLENGE
        self._challenged = True
        return S.ChallengeAuth(**fields, signature=signature).encode()

    # -- measurements ---------------------------------------------------------------------------
    def _blocks(self, operation: int) -> tuple[S.MeasurementBlock, ...]:
        blocks = tuple(
            S.MeasurementBlock(m.index, m.value_type, m.value, m.raw) for m in self.measurements
        )
        if operation == S.MEASUREMENT_OP_ALL:
            return blocks
        return tuple(b for b in blocks if b.index == operation)

    def _measurements(
        self, request: S.GetMeasurements, raw: bytes, session: _Session | None
    ) -> bytes:
        op = request.operation
        if op not in (S.MEASUREMENT_OP_COUNT, S.MEASUREMENT_OP_ALL) and not self._blocks(op):
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"no measurement index {op}")
        if request.signature_requested and request.slot_id != 0:
            # SlotIDParam names the key to sign with: only slot 0 holds one here (0xF, the
            # provisioned public key, is not offered).
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"slot {request.slot_id} is empty")
        fields = {
            "version": self.neg.version,
            "total_count": len(self.measurements) if op == S.MEASUREMENT_OP_COUNT else 0,
            "slot_id": 0,
            "blocks": () if op == S.MEASUREMENT_OP_COUNT else self._blocks(op),
            "nonce": self.random(32),
            "requester_context": request.requester_context,  # 1.3: echoed
        }
        l1 = session.l1 if session is not None else self._l1
        if not request.signature_requested:
            rsp = self._fit(S.Measurements(**fields).encode())
            l1 += raw + rsp
        else:
            unsigned = S.Measurements(**fields, signature=bytes(self._sig_size())).encode()
            self._fit(unsigned)
            transcript = l1 + raw + unsigned[: -self._sig_size()]
            signature = self._sign(SigningOperation.MEASUREMENTS, transcript)
            rsp = S.Measurements(**fields, signature=signature).encode()
            l1 = self._vca
        if session is not None:
            session.l1 = l1
        else:
            self._l1 = l1
        return rsp

    # -- sessions -------------------------------------------------------------------------------
    def _secured_version(self, request: S.KeyExchange) -> S.VersionNumberEntry | None:
        """The DSP0277 version for the session: the most preferred of
        :data:`SECURED_MESSAGE_VERSIONS` the requester's OpaqueData lists (DSP0274 1.2/1.3,
        "General opaque data format"; DSP0277 version negotiation).  None without the general
        opaque data format, where no OpaqueData is exchanged."""
        if not self.neg.opaque_fmt1:
            return None
        try:
            offered = S.OpaqueSupportedVersions.decode(request.opaque_data).versions
        except S.SpdmDecodeError as exc:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"opaque data: {exc}") from None
        names = {(v.major, v.minor) for v in offered}
        for ours in SECURED_MESSAGE_VERSIONS:
            if (ours.major, ours.minor) in names:
                return ours
        raise _SpdmError(
            S.ErrorCode.INVALID_REQUEST,
            why=f"no common secured-message version in {[f'{v.major}.{v.minor}' for v in offered]}",
        )

    def _new_session_id(self, req_session_id: int) -> tuple[int, int]:
        while True:
            rsp_id = int.from_bytes(self.random(2), "little")
            session_id = (rsp_id << 16) | req_session_id
            if rsp_id and session_id not in self.sessions:
                return rsp_id, session_id

    def _key_exchange(self, request: S.KeyExchange, raw: bytes) -> bytes:
        neg = self.neg
        if neg.dhe is None:
            raise _SpdmError(
                S.ErrorCode.UNSUPPORTED_REQUEST,
                _R.KEY_EXCHANGE,
                "no DHE/AEAD/key schedule negotiated",
            )
        if not self._req_caps & S.CapFlag.KEY_EX:
            raise _SpdmError(S.ErrorCode.UNEXPECTED_REQUEST, why="requester lacks KEY_EX_CAP")
        if request.slot_id != 0:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=f"slot {request.slot_id} is empty")
        if neg.version >= S.SpdmVersion.V13 and request.session_policy & 0x02:
            # 1.3 Table 70: EventAllPolicy without EVENT_CAP -> InvalidRequest (or discard).
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why="EventAllPolicy without EVENT_CAP")
        if len(self.sessions) >= MAX_SESSIONS:
            raise _SpdmError(S.ErrorCode.SESSION_LIMIT_EXCEEDED)
        secured_version = self._secured_version(request)
        dhe = DheKeyPair.generate(neg.dhe)
        try:
            secret = dhe.shared_secret(request.exchange_data)
        except PeerProtocolError as exc:
            raise _SpdmError(S.ErrorCode.INVALID_REQUEST, why=str(exc)) from None
        rsp_id, session_id = self._new_session_id(request.req_session_id)
        # HeartbeatPeriod: zero unless both endpoints support HEARTBEAT (Table 71).
        both_hbeat = self._req_caps & S.CapFlag.HBEAT and RESPONDER_CAPS & S.CapFlag.HBEAT
        heartbeat = self.heartbeat_period_s if both_hbeat else 0
        h = neg.hash_alg
        mut_auth = self._mut_auth_request()
        fields = {
            "version": neg.version,
            "heartbeat_period": heartbeat,
            "rsp_session_id": rsp_id,
            "mut_auth_requested": int(mut_auth),
            # SlotIDParam: the requester's slot for bit 0 (the provisioned chain is slot 0);
            # 0 otherwise (Table 71).
            "req_slot_id": 0,
            "random_data": self.random(32),
            "exchange_data": dhe.public_bytes(),
            "measurement_summary_hash": self._summary_hash(request.measurement_summary_hash_type),
            "opaque_data": S.OpaqueVersionSelection(secured_version).encode()
            if secured_version is not None
            else b"",
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
        schedule = KeySchedule(neg.version, h, AeadAlg.AES_256_GCM)
        handshake = schedule.handshake(secret, th1)
        verify_data = schedule.verify_data(handshake.response_finished_key, th1)
        rsp = S.KeyExchangeRsp(
            **fields, signature=signature, responder_verify_data=verify_data
        ).encode()
        session = _Session(
            session_id=session_id,
            secured=SecuredSession(session_id, schedule, handshake, requester=False),
            transcript=self._vca + ct + raw + rsp,
            l1=self._vca,
            heartbeat_period=heartbeat,
            last_request=self.clock(),
            mut_auth=int(mut_auth),
        )
        mode = self.mutual_auth.mode
        if mut_auth and mode.encapsulated:
            session.encap = EncapsulatedFlow.start(
                mode,
                version=neg.version,
                hash_alg=h,
                sizes=neg.sizes,
                policy=self.mutual_auth,
                req_asym=neg.req_asym,
            )
        elif mut_auth:
            session.requester = self.mutual_auth.provisioned(h)
        self.sessions[session_id] = session
        return rsp

    def _mut_auth_request(self) -> S.MutAuthRequest:
        """KEY_EXCHANGE_RSP MutAuthRequested for this requester (DSP0274 1.3 Table 71).

        Asked only of a requester that set MUT_AUTH_CAP ("Requester shall support mutual
        authentication", Table 13) and with a ReqBaseAsymAlg selected; the encapsulated modes
        also need its ENCAP_CAP (it "shall support GET_ENCAPSULATED_REQUEST ...").  libspdm's
        requester refuses a KEY_EXCHANGE_RSP that asks a requester without MUT_AUTH_CAP, and
        libspdm's responder asks only those that offer it; a device that requires mutual
        authentication therefore opens sessions with requesters that do not offer it without
        authenticating them.  Its policy decides what such a session may do (not SPDM's)."""
        mode = self.mutual_auth.mode
        if mode is MutAuthMode.NONE:
            return S.MutAuthRequest(0)
        why = ""
        if not self._req_caps & S.CapFlag.MUT_AUTH:
            why = "the requester did not set MUT_AUTH_CAP"
        elif not self.neg.req_asym:
            why = "no ReqBaseAsymAlg in common"
        elif mode.encapsulated and not self._req_caps & S.CapFlag.ENCAP:
            why = "the requester did not set ENCAP_CAP"
        if why:
            log.info("mutual authentication (%s) not asked: %s", mode.value, why)
            return S.MutAuthRequest(0)
        return mode.request

    async def _secured(self, data: bytes) -> bytes | None:
        """A secured message.  No response where DSP0277 drops the record: too short to
        name a session, a session that does not exist, a record that fails authentication
        (which also ends the session: its sequence numbers can no longer agree) or that is
        malformed inside."""
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
            log.warning("session %#010x: %s; session ended", session_id, exc)
            self._end_session(session_id)
            return None
        except PeerProtocolError as exc:
            log.warning("session %#010x: malformed record: %s", session_id, exc)
            return None
        session.last_request = self.clock()
        rsp = await self._in_session(session, inner)
        actions, session.after_seal = session.after_seal, []
        sealed = session.secured.seal(rsp) if rsp is not None else None
        for action in actions:
            action()
        return sealed

    async def _in_session(self, session: _Session, data: bytes) -> bytes | None:
        request_version = data[0] if data else 0
        try:
            request, raw = self._decode(data)
            self._check_version(request)
            if request.CODE not in SESSION_PHASES[session.established]:
                phase = "application" if session.established else "handshake"
                raise _SpdmError(
                    S.ErrorCode.UNEXPECTED_REQUEST,
                    why=f"{_R(request.CODE).name} in the session's {phase} phase",
                )
            self._reset_transcripts(request.CODE, session)
            match request:
                case S.Finish():
                    return self._finish(session, request, raw)
                case S.Heartbeat():
                    return S.HeartbeatAck(version=self.neg.version).encode()
                case S.KeyUpdate():
                    return self._key_update(session, request)
                case S.EndSession():
                    session.after_seal.append(lambda: self._end_session(session.session_id))
                    return S.EndSessionAck(version=self.neg.version).encode()
                case S.GetMeasurements():
                    return self._measurements(request, raw, session)
                case S.GetDigests():
                    return self._digests(raw, in_session=True)
                case S.GetCertificate():
                    return self._certificate(request, raw, in_session=True)
                case S.VendorDefinedRequest():
                    return await self._vendor(session, request)
                case S.GetEncapsulatedRequest():
                    return self._get_encapsulated(session)
                case S.DeliverEncapsulatedResponse():
                    return self._deliver_encapsulated(session, request)
            raise _SpdmError(S.ErrorCode.UNEXPECTED_REQUEST)  # pragma: no cover
        except _SpdmError as exc:
            if data[1:2] == bytes((_R.GET_MEASUREMENTS,)):
                session.l1 = self._vca
            if exc.code == S.ErrorCode.DECRYPT_ERROR and not session.established:
                # DSP0274 1.2/1.3, session handshake phase: "If an error occurs in this phase
                # with ErrorCode=DecryptError, the session shall immediately terminate".  The
                # ERROR still goes out under the handshake keys.
                log.info("session %#010x: handshake failed; session ended", session.session_id)
                session.after_seal.append(lambda: self._end_session(session.session_id))
            return self._error(exc, request_version)

    # -- mutual authentication: the encapsulated flow in the handshake phase ------------------
    def _nothing_pending(self, code: int) -> _SpdmError:
        """GET_ENCAPSULATED_REQUEST / DELIVER_ENCAPSULATED_RESPONSE with no flow of ours in
        progress.  From 1.3 GET_ENCAPSULATED_REQUEST gets NoPendingRequests ("the Responder
        has no pending requests"); otherwise, and without ENCAP_CAP, UnexpectedRequest."""
        if (
            self.caps & S.CapFlag.ENCAP
            and code == _R.GET_ENCAPSULATED_REQUEST
            and self.neg.version >= S.SpdmVersion.V13
        ):
            return _SpdmError(S.ErrorCode.NO_PENDING_REQUESTS, why="no encapsulated request")
        return _SpdmError(
            S.ErrorCode.UNEXPECTED_REQUEST, why=f"{_R(code).name}: no encapsulated flow"
        )

    def _flow(self, session: _Session, code: int) -> EncapsulatedFlow:
        flow = session.encap
        if (
            flow is None
            or session.established
            or (flow.over and code == _R.GET_ENCAPSULATED_REQUEST)
        ):
            raise self._nothing_pending(code)
        return flow

    def _get_encapsulated(self, session: _Session) -> bytes:
        flow = self._flow(session, _R.GET_ENCAPSULATED_REQUEST)
        try:
            return self._fit(flow.get_encapsulated_request().encode())
        except MutualAuthError as exc:
            raise _SpdmError(exc.error_code, why=str(exc)) from None

    def _deliver_encapsulated(
        self, session: _Session, request: S.DeliverEncapsulatedResponse
    ) -> bytes:
        flow = self._flow(session, _R.DELIVER_ENCAPSULATED_RESPONSE)
        try:
            ack = flow.deliver(request)
        except MutualAuthError as exc:
            raise _SpdmError(exc.error_code, why=str(exc)) from None
        if flow.over:
            session.requester = flow.proof
            if flow.proof is None:
                log.info(
                    "session %#010x: requester not authenticated: %s",
                    session.session_id,
                    flow.failure,
                )
        return self._fit(ack.encode())

    def _finish(self, session: _Session, request: S.Finish, raw: bytes) -> bytes:
        h = self.neg.hash_alg
        schedule = session.secured.schedule
        handshake = session.secured.handshake
        transcript = session.transcript  # VCA || Ct || KEY_EXCHANGE || KEY_EXCHANGE_RSP
        proof = self._requester_proof(session, request)
        if proof is not None:
            # DSP0274 1.3 "Transcript for FINISH signature, mutual authentication": then the
            # hash of the requester's chain (Param2 of FINISH), FINISH's header, signed with
            # the requester's leaf key.
            transcript += h.digest(proof.chain)
            if not self._requester_signed(proof, transcript + raw[:4], request.signature):
                raise _SpdmError(
                    S.ErrorCode.DECRYPT_ERROR,
                    why="requester not authenticated: the FINISH signature does not verify",
                )
        header_part = raw[: len(raw) - h.size]  # the header and the signature, if any
        th_req = h.digest(transcript + header_part)
        if not schedule.check_verify_data(
            handshake.request_finished_key, th_req, request.requester_verify_data
        ):
            raise _SpdmError(S.ErrorCode.DECRYPT_ERROR, why="RequesterVerifyData mismatch")
        rsp = S.FinishRsp(version=self.neg.version).encode()
        session.transcript = transcript + raw + rsp
        th2 = h.digest(session.transcript)
        if proof is not None:
            self.mutual_authentications += 1

        def enter_data_phase() -> None:  # FINISH_RSP itself goes under the handshake keys
            session.secured.enter_data_phase(th2)
            session.established = True
            session.last_request = self.clock()  # the heartbeat timer starts now

        session.after_seal.append(enter_data_phase)
        return rsp

    def _requester_proof(self, session: _Session, request: S.Finish) -> RequesterProof | None:
        """Check FINISH's Param1/Param2 against what KEY_EXCHANGE_RSP asked for; the chain
        the signature is to be checked with (None without mutual authentication)."""
        if not session.mut_auth:
            if request.signature:
                # Table 72: SignatureIncluded is for session-based mutual authentication,
                # which this session's KEY_EXCHANGE_RSP did not request.
                raise _SpdmError(
                    S.ErrorCode.INVALID_REQUEST,
                    why="FINISH carries a signature, but mutual authentication was not requested",
                )
            return None
        flow = session.encap
        if flow is not None and not flow.over:
            if flow.started:  # our request is out; the requester is to answer it first
                raise _SpdmError(
                    S.ErrorCode.REQUEST_IN_FLIGHT,
                    why="FINISH while an encapsulated request is outstanding",
                )
            raise _SpdmError(
                S.ErrorCode.UNEXPECTED_REQUEST,
                why="FINISH before the encapsulated request flow (MutAuthRequested bit 1)",
            )
        proof = session.requester
        if proof is None:
            why = flow.failure if flow is not None else "no requester chain"
            raise _SpdmError(S.ErrorCode.DECRYPT_ERROR, why=f"requester not authenticated: {why}")
        if not request.signature:
            # Table 72, Param1 bit 0: "This bit shall be set when Session-based mutual
            # authentication occurs".
            raise _SpdmError(
                S.ErrorCode.INVALID_REQUEST,
                why="FINISH without a signature, but mutual authentication was requested",
            )
        if request.req_slot_id != proof.slot:
            # Param2 names the requester chain the signature is checked with; the device holds
            # only the one it asked for (SlotIDParam, or the final ENCAPSULATED_RESPONSE_ACK).
            raise _SpdmError(
                S.ErrorCode.INVALID_REQUEST,
                why=f"FINISH names requester slot {request.req_slot_id}, the device asked for "
                f"slot {proof.slot}",
            )
        return proof

    def _requester_signed(self, proof: RequesterProof, transcript: bytes, signature: bytes) -> bool:
        h = self.neg.hash_alg
        try:
            return verify(
                proof.leaf_key,
                self.neg.version,
                SigningOperation.FINISH,
                h.digest(transcript),
                h,
                signature,
                asym_alg=self.neg.req_asym,
            )
        except LocalProtocolError:  # the key cannot make ReqBaseAsymSel
            return False

    def _end_session(self, session_id: int) -> None:
        if self.sessions.pop(session_id, None) is not None and self.on_session_end is not None:
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
        return S.KeyUpdateAck(version=self.neg.version, operation=op, tag=request.tag).encode()

    async def _vendor(self, session: _Session, request: S.VendorDefinedRequest) -> bytes | None:
        if self.vendor_handler is None:
            raise _SpdmError(S.ErrorCode.UNSUPPORTED_REQUEST, _R.VENDOR_DEFINED_REQUEST)
        try:
            payload = await self.vendor_handler(session.session_id, request)
        except VendorRequestRefused as refused:
            raise _SpdmError(refused.error_code, refused.error_data, str(refused)) from None
        if payload is None:
            return None
        return self._fit(
            S.VendorDefinedResponse(
                version=self.neg.version,
                standard_id=request.standard_id,
                vendor_id=request.vendor_id,
                payload=payload,
            ).encode()
        )
