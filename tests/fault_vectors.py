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


@vector(
    "fault.d_power_cycle_mid_exchange",
    title="the board loses power mid-exchange",
    spec="-",
    needs={"doe"},
)
async def d_power_cycle(ctx: VectorContext) -> None:
    from hil.codec.doe import DataObject

    mbx = await ctx.doe()
    await mbx.send(DataObject(1, 1, bytes([0x10, 0x84, 0, 0])))
    ctx.resource("virtual_rig").power_cycle()  # behind the vector's back
    await mbx.receive()  # the request died with the power


@vector(
    "fault.e_unplug_uart",
    title="the board's UART goes away mid-exchange",
    spec="-",
    needs={"doe"},
)
async def e_unplug_uart(ctx: VectorContext) -> None:
    from hil.codec.doe import DataObject

    get_version = DataObject(1, 1, bytes([0x10, 0x84, 0, 0]))
    mbx = await ctx.doe()
    await mbx.exchange(get_version)  # the firmware answers over the UART
    ctx.resource("virtual_rig").unplug_uart()
    mbx.timeout_s = 2.0
    await mbx.exchange(get_version)  # nobody serves the DSM now


@vector(
    "fault.f_after_uart", title="needs the firmware, after the UART went", spec="-", needs={"spdm"}
)
async def f_after_uart(ctx: VectorContext) -> None:
    await (await ctx.spdm()).get_version()


@vector(
    "fault.g_config_after_uart",
    title="config space, after the UART went",
    spec="-",
    needs={"config"},
)
async def g_config_after_uart(ctx: VectorContext) -> None:
    ctx.expect(await ctx.config.read32(0) != 0xFFFFFFFF, "device absent")
