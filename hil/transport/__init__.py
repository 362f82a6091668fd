"""Transports: small async interfaces between the host roles and a rig's implementation.

Because they are async, the same vector runs under cocotb's scheduler (simulation) and under
asyncio (lab, fake).  Each interface is a few abstract methods; implementations live with their
rig kind (``hil.sim``, ``hil.fake``, and the lab path).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..codec.doe import DataObject
    from ..codec.uart import Telemetry

__all__ = [
    "AsyncioTimebase",
    "ConfigSpace",
    "DeviceDma",
    "DmaOutcome",
    "DmaReport",
    "DoeTransport",
    "TelemetrySource",
    "Timebase",
    "TlpPort",
]


class Timebase(ABC):
    """Where a rig's time comes from: wall time in the lab, simulated time in a simulator."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since an arbitrary origin."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of this timebase pass."""


class AsyncioTimebase(Timebase):
    """Wall-clock time for rigs driven by asyncio."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ConfigSpace(ABC):
    """A function's configuration space, as a host reaches it (4 KiB, little-endian DWs)."""

    size = 4096

    @abstractmethod
    async def read32(self, offset: int) -> int:
        """Read the DW at ``offset`` (a multiple of 4)."""

    @abstractmethod
    async def write32(self, offset: int, value: int) -> None:
        """Write the whole DW at ``offset`` (a multiple of 4)."""

    async def write_bytes(self, offset: int, data: bytes) -> None:
        """Write 1 or 2 bytes inside one DW (a partial access).

        Rigs that cannot make partial accesses do not override this; vectors that need them
        declare the ``config_partial`` need.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot make partial config writes")

    @staticmethod
    def check_offset(offset: int, size: int = 4) -> None:
        if offset < 0 or offset + size > ConfigSpace.size or (size == 4 and offset % 4):
            raise ValueError(f"config offset {offset:#x} (size {size}) out of range or unaligned")
        if offset // 4 != (offset + size - 1) // 4:
            raise ValueError(f"config access at {offset:#x} of {size} bytes crosses a DW")


class TelemetrySource(ABC):
    """A board's telemetry: :class:`hil.codec.uart.Telemetry` records as the board sends them
    (by itself when a value changes, and when asked)."""

    @abstractmethod
    def received(self) -> list[Telemetry]:
        """Every record received so far, oldest first."""

    @abstractmethod
    async def request(self, timeout_s: float = 1.0) -> Telemetry:
        """Ask the board for a record now, and return the first record that arrives after
        (which may be one the board sent, on a change, just before it saw the request)."""


class DoeTransport(ABC):
    """Somewhere DOE data objects go and come back from: a mailbox, a socket, a firmware."""

    @abstractmethod
    async def exchange(self, request: DataObject) -> DataObject:
        """Send one object and return the response object."""


class DmaOutcome(IntEnum):
    """What a device says became of one of its own writes (hdl/ide_tlp README, "DMA")."""

    NONE = 0  # none yet, or under way
    SENT_IDE = 1  # sent as an IDE TLP
    SENT_PLAIN = 2  # sent as a non-IDE TLP
    DISCARDED = 3  # its stream is enabled and not Secure, or has no armed Tx key (§6.33.4)
    NO_BUS_MASTER = 4  # Command.Bus Master Enable is clear (§7.5.1.1.3)
    BAD_REQUEST = 5  # a length of 0, too long, past the source memory, or across 4 KB
    SYNC_DUE = 6  # a PR_Sent_Counter is at 245 and the device sends no IDE Sync (§6.33.5)
    READ_DONE = 7  # a read's completion is in the device's memory
    READ_ERROR = 8  # a read's completion came with an error status or the wrong length
    READ_TIMEOUT = 9  # a read's completion did not come (Completion Timeout, §2.8)
    UNSUPPORTED = 15  # the device has no such engine


@dataclass(frozen=True)
class DmaReport:
    """The device's own account of a write it sent: the outcome, and for an IDE TLP the stream
    (the device's index, its Stream ID).  A vector's verdict rests on what arrives on the link;
    this report only explains it."""

    outcome: DmaOutcome
    stream_index: int = 0
    stream_id: int = 0


class DeviceDma(ABC):
    """The device's own Memory Requests, started from outside the link: what makes a device
    write or read host memory (a DMA engine's controls).  A write's payload is ``length_dw``
    DW of the device's BAR0 memory from ``source_offset``; a read's completion goes there.
    Requests go where the device's IDE registers say (PCIe 6.x §6.33.4) and arrive at the root
    port's :class:`TlpPort`, which answers a read with its Completion."""

    async def supported(self) -> bool:
        """Whether the device has the engine (a build without it answers no)."""
        return True

    @abstractmethod
    async def write(
        self, address: int, source_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        """Start one write and return the device's report once it is done (or refused)."""

    @abstractmethod
    async def start_read(
        self, address: int, dest_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        """Start one read of ``length_dw`` DW at ``address`` into BAR0 memory at
        ``dest_offset``; the report at once (NONE while the read waits for its Completion, or
        why it was refused).  :meth:`wait` gives the outcome once the Completion is in."""

    @abstractmethod
    async def wait(self) -> DmaReport:
        """The report once the engine is no longer busy (a read's Completion taken, or its
        Completion Timeout)."""


class TlpPort(ABC):
    """The link as the root port sees it: whole TLPs (wire-order bytes, prefixes and MAC
    included) to the device, and the TLPs it sends back.  What a root port's IDE engine, or
    a protocol analyser with injection, gives a test."""

    @abstractmethod
    async def send(self, tlp: bytes) -> None:
        """Deliver one TLP to the device."""

    @abstractmethod
    async def recv(self, timeout_s: float) -> bytes | None:
        """The next TLP from the device, or None if none comes within ``timeout_s``."""
