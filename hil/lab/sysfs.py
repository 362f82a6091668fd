"""Configuration space through Linux sysfs (``drivers/pci/pci-sysfs.c``).

``/sys/bus/pci/devices/<bdf>/config`` takes 4-byte little-endian ``pread``/``pwrite`` at absolute
offsets; each becomes one config DW access.  Without CAP_SYS_ADMIN reads stop after 64 bytes,
so the extended capabilities (0x100 on) need root; under kernel lockdown writes fail with EPERM.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import RigError
from ..transport import ConfigSpace
from .bdf import Bdf

__all__ = ["ReadOnlyConfigSpace", "SysfsConfigSpace", "SysfsError", "device_dir"]


class SysfsError(RigError):
    """The host would not give access to the device's configuration space."""


def device_dir(sysfs_root: Path, bdf: Bdf) -> Path:
    """``<root>/bus/pci/devices/<bdf>``, built only from a validated BDF."""
    return Path(sysfs_root) / "bus" / "pci" / "devices" / str(bdf)


class SysfsConfigSpace(ConfigSpace):
    """One function's configuration space under a sysfs root (``/sys`` on a lab host)."""

    def __init__(self, bdf: Bdf | str, sysfs_root: Path | str = "/sys") -> None:
        self.bdf = bdf if isinstance(bdf, Bdf) else Bdf.parse(bdf)
        self.root = Path(sysfs_root)
        self.dir = device_dir(self.root, self.bdf)
        self.path = self.dir / "config"
        self._fd: int | None = None
        self.size = 0
        self.accesses = 0

    # -- opening --------------------------------------------------------------------------------
    def open(self) -> None:
        if not self.dir.exists():
            raise SysfsError(f"no PCI device {self.bdf} under {self.root} (is it plugged in?)")
        try:
            self._fd = os.open(self.path, os.O_RDWR)
        except PermissionError:
            raise SysfsError(
                f"{self.path}: permission denied; configuration writes need root"
            ) from None
        except OSError as exc:
            raise SysfsError(f"{self.path}: {exc.strerror}") from None
        self.size = os.fstat(self._fd).st_size or 4096
        # A reader without CAP_SYS_ADMIN gets only the first 64 bytes, whatever the file size.
        try:
            probe = os.pread(self._fd, 4, 0x100) if self.size > 0x100 else b""
        except OSError as exc:
            self.close()
            raise self._error("read", 0x100, exc) from None
        if self.size > 0x100 and len(probe) < 4:
            self.close()
            raise SysfsError(
                f"{self.path}: reads stop at 64 bytes: not root (CAP_SYS_ADMIN), so the "
                "extended capabilities are out of reach"
            )

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SysfsConfigSpace:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _need_fd(self) -> int:
        if self._fd is None:
            self.open()
        assert self._fd is not None
        return self._fd

    # -- access ---------------------------------------------------------------------------------
    def _check(self, offset: int, size: int) -> None:
        self.check_offset(offset, size)
        if self.size and offset + size > self.size:
            raise SysfsError(
                f"{self.bdf}: offset {offset:#x} beyond its {self.size}-byte config space"
            )

    async def read32(self, offset: int) -> int:
        self._check(offset, 4)
        fd = self._need_fd()
        try:
            data = os.pread(fd, 4, offset)
        except OSError as exc:
            raise self._error("read", offset, exc) from None
        if len(data) != 4:
            raise SysfsError(f"{self.path}: short read at {offset:#x} (device gone, or not root)")
        self.accesses += 1
        return int.from_bytes(data, "little")

    async def write32(self, offset: int, value: int) -> None:
        self._check(offset, 4)
        await self._write(offset, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    async def write_bytes(self, offset: int, data: bytes) -> None:
        self._check(offset, len(data))
        await self._write(offset, data)

    async def _write(self, offset: int, data: bytes) -> None:
        fd = self._need_fd()
        try:
            n = os.pwrite(fd, data, offset)
        except OSError as exc:
            raise self._error("write", offset, exc) from None
        if n != len(data):
            raise SysfsError(f"{self.path}: short write at {offset:#x}")
        self.accesses += 1

    def _error(self, what: str, offset: int, exc: OSError) -> SysfsError:
        if exc.errno == errno.EPERM and what == "write":
            return SysfsError(
                f"{self.path}: write at {offset:#x} refused (EPERM): the kernel is locked down "
                "(lockdown=integrity/confidentiality forbids PCI config writes)"
            )
        if exc.errno in (errno.ENODEV, errno.ENOENT, errno.EIO):
            return SysfsError(f"{self.bdf}: {what} at {offset:#x} failed: the device is gone")
        return SysfsError(f"{self.path}: {what} at {offset:#x} failed: {exc.strerror}")

    # -- what sysfs says about the device -------------------------------------------------------
    def doe_features(self) -> list[tuple[int, int]] | None:
        """The kernel's discovery result (``doe_features/``, v6.15+), or None if absent."""
        d = self.dir / "doe_features"
        if not d.is_dir():
            return None
        feats = []
        for entry in sorted(d.iterdir()):
            text = entry.read_text().strip() if entry.name == "doe_discovery" else entry.name
            try:
                vid, typ = (int(x, 16) for x in text.split(":"))
            except ValueError:
                continue
            feats.append((vid, typ))
        return sorted(set(feats))

    def tsm_connected(self) -> str:
        """The TSM this device is connected to (``tsm/connect``), or "" when none."""
        path = self.dir / "tsm" / "connect"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise SysfsError(f"{path}: {exc.strerror}") from None

    def check_doe_free(self) -> None:
        """Refuse DOE traffic while the kernel's TSM owns the mailbox (a connected device)."""
        tsm = self.tsm_connected()
        if tsm:
            raise SysfsError(
                f"{self.bdf} is connected to {tsm}: its DOE mailbox belongs to the kernel; "
                f"disconnect first (echo {tsm} > {self.dir / 'tsm' / 'disconnect'})"
            )


class ReadOnlyConfigSpace(ConfigSpace):
    """A function's ``config`` file opened for reading only (a Root Port the kernel owns:
    looked at, never written)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    async def read32(self, offset: int) -> int:
        self.check_offset(offset)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise SysfsError(f"{self.path}: {exc.strerror}") from None
        try:
            data = os.pread(fd, 4, offset)
        except OSError as exc:
            raise SysfsError(f"{self.path}: read at {offset:#x} failed: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) != 4:
            raise SysfsError(
                f"{self.path}: short read at {offset:#x} (reads past 64 bytes need root)"
            )
        return int.from_bytes(data, "little")

    async def write32(self, offset: int, value: int) -> None:
        raise SysfsError(f"{self.path} is only read here")
