"""The Linux host the virtual rig emulates: PCI/TSM, PCI/IDE and DOE as the kernel has them.

The rules are the v6.19 kernel's, from ``drivers/pci/tsm.c``, ``drivers/pci/ide.c``,
``drivers/pci/doe.c`` and ``drivers/virt/coco/tsm-core.c``; the one link TSM (``tsm0``) is
modelled on the first upstream one, AMD SEV-TIO (``drivers/crypto/ccp/sev-dev-tsm.c``), whose
firmware part (SPDM, the secured session, IDE_KM) is the project's own requester.  Each
function below names the kernel function it follows; the code is this project's.

The topology: one host bridge (``pciDDDD:00``), one Root Port (:class:`VirtualRootPort`, with
its own IDE capability, in memory) and below it the endpoint under test, whose configuration
space is reached through an async :class:`~hil.transport.ConfigSpace` (the simulation's socket,
or an in-memory device in tests).

Every store method raises :class:`OSError` with the errno a ``write(2)`` to that sysfs file gets.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..codec import ide_km as K
from ..codec.doe import PCI_SIG_VENDOR_ID, DoeType
from ..errors import DoeTimeout, PeerProtocolError
from ..host import ide_regs as I
from ..host.doe import LINUX_POLL_INTERVAL_S, DoeBusy, DoeError, DoeMailbox
from ..host.ide_km import IdeKmRequester
from ..host.pci import walk_ext_capabilities
from ..host.spdm import SpdmRequester, SpdmSession
from ..transport import AsyncioTimebase, ConfigSpace
from .bdf import Bdf
from .virtual_rp import RootPortConfigSpace, VirtualRootPort

__all__ = [
    "CMA",
    "SSESSION",
    "HostBridge",
    "IdeStream",
    "KernelMailbox",
    "LinkTsm",
    "PciDev",
    "PortIde",
    "VirtualKernel",
    "parse_tsm_id",
]

log = logging.getLogger("hil.lab.virtual_kernel")
T = TypeVar("T")

CMA = (PCI_SIG_VENDOR_ID, int(DoeType.CMA_SPDM))
SSESSION = (PCI_SIG_VENDOR_ID, int(DoeType.SECURED_CMA_SPDM))
DOE_CAP_ID = 0x002E
PCIE_CAP_ID = 0x10
PCI_EXP_DEVCAP_TEE = 1 << 30  # Device Capabilities: TEE-IO Supported
# PCI Express Capabilities register Device/Port Type
PCI_EXP_TYPE_ENDPOINT = 0x0
PCI_EXP_TYPE_ROOT_PORT = 0x4
PCI_EXP_TYPE_UPSTREAM = 0x5
PCI_EXP_TYPE_RC_END = 0x9
NR_IDE_STREAMS = 256  # pci_ide_init_host_bridge: the default pool of a host bridge

_TSM_ID = re.compile(rb"tsm[ \t\n\v\f\r]*(-?[0-9]+)")


def parse_tsm_id(buf: bytes) -> int | None:
    """What ``sscanf(buf, "tsm%d\\n", &id)`` stores, or None where it would not return 1.

    The kernel's vsscanf (lib/vsprintf.c) matches "tsm" literally, skips white space before
    the number, takes an optional '-' (never '+') and ignores whatever follows the digits.
    """
    m = _TSM_ID.match(buf)
    if m is None:
        return None
    value = int(m.group(1)) & 0xFFFFFFFF  # simple_strtol into an int
    return value - (1 << 32) if value >> 31 else value


@dataclass
class KernelMailbox:
    """One DOE mailbox the kernel created at enumeration (``pci_doe_create_mb``)."""

    offset: int
    mbx: DoeMailbox
    features: list[tuple[int, int]]


@dataclass
class PortIde:
    """What ``pci_ide_init`` keeps about a port whose ``ide_cap`` is set."""

    layout: I.IdeLayout
    cfg: bool  # ide_cfg: Selective IDE for Configuration Requests
    tee_limit: bool  # ide_tee_limit: TEE-Limited Stream supported
    nr_sel: int  # nr_sel_ide
    nr_mem: int  # nr_ide_mem: Address Association blocks per Selective block
    used: set[int] = field(default_factory=set)  # the device's ide_stream_ida

    def block(self, index: int) -> I.SelectiveBlock:
        return self.layout.selective_blocks[index]


@dataclass
class PciDev:
    """A ``struct pci_dev`` as far as PCI/TSM and PCI/IDE look at it."""

    bdf: Bdf
    config: ConfigSpace
    pcie_type: int | None = None
    devcap: int = 0
    ide: PortIde | None = None  # None: ide_cap is 0
    mailboxes: list[KernelMailbox] = field(default_factory=list)
    tsm: str = ""  # the TSM it is connected to (pdev->tsm)
    is_vf: bool = False

    @property
    def tee(self) -> bool:
        return bool(self.devcap & PCI_EXP_DEVCAP_TEE)

    def find_doe_mailbox(self, feature: tuple[int, int]) -> KernelMailbox | None:
        """``pci_find_doe_mailbox``: the first mailbox (by capability offset) with it."""
        for mb in sorted(self.mailboxes, key=lambda m: m.offset):
            if feature in mb.features:
                return mb
        return None


@dataclass
class Partner:
    """One end of a stream (``struct pci_ide_partner``)."""

    rid_start: int
    rid_end: int
    stream_index: int
    mem: tuple[int, int] | None = None  # (base, limit) bus addresses
    pref: tuple[int, int] | None = None
    default_stream: bool = False
    setup: bool = False
    enable: bool = False


@dataclass
class IdeStream:
    """A Selective IDE stream between the endpoint and its Root Port (``struct pci_ide``)."""

    host_bridge_stream: int  # H
    ep: Partner
    rp: Partner
    stream_id: int = -1
    name: str | None = None


@dataclass
class HostBridge:
    domain: int
    bus: int
    nr_ide_streams: int = NR_IDE_STREAMS
    pool: set[int] = field(default_factory=set)  # ide_stream_ida: H indices in use
    stream_ids: set[int] = field(default_factory=lambda: {I.RESERVED_STREAM_ID})
    links: dict[str, Bdf] = field(default_factory=dict)  # streamH.R.E -> the endpoint

    @property
    def name(self) -> str:
        return f"pci{self.domain:04x}:{self.bus:02x}"

    @property
    def available_secure_streams(self) -> int:
        return self.nr_ide_streams - len(self.pool)


class TsmFailure(OSError):
    """A TSM driver's ->connect() failed with this errno (it reaches write(2) unchanged)."""


def _fail(code: int, message: str) -> TsmFailure:
    return TsmFailure(code, message)


def _lowest_free(used: set[int], limit: int) -> int | None:
    """``ida_alloc_max``: the lowest free index below ``limit``."""
    for i in range(limit):
        if i not in used:
            return i
    return None


class VirtualKernel:
    """The emulated host: enumeration, the IDE core, the TSM core and its link TSMs."""

    def __init__(
        self,
        ep_bdf: Bdf,
        ep_config: ConfigSpace,
        root_port: VirtualRootPort,
        *,
        doe_timeout_s: float = 1.0,
        doe_poll_interval_s: float = LINUX_POLL_INTERVAL_S,
        trust_anchor: Any = None,
    ) -> None:
        self.host_bridge = HostBridge(ep_bdf.domain, 0)
        self.root_port = root_port
        self.rp = PciDev(root_port.bdf, RootPortConfigSpace(root_port))
        self.ep = PciDev(ep_bdf, ep_config)
        self.doe_timeout_s = doe_timeout_s
        self.doe_poll_interval_s = doe_poll_interval_s
        self.hidden_features: set[tuple[int, int]] = set()
        self.tsms: dict[int, LinkTsm] = {0: LinkTsm(self, "tsm0", trust_anchor)}
        self.events: list[str] = []  # what the kernel log would show, for tests and tools

    @staticmethod
    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coro)

    def klog(self, level: int, message: str) -> None:
        self.events.append(message)
        log.log(level, "%s", message)

    # -- enumeration ----------------------------------------------------------------------------
    async def enumerate(self) -> None:
        """What the PCI core does as it finds the Root Port, then the endpoint."""
        await self._probe_pcie(self.rp)
        await self.pci_ide_init(self.rp)
        await self.enumerate_endpoint()

    async def enumerate_endpoint(self) -> None:
        self.ep.ide = None
        self.ep.mailboxes = []
        await self._probe_pcie(self.ep)
        await self.pci_doe_init(self.ep)
        await self.pci_ide_init(self.ep)
        await self._window_for_endpoint()

    async def _probe_pcie(self, dev: PciDev) -> None:
        """The PCI Express capability: Device/Port Type and Device Capabilities."""
        ptr = (await dev.config.read32(0x34)) & 0xFC
        seen: set[int] = set()
        while 0x40 <= ptr < 0x100 and ptr not in seen:
            seen.add(ptr)
            header = await dev.config.read32(ptr)
            if header & 0xFF == PCIE_CAP_ID:
                dev.pcie_type = (header >> 20) & 0xF
                dev.devcap = await dev.config.read32(ptr + 4)
                return
            ptr = (header >> 8) & 0xFC
        dev.pcie_type = None

    async def _window_for_endpoint(self) -> None:
        """The Root Port's memory window covers the endpoint's BAR0 (as the PCI core sizes
        and assigns bridge windows around what is below them)."""
        low = await self.ep.config.read32(0x10)
        if low & 0x1:
            return  # I/O BAR: nothing to window
        base = low & ~0xF
        if (low >> 1) & 0x3 == 0x2:
            base |= (await self.ep.config.read32(0x14)) << 32
        if base and base < 1 << 32:
            self.root_port.set_mem_window(base, base)

    async def pci_doe_init(self, dev: PciDev) -> None:
        """``pci_doe_init``: a mailbox per DOE capability, each reset with Abort and its
        features discovered; one that fails is dropped and the next is tried."""
        for cap in await walk_ext_capabilities(dev.config):
            if cap.cap_id != DOE_CAP_ID:
                continue
            mbx = DoeMailbox(
                dev.config,
                cap.offset,
                AsyncioTimebase(),
                timeout_s=self.doe_timeout_s,
                poll_interval_s=self.doe_poll_interval_s,
            )
            try:
                await mbx.init()
            except PeerProtocolError as exc:
                self.klog(logging.ERROR, f"DOE: [{cap.offset:x}] failed to reset mailbox: {exc}")
                continue
            try:
                features = await mbx.discover()
            except PeerProtocolError as exc:
                self.klog(logging.ERROR, f"DOE: [{cap.offset:x}] failed to cache features: {exc}")
                continue
            features = [f for f in features if f not in self.hidden_features]
            dev.mailboxes.append(KernelMailbox(cap.offset, mbx, features))

    async def pci_ide_init(self, dev: PciDev) -> None:
        """``pci_ide_init`` (drivers/pci/ide.c), with the later fix that parks only the
        Selective blocks whose Control has Enable clear, keeping their other bits."""
        dev.ide = None
        if dev.pcie_type is None:
            return
        caps = [c for c in await walk_ext_capabilities(dev.config) if c.cap_id == I.IDE_CAP_ID]
        if not caps:
            return
        layout = await I.IdeLayout.read(dev.config, caps[0].offset)
        if not layout.capability.selective:
            return  # Link IDE alone: the kernel does not use the port
        # An endpoint's IDE is used only if its Root Port's is.
        if dev.pcie_type == PCI_EXP_TYPE_ENDPOINT and self.rp.ide is None:
            return
        nr_sel = layout.kernel_selective_blocks
        if nr_sel < len(layout.selective_blocks):
            self.klog(
                logging.INFO,
                f"PCI/IDE: {dev.bdf}: Unsupported Selective Stream {nr_sel} capability, "
                "SKIP the rest",
            )
        ide = PortIde(
            layout,
            cfg=layout.capability.sel_cfg,
            tee_limit=layout.capability.tee_limited,
            nr_sel=nr_sel,
            nr_mem=layout.selective_blocks[0].addr_blocks if nr_sel else 0,
        )
        hb = self.host_bridge
        claimed: list[int] = []
        for block in layout.selective_blocks[:nr_sel]:
            ctl = await dev.config.read32(block.control)
            if ctl & I.SEL_CTL_EN:
                sid = I.control_stream_id(ctl)
                self.klog(logging.INFO, f"PCI/IDE: {hb.name}: Stream ID {sid} active at init")
                if sid in hb.stream_ids:
                    self.klog(
                        logging.INFO, f"PCI/IDE: {hb.name}: Failed to claim active Stream ID {sid}"
                    )
                    hb.stream_ids.difference_update(claimed)
                    return
                hb.stream_ids.add(sid)
                claimed.append(sid)
                ide.used.add(block.index)
        for link in layout.link_blocks:
            ctl = await dev.config.read32(link.control)
            if ctl & I.SEL_CTL_EN:
                sid = I.control_stream_id(ctl)
                if sid in hb.stream_ids:
                    hb.stream_ids.difference_update(claimed)
                    return
                hb.stream_ids.add(sid)
                claimed.append(sid)
        for block in layout.selective_blocks[:nr_sel]:
            ctl = await dev.config.read32(block.control)
            if not ctl & I.SEL_CTL_EN:
                await dev.config.write32(
                    block.control, (ctl & 0x00FFFFFF) | I.RESERVED_STREAM_ID << 24
                )
        for link in layout.link_blocks:
            ctl = await dev.config.read32(link.control)
            if not ctl & I.SEL_CTL_EN:
                await dev.config.write32(link.control, (ctl & 0x00FFFFFF) | 0xFF << 24)
        dev.ide = ide

    # -- which devices get tsm/ -----------------------------------------------------------------
    def is_pci_tsm_pf0(self, dev: PciDev) -> bool:
        """``is_pci_tsm_pf0`` (include/linux/pci-tsm.h)."""
        return (
            dev.pcie_type in (PCI_EXP_TYPE_ENDPOINT, PCI_EXP_TYPE_UPSTREAM, PCI_EXP_TYPE_RC_END)
            and not dev.is_vf
            and (dev.ide is not None or dev.tee)
            and dev.bdf.function == 0
        )

    @property
    def link_tsm_count(self) -> int:
        return len(self.tsms)

    def tsm_group_visible(self, dev: PciDev) -> bool:
        """``pci_tsm_link_group_visible``: the tsm/ directory (and ``authenticated``)."""
        return (
            self.link_tsm_count > 0
            and dev.pcie_type is not None
            and (self.is_pci_tsm_pf0(dev) or bool(dev.tsm))
        )

    def tsm_attrs(self, dev: PciDev) -> list[str]:
        """``pci_tsm_attr_visible``: which files tsm/ holds."""
        if not self.tsm_group_visible(dev):
            return []
        pf0 = self.is_pci_tsm_pf0(dev)
        attrs = ["connect", "disconnect"] if pf0 else []
        if pf0 or (dev.tsm and dev.tee):
            attrs.append("dsm")
        if (pf0 and dev.tee) or (dev.tsm and dev.tee):
            attrs.append("bound")
        return attrs

    # -- tsm/connect and tsm/disconnect ---------------------------------------------------------
    def connect_store(self, buf: bytes) -> int:
        """``connect_store`` then ``pci_tsm_connect`` (drivers/pci/tsm.c), in their order."""
        tsm_id = parse_tsm_id(buf)
        if tsm_id is None:
            raise OSError(errno.EINVAL, "not tsm<N>")  # parsed before any lock
        dev = self.ep
        if dev.tsm:
            raise OSError(errno.EBUSY, f"already connected to {dev.tsm}")
        tsm = self.tsms.get(tsm_id)  # find_tsm_dev; every TSM here is a link TSM
        if tsm is None:
            raise OSError(errno.ENXIO, f"no link TSM tsm{tsm_id}")
        # ->probe(): pci_tsm_pf0_constructor needs the CMA mailbox; a NULL probe is ENXIO.
        mailbox = dev.find_doe_mailbox(CMA)
        if mailbox is None:
            self.klog(logging.WARNING, f"PCI/TSM: {dev.bdf}: TSM init failure, no CMA mailbox")
            raise OSError(errno.ENXIO, "no CMA DOE mailbox")
        self.run(tsm.connect(dev, mailbox))  # its errno goes to write(2) unchanged
        dev.tsm = tsm.name
        return len(buf)

    def disconnect_store(self, buf: bytes) -> int:
        """``disconnect_store`` / ``__pci_tsm_disconnect``: not connected is ENXIO whatever was
        written; the name is compared as ``sysfs_streq`` does (one trailing newline allowed)."""
        dev = self.ep
        if not dev.tsm:
            raise OSError(errno.ENXIO, "not connected")
        if not _sysfs_streq(buf, dev.tsm.encode()):
            raise OSError(errno.EINVAL, f"connected to {dev.tsm}")
        tsm = next(t for t in self.tsms.values() if t.name == dev.tsm)
        self.run(tsm.disconnect(dev))  # void: it cannot fail
        dev.tsm = ""
        return len(buf)

    # -- the IDE core (drivers/pci/ide.c) -------------------------------------------------------
    def ide_stream_alloc(self, dev: PciDev) -> IdeStream | None:
        """``pci_ide_stream_alloc``: H from the host bridge, R from the Root Port, E from the
        endpoint, each the lowest free; the partners' RID ranges and address windows."""
        if dev.pcie_type != PCI_EXP_TYPE_ENDPOINT or dev.ide is None or self.rp.ide is None:
            return None
        hb, rp_ide, ep_ide = self.host_bridge, self.rp.ide, dev.ide
        h = _lowest_free(hb.pool, hb.nr_ide_streams)
        r = _lowest_free(rp_ide.used, rp_ide.nr_sel)
        e = _lowest_free(ep_ide.used, ep_ide.nr_sel)
        if h is None or r is None or e is None:
            return None
        hb.pool.add(h)
        rp_ide.used.add(r)
        ep_ide.used.add(e)
        rp_rid = self.rp.bdf.requester_id
        ep_rid = dev.bdf.requester_id
        mem = self.root_port.mem_window
        return IdeStream(
            host_bridge_stream=h,
            # The endpoint's partner is the Root Port: its RID, and no address association.
            ep=Partner(rid_start=rp_rid, rid_end=rp_rid, stream_index=e),
            # The Root Port's partner is the endpoint (and its VFs: none here), with the
            # upstream bridge's memory window.
            rp=Partner(rid_start=ep_rid, rid_end=ep_rid, stream_index=r, mem=mem),
        )

    def ide_stream_free(self, ide: IdeStream) -> None:
        """``pci_ide_stream_free``: the endpoint's, the Root Port's, then the H index."""
        assert self.ep.ide is not None and self.rp.ide is not None
        self.ep.ide.used.discard(ide.ep.stream_index)
        self.rp.ide.used.discard(ide.rp.stream_index)
        self.host_bridge.pool.discard(ide.host_bridge_stream)

    def _port(self, dev: PciDev, ide: IdeStream) -> tuple[PortIde, Partner]:
        assert dev.ide is not None
        return dev.ide, (ide.ep if dev is self.ep else ide.rp)

    @staticmethod
    def _control(port: PortIde, partner: Partner, ide: IdeStream, enable: bool) -> int:
        """``set_ide_sel_ctl``: the whole Control register; every other field 0 (AES-GCM-256)."""
        value = (ide.stream_id & 0xFF) << 24
        if partner.default_stream:
            value |= I.SEL_CTL_DEFAULT
        if port.cfg:
            value |= I.SEL_CTL_CFG_EN
        if port.tee_limit:
            value |= I.SEL_CTL_TEE_LIMITED
        if enable:
            value |= I.SEL_CTL_EN
        return value

    async def ide_stream_setup(self, dev: PciDev, ide: IdeStream) -> None:
        """``pci_ide_stream_setup``: RID Association 1 then 2, the address blocks (used ones,
        then the rest zeroed), then Control with Enable 0 so the Stream ID is there before keys."""
        port, partner = self._port(dev, ide)
        block = port.block(partner.stream_index)
        cfg = dev.config
        await cfg.write32(block.rid1, (partner.rid_end & 0xFFFF) << I.RID1_LIMIT_SHIFT)
        await cfg.write32(block.rid2, I.RID2_VALID | (partner.rid_start & 0xFFFF) << 8)
        used = 0
        for window in (partner.mem, partner.pref):
            if window is None or used >= port.nr_mem:
                continue
            base, limit = window
            if limit <= base:
                continue
            await cfg.write32(block.addr1(used), I.addr1_value(base, limit))
            await cfg.write32(block.addr2(used), limit >> 32)
            await cfg.write32(block.addr3(used), base >> 32)
            used += 1
        for j in range(used, port.nr_mem):
            for reg in (block.addr1(j), block.addr2(j), block.addr3(j)):
                await cfg.write32(reg, 0)
        await cfg.write32(block.control, self._control(port, partner, ide, enable=False))
        partner.setup = True

    async def ide_stream_enable(self, dev: PciDev, ide: IdeStream) -> None:
        """``pci_ide_stream_enable``: Enable set, Status read once; not Secure is ENXIO (and
        Enable stays set: clearing it is the caller's business)."""
        port, partner = self._port(dev, ide)
        block = port.block(partner.stream_index)
        await dev.config.write32(block.control, self._control(port, partner, ide, enable=True))
        partner.enable = True
        state = (await dev.config.read32(block.status)) & I.STATE_MASK
        if state != I.STATE_SECURE:
            raise OSError(errno.ENXIO, f"{dev.bdf} stream {block.index} state {state:04b}")

    async def ide_stream_disable(self, dev: PciDev, ide: IdeStream) -> None:
        """``pci_ide_stream_disable``: Control 0, nothing else."""
        port, partner = self._port(dev, ide)
        await dev.config.write32(port.block(partner.stream_index).control, 0)
        partner.enable = False

    async def ide_stream_teardown(self, dev: PciDev, ide: IdeStream) -> None:
        """``pci_ide_stream_teardown``: Control 0, every address block 0, RID 2 then RID 1."""
        port, partner = self._port(dev, ide)
        block = port.block(partner.stream_index)
        cfg = dev.config
        await cfg.write32(block.control, 0)
        for j in range(port.nr_mem):
            for reg in (block.addr1(j), block.addr2(j), block.addr3(j)):
                await cfg.write32(reg, 0)
        await cfg.write32(block.rid2, 0)
        await cfg.write32(block.rid1, 0)
        partner.setup = False

    def ide_stream_register(self, ide: IdeStream) -> None:
        """``pci_ide_stream_register``: reserve the Stream ID at the host bridge, then the
        ``streamH.R.E`` link to the endpoint."""
        hb = self.host_bridge
        if not 0 <= ide.stream_id <= 255:
            self.klog(logging.ERROR, f"PCI/IDE: Setup fail: Invalid Stream ID: {ide.stream_id}")
            raise OSError(errno.ENXIO, f"invalid Stream ID {ide.stream_id}")
        if ide.stream_id in hb.stream_ids:
            self.klog(logging.ERROR, f"PCI/IDE: Setup fail: Stream ID {ide.stream_id} in use")
            raise OSError(errno.EBUSY, f"Stream ID {ide.stream_id} in use")
        hb.stream_ids.add(ide.stream_id)
        ide.name = f"stream{ide.host_bridge_stream}.{ide.rp.stream_index}.{ide.ep.stream_index}"
        hb.links[ide.name] = self.ep.bdf

    def ide_stream_unregister(self, ide: IdeStream) -> None:
        """``pci_ide_stream_unregister``: the link goes, the Stream ID is freed."""
        hb = self.host_bridge
        if ide.name is not None:
            hb.links.pop(ide.name, None)
            ide.name = None
        hb.stream_ids.discard(ide.stream_id)


def _sysfs_streq(buf: bytes, name: bytes) -> bool:
    """``sysfs_streq``: equal, where each side may end in one newline."""
    return buf.removesuffix(b"\n") == name.removesuffix(b"\n")


@dataclass
class _Connection:
    """What the link TSM holds for a connected device."""

    mailbox: KernelMailbox
    ide: IdeStream | None = None
    spdm: SpdmRequester | None = None
    session: SpdmSession | None = None


class LinkTsm:
    """A link TSM driver modelled on SEV-TIO (drivers/crypto/ccp/sev-dev-tsm.c); its
    firmware's part (SPDM, the session, IDE_KM to the endpoint, the Root Port's keys) is the
    project's requester."""

    def __init__(self, kernel: VirtualKernel, name: str, trust_anchor: Any = None) -> None:
        self.kernel = kernel
        self.name = name
        self.trust_anchor = trust_anchor
        self.connections: dict[Bdf, _Connection] = {}
        self.enable_failures = 0  # streams_enable results it ignored, as SEV-TIO does
        self.key_progs = 0  # KEY_PROG requests its firmware part sent

    async def connect(self, dev: PciDev, mailbox: KernelMailbox) -> None:
        """``dsm_connect``."""
        k = self.kernel
        # The CMA mailbox must also carry secured CMA: the first SSESSION mailbox is this one.
        if dev.find_doe_mailbox(SSESSION) is not mailbox:
            k.klog(logging.ERROR, f"{dev.bdf}: CMA DOE MB must support SSESSION")
            raise _fail(errno.EFAULT, "the CMA mailbox lacks Secured CMA/SPDM")
        ide = k.ide_stream_alloc(dev)  # stream_alloc(tc 0): NULL is EFAULT, unlogged
        if ide is None:
            raise _fail(errno.EFAULT, "no IDE stream: the endpoint or its Root Port lacks IDE")
        ide.stream_id = ide.host_bridge_stream  # SEV-TIO: the Stream ID is the H index
        conn = _Connection(mailbox, ide)
        port_number = (await k.rp.config.read32(0x4C)) >> 24  # dsm_create's root port id
        k.klog(logging.DEBUG, f"{dev.bdf}: TIO_DEV_CREATE rp {port_number} seg {dev.bdf.domain}")
        try:
            # streams_setup: the endpoint is the Default Stream's partner; EP first, then RP.
            ide.ep.default_stream = True
            await k.ide_stream_setup(dev, ide)
            await k.ide_stream_setup(k.rp, ide)
            await self._tio_connect(dev, conn)
        except Exception as exc:  # reclaim, streams_disable, streams_teardown; then the errno
            await self._undo(dev, conn)
            if isinstance(exc, PeerProtocolError):
                raise _errno_for(exc) from None
            raise
        await self._streams_enable(dev, ide)
        try:
            k.ide_stream_register(ide)  # the link appears only now, after enable
        except OSError:
            await self._undo(dev, conn)
            raise
        self.connections[dev.bdf] = conn

    async def _tio_connect(self, dev: PciDev, conn: _Connection) -> None:
        """TIO_DEV_CONNECT: the platform's firmware authenticates the device, opens a secured
        session, keys the endpoint over IDE_KM and the Root Port directly (K_SET_GO: receivers
        before transmitters on each port)."""
        assert conn.ide is not None
        ide, k = conn.ide, self.kernel
        req = SpdmRequester(conn.mailbox.mbx, trust_anchor=self.trust_anchor)
        conn.spdm = req
        await req.authenticate()
        conn.session = await req.key_exchange()
        km = IdeKmRequester(req, conn.session)
        query = await km.query()
        await self._downgrade_check(dev, query)
        assert k.root_port.ide is not None
        rp_ide = k.root_port.ide
        for slot in K.KeySlot.all(0):
            key = os.urandom(32)
            self.key_progs += 1
            ack = await km.key_prog(ide.stream_id, slot, key)
            if ack.status != K.KpAckStatus.SUCCESS:
                raise PeerProtocolError(f"KEY_PROG {slot} answered KP_ACK status {ack.status:#04x}")
            # The Root Port's slot for the other direction gets the same key.
            mirror = K.KeySlot(slot.key_set, slot.direction ^ 1, slot.sub_stream)
            wire = K.key_to_wire(key) + K.ifv_to_wire(1)
            words = [int.from_bytes(wire[i : i + 4], "little") for i in range(0, len(wire), 4)]
            rp_ide.program_key(ide.rp.stream_index, _slot_code(mirror), words)
        await km.go_all(ide.stream_id, 0)
        for slot in sorted(K.KeySlot.all(0), key=lambda s: s.direction != K.KeyDirection.RX):
            if not rp_ide.key_set_go(ide.rp.stream_index, slot.encode()):
                raise _fail(errno.EIO, f"the Root Port refused K_SET_GO {slot}")

    async def _downgrade_check(self, dev: PciDev, query: K.QueryResp) -> None:
        """PCIe 6.x §6.33.3: QUERY_RESP must report what configuration space holds."""
        assert dev.ide is not None
        layout = dev.ide.layout
        cap = await dev.config.read32(layout.offset + 4)
        if query.capability.value != cap:
            raise PeerProtocolError(
                f"QUERY_RESP IDE Capability {query.capability.value:#010x}, config {cap:#010x}"
            )
        for block, reported in zip(layout.selective_blocks, query.selective_blocks, strict=False):
            ctl = await dev.config.read32(block.control)
            if reported.control != ctl:
                raise PeerProtocolError(
                    f"QUERY_RESP stream {block.index} Control {reported.control:#010x}, "
                    f"config {ctl:#010x}"
                )

    async def _streams_enable(self, dev: PciDev, ide: IdeStream) -> None:
        """``streams_enable``: the Root Port first, then the endpoint; an endpoint that is not
        Secure disables the Root Port again.  SEV-TIO ignores the outcome: so does this.
        (PCIe 6.x §6.33 asks for the endpoint first when the Root Port's stream carries
        Configuration Requests; the kernel's order is followed here, as the reference.)"""
        k = self.kernel
        try:
            await k.ide_stream_enable(k.rp, ide)
        except OSError as exc:
            self.enable_failures += 1
            k.klog(logging.WARNING, f"{self.name}: Root Port stream not Secure ({exc}); ignored")
            return
        try:
            await k.ide_stream_enable(dev, ide)
        except OSError as exc:
            self.enable_failures += 1
            k.klog(logging.WARNING, f"{self.name}: endpoint stream not Secure ({exc}); ignored")
            await k.ide_stream_disable(k.rp, ide)

    async def _end_session(self, conn: _Connection) -> None:
        """TIO_DEV_DISCONNECT / reclaim: END_SESSION; a device that does not answer (reset,
        gone) does not stop the host from forgetting the session."""
        req, session, conn.spdm, conn.session = conn.spdm, conn.session, None, None
        if req is None or session is None or not session.open:
            return
        try:
            await req.end_session(session)
        except PeerProtocolError as exc:
            self.kernel.klog(logging.WARNING, f"{self.name}: END_SESSION failed: {exc}; forced")

    async def _undo(self, dev: PciDev, conn: _Connection) -> None:
        """What a failed connect undoes: reclaim, streams_disable, streams_teardown, free."""
        k = self.kernel
        await self._end_session(conn)
        ide = conn.ide
        if ide is None:
            return
        for port in (dev, k.rp):
            await k.ide_stream_disable(port, ide)
        for port in (dev, k.rp):
            await k.ide_stream_teardown(port, ide)
        k.ide_stream_free(ide)
        conn.ide = None

    async def disconnect(self, dev: PciDev) -> None:
        """``dsm_disconnect``: the session ends first, then Control 0 on the endpoint and the
        Root Port, the link and the Stream ID go, then teardown and the indices are freed."""
        k = self.kernel
        conn = self.connections.pop(dev.bdf, None)
        if conn is None:
            return
        await self._end_session(conn)
        ide = conn.ide
        if ide is None:
            return
        await k.ide_stream_disable(dev, ide)
        await k.ide_stream_disable(k.rp, ide)
        k.ide_stream_unregister(ide)
        await k.ide_stream_teardown(dev, ide)
        await k.ide_stream_teardown(k.rp, ide)
        k.ide_stream_free(ide)


def _slot_code(slot: K.KeySlot) -> int:
    """The key slot's number in the hardware's firmware map (4 x sub-stream + 2 x RxTxB + set)."""
    return slot.sub_stream * 4 + slot.direction * 2 + slot.key_set


def _errno_for(exc: PeerProtocolError) -> TsmFailure:
    """The errno a failed firmware exchange reaches user space with: a DOE failure is what
    ``pci_doe`` returns (EBUSY for a mailbox that stayed Busy, else EIO); a device that broke
    SPDM or IDE_KM is a failed firmware command, EINVAL (sev-dev-tio.c, sev_tio_spdm_cmd)."""
    if isinstance(exc, DoeBusy):
        return _fail(errno.EBUSY, str(exc))
    if isinstance(exc, DoeTimeout | DoeError):
        return _fail(errno.EIO, str(exc))
    return _fail(errno.EINVAL, str(exc))
