"""TDISP from the host: what a platform TSM does with a device's TDI (PCIe 6.x chapter 11).

Every request goes in a secured SPDM session as a PCI-SIG VENDOR_DEFINED_REQUEST.  A
TDISP_ERROR answer raises :class:`TdispErrorResponse` (a subclass per common code), so a flow
reads straight through and a vector that expects a refusal catches the class it expects.  The
requester checks what the device says where the host can: the INTERFACE_ID of every response,
the version list, the required requests in REQ_MSGS_SUPPORTED, the report's portions, and the
report's MMIO ranges against the BARs configuration space holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from ..codec import tdisp as T
from ..errors import LocalProtocolError, PeerProtocolError
from ..transport import ConfigSpace
from .spdm import SpdmRequester, SpdmSession

__all__ = [
    "TdispErrorResponse",
    "TdispInvalidInterface",
    "TdispInvalidInterfaceState",
    "TdispInvalidNonce",
    "TdispInvalidRequest",
    "TdispNoResponse",
    "TdispRequester",
    "TdispUnsupportedRequest",
    "TdispVersionMismatch",
    "check_report",
]

_M = TypeVar("_M", bound=T.TdispMessage)
_BAR0 = 0x10  # Type 0 header: BAR0..BAR5 at 10h..24h


class TdispNoResponse(PeerProtocolError):
    """The device gave no answer to a TDISP request."""


class TdispErrorResponse(PeerProtocolError):
    """The device answered TDISP_ERROR.  ``code`` and ``data`` are its ERROR_CODE/ERROR_DATA."""

    def __init__(self, error: T.TdispError, request: str) -> None:
        self.error = error
        self.code = error.error_code
        self.data = error.error_data
        try:
            name = T.ErrorCode(self.code).name
        except ValueError:
            name = f"{self.code:#06x}"
        super().__init__(f"{request} answered TDISP_ERROR {name} (data {self.data:#x})")


class TdispInvalidRequest(TdispErrorResponse):
    """INVALID_REQUEST."""


class TdispInvalidInterfaceState(TdispErrorResponse):
    """INVALID_INTERFACE_STATE."""


class TdispUnsupportedRequest(TdispErrorResponse):
    """UNSUPPORTED_REQUEST (``data`` is the request code)."""


class TdispVersionMismatch(TdispErrorResponse):
    """VERSION_MISMATCH."""


class TdispInvalidInterface(TdispErrorResponse):
    """INVALID_INTERFACE."""


class TdispInvalidNonce(TdispErrorResponse):
    """INVALID_NONCE."""


_ERRORS: dict[int, type[TdispErrorResponse]] = {
    T.ErrorCode.INVALID_REQUEST: TdispInvalidRequest,
    T.ErrorCode.INVALID_INTERFACE_STATE: TdispInvalidInterfaceState,
    T.ErrorCode.UNSUPPORTED_REQUEST: TdispUnsupportedRequest,
    T.ErrorCode.VERSION_MISMATCH: TdispVersionMismatch,
    T.ErrorCode.INVALID_INTERFACE: TdispInvalidInterface,
    T.ErrorCode.INVALID_NONCE: TdispInvalidNonce,
}


async def check_report(
    report: T.TdiReport,
    config: ConfigSpace,
    mmio_reporting_offset: int,
    bar_sizes: dict[int, int] | None = None,
) -> None:
    """Check a TDI report's MMIO ranges against the BARs in configuration space (§11.3.11).

    Ranges with a Range ID 0-7 name a BAR (the BEI); they must come in ascending BAR order, and
    the first range of each BAR must start at that BAR's address plus the reporting offset.
    ``bar_sizes`` (bytes, by BAR number, from enumeration) adds a size check: sizing a BAR
    means writing it, which a locked TDI must treat as an attack.
    """
    last_bei = -1
    seen: set[int] = set()
    for i, rng in enumerate(report.mmio_ranges):
        if rng.range_id > 7:
            continue  # a device-specific range: nothing in config space to compare with
        bei = rng.range_id
        if bei < last_bei:
            raise PeerProtocolError(f"TDI report range {i} (BAR{bei}) after BAR{last_bei}")
        last_bei = bei
        if bei in seen:
            continue
        seen.add(bei)
        lo = await config.read32(_BAR0 + 4 * bei)
        if lo & 1:
            raise PeerProtocolError(f"TDI report range {i} names BAR{bei}, an I/O BAR")
        base = lo & ~0xF
        if (lo >> 1) & 0b11 == 0b10:  # 64-bit memory BAR
            base |= (await config.read32(_BAR0 + 4 * bei + 4)) << 32
        want = (base + mmio_reporting_offset) & ((1 << 64) - 1)
        if rng.address != want & ~0xFFF:
            raise PeerProtocolError(
                f"TDI report range {i}: FIRST_PAGE {rng.first_page:#x}, but BAR{bei} "
                f"{base:#x} + offset {mmio_reporting_offset:#x} is page {want >> 12:#x}"
            )
        if bar_sizes and bei in bar_sizes and rng.num_pages != max(bar_sizes[bei] >> 12, 1):
            raise PeerProtocolError(
                f"TDI report range {i}: {rng.num_pages} pages, BAR{bei} is {bar_sizes[bei]} bytes"
            )


@dataclass
class TdispRequester:
    spdm: SpdmRequester
    session: SpdmSession
    interface_id: T.InterfaceId
    config: ConfigSpace | None = None
    #: LENGTH asked for per GET_DEVICE_INTERFACE_REPORT (the requester's buffer).
    max_portion: int = 0xFFFF
    version: int = T.VERSION_10
    #: Set by :meth:`lock`: what START needs and what the report is checked with.
    nonce: bytes | None = field(default=None, repr=False)
    mmio_reporting_offset: int = 0
    bar_sizes: dict[int, int] = field(default_factory=dict)
    #: Report portions the last :meth:`get_report` took.
    portions: int = 0

    # -- transport ------------------------------------------------------------------------------
    async def send_payload(self, payload: bytes) -> bytes | None:
        """Raw TDISP bytes (Protocol ID first) in the session; the response payload, or None
        when the device gave no answer."""
        try:
            return await self.spdm.vendor_request(self.session, payload[0], payload[1:])
        except PeerProtocolError:  # DOE timeout or an unopenable answer: nothing usable came
            return None

    async def request(self, msg: T.TdispMessage) -> T.TdispMessage | None:
        """One request; its decoded response (TDISP_ERROR included), or None: no answer."""
        payload = await self.send_payload(msg.encode())
        return None if payload is None else T.decode(payload)

    async def call(self, msg: T.TdispMessage, expect: type[_M]) -> _M:
        """One request whose answer must be ``expect`` for this TDI; TDISP_ERROR raises."""
        name = type(msg).__name__
        rsp = await self.request(msg)
        if rsp is None:
            raise TdispNoResponse(f"no answer to {name}")
        if rsp.interface_id != msg.interface_id:
            raise PeerProtocolError(
                f"{name} for {msg.interface_id} answered for {rsp.interface_id}"
            )
        if isinstance(rsp, T.TdispError):
            raise _ERRORS.get(rsp.error_code, TdispErrorResponse)(rsp, name)
        if not isinstance(rsp, expect):
            raise PeerProtocolError(f"{name} answered by {type(rsp).__name__}")
        if rsp.version != msg.version:
            raise PeerProtocolError(f"{name} answered with TDISPVersion {rsp.version:#x}")
        return rsp

    # -- the requests ---------------------------------------------------------------------------
    async def get_version(self) -> tuple[int, ...]:
        """GET_TDISP_VERSION (sent as 1.0, §11.3.4); the device must list 1.0."""
        rsp = await self.call(T.GetTdispVersion(interface_id=self.interface_id), T.TdispVersion)
        if T.VERSION_10 not in rsp.versions:
            raise PeerProtocolError(f"TDISP_VERSION lists {[hex(v) for v in rsp.versions]}")
        return rsp.versions

    async def get_capabilities(self) -> T.TdispCapabilities:
        rsp = await self.call(
            T.GetTdispCapabilities(interface_id=self.interface_id, version=self.version),
            T.TdispCapabilities,
        )
        missing = [c.name for c in T.REQUIRED_REQUESTS if not rsp.supports(c)]
        if missing:
            raise PeerProtocolError(f"REQ_MSGS_SUPPORTED lacks required {missing}")
        return rsp

    async def lock(
        self, default_stream_id: int, *, flags: int = 0, mmio_reporting_offset: int = 0
    ) -> bytes:
        """LOCK_INTERFACE_REQUEST; the START_INTERFACE_NONCE (also kept for :meth:`start`)."""
        rsp = await self.call(
            T.LockInterfaceRequest(
                interface_id=self.interface_id,
                version=self.version,
                flags=flags,
                default_stream_id=default_stream_id,
                mmio_reporting_offset=mmio_reporting_offset,
            ),
            T.LockInterfaceResponse,
        )
        self.nonce = rsp.nonce
        self.mmio_reporting_offset = mmio_reporting_offset
        return rsp.nonce

    async def get_report(self, *, check: bool = True) -> T.TdiReport:
        """The whole TDI report, reassembled from as many portions as the device sends, then
        (with ``check`` and a config space) checked against the BARs."""
        data = b""
        total: int | None = None
        self.portions = 0
        length = self.max_portion
        while True:
            rsp = await self.call(
                T.GetDeviceInterfaceReport(
                    interface_id=self.interface_id,
                    version=self.version,
                    offset=len(data),
                    length=length,
                ),
                T.DeviceInterfaceReport,
            )
            self.portions += 1
            if len(rsp.portion) > length:
                raise PeerProtocolError(
                    f"PORTION_LENGTH {len(rsp.portion)} exceeds LENGTH {length}"
                )
            size = len(data) + len(rsp.portion) + rsp.remainder_length
            if total is not None and size != total:
                raise PeerProtocolError(f"the report was {total} bytes, now {size}")
            total = size
            data += rsp.portion
            if not rsp.remainder_length:
                break
            if not rsp.portion:
                raise PeerProtocolError("an empty portion with bytes remaining")
            if len(data) > 0xFFFF:
                raise PeerProtocolError("a TDI report beyond OFFSET's 16 bits")
            length = min(self.max_portion, rsp.remainder_length)
        report = T.TdiReport.decode(data)
        if check and self.config is not None:
            await check_report(report, self.config, self.mmio_reporting_offset, self.bar_sizes)
        return report

    async def get_state(self) -> T.TdiState:
        rsp = await self.call(
            T.GetDeviceInterfaceState(interface_id=self.interface_id, version=self.version),
            T.DeviceInterfaceState,
        )
        return rsp.state

    async def start(self, nonce: bytes | None = None) -> None:
        """START_INTERFACE_REQUEST with ``nonce`` (default: the one LOCK returned)."""
        nonce = self.nonce if nonce is None else nonce
        if nonce is None:
            raise LocalProtocolError("START before any LOCK_INTERFACE_RESPONSE gave a nonce")
        await self.call(
            T.StartInterfaceRequest(
                interface_id=self.interface_id, version=self.version, nonce=nonce
            ),
            T.StartInterfaceResponse,
        )

    async def stop(self) -> None:
        await self.call(
            T.StopInterfaceRequest(interface_id=self.interface_id, version=self.version),
            T.StopInterfaceResponse,
        )
        self.nonce = None
