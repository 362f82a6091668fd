"""Vectors that injure the virtual rig, for the runner's fault-handling tests."""

from __future__ import annotations

from hil.vectors import VectorContext, vector


@vector("fault.a_before", title="runs before the fault", spec="-", needs={"config"})
async def a_before(ctx: VectorContext) -> None:
    ctx.expect(await ctx.config.read32(0) != 0xFFFFFFFF, "device absent")


@vector(
    "fault.b_kill_simulation", title="the simulation dies mid-vector", spec="-", needs={"config"}
)
async def b_kill_simulation(ctx: VectorContext) -> None:
    await ctx.config.read32(0)
    ctx.resource("virtual_rig").kill_simulation()
    await ctx.config.read32(0)  # the device is gone now


@vector("fault.c_after", title="runs after the fault", spec="-", needs={"config"})
async def c_after(ctx: VectorContext) -> None:
    await ctx.config.read32(0)
