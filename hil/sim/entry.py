"""The cocotb test module that runs one vector inside the simulator.

The backend (``hil.backends``) starts the simulation with ``HIL_JOB`` naming a JSON job file:
the vector id, the rig's name, kind, needs and settings, and where to write the result.  The
result is written atomically; if the simulator dies first, the backend records an error.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import cocotb

from ..results import atomic_write_text
from ..vectors import Measurement, Outcome, VectorContext, VectorResult, execute, load_suite
from .harness import EndpointHarness


def _write(path: Path, result: VectorResult) -> None:
    atomic_write_text(path, json.dumps(result.to_json()))


def _watchdog(path: Path, seconds: float) -> threading.Timer:
    """Wall-clock limit: record an error and end the simulator if a vector hangs it."""

    def fire() -> None:
        _write(path, VectorResult(Outcome.ERROR, f"wall-clock limit of {seconds:g} s reached"))
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


@cocotb.test()
async def run_vector(dut) -> None:
    job = json.loads(Path(os.environ["HIL_JOB"]).read_text())
    out = Path(job["result"])
    timer = _watchdog(out, float(job.get("wall_timeout_s", 600)))
    start = time.perf_counter()
    try:
        vec = load_suite(job.get("vector_modules"))[job["vector"]]
        firmware = None
        if job.get("firmware") == "dsm":
            from ..firmware import Dsm

            firmware = Dsm(hdl_build=job.get("hdl_build", "")).handle
        harness = await EndpointHarness.start(
            dut,
            clock_period_ns=float(job.get("clock_period_ns", 4.0)),
            firmware=firmware,
            dsm_latency_ns=float(job.get("dsm_latency_ns", 0.0)),
        )
    except Exception as exc:
        _write(out, VectorResult(Outcome.ERROR, f"simulated rig did not come up: {exc!r}"))
        timer.cancel()
        return
    ctx = VectorContext(
        rig_name=job["rig"],
        rig_kind=job["kind"],
        provides=frozenset(job["provides"]),
        timebase=harness.timebase,
        config=harness.config,
        settings=job.get("settings", {}),
    )
    sim_start = harness.timebase.now()
    result = await execute(vec, ctx)
    if harness.hardip.cfg_ext_timeouts and result.outcome is Outcome.PASS:
        result.outcome = Outcome.FAIL
        result.message = (
            f"user logic left {harness.hardip.cfg_ext_timeouts} cfg_ext reads unanswered"
        )
    result.measurements += [
        Measurement("config_accesses", harness.config.accesses, "").to_json(),
        Measurement("sim_time", harness.timebase.now() - sim_start, "s").to_json(),
    ]
    result.duration_s = time.perf_counter() - start
    _write(out, result)
    timer.cancel()
