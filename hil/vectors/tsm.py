"""Kernel TSM vectors: what a lab needs to trust a host's TSM with a device (v6.19 sysfs ABI).

Each vector drives the host only through its sysfs files (``tsm/connect``, ``tsm/disconnect``)
and looks at the result where a lab can see it: the host bridge's ``streamH.R.E`` links and
``available_secure_streams``, the device's Selective IDE Stream registers (its configuration
space; never its DOE mailbox while it is connected) and the Root Port's (its ``config`` file
under ``/sys/devices``, read only).  Whether a stream was set up is decided from the links and
the registers: ``available_secure_streams`` exists on every host bridge of a kernel with
``CONFIG_PCI_IDE`` and says nothing by being there.

The register states are those the kernel's IDE core leaves (drivers/pci/ide.c):
``pci_ide_stream_setup`` and ``pci_ide_stream_enable`` after a connect, Enable set and the
state Secure on both ends; ``pci_ide_stream_teardown`` after a disconnect, Control, the address
blocks and both RID Association registers 0.  Register offsets come from each capability's own
layout (:mod:`hil.host.ide_regs`).

What a lab host cannot do to a device by itself comes from the rig when it can: the device's
firmware on the lab controller counts sessions and key programming and can fail IDE_KM
(:mod:`hil.lab.firmware_tap`), the virtual rig's host can find the device again without Secured
CMA; where the rig cannot, the vector is not applicable and says why.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from ..errors import HilError, NotApplicable
from ..host import ide_regs as I
from ..host.pci import find_ext_capabilities
from ..lab.sysfs import SysfsError
from ..lab.tsm import KernelTsm, TsmError
from ..transport import ConfigSpace
from ._model import VectorContext, vector

_KERNEL = "Linux v6.19 drivers/pci/tsm.c"
_IDE = "drivers/pci/ide.c"
_SEV = "drivers/crypto/ccp/sev-dev-tsm.c"


# -- what the host and the device show -------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One Selective IDE Stream register block as read."""

    index: int
    control: int
    status: int
    association: tuple[int, ...]  # RID Association 1, 2, then every address register

    @property
    def enabled(self) -> bool:
        return bool(self.control & I.SEL_CTL_EN)

    @property
    def state(self) -> int:
        return self.status & I.STATE_MASK

    @property
    def stream_id(self) -> int:
        return I.control_stream_id(self.control)

    @property
    def torn_down(self) -> bool:
        """What ``pci_ide_stream_teardown`` leaves: Control and every association 0."""
        return self.control == 0 and not any(self.association)


@dataclass(frozen=True)
class View:
    links: frozenset[tuple[int, int, int]]
    available: int | None
    ep: tuple[Block, ...]
    rp: tuple[Block, ...] | None  # None: the Root Port's registers are out of reach
    rp_why: str = ""


async def _blocks(config: ConfigSpace, offset: int) -> tuple[Block, ...]:
    layout = await I.IdeLayout.read(config, offset)
    out = []
    for b in layout.selective_blocks:
        assoc = tuple([await config.read32(r) for r in b.association_registers()])
        out.append(
            Block(b.index, await config.read32(b.control), await config.read32(b.status), assoc)
        )
    return tuple(out)


async def _ide_offset(config: ConfigSpace) -> int | None:
    caps = await find_ext_capabilities(config, I.IDE_CAP_ID)
    return caps[0].offset if caps else None


async def _view(ctx: VectorContext, tsm: KernelTsm) -> View:
    ep_offset = await _ide_offset(ctx.config)
    ep = await _blocks(ctx.config, ep_offset) if ep_offset is not None else ()
    rp: tuple[Block, ...] | None = None
    why = ""
    try:
        port = await tsm.root_port_config()
        if port is None:
            why = "no Root Port found above the device in /sys/devices"
        else:
            rp_offset = await _ide_offset(port)
            if rp_offset is None:
                why = f"the Root Port ({port.path.parent.name}) has no IDE capability"
            else:
                rp = await _blocks(port, rp_offset)
    except HilError as exc:
        why = f"the Root Port's config space: {exc}"
    return View(frozenset(tsm.streams()), tsm.available_secure_streams(), ep, rp, why)


def _tsm(ctx: VectorContext) -> tuple[KernelTsm, str]:
    """The host's TSM files and the TSM to use (the rig's ``[lab] tsm``, else the first)."""
    tsm: KernelTsm = ctx.resource("tsm")
    names = tsm.tsms()
    ctx.expect(names, "no TSM under /sys/class/tsm")
    want = ctx.settings.get("tsm") or names[0]
    ctx.expect(want in names, f"TSM {want} is not among {names}")
    if not tsm.has_tsm_dir():
        raise NotApplicable(
            f"{tsm.bdf} has no tsm/ directory: the kernel does not see a TSM PF0 (function 0 "
            "with DEVCAP.TEE, or with IDE under a Root Port with IDE)"
        )
    return tsm, want


def _start_disconnected(tsm: KernelTsm) -> None:
    """A connection left by an earlier run is undone first."""
    stale = tsm.connected()
    if stale:
        tsm.disconnect(stale)


def _other(name: str) -> str:
    return f"tsm{int(name[3:]) + 1}"


async def _expect_errno(ctx: VectorContext, fn: Any, code: int, what: str) -> None:
    try:
        fn()
    except TsmError as exc:
        ctx.expect(
            exc.errno == code,
            f"{what}: {errno.errorcode.get(exc.errno or 0)} ({exc}), "
            f"expected {errno.errorcode[code]}",
        )
        return
    ctx.expect(False, f"{what}: succeeded, expected {errno.errorcode[code]}")


@dataclass(frozen=True)
class Stream:
    """The stream a connect set up: its link's indices and its Stream ID."""

    h: int
    r: int
    e: int
    stream_id: int


async def _check_connected(
    ctx: VectorContext, tsm: KernelTsm, name: str, before: View
) -> Stream | None:
    """The ABI after a connect, and the stream it set up if it set one up (None: none)."""
    ctx.expect(tsm.connected() == name, f"tsm/connect reads {tsm.connected()!r}, not {name}")
    ctx.expect(tsm.authenticated(), "authenticated does not name the TSM after connect")
    ctx.expect(tsm.dsm() == str(tsm.bdf), f"tsm/dsm reads {tsm.dsm()!r}")
    after = await _view(ctx, tsm)
    new = after.links - before.links
    enabled = [b for b in after.ep if b.enabled]
    if not new and not enabled:
        ctx.measure("ide_streams_set_up", 0, "")
        return None  # a TSM may connect without IDE: nothing more to see
    ctx.measure("ide_streams_set_up", len(new), "", low=1, high=1)
    ctx.expect(
        len(new) == 1,
        f"connect enabled device stream(s) {[b.index for b in enabled]} but added "
        f"{len(new)} streamH.R.E links ({sorted(new)})",
    )
    h, r, e = next(iter(new))
    if before.available is not None and after.available is not None:
        taken = before.available - after.available
        ctx.measure("secure_streams_taken", taken, "", low=1, high=1)
    ctx.expect(e < len(after.ep), f"link stream{h}.{r}.{e}: the device has {len(after.ep)} blocks")
    block = after.ep[e]
    ctx.expect(block.enabled, f"device stream block {e} (the link's E) is not enabled")
    ctx.expect(
        block.state == I.STATE_SECURE,
        f"the device's stream block {e} is {block.state:04b}, not Secure (0010b), after a "
        "successful connect: this is what catches a TSM that reports success with an "
        "Insecure stream (SEV-TIO ignores the result of enabling the streams)",
    )
    ctx.expect(block.association[1] & I.RID2_VALID, f"device block {e}: RID Association V is 0")
    ctx.expect(block.stream_id != I.RESERVED_STREAM_ID, "the stream uses Stream ID 255")
    if after.rp is None:
        ctx.measure("root_port_checked", 0, "")
        ctx.log.info("Root Port not checked: %s", after.rp_why)
    else:
        ctx.measure("root_port_checked", 1, "")
        ctx.expect(r < len(after.rp), f"link stream{h}.{r}.{e}: the Root Port has no block {r}")
        port = after.rp[r]
        ctx.expect(
            port.enabled and port.state == I.STATE_SECURE,
            f"the Root Port's block {r} is {'enabled' if port.enabled else 'not enabled'}, "
            f"state {port.state:04b}: its end of the stream is not Secure",
        )
        ctx.expect(
            port.stream_id == block.stream_id,
            f"Stream ID {port.stream_id} at the Root Port, {block.stream_id} at the device",
        )
    return Stream(h, r, e, block.stream_id)


async def _check_torn_down(
    ctx: VectorContext, tsm: KernelTsm, before: View, stream: Stream | None, what: str
) -> None:
    """After ``what`` (a disconnect, a failed connect): the ABI empty, no link or pool slot
    left, and no stream register half-programmed (each block as before, or torn down)."""
    ctx.expect(tsm.connected() == "", f"tsm/connect reads {tsm.connected()!r} after {what}")
    ctx.expect(not tsm.authenticated(), f"authenticated still set after {what}")
    after = await _view(ctx, tsm)
    ctx.expect(after.links == before.links, f"stream links after {what}: {sorted(after.links)}")
    ctx.expect(
        after.available == before.available,
        f"available_secure_streams {after.available} after {what}, was {before.available}",
    )
    ends = [("device", before.ep, after.ep)]
    if before.rp is not None and after.rp is not None:
        ends.append(("Root Port", before.rp, after.rp))
    for who, was, now in ends:
        for old, new in zip(was, now, strict=False):
            ctx.expect(not new.enabled or old.enabled, f"{who} block {new.index} left enabled")
            used = stream is not None and new.index == (stream.e if who == "device" else stream.r)
            if used:
                ctx.expect(
                    new.torn_down,
                    f"{who} block {new.index} after {what}: Control {new.control:#010x}, "
                    f"associations {[hex(v) for v in new.association]}; pci_ide_stream_teardown "
                    "leaves them all 0",
                )
            else:
                ctx.expect(
                    new == old or new.torn_down,
                    f"{who} block {new.index} half-programmed after {what}: Control "
                    f"{new.control:#010x} (was {old.control:#010x}), associations "
                    f"{[hex(v) for v in new.association]}",
                )


def _firmware(ctx: VectorContext, why: str) -> Any:
    """The device firmware's side on the lab controller (counters, IDE_KM fault)."""
    try:
        host = ctx.resource("telemetry")
    except NotApplicable:
        host = None
    if host is None or not hasattr(host, "firmware_counters"):
        raise NotApplicable(f"{why}: needs the device's firmware on the lab controller")
    return host


# -- the vectors ---------------------------------------------------------------------------------
@vector(
    "tsm.connect.sets_up_stream",
    title="tsm/connect authenticates the DSM and leaves a Secure stream at both ends",
    spec=f"{_KERNEL} (connect_store, pci_tsm_connect); {_IDE} (pci_ide_stream_setup, "
    f"pci_ide_stream_enable, pci_ide_stream_register); {_SEV} (dsm_connect, streams_enable); "
    "PCIe 6.x §6.33.1 (Insecure/Secure), §6.33.3 (IDE_KM), §7.9.26.5 (stream registers)",
    needs={"tsm"},
)
async def connect_sets_up_stream(ctx: VectorContext) -> None:
    tsm, name = _tsm(ctx)
    _start_disconnected(tsm)
    ctx.expect(not tsm.authenticated(), "authenticated before connect")
    before = await _view(ctx, tsm)
    tsm.connect(name)
    try:
        await _check_connected(ctx, tsm, name, before)
        try:  # the lab path must not touch the DOE mailbox the kernel now owns
            await ctx.doe()
        except SysfsError:
            pass
        else:
            ctx.expect(False, "DOE access was allowed while the device is TSM-connected")
    finally:
        tsm.disconnect(name)


@vector(
    "tsm.disconnect.tears_down",
    title="tsm/disconnect removes the link, refills the pool and tears both ends down",
    spec=f"{_KERNEL} (disconnect_store, __pci_tsm_disconnect); {_IDE} "
    f"(pci_ide_stream_disable, pci_ide_stream_teardown, pci_ide_stream_unregister); {_SEV} "
    "(dsm_disconnect); PCIe 6.x §7.9.26.5",
    needs={"tsm"},
)
async def disconnect_tears_down(ctx: VectorContext) -> None:
    tsm, name = _tsm(ctx)
    _start_disconnected(tsm)
    before = await _view(ctx, tsm)
    tsm.connect(name)
    try:
        stream = await _check_connected(ctx, tsm, name, before)
    finally:
        tsm.disconnect(name)
    ctx.expect(tsm.dsm() == "", f"tsm/dsm reads {tsm.dsm()!r} after disconnect")
    await _check_torn_down(ctx, tsm, before, stream, "disconnect")


@vector(
    "tsm.connect.twice_busy",
    title="a second connect while connected is EBUSY, checked before the TSM name",
    spec=f"{_KERNEL} (connect_store: pdev->tsm before find_tsm_dev)",
    needs={"tsm"},
)
async def connect_twice_busy(ctx: VectorContext) -> None:
    tsm, name = _tsm(ctx)
    _start_disconnected(tsm)
    tsm.connect(name)
    try:
        first = await _view(ctx, tsm)
        await _expect_errno(ctx, lambda: tsm.connect(name), errno.EBUSY, "a second connect")
        missing = f"tsm{max(int(n[3:]) for n in tsm.tsms()) + 7}"
        await _expect_errno(
            ctx, lambda: tsm.connect(missing), errno.EBUSY, f"connect {missing} while connected"
        )
        ctx.expect(tsm.connected() == name, f"tsm/connect reads {tsm.connected()!r}")
        again = await _view(ctx, tsm)
        ctx.expect(again.links == first.links, "a refused connect changed the stream links")
        ctx.expect(again.ep == first.ep, "a refused connect changed the device's stream registers")
    finally:
        tsm.disconnect(name)


@vector(
    "tsm.disconnect.refusals",
    title="disconnect while not connected is ENXIO whatever was written; a wrong name EINVAL",
    spec=f"{_KERNEL} (disconnect_store, __pci_tsm_disconnect: sysfs_streq)",
    needs={"tsm"},
)
async def disconnect_refusals(ctx: VectorContext) -> None:
    tsm, name = _tsm(ctx)
    _start_disconnected(tsm)
    await _expect_errno(ctx, lambda: tsm.disconnect(name), errno.ENXIO, "disconnect unconnected")
    await _expect_errno(
        ctx, lambda: tsm.store("disconnect", "garbage\n"), errno.ENXIO, "disconnect garbage"
    )
    tsm.connect(name)
    try:
        before = await _view(ctx, tsm)
        other = _other(name)
        await _expect_errno(ctx, lambda: tsm.disconnect(other), errno.EINVAL, f"disconnect {other}")
        ctx.expect(tsm.connected() == name, "a refused disconnect disconnected the device")
        after = await _view(ctx, tsm)
        ctx.expect(after.links == before.links, "a refused disconnect removed a stream link")
        ctx.expect(after.ep == before.ep, "a refused disconnect changed the device's registers")
    finally:
        tsm.disconnect(name)
    await _expect_errno(ctx, lambda: tsm.disconnect(name), errno.ENXIO, "disconnect twice")


@vector(
    "tsm.connect.bad_names",
    title="tsm/connect refuses a malformed (EINVAL) or unknown (ENXIO) TSM name",
    spec=f'{_KERNEL} (connect_store: sscanf "tsm%d", find_tsm_dev); lib/vsprintf.c (vsscanf)',
    needs={"tsm"},
)
async def connect_bad_names(ctx: VectorContext) -> None:
    tsm, _ = _tsm(ctx)
    _start_disconnected(tsm)
    missing = f"tsm{max([int(n[3:]) for n in tsm.tsms()] + [0]) + 7}"
    await _expect_errno(ctx, lambda: tsm.connect(missing), errno.ENXIO, f"connect {missing}")
    for text in ("garbage\n", "tsm+0\n", " tsm0\n"):  # %d takes no '+'; "tsm" must lead
        await _expect_errno(
            ctx, lambda t=text: tsm.store("connect", t), errno.EINVAL, f"connect {text!r}"
        )
    ctx.expect(tsm.connected() == "", "a refused connect left the device connected")


@vector(
    "tsm.connect.needs_secured_cma",
    title="connect is refused, leaving nothing, when the CMA mailbox lacks Secured CMA (0001:02)",
    spec=f"{_SEV} (dsm_connect: 'CMA DOE MB must support SSESSION', EFAULT); {_KERNEL}; "
    "PCIe 6.x §6.31.3 (a CMA mailbox of a device with IDE carries Secured CMA/SPDM)",
    needs={"tsm"},
)
async def connect_needs_secured_cma(ctx: VectorContext) -> None:
    tsm, name = _tsm(ctx)
    _start_disconnected(tsm)
    features = ctx.config.doe_features() if hasattr(ctx.config, "doe_features") else None
    rig = None
    if features is None or (1, 2) in features:
        try:
            rig = getattr(ctx.resource("virtual_rig"), "rescan_device", None)
        except NotApplicable:
            rig = None
        if rig is None:
            raise NotApplicable(
                "the device lists Secured CMA (doe_features/0001:02) and this rig cannot make "
                "it drop it"
            )
        rig(["0001:02"])  # the device found again, its mailbox without Secured CMA
    try:
        features = ctx.config.doe_features()
        ctx.expect(features is not None and (1, 2) not in features, f"features {features}")
        before = await _view(ctx, tsm)
        try:
            tsm.connect(name)
        except TsmError as exc:
            ctx.measure("connect_errno", exc.errno or 0, "")
            ctx.log.info("connect refused: %s (SEV-TIO: EFAULT)", exc)
        else:
            tsm.disconnect(name)
            ctx.expect(False, "connect succeeded on a mailbox without Secured CMA/SPDM")
        await _check_torn_down(ctx, tsm, before, None, "the refused connect")
    finally:
        if rig is not None:
            rig([])


@vector(
    "tsm.reconnect.fresh_session",
    title="reconnect after disconnect: a fresh SPDM session, freshly programmed keys, Secure",
    spec=f"{_KERNEL}; {_SEV} (dsm_connect); PCIe 6.x §6.33.3 (IDE_KM: keys bound to the "
    "session), DSP0274 1.2 (KEY_EXCHANGE)",
    needs={"tsm"},
)
async def reconnect_fresh_session(ctx: VectorContext) -> None:
    firmware = _firmware(ctx, "counting the device's sessions and key programming")
    tsm, name = _tsm(ctx)
    _start_disconnected(tsm)
    before = await _view(ctx, tsm)
    deltas = []
    streams = []
    for _ in range(2):
        start = firmware.firmware_counters()
        tsm.connect(name)
        try:
            streams.append(await _check_connected(ctx, tsm, name, before))
        finally:
            tsm.disconnect(name)
        end = firmware.firmware_counters()
        deltas.append({k: end[k] - start[k] for k in end})
    for i, d in enumerate(deltas):
        ctx.measure(f"sessions_established_{i + 1}", d["sessions_established"], "", low=1, high=1)
        if streams[i] is not None:
            # Keys never leave the device; that its firmware wrote its key slots again in the
            # new session is what shows they are fresh (the old session's keys were wiped).
            ctx.measure(f"key_slot_dw_written_{i + 1}", d["key_slot_dw_written"], "DW", low=1)
    await _check_torn_down(ctx, tsm, before, streams[-1], "the second disconnect")


@vector(
    "tsm.connect.ide_km_failure_cleans_up",
    title="a device that fails IDE_KM mid-connect: connect fails and nothing is left programmed",
    spec=f"{_SEV} (dsm_connect: reclaim, streams_disable, streams_teardown); {_IDE} "
    "(pci_ide_stream_teardown); PCIe 6.x §6.33.3 (KP_ACK status)",
    needs={"tsm"},
)
async def ide_km_failure_cleans_up(ctx: VectorContext) -> None:
    firmware = _firmware(ctx, "failing IDE_KM part way")
    tsm, name = _tsm(ctx)
    _start_disconnected(tsm)
    before = await _view(ctx, tsm)
    firmware.fail_key_slot_writes_after(2)  # the third KEY_PROG finds its slot unloaded
    try:
        tsm.connect(name)
    except TsmError as exc:
        ctx.measure("connect_errno", exc.errno or 0, "")
    else:
        tsm.disconnect(name)
        ctx.expect(False, "connect succeeded although the device failed KEY_PROG")
    finally:
        firmware.fail_key_slot_writes_after(None)
    ctx.measure(
        "key_slot_dw_dropped", firmware.firmware_counters()["key_slot_dw_dropped"], "DW", low=1
    )
    await _check_torn_down(ctx, tsm, before, None, "the failed connect")
    tsm.connect(name)  # the host and the device recover
    try:
        await _check_connected(ctx, tsm, name, before)
    finally:
        tsm.disconnect(name)


@vector(
    "tsm.power.cycle_while_connected",
    title="a power cycle while connected: the device's stream is not Secure; disconnect cleans "
    "up; a reconnect works",
    spec=f"{_KERNEL} (__pci_tsm_disconnect cannot fail); {_IDE} (pci_ide_stream_teardown); "
    "PCIe 6.x §6.33.1, §6.33.8 (conventional reset and DL_Active going down make a stream "
    "Insecure, the keys erased)",
    needs={"tsm", "power"},
)
async def power_cycle_while_connected(ctx: VectorContext) -> None:
    tsm, name = _tsm(ctx)
    power = ctx.resource("power")
    _start_disconnected(tsm)
    before = await _view(ctx, tsm)
    stream = None
    tsm.connect(name)
    try:
        stream = await _check_connected(ctx, tsm, name, before)
        await power.power_cycle()
        if stream is not None:
            now = await _view(ctx, tsm)
            ctx.expect(
                now.ep[stream.e].state != I.STATE_SECURE,
                f"the device's stream block {stream.e} is still Secure after a power cycle",
            )
            if now.rp is not None:  # its link went down with the board (DL_Active)
                ctx.expect(
                    now.rp[stream.r].state != I.STATE_SECURE,
                    f"the Root Port's stream block {stream.r} is still Secure after the "
                    "device lost power",
                )
    finally:
        if tsm.connected():  # the kernel may have removed and found the device again
            tsm.disconnect(tsm.connected())
    await _check_torn_down(ctx, tsm, before, stream, "disconnect after the power cycle")
    tsm.connect(name)
    try:
        await _check_connected(ctx, tsm, name, before)
    finally:
        tsm.disconnect(name)
