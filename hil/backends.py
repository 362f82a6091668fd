"""How each rig kind runs one vector.

- ``sim``: one Verilator simulation per vector (the endpoint is reset and enumerated afresh),
  started through cocotb's runner from a build cached by HDL sources and parameters.
- ``fake``: asyncio, in this process, against :mod:`hil.fake`.
- ``spdm-socket``: asyncio, in this process, to a responder on the spdm-emu socket protocol.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RigError
from .fake import FakeConfigSpace, FakeDoe
from .rigs import Rig
from .transport import AsyncioTimebase
from .vectors import Outcome, Vector, VectorContext, VectorResult, execute

if TYPE_CHECKING:
    from .serve import ServeOptions

__all__ = [
    "Backend",
    "FakeBackend",
    "LabBackend",
    "SimBackend",
    "SocketBackend",
    "backend_for",
]


class Backend(ABC):
    def __init__(self, rig: Rig, vector_modules: list[str] | None = None) -> None:
        self.rig = rig
        self.vector_modules = list(vector_modules or [])

    @abstractmethod
    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        """Run ``vec``; artifacts worth keeping go under ``artifacts_dir``."""

    def prepare(self) -> None:  # noqa: B027 - most rigs have nothing to prepare
        """Anything to do once per run before the first vector."""

    def finish(self) -> None:  # noqa: B027 - most rigs have nothing to release
        """Anything to release once the run is over (locks, processes, mounts)."""

    def info(self) -> dict[str, Any]:
        """What run.json records about this rig (simulator, versions...)."""
        return {}


class FakeBackend(Backend):
    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        config = FakeConfigSpace(FakeDoe())
        resources: dict[str, Any] = {}
        if self.rig.firmware == "dsm":
            from .firmware import Dsm

            # The firmware drives the fake IDE capability and TDI through their register port.
            dsm = Dsm(hdl_build="fake", regs=config.firmware_regs())
            config.doe.responder = dsm.handle
            resources["function_id"] = dsm.requester_id  # the TDI's INTERFACE_ID (bus 1, 0.0)
        ctx = VectorContext(
            rig_name=self.rig.name,
            rig_kind=self.rig.kind,
            provides=self.rig.provides,
            timebase=AsyncioTimebase(),
            config=config,
            settings=self.rig.settings,
            resources=resources,
        )
        return asyncio.run(execute(vec, ctx))

    def info(self) -> dict[str, Any]:
        return {"simulator": None, "device": "hil.fake.FakeConfigSpace"}


class SimBackend(Backend):
    def __init__(self, rig: Rig, vector_modules: list[str] | None = None) -> None:
        super().__init__(rig, vector_modules)
        from .sim import ENDPOINT_TOP

        self.top = rig.sim.get("top", ENDPOINT_TOP)
        # hil_fpga carries the DSM and firmware register ports on its UART: the firmware runs
        # at the far end of a pseudo-terminal (the virtual rig's lab controller).
        self.uart = self.top == "hil_fpga"
        self._build_dir: Path | None = None

    def prepare(self) -> None:
        self.build()

    def build(self) -> Path:
        from .sim import build_hdl, rtl_sources

        if self._build_dir is None:
            self._build_dir = build_hdl(
                self.top, rtl_sources(self.top), self.rig.sim.get("parameters", {})
            )
        return self._build_dir

    def info(self) -> dict[str, Any]:
        from .sim import build_key, rtl_sources, verilator_version, wave_format

        return {
            "simulator": "verilator",
            "simulator_version": verilator_version(),
            "hdl_top": self.top,
            "hdl_build": build_key(
                self.top, rtl_sources(self.top), self.rig.sim.get("parameters", {}), True
            ),
            "hdl_parameters": self.rig.sim.get("parameters", {}),
            "wave_format": wave_format(),
            "firmware": self.rig.firmware,
        }

    def _job(self, **extra: Any) -> dict[str, Any]:
        return {
            "rig": self.rig.name,
            "kind": self.rig.kind,
            "provides": sorted(self.rig.provides),
            "settings": self.rig.settings,
            "clock_period_ns": self.rig.sim.get("clock_period_ns", 4.0),
            "dsm_latency_ns": self.rig.sim.get("dsm_latency_ns", 0.0),
            "firmware": self.rig.firmware,
            "hdl_build": self.info()["hdl_build"],
            "wall_timeout_s": self.rig.sim.get("wall_timeout_s", 600),
            **extra,
        }

    def uart_clks_per_bit(self) -> int:
        """The UART's bit time in clock cycles: the ``CLKS_PER_BIT`` the rig builds with."""
        cpb = self.rig.sim.get("parameters", {}).get("CLKS_PER_BIT")
        if not isinstance(cpb, int) or cpb < 4:
            raise RigError(
                f"rig {self.rig.name}: [sim] parameters must set CLKS_PER_BIT (>= 4) for "
                f"{self.top}'s UART"
            )
        return cpb

    def _simulate(self, testcase: str, work: Path, job: dict[str, Any], **kwargs: Any) -> None:
        """Run one test of :mod:`hil.sim.entry` on the cached build, with ``job`` as its input."""
        from cocotb_tools.runner import get_runner

        (work / "job.json").write_text(json.dumps(job))
        get_runner("verilator").test(
            test_module="hil.sim.entry",
            testcase=testcase,
            hdl_toplevel=self.top,
            hdl_toplevel_lang="verilog",
            build_dir=self.build(),
            test_dir=work,
            extra_env={"HIL_JOB": str(work / "job.json")},
            timescale=("1ns", "1ps"),
            **kwargs,
        )

    def serve_config(self, socket_path: Path, uart_link: Path | None = None) -> None:
        """Run the simulated endpoint serving config accesses on ``socket_path`` (the virtual
        rig's device), until a client ends it.  A top with a UART gets a pseudo-terminal on its
        pins, published as the symlink ``uart_link``."""
        work = Path(tempfile.mkdtemp(prefix="hil-virtual-"))
        try:
            job = self._job(config_socket=str(socket_path), wall_timeout_s=None)
            if self.uart:
                if uart_link is None:
                    raise RigError(f"{self.top} has a UART: serve_config needs uart_link")
                job["uart"] = {"clks_per_bit": self.uart_clks_per_bit(), "link": str(uart_link)}
            self._simulate("serve_config", work, job, log_file=work / "sim.log")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def serve(self, host: str, port: int, *, options: ServeOptions | None = None) -> int:
        """Run the simulated endpoint as an spdm-emu socket responder (``hil serve``)."""
        from .serve import ServeOptions

        options = options or ServeOptions()
        work = Path(tempfile.mkdtemp(prefix="hil-serve-"))
        try:
            job = self._job(
                serve={"host": host, "port": port, **options.to_json()},
                cert_chain=str(options.cert_chain) if options.cert_chain else None,
                key=str(options.key) if options.key else None,
                wall_timeout_s=None,
            )
            self._simulate("serve_socket", work, job)
            return 0
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        work = Path(tempfile.mkdtemp(prefix=f"hil-{vec.id}-"))
        try:
            job = self._job(
                vector=vec.id,
                vector_modules=self.vector_modules,
                result=str(work / "result.json"),
            )
            log = work / "sim.log"
            start = time.perf_counter()
            crashed = None
            try:
                self._simulate("run_vector", work, job, waves=waves, log_file=log)
            except (RuntimeError, SystemExit) as exc:
                crashed = exc
            result_path = work / "result.json"
            if result_path.exists():
                result = VectorResult.from_json(json.loads(result_path.read_text()))
            else:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                result = VectorResult(
                    Outcome.ERROR,
                    f"the simulator ended without a result ({crashed!r}); log tail:\n{tail}",
                    duration_s=time.perf_counter() - start,
                )
            if result.outcome in (Outcome.FAIL, Outcome.ERROR):
                result.artifacts += _keep(work, artifacts_dir, vec.id, waves)
            return result
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _keep(work: Path, artifacts_dir: Path, vector_id: str, waves: bool) -> list[str]:
    """Copy a failed vector's log (and waveform with --waves) into the run's artifacts."""
    kept = []
    dest = artifacts_dir / vector_id
    names = ["sim.log"] + (["dump.fst", "dump.vcd"] if waves else [])
    for name in names:
        src = work / name
        if src.exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
            kept.append(f"artifacts/{vector_id}/{name}")
    return kept


def _serial_capture(link: Any, mark: int, artifacts_dir: Path, vector_id: str) -> list[str]:
    """A failed vector's UART frames (headers only, no register write data) as an artifact."""
    lines = link.frames_since(mark)
    if not lines:
        return []
    dest = artifacts_dir / vector_id
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "serial.txt").write_text("\n".join(lines) + "\n")
    return [f"artifacts/{vector_id}/serial.txt"]


class SocketBackend(Backend):
    """A responder on the DMTF spdm-emu socket protocol; a new connection per vector."""

    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        from .transport.spdm_socket import SpdmSocketClient

        sock = self.rig.socket
        clients: list[SpdmSocketClient] = []

        async def connect() -> SpdmSocketClient:
            client = SpdmSocketClient(
                sock.get("host", "127.0.0.1"),
                int(sock.get("port", 2323)),
                timeout_s=float(sock.get("timeout_s", 10.0)),
            )
            await client.connect()
            clients.append(client)
            return client

        async def run() -> VectorResult:
            ctx = VectorContext(
                rig_name=self.rig.name,
                rig_kind=self.rig.kind,
                provides=self.rig.provides,
                timebase=AsyncioTimebase(),
                settings=self.rig.settings,
                doe_transport=connect,
            )
            try:
                return await execute(vec, ctx)
            finally:
                for client in clients:
                    await client.close()

        return asyncio.run(run())

    def info(self) -> dict[str, Any]:
        sock = self.rig.socket
        return {
            "simulator": None,
            "peer": f"{sock.get('host', '127.0.0.1')}:{sock.get('port', 2323)}",
        }


def backend_for(rig: Rig, vector_modules: list[str] | None = None) -> Backend:
    if rig.kind == "sim":
        return SimBackend(rig, vector_modules)
    if rig.kind == "fake":
        return FakeBackend(rig, vector_modules)
    if rig.kind == "spdm-socket":
        return SocketBackend(rig, vector_modules)
    if rig.kind in ("lab", "virtual"):
        return LabBackend(rig, vector_modules)
    raise RigError(f"rig {rig.name}: no backend for kind {rig.kind!r}")


#: What a board serves over its UART (the firmware on the lab controller, the telemetry): a
#: vector that needs one of these cannot run once the UART is gone.
SERIAL_NEEDS = frozenset({"spdm", "ide_km", "tdisp", "tsm", "telemetry"})


class LabBackend(Backend):
    """A Linux host's sysfs (``lab``), or the virtual FPGA rig's FUSE tree (``virtual``)."""

    def __init__(self, rig: Rig, vector_modules: list[str] | None = None) -> None:
        super().__init__(rig, vector_modules)
        from .lab.bdf import Bdf

        self.bdf = Bdf.parse(rig.lab.get("bdf", "0000:01:00.0"))
        self.virtual = None
        self.lock = None
        self._psu = None
        self._serial = None  # a lab rig's SerialFirmwareHost on [lab] serial
        self._serial_error: RigError | None = None

    def prepare(self) -> None:
        if self.rig.kind == "lab":
            from .lab.lock import RigLock

            self.lock = RigLock(self.rig.name, self.rig.lab.get("lock_dir", "/run/lock/hil"))
            self.lock.acquire()

    def finish(self) -> None:
        if self._serial is not None:
            self._serial.stop()
            self._serial = None
        if self.lock is not None:
            self.lock.release()
        if self.virtual is not None:
            self.virtual.stop()
            self.virtual = None

    def sysfs_root(self) -> Path:
        if self.rig.kind == "virtual":
            if self.virtual is None:
                from .lab.rig_daemon import AttachedVirtualFpga, running
                from .lab.virtual import VirtualFpga

                state = running(self.rig.name)
                if state is not None:  # `hil rig up` has it up: use that one
                    self.virtual = AttachedVirtualFpga(state)
                else:  # bring it up for this run, and down at its end
                    self.virtual = VirtualFpga(self.rig, self.bdf)
                    self.virtual.start()
            return self.virtual.root
        return Path(self.rig.lab.get("sysfs_root", "/sys"))

    def serial_host(self):  # type: ignore[no-untyped-def]
        """The lab controller's end of the board's UART, serving the firmware and keeping the
        telemetry: on ``[lab] serial``, or the virtual rig's pseudo-terminal; None without."""
        if self.virtual is not None:
            return self.virtual.firmware_host
        port = self.rig.lab.get("serial")
        if self.rig.kind != "lab" or not port or self._serial_error is not None:
            return None
        if self._serial is None:
            from .lab.serial_link import SerialFirmwareHost, SerialVanished

            try:
                self._serial = SerialFirmwareHost.for_rig(
                    self.rig, port, requester_id=self.bdf.requester_id
                ).start()
            except SerialVanished as exc:
                self._serial_error = exc
                return None
        return self._serial

    def _uart_lost(self) -> RigError | None:
        """Why the board's UART is gone, if it went (it stays gone for the rest of the run)."""
        host = self.serial_host()
        return host.error if host is not None else self._serial_error

    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        from .lab.sysfs import SysfsConfigSpace
        from .lab.tsm import KernelTsm

        root = self.sysfs_root()
        lost = self._uart_lost()
        if lost is not None and vec.needs & SERIAL_NEEDS:
            return VectorResult(Outcome.ERROR, f"the board's UART is gone: {lost}")
        config = SysfsConfigSpace(self.bdf, root)
        resources: dict[str, Any] = {"tsm": KernelTsm(self.bdf, root), "bdf": self.bdf}
        if self.virtual is not None:
            resources["virtual_rig"] = self.virtual  # for fault injection
        host = self.serial_host()
        if host is not None:
            resources["telemetry"] = host
        power = self.power()
        if power is not None:
            resources["power"] = power
        events = self._power_events()
        mark = host.link.frames_logged if host is not None and hasattr(host, "link") else None
        ctx = VectorContext(
            rig_name=self.rig.name,
            rig_kind=self.rig.kind,
            provides=self.rig.provides,
            timebase=AsyncioTimebase(),
            config=config,
            settings=self.rig.settings,
            resources=resources,
        )
        try:
            result = asyncio.run(execute(vec, ctx))
        finally:
            config.close()
        if (
            self._power_events() != events
            and "power" not in vec.needs
            and result.outcome
            in (
                Outcome.FAIL,
                Outcome.ERROR,
            )
        ):
            # Not the device's fault: the board lost power under the vector.
            result.outcome = Outcome.ERROR
            result.message = f"the board was power-cycled during the vector: {result.message}"
        if mark is not None and result.outcome in (Outcome.FAIL, Outcome.ERROR):
            result.artifacts += _serial_capture(host.link, mark, artifacts_dir, vec.id)
        lost = self._uart_lost()
        if lost is not None and result.outcome in (Outcome.FAIL, Outcome.ERROR):
            # Not the device's fault either: its firmware and telemetry went with the UART.
            result.outcome = Outcome.ERROR
            result.message = f"the board's UART is gone ({lost}): {result.message}"
        return result

    def _power_events(self) -> int:
        if self.virtual is not None:
            return self.virtual.power_events
        return getattr(self._psu, "events", 0)

    def _restart_firmware(self) -> None:
        if self._serial is not None:
            self._serial.restart_firmware()

    def power(self):  # type: ignore[no-untyped-def]
        """The rig's bench supply (``[lab] visa_resource``), or None."""
        resource = self.rig.lab.get("visa_resource")
        if not resource:
            return None
        if self._psu is None:
            from .lab.power import open_power_supply, visa_library

            library = visa_library(self.rig.lab.get("visa_library", "@py"))
            self._psu = open_power_supply(resource, library)
            if self.virtual is not None:
                from .lab.virtual import VirtualPower

                self._psu = VirtualPower(self._psu, self.virtual)
            else:
                from .lab.power import BoardPower

                self._psu = BoardPower(self._psu, self._restart_firmware)
        return self._psu

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "simulator": "verilator" if self.rig.kind == "virtual" else None,
            "bdf": str(self.bdf),
        }
        if self.rig.kind == "virtual":
            from .lab.rig_daemon import running

            state = running(self.rig.name)
            info["virtual_rig"] = (
                f"hil rig up (process {state['pid']})" if state else "the run's own"
            )
        return info
