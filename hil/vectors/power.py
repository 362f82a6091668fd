"""Power vectors: what a board must do across a power cycle."""

from __future__ import annotations

from ..codec.doe import PCI_SIG_VENDOR_ID, DoeType
from ._model import VectorContext, vector


@vector(
    "power.cycle.recovers",
    title="After a power cycle the DOE mailbox is idle and serves discovery and SPDM afresh",
    spec="PCIe 6.x §6.30.2 (reset), DSP0274 §9 (connection state after reset)",
    needs={"power", "doe", "spdm"},
)
async def cycle_recovers(ctx: VectorContext) -> None:
    power = ctx.resource("power")
    ctx.expect(power.identify(), "the bench supply does not identify itself")
    req = await ctx.spdm()
    await req.connect()  # some connection state to lose
    await power.power_cycle()
    mbx = await ctx.doe()
    features = await mbx.discover()
    ctx.expect((PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM) in features, f"after the cycle: {features}")
    fresh = await ctx.spdm()
    await fresh.get_version()
    await fresh.get_capabilities()  # a device that kept its old state would refuse this order
