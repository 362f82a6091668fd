"""``hil serve``: a rig's device as a responder on the DMTF spdm-emu socket protocol.

An external requester (DMTF's spdm_requester_emu, QEMU with ``spdm_port``, or ``hil run --rig
spdm-emu``) connects and sends whole DOE objects; each goes through the rig's DOE mailbox (on the
simulated rig, the HDL mailbox and the firmware behind its DSM port) and the response comes back.
TEST, NORMAL, CONTINUE and SHUTDOWN are answered as spdm_responder_emu does; SHUTDOWN ends it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path

from .codec.doe import DataObject
from .codec.spdm_socket import FrameReader
from .errors import DoeTimeout, PeerProtocolError, RigError
from .host.doe import DoeMailbox
from .pki import Identity
from .rigs import Rig
from .transport.spdm_socket import DoeService, SocketResponder, serve

__all__ = ["mailbox_service", "serve_blocking", "serve_rig"]

log = logging.getLogger("hil.serve")


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


async def serve_blocking(service: DoeService, host: str, port: int) -> None:
    """Serve with blocking sockets, for a caller whose event loop is a simulator's (cocotb).

    While it waits for a peer the simulator does not advance: there is nothing to simulate.
    """
    with socket.create_server((host, port)) as server:
        announce(host, server.getsockname()[1])
        while True:
            conn, peer = server.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


def serve_rig(
    rig: Rig,
    host: str,
    port: int,
    *,
    cert_chain: Path | None = None,
    key: Path | None = None,
) -> int:
    """Serve ``rig``'s device until a peer sends SHUTDOWN."""
    if (cert_chain is None) != (key is None):
        raise RigError("--cert-chain and --key go together")
    if cert_chain is not None and key is not None:
        Identity.load(cert_chain, key)  # fail here, with a clear message, not in the simulator
    if rig.firmware != "dsm":
        raise RigError(f"rig {rig.name} has no firmware to serve SPDM (firmware = 'dsm')")
    if rig.kind == "fake":
        asyncio.run(_serve_fake(rig, host, port, cert_chain, key))
        return 0
    if rig.kind == "sim":
        from .backends import SimBackend

        return SimBackend(rig).serve(host, port, cert_chain=cert_chain, key=key)
    raise RigError(f"hil serve needs a device to serve; rig {rig.name} is of kind {rig.kind}")


async def _serve_fake(
    rig: Rig, host: str, port: int, cert_chain: Path | None, key: Path | None
) -> None:
    from .fake import FakeConfigSpace, FakeDoe
    from .firmware import Dsm
    from .transport import AsyncioTimebase

    # The in-memory endpoint's hardware (IDE capability, key slots, TDI) is the firmware's
    # register port, so a peer gets IDE_KM and TDISP answers as well as SPDM.
    config = FakeConfigSpace(FakeDoe())
    kwargs = {"hdl_build": "fake", "regs": config.firmware_regs()}
    if cert_chain is not None and key is not None:
        kwargs["identity"] = Identity.load(cert_chain, key)
    dsm = Dsm(**kwargs)
    config.doe.responder = dsm.handle
    mbx = DoeMailbox(config, config.doe.offset, AsyncioTimebase(), poll_interval_s=0.0)
    await mbx.init()
    await serve(mailbox_service(mbx), host, port, ready=lambda p: announce(host, p))
    sys.stdout.flush()
