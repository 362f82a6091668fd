"""TLPs on the IDE path (PCIe 6.x Non-Flit Mode): the few TLP kinds IDE needs, and the IDE TLP.

cocotbext-pcie's ``Tlp`` carries no prefixes, so this is the project's own model: Memory Read and
Memory Write (32- and 64-bit addresses), Completion with and without data, and the IDE TLP around
any of them (IDE TLP Prefix, TLP, MAC).  Sans-IO: bytes in, frozen dataclasses out, and back.

Wire order is transmission order: each header DW big-endian (byte 0 = bits 31:24 of the DW as the
spec draws it), then the data payload, then for an IDE TLP the PCRC and the MAC [PCIe §2.1.2].

Header DW0, common to every TLP (NFM, PCIe §2.2.1.1)::

     byte 0           byte 1                    byte 2                      byte 3
     7 6 5 4 3 2 1 0  7  6 5 4  3  2    1  0    7  6  5 4    3 2  1 0       7 ... 0
    +-----+---------+--+------+--+-----+--+--+--+--+-------+----+----------+-----------+
    | Fmt |  Type   |T9|  TC  |T8|Attr2|R |TH|TD|EP|Attr1:0| AT |Length9:8 |Length 7:0 |
    +-----+---------+--+------+--+-----+--+--+--+--+-------+----+----------+-----------+

Memory Read / Write, DW1 then the address (3 DW header below 4 GB, else 4 DW)::

    | Requester ID (16)            | Tag[7:0] | Last BE | First BE |   DW1
    | Address[63:32]                                  (4 DW only)  |   DW2
    | Address[31:2]                                      | PH = 00 |   DW2 / DW3

Completion, DW1 and DW2::

    | Completer ID (16)            | Status | BCM | Byte Count[11:0] |
    | Requester ID (16)            | Tag[7:0]     | R | Lower Addr[6:0] |

IDE TLP Prefix (NFM End-End prefix, type E[3:0] = 0010b, PCIe §6.33.4 Figure 6-64)::

     byte 0           byte 1            byte 2          byte 3
     7 6 5 4 3 2 1 0  7 ........... 0   7 ......... 0   7  6 5 4      3 2 1 0
    +-----+---------+-----------------+---------------+--+------------+-+-+-+-+
    |1 0 0| 1 0010  | PR_Sent_Counter |   Stream_ID   |R |Sub-Stream  |P|M|K|T|
    +-----+---------+-----------------+---------------+--+------------+-+-+-+-+

  The spec draws these bit positions only in Figure 6-64, and the text transcription of r6.3
  consulted here lost that figure, so the layout was settled from other sources that agree:

  - a Cadence PCIe UVM test bench (class ``cdn_pcie_hpa_tag_manager``) packs the prefix DW as
    {Fmt, Type, PR_Sent_Counter, Stream_ID, Sub_Stream[3:0], P, M, K, T};
  - the same bench packs OHC-C (the FM carrier of these fields) as {Requester Segment,
    PR_Sent_Counter, Stream_ID, Sub_Stream, RSV, reserved, K, T}, the order protocols.md also
    found in third-party RTL.  Bytes 1..3 line up, and §2.2.1.2 notes that OHC-C lacks the
    prefix's M and P bits, which fits M and P sitting where OHC-C has RSV and a reserved bit;
  - §6.33.5 says Sub-Stream used to be a 4-bit field in bits 7:4 of symbol 3 and that bit 7
    is reserved now.

The T bit (TEE-originated) has no home in an NFM TLP header.  §6.33.4 lists it among the IDE
Prefix fields for NFM and says that in FM the same fields (K, T, Sub-Stream, Stream_ID,
PR_Sent_Counter) move into OHC-C.  The header's TH bit is the TPH hint bit, not T.  So here T is
a field of :class:`IdePrefix`.

The Length field counts data payload DWs only.  The MAC (3 DW) and PCRC (1 DW) follow the payload
and are not counted, just as ECRC is not.  §6.33.4 accounts the MAC under *header* flow-control
credit, which confirms that it is not payload.

Decoders are strict.  Reserved bits must be zero, values must be defined, lengths must be exact,
and the §2.2.5 byte-enable and 4 KB rules are checked.  PCIe §2.2 tells a receiver to ignore
reserved fields, but this codec checks the *transmitter*, which must fill them with zeros, so it
flags them.  On an IDE TLP they are covered by the MAC anyway.  A failure raises
:class:`TlpDecodeError` (a :class:`~hil.errors.PeerProtocolError`), and nothing else escapes.
Building something illegal raises :class:`~hil.errors.LocalProtocolError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag
from typing import Any, Self, TypeAlias

from ..errors import LocalProtocolError, PeerProtocolError
from ._fields import build as _build_with
from ._fields import known as _known
from ._fields import uint as _uint

__all__ = [
    "IDE_PREFIX_BYTE0",
    "MAC_SIZE",
    "MAX_E2E_PREFIXES",
    "MAX_PAYLOAD_DW",
    "PCRC_SIZE",
    "PHE_ADDRESS_MSB",
    "PREFIX_SIZE",
    "Attr",
    "CfgRead",
    "CfgWrite",
    "Completion",
    "CplStatus",
    "IdePrefix",
    "IdeTlp",
    "MemRead",
    "MemWrite",
    "SubStream",
    "Tlp",
    "TlpDecodeError",
    "decode_tlp",
    "pcrc",
    "phe_applies",
    "phe_covers_byte_enables",
    "phe_hide",
    "phe_merge",
    "phe_pcrc_front",
    "phe_reveal",
    "phe_split",
]

PREFIX_SIZE = 4  # every NFM TLP prefix is one DW [PCIe §2.2.10]
IDE_PREFIX_BYTE0 = 0x92  # Fmt 100b + Type 1_0010b: End-End prefix E[3:0] = 0010b [§6.33.4]
MAC_SIZE = 12  # 96-bit MAC, t = 96 [§6.33.4]
PCRC_SIZE = 4  # one DW, mapped as ECRC [§6.33.4]
_BITREV8 = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def pcrc(p_content: bytes) -> bytes:
    """The PCRC of P content, as its 4 bytes go on the wire before encryption [§6.33.4].

    §6.33.4: CRC-32 with polynomial 04C1_1DB7h and seed FFFF_FFFFh over all P content, starting
    with bit 0 of byte 0 and going from bit 0 to bit 7 of each byte; the result complemented and
    "mapped as shown in Table 2-55 (following the same mapping as for ECRC)".  Bit 0 first is
    the reflected CRC-32 that ``zlib.crc32`` computes (complement included).  Table 2-55
    (§2.7.1) maps result bit 8k+i to digest bit 8k+7-i, a bit reversal within each byte, and
    the digest goes out bits 31:24 first.  The transcription of the spec we work from has that
    table as text (result bit 0 -> 7 ... 7 -> 0, 8 -> 15 ... 15 -> 8, ...); the order of the
    digest's bytes on the wire is the one of every header DW (§2.1.2), bits 31:24 first.
    """
    c = zlib.crc32(p_content)
    return bytes(_BITREV8[(c >> shift) & 0xFF] for shift in (24, 16, 8, 0))


MAX_PAYLOAD_DW = 1024  # Length = 0 means 1024 DW [§2.2.2]
MAX_E2E_PREFIXES = 4  # Max End-End TLP Prefixes field, IDE prefix included [§7.5.3.15]

_FMT_3DW = 0b000
_FMT_4DW = 0b001
_FMT_3DW_DATA = 0b010
_FMT_4DW_DATA = 0b011
_FMT_PREFIX = 0b100
_TYPE_MEM = 0b0_0000
_TYPE_CPL = 0b0_1010
_TYPE_CFG0 = 0b0_0100
_TYPE_CFG1 = 0b0_0101
_E2E_BIT = 0x10  # Type bit 4 of a prefix: 1 End-End, 0 Local [§2.2.10.2]
_FOUR_GB = 1 << 32


class TlpDecodeError(PeerProtocolError):
    """Bytes from the peer are not a valid TLP or IDE TLP of the kinds this codec models."""


class SubStream(IntEnum):
    """IDE Sub-Stream identifier [PCIe §6.33.5]; 011b-110b reserved, 111b reserved in NFM."""

    POSTED = 0b000
    NON_POSTED = 0b001
    COMPLETION = 0b010


class CplStatus(IntEnum):
    """Completion Status [PCIe §2.2.9.1]; other values are reserved."""

    SC = 0b000  # Successful Completion
    UR = 0b001  # Unsupported Request
    RRS = 0b010  # Request Retry Status (called CRS before 6.0)
    CA = 0b100  # Completer Abort


class Attr(IntFlag):
    """TLP attributes: Attr[2] is in DW0 byte 1, Attr[1:0] in byte 2 [PCIe §2.2.6.3]."""

    NS = 0b001  # No Snoop
    RO = 0b010  # Relaxed Ordering
    IDO = 0b100  # ID-Based Ordering


# --------------------------------------------------------------------------------------------
# Checks shared by encoders and decoders
# --------------------------------------------------------------------------------------------


def _blob(name: str, value: bytes, *, sizes: tuple[int, ...]) -> None:
    if not isinstance(value, bytes | bytearray):
        raise LocalProtocolError(f"{name} must be bytes, not {type(value).__name__}")
    if len(value) not in sizes:
        raise LocalProtocolError(f"{name} is {len(value)} bytes, must be one of {sizes}")


def _check_payload(payload: bytes, *, allow_empty: bool) -> None:
    if not isinstance(payload, bytes | bytearray):
        raise LocalProtocolError(f"payload must be bytes, not {type(payload).__name__}")
    if len(payload) % 4:
        raise LocalProtocolError(f"payload of {len(payload)} bytes is not whole DWs")
    if len(payload) > MAX_PAYLOAD_DW * 4 or (not payload and not allow_empty):
        raise LocalProtocolError(f"payload of {len(payload)} bytes: must be 1..1024 DW")


def _contiguous_high(be: int) -> bool:
    """First DW BE for a request of 3+ DW: enabled bytes run up to byte 3 (1111, 1110, ...)."""
    return be in (0b1111, 0b1110, 0b1100, 0b1000)


def _contiguous_low(be: int) -> bool:
    """Last DW BE for a request of 3+ DW: enabled bytes run from byte 0 (0001, 0011, ...)."""
    return be in (0b0001, 0b0011, 0b0111, 0b1111)


def _check_byte_enables(length_dw: int, address: int, first_be: int, last_be: int) -> None:
    """Byte Enable rules for Memory Requests [PCIe §2.2.5]."""
    _uint("first_be", first_be, 4)
    _uint("last_be", last_be, 4)
    if length_dw == 1:
        if last_be:
            raise LocalProtocolError(f"Last DW BE {last_be:#06b} must be 0000b when Length is 1")
        return
    if not first_be or not last_be:
        raise LocalProtocolError("First and Last DW BE must be non-zero when Length > 1")
    qw_aligned_pair = length_dw == 2 and address % 8 == 0
    if not qw_aligned_pair and not (_contiguous_high(first_be) and _contiguous_low(last_be)):
        raise LocalProtocolError(
            f"byte enables {first_be:#06b}/{last_be:#06b} are not contiguous "
            f"(required for Length {length_dw} at address {address:#x})"
        )


# --------------------------------------------------------------------------------------------
# Header DW0
# --------------------------------------------------------------------------------------------


def _dw0(
    fmt: int, type_: int, *, tc: int, tag: int, attr: int, ep: bool, at: int, length_field: int
) -> bytes:
    b0 = (fmt << 5) | type_
    b1 = (((tag >> 9) & 1) << 7) | (tc << 4) | (((tag >> 8) & 1) << 3) | (((attr >> 2) & 1) << 2)
    b2 = (int(ep) << 6) | ((attr & 0b11) << 4) | (at << 2) | ((length_field >> 8) & 0b11)
    return bytes((b0, b1, b2, length_field & 0xFF))


@dataclass(frozen=True)
class _Dw0:
    fmt: int
    type: int
    tc: int
    tag_hi: int  # T9:T8, bits 9:8 of a 10-bit tag
    attr: int
    ep: bool
    at: int
    length_field: int

    @classmethod
    def parse(cls, data: bytes) -> Self:
        if len(data) < 4:
            raise TlpDecodeError(f"TLP of {len(data)} bytes is shorter than one header DW")
        b0, b1, b2, b3 = data[:4]
        if b1 & 0b10:
            raise TlpDecodeError("DW0 byte 1 bit 1 (formerly LN) is reserved and set")
        if b1 & 0b01:
            raise TlpDecodeError("TH is set: TLP Processing Hints are not modelled")
        if b2 & 0x80:
            raise TlpDecodeError("TD is set: ECRC is not modelled and not permitted with IDE")
        return cls(
            fmt=b0 >> 5,
            type=b0 & 0x1F,
            tc=(b1 >> 4) & 0b111,
            tag_hi=(((b1 >> 7) & 1) << 1) | ((b1 >> 3) & 1),
            attr=(((b1 >> 2) & 1) << 2) | ((b2 >> 4) & 0b11),
            ep=bool(b2 & 0x40),
            at=(b2 >> 2) & 0b11,
            length_field=((b2 & 0b11) << 8) | b3,
        )

    @property
    def length_dw(self) -> int:
        return self.length_field or MAX_PAYLOAD_DW


def _length_field(length_dw: int) -> int:
    return length_dw % MAX_PAYLOAD_DW  # 1024 DW is encoded as 0


# --------------------------------------------------------------------------------------------
# Memory Requests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _MemRequest:
    """Fields shared by Memory Read and Memory Write Requests [PCIe §2.2.7]."""

    address: int  # byte address of the first DW; bits 1:0 are 0 (the BEs select bytes)
    requester_id: int = 0
    tag: int = 0  # up to 10 bits in NFM (T9, T8 in DW0)
    first_be: int = 0b1111
    last_be: int = 0b0000
    tc: int = 0
    attr: int = 0
    ep: bool = False
    at: int = 0  # Address Type: 00 untranslated, 01 translation request, 10 translated
    #: The 64-bit address format below 4 GB, which §2.2.4.1 requires of IDE TLPs with Partial
    #: Header Encryption (and forbids otherwise).
    addr64: bool = False
    #: Nonzero on a request taken from an IDE TLP with Partial Header Encryption mode
    #: ``phe_mode`` before decryption: its encrypted fields (the byte enables, if the mode
    #: covers them here, and Address[msb:2]) are not known and read as 0; their ciphertext is
    #: :attr:`IdeTlp.phe`.  See :func:`phe_split`.
    phe_mode: int = 0

    @property
    def length_dw(self) -> int:
        raise NotImplementedError

    def _validate_request(self) -> None:
        _uint("address", self.address, 64)
        if self.address % 4:
            raise LocalProtocolError(f"address {self.address:#x} is not DW-aligned")
        _uint("requester_id", self.requester_id, 16)
        _uint("tag", self.tag, 10)
        _uint("tc", self.tc, 3)
        _uint("attr", self.attr, 3)
        _uint("at", self.at, 2)
        if not 1 <= self.length_dw <= MAX_PAYLOAD_DW:
            raise LocalProtocolError(f"Length {self.length_dw} DW is outside 1..1024")
        if self.phe_mode:
            self._validate_hidden()
            return
        if (self.address % 4096) + self.length_dw * 4 > 4096:
            raise LocalProtocolError(
                f"{self.length_dw} DW at {self.address:#x} crosses a 4 KB boundary [§2.2.7]"
            )
        _check_byte_enables(self.length_dw, self.address, self.first_be, self.last_be)

    def _validate_hidden(self) -> None:
        """A request whose PHE-encrypted fields are not known: they must read as 0."""
        if self.phe_mode not in PHE_ADDRESS_MSB:
            raise LocalProtocolError(f"Partial Header Encryption mode {self.phe_mode!r}: 1..4")
        if not self.four_dw_header:
            raise LocalProtocolError("PHE needs the 64-bit address format [§2.2.4.1]")
        msb = PHE_ADDRESS_MSB[self.phe_mode]
        if self.address & ((1 << (msb + 1)) - 4):
            raise LocalProtocolError(f"Address[{msb}:2] of a PHE request must read 0 here")
        if phe_covers_byte_enables(self) and (self.first_be or self.last_be):
            raise LocalProtocolError("the byte enables of a PHE request must read 0 here")

    @property
    def four_dw_header(self) -> bool:
        """64-bit format: required at and above 4 GB, not permitted below it [§2.2.4.1] except
        where ``addr64`` asks for it (Partial Header Encryption)."""
        return self.address >= _FOUR_GB or self.addr64

    def _header(self, with_data: bool) -> bytes:
        fmt = (_FMT_4DW if self.four_dw_header else _FMT_3DW) | (0b010 if with_data else 0)
        dw0 = _dw0(
            fmt,
            _TYPE_MEM,
            tc=self.tc,
            tag=self.tag,
            attr=self.attr,
            ep=self.ep,
            at=self.at,
            length_field=_length_field(self.length_dw),
        )
        dw1 = self.requester_id.to_bytes(2, "big") + bytes(
            (self.tag & 0xFF, (self.last_be << 4) | self.first_be)
        )
        if self.four_dw_header:
            address = self.address.to_bytes(8, "big")
        else:
            address = self.address.to_bytes(4, "big")
        return dw0 + dw1 + address

    @staticmethod
    def _fields(dw0: _Dw0, data: bytes, *, addr64: bool = False) -> dict[str, Any]:
        """Common fields from a memory request header (its length already checked).
        ``addr64``: the 64-bit format below 4 GB is expected (PHE, §2.2.4.1), not refused."""
        four = dw0.fmt in (_FMT_4DW, _FMT_4DW_DATA)
        hdr_len = 16 if four else 12
        address = int.from_bytes(data[8:hdr_len], "big")
        if address & 0b11:
            raise TlpDecodeError(f"PH bits {address & 0b11:#04b} set without TH (reserved)")
        if addr64 and not four:
            raise TlpDecodeError(
                "a 32-bit address format request on a stream with Partial Header Encryption "
                "(64-bit addressing is required) [§2.2.4.1]"
            )
        if four and address < _FOUR_GB and not addr64:
            raise TlpDecodeError(
                f"4 DW header for address {address:#x} below 4 GB (the 32-bit format is "
                "required there) [§2.2.4.1]"
            )
        return {
            "address": address,
            "addr64": four and address < _FOUR_GB,
            "requester_id": int.from_bytes(data[4:6], "big"),
            "tag": (dw0.tag_hi << 8) | data[6],
            "first_be": data[7] & 0x0F,
            "last_be": data[7] >> 4,
            "tc": dw0.tc,
            "attr": dw0.attr,
            "ep": dw0.ep,
            "at": dw0.at,
        }

    @property
    def header_size(self) -> int:
        return 16 if self.four_dw_header else 12


class _NoData:
    """A request without data (MRd, CfgRd): header only."""

    _KIND = "request"
    _header: Callable[..., bytes]  # the request's own

    @property
    def payload(self) -> bytes:
        return b""

    def header(self) -> bytes:
        return self._header(with_data=False)

    def encode(self) -> bytes:
        return self.header()

    def with_payload(self, payload: bytes) -> Self:
        if payload:
            raise LocalProtocolError(f"a {self._KIND} carries no payload")
        return self


class _WithData:
    """A request with data (MWr, CfgWr): header, then the payload."""

    payload: bytes
    _header: Callable[..., bytes]  # the request's own

    def header(self) -> bytes:
        return self._header(with_data=True)

    def encode(self) -> bytes:
        return self.header() + self.payload

    def with_payload(self, payload: bytes) -> Self:
        return replace(self, payload=payload)  # type: ignore[type-var]


def _byte_enables(address: int, size: int) -> tuple[int, int, int, int]:
    """(DW-aligned address, Length in DW, First BE, Last BE) covering ``size`` bytes."""
    start = address % 4
    base = address - start
    if size == 0:  # zero-length request: one DW, no bytes enabled [§2.2.5]
        return base, 1, 0b0000, 0b0000
    end = start + size
    length = (end + 3) // 4
    first = (0b1111 << start) & 0b1111
    last = 0b1111 >> (length * 4 - end)
    if length == 1:
        return base, 1, first & last, 0b0000
    return base, length, first, last


@dataclass(frozen=True, kw_only=True)
class MemRead(_NoData, _MemRequest):
    """Memory Read Request (MRd): Non-Posted, no data; ``length`` is the DWs requested."""

    _KIND = "Memory Read"
    length: int = 1

    def __post_init__(self) -> None:
        self._validate_request()

    @property
    def length_dw(self) -> int:
        return self.length

    @property
    def sub_stream(self) -> SubStream:
        return SubStream.NON_POSTED

    @classmethod
    def for_bytes(cls, address: int, size: int, **fields: Any) -> Self:
        """A read of ``size`` bytes at any byte ``address``, with the byte enables set."""
        base, length, first, last = _byte_enables(address, size)
        return cls(address=base, length=length, first_be=first, last_be=last, **fields)


@dataclass(frozen=True, kw_only=True)
class MemWrite(_WithData, _MemRequest):
    """Memory Write Request (MWr): Posted; the payload is whole DWs, the BEs pick the bytes."""

    payload: bytes = bytes(4)

    def __post_init__(self) -> None:
        _check_payload(self.payload, allow_empty=False)
        self._validate_request()

    @property
    def length_dw(self) -> int:
        return len(self.payload) // 4

    @property
    def sub_stream(self) -> SubStream:
        return SubStream.POSTED

    @classmethod
    def for_bytes(cls, address: int, data: bytes, **fields: Any) -> Self:
        """A write of ``data`` at any byte ``address``: padded to DWs, byte enables set."""
        base, length, first, last = _byte_enables(address, len(data))
        start = address % 4
        payload = bytes(start) + bytes(data) + bytes(length * 4 - start - len(data))
        return cls(address=base, payload=payload, first_be=first, last_be=last, **fields)

    @property
    def data(self) -> bytes:
        """The bytes the byte enables select (what the write stores)."""
        if self.length_dw == 1:
            be = self.first_be
            return bytes(b for i, b in enumerate(self.payload) if be >> i & 1)
        head = bytes(b for i, b in enumerate(self.payload[:4]) if self.first_be >> i & 1)
        tail = bytes(b for i, b in enumerate(self.payload[-4:]) if self.last_be >> i & 1)
        return head + self.payload[4:-4] + tail


# --------------------------------------------------------------------------------------------
# Completions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Completion:
    """Completion, with data (CplD) when ``payload`` is not empty, else Cpl [PCIe §2.2.9]."""

    completer_id: int
    requester_id: int
    tag: int
    status: int = CplStatus.SC
    byte_count: int = 4  # 1..4096 (4096 is encoded as 0)
    lower_address: int = 0
    bcm: bool = False
    tc: int = 0
    attr: int = 0
    ep: bool = False
    payload: bytes = b""

    def __post_init__(self) -> None:
        _uint("completer_id", self.completer_id, 16)
        _uint("requester_id", self.requester_id, 16)
        _uint("tag", self.tag, 10)
        _uint("tc", self.tc, 3)
        _uint("attr", self.attr, 3)
        _uint("lower_address", self.lower_address, 7)
        if self.status not in tuple(CplStatus):
            raise LocalProtocolError(f"Completion Status {self.status!r} is reserved")
        if not isinstance(self.byte_count, int) or not 1 <= self.byte_count <= 4096:
            raise LocalProtocolError(f"Byte Count {self.byte_count!r} is outside 1..4096")
        _check_payload(self.payload, allow_empty=True)

    @property
    def length_dw(self) -> int:
        return len(self.payload) // 4

    @property
    def sub_stream(self) -> SubStream:
        return SubStream.COMPLETION

    @property
    def header_size(self) -> int:
        return 12

    def header(self) -> bytes:
        fmt = _FMT_3DW_DATA if self.payload else _FMT_3DW
        dw0 = _dw0(
            fmt,
            _TYPE_CPL,
            tc=self.tc,
            tag=self.tag,
            attr=self.attr,
            ep=self.ep,
            at=0,
            length_field=_length_field(self.length_dw) if self.payload else 0,
        )
        bc = self.byte_count % 4096
        dw1 = self.completer_id.to_bytes(2, "big") + bytes(
            ((int(self.status) << 5) | (int(self.bcm) << 4) | (bc >> 8), bc & 0xFF)
        )
        dw2 = self.requester_id.to_bytes(2, "big") + bytes((self.tag & 0xFF, self.lower_address))
        return dw0 + dw1 + dw2

    def encode(self) -> bytes:
        return self.header() + self.payload

    def with_payload(self, payload: bytes) -> Self:
        if bool(payload) != bool(self.payload):
            raise LocalProtocolError("with_payload keeps Cpl/CplD: same payload presence")
        return replace(self, payload=payload)


# --------------------------------------------------------------------------------------------
# Configuration Requests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _CfgRequest:
    """Configuration Read or Write Request, Type 0 or Type 1 [PCIe §2.2.7.1].

    DW1 as a memory request's (Requester ID, Tag, Last DW BE = 0000b, First DW BE); DW2::

        | Bus Number | Device (5) | Fn (3) | Rsvd (4) | Ext Reg (4) | Register (6) | R |

    §2.2.7.1: TC, Attr and TH are 0, Length is 1 DW, Last DW BE is 0000b.  Both kinds are
    Non-Posted.  Selective IDE carries Configuration Requests as Type 1 (§6.33.4): a Root Port
    with Selective IDE for Configuration Requests Enable sends them so, and the Upstream Port
    receives them so.
    """

    target_id: int  # Bus Number [15:8], Device Number [7:3], Function Number [2:0]
    register: int  # DW number in the function's 4 KB space: Ext Register [9:6], Register [5:0]
    requester_id: int = 0
    tag: int = 0
    first_be: int = 0b1111
    type1: bool = True

    def _validate_cfg(self) -> None:
        _uint("target_id", self.target_id, 16)
        _uint("register", self.register, 10)
        _uint("requester_id", self.requester_id, 16)
        _uint("tag", self.tag, 10)
        _uint("first_be", self.first_be, 4)

    tc = 0  # §2.2.7.1: TC 000b
    attr = 0
    at = 0

    @property
    def sub_stream(self) -> SubStream:
        return SubStream.NON_POSTED

    @property
    def length_dw(self) -> int:
        return 1

    @property
    def header_size(self) -> int:
        return 12

    def _header(self, with_data: bool) -> bytes:
        fmt = _FMT_3DW_DATA if with_data else _FMT_3DW
        dw0 = _dw0(
            fmt,
            _TYPE_CFG1 if self.type1 else _TYPE_CFG0,
            tc=0,
            tag=self.tag,
            attr=0,
            ep=False,
            at=0,
            length_field=1,
        )
        dw1 = self.requester_id.to_bytes(2, "big") + bytes((self.tag & 0xFF, self.first_be))
        dw2 = self.target_id.to_bytes(2, "big") + bytes(
            (self.register >> 6, (self.register & 0x3F) << 2)
        )
        return dw0 + dw1 + dw2

    @property
    def offset(self) -> int:
        """The byte offset of the register in configuration space."""
        return 4 * self.register


@dataclass(frozen=True, kw_only=True)
class CfgRead(_NoData, _CfgRequest):
    """Configuration Read Request (CfgRd0 / CfgRd1): one DW, no data."""

    _KIND = "Configuration Read"

    def __post_init__(self) -> None:
        self._validate_cfg()


@dataclass(frozen=True, kw_only=True)
class CfgWrite(_WithData, _CfgRequest):
    """Configuration Write Request (CfgWr0 / CfgWr1): one DW of data, the BEs pick bytes."""

    payload: bytes = bytes(4)

    def __post_init__(self) -> None:
        self._validate_cfg()
        _blob("payload", self.payload, sizes=(4,))

    @property
    def value(self) -> int:
        """The DW written, as configuration space holds it (byte 0 least significant)."""
        return int.from_bytes(self.payload, "little")


Tlp: TypeAlias = MemRead | MemWrite | Completion | CfgRead | CfgWrite


# --------------------------------------------------------------------------------------------
# Partial Header Encryption (§6.33.4)
# --------------------------------------------------------------------------------------------

#: Partial Header Encryption Mode (Stream Control [13:10], §7.9.26.4.1, §7.9.26.5.2) -> the most
#: significant address bit encrypted: 0001b Address[17:2], 0010b [25:2], 0011b [33:2],
#: 0100b [41:2]; each mode also encrypts the byte enables where the request has them.
PHE_ADDRESS_MSB = {1: 17, 2: 25, 3: 33, 4: 41}
_ADDR_FIELD = slice(8, 16)  # Address[63:2] and PH in a 4 DW header


def phe_covers_byte_enables(tlp: Tlp) -> bool:
    """Whether PHE encrypts this request's First/Last DW BE (§6.33.4): in NFM every Memory
    Request's, "except for AtomicOp Requests, Translation Requests, and Memory Read/DMWr
    Requests with the TH bit Set".  Of the kinds modelled here that leaves out a Translation
    Request (MRd with AT = 01b); TH is never set."""
    return isinstance(tlp, MemWrite) or (isinstance(tlp, MemRead) and tlp.at != 0b01)


def phe_applies(tlp: Tlp, mode: int) -> bool:
    """PHE covers Memory Requests only ("some portions of the Header of an IDE Memory
    Request", §6.33.4); Completions go unchanged."""
    return bool(mode) and isinstance(tlp, MemRead | MemWrite)


def _address_bytes(mode: int) -> int:
    """Bytes of Address[msb:2] that PHE ``mode`` moves to P: 2, 3, 4 or 5."""
    return (PHE_ADDRESS_MSB[mode] - 1) // 8


def phe_split(header: bytes, mode: int, *, byte_enables: bool) -> tuple[bytes, bytes]:
    """A 4 DW memory request header -> (what stays in A, what goes to the front of P).

    §6.33.4, "Rules for partial header encryption": the BE byte (when encrypted) is the first
    byte of P, then Address[msb:2] most significant byte first (for 0100b: Address[41:34],
    [33:26], [25:18], [17:10], [9:2]); "the Header content selected for encryption is
    concatenated at the front of P and removed from A ... decreasing the size of A".

    How the bits left in A are packed is drawn only in Figures 6-75 and 6-76, which the text
    we work from lacks.  Here the header keeps its byte order (§2.1.2) and the selected bits
    are taken out of it: byte 7 (Last DW BE [7:4], First DW BE [3:0], as in the header) goes
    whole, and of the address field (bytes 8..15: Address[63:2] then PH[1:0]) what is left,
    Address[63:msb+1] then PH, is packed most significant bit first.  That is 48, 40, 32 and
    24 bits for the four modes: whole bytes every time, which is what the modes' boundaries
    (17, 25, 33, 41) were chosen to give; any other packing would leave a partial byte.
    PCIe 6.0.1's errata list (A20, "Partial Header Encryption Corrections") says the algorithm
    was corrected "to use Byte level granularity instead of bit granularity as required in
    AES-GCM", which this reading satisfies; the erratum text does not say how A is packed
    either, so a device that packs A differently fails the `.phe` vectors on the MAC.

    The same function takes a header off the wire (the selected bits ciphertext): A is built
    the same way at both ends, and the second value is then the ciphertext front of C.
    """
    msb = PHE_ADDRESS_MSB[mode]
    if len(header) != 16:
        raise LocalProtocolError(f"PHE needs a 4 DW header, not {len(header)} bytes [§2.2.4.1]")
    field = int.from_bytes(header[_ADDR_FIELD], "big")
    hidden = (field >> 2) & ((1 << (msb - 1)) - 1)  # Address[msb:2]
    kept = ((field >> (msb + 1)) << 2) | (field & 0b11)  # Address[63:msb+1], PH
    a_part = header[:7] + (b"" if byte_enables else header[7:8])
    a_part += kept.to_bytes((65 - msb) // 8, "big")
    p_front = (header[7:8] if byte_enables else b"") + hidden.to_bytes(_address_bytes(mode), "big")
    return a_part, p_front


def phe_merge(header: bytes, front: bytes, mode: int, *, byte_enables: bool) -> bytes:
    """``header`` with the fields PHE selects replaced by ``front`` (as :func:`phe_split`
    returns it): the wire header from the ciphertext front, or the clear header back from
    the decrypted one (§6.33.4: "the complete header is reconstructed")."""
    msb = PHE_ADDRESS_MSB[mode]
    width = _address_bytes(mode) + int(byte_enables)
    if len(header) != 16 or len(front) != width:
        raise LocalProtocolError(f"PHE mode {mode}: a 16-byte header and {width} front bytes")
    be = front[:1] if byte_enables else header[7:8]
    hidden = int.from_bytes(front[int(byte_enables) :], "big")
    field = int.from_bytes(header[_ADDR_FIELD], "big")
    mask = ((1 << (msb - 1)) - 1) << 2
    field = (field & ~mask) | (hidden << 2)
    return header[:7] + be + field.to_bytes(8, "big")


def phe_pcrc_front(front: bytes) -> bytes:
    """The header part of the PCRC input: "padded to 64bits with 0's in the most significant
    bits" (§6.33.4), for the PCRC calculation only."""
    return bytes(8 - len(front)) + front


# --------------------------------------------------------------------------------------------
# TLP decoding
# --------------------------------------------------------------------------------------------


def _parse_tlp(
    data: bytes, pos: int, *, phe_mode: int = 0, addr64: bool = False
) -> tuple[Tlp, bytes, int]:
    """Decode the TLP starting at ``data[pos]``; return it, the PHE front taken out of its
    header (``phe_mode``: see :func:`phe_split`; else empty) and the offset just past it.
    ``addr64``: a 4 DW header below 4 GB is expected (a PHE header once decrypted)."""
    view = bytes(data[pos:])
    dw0 = _Dw0.parse(view)
    if dw0.fmt == _FMT_PREFIX:
        raise TlpDecodeError("a TLP prefix where a TLP header was expected")
    if dw0.type == _TYPE_MEM and dw0.fmt in (_FMT_3DW, _FMT_4DW, _FMT_3DW_DATA, _FMT_4DW_DATA):
        four = dw0.fmt in (_FMT_4DW, _FMT_4DW_DATA)
        with_data = dw0.fmt in (_FMT_3DW_DATA, _FMT_4DW_DATA)
        hdr_len = 16 if four else 12
        if len(view) < hdr_len:
            raise TlpDecodeError(f"memory request header truncated: {len(view)} of {hdr_len}")
        front = b""
        if phe_mode:
            if not four:
                raise TlpDecodeError(
                    "a 32-bit address format request on a stream with Partial Header "
                    "Encryption (64-bit addressing is required) [§2.2.4.1]"
                )
            be = not (not with_data and dw0.at == 0b01)  # a Translation Request keeps its BEs
            _, front = phe_split(view[:16], phe_mode, byte_enables=be)
            view = phe_merge(view[:16], bytes(len(front)), phe_mode, byte_enables=be) + view[16:]
        fields = _MemRequest._fields(dw0, view, addr64=addr64 or bool(phe_mode))
        if phe_mode:
            fields["phe_mode"] = phe_mode
        if not with_data:
            return _build(MemRead, length=dw0.length_dw, **fields), front, pos + hdr_len
        end = hdr_len + dw0.length_dw * 4
        if len(view) < end:
            raise TlpDecodeError(
                f"MWr Length {dw0.length_dw} DW but only {len(view) - hdr_len} payload bytes"
            )
        return _build(MemWrite, payload=view[hdr_len:end], **fields), front, pos + end
    if dw0.type == _TYPE_CPL and dw0.fmt in (_FMT_3DW, _FMT_3DW_DATA):
        if len(view) < 12:
            raise TlpDecodeError(f"completion header truncated: {len(view)} of 12 bytes")
        if dw0.at:
            raise TlpDecodeError(f"AT {dw0.at:#04b} is reserved in a Completion")
        if view[11] & 0x80:
            raise TlpDecodeError("Completion DW2 bit 7 is reserved and set")
        status = view[6] >> 5
        if status not in tuple(CplStatus):
            raise TlpDecodeError(f"Completion Status {status:#05b} is reserved")
        end = 12
        payload = b""
        if dw0.fmt == _FMT_3DW_DATA:
            end += dw0.length_dw * 4
            if len(view) < end:
                raise TlpDecodeError(
                    f"CplD Length {dw0.length_dw} DW but only {len(view) - 12} payload bytes"
                )
            payload = view[12:end]
        elif dw0.length_field:
            raise TlpDecodeError(f"Cpl without data has Length {dw0.length_field} (reserved)")
        bc = ((view[6] & 0x0F) << 8) | view[7]
        tlp = _build(
            Completion,
            completer_id=int.from_bytes(view[4:6], "big"),
            requester_id=int.from_bytes(view[8:10], "big"),
            tag=(dw0.tag_hi << 8) | view[10],
            status=CplStatus(status),
            byte_count=bc or 4096,
            lower_address=view[11] & 0x7F,
            bcm=bool(view[6] & 0x10),
            tc=dw0.tc,
            attr=dw0.attr,
            ep=dw0.ep,
            payload=payload,
        )
        return tlp, b"", pos + end
    if dw0.type in (_TYPE_CFG0, _TYPE_CFG1) and dw0.fmt in (_FMT_3DW, _FMT_3DW_DATA):
        if len(view) < 12:
            raise TlpDecodeError(f"configuration request header truncated: {len(view)} of 12")
        # §2.2.7.1: TC, Attr, TH (checked in DW0) and AT are 0, Length is 1, Last DW BE 0.
        if dw0.tc or dw0.attr or dw0.at or dw0.length_field != 1 or view[7] >> 4:
            raise TlpDecodeError(
                "configuration request with TC, Attr or AT set, Length other than 1 or a Last "
                "DW BE (all fixed by §2.2.7.1)"
            )
        if view[10] >> 4 or view[11] & 0b11:
            raise TlpDecodeError("configuration request DW2 reserved bits set")
        fields = {
            "target_id": int.from_bytes(view[8:10], "big"),
            "register": ((view[10] & 0x0F) << 6) | (view[11] >> 2),
            "requester_id": int.from_bytes(view[4:6], "big"),
            "tag": (dw0.tag_hi << 8) | view[6],
            "first_be": view[7] & 0x0F,
            "type1": dw0.type == _TYPE_CFG1,
        }
        if dw0.fmt == _FMT_3DW:
            return _build(CfgRead, **fields), b"", pos + 12
        if len(view) < 16:
            raise TlpDecodeError(f"CfgWr with {len(view) - 12} of 4 payload bytes")
        return _build(CfgWrite, payload=view[12:16], **fields), b"", pos + 16
    raise TlpDecodeError(
        f"Fmt {dw0.fmt:03b} Type {dw0.type:05b} is not a TLP kind this codec models "
        "(MRd, MWr, Cpl, CplD, CfgRd, CfgWr)"
    )


def decode_tlp(data: bytes) -> Tlp:
    """Decode one whole non-IDE TLP (no prefixes, no ECRC); the byte count must be exact."""
    tlp, _, end = _parse_tlp(data, 0)
    if end != len(data):
        raise TlpDecodeError(f"{len(data) - end} trailing bytes after a {end}-byte TLP")
    return tlp


def phe_hide(tlp: MemRead | MemWrite, mode: int) -> tuple[MemRead | MemWrite, bytes]:
    """``tlp`` as it goes into an IDE TLP with PHE ``mode``: in the 64-bit format, without
    the fields the mode selects (they read 0), and those fields' bytes, the front of P."""
    be = phe_covers_byte_enables(tlp)
    plain = replace(tlp, addr64=tlp.address < _FOUR_GB)
    _, front = phe_split(plain.header(), mode, byte_enables=be)
    address = tlp.address & ~(((1 << (PHE_ADDRESS_MSB[mode] - 1)) - 1) << 2)
    zeroed = {"first_be": 0, "last_be": 0} if be else {}
    hidden = replace(plain, address=address, addr64=address < _FOUR_GB, phe_mode=mode, **zeroed)
    return hidden, front


def phe_reveal(tlp: MemRead | MemWrite, front: bytes) -> Tlp:
    """The request whose PHE-encrypted fields ``tlp`` lacks (``tlp.phe_mode``), with them
    filled in from the decrypted ``front``; still in the 64-bit format.  Fields that decrypt
    to something no request may carry (byte enables, a 4 KB crossing) raise
    :class:`TlpDecodeError`."""
    be = phe_covers_byte_enables(tlp)
    header = phe_merge(tlp.header(), front, tlp.phe_mode, byte_enables=be)
    plain, _, _ = _parse_tlp(header + tlp.payload, 0, addr64=True)
    return plain


# --------------------------------------------------------------------------------------------
# IDE TLP Prefix and IDE TLP
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IdePrefix:
    """The IDE TLP Prefix (NFM) [PCIe §6.33.4]; layout in the module docstring.

    ``sub_stream`` accepts the reserved values 3..7 so that a test can build the TLPs a
    receiver must reject; a transmitter never sends them.
    """

    stream_id: int
    sub_stream: int = SubStream.POSTED
    pr_sent_counter: int = 0
    k: int = 0  # key set
    t: bool = False  # TLP originated in a trusted execution environment
    m: bool = True  # MAC present (always, without aggregation)
    p: bool = False  # PCRC present

    def __post_init__(self) -> None:
        _uint("stream_id", self.stream_id, 8)
        _uint("sub_stream", self.sub_stream, 3)
        _uint("pr_sent_counter", self.pr_sent_counter, 8)
        _uint("k", self.k, 1)
        if self.p and not self.m:
            raise LocalProtocolError("P (PCRC) must only be set when M (MAC) is set [§6.33.4]")

    def encode(self) -> bytes:
        b3 = (
            (self.sub_stream << 4)
            | (int(self.p) << 3)
            | (int(self.m) << 2)
            | (self.k << 1)
            | int(self.t)
        )
        return bytes((IDE_PREFIX_BYTE0, self.pr_sent_counter, self.stream_id, b3))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) != PREFIX_SIZE:
            raise TlpDecodeError(f"IDE prefix of {len(data)} bytes (must be 4)")
        if data[0] != IDE_PREFIX_BYTE0:
            raise TlpDecodeError(f"prefix byte 0 {data[0]:#04x} is not the IDE prefix (0x92)")
        b3 = data[3]
        if b3 & 0x80:
            raise TlpDecodeError("IDE prefix byte 3 bit 7 (old Sub-Stream bit 3) is reserved")
        return _build(
            cls,
            stream_id=data[2],
            sub_stream=_known(SubStream, (b3 >> 4) & 0b111),
            pr_sent_counter=data[1],
            k=(b3 >> 1) & 1,
            t=bool(b3 & 1),
            m=bool(b3 & 0b100),
            p=bool(b3 & 0b1000),
        )


def _check_prefix_dw(name: str, value: bytes, *, e2e: bool) -> None:
    _blob(name, value, sizes=(PREFIX_SIZE,))
    if value[0] >> 5 != _FMT_PREFIX:
        raise LocalProtocolError(f"{name} {value.hex()} does not have Fmt 100b")
    if bool(value[0] & _E2E_BIT) != e2e:
        kind = "End-End" if e2e else "Local"
        raise LocalProtocolError(f"{name} {value.hex()} is not a {kind} prefix")
    if value[0] == IDE_PREFIX_BYTE0:
        raise LocalProtocolError(f"{name}: a TLP carries one IDE prefix, in ``prefix``")


@dataclass(frozen=True, kw_only=True)
class IdeTlp:
    """An IDE TLP as it travels: prefixes, cleartext header, encrypted payload, PCRC, MAC.

    Wire layout (NFM, §6.33.4 Figures 6-66 and 6-68)::

        [Local prefixes] IDE prefix [other End-End prefixes] header [payload (C)] [PCRC] [MAC]

    ``tlp.payload`` holds the payload as on the wire (ciphertext).  ``mac`` is 12 bytes when
    M is set, ``pcrc`` is 4 (encrypted) bytes when P is set.  Local prefixes must precede the
    IDE prefix and other End-End prefixes must follow it.
    """

    prefix: IdePrefix
    tlp: Tlp
    mac: bytes = b""
    pcrc: bytes = b""
    local_prefixes: tuple[bytes, ...] = ()
    e2e_prefixes: tuple[bytes, ...] = ()
    #: With Partial Header Encryption (``tlp.phe_mode``): the ciphertext of the header fields
    #: it selects, the front of C (:func:`phe_split`); on the wire it sits in those fields.
    phe: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.tlp, MemRead | MemWrite | Completion | CfgRead | CfgWrite):
            raise LocalProtocolError(f"tlp must be a Tlp, not {type(self.tlp).__name__}")
        mode = getattr(self.tlp, "phe_mode", 0)
        width = _address_bytes(mode) + phe_covers_byte_enables(self.tlp) if mode else 0
        _blob("phe", self.phe, sizes=(width,))
        _blob("mac", self.mac, sizes=(MAC_SIZE,) if self.prefix.m else (0,))
        _blob("pcrc", self.pcrc, sizes=(PCRC_SIZE,) if self.prefix.p else (0,))
        for value in self.local_prefixes:
            _check_prefix_dw("local prefix", value, e2e=False)
        for value in self.e2e_prefixes:
            _check_prefix_dw("End-End prefix", value, e2e=True)
        if 1 + len(self.e2e_prefixes) > MAX_E2E_PREFIXES:
            raise LocalProtocolError(f"more than {MAX_E2E_PREFIXES} End-End prefixes")
        if self.tlp.sub_stream == SubStream.POSTED and self.prefix.pr_sent_counter:
            raise LocalProtocolError("PR_Sent_Counter is reserved for Posted Requests [§6.33.4]")

    def aad(self, *, link: bool = False) -> bytes:
        """AES-GCM A: [Local prefixes (Link IDE only)] + IDE prefix + End-End prefixes + header.

        §6.33.4: the IDE prefix and the other End-End prefixes are always in A; Local prefixes
        are in A for a Link IDE Stream and in neither A nor P for a Selective IDE Stream.
        """
        local = b"".join(self.local_prefixes) if link else b""
        header = self.tlp.header()
        if self.phe:
            header, _ = phe_split(header, self.tlp.phe_mode, byte_enables=self._phe_be)  # type: ignore[union-attr]
        return local + self.prefix.encode() + b"".join(self.e2e_prefixes) + header

    @property
    def _phe_be(self) -> bool:
        return phe_covers_byte_enables(self.tlp)

    @property
    def ciphertext(self) -> bytes:
        """C without the PCRC: the PHE front (if any), then the payload."""
        return self.phe + self.tlp.payload

    def encode(self) -> bytes:
        header = self.tlp.header()
        if self.phe:
            mode = self.tlp.phe_mode  # type: ignore[union-attr]
            header = phe_merge(header, self.phe, mode, byte_enables=self._phe_be)
        return (
            b"".join(self.local_prefixes)
            + self.prefix.encode()
            + b"".join(self.e2e_prefixes)
            + header
            + self.tlp.payload
            + self.pcrc
            + self.mac
        )

    @classmethod
    def decode(cls, data: bytes, *, phe_mode: int = 0) -> Self:
        """``phe_mode``: the receiving stream's Partial Header Encryption Mode; a memory
        request then comes back with its encrypted fields in :attr:`phe` (they read 0 in
        ``tlp``), which :func:`phe_reveal` restores once decrypted."""
        data = bytes(data)
        pos = 0
        local: list[bytes] = []
        while len(data) - pos >= PREFIX_SIZE and data[pos] >> 5 == _FMT_PREFIX:
            if data[pos] & _E2E_BIT:
                break
            local.append(data[pos : pos + PREFIX_SIZE])
            pos += PREFIX_SIZE
        if len(data) - pos < PREFIX_SIZE or data[pos] != IDE_PREFIX_BYTE0:
            raise TlpDecodeError("no IDE prefix as the first End-End prefix [§6.33.4]")
        prefix = IdePrefix.decode(data[pos : pos + PREFIX_SIZE])
        pos += PREFIX_SIZE
        e2e: list[bytes] = []
        while len(data) - pos >= PREFIX_SIZE and data[pos] >> 5 == _FMT_PREFIX:
            if not data[pos] & _E2E_BIT:
                raise TlpDecodeError("a Local prefix after the IDE prefix [§6.33.4]")
            if data[pos] == IDE_PREFIX_BYTE0:
                raise TlpDecodeError("a second IDE prefix")
            e2e.append(data[pos : pos + PREFIX_SIZE])
            pos += PREFIX_SIZE
        tlp, front, pos = _parse_tlp(data, pos, phe_mode=phe_mode)
        pcrc_len = PCRC_SIZE if prefix.p else 0
        mac_len = MAC_SIZE if prefix.m else 0
        if len(data) - pos != pcrc_len + mac_len:
            raise TlpDecodeError(
                f"{len(data) - pos} bytes after the payload; M={int(prefix.m)} "
                f"P={int(prefix.p)} needs exactly {pcrc_len + mac_len}"
            )
        return _build(
            cls,
            prefix=prefix,
            tlp=tlp,
            pcrc=data[pos : pos + pcrc_len],
            mac=data[pos + pcrc_len :],
            local_prefixes=tuple(local),
            e2e_prefixes=tuple(e2e),
            phe=front,
        )


def _build(cls: Any, **fields: Any) -> Any:
    """Construct a decoded object; a value the constructor refuses is the peer's fault."""
    return _build_with(cls, TlpDecodeError, cls.__name__, **fields)
