"""What a Linux host needs for the ``tsm.*`` vectors, each seen where the host shows it.

Every probe returns one line saying what it found, or raises :class:`HostCheckFailed` saying
what is missing, what the kernel then does, and the kernel log line (if any) that tells it.
``hil rigs check`` runs them (:mod:`hil.health`).  The rules are the kernel's:

- ``/sys/class/tsm/tsmN`` exists once a platform TSM driver registered (tsm-core.c
  ``tsm_register``); upstream that is AMD SEV-TIO (the ccp driver);
- ``tsm/`` appears on a PF0 (function 0 of an endpoint, upstream port or RCiEP) with
  DEVCAP.TEE or with IDE in use (``is_pci_tsm_pf0``), ``tsm/bound`` only with DEVCAP.TEE;
- the device's IDE is used only if its Root Port has an IDE capability with Selective IDE
  Streams (drivers/pci/ide.c ``pci_ide_init``, which logs nothing when it is missing);
- connect needs a CMA mailbox (``pci_tsm_pf0_constructor``: ENXIO and "TSM init failure, no
  CMA mailbox" otherwise) which SEV-TIO wants to carry Secured CMA too ("CMA DOE MB must
  support SSESSION", EFAULT);
- reads of configuration space past 64 bytes need CAP_SYS_ADMIN.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from ..errors import HilError
from ..host import ide_regs as I
from ..host.pci import find_ext_capabilities
from ..transport import ConfigSpace
from .tsm import KernelTsm, pcie_function

__all__ = [
    "HostCheckFailed",
    "devcap_tee",
    "doe_features",
    "kernel_config",
    "lock_directory",
    "privileges",
    "root_port_ide",
    "trust_anchor",
    "tsm_class",
    "tsm_directory",
]

CAP_SYS_ADMIN = 21


class HostCheckFailed(HilError):
    """A host requirement is not met; the message says what happens and what tells it."""


def privileges(status: Path = Path("/proc/self/status")) -> str:
    """Root, or CAP_SYS_ADMIN: configuration space past 64 bytes and every write need it."""
    if os.geteuid() == 0:
        return "running as root"
    try:
        text = status.read_text()
    except OSError:
        text = ""
    m = re.search(r"^CapEff:\s*([0-9a-f]+)$", text, re.M)
    if m and int(m.group(1), 16) >> CAP_SYS_ADMIN & 1:
        return "CAP_SYS_ADMIN in the effective set"
    raise HostCheckFailed(
        "neither root nor CAP_SYS_ADMIN: config reads stop at 64 bytes (no DOE or IDE "
        "capability in reach) and writes are refused"
    )


def lock_directory(path: Path) -> str:
    """Where the rig's lock file goes (one run at a time per lab rig)."""
    probe = path if path.exists() else path.parent
    if path.exists() and not path.is_dir():
        raise HostCheckFailed(f"{path} exists and is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise HostCheckFailed(f"{probe} is not writable: the run cannot take the rig's lock")
    return f"{path} {'writable' if path.exists() else '(created on first run)'}"


def trust_anchor(value: str | None) -> str:
    """The root the rig trusts for the device's certificate chain."""
    if not value:
        raise HostCheckFailed("settings trust_anchor is not set: no chain can be validated")
    if value == "test-pki":
        return "the project's test PKI (for the project's own firmware only)"
    from cryptography import x509

    path = Path(value)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HostCheckFailed(f"{path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise HostCheckFailed(f"{path} is not a certificate: {exc}") from None
    return f"{path}: {cert.subject.rfc4514_string()}"


def tsm_class(tsm: KernelTsm, want: str | None = None) -> str:
    """``/sys/class/tsm/tsmN``: a registered TSM (``want`` among them), and which device and
    driver each belongs to."""
    names = tsm.tsms()
    if not names:
        raise HostCheckFailed(
            "no /sys/class/tsm/tsm*: no TSM driver registered (a kernel without "
            "CONFIG_PCI_TSM, or no platform TSM loaded; upstream only AMD SEV-TIO has one: "
            "dmesg shows 'SEV-TIO status: EN=...' when it registers, 'Failed to enable "
            "SEV-TIO' or 'PCI/TSM registration failure' when it does not)"
        )
    out = []
    for name in names:
        cls = tsm.root / "class" / "tsm" / name
        parent = (cls / "device").resolve().name if (cls / "device").exists() else "?"
        driver = cls / "device" / "driver"
        via = f", driver {driver.resolve().name}" if driver.exists() else ""
        out.append(f"{name} (device {parent}{via})")
    if want and want not in names:
        raise HostCheckFailed(f"the rig names {want}, the host has {'; '.join(out)}")
    return "; ".join(out)


def tsm_directory(tsm: KernelTsm) -> str:
    """The device's ``tsm/`` directory: the kernel sees a TSM PF0 there."""
    if not tsm.dev.exists():
        raise HostCheckFailed(f"no PCI device {tsm.bdf}")
    if not tsm.has_tsm_dir():
        raise HostCheckFailed(
            f"{tsm.bdf} has no tsm/: no link TSM registered, or the kernel does not see a TSM "
            "PF0 (function 0 with DEVCAP.TEE, or with IDE under a Root Port with IDE); with "
            "dynamic debug on drivers/pci/tsm.c a PF0 logs 'Device Security Manager detected'"
        )
    files = sorted(p.name for p in (tsm.dev / "tsm").iterdir())
    state = tsm.connected() or "not connected"
    note = "" if "bound" in files else " (no bound: the device has no DEVCAP.TEE)"
    return f"{', '.join(files)}; {state}{note}"


async def _ide(config: ConfigSpace) -> I.IdeLayout | None:
    caps = await find_ext_capabilities(config, I.IDE_CAP_ID)
    return await I.IdeLayout.read(config, caps[0].offset) if caps else None


async def root_port_ide(tsm: KernelTsm) -> str:
    """The Root Port above the device has an IDE capability with Selective IDE Streams."""
    port = await tsm.root_port_config()
    if port is None:
        raise HostCheckFailed(f"no Root Port found above {tsm.bdf} in /sys/devices")
    name = port.path.parent.name
    layout = await _ide(port)
    if layout is None or not layout.capability.selective:
        what = "no IDE capability" if layout is None else "IDE without Selective IDE Streams"
        raise HostCheckFailed(
            f"Root Port {name} has {what}: the kernel leaves the device's IDE unused "
            "(pci_ide_init, no log line); connect sets up no stream (SEV-TIO refuses it with "
            "EFAULT, also without a log line)"
        )
    cap = layout.capability
    link = f"Link IDE ({cap.link_tcs} TC), " if cap.link else ""
    return (
        f"{name}: IDE at {layout.offset:#x}, {link}{len(layout.selective_blocks)} Selective "
        f"streams, {layout.selective_blocks[0].addr_blocks} address blocks each"
    )


async def devcap_tee(config: ConfigSpace, tsm: KernelTsm) -> str:
    """Device Capabilities bit 30 (TEE-IO Supported) of the device's function 0."""
    fn = await pcie_function(config)
    if fn is None:
        raise HostCheckFailed(f"{tsm.bdf} has no PCI Express capability")
    if fn.tee_io:
        return f"set (Device Capabilities {fn.devcap:#010x}): tsm/bound is offered"
    device_ide = await _ide(config)
    try:
        await root_port_ide(tsm)
        port_ide = True
    except HilError:
        port_ide = False
    if device_ide is not None and device_ide.capability.selective and port_ide:
        return (
            f"clear (Device Capabilities {fn.devcap:#010x}): the kernel takes the device as a "
            "TSM PF0 through its IDE capability; no tsm/bound, no sub-function is probed"
        )
    raise HostCheckFailed(
        f"clear (Device Capabilities {fn.devcap:#010x}) and no IDE in use either: the kernel "
        "does not see a TSM PF0, so there is no tsm/ directory"
    )


def doe_features(dev: Path) -> str:
    """``doe_features/`` lists CMA (0001:01) and Secured CMA (0001:02)."""
    d = dev / "doe_features"
    if not d.is_dir():
        raise HostCheckFailed(
            f"{d} is missing: no DOE mailbox was created (dmesg 'DOE: [...] failed to reset "
            "mailbox' or 'failed to cache features'), or the kernel is older than v6.15"
        )
    names = sorted(p.name for p in d.iterdir())
    missing = []
    if "0001:01" not in names:
        missing.append("0001:01 (connect: ENXIO, dmesg 'TSM init failure, no CMA mailbox')")
    if "0001:02" not in names:
        missing.append(
            "0001:02 (SEV-TIO connect: EFAULT, dmesg 'CMA DOE MB must support SSESSION')"
        )
    if missing:
        raise HostCheckFailed(f"{', '.join(names)}; missing {'; '.join(missing)}")
    return ", ".join(names)


_CONFIG = ("CONFIG_PCI_TSM", "CONFIG_PCI_IDE", "CONFIG_PCI_DOE", "CONFIG_TSM")


def kernel_config(release: str | None = None, proc: Path = Path("/proc/config.gz")) -> str:
    """``CONFIG_PCI_TSM`` (which selects PCI_IDE, PCI_DOE and TSM), where the running kernel's
    configuration can be read."""
    release = release or os.uname().release
    text = None
    for path in (proc, Path("/boot") / f"config-{release}"):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode(errors="replace")
        break
    if text is None:
        return f"{release}: configuration not readable here; the tsm/ checks tell instead"
    found = {}
    for key in _CONFIG:
        m = re.search(rf"^{key}=(\S+)$", text, re.M)
        found[key] = m.group(1) if m else "n"
    if found["CONFIG_PCI_TSM"] != "y":
        raise HostCheckFailed(f"{release}: CONFIG_PCI_TSM is {found['CONFIG_PCI_TSM']}")
    return f"{release}: " + ", ".join(f"{k[7:]}={v}" for k, v in found.items())
