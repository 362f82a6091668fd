"""DOE mailbox vectors (PCIe 6.x §6.30, §7.9.24)."""

from __future__ import annotations

import struct

from .. import _regs as R
from ..codec.doe import PCI_SIG_VENDOR_ID, DataObject, DiscoveryRequest, DoeType
from ..errors import DoeTimeout
from ..host.doe import DoeMailbox, DoeStatus
from ._execute import Skip
from ._model import VectorContext, vector

DISCOVERY = (PCI_SIG_VENDOR_ID, DoeType.DISCOVERY)


def _quiet_s(ctx: VectorContext) -> float:
    """How long a vector watches a mailbox that must stay silent."""
    return float(ctx.settings.get("doe_quiet_s", 0.01))


async def _expect_idle(ctx: VectorContext, mbx: DoeMailbox, why: str) -> DoeStatus:
    st = await mbx.status()
    ctx.expect(not (st.busy or st.error or st.ready), f"{why}: Status {st}, expected idle")
    return st


async def _expect_silent(ctx: VectorContext, mbx: DoeMailbox, why: str) -> None:
    """The mailbox produces neither a response nor Error for the quiet time."""
    deadline = ctx.timebase.now() + _quiet_s(ctx)
    while ctx.timebase.now() < deadline:
        st = await mbx.status()
        ctx.expect(not st.ready, f"{why}: a response appeared (Status {st})")
        ctx.expect(not st.error, f"{why}: Error was set (Status {st})")
        await ctx.sleep(mbx.poll_interval_s)
    await _expect_idle(ctx, mbx, why)


async def _good_exchange(ctx: VectorContext, mbx: DoeMailbox, why: str) -> None:
    rsp = await mbx.discover_one(0)
    ctx.expect(
        (rsp.vendor_id, rsp.type) == DISCOVERY,
        f"{why}: discovery index 0 gave {rsp.vendor_id:#06x}:{rsp.type:02x}, not 0001:00",
    )


async def _abort_and_time(ctx: VectorContext, mbx: DoeMailbox) -> float:
    start = ctx.timebase.now()
    await mbx.abort()
    elapsed = ctx.timebase.now() - start
    ctx.measure("abort_time", elapsed, "s", high=1.0)
    return elapsed


def _fmt(features: list[tuple[int, int]]) -> str:
    return ", ".join(f"{v:04x}:{t:02x}" for v, t in features)


@vector(
    "doe.capability.registers",
    title="The DOE capability is version 2 and its registers read as the spec says",
    spec="PCIe 6.x §7.9.24.1-7.9.24.4",
    needs={"doe"},
)
async def capability_registers(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    header = await ctx.config.read32(mbx.offset)
    ctx.expect(header & 0xFFFF == R.DOE_CAP_ID, f"header {header:#010x}: ID is not 0x002E")
    version = (header >> 16) & 0xF
    ctx.measure("capability_version", version, "", low=2, high=2)
    control = await mbx.read_control()
    ctx.expect(
        control & (R.DOE_CTRL_ABORT | R.DOE_CTRL_GO) == 0,
        f"Control reads {control:#010x}: Abort and Go must read 0",
    )
    await _expect_idle(ctx, mbx, "after the initial Abort")
    wmbx = await ctx.config.read32(mbx.offset + R.DOE_WMBX)
    ctx.expect(wmbx == 0, f"Write Data Mailbox reads {wmbx:#010x}, must read 0")
    rmbx = await mbx.read_word()
    ctx.expect(rmbx == 0, f"Read Data Mailbox reads {rmbx:#010x} with no object ready, must be 0")


@vector(
    "doe.discovery.lists_features",
    title="Discovery lists exactly the advertised features, Discovery first",
    spec="PCIe 6.x §6.30.1.1, §6.31.3",
    needs={"doe"},
)
async def discovery_lists_features(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    features = await mbx.discover()
    ctx.measure("features", len(features), "")
    ctx.expect(features and features[0] == DISCOVERY, f"index 0 is not Discovery: {_fmt(features)}")
    ctx.expect(len(set(features)) == len(features), f"duplicate features: {_fmt(features)}")
    if (PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM) in features:
        ctx.expect(
            (PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM) in features,
            f"Secured CMA/SPDM listed without CMA/SPDM: {_fmt(features)}",
        )
    expected = ctx.settings.get("doe_features")
    if expected is not None:
        want = [(int(v, 16), int(t, 16)) for v, t in (f.split(":") for f in expected)]
        ctx.expect(
            sorted(features) == sorted(want),
            f"discovery lists {_fmt(features)}; the rig advertises {_fmt(want)}",
        )


@vector(
    "doe.discovery.invalid_index",
    title="A discovery index past the last entry answers vendor ID FFFFh",
    spec="PCIe 6.x §6.30.1.1",
    needs={"doe"},
)
async def discovery_invalid_index(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    features = await mbx.discover()
    for index in sorted({len(features), 0xFF}):
        rsp = await mbx.discover_one(index)
        ctx.expect(
            rsp.vendor_id == 0xFFFF,
            f"index {index} (past the {len(features)} entries) answered vendor "
            f"{rsp.vendor_id:#06x} type {rsp.type:#04x}, expected FFFFh",
        )
    await _good_exchange(ctx, mbx, "after invalid indices")


@vector(
    "doe.abort.mid_write",
    title="Abort in the middle of writing an object clears the mailbox; the next exchange works",
    spec="PCIe 6.x §6.30.2, §7.9.24.3",
    needs={"doe"},
)
async def abort_mid_write(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    # The start of a Discovery request for index 1: words of it kept past the Abort would turn
    # the next request into one for index 1, which the good exchange (index 0) tells apart.
    words = DataObject(PCI_SIG_VENDOR_ID, DoeType.DISCOVERY, bytes((1,)) + bytes(15)).words()
    await mbx.write_words(words[:3])
    await _abort_and_time(ctx, mbx)
    await _expect_idle(ctx, mbx, "after Abort mid-write")
    # Go now would send whatever survived the abort: there must be nothing.
    await mbx.go()
    await _expect_silent(ctx, mbx, "Go after Abort with an empty write mailbox")
    await _good_exchange(ctx, mbx, "after Abort mid-write")
    # A whole object written, then Abort before Go: Go must find nothing to send.
    await mbx.write_words(DiscoveryRequest(1).to_object().words())
    await _abort_and_time(ctx, mbx)
    await mbx.go()
    await _expect_silent(ctx, mbx, "Go after Abort of a whole object written without Go")
    await _good_exchange(ctx, mbx, "after Abort of a whole object")


@vector(
    "doe.abort.with_response_pending",
    title="Abort while a response is half read empties the read mailbox",
    spec="PCIe 6.x §6.30.2",
    needs={"doe"},
)
async def abort_with_response_pending(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    await mbx.send(DiscoveryRequest(0).to_object())
    await mbx.wait_for("response", lambda s: s.ready)
    await mbx.read_word()
    await mbx.ack_word()
    await _abort_and_time(ctx, mbx)
    st = await _expect_idle(ctx, mbx, "after Abort with a response pending")
    word = await mbx.read_word()
    ctx.expect(word == 0, f"Read Data Mailbox reads {word:#010x} after Abort ({st})")
    await _good_exchange(ctx, mbx, "after Abort with a response pending")


@vector(
    "doe.length_mismatch.discarded",
    title="An object whose DW count differs from its Length is discarded silently",
    spec="PCIe 6.x §6.30.2",
    needs={"doe"},
)
async def length_mismatch_discarded(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    good = DiscoveryRequest(0).to_object().words()  # 3 DW, Length 3
    short = [good[0], 4, good[2]]  # says 4 DW, carries 3
    long = [*good, 0]  # says 3 DW, carries 4
    for name, words in (("fewer DWs than Length", short), ("more DWs than Length", long)):
        await mbx.write_words(words)
        await mbx.go()
        await _expect_silent(ctx, mbx, name)
        await _good_exchange(ctx, mbx, f"after an object with {name}")


@vector(
    "doe.oversize.sets_error",
    title="An object longer than the mailbox sets Error, which only Abort clears",
    spec="PCIe 6.x §6.30.2, §7.9.24.4",
    needs={"doe"},
)
async def oversize_sets_error(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    # The rig may state the mailbox's capacity; then more than that must set Error.
    declared = ctx.settings.get("doe_max_object_dw")
    limit = int(declared) + 64 if declared else int(ctx.settings.get("doe_oversize_probe_dw", 4096))
    header = DataObject(PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM).words()
    await mbx.write_words([header[0], 0])  # Length 0: 2^18 DW
    written = 2
    st = await mbx.status()
    while not st.error and written < limit:
        await mbx.write_words([written] * 16)
        written += 16
        st = await mbx.status()
    if not st.error:
        await mbx.abort()
        if declared:
            ctx.expect(False, f"{written} DW written to a {declared}-DW mailbox and no Error")
        raise Skip(f"the mailbox took {written} DW without Error; raise doe_oversize_probe_dw")
    ctx.measure(
        "dw_accepted_before_error", written, "DW", high=int(declared) + 16 if declared else None
    )
    # Error must survive everything but Abort: Go, an RW1C write of Status, more data.
    await mbx.go()
    await ctx.config.write32(mbx.offset + R.DOE_STATUS, 0xFFFFFFFF)
    await mbx.write_words([0])
    st = await mbx.status()
    ctx.expect(st.error, f"Error cleared by something other than Abort: Status {st}")
    ctx.expect(not st.ready, f"a response to an object that caused Error: Status {st}")
    await _abort_and_time(ctx, mbx)
    await _expect_idle(ctx, mbx, "after Abort cleared Error")
    await _good_exchange(ctx, mbx, "after the oversize object")


@vector(
    "doe.partial_write.sets_error",
    title="A partial (sub-DW) write to a mailbox register sets Error",
    spec="PCIe 6.x §6.30.2",
    needs={"doe", "config_partial"},
)
async def partial_write_sets_error(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    await ctx.config.write_bytes(mbx.offset + R.DOE_WMBX, b"\x01\x00")
    st = await mbx.status()
    ctx.expect(st.error, f"Status {st} after a 2-byte write to the Write Data Mailbox")
    await _abort_and_time(ctx, mbx)
    await _good_exchange(ctx, mbx, "after a partial write")


@vector(
    "doe.go_while_busy",
    title="Go while Busy does not wedge the mailbox; Abort recovers it",
    spec="PCIe 6.x §6.30.2",
    needs={"doe"},
)
async def go_while_busy(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    features = await mbx.discover()
    if (PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM) not in features:
        raise Skip("the mailbox lists no CMA/SPDM feature, so no object keeps it Busy")
    # SPDM GET_VERSION (DSP0274): version 1.0, code 0x84.  The first object keeps whatever
    # serves CMA busy; a second one then waits in the mailbox, which shows Busy.
    request = DataObject(PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM, bytes([0x10, 0x84, 0, 0]))
    await mbx.send(request)
    try:
        await mbx.wait_for("the first object taken", lambda s: not s.busy)
    except DoeTimeout:
        pass  # nothing takes CMA objects: the first one keeps the mailbox Busy by itself
    await mbx.write_words(request.words())
    await mbx.go()
    st = await mbx.status()
    if not st.busy:
        await mbx.abort()
        raise Skip(f"the mailbox was not Busy after two objects (Status {st}); cannot provoke it")
    await mbx.write_words(request.words())
    await mbx.go()
    await _abort_and_time(ctx, mbx)
    await _expect_idle(ctx, mbx, "after Abort following Go while Busy")
    await _good_exchange(ctx, mbx, "after Go while Busy")


@vector(
    "doe.back_to_back.exchanges",
    title="Many exchanges back to back all answer correctly",
    spec="PCIe 6.x §6.30.1",
    needs={"doe"},
)
async def back_to_back_exchanges(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    first = await mbx.discover()
    rounds = int(ctx.settings.get("doe_back_to_back_rounds", 4))
    start = ctx.timebase.now()
    for i in range(rounds):
        again = await mbx.discover()
        ctx.expect(again == first, f"round {i}: discovery gave {_fmt(again)}, then {_fmt(first)}")
    elapsed = ctx.timebase.now() - start
    exchanges = rounds * len(first)
    ctx.measure("exchanges", exchanges, "")
    if elapsed > 0:
        ctx.measure("exchange_time", elapsed / exchanges, "s", high=1.0)


@vector(
    "doe.back_to_back.queued_responses",
    title="Two responses queued before reading come out back to back, Ready held between",
    spec="PCIe 6.x §6.30.1, §7.9.24.6",
    needs={"doe"},
)
async def back_to_back_queued_responses(ctx: VectorContext) -> None:
    mbx = await ctx.doe()
    features = await mbx.discover()
    if len(features) < 2:
        raise Skip(f"discovery lists one feature ({_fmt(features)}); two are needed")
    await mbx.send(DiscoveryRequest(0).to_object())
    await mbx.wait_for("first response", lambda s: s.ready)
    st = await mbx.status()
    if st.busy:
        raise Skip(f"the mailbox is Busy while a response waits (Status {st})")
    await mbx.send(DiscoveryRequest(1).to_object())
    await mbx.wait_for("second request consumed", lambda s: not s.busy)
    words: list[int] = []
    while (await mbx.status()).ready and len(words) < 64:
        words.append(await mbx.read_word())
        await mbx.ack_word()
    ctx.expect(len(words) == 6, f"read {len(words)} DW back to back, expected two 3-DW objects")
    answered = []
    for i in range(0, len(words), 3):
        (dw,) = struct.unpack("<I", DataObject.from_words(words[i : i + 3]).payload)
        answered.append((dw & 0xFFFF, (dw >> 16) & 0xFF))
    ctx.expect(
        answered == features[:2],
        f"queued responses answered {_fmt(answered)}, expected {_fmt(features[:2])}",
    )
    await _expect_idle(ctx, mbx, "after reading both responses")
