"""The virtual rig's Root Port: a type 1 function in memory with its own IDE capability.

A Linux host refuses an endpoint's IDE unless the endpoint's Root Port has an IDE capability
with Selective IDE Streams (drivers/pci/ide.c, ``pci_ide_init``), and a platform TSM keys the
Root Port's end of a stream itself while it keys the endpoint's end over IDE_KM.  This model is
that Root Port: configuration space (header, PCI Express capability as a Root Port with a Port
Number, the memory window below it) and, at 0x100, an IDE capability whose Selective IDE Stream
blocks, key slots and stream state are :class:`hil._fake_hw.FakeIdeCap`'s.

Unlike the endpoint, its IDE capability has Link IDE (so its Selective blocks start after a
Link IDE block, PCIe 6.x §7.9.26), two Address Association blocks per Selective block (the
kernel gives a Root Port its memory and prefetchable windows), Selective IDE for Configuration
Requests, and no TEE-Limited Stream support: a reader that assumes the endpoint's layout reads
the wrong registers here.
"""

from __future__ import annotations

from .._fake_hw import FW_CMD, FW_KEY, FakeIdeCap
from ..host import ide_regs as I
from ..transport import ConfigSpace
from .bdf import Bdf

__all__ = ["RootPortConfigSpace", "RootPortIde", "VirtualRootPort"]

#: QEMU's generic PCIe Root Port IDs (1b36:000c), for a port that exists only in emulation.
VENDOR_ID = 0x1B36
DEVICE_ID = 0x000C
PCIE_CAP = 0x40
IDE_CAP = 0x100
PCIE_TYPE_ROOT_PORT = 0x4
PORT_NUMBER = 1  # Link Capabilities [31:24]: what SEV-TIO reads as the root port id

_LINK_DW = 2  # one Link IDE block: Control, Status
_SEL_START_DW = 3 + _LINK_DW
_CTL_KEEP = I.SEL_CTL_CFG_EN  # Control bits FakeIdeCap does not keep and a Root Port has


def _merge(old: int, value: int, byte_enable: int) -> int:
    mask = 0
    for byte in range(4):
        if byte_enable >> byte & 1:
            mask |= 0xFF << (8 * byte)
    return (old & ~mask) | (value & mask)


class RootPortIde:
    """The Root Port's IDE extended capability: one Link IDE block (TC0), ``num_streams``
    Selective blocks with two Address Association blocks each, key slots per block."""

    def __init__(self, offset: int = IDE_CAP, *, num_streams: int = 4) -> None:
        self.offset = offset
        self.sel = FakeIdeCap(
            offset + 4 * _LINK_DW, num_streams=num_streams, num_addr_blocks=2, max_cap_dw=64
        )
        self.link_control = 0
        self.cfg_en = [False] * num_streams
        self.size_dw = _LINK_DW + self.sel.size_dw

    @property
    def num_streams(self) -> int:
        return self.sel.num_streams

    def capability(self) -> int:
        return (
            I.CAP_LINK  # Link IDE, TCs supported = 1 ([15:13] = 0)
            | I.CAP_SELECTIVE
            | I.CAP_SEL_CFG
            | ((self.num_streams - 1) << 16)
        )

    def read_index(self, index: int) -> int:
        if index == 0:
            return I.IDE_CAP_ID | (1 << 16)  # version 1, last capability
        if index == 1:
            return self.capability()
        if index == 2:
            return 0  # IDE Control: Flow-Through IDE Stream Enabled is 0
        if index == 3:
            return self.link_control
        if index == 4:
            return 0  # Link IDE Stream Status: Insecure
        value = self.sel.read_index(index - _LINK_DW)
        located = self.sel._locate(index - _LINK_DW)
        if located is not None and located[1] == 1 and self.cfg_en[located[0]]:
            value |= I.SEL_CTL_CFG_EN
        return value

    def write_index(self, index: int, value: int, byte_enable: int = 0xF) -> None:
        if index == 3:
            self.link_control = _merge(self.link_control, value, byte_enable) & ~0x1
            return  # Link IDE is never keyed here: Enable stays 0
        if index < _SEL_START_DW:
            return
        located = self.sel._locate(index - _LINK_DW)
        if located is not None and located[1] == 1 and byte_enable & 0b10:
            merged = _merge(self.read_index(index), value, byte_enable)
            self.cfg_en[located[0]] = bool(merged & _CTL_KEEP)
        self.sel.write(4 * (index - _LINK_DW), value, byte_enable)

    # -- what the platform TSM does directly (no IDE_KM to a Root Port) -------------------------
    def program_key(self, stream: int, slot_code: int, words: list[int]) -> None:
        """Fill key slot ``slot_code`` of Selective block ``stream`` (8 key DW, 2 IFV DW)."""
        for dw, value in enumerate(words):
            self.sel.fw_write(FW_KEY | stream << 8 | slot_code << 4 | dw, value)

    def key_set_go(self, stream: int, key_sub_stream: int) -> bool:
        """Arm one slot (its IDE_KM KeySubStream byte); False if the hardware refused."""
        self.sel.fw_write(FW_CMD, 1 << 16 | stream << 8 | key_sub_stream)
        return self.sel.fw_read(FW_CMD) == 0

    def link_down(self) -> None:
        """DL_Active went down (the endpoint lost power): every Secure stream becomes
        Insecure, its keys erased (PCIe 6.x §6.33.1)."""
        for j in range(self.num_streams):
            self.sel.check_failed(j)


class VirtualRootPort:
    """The Root Port above the endpoint: ``bdf`` on the root bus, the endpoint's bus below it."""

    def __init__(
        self,
        bdf: Bdf,
        secondary_bus: int,
        *,
        ide: bool = True,
        mem_window: tuple[int, int] = (0xFE00_0000, 0xFE0F_FFFF),
    ) -> None:
        self.bdf = bdf
        self.secondary_bus = secondary_bus
        self.ide = RootPortIde() if ide else None
        self.mem_window = mem_window
        self.command = 0x0006  # Memory Space and Bus Master enabled by the firmware/kernel

    def set_mem_window(self, base: int, limit: int) -> None:
        self.mem_window = (base & ~0xFFFFF, limit | 0xFFFFF)

    def read32(self, offset: int) -> int:
        if self.ide is not None and IDE_CAP <= offset < IDE_CAP + 4 * self.ide.size_dw:
            return self.ide.read_index((offset - IDE_CAP) // 4)
        base, limit = self.mem_window
        return {
            0x00: VENDOR_ID | DEVICE_ID << 16,
            0x04: self.command | (1 << 20),  # Status: Capabilities List
            0x08: 0x0604_0000,  # PCI-to-PCI bridge
            0x0C: 0x0001_0000,  # header type 1
            0x18: self.secondary_bus << 8 | self.secondary_bus << 16,
            0x20: (base >> 16) & 0xFFF0 | (limit & 0xFFF0_0000),
            0x24: 0x0000_FFF0,  # prefetchable window: none (base above limit)
            0x34: PCIE_CAP,
            PCIE_CAP: 0x10 | (2 | PCIE_TYPE_ROOT_PORT << 4 | 1 << 8) << 16,
            PCIE_CAP + 0x0C: PORT_NUMBER << 24 | 4 << 4 | 3,  # Link Capabilities: x4, 8 GT/s
            PCIE_CAP + 0x10: 0x0043_0000,  # Link Status: x4 at 8 GT/s
            IDE_CAP: 0 if self.ide is None else self.ide.read_index(0),
        }.get(offset, 0)

    def write32(self, offset: int, value: int, byte_enable: int = 0xF) -> None:
        if self.ide is not None and IDE_CAP <= offset < IDE_CAP + 4 * self.ide.size_dw:
            self.ide.write_index((offset - IDE_CAP) // 4, value, byte_enable)
        elif offset == 0x04 and byte_enable & 0b11:
            self.command = _merge(self.command, value, byte_enable & 0b11) & 0x0547


class RootPortConfigSpace(ConfigSpace):
    """The Root Port's configuration space as the kernel's accessors reach it."""

    def __init__(self, port: VirtualRootPort) -> None:
        self.port = port

    async def read32(self, offset: int) -> int:
        self.check_offset(offset)
        return self.port.read32(offset)

    async def write32(self, offset: int, value: int) -> None:
        self.check_offset(offset)
        self.port.write32(offset, value & 0xFFFFFFFF)

    async def write_bytes(self, offset: int, data: bytes) -> None:
        self.check_offset(offset, len(data))
        shift = 8 * (offset & 3)
        be = ((1 << len(data)) - 1) << (offset & 3)
        self.port.write32(offset & ~3, int.from_bytes(data, "little") << shift, be)
