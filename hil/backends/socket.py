"""The ``spdm-socket`` rig: asyncio, in this process, to a responder on the spdm-emu socket
protocol; a new connection per vector."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..transport import AsyncioTimebase
from ..vectors import Vector, VectorContext, VectorResult, execute
from ._base import Backend

__all__ = ["SocketBackend"]


class SocketBackend(Backend):
    """A responder on the DMTF spdm-emu socket protocol; a new connection per vector."""

    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        from ..transport.spdm_socket import SpdmSocketClient

        sock = self.rig.socket
        clients: list[SpdmSocketClient] = []

        async def connect() -> SpdmSocketClient:
            client = SpdmSocketClient(
                sock.get("host", "127.0.0.1"),
                int(sock.get("port", 2323)),
                timeout_s=float(sock.get("timeout_s", 10.0)),
            )
            await client.connect()
            clients.append(client)
            return client

        async def run() -> VectorResult:
            ctx = VectorContext(
                rig_name=self.rig.name,
                rig_kind=self.rig.kind,
                provides=self.rig.provides,
                timebase=AsyncioTimebase(),
                settings=self.rig.settings,
                doe_transport=connect,
            )
            try:
                return await execute(vec, ctx)
            finally:
                for client in clients:
                    await client.close()

        return asyncio.run(run())

    def info(self) -> dict[str, Any]:
        sock = self.rig.socket
        return {
            "simulator": None,
            "peer": f"{sock.get('host', '127.0.0.1')}:{sock.get('port', 2323)}",
        }
