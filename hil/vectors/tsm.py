"""Kernel TSM vectors: the merged v6.19 sysfs ABI as a lab host exercises it."""

from __future__ import annotations

import errno

from ..host.ide_km import StreamRegs
from ..host.pci import find_ext_capabilities
from ..lab.sysfs import SysfsError
from ..lab.tsm import KernelTsm, TsmError
from ._model import VectorContext, vector


async def _expect_errno(ctx: VectorContext, fn, code: int, what: str) -> None:
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


async def _ide_state(ctx: VectorContext) -> int | None:
    """The State of the device's first Selective IDE stream (None: no IDE capability).
    Config space only: the DOE mailbox is the kernel's while connected."""
    caps = await find_ext_capabilities(ctx.config, 0x0030)
    if not caps:
        return None
    return (await ctx.config.read32(StreamRegs(caps[0].offset, 0).status)) & 0xF


@vector(
    "tsm.connect.authenticates",
    title="tsm/connect authenticates the DSM; the ABI reports it; disconnect undoes it",
    spec="Linux v6.19 Documentation/ABI/testing/sysfs-bus-pci (tsm/); PCIe 6.x §6.31",
    needs={"tsm"},
)
async def connect_authenticates(ctx: VectorContext) -> None:
    tsm: KernelTsm = ctx.resource("tsm")
    names = tsm.tsms()
    ctx.expect(names, "no TSM under class/tsm")
    name = names[0]
    if tsm.connected():
        tsm.disconnect(tsm.connected())
    ctx.expect(not tsm.authenticated(), "authenticated before connect")
    free = tsm.available_secure_streams()  # None: the host bridge has no IDE
    streams = tsm.streams()
    tsm.connect(name)
    try:
        ctx.expect(tsm.connected() == name, f"tsm/connect reads {tsm.connected()!r}")
        ctx.expect(tsm.authenticated(), "authenticated does not say so after connect")
        ctx.expect(tsm.dsm() == str(tsm.bdf), f"tsm/dsm reads {tsm.dsm()!r}")
        if free is not None:  # connect set up a Selective IDE stream to the device
            now = tsm.available_secure_streams()
            ctx.measure("secure_streams_taken", free - (now or 0), "", low=1, high=1)
            ctx.expect(now == free - 1, f"available_secure_streams {free} -> {now} on connect")
            new = set(tsm.streams()) - set(streams)
            ctx.expect(len(new) == 1, f"stream links to the device after connect: {new}")
            state = await _ide_state(ctx)
            ctx.expect(state in (None, 0b0010), f"the device's IDE stream is {state:04b}")
        await _expect_errno(ctx, lambda: tsm.connect(name), errno.EBUSY, "a second connect")
        other = f"tsm{int(name[3:]) + 1}"
        await _expect_errno(ctx, lambda: tsm.disconnect(other), errno.EINVAL, f"disconnect {other}")
        # The lab path must not touch the DOE mailbox the kernel now owns.
        try:
            await ctx.doe()
        except SysfsError:
            pass
        else:
            ctx.expect(False, "DOE access was allowed while the device is TSM-connected")
    finally:
        tsm.disconnect(name)
    ctx.expect(tsm.connected() == "", "tsm/connect not empty after disconnect")
    if free is not None:
        now = tsm.available_secure_streams()
        ctx.expect(now == free, f"available_secure_streams {now} after disconnect, was {free}")
        ctx.expect(tsm.streams() == streams, f"stream links left after disconnect: {tsm.streams()}")
    await _expect_errno(ctx, lambda: tsm.disconnect(name), errno.ENXIO, "disconnect twice")


@vector(
    "tsm.connect.bad_names",
    title="tsm/connect refuses a malformed or unknown TSM name with EINVAL / ENXIO",
    spec="Linux v6.19 drivers/pci/tsm.c (connect_store)",
    needs={"tsm"},
)
async def connect_bad_names(ctx: VectorContext) -> None:
    tsm: KernelTsm = ctx.resource("tsm")
    missing = f"tsm{max([int(n[3:]) for n in tsm.tsms()] + [0]) + 7}"
    await _expect_errno(ctx, lambda: tsm.connect(missing), errno.ENXIO, f"connect {missing}")
    await _expect_errno(
        ctx, lambda: tsm._write("connect", "garbage\n"), errno.EINVAL, "connect garbage"
    )
    ctx.expect(tsm.connected() == "", "a refused connect left the device connected")
