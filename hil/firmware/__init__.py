"""The device firmware (DSM, device security manager), in Python.

It serves the endpoint's DSM port: CMA/SPDM and Secured CMA/SPDM objects in, responses out.
In simulation cocotb connects it to the HDL's DSM port; in memory it is called directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache

from .._version import __version__
from ..codec.doe import DataObject
from ..codec.spdm import DmtfMeasurementType
from ..pki import Identity, TestPki
from ..transport import DoeTransport
from .spdm_responder import Measurement, SpdmResponder

__all__ = [
    "TEST_PKI_LABEL",
    "Dsm",
    "FirmwareTransport",
    "Measurement",
    "SpdmResponder",
    "device_measurements",
    "test_pki",
]

FIRMWARE_VERSION = f"hil-dsm {__version__}"
#: The project's own rigs use this throw-away PKI: keys derived from the label, so the firmware
#: (in the simulator) and the vectors (wherever they run) agree on the root without sharing files.
TEST_PKI_LABEL = "hil-test-pki"


@cache
def test_pki() -> TestPki:
    return TestPki.generate(seed_label=TEST_PKI_LABEL)


def device_measurements(
    hdl_build: str = "", firmware: str = FIRMWARE_VERSION
) -> tuple[Measurement, ...]:
    """What the device measures: its HDL build (a digest of the RTL) and its firmware."""
    return (
        Measurement(
            1, DmtfMeasurementType.IMMUTABLE_ROM, hashlib.sha384(hdl_build.encode()).digest()
        ),
        Measurement(
            2, DmtfMeasurementType.MUTABLE_FIRMWARE, hashlib.sha384(firmware.encode()).digest()
        ),
        Measurement(3, DmtfMeasurementType.VERSION, firmware.encode(), raw=True),
    )


@dataclass
class Dsm:
    """The firmware: an SPDM responder with an identity and measurements."""

    identity: Identity = field(default_factory=lambda: test_pki().identity)
    hdl_build: str = ""
    spdm: SpdmResponder = field(init=False)

    def __post_init__(self) -> None:
        self.spdm = SpdmResponder(self.identity, device_measurements(self.hdl_build))

    async def handle(self, obj: DataObject) -> DataObject | None:
        return await self.spdm.handle(obj)


class FirmwareTransport(DoeTransport):
    """DOE objects straight into a firmware, with no mailbox: both roles in one process."""

    def __init__(self, dsm: Dsm) -> None:
        self.dsm = dsm

    async def exchange(self, request: DataObject) -> DataObject:
        response = await self.dsm.handle(request)
        if response is None:
            from ..errors import DoeTimeout

            raise DoeTimeout("the firmware gave no response")
        return response
