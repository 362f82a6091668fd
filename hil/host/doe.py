"""The host side of a DOE mailbox, with the Linux kernel's semantics (drivers/pci/doe.c).

1. At creation: Abort, then wait for Busy=0 and Error=0 (1 s).
2. Send: Status.Busy -> busy error, Status.Error -> error (both lead to Abort); write DW0, DW1
   and the payload to the Write Data Mailbox, then Control.Go.
3. Poll Status until Data Object Ready (1 s deadline, configurable); Error -> Abort.
4. Receive: read a DW from the Read Data Mailbox, then write to acknowledge it; re-check Data
   Object Ready before acknowledging the last DW; check Status.Error at the end.
5. Any failure -> Abort.
"""

from __future__ import annotations

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
    ) -> None:
        self.config = config
        self.offset = offset
        self.timebase = timebase
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.interrupts = False  # keep Interrupt Enable set in every Control write
        self.exchanges = 0
        self.bytes_sent = 0
        self.bytes_received = 0

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

    async def write_words(self, words: list[int]) -> None:
        for w in words:
            await self.config.write32(self.offset + R.DOE_WMBX, w)

    async def read_word(self) -> int:
        return await self.config.read32(self.offset + R.DOE_RMBX)

    async def ack_word(self) -> None:
        await self.config.write32(self.offset + R.DOE_RMBX, 0)

    # -- waits ----------------------------------------------------------------------------------
    async def wait_for(self, what: str, predicate, timeout_s: float | None = None) -> DoeStatus:
        """Poll Status until ``predicate(status)``; raise :class:`DoeTimeout` at the deadline."""
        deadline = self.timebase.now() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            st = await self.status()
            if predicate(st):
                return st
            if self.timebase.now() >= deadline:
                raise DoeTimeout(f"DOE at {self.offset:#x}: no {what} within deadline; {st}")
            await self.timebase.sleep(self.poll_interval_s)

    async def abort(self) -> None:
        """Abort, then wait (1 s) for Busy, Error and Data Object Ready to clear."""
        await self.write_control(R.DOE_CTRL_ABORT)
        await self.wait_for("idle after Abort", lambda s: not (s.busy or s.error or s.ready))

    async def init(self) -> None:
        """What the kernel does when it creates the mailbox."""
        await self.abort()

    # -- objects --------------------------------------------------------------------------------
    async def send(self, obj: DataObject) -> None:
        st = await self.status()
        if st.busy:
            await self.abort()
            raise DoeBusy(f"DOE at {self.offset:#x} Busy before a write: {st}")
        if st.error:
            await self.abort()
            raise DoeError(f"DOE at {self.offset:#x} in Error before a write: {st}")
        words = obj.words()
        await self.write_words(words)
        await self.go()
        self.bytes_sent += 4 * len(words)

    async def receive(self) -> DataObject:
        """Wait for Data Object Ready, then read and acknowledge one whole object."""
        st = await self.wait_for("response", lambda s: s.ready or s.error)
        if st.error:
            await self.abort()
            raise DoeError(f"DOE at {self.offset:#x} set Error instead of answering: {st}")
        try:
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
        except PeerProtocolError:
            await self.abort()
            raise
        self.bytes_received += 4 * len(words)
        return obj

    async def exchange(self, request: DataObject) -> DataObject:
        """Send ``request`` and return the response, which must be of the same vendor and type."""
        await self.send(request)
        response = await self.receive()
        if (response.vendor_id, response.type) != (request.vendor_id, request.type):
            raise PeerProtocolError(
                f"DOE response is vendor {response.vendor_id:#06x} type {response.type:#04x}, "
                f"request was vendor {request.vendor_id:#06x} type {request.type:#04x}"
            )
        self.exchanges += 1
        return response

    async def discover_one(self, index: int, version: int = 2) -> DiscoveryResponse:
        rsp = await self.exchange(DiscoveryRequest(index, version).to_object())
        return DiscoveryResponse.from_object(rsp)

    async def discover(self, version: int = 2) -> list[tuple[int, int]]:
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
