"""Every vector under asyncio over the in-package fake endpoint, and proof that each can fail.

The fake rig is the lab code path without hardware: the same vector functions that run under
cocotb in simulation run here under ``asyncio.run``.  Each defect below is a plausible device
bug; the vector named beside it must fail on it (and everything passes on the good model).
"""

from __future__ import annotations

import asyncio

import pytest

from hil import _regs as R
from hil.codec.doe import DataObject, DoeType
from hil.fake import FakeConfigSpace, FakeDoe
from hil.firmware import Dsm
from hil.transport import AsyncioTimebase
from hil.vectors import Outcome, VectorContext, default_suite, execute

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
    vectors get the project's firmware behind it, driving the fake IDE hardware."""
    config = FakeConfigSpace()
    if vid.startswith(("spdm.", "ide_km.")):
        config.doe.responder = Dsm(hdl_build="test", regs=config.firmware_regs()).handle
    return config


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
