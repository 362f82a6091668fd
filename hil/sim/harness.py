"""The simulated endpoint as a host sees it: clock, reset, hard IP, root complex, enumeration."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.handle import HierarchyObject
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.pcie.core import Device, RootComplex

from .dsm import DsmPort, Firmware
from .fwregs import SimFirmwareRegs
from .hardip import UspHardIp
from .transport import CocotbTimebase, RcConfigSpace

__all__ = ["EndpointHarness"]


def _quiet_pcie_logs() -> None:
    for name in ("cocotb.pcie", "cocotb.pcie.RootComplex"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass
class EndpointHarness:
    dut: HierarchyObject
    rc: RootComplex
    hardip: UspHardIp
    dsm: DsmPort | None  # None when the top carries the DSM port itself (hil_fpga's UART)
    config: RcConfigSpace
    timebase: CocotbTimebase
    fw_regs: SimFirmwareRegs | None
    msi_count: int = 0
    firmware_slot: object = None  # what serves the DSM port, when the rig has firmware

    @classmethod
    async def start(
        cls,
        dut: HierarchyObject,
        *,
        clock_period_ns: float = 4.0,
        firmware: Firmware | None = None,
        dsm_backpressure: float = 0.0,
        dsm_latency_ns: float = 0.0,
        dsm_port: bool = True,
        clock_impl: str | None = None,
    ) -> EndpointHarness:
        """``clock_impl``: cocotb's ``Clock`` implementation ("gpi": toggled by the simulator
        interface in C++, no Python per edge; None: cocotb's default)."""
        _quiet_pcie_logs()
        Clock(dut.clk_i, clock_period_ns, unit="ns", impl=clock_impl).start()
        hardip = UspHardIp(dut)
        fw_regs = SimFirmwareRegs(dut) if dsm_port else None
        dsm = (
            DsmPort(dut, firmware, backpressure=dsm_backpressure, latency_ns=dsm_latency_ns)
            if dsm_port
            else None
        )
        dut.rst_ni.value = 0
        await ClockCycles(dut.clk_i, 8)
        dut.rst_ni.value = 1
        await ClockCycles(dut.clk_i, 2)

        rc = RootComplex()
        rc.log.setLevel(logging.ERROR)  # enumeration probes absent devices by design
        rc.make_port().connect(Device(hardip))
        await rc.enumerate()
        harness = cls(
            dut=dut,
            rc=rc,
            hardip=hardip,
            dsm=dsm,
            config=RcConfigSpace(rc, hardip.pcie_id),
            timebase=CocotbTimebase(),
            fw_regs=fw_regs,
        )
        cocotb.start_soon(harness._count_msi())
        return harness

    async def reset(self, cycles: int = 8) -> None:
        """A conventional reset of the endpoint's user logic (what a power cycle does to it)."""
        self.dut.rst_ni.value = 0
        await ClockCycles(self.dut.clk_i, cycles)
        self.dut.rst_ni.value = 1
        await ClockCycles(self.dut.clk_i, 2)

    async def _count_msi(self) -> None:
        # On the pulse's edge, not every clock: no Python runs per cycle while nothing happens.
        # (The mailbox cannot pulse in two cycles running: status must be cleared between.)
        while True:
            await RisingEdge(self.dut.msi_req_o)
            self.msi_count += 1
