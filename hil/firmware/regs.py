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
    "TDI_BAR0_HI",
    "TDI_BAR0_INFO",
    "TDI_BAR0_LO",
    "TDI_CMD",
    "TDI_NUM_STREAMS",
    "TDI_OP_FAIL",
    "TDI_OP_LOCK",
    "TDI_OP_START",
    "TDI_OP_STOP",
    "TDI_STATE",
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


# The TDI block's map (hdl/tdi): TDI_STATE [1:0] state (the TDISP TDI_STATE codes), [6:4] bound
# stream index, b7 bound, [15:8] cause of the last entry into ERROR, [31:24] map version.
# TDI_CMD write: [3:0] op, [10:8] stream index (LOCK); read: status of the last command
# (0 done, 1 not allowed in this state, 2 unknown op, 3 LOCK: no such stream or not Secure).
TDI_STATE = 0x100
TDI_CMD = 0x101
TDI_BAR0_LO = 0x102  # BAR0 as the host programmed it
TDI_BAR0_HI = 0x103
TDI_BAR0_INFO = 0x104  # [5:0] size log2, b8 Memory Space Enable, b9 Bus Master Enable
TDI_NUM_STREAMS = 0x105
TDI_OP_LOCK, TDI_OP_START, TDI_OP_STOP, TDI_OP_FAIL = 1, 2, 3, 4


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
