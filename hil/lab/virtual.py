"""The virtual FPGA rig: the lab code path, unchanged, against the simulated endpoint.

It starts the simulation as a separate process serving configuration accesses, mounts a
FUSE sysfs tree backed by it (``hil.lab.virtual_fs``), and hands out that tree as the rig's
sysfs root.  When the rig simulates the FPGA top (``[sim] top = "hil_fpga"``), the board's UART
is a pseudo-terminal held by the simulation and published as ``<dir>/uart``; this side plays
the lab controller on it: :class:`hil.lab.serial_link.SerialFirmwareHost` opens it with
pyserial and serves the device firmware and the telemetry, as on a lab host.  Each
pytest-xdist worker gets its own copy.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import RigError
from ..rigs import Rig
from .bdf import Bdf
from .serial_link import SerialFirmwareHost

__all__ = ["VirtualFpga", "VirtualPower", "fuse_available", "kernel_doe_timeout_s"]


def kernel_doe_timeout_s(rig: Rig) -> float:
    """The emulated kernel's DOE deadline in wall time: Linux waits 1 s (PCI_DOE_TIMEOUT);
    a rig whose device is a simulation states a longer one as ``kernel_doe_timeout_s``."""
    return float(rig.settings.get("kernel_doe_timeout_s", 1.0))


def fuse_available() -> str | None:
    """Why a FUSE mount cannot work here, or None when it can."""
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse on this machine"
    try:
        import mfusepy  # noqa: F401  (loads libfuse 3, or libfuse 2)
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse ({exc}); install Debian's libfuse3-3"
    if os.geteuid() != 0 and not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return "not root and no fusermount3 to mount FUSE as a user (Debian's fuse3)"
    return None


class VirtualFpga:
    def __init__(self, rig: Rig, bdf: Bdf) -> None:
        self.rig = rig
        self.bdf = bdf
        self.dir = Path(tempfile.mkdtemp(prefix="hil-vfpga-"))
        self.socket = self.dir / "config.sock"
        self.root = self.dir / "sys"
        self.root.mkdir()
        self.uart_path = self.dir / "uart"  # the board's UART (a symlink to the pty)
        self.kernel_control = self.dir / "kernel.sock"  # the emulated host's control socket
        self.sim: subprocess.Popen | None = None
        self.fs: subprocess.Popen | None = None
        self.firmware_host: SerialFirmwareHost | None = None
        self.power_events = 0
        self._idle_client = None  # a ConfigClient of its own for device_idle

    def start(self, timeout_s: float = 300.0) -> None:
        why = fuse_available()
        if why:
            raise RigError(f"virtual rig {self.rig.name}: {why}")
        from ..sim.simulation import Simulation

        sim = Simulation(self.rig)
        code = (
            "import sys; from pathlib import Path; from hil.rigs import load_rig;"
            "from hil.sim.simulation import Simulation;"
            f"Simulation(load_rig(Path({str(self.rig.path)!r})))"
            ".serve_config(Path(sys.argv[1]), Path(sys.argv[2]))"
        )
        self.sim = subprocess.Popen(
            [sys.executable, "-c", code, str(self.socket), str(self.uart_path)],
            stdout=open(self.dir / "sim.log", "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the simulator binary is its child: one group to signal
        )
        self._wait(lambda: self.socket.exists(), timeout_s, "the simulation to listen")
        if sim.uart:  # the lab controller: the firmware over the board's UART, opened by path
            self.firmware_host = SerialFirmwareHost.for_rig(
                self.rig,
                str(self.uart_path),
                requester_id=self.bdf.requester_id,
                hdl_build=sim.info()["hdl_build"],
            ).start()
        self.fs = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hil.lab.virtual_fs",
                "--socket",
                str(self.socket),
                "--mount",
                str(self.root),
                "--bdf",
                str(self.bdf),
                "--control",
                str(self.kernel_control),
                "--doe-timeout-s",
                str(kernel_doe_timeout_s(self.rig)),
            ],
            stdout=open(self.dir / "fuse.log", "w"),
            stderr=subprocess.STDOUT,
        )
        self._wait(lambda: (self.root / "bus").exists(), 120, "the sysfs tree to mount")
        atexit.register(self.stop)

    def rescan_device(self, hide_features: list[str] | tuple[str, ...] = ()) -> dict:
        """The endpoint removed and found again by the emulated host (its mailbox lacking
        ``hide_features``, ``vvvv:tt``, when given): a lab's ``remove`` and ``rescan``."""
        from .virtual_fs import KernelControl

        return KernelControl(self.kernel_control).rescan_device(hide_features)

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            for proc in (self.sim, self.fs):
                if proc is not None and proc.poll() is not None:
                    log = (self.dir / "sim.log").read_text(errors="replace")[-1500:]
                    self.stop()
                    raise RigError(f"virtual rig: a process died waiting for {what}:\n{log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RigError(f"virtual rig: timed out waiting for {what}")
            time.sleep(0.05)

    def power_cycle(self) -> None:
        """What the rig's power supply does to the board: reset the simulated endpoint."""
        from .virtual_fs import ConfigClient

        self.power_events += 1
        client = ConfigClient(self.socket)
        # The simulation resets the endpoint's logic, not the hard-IP model's own registers,
        # so the endpoint's copies of BAR0 and Command are written again, as the host's PCI
        # core does when the link comes back (pciehp adds the function again and assigns it
        # the same resources): the endpoint and configuration space then agree, as they do
        # on a board after its host has re-enumerated it.
        header = {off: client.read32(off) for off in (0x10, 0x14, 0x04)}
        client.reset()
        for off, value in header.items():  # Command last; its Status half (RW1C) written 0
            client.write32(off, value & 0xFFFF if off == 0x04 else value)
        client.sock.close()
        if self.firmware_host is not None:  # the firmware restarts with the board
            self.firmware_host.restart_firmware()
        if self.kernel_control.exists():  # the Root Port saw the link go down
            from .virtual_fs import KernelControl

            KernelControl(self.kernel_control).link_down()

    def device_idle(self) -> bool | None:
        """Whether the board can still answer anything without being asked again: False while
        a DOE object or a byte is in flight anywhere (the mailbox's DSM port, the UART bridge,
        the line, the pseudo-terminal, the controller's firmware), True when nothing is, None
        when this rig cannot tell (no UART: the firmware is inside the simulation).

        The controller's counts are read before and after the simulation's answer and must
        not have moved: the simulation checks them against its own, so no byte is in the
        pseudo-terminal either way, and its side has been quiet for the UART linger in
        simulated time (the bridge starts a frame well within it).
        """
        host = self.firmware_host
        if host is None or self.sim is None or host.error is not None:
            return None  # no UART, or it is gone: simulated time no longer runs after a write
        before = host.link.quiet_counts()
        if before is None:
            return False
        from .virtual_fs import ConfigClient

        if self._idle_client is None:
            self._idle_client = ConfigClient(self.socket)
        try:
            idle = self._idle_client.idle(*before)
        except OSError:
            return None  # the simulation cannot say (gone, or it has no UART)
        return idle and host.link.quiet_counts() == before

    def unplug_uart(self) -> None:
        """Fault injection: the board's UART goes away (the simulation closes its pty)."""
        from .virtual_fs import ConfigClient

        client = ConfigClient(self.socket)
        client.unplug_uart()
        client.sock.close()

    def kill_simulation(self) -> None:
        """Fault injection: the simulation dies under the running vectors."""
        if self.sim is not None:
            os.killpg(self.sim.pid, signal.SIGKILL)
            self.sim.wait(timeout=30)

    def stop(self) -> None:
        if self._idle_client is not None:
            self._idle_client.sock.close()
            self._idle_client = None
        if self.firmware_host is not None:
            self.firmware_host.stop()
            self.firmware_host = None
        if self.fs is not None:
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True, check=False)
            self.fs.terminate()
            self.fs.wait(timeout=10)
            self.fs = None
        if self.sim is not None:
            if self.sim.poll() is None and self.socket.exists():
                from .virtual_fs import ConfigClient

                try:
                    ConfigClient(self.socket, timeout_s=5).end()
                except OSError:
                    pass
            try:
                self.sim.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self.sim.pid, signal.SIGKILL)  # whatever is left of the group
            except ProcessLookupError:
                pass
            self.sim = None
        shutil.rmtree(self.dir, ignore_errors=True)


class VirtualPower:
    """The virtual rig's bench supply: a pyvisa-sim instrument whose power cycle resets the
    simulated board (output off: the board loses power; on: it boots again)."""

    def __init__(self, psu, board: VirtualFpga) -> None:
        self.psu = psu
        self.board = board

    def identify(self) -> str:
        return self.psu.identify()

    async def power_cycle(self, *, off_s: float = 0.05, settle_s: float = 0.05) -> None:
        self.psu.set_output(False)
        self.board.power_cycle()
        await self.psu.sleep(off_s)
        self.psu.set_output(True)
        await self.psu.sleep(settle_s)
