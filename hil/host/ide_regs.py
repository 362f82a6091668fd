"""Where an IDE extended capability's registers are (PCIe 6.x §7.9.26), read from the capability.

The capability is variable-sized, and so is every Selective IDE Stream register block in it::

    +0x00  Extended Capability Header (ID 0030h)
    +0x04  IDE Capability        b0 Link IDE, b1 Selective IDE, [15:13] Link TCs - 1,
                                 [23:16] Selective Streams - 1, b24 TEE-Limited, ...
    +0x08  IDE Control
    +0x0C  Link IDE Stream blocks, 2 DW each (Control, Status):
           1 + [15:13] of them, and only when b0 (Link IDE) is set
    then   Selective IDE Stream blocks, 1 + [23:16] of them when b1 is set, each
             +0x00 Selective IDE Stream Capability  [3:0] Address Association blocks (n)
             +0x04 Control   +0x08 Status   +0x0C RID Association 1   +0x10 RID Association 2
             +0x14 + 12j  Address Association 1, 2, 3 of block j (j < n)
           so 5 + 3n DW, n read from that block's own Capability register.

The walk follows the spec: each block's size comes from its own Selective IDE Stream
Capability register.  Linux (drivers/pci/ide.c, ``__sel_ide_offset`` and ``pci_ide_init``)
computes every block's offset from block 0's count instead; it stops using the blocks at the
first one whose count differs ("Unsupported Selective Stream %d capability, SKIP the rest"), so
for the blocks it does use both ways agree.  :attr:`IdeLayout.kernel_selective_blocks` is that
count.

The walk is sans-IO (:func:`_walk` yields the offsets it needs); :meth:`IdeLayout.read` drives it
over an async :class:`~hil.transport.ConfigSpace`, :meth:`IdeLayout.from_reader` over a plain
function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass

from ..errors import PeerProtocolError
from ..transport import ConfigSpace

__all__ = [
    "ADDR1_VALID",
    "CAP_LINK",
    "CAP_SELECTIVE",
    "CAP_SEL_CFG",
    "CAP_TEE_LIMITED",
    "IDE_CAP_ID",
    "RESERVED_STREAM_ID",
    "RID2_VALID",
    "SEL_CTL_CFG_EN",
    "SEL_CTL_DEFAULT",
    "SEL_CTL_EN",
    "SEL_CTL_TEE_LIMITED",
    "STATE_INSECURE",
    "STATE_SECURE",
    "IdeCapability",
    "IdeLayout",
    "LinkBlock",
    "SelectiveBlock",
    "addr1_value",
    "control_stream_id",
    "selective_block",
]

IDE_CAP_ID = 0x0030
CONFIG_SPACE_END = 0x1000

# IDE Capability register (capability + 0x04), §7.9.26.2
CAP_LINK = 1 << 0
CAP_SELECTIVE = 1 << 1
CAP_FLOWTHROUGH = 1 << 2
CAP_PARTIAL_HEADER_ENC = 1 << 3
CAP_AGGREGATION = 1 << 4
CAP_PCRC = 1 << 5
CAP_IDE_KM = 1 << 6
CAP_SEL_CFG = 1 << 7  # Selective IDE for Configuration Requests
CAP_TEE_LIMITED = 1 << 24  # TEE-Limited Stream Supported

# Selective IDE Stream Control, §7.9.26.5.2
SEL_CTL_EN = 1 << 0
SEL_CTL_CFG_EN = 1 << 9  # Configuration Requests Enable (Root Ports)
SEL_CTL_DEFAULT = 1 << 22  # Default Stream
SEL_CTL_TEE_LIMITED = 1 << 23
SEL_CTL_ID_SHIFT = 24
# Selective IDE Stream Status, §7.9.26.5.3
STATE_MASK = 0xF
STATE_INSECURE = 0b0000
STATE_SECURE = 0b0010
# RID Association 1 / 2, Address Association 1, §7.9.26.5.4-5
RID1_LIMIT_SHIFT = 8
RID2_VALID = 1 << 0
RID2_BASE_SHIFT = 8
RID2_SEGMENT_SHIFT = 24
ADDR1_VALID = 1 << 0
#: Linux parks unused stream blocks at this Stream ID and never hands it out (pci-ide.h).
RESERVED_STREAM_ID = 255

LINK_BLOCK_SIZE = 8
SEL_BLOCK_HEAD = 20  # Capability, Control, Status, RID Association 1 and 2
ADDR_BLOCK_SIZE = 12


def control_stream_id(control: int) -> int:
    """The Stream ID field [31:24] of a Link or Selective IDE Stream Control value."""
    return (control >> SEL_CTL_ID_SHIFT) & 0xFF


def addr1_value(base: int, limit: int) -> int:
    """IDE Address Association Register 1 for a memory range: V, base and limit [31:20]."""
    return ADDR1_VALID | ((base >> 20) & 0xFFF) << 8 | ((limit >> 20) & 0xFFF) << 20


@dataclass(frozen=True)
class IdeCapability:
    """The IDE Capability register (capability + 0x04)."""

    raw: int

    @property
    def link(self) -> bool:
        return bool(self.raw & CAP_LINK)

    @property
    def selective(self) -> bool:
        return bool(self.raw & CAP_SELECTIVE)

    @property
    def sel_cfg(self) -> bool:
        return bool(self.raw & CAP_SEL_CFG)

    @property
    def tee_limited(self) -> bool:
        return bool(self.raw & CAP_TEE_LIMITED)

    @property
    def ide_km(self) -> bool:
        return bool(self.raw & CAP_IDE_KM)

    @property
    def link_tcs(self) -> int:
        """Number of TCs Supported for Link IDE, [15:13] + 1."""
        return ((self.raw >> 13) & 0x7) + 1

    @property
    def link_blocks(self) -> int:
        """Link IDE Stream register blocks: one per TC when Link IDE is supported, else none."""
        return self.link_tcs if self.link else 0

    @property
    def selective_blocks(self) -> int:
        """Selective IDE Stream register blocks: [23:16] + 1 when Selective IDE is supported."""
        return ((self.raw >> 16) & 0xFF) + 1 if self.selective else 0


@dataclass(frozen=True)
class LinkBlock:
    """Link IDE Stream register block ``index`` (absolute config-space offsets)."""

    index: int
    base: int

    @property
    def control(self) -> int:
        return self.base

    @property
    def status(self) -> int:
        return self.base + 4


@dataclass(frozen=True)
class SelectiveBlock:
    """Selective IDE Stream register block ``index`` (absolute config-space offsets)."""

    index: int
    base: int
    addr_blocks: int  # from this block's own Selective IDE Stream Capability register

    @property
    def capability(self) -> int:
        return self.base

    @property
    def control(self) -> int:
        return self.base + 0x04

    @property
    def status(self) -> int:
        return self.base + 0x08

    @property
    def rid1(self) -> int:
        return self.base + 0x0C

    @property
    def rid2(self) -> int:
        return self.base + 0x10

    def addr1(self, j: int) -> int:
        return self._addr(j) + 0

    def addr2(self, j: int) -> int:
        """Address Association Register 2: the limit's upper 32 bits."""
        return self._addr(j) + 4

    def addr3(self, j: int) -> int:
        """Address Association Register 3: the base's upper 32 bits."""
        return self._addr(j) + 8

    def _addr(self, j: int) -> int:
        if not 0 <= j < self.addr_blocks:
            raise IndexError(f"address association block {j} of {self.addr_blocks}")
        return self.base + SEL_BLOCK_HEAD + ADDR_BLOCK_SIZE * j

    @property
    def size(self) -> int:
        return SEL_BLOCK_HEAD + ADDR_BLOCK_SIZE * self.addr_blocks

    @property
    def end(self) -> int:
        return self.base + self.size

    def association_registers(self) -> list[int]:
        """RID Association 1 and 2, then every Address Association register, in order."""
        regs = [self.rid1, self.rid2]
        for j in range(self.addr_blocks):
            regs += [self.addr1(j), self.addr2(j), self.addr3(j)]
        return regs


@dataclass(frozen=True)
class IdeLayout:
    """Every register block of one IDE extended capability."""

    offset: int
    capability: IdeCapability
    link_blocks: tuple[LinkBlock, ...]
    selective_blocks: tuple[SelectiveBlock, ...]

    @property
    def ide_control(self) -> int:
        return self.offset + 0x08

    @property
    def end(self) -> int:
        if self.selective_blocks:
            return self.selective_blocks[-1].end
        if self.link_blocks:
            return self.link_blocks[-1].base + LINK_BLOCK_SIZE
        return self.offset + 0x0C

    @property
    def uniform(self) -> bool:
        """Whether every Selective block has block 0's Address Association count."""
        counts = {b.addr_blocks for b in self.selective_blocks}
        return len(counts) <= 1

    @property
    def kernel_selective_blocks(self) -> int:
        """How many Selective blocks Linux uses: up to the first whose Address Association
        count differs from block 0's (drivers/pci/ide.c, pci_ide_init)."""
        blocks = self.selective_blocks
        for i, block in enumerate(blocks):
            if block.addr_blocks != blocks[0].addr_blocks:
                return i
        return len(blocks)

    @classmethod
    async def read(cls, config: ConfigSpace, offset: int) -> IdeLayout:
        """Walk the capability at ``offset`` through ``config``."""
        return await _drive_async(_walk(offset), config.read32)

    @classmethod
    def from_reader(cls, offset: int, read: Callable[[int], int]) -> IdeLayout:
        """Walk the capability at ``offset`` with a plain ``read(offset) -> DW``."""
        walk = _walk(offset)
        try:
            want = next(walk)
            while True:
                want = walk.send(read(want))
        except StopIteration as done:
            return done.value


async def selective_block(config: ConfigSpace, cap_offset: int, index: int) -> SelectiveBlock:
    """Selective IDE Stream register block ``index`` of the capability at ``cap_offset``."""
    layout = await IdeLayout.read(config, cap_offset)
    if not 0 <= index < len(layout.selective_blocks):
        raise PeerProtocolError(
            f"IDE capability at {cap_offset:#x} has {len(layout.selective_blocks)} Selective "
            f"IDE Stream blocks; no block {index}"
        )
    return layout.selective_blocks[index]


async def _drive_async(
    walk: Generator[int, int, IdeLayout], read: Callable[[int], Awaitable[int]]
) -> IdeLayout:
    try:
        want = next(walk)
        while True:
            want = walk.send(await read(want))
    except StopIteration as done:
        return done.value


def _walk(offset: int) -> Generator[int, int, IdeLayout]:
    """The layout walk: yields each offset it must read, receives the DW, returns the layout."""
    if offset < 0x100 or offset % 4 or offset + 0x0C > CONFIG_SPACE_END:
        raise PeerProtocolError(f"IDE capability offset {offset:#x} is not valid")
    header = yield offset
    if header & 0xFFFF != IDE_CAP_ID:
        raise PeerProtocolError(f"no IDE capability at {offset:#x} (header {header:#010x})")
    cap = IdeCapability((yield offset + 0x04))
    pos = offset + 0x0C
    links = []
    for k in range(cap.link_blocks):
        links.append(LinkBlock(k, pos))
        pos += LINK_BLOCK_SIZE
    blocks = []
    for i in range(cap.selective_blocks):
        if pos + SEL_BLOCK_HEAD > CONFIG_SPACE_END:
            raise PeerProtocolError(
                f"IDE capability at {offset:#x}: Selective IDE Stream block {i} at {pos:#x} "
                "runs past the end of configuration space"
            )
        sel_cap = yield pos
        block = SelectiveBlock(i, pos, sel_cap & 0xF)
        if block.end > CONFIG_SPACE_END:
            raise PeerProtocolError(
                f"IDE capability at {offset:#x}: Selective IDE Stream block {i} "
                f"({block.addr_blocks} address blocks) runs past the end of configuration space"
            )
        blocks.append(block)
        pos = block.end
    return IdeLayout(offset, cap, tuple(links), tuple(blocks))
