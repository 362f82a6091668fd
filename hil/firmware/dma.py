"""The endpoint's DMA engine, driven through the firmware register port.

``hdl/ide_tlp`` (built with ``DMA_SUPPORTED``, ``hil_ep`` ``IDE_DMA``) sends Memory Writes of
its own: ``length_dw`` DW of BAR0 memory to a host address, on the stream its IDE registers
choose (PCIe 6.x §6.33.4).  Its registers sit in the TLP path's part of the firmware map
(hdl/ide_tlp/README.md, "DMA"), which a simulation drives directly and a board's controller
over the UART (``REG_WRITE`` / ``REG_READ``):

=========== ====== ========================================================================
DMA_ADDR_LO 0x230  host address [31:2] (bits 1:0 read 0)
DMA_ADDR_HI 0x231  host address [63:32]
DMA_CTRL    0x232  [9:0] length DW, [14:12] TC, [15] T, [29:16] BAR0 memory DW of the first
                   payload DW, [30] READ (host memory into BAR0's there); a write starts it
DMA_STATUS  0x233  [3:0] outcome (:class:`~hil.transport.DmaOutcome`), [10:8] stream index,
                   [23:16] its Stream ID, [31] busy
=========== ====== ========================================================================
"""

from __future__ import annotations

from ..errors import RigError
from ..transport import DeviceDma, DmaOutcome, DmaReport
from .regs import FirmwareRegisterPort

__all__ = ["DMA_ADDR_HI", "DMA_ADDR_LO", "DMA_CTRL", "DMA_STATUS", "FirmwareDma"]

DMA_ADDR_LO = 0x230
DMA_ADDR_HI = 0x231
DMA_CTRL = 0x232
DMA_STATUS = 0x233
_BUSY = 1 << 31
_POLLS = 256  # status reads before giving up (a 256-byte write takes well under 100)
_READ_POLLS = 8192  # ... for a read, which may wait out its Completion Timeout (16384 clocks)
DMA_READ = 1 << 30


def ctrl_value(length_dw: int, source_dw: int, tc: int, t: bool, read: bool = False) -> int:
    """DMA_CTRL for a write of ``length_dw`` DW from BAR0 memory DW ``source_dw`` (a read
    into it)."""
    if not 0 <= length_dw < 1 << 10 or not 0 <= source_dw < 1 << 14 or not 0 <= tc < 8:
        raise ValueError(f"DMA request of {length_dw} DW at BAR0 DW {source_dw} on TC{tc}")
    return length_dw | tc << 12 | int(t) << 15 | source_dw << 16 | DMA_READ * read


def decode_status(value: int) -> DmaReport:
    try:
        outcome = DmaOutcome(value & 0xF)
    except ValueError:
        raise RigError(f"DMA_STATUS {value:#010x}: unknown outcome {value & 0xF}") from None
    return DmaReport(outcome, stream_index=(value >> 8) & 0x7, stream_id=(value >> 16) & 0xFF)


class FirmwareDma(DeviceDma):
    """:class:`~hil.transport.DeviceDma` over the endpoint's firmware register port."""

    def __init__(self, regs: FirmwareRegisterPort) -> None:
        self.regs = regs

    async def supported(self) -> bool:
        """Whether the endpoint was built with the engine (DMA_STATUS does not read 15)."""
        status = await self.regs.read(DMA_STATUS)
        return status & 0xF != DmaOutcome.UNSUPPORTED

    async def _start(
        self, address: int, offset: int, length_dw: int, tc: int, t: bool, read: bool
    ) -> None:
        if address & 3 or offset & 3:
            raise ValueError("the DMA engine moves whole DW: DW-aligned addresses only")
        if await self.regs.read(DMA_STATUS) & _BUSY:
            raise RigError("the DMA engine is still busy with an earlier request")
        await self.regs.write(DMA_ADDR_LO, address & 0xFFFF_FFFC)
        await self.regs.write(DMA_ADDR_HI, address >> 32)
        await self.regs.write(DMA_CTRL, ctrl_value(length_dw, offset // 4, tc, t, read))

    async def _done(self, polls: int) -> DmaReport:
        status = 0
        for _ in range(polls):
            status = await self.regs.read(DMA_STATUS)
            if not status & _BUSY and status & 0xF != DmaOutcome.NONE:
                return decode_status(status)
        raise RigError(f"the DMA engine did not finish (DMA_STATUS {status:#x})")

    async def write(
        self, address: int, source_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        await self._start(address, source_offset, length_dw, tc, t, read=False)
        return await self._done(_POLLS)

    async def start_read(
        self, address: int, dest_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        await self._start(address, dest_offset, length_dw, tc, t, read=True)
        return decode_status(await self.regs.read(DMA_STATUS))

    async def wait(self) -> DmaReport:
        return await self._done(_READ_POLLS)
