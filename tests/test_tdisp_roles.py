"""TDISP both roles back to back in memory: the host requester against the firmware responder,
which drives the shared in-memory hardware model (hil.fake: IDE key slots and the TDI)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from helpers import query_resp_with_trailing_bytes

from hil import firmware
from hil._fake_hw import TdiCause
from hil.codec import ide_km as K
from hil.codec import spdm as S
from hil.codec import tdisp as T
from hil.errors import LocalProtocolError, PeerProtocolError
from hil.fake import FakeConfigSpace
from hil.firmware import Dsm, FirmwareTransport
from hil.firmware.tdisp import REPORT_PORTION, TdispResponder
from hil.host.ide_km import IdeKmRequester
from hil.host.spdm import SpdmRequester, SpdmSession
from hil.host.tdisp import (
    TdispErrorResponse,
    TdispInvalidInterface,
    TdispInvalidInterfaceState,
    TdispInvalidNonce,
    TdispInvalidRequest,
    TdispNoResponse,
    TdispRequester,
    check_report,
)
from hil.rigs import find_rig
from hil.transport import AsyncioTimebase, DoeTransport
from hil.vectors import Outcome, VectorContext, VectorResult, execute, suite_from_modules
from hil.vectors import tdisp as tdisp_vectors

RID = 0x0100
IID = T.InterfaceId(RID)
STREAM_ID = 0x2A
BAR0 = 0x0000_0012_FEDC_0000


@dataclass
class Bench:
    config: FakeConfigSpace
    dsm: Dsm
    spdm: SpdmRequester
    session: SpdmSession
    km: IdeKmRequester
    td: TdispRequester

    @property
    def tdi(self) -> Any:
        return self.config.tdi

    async def secure(self) -> None:
        await self.km.query()
        regs = await self.km.setup_stream(0, STREAM_ID)
        await self.km.program_all(STREAM_ID, 0)
        await self.km.go_all(STREAM_ID, 0)
        assert await self.km.enable(regs, STREAM_ID) == K.IdeStreamState.SECURE

    async def lock(self, **kwargs: Any) -> bytes:
        await self.td.get_version()
        await self.secure()
        return await self.td.lock(STREAM_ID, **kwargs)


async def bench() -> Bench:
    config = FakeConfigSpace()
    await config.write32(0x10, BAR0 & 0xFFFF_FFFF)  # the host assigns BAR0
    await config.write32(0x14, BAR0 >> 32)
    await config.write32(0x04, 0x0006)  # Memory Space and Bus Master Enable
    dsm = Dsm(hdl_build="test", regs=config.firmware_regs(), requester_id=RID)
    spdm = SpdmRequester(FirmwareTransport(dsm), trust_anchor=firmware.test_pki().trust_anchor)
    await spdm.authenticate()
    session = await spdm.key_exchange()
    km = IdeKmRequester(spdm, session, config)
    td = TdispRequester(spdm, session, IID, config)
    return Bench(config, dsm, spdm, session, km, td)


def run(test: Callable[[Bench], Awaitable[None]]) -> None:
    async def main() -> None:
        await test(await bench())

    asyncio.run(main())


async def answer(b: Bench, payload: bytes) -> T.TdispMessage | None:
    raw = await b.td.send_payload(payload)
    return None if raw is None else T.decode(raw)


def is_error(rsp: object, code: T.ErrorCode, data: int = 0) -> bool:
    return isinstance(rsp, T.TdispError) and (rsp.error_code, rsp.error_data) == (code, data)


# --------------------------------------------------------------------------------------------
# The flow, and the hardware holding the state
# --------------------------------------------------------------------------------------------


def test_flow_drives_the_hardware_state() -> None:
    async def body(b: Bench) -> None:
        assert await b.td.get_version() == (T.VERSION_10,)
        caps = await b.td.get_capabilities()
        assert caps.req_msgs_supported == 0xFE and caps.lock_flags_supported & 0xFFE0 == 0
        assert await b.td.get_state() == T.TdiState.CONFIG_UNLOCKED
        nonce = await b.lock(mmio_reporting_offset=-0x12_0000_0000)
        assert len(nonce) == 32 and b.tdi.state == T.TdiState.CONFIG_LOCKED
        assert b.tdi.bound == 0
        report = await b.td.get_report()
        assert b.td.portions == 2  # 36 bytes in 32-byte portions: reassembled
        assert report.mmio_ranges == (
            T.MmioRange(first_page=0xFEDC0, num_pages=1, attributes=0, range_id=0),
        )
        await b.td.start()
        assert b.tdi.state == T.TdiState.RUN and await b.td.get_state() == T.TdiState.RUN
        assert b.dsm.tdisp is not None and b.dsm.tdisp.nonce is None  # consumed
        await b.td.stop()
        assert b.tdi.state == T.TdiState.CONFIG_UNLOCKED and b.tdi.bound is None

    run(body)


def test_state_is_read_from_the_hardware_every_time() -> None:
    async def body(b: Bench) -> None:
        await b.lock()
        b.tdi.poisoned_request()  # the hardware alone moves the TDI to ERROR
        assert await b.td.get_state() == T.TdiState.ERROR
        with pytest.raises(TdispInvalidInterfaceState):
            await b.td.start()
        b.config.reset()  # conventional reset: CONFIG_UNLOCKED, keys wiped
        assert await b.td.get_state() == T.TdiState.CONFIG_UNLOCKED

    run(body)


def test_config_write_while_locked_is_error_with_its_cause() -> None:
    async def body(b: Bench) -> None:
        await b.lock()
        await b.td.start()
        await b.config.write32(0x04, await b.config.read32(0x04))
        assert await b.td.get_state() == T.TdiState.ERROR
        assert b.tdi.cause == TdiCause.CONFIG_WRITE
        await b.td.stop()
        assert b.tdi.cause == TdiCause.NONE

    run(body)


def test_ending_the_locking_session_fails_the_tdi_at_once() -> None:
    async def body(b: Bench) -> None:
        await b.lock()
        await b.td.start()
        await b.spdm.end_session(b.session)
        # FAIL went to the hardware before END_SESSION_ACK left, not at the next request.
        assert b.tdi.state == T.TdiState.ERROR and b.tdi.cause == TdiCause.FIRMWARE_FAIL
        other = await b.spdm.key_exchange(req_session_id=0xC0DE)
        td = TdispRequester(b.spdm, other, IID, b.config)
        assert await td.get_state() == T.TdiState.ERROR  # nobody owns the streams now
        await td.stop()
        assert await td.get_state() == T.TdiState.CONFIG_UNLOCKED

    run(body)


def test_ending_another_session_leaves_the_tdi_alone() -> None:
    async def body(b: Bench) -> None:
        other = await b.spdm.key_exchange(req_session_id=0xC0DE)
        await b.lock()
        await b.spdm.end_session(other)
        assert b.tdi.state == T.TdiState.CONFIG_LOCKED

    run(body)


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


def test_illegal_transitions() -> None:
    async def body(b: Bench) -> None:
        with pytest.raises(TdispInvalidInterfaceState):
            await b.td.start(bytes(32))
        with pytest.raises(TdispInvalidInterfaceState):
            await b.td.get_report()
        nonce = await b.lock()
        with pytest.raises(TdispInvalidInterfaceState):
            await b.td.lock(STREAM_ID)
        await b.td.start()
        with pytest.raises(TdispInvalidInterfaceState):
            await b.td.start(nonce)
        assert b.tdi.state == T.TdiState.RUN

    run(body)


def test_nonce_checked_and_consumed() -> None:
    async def body(b: Bench) -> None:
        old = await b.lock()
        with pytest.raises(TdispInvalidNonce):
            await b.td.start(bytes(32))
        assert b.tdi.state == T.TdiState.CONFIG_LOCKED
        await b.td.start(old)
        await b.td.stop()
        new = await b.td.lock(STREAM_ID)
        assert new != old
        with pytest.raises(TdispInvalidNonce):
            await b.td.start(old)
        with pytest.raises(LocalProtocolError):
            await TdispRequester(b.spdm, b.session, IID).start()

    run(body)


def test_lock_checks_the_default_stream() -> None:
    async def body(b: Bench) -> None:
        await b.td.get_version()
        with pytest.raises(TdispInvalidRequest, match="INVALID_REQUEST"):
            await b.td.lock(STREAM_ID)  # no stream configured with it
        await b.km.query()
        await b.km.setup_stream(0, STREAM_ID)
        await b.km.program_all(STREAM_ID, 0)
        with pytest.raises(TdispInvalidRequest):  # keys loaded, none in use
            await b.td.lock(STREAM_ID)
        await b.km.go_all(STREAM_ID, 0)
        with pytest.raises(TdispErrorResponse) as err:  # keys in use, Enable still 0
            await b.td.lock(STREAM_ID)
        assert err.value.code == T.ErrorCode.INVALID_DEVICE_CONFIGURATION
        await b.secure()
        for bad in (
            {"flags": T.LockFlags.BIND_P2P},
            {"flags": T.LockFlags.ALL_REQUEST_REDIRECT},
            {"mmio_reporting_offset": -(BAR0 + 0x1000)},  # underflows
        ):
            with pytest.raises(TdispInvalidRequest):
                await b.td.lock(STREAM_ID, **bad)
        assert b.tdi.state == T.TdiState.CONFIG_UNLOCKED
        await b.td.lock(STREAM_ID, flags=T.LockFlags.NO_FW_UPDATE | T.LockFlags.LOCK_MSIX)

    run(body)


def test_lock_refuses_keys_from_no_session() -> None:
    async def body(b: Bench) -> None:
        await b.secure()
        await b.spdm.end_session(b.session)  # the stream stays Secure until someone re-keys
        other = await b.spdm.key_exchange(req_session_id=0xC0DE)
        td = TdispRequester(b.spdm, other, IID, b.config)
        with pytest.raises(TdispInvalidRequest):
            await td.lock(STREAM_ID)

    run(body)


def test_generic_errors() -> None:
    async def body(b: Bench) -> None:
        wrong = TdispRequester(b.spdm, b.session, T.InterfaceId(RID + 1), b.config)
        with pytest.raises(TdispInvalidInterface):
            await wrong.get_version()
        seg = TdispRequester(b.spdm, b.session, T.InterfaceId(RID, 3, True), b.config)
        with pytest.raises(TdispInvalidInterface):
            await seg.get_state()
        # GET_TDISP_VERSION takes any 1.x; everything else must be 1.0.
        v11 = T.GetTdispVersion(interface_id=IID, version=0x11)
        assert isinstance(await answer(b, v11.encode()), T.TdispVersion)
        v20 = T.GetTdispVersion(interface_id=IID, version=0x20)
        assert is_error(await answer(b, v20.encode()), T.ErrorCode.VERSION_MISMATCH)
        s11 = T.GetDeviceInterfaceState(interface_id=IID, version=0x11)
        assert is_error(await answer(b, s11.encode()), T.ErrorCode.VERSION_MISMATCH)
        # Bad lengths.
        short = T.StartInterfaceRequest(interface_id=IID, nonce=bytes(32)).encode()[:-1]
        assert is_error(await answer(b, short), T.ErrorCode.INVALID_REQUEST)
        long = T.GetDeviceInterfaceState(interface_id=IID).encode() + b"\x00"
        assert is_error(await answer(b, long), T.ErrorCode.INVALID_REQUEST)
        # Optional and unknown requests: UNSUPPORTED_REQUEST with the code as ERROR_DATA.
        bind = T.BindP2pStreamRequest(interface_id=IID, p2p_stream_id=1).encode()
        assert is_error(await answer(b, bind), T.ErrorCode.UNSUPPORTED_REQUEST, 0x88)
        vdm = T.VdmRequest(interface_id=IID, vendor=T.VendorData(0, b"\x01\x00")).encode()
        assert is_error(await answer(b, vdm), T.ErrorCode.UNSUPPORTED_REQUEST, 0x8B)
        unknown = bytearray(T.GetDeviceInterfaceState(interface_id=IID).encode())
        unknown[2] = 0xC0
        assert is_error(await answer(b, bytes(unknown)), T.ErrorCode.UNSUPPORTED_REQUEST, 0xC0)
        # Reserved fields are ignored by the responder (§11.3.3).
        reserved = bytearray(T.GetDeviceInterfaceState(interface_id=IID).encode())
        reserved[3] = 0xFF
        assert isinstance(await answer(b, bytes(reserved)), T.DeviceInterfaceState)
        # A header too short to hold an INTERFACE_ID: an invalid field (§11.3.2, Table 11-6),
        # reported for the DSM's own TDI.
        short = await answer(b, b"\x01\x10\x81")
        assert is_error(short, T.ErrorCode.INVALID_REQUEST)
        assert short.interface_id == IID

    run(body)


def test_report_portions_and_offsets() -> None:
    async def body(b: Bench) -> None:
        await b.lock()
        whole = T.TdiReport.decode(await _whole_report(b))
        size = len(whole.encode())
        rsp = await answer(b, T.GetDeviceInterfaceReport(interface_id=IID).encode())
        assert isinstance(rsp, T.DeviceInterfaceReport)
        assert len(rsp.portion) == REPORT_PORTION and rsp.remainder_length == size - 32
        small = T.GetDeviceInterfaceReport(interface_id=IID, offset=4, length=3)
        rsp = await answer(b, small.encode())
        assert isinstance(rsp, T.DeviceInterfaceReport)
        assert rsp.portion == whole.encode()[4:7] and rsp.remainder_length == size - 7
        for bad in ({"offset": size}, {"offset": 0, "length": 0}):
            msg = T.GetDeviceInterfaceReport(interface_id=IID, **bad)
            assert is_error(await answer(b, msg.encode()), T.ErrorCode.INVALID_REQUEST)
        b.td.max_portion = 5
        assert await b.td.get_report() == whole and b.td.portions == 8

    run(body)


async def _whole_report(b: Bench) -> bytes:
    assert b.dsm.tdisp is not None
    return (await b.dsm.tdisp.tdi_report()).encode()


# --------------------------------------------------------------------------------------------
# Who may talk
# --------------------------------------------------------------------------------------------


def test_only_the_owning_session_is_answered() -> None:
    async def body(b: Bench) -> None:
        other = await b.spdm.key_exchange(req_session_id=0xC0DE)
        intruder = TdispRequester(b.spdm, other, IID, b.config)
        assert await intruder.get_version() == (T.VERSION_10,)  # nobody owns the streams yet
        await b.km.query()  # now this session does
        with pytest.raises(TdispNoResponse):
            await intruder.get_version()
        assert await b.td.get_version() == (T.VERSION_10,)

    run(body)


def test_tdisp_in_the_clear_is_ignored() -> None:
    async def body(b: Bench) -> None:
        vdm = S.VendorDefinedRequest.pci_sig(
            S.PciProtocolId.TDISP,
            T.GetTdispVersion(interface_id=IID).encode()[1:],
            version=b.spdm.version,
        )
        with pytest.raises(PeerProtocolError):
            await b.spdm.send_raw(vdm.encode())

    run(body)


# --------------------------------------------------------------------------------------------
# The host's checks
# --------------------------------------------------------------------------------------------


def test_report_check_against_config_space() -> None:
    async def body(b: Bench) -> None:
        good = T.TdiReport(mmio_ranges=(T.MmioRange(BAR0 >> 12, 1),))
        await check_report(good, b.config, 0, {0: 4096})
        shifted = T.TdiReport(mmio_ranges=(T.MmioRange((BAR0 >> 12) + 1, 1),))
        with pytest.raises(PeerProtocolError, match="FIRST_PAGE"):
            await check_report(shifted, b.config, 0)
        await check_report(shifted, b.config, 0x1000)  # the offset explains it
        with pytest.raises(PeerProtocolError, match="pages"):
            await check_report(good, b.config, 0, {0: 8192})
        order = T.TdiReport(mmio_ranges=(T.MmioRange(0, 1, range_id=2), good.mmio_ranges[0]))
        with pytest.raises(PeerProtocolError, match="after BAR2"):
            await check_report(order, b.config, 0)

    run(body)


class _LyingResponder(TdispResponder):
    async def tdi_report(self) -> T.TdiReport:  # reports a page other than BAR0's
        report = await super().tdi_report()
        first = report.mmio_ranges[0]
        return T.TdiReport(mmio_ranges=(T.MmioRange(first.first_page + 1, first.num_pages),))


def test_requester_rejects_a_report_that_disagrees_with_config() -> None:
    async def body(b: Bench) -> None:
        assert b.dsm.tdisp is not None and b.dsm.ide_km is not None
        b.dsm.tdisp = _LyingResponder(b.dsm.regs, b.dsm.ide_km, IID)  # type: ignore[arg-type]
        await b.lock()
        with pytest.raises(PeerProtocolError, match="FIRST_PAGE"):
            await b.td.get_report()

    run(body)


# --------------------------------------------------------------------------------------------
# The vectors on the fake rig, and proof that they can fail
# --------------------------------------------------------------------------------------------

SETTINGS = {"trust_anchor": "test-pki", "doe_timeout_s": 0.2, "doe_poll_interval_s": 0.0}
PROVIDES = frozenset({"config", "doe", "spdm", "ide_km", "tdisp"})
VECTORS = suite_from_modules(tdisp_vectors)


def run_vector(
    vid: str, *patches: Callable[[Dsm], None], config_space: bool = True
) -> VectorResult:
    """Run one vector against the firmware, patched; without ``config_space`` the way a socket
    rig reaches a peer: DOE objects straight to the firmware, no configuration space."""
    config = FakeConfigSpace()
    dsm = Dsm(hdl_build="test", regs=config.firmware_regs())
    for patch in patches:
        patch(dsm)
    config.doe.responder = dsm.handle

    async def transport() -> DoeTransport:
        return FirmwareTransport(dsm)

    ctx = VectorContext(
        rig_name="test",
        rig_kind="fake" if config_space else "spdm-socket",
        provides=PROVIDES if config_space else PROVIDES - {"config", "doe"},
        timebase=AsyncioTimebase(),
        config=config if config_space else None,
        settings=SETTINGS,
        resources={"function_id": dsm.requester_id},
        doe_transport=None if config_space else transport,
    )
    return asyncio.run(execute(VECTORS[vid], ctx))


@pytest.mark.parametrize("vid", sorted(v for v, vec in VECTORS.items() if vec.needs <= PROVIDES))
def test_every_tdisp_vector_passes_on_the_fake(vid: str) -> None:
    result = run_vector(vid)
    assert result.outcome is Outcome.PASS, result.message


def test_fake_rig_provides_tdisp_and_the_reset_vector_needs_power() -> None:
    assert "tdisp" in find_rig("fake").provides
    assert run_vector("tdisp.reset.unlocks").outcome is Outcome.NA


def _answers_any_interface(dsm: Dsm) -> None:
    """Treats every INTERFACE_ID as its own."""
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp.handle

    async def handle(session_id: int, request: S.VendorDefinedRequest) -> bytes | None:
        payload = bytearray(request.payload)
        payload[5:9] = RID.to_bytes(4, "little")
        return await original(session_id, replace(request, payload=bytes(payload)))

    tdisp.handle = handle  # type: ignore[method-assign]


def _answers_everyone(dsm: Dsm) -> None:
    """Answers TDISP from any session, as if it came from the one owning the streams."""
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp.handle

    async def handle(session_id: int, request: S.VendorDefinedRequest) -> bytes | None:
        owner = tdisp.ide_km.owner
        return await original(session_id if owner is None else owner, request)

    tdisp.handle = handle  # type: ignore[method-assign]


def _stop_refused_in_error(dsm: Dsm) -> None:
    """Refuses STOP in ERROR, leaving a failed TDI stuck until reset."""
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp._stop

    async def stop(session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        if await tdisp._state() == T.TdiState.ERROR:
            return T.TdispError(interface_id=IID, error_code=T.ErrorCode.INVALID_INTERFACE_STATE)
        return await original(session_id, msg)

    tdisp._stop = stop  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("vid", "defect"),
    [
        ("tdisp.interface_id.wrong", _answers_any_interface),
        ("tdisp.session_binding.other_session_ignored", _answers_everyone),
        ("tdisp.config_write.error", _stop_refused_in_error),
        ("tdisp.session_end.error", _stop_refused_in_error),
    ],
)
def test_vectors_fail_on_a_defective_firmware(vid: str, defect: Callable[[Dsm], None]) -> None:
    result = run_vector(vid, defect)
    assert result.outcome is Outcome.FAIL, (result.outcome, result.message)


# --------------------------------------------------------------------------------------------
# STOP in every state, and clean-up that never decides a verdict
# --------------------------------------------------------------------------------------------


def _refuse_stop(dsm: Dsm, *states: T.TdiState) -> None:
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp._stop

    async def stop(session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        if not states or await tdisp._state() in states:
            return T.TdispError(interface_id=IID, error_code=T.ErrorCode.INVALID_INTERFACE_STATE)
        return await original(session_id, msg)

    tdisp._stop = stop  # type: ignore[method-assign]


def _stop_refused_when_unlocked(dsm: Dsm) -> None:
    """Refuses STOP in CONFIG_UNLOCKED with INVALID_INTERFACE_STATE, as DMTF's sample DSM does."""
    _refuse_stop(dsm, T.TdiState.CONFIG_UNLOCKED)


def _stop_always_refused(dsm: Dsm) -> None:
    _refuse_stop(dsm)


def _start_in_run_accepted(dsm: Dsm) -> None:
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp._start

    async def start(session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        if await tdisp._state() == T.TdiState.RUN:
            return T.StartInterfaceResponse(interface_id=IID)
        return await original(session_id, msg)

    tdisp._start = start  # type: ignore[method-assign]


def _end_session_refused(dsm: Dsm) -> None:
    """Answers END_SESSION with ERROR Unspecified (the session stays open)."""
    spdm = dsm.spdm
    original = spdm._in_session

    async def in_session(session: Any, data: bytes) -> bytes | None:
        if len(data) >= 2 and data[1] == S.RequestCode.END_SESSION:
            return S.ErrorResponse(error_code=S.ErrorCode.UNSPECIFIED).encode()
        return await original(session, data)

    spdm._in_session = in_session  # type: ignore[method-assign]


def _cleanup_failures(result: VectorResult) -> dict[str, float]:
    return {m["name"]: m["value"] for m in result.measurements if m["name"].startswith("cleanup_")}


def test_stop_in_unlocked_refused_fails_its_own_vector_only() -> None:
    """The DMTF sample's STOP behaviour: only tdisp.stop.in_unlocked may fail on it, with the
    clause; the vectors that used to STOP first, or on the way out, pass."""
    result = run_vector("tdisp.stop.in_unlocked", _stop_refused_when_unlocked)
    assert result.outcome is Outcome.FAIL, result.message
    assert "INVALID_INTERFACE_STATE" in result.message and "§11.3.16" in result.message
    others = [v for v, vec in VECTORS.items() if vec.needs <= PROVIDES]
    others.remove("tdisp.stop.in_unlocked")
    for vid in others:
        result = run_vector(vid, _stop_refused_when_unlocked)
        assert result.outcome is Outcome.PASS, (vid, result.message)
        assert not _cleanup_failures(result), vid


def test_stop_vectors_pass_on_the_firmware() -> None:
    for vid in ("tdisp.stop.in_unlocked", "tdisp.stop.in_locked"):
        result = run_vector(vid)
        assert result.outcome is Outcome.PASS, (vid, result.message)
    result = run_vector("tdisp.stop.in_locked", _stop_always_refused)
    assert result.outcome is Outcome.FAIL and "Table 11-3" in result.message


def test_a_failing_clean_up_is_recorded_not_judged() -> None:
    # LOCK twice ends CONFIG_LOCKED: the STOP on the way out is refused, the verdict stands.
    result = run_vector("tdisp.lock.twice", _stop_always_refused)
    assert result.outcome is Outcome.PASS, result.message
    assert _cleanup_failures(result) == {"cleanup_stop_failed": 1}
    result = run_vector("tdisp.flow.lock_start_stop", _end_session_refused)
    assert result.outcome is Outcome.PASS, result.message
    assert _cleanup_failures(result) == {"cleanup_end_session_failed": 1}


def test_a_failing_clean_up_does_not_replace_the_verdict() -> None:
    result = run_vector(
        "tdisp.start.in_run", _start_in_run_accepted, _stop_always_refused, _end_session_refused
    )
    assert result.outcome is Outcome.FAIL
    assert result.message.startswith("START in RUN succeeded"), result.message
    assert "§11.3.14" in result.message
    assert _cleanup_failures(result) == {
        "cleanup_stop_failed": 1,
        "cleanup_end_session_failed": 1,
    }


# --------------------------------------------------------------------------------------------
# Spec clauses in the verdicts
# --------------------------------------------------------------------------------------------


def _report_refused_as_invalid_offset(dsm: Dsm) -> None:
    """GET_DEVICE_INTERFACE_REPORT outside CONFIG_LOCKED/RUN refused with INVALID_REQUEST."""
    tdisp = dsm.tdisp
    assert tdisp is not None
    original = tdisp._report

    async def report(session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        if await tdisp._state() == T.TdiState.CONFIG_UNLOCKED:
            return T.TdispError(interface_id=IID, error_code=T.ErrorCode.INVALID_REQUEST)
        return await original(session_id, msg)

    tdisp._report = report  # type: ignore[method-assign]


def _answers_tdisp_in_the_clear(dsm: Dsm) -> None:
    spdm = dsm.spdm
    original = spdm._plain

    async def plain(data: bytes) -> bytes | None:
        if len(data) > 9 and data[1] == S.RequestCode.VENDOR_DEFINED_REQUEST:
            version = T.TdispVersion(interface_id=IID, versions=(T.VERSION_10,))
            return S.VendorDefinedResponse.pci_sig(
                S.PciProtocolId.TDISP, version.encode()[1:]
            ).encode()
        return await original(data)

    spdm._plain = plain  # type: ignore[method-assign]


def _session_end_forgotten(dsm: Dsm) -> None:
    """The locking session's end releases the streams but neither wipes their keys nor fails
    the TDI: it stays in RUN for the next session to find."""
    tdisp, ide_km = dsm.tdisp, dsm.ide_km
    assert tdisp is not None and ide_km is not None

    async def session_ended(session_id: int) -> None:
        return None

    def release(session_id: int) -> None:
        ide_km.owner = None

    tdisp.session_ended = session_ended  # type: ignore[method-assign]
    ide_km.session_ended = release  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("vid", "defect", "clause"),
    [
        ("tdisp.report.before_lock", _report_refused_as_invalid_offset, "Table 11-16"),
        ("tdisp.outside_session.ignored", _answers_tdisp_in_the_clear, "§11.2.2"),
        ("tdisp.session_end.error", _session_end_forgotten, "§11.4.5"),
        ("tdisp.session_binding.other_session_ignored", _answers_everyone, "§11.3.8"),
    ],
)
def test_failures_cite_their_clause(vid: str, defect: Callable[[Dsm], None], clause: str) -> None:
    result = run_vector(vid, defect)
    assert result.outcome is Outcome.FAIL, (result.outcome, result.message)
    assert clause in result.message, result.message


# --------------------------------------------------------------------------------------------
# A rig without configuration space (a socket rig)
# --------------------------------------------------------------------------------------------


def test_without_config_space_lock_is_not_applicable_rather_than_failed() -> None:
    """Nothing can write the stream's registers: this firmware refuses keys for a Stream ID
    no register holds (and would refuse LOCK of a stream not Secure), which makes the LOCK
    vectors n/a on such a rig, not failed."""
    for vid in ("tdisp.stop.in_locked", "tdisp.flow.lock_start_stop"):
        result = run_vector(vid, config_space=False)
        assert result.outcome is Outcome.NA, result.message
        assert "configuration space" in result.message
    for vid in ("tdisp.stop.in_unlocked", "tdisp.start.from_unlocked", "tdisp.version.mismatch"):
        result = run_vector(vid, config_space=False)
        assert result.outcome is Outcome.PASS, (vid, result.message)


# --------------------------------------------------------------------------------------------
# Lenient QUERY_RESP in a flow
# --------------------------------------------------------------------------------------------


def test_a_flow_reads_past_query_resp_trailing_bytes() -> None:
    async def body(b: Bench) -> None:
        query_resp_with_trailing_bytes(b.dsm)
        with pytest.raises(K.IdeKmDecodeError, match="288 bytes after the blocks"):
            await b.km.query(strict=True)
        rsp = await b.km.query()
        assert len(rsp.trailing) == 288 and rsp.selective_blocks
        assert len(b.km.notes) == 1 and "288 bytes" in b.km.notes[0]
        await b.lock()  # the flow goes on
        assert b.tdi.state == T.TdiState.CONFIG_LOCKED

    run(body)


def test_tdisp_vectors_go_on_past_query_resp_trailing_bytes() -> None:
    for vid in ("tdisp.flow.lock_start_stop", "tdisp.session_binding.other_session_ignored"):
        result = run_vector(vid, query_resp_with_trailing_bytes)
        assert result.outcome is Outcome.PASS, (vid, result.message)
