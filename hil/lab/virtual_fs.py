"""A sysfs tree served with FUSE, backed by the simulated endpoint: the virtual FPGA rig's host.

``bus/pci/devices/<bdf>/config`` reads and writes become configuration accesses to the running
simulation (``hil.sim.config_server``); ``doe_features/`` holds the discovery result;
``class/tsm/tsm0`` and the device's ``tsm/`` files behave as the kernel's do (v6.19 ABI,
errno for errno), and writing ``tsm0`` to ``tsm/connect`` runs the project's own requester as
the platform TSM over the same DOE mailbox.

Run as ``python -m hil.lab.virtual_fs --socket S --mount M --bdf B``.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mfusepy import FUSE, FuseOSError, Operations

from .. import _regs as R
from ..host.doe import DoeMailbox
from ..host.spdm import SpdmRequester
from ..sim.config_server import (
    OP_END,
    OP_READ,
    OP_RESET,
    OP_UNPLUG,
    OP_WRITE,
    OP_WRITE_BYTES,
    REQUEST,
    RESPONSE,
)
from ..transport import AsyncioTimebase, ConfigSpace
from .bdf import Bdf

__all__ = ["ConfigClient", "SocketConfigSpace", "VirtualSysfs", "main"]

log = logging.getLogger("hil.lab.virtual_fs")

#: The kernel waits 1 s for a DOE response; the simulated device runs slower than silicon and
#: shares the machine, so its emulated TSM waits longer in wall time.
SIM_DOE_TIMEOUT_S = 20.0
IDE_STREAM_BASE = 0x10  # Stream IDs the emulated host bridge hands out


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

    def end(self) -> None:
        try:
            self._call(OP_END)
        except OSError:
            pass
        self.sock.close()


class SocketConfigSpace(ConfigSpace):
    """The same client as a ConfigSpace, for the platform-TSM emulation."""

    def __init__(self, client: ConfigClient) -> None:
        self.client = client

    async def read32(self, offset: int) -> int:
        return self.client.read32(offset)

    async def write32(self, offset: int, value: int) -> None:
        self.client.write32(offset, value)


@dataclass
class _Node:
    kind: str  # "dir", "file", "link"
    mode: int = 0o444
    target: str = ""
    read: object = None  # callable(size, offset) -> bytes
    write: object = None  # callable(data, offset) -> int
    size: int = 4096
    children: list[str] = field(default_factory=list)


class VirtualSysfs(Operations):
    """The tree.  One PCI function (``bdf``) under one host bridge, one link TSM (tsm0)."""

    use_ns = True  # mfusepy: times in nanoseconds (nothing here sets times)

    def __init__(self, client: ConfigClient, bdf: Bdf, *, streams: int = 4) -> None:
        self.client = client
        self.bdf = bdf
        self.connected = ""
        self.streams_free = streams
        self.nodes: dict[str, _Node] = {}
        self._tsm_lock = threading.Lock()
        bridge = f"/devices/pci{bdf.domain:04x}:{bdf.bus - 1 if bdf.bus else 0:02x}"
        port = f"{bridge}/{bdf.domain:04x}:00:01.0"
        dev = f"{port}/{bdf}"
        self.dev = dev
        self.bridge = bridge
        self.stream: str | None = None  # the streamH.R.E link of the connected device
        for d in (
            "/",
            "/devices",
            bridge,
            port,
            dev,
            "/bus",
            "/bus/pci",
            "/bus/pci/devices",
            "/class",
            "/class/tsm",
            "/class/tsm/tsm0",
            f"{dev}/tsm",
            f"{dev}/doe_features",
        ):
            self._dir(d)
        self._link(f"/bus/pci/devices/{bdf}", "../../.." + dev)
        self._file(f"{dev}/config", 0o644, self._config_read, self._config_write, size=4096)
        self._text(f"{dev}/vendor", lambda: f"{self.client.read32(0) & 0xFFFF:#06x}\n")
        self._text(f"{dev}/device", lambda: f"{self.client.read32(0) >> 16:#06x}\n")
        self._text(f"{dev}/authenticated", lambda: self.connected + "\n")
        self._text(f"{bridge}/available_secure_streams", lambda: f"{self.streams_free}\n")
        self._text(f"{dev}/tsm/dsm", lambda: (str(bdf) if self.connected else "") + "\n")
        self._text(f"{dev}/tsm/bound", lambda: "\n")
        self._file(
            f"{dev}/tsm/connect",
            0o644,
            self._text_reader(lambda: self.connected + "\n"),
            self._connect,
        )
        self._file(f"{dev}/tsm/disconnect", 0o200, None, self._disconnect)
        for vid, typ in self._discover():
            name = f"{vid:04x}:{typ:02x}"
            if typ == 0:
                self._text(f"{dev}/doe_features/doe_discovery", lambda n=name: n + "\n")
            else:
                self._text(f"{dev}/doe_features/{name}", lambda: "")

    # -- building the tree ----------------------------------------------------------------------
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

    def _file(self, path: str, mode: int, read, write, size: int = 4096) -> None:
        self._add(path, _Node("file", mode, read=read, write=write, size=size))

    @staticmethod
    def _text_reader(fn):
        def read(size: int, offset: int) -> bytes:
            return fn().encode()[offset : offset + size]

        return read

    def _text(self, path: str, fn) -> None:
        self._file(path, 0o444, self._text_reader(fn), None)

    def _discover(self) -> list[tuple[int, int]]:
        """What the kernel does at enumeration: Abort, then Discovery on the DOE mailbox."""
        try:
            mbx = DoeMailbox(
                SocketConfigSpace(self.client),
                R.DOE_CAP_OFFSET,
                AsyncioTimebase(),
                poll_interval_s=0.0,
            )

            async def run() -> list[tuple[int, int]]:
                await mbx.init()
                return await mbx.discover()

            return asyncio.run(run())
        except Exception as exc:  # a device that fails discovery lists no features
            log.warning("discovery failed: %s", exc)
            return []

    # -- config ---------------------------------------------------------------------------------
    def _config_read(self, size: int, offset: int) -> bytes:
        end = min(offset + size, 4096)
        out = b""
        for dw in range(offset & ~3, end, 4):
            out += self.client.read32(dw).to_bytes(4, "little")
        skip = offset & 3
        return out[skip : skip + max(0, end - offset)]

    def _config_write(self, data: bytes, offset: int) -> int:
        pos = 0
        while pos < len(data):
            off = offset + pos
            if off % 4 == 0 and len(data) - pos >= 4:
                self.client.write32(off, int.from_bytes(data[pos : pos + 4], "little"))
                pos += 4
            else:
                n = min(2 - (off % 2), len(data) - pos) if off % 4 != 3 else 1
                self.client.write_bytes(off, data[pos : pos + n])
                pos += n
        return len(data)

    # -- the kernel's TSM behaviour -------------------------------------------------------------
    @staticmethod
    def _tsm_name(data: bytes) -> str:
        text = data.decode(errors="replace").strip()
        if not (text.startswith("tsm") and text[3:].isdigit()):
            raise FuseOSError(errno.EINVAL)
        return text

    def _connect(self, data: bytes, offset: int) -> int:
        name = self._tsm_name(data)
        with self._tsm_lock:
            if name != "tsm0":
                raise FuseOSError(errno.ENXIO)
            if self.connected:
                raise FuseOSError(errno.EBUSY)
            try:
                self._platform_tsm_connect()
            except Exception as exc:
                log.warning("connect failed: %s", exc)
                raise FuseOSError(errno.EIO) from None
            self.connected = name
        return len(data)

    def _disconnect(self, data: bytes, offset: int) -> int:
        name = self._tsm_name(data)
        with self._tsm_lock:
            if not self.connected:
                raise FuseOSError(errno.ENXIO)
            if name != self.connected:
                raise FuseOSError(errno.EINVAL)
            try:
                self._platform_tsm_disconnect()
            except Exception as exc:  # the device may be gone: the host side is undone anyway
                log.warning("disconnect: %s", exc)
            self.connected = ""
        return len(data)

    def _remove(self, path: str) -> None:
        if self.nodes.pop(path, None) is not None:
            parent, name = path.rsplit("/", 1)
            self.nodes[parent or "/"].children.remove(name)

    def _platform_tsm_connect(self) -> None:
        """What a link TSM's ->connect() does: SPDM over the CMA DOE mailbox, a session, then
        IDE: a Selective stream keyed over IDE_KM and enabled (Linux's pci_ide_stream_setup,
        the TSM's key programming, pci_ide_stream_enable), and the host bridge's
        ``streamH.R.E`` link to the device with one secure stream fewer available."""
        from ..firmware import test_pki
        from ..host.ide_km import IdeKmRequester

        if self.streams_free < 1:
            raise OSError(errno.ENOSPC, "no secure stream left at the host bridge")
        config = SocketConfigSpace(self.client)
        mbx = DoeMailbox(
            config,
            R.DOE_CAP_OFFSET,
            AsyncioTimebase(),
            timeout_s=SIM_DOE_TIMEOUT_S,
            poll_interval_s=0.0,
        )
        stream_id = IDE_STREAM_BASE + self.streams_free - 1  # from the host bridge's pool

        async def run() -> None:
            await mbx.init()
            features = await mbx.discover()
            if (1, 1) not in features:
                raise OSError(errno.ENXIO, "no CMA/SPDM DOE feature")
            req = SpdmRequester(mbx, trust_anchor=test_pki().trust_anchor)
            await req.authenticate()
            session = await req.key_exchange()
            self.session = (req, session)
            km = IdeKmRequester(req, session, config)
            await km.query()
            regs = await km.setup_stream(0, stream_id)
            await km.program_all(stream_id, 0)
            await km.go_all(stream_id, 0)
            state = await km.enable(regs, stream_id)
            if state != 0b0010:
                raise OSError(errno.EIO, f"IDE stream state {state:04b} after enable")
            self.ide = (regs, stream_id)

        asyncio.run(run())
        self.streams_free -= 1
        self.stream = f"{self.bridge}/stream0.0.0"  # host bridge, root port, endpoint indexes
        self._link(self.stream, "./" + self.dev[len(self.bridge) + 1 :])

    def _platform_tsm_disconnect(self) -> None:
        """->disconnect(): the stream disabled and released, the session ended."""
        if self.stream is not None:
            self._remove(self.stream)
            self.stream = None
            self.streams_free += 1
        ide, self.ide = getattr(self, "ide", None), None
        session, self.session = getattr(self, "session", None), None
        config = SocketConfigSpace(self.client)

        async def run() -> None:
            if ide is not None:
                regs, stream_id = ide
                await config.write32(regs.control, stream_id << 24)  # Enable = 0
            if session is not None:
                req, sess = session
                await req.end_session(sess)

        asyncio.run(run())

    # -- FUSE operations ------------------------------------------------------------------------
    def _node(self, path: str) -> _Node:
        node = self.nodes.get(path)
        if node is None:
            raise FuseOSError(errno.ENOENT)
        return node

    def getattr(self, path: str, fh=None) -> dict:
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

    def readdir(self, path: str, fh) -> list[str]:
        return [".", "..", *self._node(path).children]

    def readlink(self, path: str) -> str:
        return self._node(path).target

    def open(self, path: str, flags: int) -> int:
        self._node(path)
        return 0

    def truncate(self, path: str, length: int, fh=None) -> None:
        return None

    def read(self, path: str, size: int, offset: int, fh) -> bytes:
        node = self._node(path)
        if node.read is None:
            raise FuseOSError(errno.EACCES)
        try:
            return node.read(size, offset)
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from None

    def write(self, path: str, data: bytes, offset: int, fh) -> int:
        node = self._node(path)
        if node.write is None:
            raise FuseOSError(errno.EACCES)
        try:
            return node.write(data, offset)
        except FuseOSError:
            raise
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--mount", required=True)
    ap.add_argument("--bdf", default="0000:01:00.0")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    client = ConfigClient(args.socket)
    fs = VirtualSysfs(client, Bdf.parse(args.bdf))
    FUSE(fs, args.mount, foreground=True, nothreads=True, direct_io=True)


if __name__ == "__main__":
    main()
