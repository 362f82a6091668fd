"""cocotb side of the simulation benchmarks: timed loops inside the simulator."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb

from hil import _regs as R
from hil.host import DoeMailbox
from hil.sim.harness import EndpointHarness


def _report(name: str, count: int, seconds: float, sim_s: float) -> None:
    out = Path(os.environ["HIL_BENCH_OUT"])
    data = json.loads(out.read_text()) if out.exists() else {}
    data[name] = {"count": count, "wall_s": seconds, "sim_s": sim_s}
    out.write_text(json.dumps(data))


@cocotb.test()
async def config_accesses(dut) -> None:
    harness = await EndpointHarness.start(dut)
    n = int(os.environ.get("HIL_BENCH_N", "2000"))
    t0, s0 = time.perf_counter(), harness.timebase.now()
    for _ in range(n):
        await harness.config.read32(R.DOE_CAP_OFFSET)
    _report("config_reads", n, time.perf_counter() - t0, harness.timebase.now() - s0)


@cocotb.test()
async def discovery_exchanges(dut) -> None:
    harness = await EndpointHarness.start(dut)
    mbx = DoeMailbox(
        harness.config, R.DOE_CAP_OFFSET, harness.timebase, timeout_s=1e-3, poll_interval_s=2e-7
    )
    await mbx.init()
    n = int(os.environ.get("HIL_BENCH_N", "2000")) // 10
    t0, s0 = time.perf_counter(), harness.timebase.now()
    for i in range(n):
        await mbx.discover_one(i % 3)
    _report("discovery_exchanges", n, time.perf_counter() - t0, harness.timebase.now() - s0)
