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
import json
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _fake_hw
from .codec import ide_km as K
from .codec import spdm as S
from .codec import tdisp as T
from .codec.doe import DataObject
from .codec.spdm_crypto import SigningOperation
from .fake import FakeDoe
from .firmware import Dsm
from .firmware.ide_km import IdeKmResponder
from .firmware.spdm_responder import SpdmResponder
from .firmware.tdisp import TdispResponder, _Refused
from .rigs import Rig, find_rig
from .vectors import Outcome, Vector, VectorResult, default_suite

__all__ = ["MUTANTS", "Mutant", "MutantResult", "run", "run_one"]


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


@contextlib.contextmanager
def _patched(owner: type, name: str, value: Any) -> Iterator[None]:
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
    ),
    Mutant(
        "tdisp.lock.hw_no_secure_check",
        "the hardware binds a stream that is not Secure at LOCK (§11.3.8)",
        (),
        _hw_lock_not_secure,
        shadowed="the firmware checks the keys and the Secure state before it asks for LOCK",
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
        ("doe.discovery.lists_features",),
        lambda: _patched(FakeDoe, "_queue", _discovery_next_index_wrong),
    ),
)


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
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
        }


def _run_vectors(rig: Rig, vectors: dict[str, Vector]) -> dict[str, VectorResult]:
    from .backends.fake import FakeBackend

    backend = FakeBackend(rig)
    with tempfile.TemporaryDirectory(prefix="hil-mutants-") as tmp:
        return {
            vid: backend.run_vector(vec, artifacts_dir=Path(tmp), waves=False)
            for vid, vec in vectors.items()
        }


def _passing(results: dict[str, VectorResult]) -> set[str]:
    return {vid for vid, r in results.items() if r.outcome is Outcome.PASS}


def run_one(
    mutant: Mutant, vectors: dict[str, Vector], rig: Rig, baseline: set[str]
) -> MutantResult:
    """Apply ``mutant`` alone and run ``vectors``: those that passed on the good device
    (``baseline``) and now fail or err kill it."""
    start = time.perf_counter()
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
    """Every mutant in turn on ``rig`` (a fake rig), over the suite or ``vector_ids``.  Also
    returns the vectors that pass on the good device (a vector that does not cannot kill)."""
    spec = find_rig(rig)
    if spec.kind != "fake":
        raise ValueError(f"mutants run on a fake rig; {rig} is {spec.kind}")
    suite = default_suite()
    if vector_ids is not None:
        suite = {v: vec for v, vec in suite.items() if v in vector_ids}
    baseline = _passing(_run_vectors(spec, suite))
    return [run_one(m, suite, spec, baseline) for m in mutants], baseline


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
