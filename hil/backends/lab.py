"""The ``lab`` and ``virtual`` rigs: a Linux host's sysfs and kernel TSM files, a serial port,
VISA instruments; the virtual rig's FUSE tree backed by the simulated FPGA top."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..errors import RigError
from ..rigs import Rig
from ..transport import AsyncioTimebase
from ..vectors import Measurement, Outcome, Vector, VectorContext, VectorResult, execute
from ._base import Backend

__all__ = ["SERIAL_NEEDS", "LabBackend"]

#: What a board serves over its UART (the firmware on the lab controller, the telemetry): a
#: vector that needs one of these cannot run once the UART is gone.
SERIAL_NEEDS = frozenset({"spdm", "ide_km", "tdisp", "tsm", "telemetry"})


class LabBackend(Backend):
    """A Linux host's sysfs (``lab``), or the virtual FPGA rig's FUSE tree (``virtual``)."""

    def __init__(self, rig: Rig, vector_modules: list[str] | None = None) -> None:
        super().__init__(rig, vector_modules)
        from ..lab.bdf import Bdf

        self.bdf = Bdf.parse(rig.lab.get("bdf", "0000:01:00.0"))
        self.virtual = None
        self.lock = None
        self._psu = None
        self._serial = None  # a lab rig's SerialFirmwareHost on [lab] serial
        self._serial_error: RigError | None = None

    def prepare(self) -> None:
        if self.rig.kind == "lab":
            from ..lab.lock import RigLock

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
                from ..lab.rig_daemon import AttachedVirtualFpga, running
                from ..lab.virtual import VirtualFpga

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
            from ..lab.serial_link import SerialFirmwareHost, SerialVanished

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
        from ..lab.sysfs import SysfsConfigSpace
        from ..lab.tsm import KernelTsm

        root = self.sysfs_root()
        lost = self._uart_lost()
        if lost is not None and vec.needs & SERIAL_NEEDS:
            return VectorResult(Outcome.ERROR, f"the board's UART is gone: {lost}")
        config = SysfsConfigSpace(self.bdf, root)
        resources: dict[str, Any] = {"tsm": KernelTsm(self.bdf, root), "bdf": self.bdf}
        if self.virtual is not None:
            resources["virtual_rig"] = self.virtual  # for fault injection
            device_idle = getattr(self.virtual, "device_idle", None)
            if device_idle is not None:

                async def idle() -> bool | None:
                    return device_idle()

                resources["device_idle"] = idle  # ends a silence wait (hil.host.doe)
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
        silences = [s for mbx in ctx.mailboxes for s in mbx.silences]
        if silences:  # response waits the device's idleness ended: how long the longest took
            result.measurements += [
                Measurement("silences", len(silences), "").to_json(),
                Measurement("silence_wait_max", max(silences), "s").to_json(),
            ]
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
            from ..lab.power import open_power_supply, visa_library

            library = visa_library(self.rig.lab.get("visa_library", "@py"))
            self._psu = open_power_supply(resource, library)
            if self.virtual is not None:
                from ..lab.virtual import VirtualPower

                self._psu = VirtualPower(self._psu, self.virtual)
            else:
                from ..lab.power import BoardPower

                self._psu = BoardPower(self._psu, self._restart_firmware)
        return self._psu

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "simulator": "verilator" if self.rig.kind == "virtual" else None,
            "bdf": str(self.bdf),
        }
        if self.rig.kind == "virtual":
            from ..lab.rig_daemon import running

            state = running(self.rig.name)
            info["virtual_rig"] = (
                f"hil rig up (process {state['pid']})" if state else "the run's own"
            )
        return info


def _serial_capture(link: Any, mark: int, artifacts_dir: Path, vector_id: str) -> list[str]:
    """A failed vector's UART frames (headers only, no register write data) as an artifact."""
    lines = link.frames_since(mark)
    if not lines:
        return []
    dest = artifacts_dir / vector_id
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "serial.txt").write_text("\n".join(lines) + "\n")
    return [f"artifacts/{vector_id}/serial.txt"]
