"""Telemetry vectors: what the board reports about itself agrees with what the host sees.

The board sends :class:`hil.codec.uart.Telemetry` records (TDI state, IDE stream states, DOE
error and IDE check failure counters, uptime) by itself when a value changes and when asked;
the rig hands them out as ``ctx.resource("telemetry")`` (a :class:`hil.transport.TelemetrySource`).
"""

from __future__ import annotations

from .. import _regs as R
from ..codec import ide_km as K
from ..codec.uart import Telemetry
from ..host.ide_km import stream_regs
from ..host.pci import find_ext_capabilities
from ..transport import TelemetrySource
from ._model import VectorContext, vector

#: TDISP TDI_STATE codes (PCIe 6.x §11.2): CONFIG_UNLOCKED, CONFIG_LOCKED, RUN, ERROR.
TDI_STATES = range(4)
#: IDE Stream Status.State values (§7.9.26.5.3): Insecure, Secure; the rest are reserved.
STREAM_STATES = {K.IdeStreamState.INSECURE, K.IdeStreamState.SECURE}
STREAM_ID = 0x19


def _source(ctx: VectorContext) -> TelemetrySource:
    return ctx.resource("telemetry")


def _timeout(ctx: VectorContext) -> float:
    return float(ctx.settings.get("telemetry_timeout_s", 2.0))


async def _stream_states(ctx: VectorContext, count: int) -> tuple[int, ...]:
    """The State field of the first ``count`` Selective IDE streams' Status registers."""
    caps = await find_ext_capabilities(ctx.config, R.IDE_CAP_ID)
    ctx.expect(caps, "no IDE extended capability (ID 0x0030) in the capability list")
    states = []
    for j in range(count):
        regs = await stream_regs(ctx.config, j, caps[0].offset)
        states.append((await ctx.config.read32(regs.status)) & 0xF)
    return tuple(states)


async def _expect_streams_match(ctx: VectorContext, what: str) -> Telemetry:
    """Ask until a record reports what the IDE Status registers hold.

    The first record after asking may be one the board sent before it saw the request (a change
    report on its way), so a record that disagrees is followed by another request, until the
    telemetry deadline: a board that never reports the registers' states fails.
    """
    deadline = ctx.timebase.now() + _timeout(ctx)
    while True:
        t = await _source(ctx).request(_timeout(ctx))
        config = await _stream_states(ctx, len(t.streams))
        if t.streams == config or ctx.timebase.now() > deadline:
            break
        await ctx.sleep(0.05)
    ctx.expect(
        t.streams == config,
        f"{what}: telemetry reports stream states {list(t.streams)}, the IDE Status registers "
        f"hold {list(config)}",
    )
    return t


@vector(
    "telemetry.frames.decode",
    title="Telemetry records arrive when asked, decode, and hold legal values",
    spec="hil UART link (hil/codec/uart.py); PCIe 6.x §11.2 (TDI states), §7.9.26.5.3",
    needs={"telemetry"},
)
async def frames_decode(ctx: VectorContext) -> None:
    src = _source(ctx)
    first = await src.request(_timeout(ctx))
    second = await src.request(_timeout(ctx))
    for t in (first, second):
        ctx.expect(t.tdi_state in TDI_STATES, f"TDI state {t.tdi_state} is not a TDISP state")
        bad = [s for s in t.streams if s not in STREAM_STATES]
        ctx.expect(not bad, f"stream states {bad} are neither Insecure nor Secure")
    ctx.expect(
        second.uptime_ms >= first.uptime_ms,
        f"uptime went back from {first.uptime_ms} ms to {second.uptime_ms} ms",
    )
    ctx.expect(
        second.doe_errors >= first.doe_errors
        and second.ide_check_failures >= first.ide_check_failures,
        "an error counter went back between two records",
    )
    ctx.measure("streams_reported", len(first.streams), "", low=1)
    ctx.measure("records_received", len(src.received()), "", low=2)


@vector(
    "telemetry.ide.streams_match_config",
    title="The IDE stream states reported match the IDE Status registers, after K_SET_GO too",
    spec="PCIe 6.x §7.9.26.5.3 (Stream Status), §6.33.3 (K_SET_GO); hil UART link",
    needs={"telemetry", "config"},
)
async def streams_match_config(ctx: VectorContext) -> None:
    await _expect_streams_match(ctx, "before keying")
    if "ide_km" not in ctx.provides:
        return  # the reset state (or whatever the streams hold) is all there is to compare
    from .ide_km import _Km

    async with _Km(ctx) as km:
        await km.query()
        regs = await km.setup_stream(0, STREAM_ID)
        await km.program_all(STREAM_ID, 0)
        await km.go_all(STREAM_ID, 0)
        state = await km.enable(regs, STREAM_ID)
        ctx.expect(state == K.IdeStreamState.SECURE, f"stream state {state:#x} after K_SET_GO")
        t = await _expect_streams_match(ctx, "after K_SET_GO and Enable")
        ctx.expect(t.streams[0] == K.IdeStreamState.SECURE, "stream 0 not reported Secure")
        await ctx.config.write32(regs.control, STREAM_ID << 24)  # Enable off: Insecure again
        t = await _expect_streams_match(ctx, "after Enable cleared")
        ctx.expect(t.streams[0] == K.IdeStreamState.INSECURE, "stream 0 still reported Secure")


@vector(
    "telemetry.doe.error_counted",
    title="A malformed DOE write sets Error, and the DOE error counter reports it unasked",
    spec="PCIe 6.x §6.30.2 (DOE Error); hil UART link (telemetry on change)",
    needs={"telemetry", "doe"},
)
async def doe_error_counted(ctx: VectorContext) -> None:
    src = _source(ctx)
    mbx = await ctx.doe()
    before = await src.request(_timeout(ctx))
    seen = len(src.received())
    if "config_partial" in ctx.provides:
        # A write of one byte to the Write Data Mailbox: DOE takes whole DWs only.
        await ctx.config.write_bytes(mbx.offset + R.DOE_WMBX, b"\x01")
    else:
        # One DW more than the mailbox holds.
        for _ in range(int(ctx.settings.get("doe_max_object_dw", 1024)) + 1):
            await ctx.config.write32(mbx.offset + R.DOE_WMBX, 0x01)
    try:
        ctx.expect((await mbx.status()).error, "DOE Error not set by a malformed write")
        # The change is sent without asking: one Error event, one count.
        deadline = ctx.timebase.now() + _timeout(ctx)
        unasked: list[Telemetry] = []
        while not unasked and ctx.timebase.now() < deadline:
            await ctx.sleep(0.01)
            unasked = [t for t in src.received()[seen:] if t.doe_errors != before.doe_errors]
        ctx.expect(unasked, "no telemetry record sent by itself after the DOE error")
        added = unasked[0].doe_errors - before.doe_errors
        ctx.measure("doe_errors_added", added, "", low=1, high=1)
        asked = await src.request(_timeout(ctx))
        added = asked.doe_errors - before.doe_errors
        ctx.measure("doe_errors_added_when_asked", added, "", low=1, high=1)
    finally:
        await mbx.abort()  # clears Error; the counter keeps counting since reset
    after = await src.request(_timeout(ctx))
    ctx.expect(after.doe_errors >= before.doe_errors + 1, "the DOE error counter went back")
