"""cocotb side of the simulation benchmarks: timed loops inside the simulator."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import cocotb
from cocotb.utils import get_sim_time
from cocotbext.pcie.core import Device, MemoryEndpoint, RootComplex

from hil import _regs as R
from hil.host import DoeMailbox
from hil.sim.harness import EndpointHarness


def _report(name: str, count: int, seconds: float, sim_s: float) -> None:
    out = Path(os.environ["HIL_BENCH_OUT"])
    data = json.loads(out.read_text()) if out.exists() else {}
    data[name] = {"count": count, "wall_s": seconds, "sim_s": sim_s}
    out.write_text(json.dumps(data))


async def _config_reads(dut, config_path: str) -> None:
    harness = await EndpointHarness.start(dut, config_path=config_path)
    n = int(os.environ.get("HIL_BENCH_N", "2000"))
    t0, s0 = time.perf_counter(), harness.timebase.now()
    for _ in range(n):
        await harness.config.read32(R.DOE_CAP_OFFSET)
    elapsed = time.perf_counter() - t0
    assert harness.hardip.cfg_ext_reads >= n and not harness.hardip.cfg_ext_timeouts
    _report(f"config_reads_{config_path}", n, elapsed, harness.timebase.now() - s0)


@cocotb.test()
async def config_accesses(dut) -> None:
    """CfgRd0 TLPs from the root complex, through the hard-IP model, to cfg_ext_*."""
    await _config_reads(dut, "tlp")


@cocotb.test()
async def config_accesses_cfg_ext(dut) -> None:
    """The same reads straight into the hard-IP model's configuration space (sim-cfgext)."""
    await _config_reads(dut, "cfg_ext")


@cocotb.test()
async def anchor_config_accesses(dut) -> None:
    """The anchor: cocotbext-pcie's own pure-Python endpoint (a ``MemoryEndpoint`` on a
    ``RootComplex`` port, its data-link layer included), the same kind of configuration read,
    no HDL involved."""
    rc = RootComplex()
    rc.log.setLevel(logging.ERROR)
    ep = MemoryEndpoint()
    ep.log.setLevel(logging.WARNING)
    ep.vendor_id, ep.device_id = 0x1234, 0x5678
    rc.make_port().connect(Device(ep))
    await rc.enumerate()
    n = int(os.environ.get("HIL_BENCH_N", "2000"))
    t0, s0 = time.perf_counter(), get_sim_time("ps") * 1e-12
    for _ in range(n):
        data = await rc.config_read(ep.pcie_id, 0x000, 4, 100_000, "ns")
        assert int.from_bytes(data, "little") == 0x5678_1234
    elapsed = time.perf_counter() - t0
    _report("anchor_config_reads", n, elapsed, get_sim_time("ps") * 1e-12 - s0)


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
