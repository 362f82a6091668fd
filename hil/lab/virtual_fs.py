"""A sysfs tree served with FUSE, backed by the simulated endpoint: the virtual FPGA rig's host.

The tree is what a Linux host with the kernel's PCI/TSM shows (v6.19 ABI), produced by
:class:`~hil.lab.virtual_kernel.VirtualKernel`::

    devices/pciDDDD:00/                       the host bridge
        available_secure_streams              free Selective IDE stream slots (H indices)
        streamH.R.E -> 0000:00:01.0/<bdf>     one per registered stream
        0000:00:01.0/                         the Root Port (in memory, with IDE)
            config vendor device class
            <bdf>/                            the endpoint (the simulation)
                config vendor device class
                authenticated                 (while a link TSM is registered)
                tsm/ connect disconnect dsm [bound]   (PF0 only; bound only with DEVCAP.TEE)
                doe_features/ doe_discovery vvvv:tt   (only with a DOE mailbox)
    devices/platform/hil-link-tsm/tsm/tsm0/   the TSM class device: device, subsystem, uevent
    class/tsm/tsm0 -> ../../devices/platform/hil-link-tsm/tsm/tsm0
    bus/pci/devices/<bdf> -> ../../../devices/...

``config`` reads and writes become configuration accesses to the device; ``tsm/connect`` runs
the emulated kernel's connect, whose link TSM does SPDM, the session and IDE_KM over the DOE
mailbox the kernel found at enumeration.

A control socket (``--control``) takes one JSON request per connection for what a lab does
to a host by hand: ``rescan`` (the endpoint removed and found again; ``hide_features`` makes
its mailbox lack those features, standing in for a device that does not list them), ``state``,
``link_down`` (what the Root Port sees when the board loses power).
With ``--device fake`` (an in-memory endpoint with the project's firmware, for tests) it also
takes ``firmware_counters``, ``fail_key_slot_writes_after``, ``power_cycle`` and
``device_fault``.

Run as ``python -m hil.lab.virtual_fs --socket S --mount M --bdf B [--control C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mfusepy import FUSE, FuseOSError, Operations

from ..sim.config_server import (
    OP_END,
    OP_IDLE,
    OP_READ,
    OP_RESET,
    OP_UNPLUG,
    OP_WRITE,
    OP_WRITE_BYTES,
    REQUEST,
    RESPONSE,
)
from ..transport import ConfigSpace
from .bdf import Bdf
from .virtual_kernel import VirtualKernel
from .virtual_rp import VirtualRootPort

__all__ = [
    "ConfigClient",
    "InMemoryEndpoint",
    "KernelControl",
    "SocketConfigSpace",
    "SyncConfig",
    "VirtualSysfs",
    "main",
]

log = logging.getLogger("hil.lab.virtual_fs")

ROOT_PORT_DEVFN = (1, 0)  # the Root Port is 00:01.0 on the root bus
TSM_PARENT = "platform/hil-link-tsm"  # the platform device the TSM class device hangs off


class SyncConfig(Protocol):
    """Blocking configuration access (what a sysfs ``config`` read or write becomes)."""

    def read32(self, offset: int) -> int: ...

    def write32(self, offset: int, value: int) -> None: ...

    def write_bytes(self, offset: int, data: bytes) -> None: ...


class ConfigClient:
    """Blocking client of the simulation's configuration socket (thread-safe)."""

    def __init__(self, path: Path | str, timeout_s: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.sock.connect(str(path))
        self._lock = threading.Lock()

    def _call(self, op: int, offset: int = 0, value: int = 0, size: int = 4) -> int:
        with self._lock:
            try:
                self.sock.sendall(REQUEST.pack(op, size, offset, value & 0xFFFFFFFF))
                data = b""
                while len(data) < RESPONSE.size:
                    chunk = self.sock.recv(RESPONSE.size - len(data))
                    if not chunk:
                        raise OSError(errno.EIO, "the simulation went away")
                    data += chunk
            except OSError as exc:
                # Whatever broke the socket, the host sees what a vanished device gives: EIO.
                raise OSError(errno.EIO, f"the simulation went away ({exc})") from None
        status, out = RESPONSE.unpack(data)
        if status:
            raise OSError(errno.EINVAL, f"config op {op} at {offset:#x} refused")
        return out

    def read32(self, offset: int) -> int:
        return self._call(OP_READ, offset)

    def write32(self, offset: int, value: int) -> None:
        self._call(OP_WRITE, offset, value)

    def write_bytes(self, offset: int, data: bytes) -> None:
        self._call(
            OP_WRITE_BYTES, offset, int.from_bytes(data.ljust(4, b"\0"), "little"), len(data)
        )

    def reset(self) -> None:
        self._call(OP_RESET)

    def unplug_uart(self) -> None:
        self._call(OP_UNPLUG)

    def idle(self, peer_received: int, peer_sent: int) -> bool:
        """Whether the simulated board has nothing in flight, given the controller's UART byte
        counts (op 7 of :mod:`hil.sim.config_server`; EINVAL when the board has no UART)."""
        received = peer_received & 0xFFFFFF
        return bool(self._call(OP_IDLE, received & 0xFFFF, peer_sent, received >> 16))

    def end(self) -> None:
        try:
            self._call(OP_END)
        except OSError:
            pass
        self.sock.close()


class SocketConfigSpace(ConfigSpace):
    """The same client as a ConfigSpace, for the emulated kernel."""

    def __init__(self, client: ConfigClient) -> None:
        self.client = client

    async def read32(self, offset: int) -> int:
        return self.client.read32(offset)

    async def write32(self, offset: int, value: int) -> None:
        self.client.write32(offset, value)

    async def write_bytes(self, offset: int, data: bytes) -> None:
        self.client.write_bytes(offset, data)


class InMemoryEndpoint:
    """An endpoint without a simulator, for tests: :class:`hil.fake.FakeConfigSpace` with the
    hard IP's DEVCAP.TEE and the project's firmware behind its mailbox (through a
    :class:`~hil.lab.firmware_tap.FirmwareTap`)."""

    def __init__(self, *, tee: bool = True) -> None:
        from ..fake import FakeConfigSpace
        from .firmware_tap import FirmwareTap

        tee_bit = (1 << 30) if tee else 0

        class _Space(FakeConfigSpace):
            async def read32(self, offset: int) -> int:
                value = await super().read32(offset)
                return value | tee_bit if offset == 0x44 else value  # Device Capabilities

        self.config = _Space()
        self.tap = FirmwareTap()
        self.start_firmware()

    def start_firmware(self) -> None:
        from ..firmware import Dsm

        dsm = Dsm(hdl_build="in-memory", regs=self.tap.port(self.config.firmware_regs()))
        self.config.doe.responder = self.tap.firmware(dsm.handle)

    def power_cycle(self) -> None:
        self.config.reset()
        self.start_firmware()

    def never_secure(self) -> None:
        """Fault: the IDE capability never lets a stream become Secure."""
        self.config.ide._evaluate = lambda j: None  # type: ignore[method-assign]

    # -- SyncConfig -----------------------------------------------------------------------------
    def read32(self, offset: int) -> int:
        return asyncio.run(self.config.read32(offset))

    def write32(self, offset: int, value: int) -> None:
        asyncio.run(self.config.write32(offset, value))

    def write_bytes(self, offset: int, data: bytes) -> None:
        asyncio.run(self.config.write_bytes(offset, data))


class _RootPortSync:
    def __init__(self, port: VirtualRootPort) -> None:
        self.port = port

    def read32(self, offset: int) -> int:
        return self.port.read32(offset)

    def write32(self, offset: int, value: int) -> None:
        self.port.write32(offset, value)

    def write_bytes(self, offset: int, data: bytes) -> None:
        shift = 8 * (offset & 3)
        be = ((1 << len(data)) - 1) << (offset & 3)
        self.port.write32(offset & ~3, int.from_bytes(data, "little") << shift, be)


Reader = Callable[[int, int], bytes]
Writer = Callable[[bytes, int], int]


@dataclass
class _Node:
    kind: str  # "dir", "file", "link"
    mode: int = 0o444
    target: str = ""
    read: Reader | None = None
    write: Writer | None = None
    size: int = 4096
    children: list[str] = field(default_factory=list)


def _config_reader(port: SyncConfig) -> Reader:
    def read(size: int, offset: int) -> bytes:
        end = min(offset + size, 4096)
        out = b""
        for dw in range(offset & ~3, end, 4):
            out += port.read32(dw).to_bytes(4, "little")
        skip = offset & 3
        return out[skip : skip + max(0, end - offset)]

    return read


def _config_writer(port: SyncConfig) -> Writer:
    def write(data: bytes, offset: int) -> int:
        pos = 0
        while pos < len(data):
            off = offset + pos
            if off % 4 == 0 and len(data) - pos >= 4:
                port.write32(off, int.from_bytes(data[pos : pos + 4], "little"))
                pos += 4
            else:
                n = min(2 - (off % 2), len(data) - pos) if off % 4 != 3 else 1
                port.write_bytes(off, data[pos : pos + n])
                pos += n
        return len(data)

    return write


def _text(fn: Callable[[], str]) -> Reader:
    def read(size: int, offset: int) -> bytes:
        return fn().encode()[offset : offset + size]

    return read


class VirtualSysfs(Operations):
    """The tree, rebuilt from the kernel's state whenever that state changes."""

    use_ns = True  # mfusepy: times in nanoseconds (nothing here sets times)

    def __init__(self, kernel: VirtualKernel, ep_port: SyncConfig) -> None:
        self.kernel = kernel
        self.ep_port = ep_port
        self.rp_port = _RootPortSync(kernel.root_port)
        self.mutex = threading.RLock()  # FUSE calls and control requests, one at a time
        self.nodes: dict[str, _Node] = {}
        hb = kernel.host_bridge
        self.bridge = f"/devices/{hb.name}"
        self.port = f"{self.bridge}/{kernel.rp.bdf}"
        self.dev = f"{self.port}/{kernel.ep.bdf}"
        self.rebuild()

    # -- building the tree ----------------------------------------------------------------------
    def rebuild(self) -> None:
        with self.mutex:
            self._build_again()

    def _build(self) -> None:
        k = self.kernel
        ep, rp, hb = k.ep, k.rp, k.host_bridge
        tsm_dir = f"/devices/{TSM_PARENT}/tsm"
        for d in ("/", "/devices", "/devices/platform", f"/devices/{TSM_PARENT}", tsm_dir):
            self._dir(d)
        self._dir("/class")
        self._dir("/class/tsm")
        for tsm in k.tsms.values():
            cls_dev = f"{tsm_dir}/{tsm.name}"
            self._dir(cls_dev)
            self._dir(f"{cls_dev}/power")
            self._file(f"{cls_dev}/uevent", 0o644, _text(lambda: ""), lambda d, o: len(d))
            self._link(f"{cls_dev}/device", f"../../../{TSM_PARENT.rsplit('/', 1)[1]}")
            self._link(f"{cls_dev}/subsystem", "../../../../../class/tsm")
            self._link(f"/class/tsm/{tsm.name}", f"../../devices/{TSM_PARENT}/tsm/{tsm.name}")
        self._dir(self.bridge)
        if hb.nr_ide_streams:  # pci_ide_attr_visible
            self._text(f"{self.bridge}/available_secure_streams", self._available)
        for name in sorted(hb.links):
            self._link(f"{self.bridge}/{name}", f"{rp.bdf}/{hb.links[name]}")
        ports: tuple[tuple[str, SyncConfig], ...] = (
            (self.port, self.rp_port),
            (self.dev, self.ep_port),
        )
        for path, port in ports:
            self._dir(path)
            self._file(
                f"{path}/config", 0o644, _config_reader(port), _config_writer(port), size=4096
            )
            self._text(f"{path}/vendor", lambda p=port: f"{p.read32(0) & 0xFFFF:#06x}\n")
            self._text(f"{path}/device", lambda p=port: f"{p.read32(0) >> 16:#06x}\n")
            self._text(f"{path}/class", lambda p=port: f"{p.read32(8) >> 8:#08x}\n")
        if k.tsm_group_visible(ep):
            self._text(f"{self.dev}/authenticated", lambda: ep.tsm + "\n")
            self._dir(f"{self.dev}/tsm")
            for attr in k.tsm_attrs(ep):
                path = f"{self.dev}/tsm/{attr}"
                if attr == "connect":
                    self._file(path, 0o644, _text(lambda: ep.tsm + "\n"), self._connect)
                elif attr == "disconnect":
                    self._file(path, 0o200, None, self._disconnect)
                elif attr == "dsm":
                    self._text(path, lambda: (str(ep.bdf) if ep.tsm else "") + "\n")
                elif attr == "bound":
                    self._text(path, lambda: "\n")  # no TDI is ever bound here
        if ep.mailboxes:  # pci_doe_sysfs_group: only with a mailbox
            self._dir(f"{self.dev}/doe_features")
            self._text(f"{self.dev}/doe_features/doe_discovery", lambda: "0001:00\n")
            for mb in ep.mailboxes:
                for vid, typ in mb.features:
                    name = f"{vid:04x}:{typ:02x}"
                    path = f"{self.dev}/doe_features/{name}"
                    if (vid, typ) == (1, 0) or path in self.nodes:
                        continue  # discovery has its own file; a repeat is skipped
                    self._text(path, lambda n=name: n + "\n")
        self._dir("/bus")
        self._dir("/bus/pci")
        self._dir("/bus/pci/devices")
        for bdf, path in ((rp.bdf, self.port), (ep.bdf, self.dev)):
            self._link(f"/bus/pci/devices/{bdf}", "../../.." + path)

    def _available(self) -> str:
        return f"{self.kernel.host_bridge.available_secure_streams}\n"

    def _add(self, path: str, node: _Node) -> None:
        self.nodes[path] = node
        if path != "/":
            parent, name = path.rsplit("/", 1)
            self.nodes[parent or "/"].children.append(name)

    def _dir(self, path: str) -> None:
        if path not in self.nodes:
            self._add(path, _Node("dir", 0o755))

    def _link(self, path: str, target: str) -> None:
        self._add(path, _Node("link", 0o777, target=target))

    def _file(
        self, path: str, mode: int, read: Reader | None, write: Writer | None, size: int = 4096
    ) -> None:
        self._add(path, _Node("file", mode, read=read, write=write, size=size))

    def _text(self, path: str, fn: Callable[[], str]) -> None:
        self._file(path, 0o444, _text(fn), None)

    # -- the kernel's stores ----------------------------------------------------------------------
    def _connect(self, data: bytes, offset: int) -> int:
        try:
            return self.kernel.connect_store(data)
        except OSError as exc:
            log.warning("tsm/connect %r: %s", data, exc)
            raise
        finally:
            self._build_again()

    def _disconnect(self, data: bytes, offset: int) -> int:
        try:
            return self.kernel.disconnect_store(data)
        finally:
            self._build_again()

    def _build_again(self) -> None:
        self.nodes = {}
        self._build()

    # -- control requests (a lab engineer's hands) -------------------------------------------------
    def rescan(self, hide_features: list[str]) -> dict[str, Any]:
        """The endpoint removed and found again (``echo 1 > remove; echo 1 > rescan``): its
        mailbox created afresh, its IDE registers parked; ``hide_features`` (``vvvv:tt``) are
        left out of what its mailbox lists."""
        with self.mutex:
            if self.kernel.ep.tsm:
                raise OSError(errno.EBUSY, "the endpoint is connected: disconnect first")
            hidden = set()
            for text in hide_features:
                vid, typ = (int(x, 16) for x in text.split(":"))
                hidden.add((vid, typ))
            self.kernel.hidden_features = hidden
            self.kernel.run(self.kernel.enumerate_endpoint())
            self._build_again()
            return self.state()

    def state(self) -> dict[str, Any]:
        k = self.kernel
        tsm = k.tsms[0]
        return {
            "connected": k.ep.tsm,
            "available_secure_streams": k.host_bridge.available_secure_streams,
            "links": sorted(k.host_bridge.links),
            "features": [f"{v:04x}:{t:02x}" for mb in k.ep.mailboxes for v, t in mb.features],
            "enable_failures": tsm.enable_failures,
            "key_progs": tsm.key_progs,
            "events": k.events[-50:],
        }

    # -- FUSE operations ------------------------------------------------------------------------
    def _node(self, path: str) -> _Node:
        node = self.nodes.get(path)
        if node is None:
            raise FuseOSError(errno.ENOENT)
        return node

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        with self.mutex:
            node = self._node(path)
        now = time.time_ns()
        base = {"st_atime": now, "st_mtime": now, "st_ctime": now, "st_uid": 0, "st_gid": 0}
        if node.kind == "dir":
            return {**base, "st_mode": stat.S_IFDIR | node.mode, "st_nlink": 2}
        if node.kind == "link":
            return {
                **base,
                "st_mode": stat.S_IFLNK | 0o777,
                "st_nlink": 1,
                "st_size": len(node.target),
            }
        return {**base, "st_mode": stat.S_IFREG | node.mode, "st_nlink": 1, "st_size": node.size}

    def readdir(self, path: str, fh: Any) -> list[str]:
        with self.mutex:
            return [".", "..", *self._node(path).children]

    def readlink(self, path: str) -> str:
        with self.mutex:
            return self._node(path).target

    def open(self, path: str, flags: int) -> int:
        with self.mutex:
            self._node(path)
        return 0

    def truncate(self, path: str, length: int, fh: Any = None) -> None:
        return None

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        with self.mutex:
            node = self._node(path)
            if node.read is None:
                raise FuseOSError(errno.EACCES)
            try:
                return node.read(size, offset)
            except OSError as exc:
                raise FuseOSError(exc.errno or errno.EIO) from None

    def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
        with self.mutex:
            node = self._node(path)
            if node.write is None:
                raise FuseOSError(errno.EACCES)
            try:
                return node.write(data, offset)
            except FuseOSError:
                raise
            except OSError as exc:
                raise FuseOSError(exc.errno or errno.EIO) from None
            except Exception:  # a bug must not take the mount down: the write fails
                log.exception("write to %s", path)
                raise FuseOSError(errno.EIO) from None


# -- the control socket ---------------------------------------------------------------------------
def serve_control(
    fs: VirtualSysfs, path: Path, extra: dict[str, Callable[[dict[str, Any]], Any]]
) -> threading.Thread:
    """Answer one JSON request per connection on ``path`` in a thread of its own."""
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def handle(request: dict[str, Any]) -> Any:
        op = request.get("op")
        if op == "rescan":
            return fs.rescan(list(request.get("hide_features", [])))
        if op == "state":
            with fs.mutex:
                return fs.state()
        if op == "link_down":
            with fs.mutex:
                if fs.kernel.root_port.ide is not None:
                    fs.kernel.root_port.ide.link_down()
                return fs.state()
        if op in extra:
            with fs.mutex:
                return extra[op](request)
        raise ValueError(f"unknown request {op!r}")

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    data = b""
                    while not data.endswith(b"\n"):
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    answer = {"ok": handle(json.loads(data))}
                except Exception as exc:  # one bad request does not end the tree
                    answer = {"error": str(exc), "errno": getattr(exc, "errno", None)}
                try:
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                except OSError:
                    pass

    thread = threading.Thread(target=loop, name="kernel-control", daemon=True)
    thread.start()
    return thread


class KernelControl:
    """Client of a virtual host's control socket."""

    def __init__(self, path: Path | str, timeout_s: float = 300.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s

    def ask(self, op: str, **args: Any) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout_s)
            s.connect(str(self.path))
            s.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        answer = json.loads(data)
        if "error" in answer:
            raise OSError(answer.get("errno") or errno.EIO, answer["error"])
        return answer["ok"]

    def rescan_device(self, hide_features: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        return self.ask("rescan", hide_features=list(hide_features))

    def state(self) -> dict[str, Any]:
        return self.ask("state")

    def link_down(self) -> None:
        """The endpoint's link went down and up (a power cycle): the Root Port's streams
        leave Secure."""
        self.ask("link_down")

    # -- an in-memory endpoint's firmware and faults (--device fake) ----------------------------
    def firmware_counters(self) -> dict[str, int]:
        return self.ask("firmware_counters")

    def fail_key_slot_writes_after(self, slots: int | None) -> None:
        self.ask("fail_key_slot_writes_after", slots=slots)

    def device_fault(self, name: str) -> None:
        self.ask("device_fault", name=name)

    async def power_cycle(self, **_: Any) -> None:
        await asyncio.to_thread(self.ask, "power_cycle")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", help="the simulation's configuration socket")
    ap.add_argument("--device", choices=("sim", "fake"), default="sim")
    ap.add_argument("--mount", required=True)
    ap.add_argument("--bdf", default="0000:01:00.0")
    ap.add_argument("--control", help="the control socket to serve")
    ap.add_argument("--doe-timeout-s", type=float, default=1.0)
    ap.add_argument("--no-root-port-ide", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from ..firmware import test_pki

    bdf = Bdf.parse(args.bdf)
    if bdf.bus == 0:
        raise SystemExit(f"{bdf}: the endpoint must sit below the Root Port (bus 1 or more)")
    extra: dict[str, Callable[[dict[str, Any]], Any]] = {}
    ep_port: SyncConfig
    if args.device == "fake":
        endpoint = InMemoryEndpoint()
        ep_config: ConfigSpace = endpoint.config
        ep_port = endpoint
        extra = {
            "firmware_counters": lambda r: endpoint.tap.counters(),
            "fail_key_slot_writes_after": lambda r: endpoint.tap.fail_key_slot_writes_after(
                r.get("slots")
            ),
            "power_cycle": lambda r: (endpoint.power_cycle(), rp.ide and rp.ide.link_down()),
            "device_fault": lambda r: (
                endpoint.never_secure() if r.get("name") == "never_secure" else None
            ),
        }
    else:
        if not args.socket:
            raise SystemExit("--socket is needed with --device sim")
        client = ConfigClient(args.socket)
        ep_config = SocketConfigSpace(client)
        ep_port = client
    rp = VirtualRootPort(
        Bdf(bdf.domain, 0, *ROOT_PORT_DEVFN), bdf.bus, ide=not args.no_root_port_ide
    )
    kernel = VirtualKernel(
        bdf,
        ep_config,
        rp,
        doe_timeout_s=args.doe_timeout_s,
        trust_anchor=test_pki().trust_anchor,
    )
    kernel.run(kernel.enumerate())
    fs = VirtualSysfs(kernel, ep_port)
    if args.control:
        serve_control(fs, Path(args.control), extra)
    os.makedirs(args.mount, exist_ok=True)
    FUSE(fs, args.mount, foreground=True, nothreads=True, direct_io=True)


if __name__ == "__main__":
    main()
