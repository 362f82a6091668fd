"""Seeded device bugs (mutants) and the harness that proves the suite kills each one.

A vector that passes on a correct device proves nothing unless it fails on a broken one.  Each
:class:`Mutant` is one small, realistic bug in the device side of the fake rig (the firmware in
:mod:`hil.firmware`, the fake hardware in :mod:`hil._fake_hw`, the mailbox in :mod:`hil.fake`),
applied at run time by patching one method and restoring it afterwards; no file is edited.
:func:`run` applies each mutant alone, runs the vectors in this process on the fake rig, and
records which vectors fail: those kill it.  A mutant no vector kills is a hole in the suite.

``shadowed`` marks a bug that cannot be observed from the outside because another layer
enforces the same rule (the firmware and the hardware both check it): it is listed so the
reason is written down, and a survivor there is expected, not a hole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import _fake_hw, _fake_tlp
from . import _regs as R
from .codec import ide_km as K
from .codec import spdm as S
from .codec import tdisp as T
from .codec.doe import PCI_SIG_VENDOR_ID, DataObject, DiscoveryResponse, DoeType, decode_length
from .codec.secured import peek_session_id
from .codec.spdm_crypto import KeySchedule, SigningOperation
from .fake import FakeConfigSpace, FakeDoe
from .firmware import Dsm, spdm_responder
from .firmware.ide_km import IdeKmResponder
from .firmware.regs import stream_slots
from .firmware.spdm_responder import ALLOWED, ConnectionState, SpdmResponder
from .firmware.tdisp import LOCK_FLAGS_SUPPORTED as TDISP_LOCK_FLAGS_SUPPORTED
from .firmware.tdisp import TdispResponder, _Refused
from .ide_model import IdeRx
from .rigs import Rig, find_rig
from .transport import DmaOutcome
from .vectors import Outcome, Vector, VectorResult, default_suite

__all__ = ["MUTANTS", "UNMUTATED", "Mutant", "MutantResult", "run", "run_one", "unnamed"]


@dataclass(frozen=True)
class Mutant:
    id: str
    #: The rule the bug breaks, with the clause that states it.
    breaks: str
    #: The vectors expected to kill it (the harness reports the ones that actually do).
    killed_by: tuple[str, ...]
    #: Patches the device side while the context is open, restores it on exit.
    apply: Callable[[], contextlib.AbstractContextManager[None]]
    #: Why the bug cannot be observed, when another layer enforces the same rule.
    shadowed: str = ""
    #: For a shadowed mutant: the vectors that exercise the rule and still pass with the bug
    #: (the evidence that it cannot be observed; a test holds them to it).
    checked_by: tuple[str, ...] = ()
    #: An HDL mutant: top-level parameters of the simulated endpoint that seed the bug (they
    #: default to the correct behaviour); it runs on a sim rig, from a build of its own.
    hdl: Mapping[str, int] = field(default_factory=dict)
    #: HDL parameters that choose a configuration of the endpoint rather than seed the bug
    #: (a build without an optional feature): the named vectors must pass on a build with these
    #: alone, then fail with ``hdl`` added.
    config: Mapping[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` (a class's method, a module's constant) set to ``value`` while open."""
    original = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _on_every_dsm(
    patch: Callable[[Dsm], None],
) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """A mutant that patches each firmware instance as it is built."""
    original = Dsm.__post_init__

    def post_init(self: Dsm) -> None:
        original(self)
        patch(self)

    return lambda: _patched(Dsm, "__post_init__", post_init)


def _both(
    *parts: Callable[[], contextlib.AbstractContextManager[None]],
) -> Callable[[], contextlib.AbstractContextManager[None]]:
    @contextlib.contextmanager
    def apply() -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for part in parts:
                stack.enter_context(part())
            yield

    return apply


# -- TDISP: LOCK's default stream ---------------------------------------------------------------


async def _stream_by_id_only(self: TdispResponder, session_id: int, stream_id: int) -> int:
    """LOCK takes the stream configured with the Stream ID if this session owns the streams:
    no check of its keys or of its Secure state."""
    from .firmware.regs import TDI_NUM_STREAMS, stream_state

    if self.ide_km.owner != session_id:
        raise _Refused(T.ErrorCode.INVALID_REQUEST, "the stream's keys came from no session")
    count = (await self.regs.read(TDI_NUM_STREAMS)) & 0xF
    for j in range(count):
        if (await self.regs.read(stream_state(j))) >> 24 == stream_id:
            return j
    raise _Refused(T.ErrorCode.INVALID_REQUEST, f"no stream has Stream ID {stream_id}")


def _hw_lock_any_stream(self: _fake_hw.FakeTdi, op: int, stream: int) -> _fake_hw.TdiCmdStatus:
    """The hardware's LOCK binds a stream whether it is Secure or not."""
    if op == _fake_hw.TdiOp.LOCK and self.state == _fake_hw.TdiState.CONFIG_UNLOCKED:
        self.state, self.bound = _fake_hw.TdiState.CONFIG_LOCKED, stream
        return _fake_hw.TdiCmdStatus.DONE
    return _ORIGINAL_TDI_COMMAND(self, op, stream)


_ORIGINAL_TDI_COMMAND = _fake_hw.FakeTdi._command
_fw_lock_any_stream = lambda: _patched(TdispResponder, "_default_stream", _stream_by_id_only)  # noqa: E731
_hw_lock_not_secure = lambda: _patched(_fake_hw.FakeTdi, "_command", _hw_lock_any_stream)  # noqa: E731


async def _keys_from_any_session(self: TdispResponder, session_id: int, stream_id: int) -> int:
    """The session check of LOCK is skipped: keys that came from another session will do."""
    owner = self.ide_km.owner
    self.ide_km.owner = session_id
    try:
        return await _ORIGINAL_DEFAULT_STREAM(self, session_id, stream_id)
    finally:
        self.ide_km.owner = owner


_ORIGINAL_DEFAULT_STREAM = TdispResponder._default_stream


# -- TDISP: the nonce, session end, configuration writes ----------------------------------------


def _constant_nonce(dsm: Dsm) -> None:
    assert dsm.tdisp is not None
    dsm.tdisp.entropy = lambda n: bytes(range(n))


def _start_without_nonce(dsm: Dsm) -> None:
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp._start

    async def start(session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        assert isinstance(msg, T.StartInterfaceRequest)
        if tdisp.nonce is not None:
            msg = T.StartInterfaceRequest(interface_id=msg.interface_id, nonce=tdisp.nonce)
        return await original(session_id, msg)

    tdisp._start = start  # type: ignore[method-assign]


def _session_end_ignored(dsm: Dsm) -> None:
    assert dsm.tdisp is not None

    async def session_ended(session_id: int) -> None:
        return None

    dsm.tdisp.session_ended = session_ended  # type: ignore[method-assign]


def _error_only_in_run(self: _fake_hw.FakeTdi, cause: _fake_hw.TdiCause) -> None:
    """A configuration write breaks the lock only in RUN, not in CONFIG_LOCKED."""
    if cause == _fake_hw.TdiCause.CONFIG_WRITE and self.state != _fake_hw.TdiState.RUN:
        return
    _ORIGINAL_TDI_ERROR(self, cause)


_ORIGINAL_TDI_ERROR = _fake_hw.FakeTdi._error


# -- IDE_KM: session binding --------------------------------------------------------------------


def _key_mgmt_in_the_clear(dsm: Dsm) -> None:
    """IDE_KM requests other than QUERY are served in the clear, as if the owner sent them."""
    spdm = dsm.spdm
    original = spdm._plain

    async def plain(data: bytes) -> bytes | None:
        ide_km = dsm.ide_km
        if len(data) > 12 and data[1] == S.RequestCode.VENDOR_DEFINED_REQUEST and ide_km:
            request, _ = spdm._decode(data)
            assert isinstance(request, S.VendorDefinedRequest)
            payload = request.payload
            if (
                request.pci_protocol_id == S.PciProtocolId.IDE_KM
                and len(payload) > 1
                and payload[1] != K.ObjectId.QUERY
                and ide_km.owner is not None
            ):
                answer = await ide_km.handle(ide_km.owner, request)
                if answer is not None:
                    return S.VendorDefinedResponse(
                        version=request.version,
                        standard_id=request.standard_id,
                        vendor_id=request.vendor_id,
                        payload=answer,
                    ).encode()
        return await original(data)

    spdm._plain = plain  # type: ignore[method-assign]


async def _query_not_bound(
    self: IdeKmResponder, session_id: int, request: S.VendorDefinedRequest
) -> bytes | None:
    """QUERY from a session other than the owner answered as if the owner sent it."""
    payload = request.payload
    if len(payload) > 1 and payload[1] == K.ObjectId.QUERY and self.owner is not None:
        session_id = self.owner
    return await _ORIGINAL_IDE_KM_HANDLE(self, session_id, request)


async def _only_query_bound(
    self: IdeKmResponder, session_id: int, request: S.VendorDefinedRequest
) -> bytes | None:
    """QUERY is bound to the owning session; KEY_PROG, K_SET_GO and K_SET_STOP from any other
    session are served as if the owner sent them."""
    payload = request.payload
    if len(payload) > 1 and payload[1] != K.ObjectId.QUERY and self.owner is not None:
        session_id = self.owner
    return await _ORIGINAL_IDE_KM_HANDLE(self, session_id, request)


_ORIGINAL_IDE_KM_HANDLE = IdeKmResponder.handle


# -- SPDM ---------------------------------------------------------------------------------------


def _challenge_over_vca_only(
    self: SpdmResponder, operation: SigningOperation, transcript: bytes
) -> bytes:
    """CHALLENGE_AUTH signed over VCA + CHALLENGE + response: M1 forgets DIGESTS/CERTIFICATE."""
    if operation == SigningOperation.CHALLENGE_AUTH and transcript.startswith(self._m1):
        transcript = self._vca + transcript[len(self._m1) :]
    return _ORIGINAL_SIGN(self, operation, transcript)


def _measurements_wrong_context(
    self: SpdmResponder, operation: SigningOperation, transcript: bytes
) -> bytes:
    """MEASUREMENTS signed with the CHALLENGE_AUTH signing context (1.2+)."""
    if operation == SigningOperation.MEASUREMENTS:
        operation = SigningOperation.CHALLENGE_AUTH
    return _ORIGINAL_SIGN(self, operation, transcript)


_ORIGINAL_SIGN = SpdmResponder._sign


def _key_update_ignored(self: SpdmResponder, session: Any, request: S.KeyUpdate) -> bytes:
    """KEY_UPDATE acknowledged, keys left as they were."""
    return S.KeyUpdateAck(
        version=self.neg.version, operation=request.operation, tag=request.tag
    ).encode()


def _end_session_kept(self: SpdmResponder, session_id: int) -> None:
    """END_SESSION acknowledged, the session kept open."""


# -- reset ----------------------------------------------------------------------------------------


def _flr_keeps_tdi(self: _fake_hw.FakeTdi) -> None:
    """FLR/reset wipes the IDE keys but leaves the TDI state and binding."""
    state, bound, cause = self.state, self.bound, self.cause
    _ORIGINAL_TDI_RESET(self)
    self.state, self.bound, self.cause = state, bound, cause


_ORIGINAL_TDI_RESET = _fake_hw.FakeTdi.reset


async def _bind_without_wipe(self: IdeKmResponder, session_id: int) -> bool:
    """A new session binds the streams and keeps the ended owner's keys."""
    self.wipe_pending = False
    return await _ORIGINAL_BIND(self, session_id)


_ORIGINAL_BIND = IdeKmResponder._bind


async def _tdisp_any_session(
    self: TdispResponder, session_id: int, request: S.VendorDefinedRequest
) -> bytes | None:
    """TDISP from any session is served, whoever owns the streams."""
    owner = self.ide_km.owner
    if owner is not None:
        session_id = owner
    return await _ORIGINAL_TDISP_HANDLE(self, session_id, request)


_ORIGINAL_TDISP_HANDLE = TdispResponder.handle


def _tdisp_in_the_clear(dsm: Dsm) -> None:
    """TDISP requests in the clear are served as if the streams' owner sent them."""
    spdm = dsm.spdm
    original = spdm._plain

    async def plain(data: bytes) -> bytes | None:
        if len(data) > 12 and data[1] == S.RequestCode.VENDOR_DEFINED_REQUEST and dsm.tdisp:
            request, _ = spdm._decode(data)
            assert isinstance(request, S.VendorDefinedRequest)
            if request.pci_protocol_id == S.PciProtocolId.TDISP:
                owner = dsm.ide_km.owner if dsm.ide_km else None
                answer = await dsm.tdisp.handle(owner or 0, request)
                if answer is not None:
                    return S.VendorDefinedResponse(
                        version=request.version,
                        standard_id=request.standard_id,
                        vendor_id=request.vendor_id,
                        payload=answer,
                    ).encode()
        return await original(data)

    spdm._plain = plain  # type: ignore[method-assign]


Handler = Callable[[TdispResponder, int, T.TdispMessage], Awaitable[T.TdispMessage]]


def _any_state(handler: Handler) -> Handler:
    """``handler`` with the firmware's check of the TDI state taken out."""

    async def unchecked(
        self: TdispResponder, session_id: int, msg: T.TdispMessage
    ) -> T.TdispMessage:
        async def require(*states: T.TdiState) -> T.TdiState:
            return await self._state()

        self._require = require  # type: ignore[method-assign]
        try:
            return await handler(self, session_id, msg)
        finally:
            del self._require

    return unchecked


# -- DOE ----------------------------------------------------------------------------------------


def _overflow_without_error(self: FakeDoe) -> None:
    """An object longer than the mailbox is dropped without setting DOE Error."""
    self.wmbx.clear()


def _abort_keeps_response(self: FakeDoe) -> None:
    """Abort clears Error and the write mailbox but keeps a response already queued."""
    kept = list(self.rmbx)
    _ORIGINAL_DOE_ABORT(self)
    self.rmbx.extend(kept)


_ORIGINAL_DOE_ABORT = FakeDoe._abort


def _discovery_next_index_wrong(self: FakeDoe, obj: DataObject) -> None:
    """Discovery answers the last entry with Next Index = the table's length, not 0."""
    payload = obj.payload
    if obj.type == 0 and len(payload) == 4 and payload[:2] != b"\xff\xff" and payload[3] == 0:
        obj = DataObject(obj.vendor_id, obj.type, payload[:3] + bytes((len(self.features),)))
    _ORIGINAL_DOE_QUEUE(self, obj)


_ORIGINAL_DOE_QUEUE = FakeDoe._queue


# -- SPDM: transcripts of the signed and MACed messages -------------------------------------------


def _key_exchange_without_cert_hash(
    self: SpdmResponder, operation: SigningOperation, transcript: bytes
) -> bytes:
    """KEY_EXCHANGE_RSP signed over VCA + KEY_EXCHANGE + response: Hash(cert chain) left out."""
    if operation == SigningOperation.KEY_EXCHANGE_RSP:
        size = self.neg.hash_alg.size
        transcript = self._vca + transcript[len(self._vca) + size :]
    return _ORIGINAL_SIGN(self, operation, transcript)


def _measurements_l1_this_exchange_only(
    self: SpdmResponder, operation: SigningOperation, transcript: bytes
) -> bytes:
    """MEASUREMENTS signed over VCA + this exchange: the unsigned exchanges before it dropped."""
    if operation == SigningOperation.MEASUREMENTS and len(self._l1) > len(self._vca):
        if transcript.startswith(self._l1):
            transcript = self._vca + transcript[len(self._l1) :]
    return _ORIGINAL_SIGN(self, operation, transcript)


def _verify_data_over_unsigned(self: SpdmResponder, request: S.KeyExchange, raw: bytes) -> bytes:
    """ResponderVerifyData over the hash of KEY_EXCHANGE_RSP without its signature."""
    rsp = _ORIGINAL_KEY_EXCHANGE(self, request, raw)
    session = list(self.sessions.values())[-1]
    h = self.neg.hash_alg
    body = rsp[: len(rsp) - self._sig_size() - h.size]
    ct = h.digest(self._chain())
    secured = session.secured
    verify_data = secured.schedule.verify_data(
        secured.handshake.response_finished_key, h.digest(self._vca + ct + raw + body)
    )
    rsp = rsp[: len(rsp) - h.size] + verify_data
    session.transcript = self._vca + ct + raw + rsp
    return rsp


_ORIGINAL_KEY_EXCHANGE = SpdmResponder._key_exchange


def _finish_unchecked(self: SpdmResponder, session: Any, request: S.Finish, raw: bytes) -> bytes:
    """FINISH accepted whatever its RequesterVerifyData."""
    with _patched(KeySchedule, "check_verify_data", lambda *args: True):
        return _ORIGINAL_FINISH(self, session, request, raw)


def _finish_th2_without_response(
    self: SpdmResponder, session: Any, request: S.Finish, raw: bytes
) -> bytes:
    """The application-phase keys derived from a TH2 that leaves out FINISH_RSP."""
    rsp = _ORIGINAL_FINISH(self, session, request, raw)
    session.after_seal.pop()
    th2 = self.neg.hash_alg.digest(session.transcript[: len(session.transcript) - len(rsp)])

    def enter_data_phase() -> None:
        session.secured.enter_data_phase(th2)
        session.established = True
        session.last_request = self.clock()

    session.after_seal.append(enter_data_phase)
    return rsp


_ORIGINAL_FINISH = SpdmResponder._finish


# -- SPDM: request order and error codes ---------------------------------------------------------


async def _algorithms_defaulted(self: SpdmResponder, data: bytes) -> bytes | None:
    """A request that needs NEGOTIATE_ALGORITHMS, sent right after CAPABILITIES, is served
    with the algorithms the device prefers instead of UnexpectedRequest."""
    if (
        self.state is ConnectionState.AFTER_CAPABILITIES
        and len(data) > 1
        and data[1] in ALLOWED[ConnectionState.NEGOTIATED] - {S.RequestCode.GET_VERSION}
    ):
        vca = self._vca
        offer = S.NegotiateAlgorithms(
            version=self.version or S.SpdmVersion.V12,
            other_params=S.OtherParams.OPAQUE_FMT1,
            base_asym_algo=S.BaseAsymAlgo.ECDSA_P384 | S.BaseAsymAlgo.ECDSA_P256,
            base_hash_algo=S.BaseHashAlgo.SHA_384 | S.BaseHashAlgo.SHA_256,
            alg_structs=(
                S.AlgStruct(S.AlgType.DHE, S.DheGroup.SECP384R1 | S.DheGroup.SECP256R1),
                S.AlgStruct(S.AlgType.AEAD, S.AeadSuite.AES_256_GCM),
                S.AlgStruct(S.AlgType.KEY_SCHEDULE, S.KeySchedule.SPDM),
            ),
        )
        self._algorithms(offer, offer.encode())
        self._vca = self._m1 = self._l1 = vca
    return await _ORIGINAL_PLAIN(self, data)


_ORIGINAL_PLAIN = SpdmResponder._plain


async def _unknown_code_ignored(self: SpdmResponder, data: bytes) -> bytes | None:
    """A request with a code that is no SPDM request gets no answer instead of ERROR."""
    if len(data) < 2 or data[1] not in _REQUEST_CODES:
        return None
    return await _ORIGINAL_PLAIN(self, data)


_REQUEST_CODES = frozenset(int(c) for c in S.RequestCode)


def _version_header_selected(self: SpdmResponder, raw: bytes) -> bytes:
    """VERSION carries SPDMVersion 1.2 in its header instead of 1.0."""
    rsp = _ORIGINAL_VERSION(self, raw)
    rsp = bytes((S.SpdmVersion.V12,)) + rsp[1:]
    self._vca = raw + rsp
    return rsp


_ORIGINAL_VERSION = SpdmResponder._version


def _algorithms_without_measurement_spec(
    self: SpdmResponder, request: S.NegotiateAlgorithms, raw: bytes
) -> bytes:
    """ALGORITHMS selects no measurement specification though DMTF was offered."""
    return _ORIGINAL_ALGORITHMS(self, replace(request, measurement_specification=0), raw)


_ORIGINAL_ALGORITHMS = SpdmResponder._algorithms


def _digest_of_certificates_only(self: SpdmResponder, raw: bytes, *, in_session: bool) -> bytes:
    """DIGESTS gives the hash of the DER certificates, not of the whole SPDM chain."""
    rsp = _ORIGINAL_DIGESTS(self, raw, in_session=in_session)
    h = self.neg.hash_alg
    wrong = h.digest(self._chain()[4 + h.size :])
    fixed = rsp[:4] + wrong + rsp[4 + h.size :]
    if not in_session:
        self._m1 = self._m1[: len(self._m1) - len(rsp)] + fixed
    return fixed


_ORIGINAL_DIGESTS = SpdmResponder._digests


def _chain_with_wrong_root_hash(self: SpdmResponder) -> bytes:
    """The SPDM certificate chain's RootHash is not the hash of its root certificate."""
    chain = _ORIGINAL_CHAIN(self)
    size = self.neg.hash_alg.size
    return chain[:4] + bytes(b ^ 0xFF for b in chain[4 : 4 + size]) + chain[4 + size :]


_ORIGINAL_CHAIN = SpdmResponder._chain


def _version_unchecked(self: SpdmResponder, request: S.Request) -> None:
    """Requests are served whatever their SPDMVersion."""


def _decode_any_version(self: SpdmResponder, data: bytes) -> tuple[S.Request, bytes]:
    """Requests decoded without the negotiated version (the decoder's own check off)."""
    neg = self._neg
    if neg is None or neg.sizes.version is None:
        return _ORIGINAL_DECODE(self, data)
    sizes = neg.sizes
    neg.sizes = replace(sizes, version=None)
    try:
        return _ORIGINAL_DECODE(self, data)
    finally:
        neg.sizes = sizes


_ORIGINAL_DECODE = SpdmResponder._decode


def _certificate_of_any_slot(
    self: SpdmResponder, request: S.GetCertificate, raw: bytes, *, in_session: bool
) -> bytes:
    """GET_CERTIFICATE of an empty slot answered with slot 0's chain."""
    return _ORIGINAL_CERTIFICATE(self, replace(request, slot_id=0), raw, in_session=in_session)


_ORIGINAL_CERTIFICATE = SpdmResponder._certificate


async def _bad_record_answered(self: SpdmResponder, obj: DataObject) -> DataObject | None:
    """A secured record that fails authentication is answered, in its session, with ERROR
    InvalidRequest instead of being dropped (or answered DecryptError)."""
    session = None
    if obj.type == DoeType.SECURED_CMA_SPDM and len(obj.payload) >= 4:
        session = self.sessions.get(peek_session_id(obj.payload))
    rsp = await _ORIGINAL_RESPONDER_HANDLE(self, obj)
    if rsp is None and session is not None and session.session_id not in self.sessions:
        error = S.ErrorResponse(
            version=self.neg.version, error_code=S.ErrorCode.INVALID_REQUEST, error_data=0
        )
        sealed = session.secured.seal(error.encode())
        return DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, sealed)
    return rsp


async def _clear_vendor_answered_garbled(self: SpdmResponder, obj: DataObject) -> DataObject | None:
    """IDE_KM or TDISP in the clear gets an answer no host can take: a Secured CMA/SPDM object
    of no session (the host cannot open it, so a vector that takes "cannot read it" for "no
    answer" lets this pass)."""
    rsp = await _ORIGINAL_RESPONDER_HANDLE(self, obj)
    payload = obj.payload
    if (
        rsp is None
        and obj.type == DoeType.CMA_SPDM
        and len(payload) > 8
        and payload[1] == S.RequestCode.VENDOR_DEFINED_REQUEST
    ):
        return DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, bytes(12))
    return rsp


_ORIGINAL_RESPONDER_HANDLE = SpdmResponder.handle


async def _phase_errors_invalid(self: SpdmResponder, session: Any, data: bytes) -> bytes | None:
    """A request the session's phase does not take is answered InvalidRequest, not
    UnexpectedRequest."""
    rsp = await _ORIGINAL_IN_SESSION(self, session, data)
    if rsp and len(rsp) >= 4 and rsp[1] == S.ResponseCode.ERROR:
        if rsp[2] == S.ErrorCode.UNEXPECTED_REQUEST:
            rsp = rsp[:2] + bytes((S.ErrorCode.INVALID_REQUEST,)) + rsp[3:]
    return rsp


_ORIGINAL_IN_SESSION = SpdmResponder._in_session


# -- DOE: abort, discovery, length, errors ---------------------------------------------------------


def _abort_keeps_write_mailbox(self: FakeDoe) -> None:
    """Abort leaves the words already written in the write mailbox."""
    kept = list(self.wmbx)
    _ORIGINAL_DOE_ABORT(self)
    self.wmbx.extend(kept)


def _discovery_invalid_index_answered(self: FakeDoe, obj: DataObject) -> None:
    """A Discovery index past the table answers with the last entry instead of FFFFh."""
    if obj.type == DoeType.DISCOVERY and obj.payload[:2] == b"\xff\xff":
        vid, typ = self.features[-1]
        obj = DiscoveryResponse(vid, typ, 0).to_object()
    _ORIGINAL_DOE_QUEUE(self, obj)


def _discovery_omits_last(self: FakeDoe, obj: DataObject) -> None:
    """Discovery ends one entry early: the entry before the last says Next Index 0."""
    payload = obj.payload
    last = len(self.features) - 1
    if obj.type == DoeType.DISCOVERY and len(payload) == 4 and payload[3] == last:
        obj = DataObject(obj.vendor_id, obj.type, payload[:3] + b"\x00")
    _ORIGINAL_DOE_QUEUE(self, obj)


def _queue_replaces(self: FakeDoe, obj: DataObject) -> None:
    """A second response queued before the first is read replaces it."""
    self.rmbx.clear()
    _ORIGINAL_DOE_QUEUE(self, obj)


def _length_not_checked(self: FakeDoe) -> None:
    """An object whose DW count differs from its Length is taken as its DW count says."""
    if len(self.wmbx) >= 2 and decode_length(self.wmbx[1]) != len(self.wmbx):
        self.wmbx[1] = (self.wmbx[1] & ~0x3FFFF) | len(self.wmbx)
    _ORIGINAL_DOE_GO(self)


_ORIGINAL_DOE_GO = FakeDoe._go


def _status_write_clears_error(self: FakeDoe, reg: int, value: int, byte_enable: int = 0xF) -> None:
    """Writing 1 to Status.Error clears it, as if it were RW1C."""
    if reg == R.DOE_STATUS and byte_enable == 0xF and value & R.DOE_STATUS_ERROR:
        self.error = False
    _ORIGINAL_DOE_WRITE(self, reg, value, byte_enable)


def _partial_write_ignored(self: FakeDoe, reg: int, value: int, byte_enable: int = 0xF) -> None:
    """A partial (sub-DW) write to a mailbox register is dropped without setting Error."""
    if byte_enable != 0xF:
        return
    _ORIGINAL_DOE_WRITE(self, reg, value, byte_enable)


_ORIGINAL_DOE_WRITE = FakeDoe.write


def _capability_version_1(self: FakeDoe, reg: int) -> int:
    """The DOE capability header says version 1."""
    value = _ORIGINAL_DOE_READ(self, reg)
    if reg == R.DOE_HEADER:
        value = (value & ~(0xF << 16)) | (1 << 16)
    return value


_ORIGINAL_DOE_READ = FakeDoe.read


def _dsn_skips_doe(self: FakeConfigSpace, offset: int) -> int:
    """The Device Serial Number capability's next pointer skips the DOE capability."""
    value = _ORIGINAL_DSN(self, offset)
    if offset == 0x100:
        value = (value & 0xFFFFF) | (self.ide.offset << 20)
    return value


_ORIGINAL_DSN = FakeConfigSpace._dsn


# -- IDE_KM ---------------------------------------------------------------------------------------


def _every_port(self: IdeKmResponder) -> frozenset[int]:
    """Every PortIndex is taken as this port."""
    return frozenset(range(256))


async def _query_resp_claims_aggregation(self: IdeKmResponder, port_index: int) -> K.QueryResp:
    """QUERY_RESP reports Aggregation Supported the other way from configuration space (what a
    downgrade check exists to catch): claimed where it is not, denied where it is."""
    rsp = await _ORIGINAL_QUERY_RESP(self, port_index)
    return replace(rsp, capability=K.IdeCapability(rsp.capability.value ^ 1 << 4))


_ORIGINAL_QUERY_RESP = IdeKmResponder._query_resp


async def _tx_keys_refused(self: IdeKmResponder, msg: K.KeyProg) -> K.KpAck:
    """KEY_PROG of a Tx key is refused (Unsupported value) as if only Rx keys existed."""
    if msg.slot.direction == K.KeyDirection.TX:
        return self._ack(msg, K.KpAckStatus.UNSUPPORTED_VALUE)
    return await _ORIGINAL_KEY_PROG(self, msg)


async def _reserved_sub_stream_taken(self: IdeKmResponder, msg: K.KeyProg) -> K.KpAck:
    """KEY_PROG does not check the Sub-Stream for a reserved encoding."""
    if not msg.slot.valid and msg.port_index in self._ports():
        index = await self._stream_index(msg.stream_id)
        if index is not None:
            return self._ack(msg, K.KpAckStatus.UNSPECIFIED_FAILURE)  # the hardware has no slot
    return await _ORIGINAL_KEY_PROG(self, msg)


_ORIGINAL_KEY_PROG = IdeKmResponder._key_prog


_SLOT_WORDS = frozenset(stream_slots(j) for j in range(8))


async def _key_prog_over_armed(self: IdeKmResponder, msg: K.KeyProg) -> K.KpAck:
    """KEY_PROG does not check whether the slot's key set is in use."""
    regs = self.regs
    original_read = regs.read

    async def read(addr: int) -> int:
        value = await original_read(addr)
        # The armed bits of a stream's slot word read as 0 (the check sees nothing in use).
        return value & ~0xFFF if addr in _SLOT_WORDS else value

    regs.read = read  # type: ignore[method-assign]
    try:
        return await _ORIGINAL_KEY_PROG(self, msg)
    finally:
        del regs.read


async def _go_without_hardware(self: IdeKmResponder, msg: K.KSetGo | K.KSetStop) -> bytes | None:
    """K_SET_GO acknowledged without arming the key set in the hardware."""
    if isinstance(msg, K.KSetGo):
        return K.KGostopAck(
            stream_id=msg.stream_id, slot=msg.slot, port_index=msg.port_index
        ).encode()
    return await _ORIGINAL_GO_STOP(self, msg)


_ORIGINAL_GO_STOP = IdeKmResponder._go_stop


async def _wipe_selective_only(self: IdeKmResponder) -> None:
    """A new session's first QUERY/KEY_PROG wipes the Selective streams' keys only."""
    from .firmware.regs import CMD, CMD_WIPE, cap_word, command

    cap = K.IdeCapability(await self.regs.read(cap_word(1)))
    for index in range(cap.selective_block_count):
        await self.regs.write(CMD, command(CMD_WIPE, index, 0))


def _hw_stop_ignored(self: _fake_hw.FakeIdeCap, value: int) -> _fake_hw.IdeCmdStatus:
    """The hardware reports K_SET_STOP done and leaves the key set armed."""
    op, j = (value >> 16) & 0xF, (value >> 8) & 0xFF
    if op == 2 and j < self.total_streams:  # K_SET_STOP
        return _fake_hw.IdeCmdStatus.DONE
    return _ORIGINAL_IDE_COMMAND(self, value)


_ORIGINAL_IDE_COMMAND = _fake_hw.FakeIdeCap._command


# -- TDISP: states, nonce, report, header ----------------------------------------------------------


async def _lock_refused_only_when_locked(
    self: TdispResponder, session_id: int, msg: T.TdispMessage
) -> T.TdispMessage:
    """The firmware refuses LOCK only in CONFIG_LOCKED (not in RUN or ERROR)."""

    async def require(*states: T.TdiState) -> T.TdiState:
        state = await self._state()
        if state == T.TdiState.CONFIG_LOCKED:
            raise _Refused(T.ErrorCode.INVALID_INTERFACE_STATE, f"TDI is {state.name}")
        return state

    self._require = require  # type: ignore[method-assign]
    try:
        return await _ORIGINAL_LOCK(self, session_id, msg)
    finally:
        del self._require


_ORIGINAL_LOCK = TdispResponder._lock


def _hw_lock_unless_locked(self: _fake_hw.FakeTdi, op: int, stream: int) -> _fake_hw.TdiCmdStatus:
    """The hardware refuses LOCK only in CONFIG_LOCKED (not in RUN or ERROR)."""
    if op == _fake_hw.TdiOp.LOCK and self.state in (_fake_hw.TdiState.RUN, _fake_hw.TdiState.ERROR):
        if not self.ide.is_secure(stream):
            return _fake_hw.TdiCmdStatus.BAD_STREAM
        self.state, self.bound = _fake_hw.TdiState.CONFIG_LOCKED, stream
        return _fake_hw.TdiCmdStatus.DONE
    return _ORIGINAL_TDI_COMMAND(self, op, stream)


def _hw_relock(self: _fake_hw.FakeTdi, op: int, stream: int) -> _fake_hw.TdiCmdStatus:
    """The hardware takes LOCK again in CONFIG_LOCKED (it re-binds)."""
    if op == _fake_hw.TdiOp.LOCK and self.state == _fake_hw.TdiState.CONFIG_LOCKED:
        self.state = _fake_hw.TdiState.CONFIG_UNLOCKED
    return _ORIGINAL_TDI_COMMAND(self, op, stream)


def _hw_start_any_state(self: _fake_hw.FakeTdi, op: int, stream: int) -> _fake_hw.TdiCmdStatus:
    """The hardware takes START in any state."""
    if op == _fake_hw.TdiOp.START:
        self.state = _fake_hw.TdiState.RUN
        return _fake_hw.TdiCmdStatus.DONE
    return _ORIGINAL_TDI_COMMAND(self, op, stream)


def _hw_stop_refused_in(
    *states: _fake_hw.TdiState,
) -> Callable[[_fake_hw.FakeTdi, int, int], _fake_hw.TdiCmdStatus]:
    def command(self: _fake_hw.FakeTdi, op: int, stream: int) -> _fake_hw.TdiCmdStatus:
        if op == _fake_hw.TdiOp.STOP and self.state in states:
            return _fake_hw.TdiCmdStatus.NOT_ALLOWED
        return _ORIGINAL_TDI_COMMAND(self, op, stream)

    return command


async def _stop_refused_when_unlocked(
    self: TdispResponder, session_id: int, msg: T.TdispMessage
) -> T.TdispMessage:
    """STOP_INTERFACE in CONFIG_UNLOCKED answered INVALID_INTERFACE_STATE."""
    if await self._state() == T.TdiState.CONFIG_UNLOCKED:
        raise _Refused(T.ErrorCode.INVALID_INTERFACE_STATE, "already CONFIG_UNLOCKED")
    return await _ORIGINAL_STOP(self, session_id, msg)


_ORIGINAL_STOP = TdispResponder._stop


def _start_keeps_nonce(dsm: Dsm) -> None:
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp._start

    async def start(session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        nonce = tdisp.nonce
        rsp = await original(session_id, msg)
        tdisp.nonce = nonce  # not invalidated on entering RUN
        return rsp

    tdisp._start = start  # type: ignore[method-assign]


def _breaks_lock_except(
    skip: Callable[[_fake_hw.FakeTdi, int], bool],
) -> Callable[[_fake_hw.FakeTdi, int, int], bool]:
    def breaks_lock(self: _fake_hw.FakeTdi, reg: int, byte_enable: int) -> bool:
        if skip(self, reg):
            return False
        return _ORIGINAL_BREAKS_LOCK(self, reg, byte_enable)

    return breaks_lock


_ORIGINAL_BREAKS_LOCK = _fake_hw.FakeTdi._breaks_lock


def _is_bar(tdi: _fake_hw.FakeTdi, reg: int) -> bool:
    return reg in _fake_hw._REGS_BARS or reg == _fake_hw._REG_ROM


def _is_ide_register(tdi: _fake_hw.FakeTdi, reg: int) -> bool:
    return tdi.bound is not None and 4 * reg in tdi.ide.stream_block(tdi.bound)


def _reset_keeps_keys(self: _fake_hw.FakeTdi) -> None:
    """FLR/reset unlocks the TDI but leaves the IDE capability, its keys and Secure streams."""
    self._power_on()


async def _report_without_offset(self: TdispResponder) -> T.TdiReport:
    """The report's MMIO ranges leave out MMIO_REPORTING_OFFSET."""
    offset = self.mmio_reporting_offset
    self.mmio_reporting_offset = 0
    try:
        return await _ORIGINAL_TDI_REPORT(self)
    finally:
        self.mmio_reporting_offset = offset


_ORIGINAL_TDI_REPORT = TdispResponder.tdi_report


def _dispatch_patched(
    fix: Callable[[TdispResponder, T.Header], T.Header],
) -> Callable[..., Awaitable[T.TdispMessage]]:
    async def dispatch(
        self: TdispResponder, session_id: int, header: T.Header, payload: bytes
    ) -> T.TdispMessage:
        return await _ORIGINAL_DISPATCH(self, session_id, fix(self, header), payload)

    return dispatch


_ORIGINAL_DISPATCH = TdispResponder._dispatch


def _same_device_any_function(self: TdispResponder, header: T.Header) -> T.Header:
    """INTERFACE_ID compared on bus and device only: any function of it is taken as the TDI."""
    if header.interface_id.rid >> 3 == self.interface_id.rid >> 3:
        return replace(header, interface_id=self.interface_id)
    return header


def _any_minor_or_major(self: TdispResponder, header: T.Header) -> T.Header:
    """TDISPVersion checked on GET_TDISP_VERSION only."""
    if header.message_type != T.RequestCode.GET_TDISP_VERSION:
        return replace(header, version=T.VERSION_10)
    return header


async def _unsupported_without_code(
    self: TdispResponder, session_id: int, header: T.Header, payload: bytes
) -> T.TdispMessage:
    """UNSUPPORTED_REQUEST with ERROR_DATA 0 instead of the request code."""
    try:
        return await _ORIGINAL_DISPATCH(self, session_id, header, payload)
    except _Refused as refused:
        if refused.code == T.ErrorCode.UNSUPPORTED_REQUEST:
            raise _Refused(refused.code, str(refused)) from None
        raise


# -- TDISP: capabilities and the report, field by field -------------------------------------------


def _capabilities_with(
    **fields: Callable[[T.TdispCapabilities], int],
) -> Callable[..., Awaitable[T.TdispMessage]]:
    """TDISP_CAPABILITIES with ``fields`` recomputed from the correct response."""

    async def capabilities(
        self: TdispResponder, session_id: int, msg: T.TdispMessage
    ) -> T.TdispMessage:
        rsp = await _ORIGINAL_CAPABILITIES(self, session_id, msg)
        assert isinstance(rsp, T.TdispCapabilities)
        return replace(rsp, **{name: fn(rsp) for name, fn in fields.items()})

    return capabilities


_ORIGINAL_CAPABILITIES = TdispResponder._capabilities


async def _lock_flags_unchecked(
    self: TdispResponder, session_id: int, msg: T.TdispMessage
) -> T.TdispMessage:
    """LOCK takes FLAGS the device does not support as if they were not set."""
    assert isinstance(msg, T.LockInterfaceRequest)
    supported = int(TDISP_LOCK_FLAGS_SUPPORTED)
    return await _ORIGINAL_LOCK(self, session_id, replace(msg, flags=msg.flags & supported))


def _report_with(
    fix: Callable[[T.TdiReport], T.TdiReport],
) -> Callable[[TdispResponder], Awaitable[T.TdiReport]]:
    async def tdi_report(self: TdispResponder) -> T.TdiReport:
        return fix(await _ORIGINAL_TDI_REPORT(self))

    return tdi_report


def _msix_marked(report: T.TdiReport) -> T.TdiReport:
    """BAR0's range marked as holding the MSI-X table, on a function with no MSI-X."""
    first = replace(report.mmio_ranges[0], attributes=T.MmioAttr.MSIX_TABLE)
    return replace(report, mmio_ranges=(first, *report.mmio_ranges[1:]))


def _portion_patched(
    portion: Callable[[bytes, T.GetDeviceInterfaceReport, int], tuple[bytes, int]],
) -> Callable[..., Awaitable[T.TdispMessage]]:
    """GET_DEVICE_INTERFACE_REPORT answered with (portion, remainder) from ``portion``."""

    async def report(self: TdispResponder, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        assert isinstance(msg, T.GetDeviceInterfaceReport)
        await self._require(T.TdiState.CONFIG_LOCKED, T.TdiState.RUN)
        whole = (await self.tdi_report()).encode()
        data, remainder = portion(whole, msg, self.report_portion)
        return T.DeviceInterfaceReport(
            interface_id=self.interface_id, portion=data, remainder_length=remainder
        )

    return report


def _portion_ignores_length(
    whole: bytes, msg: T.GetDeviceInterfaceReport, size: int
) -> tuple[bytes, int]:
    """Portions of the responder's buffer size, whatever LENGTH asked for."""
    if msg.offset >= len(whole):
        raise _Refused(T.ErrorCode.INVALID_REQUEST, f"OFFSET {msg.offset}")
    data = whole[msg.offset : msg.offset + size]
    return data, len(whole) - msg.offset - len(data)


def _remainder_from_start(
    whole: bytes, msg: T.GetDeviceInterfaceReport, size: int
) -> tuple[bytes, int]:
    """REMAINDER_LENGTH counted from the report's start, not from OFFSET."""
    if msg.offset >= len(whole):
        raise _Refused(T.ErrorCode.INVALID_REQUEST, f"OFFSET {msg.offset}")
    data = whole[msg.offset : msg.offset + min(msg.length, size)]
    return data, max(len(whole) - len(data), 0) if msg.offset + len(data) < len(whole) else 0


def _offset_past_end_answered(
    whole: bytes, msg: T.GetDeviceInterfaceReport, size: int
) -> tuple[bytes, int]:
    """An OFFSET at or past the end answered with an empty portion, not an error."""
    data = whole[msg.offset : msg.offset + min(msg.length, size)]
    return data, max(len(whole) - msg.offset - len(data), 0)


# -- IDE_KM: KP_ACK status by status, key sets ----------------------------------------------------


async def _long_key_prog_taken(
    self: IdeKmResponder, session_id: int, payload: bytes, exc: Exception
) -> bytes | None:
    """A KEY_PROG longer than 48 bytes is programmed from its first 48 (no Incorrect Length)."""
    if len(payload) > 48 and payload[1] == K.ObjectId.KEY_PROG and self.owner == session_id:
        return (await self._key_prog(K.KeyProg.decode(payload[:48], strict=False))).encode()
    return await _ORIGINAL_MALFORMED(self, session_id, payload, exc)


_ORIGINAL_MALFORMED = IdeKmResponder._malformed


async def _port_as_value(self: IdeKmResponder, msg: K.KeyProg) -> K.KpAck:
    """An unsupported PortIndex gets KP_ACK 03h (Unsupported value) instead of 02h."""
    if msg.port_index not in self._ports():
        return self._ack(msg, K.KpAckStatus.UNSUPPORTED_VALUE)
    return await _ORIGINAL_KEY_PROG(self, msg)


async def _sub_stream_wrapped(self: IdeKmResponder, msg: K.KeyProg) -> K.KpAck:
    """The Sub-Stream is read from two bits: 0100b programs PR's slot."""
    if not msg.slot.valid and msg.slot.sub_stream & 0b11 != 0b11:
        msg = replace(msg, slot=replace(msg.slot, sub_stream=msg.slot.sub_stream & 0b11))
    return await _ORIGINAL_KEY_PROG(self, msg)


async def _ifv_unchecked(self: IdeKmResponder, msg: K.KeyProg) -> K.KpAck:
    """Any IFV is taken (and written to the slot)."""
    if msg.ifv != 1 and msg.slot.valid and msg.port_index in self._ports():
        if await self._stream_index(msg.stream_id) is not None:
            return self._ack(msg, K.KpAckStatus.SUCCESS)
    return await _ORIGINAL_KEY_PROG(self, msg)


async def _unknown_stream_unspecified(self: IdeKmResponder, msg: K.KeyProg) -> K.KpAck:
    """KEY_PROG for a Stream ID no stream has gets 04h (Unspecified failure)."""
    if msg.slot.valid and msg.port_index in self._ports():
        if await self._stream_index(msg.stream_id) is None:
            return self._ack(msg, K.KpAckStatus.UNSPECIFIED_FAILURE)
    return await _ORIGINAL_KEY_PROG(self, msg)


def _evaluate_key_set_0_only(self: _fake_hw.FakeIdeCap, j: int) -> None:
    """The hardware counts only key set 0 as a key set in use for Insecure -> Secure."""
    stream = self.streams[j]
    key_set_0 = all(stream.slots[c].armed for c in range(0, _fake_hw.NUM_SLOTS, 2))
    if not stream.secure and key_set_0 and stream.may_be_secure():
        stream.secure = True


_ORIGINAL_STREAM_END_INIT = _fake_tlp._StreamEnd.__init__
_ORIGINAL_END = _fake_tlp.FakeTlpPath._end


def _configure_refused(self: _fake_tlp.FakeTlpPath, req: Any, stream: int, t: bool) -> None:
    """FakeTlpPath._configure that answers every IDE Configuration Request UR."""
    cpl = _fake_tlp.Completion(
        completer_id=self.completer_id,
        requester_id=req.requester_id,
        tag=req.tag,
        status=_fake_tlp.CplStatus.UR,
    )
    self._send(cpl, stream, t)


def _stream_end_without_aggregation(
    self: _fake_tlp._StreamEnd,
    stream_id: int,
    pcrc: bool,
    tc: int | None,
    aggregation: bool,
    phe: int,
) -> None:
    """The device's end of a stream built as if the Port did not support aggregation."""
    _ORIGINAL_STREAM_END_INIT(self, stream_id, pcrc, tc, False, phe)


def _one_stream_end(self: _fake_tlp.FakeTlpPath, j: int) -> _fake_tlp._StreamEnd:
    """FakeTlpPath._end keeping one stream's receive state for the whole Port: the first
    stream used owns it, and another enabled stream's TLPs reach it (and are refused)."""
    first = next(iter(self._ends), j)
    end = _ORIGINAL_END(self, first)
    self._ends = {j: end} if first == j else {first: end}
    return end


def _evaluate_link_needs_rid_v(self: _fake_hw.FakeIdeCap, j: int) -> None:
    """The hardware asks a Link stream for RID Association V as well, a register its block
    does not have: a Link stream never becomes Secure."""
    if not self.streams[j].link:
        _ORIGINAL_EVALUATE(self, j)


_ORIGINAL_EVALUATE = _fake_hw.FakeIdeCap._evaluate


def _hw_stop_leaves_secure(self: _fake_hw.FakeIdeCap, value: int) -> _fake_hw.IdeCmdStatus:
    """K_SET_STOP of any key set takes a Secure stream to Insecure."""
    op, j = (value >> 16) & 0xF, (value >> 8) & 0xFF
    status = _ORIGINAL_IDE_COMMAND(self, value)
    if op == 2 and status == _fake_hw.IdeCmdStatus.DONE and self.is_secure(j):
        self._leave_secure(j, failure=False, send_fail_message=False)
    return status


def _hw_one_set_armed(self: _fake_hw.FakeIdeCap, value: int) -> _fake_hw.IdeCmdStatus:
    """K_SET_GO is refused while the other key set of the same slot pair is armed."""
    op, j, kss = (value >> 16) & 0xF, (value >> 8) & 0xFF, value & 0xFF
    if op == 1 and j < self.total_streams and kss >> 4 <= 2:
        code = (kss & 0x3) | ((kss >> 2) & 0xC)
        if self.streams[j].slots[code ^ 1].armed:
            return _fake_hw.IdeCmdStatus.NOT_LOADED
    return _ORIGINAL_IDE_COMMAND(self, value)


async def _query_resp_port_0(self: IdeKmResponder, port_index: int) -> K.QueryResp:
    """QUERY_RESP always names PortIndex 00h, whichever port was queried."""
    return replace(await _ORIGINAL_QUERY_RESP(self, port_index), port_index=0)


async def _go_stop_port_0_only(self: IdeKmResponder, msg: K.KSetGo | K.KSetStop) -> bytes | None:
    """K_SET_GO/K_SET_STOP are served at PortIndex 00h only (no ACK elsewhere)."""
    if msg.port_index != 0:
        return None
    return await _ORIGINAL_GO_STOP(self, msg)


# -- IDE capability: optional modes ---------------------------------------------------------------


def _control_hardwired(bits: int) -> Callable[[_fake_hw.FakeIdeCap, int, int, int], None]:
    """Stream Control ``bits`` read 0 whatever the IDE Capability advertises."""

    def write_control(self: _fake_hw.FakeIdeCap, j: int, merged: int, byte_enable: int) -> None:
        _ORIGINAL_WRITE_CONTROL(self, j, merged, byte_enable)
        self.streams[j].control &= ~bits

    return write_control


_ORIGINAL_WRITE_CONTROL = _fake_hw.FakeIdeCap._write_control


def _config_requests_writable(
    self: _fake_hw.FakeIdeCap, j: int, merged: int, byte_enable: int
) -> None:
    """The endpoint's streams keep a written Configuration Requests Enable (bit 9)."""
    _ORIGINAL_WRITE_CONTROL(self, j, merged, byte_enable)
    self.streams[j].control |= merged & (1 << 9)


# -- the fake's TLP path (hil._fake_tlp): the device's end only; the root port's model is not
# touched, so every check of the device's answers stays the reference model's ---------------


def _tlp_write_all_bytes(self: _fake_tlp.FakeTlpPath, offset: int, req: Any) -> None:
    self.memory[offset : offset + len(req.payload)] = req.payload


def _tlp_completions_on_key_set_0(self: _fake_tlp.FakeTlpPath, end: Any, cpl: Any, t: bool) -> Any:
    end.model.tx._choose(K.SubStream.COMPLETION, 0)  # whatever the Tx key set armed last
    return end.model.protect(cpl, t=t)


# -- the function's own requests (the DMA engine, §6.33.4) ------------------------------------

_ORIGINAL_TX_STREAMS = _fake_tlp.FakeTlpPath.tx_streams
_ORIGINAL_DMA_WRITE = _fake_tlp.FakeTlpPath.dma_write


def _tx_streams_with(**change: Any) -> Callable[[_fake_tlp.FakeTlpPath], list[Any]]:
    """tx_streams with each stream's fields changed by ``change`` (name -> stream -> value)."""

    def tx_streams(self: _fake_tlp.FakeTlpPath) -> list[Any]:
        return [
            dataclasses.replace(s, **{k: f(s) for k, f in change.items()})
            for s in _ORIGINAL_TX_STREAMS(self)
        ]

    return tx_streams


def _dma_insecure_sent_plain(
    self: _fake_tlp.FakeTlpPath, address: int, source: int, length_dw: int, **kw: Any
) -> Any:
    """A write for a stream that is not Secure goes out as a non-IDE TLP instead."""
    report = _ORIGINAL_DMA_WRITE(self, address, source, length_dw, **kw)
    if report.outcome is DmaOutcome.DISCARDED:
        data = bytes(self.memory[source : source + 4 * length_dw])
        req = _fake_tlp.MemWrite.for_bytes(address, data, requester_id=self.completer_id)
        self.sent.append(req.encode())
    return report


def _requests_on_key_set_0(self: _fake_tlp.FakeTlpPath, end: Any, req: Any, t: bool) -> Any:
    """The device's own writes stay on key set 0 whatever its Tx slots armed last."""
    end.model.tx._choose(K.SubStream.POSTED, 0)
    return end.model.protect(req, t=t)


_ORIGINAL_COMPLETE = _fake_tlp.FakeTlpPath._complete


def _reads_pr_sent_zero(self: _fake_tlp.FakeTlpPath, end: Any, req: Any, t: bool) -> Any:
    """The device's reads carry PR_Sent_Counter 0 whatever writes it sent before them."""
    if isinstance(req, _fake_tlp.MemRead):
        end.model.tx.pr_sent_npr = 0
    return end.model.protect(req, t=t)


def _complete_on_any_stream(self: _fake_tlp.FakeTlpPath, cpl: Any, stream: int | None) -> None:
    """A Completion for the DMA read is taken on whatever stream it came."""
    wait = self.read_wait
    _ORIGINAL_COMPLETE(self, cpl, wait[1] if wait is not None else stream)


_ORIGINAL_SEND_REQUEST = _fake_tlp.FakeTlpPath._send_request


def _requests_from_rid_0(self: _fake_tlp.FakeTlpPath, req: Any, tc: int, t: bool) -> Any:
    """The device's own requests carry Requester ID 0, not the function's ID."""
    return _ORIGINAL_SEND_REQUEST(self, dataclasses.replace(req, requester_id=0), tc, t)


def _completions_pr_sent_zero(self: _fake_tlp.FakeTlpPath, end: Any, cpl: Any, t: bool) -> Any:
    """Completions carry PR_Sent_Counter 0 whatever Posted Requests went before them."""
    end.model.tx.pr_sent_cpl = 0
    return end.model.protect(cpl, t=t)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "tdisp.lock.not_secure",
        "LOCK_INTERFACE accepted on a default stream that is configured but not keyed, not "
        "armed or not Secure (PCIe 6.x §11.3.8, Table 11-12); firmware and hardware both broken",
        ("tdisp.lock.stream_not_keyed",),
        _both(_fw_lock_any_stream, _hw_lock_not_secure),
    ),
    Mutant(
        "tdisp.lock.fw_no_stream_check",
        "the firmware's LOCK checks neither keys nor Secure (§11.3.8, Table 11-12)",
        (),
        _fw_lock_any_stream,
        shadowed="the hardware refuses LOCK of a stream that is not Secure (TDI_CMD status 3), "
        "and a stream is Secure only with a whole key set armed",
        checked_by=("tdisp.lock.stream_not_keyed",),
    ),
    Mutant(
        "tdisp.lock.hw_no_secure_check",
        "the hardware binds a stream that is not Secure at LOCK (§11.3.8)",
        (),
        _hw_lock_not_secure,
        shadowed="the firmware checks the keys and the Secure state before it asks for LOCK",
        checked_by=("tdisp.lock.stream_not_keyed",),
    ),
    Mutant(
        "tdisp.lock.keys_from_any_session",
        "LOCK accepted over a session other than the one that programmed the default stream's "
        "keys (§11.3.8: keys must come over the session of the LOCK; §6.33.3)",
        ("tdisp.lock.keys_from_ended_session",),
        lambda: _patched(TdispResponder, "_default_stream", _keys_from_any_session),
    ),
    Mutant(
        "tdisp.lock.nonce_repeats",
        "LOCK returns the same START_INTERFACE_NONCE every time (§11.3.9: a fresh nonce)",
        ("tdisp.start.nonce_reused",),
        _on_every_dsm(_constant_nonce),
    ),
    Mutant(
        "tdisp.start.nonce_unchecked",
        "START_INTERFACE accepted with a nonce other than LOCK's (§11.3.14, Table 11-19)",
        ("tdisp.start.wrong_nonce",),
        _on_every_dsm(_start_without_nonce),
    ),
    Mutant(
        "tdisp.session_end.no_error",
        "ending the session that locked the TDI leaves it locked (§11.4.5)",
        ("tdisp.session_end.error",),
        _on_every_dsm(_session_end_ignored),
    ),
    Mutant(
        "tdisp.config_write.locked_ignored",
        "a configuration write while CONFIG_LOCKED does not move the TDI to ERROR (§11.2)",
        ("tdisp.config_write.error",),
        lambda: _patched(_fake_hw.FakeTdi, "_error", _error_only_in_run),
    ),
    Mutant(
        "ide_km.key_mgmt_in_the_clear",
        "KEY_PROG, K_SET_GO and K_SET_STOP served outside a secured session (§6.33.3)",
        ("ide_km.outside_session.ignored",),
        _on_every_dsm(_key_mgmt_in_the_clear),
    ),
    Mutant(
        "ide_km.only_query_bound",
        "KEY_PROG, K_SET_GO and K_SET_STOP from a session other than the owner served "
        "(§6.33.3 session binding)",
        ("ide_km.session_binding",),
        lambda: _patched(IdeKmResponder, "handle", _only_query_bound),
    ),
    Mutant(
        "spdm.challenge.transcript_skips_certificate",
        "CHALLENGE_AUTH signed over a transcript without GET_DIGESTS/GET_CERTIFICATE "
        "(DSP0274 1.2 §10.8, §15: M1 = A + B + C)",
        ("spdm.challenge.signature",),
        lambda: _patched(SpdmResponder, "_sign", _challenge_over_vca_only),
    ),
    Mutant(
        "spdm.measurements.wrong_signing_context",
        "MEASUREMENTS signed with another operation's signing context (DSP0274 1.2 §10.11, "
        "§15: the combined SPDM prefix names the operation)",
        ("spdm.measurements.signed",),
        lambda: _patched(SpdmResponder, "_sign", _measurements_wrong_context),
    ),
    Mutant(
        "spdm.key_update.ignored",
        "KEY_UPDATE_ACK sent but the keys not updated (DSP0274 1.2 §10.12-10.16; DSP0277)",
        ("spdm.session.established_and_used",),
        lambda: _patched(SpdmResponder, "_key_update", _key_update_ignored),
    ),
    Mutant(
        "spdm.end_session.kept_open",
        "END_SESSION_ACK sent but the session stays usable (DSP0274 1.2 §10.17)",
        ("spdm.session.end_session",),
        lambda: _patched(SpdmResponder, "_end_session", _end_session_kept),
    ),
    Mutant(
        "tdisp.flr.keeps_state",
        "an FLR leaves a locked TDI locked (PCIe 6.x §11.2: FLR takes every TDI of the "
        "function to CONFIG_UNLOCKED)",
        ("tdisp.flr.unlocks",),
        lambda: _patched(_fake_hw.FakeTdi, "reset", _flr_keeps_tdi),
    ),
    Mutant(
        "doe.abort.keeps_response",
        "Abort leaves a queued response in the read mailbox (PCIe 6.x §6.30.2: Abort clears "
        "the mailboxes)",
        ("doe.abort.with_response_pending",),
        lambda: _patched(FakeDoe, "_abort", _abort_keeps_response),
    ),
    Mutant(
        "ide_km.new_session_keeps_keys",
        "after the owning session ends, a new session's first QUERY/KEY_PROG does not wipe "
        "the streams' keys (PCIe 6.x §6.33.3 session binding)",
        ("ide_km.session_end.wipes_keys",),
        lambda: _patched(IdeKmResponder, "_bind", _bind_without_wipe),
    ),
    Mutant(
        "tdisp.session_binding.any_session",
        "TDISP served from a session other than the one that owns the streams (PCIe 6.x "
        "§11.2.2, §6.33.3)",
        ("tdisp.session_binding.other_session_ignored",),
        lambda: _patched(TdispResponder, "handle", _tdisp_any_session),
    ),
    Mutant(
        "tdisp.outside_session.served",
        "TDISP served outside a secured session (PCIe 6.x §11.2.2)",
        ("tdisp.outside_session.ignored",),
        _on_every_dsm(_tdisp_in_the_clear),
    ),
    Mutant(
        "tdisp.report.in_unlocked",
        "GET_DEVICE_INTERFACE_REPORT answered in CONFIG_UNLOCKED (PCIe 6.x §11.3.10, Table 11-16)",
        ("tdisp.report.before_lock",),
        lambda: _patched(TdispResponder, "_report", _any_state(TdispResponder._report)),
    ),
    Mutant(
        "tdisp.lock.fw_any_state",
        "the firmware asks for LOCK in any TDI state (PCIe 6.x §11.3.8: CONFIG_UNLOCKED only)",
        (),
        lambda: _patched(TdispResponder, "_lock", _any_state(TdispResponder._lock)),
        shadowed="the hardware refuses LOCK outside CONFIG_UNLOCKED (TDI_CMD status 1), which "
        "the firmware answers INVALID_INTERFACE_STATE",
        checked_by=("tdisp.lock.twice", "tdisp.lock.outside_unlocked"),
    ),
    Mutant(
        "doe.oversize.no_error",
        "an object longer than the mailbox is dropped without setting DOE Error (PCIe 6.x §6.30.2)",
        ("doe.oversize.sets_error",),
        lambda: _patched(FakeDoe, "_set_error", _overflow_without_error),
    ),
    Mutant(
        "doe.discovery.next_index_wrong",
        "the last Discovery entry names a next index past the table, not 0 (PCIe 6.x §6.30.1.1)",
        ("doe.discovery.lists_features", "doe.back_to_back.exchanges"),
        lambda: _patched(FakeDoe, "_queue", _discovery_next_index_wrong),
    ),
    # -- SPDM transcripts, order and error codes --
    Mutant(
        "spdm.key_exchange.signature_skips_cert_hash",
        "KEY_EXCHANGE_RSP signed over a transcript without Hash(certificate chain) (DSP0274 1.2 "
        "§10.13, §15: TH = VCA + Ct + K)",
        ("spdm.session.established_and_used",),
        lambda: _patched(SpdmResponder, "_sign", _key_exchange_without_cert_hash),
    ),
    Mutant(
        "spdm.key_exchange.verify_data_skips_signature",
        "ResponderVerifyData computed over TH1 without KEY_EXCHANGE_RSP's signature (DSP0274 "
        "1.2 §10.13: the HMAC covers the transcript up to and with the signature)",
        ("spdm.session.established_and_used",),
        lambda: _patched(SpdmResponder, "_key_exchange", _verify_data_over_unsigned),
    ),
    Mutant(
        "spdm.finish.verify_data_unchecked",
        "FINISH accepted whatever its RequesterVerifyData (DSP0274 1.2 §10.14: DecryptError)",
        ("spdm.finish.bad_verify_data",),
        lambda: _patched(SpdmResponder, "_finish", _finish_unchecked),
    ),
    Mutant(
        "spdm.finish.th2_skips_finish_rsp",
        "the application-phase keys derived from a TH2 without FINISH_RSP (DSP0274 1.2 §10.14, "
        "DSP0277 key schedule: TH2 = VCA + Ct + K + F)",
        ("spdm.session.established_and_used",),
        lambda: _patched(SpdmResponder, "_finish", _finish_th2_without_response),
    ),
    Mutant(
        "spdm.measurements.l1_drops_unsigned",
        "MEASUREMENTS signed over VCA + the last exchange only, the unsigned GET_MEASUREMENTS "
        "before it dropped (DSP0274 1.2 §10.11, §15: L1)",
        ("spdm.measurements.signed",),
        lambda: _patched(SpdmResponder, "_sign", _measurements_l1_this_exchange_only),
    ),
    Mutant(
        "spdm.order.algorithms_defaulted",
        "GET_DIGESTS and CHALLENGE after CAPABILITIES served with default algorithms instead of "
        "UnexpectedRequest (DSP0274 1.2 §10.2, §9: NEGOTIATE_ALGORITHMS comes first)",
        ("spdm.negative.unexpected_request",),
        lambda: _patched(SpdmResponder, "_plain", _algorithms_defaulted),
    ),
    Mutant(
        "spdm.error.session_required_as_unexpected",
        "HEARTBEAT, KEY_UPDATE and END_SESSION outside a session answered UnexpectedRequest, "
        "not SessionRequired (DSP0274 1.2 §10.2)",
        ("spdm.negative.session_required",),
        lambda: _patched(spdm_responder, "SESSION_ONLY", frozenset()),
    ),
    Mutant(
        "spdm.error.in_session_invalid_request",
        "a request a session's phase does not take answered InvalidRequest, not "
        "UnexpectedRequest (DSP0274 1.2 §10.2, session phases)",
        ("spdm.session.unexpected_request",),
        lambda: _patched(SpdmResponder, "_in_session", _phase_errors_invalid),
    ),
    Mutant(
        "ide_km.query_not_bound",
        "QUERY from a session other than the one that bound the streams answered (PCIe 6.x "
        "§6.33.3 session binding)",
        ("ide_km.session_binding",),
        lambda: _patched(IdeKmResponder, "handle", _query_not_bound),
    ),
    Mutant(
        "spdm.capabilities.second_accepted",
        "a second GET_CAPABILITIES answered CAPABILITIES (DSP0274 1.2 §10.4, §9)",
        ("spdm.capabilities.second_request",),
        lambda: _patched(
            spdm_responder,
            "ALLOWED",
            {
                **ALLOWED,
                ConnectionState.AFTER_CAPABILITIES: ALLOWED[ConnectionState.AFTER_CAPABILITIES]
                | {S.RequestCode.GET_CAPABILITIES},
            },
        ),
    ),
    Mutant(
        "spdm.version.header_not_1_0",
        "VERSION sent with SPDMVersion 1.2 in its header (DSP0274 1.2 §10.3: always 0x10)",
        ("spdm.version.well_formed",),
        lambda: _patched(SpdmResponder, "_version", _version_header_selected),
    ),
    Mutant(
        "spdm.capabilities.ct_exponent_too_large",
        "CAPABILITIES CTExponent 24 (PCIe 6.x §6.31.3: at most 2^23 us)",
        ("spdm.capabilities.flag_rules",),
        lambda: _patched(spdm_responder, "CT_EXPONENT", 24),
    ),
    Mutant(
        "spdm.algorithms.no_measurement_spec",
        "ALGORITHMS selects no measurement specification though DMTF was offered (DSP0274 1.2 "
        "§10.5)",
        ("spdm.algorithms.selected_from_offer",),
        lambda: _patched(SpdmResponder, "_algorithms", _algorithms_without_measurement_spec),
    ),
    Mutant(
        "spdm.digests.certificates_only",
        "DIGESTS holds the hash of the DER certificates, not of the SPDM chain (DSP0274 1.2 §10.6)",
        ("spdm.digests.match_chain",),
        lambda: _patched(SpdmResponder, "_digests", _digest_of_certificates_only),
    ),
    Mutant(
        "spdm.certificate.root_hash_wrong",
        "the certificate chain's RootHash is not the hash of its root (DSP0274 1.2 §10.7, "
        "certificate chain format)",
        ("spdm.digests.match_chain", "spdm.certificate.chain_valid"),
        lambda: _patched(SpdmResponder, "_chain", _chain_with_wrong_root_hash),
    ),
    Mutant(
        "spdm.error.version_unchecked",
        "requests served whatever their SPDMVersion, in the decoder and the dispatcher alike "
        "(DSP0274 1.2 §10.2 VersionMismatch)",
        ("spdm.negative.version_mismatch",),
        _both(
            lambda: _patched(SpdmResponder, "_check_version", _version_unchecked),
            lambda: _patched(SpdmResponder, "_decode", _decode_any_version),
        ),
    ),
    Mutant(
        "spdm.error.dispatcher_version_unchecked",
        "the dispatcher does not compare a request's SPDMVersion with the negotiated one "
        "(DSP0274 1.2 §10.2 VersionMismatch)",
        (),
        lambda: _patched(SpdmResponder, "_check_version", _version_unchecked),
        shadowed="the decoder is handed the negotiated version and answers VersionMismatch "
        "before the dispatcher sees the request",
        checked_by=("spdm.negative.version_mismatch",),
    ),
    Mutant(
        "spdm.error.empty_slot_served",
        "GET_CERTIFICATE of an empty slot answered with slot 0's chain (DSP0274 1.2 §10.7, "
        "§10.2 InvalidRequest)",
        ("spdm.negative.invalid_request",),
        lambda: _patched(SpdmResponder, "_certificate", _certificate_of_any_slot),
    ),
    Mutant(
        "spdm.error.bad_mac_answered",
        "a record whose MAC fails answered ERROR InvalidRequest in its session (DSP0277; "
        "DSP0274 1.2 §10.2: dropped or DecryptError)",
        ("spdm.negative.bad_mac",),
        lambda: _patched(SpdmResponder, "handle", _bad_record_answered),
    ),
    Mutant(
        "spdm.error.unknown_code_ignored",
        "a request with an unknown code gets no answer, not ERROR (DSP0274 1.2 §10.2)",
        ("spdm.negative.survives_garbage",),
        lambda: _patched(SpdmResponder, "_plain", _unknown_code_ignored),
    ),
    Mutant(
        "ide_km.outside_session.garbled_answer",
        "IDE_KM and TDISP in the clear answered with an object the host cannot open (PCIe 6.x "
        "§6.33.3, §11.2.2: no response at all)",
        ("ide_km.outside_session.ignored", "tdisp.outside_session.ignored"),
        lambda: _patched(SpdmResponder, "handle", _clear_vendor_answered_garbled),
    ),
    # -- DOE --
    Mutant(
        "doe.abort.keeps_write_mailbox",
        "Abort leaves the words written so far in the write mailbox (PCIe 6.x §6.30.2, §7.9.24.3)",
        ("doe.abort.mid_write",),
        lambda: _patched(FakeDoe, "_abort", _abort_keeps_write_mailbox),
    ),
    Mutant(
        "doe.discovery.invalid_index_answered",
        "a Discovery index past the table answered with the last entry, not FFFFh (PCIe 6.x "
        "§6.30.1.1)",
        ("doe.discovery.invalid_index",),
        lambda: _patched(FakeDoe, "_queue", _discovery_invalid_index_answered),
    ),
    Mutant(
        "doe.discovery.omits_last",
        "Discovery stops one entry early (PCIe 6.x §6.30.1.1, §6.31.3)",
        ("doe.discovery.lists_features",),
        lambda: _patched(FakeDoe, "_queue", _discovery_omits_last),
    ),
    Mutant(
        "doe.read_mailbox.second_replaces_first",
        "a response queued while another waits replaces it (PCIe 6.x §6.30.1, §7.9.24.6)",
        ("doe.back_to_back.queued_responses",),
        lambda: _patched(FakeDoe, "_queue", _queue_replaces),
    ),
    Mutant(
        "doe.length.not_checked",
        "an object whose DW count differs from its Length is processed (PCIe 6.x §6.30.2: discard)",
        ("doe.length_mismatch.discarded",),
        lambda: _patched(FakeDoe, "_go", _length_not_checked),
    ),
    Mutant(
        "doe.error.cleared_by_status_write",
        "Status.Error cleared by writing 1 to it (PCIe 6.x §7.9.24.4: only Abort clears it)",
        ("doe.oversize.sets_error",),
        lambda: _patched(FakeDoe, "write", _status_write_clears_error),
    ),
    Mutant(
        "doe.partial_write.ignored",
        "a sub-DW write to the mailbox dropped without Error (PCIe 6.x §6.30.2)",
        ("doe.partial_write.sets_error",),
        lambda: _patched(FakeDoe, "write", _partial_write_ignored),
    ),
    Mutant(
        "doe.capability.version_1",
        "the DOE capability reports version 1 (PCIe 6.x §7.9.24.1: version 2)",
        ("doe.capability.registers",),
        lambda: _patched(FakeDoe, "read", _capability_version_1),
    ),
    Mutant(
        "pcie.ext_caps.doe_unlinked",
        "the extended capability list skips the DOE capability (PCIe 6.x §7.6.3)",
        ("pcie.ext_caps.well_formed",),
        lambda: _patched(FakeConfigSpace, "_dsn", _dsn_skips_doe),
    ),
    # -- IDE_KM --
    Mutant(
        "ide_km.query.any_port_index",
        "QUERY and KEY_PROG take any PortIndex as this port (PCIe 6.x §6.33.3: MaxPortIndex; "
        "KP_ACK 02h)",
        ("ide_km.query.well_formed", "ide_km.key_prog.bad_fields"),
        lambda: _patched(IdeKmResponder, "_ports", _every_port),
    ),
    Mutant(
        "ide_km.query.capability_differs",
        "QUERY_RESP reports an IDE Capability other than configuration space's (PCIe 6.x "
        "§6.33.3: QUERY_RESP is the capability structure; downgrade check)",
        ("ide_km.query.reflects_config",),
        lambda: _patched(IdeKmResponder, "_query_resp", _query_resp_claims_aggregation),
    ),
    Mutant(
        "ide_km.key_prog.tx_refused",
        "KEY_PROG of Tx keys refused (PCIe 6.x §6.33.3, §6.33.5: keys per direction)",
        ("ide_km.key_prog.all_slots",),
        lambda: _patched(IdeKmResponder, "_key_prog", _tx_keys_refused),
    ),
    Mutant(
        "ide_km.key_prog.reserved_sub_stream",
        "KEY_PROG does not check the Sub-Stream for a reserved encoding (PCIe 6.x §6.33.3 "
        "KP_ACK 03h, §6.33.5)",
        ("ide_km.key_prog.bad_fields",),
        lambda: _patched(IdeKmResponder, "_key_prog", _reserved_sub_stream_taken),
    ),
    Mutant(
        "ide_km.key_prog.over_key_set_in_use",
        "the firmware does not check that KEY_PROG's key set is not in use (PCIe 6.x §6.33.3 "
        "key refresh: the set not in use is programmed)",
        (),
        lambda: _patched(IdeKmResponder, "_key_prog", _key_prog_over_armed),
        shadowed="the hardware drops key writes to an armed slot, so the key in use stays; the "
        "firmware then reads the slot loaded and acknowledges, and a KP_ACK status for this "
        "case is not fixed by §6.33.3, so no vector can tell",
        checked_by=("ide_km.key_prog.all_slots", "ide_km.k_set_stop.acknowledged"),
    ),
    Mutant(
        "ide_km.k_set_go.not_armed",
        "K_SET_GO acknowledged without arming the key set (PCIe 6.x §6.33.3, §6.33.1)",
        ("ide_km.k_set_go.secure",),
        lambda: _patched(IdeKmResponder, "_go_stop", _go_without_hardware),
    ),
    Mutant(
        "ide_km.k_set_stop.hw_ignored",
        "the hardware acknowledges K_SET_STOP and leaves the key set in use (PCIe 6.x §6.33.3: "
        "K_SET_STOP invalidates the set)",
        ("ide_km.k_set_stop.acknowledged",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_command", _hw_stop_ignored),
    ),
    # -- TDISP --
    Mutant(
        "tdisp.lock.in_run_or_error",
        "LOCK refused only in CONFIG_LOCKED, by firmware and hardware alike (PCIe 6.x §11.3.8, "
        "Table 11-12: CONFIG_UNLOCKED only)",
        ("tdisp.lock.outside_unlocked",),
        _both(
            lambda: _patched(TdispResponder, "_lock", _lock_refused_only_when_locked),
            lambda: _patched(_fake_hw.FakeTdi, "_command", _hw_lock_unless_locked),
        ),
    ),
    Mutant(
        "tdisp.lock.relock",
        "LOCK in CONFIG_LOCKED locks again with a new nonce, by firmware and hardware alike "
        "(PCIe 6.x §11.3.8, Table 11-12: CONFIG_UNLOCKED only)",
        ("tdisp.lock.twice",),
        _both(
            lambda: _patched(TdispResponder, "_lock", _any_state(TdispResponder._lock)),
            lambda: _patched(_fake_hw.FakeTdi, "_command", _hw_relock),
        ),
    ),
    Mutant(
        "tdisp.start.any_state",
        "START taken in any state, by firmware and hardware alike (PCIe 6.x §11.3.14, "
        "Table 11-19: CONFIG_LOCKED only)",
        ("tdisp.start.from_unlocked", "tdisp.start.in_run"),
        _both(
            lambda: _patched(TdispResponder, "_start", _any_state(TdispResponder._start)),
            lambda: _patched(_fake_hw.FakeTdi, "_command", _hw_start_any_state),
        ),
    ),
    Mutant(
        "tdisp.start.nonce_kept",
        "START leaves the nonce valid in RUN (PCIe 6.x §11.3.14: invalidated before RUN)",
        (),
        _on_every_dsm(_start_keeps_nonce),
        shadowed="START is legal in CONFIG_LOCKED only, and the only way back there is a new "
        "LOCK, which replaces the nonce: a kept nonce can never be presented",
        checked_by=("tdisp.start.nonce_reused", "tdisp.start.wrong_nonce"),
    ),
    Mutant(
        "tdisp.stop.refused_in_error",
        "the hardware refuses STOP in ERROR (PCIe 6.x §11.3.1 Table 11-3, §11.2)",
        ("tdisp.config_write.error", "tdisp.session_end.error"),
        lambda: _patched(
            _fake_hw.FakeTdi, "_command", _hw_stop_refused_in(_fake_hw.TdiState.ERROR)
        ),
    ),
    Mutant(
        "tdisp.stop.refused_in_locked",
        "the hardware refuses STOP in CONFIG_LOCKED (PCIe 6.x §11.3.1 Table 11-3)",
        ("tdisp.stop.in_locked",),
        lambda: _patched(
            _fake_hw.FakeTdi, "_command", _hw_stop_refused_in(_fake_hw.TdiState.CONFIG_LOCKED)
        ),
    ),
    Mutant(
        "tdisp.stop.refused_in_unlocked",
        "STOP in CONFIG_UNLOCKED answered INVALID_INTERFACE_STATE (PCIe 6.x §11.3.1 Table "
        "11-3, §11.3.16)",
        ("tdisp.stop.in_unlocked",),
        lambda: _patched(TdispResponder, "_stop", _stop_refused_when_unlocked),
    ),
    Mutant(
        "tdisp.config_write.bars_ignored",
        "a BAR write while locked does not move the TDI to ERROR (PCIe 6.x §11.2)",
        ("tdisp.config_write.error",),
        lambda: _patched(_fake_hw.FakeTdi, "_breaks_lock", _breaks_lock_except(_is_bar)),
    ),
    Mutant(
        "tdisp.config_write.ide_registers_ignored",
        "a write to the bound stream's IDE registers while locked does not move the TDI to "
        "ERROR (PCIe 6.x §11.2, §11.4.5 list)",
        ("tdisp.config_write.error",),
        lambda: _patched(_fake_hw.FakeTdi, "_breaks_lock", _breaks_lock_except(_is_ide_register)),
    ),
    Mutant(
        "tdisp.flr.keeps_keys",
        "an FLR unlocks the TDI but keeps the IDE keys and the stream Secure (PCIe 6.x §6.33.8, "
        "§11.2: keys erased by FLR)",
        ("tdisp.flr.unlocks",),
        lambda: _patched(_fake_hw.FakeTdi, "reset", _reset_keeps_keys),
    ),
    Mutant(
        "tdisp.report.offset_ignored",
        "the interface report leaves out MMIO_REPORTING_OFFSET (PCIe 6.x §11.3.11, Table 11-15)",
        ("tdisp.flow.lock_start_stop",),
        lambda: _patched(TdispResponder, "tdi_report", _report_without_offset),
    ),
    Mutant(
        "tdisp.interface_id.function_ignored",
        "INTERFACE_ID matched on bus and device only (PCIe 6.x §11.3.3 Table 11-6: "
        "INVALID_INTERFACE)",
        ("tdisp.interface_id.wrong",),
        lambda: _patched(TdispResponder, "_dispatch", _dispatch_patched(_same_device_any_function)),
    ),
    Mutant(
        "tdisp.version.unchecked",
        "TDISPVersion checked on GET_TDISP_VERSION only (PCIe 6.x §11.3.3 Table 11-6: "
        "VERSION_MISMATCH)",
        ("tdisp.version.mismatch",),
        lambda: _patched(TdispResponder, "_dispatch", _dispatch_patched(_any_minor_or_major)),
    ),
    Mutant(
        "tdisp.unsupported.no_error_data",
        "UNSUPPORTED_REQUEST without the request code in ERROR_DATA (PCIe 6.x §11.3.7, Table "
        "11-27)",
        ("tdisp.optional.unsupported",),
        lambda: _patched(TdispResponder, "_dispatch", _unsupported_without_code),
    ),
    Mutant(
        "tdisp.capabilities.lists_bind_p2p",
        "REQ_MSGS_SUPPORTED lists BIND_P2P_STREAM_REQUEST, which the device answers "
        "UNSUPPORTED_REQUEST (PCIe 6.x §11.3.7, Table 11-9)",
        ("tdisp.capabilities.field_rules",),
        lambda: _patched(
            TdispResponder,
            "_capabilities",
            _capabilities_with(
                req_msgs_supported=lambda r: r.req_msgs_supported | 1 << (0x88 - 0x80)
            ),
        ),
    ),
    Mutant(
        "tdisp.capabilities.mask_from_81h",
        "REQ_MSGS_SUPPORTED indexed by code - 81h (7Fh for the required requests) instead of "
        "code - 80h (PCIe 6.x §11.3.7, Table 11-9)",
        ("tdisp.capabilities.field_rules",),
        lambda: _patched(
            TdispResponder,
            "_capabilities",
            _capabilities_with(req_msgs_supported=lambda r: r.req_msgs_supported >> 1),
        ),
    ),
    Mutant(
        "tdisp.capabilities.addr_width_48",
        "DEV_ADDR_WIDTH 48, under the 52 bits a TDISP device must address (PCIe 6.x §11.3.7, "
        "Table 11-9)",
        ("tdisp.capabilities.field_rules",),
        lambda: _patched(
            TdispResponder, "_capabilities", _capabilities_with(dev_addr_width=lambda r: 48)
        ),
    ),
    Mutant(
        "tdisp.capabilities.no_requests",
        "NUM_REQ_THIS 0: no request may be outstanding for the TDI (PCIe 6.x §11.3.7, Table 11-9)",
        ("tdisp.capabilities.field_rules",),
        lambda: _patched(
            TdispResponder, "_capabilities", _capabilities_with(num_req_this=lambda r: 0)
        ),
    ),
    Mutant(
        "tdisp.lock.flags_unchecked",
        "LOCK_INTERFACE_REQUEST with a flag the device does not support is accepted (PCIe 6.x "
        "§11.3.8, Table 11-12: INVALID_REQUEST)",
        ("tdisp.capabilities.lock_flags",),
        lambda: _patched(TdispResponder, "_lock", _lock_flags_unchecked),
    ),
    Mutant(
        "tdisp.report.msix_without_msix",
        "the report marks BAR0 as the MSI-X table on a function without MSI-X (PCIe 6.x "
        "§11.3.11, Table 11-15)",
        ("tdisp.report.structure",),
        lambda: _patched(TdispResponder, "tdi_report", _report_with(_msix_marked)),
    ),
    Mutant(
        "tdisp.report.no_fw_update_unreported",
        "INTERFACE_INFO bit 0 clear although LOCK asked for NO_FW_UPDATE (PCIe 6.x §11.3.11, "
        "Table 11-15; §11.3.8)",
        ("tdisp.report.structure",),
        lambda: _patched(
            TdispResponder,
            "tdi_report",
            _report_with(lambda r: replace(r, interface_info=T.InterfaceInfo(0))),
        ),
    ),
    Mutant(
        "tdisp.report.length_ignored",
        "DEVICE_INTERFACE_REPORT portions longer than the LENGTH asked for (PCIe 6.x §11.3.10, "
        "Table 11-13; §11.3.11)",
        ("tdisp.report.portions",),
        lambda: _patched(TdispResponder, "_report", _portion_patched(_portion_ignores_length)),
    ),
    Mutant(
        "tdisp.report.remainder_from_start",
        "REMAINDER_LENGTH counted from the start of the report, not from OFFSET (PCIe 6.x "
        "§11.3.11, Table 11-14)",
        ("tdisp.report.portions",),
        lambda: _patched(TdispResponder, "_report", _portion_patched(_remainder_from_start)),
    ),
    Mutant(
        "tdisp.report.offset_past_end_answered",
        "an OFFSET at or past the report's end answered with an empty portion, not "
        "INVALID_REQUEST (PCIe 6.x §11.3.10, Table 11-16)",
        ("tdisp.report.invalid_offset",),
        lambda: _patched(TdispResponder, "_report", _portion_patched(_offset_past_end_answered)),
    ),
    Mutant(
        "ide_km.kp_ack.long_key_prog_taken",
        "a 52-byte KEY_PROG is programmed from its first 48 bytes and acknowledged Success "
        "(PCIe 6.x §6.33.3: payload size; KP_ACK 01h Incorrect Length)",
        ("ide_km.kp_ack.incorrect_length",),
        lambda: _patched(IdeKmResponder, "_malformed", _long_key_prog_taken),
    ),
    Mutant(
        "ide_km.kp_ack.port_as_value",
        "an unsupported PortIndex gets KP_ACK 03h instead of 02h (PCIe 6.x §6.33.3 KP_ACK Status)",
        ("ide_km.kp_ack.unsupported_port_index",),
        lambda: _patched(IdeKmResponder, "_key_prog", _port_as_value),
    ),
    Mutant(
        "ide_km.kp_ack.sub_stream_two_bits",
        "KEY_PROG reads the Sub-Stream from two bits, so 0100b keys PR (PCIe 6.x §6.33.5 "
        "Sub-Stream encodings; §6.33.3 KP_ACK 03h)",
        ("ide_km.kp_ack.unsupported_sub_stream",),
        lambda: _patched(IdeKmResponder, "_key_prog", _sub_stream_wrapped),
    ),
    Mutant(
        "ide_km.kp_ack.ifv_unchecked",
        "KEY_PROG takes an IFV other than 1 (PCIe 6.x §6.33.5: the invocation field starts at "
        "1; §6.33.3 KP_ACK 03h)",
        ("ide_km.kp_ack.unsupported_ifv",),
        lambda: _patched(IdeKmResponder, "_key_prog", _ifv_unchecked),
    ),
    Mutant(
        "ide_km.kp_ack.unknown_stream_unspecified",
        "KEY_PROG for an unconfigured Stream ID gets KP_ACK 04h, not 03h (PCIe 6.x §6.33.3 "
        "KP_ACK Status: unsupported value in another field)",
        ("ide_km.kp_ack.unsupported_stream_id",),
        lambda: _patched(IdeKmResponder, "_key_prog", _unknown_stream_unspecified),
    ),
    Mutant(
        "ide_km.key_set.only_k0_secures",
        "the hardware makes a stream Secure on key set 0 only; key set 1 alone does not count "
        "(PCIe 6.x §6.33.3 KeySet, §6.33.1 stream state)",
        ("ide_km.k_set_go.key_set_1",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_evaluate", _evaluate_key_set_0_only),
    ),
    Mutant(
        "ide_km.session_end.link_keys_kept",
        "after the owning session ends, a new session's first QUERY wipes the Selective streams' "
        "keys but not a Link stream's (PCIe 6.x §6.33.3: every stream the session bound)",
        ("ide_km.session_end.wipes_keys.link",),
        lambda: _patched(IdeKmResponder, "_wipe_all", _wipe_selective_only),
    ),
    Mutant(
        "ide_cap.link_needs_rid_association",
        "a Link IDE Stream becomes Secure only with RID Association V, which its register block "
        "(Control and Status, PCIe 6.x §7.9.26.4) does not have: it never becomes Secure "
        "(§6.33.1 stream state)",
        ("ide_km.k_set_go.link",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_evaluate", _evaluate_link_needs_rid_v),
    ),
    Mutant(
        "ide_km.key_set.stop_leaves_secure",
        "K_SET_STOP of the old key set after a switch makes the stream Insecure (PCIe 6.x "
        "§6.33.3: K_SET_STOP does not by itself change the stream state)",
        ("ide_km.key_set.switch",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_command", _hw_stop_leaves_secure),
    ),
    Mutant(
        "ide_km.key_set.one_armed_at_a_time",
        "K_SET_GO of a key set is refused while the other set is in use, so no refresh can "
        "switch (PCIe 6.x §6.33.3 key refresh)",
        ("ide_km.key_set.switch",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_command", _hw_one_set_armed),
    ),
    Mutant(
        "ide_km.port_index.query_resp_names_0",
        "QUERY_RESP names PortIndex 00h whichever port was queried (PCIe 6.x §6.33.3: "
        "QUERY_RESP PortIndex is the QUERY's)",
        ("ide_km.port_index.nonzero",),
        lambda: _patched(IdeKmResponder, "_query_resp", _query_resp_port_0),
    ),
    Mutant(
        "ide_km.port_index.go_stop_port_0_only",
        "K_SET_GO/K_SET_STOP served at PortIndex 00h only, though MaxPortIndex is larger (PCIe "
        "6.x §6.33.3 PortIndex)",
        ("ide_km.port_index.nonzero",),
        lambda: _patched(IdeKmResponder, "_go_stop", _go_stop_port_0_only),
    ),
    Mutant(
        "ide_cap.pcrc_enable_hardwired",
        "PCRC Enable reads 0 though the IDE Capability advertises PCRC (PCIe 6.x §7.9.26.5.2)",
        ("ide_km.k_set_go.selective_pcrc", "ide_km.k_set_go.link_pcrc"),
        lambda: _patched(_fake_hw.FakeIdeCap, "_write_control", _control_hardwired(1 << 8)),
    ),
    Mutant(
        "ide_cap.aggregation_mode_hardwired",
        "the Tx aggregation modes read 0 though Aggregation is advertised (PCIe 6.x §7.9.26.5.2)",
        ("ide_km.k_set_go.selective_aggregation",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_write_control", _control_hardwired(0x3F << 2)),
    ),
    Mutant(
        "ide_cap.phe_mode_hardwired",
        "Partial Header Encryption Mode reads 0 though PHE is advertised (PCIe 6.x §7.9.26.5.2)",
        ("ide_km.k_set_go.selective_phe", "ide_km.k_set_go.link_phe"),
        lambda: _patched(_fake_hw.FakeIdeCap, "_write_control", _control_hardwired(0xF << 10)),
    ),
    Mutant(
        "ide_cap.tee_limited_hardwired",
        "TEE-Limited Stream reads 0 though the capability advertises it (PCIe 6.x §7.9.26.5.2)",
        ("ide_km.k_set_go.selective_tee_limited",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_write_control", _control_hardwired(1 << 23)),
    ),
    Mutant(
        "ide_cap.config_requests_enable_writable",
        "an endpoint's Selective IDE Stream Control keeps Configuration Requests Enable, a Root "
        "Port's bit (PCIe 6.x §7.9.26.5.2: reserved elsewhere)",
        ("ide_km.stream_control.unadvertised_modes_zero",),
        lambda: _patched(_fake_hw.FakeIdeCap, "_write_control", _config_requests_writable),
    ),
    # -- HDL: parameters of the simulated endpoint (run with --rig sim-verilator) --
    Mutant(
        "hdl.tdi.config_write_in_locked",
        "the TDI block lets a config write in CONFIG_LOCKED pass without ERROR (PCIe 6.x "
        "§11.2; hdl/tdi MUTANT_CFG_WR_LOCKED)",
        ("tdisp.config_write.error",),
        _both(),
        hdl={"MUTANT_TDI_CFG_WR_LOCKED": 1},
    ),
    Mutant(
        "hdl.ide_cap.k_set_stop_ignored",
        "the IDE capability reports K_SET_STOP done and keeps the key set armed (PCIe 6.x "
        "§6.33.3, §6.33.8; hdl/ide_cap MUTANT_K_SET_STOP_IGNORED)",
        ("ide_km.k_set_stop.acknowledged", "ide.k_set_stop.old_set_rejected"),
        _both(),
        hdl={"MUTANT_IDE_K_SET_STOP_IGNORED": 1},
    ),
    Mutant(
        "fake_tlp.check_failure_ignored",
        "the TLP path drops a TLP that fails the IDE checks but leaves the stream Secure (PCIe "
        "6.x §6.33.8: IDE Check Failed makes the stream Insecure)",
        (
            "ide.tamper.header",
            "ide.tamper.payload",
            "ide.tamper.payload.pcrc",
            "ide.tamper.payload.link",
            "ide.tamper.payload.phe",
            "ide.tamper.mac",
            "ide.replay.detected",
            "ide.replay.detected.pcrc",
            "ide.replay.detected.link",
            "ide.replay.detected.phe",
            "ide.reorder.detected",
            "ide.reorder.detected.pcrc",
            "ide.reorder.detected.link",
            "ide.reorder.detected.phe",
            "ide.insecure.discarded",
            "ide.k_set_stop.old_set_rejected",
            "ide.aggregation.bad_member_fails_unit",
            "ide.phe.tampered_clear_header",
            "ide.phe.tampered_encrypted_header",
            "tdisp.run.tampered_tlp_error",
        ),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_check_failed", lambda self, j: None),
    ),
    Mutant(
        "fake_tlp.config_plain_taken",
        "the function keeps taking Configuration Requests that arrive as non-IDE TLPs after one "
        "came as an IDE TLP on a Selective stream (PCIe 6.x §6.33.4: from then on they are "
        "discarded for as long as the stream is enabled)",
        ("ide.config.plain_discarded_after_ide",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "config_held", lambda self: False),
    ),
    Mutant(
        "fake_tlp.config_requests_refused",
        "Configuration Requests that arrive as IDE TLPs are answered Unsupported Request though "
        "the IDE Capability advertises Selective IDE for Configuration Requests (PCIe 6.x "
        "§6.33.4: they must be accepted for an implemented Function)",
        ("ide.config.protected_access", "ide.config.plain_discarded_after_ide"),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_configure", _configure_refused),
    ),
    Mutant(
        "fake_tlp.phe_mode_not_followed",
        "the TLP path reads every IDE TLP's header as if no Partial Header Encryption Mode were "
        "set, though the stream's Control selects one (PCIe 6.x §6.33.4, §7.9.26.5.2: the mode "
        "is programmed the same at both Partner Ports)",
        (
            "ide.traffic.protected_rw.phe",
            "ide.traffic.protected_rw.link_phe",
            "ide.traffic.protected_rw.aggregation_phe",
            "ide.tamper.payload.phe",
            "ide.replay.detected.phe",
            "ide.reorder.detected.phe",
            "ide.key_refresh.with_traffic.phe",
            "ide.key_set.switch_both_ways.phe",
            "ide.phe.each_mode",
            "ide.phe.tampered_clear_header",
            "ide.phe.tampered_encrypted_header",
        ),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_phe_mode", lambda self, j: 0),
    ),
    Mutant(
        "fake_tlp.aggregation_not_taken",
        "the TLP path fails every IDE TLP without a MAC though the Port advertises Aggregation "
        "Supported (PCIe 6.x §6.33.6: such a Receiver must take units of up to 8 TLPs)",
        (
            "ide.aggregation.units_carried",
            "ide.traffic.protected_rw.aggregation",
            "ide.traffic.protected_rw.aggregation_phe",
        ),
        lambda: _patched(_fake_tlp._StreamEnd, "__init__", _stream_end_without_aggregation),
    ),
    Mutant(
        "fake_tlp.one_stream_state",
        "the TLP path keeps the receive state (keys, counters) of one stream for the whole "
        "Port: with a Link and a Selective stream enabled together, the second one's TLPs are "
        "not taken (PCIe 6.x §6.33.4: both enabled, each TLP on its own stream)",
        ("ide.link.with_selective_stream",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_end", _one_stream_end),
    ),
    Mutant(
        "fake_tlp.unit_k_unchecked",
        "the receiver takes an aggregated unit whose later TLP toggles K, on the first TLP's "
        "key set (PCIe 6.x §6.33.6: K may toggle only on the first TLP of a unit; Receivers "
        "must check for violations)",
        ("ide.aggregation.k_toggled_inside_unit",),
        lambda: _patched(IdeRx, "_same_k", staticmethod(lambda unit: True)),
    ),
    Mutant(
        "fake_tlp.byte_enables_ignored",
        "a memory write stores every byte of its first and last DW, whatever their byte enables "
        "(PCIe 6.x §2.2.5)",
        (
            "ide.key_refresh.with_traffic",
            "ide.key_refresh.with_traffic.pcrc",
            "ide.key_refresh.with_traffic.link",
            "ide.key_refresh.with_traffic.phe",
        ),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_write", _tlp_write_all_bytes),
    ),
    Mutant(
        "fake_tlp.byte_count_whole_dws",
        "a completion's Byte Count counts whole DWs, not the bytes the byte enables select "
        "(PCIe 6.x §2.2.9)",
        ("ide.traffic.protected_rw", "ide.traffic.protected_rw.link"),
        lambda: _patched(_fake_tlp, "_byte_count", lambda req: 4 * req.length),
    ),
    Mutant(
        "fake_tlp.completions_on_key_set_0",
        "completions go on key set 0 whichever Tx key set was armed last (PCIe 6.x §6.33.3: "
        "K_SET_GO on Tx switches the transmitter)",
        (
            "ide.key_set_1.traffic",
            "ide.key_set.switch_both_ways",
            "ide.key_set.switch_both_ways.pcrc",
            "ide.key_set.switch_both_ways.link",
            "ide.key_set.switch_both_ways.phe",
            "ide.k_set_stop.old_set_rejected",
            "ide.requests.key_refresh",
        ),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_protect", _tlp_completions_on_key_set_0),
    ),
    Mutant(
        "fake_tlp.requests_ranges_ignored",
        "the device's own writes ignore the Address Association blocks: they go on the Default "
        "Stream, Link IDE or as non-IDE TLPs (PCIe 6.x §6.33.4)",
        (
            "ide.requests.address_association",
            "ide.requests.address_association.pcrc",
            "ide.requests.address_association.phe",
            "ide.requests.second_address_block",
            "ide.requests.default_stream",
            "ide.requests.tee_limited",
            "ide.requests.link_fallback",
            "ide.requests.pr_sent_counter",
            "ide.requests.insecure_discarded",
        ),
        lambda: _patched(
            _fake_tlp.FakeTlpPath, "tx_streams", _tx_streams_with(ranges=lambda s: ())
        ),
    ),
    Mutant(
        "fake_tlp.requests_second_block_ignored",
        "the device's own writes see only a stream's first Address Association block (PCIe 6.x "
        "§6.33.4, §7.9.26.5.5)",
        ("ide.requests.second_address_block",),
        lambda: _patched(
            _fake_tlp.FakeTlpPath, "tx_streams", _tx_streams_with(ranges=lambda s: s.ranges[:1])
        ),
    ),
    Mutant(
        "fake_tlp.requests_default_ignored",
        "the device's own writes outside every range ignore the Default Stream (PCIe 6.x "
        "§6.33.4: a TLP not associated with any other Stream goes on the Default Stream)",
        ("ide.requests.default_stream",),
        lambda: _patched(
            _fake_tlp.FakeTlpPath, "tx_streams", _tx_streams_with(default=lambda s: False)
        ),
    ),
    Mutant(
        "fake_tlp.requests_tee_limit_ignored",
        "the device's T=0 writes take a TEE-Limited stream (PCIe 6.x §6.33.4)",
        ("ide.requests.tee_limited",),
        lambda: _patched(
            _fake_tlp.FakeTlpPath, "tx_streams", _tx_streams_with(tee_limited=lambda s: False)
        ),
    ),
    Mutant(
        "fake_tlp.requests_insecure_sent_plain",
        "a device write for an enabled stream that is not Secure goes out as a non-IDE TLP "
        "(PCIe 6.x §6.33.4: it must be discarded)",
        ("ide.requests.insecure_discarded",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "dma_write", _dma_insecure_sent_plain),
    ),
    Mutant(
        "fake_tlp.requests_on_key_set_0",
        "the device's own writes keep key set 0 after K_SET_GO of its Tx key set 1 (PCIe 6.x "
        "§6.33.3: the transmitter switches to the new key set)",
        ("ide.requests.key_refresh",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_protect_request", _requests_on_key_set_0),
    ),
    Mutant(
        "hdl.ide_tlp.cpl_rid_unchecked",
        "the TLP path takes a Completion for its DMA read from a Completer ID outside the "
        "stream's RID association (PCIe 6.x §6.33.4: an Unexpected Completion; hdl/ide_tlp "
        "MUTANT_CPL_RID_UNCHECKED)",
        ("ide.requests.read_completion_association",),
        _both(),
        hdl={"MUTANT_TLP_CPL_RID_UNCHECKED": 1},
    ),
    Mutant(
        "fake_tlp.requests_from_rid_0",
        "the device's own requests carry Requester ID 0000h instead of the function's ID (PCIe "
        "6.x §2.2.6.2: a Function's Requester ID is its captured Bus and Device Numbers)",
        (
            "ide.requests.address_association",
            "ide.requests.second_address_block",
            "ide.requests.read",
            "ide.requests.read_completion_association",
        ),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_send_request", _requests_from_rid_0),
    ),
    Mutant(
        "fake_tlp.reads_pr_sent_zero",
        "the device's own reads carry PR_Sent_Counter 0 after its writes on the stream (PCIe "
        "6.x §6.33.5: PR_Sent_Counter-NPR, the Posted Requests since the last Non-Posted)",
        ("ide.requests.read", "ide.requests.read.pcrc", "ide.requests.read.phe"),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_protect_request", _reads_pr_sent_zero),
    ),
    Mutant(
        "fake_tlp.read_cpl_rid_unchecked",
        "a Completion for the device's read is taken from any Completer ID (PCIe 6.x §6.33.4: "
        "outside the RID association it is an Unexpected Completion)",
        ("ide.requests.read_completion_association",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_rid_ok", lambda self, j, cid: True),
    ),
    Mutant(
        "fake_tlp.read_cpl_stream_unchecked",
        "a Completion for the device's read is taken on any stream (PCIe 6.x §6.33.4: for a "
        "Completion the Stream ID must match the Non-Posted Request's)",
        ("ide.requests.read_completion_association",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_complete", _complete_on_any_stream),
    ),
    Mutant(
        "fake_tlp.completions_pr_sent_zero",
        "completions carry PR_Sent_Counter 0 after the device's own Posted writes on the stream "
        "(PCIe 6.x §6.33.5: the count of Posted Requests since the last Completion)",
        ("ide.requests.pr_sent_counter",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_protect", _completions_pr_sent_zero),
    ),
    Mutant(
        "fake_tlp.pcrc_enable_not_followed",
        "the TLP path ignores PCRC Enable: no PCRC on its completions, P = 1 taken as an error "
        "(PCIe 6.x §6.33.4, §7.9.26.5.2)",
        (
            "ide.traffic.protected_rw.pcrc",
            "ide.key_set.switch_both_ways.pcrc",
            "ide.pcrc.mismatch_detected",
            "ide.pcrc.missing_detected",
        ),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_pcrc_enabled", lambda self, j: False),
    ),
    Mutant(
        "fake_tlp.tdisp_tlp_rules_ignored",
        "the TLP path takes T = 1 requests outside RUN and any request in RUN (PCIe 6.x §11.2 "
        "TLP rules)",
        ("tdisp.run.protected_mmio",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_tee_ok", lambda self, stream, t: True),
    ),
    Mutant(
        "fake_tlp.link_takes_plain",
        "the TLP path takes non-IDE requests of a Link IDE Stream's TC after IDE TLPs arrived "
        "on their Sub-Stream (PCIe 6.x §6.33.4: from then on, while the stream is enabled, "
        "they are discarded)",
        ("ide.link.plain_discarded_after_ide",),
        lambda: _patched(_fake_tlp.FakeTlpPath, "_link_holds", lambda self, req: False),
    ),
    Mutant(
        "hdl.ide_tlp.mac_not_checked",
        "the TLP path takes a received IDE TLP whose MAC fails as good (PCIe 6.x §6.33.4, "
        "§6.33.8: IDE Check Failed, stream Insecure; hdl/ide_tlp MUTANT_SKIP_MAC_CHECK)",
        (
            "ide.tamper.mac",
            "ide.tamper.payload",
            "ide.tamper.payload.pcrc",
            "ide.tamper.payload.link",
            "tdisp.run.tampered_tlp_error",
        ),
        _both(),
        hdl={"MUTANT_TLP_SKIP_MAC_CHECK": 1},
    ),
    Mutant(
        "hdl.ide_tlp.pcrc_not_checked",
        "the TLP path takes a received TLP whose PCRC is wrong or missing as good (PCIe 6.x "
        "§6.33.4: PCRC Check Failed; hdl/ide_tlp MUTANT_SKIP_PCRC_CHECK)",
        ("ide.pcrc.mismatch_detected", "ide.pcrc.missing_detected"),
        _both(),
        hdl={"MUTANT_TLP_SKIP_PCRC_CHECK": 1},
    ),
    Mutant(
        "hdl.ide_tlp.no_tx_pcrc",
        "completions go without PCRC on a stream with PCRC Enable (PCIe 6.x §6.33.4: PCRC "
        "in every TLP with P content; hdl/ide_tlp MUTANT_NO_TX_PCRC)",
        ("ide.traffic.protected_rw.pcrc", "ide.key_set.switch_both_ways.pcrc"),
        _both(),
        hdl={"MUTANT_TLP_NO_TX_PCRC": 1},
    ),
    Mutant(
        "hdl.ide_tlp.rid_association_ignored",
        "the TLP path executes a request on a Selective stream from a Requester ID outside the "
        "stream's RID Base..Limit (PCIe 6.x §6.33.4: Unsupported Request at a TEE-IO "
        "Completer; hdl/ide_tlp MUTANT_NO_RID_CHECK)",
        ("ide.rid_association.outside_range_ur",),
        _both(),
        hdl={"MUTANT_TLP_NO_RID_CHECK": 1},
    ),
    Mutant(
        "hdl.ide_tlp.no_mac_dropped",
        "in a build without aggregation (IDE_AGG = 0), the TLP path measures an IDE TLP without "
        "a MAC as if it had one and drops it as malformed, leaving the stream Secure (PCIe 6.x "
        "§6.33.6: at a Receiver without aggregation it is IDE Check Failed; hdl/ide_tlp "
        "MUTANT_NO_MAC_DROPPED)",
        ("ide.aggregation.unsupported_unit_rejected",),
        _both(),
        hdl={"MUTANT_TLP_NO_MAC_DROPPED": 1},
        config={"IDE_AGG": 0},
    ),
    Mutant(
        "hdl.ide_tlp.aggregation_k_unchecked",
        "the TLP path takes an aggregated unit whose K changes after its first TLP, decrypting "
        "it with the first TLP's key set (PCIe 6.x §6.33.6: K may toggle only on the first TLP "
        "of a unit, and Receivers must check it; hdl/ide_tlp MUTANT_AGG_K_UNCHECKED)",
        ("ide.aggregation.k_toggled_inside_unit",),
        _both(),
        hdl={"MUTANT_TLP_AGG_K_UNCHECKED": 1},
    ),
    Mutant(
        "hdl.ide_tlp.dma_block0_only",
        "the TLP path looks only at the first Address Association block of each stream when it "
        "chooses the stream of its own requests (PCIe 6.x §6.33.4, §7.9.26.5.5: any block of the "
        "stream holds its addresses; hdl/ide_tlp MUTANT_DMA_BLOCK0_ONLY)",
        ("ide.requests.second_address_block",),
        _both(),
        hdl={"MUTANT_TLP_DMA_BLOCK0_ONLY": 1},
    ),
    Mutant(
        "hdl.ide_tlp.dma_tee_limit_ignored",
        "the TLP path sends its T=0 requests on a TEE-Limited stream whose range holds them "
        "(PCIe 6.x §6.33.4: they must go as non-IDE TLPs, or on Link IDE; hdl/ide_tlp "
        "MUTANT_DMA_TEE_LIMIT_IGNORED)",
        ("ide.requests.tee_limited",),
        _both(),
        hdl={"MUTANT_TLP_DMA_TEE_LIMIT_IGNORED": 1},
    ),
    Mutant(
        "hdl.ide_tlp.phe_wire_header",
        "with Partial Header Encryption the TLP path executes a request at the address and with "
        "the byte enables it received (ciphertext), not the decrypted ones (PCIe 6.x §6.33.4: "
        "the complete header is reconstructed; hdl/ide_tlp MUTANT_PHE_WIRE_HEADER)",
        (
            "ide.traffic.protected_rw.phe",
            "ide.traffic.protected_rw.link_phe",
            "ide.traffic.protected_rw.aggregation_phe",
            "ide.key_set.switch_both_ways.phe",
            "ide.phe.each_mode",
        ),
        _both(),
        hdl={"MUTANT_TLP_PHE_WIRE_HEADER": 1},
    ),
    Mutant(
        "hdl.ide_tlp.config_plain_taken",
        "the endpoint keeps taking plain Configuration Requests after one came as an IDE TLP "
        "on a Selective stream (PCIe 6.x §6.33.4: discarded while the stream is enabled; "
        "hdl/ide_tlp MUTANT_CFG_PLAIN_TAKEN)",
        ("ide.config.plain_discarded_after_ide",),
        _both(),
        hdl={"MUTANT_TLP_CFG_PLAIN_TAKEN": 1},
    ),
    Mutant(
        "hdl.ide_tlp.link_takes_plain",
        "the TLP path takes non-IDE requests of a Link IDE Stream's TC after IDE TLPs arrived on "
        "their Sub-Stream (PCIe 6.x §6.33.4: from then on, while the stream is enabled, they are "
        "discarded; hdl/ide_tlp MUTANT_LINK_TAKES_PLAIN)",
        ("ide.link.plain_discarded_after_ide",),
        _both(),
        hdl={"MUTANT_TLP_LINK_TAKES_PLAIN": 1},
    ),
)


#: Vectors a fake rig runs that no mutant above names as a killer, each with the reason.  A
#: test keeps this list and the mutants' together: every such vector is named or listed here.
UNMUTATED: dict[str, str] = {
    "ide.rid_association.outside_range_ur": "n/a on the fake rig: its configuration space has "
    "no PCI Express capability with TEE-IO Supported, which §6.33.4's rule is stated for; on "
    "the simulated endpoint hdl.ide_tlp.rid_association_ignored kills it",
    "ide.aggregation.unsupported_unit_rejected": "n/a on the fake rig: its IDE Capability "
    "advertises Aggregation, and the vector is for a Port that does not; hdl.ide_tlp."
    "no_mac_dropped kills it on the simulated endpoint built without aggregation",
    "doe.go_while_busy": "skipped on the fake rig: its firmware takes each CMA object at once, "
    "so the mailbox is never Busy when the second Go comes (it kills on the simulated rig)",
}


# -- the harness --------------------------------------------------------------------------------


@dataclass
class MutantResult:
    mutant: Mutant
    killed_by: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return bool(self.killed_by)

    @property
    def verdict(self) -> str:
        if self.killed:
            return "killed"
        return "shadowed" if self.mutant.shadowed else "SURVIVED"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.mutant.id,
            "breaks": self.mutant.breaks,
            "expected_killers": list(self.mutant.killed_by),
            "killed_by": self.killed_by,
            "verdict": self.verdict,
            "shadowed": self.mutant.shadowed or None,
            "hdl_parameters": dict(self.mutant.hdl) or None,
            "hdl_configuration": dict(self.mutant.config) or None,
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
        }


def _run_vectors(rig: Rig, vectors: dict[str, Vector]) -> dict[str, VectorResult]:
    from .backends import backend_for

    backend = backend_for(rig)
    backend.prepare()  # a sim rig builds (or finds in its cache) the HDL here
    try:
        with tempfile.TemporaryDirectory(prefix="hil-mutants-") as tmp:
            return {
                vid: backend.run_vector(vec, artifacts_dir=Path(tmp), waves=False)
                for vid, vec in vectors.items()
            }
    finally:
        backend.finish()


def _with_parameters(rig: Rig, parameters: Mapping[str, int]) -> Rig:
    """``rig`` building its HDL with ``parameters`` set as well (a build of its own)."""
    sim = dict(rig.sim)
    sim["parameters"] = {**rig.sim.get("parameters", {}), **parameters}
    return replace(rig, sim=sim)


def _passing(results: dict[str, VectorResult]) -> set[str]:
    return {vid for vid, r in results.items() if r.outcome is Outcome.PASS}


def run_one(
    mutant: Mutant, vectors: dict[str, Vector], rig: Rig, baseline: set[str]
) -> MutantResult:
    """Apply ``mutant`` alone and run ``vectors``: those that passed on the good device
    (``baseline``) and now fail or err kill it."""
    start = time.perf_counter()
    if mutant.hdl:
        rig = _with_parameters(rig, {**mutant.config, **mutant.hdl})
    with mutant.apply():
        results = _run_vectors(rig, vectors)
    result = MutantResult(mutant, seconds=time.perf_counter() - start)
    for vid, r in results.items():
        if vid in baseline and r.outcome in (Outcome.FAIL, Outcome.ERROR):
            result.killed_by.append(vid)
            result.messages[vid] = r.message
    return result


def run(
    mutants: tuple[Mutant, ...] = MUTANTS,
    *,
    rig: str = "fake",
    vector_ids: set[str] | None = None,
) -> tuple[list[MutantResult], set[str]]:
    """Each mutant in turn on ``rig``, over the suite or ``vector_ids``.  Also returns the
    vectors that pass on the good device (a vector that does not cannot kill).

    A fake rig takes the firmware and fake-hardware mutants and the whole suite.  A sim rig
    takes the HDL mutants: each is built with its parameters and runs only the vectors it names
    (a build and a simulation per vector cost minutes), after those vectors have passed on the
    unmutated build (the check that they kill because of the parameter); for a mutant with a
    ``config``, on a build of that configuration."""
    spec = find_rig(rig)
    if spec.kind not in ("fake", "sim"):
        raise ValueError(f"mutants run on a fake or a sim rig; {rig} is {spec.kind}")
    hdl = spec.kind == "sim"
    chosen = tuple(m for m in mutants if bool(m.hdl) == hdl)
    suite = default_suite()
    if hdl:
        named = {v for m in chosen for v in m.killed_by}
        suite = {v: vec for v, vec in suite.items() if v in named}
    if vector_ids is not None:
        suite = {v: vec for v, vec in suite.items() if v in vector_ids}
    baseline = _passing(_run_vectors(spec, suite))
    results = []
    for m in chosen:
        vectors = {v: vec for v, vec in suite.items() if v in m.killed_by} if hdl else suite
        own = baseline
        if m.config:
            own = _passing(_run_vectors(_with_parameters(spec, m.config), vectors))
            baseline |= own
        results.append(run_one(m, vectors, spec, own))
    return results, baseline


def unnamed(baseline: set[str], mutants: tuple[Mutant, ...] = MUTANTS) -> list[str]:
    """Vectors that pass on the good device but that no mutant names and ``UNMUTATED`` does
    not excuse: the gaps of the list."""
    named = {v for m in mutants for v in m.killed_by}
    return sorted(baseline - named - set(UNMUTATED))


def table(results: list[MutantResult]) -> str:
    width = max([len(r.mutant.id) for r in results] + [6])
    lines = [f"{'mutant':<{width}}  {'verdict':<8}  killed by"]
    for r in results:
        killers = ", ".join(r.killed_by) or (
            f"- ({r.mutant.shadowed})" if r.mutant.shadowed else "-"
        )
        lines.append(f"{r.mutant.id:<{width}}  {r.verdict:<8}  {killers}")
    return "\n".join(lines)


def report(results: list[MutantResult], path: Path) -> None:
    path.write_text(json.dumps([r.to_json() for r in results], indent=2) + "\n")
