"""The cocotb test module that runs one vector inside the simulator.

The backend (``hil.backends``) starts the simulation with ``HIL_JOB`` naming a JSON job file:
the vector id, the rig's name, kind, needs and settings, and where to write the result.  The
result is written atomically; if the simulator dies first, the backend records an error.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from pathlib import Path

import cocotb

from ..firmware.dma import FirmwareDma
from ..results import atomic_write_text
from ..vectors import Measurement, Outcome, VectorContext, VectorResult, execute, load_suite
from .harness import EndpointHarness
from .transport import HardIpTlpPort

# One simulator process runs one vector.  Everything imported so far (cocotb, cocotbext-pcie,
# cryptography, hil) lives as long as the process: move it out of the collector's way, so
# that neither the collections during the vector nor the one at interpreter exit walk it.
gc.freeze()


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


def _make_dsm(job: dict, harness: EndpointHarness):
    from ..firmware import Dsm
    from ..pki import Identity

    kwargs = {"hdl_build": job.get("hdl_build", ""), "regs": harness.fw_regs}
    if job.get("cert_chain"):
        kwargs["identity"] = Identity.load(job["cert_chain"], job["key"])
    pcie_id = harness.hardip.pcie_id
    kwargs["requester_id"] = (pcie_id.bus << 8) | (pcie_id.device << 3) | pcie_id.function
    kwargs["clock"] = harness.timebase.now  # the device's clock is the simulated one
    if job.get("serve"):  # how ``hil serve`` presents the device
        from ..serve import ServeOptions

        kwargs.update(ServeOptions.from_json(job["serve"]).dsm_kwargs())
    return Dsm(**kwargs)


class _FirmwareSlot:
    """The DSM port's firmware, made once the harness (and its register port) exists, and
    replaced when the board is power-cycled."""

    def __init__(self) -> None:
        self.dsm = None

    async def __call__(self, obj):
        return await self.dsm.handle(obj) if self.dsm is not None else None


async def _start(dut, job: dict) -> EndpointHarness:
    # With a UART (hil_fpga) the DSM port is inside the top: the firmware is at the far end.
    on_dsm_port = "uart" not in job
    slot = _FirmwareSlot() if job.get("firmware") == "dsm" and on_dsm_port else None
    harness = await EndpointHarness.start(
        dut,
        clock_period_ns=float(job.get("clock_period_ns", 4.0)),
        firmware=slot,
        dsm_latency_ns=float(job.get("dsm_latency_ns", 0.0)),
        dsm_port=on_dsm_port,
        config_path=job.get("config_path", "tlp"),
    )
    if slot is not None:
        slot.dsm = _make_dsm(job, harness)
    harness.firmware_slot = slot
    return harness


@cocotb.test()
async def serve_config(dut) -> None:
    """The virtual rig: configuration accesses from another process over a Unix socket, and
    the board's UART (``hil_fpga``) on a pseudo-terminal published as ``job["uart"]["link"]``."""
    from .config_server import serve_config as serve

    job = json.loads(Path(os.environ["HIL_JOB"]).read_text())
    uart = None
    if "uart" in job:  # before the reset: the line idles high, as a cable's does
        from .uart_pty import UartPty

        uart = UartPty(
            dut,
            clks_per_bit=int(job["uart"]["clks_per_bit"]),
            clock_period_ns=float(job.get("clock_period_ns", 4.0)),
            linger_ns=float(job["uart"].get("linger_ns", 50_000.0)),
        )
        uart.link(Path(job["uart"]["link"]))
    # The harness runs the clock in C++ (the GPI clock): between requests simulated time runs on
    # while the UART is busy, and nothing in Python needs every edge.
    harness = await _start(dut, job)

    async def power_cycle() -> None:
        await harness.reset()
        if harness.firmware_slot is not None:  # the firmware restarts with the board
            harness.firmware_slot.dsm = _make_dsm(job, harness)

    from .. import _regs as R

    # Writing a DW into the write mailbox, or taking one from the read mailbox, sends nothing
    # on the UART (an object leaves on Go; a response arrives whole): time need not run on.
    mailboxes = frozenset(R.DOE_CAP_OFFSET + reg for reg in (R.DOE_WMBX, R.DOE_RMBX))
    await serve(
        harness.config,
        Path(job["config_socket"]),
        power_cycle,
        activity=uart,
        quiet_writes=mailboxes,
    )


@cocotb.test()
async def serve_socket(dut) -> None:
    """``hil serve``: the endpoint behind the spdm-emu socket protocol until SHUTDOWN."""
    from .. import _regs as R
    from ..host.doe import DoeMailbox
    from ..serve import configure_ide_stream, mailbox_service, serve_blocking

    job = json.loads(Path(os.environ["HIL_JOB"]).read_text())
    harness = await _start(dut, job)
    settings = job.get("settings", {})
    mbx = DoeMailbox(
        harness.config,
        R.DOE_CAP_OFFSET,
        harness.timebase,
        timeout_s=float(settings.get("doe_timeout_s", 1.0)),
        poll_interval_s=float(settings.get("doe_poll_interval_s", 1 / 128)),
    )
    await mbx.init()
    hook = None
    if job["serve"].get("ide_stream_id") is not None:
        stream_id = int(job["serve"]["ide_stream_id"])

        async def hook() -> None:
            await configure_ide_stream(harness.config, stream_id)

    await serve_blocking(
        mailbox_service(mbx),
        job["serve"]["host"],
        int(job["serve"]["port"]),
        on_connection=hook,
    )


@cocotb.test()
async def run_vector(dut) -> None:
    job = json.loads(Path(os.environ["HIL_JOB"]).read_text())
    out = Path(job["result"])
    timer = _watchdog(out, float(job.get("wall_timeout_s") or 600))
    start = time.perf_counter()
    try:
        vec = load_suite(job.get("vector_modules"))[job["vector"]]
        harness = await _start(dut, job)
    except Exception as exc:
        _write(out, VectorResult(Outcome.ERROR, f"simulated rig did not come up: {exc!r}"))
        timer.cancel()
        return
    resources: dict[str, object] = {
        "tlp": HardIpTlpPort(harness.hardip),  # the root port's side of the link
        "function_id": int(harness.hardip.pcie_id),  # the TDI's INTERFACE_ID
    }
    if harness.fw_regs is not None:
        # The endpoint's own Memory Writes (ide_tlp's DMA engine), started on its firmware
        # port; where the build has no engine the vectors that need it are n/a.
        resources["dma"] = FirmwareDma(harness.fw_regs)
    ctx = VectorContext(
        rig_name=job["rig"],
        rig_kind=job["kind"],
        provides=frozenset(job["provides"]),
        timebase=harness.timebase,
        config=harness.config,
        settings=job.get("settings", {}),
        resources=resources,
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
