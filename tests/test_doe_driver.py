"""The host DOE driver against the in-package DOE model, under asyncio."""

from __future__ import annotations

import asyncio

import pytest

from hil import _regs as R
from hil.codec.doe import DataObject, DoeType
from hil.errors import DoeTimeout, PeerProtocolError
from hil.fake import FakeConfigSpace, FakeDoe
from hil.host import DoeMailbox, walk_ext_capabilities
from hil.host.doe import DoeBusy, DoeError
from hil.transport import AsyncioTimebase


def _mailbox(doe: FakeDoe | None = None, timeout_s: float = 0.05) -> tuple[DoeMailbox, FakeDoe]:
    config = FakeConfigSpace(doe)
    mbx = DoeMailbox(
        config, config.doe.offset, AsyncioTimebase(), timeout_s=timeout_s, poll_interval_s=0.001
    )
    return mbx, config.doe


def run(coro):
    return asyncio.run(coro)


def test_discovery_follows_next_index() -> None:
    mbx, _ = _mailbox()
    assert run(mbx.discover()) == [(1, 0), (1, 1), (1, 2)]
    assert mbx.exchanges == 3


def test_exchange_through_a_responder() -> None:
    async def reverse(obj: DataObject) -> DataObject:
        return DataObject(obj.vendor_id, obj.type, obj.payload[::-1])

    doe = FakeDoe(responder=reverse)
    mbx, _ = _mailbox(doe)
    rsp = run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"\x01\x02\x03\x04")))
    assert rsp.payload == b"\x04\x03\x02\x01"
    assert mbx.bytes_sent == 12 and mbx.bytes_received == 12


def test_no_answer_times_out_and_aborts() -> None:
    """drivers/pci/doe.c: a request that times out is aborted before the error is returned,
    so the mailbox is idle again and the next exchange gets its own response."""
    mbx, doe = _mailbox()  # no responder: a CMA object keeps the mailbox Busy
    with pytest.raises(DoeTimeout):
        run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"\x10\x84\x00\x00")))
    assert doe.busy_request is None  # aborted after the timeout
    assert not mbx.dead
    assert run(mbx.discover()) == [(1, 0), (1, 1), (1, 2)]


def test_busy_before_a_write_is_waited_out() -> None:
    """Busy is polled for up to the deadline before a write (pci_doe_send_req), not failed."""
    mbx, doe = _mailbox(timeout_s=1.0)
    doe.busy_request = DataObject(1, DoeType.CMA_SPDM, b"")  # another agent's object

    async def other_agent_finishes() -> None:
        await asyncio.sleep(0.05)
        doe.busy_request = None

    async def both() -> list[tuple[int, int]]:
        task = asyncio.create_task(other_agent_finishes())
        features = await mbx.discover()
        await task
        return features

    assert run(both()) == [(1, 0), (1, 1), (1, 2)]


def test_busy_for_the_whole_deadline_fails_and_aborts() -> None:
    mbx, doe = _mailbox()
    doe.busy_request = DataObject(1, DoeType.CMA_SPDM, b"")
    with pytest.raises(DoeBusy, match="still Busy"):
        run(mbx.exchange(DataObject(1, DoeType.DISCOVERY, bytes(4))))
    assert doe.busy_request is None  # the failed request was followed by Abort


def test_error_before_write_fails_and_aborts() -> None:
    mbx, doe = _mailbox()
    doe.error = True
    with pytest.raises(DoeError, match="in Error before a write"):
        run(mbx.exchange(DataObject(1, DoeType.DISCOVERY, bytes(4))))
    assert not doe.error


def test_a_failed_abort_marks_the_mailbox_dead() -> None:
    """An Abort that does not clear Busy within the deadline: PCI_DOE_FLAG_DEAD."""

    class Stuck(FakeDoe):
        def _abort(self) -> None:
            pass  # Abort is ignored: Busy stays

    mbx, doe = _mailbox(Stuck())
    with pytest.raises(DoeTimeout):
        run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"\x10\x84\x00\x00")))
    assert mbx.dead
    writes_before = doe.busy_request
    with pytest.raises(DoeError, match="dead"):
        run(mbx.exchange(DataObject(1, DoeType.DISCOVERY, bytes(4))))
    assert doe.busy_request is writes_before  # nothing was written to a dead mailbox


@pytest.mark.parametrize(("cap_version", "request_version"), [(1, 0), (2, 2), (3, 2)])
def test_discovery_request_version_follows_the_capability(
    cap_version: int, request_version: int
) -> None:
    seen: list[int] = []

    class Versioned(FakeDoe):
        def read(self, reg: int) -> int:
            value = super().read(reg)
            if reg == R.DOE_HEADER:
                value = (value & ~(0xF << 16)) | (cap_version << 16)
            return value

        def _go(self) -> None:
            if len(self.wmbx) == 3:
                seen.append((self.wmbx[2] >> 8) & 0xFF)  # Discovery request DW: Version
            super()._go()

    mbx, _ = _mailbox(Versioned())
    run(mbx.init())
    assert mbx.cap_version == cap_version
    run(mbx.discover())
    assert seen and set(seen) == {request_version}


def test_wrong_response_type_is_the_peers_error() -> None:
    async def wrong_type(obj: DataObject) -> DataObject:
        return DataObject(1, DoeType.DISCOVERY, bytes(4))

    doe = FakeDoe(responder=wrong_type)
    mbx, _ = _mailbox(doe)
    with pytest.raises(PeerProtocolError, match="response is vendor"):
        run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"")))


def test_discovery_that_goes_back_is_rejected() -> None:
    class Backwards(FakeDoe):
        def _queue(self, obj: DataObject) -> None:
            if obj.type == DoeType.DISCOVERY and obj.payload[2] == 1:
                obj = DataObject(obj.vendor_id, obj.type, obj.payload[:3] + b"\x01")
            super()._queue(obj)

    mbx, _ = _mailbox(Backwards())
    with pytest.raises(PeerProtocolError, match=r"loops|goes back"):
        run(mbx.discover())


def test_capability_walk_finds_doe() -> None:
    config = FakeConfigSpace()
    caps = run(walk_ext_capabilities(config))
    assert [(c.cap_id, c.offset) for c in caps] == [
        (0x0003, 0x100),
        (0x002E, R.DOE_CAP_OFFSET),
        (0x0030, R.IDE_CAP_OFFSET),
    ]


def test_capability_walk_rejects_a_loop() -> None:
    class Loop(FakeConfigSpace):
        async def read32(self, offset: int) -> int:
            if offset == self.doe.offset:
                return 0x002E | (2 << 16) | (0x100 << 20)
            return await super().read32(offset)

    with pytest.raises(PeerProtocolError, match="loops"):
        run(walk_ext_capabilities(Loop()))


def _idle_mailbox(idle_answers: list[bool | None], timeout_s: float) -> tuple[DoeMailbox, list]:
    """A mailbox whose CMA requests are taken and dropped (the responder answers nothing),
    with a device_idle hook that gives ``idle_answers`` in turn (the last one from then on)."""

    async def drop(obj: DataObject) -> DataObject | None:
        return None

    asked: list[bool | None] = []

    async def idle() -> bool | None:
        answer = idle_answers[min(len(asked), len(idle_answers) - 1)]
        asked.append(answer)
        return answer

    config = FakeConfigSpace(FakeDoe(responder=drop))
    mbx = DoeMailbox(
        config,
        config.doe.offset,
        AsyncioTimebase(),
        timeout_s=timeout_s,
        poll_interval_s=0.001,
        idle=idle,
    )
    return mbx, asked


def test_an_idle_device_ends_the_wait_for_a_response() -> None:
    """Nothing in flight and no response in the mailbox: none can come, so the wait ends as a
    timeout (and the exchange aborts), without waiting out the deadline."""
    mbx, asked = _idle_mailbox([False, False, True], timeout_s=3600.0)
    with pytest.raises(DoeTimeout, match="idle"):
        run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"\x10\x84\x00\x00")))
    assert asked == [False, False, True]
    assert len(mbx.silences) == 1
    assert run(mbx.discover()) == [(1, 0), (1, 1), (1, 2)]  # aborted: usable again


def test_a_device_that_cannot_say_leaves_the_deadline() -> None:
    mbx, asked = _idle_mailbox([None], timeout_s=0.05)
    with pytest.raises(DoeTimeout, match="within deadline"):
        run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"\x10\x84\x00\x00")))
    assert asked and mbx.silences == []


def test_idleness_never_ends_a_wait_that_has_its_answer() -> None:
    """A response already in the mailbox is read, whatever the idle hook says."""

    async def answer(obj: DataObject) -> DataObject:
        return DataObject(obj.vendor_id, obj.type, b"\x10\x04\x00\x00")

    async def idle() -> bool:
        return True

    config = FakeConfigSpace(FakeDoe(responder=answer))
    mbx = DoeMailbox(config, config.doe.offset, AsyncioTimebase(), timeout_s=3600.0, idle=idle)
    rsp = run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"\x10\x84\x00\x00")))
    assert rsp.payload == b"\x10\x04\x00\x00" and mbx.silences == []
