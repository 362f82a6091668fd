"""The kernel TSM sysfs ABI on a Linux host (merged in v6.19: drivers/pci/tsm.c, tsm-core.c).

- ``/sys/class/tsm/tsmN``: the TSMs;
- ``<dev>/tsm/connect`` (write ``tsmN``; reads the name or an empty line), ``tsm/disconnect``,
  ``tsm/dsm``, ``tsm/bound``; ``<dev>/authenticated`` (the TSM name; the native-CMA proposal
  reads 0/1 instead: both are understood);
- the host bridge's ``available_secure_streams`` and ``streamH.R.E`` links to the endpoint
  (``available_secure_streams`` is on every host bridge of a kernel with ``CONFIG_PCI_IDE``,
  which ``PCI_TSM`` selects: its presence says nothing about IDE, only the links and the
  stream registers do);
- the endpoint's Root Port, found above it in ``/sys/devices``, whose ``config`` is read (never
  written) to see its end of a stream.

The proposed guest-side files (``tsm/lock``, ``tsm/unlock``, ``tsm/accept``, ``pci_mode``) are
used only when present: :meth:`KernelTsm.supports` says which.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from ..errors import HilError, RigError
from ..transport import ConfigSpace
from .bdf import Bdf
from .sysfs import ReadOnlyConfigSpace, device_dir

__all__ = ["KernelTsm", "PcieFunction", "TsmError", "pcie_function"]

_TSM_NAME = re.compile(r"^tsm\d+$")
_STREAM = re.compile(r"^stream(\d+)\.(\d+)\.(\d+)$")
_BDF_DIR = re.compile(r"^[0-9a-f]{4,}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$")
PCI_EXP_TYPE_ROOT_PORT = 0x4
PCI_EXP_DEVCAP_TEE = 1 << 30  # Device Capabilities: TEE-IO Supported (PCIe 6.x §7.5.3.3)


class PcieFunction:
    """What a function's PCI Express capability says (PCIe 6.x §7.5.3)."""

    def __init__(self, offset: int, header: int, devcap: int) -> None:
        self.offset = offset
        self.port_type = (header >> 20) & 0xF  # Device/Port Type
        self.devcap = devcap

    @property
    def tee_io(self) -> bool:
        return bool(self.devcap & PCI_EXP_DEVCAP_TEE)


async def pcie_function(config: ConfigSpace) -> PcieFunction | None:
    """The PCI Express capability, from the Capabilities Pointer's list (None: no such cap)."""
    ptr = (await config.read32(0x34)) & 0xFC
    seen: set[int] = set()
    while 0x40 <= ptr < 0x100 and ptr not in seen:
        seen.add(ptr)
        header = await config.read32(ptr)
        if header & 0xFF == 0x10:
            return PcieFunction(ptr, header, await config.read32(ptr + 4))
        ptr = (header >> 8) & 0xFC
    return None


#: What each errno means for each file, in words a lab engineer can act on.
_MEANING = {
    ("connect", errno.EBUSY): "the device is already connected to a TSM (disconnect it first)",
    ("connect", errno.ENXIO): (
        "no such TSM, it is not a link TSM, or the device has no CMA DOE mailbox "
        "(pci_find_doe_mailbox found no 0001:01 feature)"
    ),
    ("connect", errno.EINVAL): "the TSM name is not of the form tsmN",
    ("connect", errno.EINTR): "interrupted while waiting for the TSM",
    ("disconnect", errno.ENXIO): "the device is not connected",
    ("disconnect", errno.EINVAL): "the device is connected to another TSM",
    ("lock", errno.EBUSY): "the device has a TSM context or is bound to a driver",
    ("lock", errno.ENXIO): "that TSM is not a devsec (guest) TSM",
    ("lock", errno.EINVAL): "bad TSM name",
    ("unlock", errno.EINVAL): "the device is not locked, or by another TSM",
    ("unlock", errno.EBUSY): "the device is bound to a driver",
    ("accept", errno.EINVAL): "the device is not locked",
    ("accept", errno.EBUSY): "the device is bound to a driver",
}


class TsmError(RigError):
    """A TSM operation failed; ``errno`` is the kernel's answer."""

    def __init__(self, message: str, err: int | None = None) -> None:
        super().__init__(message)
        self.errno = err


class KernelTsm:
    """One PCI device (the DSM, function 0) and the host's TSMs, under a sysfs root."""

    OPTIONAL = ("lock", "unlock", "accept")

    def __init__(self, bdf: Bdf | str, sysfs_root: Path | str = "/sys") -> None:
        self.bdf = bdf if isinstance(bdf, Bdf) else Bdf.parse(bdf)
        self.root = Path(sysfs_root)
        self.dev = device_dir(self.root, self.bdf)

    # -- discovery ------------------------------------------------------------------------------
    def tsms(self) -> list[str]:
        cls = self.root / "class" / "tsm"
        if not cls.is_dir():
            return []
        return sorted(
            (p.name for p in cls.iterdir() if _TSM_NAME.match(p.name)), key=lambda n: int(n[3:])
        )

    def has_tsm_dir(self) -> bool:
        return (self.dev / "tsm").is_dir()

    def supports(self, name: str) -> bool:
        """Whether this kernel has ``tsm/<name>`` (the proposed lock/unlock/accept)."""
        return (self.dev / "tsm" / name).exists()

    def pci_mode(self, tsm: str) -> str | None:
        """``link``, ``devsec`` or ``none`` where the kernel has the proposed attribute."""
        path = self.root / "class" / "tsm" / self._name(tsm) / "pci_mode"
        return path.read_text().strip() if path.exists() else None

    # -- the merged ABI -------------------------------------------------------------------------
    def _name(self, tsm: str) -> str:
        if not _TSM_NAME.match(tsm):
            raise TsmError(f"{tsm!r} is not a TSM name (tsmN)", errno.EINVAL)
        return tsm

    def _file(self, name: str) -> Path:
        if not self.dev.exists():
            raise TsmError(f"no PCI device {self.bdf} under {self.root}", errno.ENODEV)
        if not self.has_tsm_dir():
            raise TsmError(
                f"{self.bdf} has no tsm/ directory: no link TSM is registered, or the device "
                "is not a PF0/DSM (function 0 with IDE or DEVCAP TEE)",
                errno.ENOENT,
            )
        return self.dev / "tsm" / name

    def _read(self, name: str) -> str:
        path = self._file(name)
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise TsmError(f"{path} does not exist on this kernel", errno.ENOENT) from None
        except OSError as exc:
            raise TsmError(f"{path}: {exc.strerror}", exc.errno) from None

    def _write(self, name: str, value: str) -> None:
        path = self._file(name)
        if not path.exists():
            raise TsmError(f"{path} does not exist on this kernel", errno.ENOENT)
        try:  # one write(2), as `echo` makes: a refused write is not retried at close
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            why = _MEANING.get((name, exc.errno or 0), exc.strerror or "failed")
            raise TsmError(
                f"echo {value.strip()} > {path}: {errno.errorcode.get(exc.errno or 0, '?')}: {why}",
                exc.errno,
            ) from None

    def connected(self) -> str:
        return self._read("connect")

    def connect(self, tsm: str) -> None:
        self._write("connect", self._name(tsm) + "\n")

    def store(self, name: str, text: str) -> None:
        """Write ``text`` as it is to ``tsm/<name>`` (what the kernel makes of any input)."""
        self._write(name, text)

    def disconnect(self, tsm: str) -> None:
        self._write("disconnect", self._name(tsm) + "\n")

    def dsm(self) -> str:
        return self._read("dsm")

    def bound(self) -> str:
        return self._read("bound")

    def authenticated(self) -> bool:
        """True when authenticated: a TSM name (merged ABI) or ``1`` (native CMA proposal)."""
        path = self.dev / "authenticated"
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise TsmError(f"{path}: {exc.strerror}", exc.errno) from None
        return text not in ("", "0")

    # -- the proposed guest-side files ----------------------------------------------------------
    def lock(self, tsm: str) -> None:
        self._write("lock", self._name(tsm) + "\n")

    def unlock(self, tsm: str) -> None:
        self._write("unlock", self._name(tsm) + "\n")

    def accept(self) -> None:
        self._write("accept", "1\n")

    # -- IDE streams at the host bridge ---------------------------------------------------------
    def host_bridge(self) -> Path | None:
        real = self.dev.resolve()
        for parent in [real, *real.parents]:
            if parent.name.startswith("pci") and ":" in parent.name:
                return parent
        return None

    def available_secure_streams(self) -> int | None:
        bridge = self.host_bridge()
        path = bridge / "available_secure_streams" if bridge else None
        if path is None or not path.exists():
            return None
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise TsmError(f"{path}: {exc}") from None

    def streams(self) -> list[tuple[int, int, int]]:
        """The (H, R, E) of every ``streamH.R.E`` link at the host bridge naming this device."""
        bridge = self.host_bridge()
        if bridge is None:
            return []
        mine = self.dev.resolve()
        found = []
        for entry in bridge.iterdir():
            m = _STREAM.match(entry.name)
            if m and entry.is_symlink() and entry.resolve() == mine:
                found.append(tuple(int(x) for x in m.groups()))
        return sorted(found)  # type: ignore[arg-type]

    # -- the Root Port above the device -----------------------------------------------------------
    async def root_port(self) -> Path | None:
        """The device's Root Port in ``/sys/devices``: the nearest function above it whose PCI
        Express capability says Root Port (None when none is readable)."""
        for parent in self.dev.resolve().parents:
            if not _BDF_DIR.match(parent.name) or not (parent / "config").exists():
                continue
            try:
                found = await pcie_function(ReadOnlyConfigSpace(parent / "config"))
            except HilError:
                return None
            if found is not None and found.port_type == PCI_EXP_TYPE_ROOT_PORT:
                return parent
        return None

    async def root_port_config(self) -> ReadOnlyConfigSpace | None:
        port = await self.root_port()
        return ReadOnlyConfigSpace(port / "config") if port is not None else None
