"""Every vector under asyncio over the in-package fake endpoint, and proof that each can fail.

The fake rig is the lab code path without hardware: the same vector functions that run under
cocotb in simulation run here under ``asyncio.run``.  Each defect below is a plausible device
bug; the vector named beside it must fail on it (and everything passes on the good model).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from helpers import query_resp_with_trailing_bytes

from hil import _regs as R
from hil.codec import ide_km as K
from hil.codec import spdm as S
from hil.codec.doe import DataObject, DoeType
from hil.fake import IDE_FEATURES, FakeConfigSpace, FakeDoe, FakeTdi, fake_ide_cap
from hil.firmware import Dsm, FirmwareTransport
from hil.firmware.spdm_responder import ConnectionState
from hil.transport import AsyncioTimebase, DoeTransport
from hil.vectors import Outcome, VectorContext, VectorResult, default_suite, execute

SETTINGS = {
    "trust_anchor": "test-pki",
    "doe_timeout_s": 0.2,
    "doe_poll_interval_s": 0.0,
    "doe_quiet_s": 0.001,
    "doe_features": ["0001:00", "0001:01", "0001:02"],
    "doe_max_object_dw": 1024,
}
PROVIDES = frozenset({"config", "config_partial", "doe", "spdm", "ide_km"})


def run_vector(vid: str, config: FakeConfigSpace, provides=PROVIDES, settings=SETTINGS):
    ctx = VectorContext(
        rig_name="test",
        rig_kind="fake",
        provides=provides,
        timebase=AsyncioTimebase(),
        config=config,
        settings=settings,
    )
    return asyncio.run(execute(default_suite()[vid], ctx))


def good_device(vid: str) -> FakeConfigSpace:
    """DOE vectors get a mailbox nobody serves CMA on (so it can be kept Busy); SPDM and IDE_KM
    vectors get the project's firmware behind it, driving the fake IDE hardware, presented at
    IDE_KM PortIndex 00h and 01h (so the non-zero PortIndex vector has a port to address); the
    vectors for optional IDE configurations get a capability that advertises them all."""
    config = FakeConfigSpace()
    if vid.startswith(("ide_km.k_set_go.selective_", "ide_km.k_set_go.link")) or vid.endswith(
        ".link"
    ):
        # a vector per optional configuration: a capability with every one of them
        ide = fake_ide_cap({"ide_features": sorted(IDE_FEATURES), "link_tcs": 1})
        config = FakeConfigSpace(tdi=FakeTdi(ide))
    if vid.startswith(("spdm.", "ide_km.")):
        dsm = Dsm(hdl_build="test", regs=config.firmware_regs(), ide_km_port_index=1)
        config.doe.responder = dsm.handle
    return config


def test_a_non_zero_port_index_vector_is_not_applicable_to_one_port() -> None:
    config = FakeConfigSpace()
    config.doe.responder = Dsm(hdl_build="test", regs=config.firmware_regs()).handle
    result = run_vector("ide_km.port_index.nonzero", config)
    assert result.outcome is Outcome.NA and "MaxPortIndex is 0" in result.message


@pytest.mark.parametrize(
    "vid", sorted(v for v, vec in default_suite().items() if vec.needs <= PROVIDES)
)
def test_every_vector_passes_on_a_good_device(vid: str) -> None:
    result = run_vector(vid, good_device(vid))
    assert result.outcome is Outcome.PASS, result.message


def test_a_missing_need_is_not_applicable() -> None:
    result = run_vector("doe.partial_write.sets_error", FakeConfigSpace(), provides={"doe"})
    assert result.outcome is Outcome.NA
    assert "config_partial" in result.message


class NoInvalidVendor(FakeDoe):
    def _queue(self, obj: DataObject) -> None:  # answers past the table with a real entry
        if obj.type == DoeType.DISCOVERY and obj.payload[:2] == b"\xff\xff":
            obj = DataObject(1, 0, b"\x01\x00\x00\x00")
        super()._queue(obj)


class ExtraFeature(FakeDoe):
    def __init__(self) -> None:
        super().__init__(features=((1, 0), (1, 1), (1, 2), (1, 5)))


class ErrorClearedByGo(FakeDoe):
    def write(self, reg: int, value: int, byte_enable: int = 0xF) -> None:
        if reg == R.DOE_CTRL and value & R.DOE_CTRL_GO:
            self.error = False
        super().write(reg, value, byte_enable)


class AnswersMismatchedLength(FakeDoe):
    def _go(self) -> None:
        if len(self.wmbx) >= 3 and self.wmbx[1] != len(self.wmbx):
            self.wmbx[1] = len(self.wmbx)  # "fixes" the length instead of discarding
        super()._go()


class IgnoresPartialWrites(FakeDoe):
    def write(self, reg: int, value: int, byte_enable: int = 0xF) -> None:
        if byte_enable != 0xF:
            return
        super().write(reg, value, byte_enable)


class AbortKeepsResponse(FakeDoe):
    def _abort(self) -> None:
        kept = list(self.rmbx)
        super()._abort()
        self.rmbx.extend(kept)


class NoOverflowError(FakeDoe):
    def _set_error(self) -> None:
        self.wmbx.clear()


class GoReadsBack(FakeDoe):
    def read(self, reg: int) -> int:
        value = super().read(reg)
        return value | R.DOE_CTRL_GO if reg == R.DOE_CTRL else value


class OneResponseAtATime(FakeDoe):
    def _queue(self, obj: DataObject) -> None:
        self.rmbx.clear()  # a second response overwrites the first
        super()._queue(obj)


class AbortWedged(FakeDoe):
    def _go(self) -> None:
        super()._go()
        if self.busy_request is not None:
            self.wedged = True

    def _abort(self) -> None:
        if getattr(self, "wedged", False):
            return  # Busy forever
        super()._abort()


class WrongVersion(FakeDoe):
    def read(self, reg: int) -> int:
        value = super().read(reg)
        return (value & ~0xF0000) | (1 << 16) if reg == R.DOE_HEADER else value


@pytest.mark.parametrize(
    ("defect", "vid"),
    [
        (NoInvalidVendor, "doe.discovery.invalid_index"),
        (ExtraFeature, "doe.discovery.lists_features"),
        (ErrorClearedByGo, "doe.oversize.sets_error"),
        (NoOverflowError, "doe.oversize.sets_error"),
        (AnswersMismatchedLength, "doe.length_mismatch.discarded"),
        (IgnoresPartialWrites, "doe.partial_write.sets_error"),
        (AbortKeepsResponse, "doe.abort.with_response_pending"),
        (GoReadsBack, "doe.capability.registers"),
        (WrongVersion, "doe.capability.registers"),
        (OneResponseAtATime, "doe.back_to_back.queued_responses"),
        (AbortWedged, "doe.go_while_busy"),
    ],
)
def test_each_vector_catches_its_defect(defect: type[FakeDoe], vid: str) -> None:
    result = run_vector(vid, FakeConfigSpace(defect()))
    assert result.outcome is Outcome.FAIL, (result.outcome, result.message)
    assert result.message


def test_a_vector_that_crashes_is_an_error() -> None:
    class Broken(FakeConfigSpace):
        async def read32(self, offset: int) -> int:
            raise OSError(5, "Input/output error")

    result = run_vector("pcie.ext_caps.well_formed", Broken())
    assert result.outcome is Outcome.ERROR
    assert "OSError" in result.message


# --------------------------------------------------------------------------------------------
# IDE_KM and the SPDM negatives: what the spec allows passes, what it forbids fails with the
# clause, and clean-up never decides
# --------------------------------------------------------------------------------------------


def spdm_device(*patches: Callable[[Dsm], None]) -> FakeConfigSpace:
    """The project's firmware behind the mailbox, with ``patches`` applied to it."""
    config = FakeConfigSpace()
    dsm = Dsm(hdl_build="test", regs=config.firmware_regs())
    for patch in patches:
        patch(dsm)
    config.doe.responder = dsm.handle
    return config


def run_on_socket(vid: str, *patches: Callable[[Dsm], None]) -> VectorResult:
    """As a socket rig runs it: DOE objects straight to the firmware, whatever their type."""
    config = FakeConfigSpace()
    dsm = Dsm(hdl_build="test", regs=config.firmware_regs())
    for patch in patches:
        patch(dsm)

    async def transport() -> DoeTransport:
        return FirmwareTransport(dsm)

    ctx = VectorContext(
        rig_name="test",
        rig_kind="spdm-socket",
        provides=frozenset({"spdm", "ide_km"}),
        timebase=AsyncioTimebase(),
        settings=SETTINGS,
        doe_transport=transport,
    )
    return asyncio.run(execute(default_suite()[vid], ctx))


def test_query_resp_trailing_bytes_fail_the_query_vector_only() -> None:
    result = run_vector("ide_km.query.well_formed", spdm_device(query_resp_with_trailing_bytes))
    assert result.outcome is Outcome.FAIL
    assert "288 bytes after the blocks" in result.message and "§6.33.3" in result.message
    trailing = {m["name"]: m["value"] for m in result.measurements}
    assert trailing["query_resp_trailing_bytes_port0"] == 288
    for vid in (
        "ide_km.query.reflects_config",
        "ide_km.key_prog.all_slots",
        "ide_km.k_set_go.secure",
        "ide_km.session_binding",
        "ide_km.key_prog.bad_fields",
    ):
        result = run_vector(vid, spdm_device(query_resp_with_trailing_bytes))
        assert result.outcome is Outcome.PASS, (vid, result.message)


def _vendor_answered_in_the_clear(dsm: Dsm) -> None:
    spdm = dsm.spdm
    original = spdm._plain

    async def plain(data: bytes) -> bytes | None:
        if len(data) > 9 and data[1] == S.RequestCode.VENDOR_DEFINED_REQUEST:
            rsp = K.QueryResp(capability=K.IdeCapability.build(selective_streams=0))
            return rsp.to_vendor_defined().encode()
        return await original(data)

    spdm._plain = plain  # type: ignore[method-assign]


def _key_prog_ignores_sub_stream(dsm: Dsm) -> None:
    """Takes a key for a reserved Sub-Stream into another slot and says Success."""
    ide_km = dsm.ide_km
    assert ide_km is not None
    original = ide_km._key_prog

    async def key_prog(msg: K.KeyProg) -> K.KpAck:
        if not msg.slot.valid:
            return K.KpAck(stream_id=msg.stream_id, slot=msg.slot, port_index=msg.port_index)
        return await original(msg)

    ide_km._key_prog = key_prog  # type: ignore[method-assign]


def _second_session_answered(dsm: Dsm) -> None:
    ide_km = dsm.ide_km
    assert ide_km is not None
    original = ide_km.handle

    async def handle(session_id: int, request: S.VendorDefinedRequest) -> bytes | None:
        return await original(ide_km.owner or session_id, request)

    ide_km.handle = handle  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("vid", "defect", "clause"),
    [
        ("ide_km.outside_session.ignored", _vendor_answered_in_the_clear, "§6.33.3"),
        ("ide_km.key_prog.bad_fields", _key_prog_ignores_sub_stream, "Sub-Stream 0011b"),
        ("ide_km.session_binding", _second_session_answered, "§6.33.3"),
    ],
)
def test_ide_km_failures_cite_their_clause(
    vid: str, defect: Callable[[Dsm], None], clause: str
) -> None:
    result = run_vector(vid, spdm_device(defect))
    assert result.outcome is Outcome.FAIL, (result.outcome, result.message)
    assert clause in result.message, result.message


def _end_session_refused(dsm: Dsm) -> None:
    spdm = dsm.spdm
    original = spdm._in_session

    async def in_session(session: Any, data: bytes) -> bytes | None:
        if len(data) >= 2 and data[1] == S.RequestCode.END_SESSION:
            return S.ErrorResponse(error_code=S.ErrorCode.UNSPECIFIED).encode()
        return await original(session, data)

    spdm._in_session = in_session  # type: ignore[method-assign]


@pytest.mark.parametrize("vid", ["ide_km.key_prog.all_slots", "ide_km.query.well_formed"])
def test_a_refused_end_session_on_the_way_out_is_recorded_not_judged(vid: str) -> None:
    result = run_vector(vid, spdm_device(_end_session_refused))
    assert result.outcome is Outcome.PASS, result.message
    names = [m["name"] for m in result.measurements]
    assert "cleanup_end_session_failed" in names


def _answer_bad_mac(reply: S.Response, *, secured: bool) -> Callable[[Dsm], None]:
    """On a record that fails authentication (the firmware drops it and ends the session),
    answer ``reply`` instead: sealed in that session, or in the clear."""

    def patch(dsm: Dsm) -> None:
        spdm = dsm.spdm
        original = spdm.handle

        async def handle(obj: DataObject) -> DataObject | None:
            if obj.type != DoeType.SECURED_CMA_SPDM:
                return await original(obj)
            session_id = int.from_bytes(obj.payload[:4], "little")
            session = spdm.sessions.get(session_id)
            rsp = await original(obj)
            if rsp is not None or session is None or session_id in spdm.sessions:
                return rsp
            if secured:
                return DataObject(1, DoeType.SECURED_CMA_SPDM, session.secured.seal(reply.encode()))
            return DataObject(1, DoeType.CMA_SPDM, reply.encode())

        spdm.handle = handle  # type: ignore[method-assign]

    return patch


DECRYPT_ERROR = S.ErrorResponse(error_code=S.ErrorCode.DECRYPT_ERROR)


@pytest.mark.parametrize(
    ("reply", "secured", "outcome"),
    [
        (DECRYPT_ERROR, True, Outcome.PASS),  # what libspdm does
        (DECRYPT_ERROR, False, Outcome.PASS),
        (S.ErrorResponse(error_code=S.ErrorCode.INVALID_REQUEST), True, Outcome.FAIL),
        (S.HeartbeatAck(), True, Outcome.FAIL),  # the forged record was processed
    ],
)
def test_bad_mac_answers(reply: S.Response, secured: bool, outcome: Outcome) -> None:
    result = run_on_socket("spdm.negative.bad_mac", _answer_bad_mac(reply, secured=secured))
    assert result.outcome is outcome, result.message
    if outcome is Outcome.FAIL:
        assert "DecryptError" in result.message and "DSP0277" in result.message
    answer = {m["name"]: m["value"] for m in result.measurements}["answer"]
    assert answer == (2 if secured else 1)


def _digests_early(code: int | None) -> Callable[[Dsm], None]:
    """GET_DIGESTS right after VERSION answered with ERROR ``code`` (None: DIGESTS)."""

    def patch(dsm: Dsm) -> None:
        spdm = dsm.spdm
        original = spdm._plain

        async def plain(data: bytes) -> bytes | None:
            after_version = spdm.state is ConnectionState.AFTER_VERSION
            if len(data) >= 2 and data[1] == S.RequestCode.GET_DIGESTS and after_version:
                if code is None:
                    return S.Digests(slot_mask=1, digests=(bytes(48),)).encode()
                return S.ErrorResponse(version=S.SpdmVersion.V10, error_code=code).encode()
            return await original(data)

        spdm._plain = plain  # type: ignore[method-assign]

    return patch


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (S.ErrorCode.VERSION_MISMATCH, Outcome.PASS),  # what libspdm does
        (S.ErrorCode.UNEXPECTED_REQUEST, Outcome.PASS),
        (S.ErrorCode.INVALID_REQUEST, Outcome.FAIL),
        (None, Outcome.FAIL),
    ],
)
def test_unexpected_request_answers(code: int | None, outcome: Outcome) -> None:
    result = run_vector("spdm.negative.unexpected_request", spdm_device(_digests_early(code)))
    assert result.outcome is outcome, result.message
    if outcome is Outcome.FAIL:
        assert "DSP0274" in result.message
