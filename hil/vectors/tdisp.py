"""TDISP vectors (PCIe 6.x chapter 11): the TDI state machine, driven as a platform TSM would.

Each vector opens its own secured session, keys a Selective IDE stream over it with IDE_KM
(QUERY, KEY_PROG of the six slots of key set 0, K_SET_GO, Enable: the stream reads Secure), and
uses that stream as the TDI's default stream.  The keys must come over the session that sends
LOCK (§11.3.8), so IDE_KM and TDISP share it.  On the way out a vector STOPs the TDI (if it is
not CONFIG_UNLOCKED already) and ends its session, so that the next vector (on a long-lived
board) finds it CONFIG_UNLOCKED and the streams unbound.  That clean-up never decides the
verdict: a step that fails is logged and counted (``_cleanup.tidy``).

A rig with no configuration space (a socket rig) cannot set the stream's Enable bit: the
stream is keyed and armed over IDE_KM only.  A device that then refuses LOCK (it may: the
stream is not Secure) makes the vector not applicable on that rig, not failed.

The INTERFACE_ID is :meth:`VectorContext.interface_id` (the rig's ``function_id`` setting, or
the Requester ID the backend enumerated); the IDE_KM PortIndex is the rig's
``ide_km_port_index`` (default 0).
"""

from __future__ import annotations

import itertools
import os

from ..codec import ide_km as K
from ..codec import spdm as S
from ..codec import tdisp as T
from ..codec.ide_tlp import CplStatus
from ..errors import DoeTimeout, NotApplicable, PeerProtocolError
from ..host.ide import IdeRootPort
from ..host.ide_km import IdeKmRequester, stream_regs
from ..host.pci import find_capability, find_ext_capabilities, walk_ext_capabilities
from ..host.spdm import SpdmErrorResponse, SpdmRequester, SpdmSession
from ..host.tdisp import (
    TdispErrorResponse,
    TdispInvalidInterface,
    TdispInvalidInterfaceState,
    TdispInvalidNonce,
    TdispInvalidRequest,
    TdispRequester,
    check_report,
)
from ._answers import answer_in_the_clear
from ._cleanup import tidy
from ._execute import Skip
from ._model import VectorContext, vector
from .ide import root_port

NEEDS = {"spdm", "ide_km", "tdisp", "config"}
#: TDISP messaging, LOCK included (keyed over IDE_KM; Enable where config space allows): runs
#: on a socket rig too.
MESSAGING = {"spdm", "ide_km", "tdisp"}
STREAM_ID = 0x2A
STREAM_INDEX = 0
SPEC = "PCIe 6.x §11.3, §11.2 (TDI states)"
# Where each refusal is defined (PCIe 6.x chapter 11), for failure messages.
_LOCK = "§11.3.8, Table 11-12"
_REPORT = "§11.3.10, Table 11-16"
_START = "§11.3.14, Table 11-19"
_NONCE = "§11.3.9 (nonce destroyed), §11.3.14, Table 11-19"
_IID = "§11.3.3 Table 11-6: INTERFACE_ID not hosted by the DSM"
_COMMAND = 0x04  # Type 0 header Command register


class _Tsm:
    """A secured session with an IDE_KM and a TDISP requester on it.

    ``async with _Tsm(ctx) as tsm`` opens it; leaving STOPs the TDI (unless told not to, or it
    is CONFIG_UNLOCKED already) and ends the session.  Both are clean-up: tried, logged and
    counted when they fail, never the verdict.
    """

    def __init__(self, ctx: VectorContext, *, session_id: int = 0xB00C) -> None:
        self.ctx = ctx
        self.session_id = session_id
        self.spdm: SpdmRequester | None = None
        self.session: SpdmSession | None = None
        self.km: IdeKmRequester
        self.tdisp: TdispRequester
        self.stop_on_exit = True

    async def __aenter__(self) -> _Tsm:
        self.spdm = await self.ctx.spdm()
        await self.spdm.authenticate()
        await self.open(self.session_id)
        return self

    async def open(self, session_id: int) -> None:
        """A (new) session on the same connection, with fresh requesters on it."""
        assert self.spdm is not None
        self.session = await self.spdm.key_exchange(req_session_id=session_id)
        self.km = IdeKmRequester(
            self.spdm, self.session, self.ctx.config_if_any, port_index=self.ctx.ide_km_port_index
        )
        self.tdisp = TdispRequester(
            self.spdm, self.session, self.ctx.interface_id(), self.ctx.config_if_any
        )

    async def secure_stream(self) -> K.QueryResp:
        """Key stream STREAM_INDEX with Stream ID STREAM_ID over this session and arm it; with
        configuration space also set Enable and check the stream reads Secure.  QUERY_RESP."""
        query = await self.km.query()
        regs = await self.km.setup_stream(STREAM_INDEX, STREAM_ID)
        acks = await self.km.program_all(STREAM_ID, 0)
        bad = [a.slot for a in acks if a.outcome != K.KpAckStatus.SUCCESS]
        if bad and self.ctx.config_if_any is None:
            raise NotApplicable(
                f"KEY_PROG refused for {len(bad)} of {len(acks)} slots: the device may need "
                f"Stream ID {STREAM_ID:#x} in its IDE registers first, which this rig (no "
                "configuration space) cannot write"
            )
        self.ctx.expect(not bad, f"KP_ACK failures for {bad}")
        await self.km.go_all(STREAM_ID, 0)
        if self.ctx.config_if_any is None:
            return query  # Enable is config space's: the stream stays armed, not Secure
        state = await self.km.enable(regs, STREAM_ID)
        self.ctx.expect(state == K.IdeStreamState.SECURE, f"stream state {state:#x} after GO")
        return query

    async def lock(self, **kwargs: int) -> bytes:
        """Version, then a keyed default stream, then LOCK: the nonce."""
        await self.tdisp.get_version()
        await self.secure_stream()
        return await self.lock_keyed(**kwargs)

    async def lock_keyed(self, **kwargs: int) -> bytes:
        """LOCK with STREAM_ID as the default stream, keyed already: the nonce.  Without
        configuration space a refusal means the vector cannot run here (see the module)."""
        try:
            return await self.tdisp.lock(STREAM_ID, **kwargs)
        except TdispErrorResponse as err:
            if self.ctx.config_if_any is not None:
                raise
            raise NotApplicable(
                f"{err}, with the default stream keyed and armed but not enabled: this rig has "
                "no configuration space to set the stream's Enable bit"
            ) from None

    async def unlocked(self) -> None:
        """Bring the TDI to CONFIG_UNLOCKED as a precondition (STOP only if it is not)."""
        if await self.tdisp.get_state() == T.TdiState.CONFIG_UNLOCKED:
            return
        try:
            await self.tdisp.stop()
        except PeerProtocolError as err:
            raise Skip(f"could not bring the TDI to CONFIG_UNLOCKED first: {err}") from None
        state = await self.tdisp.get_state()
        if state != T.TdiState.CONFIG_UNLOCKED:
            raise Skip(f"the TDI is {state.name} after STOP, not CONFIG_UNLOCKED")

    async def end(self) -> None:
        assert self.spdm is not None and self.session is not None
        await self.spdm.end_session(self.session)

    async def __aexit__(self, *exc: object) -> None:
        if self.spdm is None or self.session is None or not self.session.open:
            return
        if self.stop_on_exit:
            state = await tidy(self.ctx, "state", self.tdisp.get_state())
            if state != T.TdiState.CONFIG_UNLOCKED:  # None: unknown, so STOP anyway
                await tidy(self.ctx, "stop", self.tdisp.stop())
        await tidy(self.ctx, "end_session", self.end())


async def _expect_error(
    ctx: VectorContext,
    what: str,
    awaitable: object,
    want: type[TdispErrorResponse],
    spec: str,
) -> TdispErrorResponse:
    """Await ``awaitable``, which must raise TDISP_ERROR of class ``want`` (PCIe ``spec``)."""
    expected = "a TDISP_ERROR" if want is TdispErrorResponse else (want.__doc__ or "").rstrip(".")
    try:
        await awaitable  # type: ignore[misc]
    except TdispErrorResponse as err:
        ctx.expect(isinstance(err, want), f"{what}: {err}; expected {expected} (PCIe 6.x {spec})")
        return err
    ctx.expect(False, f"{what} succeeded; expected {expected} (PCIe 6.x {spec})")
    raise AssertionError  # pragma: no cover - expect() raised


async def _state(
    ctx: VectorContext, tsm: _Tsm, want: T.TdiState, when: str, spec: str = ""
) -> None:
    state = await tsm.tdisp.get_state()
    ctx.measure(f"state_{when}", int(state), "", low=int(want), high=int(want))
    why = f" ({spec})" if spec else ""
    ctx.expect(
        state == want, f"TDI {state.name} {when.replace('_', ' ')}, expected {want.name}{why}"
    )


# --------------------------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------------------------


@vector(
    "tdisp.flow.lock_start_stop",
    title="Version, capabilities, IDE keys, LOCK, report, START, RUN, STOP, CONFIG_UNLOCKED",
    spec="PCIe 6.x §11.3.4-§11.3.17, §11.2; §6.33.3 (IDE_KM)",
    needs=MESSAGING,
)
async def flow(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        td = tsm.tdisp
        clock = ctx.timebase.now

        async def step(name: str, coro: object) -> object:
            start = clock()
            result = await coro  # type: ignore[misc]
            ctx.measure(f"{name}_s", clock() - start, "s")
            return result

        versions = await step("version", td.get_version())
        ctx.measure("versions", len(versions), "", low=1)  # type: ignore[arg-type]
        caps = await step("capabilities", td.get_capabilities())
        assert isinstance(caps, T.TdispCapabilities)
        ctx.measure("lock_flags_supported", caps.lock_flags_supported, "")
        ctx.expect(
            caps.lock_flags_supported & 0xFFE0 == 0, "reserved LOCK_INTERFACE_FLAGS_SUPPORTED bits"
        )
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "at_start")
        await step("ide_keys_go", tsm.secure_stream())
        # A reporting offset the report must add to BAR0 (§11.3.11): 4 GiB, page aligned.
        offset = 1 << 32
        nonce = await step("lock", tsm.lock_keyed(mmio_reporting_offset=offset))
        ctx.expect(nonce != bytes(T.NONCE_SIZE), "an all-zero START_INTERFACE_NONCE")
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_lock")
        report = await step("report", td.get_report())  # checked against any BARs
        assert isinstance(report, T.TdiReport)
        ctx.measure("report_portions", td.portions, "", low=1)
        ctx.measure("mmio_ranges", len(report.mmio_ranges), "", low=1)
        await step("start", td.start())
        await _state(ctx, tsm, T.TdiState.RUN, "after_start")
        await step("stop", td.stop())
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_stop")
        assert tsm.spdm is not None
        ctx.measure("doe_exchanges", tsm.spdm.exchanges, "")
        ctx.measure("doe_bytes", tsm.spdm.bytes_sent + tsm.spdm.bytes_received, "B")


# --------------------------------------------------------------------------------------------
# Illegal transitions
# --------------------------------------------------------------------------------------------


@vector(
    "tdisp.start.from_unlocked",
    title="START_INTERFACE_REQUEST in CONFIG_UNLOCKED is refused with INVALID_INTERFACE_STATE",
    spec="PCIe 6.x §11.3.14, Table 11-19",
    needs=MESSAGING,
)
async def start_from_unlocked(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        await tsm.unlocked()
        start = tsm.tdisp.start(os.urandom(T.NONCE_SIZE))
        await _expect_error(
            ctx, "START in CONFIG_UNLOCKED", start, TdispInvalidInterfaceState, _START
        )
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_refusal")


@vector(
    "tdisp.lock.twice",
    title="A second LOCK_INTERFACE_REQUEST in CONFIG_LOCKED is refused; the TDI stays locked",
    spec="PCIe 6.x §11.3.8, Table 11-12",
    needs=MESSAGING,
)
async def lock_twice(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.lock()
        again = tsm.tdisp.lock(STREAM_ID)
        await _expect_error(ctx, "LOCK in CONFIG_LOCKED", again, TdispInvalidInterfaceState, _LOCK)
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_refusal")


@vector(
    "tdisp.report.before_lock",
    title="GET_DEVICE_INTERFACE_REPORT in CONFIG_UNLOCKED is refused with INVALID_INTERFACE_STATE",
    spec="PCIe 6.x §11.3.10, Table 11-16",
    needs=MESSAGING,
)
async def report_before_lock(ctx: VectorContext) -> None:
    """OFFSET 0 is what a first request must carry (§11.3.10), so INVALID_REQUEST ("OFFSET is
    invalid") does not describe this refusal; Table 11-16 gives the wrong state its own code."""
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        await tsm.unlocked()
        report = tsm.tdisp.get_report()
        await _expect_error(
            ctx, "report in CONFIG_UNLOCKED", report, TdispInvalidInterfaceState, _REPORT
        )


@vector(
    "tdisp.start.in_run",
    title="START_INTERFACE_REQUEST in RUN is refused; the TDI stays in RUN",
    spec="PCIe 6.x §11.3.14, Table 11-19",
    needs=MESSAGING,
)
async def start_in_run(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        nonce = await tsm.lock()
        await tsm.tdisp.start()
        again = tsm.tdisp.start(nonce)
        await _expect_error(ctx, "START in RUN", again, TdispInvalidInterfaceState, _START)
        await _state(ctx, tsm, T.TdiState.RUN, "after_refusal")


@vector(
    "tdisp.lock.stream_not_keyed",
    title="LOCK is refused while the default stream is configured but not keyed, keyed but not "
    "armed, or armed but not Secure, and for a Stream ID no stream has",
    spec="PCIe 6.x §11.3.8, Table 11-12 (keys for all sub-streams of the default stream, "
    "stream Secure)",
    needs=NEEDS,
)
async def lock_stream_not_keyed(ctx: VectorContext) -> None:
    """Each refusal is checked on the stream that LOCK then accepts once it is Secure, so the
    device refuses for the key and Secure rules, not because the Stream ID is unknown."""
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        await tsm.km.query()
        regs = await tsm.km.setup_stream(STREAM_INDEX, STREAM_ID)

        async def refused(why: str) -> None:
            err = await _expect_error(
                ctx,
                f"LOCK, default stream {why}",
                tsm.tdisp.lock(STREAM_ID),
                TdispErrorResponse,
                _LOCK,
            )
            ctx.expect(
                err.code in (T.ErrorCode.INVALID_REQUEST, T.ErrorCode.INVALID_DEVICE_CONFIGURATION),
                f"LOCK, default stream {why}, answered {err}",
            )
            await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, f"lock_{why.replace(' ', '_')}")

        await refused("configured but not keyed")
        acks = await tsm.km.program_all(STREAM_ID, 0)
        bad = [a.slot for a in acks if a.outcome != K.KpAckStatus.SUCCESS]
        ctx.expect(not bad, f"KP_ACK failures for {bad}")
        await refused("keyed but not armed")
        await tsm.km.go_all(STREAM_ID, 0)
        await refused("armed but not enabled")
        await _refused_unknown_stream(ctx, tsm)
        state = await tsm.km.enable(regs, STREAM_ID)
        ctx.expect(state == K.IdeStreamState.SECURE, f"stream state {state:#x} after GO")
        await tsm.lock_keyed()  # the same stream, now Secure: LOCK is allowed
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_lock")


async def _refused_unknown_stream(ctx: VectorContext, tsm: _Tsm) -> None:
    """LOCK naming a Stream ID no stream has."""
    other = tsm.tdisp.lock((STREAM_ID + 1) & 0xFF)
    err = await _expect_error(ctx, "LOCK of an unknown Stream ID", other, TdispErrorResponse, _LOCK)
    ctx.expect(
        err.code in (T.ErrorCode.INVALID_REQUEST, T.ErrorCode.INVALID_DEVICE_CONFIGURATION),
        f"LOCK of an unknown Stream ID answered {err}",
    )
    await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_unknown_stream")


@vector(
    "tdisp.lock.keys_from_ended_session",
    title="LOCK over a session other than the one that keyed the default stream is not accepted",
    spec="PCIe 6.x §11.3.8, Table 11-12 (default stream keyed over the LOCK's session), "
    "§6.33.3 (session binding)",
    needs=NEEDS,
)
async def lock_keys_from_ended_session(ctx: VectorContext) -> None:
    """Session A keys the stream and makes it Secure, then ends; session B, which sent no
    IDE_KM, asks for LOCK.  A TDISP_ERROR or no answer are both right; a nonce is not."""
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        await tsm.secure_stream()
        await tsm.end()
        await tsm.open(0xC0DE)
        try:
            await tsm.tdisp.lock(STREAM_ID)
        except (TdispErrorResponse, DoeTimeout, PeerProtocolError):
            pass
        else:
            ctx.expect(
                False,
                f"LOCK over a session that did not key the default stream was accepted ({_LOCK})",
            )
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_refusal")


# --------------------------------------------------------------------------------------------
# STOP_INTERFACE_REQUEST in each state
# --------------------------------------------------------------------------------------------
#
# PCIe 6.x §11.3.1 Table 11-3 lists CONFIG_UNLOCKED, CONFIG_LOCKED, RUN and ERROR as the legal
# states of STOP_INTERFACE_REQUEST: "Stop and move TDI to CONFIG_UNLOCKED (if not already in
# CONFIG_UNLOCKED)".  §11.3.16 names one reason to fail it, an INTERFACE_ID the device does not
# host.  §11.2: CONFIG_UNLOCKED "must be entered from any other state in response to the
# STOP_INTERFACE_REQUEST message".  So STOP in CONFIG_UNLOCKED is answered with
# STOP_INTERFACE_RESPONSE and changes nothing; INVALID_INTERFACE_STATE is not allowed there.

_STOP_SPEC = "PCIe 6.x §11.3.1 Table 11-3 (STOP legal in every state), §11.3.16"


async def _stop_answered(ctx: VectorContext, tsm: _Tsm, where: str) -> None:
    try:
        await tsm.tdisp.stop()
    except TdispErrorResponse as err:
        ctx.expect(False, f"STOP in {where}: {err}; {_STOP_SPEC} require STOP_INTERFACE_RESPONSE")


@vector(
    "tdisp.stop.in_unlocked",
    title="STOP_INTERFACE_REQUEST in CONFIG_UNLOCKED is answered; the TDI stays CONFIG_UNLOCKED",
    spec=_STOP_SPEC,
    needs=MESSAGING,
)
async def stop_in_unlocked(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        await tsm.unlocked()
        await _stop_answered(ctx, tsm, "CONFIG_UNLOCKED")
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_stop", _STOP_SPEC)


@vector(
    "tdisp.stop.in_locked",
    title="STOP_INTERFACE_REQUEST in CONFIG_LOCKED unlocks the TDI and destroys the START nonce",
    spec=f"{_STOP_SPEC}; §11.3.9 (nonce destroyed on leaving CONFIG_LOCKED)",
    needs=MESSAGING,
)
async def stop_in_locked(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        nonce = await tsm.lock()
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_lock")
        await _stop_answered(ctx, tsm, "CONFIG_LOCKED")
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_stop", _STOP_SPEC)
        # The nonce is gone with the lock: START is refused (the TDI is not CONFIG_LOCKED).
        start = tsm.tdisp.start(nonce)
        await _expect_error(ctx, "START after STOP", start, TdispErrorResponse, _START)
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_refused_start")


# --------------------------------------------------------------------------------------------
# The start nonce
# --------------------------------------------------------------------------------------------


@vector(
    "tdisp.start.wrong_nonce",
    title="START with a nonce other than LOCK's is refused with INVALID_NONCE",
    spec="PCIe 6.x §11.3.14, Table 11-19",
    needs=MESSAGING,
)
async def start_wrong_nonce(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        nonce = await tsm.lock()
        wrong = bytes(b ^ 0xFF for b in nonce)
        start = tsm.tdisp.start(wrong)
        await _expect_error(ctx, "START, wrong nonce", start, TdispInvalidNonce, _START)
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_refusal")
        await tsm.tdisp.start(nonce)  # the right one still works
        await _state(ctx, tsm, T.TdiState.RUN, "after_start")


@vector(
    "tdisp.start.nonce_reused",
    title="A START nonce works once: after STOP and a new LOCK the old nonce is INVALID_NONCE",
    spec="PCIe 6.x §11.3.9 (nonce destroyed), §11.3.14 (invalidated before RUN)",
    needs=MESSAGING,
)
async def start_nonce_reused(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        old = await tsm.lock()
        await tsm.tdisp.start(old)
        await tsm.tdisp.stop()
        await tsm.secure_stream()  # STOP left the stream Secure; re-key anyway, as a TSM would
        new = await tsm.lock_keyed()
        ctx.expect(new != old, "LOCK gave the same START_INTERFACE_NONCE twice")
        start = tsm.tdisp.start(old)
        await _expect_error(ctx, "START with the used nonce", start, TdispInvalidNonce, _NONCE)
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_refusal")


# --------------------------------------------------------------------------------------------
# Events that force ERROR
# --------------------------------------------------------------------------------------------


_BAR0 = 0x10  # Type 0 header: BAR0


async def _config_targets(ctx: VectorContext) -> list[tuple[str, str, int]]:
    """The registers a locked TDI's configuration covers, one of each kind (§11.2, the events
    that force ERROR): Command, BAR0, and the bound stream's Selective IDE Stream Control."""
    ide = await find_ext_capabilities(ctx.config, 0x0030)
    targets = [("command", "Command", _COMMAND), ("bar0", "BAR0", _BAR0)]
    if ide:
        regs = await stream_regs(ctx.config, STREAM_INDEX, ide[0].offset)
        targets.append(("ide_control", "the bound stream's IDE Control", regs.control))
    return targets


@vector(
    "tdisp.config_write.error",
    title="A configuration write to Command, a BAR or the bound stream's IDE registers, in "
    "CONFIG_LOCKED and in RUN, sends the TDI to ERROR; STOP recovers",
    spec="PCIe 6.x §11.2 (TDI state machine: configuration changes), §11.3.16",
    needs=NEEDS,
)
async def config_write_error(ctx: VectorContext) -> None:
    """Each register is rewritten with the value it holds: a write is a change all the same
    (§11.2 lists the writes, not the values).  Each (state, register) pair starts from a fresh
    LOCK, so a device that enforces the rule for one register or one state only fails."""
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        for where in (T.TdiState.CONFIG_LOCKED, T.TdiState.RUN):
            for key, name, offset in await _config_targets(ctx):
                await tsm.secure_stream()
                await tsm.lock_keyed()
                if where == T.TdiState.RUN:
                    await tsm.tdisp.start()
                value = await ctx.config.read32(offset)
                await ctx.config.write32(offset, value)
                when = f"after_{key}_write_in_{where.name.lower()}"
                await _state(ctx, tsm, T.TdiState.ERROR, when, f"§11.2: a write to {name}")
                if where == T.TdiState.RUN and offset == _COMMAND:
                    start = tsm.tdisp.start(os.urandom(32))
                    await _expect_error(
                        ctx, "START in ERROR", start, TdispInvalidInterfaceState, _START
                    )
                await tsm.tdisp.stop()
                await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, f"{when}_then_stop")


@vector(
    "tdisp.lock.outside_unlocked",
    title="LOCK_INTERFACE_REQUEST in RUN and in ERROR is refused with INVALID_INTERFACE_STATE; "
    "the state stays",
    spec="PCIe 6.x §11.3.8, Table 11-12 (LOCK only in CONFIG_UNLOCKED)",
    needs=NEEDS,
)
async def lock_outside_unlocked(ctx: VectorContext) -> None:
    """``tdisp.lock.twice`` covers CONFIG_LOCKED; here RUN, then ERROR (reached by a config
    write to Command, §11.2)."""
    async with _Tsm(ctx) as tsm:
        await tsm.lock()
        await tsm.tdisp.start()
        again = tsm.tdisp.lock(STREAM_ID)
        await _expect_error(ctx, "LOCK in RUN", again, TdispInvalidInterfaceState, _LOCK)
        await _state(ctx, tsm, T.TdiState.RUN, "after_lock_in_run")
        command = await ctx.config.read32(_COMMAND)
        await ctx.config.write32(_COMMAND, command)
        await _state(ctx, tsm, T.TdiState.ERROR, "after_config_write")
        again = tsm.tdisp.lock(STREAM_ID)
        await _expect_error(ctx, "LOCK in ERROR", again, TdispInvalidInterfaceState, _LOCK)
        await _state(ctx, tsm, T.TdiState.ERROR, "after_lock_in_error")


@vector(
    "tdisp.session_end.error",
    title="Ending the session that locked a TDI in RUN sends it to ERROR; a new session sees it",
    spec="PCIe 6.x §11.4.5 (session termination), §6.33.3 (session binding)",
    needs=MESSAGING,
)
async def session_end_error(ctx: VectorContext) -> None:
    """How the new session may look: while the locking session is open it owns the streams, and
    TDISP from any other session is ignored.  Once it has ended, a new session binds itself with
    IDE_KM QUERY (which, by §6.33.3, first wipes the old session's keys, making the stream
    Insecure; the TDI is already in ERROR and stays there).  It then reads the state, and STOPs
    the TDI, which any session that may talk is allowed to do."""
    async with _Tsm(ctx) as tsm:
        await tsm.lock()
        await tsm.tdisp.start()
        await _state(ctx, tsm, T.TdiState.RUN, "before_end")
        await tsm.end()
        await tsm.open(0xC0DE)
        # §11.4.5 takes effect when the session ends: a device that answers TDISP from a new
        # session before it binds the streams must already report ERROR.
        try:
            early = await tsm.tdisp.get_state()
        except (TdispErrorResponse, DoeTimeout, PeerProtocolError):
            early = None
        if early is not None:
            ctx.expect(
                early == T.TdiState.ERROR,
                f"TDI {early.name} right after its locking session ended, expected ERROR "
                "(PCIe 6.x §11.4.5)",
            )
        await tsm.km.query()
        await _state(
            ctx,
            tsm,
            T.TdiState.ERROR,
            "from_new_session",
            "PCIe 6.x §11.4.5: a TDI locked over a session that terminates must go to ERROR",
        )
        await tsm.tdisp.stop()
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_stop")


@vector(
    "tdisp.reset.unlocks",
    title="A power cycle takes a TDI in RUN back to CONFIG_UNLOCKED",
    spec="PCIe 6.x §11.2 (conventional reset: all TDIs CONFIG_UNLOCKED, secrets cleared)",
    needs=NEEDS | {"power"},
)
async def reset_unlocks(ctx: VectorContext) -> None:
    power = ctx.resource("power")
    async with _Tsm(ctx) as tsm:
        await tsm.lock()
        await tsm.tdisp.start()
        await power.power_cycle()
        tsm.session = None  # gone with the reset: nothing to clean up on the way out
    async with _Tsm(ctx) as fresh:
        await fresh.tdisp.get_version()
        await _state(ctx, fresh, T.TdiState.CONFIG_UNLOCKED, "after_power_cycle")


# --------------------------------------------------------------------------------------------
# Who may talk, and about what
# --------------------------------------------------------------------------------------------


@vector(
    "tdisp.outside_session.ignored",
    title="TDISP outside a secured session gets no answer",
    spec="PCIe 6.x §11.2.2",
    needs=MESSAGING,
)
async def outside_session_ignored(ctx: VectorContext) -> None:
    """§11.2.2: "If a TDISP message is received that has not been transferred securely per
    [Secured SPDM], the received TDISP message must not be used, and must not result in a
    response."  Any answer fails, an SPDM ERROR included: it is a response the message caused."""
    req = await ctx.spdm()
    await req.authenticate()
    msg = T.GetTdispVersion(interface_id=ctx.interface_id()).encode()
    vdm = S.VendorDefinedRequest.pci_sig(S.PciProtocolId.TDISP, msg[1:], version=req.version)
    answer = await answer_in_the_clear(req, vdm.encode())
    ctx.expect(
        answer is None,
        f"GET_TDISP_VERSION in the clear was answered with {answer}; PCIe 6.x §11.2.2: a TDISP "
        "message not sent in a secured session must not result in a response",
    )


async def _ask(td: TdispRequester, msg: T.TdispMessage) -> T.TdispMessage | str | None:
    """One request; its TDISP answer, a description of an SPDM ERROR, or None: no answer."""
    try:
        return await td.request(msg)
    except SpdmErrorResponse as err:
        return str(err)


@vector(
    "tdisp.session_binding.other_session_ignored",
    title="While one session holds the default stream's keys, LOCK from another session fails",
    spec="PCIe 6.x §11.3.8 Table 11-12 (keys from the LOCK's session), §11.4.5, §6.33.3",
    needs=MESSAGING,
)
async def other_session_ignored(ctx: VectorContext) -> None:
    """The owner keys the default stream; a second session then asks to LOCK with it.  §11.3.8
    says the device must fail that LOCK ("All IDE keys of the default stream were not configured
    over the SPDM session on which the LOCK_INTERFACE_REQUEST was received": INVALID_REQUEST),
    and a device that drops TDISP from a session not owning the streams (as §6.33.3 has it drop
    IDE_KM) refuses it too.  Either way the TDI stays CONFIG_UNLOCKED.  Nothing in chapter 11
    forbids answering the other session's GET_TDISP_VERSION: that is recorded, not judged.

    The rule is for TDIs where IDE is required; a port that reports no Selective IDE Stream in
    QUERY_RESP cannot require it, so there the vector does not apply."""
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        query = await tsm.secure_stream()  # keys over the owner's session, which binds them
        if not query.selective_blocks:
            raise NotApplicable(
                "QUERY_RESP reports no Selective IDE Stream, so no IDE keys bind LOCK to a "
                "session (PCIe §11.3.8 applies to TDIs where IDE is required)"
            )
        assert tsm.spdm is not None
        other = await tsm.spdm.key_exchange(req_session_id=0xC0DE)
        iid = ctx.interface_id()
        intruder = TdispRequester(tsm.spdm, other, iid, ctx.config_if_any)
        answer = await _ask(intruder, T.GetTdispVersion(interface_id=iid))
        ctx.measure("other_session_version_answered", int(answer is not None), "")
        lock = await _ask(
            intruder, T.LockInterfaceRequest(interface_id=iid, default_stream_id=STREAM_ID)
        )
        ctx.measure("other_session_lock_answered", int(lock is not None), "")
        ctx.expect(
            not isinstance(lock, T.LockInterfaceResponse),
            "LOCK from a session other than the one that programmed the default stream's keys "
            "succeeded; PCIe 6.x §11.3.8 Table 11-12: INVALID_REQUEST",
        )
        await _state(
            ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_other_session_lock", "PCIe 6.x §11.3.8"
        )
        await tsm.tdisp.get_version()  # the owner still may talk
        await tidy(ctx, "other_end_session", tsm.spdm.end_session(other))


@vector(
    "tdisp.interface_id.wrong",
    title="A request naming another function's INTERFACE_ID gets INVALID_INTERFACE",
    spec="PCIe 6.x §11.3.3 Table 11-6, §11.3.8",
    needs=MESSAGING,
)
async def wrong_interface_id(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        iid = ctx.interface_id()
        wrong = T.InterfaceId(iid.rid ^ 0x7, iid.segment, iid.segment_valid)  # another function
        assert tsm.spdm is not None and tsm.session is not None
        other = TdispRequester(tsm.spdm, tsm.session, wrong, ctx.config_if_any)
        state = other.get_state()
        await _expect_error(ctx, "GET_DEVICE_INTERFACE_STATE", state, TdispInvalidInterface, _IID)
        lock = other.lock(STREAM_ID)
        await _expect_error(ctx, "LOCK", lock, TdispInvalidInterface, _IID)


@vector(
    "tdisp.version.mismatch",
    title="A request with TDISPVersion 2.0 after version 1.0 was agreed gets VERSION_MISMATCH",
    spec="PCIe 6.x §11.3.3 Table 11-6",
    needs=MESSAGING,
)
async def version_mismatch(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        msg = T.GetDeviceInterfaceState(interface_id=ctx.interface_id(), version=0x20)
        rsp = await tsm.tdisp.request(msg)
        ctx.expect(
            isinstance(rsp, T.TdispError) and rsp.error_code == T.ErrorCode.VERSION_MISMATCH,
            f"a TDISP 2.0 request answered {rsp!r}",
        )


@vector(
    "tdisp.optional.unsupported",
    title="An optional request the device lists as unsupported gets UNSUPPORTED_REQUEST",
    spec="PCIe 6.x §11.3.7 (REQ_MSGS_SUPPORTED), Table 11-27",
    needs=MESSAGING,
)
async def optional_unsupported(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        caps = await tsm.tdisp.get_capabilities()
        optional = _optional_requests(ctx.interface_id())
        unsupported = [code for code in optional if not caps.supports(code)]
        ctx.measure("optional_unsupported", len(unsupported), "")
        for code in unsupported:
            rsp = await tsm.tdisp.request(optional[code])
            ctx.expect(
                isinstance(rsp, T.TdispError)
                and rsp.error_code == T.ErrorCode.UNSUPPORTED_REQUEST
                and rsp.error_data == code,
                f"{code.name}, unsupported per REQ_MSGS_SUPPORTED, answered {rsp!r}",
            )


# --------------------------------------------------------------------------------------------
# The interface's MMIO in RUN: T=1 traffic on the bound stream (needs the rig's TLP port)
# --------------------------------------------------------------------------------------------

TRAFFIC_NEEDS = NEEDS | {"ide_traffic"}


async def _keyed_root_port(ctx: VectorContext, tsm: _Tsm) -> IdeRootPort:
    """The default stream keyed by this session with the root port's end as the model."""
    rp = root_port(ctx, tsm.km, STREAM_ID, STREAM_INDEX)
    await rp.establish()
    return rp


@vector(
    "tdisp.run.protected_mmio",
    title="In RUN the MMIO takes T=1 requests on the bound stream only; completions carry T",
    spec="PCIe 6.x §11.2 (TLP rules), §11.3.14; §6.33.4 (T bit)",
    needs=TRAFFIC_NEEDS,
)
async def run_protected_mmio(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        td = tsm.tdisp
        await td.get_version()
        rp = await _keyed_root_port(ctx, tsm)
        # CONFIG_UNLOCKED: a T=1 request is refused (UR), a T=0 request is served.
        cpl, t = await rp.read(0x10, 4, t=True)
        ctx.expect(cpl.status == CplStatus.UR and t, "T=1 read before LOCK was not refused")
        await td.lock(STREAM_ID)
        await td.get_report()
        await td.start()
        await _state(ctx, tsm, T.TdiState.RUN, "after_start")
        data = os.urandom(64)
        await rp.write(0x40, data, t=True)
        cpl, t = await rp.read(0x40, 64, t=True)
        ctx.expect(cpl.status == CplStatus.SC, f"T=1 read in RUN completed {cpl.status!r}")
        ctx.expect(t, "the completion of a T=1 read has T=0")
        ctx.expect(cpl.payload == data, "T=1 MMIO data read back differs")
        cpl, t = await rp.read(0x40, 4, t=False)
        ctx.expect(cpl.status == CplStatus.UR, "a T=0 read of the TDI's MMIO in RUN was served")
        plain = await rp.read_plain(0x40, 4)
        ctx.expect(plain.status == CplStatus.UR, "a non-IDE read of the TDI's MMIO was served")
        await rp.write(0x40, bytes(64), t=False)  # T=0 write in RUN: dropped
        cpl, _ = await rp.read(0x40, 64, t=True)
        ctx.expect(cpl.payload == data, "a T=0 write reached the TDI's MMIO in RUN")
        await _state(ctx, tsm, T.TdiState.RUN, "after_traffic")
        await td.stop()
        cpl, _ = await rp.read(0x40, 4, t=True)
        ctx.expect(cpl.status == CplStatus.UR, "T=1 read after STOP was served")


@vector(
    "tdisp.run.tampered_tlp_error",
    title="A tampered IDE TLP in RUN makes the bound stream Insecure and the TDI ERROR",
    spec="PCIe 6.x §11.2 (bound stream Insecure -> ERROR), §6.33.8",
    needs=TRAFFIC_NEEDS,
)
async def run_tampered_tlp_error(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        td = tsm.tdisp
        await td.get_version()
        rp = await _keyed_root_port(ctx, tsm)
        await td.lock(STREAM_ID)
        await td.start()
        await rp.write(0x80, b"\x42" * 16, t=True)
        wire = bytearray(rp.protect(rp.write_tlp(0x80, b"\x43" * 16), t=True).encode())
        wire[-1] ^= 0x01  # the MAC
        await rp.port.send(bytes(wire))
        state = await rp.settled_state(ctx.timebase, 0)
        ctx.expect(state == 0, "the bound stream is still Secure after a bad MAC")
        await _state(ctx, tsm, T.TdiState.ERROR, "after_tamper")


# --------------------------------------------------------------------------------------------
# Function Level Reset
# --------------------------------------------------------------------------------------------

_CAP_PCIE = 0x10
_DEVCAP_FLR = 1 << 28
_DEVCTL_FLR = 1 << 15


async def _pcie_capability(ctx: VectorContext) -> int:
    """Offset of the PCI Express capability (standard list from 0x34)."""
    ptr = await find_capability(ctx.config, _CAP_PCIE)
    if ptr is None:
        raise NotApplicable("the function has no PCI Express capability to request an FLR with")
    return ptr


@vector(
    "tdisp.flr.unlocks",
    title="FLR returns a locked TDI to CONFIG_UNLOCKED and takes the stream's keys",
    spec="PCIe 6.x §11.2 (FLR), §6.6.2, §6.33.8 (keys invalidated)",
    needs=NEEDS,
)
async def flr_unlocks(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.lock()
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "before_flr")
        cap = await _pcie_capability(ctx)
        if not (await ctx.config.read32(cap + 4)) & _DEVCAP_FLR:
            raise NotApplicable("the function does not advertise Function Level Reset")
        saved = [await ctx.config.read32(off) for off in (0x04, 0x10, 0x14)]
        control = (await ctx.config.read32(cap + 8)) & 0xFFFF
        await ctx.config.write32(cap + 8, control | _DEVCTL_FLR)
        await ctx.sleep(float(ctx.settings.get("flr_wait_s", 0.1)))  # §6.6.2: 100 ms
        # Restore what FLR cleared, as Linux's pci_restore_state does: BAR0 and Command.
        await ctx.config.write32(0x10, saved[1])
        await ctx.config.write32(0x14, saved[2])
        await ctx.config.write32(0x04, saved[0] & 0xFFFF)
        await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, "after_flr")
        ide = await find_ext_capabilities(ctx.config, 0x0030)
        regs = await stream_regs(ctx.config, STREAM_INDEX, ide[0].offset)
        status = await ctx.config.read32(regs.status)
        ctx.expect(status & 0xF == 0, f"IDE stream state {status & 0xF:04b} after FLR")
        ctx.measure("flr_wait_s", float(ctx.settings.get("flr_wait_s", 0.1)), "s")


# --------------------------------------------------------------------------------------------
# TDISP_CAPABILITIES, field by field
# --------------------------------------------------------------------------------------------

_CAPS = "§11.3.7, Table 11-9"
#: Bits of REQ_MSGS_SUPPORTED that name a request code TDISP 1.0 defines (81h-8Bh: bits 1-11).
_DEFINED_REQUEST_BITS = sum(1 << (code - 0x80) for code in T.RequestCode)
#: LOCK_INTERFACE_REQUEST FLAGS TDISP 1.0 defines (§11.3.8, Table 11-10): bits 4:0.
_DEFINED_LOCK_FLAGS = 0x1F
#: The least DEV_ADDR_WIDTH this vector takes.  §11.3.7 Table 11-9 states no minimum: the field
#: is "the number of address bits it supports. For example, a value of 52 in this field
#: indicates support for Bits 51:0".  52 is the TEE-IO conformance expectation (Intel's
#: tee-io-validator checks DEV_ADDR_WIDTH >= 52 in its TDISP capabilities case), which this
#: vector applies; the finding says so.
_MIN_DEV_ADDR_WIDTH = 52


def _optional_requests(iid: T.InterfaceId) -> dict[T.RequestCode, T.TdispMessage]:
    """One well-formed instance of each optional request (§11.3.1, Table 11-3)."""
    return {
        T.RequestCode.BIND_P2P_STREAM_REQUEST: T.BindP2pStreamRequest(
            interface_id=iid, p2p_stream_id=1
        ),
        T.RequestCode.UNBIND_P2P_STREAM_REQUEST: T.UnbindP2pStreamRequest(
            interface_id=iid, p2p_stream_id=1
        ),
        T.RequestCode.SET_MMIO_ATTRIBUTE_REQUEST: T.SetMmioAttributeRequest(
            interface_id=iid, mmio_range=T.MmioRange(first_page=0, num_pages=1)
        ),
        T.RequestCode.VDM_REQUEST: T.VdmRequest(
            interface_id=iid, vendor=T.VendorData(T.RegistryId.PCI_SIG, b"\xff\xff")
        ),
    }


@vector(
    "tdisp.capabilities.field_rules",
    title="TDISP_CAPABILITIES: REQ_MSGS_SUPPORTED lists exactly the requests served (bit = code "
    "- 80h), no reserved bit, DEV_ADDR_WIDTH >= 52, NUM_REQ_THIS/ALL > 0",
    spec="PCIe 6.x §11.3.7 Table 11-9 (TDISP_CAPABILITIES), §11.3.1 Table 11-3 (request codes), "
    "§11.3.8 Table 11-10 (FLAGS); DEV_ADDR_WIDTH >= 52 is the TEE-IO conformance expectation "
    "(tee-io-validator), not a §11.3.7 rule",
    needs=MESSAGING,
)
async def capabilities_field_rules(ctx: VectorContext) -> None:
    """The response is read strictly (DSM_CAPS and bytes 38-40 are reserved).  REQ_MSGS_SUPPORTED
    must have the seven required requests 81h-87h (bits 1-7), nothing at bit 0 (80h is no
    request) or past 8Bh (no such request in TDISP 1.0), and each optional request it lists
    must be served: one the device answers UNSUPPORTED_REQUEST was listed falsely.
    LOCK_INTERFACE_FLAGS_SUPPORTED has no bit above 4; NUM_REQ_THIS and NUM_REQ_ALL are at
    least 1, and a DSM cannot take more requests for one TDI than for all of them."""
    findings: list[str] = []
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        iid = ctx.interface_id()
        rsp = await tsm.tdisp.request(T.GetTdispCapabilities(interface_id=iid))
        if not isinstance(rsp, T.TdispCapabilities):
            ctx.expect(False, f"GET_TDISP_CAPABILITIES answered {rsp!r} ({_CAPS})")
        assert isinstance(rsp, T.TdispCapabilities)
        mask = rsp.req_msgs_supported
        ctx.measure("req_msgs_supported_byte0", mask & 0xFF, "")
        ctx.measure("dev_addr_width", rsp.dev_addr_width, "bits")
        ctx.measure("num_req_this", rsp.num_req_this, "")
        ctx.measure("num_req_all", rsp.num_req_all, "")
        if not _MIN_DEV_ADDR_WIDTH <= rsp.dev_addr_width <= 64:
            findings.append(
                f"DEV_ADDR_WIDTH {rsp.dev_addr_width}, outside 52..64 (52: the TEE-IO "
                "conformance minimum; §11.3.7 itself states none)"
            )
        for name in ("num_req_this", "num_req_all"):
            if getattr(rsp, name) == 0:
                findings.append(f"{name.upper()} 0: no request may be outstanding")
        required = T.req_msgs_mask(T.REQUIRED_REQUESTS)
        if mask & required != required:
            missing = [c.name for c in T.REQUIRED_REQUESTS if not rsp.supports(c)]
            findings.append(f"REQ_MSGS_SUPPORTED {mask:#x} lacks required {missing}")
        if mask & ~_DEFINED_REQUEST_BITS:
            findings.append(
                f"REQ_MSGS_SUPPORTED {mask:#x} sets bits {mask & ~_DEFINED_REQUEST_BITS:#x}, "
                "which name no TDISP request (bit index = code - 80h)"
            )
        if rsp.lock_flags_supported & ~_DEFINED_LOCK_FLAGS:
            findings.append(
                f"LOCK_INTERFACE_FLAGS_SUPPORTED {rsp.lock_flags_supported:#x} sets reserved bits"
            )
        if rsp.num_req_this > rsp.num_req_all:
            findings.append(
                f"NUM_REQ_THIS {rsp.num_req_this} exceeds NUM_REQ_ALL {rsp.num_req_all}"
            )
        listed = [code for code in _optional_requests(iid) if rsp.supports(code)]
        ctx.measure("optional_listed", len(listed), "")
        for code in listed:
            answer = await tsm.tdisp.request(_optional_requests(iid)[code])
            if (
                isinstance(answer, T.TdispError)
                and answer.error_code == T.ErrorCode.UNSUPPORTED_REQUEST
            ):
                findings.append(f"{code.name} is listed in REQ_MSGS_SUPPORTED but unsupported")
    ctx.expect(not findings, f"{'; '.join(findings)} (PCIe 6.x {_CAPS})")


@vector(
    "tdisp.capabilities.lock_flags",
    title="LOCK with a FLAGS bit LOCK_INTERFACE_FLAGS_SUPPORTED does not list is refused; with "
    "every listed flag it succeeds",
    spec="PCIe 6.x §11.3.7 Table 11-9 (LOCK_INTERFACE_FLAGS_SUPPORTED), §11.3.8 Table 11-12",
    needs=MESSAGING,
)
async def capabilities_lock_flags(ctx: VectorContext) -> None:
    """§11.3.8: LOCK must fail with INVALID_REQUEST when it asks for a flag the device does not
    support.  LOCK with all the supported flags comes first (it must succeed: where a rig
    cannot make the stream Secure, that is where the vector stops being applicable), then STOP,
    then each unsupported flag of bits 4:0 alone on the same keyed stream: each must be refused
    and leave the TDI CONFIG_UNLOCKED."""
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        caps = await tsm.tdisp.get_capabilities()
        supported = caps.lock_flags_supported & _DEFINED_LOCK_FLAGS
        unsupported = [f for f in T.LockFlags if not supported & f]
        ctx.measure("lock_flags_unsupported", len(unsupported), "")
        await tsm.secure_stream()
        await tsm.lock_keyed(flags=supported)
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_lock_supported_flags")
        await tsm.tdisp.stop()
        for flag in unsupported:
            lock = tsm.tdisp.lock(STREAM_ID, flags=int(flag))
            err = await _expect_error(
                ctx, f"LOCK with unsupported {flag.name}", lock, TdispErrorResponse, _LOCK
            )
            ctx.expect(
                err.code == T.ErrorCode.INVALID_REQUEST,
                f"LOCK with unsupported {flag.name} answered {err}; expected INVALID_REQUEST "
                f"(PCIe 6.x {_LOCK})",
            )
            await _state(ctx, tsm, T.TdiState.CONFIG_UNLOCKED, f"after_lock_{flag.name.lower()}")


# --------------------------------------------------------------------------------------------
# The TDI report: structure, portions, OFFSET
# --------------------------------------------------------------------------------------------

_REPORT_LAYOUT = "§11.3.11, Table 11-15"
_CAP_MSIX = 0x11  # MSI-X capability ID (standard list)
_EXT_CAP_TPH = 0x0017  # TPH Requester extended capability
_EXT_CAP_LNR = 0x001C  # LN Requester extended capability


async def _std_capabilities(ctx: VectorContext) -> set[int]:
    """The IDs on the function's standard capability list (from the pointer at 34h)."""
    ids: set[int] = set()
    ptr = (await ctx.config.read32(0x34)) & 0xFC
    for _ in range(48):
        if not ptr:
            break
        header = await ctx.config.read32(ptr)
        ids.add(header & 0xFF)
        ptr = (header >> 8) & 0xFC
    return ids


async def _report_bytes(td: TdispRequester, length: int) -> tuple[bytes, list[int], int]:
    """The report read with LENGTH ``length`` per request: its bytes, each portion's size, and
    the first response's PORTION_LENGTH + REMAINDER_LENGTH (the size it announced)."""
    data = b""
    sizes: list[int] = []
    announced = -1
    while True:
        rsp = await td.call(
            T.GetDeviceInterfaceReport(
                interface_id=td.interface_id, offset=len(data), length=length
            ),
            T.DeviceInterfaceReport,
        )
        if announced < 0:
            announced = len(rsp.portion) + rsp.remainder_length
        if len(rsp.portion) > length:
            raise PeerProtocolError(f"PORTION_LENGTH {len(rsp.portion)} exceeds LENGTH {length}")
        if len(data) + len(rsp.portion) + rsp.remainder_length != announced:
            raise PeerProtocolError(
                f"at OFFSET {len(data)}: PORTION_LENGTH {len(rsp.portion)} + REMAINDER_LENGTH "
                f"{rsp.remainder_length} does not add up to the {announced} bytes announced"
            )
        sizes.append(len(rsp.portion))
        data += rsp.portion
        if not rsp.remainder_length:
            return data, sizes, announced
        if not rsp.portion or len(sizes) > 0x10000:
            raise PeerProtocolError("a portion of 0 bytes with bytes remaining")


@vector(
    "tdisp.report.structure",
    title="The TDI report: no reserved bit, MMIO ranges counted, sized and attributed as the "
    "function's configuration says, INTERFACE_INFO as LOCK asked",
    spec="PCIe 6.x §11.3.11 Table 11-15 (TDI report), §11.3.8 (NO_FW_UPDATE)",
    needs=MESSAGING,
)
async def report_structure(ctx: VectorContext) -> None:
    """Read strictly (reserved INTERFACE_INFO bits, bytes 2-3, MMIO attribute bits 15:4 set:
    a failure), with MMIO_RANGE_COUNT and DEVICE_SPECIFIC_INFO_LEN matching the bytes.  Each
    range covers at least one page, ranges do not overlap, the MSI-X attributes appear only
    with an MSI-X capability, and the MSI-X, LN and TPH control copies are zero for a function
    without those capabilities.  LOCK asks for NO_FW_UPDATE where it is supported: INTERFACE_INFO
    bit 0 must then say so."""
    findings: list[str] = []
    async with _Tsm(ctx) as tsm:
        await tsm.tdisp.get_version()
        caps = await tsm.tdisp.get_capabilities()
        no_fw = caps.lock_flags_supported & T.LockFlags.NO_FW_UPDATE
        await tsm.secure_stream()
        await tsm.lock_keyed(flags=no_fw)
        data, _, _ = await _report_bytes(tsm.tdisp, 0xFFFF)
        ctx.measure("report_bytes", len(data), "B", low=20)
        report = T.TdiReport.decode(data)  # strictly: reserved bits and lengths
        if ctx.config_if_any is not None:
            await check_report(report, ctx.config, tsm.tdisp.mmio_reporting_offset)
        ctx.measure("mmio_ranges", len(report.mmio_ranges), "", low=1)
        if no_fw and not report.interface_info & T.InterfaceInfo.NO_FW_UPDATE_WHILE_LOCKED:
            findings.append("LOCK asked for NO_FW_UPDATE; INTERFACE_INFO bit 0 is clear")
        spans = []
        for i, rng in enumerate(report.mmio_ranges):
            if rng.num_pages == 0:
                findings.append(f"MMIO range {i} covers no page")
            spans.append((rng.first_page, rng.first_page + rng.num_pages, i))
        spans.sort()
        for (_, end, a), (start, _, b) in itertools.pairwise(spans):
            if start < end:
                findings.append(f"MMIO ranges {a} and {b} overlap")
        if ctx.config_if_any is not None:
            std = await _std_capabilities(ctx)
            ext = {c.cap_id for c in await walk_ext_capabilities(ctx.config)}
            msix = _CAP_MSIX in std
            msix_attrs = T.MmioAttr.MSIX_TABLE | T.MmioAttr.MSIX_PBA
            if not msix and any(r.attributes & msix_attrs for r in report.mmio_ranges):
                findings.append("an MMIO range is marked MSI-X table/PBA; there is no MSI-X")
            for present, value, name in (
                (msix, report.msi_x_message_control, "MSI_X_MESSAGE_CONTROL"),
                (_EXT_CAP_LNR in ext, report.lnr_control, "LNR_CONTROL"),
                (_EXT_CAP_TPH in ext, report.tph_control, "TPH_CONTROL"),
            ):
                if not present and value:
                    findings.append(f"{name} {value:#x} for a function without the capability")
    ctx.expect(not findings, f"{'; '.join(findings)} (PCIe 6.x {_REPORT_LAYOUT})")


@vector(
    "tdisp.report.portions",
    title="The TDI report read in small portions: each at most LENGTH, PORTION + REMAINDER "
    "adding up at every OFFSET, the bytes equal to one whole read",
    spec="PCIe 6.x §11.3.10 Table 11-13 (OFFSET, LENGTH), §11.3.11 Table 11-14 "
    "(PORTION_LENGTH, REMAINDER_LENGTH)",
    needs=MESSAGING,
)
async def report_portions(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.lock()
        whole, sizes, announced = await _report_bytes(tsm.tdisp, 0xFFFF)
        ctx.measure("report_bytes", len(whole), "B", low=20)
        ctx.measure("portions_whole", len(sizes), "", low=1)
        for length in (3, 7, 16):  # odd portions, whose ends fall at every byte of a DW, and DWs
            data, sizes, total = await _report_bytes(tsm.tdisp, length)
            ctx.measure(f"portions_length_{length}", len(sizes), "", low=-(-len(whole) // length))
            ctx.expect(
                total == announced and data == whole,
                f"the report read {length} bytes at a time ({len(data)} bytes, {total} announced) "
                f"differs from the one read whole ({len(whole)} bytes) (PCIe 6.x §11.3.11)",
            )
        # A request may start anywhere inside the report (§11.3.10: OFFSET in bytes).
        middle = len(whole) // 2
        rsp = await tsm.tdisp.call(
            T.GetDeviceInterfaceReport(interface_id=ctx.interface_id(), offset=middle, length=4),
            T.DeviceInterfaceReport,
        )
        ctx.expect(
            rsp.portion == whole[middle : middle + len(rsp.portion)]
            and rsp.remainder_length == len(whole) - middle - len(rsp.portion),
            f"the portion at OFFSET {middle} is not the report's bytes there, or its "
            f"REMAINDER_LENGTH {rsp.remainder_length} is wrong (PCIe 6.x §11.3.11)",
        )


@vector(
    "tdisp.report.invalid_offset",
    title="GET_DEVICE_INTERFACE_REPORT with an OFFSET at or past the report's end gets "
    "TDISP_ERROR INVALID_REQUEST; the TDI stays CONFIG_LOCKED",
    spec="PCIe 6.x §11.3.10 Table 11-16 (OFFSET invalid: INVALID_REQUEST)",
    needs=MESSAGING,
)
async def report_invalid_offset(ctx: VectorContext) -> None:
    async with _Tsm(ctx) as tsm:
        await tsm.lock()
        whole, _, _ = await _report_bytes(tsm.tdisp, 0xFFFF)
        for offset in (len(whole), 0xFFFF):
            request = T.GetDeviceInterfaceReport(
                interface_id=ctx.interface_id(), offset=offset, length=16
            )
            err = await _expect_error(
                ctx,
                f"report at OFFSET {offset} of a {len(whole)}-byte report",
                tsm.tdisp.call(request, T.DeviceInterfaceReport),
                TdispInvalidRequest,
                _REPORT,
            )
            ctx.measure(f"error_code_offset_{offset}", err.code, "")
        await _state(ctx, tsm, T.TdiState.CONFIG_LOCKED, "after_refusals")
