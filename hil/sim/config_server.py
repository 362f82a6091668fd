"""Configuration accesses to the simulated endpoint from another process (the virtual rig).

The simulation listens on a Unix socket; each request is one access, each answer one DW::

    request  (8 bytes): op (u8) | size (u8) | offset (u16) | value (u32)     little-endian
    response (5 bytes): status (u8: 0 ok, 1 error) | value (u32)

ops: 1 read32, 2 write32, 3 write ``size`` (1 or 2) bytes of ``value`` at ``offset``,
4 reset the device (a power cycle), 5 end the simulation, 6 pull the board's UART cable (the
pseudo-terminal goes away; refused when the simulation has no UART), 7 is the device idle:
``size << 16 | offset`` carries the bytes the controller has received on the UART (mod 2**24),
``value`` those it has sent (mod 2**32); the answer is 1 when nothing is in flight on the
simulation's side (the UART bridge and the line quiet for the linger, in simulated time) and
both counts match this end's, so no byte waits in the pseudo-terminal either way, else 0;
refused without a UART.

Between requests the simulator stands still, unless the board's UART is busy (bits in flight,
or a write or reset lately that may send some): then simulated time runs on, and the server
still answers each request as it comes.  Writes to ``quiet_writes`` offsets (the DOE data
mailboxes: an object leaves only on Go) do not count as such a write.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from ..transport import ConfigSpace

__all__ = [
    "OP_END",
    "OP_IDLE",
    "OP_READ",
    "OP_RESET",
    "OP_UNPLUG",
    "OP_WRITE",
    "OP_WRITE_BYTES",
    "REQUEST",
    "RESPONSE",
    "Activity",
    "serve_config",
]

REQUEST = struct.Struct("<BBHI")
RESPONSE = struct.Struct("<BI")
OP_READ, OP_WRITE, OP_WRITE_BYTES, OP_RESET, OP_END, OP_UNPLUG, OP_IDLE = 1, 2, 3, 4, 5, 6, 7
#: Simulated time that passes per turn of the loop while the UART is busy: short, so that a
#: request waits little for its turn, long enough that the loop's own cost stays small.
SLICE_NS = 100.0


class Activity(Protocol):
    """Something in the simulation that needs simulated time between requests (the UART)."""

    closed: bool

    def fileno(self) -> int:
        """Readable when the outside world sent it something."""

    def busy(self) -> bool:
        """Work is in flight: simulated time must run on."""

    def pump(self) -> None:
        """Take what the outside world sent, without blocking."""

    def touch(self) -> None:
        """The device was written to or reset: it may have something to send."""

    def close(self) -> None:
        """Go away (the fault of a pulled cable)."""

    def idle(self, peer_received: int, peer_sent: int) -> bool:
        """Nothing in flight, given the far end's byte counts (see op 7)."""


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


async def serve_config(
    config: ConfigSpace,
    path: Path,
    reset: Callable[[], Awaitable[None]],
    ready: Callable[[], None] | None = None,
    activity: Activity | None = None,
    quiet_writes: frozenset[int] = frozenset(),
) -> None:
    """Serve accesses from any number of clients until OP_END (blocking: the simulator
    waits while nobody asks anything and ``activity`` is idle)."""
    from cocotb.triggers import Timer

    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(4)
        if ready is not None:
            ready()
        clients: list[socket.socket] = []  # the FUSE tree, and the rig's power control
        while True:
            waiting: list = [server, *clients]
            running = activity is not None and not activity.closed
            if running:
                waiting.append(activity)
            busy = running and activity.busy()
            readable, _, _ = select.select(waiting, [], [], 0 if busy else None)
            if running and (busy or activity in readable):
                activity.pump()
                await Timer(SLICE_NS, "ns")  # the UART's bits move meanwhile
            for sock in readable:
                if sock is activity:
                    continue
                if sock is server:
                    clients.append(server.accept()[0])
                    continue
                raw = _recv_exact(sock, REQUEST.size)
                if not raw:
                    clients.remove(sock)
                    sock.close()
                    continue
                op, size, offset, value = REQUEST.unpack(raw)
                status, out = 0, 0
                try:
                    if op == OP_READ:
                        out = await config.read32(offset)
                    elif op == OP_WRITE:
                        await config.write32(offset, value)
                    elif op == OP_WRITE_BYTES:
                        await config.write_bytes(offset, value.to_bytes(4, "little")[:size])
                    elif op == OP_RESET:
                        await reset()
                    elif op == OP_UNPLUG and activity is not None:
                        activity.close()
                    elif op == OP_IDLE and activity is not None:
                        out = int(activity.idle(size << 16 | offset, value))
                    elif op == OP_END:
                        sock.sendall(RESPONSE.pack(0, 0))
                        for c in clients:
                            c.close()
                        return
                    else:
                        status = 1
                except (ValueError, NotImplementedError):
                    status = 1
                if activity is not None and op not in (OP_READ, OP_IDLE):
                    if not (op == OP_WRITE and offset in quiet_writes):
                        activity.touch()
                sock.sendall(RESPONSE.pack(status, out))
