"""Transports for the simulated rig: configuration space through cocotbext-pcie's root complex
(CfgRd0/CfgWr0 TLPs) or straight into the hard-IP model's configuration space, and simulated
time."""

from __future__ import annotations

from cocotb.triggers import Timer
from cocotb.utils import get_sim_time
from cocotbext.pcie.core import RootComplex
from cocotbext.pcie.core.utils import PcieId

from ..errors import RigError
from ..transport import ConfigSpace, Timebase, TlpPort
from .hardip import UspHardIp

__all__ = ["CocotbTimebase", "HardIpConfigSpace", "HardIpTlpPort", "RcConfigSpace"]


class CocotbTimebase(Timebase):
    """Simulated time: a DOE deadline of 1 s is 1 s of the device's time."""

    def now(self) -> float:
        return get_sim_time("ps") * 1e-12

    async def sleep(self, seconds: float) -> None:
        await Timer(max(1, round(seconds * 1e12)), "ps")


class RcConfigSpace(ConfigSpace):
    """A function's configuration space through the root complex: CfgRd/CfgWr TLPs."""

    def __init__(self, rc: RootComplex, function: PcieId, *, timeout_ns: int = 100_000) -> None:
        self.rc = rc
        self.function = function
        self.timeout_ns = timeout_ns
        self.accesses = 0

    async def read32(self, offset: int) -> int:
        self.check_offset(offset)
        self.accesses += 1
        data = await self.rc.config_read(self.function, offset, 4, self.timeout_ns, "ns")
        return int.from_bytes(data, "little")

    async def write32(self, offset: int, value: int) -> None:
        self.check_offset(offset)
        self.accesses += 1
        await self.rc.config_write(
            self.function, offset, (value & 0xFFFFFFFF).to_bytes(4, "little"), self.timeout_ns, "ns"
        )

    async def write_bytes(self, offset: int, data: bytes) -> None:
        self.check_offset(offset, len(data))
        if not 1 <= len(data) <= 2:
            raise RigError("a partial config write is 1 or 2 bytes")
        self.accesses += 1
        await self.rc.config_write(self.function, offset, data, self.timeout_ns, "ns")


class HardIpConfigSpace(ConfigSpace):
    """The function's configuration space as the hard-IP model serves a configuration request,
    without the request: the hard IP's own registers from the model, the user window from the
    HDL over ``cfg_ext_*`` (every access announced there, as :class:`RcConfigSpace`'s are).

    It is what a CfgRd0/CfgWr0 TLP reaches once the hard IP has decoded it, so the endpoint
    sees the same register accesses with the same byte enables; what it leaves out is the TLP
    encoding, routing and completion, which :class:`RcConfigSpace` keeps.
    """

    def __init__(self, hardip: UspHardIp) -> None:
        self.hardip = hardip
        self.accesses = 0

    async def read32(self, offset: int) -> int:
        self.check_offset(offset)
        self.accesses += 1
        return await self.hardip.read_config_register(offset // 4)

    async def write32(self, offset: int, value: int) -> None:
        self.check_offset(offset)
        self.accesses += 1
        await self.hardip.write_config_register(offset // 4, value & 0xFFFFFFFF, 0xF)

    async def write_bytes(self, offset: int, data: bytes) -> None:
        self.check_offset(offset, len(data))
        if not 1 <= len(data) <= 2:
            raise RigError("a partial config write is 1 or 2 bytes")
        self.accesses += 1
        shift = offset % 4
        value = int.from_bytes(data, "little") << (8 * shift)
        mask = ((1 << len(data)) - 1) << shift
        await self.hardip.write_config_register(offset // 4, value, mask)


class HardIpTlpPort(TlpPort):
    """TLPs straight into the hard-IP model's streams (IDE TLPs need their prefix, which
    cocotbext-pcie's TLPs cannot carry)."""

    def __init__(self, hardip: UspHardIp) -> None:
        self.hardip = hardip
        self.sent = 0
        self.received = 0

    async def send(self, tlp: bytes) -> None:
        self.sent += 1
        await self.hardip.send_tlp(tlp)

    async def recv(self, timeout_s: float) -> bytes | None:
        tlp = await self.hardip.recv_tlp(timeout_ns=max(1.0, timeout_s * 1e9))
        if tlp is not None:
            self.received += 1
        return tlp
