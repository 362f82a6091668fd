"""`hil rig up` / `hil rig down`: a virtual FPGA rig that outlives the command that started it.

``hil rig up NAME`` starts a background process that brings the rig up (the simulation, the
FUSE sysfs tree, the firmware on the board's UART) and keeps it up until ``hil rig down NAME``.
Meanwhile the rig's sysfs tree is there for anything a lab host would run against a board
(``hil rigs check``, a shell, another tool), and ``hil run --rig NAME`` uses the running rig
instead of starting its own: it attaches through the rig's state directory.

State directory (``state_dir(name)``): ``state.json`` (the process, the sysfs root, the UART,
the simulation's socket) and ``control.sock``, a Unix socket taking one JSON request per
connection: ``power_cycle``, ``telemetry`` (every record so far), ``telemetry_request``
(ask the board now), ``status`` (whether the UART is still there), ``firmware_counters`` and
``fail_key_slot_writes_after`` (:mod:`hil.lab.firmware_tap`).  The emulated host's own control
socket (``kernel_control``, :mod:`hil.lab.virtual_fs`) is in the state too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..codec.uart import Telemetry
from ..errors import RigError
from ..rigs import Rig, load_rig
from ..transport import TelemetrySource
from .bdf import Bdf

__all__ = [
    "AttachedVirtualFpga",
    "RemoteTelemetry",
    "rig_down",
    "rig_up",
    "running",
    "state_dir",
]

STATE = "state.json"
CONTROL = "control.sock"


def state_dir(name: str) -> Path:
    """Where a rig brought up by `hil rig up` keeps its state (per user)."""
    base = os.environ.get("HIL_RIG_STATE_DIR") or Path(tempfile.gettempdir()) / (
        f"hil-rigs-{os.getuid()}"
    )
    return Path(base) / name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(name: str) -> dict[str, Any] | None:
    """The state of rig ``name`` if `hil rig up` has it up (a stale state is ignored)."""
    path = state_dir(name) / STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(state.get("pid", 0))):
        return None
    return state


# -- the control channel ------------------------------------------------------------------------
def _read_line(sock: socket.socket) -> bytes:
    """One JSON message: bytes up to a newline (or the peer closing)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _ask(control: Path, request: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect(str(control))
            s.sendall(json.dumps(request).encode() + b"\n")
            data = _read_line(s)
        except OSError as exc:
            raise RigError(f"the running rig's control socket {control}: {exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise RigError(f"the running rig answered {data[:80]!r}") from None
    if "error" in answer:
        raise RigError(f"the running rig: {answer['error']}")
    return answer


class RemoteTelemetry(TelemetrySource):
    """The telemetry of a rig that another process holds the UART of."""

    def __init__(self, control: Path) -> None:
        self.control = control

    @property
    def error(self) -> RigError | None:
        why = _ask(self.control, {"op": "status"}).get("uart_error")
        return RigError(why) if why else None

    def received(self) -> list[Telemetry]:
        records = _ask(self.control, {"op": "telemetry"})["records"]
        return [Telemetry.decode(bytes.fromhex(r)) for r in records]

    async def request(self, timeout_s: float = 1.0) -> Telemetry:
        answer = await asyncio.to_thread(
            _ask, self.control, {"op": "telemetry_request", "timeout_s": timeout_s}
        )
        return Telemetry.decode(bytes.fromhex(answer["record"]))

    def firmware_counters(self) -> dict[str, int]:
        return dict(_ask(self.control, {"op": "firmware_counters"})["counters"])

    def fail_key_slot_writes_after(self, slots: int | None) -> None:
        _ask(self.control, {"op": "fail_key_slot_writes_after", "slots": slots})


class AttachedVirtualFpga:
    """A running rig as :class:`hil.lab.virtual.VirtualFpga` looks to a backend; it is not
    this process's to stop."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.root = Path(state["root"])
        self.socket = Path(state["socket"])
        self.control = Path(state["control"])
        self.kernel_control = Path(state.get("kernel_control", ""))
        self.power_events = 0
        self.firmware_host = RemoteTelemetry(self.control) if state.get("uart") else None

    def power_cycle(self) -> None:
        self.power_events += 1
        _ask(self.control, {"op": "power_cycle"})

    def rescan_device(self, hide_features: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        from .virtual_fs import KernelControl

        return KernelControl(self.kernel_control).rescan_device(hide_features)

    def device_idle(self) -> bool | None:
        """:meth:`hil.lab.virtual.VirtualFpga.device_idle`, asked of the process that holds
        the rig (it holds the controller's end of the UART)."""
        return _ask(self.control, {"op": "device_idle"}).get("idle")

    def unplug_uart(self) -> None:
        raise RigError("fault injection needs a rig of the run's own, not one `hil rig up` holds")

    kill_simulation = unplug_uart

    def stop(self) -> None:
        """Nothing: `hil rig down` stops it."""


# -- the background process -----------------------------------------------------------------------
def _serve_control(board: Any, path: Path, stop: threading.Event) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    server.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        with conn:
            try:
                conn.settimeout(60)
                answer = _handle(board, json.loads(_read_line(conn)))
            except Exception as exc:  # one bad request does not end the rig
                answer = {"error": str(exc)}
            try:
                conn.sendall(json.dumps(answer).encode() + b"\n")
            except OSError:
                pass
    server.close()


def _handle(board: Any, request: dict[str, Any]) -> dict[str, Any]:
    host = board.firmware_host
    op = request.get("op")
    if op == "power_cycle":
        board.power_cycle()
        return {"ok": True}
    if op == "status":
        error = host.error if host is not None else None
        return {"uart_error": str(error) if error else None}
    if op == "device_idle":
        return {"idle": board.device_idle()}
    if op == "telemetry":
        if host is None:
            raise RigError("this rig has no UART")
        return {"records": [t.encode().hex() for t in host.received()]}
    if op == "firmware_counters":
        if host is None:
            raise RigError("this rig has no UART")
        return {"counters": host.firmware_counters()}
    if op == "fail_key_slot_writes_after":
        if host is None:
            raise RigError("this rig has no UART")
        host.fail_key_slot_writes_after(request.get("slots"))
        return {"ok": True}
    if op == "telemetry_request":
        if host is None:
            raise RigError("this rig has no UART")
        record = asyncio.run(host.request(float(request.get("timeout_s", 1.0))))
        return {"record": record.encode().hex()}
    raise RigError(f"unknown request {op!r}")


def serve(rig_path: Path, directory: Path) -> None:
    """The process `hil rig up` leaves running (``python -m hil.lab.rig_daemon``)."""
    from .virtual import VirtualFpga

    rig = load_rig(rig_path)
    board = VirtualFpga(rig, Bdf.parse(rig.lab.get("bdf", "0000:01:00.0")))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        board.start()
        control = directory / CONTROL
        control.unlink(missing_ok=True)
        thread = threading.Thread(target=_serve_control, args=(board, control, stop), daemon=True)
        thread.start()
        state = {
            "pid": os.getpid(),
            "rig": rig.name,
            "rig_path": str(rig.path),
            "root": str(board.root),
            "uart": str(board.uart_path) if board.firmware_host is not None else "",
            "socket": str(board.socket),
            "control": str(control),
            "kernel_control": str(board.kernel_control),
            "started": time.time(),
        }
        tmp = directory / (STATE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(directory / STATE)
        while not stop.wait(0.5):
            if board.sim is not None and board.sim.poll() is not None:
                print("the simulation ended; the rig goes down", flush=True)
                break
        thread.join(timeout=5)
    finally:
        (directory / STATE).unlink(missing_ok=True)
        board.stop()


def rig_up(rig: Rig, *, timeout_s: float = 600.0) -> dict[str, Any]:
    """Start ``rig`` in the background (or find it up); its state once it is ready."""
    if rig.kind != "virtual":
        raise RigError(f"`hil rig up` is for virtual rigs; {rig.name} is a {rig.kind} rig")
    state = running(rig.name)
    if state is not None:
        return state
    directory = state_dir(rig.name)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STATE).unlink(missing_ok=True)
    log = open(directory / "rig.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.lab.rig_daemon", str(rig.path), str(directory)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # outlives the command (and its terminal)
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = running(rig.name)
        if state is not None:
            return state
        if proc.poll() is not None:
            tail = (directory / "rig.log").read_text(errors="replace")[-2000:]
            raise RigError(f"rig {rig.name} did not come up:\n{tail}")
        time.sleep(0.2)
    proc.terminate()
    raise RigError(f"rig {rig.name} did not come up within {timeout_s:.0f} s")


def rig_down(name: str, *, timeout_s: float = 120.0) -> bool:
    """Stop the rig `hil rig up` started; False if it was not up."""
    state = running(name)
    if state is None:
        return False
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        raise RigError(f"rig {name} did not stop within {timeout_s:.0f} s; killed")
    return True


if __name__ == "__main__":  # pragma: no cover - run by rig_up
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
