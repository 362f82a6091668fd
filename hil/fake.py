"""An in-memory endpoint: the ``fake`` rig kind's device.

Its DOE mailbox follows the DOE rules of PCIe 6.x §6.30 as the project reads them; its IDE
capability, key slots and TDI follow the hardware's register maps (:mod:`hil._fake_hw`).  Both
are written independently of the HDL, so that vectors, the DOE driver, the firmware and the
asyncio path can be exercised without a simulator.  Tests and users share them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from . import _regs as R
from ._fake_hw import (
    CAP_AGGREGATION,
    CAP_CONFIG_REQUESTS,
    CAP_PCRC,
    CAP_PHE,
    FakeFirmwareRegs,
    FakeIdeCap,
    FakeTdi,
)
from .codec.doe import PCI_SIG_VENDOR_ID, DataObject, DiscoveryResponse, DoeType, decode_length
from .errors import PeerProtocolError
from .transport import ConfigSpace

__all__ = [
    "IDE_FEATURES",
    "FakeConfigSpace",
    "FakeDoe",
    "FakeFirmwareRegs",
    "FakeIdeCap",
    "FakeTdi",
    "fake_ide_cap",
]

#: The names a rig's ``[fake] ide_features`` may list: optional IDE Capability bits.
IDE_FEATURES = {
    "phe": CAP_PHE,
    "aggregation": CAP_AGGREGATION,
    "pcrc": CAP_PCRC,
    "config_requests": CAP_CONFIG_REQUESTS,
}
#: The room an IDE capability has in the fake's configuration space (it is the last one).
_IDE_CAP_ROOM_DW = 64


def fake_ide_cap(section: Mapping[str, Any]) -> FakeIdeCap:
    """The IDE capability a rig's ``[fake]`` section describes (``selective_streams``,
    ``link_tcs`` Link IDE blocks after them, ``addr_blocks``, ``ide_features``); ValueError if
    it cannot be.

    ``addr_blocks`` is the IDE Address Association block count of every Selective stream (an
    int), or one count per Selective stream (a list): each Selective IDE Stream register block
    has its own count (PCIe 6.x §7.9.26.5.1)."""
    unknown = sorted(set(section.get("ide_features", ())) - set(IDE_FEATURES))
    if unknown:
        raise ValueError(f"ide_features {unknown}: known are {', '.join(IDE_FEATURES)}")
    port = section.get("max_port_index", 0)
    if not 0 <= port <= 0xFF:
        raise ValueError(f"max_port_index {port}: 0 .. 255")
    link_tcs = section.get("link_tcs", 0)
    if not isinstance(link_tcs, int) or isinstance(link_tcs, bool):
        raise ValueError(f"link_tcs {link_tcs!r}: an integer, 0 .. 8")
    features = 0
    for name in section.get("ide_features", ()):
        features |= IDE_FEATURES[name]
    num_streams = section.get("selective_streams", 2)
    addr_blocks = section.get("addr_blocks", 1)
    per_stream = None
    if isinstance(addr_blocks, list | tuple):
        per_stream = list(addr_blocks)
        if len(per_stream) != num_streams or not all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 15 for n in per_stream
        ):
            raise ValueError(
                f"addr_blocks {per_stream}: one count (1 .. 15) per Selective stream "
                f"(selective_streams = {num_streams})"
            )
        addr_blocks = 1
    elif not isinstance(addr_blocks, int) or isinstance(addr_blocks, bool):
        raise ValueError(
            f"addr_blocks {addr_blocks!r}: an integer 1 .. 15, or a list of one per Selective "
            "stream"
        )
    elif not 1 <= addr_blocks <= 15:
        raise ValueError(f"addr_blocks {addr_blocks}: 1 .. 15")
    return FakeIdeCap(
        num_streams=num_streams,
        num_addr_blocks=addr_blocks,
        stream_addr_blocks=per_stream,
        max_cap_dw=_IDE_CAP_ROOM_DW,
        features=features,
        link_tcs=link_tcs,
    )


#: The firmware behind the fake mailbox: a request object in, a response (or None) out.
Responder = Callable[[DataObject], Awaitable[DataObject | None]]


class FakeDoe:
    """The DOE mailbox model: registers at ``offset`` of a 4 KiB configuration space."""

    def __init__(
        self,
        offset: int = R.DOE_CAP_OFFSET,
        *,
        depth_dw: int = 1024,
        features: tuple[tuple[int, int], ...] = (
            (PCI_SIG_VENDOR_ID, DoeType.DISCOVERY),
            (PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM),
            (PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM),
        ),
        responder: Responder | None = None,
        next_offset: int = R.DOE_CAP_NEXT,  # the IDE capability follows, as in the HDL
    ) -> None:
        self.offset = offset
        self.next_offset = next_offset
        self.depth_dw = depth_dw
        self.features = features
        self.responder = responder
        self.wmbx: list[int] = []
        self.rmbx: deque[int] = deque()
        self.error = False
        self.int_en = False
        self.int_status = False
        self.busy_request: DataObject | None = None  # a CMA object no responder took
        self.pending: DataObject | None = None  # a CMA object for the responder to answer

    # -- the object path ------------------------------------------------------------------------
    def _go(self) -> None:
        words, self.wmbx = self.wmbx, []
        if self.busy_request is not None or self.error or len(words) < 2:
            return
        if decode_length(words[1]) != len(words):
            return  # §6.30.2: DW count differs from Length -> discard silently
        try:
            obj = DataObject.from_words(words)
        except PeerProtocolError:
            return
        if (obj.vendor_id, obj.type) == (PCI_SIG_VENDOR_ID, DoeType.DISCOVERY):
            if len(obj.payload) < 4:
                return
            index = obj.payload[0]
            if index < len(self.features):
                vid, typ = self.features[index]
                nxt = index + 1 if index + 1 < len(self.features) else 0
                rsp = DiscoveryResponse(vid, typ, nxt)
            else:
                rsp = DiscoveryResponse(0xFFFF, 0, 0)
            self._queue(rsp.to_object())
        elif (obj.vendor_id, obj.type) in self.features:
            if self.responder is None:
                self.busy_request = obj  # nobody serves it: Busy until Abort
                return
            self.pending = obj  # the config space awaits the responder after this write

    def _queue(self, obj: DataObject) -> None:
        was_ready = bool(self.rmbx)
        self.rmbx.extend(obj.words())
        if not was_ready and self.int_en:
            self.int_status = True

    def _set_error(self) -> None:
        if not self.error and self.int_en:
            self.int_status = True
        self.error = True

    async def serve_pending(self) -> None:
        obj, self.pending = self.pending, None
        if obj is not None and self.responder is not None:
            answer = await self.responder(obj)
            if answer is not None:
                self._queue(answer)

    def _abort(self) -> None:
        self.pending = None
        self.wmbx.clear()
        self.rmbx.clear()
        self.error = False
        self.busy_request = None

    # -- registers ------------------------------------------------------------------------------
    def read(self, reg: int) -> int:
        if reg == R.DOE_HEADER:
            return R.DOE_CAP_ID | (R.DOE_CAP_VERSION << 16) | (self.next_offset << 20)
        if reg == R.DOE_CAP:
            return R.DOE_CAP_INT_SUPPORT
        if reg == R.DOE_CTRL:
            return R.DOE_CTRL_INT_EN if self.int_en else 0
        if reg == R.DOE_STATUS:
            return (
                (R.DOE_STATUS_BUSY if self.busy_request is not None else 0)
                | (R.DOE_STATUS_INT_STATUS if self.int_status else 0)
                | (R.DOE_STATUS_ERROR if self.error else 0)
                | (R.DOE_STATUS_READY if self.rmbx else 0)
            )
        if reg == R.DOE_RMBX:
            return self.rmbx[0] if self.rmbx else 0
        return 0

    def write(self, reg: int, value: int, byte_enable: int = 0xF) -> None:
        if reg in (R.DOE_HEADER, R.DOE_CAP):
            return
        if byte_enable != 0xF:
            self._set_error()
            return
        if reg == R.DOE_CTRL:
            self.int_en = bool(value & R.DOE_CTRL_INT_EN)
            if value & R.DOE_CTRL_ABORT:
                self._abort()
            elif value & R.DOE_CTRL_GO:
                self._go()
        elif reg == R.DOE_STATUS:
            if value & R.DOE_STATUS_INT_STATUS:
                self.int_status = False
        elif reg == R.DOE_WMBX:
            if self.error or self.busy_request is not None:
                return
            if len(self.wmbx) >= self.depth_dw:
                self._set_error()
                self.wmbx.clear()
                return
            self.wmbx.append(value & 0xFFFFFFFF)
        elif reg == R.DOE_RMBX and self.rmbx:
            self.rmbx.popleft()


# A minimal PCI Express capability at 0x40 (§7.5.3): Capabilities Pointer, header (ID 10h,
# version 2, endpoint), Device Capabilities with Function Level Reset Capability (bit 28),
# Device Control/Status reading 0 (Initiate FLR always reads 0).
_DEVCTL = 0x48
_PCIE_CAP = {0x34: 0x40, 0x40: 0x0002_0010, 0x44: 1 << 28, _DEVCTL: 0}


class FakeConfigSpace(ConfigSpace):
    """Function 0's configuration space: a type 0 header with Command and a 64-bit 4 KiB BAR0,
    and one extended capability chain: a DSN at 0x100, then DOE, then IDE.

    Every configuration write is shown to the TDI first (its enforcement and its shadows of
    Command and BAR0, which header reads return), then reaches the capability it hits.
    """

    def __init__(self, doe: FakeDoe | None = None, *, tdi: FakeTdi | None = None) -> None:
        self.doe = doe or FakeDoe()
        self.tdi = tdi or FakeTdi(FakeIdeCap())
        self.ide = self.tdi.ide
        self.accesses = 0
        #: Whether Configuration Requests that arrive as non-IDE TLPs are discarded now (the
        #: TLP path's hold, §6.33.4: a Selective IDE Stream has taken one as an IDE TLP).  A
        #: discarded read gets no Completion, which the root complex reports to software as
        #: all 1s; a discarded write does nothing.
        self.plain_gate: Callable[[], bool] = lambda: False
        self.discarded = 0

    def firmware_regs(self) -> FakeFirmwareRegs:
        """The firmware register port into this endpoint's IDE capability and TDI."""
        return FakeFirmwareRegs(self.ide, self.tdi)

    def reset(self) -> None:
        """Conventional reset: the mailbox emptied, the header, IDE capability and TDI back to
        their power-on values, every key wiped."""
        self.doe._abort()
        self.doe.int_en = self.doe.int_status = False
        self.tdi.reset()

    def _dsn(self, offset: int) -> int:
        # Device Serial Number capability (ID 0003h, §7.9.3), next pointer to the DOE capability.
        return {0x100: 0x0003 | (1 << 16) | (self.doe.offset << 20), 0x104: 0x1D5EC0DE}.get(
            offset, 0
        )

    def _in_ide(self, offset: int) -> bool:
        return self.ide.offset <= offset < self.ide.offset + 4 * self.ide.size_dw

    def _held(self) -> bool:
        if self.plain_gate():
            self.discarded += 1
            return True
        return False

    async def read32(self, offset: int) -> int:
        self.check_offset(offset)
        self.accesses += 1
        if self._held():
            return 0xFFFF_FFFF
        return self.read_now(offset)

    def read_now(self, offset: int) -> int:
        """A read as the function serves it, whatever path the request took."""
        if self.doe.offset <= offset < self.doe.offset + 0x18:
            return self.doe.read(offset - self.doe.offset)
        if self._in_ide(offset):
            return self.ide.read(offset - self.ide.offset)
        if offset < 0x10C and offset >= 0x100:
            return self._dsn(offset)
        if offset == 0:
            return 0x1234 | (0x0E11 << 16)
        if offset in _PCIE_CAP:
            return _PCIE_CAP[offset]
        header = self.tdi.header_read(offset // 4) if offset < 0x40 else None
        if offset == 0x04:  # Status: Capabilities List (the PCI Express capability)
            return (header or 0) | (1 << 20)
        return header if header is not None else 0

    def _write(self, base: int, value: int, byte_enable: int) -> None:
        if base == _DEVCTL and byte_enable & 0b10 and value & (1 << 15):
            self.reset()  # Initiate Function Level Reset (§6.6.2): the function's state goes
            return
        self.tdi.config_write(base // 4, value, byte_enable)
        if self._in_ide(base):
            self.ide.write(base - self.ide.offset, value, byte_enable)

    async def write32(self, offset: int, value: int) -> None:
        self.check_offset(offset)
        self.accesses += 1
        if not self._held():
            self.write_now(offset, value, 0xF)
            await self.doe.serve_pending()

    def write_now(self, base: int, value: int, byte_enable: int) -> None:
        """A write as the function takes it, whatever path the request took; an object it
        hands the mailbox is served by the next :meth:`FakeDoe.serve_pending`."""
        self._write(base, value, byte_enable)
        if self.doe.offset <= base < self.doe.offset + 0x18:
            self.doe.write(base - self.doe.offset, value, byte_enable)

    async def write_bytes(self, offset: int, data: bytes) -> None:
        self.check_offset(offset, len(data))
        self.accesses += 1
        base = offset & ~3
        be = ((1 << len(data)) - 1) << (offset & 3)
        value = int.from_bytes(data, "little") << (8 * (offset & 3))
        if not self._held():
            self.write_now(base, value, be)
