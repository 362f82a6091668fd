"""The spdm-emu socket protocol: framing, the client, and the serving side, on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.codec.doe import DataObject, DiscoveryRequest, DiscoveryResponse
from hil.codec.spdm_socket import SERVER_HELLO, Command, Frame, FrameReader, Transport
from hil.errors import PeerProtocolError
from hil.fake import FakeConfigSpace
from hil.host import DoeMailbox
from hil.transport import AsyncioTimebase
from hil.transport.spdm_socket import SpdmSocketClient, serve


def test_frame_layout_is_big_endian() -> None:
    raw = Frame(Command.NORMAL, Transport.PCI_DOE, b"\x01\x02").encode()
    assert raw == bytes.fromhex("000000010000000200000002") + b"\x01\x02"


@given(st.lists(st.binary(max_size=40), max_size=5), st.integers(1, 7))
def test_reader_reassembles_any_split(payloads: list[bytes], chunk: int) -> None:
    stream = b"".join(Frame(1, 2, p).encode() for p in payloads)
    reader = FrameReader()
    got: list[Frame] = []
    for i in range(0, len(stream), chunk):
        got += reader.feed(stream[i : i + chunk])
    assert [f.payload for f in got] == payloads
    assert reader.pending == 0


def test_reader_rejects_oversize() -> None:
    with pytest.raises(PeerProtocolError, match="at most"):
        FrameReader(max_payload=16).feed(struct.pack(">III", 1, 2, 17))


async def _with_server(body):
    mbx = DoeMailbox(FakeConfigSpace(), 0x480, AsyncioTimebase(), poll_interval_s=0.0)
    await mbx.init()

    async def service(obj: DataObject) -> DataObject | None:
        return await mbx.exchange(obj)

    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve(service, "127.0.0.1", 0, ready=port.set_result))
    try:
        await body(await port)
    finally:
        if not server.done():
            async with SpdmSocketClient(port=port.result()) as c:
                await c.shutdown()
        await asyncio.wait_for(server, 5)


def test_client_and_server_exchange_discovery() -> None:
    async def body(port: int) -> None:
        async with SpdmSocketClient(port=port) as client:
            await client.hello()
            rsp = await client.exchange(DiscoveryRequest(1).to_object())
            assert DiscoveryResponse.from_object(rsp) == DiscoveryResponse(1, 1, 2)
            assert (await client.request(0x1234)).command == Command.UNKNOWN

    asyncio.run(_with_server(body))


def test_garbage_ends_only_that_connection() -> None:
    async def body(port: int) -> None:
        for garbage in (
            struct.pack(">III", 1, 2, 1 << 30),  # oversize announcement
            Frame(Command.NORMAL, Transport.MCTP, b"\x00").encode(),  # wrong transport
            Frame(Command.NORMAL, Transport.PCI_DOE, b"\x01\x00").encode(),  # not a DOE object
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(garbage)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 5) == b""  # closed by the server
            writer.close()
        async with SpdmSocketClient(port=port) as client:  # the server still serves
            rsp = await client.exchange(DiscoveryRequest(0).to_object())
            assert DiscoveryResponse.from_object(rsp).next_index == 1

    asyncio.run(_with_server(body))


def test_a_frame_sent_byte_by_byte_is_answered() -> None:
    async def body(port: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        for b in Frame(Command.TEST, Transport.PCI_DOE, b"hi").encode():
            await loop.sock_sendall(sock, bytes([b]))
        data = b""
        while len(data) < 12 + len(SERVER_HELLO):
            data += await asyncio.wait_for(loop.sock_recv(sock, 100), 5)
        assert FrameReader().feed(data) == [Frame(Command.TEST, Transport.PCI_DOE, SERVER_HELLO)]
        sock.close()

    asyncio.run(_with_server(body))
