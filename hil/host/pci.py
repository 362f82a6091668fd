"""Walking a function's capability lists (PCIe 6.x §7.5.1, §7.6.3), as Linux does."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PeerProtocolError
from ..transport import ConfigSpace

__all__ = [
    "CAP_ID_PCIE",
    "DEVCAP_TEE_IO",
    "EXT_CAP_START",
    "ExtCapability",
    "find_capability",
    "find_ext_capabilities",
    "walk_ext_capabilities",
]

CAP_ID_PCIE = 0x10  # PCI Express Capability [§7.5.3]
DEVCAP_TEE_IO = 1 << 30  # Device Capabilities: TEE-IO Supported [§7.5.3.3]
_MAX_CAPS = 48  # (256 - 64) / 4: Linux's bound on a looping standard list (PCI_FIND_CAP_TTL)

EXT_CAP_START = 0x100
_MAX_EXT_CAPS = (4096 - 256) // 8  # Linux's bound on a looping list (PCI_CFG_SPACE_EXP_SIZE)


@dataclass(frozen=True)
class ExtCapability:
    offset: int
    cap_id: int
    version: int
    next_offset: int

    @classmethod
    def from_header(cls, offset: int, header: int) -> ExtCapability:
        return cls(offset, header & 0xFFFF, (header >> 16) & 0xF, header >> 20)


async def find_capability(config: ConfigSpace, cap_id: int) -> int | None:
    """Offset of the first capability ``cap_id`` in the standard list (from 34h), or None."""
    ptr = (await config.read32(0x34)) & 0xFC
    for _ in range(_MAX_CAPS):
        if not ptr:
            break
        header = await config.read32(ptr)
        if header & 0xFF == cap_id:
            return ptr
        ptr = (header >> 8) & 0xFC
    return None


async def walk_ext_capabilities(config: ConfigSpace) -> list[ExtCapability]:
    """Every extended capability from 0x100 on, checking the list is well formed.

    A header of 0 at 0x100 means no extended capabilities.  A next pointer below 0x100, not
    DW-aligned, or revisiting an offset is the device's error.
    """
    caps: list[ExtCapability] = []
    seen: set[int] = set()
    offset = EXT_CAP_START
    while offset:
        if offset < EXT_CAP_START or offset % 4 or offset > 0xFFC:
            raise PeerProtocolError(f"extended capability pointer {offset:#x} is not valid")
        if offset in seen or len(caps) > _MAX_EXT_CAPS:
            raise PeerProtocolError(f"extended capability list loops at {offset:#x}")
        seen.add(offset)
        header = await config.read32(offset)
        if header in (0, 0xFFFFFFFF):
            if offset == EXT_CAP_START and header == 0:
                break
            raise PeerProtocolError(f"extended capability at {offset:#x} reads {header:#010x}")
        cap = ExtCapability.from_header(offset, header)
        caps.append(cap)
        offset = cap.next_offset
    return caps


async def find_ext_capabilities(config: ConfigSpace, cap_id: int) -> list[ExtCapability]:
    return [c for c in await walk_ext_capabilities(config) if c.cap_id == cap_id]
