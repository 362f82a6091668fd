"""The firmware's register port into the hardware (hdl/ide_cap/README.md, "Firmware map").

The firmware programs IDE key slots and asks for key-set changes here; the hardware decides.
Key and IFV slots are write-only: nothing here, or anywhere, reads them back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = [
    "CMD",
    "CMD_K_SET_GO",
    "CMD_K_SET_STOP",
    "CMD_WIPE",
    "INFO",
    "FirmwareRegisterPort",
    "cap_word",
    "key_dw",
    "stream_slots",
    "stream_state",
]

INFO = 0x000
CMD = 0x001
CMD_K_SET_GO, CMD_K_SET_STOP, CMD_WIPE = 1, 2, 3
CMD_STATUS = ("ok", "bad op", "bad stream", "bad sub-stream", "slot not loaded")


def stream_state(stream: int) -> int:
    return 0x010 + 2 * stream


def stream_slots(stream: int) -> int:
    return 0x011 + 2 * stream


def cap_word(i: int) -> int:
    """Copy of IDE capability DW ``i`` (for QUERY_RESP)."""
    return 0x040 + i


def key_dw(stream: int, slot: int, dw: int) -> int:
    """Key slot DW: 0-7 key (first wire DW first), 8-9 IFV (IFV[63:32] first)."""
    return 0x800 | (stream << 8) | (slot << 4) | dw


def command(op: int, stream: int, key_sub_stream: int) -> int:
    return (op << 16) | (stream << 8) | key_sub_stream


class FirmwareRegisterPort(ABC):
    @abstractmethod
    async def read(self, addr: int) -> int: ...

    @abstractmethod
    async def write(self, addr: int, value: int) -> None: ...
