"""The host side of a DOE mailbox, with the Linux kernel's semantics (drivers/pci/doe.c).

1. At creation: Abort, then wait for Busy=0 and Error=0 (1 s); the DOE capability's version is
   read from its header (``pci_doe_create_mb``).
2. Send (``pci_doe_send_req``): Busy is polled until it clears, for up to 1 s (another agent
   may be finishing an object; no interrupt says when Busy falls), else the request fails
   with :class:`DoeBusy`; Status.Error fails it with :class:`DoeError`.  Then DW0, DW1 and the
   payload go to the Write Data Mailbox, and Control.Go.
3. Poll Status until Data Object Ready (1 s deadline, configurable); Error fails the request.
4. Receive (``pci_doe_recv_resp``): read a DW from the Read Data Mailbox, then write to
   acknowledge it; re-check Data Object Ready before acknowledging the last DW; check
   Status.Error at the end.
   A transport that can tell when the device is idle (``idle``: nothing in flight anywhere,
   so nothing can come without a new request) ends the wait for a response as soon as it is
   and Status still shows neither Data Object Ready nor Error: the device can no longer
   answer, so the deadline cannot be met later.  This is a deadline the device cannot miss,
   where a wall-clock one on a slow simulation only waits.
5. Any failure of an exchange, a timeout included, is followed by Abort
   (``signal_task_abort``); an Abort that does not finish within 1 s (Busy and Error still
   set) marks the mailbox dead, and every later exchange fails at once, as the kernel's
   ``PCI_DOE_FLAG_DEAD`` does.
6. Discovery (``pci_doe_discovery``) puts version 2 in its request only when the capability's
   version is 2 or more, else 0.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .. import _regs as R
from ..codec.doe import (
    HEADER_DW,
    PCI_SIG_VENDOR_ID,
    DataObject,
    DiscoveryRequest,
    DiscoveryResponse,
    DoeType,
    decode_length,
)
from ..errors import DoeTimeout, PeerProtocolError
from ..transport import ConfigSpace, DoeTransport, Timebase

__all__ = ["DoeBusy", "DoeError", "DoeMailbox", "DoeStatus"]

LINUX_POLL_INTERVAL_S = 1 / 128  # HZ/128
DOE_TIMEOUT_S = 1.0  # PCIe 6.x §6.30.2: a response or Error within 1 s of Go


class DoeBusy(PeerProtocolError):
    """The mailbox was Busy when the host wanted to write an object."""


class DoeError(PeerProtocolError):
    """The mailbox set Status.Error."""


@dataclass(frozen=True)
class DoeStatus:
    raw: int

    @property
    def busy(self) -> bool:
        return bool(self.raw & R.DOE_STATUS_BUSY)

    @property
    def int_status(self) -> bool:
        return bool(self.raw & R.DOE_STATUS_INT_STATUS)

    @property
    def error(self) -> bool:
        return bool(self.raw & R.DOE_STATUS_ERROR)

    @property
    def ready(self) -> bool:
        return bool(self.raw & R.DOE_STATUS_READY)

    def __str__(self) -> str:
        flags = [n for n in ("busy", "int_status", "error", "ready") if getattr(self, n)]
        return f"{self.raw:#010x} ({', '.join(flags) or 'idle'})"


class DoeMailbox(DoeTransport):
    """One DOE instance of a function, reached through a config-space transport."""

    def __init__(
        self,
        config: ConfigSpace,
        offset: int,
        timebase: Timebase,
        *,
        timeout_s: float = DOE_TIMEOUT_S,
        poll_interval_s: float = LINUX_POLL_INTERVAL_S,
        idle: Callable[[], Awaitable[bool | None]] | None = None,
    ) -> None:
        self.config = config
        self.idle = idle  # True: nothing in flight in the device (None, False: cannot say)
        self.offset = offset
        self.timebase = timebase
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.interrupts = False  # keep Interrupt Enable set in every Control write
        self.dead = False  # an Abort failed: the kernel submits nothing more to this mailbox
        self.cap_version: int | None = None  # the DOE capability header's version (bits 19:16)
        self.exchanges = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.silences: list[float] = []  # s from Go to a response wait ended by idleness
        self._go_at = 0.0

    # -- registers ------------------------------------------------------------------------------
    async def status(self) -> DoeStatus:
        return DoeStatus(await self.config.read32(self.offset + R.DOE_STATUS))

    async def read_control(self) -> int:
        return await self.config.read32(self.offset + R.DOE_CTRL)

    async def write_control(self, value: int) -> None:
        if self.interrupts:
            value |= R.DOE_CTRL_INT_EN
        await self.config.write32(self.offset + R.DOE_CTRL, value)

    async def enable_interrupts(self, enable: bool = True) -> None:
        self.interrupts = enable
        await self.config.write32(self.offset + R.DOE_CTRL, R.DOE_CTRL_INT_EN if enable else 0)

    async def go(self) -> None:
        await self.write_control(R.DOE_CTRL_GO)
        self._go_at = self.timebase.now()

    async def write_words(self, words: list[int]) -> None:
        for w in words:
            await self.config.write32(self.offset + R.DOE_WMBX, w)

    async def read_word(self) -> int:
        return await self.config.read32(self.offset + R.DOE_RMBX)

    async def ack_word(self) -> None:
        await self.config.write32(self.offset + R.DOE_RMBX, 0)

    # -- waits ----------------------------------------------------------------------------------
    async def wait_for(
        self, what: str, predicate, timeout_s: float | None = None, *, until_idle: bool = False
    ) -> DoeStatus:
        """Poll Status until ``predicate(status)``; raise :class:`DoeTimeout` at the deadline,
        or (``until_idle``) once the device is idle and Status, read after that, still fails
        ``predicate``: nothing is left in the device that could satisfy it."""
        deadline = self.timebase.now() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            st = await self.status()
            if predicate(st):
                return st
            if self.timebase.now() >= deadline:
                raise DoeTimeout(f"DOE at {self.offset:#x}: no {what} within deadline; {st}")
            if until_idle and self.idle is not None and await self.idle() is True:
                st = await self.status()  # read after the device was seen idle
                if predicate(st):
                    return st
                self.silences.append(self.timebase.now() - self._go_at)
                raise DoeTimeout(
                    f"DOE at {self.offset:#x}: no {what}: the device is idle with nothing in "
                    f"flight, so none can come; {st}"
                )
            await self.timebase.sleep(self.poll_interval_s)

    async def abort(self) -> None:
        """Abort, then wait (1 s) for Busy and Error to clear (``pci_doe_abort``)."""
        await self.write_control(R.DOE_CTRL_ABORT)
        await self.wait_for("Busy and Error clear after Abort", lambda s: not (s.busy or s.error))

    async def read_cap_version(self) -> int:
        """The DOE extended capability's version, from its header (bits 19:16)."""
        self.cap_version = (await self.config.read32(self.offset) >> 16) & 0xF
        return self.cap_version

    async def init(self) -> None:
        """What the kernel does when it creates the mailbox."""
        await self.read_cap_version()
        await self.abort()

    async def _abort_after_failure(self) -> None:
        """Abort after a failed exchange; if even that fails, the mailbox is dead."""
        try:
            await self.abort()
        except DoeTimeout:
            self.dead = True

    # -- objects --------------------------------------------------------------------------------
    async def send(self, obj: DataObject) -> None:
        """Write one object and Go, once Busy has cleared (raises without aborting)."""
        try:
            st = await self.wait_for("Busy clear before a write", lambda s: not s.busy)
        except DoeTimeout:
            raise DoeBusy(
                f"DOE at {self.offset:#x} still Busy {self.timeout_s} s before a write: another "
                "agent is using the mailbox"
            ) from None
        if st.error:
            raise DoeError(f"DOE at {self.offset:#x} in Error before a write: {st}")
        words = obj.words()
        await self.write_words(words)
        await self.go()
        self.bytes_sent += 4 * len(words)

    async def receive(self) -> DataObject:
        """Wait for Data Object Ready, then read and acknowledge one whole object.

        Raises without aborting: :meth:`exchange` aborts after any failure.
        """
        st = await self.wait_for("response", lambda s: s.ready or s.error, until_idle=True)
        if st.error:
            raise DoeError(f"DOE at {self.offset:#x} set Error instead of answering: {st}")
        dw0 = await self.read_word()
        await self.ack_word()
        dw1 = await self.read_word()
        await self.ack_word()
        length = decode_length(dw1)
        if length < HEADER_DW:
            raise PeerProtocolError(f"DOE response Length {length} DW is below 2")
        words = [dw0, dw1]
        for i in range(length - HEADER_DW):
            words.append(await self.read_word())
            if i == length - HEADER_DW - 1 and not (await self.status()).ready:
                raise PeerProtocolError("Data Object Ready fell before the last DW")
            await self.ack_word()
        st = await self.status()
        if st.error:
            raise DoeError(f"DOE at {self.offset:#x} set Error during the read: {st}")
        obj = DataObject.from_words(words)
        self.bytes_received += 4 * len(words)
        return obj

    async def exchange(self, request: DataObject) -> DataObject:
        """Send ``request`` and return the response, which must be of the same vendor and type.

        Any failure (Busy for 1 s, Error, no response within the deadline, a malformed or
        mismatched response) aborts the mailbox before it is raised, so nothing late is taken
        as the next exchange's response.
        """
        if self.dead:
            raise DoeError(
                f"DOE at {self.offset:#x} is dead: an Abort did not complete, so the host "
                "submits nothing more to it (until the device is reset)"
            )
        try:
            await self.send(request)
            response = await self.receive()
            if (response.vendor_id, response.type) != (request.vendor_id, request.type):
                raise PeerProtocolError(
                    f"DOE response is vendor {response.vendor_id:#06x} type "
                    f"{response.type:#04x}, request was vendor {request.vendor_id:#06x} type "
                    f"{request.type:#04x}"
                )
        except PeerProtocolError:
            await self._abort_after_failure()
            raise
        self.exchanges += 1
        return response

    async def discovery_version(self) -> int:
        """The version field of a Discovery request: 2 when the capability is version 2+."""
        version = self.cap_version
        if version is None:
            version = await self.read_cap_version()
        return 2 if version >= 2 else 0

    async def discover_one(self, index: int, version: int | None = None) -> DiscoveryResponse:
        if version is None:
            version = await self.discovery_version()
        rsp = await self.exchange(DiscoveryRequest(index, version).to_object())
        return DiscoveryResponse.from_object(rsp)

    async def discover(self, version: int | None = None) -> list[tuple[int, int]]:
        """The (vendor ID, type) pairs the mailbox lists, following Next Index until 0."""
        features: list[tuple[int, int]] = []
        index = 0
        seen: set[int] = set()
        while True:
            if index in seen:
                raise PeerProtocolError(f"DOE discovery Next Index loops back to {index}")
            seen.add(index)
            rsp = await self.discover_one(index, version)
            if not rsp.valid:
                raise PeerProtocolError(f"DOE discovery index {index} answered as invalid")
            features.append((rsp.vendor_id, rsp.type))
            if rsp.next_index == 0:
                return features
            if rsp.next_index <= index:
                raise PeerProtocolError(
                    f"DOE discovery Next Index {rsp.next_index} after index {index} goes back"
                )
            index = rsp.next_index

    def supports(self, features: list[tuple[int, int]], dtype: DoeType) -> bool:
        return (PCI_SIG_VENDOR_ID, int(dtype)) in features
