"""DOE objects over the DMTF spdm-emu socket protocol (PCI_DOE transport), with asyncio.

The client side (what ``spdm_requester_emu`` and QEMU do) and the serving side (what
``spdm_responder_emu`` does) share the framing in :mod:`hil.codec.spdm_socket`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

from ..codec.doe import DataObject
from ..codec.spdm_socket import (
    CLIENT_HELLO,
    SERVER_HELLO,
    Command,
    Frame,
    FrameReader,
    Transport,
)
from ..errors import DoeTimeout, PeerProtocolError, RigError
from . import DoeTransport

__all__ = ["DoeService", "SocketResponder", "SpdmSocketClient", "serve"]

#: What serves DOE objects: a request in, a response (or None: no answer) out.
DoeService = Callable[[DataObject], Awaitable[DataObject | None]]

log = logging.getLogger("hil.spdm_socket")


def _nodelay(sock: socket.socket | None) -> None:
    # A request/response protocol on loopback stalls on delayed ACKs without this.
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _quickack(sock)


def _quickack(sock: socket.socket | None) -> None:
    """ACK what arrived at once (Linux re-arms delayed ACKs, so this is said after each read).

    spdm-emu writes a frame in several send() calls without TCP_NODELAY: Nagle holds the later
    pieces until the first is acknowledged, and a delayed ACK makes every exchange ~40-90 ms.
    """
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


class _PeerClosed(RigError):
    """The responder closed the connection (mid-exchange, or between exchanges)."""


class SpdmSocketClient(DoeTransport):
    """Connects to a responder (spdm_responder_emu, ``hil serve``) and exchanges DOE objects."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2323, *, timeout_s: float = 10.0):
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames = FrameReader()
        self._queue: list[Frame] = []

    async def connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise RigError(f"no SPDM responder at {self.host}:{self.port}: {exc}") from None
        _nodelay(self._writer.get_extra_info("socket"))

    async def close(self) -> None:
        """Say CONTINUE, then close: a responder that sees a bare close stops serving.

        spdm_responder_emu echoes CONTINUE, closes its end and accepts the next connection; a
        connection closed without CONTINUE or SHUTDOWN makes it exit (see ``SocketResponder``).
        """
        if self._writer is not None:
            if not self._writer.is_closing() and self._reader is not None:
                try:
                    await self.request(Command.CONTINUE)
                except (RigError, PeerProtocolError, OSError):
                    pass  # the peer is gone or broken already: nothing left to keep serving
            await self._drop()

    async def _drop(self) -> None:
        """Close our end without a word (the peer already closed, or CONTINUE was said)."""
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
            self._writer = self._reader = None
            self._frames = FrameReader()
            self._queue.clear()

    async def __aenter__(self) -> SpdmSocketClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, frame: Frame) -> None:
        if self._writer is None:
            raise RigError("the SPDM socket is not connected")
        self._writer.write(frame.encode())  # one write per frame
        await self._writer.drain()

    async def _recv(self) -> Frame:
        if self._reader is None:
            raise RigError("the SPDM socket is not connected")
        while not self._queue:
            _quickack(self._writer.get_extra_info("socket") if self._writer else None)
            try:
                data = await asyncio.wait_for(self._reader.read(65536), self.timeout_s)
            except TimeoutError:
                raise PeerProtocolError(
                    f"no frame from the responder in {self.timeout_s} s"
                ) from None
            if not data:
                raise _PeerClosed("the SPDM responder closed the connection")
            self._queue.extend(self._frames.feed(data))
        return self._queue.pop(0)

    async def request(self, command: int, payload: bytes = b"") -> Frame:
        await self._send(Frame(command, Transport.PCI_DOE, payload))
        reply = await self._recv()
        if reply.transport != Transport.PCI_DOE:
            raise PeerProtocolError(f"reply on transport {reply.transport}, expected PCI_DOE (2)")
        return reply

    async def hello(self) -> None:
        reply = await self.request(Command.TEST, CLIENT_HELLO)
        if reply.command != Command.TEST or reply.payload != SERVER_HELLO:
            raise PeerProtocolError(f"TEST answered by {reply.command:#x} {reply.payload!r}")

    async def exchange(self, request: DataObject) -> DataObject:
        """One DOE object out, one back.

        A responder with nothing to answer (a record it cannot open, a message it drops) has no
        way to say so on this protocol: spdm_responder_emu closes the connection, others send
        an empty NORMAL.  Either is what an unanswered DOE request is on a mailbox, a
        :class:`DoeTimeout`; the next exchange connects again.
        """
        if self._writer is None:
            await self.connect()
        try:
            reply = await self.request(Command.NORMAL, request.encode())
        except _PeerClosed:
            await self._drop()
            raise DoeTimeout(
                "the responder closed the connection instead of answering "
                "(spdm-emu's way of leaving a request unanswered)"
            ) from None
        if reply.command != Command.NORMAL:
            raise PeerProtocolError(f"NORMAL answered by command {reply.command:#x}")
        if not reply.payload:
            raise DoeTimeout("the responder answered NORMAL with no response object")
        return DataObject.decode(reply.payload)

    async def shutdown(self) -> None:
        reply = await self.request(Command.SHUTDOWN)
        if reply.command != Command.SHUTDOWN:
            raise PeerProtocolError(f"SHUTDOWN answered by command {reply.command:#x}")
        await self.close()


class SocketResponder:
    """The responder's side of one connection.

    As spdm_responder_emu answers: TEST -> "Server Hello!"; NORMAL on PCI_DOE -> the service's
    response object; CONTINUE is echoed and then this connection is closed, so that the server
    accepts the next one; SHUTDOWN is echoed, the connection closed and the server stops; any
    other command -> UNKNOWN.  A frame on another transport, or a payload that is not a DOE
    object, ends the connection with a logged reason.

    When the device gives no response object (a request that the specs say must not be
    answered, or a DOE timeout) the reply is a NORMAL frame with an empty payload: no DOE
    object, QEMU's ``spdm_port`` reading of "no response".  (spdm_responder_emu closes the
    connection in that case; libspdm's requester asserts on the empty frame in a debug build,
    and it only meets one when it sends what must not be answered.)
    """

    def __init__(self, service: DoeService) -> None:
        self.service = service
        self.shutdown = False
        self.exchanges = 0  # NORMAL frames answered

    async def handle(self, frame: Frame) -> tuple[Frame | None, bool]:
        """The reply to ``frame`` and whether to close the connection afterwards."""
        if frame.transport != Transport.PCI_DOE:
            log.warning(
                "closing: frame on transport %d, this responder speaks PCI_DOE (2)", frame.transport
            )
            return None, True
        if frame.command == Command.TEST:
            return Frame(Command.TEST, Transport.PCI_DOE, SERVER_HELLO), False
        if frame.command == Command.CONTINUE:
            return Frame(Command.CONTINUE, Transport.PCI_DOE), True
        if frame.command == Command.SHUTDOWN:
            self.shutdown = True
            return Frame(Command.SHUTDOWN, Transport.PCI_DOE), True
        if frame.command != Command.NORMAL:
            return Frame(Command.UNKNOWN, Transport.PCI_DOE), False
        try:
            request = DataObject.decode(frame.payload)
        except PeerProtocolError as exc:
            log.warning("closing: payload is not a DOE object: %s", exc)
            return None, True
        response = await self.service(request)
        self.exchanges += 1
        payload = response.encode() if response is not None else b""
        return Frame(Command.NORMAL, Transport.PCI_DOE, payload), False


async def serve(
    service: DoeService,
    host: str = "127.0.0.1",
    port: int = 2323,
    *,
    ready: Callable[[int], None] | None = None,
    on_connection: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve ``service`` on ``host:port`` with asyncio until a peer sends SHUTDOWN.

    ``on_connection`` runs before each connection is served (the serving side's own setup).

    One connection is served at a time, in the order they arrive, as spdm_responder_emu
    serves them: the device behind the service has one DOE mailbox.  A connection that closes
    without CONTINUE or SHUTDOWN is logged and the next one is accepted; spdm_responder_emu
    stops instead.  That difference is deliberate: at a plugfest one peer that drops its
    socket must not take the device away from the next.
    """
    stopped = asyncio.Event()
    turn = asyncio.Lock()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = writer.get_extra_info("peername")
        peer = f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)
        _nodelay(writer.get_extra_info("socket"))
        async with turn:
            if stopped.is_set():
                writer.close()
                return
            if on_connection is not None:
                await on_connection()
            responder = SocketResponder(service)
            await _converse(responder, reader, writer, peer)
            if responder.shutdown:
                stopped.set()

    server = await asyncio.start_server(connection, host, port)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready(bound)
    async with server:
        await stopped.wait()


async def _converse(
    responder: SocketResponder,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer: object,
) -> None:
    """Serve one connection until CONTINUE, SHUTDOWN, a close or a broken frame."""
    frames = FrameReader()
    sock = writer.get_extra_info("socket")
    log.info("%s connected", peer)
    ended = "closed without CONTINUE or SHUTDOWN"
    try:
        while True:
            _quickack(sock)
            data = await reader.read(65536)
            if not data:
                return
            for frame in frames.feed(data):
                reply, close = await responder.handle(frame)
                if reply is not None:
                    writer.write(reply.encode())
                    await writer.drain()
                if close:
                    ended = "SHUTDOWN" if responder.shutdown else "CONTINUE"
                    return
    except PeerProtocolError as exc:
        ended = f"closed: {exc}"
        log.warning("closing %s: %s", peer, exc)
    except (ConnectionError, OSError) as exc:
        ended = f"connection ended: {exc}"
    finally:
        log.info("%s: %d exchanges, %s", peer, responder.exchanges, ended)
        writer.close()
