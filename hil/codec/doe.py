"""DOE data objects and the DOE Discovery protocol (PCIe 6.x §6.30).

Wire layout of a data object (little-endian DWs)::

     31        24 23        16 15                          0
    +------------+------------+-----------------------------+
    |  reserved  |    Type    |          Vendor ID          |  DW0
    +------+-----+------------+--------+--------------------+
    | rsvd |     Connection ID (12)    |  Length in DW (18) |  DW1   (Length 0 = 2^18 DW)
    +------+---------------------------+--------------------+
    |                 payload, zero-padded to a DW           |  DW2..
    +--------------------------------------------------------+

Discovery request payload (DW2)::

    [7:0] Index   [15:8] DOE Discovery Version (2 when the capability version is >= 2)   [31:16] 0

Discovery response payload (DW2)::

    [15:0] Vendor ID (FFFFh: index not valid)   [23:16] Type   [31:24] Next Index (0 on the last)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from ..errors import LocalProtocolError, PeerProtocolError

__all__ = [
    "HEADER_DW",
    "MAX_LENGTH_DW",
    "PCI_SIG_VENDOR_ID",
    "DataObject",
    "DiscoveryRequest",
    "DiscoveryResponse",
    "DoeType",
    "bytes_to_words",
    "decode_length",
    "encode_length",
    "words_to_bytes",
]

PCI_SIG_VENDOR_ID = 0x0001
HEADER_DW = 2
MAX_LENGTH_DW = 1 << 18  # encoded as 0 in the Length field (§6.30.1)
INVALID_VENDOR_ID = 0xFFFF


class DoeType(IntEnum):
    """PCI-SIG data object types (vendor 0001h), PCIe 6.x Table 6-33."""

    DISCOVERY = 0x00
    CMA_SPDM = 0x01
    SECURED_CMA_SPDM = 0x02
    CMA_SPDM_CONN = 0x03
    SECURED_CMA_SPDM_CONN = 0x04
    ASYNC_MESSAGE = 0x05


def encode_length(length_dw: int) -> int:
    """The 18-bit Length field for an object of ``length_dw`` DWs (header included)."""
    if not HEADER_DW <= length_dw <= MAX_LENGTH_DW:
        raise LocalProtocolError(f"DOE object length {length_dw} DW outside 2..2^18")
    return length_dw & 0x3FFFF


def decode_length(field: int) -> int:
    """The object length in DWs that an 18-bit Length field means (0 is 2^18)."""
    field &= 0x3FFFF
    return MAX_LENGTH_DW if field == 0 else field


def words_to_bytes(words: list[int] | tuple[int, ...]) -> bytes:
    return b"".join(struct.pack("<I", w & 0xFFFFFFFF) for w in words)


def bytes_to_words(data: bytes) -> list[int]:
    if len(data) % 4:
        raise LocalProtocolError(f"{len(data)} bytes is not a whole number of DWs")
    return [w for (w,) in struct.iter_unpack("<I", data)]


@dataclass(frozen=True)
class DataObject:
    """One DOE data object.  ``payload`` is padded with zeros to a DW boundary on encode."""

    vendor_id: int
    type: int
    payload: bytes = b""
    connection_id: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.vendor_id <= 0xFFFF:
            raise LocalProtocolError(f"vendor ID {self.vendor_id:#x} is not 16 bits")
        if not 0 <= self.type <= 0xFF:
            raise LocalProtocolError(f"data object type {self.type:#x} is not 8 bits")
        if not 0 <= self.connection_id <= 0xFFF:
            raise LocalProtocolError(f"connection ID {self.connection_id:#x} is not 12 bits")

    @property
    def length_dw(self) -> int:
        return HEADER_DW + (len(self.payload) + 3) // 4

    def encode(self) -> bytes:
        padded = self.payload + bytes(-len(self.payload) % 4)
        dw0 = self.vendor_id | (self.type << 16)
        dw1 = encode_length(self.length_dw) | (self.connection_id << 18)
        return struct.pack("<II", dw0, dw1) + padded

    def words(self) -> list[int]:
        return bytes_to_words(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode one whole object; the byte count must equal the header's Length."""
        if len(data) < HEADER_DW * 4 or len(data) % 4:
            raise PeerProtocolError(f"DOE object of {len(data)} bytes: not >= 8 and DW-aligned")
        dw0, dw1 = struct.unpack_from("<II", data)
        if dw0 >> 24:
            raise PeerProtocolError(f"DOE header DW0 {dw0:#010x} has reserved bits [31:24] set")
        if dw1 >> 30:
            raise PeerProtocolError(f"DOE header DW1 {dw1:#010x} has reserved bits [31:30] set")
        length = decode_length(dw1)
        if length == 1:
            raise PeerProtocolError("DOE Length 1 is illegal (the header alone is 2 DW)")
        if length * 4 != len(data):
            raise PeerProtocolError(
                f"DOE header says {length} DW but the object carries {len(data) // 4} DW"
            )
        vendor_id, dtype = dw0 & 0xFFFF, (dw0 >> 16) & 0xFF
        conn = (dw1 >> 18) & 0xFFF
        if conn and not (
            vendor_id == PCI_SIG_VENDOR_ID
            and dtype in (DoeType.CMA_SPDM_CONN, DoeType.SECURED_CMA_SPDM_CONN)
        ):
            raise PeerProtocolError(f"Connection ID {conn:#x} set on a type {dtype:#04x} object")
        return cls(vendor_id, dtype, bytes(data[8:]), conn)

    @classmethod
    def from_words(cls, words: list[int]) -> Self:
        return cls.decode(words_to_bytes(words))


@dataclass(frozen=True)
class DiscoveryRequest:
    """DOE Discovery request (§6.30.1.1): which entry of the feature table to return."""

    index: int
    version: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.index <= 0xFF or not 0 <= self.version <= 0xFF:
            raise LocalProtocolError("discovery index and version are 8-bit fields")

    def to_object(self) -> DataObject:
        payload = struct.pack("<I", self.index | (self.version << 8))
        return DataObject(PCI_SIG_VENDOR_ID, DoeType.DISCOVERY, payload)

    def encode(self) -> bytes:
        return self.to_object().encode()

    @classmethod
    def from_object(cls, obj: DataObject) -> Self:
        _expect_discovery(obj)
        (dw,) = struct.unpack_from("<I", obj.payload)
        if dw >> 16:
            raise PeerProtocolError(f"discovery request DW2 {dw:#010x}: bits [31:16] reserved")
        return cls(dw & 0xFF, (dw >> 8) & 0xFF)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls.from_object(DataObject.decode(data))


@dataclass(frozen=True)
class DiscoveryResponse:
    """DOE Discovery response: one feature (vendor, type) and the index of the next one."""

    vendor_id: int
    type: int
    next_index: int

    @property
    def valid(self) -> bool:
        return self.vendor_id != INVALID_VENDOR_ID

    def to_object(self) -> DataObject:
        dw = self.vendor_id | (self.type << 16) | (self.next_index << 24)
        return DataObject(PCI_SIG_VENDOR_ID, DoeType.DISCOVERY, struct.pack("<I", dw))

    def encode(self) -> bytes:
        return self.to_object().encode()

    @classmethod
    def from_object(cls, obj: DataObject) -> Self:
        _expect_discovery(obj)
        (dw,) = struct.unpack_from("<I", obj.payload)
        return cls(dw & 0xFFFF, (dw >> 16) & 0xFF, dw >> 24)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls.from_object(DataObject.decode(data))


def _expect_discovery(obj: DataObject) -> None:
    if (obj.vendor_id, obj.type) != (PCI_SIG_VENDOR_ID, DoeType.DISCOVERY):
        raise PeerProtocolError(
            f"expected a discovery object, got vendor {obj.vendor_id:#06x} type {obj.type:#04x}"
        )
    if len(obj.payload) < 4:
        raise PeerProtocolError(f"discovery object payload of {len(obj.payload)} bytes (< 4)")
