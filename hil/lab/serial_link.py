"""The board's UART through pyserial: the DSM port, the firmware register port, telemetry.

The device firmware runs on the lab controller: DOE objects for the DSM arrive on the UART,
the firmware answers, and the answer goes back; the firmware programs the hardware through
register reads and writes on the same line.  Frames: :mod:`hil.codec.uart`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field

import serial

from ..codec.doe import DataObject
from ..codec.uart import Channel, Deframer, Frame, Telemetry
from ..errors import PeerProtocolError, RigError

__all__ = ["SerialLink", "SerialVanished", "UartDsm"]

log = logging.getLogger("hil.lab.serial")


class SerialVanished(RigError):
    """The serial port went away (unplugged board, dead pseudo-terminal)."""


class SerialLink:
    """Framed traffic on one serial port, opened by path (``/dev/ttyUSB0``, a pty)."""

    def __init__(self, port: str, baudrate: int = 3_000_000, *, poll_s: float = 0.01) -> None:
        self.port_name = port
        self.poll_s = poll_s
        try:
            self.port = serial.Serial(port, baudrate=baudrate, timeout=0)
        except (serial.SerialException, OSError) as exc:
            raise SerialVanished(f"cannot open serial port {port}: {exc}") from None
        self.deframer = Deframer()
        self._pending: list[Frame] = []
        self._seq = 0
        self.capture = bytearray()  # everything received, for the run's artifacts

    def close(self) -> None:
        self.port.close()

    def send(self, channel: int, payload: bytes = b"") -> None:
        frame = Frame(channel, self._seq, payload)
        self._seq = (self._seq + 1) & 0xFF
        try:
            self.port.write(frame.encode())
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise SerialVanished(f"serial port {self.port_name} vanished: {exc}") from None

    def _poll(self) -> None:
        try:
            data = self.port.read(4096)
        except (serial.SerialException, OSError, TypeError) as exc:
            raise SerialVanished(f"serial port {self.port_name} vanished: {exc}") from None
        if data:
            self.capture += data
            self._pending += self.deframer.feed(data)

    async def recv(self, timeout_s: float, channels: set[int] | None = None) -> Frame:
        """The next frame (of ``channels``); other frames stay queued for other readers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for i, frame in enumerate(self._pending):
                if channels is None or frame.channel in channels:
                    return self._pending.pop(i)
            if loop.time() >= deadline:
                raise PeerProtocolError(
                    f"no frame on {self.port_name} within {timeout_s} s "
                    f"({self.deframer.dropped} damaged frames dropped)"
                )
            self._poll()
            if not self._pending:
                await asyncio.sleep(self.poll_s)


@dataclass
class UartDsm:
    """The firmware's side of the UART: serves DSM objects, drives the register port."""

    link: SerialLink
    timeout_s: float = 1.0
    telemetry: list[Telemetry] = field(default_factory=list)
    served: int = 0
    aborted: int = 0

    async def reg_write(self, addr: int, value: int) -> None:
        self.link.send(Channel.REG_WRITE, struct.pack("<II", addr, value))

    async def reg_read(self, addr: int) -> int:
        self.link.send(Channel.REG_READ, struct.pack("<I", addr))
        frame = await self.link.recv(self.timeout_s, {Channel.REG_DATA})
        got, value = struct.unpack("<II", frame.payload)
        if got != addr:
            raise PeerProtocolError(f"register read of {addr:#x} answered for {got:#x}")
        return value

    async def serve_one(self, firmware, timeout_s: float) -> bool:
        """Serve one DSM request (or note an abort or telemetry); False on timeout."""
        try:
            frame = await self.link.recv(
                timeout_s, {Channel.DSM_REQUEST, Channel.DSM_ABORT, Channel.TELEMETRY}
            )
        except PeerProtocolError:
            return False
        if frame.channel == Channel.TELEMETRY:
            try:
                self.telemetry.append(Telemetry.decode(frame.payload))
            except PeerProtocolError as exc:
                log.warning("bad telemetry: %s", exc)
            return True
        if frame.channel == Channel.DSM_ABORT:
            self.aborted += 1
            return True
        try:
            request = DataObject.decode(frame.payload)
        except PeerProtocolError as exc:
            log.warning("DSM request that is not a DOE object dropped: %s", exc)
            return True
        response = await firmware(request)
        if response is not None:
            self.link.send(Channel.DSM_RESPONSE, response.encode())
        self.served += 1
        return True
