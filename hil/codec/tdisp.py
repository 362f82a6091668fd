"""TDISP, the TEE Device Interface Security Protocol (PCIe 6.x chapter 11): bytes in, messages out.

TDISP messages travel as the payload of a PCI-SIG SPDM VENDOR_DEFINED_REQUEST/RESPONSE
(StandardID 3, VendorID 0001h) inside a secured session, Protocol ID 01h (§11.3).  ``encode()``
returns that whole vendor payload, starting with the Protocol ID byte; layouts follow PCIe
§11.3 Tables 11-5 to 11-30 and libspdm ``pci_tdisp.h``.  Multi-byte fields are little-endian.

Every message is the Protocol ID, a 16-byte header, then a payload (Table 11-5)::

     byte 0        1             2             3 .. 4      5 .. 16
    +-------------+-------------+-------------+-----------+----------------+---------
    | Protocol ID | TDISPVersion| MessageType | reserved  | INTERFACE_ID   | payload
    +-------------+-------------+-------------+-----------+----------------+---------
      01h = TDISP   7:4 major,                             12 bytes, below
                    3:0 minor (10h = 1.0)

    INTERFACE_ID (§11.2): FUNCTION_ID (LE DW) then 8 reserved bytes
     31        25   24             23        16  15                 0
    +------------+--------------+-------------+--------------------+
    |  reserved  | Segment Valid| Req Segment | Requester ID (RID) |
    +------------+--------------+-------------+--------------------+

Offsets in the spec's tables count from the TDISPVersion byte (the payload starts at 16);
this module counts from the Protocol ID byte, one more.

Reserved fields are rejected by default: decoders raise :class:`TdispDecodeError` when a
reserved byte or bit is set, a length is wrong or a code is unknown.  A responder, which the spec
tells to ignore reserved fields (§11.3.3), passes ``strict=False``: reserved fields then read as
zero, so what it decodes re-encodes to a valid message.  The TDISPVersion byte is decoded, not
judged: a responder must answer a wrong version with TDISP_ERROR VERSION_MISMATCH, so the
decision is the caller's (:data:`VERSION_10`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Self, TypeAlias

from ..errors import LocalProtocolError, PeerProtocolError
from ._fields import build as _build_with
from ._fields import known as _known
from ._fields import uint as _uint
from .spdm import (
    PCI_SIG_STANDARD_ID,
    PCI_SIG_VENDOR_ID,
    PciProtocolId,
    SpdmVersion,
    VendorDefinedRequest,
    VendorDefinedResponse,
)

__all__ = [
    "HEADER_SIZE",
    "NONCE_SIZE",
    "PROTOCOL_ID",
    "REQUIRED_REQUESTS",
    "VERSION_10",
    "BindP2pStreamRequest",
    "BindP2pStreamResponse",
    "DeviceInterfaceReport",
    "DeviceInterfaceState",
    "ErrorCode",
    "GetDeviceInterfaceReport",
    "GetDeviceInterfaceState",
    "GetTdispCapabilities",
    "GetTdispVersion",
    "Header",
    "InterfaceId",
    "InterfaceInfo",
    "LockFlags",
    "LockInterfaceRequest",
    "LockInterfaceResponse",
    "MmioAttr",
    "MmioRange",
    "RegistryId",
    "RequestCode",
    "ResponseCode",
    "SetMmioAttributeRequest",
    "SetMmioAttributeResponse",
    "StartInterfaceRequest",
    "StartInterfaceResponse",
    "StopInterfaceRequest",
    "StopInterfaceResponse",
    "TdiReport",
    "TdiState",
    "TdispCapabilities",
    "TdispDecodeError",
    "TdispError",
    "TdispMessage",
    "TdispVersion",
    "UnbindP2pStreamRequest",
    "UnbindP2pStreamResponse",
    "VdmRequest",
    "VdmResponse",
    "VendorData",
    "decode",
    "from_vendor_defined",
    "req_msgs_mask",
]

PROTOCOL_ID = PciProtocolId.TDISP  # 01h [PCIe §11.3]
VERSION_10 = 0x10  # TDISP 1.0 (§11.3.3): major 1 in bits 7:4, minor 0
HEADER_SIZE = 16  # TDISPVersion .. INTERFACE_ID (Table 11-5)
NONCE_SIZE = 32  # START_INTERFACE_NONCE (Tables 11-11, 11-18)
_OPEN = 1 + HEADER_SIZE  # Protocol ID + header: where every payload starts in encode()
_MMIO_RANGE_SIZE = 16
_REPORT_FIXED = 16  # TDI report bytes before the MMIO ranges (Table 11-15)


class TdispDecodeError(PeerProtocolError):
    """Bytes from the peer are not a valid TDISP message."""


class RequestCode(IntEnum):
    """Request MessageType values (Table 11-3).  0x88-0x8B are optional for a device."""

    GET_TDISP_VERSION = 0x81
    GET_TDISP_CAPABILITIES = 0x82
    LOCK_INTERFACE_REQUEST = 0x83
    GET_DEVICE_INTERFACE_REPORT = 0x84
    GET_DEVICE_INTERFACE_STATE = 0x85
    START_INTERFACE_REQUEST = 0x86
    STOP_INTERFACE_REQUEST = 0x87
    BIND_P2P_STREAM_REQUEST = 0x88
    UNBIND_P2P_STREAM_REQUEST = 0x89
    SET_MMIO_ATTRIBUTE_REQUEST = 0x8A
    VDM_REQUEST = 0x8B


class ResponseCode(IntEnum):
    """Response MessageType values (Table 11-4)."""

    TDISP_VERSION = 0x01
    TDISP_CAPABILITIES = 0x02
    LOCK_INTERFACE_RESPONSE = 0x03
    DEVICE_INTERFACE_REPORT = 0x04
    DEVICE_INTERFACE_STATE = 0x05
    START_INTERFACE_RESPONSE = 0x06
    STOP_INTERFACE_RESPONSE = 0x07
    BIND_P2P_STREAM_RESPONSE = 0x08
    UNBIND_P2P_STREAM_RESPONSE = 0x09
    SET_MMIO_ATTRIBUTE_RESPONSE = 0x0A
    VDM_RESPONSE = 0x0B
    TDISP_ERROR = 0x7F


#: The seven requests every TDISP device must support (Table 11-3).
REQUIRED_REQUESTS = tuple(RequestCode)[:7]


class ErrorCode(IntEnum):
    """TDISP_ERROR ERROR_CODE values (Table 11-27); others are reserved."""

    INVALID_REQUEST = 0x0001
    BUSY = 0x0003
    INVALID_INTERFACE_STATE = 0x0004
    UNSPECIFIED = 0x0005
    UNSUPPORTED_REQUEST = 0x0007  # ERROR_DATA = the request code
    VERSION_MISMATCH = 0x0041
    VENDOR_SPECIFIC_ERROR = 0x00FF  # ERROR_DATA = length of EXTENDED_ERROR_DATA
    INVALID_INTERFACE = 0x0101
    INVALID_NONCE = 0x0102
    INSUFFICIENT_ENTROPY = 0x0103
    INVALID_DEVICE_CONFIGURATION = 0x0104


class TdiState(IntEnum):
    """DEVICE_INTERFACE_STATE TDI_STATE (Table 11-17); 4-255 are reserved."""

    CONFIG_UNLOCKED = 0
    CONFIG_LOCKED = 1
    RUN = 2
    ERROR = 3


class LockFlags(IntFlag):
    """LOCK_INTERFACE_REQUEST FLAGS (Table 11-10, libspdm ``PCI_TDISP_LOCK_INTERFACE_FLAGS_*``).

    Bits 15:5 are reserved.  SYSTEM_CACHE_LINE_SIZE: libspdm, spdm-emu and spdm-rs all name only
    the bit (value 2h).  The transcription of PCIe r6.3 §11.3.8 used for this project lists it
    as "System cache line size" without the encoding; Table 11-10 itself is a figure there.  The
    reading 0 = 64 bytes, 1 = 128 bytes is taken from protocols.md and is still unconfirmed.
    The device decides nothing with it: it has no LN Requester capability whose Cache Line
    Size could disagree.
    """

    NO_FW_UPDATE = 1 << 0
    SYSTEM_CACHE_LINE_SIZE = 1 << 1  # 0: 64 B, 1: 128 B (unconfirmed, see above)
    LOCK_MSIX = 1 << 2
    BIND_P2P = 1 << 3
    ALL_REQUEST_REDIRECT = 1 << 4


_LOCK_FLAGS_RESERVED = 0xFFFF & ~0x1F


class InterfaceInfo(IntFlag):
    """TDI report INTERFACE_INFO (Table 11-15); bits 15:5 reserved."""

    NO_FW_UPDATE_WHILE_LOCKED = 1 << 0
    DMA_WITHOUT_PASID = 1 << 1
    DMA_WITH_PASID = 1 << 2
    ATS_ENABLED = 1 << 3
    PRS_ENABLED = 1 << 4


class MmioAttr(IntFlag):
    """MMIO_RANGE attribute bits 15:0 (Table 11-15); bits 15:4 reserved, 31:16 the Range ID."""

    MSIX_TABLE = 1 << 0
    MSIX_PBA = 1 << 1
    IS_NON_TEE_MEM = 1 << 2
    IS_MEM_ATTR_UPDATABLE = 1 << 3


class RegistryId(IntEnum):
    """Who assigned a VENDOR_ID (Tables 11-28 to 11-30)."""

    PCI_SIG = 0x00
    CXL = 0x01


def req_msgs_mask(codes: tuple[int, ...] | list[int]) -> int:
    """REQ_MSGS_SUPPORTED for ``codes``: bit (code - 80h) of a 128-bit little-endian mask.

    PCIe §11.3.7 Table 11-9: "the bit index corresponds to the message code defined in
    Table 11-3 minus 80h".  The seven required requests 81h-87h are bits 1-7, so byte 0 is FEh,
    as spdm-emu and the Caliptra and spdm-rs emulators send.  (tee-io-validator's test document
    expects 7Fh, which would be bit index = code - 81h; the spec text does not support it.)
    """
    mask = 0
    for code in codes:
        if not 0x80 <= code <= 0xFF:
            raise LocalProtocolError(f"request code {code:#x} is outside 80h..FFh")
        mask |= 1 << (code - 0x80)
    return mask


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _reserved_zero(name: str, value: int, strict: bool) -> None:
    if strict and value:
        raise TdispDecodeError(f"{name} is reserved and must be 0, got {value:#x}")


def _le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def _get(data: bytes, pos: int, size: int) -> int:
    return int.from_bytes(data[pos : pos + size], "little")


def _build(cls: Any, **fields: Any) -> Any:
    return _build_with(cls, TdispDecodeError, cls.__name__, **fields)


def _blob(name: str, value: object, size: int | None = None, max_size: int | None = None) -> None:
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"{name} must be bytes")
    if size is not None and len(value) != size:
        raise LocalProtocolError(f"{name} must be {size} bytes, got {len(value)}")
    if max_size is not None and len(value) > max_size:
        raise LocalProtocolError(f"{name} is {len(value)} bytes, more than {max_size}")


# --------------------------------------------------------------------------------------------
# INTERFACE_ID and the header
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceId:
    """INTERFACE_ID (§11.2): the FUNCTION_ID of the function hosting the TDI.

    ``rid`` is the Requester ID (bus << 8 | device << 3 | function, or the ARI form).
    """

    rid: int
    segment: int = 0
    segment_valid: bool = False

    SIZE: ClassVar[int] = 12

    def __post_init__(self) -> None:
        _uint("rid", self.rid, 16)
        _uint("segment", self.segment, 8)
        if not isinstance(self.segment_valid, bool):
            raise LocalProtocolError("segment_valid must be a bool")

    @property
    def function_id(self) -> int:
        return self.rid | self.segment << 16 | int(self.segment_valid) << 24

    def encode(self) -> bytes:
        return _le(self.function_id, 4) + bytes(8)

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        if len(data) != cls.SIZE:
            raise TdispDecodeError(f"INTERFACE_ID is 12 bytes, got {len(data)}")
        fid = _get(data, 0, 4)
        _reserved_zero("FUNCTION_ID bits 31:25", fid >> 25, strict)
        _reserved_zero("INTERFACE_ID bytes 4-11", _get(data, 4, 8), strict)
        return cls(rid=fid & 0xFFFF, segment=(fid >> 16) & 0xFF, segment_valid=bool(fid >> 24 & 1))

    def __str__(self) -> str:
        seg = f"{self.segment:02x}:" if self.segment_valid else ""
        return f"{seg}{self.rid >> 8:02x}:{(self.rid >> 3) & 0x1F:02x}.{self.rid & 7}"


@dataclass(frozen=True)
class Header:
    """The 16-byte header every TDISP message carries, read on its own.

    A responder decodes the header first so that it can answer with TDISP_ERROR (echoing the
    INTERFACE_ID) before it judges the rest of the message.
    """

    version: int
    message_type: int
    interface_id: InterfaceId

    def __post_init__(self) -> None:
        _uint("version", self.version, 8)
        _uint("message_type", self.message_type, 8)

    @property
    def is_request(self) -> bool:
        return self.message_type >= 0x80

    def encode(self) -> bytes:
        return (
            bytes((PROTOCOL_ID, self.version, self.message_type, 0, 0)) + self.interface_id.encode()
        )

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        """The header of TDISP vendor payload ``data`` (Protocol ID first); the rest unjudged."""
        data = bytes(data)
        if len(data) < _OPEN:
            raise TdispDecodeError(f"TDISP message of {len(data)} bytes: shorter than its header")
        if data[0] != PROTOCOL_ID:
            raise TdispDecodeError(f"Protocol ID {data[0]:#04x} is not TDISP (01h)")
        _reserved_zero("header bytes 2-3", data[3] | data[4], strict)
        return cls(
            version=data[1],
            message_type=_known(RequestCode if data[2] >= 0x80 else ResponseCode, data[2]),
            interface_id=InterfaceId.decode(data[5:_OPEN], strict=strict),
        )


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Message:
    MESSAGE_TYPE: ClassVar[int]
    IS_REQUEST: ClassVar[bool]
    #: Payload size when fixed; None when the message says its own length.
    PAYLOAD_SIZE: ClassVar[int | None] = 0

    interface_id: InterfaceId
    version: int = VERSION_10

    def __post_init__(self) -> None:
        _uint("version", self.version, 8)
        if not isinstance(self.interface_id, InterfaceId):
            raise LocalProtocolError("interface_id must be an InterfaceId")
        self._validate()

    def _validate(self) -> None:
        pass

    @property
    def header(self) -> Header:
        return Header(self.version, self.MESSAGE_TYPE, self.interface_id)

    def _payload(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        return self.header.encode() + self._payload()

    def to_vendor_defined(
        self, *, version: int = SpdmVersion.V12
    ) -> VendorDefinedRequest | VendorDefinedResponse:
        """This message as the SPDM VENDOR_DEFINED message that carries it."""
        cls = VendorDefinedRequest if self.IS_REQUEST else VendorDefinedResponse
        return cls.pci_sig(PROTOCOL_ID, self.encode()[1:], version=version)

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        return {}

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        data = bytes(data)
        header = Header.decode(data, strict=strict)
        name = RequestCode if cls.IS_REQUEST else ResponseCode
        if header.message_type != cls.MESSAGE_TYPE:
            raise TdispDecodeError(
                f"MessageType {header.message_type:#04x} is not {name(cls.MESSAGE_TYPE).name}"
            )
        payload = data[_OPEN:]
        if cls.PAYLOAD_SIZE is not None and len(payload) != cls.PAYLOAD_SIZE:
            raise TdispDecodeError(
                f"{name(cls.MESSAGE_TYPE).name} payload is {cls.PAYLOAD_SIZE} bytes, "
                f"got {len(payload)}"
            )
        return _build(
            cls,
            version=header.version,
            interface_id=header.interface_id,
            **cls._fields(payload, strict),
        )


@dataclass(frozen=True, kw_only=True)
class GetTdispVersion(_Message):
    """GET_TDISP_VERSION (§11.3.4): header only.  Sent with major version 1 (10h)."""

    MESSAGE_TYPE = RequestCode.GET_TDISP_VERSION
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class TdispVersion(_Message):
    """TDISP_VERSION (§11.3.5, Table 11-7).

    Payload::

        | VERSION_NUM_COUNT (N >= 1) | VERSION_NUM_ENTRY x N (7:4 major, 3:0 minor) |
    """

    MESSAGE_TYPE = ResponseCode.TDISP_VERSION
    IS_REQUEST = False
    PAYLOAD_SIZE = None

    versions: tuple[int, ...] = (VERSION_10,)

    def _validate(self) -> None:
        if not 1 <= len(self.versions) <= 0xFF:
            raise LocalProtocolError("TDISP_VERSION lists 1..255 versions")
        for v in self.versions:
            _uint("version entry", v, 8)

    def _payload(self) -> bytes:
        return bytes((len(self.versions), *self.versions))

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        if not payload:
            raise TdispDecodeError("TDISP_VERSION without VERSION_NUM_COUNT")
        count = payload[0]
        if count < 1 or len(payload) != 1 + count:
            raise TdispDecodeError(
                f"TDISP_VERSION: VERSION_NUM_COUNT {count} with {len(payload) - 1} entries"
            )
        return {"versions": tuple(payload[1:])}


@dataclass(frozen=True, kw_only=True)
class GetTdispCapabilities(_Message):
    """GET_TDISP_CAPABILITIES (§11.3.6, Table 11-8).

    Payload::

        | TSM_CAPS (4, bits 31:0 reserved) |
    """

    MESSAGE_TYPE = RequestCode.GET_TDISP_CAPABILITIES
    IS_REQUEST = True
    PAYLOAD_SIZE = 4

    tsm_caps: int = 0

    def _validate(self) -> None:
        _uint("tsm_caps", self.tsm_caps, 32)

    def _payload(self) -> bytes:
        return _le(self.tsm_caps, 4)

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        caps = _get(payload, 0, 4)
        _reserved_zero("TSM_CAPS", caps, strict)
        return {"tsm_caps": 0}


@dataclass(frozen=True, kw_only=True)
class TdispCapabilities(_Message):
    """TDISP_CAPABILITIES (§11.3.7, Table 11-9).

    Payload, 28 bytes::

        | DSM_CAPS (4, reserved)                                         |
        | REQ_MSGS_SUPPORTED (16): bit (code - 80h), see req_msgs_mask() |
        | LOCK_INTERFACE_FLAGS_SUPPORTED (2) | reserved (3) |
        | DEV_ADDR_WIDTH (1) | NUM_REQ_THIS (1) | NUM_REQ_ALL (1) |
    """

    MESSAGE_TYPE = ResponseCode.TDISP_CAPABILITIES
    IS_REQUEST = False
    PAYLOAD_SIZE = 28

    dsm_caps: int = 0
    req_msgs_supported: int = field(default_factory=lambda: req_msgs_mask(REQUIRED_REQUESTS))
    lock_flags_supported: int = 0
    dev_addr_width: int = 64
    num_req_this: int = 1
    num_req_all: int = 1

    def _validate(self) -> None:
        _uint("dsm_caps", self.dsm_caps, 32)
        _uint("req_msgs_supported", self.req_msgs_supported, 128)
        _uint("lock_flags_supported", self.lock_flags_supported, 16)
        for name in ("dev_addr_width", "num_req_this", "num_req_all"):
            _uint(name, getattr(self, name), 8)

    def supports(self, code: int) -> bool:
        return 0x80 <= code <= 0xFF and bool(self.req_msgs_supported >> (code - 0x80) & 1)

    def _payload(self) -> bytes:
        return (
            _le(self.dsm_caps, 4)
            + _le(self.req_msgs_supported, 16)
            + _le(self.lock_flags_supported, 2)
            + bytes(3)
            + bytes((self.dev_addr_width, self.num_req_this, self.num_req_all))
        )

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        dsm_caps = _get(payload, 0, 4)
        _reserved_zero("DSM_CAPS", dsm_caps, strict)
        _reserved_zero("TDISP_CAPABILITIES bytes 38-40", _get(payload, 22, 3), strict)
        return {
            "dsm_caps": 0,
            "req_msgs_supported": _get(payload, 4, 16),
            "lock_flags_supported": _get(payload, 20, 2),
            "dev_addr_width": payload[25],
            "num_req_this": payload[26],
            "num_req_all": payload[27],
        }


@dataclass(frozen=True, kw_only=True)
class LockInterfaceRequest(_Message):
    """LOCK_INTERFACE_REQUEST (§11.3.8, Table 11-10; libspdm ``pci_tdisp_lock_interface_param_t``).

    Payload, 20 bytes::

        | FLAGS (2) | DEFAULT_STREAM_ID (1) | reserved (1) |
        | MMIO_REPORTING_OFFSET (8, signed two's complement) |
        | BIND_P2P_ADDRESS_MASK (8) |
    """

    MESSAGE_TYPE = RequestCode.LOCK_INTERFACE_REQUEST
    IS_REQUEST = True
    PAYLOAD_SIZE = 20

    flags: int = 0
    default_stream_id: int = 0
    mmio_reporting_offset: int = 0
    bind_p2p_address_mask: int = 0

    def _validate(self) -> None:
        _uint("flags", self.flags, 16)
        _uint("default_stream_id", self.default_stream_id, 8)
        if not isinstance(self.mmio_reporting_offset, int) or not (
            -(1 << 63) <= self.mmio_reporting_offset < (1 << 63)
        ):
            raise LocalProtocolError("mmio_reporting_offset is a signed 64-bit value")
        _uint("bind_p2p_address_mask", self.bind_p2p_address_mask, 64)

    def _payload(self) -> bytes:
        return (
            _le(self.flags, 2)
            + bytes((self.default_stream_id, 0))
            + self.mmio_reporting_offset.to_bytes(8, "little", signed=True)
            + _le(self.bind_p2p_address_mask, 8)
        )

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        flags = _get(payload, 0, 2)
        _reserved_zero(
            "LOCK_INTERFACE_REQUEST FLAGS bits 15:5", flags & _LOCK_FLAGS_RESERVED, strict
        )
        _reserved_zero("LOCK_INTERFACE_REQUEST byte 19", payload[3], strict)
        return {
            "flags": LockFlags(flags & ~_LOCK_FLAGS_RESERVED),
            "default_stream_id": payload[2],
            "mmio_reporting_offset": int.from_bytes(payload[4:12], "little", signed=True),
            "bind_p2p_address_mask": _get(payload, 12, 8),
        }


@dataclass(frozen=True, kw_only=True)
class LockInterfaceResponse(_Message):
    """LOCK_INTERFACE_RESPONSE (§11.3.9, Table 11-11).

    Payload::

        | START_INTERFACE_NONCE (32) |

    The nonce never appears in a repr.
    """

    MESSAGE_TYPE = ResponseCode.LOCK_INTERFACE_RESPONSE
    IS_REQUEST = False
    PAYLOAD_SIZE = NONCE_SIZE

    nonce: bytes = field(repr=False)

    def _validate(self) -> None:
        _blob("nonce", self.nonce, NONCE_SIZE)

    def _payload(self) -> bytes:
        return self.nonce

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        return {"nonce": payload}


@dataclass(frozen=True, kw_only=True)
class GetDeviceInterfaceReport(_Message):
    """GET_DEVICE_INTERFACE_REPORT (§11.3.10, Table 11-13).

    Payload::

        | OFFSET (2) | LENGTH (2) |      OFFSET 0 with LENGTH FFFFh asks for the whole report
    """

    MESSAGE_TYPE = RequestCode.GET_DEVICE_INTERFACE_REPORT
    IS_REQUEST = True
    PAYLOAD_SIZE = 4

    offset: int = 0
    length: int = 0xFFFF

    def _validate(self) -> None:
        _uint("offset", self.offset, 16)
        _uint("length", self.length, 16)

    def _payload(self) -> bytes:
        return _le(self.offset, 2) + _le(self.length, 2)

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        return {"offset": _get(payload, 0, 2), "length": _get(payload, 2, 2)}


@dataclass(frozen=True, kw_only=True)
class DeviceInterfaceReport(_Message):
    """DEVICE_INTERFACE_REPORT (§11.3.11, Table 11-14): one portion of the TDI report.

    Payload::

        | PORTION_LENGTH (2) | REMAINDER_LENGTH (2) | REPORT_BYTES (PORTION_LENGTH) |
    """

    MESSAGE_TYPE = ResponseCode.DEVICE_INTERFACE_REPORT
    IS_REQUEST = False
    PAYLOAD_SIZE = None

    portion: bytes
    remainder_length: int = 0

    def _validate(self) -> None:
        _blob("portion", self.portion, max_size=0xFFFF)
        _uint("remainder_length", self.remainder_length, 16)

    def _payload(self) -> bytes:
        return _le(len(self.portion), 2) + _le(self.remainder_length, 2) + self.portion

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        if len(payload) < 4:
            raise TdispDecodeError(f"DEVICE_INTERFACE_REPORT payload of {len(payload)} bytes")
        portion = _get(payload, 0, 2)
        if len(payload) != 4 + portion:
            raise TdispDecodeError(
                f"DEVICE_INTERFACE_REPORT: PORTION_LENGTH {portion}, {len(payload) - 4} bytes"
            )
        return {"portion": payload[4:], "remainder_length": _get(payload, 2, 2)}


@dataclass(frozen=True, kw_only=True)
class GetDeviceInterfaceState(_Message):
    """GET_DEVICE_INTERFACE_STATE (§11.3.12): header only."""

    MESSAGE_TYPE = RequestCode.GET_DEVICE_INTERFACE_STATE
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class DeviceInterfaceState(_Message):
    """DEVICE_INTERFACE_STATE (§11.3.13, Table 11-17).

    Payload::

        | TDI_STATE (1): 0 CONFIG_UNLOCKED, 1 CONFIG_LOCKED, 2 RUN, 3 ERROR |
    """

    MESSAGE_TYPE = ResponseCode.DEVICE_INTERFACE_STATE
    IS_REQUEST = False
    PAYLOAD_SIZE = 1

    state: TdiState

    def _validate(self) -> None:
        if self.state not in tuple(TdiState):
            raise LocalProtocolError(f"TDI_STATE {self.state!r} is reserved")

    def _payload(self) -> bytes:
        return bytes((self.state,))

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        try:
            return {"state": TdiState(payload[0])}
        except ValueError:
            raise TdispDecodeError(f"TDI_STATE {payload[0]} is reserved") from None


@dataclass(frozen=True, kw_only=True)
class StartInterfaceRequest(_Message):
    """START_INTERFACE_REQUEST (§11.3.14, Table 11-18).

    Payload::

        | START_INTERFACE_NONCE (32), from LOCK_INTERFACE_RESPONSE |
    """

    MESSAGE_TYPE = RequestCode.START_INTERFACE_REQUEST
    IS_REQUEST = True
    PAYLOAD_SIZE = NONCE_SIZE

    nonce: bytes = field(repr=False)

    def _validate(self) -> None:
        _blob("nonce", self.nonce, NONCE_SIZE)

    def _payload(self) -> bytes:
        return self.nonce

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        return {"nonce": payload}


@dataclass(frozen=True, kw_only=True)
class StartInterfaceResponse(_Message):
    """START_INTERFACE_RESPONSE (§11.3.15): header only."""

    MESSAGE_TYPE = ResponseCode.START_INTERFACE_RESPONSE
    IS_REQUEST = False


@dataclass(frozen=True, kw_only=True)
class StopInterfaceRequest(_Message):
    """STOP_INTERFACE_REQUEST (§11.3.16): header only."""

    MESSAGE_TYPE = RequestCode.STOP_INTERFACE_REQUEST
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class StopInterfaceResponse(_Message):
    """STOP_INTERFACE_RESPONSE (§11.3.17): header only."""

    MESSAGE_TYPE = ResponseCode.STOP_INTERFACE_RESPONSE
    IS_REQUEST = False


@dataclass(frozen=True, kw_only=True)
class _P2pStreamRequest(_Message):
    """Payload::

    | P2P_STREAM_ID (1) |
    """

    IS_REQUEST = True
    PAYLOAD_SIZE = 1

    p2p_stream_id: int

    def _validate(self) -> None:
        _uint("p2p_stream_id", self.p2p_stream_id, 8)

    def _payload(self) -> bytes:
        return bytes((self.p2p_stream_id,))

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        return {"p2p_stream_id": payload[0]}


@dataclass(frozen=True, kw_only=True)
class BindP2pStreamRequest(_P2pStreamRequest):
    """BIND_P2P_STREAM_REQUEST (§11.3.18, Table 11-20), optional: | P2P_STREAM_ID (1) |"""

    MESSAGE_TYPE = RequestCode.BIND_P2P_STREAM_REQUEST


@dataclass(frozen=True, kw_only=True)
class BindP2pStreamResponse(_Message):
    """BIND_P2P_STREAM_RESPONSE (§11.3.19): header only."""

    MESSAGE_TYPE = ResponseCode.BIND_P2P_STREAM_RESPONSE
    IS_REQUEST = False


@dataclass(frozen=True, kw_only=True)
class UnbindP2pStreamRequest(_P2pStreamRequest):
    """UNBIND_P2P_STREAM_REQUEST (§11.3.20, Table 11-22), optional: | P2P_STREAM_ID (1) |"""

    MESSAGE_TYPE = RequestCode.UNBIND_P2P_STREAM_REQUEST


@dataclass(frozen=True, kw_only=True)
class UnbindP2pStreamResponse(_Message):
    """UNBIND_P2P_STREAM_RESPONSE (§11.3.21): header only."""

    MESSAGE_TYPE = ResponseCode.UNBIND_P2P_STREAM_RESPONSE
    IS_REQUEST = False


# --------------------------------------------------------------------------------------------
# MMIO ranges and the TDI report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MmioRange:
    """MMIO_RANGE (Table 11-15), 16 bytes; in 4 KiB pages with MMIO_REPORTING_OFFSET added.

    Wire layout::

        | FIRST_PAGE (8): (address + offset) >> 12                          |
        | NUM_PAGES (4)                                                     |
        | ATTRIBUTES (2): MmioAttr, 15:4 reserved | RANGE_ID (2): 0-7 = BEI |
    """

    first_page: int
    num_pages: int
    attributes: int = 0
    range_id: int = 0

    SIZE: ClassVar[int] = _MMIO_RANGE_SIZE

    def __post_init__(self) -> None:
        _uint("first_page", self.first_page, 64)
        _uint("num_pages", self.num_pages, 32)
        _uint("attributes", self.attributes, 16)
        _uint("range_id", self.range_id, 16)

    @property
    def address(self) -> int:
        """The first byte the range covers (with the reporting offset added)."""
        return self.first_page << 12

    def encode(self) -> bytes:
        return (
            _le(self.first_page, 8)
            + _le(self.num_pages, 4)
            + _le(self.attributes, 2)
            + _le(self.range_id, 2)
        )

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        if len(data) != cls.SIZE:
            raise TdispDecodeError(f"MMIO_RANGE is 16 bytes, got {len(data)}")
        attributes = _get(data, 12, 2)
        _reserved_zero("MMIO_RANGE attribute bits 15:4", attributes & 0xFFF0, strict)
        return cls(
            first_page=_get(data, 0, 8),
            num_pages=_get(data, 8, 4),
            attributes=MmioAttr(attributes & 0xF),
            range_id=_get(data, 14, 2),
        )


@dataclass(frozen=True, kw_only=True)
class SetMmioAttributeRequest(_Message):
    """SET_MMIO_ATTRIBUTE_REQUEST (§11.3.22, Table 11-24), optional.

    Payload::

        | MMIO_RANGE (16): only IS_NON_TEE_MEM and RANGE_ID mean anything; attribute bits 1:0
          and 15:3 are reserved |
    """

    MESSAGE_TYPE = RequestCode.SET_MMIO_ATTRIBUTE_REQUEST
    IS_REQUEST = True
    PAYLOAD_SIZE = _MMIO_RANGE_SIZE

    mmio_range: MmioRange

    def _validate(self) -> None:
        if not isinstance(self.mmio_range, MmioRange):
            raise LocalProtocolError("mmio_range must be an MmioRange")

    def _payload(self) -> bytes:
        return self.mmio_range.encode()

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        rng = MmioRange.decode(payload, strict=strict)
        _reserved_zero(
            "SET_MMIO_ATTRIBUTE_REQUEST attribute bits other than IS_NON_TEE_MEM",
            rng.attributes & ~MmioAttr.IS_NON_TEE_MEM,
            strict,
        )
        # Leniently read, the reserved attribute bits are ignored (§11.3.22): dropped here, so
        # the message re-encodes as one a strict reader takes.
        rng = replace(rng, attributes=MmioAttr(rng.attributes & MmioAttr.IS_NON_TEE_MEM))
        return {"mmio_range": rng}


@dataclass(frozen=True, kw_only=True)
class SetMmioAttributeResponse(_Message):
    """SET_MMIO_ATTRIBUTE_RESPONSE (§11.3.23): header only."""

    MESSAGE_TYPE = ResponseCode.SET_MMIO_ATTRIBUTE_RESPONSE
    IS_REQUEST = False


@dataclass(frozen=True)
class TdiReport:
    """The TDI report (§11.3.11, Table 11-15), read in portions with GET_DEVICE_INTERFACE_REPORT.

    Wire layout::

        | INTERFACE_INFO (2) | reserved (2) | MSI_X_MESSAGE_CONTROL (2) | LNR_CONTROL (2) |
        | TPH_CONTROL (4) | MMIO_RANGE_COUNT (4) = N |
        | MMIO_RANGE (16) x N                                     |
        | DEVICE_SPECIFIC_INFO_LEN (4) = L | DEVICE_SPECIFIC_INFO (L) |
    """

    interface_info: int = 0
    msi_x_message_control: int = 0
    lnr_control: int = 0
    tph_control: int = 0
    mmio_ranges: tuple[MmioRange, ...] = ()
    device_specific_info: bytes = b""

    def __post_init__(self) -> None:
        _uint("interface_info", self.interface_info, 16)
        _uint("msi_x_message_control", self.msi_x_message_control, 16)
        _uint("lnr_control", self.lnr_control, 16)
        _uint("tph_control", self.tph_control, 32)
        if not all(isinstance(r, MmioRange) for r in self.mmio_ranges):
            raise LocalProtocolError("mmio_ranges must be MmioRange values")
        _blob("device_specific_info", self.device_specific_info)

    def encode(self) -> bytes:
        return (
            _le(self.interface_info, 2)
            + bytes(2)
            + _le(self.msi_x_message_control, 2)
            + _le(self.lnr_control, 2)
            + _le(self.tph_control, 4)
            + _le(len(self.mmio_ranges), 4)
            + b"".join(r.encode() for r in self.mmio_ranges)
            + _le(len(self.device_specific_info), 4)
            + self.device_specific_info
        )

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        data = bytes(data)
        if len(data) < _REPORT_FIXED + 4:
            raise TdispDecodeError(f"TDI report of {len(data)} bytes: shorter than 20")
        info = _get(data, 0, 2)
        _reserved_zero("INTERFACE_INFO bits 15:5", info & 0xFFE0, strict)
        _reserved_zero("TDI report bytes 2-3", _get(data, 2, 2), strict)
        count = _get(data, 12, 4)
        end = _REPORT_FIXED + _MMIO_RANGE_SIZE * count
        if end + 4 > len(data):
            raise TdispDecodeError(
                f"TDI report with MMIO_RANGE_COUNT {count} is only {len(data)} bytes"
            )
        ranges = tuple(
            MmioRange.decode(data[pos : pos + _MMIO_RANGE_SIZE], strict=strict)
            for pos in range(_REPORT_FIXED, end, _MMIO_RANGE_SIZE)
        )
        info_len = _get(data, end, 4)
        if len(data) != end + 4 + info_len:
            raise TdispDecodeError(
                f"TDI report: DEVICE_SPECIFIC_INFO_LEN {info_len}, "
                f"{len(data) - end - 4} bytes follow"
            )
        return _build(
            cls,
            interface_info=InterfaceInfo(info & 0x1F),
            msi_x_message_control=_get(data, 4, 2),
            lnr_control=_get(data, 6, 2),
            tph_control=_get(data, 8, 4),
            mmio_ranges=ranges,
            device_specific_info=data[end + 4 :],
        )


# --------------------------------------------------------------------------------------------
# Vendor-defined data: VDM_REQUEST/RESPONSE and vendor TDISP_ERROR
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VendorData:
    """REGISTRY_ID, VENDOR_ID and vendor bytes (Tables 11-28, 11-29, 11-30).

    Wire layout::

        | REGISTRY_ID (1) | VENDOR_ID_LEN (1) | VENDOR_ID (VENDOR_ID_LEN) | data ... |
    """

    registry_id: int
    vendor_id: bytes
    data: bytes = b""

    def __post_init__(self) -> None:
        _uint("registry_id", self.registry_id, 8)
        _blob("vendor_id", self.vendor_id, max_size=0xFF)
        _blob("data", self.data)

    def encode(self) -> bytes:
        return bytes((self.registry_id, len(self.vendor_id))) + self.vendor_id + self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        data = bytes(data)
        if len(data) < 2 or len(data) < 2 + data[1]:
            raise TdispDecodeError(f"vendor data of {len(data)} bytes: VENDOR_ID cut short")
        return cls(
            registry_id=_known(RegistryId, data[0]),
            vendor_id=data[2 : 2 + data[1]],
            data=data[2 + data[1] :],
        )


@dataclass(frozen=True, kw_only=True)
class _Vdm(_Message):
    """VDM_REQUEST/VDM_RESPONSE payload: :class:`VendorData`.

    Tables 11-29 and 11-30 number their offsets from 0 where every other TDISP table starts at
    16.  They are offsets into the payload, after the 16-byte header: Table 11-5 puts that header
    on every TDISP message, and spdm-rs's TDISP responder and requester (``idekm_tdisp``) read
    the header and then the REGISTRY_ID.  The same holds for EXTENDED_ERROR_DATA (Table 11-28),
    whose offsets count from byte 24 of TDISP_ERROR.
    """

    PAYLOAD_SIZE = None

    vendor: VendorData

    def _validate(self) -> None:
        if not isinstance(self.vendor, VendorData):
            raise LocalProtocolError("vendor must be a VendorData")

    def _payload(self) -> bytes:
        return self.vendor.encode()

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        return {"vendor": VendorData.decode(payload)}


@dataclass(frozen=True, kw_only=True)
class VdmRequest(_Vdm):
    """VDM_REQUEST (§11.3.25), optional."""

    MESSAGE_TYPE = RequestCode.VDM_REQUEST
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class VdmResponse(_Vdm):
    """VDM_RESPONSE (§11.3.26)."""

    MESSAGE_TYPE = ResponseCode.VDM_RESPONSE
    IS_REQUEST = False


@dataclass(frozen=True, kw_only=True)
class TdispError(_Message):
    """TDISP_ERROR (§11.3.24, Tables 11-26 to 11-28).

    Payload::

        | ERROR_CODE (4) | ERROR_DATA (4) | EXTENDED_ERROR_DATA (VENDOR_SPECIFIC_ERROR only) |

    ERROR_DATA is the request code for UNSUPPORTED_REQUEST, the length of the extended data for
    VENDOR_SPECIFIC_ERROR (:meth:`vendor_specific` fills it in), and reserved otherwise.
    Unknown (reserved) error codes are decoded, not rejected: §11.3.2 says a requester treats
    what it does not understand as an error, and the code is what it reports.
    """

    MESSAGE_TYPE = ResponseCode.TDISP_ERROR
    IS_REQUEST = False
    PAYLOAD_SIZE = None

    error_code: int
    error_data: int = 0
    vendor: VendorData | None = None

    def _validate(self) -> None:
        _uint("error_code", self.error_code, 32)
        _uint("error_data", self.error_data, 32)
        if self.error_code == ErrorCode.VENDOR_SPECIFIC_ERROR:
            if not isinstance(self.vendor, VendorData):
                raise LocalProtocolError("VENDOR_SPECIFIC_ERROR carries VendorData")
            if self.error_data != len(self.vendor.encode()):
                raise LocalProtocolError(
                    "VENDOR_SPECIFIC_ERROR: ERROR_DATA must be the extended data's length"
                )
        elif self.vendor is not None:
            raise LocalProtocolError("only VENDOR_SPECIFIC_ERROR has extended error data")

    @classmethod
    def vendor_specific(cls, interface_id: InterfaceId, vendor: VendorData) -> Self:
        return cls(
            interface_id=interface_id,
            error_code=ErrorCode.VENDOR_SPECIFIC_ERROR,
            error_data=len(vendor.encode()),
            vendor=vendor,
        )

    def _payload(self) -> bytes:
        extended = self.vendor.encode() if self.vendor is not None else b""
        return _le(self.error_code, 4) + _le(self.error_data, 4) + extended

    @classmethod
    def _fields(cls, payload: bytes, strict: bool) -> dict[str, Any]:
        if len(payload) < 8:
            raise TdispDecodeError(f"TDISP_ERROR payload of {len(payload)} bytes")
        code, data = _get(payload, 0, 4), _get(payload, 4, 4)
        extended = payload[8:]
        if code == ErrorCode.VENDOR_SPECIFIC_ERROR:
            if data != len(extended):
                raise TdispDecodeError(
                    f"VENDOR_SPECIFIC_ERROR: ERROR_DATA {data}, {len(extended)} extended bytes"
                )
            return {
                "error_code": ErrorCode(code),
                "error_data": data,
                "vendor": VendorData.decode(extended),
            }
        if extended:
            raise TdispDecodeError(f"TDISP_ERROR {code:#x} with {len(extended)} extended bytes")
        if code != ErrorCode.UNSUPPORTED_REQUEST:
            _reserved_zero("TDISP_ERROR ERROR_DATA", data, strict)
            data = 0
        return {"error_code": _known(ErrorCode, code), "error_data": data}


TdispMessage: TypeAlias = (
    GetTdispVersion
    | TdispVersion
    | GetTdispCapabilities
    | TdispCapabilities
    | LockInterfaceRequest
    | LockInterfaceResponse
    | GetDeviceInterfaceReport
    | DeviceInterfaceReport
    | GetDeviceInterfaceState
    | DeviceInterfaceState
    | StartInterfaceRequest
    | StartInterfaceResponse
    | StopInterfaceRequest
    | StopInterfaceResponse
    | BindP2pStreamRequest
    | BindP2pStreamResponse
    | UnbindP2pStreamRequest
    | UnbindP2pStreamResponse
    | SetMmioAttributeRequest
    | SetMmioAttributeResponse
    | VdmRequest
    | VdmResponse
    | TdispError
)

_BY_TYPE: dict[int, type[TdispMessage]] = {
    cls.MESSAGE_TYPE: cls
    for cls in (
        GetTdispVersion,
        TdispVersion,
        GetTdispCapabilities,
        TdispCapabilities,
        LockInterfaceRequest,
        LockInterfaceResponse,
        GetDeviceInterfaceReport,
        DeviceInterfaceReport,
        GetDeviceInterfaceState,
        DeviceInterfaceState,
        StartInterfaceRequest,
        StartInterfaceResponse,
        StopInterfaceRequest,
        StopInterfaceResponse,
        BindP2pStreamRequest,
        BindP2pStreamResponse,
        UnbindP2pStreamRequest,
        UnbindP2pStreamResponse,
        SetMmioAttributeRequest,
        SetMmioAttributeResponse,
        VdmRequest,
        VdmResponse,
        TdispError,
    )
}


def decode(payload: bytes, *, strict: bool = True) -> TdispMessage:
    """Decode a TDISP vendor payload (byte 0 = Protocol ID) by its MessageType."""
    header = Header.decode(payload, strict=strict)
    cls = _BY_TYPE.get(header.message_type)
    if cls is None:
        raise TdispDecodeError(f"MessageType {header.message_type:#04x} is not a TDISP message")
    return cls.decode(payload, strict=strict)


def from_vendor_defined(
    message: VendorDefinedRequest | VendorDefinedResponse, *, strict: bool = True
) -> TdispMessage:
    """The TDISP message a PCI-SIG VENDOR_DEFINED message carries."""
    if message.standard_id != PCI_SIG_STANDARD_ID or message.vendor_id != (
        PCI_SIG_VENDOR_ID.to_bytes(2, "little")
    ):
        raise TdispDecodeError("not a PCI-SIG VENDOR_DEFINED message")
    decoded = decode(message.payload, strict=strict)
    if decoded.IS_REQUEST != isinstance(message, VendorDefinedRequest):
        raise TdispDecodeError(f"{type(decoded).__name__} in the wrong VENDOR_DEFINED direction")
    return decoded
