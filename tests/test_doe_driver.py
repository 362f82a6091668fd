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
    mbx, doe = _mailbox()  # no responder: a CMA object keeps the mailbox Busy
    with pytest.raises(DoeTimeout):
        run(mbx.exchange(DataObject(1, DoeType.CMA_SPDM, b"\x10\x84\x00\x00")))
    with pytest.raises(DoeBusy):
        run(mbx.send(DataObject(1, DoeType.CMA_SPDM, b"")))
    assert doe.busy_request is None  # the driver aborted after seeing Busy


def test_error_before_write_aborts() -> None:
    mbx, doe = _mailbox()
    doe.error = True
    with pytest.raises(DoeError):
        run(mbx.send(DataObject(1, DoeType.DISCOVERY, bytes(4))))
    assert not doe.error


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
