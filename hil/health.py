"""``hil rigs check NAME``: is the rig ready?  Each probe says what it found.

A lab rig's probes include what the ``tsm.*`` vectors need of the host
(:mod:`hil.lab.host_checks`): root or CAP_SYS_ADMIN, the lock directory, the kernel's
configuration where readable, the trust anchor, ``/sys/class/tsm`` entries, the device's
``tsm/`` directory, DEVCAP.TEE from its configuration space, the Root Port's IDE capability
and ``doe_features`` 0001:01 and 0001:02.  The virtual rig gets the same device probes against
its emulated host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import HilError, PeerProtocolError, RigConfigError, RigError
from .rigs import Rig

__all__ = ["Check", "check_rig", "parse_peer", "preflight"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _probe(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except (HilError, OSError, ValueError) as exc:
        return Check(name, False, str(exc))


def _lab_checks(
    rig: Rig, root_fn: Callable[[], object], telemetry: object | None = None
) -> list[Check]:
    from .host.pci import walk_ext_capabilities
    from .lab import host_checks as H
    from .lab.bdf import Bdf
    from .lab.sysfs import SysfsConfigSpace
    from .lab.tsm import KernelTsm

    bdf = Bdf.parse(rig.lab.get("bdf", "0000:01:00.0"))
    lab = rig.kind == "lab"  # a real host (the virtual rig's host is emulated, its lock none)
    checks = []
    if lab:
        checks.append(_probe("privileges", H.privileges))
        lock_dir = Path(rig.lab.get("lock_dir", "/run/lock/hil"))
        checks.append(_probe("lock directory", lambda: H.lock_directory(lock_dir)))
        checks.append(_probe("kernel config", H.kernel_config))
    checks.append(_probe("trust anchor", lambda: H.trust_anchor(rig.settings.get("trust_anchor"))))
    root = root_fn()
    cfg = SysfsConfigSpace(bdf, root)  # type: ignore[arg-type]

    def device() -> str:
        cfg.open()
        vid_did = asyncio.run(cfg.read32(0))
        return f"{bdf}: vendor {vid_did & 0xFFFF:04x} device {vid_did >> 16:04x}"

    checks.append(_probe("device present", device))

    def caps() -> str:
        found = asyncio.run(walk_ext_capabilities(cfg))
        ids = [f"{c.cap_id:04x}@{c.offset:#x}" for c in found]
        if not any(c.cap_id == 0x002E for c in found):
            raise HilError(f"no DOE capability among {ids}")
        return ", ".join(ids)

    checks.append(_probe("capabilities found", caps))
    tsm = KernelTsm(bdf, root)  # type: ignore[arg-type]
    want = rig.settings.get("tsm")
    checks.append(_probe("TSM present", lambda: H.tsm_class(tsm, want)))
    checks.append(_probe("device tsm/", lambda: H.tsm_directory(tsm)))
    checks.append(_probe("DEVCAP.TEE", lambda: asyncio.run(H.devcap_tee(cfg, tsm))))
    checks.append(_probe("Root Port IDE", lambda: asyncio.run(H.root_port_ide(tsm))))
    checks.append(_probe("doe_features", lambda: H.doe_features(tsm.dev)))
    if telemetry is not None:  # the virtual rig's firmware host holds its UART

        def serial_ok() -> str:
            t = asyncio.run(telemetry.request(5.0))
            return f"the board answers: TDI state {t.tdi_state}, {len(t.streams)} IDE streams"

        checks.append(_probe("serial answering", serial_ok))
    elif rig.lab.get("serial"):
        from .codec.uart import Channel, Telemetry
        from .lab.serial_link import SerialLink

        def serial_ok() -> str:
            port = rig.lab["serial"]
            link = SerialLink(port, int(rig.lab.get("baudrate", 3_000_000)))
            try:
                link.send(Channel.TELEMETRY_REQ)
                frame = asyncio.run(link.recv(5.0, {Channel.TELEMETRY}))
                t = Telemetry.decode(frame.payload)
            finally:
                link.close()
            return f"{port}: the board answers: TDI state {t.tdi_state}, {len(t.streams)} streams"

        checks.append(_probe("serial answering", serial_ok))
    if rig.lab.get("visa_resource"):
        from .lab.power import open_power_supply, visa_library

        def visa_ok() -> str:
            library = visa_library(rig.lab.get("visa_library", "@py"))
            psu = open_power_supply(rig.lab["visa_resource"], library)
            return psu.identify()

        checks.append(_probe("instrument identified", visa_ok))
    cfg.close()
    return checks


def parse_peer(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port; RigConfigError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RigConfigError(f"peer {text!r} is not HOST:PORT (e.g. 127.0.0.1:2323)")
    return host, int(port)


def _socket_hello(rig: Rig) -> str:
    """Connect to a socket rig's responder, say TEST, close politely; what answered."""
    from .transport.spdm_socket import SpdmSocketClient

    host, port = rig.socket.get("host", "127.0.0.1"), int(rig.socket.get("port", 2323))

    async def hello() -> None:
        async with SpdmSocketClient(host, port, timeout_s=5) as client:
            await client.hello()

    try:
        asyncio.run(hello())
    except PeerProtocolError as exc:
        raise RigError(f"{host}:{port} is not an spdm-emu socket responder: {exc}") from None
    return f"{host}:{port} answers TEST"


def preflight(rig: Rig) -> None:
    """What must hold before any vector runs; a RigError says, once, why the run cannot.

    A socket rig's responder must answer; a rig's identity files must be readable.  (The
    other kinds check themselves as they start.)
    """
    if rig.kind == "spdm-socket":
        _socket_hello(rig)
    for key in ("trust_anchor", "requester_cert_chain", "requester_key"):
        value = rig.settings.get(key)
        if isinstance(value, str) and value and value != "test-pki":
            if not Path(value).is_file():
                raise RigConfigError(f"settings {key} = {value!r}: no such file")
    anchor = rig.settings.get("trust_anchor")
    if isinstance(anchor, str) and anchor and anchor != "test-pki":
        from .pki import IdentityError, load_certificates

        try:
            load_certificates(Path(anchor).read_bytes())
        except (IdentityError, OSError) as exc:
            raise RigConfigError(f"settings trust_anchor = {anchor!r}: {exc}") from None
    chain, key = rig.settings.get("requester_cert_chain"), rig.settings.get("requester_key")
    if bool(chain) != bool(key):
        raise RigConfigError("requester_cert_chain and requester_key go together")
    if chain and key:
        from .pki import Identity, IdentityError

        try:
            Identity.load(chain, key)
        except IdentityError as exc:
            raise RigConfigError(f"requester identity: {exc}") from None


def check_rig(rig: Rig) -> list[Check]:
    if rig.kind == "lab":
        from pathlib import Path

        return _lab_checks(rig, lambda: Path(rig.lab.get("sysfs_root", "/sys")))
    if rig.kind == "virtual":
        from .lab.bdf import Bdf
        from .lab.virtual import VirtualFpga

        vf = VirtualFpga(rig, Bdf.parse(rig.lab.get("bdf", "0000:01:00.0")))
        start = _probe("virtual rig started", lambda: (vf.start(), str(vf.root))[1])
        if not start.ok:
            return [start]
        try:
            return [start, *_lab_checks(rig, lambda: vf.root, vf.firmware_host)]
        finally:
            vf.stop()
    if rig.kind == "spdm-socket":
        return [_probe("responder answering", lambda: _socket_hello(rig))]
    if rig.kind == "sim":
        from .sim.simulation import Simulation

        return [_probe("HDL builds", lambda: str(Simulation(rig).build()))]
    return [Check("in-memory device", True, "nothing to probe")]
