"""The serving side of the spdm-emu socket protocol (``hil serve``): connection semantics.

spdm_responder_emu's: CONTINUE is echoed and that connection closed, the next one accepted;
SHUTDOWN is echoed and the server stops.  A connection closed without either: spdm_responder_emu
stops, ``hil serve`` logs it and accepts the next one (deliberately).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from hil.codec.doe import DataObject, DiscoveryRequest, DiscoveryResponse
from hil.codec.spdm_socket import Command, Frame, FrameReader, Transport
from hil.transport.spdm_socket import SocketResponder, SpdmSocketClient, serve


async def _discovery(obj: DataObject) -> DataObject | None:
    """A device that answers DOE Discovery index 0 and nothing else."""
    if obj.type == 0 and obj.payload[:1] == b"\x00":
        return DiscoveryResponse(1, 0, 0).to_object()
    return None


async def _serving(body, *, on_connection=None, service=_discovery) -> list[str]:
    """Run ``body(port)`` against a server; return what the server did (connections, stop)."""
    events: list[str] = []

    async def hook() -> None:
        events.append("connection")
        if on_connection is not None:
            await on_connection()

    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(service, "127.0.0.1", 0, ready=port.set_result, on_connection=hook)
    )
    await body(await port)
    await asyncio.wait_for(server, 5)  # the body ends with SHUTDOWN: the server returns
    events.append("stopped")
    return events


async def _raw(port: int, *frames: Frame) -> tuple[list[Frame], bool]:
    """Send ``frames`` on a fresh connection; the replies and whether the server closed it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for frame in frames:
        writer.write(frame.encode())
    await writer.drain()
    got: list[Frame] = []
    frames_in = FrameReader()
    closed = False
    while len(got) < len(frames):
        data = await asyncio.wait_for(reader.read(4096), 5)
        if not data:
            closed = True
            break
        got += frames_in.feed(data)
    if not closed:
        try:
            closed = await asyncio.wait_for(reader.read(4096), 0.5) == b""
        except TimeoutError:
            closed = False
    writer.close()
    return got, closed


def _frame(command: int, payload: bytes = b"") -> Frame:
    return Frame(command, Transport.PCI_DOE, payload)


async def _shutdown(port: int) -> None:
    async with SpdmSocketClient(port=port) as client:
        await client.shutdown()


def test_continue_is_echoed_then_that_connection_closes_and_the_next_is_served() -> None:
    async def body(port: int) -> None:
        hello = _frame(Command.TEST, b"Client Hello!\0")
        got, closed = await _raw(port, hello, _frame(Command.CONTINUE))
        assert [f.command for f in got] == [Command.TEST, Command.CONTINUE]
        assert got[1].payload == b""
        assert closed
        # A frame after CONTINUE on the same connection is not read: the server closed it.
        got, closed = await _raw(port, _frame(Command.CONTINUE), hello)
        assert [f.command for f in got] == [Command.CONTINUE] and closed
        await _shutdown(port)

    events = asyncio.run(_serving(body))
    assert events == ["connection", "connection", "connection", "stopped"]


def test_shutdown_is_echoed_and_stops_the_server() -> None:
    async def body(port: int) -> None:
        got, closed = await _raw(port, _frame(Command.SHUTDOWN))
        assert [(f.command, f.payload) for f in got] == [(Command.SHUTDOWN, b"")] and closed

    assert asyncio.run(_serving(body)) == ["connection", "stopped"]


def test_a_close_without_continue_is_logged_and_the_next_connection_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_frame(Command.TEST, b"x").encode())
        await writer.drain()
        await asyncio.wait_for(reader.read(100), 5)
        writer.close()  # no CONTINUE, no SHUTDOWN: spdm_responder_emu would stop here
        await writer.wait_closed()
        async with SpdmSocketClient(port=port) as client:
            rsp = await client.exchange(DiscoveryRequest(0).to_object())
            assert DiscoveryResponse.from_object(rsp) == DiscoveryResponse(1, 0, 0)
            await client.shutdown()

    with caplog.at_level(logging.INFO, logger="hil.spdm_socket"):
        events = asyncio.run(_serving(body))
    assert events == ["connection", "connection", "stopped"]
    assert "without CONTINUE or SHUTDOWN" in caplog.text


def test_connections_are_served_one_at_a_time() -> None:
    """A second connection waits until the first one ends, as with spdm_responder_emu."""

    async def body(port: int) -> None:
        first = SpdmSocketClient(port=port)
        await first.connect()
        await first.hello()
        second = SpdmSocketClient(port=port, timeout_s=0.3)
        await second.connect()
        waiting = asyncio.create_task(second.request(Command.TEST, b"hi"))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # not served while the first connection lasts
        await first.close()  # CONTINUE, then close
        second.timeout_s = 5
        assert (await waiting).command == Command.TEST
        await second.shutdown()

    assert asyncio.run(_serving(body)) == ["connection", "connection", "stopped"]


def test_no_response_object_is_an_empty_normal_frame_and_the_connection_stays() -> None:
    async def body(port: int) -> None:
        ignored = DiscoveryRequest(1).to_object()  # the device answers index 0 only
        got, closed = await _raw(
            port, _frame(Command.NORMAL, ignored.encode()), _frame(Command.TEST, b"?")
        )
        assert (got[0].command, got[0].payload) == (Command.NORMAL, b"")
        assert got[1].command == Command.TEST and not closed
        await _shutdown(port)

    asyncio.run(_serving(body))


def test_responder_frame_table() -> None:
    """SocketResponder alone: what each command gets and whether the connection closes."""
    responder = SocketResponder(_discovery)

    async def answer(command: int, transport: int = Transport.PCI_DOE):
        return await responder.handle(Frame(command, transport, b""))

    assert asyncio.run(answer(Command.CONTINUE)) == (_frame(Command.CONTINUE), True)
    assert asyncio.run(answer(0x1234)) == (_frame(Command.UNKNOWN), False)
    assert asyncio.run(answer(Command.TEST, Transport.MCTP)) == (None, True)
    assert not responder.shutdown
    assert asyncio.run(answer(Command.SHUTDOWN)) == (_frame(Command.SHUTDOWN), True)
    assert responder.shutdown
