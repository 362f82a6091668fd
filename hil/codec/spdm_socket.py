"""The DMTF spdm-emu socket framing (spdm_emu_common/command.h), sans-IO.

Each message, both directions::

    +----------------+----------------+----------------+---------------------------+
    | command (u32)  | transport (u32)| size (u32)     | payload (size bytes)      |
    +----------------+----------------+----------------+---------------------------+
      big-endian       big-endian       big-endian       PCI_DOE: a whole DOE object

Only the transports 1 (MCTP) and 2 (PCI_DOE) mean the same thing in spdm-emu, QEMU and
spdm-utils; values from 3 on differ between them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from ..errors import LocalProtocolError, PeerProtocolError

__all__ = [
    "CLIENT_HELLO",
    "DEFAULT_PORT",
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "SERVER_HELLO",
    "Command",
    "Frame",
    "FrameReader",
    "Transport",
]

DEFAULT_PORT = 2323
HEADER_SIZE = 12
#: Largest payload accepted: a whole 1 MiB DOE object (2^18 DW) is the protocol's ceiling.
MAX_PAYLOAD = 1 << 20
SERVER_HELLO = b"Server Hello!\x00"
CLIENT_HELLO = b"Client Hello!\x00"


class Command(IntEnum):
    NORMAL = 0x0001
    OOB_ENCAP_KEY_UPDATE = 0x8001
    CONTINUE = 0xFFFD
    SHUTDOWN = 0xFFFE
    UNKNOWN = 0xFFFF
    TEST = 0xDEAD


class Transport(IntEnum):
    NONE = 0
    MCTP = 1
    PCI_DOE = 2


@dataclass(frozen=True)
class Frame:
    command: int
    transport: int
    payload: bytes = b""

    def encode(self) -> bytes:
        if len(self.payload) > MAX_PAYLOAD:
            raise LocalProtocolError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        return struct.pack(">III", self.command, self.transport, len(self.payload)) + self.payload


class FrameReader:
    """Reassembles frames from a byte stream that arrives in pieces."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER_SIZE:
            command, transport, size = struct.unpack_from(">III", self._buf)
            if size > self.max_payload:
                raise PeerProtocolError(
                    f"frame announces {size} payload bytes; at most {self.max_payload} allowed"
                )
            if len(self._buf) < HEADER_SIZE + size:
                break
            payload = bytes(self._buf[HEADER_SIZE : HEADER_SIZE + size])
            del self._buf[: HEADER_SIZE + size]
            frames.append(Frame(command, transport, payload))
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)
