"""Vectors that end every way a vector can end, for the runner's own tests."""

from __future__ import annotations

import os

from hil.vectors import Skip, VectorContext, vector


@vector("selftest.passes", title="passes", spec="-", needs={"config"})
async def passes(ctx: VectorContext) -> None:
    await ctx.config.read32(0)
    ctx.measure("answer", 42, "", low=0, high=100)


@vector("selftest.fails", title="the device breaks the spec", spec="-", needs={"config"})
async def fails(ctx: VectorContext) -> None:
    ctx.expect(False, "the device said no")


@vector("selftest.out_of_limits", title="a measurement out of limits", spec="-", needs={"config"})
async def out_of_limits(ctx: VectorContext) -> None:
    ctx.measure("latency", 5.0, "s", high=1.0)


@vector("selftest.crashes", title="the vector itself breaks", spec="-", needs={"config"})
async def crashes(ctx: VectorContext) -> None:
    raise ZeroDivisionError("vector bug")


@vector("selftest.skips", title="skips with a reason", spec="-", needs={"config"})
async def skips(ctx: VectorContext) -> None:
    raise Skip("nothing to check here")


@vector("selftest.not_applicable", title="needs what no rig has", spec="-", needs={"telemetry"})
async def not_applicable(ctx: VectorContext) -> None:
    raise AssertionError("never runs")


@vector(
    "selftest.kills_process", title="the process under the vector dies", spec="-", needs={"config"}
)
async def kills_process(ctx: VectorContext) -> None:
    if os.environ.get("HIL_SELFTEST_KILL") == "1":
        os._exit(9)
