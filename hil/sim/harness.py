"""The simulated endpoint as a host sees it: clock, reset, hard IP, root complex, enumeration."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.handle import HierarchyObject
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.pcie.core import Device, RootComplex

from ..rigs import CONFIG_PATHS
from .dsm import DsmPort, Firmware
from .fwregs import SimFirmwareRegs
from .hardip import UspHardIp
from .link import connect_transaction_link
from .transport import CocotbTimebase, HardIpConfigSpace, RcConfigSpace

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
    config: RcConfigSpace | HardIpConfigSpace
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
        config_path: str = "tlp",
    ) -> EndpointHarness:
        """Clock, reset and enumeration.  ``config_path`` says how the vectors' configuration
        accesses travel: ``"tlp"``, CfgRd0/CfgWr0 TLPs from the root complex through the hard-IP
        model; ``"cfg_ext"``, straight into the hard-IP model's configuration space (its own
        registers, and ``cfg_ext_*`` for the user window), with no TLP in between.  Either way
        the root complex enumerates the function through TLPs first."""
        if config_path not in CONFIG_PATHS:
            raise ValueError(f"config_path {config_path!r}: one of {', '.join(CONFIG_PATHS)}")
        _quiet_pcie_logs()
        # The clock in the simulator's GPI layer (C++), not a Python coroutine per edge.
        Clock(dut.clk_i, clock_period_ns, unit="ns", impl="gpi").start()
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
        connect_transaction_link(rc, Device(hardip))
        await rc.enumerate()
        config = (
            RcConfigSpace(rc, hardip.pcie_id) if config_path == "tlp" else HardIpConfigSpace(hardip)
        )
        harness = cls(
            dut=dut,
            rc=rc,
            hardip=hardip,
            dsm=dsm,
            config=config,
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
