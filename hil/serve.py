"""``hil serve``: a rig's device as a responder on the DMTF spdm-emu socket protocol.

An external requester (DMTF's spdm_requester_emu or SPDM-Responder-Validator, QEMU with
``spdm_port``, or ``hil run --rig spdm-emu``) connects and sends whole DOE objects; each goes
through the rig's DOE mailbox (on the simulated rig, the HDL mailbox and the firmware behind its
DSM port) and the response comes back.  TEST, NORMAL, CONTINUE and SHUTDOWN are answered as
spdm_responder_emu answers them (:class:`hil.transport.spdm_socket.SocketResponder`): CONTINUE
closes the connection and the next one is accepted, SHUTDOWN ends the server.  A connection
closed without either is logged and the next one accepted, where spdm_responder_emu would stop:
deliberately, so that one peer that drops its socket does not take the device from the next.

A peer on the socket reaches only the DOE mailbox, never configuration space.  What a host's
configuration software would do for IDE, ``hil serve`` can do in its place
(:attr:`ServeOptions.ide_stream_id`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from . import _regs as R
from .codec.doe import DataObject
from .codec.spdm import SpdmVersion
from .codec.spdm_socket import FrameReader
from .errors import DoeTimeout, HilError, PeerProtocolError, RigError
from .firmware.mutual_auth import MutAuthMode, MutualAuthPolicy
from .firmware.spdm_responder import HEARTBEAT_PERIOD_S
from .host.doe import DoeMailbox
from .host.ide_regs import IdeLayout
from .pki import Identity, load_certificates
from .rigs import Rig
from .transport import ConfigSpace
from .transport.spdm_socket import DoeService, SocketResponder, serve

__all__ = [
    "ServeOptions",
    "configure_ide_stream",
    "mailbox_service",
    "serve_blocking",
    "serve_fake",
    "serve_rig",
]

log = logging.getLogger("hil.serve")

#: Called before each connection is served (the host's part: configuration space).
ConnectionHook = Callable[[], Awaitable[None]]


_PATH_OPTIONS = ("cert_chain", "key", "requester_trust_anchor", "requester_cert_chain")


@dataclass(frozen=True)
class ServeOptions:
    """How the served device presents itself to a peer that speaks only DOE."""

    cert_chain: Path | None = None
    key: Path | None = None
    #: The TDI's FUNCTION_ID (TDISP INTERFACE_ID); None: function 0's Requester ID.
    function_id: int | None = None
    #: The IDE_KM PortIndex answered besides 00h; 0: 00h only.
    ide_km_port_index: int = 0
    #: Program Selective IDE stream 0 in configuration space with this Stream ID, a valid RID
    #: association and Enable, before each connection, as host software would; None: leave
    #: configuration space to its reset values.
    ide_stream_id: int | None = None
    #: The SPDM versions VERSION offers.
    spdm_versions: tuple[int, ...] = (SpdmVersion.V12, SpdmVersion.V13)
    #: KEY_EXCHANGE_RSP HeartbeatPeriod in seconds when the requester supports HEARTBEAT; a
    #: session silent for twice as long is terminated.  0: none asked, none enforced.
    heartbeat_period_s: int = HEARTBEAT_PERIOD_S
    #: Session-based mutual authentication the device requires of requesters that offer it
    #: (:class:`hil.firmware.MutAuthMode`: none, requested, encap, digests).
    mut_auth: str = MutAuthMode.NONE.value
    #: The root requester chains must validate to (PEM or DER); needed unless mut_auth is none.
    requester_trust_anchor: Path | None = None
    #: A requester chain provisioned to the device (PEM bundle or DER, root first); needed by
    #: mut_auth "requested", optional otherwise.
    requester_cert_chain: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_chain is None) != (self.key is None):
            raise RigError("--cert-chain and --key go together")
        if self.function_id is not None and not 0 <= self.function_id < 1 << 25:
            raise RigError(f"function id {self.function_id:#x} is not a 25-bit FUNCTION_ID")
        if not 0 <= self.ide_km_port_index <= 0xFF:
            raise RigError(f"IDE_KM PortIndex {self.ide_km_port_index} is not one byte")
        if self.ide_stream_id is not None and not 0 <= self.ide_stream_id <= 0xFF:
            raise RigError(f"Stream ID {self.ide_stream_id} is not one byte")
        if not self.spdm_versions:
            raise RigError("no SPDM version to offer")
        if not 0 <= self.heartbeat_period_s <= 0xFF:
            raise RigError(f"HeartbeatPeriod {self.heartbeat_period_s} s is not 0..255")
        modes = [m.value for m in MutAuthMode]
        if self.mut_auth not in modes:
            raise RigError(f"mutual authentication mode {self.mut_auth!r}: one of {modes}")
        if self.mut_auth != MutAuthMode.NONE and self.requester_trust_anchor is None:
            raise RigError(f"--mut-auth {self.mut_auth} needs --requester-trust-anchor")
        if self.mut_auth == MutAuthMode.REQUESTED and self.requester_cert_chain is None:
            raise RigError(
                "--mut-auth requested (the device holds the requester's chain) needs "
                "--requester-cert-chain"
            )

    def mutual_auth_policy(self) -> MutualAuthPolicy:
        """The firmware's mutual-authentication policy, its files read and checked."""
        if self.mut_auth == MutAuthMode.NONE:
            return MutualAuthPolicy()
        assert self.requester_trust_anchor is not None
        try:
            (anchor, *_) = load_certificates(self.requester_trust_anchor.read_bytes())
            chain: tuple[x509.Certificate, ...] = ()
            if self.requester_cert_chain is not None:
                chain = tuple(load_certificates(self.requester_cert_chain.read_bytes()))
            return MutualAuthPolicy(MutAuthMode(self.mut_auth), anchor, chain)
        except (OSError, HilError) as exc:
            raise RigError(f"mutual authentication ({self.mut_auth}): {exc}") from None

    def dsm_kwargs(self) -> dict[str, Any]:
        """The firmware's settings (:class:`hil.firmware.Dsm` keyword arguments)."""
        return {
            "function_id": self.function_id,
            "ide_km_port_index": self.ide_km_port_index,
            "spdm_versions": tuple(self.spdm_versions),
            "heartbeat_period_s": self.heartbeat_period_s,
            "mutual_auth": self.mutual_auth_policy(),
        }

    def to_json(self) -> dict[str, Any]:
        """The options for the simulator's job file; :meth:`from_json` reads them back."""
        out = asdict(self)
        for path in _PATH_OPTIONS:  # absolute: the simulator reads them from its own folder
            value = getattr(self, path)
            out[path] = str(Path(value).resolve()) if value else None
        out["spdm_versions"] = [int(v) for v in self.spdm_versions]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServeOptions:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for path in _PATH_OPTIONS:
            if fields.get(path):
                fields[path] = Path(fields[path])
        if "spdm_versions" in fields:
            fields["spdm_versions"] = tuple(fields["spdm_versions"])
        return cls(**fields)


async def configure_ide_stream(config: ConfigSpace, stream_id: int) -> None:
    """What a host's configuration software does before IDE_KM keys a Selective IDE stream,
    for stream register block 0: Enable cleared (the stream leaves Secure and may become Secure
    again, PCIe §6.33.1), the RID association valid, the Stream ID, then Enable set.  Setting
    Enable before the keys are programmed is permitted (§6.33.3); K_SET_GO of the last
    sub-stream then makes the stream Secure.  The other blocks are parked at the reserved
    Stream ID FFh with Enable clear, as Linux parks them, so that no second block claims the
    Stream ID (TDISP LOCK refuses a default stream configured twice, §11.3.8)."""
    layout = await IdeLayout.read(config, R.IDE_CAP_OFFSET)
    for block in layout.selective_blocks[1:]:
        await config.write32(block.control, 0xFF << 24)
    regs = layout.selective_blocks[0]
    await config.write32(regs.control, stream_id << 24)
    await config.write32(regs.rid1, 0xFFFF << 8)  # RID Limit: every RID
    await config.write32(regs.rid2, 1)  # V = 1, RID Base 0
    await config.write32(regs.control, stream_id << 24 | 1)


def mailbox_service(mbx: DoeMailbox) -> DoeService:
    """Objects through a DOE mailbox; no response in time means no answer (the DOE driver
    has aborted the mailbox by then)."""

    async def service(obj: DataObject) -> DataObject | None:
        try:
            return await mbx.exchange(obj)
        except DoeTimeout:
            return None
        except PeerProtocolError as exc:
            log.warning("the device answered badly: %s", exc)
            return None

    return service


def announce(host: str, port: int) -> None:
    print(f"hil serve: listening on {host}:{port} (spdm-emu socket protocol, PCI_DOE)", flush=True)


async def serve_blocking(
    service: DoeService, host: str, port: int, *, on_connection: ConnectionHook | None = None
) -> None:
    """Serve with blocking sockets, for a caller whose event loop is a simulator's (cocotb).

    The same semantics as :func:`hil.transport.spdm_socket.serve`.  While it waits for a peer
    the simulator does not advance: there is nothing to simulate.
    """
    with socket.create_server((host, port)) as server:
        announce(host, server.getsockname()[1])
        while True:
            conn, peer = server.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if on_connection is not None:
                await on_connection()
            responder = SocketResponder(service)
            frames = FrameReader()
            with conn:
                closing = False
                while not closing:
                    try:
                        data = conn.recv(65536)
                    except OSError as exc:
                        log.info("%s: connection ended: %s", peer, exc)
                        break
                    if not data:
                        log.info("%s closed the connection without CONTINUE or SHUTDOWN", peer)
                        break
                    try:
                        batch = frames.feed(data)
                    except PeerProtocolError as exc:
                        log.warning("closing %s: %s", peer, exc)
                        break
                    for frame in batch:
                        reply, closing = await responder.handle(frame)
                        if reply is not None:
                            conn.sendall(reply.encode())
                        if closing:
                            break
            if responder.shutdown:
                return


def serve_rig(rig: Rig, host: str, port: int, options: ServeOptions | None = None) -> int:
    """Serve ``rig``'s device until a peer sends SHUTDOWN."""
    options = options or ServeOptions()
    if options.cert_chain is not None and options.key is not None:
        # Fail here, with a clear message, not in the simulator.
        Identity.load(options.cert_chain, options.key)
    options.mutual_auth_policy()
    if rig.kind not in ("fake", "sim"):
        raise RigError(
            f"rig {rig.name} is of kind {rig.kind}: only a sim or fake rig has a device "
            "this process can serve"
        )
    if rig.firmware != "dsm":
        raise RigError(
            f"rig {rig.name} serves no firmware (set firmware = 'dsm' in its [rig] table)"
        )
    _check_port_free(host, port)
    if rig.kind == "fake":
        asyncio.run(serve_fake(host, port, options, fake=rig.fake))
        return 0
    if rig.kind == "sim":
        from .sim.simulation import Simulation

        return Simulation(rig).serve(host, port, options=options)
    raise AssertionError(rig.kind)


def _check_port_free(host: str, port: int) -> None:
    """Say, before a simulator is built and started, that the port is taken."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RigError(
                f"cannot listen on {host}:{port}: {exc.strerror} (another hil serve or "
                "spdm_responder_emu? pick another --port)"
            ) from None


async def serve_fake(
    host: str,
    port: int,
    options: ServeOptions,
    *,
    ready: Callable[[int], None] | None = None,
    fake: Mapping[str, Any] | None = None,
) -> None:
    """Serve the in-memory endpoint (the ``fake`` rig's device) until SHUTDOWN; ``ready`` is
    told the bound port (default: the "listening on" line).  ``fake`` is the rig's ``[fake]``
    table: what the IDE Capability advertises (Selective streams, Link IDE blocks, address
    blocks, optional modes), as ``hil run`` builds it.  The IDE_KM PortIndex stays
    ``--ide-km-port-index`` (default 0), which a peer must be told; the table's
    ``max_port_index`` is not taken."""
    from .fake import FakeConfigSpace, FakeDoe, FakeTdi, fake_ide_cap
    from .firmware import Dsm
    from .transport import AsyncioTimebase

    # The in-memory endpoint's hardware (IDE capability, key slots, TDI) is the firmware's
    # register port, so a peer gets IDE_KM and TDISP answers as well as SPDM.
    fake = dict(fake or {})
    config = FakeConfigSpace(FakeDoe(), tdi=FakeTdi(fake_ide_cap(fake)))
    kwargs: dict[str, Any] = {
        "hdl_build": "fake",
        "regs": config.firmware_regs(),
        **options.dsm_kwargs(),
    }
    if options.cert_chain is not None and options.key is not None:
        kwargs["identity"] = Identity.load(options.cert_chain, options.key)
    dsm = Dsm(**kwargs)
    config.doe.responder = dsm.handle
    mbx = DoeMailbox(config, config.doe.offset, AsyncioTimebase(), poll_interval_s=0.0)
    await mbx.init()
    hook = None
    if options.ide_stream_id is not None:
        stream_id = options.ide_stream_id

        async def hook() -> None:
            await configure_ide_stream(config, stream_id)

    await serve(
        mailbox_service(mbx),
        host,
        port,
        ready=ready or (lambda p: announce(host, p)),
        on_connection=hook,
    )
    sys.stdout.flush()
