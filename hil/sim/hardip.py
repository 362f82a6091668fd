"""A model of the FPGA's PCIe hard IP (UltraScale+ PCIe4, PG213), built on cocotbext-pcie.

The hard IP owns the type 0 header and its own capabilities; it forwards every configuration
access to user logic over the Configuration Extend interface (``cfg_ext_*``) and expects user
logic to answer reads in the user extended window (register numbers 0x120-0x13F, bytes
0x480-0x4FF).  Its own extended capability list (AER at 0x100, Device Serial Number after it)
ends with a next pointer into that window, so a standard walk from 0x100 reaches the HDL's
capabilities.

cocotbext-pcie's RootComplex sends CfgRd0/CfgWr0 TLPs to this function through its root port;
the TLP side is cocotbext-pcie's, the configuration side is this module's.

BAR0 (64-bit memory, ``BAR0_SIZE`` bytes) is the hard IP's too: the root complex sizes and
assigns it.  Memory requests to it reach user logic on the TLP streams (``tlp_rx_*`` /
``tlp_tx_*``, wire-order bytes, hdl/ide_tlp/README.md): a cocotbext-pcie MRd/MWr is turned
into bytes and its completion back into a cocotbext-pcie TLP.  cocotbext-pcie's TLPs carry no
prefixes, so IDE TLPs (IDE TLP Prefix, MAC) take :meth:`UspHardIp.send_tlp` /
:meth:`UspHardIp.recv_tlp` instead: raw bytes in and out of the same streams, the way a hard IP
that passes End-End prefixes through would hand them over.  A write to Device Control's
Initiate FLR raises ``cfg_flr_in_process_i`` until user logic pulses ``cfg_flr_done_o``.

Selective IDE for Configuration Requests (PCIe 6.x §6.33.4): the model also plays a hard IP
that hands a Configuration Request arriving as an IDE TLP to user logic like any other TLP
(raw, through :meth:`UspHardIp.send_tlp`), and serves user logic's configuration management
port (PG213 ``cfg_mgmt_*``), through which the HDL does the decrypted request on the function's
configuration space.  While user logic raises ``cfg_ide_hold_o`` (a Selective stream has taken
one), Configuration Requests that arrive as plain TLPs are discarded: a read answers all 1s,
what the root complex gives software when its Completion Timeout expires (the model answers at
once instead of letting the requester wait), and a write does nothing.  The real UltraScale+
PCIe4 block terminates Configuration Requests itself (hdl/boards/vcu118/README.md).

Device Capabilities reads with TEE-IO Supported (bit 30, PCIe 6.x §7.5.3.3) set, as a TDISP
device's function 0 has it and as Linux's ``is_pci_tsm_pf0`` looks for it.  The real
UltraScale+ PCIe4 block has no setting for that bit and answers the PCI Express capability
itself, so the VCU118 build reads 0 there (hdl/boards/vcu118/README.md); ``tee_io=False``
models that board.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import cocotb
from cocotb.handle import HierarchyObject
from cocotb.triggers import Event, FallingEdge, First, Lock, RisingEdge, Timer
from cocotbext.pcie.core import Endpoint
from cocotbext.pcie.core.caps import AerExtendedCapability
from cocotbext.pcie.core.caps.common import PciExtCap, PciExtCapId
from cocotbext.pcie.core.tlp import Tlp, TlpType

from .. import _regs as R
from .tlpstream import TlpSink, TlpSource

__all__ = ["CfgExtTimeout", "DsnExtendedCapability", "UspHardIp"]

XILINX_VENDOR_ID = 0x10EE
READ_RESPONSE_CYCLES = 16  # how long the model waits for cfg_ext_read_data_valid
BAR0_SIZE = 4096  # hil_ep BAR0_SIZE_LOG2 = 12
FLR_DONE_CYCLES = 64  # how long the model waits for cfg_flr_done_o
DEVCAP_TEE_IO = 1 << 30  # Device Capabilities: TEE-IO Supported


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
        tee_io: bool = True,
    ) -> None:
        super().__init__()
        self.dut = dut
        self.clk = dut.clk_i
        self.vendor_id = XILINX_VENDOR_ID
        self.device_id = device_id
        self.class_code = 0x120000  # processing accelerator
        self.window = range(window_base_reg, window_base_reg + window_regs)
        self.tee_io = tee_io
        self.log.setLevel(logging.WARNING)
        self.aer_cap = AerExtendedCapability()
        self.register_extended_capability(self.aer_cap, offset=0x100 // 4)
        self.dsn_cap = DsnExtendedCapability(serial)
        self.register_extended_capability(self.dsn_cap)
        self._lock = Lock()
        self._falling = FallingEdge(self.clk)
        self.cfg_ext_reads = 0
        self.cfg_ext_writes = 0
        self.cfg_ext_timeouts = 0
        # cfg_ext_* inputs, driven only when a value changes (fewer writes per access)
        self._inputs = {
            name: getattr(dut, f"cfg_ext_{name}_i")
            for name in (
                "read_received",
                "write_received",
                "register_number",
                "function_number",
                "write_data",
                "write_byte_enable",
            )
        }
        self._driven: dict[str, int] = {}
        self._read_valid = dut.cfg_ext_read_data_valid_o
        self._read_data = dut.cfg_ext_read_data_o
        self._drive(reg=0)
        # BAR0 and the TLP streams
        self.configure_bar(0, BAR0_SIZE, ext=True, prefetch=False)
        self.register_rx_tlp_handler(TlpType.MEM_READ, self._mem_read)
        self.register_rx_tlp_handler(TlpType.MEM_READ_64, self._mem_read)
        self.register_rx_tlp_handler(TlpType.MEM_WRITE, self._mem_write)
        self.register_rx_tlp_handler(TlpType.MEM_WRITE_64, self._mem_write)
        self._tlp_src = TlpSource(dut, "tlp_rx", self.clk)
        self._tlp_sink = TlpSink(dut, "tlp_tx", self.clk)
        self._tlp_lock = Lock()
        self._cpl_wait: dict[int, tuple[Event, list[bytes]]] = {}
        self._raw: deque[bytes] = deque()
        self._raw_event = Event()
        dut.cfg_completer_id_i.value = 0
        # FLR
        dut.cfg_flr_in_process_i.value = 0
        self.pcie_cap.function_level_reset_capability = True
        self.pcie_cap.initiate_function_level_reset = self._flr
        self.flr_count = 0
        # Configuration management (IDE Configuration Requests) and the plain-path hold, where
        # user logic has them (hil_ep; the board top hil_fpga builds without them).
        self._hold = getattr(dut, "cfg_ide_hold_o", None)
        self.config_discarded = 0
        self.cfg_mgmt_accesses = 0
        cocotb.start_soon(self._tlp_sink.run())
        cocotb.start_soon(self._route())
        if self._hold is not None:
            dut.cfg_mgmt_read_data_i.value = 0
            dut.cfg_mgmt_read_write_done_i.value = 0
            cocotb.start_soon(self._cfg_mgmt())

    # The function's ID goes to user logic as soon as the hard IP has it (the bus number
    # captured from a CfgWr0, §2.2.6.2), as cfg_completer_id_i: the Completer ID of its
    # completions and the Requester ID of its own requests, which it may send before any TLP
    # has reached it.
    @property
    def pcie_id(self) -> Any:
        return Endpoint.pcie_id.fget(self)  # type: ignore[attr-defined]

    @pcie_id.setter
    def pcie_id(self, value: Any) -> None:
        Endpoint.pcie_id.fset(self, value)  # type: ignore[attr-defined]
        self.dut.cfg_completer_id_i.value = int(self._pcie_id)

    # -- configuration space: the hard IP's own registers, then the user window ---------------
    def _held(self) -> bool:
        """A plain Configuration Request is discarded now (§6.33.4, ``cfg_ide_hold_o``)."""
        if self._hold is not None and self._hold.value == 1:
            self.config_discarded += 1
            return True
        return False

    async def read_config_register(self, reg: int) -> int:
        if self._held():
            return 0xFFFF_FFFF
        return await self.serve_config_read(reg)

    async def write_config_register(self, reg: int, data: int, mask: int) -> None:
        if not self._held():
            await self.serve_config_write(reg, data, mask)

    async def serve_config_read(self, reg: int) -> int:
        """A configuration read as the function serves it, whatever path it came by."""
        if reg in self.window:
            return await self._cfg_ext_read(reg)
        await self._cfg_ext_pulse_read(reg)
        value = await super().read_config_register(reg)
        if self.tee_io and reg == self.pcie_cap.offset + 1:  # Device Capabilities
            value |= DEVCAP_TEE_IO
        if self.ext_capabilities.list and reg == self.ext_capabilities.list[-1].offset:
            # The last hard-IP extended capability leads into the user window.
            value = (value & 0x000FFFFF) | ((self.window.start * 4) << 20)
        return value

    async def serve_config_write(self, reg: int, data: int, mask: int) -> None:
        """A configuration write as the function takes it, whatever path it came by."""
        await self._cfg_ext_write(reg, data, mask)
        if reg not in self.window:
            await super().write_config_register(reg, data, mask)

    async def _cfg_mgmt(self) -> None:
        """User logic's configuration management port: a read or write request holds until
        ``cfg_mgmt_read_write_done_i`` has been high for one rising edge (PG213)."""
        dut = self.dut
        read, write = dut.cfg_mgmt_read_o, dut.cfg_mgmt_write_o
        while True:
            if read.value != 1 and write.value != 1:
                await First(RisingEdge(read), RisingEdge(write))
            await self._falling
            reg = int(dut.cfg_mgmt_addr_o.value)
            if read.value == 1:
                dut.cfg_mgmt_read_data_i.value = await self.serve_config_read(reg)
            elif write.value == 1:
                data = int(dut.cfg_mgmt_write_data_o.value)
                mask = int(dut.cfg_mgmt_byte_enable_o.value)
                await self.serve_config_write(reg, data, mask)
            else:
                continue
            self.cfg_mgmt_accesses += 1
            await self._falling
            dut.cfg_mgmt_read_write_done_i.value = 1
            await self._falling
            dut.cfg_mgmt_read_write_done_i.value = 0

    # -- the Configuration Extend interface -----------------------------------------------------
    # Inputs change on the falling edge, half a cycle away from the rising edge that samples
    # them; a pulse is high for exactly one rising edge.  What user logic registered on that
    # edge is read on the next falling edge, so an access costs two edges and no more.
    async def _cfg_ext_pulse_read(self, reg: int) -> None:
        """Reads outside the window are announced too; user logic must not answer them."""
        async with self._lock:
            await self._falling
            self._drive(read=1, reg=reg)
            await self._falling
            self._drive(read=0, reg=reg)

    async def _cfg_ext_read(self, reg: int) -> int:
        async with self._lock:
            await self._falling
            self._drive(read=1, reg=reg)
            for _ in range(READ_RESPONSE_CYCLES):
                await self._falling
                self._drive(read=0, reg=reg)
                if self._read_valid.value == 1:
                    self.cfg_ext_reads += 1
                    return int(self._read_data.value)
            self.cfg_ext_timeouts += 1
            self.log.error("cfg_ext read of register %#x: no cfg_ext_read_data_valid", reg)
            return 0

    async def _cfg_ext_write(self, reg: int, data: int, mask: int) -> None:
        async with self._lock:
            await self._falling
            self._drive(write=1, reg=reg, data=data, be=mask)
            await self._falling
            self._drive(write=0, reg=reg, data=data, be=mask)
            self.cfg_ext_writes += 1

    def _drive(
        self, *, reg: int, read: int = 0, write: int = 0, data: int = 0, be: int = 0
    ) -> None:
        values = (
            ("read_received", read),
            ("write_received", write),
            ("register_number", reg & 0x3FF),
            ("function_number", self.function_num),
            ("write_data", data),
            ("write_byte_enable", be),
        )
        driven = self._driven
        for name, value in values:
            if driven.get(name) != value:
                self._inputs[name].value = value
                driven[name] = value

    # -- memory TLPs and the TLP streams ---------------------------------------------------------
    async def send_tlp(self, tlp: bytes) -> None:
        """Hand one TLP (wire-order bytes, prefixes included) to user logic."""
        async with self._tlp_lock:
            await self._tlp_src.send(bytes(tlp))

    async def recv_tlp(self, timeout_ns: float = 100_000) -> bytes | None:
        """The next TLP user logic sent that no cocotbext-pcie request is waiting for."""
        if not self._raw:
            self._raw_event.clear()
            await First(self._raw_event.wait(), Timer(timeout_ns, unit="ns"))
        return self._raw.popleft() if self._raw else None

    async def _route(self) -> None:
        """Completions for cocotbext-pcie's reads go to them; everything else (IDE TLPs, the
        function's own requests) to recv_tlp."""
        while True:
            packet = await self._tlp_sink.recv(timeout_ns=1e9)
            if packet is None:
                continue
            # Only a plain Completion (Type 01010b) answers a cocotbext-pcie read; a request the
            # function sends itself (its DMA engine's Memory Writes) goes to recv_tlp.
            is_cpl = len(packet) >= 12 and packet[0] & 0x1F == 0x0A
            waiter = self._cpl_wait.get(packet[6]) if is_cpl else None
            if waiter is not None:
                waiter[1].append(packet)
                waiter[0].set()
            else:
                self._raw.append(packet)
                self._raw_event.set()

    async def _mem_write(self, tlp: Tlp) -> None:
        await self.send_tlp(bytes(tlp.pack()))

    async def _mem_read(self, tlp: Tlp) -> None:
        event, box = Event(), []
        self._cpl_wait[tlp.tag] = (event, box)
        try:
            await self.send_tlp(bytes(tlp.pack()))
            await event.wait()
        finally:
            del self._cpl_wait[tlp.tag]
        cpl = Tlp.unpack(box[0])
        await self.send(cpl)

    async def _flr(self) -> None:
        """Initiate FLR (§6.6.2): user logic resets the function, then says it is done."""
        self.flr_count += 1
        self.dut.cfg_flr_in_process_i.value = 1
        for _ in range(FLR_DONE_CYCLES):
            await RisingEdge(self.clk)
            if int(self.dut.cfg_flr_done_o.value):
                break
        else:
            self.log.error("FLR: no cfg_flr_done_o from user logic")
        self.dut.cfg_flr_in_process_i.value = 0
        # The hard IP's own part of the function resets too: BAR0 and the Command register
        # (software restores them, as Linux's pci_restore_state does).
        self.bar[0] = self.bar[0] & 0xF
        self.bar[1] = 0
        self.memory_space_enable = False
        self.bus_master_enable = False
