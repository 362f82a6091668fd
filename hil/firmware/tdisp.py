"""TDISP in the device firmware (PCIe 6.x chapter 11): the DSM's responder for its one TDI.

The endpoint has one TDI, function 0 itself; its INTERFACE_ID is the function's Requester ID.
The TDI state lives in the hardware (hdl/tdi): the firmware asks for LOCK, START, STOP and FAIL
through TDI_CMD and reads TDI_STATE, and keeps no copy of the state.  What it does keep is what
only firmware can hold: the START_INTERFACE_NONCE, the MMIO_REPORTING_OFFSET and flags bound at
LOCK, and which SPDM session locked the TDI.

Who may talk (PCIe §11.2.2, §11.4.5, and §6.33.3 session binding): requests come only from
secured sessions (the SPDM responder drops TDISP in the clear).  While a session owns the IDE
streams (it sent IDE_KM QUERY/KEY_PROG: :attr:`IdeKmResponder.owner`) TDISP from any other
session is ignored, with no response.  With no owner (no keys yet, or the owner ended) any
session may talk: that is how a new TSM session finds a TDI in ERROR and STOPs it.  LOCK needs
more: the default stream's keys must have come over the session that asks.

Ending the session that locked the TDI while it is CONFIG_LOCKED or RUN sends FAIL, which the
hardware turns into ERROR (§11.4.5: "all TDI that were transitioned to CONFIG_LOCKED over that
SPDM session must transition to ERROR").
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..codec import ide_km as K
from ..codec import spdm as S
from ..codec import tdisp as T
from .ide_km import IdeKmResponder
from .regs import (
    TDI_BAR0_HI,
    TDI_BAR0_INFO,
    TDI_BAR0_LO,
    TDI_CMD,
    TDI_NUM_STREAMS,
    TDI_OP_FAIL,
    TDI_OP_LOCK,
    TDI_OP_START,
    TDI_OP_STOP,
    TDI_STATE,
    FirmwareRegisterPort,
    stream_slots,
    stream_state,
)

__all__ = ["DEV_ADDR_WIDTH", "LOCK_FLAGS_SUPPORTED", "REPORT_PORTION", "TdispResponder"]

log = logging.getLogger("hil.firmware.tdisp")

#: Flags LOCK_INTERFACE_REQUEST may carry.  NO_FW_UPDATE holds by construction (the firmware is
#: never updated while it runs); SYSTEM_CACHE_LINE_SIZE cannot disagree with anything (no LN
#: Requester capability); LOCK_MSIX holds trivially (no MSI-X capability).  BIND_P2P and
#: ALL_REQUEST_REDIRECT are refused with INVALID_REQUEST: the device can do neither.
LOCK_FLAGS_SUPPORTED = T.LockFlags.NO_FW_UPDATE | T.LockFlags.SYSTEM_CACHE_LINE_SIZE
LOCK_FLAGS_SUPPORTED |= T.LockFlags.LOCK_MSIX
DEV_ADDR_WIDTH = 64  # BAR0 is a 64-bit BAR
#: The responder's buffer for one DEVICE_INTERFACE_REPORT portion (§11.3.10 lets it send less
#: than LENGTH); smaller than the report, so requesters must reassemble.
REPORT_PORTION = 32
_SUPPORTED = T.REQUIRED_REQUESTS


class _Refused(Exception):
    """A request that gets TDISP_ERROR ``code``."""

    def __init__(self, code: T.ErrorCode, why: str, data: int = 0) -> None:
        super().__init__(why)
        self.code = code
        self.data = data


Handler = Callable[[int, T.TdispMessage], Awaitable[T.TdispMessage]]


@dataclass
class TdispResponder:
    regs: FirmwareRegisterPort
    ide_km: IdeKmResponder
    interface_id: T.InterfaceId
    report_portion: int = REPORT_PORTION
    entropy: Callable[[int], bytes] = field(default=secrets.token_bytes, repr=False)
    # -- what firmware binds at LOCK (the state itself is the hardware's) -----------------------
    lock_session: int | None = None
    nonce: bytes | None = field(default=None, repr=False)
    mmio_reporting_offset: int = 0
    lock_flags: int = 0

    # -- session end ----------------------------------------------------------------------------
    async def session_ended(self, session_id: int) -> None:
        """The SPDM session ``session_id`` ended: a TDI it locked goes to ERROR (§11.4.5)."""
        if session_id != self.lock_session:
            return
        self._forget_lock()
        if await self._state() in (T.TdiState.CONFIG_LOCKED, T.TdiState.RUN):
            status = await self._command(TDI_OP_FAIL)
            log.info("locking session %#x ended: FAIL -> status %d", session_id, status)

    def _forget_lock(self) -> None:
        self.lock_session = None
        self.nonce = None
        self.mmio_reporting_offset = 0
        self.lock_flags = 0

    # -- hardware -------------------------------------------------------------------------------
    async def _state(self) -> T.TdiState:
        return T.TdiState((await self.regs.read(TDI_STATE)) & 0x3)

    async def _command(self, op: int, stream_index: int = 0) -> int:
        await self.regs.write(TDI_CMD, (stream_index & 0x7) << 8 | op)
        return (await self.regs.read(TDI_CMD)) & 0xF

    async def _require(self, *states: T.TdiState) -> T.TdiState:
        state = await self._state()
        if state not in states:
            raise _Refused(T.ErrorCode.INVALID_INTERFACE_STATE, f"TDI is {state.name}")
        return state

    # -- entry point ----------------------------------------------------------------------------
    async def handle(self, session_id: int, request: S.VendorDefinedRequest) -> bytes | None:
        """A TDISP request from secured session ``session_id``; the response payload, or None
        when the request is to be ignored."""
        owner = self.ide_km.owner
        if owner is not None and owner != session_id:
            log.info("TDISP from session %#x dropped: streams bound to %#x", session_id, owner)
            return None
        payload = request.payload
        try:
            header = T.Header.decode(payload, strict=False)
        except T.TdispDecodeError as exc:
            # §11.3.2: an unsuccessful request gets TDISP_ERROR; a header too short to name
            # an INTERFACE_ID is an invalid field (Table 11-6), reported for this DSM's TDI.
            log.info("TDISP request without a whole header: %s", exc)
            return T.TdispError(
                interface_id=self.interface_id, error_code=T.ErrorCode.INVALID_REQUEST
            ).encode()
        try:
            response = await self._dispatch(session_id, header, payload)
        except _Refused as refused:
            log.info("TDISP %#04x refused: %s", header.message_type, refused)
            response = T.TdispError(
                interface_id=header.interface_id, error_code=refused.code, error_data=refused.data
            )
        return response.encode()

    async def _dispatch(self, session_id: int, header: T.Header, payload: bytes) -> T.TdispMessage:
        code = header.message_type
        if code == T.RequestCode.GET_TDISP_VERSION:
            if header.version >> 4 != T.VERSION_10 >> 4:  # §11.3.4: major version 1
                raise _Refused(T.ErrorCode.VERSION_MISMATCH, f"version {header.version:#x}")
        elif header.version != T.VERSION_10:
            raise _Refused(T.ErrorCode.VERSION_MISMATCH, f"version {header.version:#x}")
        handler = self._handlers().get(code)
        if handler is None:
            raise _Refused(T.ErrorCode.UNSUPPORTED_REQUEST, f"code {code:#04x}", data=code)
        iid = header.interface_id
        if (iid.rid, iid.segment if iid.segment_valid else 0) != (
            self.interface_id.rid,
            self.interface_id.segment,
        ):
            raise _Refused(T.ErrorCode.INVALID_INTERFACE, f"no TDI {iid}")
        try:
            request = T.decode(payload, strict=False)
        except T.TdispDecodeError as exc:
            raise _Refused(T.ErrorCode.INVALID_REQUEST, str(exc)) from None
        return await handler(session_id, request)

    def _handlers(self) -> dict[int, Handler]:
        return {
            T.RequestCode.GET_TDISP_VERSION: self._version,
            T.RequestCode.GET_TDISP_CAPABILITIES: self._capabilities,
            T.RequestCode.LOCK_INTERFACE_REQUEST: self._lock,
            T.RequestCode.GET_DEVICE_INTERFACE_REPORT: self._report,
            T.RequestCode.GET_DEVICE_INTERFACE_STATE: self._get_state,
            T.RequestCode.START_INTERFACE_REQUEST: self._start,
            T.RequestCode.STOP_INTERFACE_REQUEST: self._stop,
        }

    # -- requests -------------------------------------------------------------------------------
    async def _version(self, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        return T.TdispVersion(interface_id=self.interface_id, versions=(T.VERSION_10,))

    async def _capabilities(self, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        return T.TdispCapabilities(
            interface_id=self.interface_id,
            req_msgs_supported=T.req_msgs_mask(_SUPPORTED),
            lock_flags_supported=LOCK_FLAGS_SUPPORTED,
            dev_addr_width=DEV_ADDR_WIDTH,
            num_req_this=1,  # the firmware takes one request at a time
            num_req_all=1,
        )

    async def _lock(self, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        assert isinstance(msg, T.LockInterfaceRequest)
        await self._require(T.TdiState.CONFIG_UNLOCKED)
        if msg.flags & ~LOCK_FLAGS_SUPPORTED:
            raise _Refused(T.ErrorCode.INVALID_REQUEST, f"unsupported FLAGS {msg.flags:#x}")
        if msg.bind_p2p_address_mask:
            raise _Refused(T.ErrorCode.INVALID_REQUEST, "BIND_P2P_ADDRESS_MASK without BIND_P2P")
        index = await self._default_stream(session_id, msg.default_stream_id)
        base, _ = await self._bar0()
        if not 0 <= base + msg.mmio_reporting_offset < 1 << 64:
            raise _Refused(T.ErrorCode.INVALID_REQUEST, "MMIO_REPORTING_OFFSET over/underflows")
        try:
            nonce = self.entropy(T.NONCE_SIZE)
        except Exception as exc:  # any failure of the entropy source
            raise _Refused(T.ErrorCode.INSUFFICIENT_ENTROPY, str(exc)) from None
        if len(nonce) != T.NONCE_SIZE:
            raise _Refused(T.ErrorCode.INSUFFICIENT_ENTROPY, "short nonce")
        status = await self._command(TDI_OP_LOCK, index)
        if status == 1:
            raise _Refused(T.ErrorCode.INVALID_INTERFACE_STATE, "hardware: LOCK not allowed")
        if status == 3:
            raise _Refused(T.ErrorCode.INVALID_DEVICE_CONFIGURATION, "hardware: stream not Secure")
        if status:
            raise _Refused(T.ErrorCode.UNSPECIFIED, f"hardware: LOCK status {status}")
        self.lock_session = session_id
        self.nonce = nonce
        self.mmio_reporting_offset = msg.mmio_reporting_offset
        self.lock_flags = msg.flags
        return T.LockInterfaceResponse(interface_id=self.interface_id, nonce=nonce)

    async def _default_stream(self, session_id: int, stream_id: int) -> int:
        """The index of the one stream configured with ``stream_id``, checked for LOCK
        (§11.3.8, Table 11-12): keys for every sub-stream, from this session, stream Secure."""
        count = (await self.regs.read(TDI_NUM_STREAMS)) & 0xF
        matches = [
            j for j in range(count) if (await self.regs.read(stream_state(j))) >> 24 == stream_id
        ]
        if not matches:
            raise _Refused(T.ErrorCode.INVALID_REQUEST, f"no stream has Stream ID {stream_id}")
        if len(matches) > 1:
            raise _Refused(
                T.ErrorCode.INVALID_DEVICE_CONFIGURATION, f"{len(matches)} streams use {stream_id}"
            )
        index = matches[0]
        if self.ide_km.owner != session_id:
            raise _Refused(T.ErrorCode.INVALID_REQUEST, "the stream's keys came from no session")
        armed = (await self.regs.read(stream_slots(index))) & 0xFFF
        for direction in K.KeyDirection:
            for sub in K.SubStream:
                # Slot code = 4 x sub-stream + 2 x RxTxB + key set (hdl/ide_cap/README.md).
                pair = 0b11 << (4 * sub + 2 * direction)
                if not armed & pair:
                    raise _Refused(
                        T.ErrorCode.INVALID_REQUEST,
                        f"no key in use for {direction.name} {sub.name}",
                    )
        if (await self.regs.read(stream_state(index))) & 0xF != K.IdeStreamState.SECURE:
            raise _Refused(T.ErrorCode.INVALID_DEVICE_CONFIGURATION, "default stream not Secure")
        return index

    async def _bar0(self) -> tuple[int, int]:
        """BAR0's base address and size, as the host programmed them (the hardware's copy)."""
        lo = await self.regs.read(TDI_BAR0_LO)
        hi = await self.regs.read(TDI_BAR0_HI)
        size_log2 = (await self.regs.read(TDI_BAR0_INFO)) & 0x3F
        base = (hi << 32 | lo) & ~((1 << size_log2) - 1) & ((1 << 64) - 1)
        return base, 1 << size_log2

    async def tdi_report(self) -> T.TdiReport:
        """The TDI report: BAR0 as one MMIO range, in 4 KiB pages, with the reporting offset."""
        base, size = await self._bar0()
        return T.TdiReport(
            interface_info=T.InterfaceInfo.NO_FW_UPDATE_WHILE_LOCKED,
            mmio_ranges=(
                T.MmioRange(
                    first_page=(base + self.mmio_reporting_offset) >> 12,
                    num_pages=size >> 12,
                    range_id=0,  # the BAR Equivalent Indicator: BAR0
                ),
            ),
        )

    async def _report(self, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        assert isinstance(msg, T.GetDeviceInterfaceReport)
        await self._require(T.TdiState.CONFIG_LOCKED, T.TdiState.RUN)
        report = (await self.tdi_report()).encode()
        if msg.offset >= len(report) or msg.length == 0:
            raise _Refused(T.ErrorCode.INVALID_REQUEST, f"OFFSET {msg.offset} LENGTH {msg.length}")
        portion = report[msg.offset : msg.offset + min(msg.length, self.report_portion)]
        return T.DeviceInterfaceReport(
            interface_id=self.interface_id,
            portion=portion,
            remainder_length=len(report) - msg.offset - len(portion),
        )

    async def _get_state(self, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        return T.DeviceInterfaceState(interface_id=self.interface_id, state=await self._state())

    async def _start(self, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        assert isinstance(msg, T.StartInterfaceRequest)
        await self._require(T.TdiState.CONFIG_LOCKED)
        if self.nonce is None or not secrets.compare_digest(msg.nonce, self.nonce):
            raise _Refused(T.ErrorCode.INVALID_NONCE, "START_INTERFACE_NONCE mismatch")
        self.nonce = None  # §11.3.14: invalidated before the TDI enters RUN
        status = await self._command(TDI_OP_START)
        if status:
            raise _Refused(T.ErrorCode.INVALID_INTERFACE_STATE, f"hardware: START status {status}")
        return T.StartInterfaceResponse(interface_id=self.interface_id)

    async def _stop(self, session_id: int, msg: T.TdispMessage) -> T.TdispMessage:
        status = await self._command(TDI_OP_STOP)
        if status:
            raise _Refused(T.ErrorCode.UNSPECIFIED, f"hardware: STOP status {status}")
        self._forget_lock()
        return T.StopInterfaceResponse(interface_id=self.interface_id)
