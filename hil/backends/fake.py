"""The ``fake`` rig: asyncio, in this process, against the in-memory endpoint (:mod:`hil.fake`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .._fake_tlp import FakeDma, FakeTlpPath, FakeTlpPort
from ..fake import FakeConfigSpace, FakeDoe, FakeTdi, fake_ide_cap
from ..transport import AsyncioTimebase
from ..vectors import Vector, VectorContext, VectorResult, execute
from ._base import Backend

__all__ = ["FakeBackend"]


class FakeBackend(Backend):
    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        config = FakeConfigSpace(FakeDoe(), tdi=FakeTdi(fake_ide_cap(self.rig.fake)))
        resources: dict[str, Any] = {}
        completer_id = 0x0100  # bus 1, device 0, function 0: where the fake is enumerated
        if self.rig.firmware == "dsm":
            from ..firmware import Dsm

            # The firmware drives the fake IDE capability and TDI through their register port.
            dsm = Dsm(
                hdl_build="fake",
                regs=config.firmware_regs(),
                ide_km_port_index=int(self.rig.fake.get("max_port_index", 0)),
            )
            config.doe.responder = dsm.handle
            resources["function_id"] = dsm.requester_id  # the TDI's INTERFACE_ID (bus 1, 0.0)
            completer_id = dsm.requester_id
        # The TLP path: the IDE vectors' traffic, checked by the IDE reference model.
        path = FakeTlpPath(config.ide, config.tdi, completer_id=completer_id, config=config)
        resources["tlp"] = FakeTlpPort(path)
        resources["dma"] = FakeDma(path)  # the device's own Memory Writes

        async def idle() -> bool:
            # The configuration space awaits the firmware inside the access that hands it an
            # object (FakeConfigSpace.write32 after Go), so once an access has returned nothing
            # is in flight: a response that is not there will never come.  A DOE silence wait
            # ends here instead of at the deadline (hil.host.doe, ``until_idle``).
            return True

        resources["device_idle"] = idle
        ctx = VectorContext(
            rig_name=self.rig.name,
            rig_kind=self.rig.kind,
            provides=self.rig.provides,
            timebase=AsyncioTimebase(),
            config=config,
            settings=self.rig.settings,
            resources=resources,
        )
        return asyncio.run(execute(vec, ctx))

    def info(self) -> dict[str, Any]:
        return {"simulator": None, "device_model": "hil.fake.FakeConfigSpace"}
