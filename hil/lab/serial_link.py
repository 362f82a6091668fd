"""The board's UART through pyserial: the DSM port, the firmware register port, telemetry.

The device firmware runs on the lab controller: DOE objects for the DSM arrive on the UART,
the firmware answers, and the answer goes back; the firmware programs the hardware through
register reads and writes on the same line, and the board reports its telemetry there.
:class:`SerialFirmwareHost` does all of it in a thread of its own, for a lab rig's ``serial``
port and for the virtual rig's pseudo-terminal alike.  Frames: :mod:`hil.codec.uart`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import serial

from ..codec.doe import DataObject
from ..codec.uart import Channel, Deframer, Frame, Telemetry
from ..errors import PeerProtocolError, RigError
from ..firmware.regs import FirmwareRegisterPort
from ..transport import TelemetrySource
from .firmware_tap import FirmwareTap

if TYPE_CHECKING:
    from ..rigs import Rig

__all__ = ["SerialFirmwareHost", "SerialLink", "SerialVanished", "UartDsm"]

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
        self._send_lock = threading.Lock()  # whole frames, whichever thread sends
        self.capture = bytearray()  # everything received, for the run's artifacts
        # One line per frame each way, for the artifacts of failed vectors: channel, seq,
        # length, and only what cannot be secret (a register address, a DOE header); never the
        # data of a register write, which is how key slots are filled.
        self.frame_log: deque[str] = deque(maxlen=100_000)
        self.frames_logged = 0
        # What :meth:`quiet_counts` reads from another thread, changed under this lock: bytes
        # received (counted once their frames are queued) and sent (counted before the write),
        # and DSM requests taken from the queue and finished.
        self._state = threading.Lock()
        self.bytes_received = 0
        self.bytes_sent = 0
        self.requests_taken = 0
        self.requests_done = 0
        try:
            # A lone delimiter ends whatever the device's receiver holds (line noise from
            # before we opened): our first frame is then read whole.
            self.bytes_sent += 1
            self.port.write(b"\x00")
        except (serial.SerialException, OSError) as exc:
            raise SerialVanished(f"serial port {port} vanished: {exc}") from None

    def close(self) -> None:
        self.port.close()

    def send(self, channel: int, payload: bytes = b"") -> None:
        try:
            with self._send_lock:
                frame = Frame(channel, self._seq, payload)
                self._seq = (self._seq + 1) & 0xFF
                wire = frame.encode()
                with self._state:
                    self.bytes_sent += len(wire)
                self.port.write(wire)
                self.port.flush()
                self._log("->", frame)
        except (serial.SerialException, OSError, TypeError) as exc:
            raise SerialVanished(f"serial port {self.port_name} vanished: {exc}") from None

    def _poll(self) -> None:
        with self._state:
            try:
                data = self.port.read(4096)
            except (serial.SerialException, OSError, TypeError) as exc:
                raise SerialVanished(f"serial port {self.port_name} vanished: {exc}") from None
            if data:
                self.capture += data
                frames = self.deframer.feed(data)
                for frame in frames:
                    self._log("<-", frame)
                self._pending += frames
                self.bytes_received += len(data)

    def quiet_counts(self) -> tuple[int, int] | None:
        """(bytes received, bytes sent) when no DSM request waits to be read and every one taken
        is finished (answered or dropped); None while one is not."""
        with self._state:
            if self.requests_taken != self.requests_done or any(
                frame.channel == Channel.DSM_REQUEST for frame in self._pending
            ):
                return None
            return self.bytes_received, self.bytes_sent

    def _take(self, i: int) -> Frame:
        with self._state:
            frame = self._pending.pop(i)
            if frame.channel == Channel.DSM_REQUEST:
                self.requests_taken += 1
            return frame

    def request_done(self) -> None:
        """The DSM request taken last is finished: answered, or dropped."""
        with self._state:
            self.requests_done += 1

    async def _readable(self, timeout_s: float) -> None:
        """Wait until the port has something to read, or ``timeout_s``."""
        try:
            fd = self.port.fileno()
        except (AttributeError, serial.SerialException, OSError):
            fd = None
        if fd is None:  # a port with no file descriptor (a URL handler): poll
            await asyncio.sleep(min(self.poll_s, timeout_s))
            return
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, max(timeout_s, 0.0))
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)

    def _log(self, direction: str, frame: Frame) -> None:
        try:
            name = Channel(frame.channel).name
        except ValueError:
            name = f"channel {frame.channel:#04x}"
        detail = ""
        if frame.channel in (Channel.REG_WRITE, Channel.REG_READ, Channel.REG_DATA):
            if len(frame.payload) >= 4:
                detail = f" addr={struct.unpack_from('<I', frame.payload)[0]:#05x}"
        elif frame.channel in (Channel.DSM_REQUEST, Channel.DSM_RESPONSE):
            detail = f" doe_header={frame.payload[:8].hex()}"
        self.frame_log.append(
            f"{time.monotonic():.6f} {direction} {name} seq={frame.seq} "
            f"len={len(frame.payload)}{detail}"
        )
        self.frames_logged += 1

    def frames_since(self, mark: int) -> list[str]:
        """The frame log lines after ``mark`` (a value of :attr:`frames_logged`) still kept."""
        n = min(self.frames_logged - mark, len(self.frame_log))
        return list(self.frame_log)[len(self.frame_log) - n :] if n > 0 else []

    def waiting(self, channel: int) -> bool:
        """Whether a frame of ``channel`` has arrived and waits to be read."""
        self._poll()
        return any(frame.channel == channel for frame in self._pending)

    async def recv(self, timeout_s: float, channels: set[int] | None = None) -> Frame:
        """The next frame (of ``channels``); other frames stay queued for other readers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for i, frame in enumerate(self._pending):
                if channels is None or frame.channel in channels:
                    return self._take(i)
            now = loop.time()
            if now >= deadline:
                raise PeerProtocolError(
                    f"no frame on {self.port_name} within {timeout_s} s "
                    f"({self.deframer.dropped} damaged frames dropped)"
                )
            before = len(self._pending)
            self._poll()
            if len(self._pending) == before:
                await self._readable(deadline - now)


#: The firmware: a request object in, a response object (or None: no answer) out.
Firmware = Callable[[DataObject], Awaitable[DataObject | None]]


@dataclass
class UartDsm(FirmwareRegisterPort):
    """The firmware's side of the UART: serves DSM objects, drives the register port (it is the
    firmware's :class:`FirmwareRegisterPort`)."""

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

    async def read(self, addr: int) -> int:
        return await self.reg_read(addr)

    async def write(self, addr: int, value: int) -> None:
        await self.reg_write(addr, value)

    async def serve_one(
        self,
        firmware: Firmware | None,
        timeout_s: float,
        *,
        current: Callable[[], bool] = lambda: True,
    ) -> bool:
        """Serve one DSM request (or note an abort or telemetry); False on timeout.

        ``current()`` false when the answer is ready means the board was reset meanwhile:
        the request died with it, and its answer must not reach the fresh mailbox."""
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
            # Until this arrives the device drops our responses: they may answer an aborted
            # request, and frames are ordered, so those sent after it cannot.
            self.link.send(Channel.DSM_ABORT_ACK)
            return True
        try:
            await self._serve_request(frame, firmware, current)
        finally:
            self.link.request_done()
        return True

    async def _serve_request(
        self, frame: Frame, firmware: Firmware | None, current: Callable[[], bool]
    ) -> None:
        try:
            request = DataObject.decode(frame.payload)
        except PeerProtocolError as exc:
            log.warning("DSM request that is not a DOE object dropped: %s", exc)
            return
        if firmware is None:
            log.warning("DSM request dropped: no firmware on this controller")
            return
        response = await firmware(request)
        self.served += 1
        # Frames arrive in order: an abort notice waiting now came after this request, so the
        # host aborted it meanwhile and the answer must not reach the mailbox.
        if response is not None and current() and not self.link.waiting(Channel.DSM_ABORT):
            self.link.send(Channel.DSM_RESPONSE, response.encode())


class SerialFirmwareHost(TelemetrySource):
    """The lab controller's end of the board's UART, served from a thread of its own.

    It runs the device firmware (``make_firmware(register_port)`` builds it; None serves no
    firmware) on the DSM requests that arrive, and keeps the telemetry the board sends, for
    vectors to read (:class:`hil.transport.TelemetrySource`) from any thread.  If the port
    vanishes, the thread ends and :attr:`error` says why; every later use raises it.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 3_000_000,
        make_firmware: Callable[[FirmwareRegisterPort], Firmware] | None = None,
        timeout_s: float = 1.0,
        poll_s: float = 0.002,
    ) -> None:
        self.port = port
        self._make_firmware = make_firmware
        self.link = SerialLink(port, baudrate, poll_s=poll_s)
        self.uart = UartDsm(self.link, timeout_s=timeout_s)
        self.tap = FirmwareTap()  # what the firmware did for the host, seen from here
        self.error: SerialVanished | None = None
        self.firmware_errors = 0
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._generation = 0  # board resets so far (restart_firmware)
        self._thread = threading.Thread(target=self._run, name=f"firmware@{port}", daemon=True)

    @classmethod
    def for_rig(cls, rig: Rig, port: str, *, requester_id: int, hdl_build: str = "") -> Self:
        """The host a rig file describes: the project's firmware (``firmware = "dsm"``) as the
        function ``requester_id``, ``[lab] baudrate``, ``uart_timeout_s`` for register reads."""
        make_firmware = None
        if rig.firmware == "dsm":
            from ..firmware import Dsm

            def make_firmware(regs: FirmwareRegisterPort) -> Firmware:
                return Dsm(hdl_build=hdl_build, regs=regs, requester_id=requester_id).handle

        return cls(
            port,
            baudrate=int(rig.lab.get("baudrate", 3_000_000)),
            make_firmware=make_firmware,
            timeout_s=float(rig.settings.get("uart_timeout_s", 1.0)),
        )

    def start(self) -> SerialFirmwareHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.link.close()

    def restart_firmware(self) -> None:
        """The board was power-cycled: its firmware starts afresh (no sessions, no keys), and
        a request taken before the reset gets no answer (it died with the board)."""
        self._generation += 1
        self._restart.set()

    def firmware_counters(self) -> dict[str, int]:
        """SPDM sessions the firmware established, DW it wrote into key slots (and dropped)."""
        return self.tap.counters()

    def fail_key_slot_writes_after(self, slots: int | None) -> None:
        """Fault injection: after ``slots`` more whole key slots, key-slot writes are dropped
        (the firmware then answers KEY_PROG with a failure); None ends it."""
        self.tap.fail_key_slot_writes_after(slots)

    def check(self) -> None:
        """Raise the port's loss, if it was lost."""
        if self.error is not None:
            raise self.error

    # -- TelemetrySource ---------------------------------------------------------------------
    def received(self) -> list[Telemetry]:
        self.check()
        return list(self.uart.telemetry)

    async def request(self, timeout_s: float = 1.0) -> Telemetry:
        self.check()
        seen = len(self.uart.telemetry)
        self.link.send(Channel.TELEMETRY_REQ)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.uart.telemetry) <= seen:
            self.check()
            if loop.time() > deadline:
                raise PeerProtocolError(
                    f"no telemetry on {self.port} within {timeout_s} s of asking"
                )
            await asyncio.sleep(0.005)
        return self.uart.telemetry[seen]

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except SerialVanished as exc:
            self.error = exc
            log.error("%s", exc)

    async def _serve(self) -> None:
        firmware = self._firmware()
        while not self._stop.is_set():
            if self._restart.is_set():
                self._restart.clear()
                firmware = self._firmware()
            generation = self._generation
            try:
                await self.uart.serve_one(
                    firmware, 0.05, current=lambda g=generation: self._generation == g
                )
            except SerialVanished:
                raise
            except Exception:  # a firmware fault: the request goes unanswered, serving goes on
                self.firmware_errors += 1
                log.exception("the firmware failed on a DSM request")

    def _firmware(self) -> Firmware | None:
        if self._make_firmware is None:
            return None
        return self.tap.firmware(self._make_firmware(self.tap.port(self.uart)))
