"""The FPGA UART link: DSM port, firmware register port and telemetry over one serial line.

Each frame is COBS-encoded (so 0x00 never appears inside it) and ends with a 0x00 delimiter;
after line noise or a lost byte the receiver resynchronises at the next 0x00.  Inside::

    +---------+-------+---------------+-----------------+-------------------------+
    | channel | seq   | length (u16)  | payload         | CRC-32 (u32, IEEE)      |
    +---------+-------+---------------+-----------------+-------------------------+
      1 byte    1 B     little-endian   length bytes      over channel..payload, LE

Channels: DSM requests (device to controller: a whole DOE object), DSM responses (controller to
device), firmware register writes/reads and their data, telemetry (sent by the device when a
value changes, and when the controller asks), and the device's abort notice.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from cobs import cobs

from ..errors import LocalProtocolError, PeerProtocolError

__all__ = ["MAX_PAYLOAD", "Channel", "Deframer", "Frame", "Telemetry"]

MAX_PAYLOAD = 0x4000  # a 4 KiB DOE object plus headroom
_HEADER = struct.Struct("<BBH")


class Channel(IntEnum):
    DSM_REQUEST = 0x01  # device -> controller: a DOE object for the firmware
    DSM_RESPONSE = 0x02  # controller -> device: the firmware's response object
    DSM_ABORT = 0x03  # device -> controller: the DOE mailbox was aborted
    DSM_ABORT_ACK = 0x04  # controller -> device: abort notice read; responses after are fresh
    REG_WRITE = 0x10  # controller -> device: address (u32) + data (u32)
    REG_READ = 0x11  # controller -> device: address (u32)
    REG_DATA = 0x12  # device -> controller: address (u32) + data (u32)
    TELEMETRY = 0x20  # device -> controller: a Telemetry record
    TELEMETRY_REQ = 0x21  # controller -> device: send a Telemetry record now (empty payload)


@dataclass(frozen=True)
class Frame:
    channel: int
    seq: int
    payload: bytes = b""

    def encode(self) -> bytes:
        if len(self.payload) > MAX_PAYLOAD:
            raise LocalProtocolError(f"UART payload of {len(self.payload)} bytes is too long")
        if not (0 <= self.channel <= 0xFF and 0 <= self.seq <= 0xFF):
            raise LocalProtocolError("channel and seq are bytes")
        body = _HEADER.pack(self.channel, self.seq, len(self.payload)) + self.payload
        return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"

    @classmethod
    def decode(cls, data: bytes) -> Frame:
        """One frame without its 0x00 delimiter."""
        try:
            raw = cobs.decode(data)
        except cobs.DecodeError as exc:
            raise PeerProtocolError(f"UART frame is not valid COBS: {exc}") from None
        if len(raw) < _HEADER.size + 4:
            raise PeerProtocolError(f"UART frame of {len(raw)} bytes is too short")
        body, (crc,) = raw[:-4], struct.unpack("<I", raw[-4:])
        if zlib.crc32(body) != crc:
            raise PeerProtocolError("UART frame CRC mismatch")
        channel, seq, length = _HEADER.unpack_from(body)
        if length != len(body) - _HEADER.size:
            raise PeerProtocolError(f"UART frame says {length} bytes, carries {len(body) - 4}")
        return cls(channel, seq, bytes(body[_HEADER.size :]))


class Deframer:
    """Bytes from the line in; whole, checked frames out.  Garbage is counted and skipped."""

    def __init__(self, max_frame: int = 2 * MAX_PAYLOAD) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self.dropped = 0  # frames (or noise runs) that failed COBS, CRC or length checks
        self.last_error = ""

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        self._buf += data
        while True:
            end = self._buf.find(0)
            if end < 0:
                if len(self._buf) > self.max_frame:  # noise with no delimiter: resync
                    self._buf.clear()
                    self.dropped += 1
                break
            chunk = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if not chunk:
                continue
            try:
                frames.append(Frame.decode(chunk))
            except PeerProtocolError as exc:
                self.dropped += 1
                self.last_error = str(exc)
        return frames


@dataclass(frozen=True)
class Telemetry:
    """What the board reports: TDI state, IDE stream states and error counters::

        +-----------+-----+-------------------+------------+-------------+-------------+
        | tdi_state | n   | stream states     | DOE errors | IDE check   | uptime (ms) |
        |           |     | (n x u8)          |            | failures    |             |
        +-----------+-----+-------------------+------------+-------------+-------------+
          u8          u8    stream 0 first      u32 LE       u32 LE        u32 LE

    tdi_state is the TDISP TDI_STATE code, a stream state the IDE Stream Status register's
    State field (0 Insecure, 2 Secure); the counters count since reset and saturate; the
    uptime counts from reset and wraps.
    """

    tdi_state: int
    streams: tuple[int, ...]
    doe_errors: int
    ide_check_failures: int
    uptime_ms: int

    def encode(self) -> bytes:
        return (
            bytes((self.tdi_state, len(self.streams)))
            + bytes(self.streams)
            + struct.pack("<III", self.doe_errors, self.ide_check_failures, self.uptime_ms)
        )

    @classmethod
    def decode(cls, data: bytes) -> Telemetry:
        if len(data) < 2 or len(data) != 2 + data[1] + 12:
            raise PeerProtocolError(f"telemetry record of {len(data)} bytes is malformed")
        n = data[1]
        doe, ide, up = struct.unpack_from("<III", data, 2 + n)
        return cls(data[0], tuple(data[2 : 2 + n]), doe, ide, up)
