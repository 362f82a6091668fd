"""IDE_KM, the IDE key management protocol (PCIe 6.x §6.33.3): bytes in, typed messages out.

IDE_KM messages travel as the payload of a PCI-SIG SPDM VENDOR_DEFINED_REQUEST/RESPONSE
(StandardID 3, VendorID 0001h) inside a secured session.  ``encode()`` returns that whole
vendor payload, starting with the Protocol ID byte (00h).
:meth:`IdeKmMessage.to_vendor_defined` and :func:`from_vendor_defined` do the wrapping.
Layouts follow PCIe §6.33.3 Figures 6-56 to 6-62 and libspdm ``pci_idekm.h``.
Multi-byte fields are little-endian, as in every DOE/SPDM payload.

Every message starts with::

     byte 0        1           2 ...
    +-------------+-----------+-------
    | Protocol ID | Object ID |  ...       Protocol ID 00h = IDE_KM
    +-------------+-----------+-------

Key Sub-Stream byte (KEY_PROG, KP_ACK, K_SET_GO, K_SET_STOP, K_GOSTOP_ACK)::

     7 6 5 4     3 2    1       0
    +----------+------+-------+--------+
    |Sub-Stream| rsvd | RxTxB | KeySet |    Sub-Stream uses the IDE TLP encodings (§6.33.5)
    +----------+------+-------+--------+

Reserved fields are rejected by default.  Decoders check that reserved bytes and bits are zero
and raise :class:`IdeKmDecodeError` if not: a peer that sets them broke the rule that a sender
zeroes reserved fields, and this project exists to find such peers.  A responder, which the spec
tells to ignore reserved fields it receives, passes ``strict=False``.  Values the *responder*
must answer rather than drop are decoded, not rejected: a reserved Key Sub-Stream value (KP_ACK
status 03h) and a reserved KP_ACK status (treat as 04h).  Lengths are exact; a message of the
wrong size is an error, with one exception for a requester reading leniently: QUERY_RESP with
``strict=False`` keeps bytes after the capability structure in :attr:`QueryResp.trailing`
(PCIe §6.33.3 forbids them, but they do not change what the registers say), so a flow can go
on while the vector that judges QUERY_RESP reports them.

Register blocks in QUERY_RESP are kept as raw 32-bit values, exactly as config space holds them,
so that a requester can compare them with its own config reads.  Properties decode the fields.
The decoder judges a register only where the layout depends on it: the block counts come from
the IDE Capability register and each Selective block's capability register.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Self, TypeAlias

from ..errors import LocalProtocolError, PeerProtocolError
from ._fields import build as _build_with
from ._fields import known as _known
from ._fields import uint as _uint
from .ide_tlp import SubStream
from .spdm import (
    PCI_SIG_STANDARD_ID,
    PCI_SIG_VENDOR_ID,
    PciProtocolId,
    SpdmVersion,
    VendorDefinedRequest,
    VendorDefinedResponse,
)

__all__ = [
    "IFV_SIZE",
    "KEY_SIZE",
    "PROTOCOL_ID",
    "AddressAssociation",
    "IdeCapability",
    "IdeKmDecodeError",
    "IdeKmMessage",
    "IdeStreamState",
    "KGostopAck",
    "KSetGo",
    "KSetStop",
    "KeyDirection",
    "KeyProg",
    "KeySet",
    "KeySlot",
    "KpAck",
    "KpAckStatus",
    "LinkIdeBlock",
    "ObjectId",
    "Query",
    "QueryResp",
    "SelectiveIdeBlock",
    "SubStream",
    "decode",
    "from_vendor_defined",
    "ifv_from_wire",
    "ifv_to_wire",
    "key_from_wire",
    "key_to_wire",
]

PROTOCOL_ID = PciProtocolId.IDE_KM  # 00h [PCIe §6.33.3]
KEY_SIZE = 32  # AES-GCM-256: keys are 256 bits [§6.33.3]
IFV_SIZE = 8  # the IV invocation field, 64 bits [§6.33.3, §6.33.5]
_HEADER_SIZE = 8  # every message but QUERY: 2 header bytes + 6 bytes of fields
_KEY_PROG_SIZE = _HEADER_SIZE + KEY_SIZE + IFV_SIZE  # 48
_QUERY_SIZE = 4
_MAX_LINK_BLOCKS = 8
_MAX_SELECTIVE_BLOCKS = 256
_MAX_ADDR_ASSOC = 15


class IdeKmDecodeError(PeerProtocolError):
    """Bytes from the peer are not a valid IDE_KM message."""


class ObjectId(IntEnum):
    """IDE_KM Object IDs, payload byte 1 [PCIe §6.33.3, libspdm pci_idekm.h]."""

    QUERY = 0x00
    QUERY_RESP = 0x01
    KEY_PROG = 0x02
    KP_ACK = 0x03
    K_SET_GO = 0x04
    K_SET_STOP = 0x05
    K_GOSTOP_ACK = 0x06


class KeySet(IntEnum):
    """Key Set, the K bit of the IDE TLP prefix."""

    K0 = 0
    K1 = 1


class KeyDirection(IntEnum):
    """The RxTxB bit: 0 Receive, 1 Transmit (at the port that gets the message)."""

    RX = 0
    TX = 1


class KpAckStatus(IntEnum):
    """KP_ACK Status [PCIe §6.33.3]; 05h-FFh are reserved and read as UNSPECIFIED_FAILURE."""

    SUCCESS = 0x00
    INCORRECT_LENGTH = 0x01
    UNSUPPORTED_PORT_INDEX = 0x02
    UNSUPPORTED_VALUE = 0x03
    UNSPECIFIED_FAILURE = 0x04


class IdeStreamState(IntEnum):
    """IDE Stream Status register State field [PCIe §7.9.26.4.2]; other values reserved."""

    INSECURE = 0b0000
    SECURE = 0b0010


# --------------------------------------------------------------------------------------------
# Key and IFV byte order
# --------------------------------------------------------------------------------------------
#
# PCIe §6.33.3 Figure 6-58 draws the key as 8 DWs, and tee-io-validator doc/key_byte_order.md
# (Intel, checked against its ide_km_common.c) maps them to AES-GCM bytes k[0..31], the
# big-endian order OpenSSL and PCIe Appendix L use.  The first key DW of the message holds
# k[0..3] with k[0] in bits 31:24 (the doc calls that DW "Key_DW7").  DWs travel little-endian,
# so on the wire each group of 4 key bytes appears reversed: key df 25 41 52 ... is sent as
# 52 41 25 df ...  The IFV is two DWs: first IFV[63:32], then IFV[31:0], so IFV 1 is sent as
# 00 00 00 00 01 00 00 00.  tee-io-validator's requester builds it as iv[0] = 0, iv[1] = 1.


def key_to_wire(key: bytes) -> bytes:
    """The 32 KEY_PROG key bytes for AES key ``key`` (k[0..31], OpenSSL order)."""
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise LocalProtocolError(f"an IDE key is {KEY_SIZE} bytes")
    return b"".join(bytes(reversed(key[i : i + 4])) for i in range(0, KEY_SIZE, 4))


def key_from_wire(wire: bytes) -> bytes:
    """The AES key (k[0..31], OpenSSL order) that KEY_PROG key bytes ``wire`` carry."""
    if not isinstance(wire, bytes | bytearray) or len(wire) != KEY_SIZE:
        raise IdeKmDecodeError(f"KEY_PROG key field must be {KEY_SIZE} bytes")
    return b"".join(bytes(reversed(wire[i : i + 4])) for i in range(0, KEY_SIZE, 4))


def ifv_to_wire(ifv: int) -> bytes:
    """The 8 KEY_PROG IFV bytes: DW IFV[63:32] then DW IFV[31:0], each little-endian."""
    _uint("ifv", ifv, 64)
    return (ifv >> 32).to_bytes(4, "little") + (ifv & 0xFFFF_FFFF).to_bytes(4, "little")


def ifv_from_wire(wire: bytes) -> int:
    if not isinstance(wire, bytes | bytearray) or len(wire) != IFV_SIZE:
        raise IdeKmDecodeError(f"KEY_PROG IFV field must be {IFV_SIZE} bytes")
    return (int.from_bytes(wire[:4], "little") << 32) | int.from_bytes(wire[4:], "little")


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "little")


def _le32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def _reserved_zero(name: str, value: int, strict: bool) -> None:
    if strict and value:
        raise IdeKmDecodeError(f"{name} is reserved and must be 0, got {value:#x}")


# --------------------------------------------------------------------------------------------
# The Key Sub-Stream byte
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class KeySlot:
    """One key slot of a stream: key set x direction x sub-stream (the Key Sub-Stream byte).

    Each port holds 2 x 2 x 3 = 12 slots per stream, each with its own key and IFV.
    ``sub_stream`` may hold a reserved value (3..15) so that a decoded request can be answered
    with KP_ACK "unsupported value".
    """

    key_set: int
    direction: int
    sub_stream: int

    def __post_init__(self) -> None:
        _uint("key_set", self.key_set, 1)
        _uint("direction", self.direction, 1)
        _uint("sub_stream", self.sub_stream, 4)

    @property
    def valid(self) -> bool:
        """True when the sub-stream is one of PR, NPR, CPL."""
        return self.sub_stream in tuple(SubStream)

    def encode(self) -> int:
        return (self.sub_stream << 4) | (self.direction << 1) | self.key_set

    @classmethod
    def decode(cls, byte: int, *, strict: bool = True) -> Self:
        _reserved_zero("Key Sub-Stream bits 3:2", byte & 0b1100, strict)
        return cls(
            key_set=KeySet(byte & 1),
            direction=KeyDirection((byte >> 1) & 1),
            sub_stream=_known(SubStream, byte >> 4),
        )

    @classmethod
    def all(cls, key_set: int) -> tuple[Self, ...]:
        """The six slots of one key set: both directions x PR, NPR, CPL."""
        return tuple(cls(key_set, d, s) for d in KeyDirection for s in SubStream)


# --------------------------------------------------------------------------------------------
# IDE capability register blocks (QUERY_RESP)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdeCapability:
    """The IDE Capability register (cap + 04h) [PCIe §7.9.26.2]."""

    value: int

    def __post_init__(self) -> None:
        _uint("IDE Capability", self.value, 32)

    @classmethod
    def build(
        cls,
        *,
        link_tcs: int = 0,
        selective_streams: int = 1,
        ide_km: bool = True,
        flow_through: bool = False,
        partial_header_encryption: bool = False,
        aggregation: bool = False,
        pcrc: bool = False,
        selective_for_config: bool = False,
        algorithms: int = 0,
        tee_limited: bool = False,
    ) -> Self:
        """A capability value with ``link_tcs`` Link blocks and ``selective_streams`` streams."""
        if not 0 <= link_tcs <= _MAX_LINK_BLOCKS:
            raise LocalProtocolError(f"link_tcs {link_tcs} is outside 0..8")
        if not 0 <= selective_streams <= _MAX_SELECTIVE_BLOCKS:
            raise LocalProtocolError(f"selective_streams {selective_streams} is outside 0..256")
        _uint("algorithms", algorithms, 5)
        value = (
            (1 if link_tcs else 0)
            | (2 if selective_streams else 0)
            | int(flow_through) << 2
            | int(partial_header_encryption) << 3
            | int(aggregation) << 4
            | int(pcrc) << 5
            | int(ide_km) << 6
            | int(selective_for_config) << 7
            | algorithms << 8
            | (max(link_tcs - 1, 0)) << 13
            | (max(selective_streams - 1, 0)) << 16
            | int(tee_limited) << 24
        )
        return cls(value)

    def _bit(self, n: int) -> bool:
        return bool(self.value >> n & 1)

    @property
    def link_ide_supported(self) -> bool:
        return self._bit(0)

    @property
    def selective_ide_supported(self) -> bool:
        return self._bit(1)

    @property
    def flow_through_supported(self) -> bool:
        return self._bit(2)

    @property
    def partial_header_encryption_supported(self) -> bool:
        return self._bit(3)

    @property
    def aggregation_supported(self) -> bool:
        return self._bit(4)

    @property
    def pcrc_supported(self) -> bool:
        return self._bit(5)

    @property
    def ide_km_supported(self) -> bool:
        """Bit 6: the port answers IDE_KM as responder."""
        return self._bit(6)

    @property
    def selective_for_config_supported(self) -> bool:
        return self._bit(7)

    @property
    def tee_limited_supported(self) -> bool:
        return self._bit(24)

    @property
    def supported_algorithms(self) -> int:
        """Bits 12:8; 00000b is AES-GCM-256 with a 96-bit MAC."""
        return (self.value >> 8) & 0x1F

    @property
    def link_block_count(self) -> int:
        """Link IDE register blocks: Number of TCs (bits 15:13) + 1 if Link IDE is supported.

        Linux ``drivers/pci/ide.c`` derives it the same way (0 when Link IDE is not supported).
        """
        return ((self.value >> 13) & 0b111) + 1 if self.link_ide_supported else 0

    @property
    def selective_block_count(self) -> int:
        """Selective IDE Stream blocks: bits 23:16 + 1 if Selective IDE is supported."""
        return ((self.value >> 16) & 0xFF) + 1 if self.selective_ide_supported else 0


@dataclass(frozen=True)
class LinkIdeBlock:
    """A Link IDE Stream register block: Control then Status [PCIe §7.9.26.4]."""

    control: int
    status: int = 0

    def __post_init__(self) -> None:
        _uint("control", self.control, 32)
        _uint("status", self.status, 32)

    @property
    def enabled(self) -> bool:
        return bool(self.control & 1)

    @property
    def pcrc_enabled(self) -> bool:
        return bool(self.control >> 8 & 1)

    @property
    def selected_algorithm(self) -> int:
        return (self.control >> 14) & 0x1F

    @property
    def tc(self) -> int:
        return (self.control >> 19) & 0b111

    @property
    def stream_id(self) -> int:
        return self.control >> 24

    @property
    def state(self) -> int:
        """Status bits 3:0 (an IdeStreamState when defined)."""
        return _known(IdeStreamState, self.status & 0xF)

    @property
    def received_ide_fail(self) -> bool:
        return bool(self.status >> 31)

    def words(self) -> tuple[int, ...]:
        return (self.control, self.status)


@dataclass(frozen=True)
class AddressAssociation:
    """A Selective IDE Address Association block: registers 1, 2, 3 [PCIe §7.9.26.5.4-6]."""

    reg1: int
    reg2: int = 0
    reg3: int = 0

    def __post_init__(self) -> None:
        for name in ("reg1", "reg2", "reg3"):
            _uint(name, getattr(self, name), 32)

    @classmethod
    def for_range(cls, base: int, limit: int, *, valid: bool = True) -> Self:
        """The block for [base, limit]: base is 1 MB-aligned, limit ends at xx_FFFFFh."""
        _uint("base", base, 64)
        _uint("limit", limit, 64)
        if base & 0xFFFFF or limit & 0xFFFFF != 0xFFFFF:
            raise LocalProtocolError("address association granularity is 1 MB")
        reg1 = int(valid) | ((base >> 20) & 0xFFF) << 8 | ((limit >> 20) & 0xFFF) << 20
        return cls(reg1, limit >> 32, base >> 32)

    @property
    def valid(self) -> bool:
        return bool(self.reg1 & 1)

    @property
    def memory_base(self) -> int:
        return self.reg3 << 32 | ((self.reg1 >> 8) & 0xFFF) << 20

    @property
    def memory_limit(self) -> int:
        return self.reg2 << 32 | ((self.reg1 >> 20) & 0xFFF) << 20 | 0xFFFFF

    def words(self) -> tuple[int, ...]:
        return (self.reg1, self.reg2, self.reg3)


@dataclass(frozen=True)
class SelectiveIdeBlock:
    """A Selective IDE Stream register block [PCIe §7.9.26.5].

    Capability (its bits 3:0 = number of Address Association blocks), Control, Status,
    RID Association 1 and 2, then the Address Association blocks.
    """

    capability: int
    control: int
    status: int = 0
    rid_association_1: int = 0
    rid_association_2: int = 0
    address_associations: tuple[AddressAssociation, ...] = ()

    def __post_init__(self) -> None:
        for name in ("capability", "control", "status", "rid_association_1"):
            _uint(name, getattr(self, name), 32)
        _uint("rid_association_2", self.rid_association_2, 32)
        if len(self.address_associations) != self.capability & 0xF:
            raise LocalProtocolError(
                f"Selective IDE capability says {self.capability & 0xF} address association "
                f"blocks, {len(self.address_associations)} given"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.control & 1)

    @property
    def pcrc_enabled(self) -> bool:
        return bool(self.control >> 8 & 1)

    @property
    def config_requests_enabled(self) -> bool:
        return bool(self.control >> 9 & 1)

    @property
    def selected_algorithm(self) -> int:
        return (self.control >> 14) & 0x1F

    @property
    def tc(self) -> int:
        return (self.control >> 19) & 0b111

    @property
    def default_stream(self) -> bool:
        return bool(self.control >> 22 & 1)

    @property
    def tee_limited(self) -> bool:
        return bool(self.control >> 23 & 1)

    @property
    def stream_id(self) -> int:
        return self.control >> 24

    @property
    def state(self) -> int:
        """Status bits 3:0 (an IdeStreamState when defined)."""
        return _known(IdeStreamState, self.status & 0xF)

    @property
    def received_ide_fail(self) -> bool:
        return bool(self.status >> 31)

    @property
    def rid_limit(self) -> int:
        return (self.rid_association_1 >> 8) & 0xFFFF

    @property
    def rid_valid(self) -> bool:
        return bool(self.rid_association_2 & 1)

    @property
    def rid_base(self) -> int:
        return (self.rid_association_2 >> 8) & 0xFFFF

    @property
    def segment_base(self) -> int:
        return self.rid_association_2 >> 24

    def words(self) -> tuple[int, ...]:
        head = (
            self.capability,
            self.control,
            self.status,
            self.rid_association_1,
            self.rid_association_2,
        )
        return head + tuple(w for a in self.address_associations for w in a.words())


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Message:
    OBJECT_ID: ClassVar[ObjectId]
    IS_REQUEST: ClassVar[bool]

    def encode(self) -> bytes:
        raise NotImplementedError

    def to_vendor_defined(
        self, *, version: int = SpdmVersion.V12
    ) -> VendorDefinedRequest | VendorDefinedResponse:
        """This message as the SPDM VENDOR_DEFINED message that carries it."""
        cls = VendorDefinedRequest if self.IS_REQUEST else VendorDefinedResponse
        return cls.pci_sig(PROTOCOL_ID, self.encode()[1:], version=version)

    def _head(self) -> bytes:
        return bytes((PROTOCOL_ID, self.OBJECT_ID))


def _open(data: bytes, cls: type[_Message], size: int | None) -> bytes:
    """Check protocol ID, object ID and (when fixed) the exact size; return the bytes."""
    data = bytes(data)
    if len(data) < 2:
        raise IdeKmDecodeError(f"IDE_KM message of {len(data)} bytes")
    if data[0] != PROTOCOL_ID:
        raise IdeKmDecodeError(f"Protocol ID {data[0]:#04x} is not IDE_KM (00h)")
    if data[1] != cls.OBJECT_ID:
        raise IdeKmDecodeError(f"Object ID {data[1]:#04x} is not {cls.OBJECT_ID.name}")
    if size is not None and len(data) != size:
        raise IdeKmDecodeError(f"{cls.OBJECT_ID.name} is {size} bytes, got {len(data)}")
    return data


@dataclass(frozen=True, kw_only=True)
class Query(_Message):
    """QUERY (Figure 6-56): ask for the IDE capability structure of port ``port_index``.

    Wire layout::

        | 00h | ObjectID 00h | reserved | PortIndex |
    """

    OBJECT_ID = ObjectId.QUERY
    IS_REQUEST = True

    port_index: int = 0

    def __post_init__(self) -> None:
        _uint("port_index", self.port_index, 8)

    def encode(self) -> bytes:
        return self._head() + bytes((0, self.port_index))

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        data = _open(data, cls, _QUERY_SIZE)
        _reserved_zero("QUERY byte 2", data[2], strict)
        return cls(port_index=data[3])


@dataclass(frozen=True, kw_only=True)
class QueryResp(_Message):
    """QUERY_RESP (Figure 6-57): the addressed port and its IDE capability structure.

    Wire layout::

        | 00h       | ObjectID 01h | reserved | PortIndex    |
        | Dev/Func  | Bus          | Segment  | MaxPortIndex |   (ARI: Function number)
        | IDE Capability register (LE DW)                    |
        | IDE Control register                               |
        | Link IDE block i: Control, Status        (x nLink) |
        | Selective block j: Capability, Control, Status,    |
        |   RID Assoc 1, RID Assoc 2,                        |
        |   (Addr Assoc 1, 2, 3) x nAddr(j)   (x nSelective) |

    nLink and nSelective come from the IDE Capability register; nAddr(j) from bits 3:0 of
    block j's capability register (§7.9.26).  Linux assumes every block has the same nAddr;
    this codec does not.

    §6.33.3: "the remainder of QUERY_RESP must consist of the contents of the IDE Extended
    Capability Structure" and the payload size "must match the size of the data object", so a
    strict decode rejects anything after the blocks.  A lenient decode (``strict=False``) keeps
    those bytes in ``trailing``: not part of the message, never encoded, not compared.
    """

    OBJECT_ID = ObjectId.QUERY_RESP
    IS_REQUEST = False

    port_index: int = 0
    dev_func: int = 0
    bus: int = 0
    segment: int = 0
    max_port_index: int = 0
    capability: IdeCapability
    control: int = 0
    link_blocks: tuple[LinkIdeBlock, ...] = ()
    selective_blocks: tuple[SelectiveIdeBlock, ...] = ()
    #: Bytes a lenient decode found after the capability structure (§6.33.3 allows none).
    trailing: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.trailing, bytes):
            raise LocalProtocolError("trailing must be bytes")
        for name in ("port_index", "dev_func", "bus", "segment", "max_port_index"):
            _uint(name, getattr(self, name), 8)
        _uint("control", self.control, 32)
        if not isinstance(self.capability, IdeCapability):
            raise LocalProtocolError("capability must be an IdeCapability")
        if len(self.link_blocks) != self.capability.link_block_count:
            raise LocalProtocolError(
                f"the capability says {self.capability.link_block_count} Link IDE blocks, "
                f"{len(self.link_blocks)} given"
            )
        if len(self.selective_blocks) != self.capability.selective_block_count:
            raise LocalProtocolError(
                f"the capability says {self.capability.selective_block_count} Selective IDE "
                f"blocks, {len(self.selective_blocks)} given"
            )

    def words(self) -> tuple[int, ...]:
        """The IDE capability structure after its header, as DWs (what config space holds)."""
        links = (w for b in self.link_blocks for w in b.words())
        selective = (w for b in self.selective_blocks for w in b.words())
        return (self.capability.value, self.control, *links, *selective)

    def encode(self) -> bytes:
        head = self._head() + bytes(
            (0, self.port_index, self.dev_func, self.bus, self.segment, self.max_port_index)
        )
        return head + b"".join(_le32(w) for w in self.words())

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        data = _open(data, cls, None)
        if len(data) < _HEADER_SIZE + 8:
            raise IdeKmDecodeError(f"QUERY_RESP of {len(data)} bytes: shorter than 16")
        _reserved_zero("QUERY_RESP byte 2", data[2], strict)
        pos = _HEADER_SIZE

        def take(n: int, what: str) -> tuple[int, ...]:
            nonlocal pos
            if pos + 4 * n > len(data):
                raise IdeKmDecodeError(f"QUERY_RESP truncated in {what} at offset {pos}")
            words = tuple(_u32(data, pos + 4 * i) for i in range(n))
            pos += 4 * n
            return words

        cap_value, control = take(2, "the IDE Capability and Control registers")
        capability = IdeCapability(cap_value)
        links = tuple(
            LinkIdeBlock(*take(2, f"Link IDE block {i}"))
            for i in range(capability.link_block_count)
        )
        selective: list[SelectiveIdeBlock] = []
        for j in range(capability.selective_block_count):
            sel_cap, ctl, sts, rid1, rid2 = take(5, f"Selective IDE block {j}")
            assocs = tuple(
                AddressAssociation(*take(3, f"Selective IDE block {j} address association {k}"))
                for k in range(sel_cap & 0xF)
            )
            selective.append(SelectiveIdeBlock(sel_cap, ctl, sts, rid1, rid2, assocs))
        if pos != len(data) and strict:
            raise IdeKmDecodeError(
                f"QUERY_RESP has {len(data) - pos} bytes after the blocks its IDE Capability "
                f"({cap_value:#010x}) describes"
            )
        return _build(
            cls,
            port_index=data[3],
            dev_func=data[4],
            bus=data[5],
            segment=data[6],
            max_port_index=data[7],
            capability=capability,
            control=control,
            link_blocks=links,
            selective_blocks=tuple(selective),
            trailing=data[pos:],
        )


def _slot_fields(
    data: bytes, cls: type[_Message], size: int, strict: bool
) -> tuple[bytes, dict[str, Any]]:
    """Bytes 0..7 shared by KEY_PROG, KP_ACK and the K_SET messages (byte 5 left to them)."""
    data = _open(data, cls, size)
    _reserved_zero(f"{cls.OBJECT_ID.name} bytes 2-3", data[2] | data[3], strict)
    fields = {
        "stream_id": data[4],
        "slot": KeySlot.decode(data[6], strict=strict),
        "port_index": data[7],
    }
    return data, fields


@dataclass(frozen=True, kw_only=True)
class _StreamSlotMessage(_Message):
    """The 8-byte layout shared by KP_ACK, K_SET_GO, K_SET_STOP and K_GOSTOP_ACK.

    Wire layout::

        | 00h | ObjectID | reserved | reserved |
        | StreamID | byte5 | KeySubStream | PortIndex |     byte5: KP_ACK Status, else reserved
    """

    stream_id: int
    slot: KeySlot
    port_index: int = 0

    def __post_init__(self) -> None:
        _uint("stream_id", self.stream_id, 8)
        _uint("port_index", self.port_index, 8)
        if not isinstance(self.slot, KeySlot):
            raise LocalProtocolError("slot must be a KeySlot")

    def _byte5(self) -> int:
        return 0

    def encode(self) -> bytes:
        return self._head() + bytes(
            (0, 0, self.stream_id, self._byte5(), self.slot.encode(), self.port_index)
        )

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        data, fields = _slot_fields(data, cls, _HEADER_SIZE, strict)
        _reserved_zero(f"{cls.OBJECT_ID.name} byte 5", data[5], strict)
        return _build(cls, **fields)


@dataclass(frozen=True, kw_only=True)
class KeyProg(_Message):
    """KEY_PROG (Figure 6-58): program one key slot with a key and IFV.

    Wire layout, 48 bytes::

        | 00h | ObjectID 02h | reserved | reserved |
        | StreamID | reserved | KeySubStream | PortIndex |
        | Key: 8 DWs, k[0..3] in the first DW (bits 31:24 = k[0])  |   bytes 8..39
        | IFV[63:32] | IFV[31:0]                                    |   bytes 40..47

    ``key`` is the AES key in OpenSSL order; see :func:`key_to_wire`.  It never appears in a
    repr.
    """

    OBJECT_ID = ObjectId.KEY_PROG
    IS_REQUEST = True

    stream_id: int
    slot: KeySlot
    key: bytes = field(repr=False)
    ifv: int = 1  # the spec requires 1 at stream establishment and at each key refresh
    port_index: int = 0

    def __post_init__(self) -> None:
        _uint("stream_id", self.stream_id, 8)
        _uint("port_index", self.port_index, 8)
        _uint("ifv", self.ifv, 64)
        if not isinstance(self.slot, KeySlot):
            raise LocalProtocolError("slot must be a KeySlot")
        if not isinstance(self.key, bytes | bytearray) or len(self.key) != KEY_SIZE:
            raise LocalProtocolError(f"key must be {KEY_SIZE} bytes")

    def encode(self) -> bytes:
        head = self._head() + bytes((0, 0, self.stream_id, 0, self.slot.encode(), self.port_index))
        return head + key_to_wire(self.key) + ifv_to_wire(self.ifv)

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        data, fields = _slot_fields(data, cls, _KEY_PROG_SIZE, strict)
        _reserved_zero("KEY_PROG byte 5", data[5], strict)
        return _build(
            cls,
            key=key_from_wire(data[8:40]),
            ifv=ifv_from_wire(data[40:48]),
            **fields,
        )


@dataclass(frozen=True, kw_only=True)
class KpAck(_StreamSlotMessage):
    """KP_ACK (Figure 6-59): the KEY_PROG fields echoed, byte 5 = Status."""

    OBJECT_ID = ObjectId.KP_ACK
    IS_REQUEST = False

    status: int = KpAckStatus.SUCCESS

    def __post_init__(self) -> None:
        super().__post_init__()
        _uint("status", self.status, 8)

    @property
    def outcome(self) -> KpAckStatus:
        """The status as the requester must act on it: reserved values are 04h [§6.33.3]."""
        try:
            return KpAckStatus(self.status)
        except ValueError:
            return KpAckStatus.UNSPECIFIED_FAILURE

    def _byte5(self) -> int:
        return self.status

    @classmethod
    def decode(cls, data: bytes, *, strict: bool = True) -> Self:
        data, fields = _slot_fields(data, cls, _HEADER_SIZE, strict)
        return _build(cls, status=_known(KpAckStatus, data[5]), **fields)


@dataclass(frozen=True, kw_only=True)
class KSetGo(_StreamSlotMessage):
    """K_SET_GO (Figure 6-60): start using the key set of ``slot``."""

    OBJECT_ID = ObjectId.K_SET_GO
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class KSetStop(_StreamSlotMessage):
    """K_SET_STOP (Figure 6-61): invalidate the key set of ``slot``."""

    OBJECT_ID = ObjectId.K_SET_STOP
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class KGostopAck(_StreamSlotMessage):
    """K_GOSTOP_ACK (Figure 6-62): the K_SET_GO/K_SET_STOP fields echoed."""

    OBJECT_ID = ObjectId.K_GOSTOP_ACK
    IS_REQUEST = False


IdeKmMessage: TypeAlias = Query | QueryResp | KeyProg | KpAck | KSetGo | KSetStop | KGostopAck

_BY_OBJECT_ID: dict[int, type[IdeKmMessage]] = {
    ObjectId.QUERY: Query,
    ObjectId.QUERY_RESP: QueryResp,
    ObjectId.KEY_PROG: KeyProg,
    ObjectId.KP_ACK: KpAck,
    ObjectId.K_SET_GO: KSetGo,
    ObjectId.K_SET_STOP: KSetStop,
    ObjectId.K_GOSTOP_ACK: KGostopAck,
}


def decode(payload: bytes, *, strict: bool = True) -> IdeKmMessage:
    """Decode an IDE_KM vendor payload (byte 0 = Protocol ID) by its Object ID."""
    payload = bytes(payload)
    if len(payload) < 2:
        raise IdeKmDecodeError(f"IDE_KM message of {len(payload)} bytes")
    cls = _BY_OBJECT_ID.get(payload[1])
    if cls is None:
        raise IdeKmDecodeError(f"Object ID {payload[1]:#04x} is not an IDE_KM message")
    return cls.decode(payload, strict=strict)


def from_vendor_defined(
    message: VendorDefinedRequest | VendorDefinedResponse, *, strict: bool = True
) -> IdeKmMessage:
    """The IDE_KM message a PCI-SIG VENDOR_DEFINED message carries."""
    if message.standard_id != PCI_SIG_STANDARD_ID or message.vendor_id != (
        PCI_SIG_VENDOR_ID.to_bytes(2, "little")
    ):
        raise IdeKmDecodeError("not a PCI-SIG VENDOR_DEFINED message")
    decoded = decode(message.payload, strict=strict)
    if decoded.IS_REQUEST != isinstance(message, VendorDefinedRequest):
        raise IdeKmDecodeError(
            f"{decoded.OBJECT_ID.name} in a VENDOR_DEFINED_"
            f"{'REQUEST' if isinstance(message, VendorDefinedRequest) else 'RESPONSE'}"
        )
    return decoded


def _build(cls: Any, **fields: Any) -> Any:
    """Construct a decoded object; a value the constructor refuses is the peer's fault."""
    return _build_with(cls, IdeKmDecodeError, cls.__name__, **fields)
