"""The device firmware (DSM, device security manager), in Python.

It serves the endpoint's DSM port: CMA/SPDM and Secured CMA/SPDM objects in, responses out.
In simulation cocotb connects it to the HDL's DSM port; in memory it is called directly.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from .._version import __version__
from ..codec.doe import DataObject
from ..codec.spdm import (
    DmtfMeasurementType,
    ErrorCode,
    PciProtocolId,
    RequestCode,
    VendorDefinedRequest,
)
from ..codec.tdisp import InterfaceId
from ..pki import Identity, TestPki
from ..transport import DoeTransport
from .ide_km import IdeKmResponder
from .mutual_auth import MutAuthMode, MutualAuthPolicy
from .regs import FirmwareRegisterPort
from .spdm_responder import (
    HEARTBEAT_PERIOD_S,
    SUPPORTED_VERSIONS,
    Measurement,
    SpdmResponder,
    VendorRequestRefused,
)
from .tdisp import TdispResponder

__all__ = [
    "TEST_PKI_LABEL",
    "Dsm",
    "FirmwareTransport",
    "Measurement",
    "MutAuthMode",
    "MutualAuthPolicy",
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
    #: The hardware's firmware register port; without one there is no IDE_KM.
    regs: FirmwareRegisterPort | None = None
    requester_id: int = 0x0100  # bus 1, device 0, function 0 until the host says otherwise
    #: The TDI's FUNCTION_ID (§11.2: [15:0] RID, [23:16] segment, [24] segment valid); by
    #: default function 0's own Requester ID.  Another value presents the TDI under that ID,
    #: for a requester that addresses a fixed one (spdm_requester_emu uses 0xBEEF).
    function_id: int | None = None
    #: The IDE_KM PortIndex the port is presented at besides 00h (§6.33.3); 0: 00h only.
    ide_km_port_index: int = 0
    #: The SPDM versions the responder offers, and the HEARTBEAT period it grants.
    spdm_versions: tuple[int, ...] = SUPPORTED_VERSIONS
    heartbeat_period_s: int = HEARTBEAT_PERIOD_S
    #: The device's clock in seconds (the simulator's time in a simulation).
    clock: Callable[[], float] = time.monotonic
    #: Whether sessions require the requester to authenticate itself (mutual authentication).
    mutual_auth: MutualAuthPolicy = field(default_factory=MutualAuthPolicy)
    spdm: SpdmResponder = field(init=False)
    ide_km: IdeKmResponder | None = field(init=False, default=None)
    tdisp: TdispResponder | None = field(init=False, default=None)
    _ended: list[int] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.spdm = SpdmResponder(
            self.identity,
            device_measurements(self.hdl_build),
            versions=self.spdm_versions,
            heartbeat_period_s=self.heartbeat_period_s,
            clock=self.clock,
            mutual_auth=self.mutual_auth,
        )
        self.spdm.vendor_handler = self._vendor
        if self.regs is not None:
            self.ide_km = IdeKmResponder(
                self.regs,
                bus=self.requester_id >> 8,
                dev_func=self.requester_id & 0xFF,
                port_index=self.ide_km_port_index,
            )
            # The one TDI is function 0 itself: its INTERFACE_ID is the Requester ID.
            fid = self.requester_id if self.function_id is None else self.function_id
            interface = InterfaceId(
                rid=fid & 0xFFFF, segment=(fid >> 16) & 0xFF, segment_valid=bool(fid >> 24 & 1)
            )
            self.tdisp = TdispResponder(self.regs, self.ide_km, interface)
            self.spdm.on_session_end = self._session_ended

    def _session_ended(self, session_id: int) -> None:
        assert self.ide_km is not None
        self.ide_km.session_ended(session_id)
        self._ended.append(session_id)  # TDISP's part needs the hardware: done in handle()

    async def _vendor(self, session_id: int, request: VendorDefinedRequest) -> bytes | None:
        if request.pci_protocol_id == PciProtocolId.IDE_KM and self.ide_km is not None:
            return await self.ide_km.handle(session_id, request)
        if request.pci_protocol_id == PciProtocolId.TDISP and self.tdisp is not None:
            return await self.tdisp.handle(session_id, request)
        # Another standard, vendor or PCI-SIG protocol (CXL IDE_KM, CXL TSP, ...): DSP0274 1.3
        # "SPDM request codes": an unsupported request gets ERROR(UnsupportedRequest).
        raise VendorRequestRefused(
            ErrorCode.UNSUPPORTED_REQUEST,
            f"vendor-defined StandardID {request.standard_id:#06x} VendorID "
            f"{request.vendor_id.hex() or '-'} protocol {request.pci_protocol_id} not served",
            RequestCode.VENDOR_DEFINED_REQUEST,
        )

    async def handle(self, obj: DataObject) -> DataObject | None:
        response = await self.spdm.handle(obj)
        # Sessions that ended in this request (END_SESSION, GET_VERSION): a TDI they locked
        # goes to ERROR before the response leaves (PCIe §11.4.5).
        while self._ended and self.tdisp is not None:
            await self.tdisp.session_ended(self._ended.pop(0))
        return response


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
