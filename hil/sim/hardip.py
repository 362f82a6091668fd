"""A model of the FPGA's PCIe hard IP (UltraScale+ PCIe4, PG213), built on cocotbext-pcie.

The hard IP owns the type 0 header and its own capabilities; it forwards every configuration
access to user logic over the Configuration Extend interface (``cfg_ext_*``) and expects user
logic to answer reads in the user extended window (register numbers 0x120-0x13F, bytes
0x480-0x4FF).  Its own extended capability list (AER at 0x100, Device Serial Number after it)
ends with a next pointer into that window, so a standard walk from 0x100 reaches the HDL's
capabilities.

cocotbext-pcie's RootComplex sends CfgRd0/CfgWr0 TLPs to this function through its root port;
the TLP side is cocotbext-pcie's, the configuration side is this module's.
"""

from __future__ import annotations

import logging

from cocotb.handle import HierarchyObject
from cocotb.triggers import Lock, ReadOnly, RisingEdge
from cocotbext.pcie.core import Endpoint
from cocotbext.pcie.core.caps import AerExtendedCapability
from cocotbext.pcie.core.caps.common import PciExtCap, PciExtCapId

from .. import _regs as R

__all__ = ["CfgExtTimeout", "DsnExtendedCapability", "UspHardIp"]

XILINX_VENDOR_ID = 0x10EE
READ_RESPONSE_CYCLES = 16  # how long the model waits for cfg_ext_read_data_valid


class CfgExtTimeout(Exception):
    """User logic did not answer a read in its window."""


class DsnExtendedCapability(PciExtCap):
    """Device Serial Number extended capability (PCIe 6.x §7.9.3), as the hard IP provides."""

    def __init__(self, serial: int) -> None:
        super().__init__()
        self.cap_id = PciExtCapId.DSN
        self.cap_ver = 1
        self.length = 3
        self.serial = serial

    async def _read_register(self, reg: int) -> int:
        return {1: self.serial & 0xFFFFFFFF, 2: self.serial >> 32}.get(reg, 0)

    async def _write_register(self, reg: int, data: int, mask: int) -> None:
        pass


class UspHardIp(Endpoint):
    """Physical function 0 of the hard IP, with user logic (``dut``) behind ``cfg_ext_*``."""

    def __init__(
        self,
        dut: HierarchyObject,
        *,
        device_id: int = 0x9048,
        serial: int = 0x00C0FFEE_1D5EC0DE,
        window_base_reg: int = R.CFG_EXT_BASE_REG,
        window_regs: int = R.CFG_EXT_NUM_REGS,
    ) -> None:
        super().__init__()
        self.dut = dut
        self.clk = dut.clk_i
        self.vendor_id = XILINX_VENDOR_ID
        self.device_id = device_id
        self.class_code = 0x120000  # processing accelerator
        self.window = range(window_base_reg, window_base_reg + window_regs)
        self.log.setLevel(logging.WARNING)
        self.aer_cap = AerExtendedCapability()
        self.register_extended_capability(self.aer_cap, offset=0x100 // 4)
        self.dsn_cap = DsnExtendedCapability(serial)
        self.register_extended_capability(self.dsn_cap)
        self._lock = Lock()
        self.cfg_ext_reads = 0
        self.cfg_ext_writes = 0
        self.cfg_ext_timeouts = 0
        dut.cfg_ext_read_received_i.value = 0
        dut.cfg_ext_write_received_i.value = 0
        dut.cfg_ext_register_number_i.value = 0
        dut.cfg_ext_function_number_i.value = 0
        dut.cfg_ext_write_data_i.value = 0
        dut.cfg_ext_write_byte_enable_i.value = 0

    # -- configuration space: the hard IP's own registers, then the user window ---------------
    async def read_config_register(self, reg: int) -> int:
        if reg in self.window:
            return await self._cfg_ext_read(reg)
        await self._cfg_ext_pulse_read(reg)
        value = await super().read_config_register(reg)
        if self.ext_capabilities.list and reg == self.ext_capabilities.list[-1].offset:
            # The last hard-IP extended capability leads into the user window.
            value = (value & 0x000FFFFF) | ((self.window.start * 4) << 20)
        return value

    async def write_config_register(self, reg: int, data: int, mask: int) -> None:
        await self._cfg_ext_write(reg, data, mask)
        if reg not in self.window:
            await super().write_config_register(reg, data, mask)

    # -- the Configuration Extend interface -----------------------------------------------------
    async def _cfg_ext_pulse_read(self, reg: int) -> None:
        """Reads outside the window are announced too; user logic must not answer them."""
        async with self._lock:
            await RisingEdge(self.clk)
            self._drive(read=1, reg=reg)
            await RisingEdge(self.clk)
            self._drive(read=0, reg=reg)

    async def _cfg_ext_read(self, reg: int) -> int:
        async with self._lock:
            await RisingEdge(self.clk)
            self._drive(read=1, reg=reg)
            await RisingEdge(self.clk)
            self._drive(read=0, reg=reg)
            for _ in range(READ_RESPONSE_CYCLES):
                await ReadOnly()
                if self.dut.cfg_ext_read_data_valid_o.value == 1:
                    self.cfg_ext_reads += 1
                    return int(self.dut.cfg_ext_read_data_o.value)
                await RisingEdge(self.clk)
            self.cfg_ext_timeouts += 1
            self.log.error("cfg_ext read of register %#x: no cfg_ext_read_data_valid", reg)
            return 0

    async def _cfg_ext_write(self, reg: int, data: int, mask: int) -> None:
        async with self._lock:
            await RisingEdge(self.clk)
            self._drive(write=1, reg=reg, data=data, be=mask)
            await RisingEdge(self.clk)
            self._drive(write=0, reg=reg, data=data, be=mask)
            self.cfg_ext_writes += 1

    def _drive(
        self, *, reg: int, read: int = 0, write: int = 0, data: int = 0, be: int = 0
    ) -> None:
        d = self.dut
        d.cfg_ext_read_received_i.value = read
        d.cfg_ext_write_received_i.value = write
        d.cfg_ext_register_number_i.value = reg & 0x3FF
        d.cfg_ext_function_number_i.value = self.function_num
        d.cfg_ext_write_data_i.value = data
        d.cfg_ext_write_byte_enable_i.value = be
