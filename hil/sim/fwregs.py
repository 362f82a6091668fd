"""The endpoint's firmware register port (``fw_*``) driven from cocotb."""

from __future__ import annotations

from cocotb.handle import HierarchyObject
from cocotb.triggers import Lock, RisingEdge

from ..errors import RigError
from ..firmware.regs import FirmwareRegisterPort

__all__ = ["SimFirmwareRegs"]


class SimFirmwareRegs(FirmwareRegisterPort):
    def __init__(self, dut: HierarchyObject) -> None:
        self.dut = dut
        self._lock = Lock()
        dut.fw_wr_i.value = 0
        dut.fw_rd_i.value = 0
        dut.fw_addr_i.value = 0
        dut.fw_wdata_i.value = 0

    async def write(self, addr: int, value: int) -> None:
        async with self._lock:
            await RisingEdge(self.dut.clk_i)
            self.dut.fw_addr_i.value = addr
            self.dut.fw_wdata_i.value = value & 0xFFFFFFFF
            self.dut.fw_wr_i.value = 1
            await RisingEdge(self.dut.clk_i)
            self.dut.fw_wr_i.value = 0

    async def read(self, addr: int) -> int:
        async with self._lock:
            await RisingEdge(self.dut.clk_i)
            self.dut.fw_addr_i.value = addr
            self.dut.fw_rd_i.value = 1
            await RisingEdge(self.dut.clk_i)
            self.dut.fw_rd_i.value = 0
            # Values read right after an edge are those the edge sampled: the registered
            # answer to the strobe shows at the next edge.  (No ReadOnly: the caller may go
            # on to drive signals in this time step.)
            for _ in range(4):
                await RisingEdge(self.dut.clk_i)
                if int(self.dut.fw_rvalid_o.value):
                    return int(self.dut.fw_rdata_o.value)
            raise RigError(f"firmware register read of {addr:#x}: no fw_rvalid_o")
