"""SPDM messages (DSP0274 1.2, with the 1.3 fields that cost little): bytes in, typed messages out.

Sans-IO: no transport, no crypto.  Signatures, hashes, DHE public keys and verify data are opaque
byte strings whose lengths come from the negotiated algorithms; a decoder that meets one is told
the length (``hash_size=``, ``signature_size=`` ...) or takes it from a :class:`NegotiatedSizes`.

Every message is a frozen dataclass with ``version`` and its fields, ``encode() -> bytes`` and a
``decode(bytes, ...) -> Self`` classmethod.  Every message starts with the 4-byte header
(DSP0274 1.2, "Generic SPDM message format")::

     byte 0        1                    2         3
    +-------------+--------------------+---------+---------+
    | SPDMVersion | RequestResponseCode| Param1  | Param2  |
    +-------------+--------------------+---------+---------+

Conventions (DSP0274 1.2, "Conventions" and "Reserved and unassigned values"):

- Multi-byte integers are little-endian; blobs (nonces, hashes, signatures) are carried as given.
- Reserved fields are written as zero and *ignored when read*.  Decoders therefore accept set
  reserved bits and drop them, and re-encoding a decoded message may differ from the bytes
  received: transcripts must be built from the received bytes, never from a re-encoding.
- What the spec does make a receiver check is checked: reserved *values* of defined fields
  (MEAS_CAP = 11b, KEY_UPDATE operation 0, FixedAlgCount other than 2, ...), every length and
  count (too short, too long, trailing bytes after a fixed layout) and the range rules
  (DataTransferSize >= 42, OpaqueLength <= 1024, ...).

Errors: bytes from the peer that break the layout raise :class:`SpdmDecodeError` (a
:class:`~hil.errors.PeerProtocolError`) carrying the ``ErrorCode`` a responder should answer with;
asking this side to build something illegal raises :class:`~hil.errors.LocalProtocolError`.
Nothing else escapes a decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Self, TypeVar

from ..errors import LocalProtocolError, PeerProtocolError

__all__ = [
    "HEADER_SIZE",
    "MAX_OPAQUE_SIZE",
    "MEASUREMENT_OP_ALL",
    "MEASUREMENT_OP_COUNT",
    "MIN_DATA_TRANSFER_SIZE",
    "NONCE_SIZE",
    "PCI_SIG_STANDARD_ID",
    "PCI_SIG_VENDOR_ID",
    "PUBLIC_KEY_SLOT",
    "RANDOM_DATA_SIZE",
    "REQUESTER_CONTEXT_SIZE",
    "AeadSuite",
    "AlgStruct",
    "AlgType",
    "Algorithms",
    "BaseAsymAlgo",
    "BaseHashAlgo",
    "CapFlag",
    "Capabilities",
    "CertChain",
    "Certificate",
    "Challenge",
    "ChallengeAuth",
    "DeliverEncapsulatedResponse",
    "DheGroup",
    "Digests",
    "DmtfMeasurementType",
    "EncapPayloadType",
    "EncapsulatedRequest",
    "EncapsulatedResponseAck",
    "EndSession",
    "EndSessionAck",
    "ErrorCode",
    "ErrorResponse",
    "Finish",
    "FinishRsp",
    "GetCapabilities",
    "GetCertificate",
    "GetDigests",
    "GetEncapsulatedRequest",
    "GetMeasurements",
    "GetVersion",
    "Heartbeat",
    "HeartbeatAck",
    "KeyExchange",
    "KeyExchangeRsp",
    "KeySchedule",
    "KeyUpdate",
    "KeyUpdateAck",
    "KeyUpdateOp",
    "MeasurementBlock",
    "MeasurementHashAlgo",
    "MeasurementSpec",
    "MeasurementSummaryHashType",
    "Measurements",
    "MutAuthRequest",
    "NegotiateAlgorithms",
    "NegotiatedSizes",
    "OpaqueDataFmt1",
    "OpaqueElement",
    "OpaqueSupportedVersions",
    "OpaqueVersionSelection",
    "OtherParams",
    "PciProtocolId",
    "ReqBaseAsymAlg",
    "Request",
    "RequestCode",
    "RespondIfReady",
    "Response",
    "ResponseCode",
    "ResponseNotReadyData",
    "SecuredMessageDataId",
    "SpdmDecodeError",
    "SpdmHeader",
    "SpdmVersion",
    "StandardId",
    "VendorDefinedRequest",
    "VendorDefinedResponse",
    "VersionNumberEntry",
    "VersionResponse",
    "decode_doe_padded",
    "decode_request",
    "decode_response",
    "dhe_size",
    "hash_size",
    "measurement_hash_size",
    "peek_header",
    "signature_size",
]

HEADER_SIZE = 4
NONCE_SIZE = 32
RANDOM_DATA_SIZE = 32
REQUESTER_CONTEXT_SIZE = 8  # 1.3
MAX_SLOTS = 8
MAX_OPAQUE_SIZE = 1024  # OpaqueLength limit for every message that carries opaque data
MIN_DATA_TRANSFER_SIZE = 42  # 1.2, "GET_CAPABILITIES request and CAPABILITIES response messages"
PUBLIC_KEY_SLOT = 0xFF  # SlotID meaning "the provisioned public key" (0xF in 4-bit slot fields)
MEASUREMENT_OP_COUNT = 0x00  # GET_MEASUREMENTS Param2: ask for the number of measurements
MEASUREMENT_OP_ALL = 0xFF  # GET_MEASUREMENTS Param2: ask for every measurement block
PCI_SIG_VENDOR_ID = 0x0001  # VendorID (Len = 2) under the PCI-SIG StandardID [PCIe §6.31]
_MAX_EXT_ALGS = {0x10: 8, 0x11: 20, 0x12: 20, 0x13: 20}
_MAX_NEGOTIATE_LENGTH = {0x10: 64, 0x11: 128, 0x12: 128, 0x13: 128}


# --------------------------------------------------------------------------------------------
# Codes and flags (DSP0274 1.2/1.3, "SPDM request codes", "SPDM response codes", ERROR,
# CAPABILITIES and ALGORITHMS tables)
# --------------------------------------------------------------------------------------------


class SpdmVersion(IntEnum):
    """The SPDMVersion header byte: major version in [7:4], minor in [3:0]."""

    V10 = 0x10
    V11 = 0x11
    V12 = 0x12
    V13 = 0x13

    @property
    def major(self) -> int:
        return int(self) >> 4

    @property
    def minor(self) -> int:
        return int(self) & 0xF

    @property
    def text(self) -> str:
        return f"{self.major}.{self.minor}"

    def entry(self) -> VersionNumberEntry:
        """This version as a VERSION response entry (update and alpha 0)."""
        return VersionNumberEntry(self.major, self.minor)


_KNOWN_VERSIONS = frozenset(int(v) for v in SpdmVersion)


def _vtext(version: int) -> str:
    return f"{version >> 4}.{version & 0xF}"


class RequestCode(IntEnum):
    GET_DIGESTS = 0x81
    GET_CERTIFICATE = 0x82
    CHALLENGE = 0x83
    GET_VERSION = 0x84
    CHUNK_SEND = 0x85  # 1.2
    CHUNK_GET = 0x86  # 1.2
    GET_ENDPOINT_INFO = 0x87  # 1.3
    GET_MEASUREMENTS = 0xE0
    GET_CAPABILITIES = 0xE1
    GET_SUPPORTED_EVENT_TYPES = 0xE2  # 1.3
    NEGOTIATE_ALGORITHMS = 0xE3
    KEY_EXCHANGE = 0xE4  # 1.1
    FINISH = 0xE5  # 1.1
    PSK_EXCHANGE = 0xE6  # 1.1
    PSK_FINISH = 0xE7  # 1.1
    HEARTBEAT = 0xE8  # 1.1
    KEY_UPDATE = 0xE9  # 1.1
    GET_ENCAPSULATED_REQUEST = 0xEA  # 1.1
    DELIVER_ENCAPSULATED_RESPONSE = 0xEB  # 1.1
    END_SESSION = 0xEC  # 1.1
    GET_CSR = 0xED  # 1.2
    SET_CERTIFICATE = 0xEE  # 1.2
    GET_MEASUREMENT_EXTENSION_LOG = 0xEF  # 1.3
    SUBSCRIBE_EVENT_TYPES = 0xF0  # 1.3
    SEND_EVENT = 0xF1  # 1.3
    GET_KEY_PAIR_INFO = 0xFC  # 1.3
    SET_KEY_PAIR_INFO = 0xFD  # 1.3
    VENDOR_DEFINED_REQUEST = 0xFE
    RESPOND_IF_READY = 0xFF


class ResponseCode(IntEnum):
    DIGESTS = 0x01
    CERTIFICATE = 0x02
    CHALLENGE_AUTH = 0x03
    VERSION = 0x04
    CHUNK_SEND_ACK = 0x05  # 1.2
    CHUNK_RESPONSE = 0x06  # 1.2
    ENDPOINT_INFO = 0x07  # 1.3
    MEASUREMENTS = 0x60
    CAPABILITIES = 0x61
    SUPPORTED_EVENT_TYPES = 0x62  # 1.3
    ALGORITHMS = 0x63
    KEY_EXCHANGE_RSP = 0x64  # 1.1
    FINISH_RSP = 0x65  # 1.1
    PSK_EXCHANGE_RSP = 0x66  # 1.1
    PSK_FINISH_RSP = 0x67  # 1.1
    HEARTBEAT_ACK = 0x68  # 1.1
    KEY_UPDATE_ACK = 0x69  # 1.1
    ENCAPSULATED_REQUEST = 0x6A  # 1.1
    ENCAPSULATED_RESPONSE_ACK = 0x6B  # 1.1
    END_SESSION_ACK = 0x6C  # 1.1
    CSR = 0x6D  # 1.2
    SET_CERTIFICATE_RSP = 0x6E  # 1.2
    MEASUREMENT_EXTENSION_LOG = 0x6F  # 1.3
    SUBSCRIBE_EVENT_TYPES_ACK = 0x70  # 1.3
    EVENT_ACK = 0x71  # 1.3
    KEY_PAIR_INFO = 0x7C  # 1.3
    SET_KEY_PAIR_INFO_ACK = 0x7D  # 1.3
    VENDOR_DEFINED_RESPONSE = 0x7E
    ERROR = 0x7F


class ErrorCode(IntEnum):
    """ERROR Param1 (DSP0274 1.3, "ERROR response message")."""

    INVALID_REQUEST = 0x01
    INVALID_SESSION = 0x02  # 1.1 only; deprecated in 1.2
    BUSY = 0x03
    UNEXPECTED_REQUEST = 0x04
    UNSPECIFIED = 0x05
    DECRYPT_ERROR = 0x06
    UNSUPPORTED_REQUEST = 0x07
    REQUEST_IN_FLIGHT = 0x08
    INVALID_RESPONSE_CODE = 0x09
    SESSION_LIMIT_EXCEEDED = 0x0A
    SESSION_REQUIRED = 0x0B
    RESET_REQUIRED = 0x0C
    RESPONSE_TOO_LARGE = 0x0D
    REQUEST_TOO_LARGE = 0x0E
    LARGE_RESPONSE = 0x0F
    MESSAGE_LOST = 0x10
    INVALID_POLICY = 0x11  # 1.3
    VERSION_MISMATCH = 0x41
    RESPONSE_NOT_READY = 0x42
    REQUEST_RESYNCH = 0x43
    OPERATION_FAILED = 0x44  # 1.3
    NO_PENDING_REQUESTS = 0x45  # 1.3
    VENDOR_DEFINED = 0xFF


class CapFlag(IntFlag):
    """CAPABILITIES / GET_CAPABILITIES Flags (DSP0274 1.3, CAPABILITIES flag tables).

    Two-bit fields take two members: MEAS_CAP is MEAS_NO_SIG (01b) or MEAS_SIG (10b), PSK_CAP is
    PSK (01b) or PSK_WITH_CONTEXT (10b, responders only), EP_INFO_CAP and MULTI_KEY_CAP likewise.
    """

    CACHE = 1 << 0
    CERT = 1 << 1
    CHAL = 1 << 2
    MEAS_NO_SIG = 1 << 3
    MEAS_SIG = 1 << 4
    MEAS_FRESH = 1 << 5
    ENCRYPT = 1 << 6  # 1.1
    MAC = 1 << 7
    MUT_AUTH = 1 << 8
    KEY_EX = 1 << 9
    PSK = 1 << 10
    PSK_WITH_CONTEXT = 1 << 11
    ENCAP = 1 << 12
    HBEAT = 1 << 13
    KEY_UPD = 1 << 14
    HANDSHAKE_IN_THE_CLEAR = 1 << 15
    PUB_KEY_ID = 1 << 16
    CHUNK = 1 << 17  # 1.2
    ALIAS_CERT = 1 << 18
    SET_CERT = 1 << 19
    CSR = 1 << 20
    CERT_INSTALL_RESET = 1 << 21
    EP_INFO_NO_SIG = 1 << 22  # 1.3
    EP_INFO_SIG = 1 << 23
    MEL = 1 << 24
    EVENT = 1 << 25
    MULTI_KEY_ONLY = 1 << 26
    MULTI_KEY_NEG = 1 << 27
    GET_KEY_PAIR_INFO = 1 << 28
    SET_KEY_PAIR_INFO = 1 << 29


_MEAS_CAP = CapFlag.MEAS_NO_SIG | CapFlag.MEAS_SIG
_PSK_CAP = CapFlag.PSK | CapFlag.PSK_WITH_CONTEXT
_EP_INFO_CAP = CapFlag.EP_INFO_NO_SIG | CapFlag.EP_INFO_SIG
_MULTI_KEY_CAP = CapFlag.MULTI_KEY_ONLY | CapFlag.MULTI_KEY_NEG

# Bits each side may set, per version; the rest are reserved (written 0, ignored when read).
_RESPONDER_FLAGS = {0x10: 0x3F, 0x11: 0x1FFFF, 0x12: 0x3FFFFF, 0x13: 0x3FFFFFFF}
_REQUESTER_FLAGS_11 = (
    CapFlag.CERT
    | CapFlag.CHAL
    | CapFlag.ENCRYPT
    | CapFlag.MAC
    | CapFlag.MUT_AUTH
    | CapFlag.KEY_EX
    | _PSK_CAP
    | CapFlag.ENCAP
    | CapFlag.HBEAT
    | CapFlag.KEY_UPD
    | CapFlag.HANDSHAKE_IN_THE_CLEAR
    | CapFlag.PUB_KEY_ID
)
_REQUESTER_FLAGS = {
    0x10: 0,
    0x11: int(_REQUESTER_FLAGS_11),
    0x12: int(_REQUESTER_FLAGS_11 | CapFlag.CHUNK),
    0x13: int(_REQUESTER_FLAGS_11 | CapFlag.CHUNK | _EP_INFO_CAP | CapFlag.EVENT | _MULTI_KEY_CAP),
}


class BaseAsymAlgo(IntFlag):
    """BaseAsymAlgo / BaseAsymSel, and the ReqBaseAsymAlg AlgStruct (same bits)."""

    RSASSA_2048 = 0x001
    RSAPSS_2048 = 0x002
    RSASSA_3072 = 0x004
    RSAPSS_3072 = 0x008
    ECDSA_P256 = 0x010
    RSASSA_4096 = 0x020
    RSAPSS_4096 = 0x040
    ECDSA_P384 = 0x080
    ECDSA_P521 = 0x100
    SM2_P256 = 0x200  # 1.2
    EDDSA_ED25519 = 0x400  # 1.2
    EDDSA_ED448 = 0x800  # 1.2


ReqBaseAsymAlg = BaseAsymAlgo


class BaseHashAlgo(IntFlag):
    SHA_256 = 0x01
    SHA_384 = 0x02
    SHA_512 = 0x04
    SHA3_256 = 0x08
    SHA3_384 = 0x10
    SHA3_512 = 0x20
    SM3_256 = 0x40  # 1.2


class MeasurementHashAlgo(IntFlag):
    RAW_BIT_STREAM_ONLY = 0x01
    SHA_256 = 0x02
    SHA_384 = 0x04
    SHA_512 = 0x08
    SHA3_256 = 0x10
    SHA3_384 = 0x20
    SHA3_512 = 0x40
    SM3_256 = 0x80  # 1.2


class DheGroup(IntFlag):
    FFDHE_2048 = 0x01
    FFDHE_3072 = 0x02
    FFDHE_4096 = 0x04
    SECP256R1 = 0x08
    SECP384R1 = 0x10
    SECP521R1 = 0x20
    SM2_P256 = 0x40  # 1.2


class AeadSuite(IntFlag):
    AES_128_GCM = 0x01
    AES_256_GCM = 0x02
    CHACHA20_POLY1305 = 0x04
    SM4_GCM = 0x08  # 1.2


class KeySchedule(IntFlag):
    SPDM = 0x01


class AlgType(IntEnum):
    """AlgType of an AlgStruct table (NEGOTIATE_ALGORITHMS / ALGORITHMS, 1.1+)."""

    DHE = 2
    AEAD = 3
    REQ_BASE_ASYM_ALG = 4
    KEY_SCHEDULE = 5


class MeasurementSpec(IntFlag):
    DMTF = 0x01


class OtherParams(IntFlag):
    """OtherParamsSupport / OtherParamsSelection (1.2+): opaque data format and 1.3 MultiKeyConn."""

    OPAQUE_FMT0 = 0x01
    OPAQUE_FMT1 = 0x02
    MULTI_KEY_CONN = 0x10  # 1.3


_OTHER_PARAMS_MASK = {0x10: 0, 0x11: 0, 0x12: 0x0F, 0x13: 0x1F}
_OPAQUE_FORMAT_MASK = 0x0F

_ALG_FLAGS: dict[int, type[IntFlag]] = {
    AlgType.DHE: DheGroup,
    AlgType.AEAD: AeadSuite,
    AlgType.REQ_BASE_ASYM_ALG: BaseAsymAlgo,
    AlgType.KEY_SCHEDULE: KeySchedule,
}


def _all_bits(flag: type[IntFlag]) -> int:
    out = 0
    for member in flag:
        out |= int(member)
    return out


class StandardId(IntEnum):
    """Registry IDs: VENDOR_DEFINED StandardID, ExtAlg RegistryID, opaque element ID."""

    DMTF = 0x0
    TCG = 0x1
    USB = 0x2
    PCI_SIG = 0x3
    IANA = 0x4
    HDBASET = 0x5
    MIPI = 0x6
    CXL = 0x7
    JEDEC = 0x8
    VESA = 0x9
    IANA_CBOR = 0xA


PCI_SIG_STANDARD_ID = StandardId.PCI_SIG


class PciProtocolId(IntEnum):
    """First payload byte of a PCI-SIG VENDOR_DEFINED message [PCIe §6.31.3, §11]."""

    IDE_KM = 0x00
    TDISP = 0x01


class MeasurementSummaryHashType(IntEnum):
    """CHALLENGE Param2 / KEY_EXCHANGE Param1."""

    NONE = 0x00
    TCB = 0x01
    ALL = 0xFF


class DmtfMeasurementType(IntEnum):
    """DMTFSpecMeasurementValueType[6:0]; bit 7 says raw bit stream rather than digest."""

    IMMUTABLE_ROM = 0
    MUTABLE_FIRMWARE = 1
    HARDWARE_CONFIG = 2
    FIRMWARE_CONFIG = 3
    MEASUREMENT_MANIFEST = 4
    DEVICE_MODE = 5  # 1.2
    VERSION = 6  # 1.2
    SECURE_VERSION_NUMBER = 7  # 1.2
    HASH_EXTEND_MEASUREMENT = 8  # 1.3
    INFORMATIONAL = 9  # 1.3
    STRUCTURED_MANIFEST = 10  # 1.3


class KeyUpdateOp(IntEnum):
    UPDATE_KEY = 1
    UPDATE_ALL_KEYS = 2
    VERIFY_NEW_KEY = 3


class MutAuthRequest(IntFlag):
    """KEY_EXCHANGE_RSP MutAuthRequested: at most one of these is set."""

    REQUESTED = 0x01
    WITH_ENCAP_REQUEST = 0x02
    WITH_GET_DIGESTS = 0x04


class SecuredMessageDataId(IntEnum):
    """SMDataID of the DMTF secured-message opaque element (DSP0277 versions)."""

    VERSION_SELECTION = 0
    SUPPORTED_VERSIONS = 1


# --------------------------------------------------------------------------------------------
# Algorithm sizes
# --------------------------------------------------------------------------------------------

_HASH_SIZES = {
    BaseHashAlgo.SHA_256: 32,
    BaseHashAlgo.SHA_384: 48,
    BaseHashAlgo.SHA_512: 64,
    BaseHashAlgo.SHA3_256: 32,
    BaseHashAlgo.SHA3_384: 48,
    BaseHashAlgo.SHA3_512: 64,
    BaseHashAlgo.SM3_256: 32,
}
_MEAS_HASH_SIZES = {
    MeasurementHashAlgo.RAW_BIT_STREAM_ONLY: 0,
    MeasurementHashAlgo.SHA_256: 32,
    MeasurementHashAlgo.SHA_384: 48,
    MeasurementHashAlgo.SHA_512: 64,
    MeasurementHashAlgo.SHA3_256: 32,
    MeasurementHashAlgo.SHA3_384: 48,
    MeasurementHashAlgo.SHA3_512: 64,
    MeasurementHashAlgo.SM3_256: 32,
}
_SIGNATURE_SIZES = {
    BaseAsymAlgo.RSASSA_2048: 256,
    BaseAsymAlgo.RSAPSS_2048: 256,
    BaseAsymAlgo.RSASSA_3072: 384,
    BaseAsymAlgo.RSAPSS_3072: 384,
    BaseAsymAlgo.ECDSA_P256: 64,  # r || s
    BaseAsymAlgo.RSASSA_4096: 512,
    BaseAsymAlgo.RSAPSS_4096: 512,
    BaseAsymAlgo.ECDSA_P384: 96,
    BaseAsymAlgo.ECDSA_P521: 132,
    BaseAsymAlgo.SM2_P256: 64,
    BaseAsymAlgo.EDDSA_ED25519: 64,
    BaseAsymAlgo.EDDSA_ED448: 114,
}
_DHE_SIZES = {
    DheGroup.FFDHE_2048: 256,
    DheGroup.FFDHE_3072: 384,
    DheGroup.FFDHE_4096: 512,
    DheGroup.SECP256R1: 64,  # X || Y
    DheGroup.SECP384R1: 96,
    DheGroup.SECP521R1: 132,
    DheGroup.SM2_P256: 64,
}


def _size_of(table: dict[Any, int], algo: int, what: str) -> int:
    try:
        return table[algo]
    except KeyError:
        raise LocalProtocolError(
            f"{what} {int(algo):#x} is not exactly one known algorithm"
        ) from None


def hash_size(algo: int) -> int:
    """Digest length H in bytes of one BaseHashAlgo bit."""
    return _size_of(_HASH_SIZES, algo, "BaseHashAlgo")


def measurement_hash_size(algo: int) -> int:
    """Digest length of one MeasurementHashAlgo bit (0 for raw bit streams only)."""
    return _size_of(_MEAS_HASH_SIZES, algo, "MeasurementHashAlgo")


def signature_size(algo: int) -> int:
    """Signature length S in bytes of one BaseAsymAlgo (or ReqBaseAsymAlg) bit."""
    return _size_of(_SIGNATURE_SIZES, algo, "BaseAsymAlgo")


def dhe_size(group: int) -> int:
    """ExchangeData length D in bytes of one DHE group bit."""
    return _size_of(_DHE_SIZES, group, "DHE group")


# --------------------------------------------------------------------------------------------
# Errors, reading and checking
# --------------------------------------------------------------------------------------------


class SpdmDecodeError(PeerProtocolError):
    """Bytes from the peer are not a valid SPDM message.

    ``error_code`` and ``error_data`` are what a responder answers in ERROR Param1/Param2:

    - VERSION_MISMATCH: a version byte this codec does not know, one the message cannot carry
      (GET_VERSION not 1.0, KEY_EXCHANGE in 1.0), or not the negotiated one;
    - UNSUPPORTED_REQUEST (data = the code): a request code this codec does not model;
    - UNEXPECTED_REQUEST: a message whose layout needs sizes that are not negotiated yet;
    - INVALID_RESPONSE_CODE: a response code this codec does not model;
    - INVALID_REQUEST: everything else (lengths, counts, reserved values, ranges).

    A requester decoding a response has nobody to answer and only reads the message.
    """

    def __init__(
        self,
        message: str,
        error_code: ErrorCode = ErrorCode.INVALID_REQUEST,
        error_data: int = 0,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.error_data = error_data

    def error_response(self, version: int) -> ErrorResponse:
        """The ERROR a responder sends back for this failure."""
        return ErrorResponse(
            version=version, error_code=self.error_code, error_data=self.error_data
        )


class _Reader:
    """Cursor over a received message; every shortfall is the peer's error."""

    def __init__(self, data: bytes, what: str, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, field: str) -> bytes:
        if n > self.remaining():
            raise SpdmDecodeError(
                f"{self.what}: truncated in {field}: {n} bytes needed at offset {self.pos}, "
                f"{self.remaining()} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def u24(self, field: str) -> int:
        return int.from_bytes(self.take(3, field), "little")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def end(self) -> None:
        if self.remaining():
            raise SpdmDecodeError(
                f"{self.what}: {self.remaining()} trailing bytes after the layout ends at "
                f"offset {self.pos} (message is {len(self.data)} bytes)"
            )


def _u16(v: int) -> bytes:
    return v.to_bytes(2, "little")


def _u24(v: int) -> bytes:
    return v.to_bytes(3, "little")


def _u32(v: int) -> bytes:
    return v.to_bytes(4, "little")


def _uint(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise LocalProtocolError(f"{name} = {value!r} is not a {bits}-bit unsigned value")


def _blob(name: str, value: bytes, size: int | None = None, *, max_size: int = 0xFFFF) -> None:
    if not isinstance(value, bytes | bytearray):
        raise LocalProtocolError(f"{name} must be bytes, not {type(value).__name__}")
    if size is not None and len(value) != size:
        raise LocalProtocolError(f"{name} is {len(value)} bytes, must be {size}")
    if len(value) > max_size:
        raise LocalProtocolError(f"{name} is {len(value)} bytes, more than {max_size}")


def _nonempty(name: str, value: bytes) -> None:
    _blob(name, value)
    if not value:
        raise LocalProtocolError(f"{name} must not be empty")


def _opaque(value: bytes) -> None:
    _blob("opaque_data", value, max_size=MAX_OPAQUE_SIZE)


def _context(version: int, value: bytes) -> None:
    """RequesterContext: 8 bytes from 1.3 on, absent before."""
    if version >= SpdmVersion.V13:
        _blob("requester_context", value, REQUESTER_CONTEXT_SIZE)
    elif value:
        raise LocalProtocolError(f"requester_context does not exist before SPDM 1.3 ({value!r})")


def _only_from(version: int, minimum: int, name: str, value: object) -> None:
    if version < minimum and value:
        raise LocalProtocolError(f"{name} does not exist before SPDM {_vtext(minimum)}")


def _slot(name: str, value: int, *, extra: int | None = None) -> None:
    if not (isinstance(value, int) and (0 <= value < MAX_SLOTS or value == extra)):
        allowed = "0..7" if extra is None else f"0..7 or {extra:#x}"
        raise LocalProtocolError(f"{name} = {value!r} is not a slot ({allowed})")


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise LocalProtocolError(f"{name} = {value!r}: a decoder needs a positive size")


def _one_bit_at_most(name: str, value: int) -> None:
    if value & (value - 1):
        raise LocalProtocolError(f"{name} {value:#x} selects more than one algorithm")


def _enum(enum: type[IntEnum], value: int, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise SpdmDecodeError(f"{what} {value:#x} is a reserved value") from None


_M = TypeVar("_M", bound="_Message")


def _build(cls: type[_M], **fields: Any) -> _M:
    """Construct a decoded message; a value the constructor refuses is the peer's fault."""
    try:
        return cls(**fields)
    except LocalProtocolError as exc:
        raise SpdmDecodeError(f"{cls.NAME}: {exc}") from None


def _known(enum: type[IntEnum], value: int) -> int:
    """``value`` as a member of ``enum`` when it is one (nicer reprs), else the plain int."""
    try:
        return enum(value)
    except ValueError:
        return value


# --------------------------------------------------------------------------------------------
# Header and version entries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class VersionNumberEntry:
    """A VERSION entry (also DSP0277 secured-message versions): u16 ``0x1200`` is 1.2.0.0.

    Bits [15:12] major, [11:8] minor, [7:4] update, [3:0] alpha.
    """

    major: int
    minor: int
    update: int = 0
    alpha: int = 0

    def __post_init__(self) -> None:
        for name in ("major", "minor", "update", "alpha"):
            _uint(name, getattr(self, name), 4)

    @property
    def version(self) -> int:
        """The SPDMVersion byte this entry names (``0x12`` for 1.2.x)."""
        return (self.major << 4) | self.minor

    def to_int(self) -> int:
        return (self.major << 12) | (self.minor << 8) | (self.update << 4) | self.alpha

    @classmethod
    def from_int(cls, value: int) -> Self:
        _uint("version number entry", value, 16)
        return cls(value >> 12, (value >> 8) & 0xF, (value >> 4) & 0xF, value & 0xF)


@dataclass(frozen=True)
class SpdmHeader:
    """The 4 bytes every SPDM message starts with (see the module docstring)."""

    version: int
    code: int
    param1: int = 0
    param2: int = 0

    def __post_init__(self) -> None:
        if self.version not in _KNOWN_VERSIONS:
            raise LocalProtocolError(f"SPDM version {self.version!r} is not one of 1.0..1.3")
        for name in ("code", "param1", "param2"):
            _uint(name, getattr(self, name), 8)

    def encode(self) -> bytes:
        return bytes((self.version, self.code, self.param1, self.param2))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode exactly 4 bytes; use :func:`peek_header` for the start of a longer message."""
        hdr = peek_header(data)
        if len(data) != HEADER_SIZE:
            raise SpdmDecodeError(f"SPDM header is 4 bytes, got {len(data)}")
        return cls(hdr.version, hdr.code, hdr.param1, hdr.param2)


def peek_header(data: bytes) -> SpdmHeader:
    """The header of a message (which may be longer); checks only that the version is known."""
    if len(data) < HEADER_SIZE:
        raise SpdmDecodeError(f"{len(data)} bytes cannot hold the 4-byte SPDM header")
    version, code, p1, p2 = data[0], data[1], data[2], data[3]
    if version not in _KNOWN_VERSIONS:
        raise SpdmDecodeError(
            f"SPDMVersion {version:#04x} is not one of 1.0..1.3", ErrorCode.VERSION_MISMATCH
        )
    return SpdmHeader(SpdmVersion(version), code, p1, p2)


# --------------------------------------------------------------------------------------------
# Message base
# --------------------------------------------------------------------------------------------


class _Message:
    """Shared behaviour: version checks on construction, header writing, header opening."""

    CODE: ClassVar[int]
    NAME: ClassVar[str]
    IS_REQUEST: ClassVar[bool]
    MIN_VERSION: ClassVar[int] = SpdmVersion.V10
    FIXED_VERSION: ClassVar[int | None] = None
    version: int

    def __post_init__(self) -> None:
        v = self.version
        if v not in _KNOWN_VERSIONS:
            raise LocalProtocolError(f"{self.NAME}: SPDM version {v!r} is not one of 1.0..1.3")
        if self.FIXED_VERSION is not None and v != self.FIXED_VERSION:
            raise LocalProtocolError(f"{self.NAME} always carries version {self.FIXED_VERSION:#x}")
        if v < self.MIN_VERSION:
            raise LocalProtocolError(
                f"{self.NAME} does not exist before SPDM {_vtext(self.MIN_VERSION)}"
            )
        self._validate()

    def _validate(self) -> None:
        """Field checks; raise LocalProtocolError."""

    def _header(self, param1: int = 0, param2: int = 0) -> bytes:
        return bytes((self.version, self.CODE, param1, param2))

    @classmethod
    def _open(cls, data: bytes) -> tuple[SpdmHeader, _Reader]:
        data = bytes(data)
        hdr = peek_header(data)
        if hdr.code != cls.CODE:
            raise SpdmDecodeError(
                f"expected {cls.NAME} ({cls.CODE:#04x}), got code {hdr.code:#04x}",
                ErrorCode.UNEXPECTED_REQUEST if cls.IS_REQUEST else ErrorCode.INVALID_RESPONSE_CODE,
            )
        if cls.FIXED_VERSION is not None and hdr.version != cls.FIXED_VERSION:
            raise SpdmDecodeError(
                f"{cls.NAME} carries SPDMVersion {hdr.version:#04x}, must be "
                f"{cls.FIXED_VERSION:#04x}",
                ErrorCode.VERSION_MISMATCH,
            )
        if hdr.version < cls.MIN_VERSION:
            raise SpdmDecodeError(
                f"{cls.NAME} does not exist in SPDM {_vtext(hdr.version)}",
                ErrorCode.VERSION_MISMATCH,
            )
        return hdr, _Reader(data, cls.NAME, HEADER_SIZE)


# --------------------------------------------------------------------------------------------
# Header-only messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Bare(_Message):
    """A message that is just the header, both params reserved."""

    version: int = SpdmVersion.V12

    def encode(self) -> bytes:
        return self._header()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        r.end()
        return _build(cls, version=hdr.version)


@dataclass(frozen=True, kw_only=True)
class GetVersion(_Bare):
    """GET_VERSION (DSP0274 1.2, "GET_VERSION request and VERSION response messages").

    Wire layout::

        +------+------+----------+----------+
        | 0x10 | 0x84 | reserved | reserved |   header only, version always 1.0
        +------+------+----------+----------+
    """

    CODE = RequestCode.GET_VERSION
    NAME = "GET_VERSION"
    IS_REQUEST = True
    FIXED_VERSION = SpdmVersion.V10
    version: int = SpdmVersion.V10


@dataclass(frozen=True, kw_only=True)
class GetDigests(_Bare):
    """GET_DIGESTS (DSP0274 1.2, "GET_DIGESTS request and DIGESTS response messages").

    Wire layout::

        +-----+------+----------+----------+
        | ver | 0x81 | reserved | reserved |   header only
        +-----+------+----------+----------+
    """

    CODE = RequestCode.GET_DIGESTS
    NAME = "GET_DIGESTS"
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class Heartbeat(_Bare):
    """HEARTBEAT (1.1+; DSP0274 1.2, "HEARTBEAT request and HEARTBEAT_ACK response messages").

    Wire layout::

        +-----+------+----------+----------+
        | ver | 0xE8 | reserved | reserved |   header only
        +-----+------+----------+----------+
    """

    CODE = RequestCode.HEARTBEAT
    NAME = "HEARTBEAT"
    IS_REQUEST = True
    MIN_VERSION = SpdmVersion.V11


@dataclass(frozen=True, kw_only=True)
class HeartbeatAck(_Bare):
    """HEARTBEAT_ACK (1.1+).

    Wire layout::

        +-----+------+----------+----------+
        | ver | 0x68 | reserved | reserved |   header only
        +-----+------+----------+----------+
    """

    CODE = ResponseCode.HEARTBEAT_ACK
    NAME = "HEARTBEAT_ACK"
    IS_REQUEST = False
    MIN_VERSION = SpdmVersion.V11


@dataclass(frozen=True, kw_only=True)
class EndSessionAck(_Bare):
    """END_SESSION_ACK (1.1+).

    Wire layout::

        +-----+------+----------+----------+
        | ver | 0x6C | reserved | reserved |   header only
        +-----+------+----------+----------+
    """

    CODE = ResponseCode.END_SESSION_ACK
    NAME = "END_SESSION_ACK"
    IS_REQUEST = False
    MIN_VERSION = SpdmVersion.V11


@dataclass(frozen=True, kw_only=True)
class EndSession(_Message):
    """END_SESSION (1.1+; DSP0274 1.2, "END_SESSION request and END_SESSION_ACK response").

    Wire layout::

        +-----+------+------------------+----------+
        | ver | 0xEC | Param1 (attrs)   | reserved |   header only
        +-----+------+------------------+----------+
        Param1 bit 0: the responder shall clear the negotiated state (NegotiatedStateClear)
    """

    CODE = RequestCode.END_SESSION
    NAME = "END_SESSION"
    IS_REQUEST = True
    MIN_VERSION = SpdmVersion.V11
    version: int = SpdmVersion.V12
    clear_negotiated_state: bool = False

    def encode(self) -> bytes:
        return self._header(int(bool(self.clear_negotiated_state)))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        r.end()
        return _build(cls, version=hdr.version, clear_negotiated_state=bool(hdr.param1 & 1))


@dataclass(frozen=True, kw_only=True)
class _KeyUpdateBase(_Message):
    MIN_VERSION = SpdmVersion.V11
    version: int = SpdmVersion.V12
    operation: int
    tag: int = 0

    def _validate(self) -> None:
        if self.operation not in KeyUpdateOp.__members__.values():
            raise LocalProtocolError(f"KEY_UPDATE operation {self.operation!r} is reserved")
        _uint("tag", self.tag, 8)

    def encode(self) -> bytes:
        return self._header(self.operation, self.tag)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        r.end()
        op = _enum(KeyUpdateOp, hdr.param1, f"{cls.NAME} operation")
        return _build(cls, version=hdr.version, operation=op, tag=hdr.param2)


@dataclass(frozen=True, kw_only=True)
class KeyUpdate(_KeyUpdateBase):
    """KEY_UPDATE (1.1+; DSP0274 1.2, "KEY_UPDATE request and KEY_UPDATE_ACK response").

    Wire layout::

        +-----+------+--------------------+-----+
        | ver | 0xE9 | KeyOperation (1-3) | Tag |   header only
        +-----+------+--------------------+-----+
        1 UpdateKey, 2 UpdateAllKeys, 3 VerifyNewKey; 0 and 4..255 reserved
    """

    CODE = RequestCode.KEY_UPDATE
    NAME = "KEY_UPDATE"
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class KeyUpdateAck(_KeyUpdateBase):
    """KEY_UPDATE_ACK (1.1+): echoes the request's operation and tag.

    Wire layout::

        +-----+------+--------------+-----+
        | ver | 0x69 | KeyOperation | Tag |
        +-----+------+--------------+-----+
    """

    CODE = ResponseCode.KEY_UPDATE_ACK
    NAME = "KEY_UPDATE_ACK"
    IS_REQUEST = False


@dataclass(frozen=True, kw_only=True)
class RespondIfReady(_Message):
    """RESPOND_IF_READY (DSP0274 1.2, "RESPOND_IF_READY request message format").

    Wire layout::

        +-----+------+-----------------------+-------+
        | ver | 0xFF | original RequestCode  | Token |   header only
        +-----+------+-----------------------+-------+
    """

    CODE = RequestCode.RESPOND_IF_READY
    NAME = "RESPOND_IF_READY"
    IS_REQUEST = True
    version: int = SpdmVersion.V12
    request_code: int
    token: int

    def _validate(self) -> None:
        _uint("request_code", self.request_code, 8)
        _uint("token", self.token, 8)

    def encode(self) -> bytes:
        return self._header(self.request_code, self.token)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        r.end()
        code = _known(RequestCode, hdr.param1)
        return _build(cls, version=hdr.version, request_code=code, token=hdr.param2)


# --------------------------------------------------------------------------------------------
# VERSION
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VersionResponse(_Message):
    """VERSION (DSP0274 1.2, "GET_VERSION request and VERSION response messages").

    Wire layout::

         byte 0          1          2          3
            +----------+----------+----------+----------+
          0 | 0x10     | 0x04     | reserved | reserved |
            +----------+----------+----------+----------+
          4 | reserved | Count N  | VersionNumberEntry[0] (u16)
            +----------+----------+---------------------+
          8 | VersionNumberEntry[1..N-1], 2 bytes each ...
            +-------------------------------------------+
        entry: [15:12] major  [11:8] minor  [7:4] update  [3:0] alpha;  N >= 1
    """

    CODE = ResponseCode.VERSION
    NAME = "VERSION"
    IS_REQUEST = False
    FIXED_VERSION = SpdmVersion.V10
    version: int = SpdmVersion.V10
    entries: tuple[VersionNumberEntry, ...]

    def _validate(self) -> None:
        if not 1 <= len(self.entries) <= 0xFF:
            raise LocalProtocolError(f"VERSION lists {len(self.entries)} entries, must be 1..255")
        for e in self.entries:
            if not isinstance(e, VersionNumberEntry):
                raise LocalProtocolError(f"VERSION entry {e!r} is not a VersionNumberEntry")

    def encode(self) -> bytes:
        body = bytes((0, len(self.entries))) + b"".join(_u16(e.to_int()) for e in self.entries)
        return self._header() + body

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        r.u8("Reserved")
        count = r.u8("VersionNumberEntryCount")
        if count == 0:
            raise SpdmDecodeError("VERSION: VersionNumberEntryCount is 0")
        entries = tuple(
            VersionNumberEntry.from_int(r.u16(f"VersionNumberEntry[{i}]")) for i in range(count)
        )
        r.end()
        return _build(cls, version=hdr.version, entries=entries)


# --------------------------------------------------------------------------------------------
# GET_CAPABILITIES / CAPABILITIES
# --------------------------------------------------------------------------------------------


def _cap_flags_problem(flags: int, version: int, requester: bool) -> str | None:
    """Why ``flags`` cannot be sent by this side in this version, or None."""
    allowed = (_REQUESTER_FLAGS if requester else _RESPONDER_FLAGS)[version]
    side = "a requester" if requester else "a responder"
    if flags & ~allowed:
        return f"flags {flags & ~allowed:#x} are not defined for {side} in SPDM {_vtext(version)}"
    if not requester and flags & _MEAS_CAP == _MEAS_CAP:
        return "MEAS_CAP = 11b is a reserved value"
    if flags & _PSK_CAP == _PSK_CAP or (requester and flags & CapFlag.PSK_WITH_CONTEXT):
        return f"PSK_CAP = {(flags >> 10) & 3:02b}b is a reserved value for {side}"
    if flags & _EP_INFO_CAP == _EP_INFO_CAP:
        return "EP_INFO_CAP = 11b is a reserved value"
    if flags & _MULTI_KEY_CAP == _MULTI_KEY_CAP:
        return "MULTI_KEY_CAP = 11b is a reserved value"
    return None


@dataclass(frozen=True, kw_only=True)
class _CapabilitiesBase(_Message):
    version: int = SpdmVersion.V12
    ct_exponent: int = 0
    flags: int = 0
    data_transfer_size: int = 0
    max_spdm_msg_size: int = 0

    def _has_body(self, version: int) -> bool:
        return version >= SpdmVersion.V11

    def _param1(self) -> int:
        return 0

    @classmethod
    def _param1_fields(cls, version: int, param1: int) -> dict[str, Any]:
        return {}

    def _validate(self) -> None:
        v = self.version
        _uint("ct_exponent", self.ct_exponent, 8)
        _uint("flags", self.flags, 32)
        _uint("data_transfer_size", self.data_transfer_size, 32)
        _uint("max_spdm_msg_size", self.max_spdm_msg_size, 32)
        if not self._has_body(v) and (self.ct_exponent or self.flags):
            raise LocalProtocolError(f"{self.NAME} 1.0 carries no CTExponent or Flags")
        problem = _cap_flags_problem(self.flags, v, self.IS_REQUEST)
        if problem:
            raise LocalProtocolError(f"{self.NAME}: {problem}")
        if v < SpdmVersion.V12:
            if self.data_transfer_size or self.max_spdm_msg_size:
                raise LocalProtocolError(
                    f"{self.NAME}: DataTransferSize/MaxSPDMmsgSize do not exist before SPDM 1.2"
                )
            return
        dts, mx = self.data_transfer_size, self.max_spdm_msg_size
        if dts < MIN_DATA_TRANSFER_SIZE:
            raise LocalProtocolError(f"DataTransferSize {dts} is below {MIN_DATA_TRANSFER_SIZE}")
        if mx < dts:
            raise LocalProtocolError(f"MaxSPDMmsgSize {mx} is below DataTransferSize {dts}")
        if not self.flags & CapFlag.CHUNK and mx != dts:
            raise LocalProtocolError(
                f"without CHUNK_CAP, MaxSPDMmsgSize ({mx}) must equal DataTransferSize ({dts})"
            )

    def encode(self) -> bytes:
        if not self._has_body(self.version):
            return self._header(self._param1())
        out = self._header(self._param1()) + bytes((0, self.ct_exponent, 0, 0)) + _u32(self.flags)
        if self.version >= SpdmVersion.V12:
            out += _u32(self.data_transfer_size) + _u32(self.max_spdm_msg_size)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        v = hdr.version
        fields: dict[str, Any] = cls._param1_fields(v, hdr.param1)
        if v >= SpdmVersion.V11 or not cls.IS_REQUEST:
            r.u8("Reserved")
            fields["ct_exponent"] = r.u8("CTExponent")
            r.take(2, "Reserved")
            raw = r.u32("Flags")
            mask = (_REQUESTER_FLAGS if cls.IS_REQUEST else _RESPONDER_FLAGS)[v]
            fields["flags"] = CapFlag(raw & mask)
        if v >= SpdmVersion.V12:
            fields["data_transfer_size"] = r.u32("DataTransferSize")
            fields["max_spdm_msg_size"] = r.u32("MaxSPDMmsgSize")
        r.end()
        return _build(cls, version=v, **fields)


@dataclass(frozen=True, kw_only=True)
class GetCapabilities(_CapabilitiesBase):
    """GET_CAPABILITIES (DSP0274 1.2, "GET_CAPABILITIES request and CAPABILITIES response").

    Wire layout::

         byte 0          1          2          3
            +----------+----------+----------+----------+
          0 | ver      | 0xE1     | Param1   | reserved |   1.0: header only; Param1 bit 0
            |          |          |          |          |   (1.3): Supported Algorithms
            +----------+----------+----------+----------+
          4 | reserved | CTExp.   |      reserved       |   1.1+
            +----------+----------+---------------------+
          8 |              Flags (u32, CapFlag)         |   1.1+
            +-------------------------------------------+
         12 |          DataTransferSize (u32)           |   1.2+  (>= 42)
            +-------------------------------------------+
         16 |           MaxSPDMmsgSize (u32)            |   1.2+  (== DTS unless CHUNK)
            +-------------------------------------------+
    """

    CODE = RequestCode.GET_CAPABILITIES
    NAME = "GET_CAPABILITIES"
    IS_REQUEST = True
    #: 1.3 Param1 bit 0: include the Supported Algorithms Block in CAPABILITIES (only a
    #: requester with CHUNK_CAP may ask; DSP0274 1.3, Table 11).
    supported_algorithms_requested: bool = False

    def _validate(self) -> None:
        super()._validate()
        _only_from(
            self.version,
            SpdmVersion.V13,
            "supported_algorithms_requested",
            self.supported_algorithms_requested,
        )

    def _param1(self) -> int:
        return int(bool(self.supported_algorithms_requested))

    @classmethod
    def _param1_fields(cls, version: int, param1: int) -> dict[str, Any]:
        # Before 1.3 Param1 is reserved: ignored when read.
        return {"supported_algorithms_requested": version >= SpdmVersion.V13 and bool(param1 & 1)}


@dataclass(frozen=True, kw_only=True)
class Capabilities(_CapabilitiesBase):
    """CAPABILITIES: the GET_CAPABILITIES layout, but 1.0 already carries CTExponent and Flags.

    Wire layout::

          0 | ver | 0x61 | reserved | reserved |
          4 | reserved | CTExponent | reserved (2) |          1.0+
          8 | Flags (u32)                           |          1.0+
         12 | DataTransferSize (u32)                |          1.2+
         16 | MaxSPDMmsgSize (u32)                  |          1.2+
    """

    CODE = ResponseCode.CAPABILITIES
    NAME = "CAPABILITIES"
    IS_REQUEST = False

    def _has_body(self, version: int) -> bool:
        return True


# --------------------------------------------------------------------------------------------
# NEGOTIATE_ALGORITHMS / ALGORITHMS
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlgStruct:
    """One AlgStruct table (1.1+).

    Wire layout::

        +---------+----------------------------+------------------------+
        | AlgType | AlgCount: [7:4] FixedAlg   |  AlgSupported (u16)    |  then ExtAlgCount
        |         | Count = 2, [3:0] ExtAlgCnt |                        |  x 4-byte AlgExternal
        +---------+----------------------------+------------------------+

    ``supported`` holds the bits of the table's flag type (``algorithms`` gives it typed);
    ``external`` the raw 4-byte extended algorithm entries (RegistryID, reserved, AlgorithmID).
    """

    alg_type: int
    supported: int
    external: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.alg_type not in _ALG_FLAGS:
            raise LocalProtocolError(f"AlgType {self.alg_type!r} is not DHE, AEAD, ReqAsym or KS")
        _uint("AlgSupported", self.supported, 16)
        if len(self.external) > 0xF:
            raise LocalProtocolError(f"{len(self.external)} AlgExternal entries, at most 15")
        for entry in self.external:
            _blob("AlgExternal entry", entry, 4)

    @property
    def algorithms(self) -> IntFlag:
        return _ALG_FLAGS[self.alg_type](self.supported)

    def encode(self) -> bytes:
        head = bytes((self.alg_type, 0x20 | len(self.external))) + _u16(self.supported)
        return head + b"".join(self.external)


def _read_ext(r: _Reader, count: int, field: str) -> tuple[bytes, ...]:
    return tuple(r.take(4, f"{field}[{i}]") for i in range(count))


def _read_alg_structs(r: _Reader, count: int) -> tuple[AlgStruct, ...]:
    out = []
    for i in range(count):
        alg_type = r.u8(f"AlgStruct[{i}].AlgType")
        alg_count = r.u8(f"AlgStruct[{i}].AlgCount")
        if alg_count >> 4 != 2:
            raise SpdmDecodeError(
                f"{r.what}: AlgStruct[{i}] FixedAlgCount is {alg_count >> 4}, must be 2"
            )
        supported = r.u16(f"AlgStruct[{i}].AlgSupported")
        external = _read_ext(r, alg_count & 0xF, f"AlgStruct[{i}].AlgExternal")
        if alg_type not in _ALG_FLAGS:
            raise SpdmDecodeError(f"{r.what}: AlgStruct[{i}] has reserved AlgType {alg_type}")
        supported &= _all_bits(_ALG_FLAGS[alg_type])
        out.append(AlgStruct(_known(AlgType, alg_type), supported, external))
    return tuple(out)


def _check_alg_structs(name: str, version: int, structs: tuple[AlgStruct, ...]) -> None:
    for s in structs:
        if not isinstance(s, AlgStruct):
            raise LocalProtocolError(f"{name}: {s!r} is not an AlgStruct")
    if version < SpdmVersion.V11:
        if structs:
            raise LocalProtocolError(f"{name}: AlgStruct tables do not exist in SPDM 1.0")
        return
    types = [s.alg_type for s in structs]
    if len(set(types)) != len(types):
        raise LocalProtocolError(f"{name}: AlgType repeated in {types}")
    if version >= SpdmVersion.V12 and types != sorted(types):
        raise LocalProtocolError(f"{name}: AlgStruct tables not in ascending AlgType order {types}")


@dataclass(frozen=True, kw_only=True)
class NegotiateAlgorithms(_Message):
    """NEGOTIATE_ALGORITHMS (DSP0274 1.2, "NEGOTIATE_ALGORITHMS request and ALGORITHMS response").

    Wire layout::

         byte 0             1             2             3
            +-------------+-------------+-------------+-------------+
          0 | ver         | 0xE3        | Param1 = number of        | Param2 reserved
            |             |             | AlgStruct tables (1.1+)   |
            +-------------+-------------+-------------+-------------+
          4 |      Length (u16, whole  | MeasSpec    | OtherParams |  (OtherParams 1.2+)
            |      message)            |             | Support     |
            +--------------------------+-------------+-------------+
          8 |                  BaseAsymAlgo (u32)                   |
         12 |                  BaseHashAlgo (u32)                   |
         16 |                  reserved (12 bytes)                  |
         28 | ExtAsymCnt A| ExtHashCnt E| reserved    | MELspec 1.3 |
            +-------------+-------------+-------------+-------------+
         32 | ExtAsym[A] (4 bytes each), ExtHash[E] (4 bytes each)  |
            | AlgStruct[Param1] (4 + 4 * ExtAlgCount bytes each)    |
            +-------------------------------------------------------+
        Length <= 64 (1.0) / 128 (1.1+); A + E + all ExtAlgCount <= 8 (1.0) / 20 (1.1+)
    """

    CODE = RequestCode.NEGOTIATE_ALGORITHMS
    NAME = "NEGOTIATE_ALGORITHMS"
    IS_REQUEST = True
    FIXED_SIZE: ClassVar[int] = 32
    version: int = SpdmVersion.V12
    measurement_specification: int = MeasurementSpec.DMTF
    other_params: int = 0
    base_asym_algo: int
    base_hash_algo: int
    mel_specification: int = 0
    ext_asym: tuple[bytes, ...] = ()
    ext_hash: tuple[bytes, ...] = ()
    alg_structs: tuple[AlgStruct, ...] = ()

    @property
    def length(self) -> int:
        ext = 4 * (len(self.ext_asym) + len(self.ext_hash))
        return self.FIXED_SIZE + ext + sum(4 + 4 * len(s.external) for s in self.alg_structs)

    def _validate(self) -> None:
        v = self.version
        _uint("measurement_specification", self.measurement_specification, 8)
        _uint("other_params", self.other_params, 8)
        if self.other_params & ~_OTHER_PARAMS_MASK[v]:
            raise LocalProtocolError(f"OtherParamsSupport {self.other_params:#x} in SPDM {v:#x}")
        _uint("base_asym_algo", self.base_asym_algo, 32)
        _uint("base_hash_algo", self.base_hash_algo, 32)
        _uint("mel_specification", self.mel_specification, 8)
        _only_from(v, SpdmVersion.V13, "MELspecification", self.mel_specification)
        for entry in (*self.ext_asym, *self.ext_hash):
            _blob("extended algorithm entry", entry, 4)
        _check_alg_structs(self.NAME, v, self.alg_structs)
        n_ext = len(self.ext_asym) + len(self.ext_hash)
        n_ext += sum(len(s.external) for s in self.alg_structs)
        if n_ext > _MAX_EXT_ALGS[v]:
            raise LocalProtocolError(f"{n_ext} extended algorithms, at most {_MAX_EXT_ALGS[v]}")
        if self.length > _MAX_NEGOTIATE_LENGTH[v]:
            raise LocalProtocolError(
                f"Length {self.length} exceeds {_MAX_NEGOTIATE_LENGTH[v]} in SPDM {_vtext(v)}"
            )

    def encode(self) -> bytes:
        out = self._header(len(self.alg_structs))
        out += _u16(self.length) + bytes((self.measurement_specification, self.other_params))
        out += _u32(self.base_asym_algo) + _u32(self.base_hash_algo) + bytes(12)
        out += bytes((len(self.ext_asym), len(self.ext_hash), 0, self.mel_specification))
        out += b"".join(self.ext_asym) + b"".join(self.ext_hash)
        return out + b"".join(s.encode() for s in self.alg_structs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        v = hdr.version
        length = r.u16("Length")
        if length != len(r.data):
            raise SpdmDecodeError(f"{cls.NAME}: Length says {length}, message is {len(r.data)}")
        meas_spec = r.u8("MeasurementSpecification")
        other = r.u8("OtherParamsSupport") & _OTHER_PARAMS_MASK[v]
        asym = r.u32("BaseAsymAlgo") & _all_bits(BaseAsymAlgo)
        hash_ = r.u32("BaseHashAlgo") & _all_bits(BaseHashAlgo)
        r.take(12, "Reserved")
        n_asym, n_hash = r.u8("ExtAsymCount"), r.u8("ExtHashCount")
        r.u8("Reserved")
        mel = r.u8("MELspecification")  # reserved before 1.3
        mel = mel if v >= SpdmVersion.V13 else 0
        ext_asym = _read_ext(r, n_asym, "ExtAsym")
        ext_hash = _read_ext(r, n_hash, "ExtHash")
        structs = _read_alg_structs(r, hdr.param1 if v >= SpdmVersion.V11 else 0)
        r.end()
        return _build(
            cls,
            version=v,
            measurement_specification=MeasurementSpec(meas_spec & MeasurementSpec.DMTF),
            other_params=OtherParams(other),
            base_asym_algo=BaseAsymAlgo(asym),
            base_hash_algo=BaseHashAlgo(hash_),
            mel_specification=mel,
            ext_asym=ext_asym,
            ext_hash=ext_hash,
            alg_structs=structs,
        )


@dataclass(frozen=True, kw_only=True)
class Algorithms(_Message):
    """ALGORITHMS: one selection per field (DSP0274 1.2, same section).

    Wire layout::

         byte 0             1             2             3
            +-------------+-------------+-------------+-------------+
          0 | ver         | 0x63        | Param1 = AlgStruct count  | Param2 reserved
          4 |      Length (u16)        | MeasSpecSel | OtherParams |
            |                          |             | Selection   |
          8 |               MeasurementHashAlgo (u32)               |
         12 |                  BaseAsymSel (u32)                    |
         16 |                  BaseHashSel (u32)                    |
         20 |          reserved (11 bytes)             | MELspecSel | (MELspecSel 1.3)
         32 | ExtAsymSelCnt | ExtHashSelCnt |      reserved         |
            +-------------+-------------+-------------+-------------+
         36 | ExtAsymSel[A], ExtHashSel[E], AlgStruct[Param1]       |
            +-------------------------------------------------------+
        every selection (field, ext count, AlgStruct) holds at most one algorithm
    """

    CODE = ResponseCode.ALGORITHMS
    NAME = "ALGORITHMS"
    IS_REQUEST = False
    FIXED_SIZE: ClassVar[int] = 36
    version: int = SpdmVersion.V12
    measurement_specification_sel: int = 0
    other_params_sel: int = 0
    measurement_hash_algo: int = 0
    base_asym_sel: int = 0
    base_hash_sel: int = 0
    mel_specification_sel: int = 0
    ext_asym_sel: tuple[bytes, ...] = ()
    ext_hash_sel: tuple[bytes, ...] = ()
    alg_structs: tuple[AlgStruct, ...] = ()

    @property
    def length(self) -> int:
        ext = 4 * (len(self.ext_asym_sel) + len(self.ext_hash_sel))
        return self.FIXED_SIZE + ext + sum(4 + 4 * len(s.external) for s in self.alg_structs)

    def _selected(self, alg_type: AlgType) -> int:
        for s in self.alg_structs:
            if s.alg_type == alg_type:
                return s.supported
        return 0

    @property
    def dhe_group(self) -> DheGroup:
        return DheGroup(self._selected(AlgType.DHE))

    @property
    def aead_suite(self) -> AeadSuite:
        return AeadSuite(self._selected(AlgType.AEAD))

    @property
    def req_base_asym_alg(self) -> BaseAsymAlgo:
        return BaseAsymAlgo(self._selected(AlgType.REQ_BASE_ASYM_ALG))

    @property
    def key_schedule(self) -> KeySchedule:
        return KeySchedule(self._selected(AlgType.KEY_SCHEDULE))

    def _validate(self) -> None:
        v = self.version
        for name, width in (
            ("measurement_specification_sel", 8),
            ("other_params_sel", 8),
            ("measurement_hash_algo", 32),
            ("base_asym_sel", 32),
            ("base_hash_sel", 32),
            ("mel_specification_sel", 8),
        ):
            value = getattr(self, name)
            _uint(name, value, width)
            if name == "other_params_sel":
                value &= _OPAQUE_FORMAT_MASK
            _one_bit_at_most(name, value)
        if self.other_params_sel & ~_OTHER_PARAMS_MASK[v]:
            raise LocalProtocolError(f"OtherParamsSelection {self.other_params_sel:#x} in {v:#x}")
        _only_from(v, SpdmVersion.V13, "MELspecificationSel", self.mel_specification_sel)
        if len(self.ext_asym_sel) > 1 or len(self.ext_hash_sel) > 1:
            raise LocalProtocolError("ALGORITHMS selects at most one extended asym and hash")
        for entry in (*self.ext_asym_sel, *self.ext_hash_sel):
            _blob("extended algorithm entry", entry, 4)
        _check_alg_structs(self.NAME, v, self.alg_structs)
        for s in self.alg_structs:
            _one_bit_at_most(f"AlgStruct {s.alg_type}", s.supported)
            if len(s.external) > 1:
                raise LocalProtocolError(f"AlgStruct {s.alg_type} selects several ext algorithms")

    def encode(self) -> bytes:
        out = self._header(len(self.alg_structs)) + _u16(self.length)
        out += bytes((self.measurement_specification_sel, self.other_params_sel))
        out += _u32(self.measurement_hash_algo) + _u32(self.base_asym_sel)
        out += _u32(self.base_hash_sel) + bytes(11) + bytes((self.mel_specification_sel,))
        out += bytes((len(self.ext_asym_sel), len(self.ext_hash_sel))) + bytes(2)
        out += b"".join(self.ext_asym_sel) + b"".join(self.ext_hash_sel)
        return out + b"".join(s.encode() for s in self.alg_structs)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        v = hdr.version
        length = r.u16("Length")
        if length != len(r.data):
            raise SpdmDecodeError(f"{cls.NAME}: Length says {length}, message is {len(r.data)}")
        meas_spec = r.u8("MeasurementSpecificationSel") & MeasurementSpec.DMTF
        other = r.u8("OtherParamsSelection") & _OTHER_PARAMS_MASK[v]
        meas_hash = r.u32("MeasurementHashAlgo") & _all_bits(MeasurementHashAlgo)
        asym = r.u32("BaseAsymSel") & _all_bits(BaseAsymAlgo)
        hash_ = r.u32("BaseHashSel") & _all_bits(BaseHashAlgo)
        r.take(11, "Reserved")
        mel = r.u8("MELspecificationSel")
        mel = mel if v >= SpdmVersion.V13 else 0
        n_asym, n_hash = r.u8("ExtAsymSelCount"), r.u8("ExtHashSelCount")
        r.take(2, "Reserved")
        ext_asym = _read_ext(r, n_asym, "ExtAsymSel")
        ext_hash = _read_ext(r, n_hash, "ExtHashSel")
        structs = _read_alg_structs(r, hdr.param1 if v >= SpdmVersion.V11 else 0)
        r.end()
        return _build(
            cls,
            version=v,
            measurement_specification_sel=MeasurementSpec(meas_spec),
            other_params_sel=OtherParams(other),
            measurement_hash_algo=MeasurementHashAlgo(meas_hash),
            base_asym_sel=BaseAsymAlgo(asym),
            base_hash_sel=BaseHashAlgo(hash_),
            mel_specification_sel=mel,
            ext_asym_sel=ext_asym,
            ext_hash_sel=ext_hash,
            alg_structs=structs,
        )


# --------------------------------------------------------------------------------------------
# DIGESTS, CERTIFICATE, certificate chains
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Digests(_Message):
    """DIGESTS (DSP0274 1.2, "GET_DIGESTS request and DIGESTS response messages").

    Wire layout::

        +-----+------+-------------------------+--------------------------+
        | ver | 0x01 | Param1: reserved (1.3:  | Param2: slot mask (1.3:  |
        |     |      | SupportedSlotMask)      | ProvisionedSlotMask)     |
        +-----+------+-------------------------+--------------------------+
        | Digest[0] (H bytes) ... one per bit set in Param2, slot order   |
        +-----------------------------------------------------------------+
        (1.3 with MULTI_KEY_CONN appends per-slot key info: not modelled)
    """

    CODE = ResponseCode.DIGESTS
    NAME = "DIGESTS"
    IS_REQUEST = False
    version: int = SpdmVersion.V12
    slot_mask: int
    digests: tuple[bytes, ...]
    supported_slot_mask: int = 0  # 1.3

    def _validate(self) -> None:
        _uint("slot_mask", self.slot_mask, 8)
        _uint("supported_slot_mask", self.supported_slot_mask, 8)
        _only_from(self.version, SpdmVersion.V13, "supported_slot_mask", self.supported_slot_mask)
        if self.version >= SpdmVersion.V13 and self.slot_mask & ~self.supported_slot_mask:
            raise LocalProtocolError(
                f"provisioned slots {self.slot_mask:#04x} outside supported "
                f"{self.supported_slot_mask:#04x}"
            )
        if len(self.digests) != self.slot_mask.bit_count():
            raise LocalProtocolError(
                f"{len(self.digests)} digests for slot mask {self.slot_mask:#04x}"
            )
        for d in self.digests:
            _nonempty("digest", d)
        if len({len(d) for d in self.digests}) > 1:
            raise LocalProtocolError("digests of different lengths")

    def by_slot(self) -> dict[int, bytes]:
        slots = [i for i in range(MAX_SLOTS) if self.slot_mask >> i & 1]
        return dict(zip(slots, self.digests, strict=True))

    def encode(self) -> bytes:
        return self._header(self.supported_slot_mask, self.slot_mask) + b"".join(self.digests)

    @classmethod
    def decode(cls, data: bytes, *, hash_size: int) -> Self:
        _positive("hash_size", hash_size)
        hdr, r = cls._open(data)
        digests = tuple(r.take(hash_size, f"Digest[{i}]") for i in range(hdr.param2.bit_count()))
        r.end()
        supported = hdr.param1 if hdr.version >= SpdmVersion.V13 else 0
        return _build(
            cls,
            version=hdr.version,
            slot_mask=hdr.param2,
            digests=digests,
            supported_slot_mask=supported,
        )


@dataclass(frozen=True, kw_only=True)
class GetCertificate(_Message):
    """GET_CERTIFICATE (DSP0274 1.2, "GET_CERTIFICATE request and CERTIFICATE response").

    Wire layout::

        +-----+------+-----------------------+-------------------------------+
        | ver | 0x82 | Param1: [3:0] SlotID  | Param2: reserved (1.3: bit 0  |
        |     |      | [7:4] reserved        | SlotSizeRequested)            |
        +-----+------+-----------------------+-------------------------------+
        |      Offset (u16)           |          Length (u16)                |
        +-----------------------------+--------------------------------------+
    """

    CODE = RequestCode.GET_CERTIFICATE
    NAME = "GET_CERTIFICATE"
    IS_REQUEST = True
    version: int = SpdmVersion.V12
    slot_id: int = 0
    offset: int = 0
    length: int
    slot_size_requested: bool = False  # 1.3

    def _validate(self) -> None:
        _slot("slot_id", self.slot_id)
        _uint("offset", self.offset, 16)
        _uint("length", self.length, 16)
        _only_from(self.version, SpdmVersion.V13, "slot_size_requested", self.slot_size_requested)

    def encode(self) -> bytes:
        hdr = self._header(self.slot_id, int(bool(self.slot_size_requested)))
        return hdr + _u16(self.offset) + _u16(self.length)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        offset, length = r.u16("Offset"), r.u16("Length")
        r.end()
        return _build(
            cls,
            version=hdr.version,
            slot_id=hdr.param1 & 0xF,
            offset=offset,
            length=length,
            slot_size_requested=hdr.version >= SpdmVersion.V13 and bool(hdr.param2 & 1),
        )


@dataclass(frozen=True, kw_only=True)
class Certificate(_Message):
    """CERTIFICATE.

    Wire layout::

        +-----+------+-----------------------+--------------------------------+
        | ver | 0x02 | Param1: [3:0] SlotID  | Param2: reserved (1.3: [2:0]   |
        |     |      | [7:4] reserved        | CertificateInfo / cert model)  |
        +-----+------+-----------------------+--------------------------------+
        |    PortionLength (u16)      |     RemainderLength (u16)             |
        +-----------------------------+---------------------------------------+
        | CertChain portion (PortionLength bytes)                             |
        +---------------------------------------------------------------------+
    """

    CODE = ResponseCode.CERTIFICATE
    NAME = "CERTIFICATE"
    IS_REQUEST = False
    version: int = SpdmVersion.V12
    slot_id: int = 0
    portion: bytes
    remainder_length: int = 0
    certificate_info: int = 0  # 1.3

    def _validate(self) -> None:
        _slot("slot_id", self.slot_id)
        _blob("portion", self.portion)
        _uint("remainder_length", self.remainder_length, 16)
        _uint("certificate_info", self.certificate_info, 3)
        _only_from(self.version, SpdmVersion.V13, "certificate_info", self.certificate_info)

    def encode(self) -> bytes:
        hdr = self._header(self.slot_id, self.certificate_info)
        return hdr + _u16(len(self.portion)) + _u16(self.remainder_length) + self.portion

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        portion_length, remainder = r.u16("PortionLength"), r.u16("RemainderLength")
        portion = r.take(portion_length, "CertChain portion")
        r.end()
        return _build(
            cls,
            version=hdr.version,
            slot_id=hdr.param1 & 0xF,
            portion=portion,
            remainder_length=remainder,
            certificate_info=hdr.param2 & 0x7 if hdr.version >= SpdmVersion.V13 else 0,
        )


@dataclass(frozen=True)
class CertChain:
    """The SPDM certificate chain a slot holds (DSP0274 1.2, "Certificates and certificate chains").

    Wire layout::

        +---------------------------+---------------------------+
        | Length (u16, whole chain) |     reserved (u16)        |
        +---------------------------+---------------------------+
        | RootHash (H bytes): hash of the DER root certificate  |
        +-------------------------------------------------------+
        | Certificates: ASN.1 DER X.509, root (or root-signed)  |
        | first, leaf last                                       |
        +-------------------------------------------------------+
    """

    root_hash: bytes
    certificates: bytes

    def __post_init__(self) -> None:
        _nonempty("root_hash", self.root_hash)
        _nonempty("certificates", self.certificates)
        if 4 + len(self.root_hash) + len(self.certificates) > 0xFFFF:
            raise LocalProtocolError("certificate chain longer than 65535 bytes")

    def encode(self) -> bytes:
        total = 4 + len(self.root_hash) + len(self.certificates)
        return _u16(total) + bytes(2) + self.root_hash + self.certificates

    @classmethod
    def decode(cls, data: bytes, *, hash_size: int) -> Self:
        _positive("hash_size", hash_size)
        r = _Reader(bytes(data), "certificate chain")
        length = r.u16("Length")
        if length != len(r.data):
            raise SpdmDecodeError(f"certificate chain: Length says {length}, got {len(r.data)}")
        r.take(2, "Reserved")
        root = r.take(hash_size, "RootHash")
        if not r.remaining():
            raise SpdmDecodeError("certificate chain holds no certificate")
        return cls(root, r.take(r.remaining(), "Certificates"))

    def der_certificates(self) -> tuple[bytes, ...]:
        """Split ``certificates`` into single DER SEQUENCEs (no X.509 parsing)."""
        out = []
        r = _Reader(self.certificates, "certificate chain DER")
        while r.remaining():
            start = r.pos
            if r.u8("DER tag") != 0x30:
                raise SpdmDecodeError(f"certificate at offset {start} is not a DER SEQUENCE")
            first = r.u8("DER length")
            if first < 0x80:
                size = first
            elif 0x81 <= first <= 0x84:
                size = int.from_bytes(r.take(first & 0x7F, "DER long length"), "big")
            else:
                raise SpdmDecodeError(f"certificate at offset {start}: DER length byte {first:#x}")
            r.take(size, "DER contents")
            out.append(r.data[start : r.pos])
        return tuple(out)


# --------------------------------------------------------------------------------------------
# CHALLENGE / CHALLENGE_AUTH
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Challenge(_Message):
    """CHALLENGE (DSP0274 1.2/1.3, "CHALLENGE request and CHALLENGE_AUTH response messages").

    Wire layout::

        +-----+------+-------------------------------+-----------------------------------+
        | ver | 0x83 | Param1: SlotID (0..7, 0xFF =  | Param2: MeasurementSummaryHashType|
        |     |      | provisioned public key)       | (0 none, 1 TCB, 0xFF all)         |
        +-----+------+-------------------------------+-----------------------------------+
        | Nonce (32 bytes)                                                               |
        +--------------------------------------------------------------------------------+
        | RequesterContext (8 bytes)                                        1.3 only     |
        +--------------------------------------------------------------------------------+
    """

    CODE = RequestCode.CHALLENGE
    NAME = "CHALLENGE"
    IS_REQUEST = True
    version: int = SpdmVersion.V12
    slot_id: int = 0
    measurement_summary_hash_type: int = MeasurementSummaryHashType.NONE
    nonce: bytes
    requester_context: bytes = b""

    def _validate(self) -> None:
        _slot("slot_id", self.slot_id, extra=PUBLIC_KEY_SLOT)
        if (
            self.measurement_summary_hash_type
            not in MeasurementSummaryHashType.__members__.values()
        ):
            raise LocalProtocolError(
                f"MeasurementSummaryHashType {self.measurement_summary_hash_type!r} is reserved"
            )
        _blob("nonce", self.nonce, NONCE_SIZE)
        _context(self.version, self.requester_context)

    def encode(self) -> bytes:
        hdr = self._header(self.slot_id, self.measurement_summary_hash_type)
        return hdr + self.nonce + self.requester_context

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        nonce = r.take(NONCE_SIZE, "Nonce")
        ctx = r.take(REQUESTER_CONTEXT_SIZE, "RequesterContext") if hdr.version >= 0x13 else b""
        r.end()
        kind = _enum(MeasurementSummaryHashType, hdr.param2, "MeasurementSummaryHashType")
        return _build(
            cls,
            version=hdr.version,
            slot_id=hdr.param1,
            measurement_summary_hash_type=kind,
            nonce=nonce,
            requester_context=ctx,
        )


@dataclass(frozen=True, kw_only=True)
class ChallengeAuth(_Message):
    """CHALLENGE_AUTH.

    Wire layout::

        +-----+------+------------------------------------+----------------------+
        | ver | 0x03 | Param1: [3:0] SlotID (0xF = public | Param2: SlotMask     |
        |     |      | key), [6:4] rsvd, [7] BasicMutAuth |                      |
        |     |      | Req (1.1 only)                     |                      |
        +-----+------+------------------------------------+----------------------+
        | CertChainHash (H)                                                      |
        | Nonce (32)                                                             |
        | MeasurementSummaryHash (H, or absent when CHALLENGE asked for none)    |
        | OpaqueDataLength (u16, <= 1024) | OpaqueData                           |
        | RequesterContext (8)                                     1.3 only      |
        | Signature (S)                                                          |
        +------------------------------------------------------------------------+
    """

    CODE = ResponseCode.CHALLENGE_AUTH
    NAME = "CHALLENGE_AUTH"
    IS_REQUEST = False
    version: int = SpdmVersion.V12
    slot_id: int = 0
    slot_mask: int = 0
    basic_mut_auth_requested: bool = False  # 1.1 only
    cert_chain_hash: bytes
    nonce: bytes
    measurement_summary_hash: bytes = b""
    opaque_data: bytes = b""
    requester_context: bytes = b""
    signature: bytes

    def _validate(self) -> None:
        _slot("slot_id", self.slot_id, extra=0xF)
        _uint("slot_mask", self.slot_mask, 8)
        if self.basic_mut_auth_requested and self.version != SpdmVersion.V11:
            raise LocalProtocolError("BasicMutAuthReq exists in SPDM 1.1 only")
        _nonempty("cert_chain_hash", self.cert_chain_hash)
        _blob("nonce", self.nonce, NONCE_SIZE)
        if self.measurement_summary_hash:
            _blob("measurement_summary_hash", self.measurement_summary_hash)
            if len(self.measurement_summary_hash) != len(self.cert_chain_hash):
                raise LocalProtocolError("measurement_summary_hash and cert_chain_hash differ in H")
        _opaque(self.opaque_data)
        _context(self.version, self.requester_context)
        _nonempty("signature", self.signature)

    def encode(self) -> bytes:
        p1 = self.slot_id | (0x80 if self.basic_mut_auth_requested else 0)
        return (
            self._header(p1, self.slot_mask)
            + self.cert_chain_hash
            + self.nonce
            + self.measurement_summary_hash
            + _u16(len(self.opaque_data))
            + self.opaque_data
            + self.requester_context
            + self.signature
        )

    @classmethod
    def decode(
        cls, data: bytes, *, hash_size: int, signature_size: int, measurement_summary: bool
    ) -> Self:
        _positive("hash_size", hash_size)
        _positive("signature_size", signature_size)
        hdr, r = cls._open(data)
        v = hdr.version
        cert_hash = r.take(hash_size, "CertChainHash")
        nonce = r.take(NONCE_SIZE, "Nonce")
        summary = r.take(hash_size, "MeasurementSummaryHash") if measurement_summary else b""
        opaque = r.take(r.u16("OpaqueDataLength"), "OpaqueData")
        ctx = r.take(REQUESTER_CONTEXT_SIZE, "RequesterContext") if v >= 0x13 else b""
        signature = r.take(signature_size, "Signature")
        r.end()
        return _build(
            cls,
            version=v,
            slot_id=hdr.param1 & 0xF,
            slot_mask=hdr.param2,
            basic_mut_auth_requested=v == SpdmVersion.V11 and bool(hdr.param1 & 0x80),
            cert_chain_hash=cert_hash,
            nonce=nonce,
            measurement_summary_hash=summary,
            opaque_data=opaque,
            requester_context=ctx,
            signature=signature,
        )


# --------------------------------------------------------------------------------------------
# GET_MEASUREMENTS / MEASUREMENTS
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GetMeasurements(_Message):
    """GET_MEASUREMENTS (DSP0274 1.2/1.3, "GET_MEASUREMENTS request and MEASUREMENTS response").

    Wire layout::

        +-----+------+------------------------------------+------------------------------+
        | ver | 0xE0 | Param1: bit 0 SignatureRequested,  | Param2: operation (0 count,  |
        |     |      | bit 1 RawBitStreamRequested (1.2), | 1..0xFE index, 0xFF all)     |
        |     |      | bit 2 NewMeasurementRequested (1.3)|                              |
        +-----+------+------------------------------------+------------------------------+
        | Nonce (32)                                          only if SignatureRequested |
        | SlotIDParam: [3:0] SlotID (0xF = public key)        only if signed, 1.1+       |
        | RequesterContext (8)                                1.3, signed or not         |
        +--------------------------------------------------------------------------------+
    """

    CODE = RequestCode.GET_MEASUREMENTS
    NAME = "GET_MEASUREMENTS"
    IS_REQUEST = True
    version: int = SpdmVersion.V12
    operation: int = MEASUREMENT_OP_ALL
    signature_requested: bool = False
    raw_bit_stream_requested: bool = False  # 1.2
    new_measurement_requested: bool = False  # 1.3
    nonce: bytes = b""
    slot_id: int = 0
    requester_context: bytes = b""

    def _validate(self) -> None:
        v = self.version
        _uint("operation", self.operation, 8)
        _only_from(v, SpdmVersion.V12, "raw_bit_stream_requested", self.raw_bit_stream_requested)
        _only_from(v, SpdmVersion.V13, "new_measurement_requested", self.new_measurement_requested)
        if self.signature_requested:
            _blob("nonce", self.nonce, NONCE_SIZE)
            _slot("slot_id", self.slot_id, extra=0xF)
            _only_from(v, SpdmVersion.V11, "slot_id", self.slot_id)
        elif self.nonce or self.slot_id:
            raise LocalProtocolError("nonce and slot_id go with signature_requested only")
        _context(v, self.requester_context)

    def encode(self) -> bytes:
        attrs = (
            int(bool(self.signature_requested))
            | int(bool(self.raw_bit_stream_requested)) << 1
            | int(bool(self.new_measurement_requested)) << 2
        )
        out = self._header(attrs, self.operation)
        if self.signature_requested:
            out += self.nonce
            if self.version >= SpdmVersion.V11:
                out += bytes((self.slot_id,))
        return out + self.requester_context

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        v = hdr.version
        signed = bool(hdr.param1 & 1)
        nonce, slot = b"", 0
        if signed:
            nonce = r.take(NONCE_SIZE, "Nonce")
            if v >= SpdmVersion.V11:
                slot = r.u8("SlotIDParam") & 0xF
        ctx = r.take(REQUESTER_CONTEXT_SIZE, "RequesterContext") if v >= 0x13 else b""
        r.end()
        return _build(
            cls,
            version=v,
            operation=hdr.param2,
            signature_requested=signed,
            raw_bit_stream_requested=v >= SpdmVersion.V12 and bool(hdr.param1 & 2),
            new_measurement_requested=v >= SpdmVersion.V13 and bool(hdr.param1 & 4),
            nonce=nonce,
            slot_id=slot,
            requester_context=ctx,
        )


@dataclass(frozen=True)
class MeasurementBlock:
    """One measurement block, DMTF measurement specification.

    Wire layout::

        +-------+----------------------+----------------------------+
        | Index | MeasurementSpec=0x01 | MeasurementSize (u16)      |
        +-------+----------------------+----------------------------+
        | DMTFSpecMeasurementValueType: [6:0] type, [7] raw bits    |
        | DMTFSpecMeasurementValueSize (u16) | value (that many B)  |
        +-----------------------------------------------------------+
        MeasurementSize = 3 + DMTFSpecMeasurementValueSize; Index 1..0xFF
    """

    index: int
    value_type: int
    value: bytes
    raw: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.index, int) or not 1 <= self.index <= 0xFF:
            raise LocalProtocolError(f"measurement index {self.index!r} is not 1..255")
        _uint("value_type", self.value_type, 7)
        _blob("value", self.value, max_size=0xFFFF - 3)

    def encode(self) -> bytes:
        kind = self.value_type | (0x80 if self.raw else 0)
        size = 3 + len(self.value)
        return (
            bytes((self.index, MeasurementSpec.DMTF))
            + _u16(size)
            + bytes((kind,))
            + _u16(len(self.value))
            + self.value
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(bytes(data), "measurement block")
        block = cls._read(r)
        r.end()
        return block

    @classmethod
    def _read(cls, r: _Reader) -> Self:
        index = r.u8("Index")
        spec = r.u8("MeasurementSpecification")
        size = r.u16("MeasurementSize")
        body = _Reader(r.take(size, "Measurement"), f"{r.what} measurement {index}")
        if spec != MeasurementSpec.DMTF:
            raise SpdmDecodeError(f"{body.what}: MeasurementSpecification {spec:#x} is not DMTF")
        kind = body.u8("DMTFSpecMeasurementValueType")
        value = body.take(body.u16("DMTFSpecMeasurementValueSize"), "DMTFSpecMeasurementValue")
        body.end()
        if index == 0:
            raise SpdmDecodeError(f"{body.what}: index 0 is reserved")
        return cls(index, _known(DmtfMeasurementType, kind & 0x7F), value, bool(kind & 0x80))


@dataclass(frozen=True, kw_only=True)
class Measurements(_Message):
    """MEASUREMENTS.

    Wire layout::

        +-----+------+-------------------------------+------------------------------------+
        | ver | 0x60 | Param1: total count (op 0),   | Param2: [3:0] SlotID (if signed),  |
        |     |      | else reserved                 | [5:4] content changed (1.2)        |
        +-----+------+-------------------------------+------------------------------------+
        | NumberOfBlocks (1) | MeasurementRecordLength (u24)                              |
        | MeasurementRecord: NumberOfBlocks MeasurementBlocks, exactly RecordLength bytes |
        | Nonce (32)                                                                      |
        | OpaqueDataLength (u16, <= 1024) | OpaqueData                                    |
        | RequesterContext (8)                                                 1.3 only   |
        | Signature (S)                                    only if the request asked      |
        +---------------------------------------------------------------------------------+
    """

    CODE = ResponseCode.MEASUREMENTS
    NAME = "MEASUREMENTS"
    IS_REQUEST = False
    version: int = SpdmVersion.V12
    total_count: int = 0
    slot_id: int = 0
    content_changed: int = 0  # 1.2: 0 not detected, 1 changed, 2 no change
    blocks: tuple[MeasurementBlock, ...] = ()
    nonce: bytes
    opaque_data: bytes = b""
    requester_context: bytes = b""
    signature: bytes = b""

    def _validate(self) -> None:
        v = self.version
        _uint("total_count", self.total_count, 8)
        _uint("content_changed", self.content_changed, 2)
        _only_from(v, SpdmVersion.V12, "content_changed", self.content_changed)
        if self.signature:
            _slot("slot_id", self.slot_id, extra=0xF)
            _only_from(v, SpdmVersion.V11, "slot_id", self.slot_id)
        elif self.slot_id:
            raise LocalProtocolError("slot_id goes with a signature only")
        if len(self.blocks) > 0xFF:
            raise LocalProtocolError(f"{len(self.blocks)} measurement blocks, at most 255")
        for b in self.blocks:
            if not isinstance(b, MeasurementBlock):
                raise LocalProtocolError(f"{b!r} is not a MeasurementBlock")
        if len(self._record()) > 0xFFFFFF:
            raise LocalProtocolError("measurement record longer than 2^24 - 1 bytes")
        _blob("nonce", self.nonce, NONCE_SIZE)
        _opaque(self.opaque_data)
        _context(v, self.requester_context)
        _blob("signature", self.signature)

    def _record(self) -> bytes:
        return b"".join(b.encode() for b in self.blocks)

    def encode(self) -> bytes:
        record = self._record()
        return (
            self._header(self.total_count, self.slot_id | self.content_changed << 4)
            + bytes((len(self.blocks),))
            + _u24(len(record))
            + record
            + self.nonce
            + _u16(len(self.opaque_data))
            + self.opaque_data
            + self.requester_context
            + self.signature
        )

    @classmethod
    def decode(cls, data: bytes, *, signature_size: int = 0) -> Self:
        """``signature_size`` 0 means the request asked for no signature."""
        _uint("signature_size", signature_size, 16)
        hdr, r = cls._open(data)
        v = hdr.version
        count = r.u8("NumberOfBlocks")
        record = _Reader(r.take(r.u24("MeasurementRecordLength"), "MeasurementRecord"), cls.NAME)
        blocks = []
        while record.remaining():
            blocks.append(MeasurementBlock._read(record))
        if len(blocks) != count:
            raise SpdmDecodeError(f"{cls.NAME}: NumberOfBlocks {count}, record has {len(blocks)}")
        nonce = r.take(NONCE_SIZE, "Nonce")
        opaque = r.take(r.u16("OpaqueDataLength"), "OpaqueData")
        ctx = r.take(REQUESTER_CONTEXT_SIZE, "RequesterContext") if v >= 0x13 else b""
        signature = r.take(signature_size, "Signature")
        r.end()
        signed = signature_size > 0
        return _build(
            cls,
            version=v,
            total_count=hdr.param1,
            slot_id=hdr.param2 & 0xF if signed and v >= SpdmVersion.V11 else 0,
            content_changed=(hdr.param2 >> 4) & 3 if v >= SpdmVersion.V12 else 0,
            blocks=tuple(blocks),
            nonce=nonce,
            opaque_data=opaque,
            requester_context=ctx,
            signature=signature,
        )


# --------------------------------------------------------------------------------------------
# KEY_EXCHANGE / KEY_EXCHANGE_RSP, FINISH / FINISH_RSP
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KeyExchange(_Message):
    """KEY_EXCHANGE (1.1+; DSP0274 1.2, "KEY_EXCHANGE request and KEY_EXCHANGE_RSP response").

    Wire layout::

        +-----+------+----------------------------------+-------------------------------+
        | ver | 0xE4 | Param1: MeasurementSummaryHash   | Param2: SlotID (0..7, 0xFF =  |
        |     |      | Type (0 none, 1 TCB, 0xFF all)   | provisioned public key)       |
        +-----+------+----------------------------------+-------------------------------+
        | ReqSessionID (u16)   | SessionPolicy (1.2) | reserved                           |
        | RandomData (32)                                                               |
        | ExchangeData (D bytes: the requester's DHE public value)                      |
        | OpaqueDataLength (u16, <= 1024) | OpaqueData (1.2: OpaqueDataFmt1)            |
        +-------------------------------------------------------------------------------+
    """

    CODE = RequestCode.KEY_EXCHANGE
    NAME = "KEY_EXCHANGE"
    IS_REQUEST = True
    MIN_VERSION = SpdmVersion.V11
    version: int = SpdmVersion.V12
    measurement_summary_hash_type: int = MeasurementSummaryHashType.NONE
    slot_id: int = 0
    req_session_id: int
    session_policy: int = 0  # 1.2
    random_data: bytes
    exchange_data: bytes
    opaque_data: bytes = b""

    def _validate(self) -> None:
        if (
            self.measurement_summary_hash_type
            not in MeasurementSummaryHashType.__members__.values()
        ):
            raise LocalProtocolError(
                f"MeasurementSummaryHashType {self.measurement_summary_hash_type!r} is reserved"
            )
        _slot("slot_id", self.slot_id, extra=PUBLIC_KEY_SLOT)
        _uint("req_session_id", self.req_session_id, 16)
        _uint("session_policy", self.session_policy, 8)
        _only_from(self.version, SpdmVersion.V12, "session_policy", self.session_policy)
        _blob("random_data", self.random_data, RANDOM_DATA_SIZE)
        _nonempty("exchange_data", self.exchange_data)
        _opaque(self.opaque_data)

    def encode(self) -> bytes:
        return (
            self._header(self.measurement_summary_hash_type, self.slot_id)
            + _u16(self.req_session_id)
            + bytes((self.session_policy, 0))
            + self.random_data
            + self.exchange_data
            + _u16(len(self.opaque_data))
            + self.opaque_data
        )

    @classmethod
    def decode(cls, data: bytes, *, dhe_size: int) -> Self:
        _positive("dhe_size", dhe_size)
        hdr, r = cls._open(data)
        session_id = r.u16("ReqSessionID")
        policy = r.u8("SessionPolicy")
        r.u8("Reserved")
        random = r.take(RANDOM_DATA_SIZE, "RandomData")
        exchange = r.take(dhe_size, "ExchangeData")
        opaque = r.take(r.u16("OpaqueDataLength"), "OpaqueData")
        r.end()
        kind = _enum(MeasurementSummaryHashType, hdr.param1, "MeasurementSummaryHashType")
        return _build(
            cls,
            version=hdr.version,
            measurement_summary_hash_type=kind,
            slot_id=hdr.param2,
            req_session_id=session_id,
            session_policy=policy if hdr.version >= SpdmVersion.V12 else 0,
            random_data=random,
            exchange_data=exchange,
            opaque_data=opaque,
        )


@dataclass(frozen=True, kw_only=True)
class KeyExchangeRsp(_Message):
    """KEY_EXCHANGE_RSP.

    Wire layout::

        +-----+------+-----------------------------+----------+
        | ver | 0x64 | Param1: HeartbeatPeriod     | reserved |
        +-----+------+-----------------------------+----------+
        | RspSessionID (u16) | MutAuthRequested | ReqSlotIDParam ([3:0])                |
        | RandomData (32)                                                             |
        | ExchangeData (D)                                                            |
        | MeasurementSummaryHash (H, absent when the request asked for none)          |
        | OpaqueDataLength (u16, <= 1024) | OpaqueData                                |
        | Signature (S)                                                               |
        | ResponderVerifyData (H; absent when both sides set HANDSHAKE_IN_THE_CLEAR)  |
        +-----------------------------------------------------------------------------+
    """

    CODE = ResponseCode.KEY_EXCHANGE_RSP
    NAME = "KEY_EXCHANGE_RSP"
    IS_REQUEST = False
    MIN_VERSION = SpdmVersion.V11
    version: int = SpdmVersion.V12
    heartbeat_period: int = 0
    rsp_session_id: int
    mut_auth_requested: int = 0
    req_slot_id: int = 0
    random_data: bytes
    exchange_data: bytes
    measurement_summary_hash: bytes = b""
    opaque_data: bytes = b""
    signature: bytes
    responder_verify_data: bytes = b""

    def _validate(self) -> None:
        _uint("heartbeat_period", self.heartbeat_period, 8)
        _uint("rsp_session_id", self.rsp_session_id, 16)
        _uint("mut_auth_requested", self.mut_auth_requested, 3)
        _one_bit_at_most("mut_auth_requested", self.mut_auth_requested)
        _uint("req_slot_id", self.req_slot_id, 4)
        _blob("random_data", self.random_data, RANDOM_DATA_SIZE)
        _nonempty("exchange_data", self.exchange_data)
        _blob("measurement_summary_hash", self.measurement_summary_hash)
        _opaque(self.opaque_data)
        _nonempty("signature", self.signature)
        _blob("responder_verify_data", self.responder_verify_data)

    def encode(self) -> bytes:
        return (
            self._header(self.heartbeat_period)
            + _u16(self.rsp_session_id)
            + bytes((self.mut_auth_requested, self.req_slot_id))
            + self.random_data
            + self.exchange_data
            + self.measurement_summary_hash
            + _u16(len(self.opaque_data))
            + self.opaque_data
            + self.signature
            + self.responder_verify_data
        )

    @classmethod
    def decode(
        cls,
        data: bytes,
        *,
        dhe_size: int,
        hash_size: int,
        signature_size: int,
        measurement_summary: bool,
        responder_verify_data: bool = True,
    ) -> Self:
        _positive("dhe_size", dhe_size)
        _positive("hash_size", hash_size)
        _positive("signature_size", signature_size)
        hdr, r = cls._open(data)
        session_id = r.u16("RspSessionID")
        mut_auth = r.u8("MutAuthRequested") & 0x7
        if mut_auth & (mut_auth - 1):
            raise SpdmDecodeError(f"{cls.NAME}: MutAuthRequested {mut_auth:#x} sets several bits")
        req_slot = r.u8("ReqSlotIDParam") & 0xF
        random = r.take(RANDOM_DATA_SIZE, "RandomData")
        exchange = r.take(dhe_size, "ExchangeData")
        summary = r.take(hash_size, "MeasurementSummaryHash") if measurement_summary else b""
        opaque = r.take(r.u16("OpaqueDataLength"), "OpaqueData")
        signature = r.take(signature_size, "Signature")
        verify = r.take(hash_size, "ResponderVerifyData") if responder_verify_data else b""
        r.end()
        return _build(
            cls,
            version=hdr.version,
            heartbeat_period=hdr.param1,
            rsp_session_id=session_id,
            mut_auth_requested=MutAuthRequest(mut_auth),
            req_slot_id=req_slot,
            random_data=random,
            exchange_data=exchange,
            measurement_summary_hash=summary,
            opaque_data=opaque,
            signature=signature,
            responder_verify_data=verify,
        )


@dataclass(frozen=True, kw_only=True)
class Finish(_Message):
    """FINISH (1.1+; DSP0274 1.2, "FINISH request and FINISH_RSP response messages").

    Wire layout::

        +-----+------+----------------------------------+------------------------------+
        | ver | 0xE5 | Param1: bit 0 SignatureIncluded  | Param2: ReqSlotID (0..7, 0xFF|
        |     |      | (mutual authentication)          | = public key) if signed      |
        +-----+------+----------------------------------+------------------------------+
        | Signature (S of ReqBaseAsymAlg)                      only if SignatureIncluded |
        | RequesterVerifyData (H)                                                      |
        +------------------------------------------------------------------------------+
    """

    CODE = RequestCode.FINISH
    NAME = "FINISH"
    IS_REQUEST = True
    MIN_VERSION = SpdmVersion.V11
    version: int = SpdmVersion.V12
    signature: bytes = b""
    req_slot_id: int = 0
    requester_verify_data: bytes

    def _validate(self) -> None:
        _blob("signature", self.signature)
        if self.signature:
            _slot("req_slot_id", self.req_slot_id, extra=PUBLIC_KEY_SLOT)
        elif self.req_slot_id:
            raise LocalProtocolError("req_slot_id goes with a signature only")
        _nonempty("requester_verify_data", self.requester_verify_data)

    def encode(self) -> bytes:
        hdr = self._header(int(bool(self.signature)), self.req_slot_id)
        return hdr + self.signature + self.requester_verify_data

    @classmethod
    def decode(cls, data: bytes, *, hash_size: int, signature_size: int = 0) -> Self:
        """``signature_size`` is the requester's (ReqBaseAsymAlg); 0 if none was negotiated."""
        _positive("hash_size", hash_size)
        _uint("signature_size", signature_size, 16)
        hdr, r = cls._open(data)
        signed = bool(hdr.param1 & 1)
        if signed and not signature_size:
            raise SpdmDecodeError(
                f"{cls.NAME} says a signature is included, but no requester signature "
                "algorithm was negotiated"
            )
        signature = r.take(signature_size, "Signature") if signed else b""
        verify = r.take(hash_size, "RequesterVerifyData")
        r.end()
        return _build(
            cls,
            version=hdr.version,
            signature=signature,
            req_slot_id=hdr.param2 if signed else 0,
            requester_verify_data=verify,
        )


@dataclass(frozen=True, kw_only=True)
class FinishRsp(_Message):
    """FINISH_RSP.

    Wire layout::

        +-----+------+----------+----------+
        | ver | 0x65 | reserved | reserved |
        +-----+------+----------+----------+
        | ResponderVerifyData (H)   only when both sides set HANDSHAKE_IN_THE_CLEAR_CAP |
        +-------------------------------------------------------------------------------+
    """

    CODE = ResponseCode.FINISH_RSP
    NAME = "FINISH_RSP"
    IS_REQUEST = False
    MIN_VERSION = SpdmVersion.V11
    version: int = SpdmVersion.V12
    responder_verify_data: bytes = b""

    def _validate(self) -> None:
        _blob("responder_verify_data", self.responder_verify_data)

    def encode(self) -> bytes:
        return self._header() + self.responder_verify_data

    @classmethod
    def decode(
        cls, data: bytes, *, hash_size: int = 0, responder_verify_data: bool = False
    ) -> Self:
        if responder_verify_data:
            _positive("hash_size", hash_size)
        hdr, r = cls._open(data)
        verify = r.take(hash_size, "ResponderVerifyData") if responder_verify_data else b""
        r.end()
        return _build(cls, version=hdr.version, responder_verify_data=verify)


# --------------------------------------------------------------------------------------------
# The encapsulated request flow (mutual authentication; DSP0274 1.2 §10.18-10.19)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GetEncapsulatedRequest(_Bare):
    """GET_ENCAPSULATED_REQUEST: the requester asks for the responder's next request.

    Wire layout: the header alone (``ver | 0xEA | reserved | reserved``).
    """

    CODE = RequestCode.GET_ENCAPSULATED_REQUEST
    NAME = "GET_ENCAPSULATED_REQUEST"
    IS_REQUEST = True
    MIN_VERSION = SpdmVersion.V11


@dataclass(frozen=True, kw_only=True)
class _Encapsulating(_Message):
    """A message that carries another SPDM message, tagged with Param1 RequestID."""

    version: int = SpdmVersion.V12
    request_id: int = 0
    payload: bytes = b""

    def _validate(self) -> None:
        _uint("request_id", self.request_id, 8)
        _blob("payload", self.payload)

    def encode(self) -> bytes:
        return self._header(self.request_id) + self.payload

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        return _build(
            cls, version=hdr.version, request_id=hdr.param1, payload=r.take(r.remaining(), "")
        )


@dataclass(frozen=True, kw_only=True)
class EncapsulatedRequest(_Encapsulating):
    """ENCAPSULATED_REQUEST: a request of the responder's (GET_DIGESTS, GET_CERTIFICATE, ...).

    Wire layout::

        +-----+------+-----------------+----------+------------------------------+
        | ver | 0x6A | Param1 RequestID| reserved | EncapsulatedRequest (SPDM)   |
        +-----+------+-----------------+----------+------------------------------+
    """

    CODE = ResponseCode.ENCAPSULATED_REQUEST
    NAME = "ENCAPSULATED_REQUEST"
    IS_REQUEST = False
    MIN_VERSION = SpdmVersion.V11


@dataclass(frozen=True, kw_only=True)
class DeliverEncapsulatedResponse(_Encapsulating):
    """DELIVER_ENCAPSULATED_RESPONSE: the requester's answer to an encapsulated request.

    Wire layout::

        +-----+------+------------------------------+----------+------------------------+
        | ver | 0xEB | Param1 RequestID (the one it | reserved | EncapsulatedResponse   |
        |     |      | answers)                     |          | (SPDM)                 |
        +-----+------+------------------------------+----------+------------------------+
    """

    CODE = RequestCode.DELIVER_ENCAPSULATED_RESPONSE
    NAME = "DELIVER_ENCAPSULATED_RESPONSE"
    IS_REQUEST = True
    MIN_VERSION = SpdmVersion.V11


class EncapPayloadType(IntEnum):
    """ENCAPSULATED_RESPONSE_ACK Param2."""

    ABSENT = 0  # the flow is over
    PRESENT = 1  # another encapsulated request follows
    REQ_SLOT_NUMBER = 2  # over; one byte follows: the slot the requester signs FINISH with


@dataclass(frozen=True, kw_only=True)
class EncapsulatedResponseAck(_Message):
    """ENCAPSULATED_RESPONSE_ACK: the responder took the response; maybe the next request.

    Wire layout (AckRequestID and its 3 reserved bytes from 1.2 on)::

        +-----+------+------------------+--------------------+
        | ver | 0x6B | Param1 RequestID | Param2 PayloadType |
        +-----+------+------------------+--------------------+
        | AckRequestID (1) | reserved (3)     (1.2+)          |
        +------------------------------------------------------+
        | EncapsulatedRequest (PRESENT) or ReqSlotNumber (1)   |
        +------------------------------------------------------+
    """

    CODE = ResponseCode.ENCAPSULATED_RESPONSE_ACK
    NAME = "ENCAPSULATED_RESPONSE_ACK"
    IS_REQUEST = False
    MIN_VERSION = SpdmVersion.V11
    version: int = SpdmVersion.V12
    request_id: int = 0
    payload_type: int = EncapPayloadType.ABSENT
    ack_request_id: int = 0
    payload: bytes = b""

    def _validate(self) -> None:
        _uint("request_id", self.request_id, 8)
        _uint("ack_request_id", self.ack_request_id, 8)
        if self.payload_type not in set(EncapPayloadType):
            raise LocalProtocolError(f"PayloadType {self.payload_type!r} is not 0, 1 or 2")
        _blob("payload", self.payload)
        if self.payload_type == EncapPayloadType.ABSENT and self.payload:
            raise LocalProtocolError("PayloadType ABSENT carries no payload")
        if self.payload_type == EncapPayloadType.REQ_SLOT_NUMBER and len(self.payload) != 1:
            raise LocalProtocolError("PayloadType REQ_SLOT_NUMBER carries one byte")

    def encode(self) -> bytes:
        ack = bytes((self.ack_request_id, 0, 0, 0)) if self.version >= SpdmVersion.V12 else b""
        return self._header(self.request_id, self.payload_type) + ack + self.payload

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        ack_request_id = 0
        if hdr.version >= SpdmVersion.V12:
            ack_request_id = r.u8("AckRequestID")
            r.take(3, "Reserved")
        if hdr.param2 not in set(EncapPayloadType):
            raise SpdmDecodeError(f"{cls.NAME}: PayloadType {hdr.param2} is not 0, 1 or 2")
        return _build(
            cls,
            version=hdr.version,
            request_id=hdr.param1,
            payload_type=hdr.param2,
            ack_request_id=ack_request_id,
            payload=r.take(r.remaining(), "payload"),
        )


# --------------------------------------------------------------------------------------------
# VENDOR_DEFINED_REQUEST / VENDOR_DEFINED_RESPONSE
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _VendorDefined(_Message):
    version: int = SpdmVersion.V12
    standard_id: int
    vendor_id: bytes
    payload: bytes

    def _validate(self) -> None:
        _uint("standard_id", self.standard_id, 16)
        _blob("vendor_id", self.vendor_id, max_size=0xFF)
        _blob("payload", self.payload)

    @property
    def pci_protocol_id(self) -> int | None:
        """The PCI-SIG protocol ID (payload byte 0) of a PCI-SIG message, else None."""
        is_pci = self.standard_id == PCI_SIG_STANDARD_ID
        if is_pci and self.vendor_id == _u16(PCI_SIG_VENDOR_ID) and self.payload:
            return _known(PciProtocolId, self.payload[0])
        return None

    @classmethod
    def pci_sig(cls, protocol_id: int, message: bytes, *, version: int = SpdmVersion.V12) -> Self:
        """A PCI-SIG message: StandardID 3, VendorID 0001h, payload = protocol ID + ``message``."""
        _uint("protocol_id", protocol_id, 8)
        return cls(
            version=version,
            standard_id=PCI_SIG_STANDARD_ID,
            vendor_id=_u16(PCI_SIG_VENDOR_ID),
            payload=bytes((protocol_id,)) + message,
        )

    def encode(self) -> bytes:
        return (
            self._header()
            + _u16(self.standard_id)
            + bytes((len(self.vendor_id),))
            + self.vendor_id
            + _u16(len(self.payload))
            + self.payload
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        standard = r.u16("StandardID")
        vendor = r.take(r.u8("Len"), "VendorID")
        payload = r.take(r.u16("PayloadLength"), "VendorDefinedPayload")
        r.end()
        return _build(
            cls,
            version=hdr.version,
            standard_id=_known(StandardId, standard),
            vendor_id=vendor,
            payload=payload,
        )


@dataclass(frozen=True, kw_only=True)
class VendorDefinedRequest(_VendorDefined):
    """VENDOR_DEFINED_REQUEST (DSP0274 1.2, "VENDOR_DEFINED_REQUEST request message").

    Wire layout::

        +-----+------+----------+----------+
        | ver | 0xFE | reserved | reserved |   (Param1 bit 7 "Large" is 1.4)
        +-----+------+----------+----------+
        | StandardID (u16) | Len (1) | VendorID (Len bytes)                           |
        | ReqLength (u16)  | VendorDefinedReqPayload (ReqLength bytes)                |
        +-----------------------------------------------------------------------------+
        PCI-SIG: StandardID 0x0003, Len 2, VendorID 0x0001, payload[0] = protocol ID
        (0 IDE_KM, 1 TDISP)
    """

    CODE = RequestCode.VENDOR_DEFINED_REQUEST
    NAME = "VENDOR_DEFINED_REQUEST"
    IS_REQUEST = True


@dataclass(frozen=True, kw_only=True)
class VendorDefinedResponse(_VendorDefined):
    """VENDOR_DEFINED_RESPONSE: the request layout with code 0x7E and RespLength."""

    CODE = ResponseCode.VENDOR_DEFINED_RESPONSE
    NAME = "VENDOR_DEFINED_RESPONSE"
    IS_REQUEST = False


# --------------------------------------------------------------------------------------------
# ERROR
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseNotReadyData:
    """ExtendedErrorData of ERROR(ResponseNotReady).

    Wire layout::

        +------------+-------------+-------+------+
        | RDExponent | RequestCode | Token | RDTM |
        +------------+-------------+-------+------+
        the responder is ready after 2^RDExponent us; the requester may wait up to RDTM times that
    """

    rd_exponent: int
    request_code: int
    token: int
    rdtm: int

    def __post_init__(self) -> None:
        for name in ("rd_exponent", "request_code", "token", "rdtm"):
            _uint(name, getattr(self, name), 8)

    @property
    def ready_after_us(self) -> int:
        return 1 << self.rd_exponent

    @property
    def give_up_after_us(self) -> int:
        return (1 << self.rd_exponent) * self.rdtm

    def encode(self) -> bytes:
        return bytes((self.rd_exponent, self.request_code, self.token, self.rdtm))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) != 4:
            raise SpdmDecodeError(f"ResponseNotReady extended data is 4 bytes, got {len(data)}")
        return cls(data[0], _known(RequestCode, data[1]), data[2], data[3])


@dataclass(frozen=True, kw_only=True)
class ErrorResponse(_Message):
    """ERROR (DSP0274 1.2/1.3, "ERROR response message").

    Wire layout::

        +-----+------+---------------------+----------------------+
        | ver | 0x7F | Param1: ErrorCode   | Param2: ErrorData    |
        +-----+------+---------------------+----------------------+
        | ExtendedErrorData: 4 bytes ResponseNotReadyData for     |
        | RESPONSE_NOT_READY, raw bytes (possibly none) otherwise  |
        +----------------------------------------------------------+
    """

    CODE = ResponseCode.ERROR
    NAME = "ERROR"
    IS_REQUEST = False
    version: int = SpdmVersion.V12
    error_code: int
    error_data: int = 0
    extended: bytes | ResponseNotReadyData = b""

    def _validate(self) -> None:
        _uint("error_code", self.error_code, 8)
        _uint("error_data", self.error_data, 8)
        if self.error_code == ErrorCode.RESPONSE_NOT_READY:
            if not isinstance(self.extended, ResponseNotReadyData):
                raise LocalProtocolError("ResponseNotReady needs ResponseNotReadyData")
        elif isinstance(self.extended, ResponseNotReadyData):
            raise LocalProtocolError("ResponseNotReadyData goes with RESPONSE_NOT_READY only")
        else:
            _blob("extended", self.extended)

    def encode(self) -> bytes:
        ext = self.extended
        raw = ext.encode() if isinstance(ext, ResponseNotReadyData) else ext
        return self._header(self.error_code, self.error_data) + raw

    @classmethod
    def decode(cls, data: bytes) -> Self:
        hdr, r = cls._open(data)
        rest = r.take(r.remaining(), "ExtendedErrorData")
        extended: bytes | ResponseNotReadyData = rest
        if hdr.param1 == ErrorCode.RESPONSE_NOT_READY:
            extended = ResponseNotReadyData.decode(rest)
        return _build(
            cls,
            version=hdr.version,
            error_code=_known(ErrorCode, hdr.param1),
            error_data=hdr.param2,
            extended=extended,
        )


# --------------------------------------------------------------------------------------------
# Opaque data, format 1 (1.2): secured-message version negotiation in KEY_EXCHANGE(_RSP)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpaqueElement:
    """One element of OpaqueDataFmt1 (DSP0274 1.2, "General opaque data format").

    Wire layout::

        +-----+-----------+---------------------+----------------------------+
        | ID  | VendorLen | VendorID (VendorLen) | OpaqueElementDataLen (u16)|
        +-----+-----------+---------------------+----------------------------+
        | OpaqueElementData | AlignPadding: zeros up to a multiple of 4      |
        +-------------------------------------------------------------------+
    """

    registry_id: int
    data: bytes
    vendor_id: bytes = b""

    def __post_init__(self) -> None:
        _uint("registry_id", self.registry_id, 8)
        _blob("vendor_id", self.vendor_id, max_size=0xFF)
        _blob("data", self.data)

    def encode(self) -> bytes:
        raw = bytes((self.registry_id, len(self.vendor_id))) + self.vendor_id
        raw += _u16(len(self.data)) + self.data
        return raw + bytes(-len(raw) % 4)


@dataclass(frozen=True)
class OpaqueDataFmt1:
    """OpaqueDataFmt1 (1.2+).

    Wire layout::

        +---------------+-------------------+
        | TotalElements | reserved (3)      |
        +---------------+-------------------+
        | OpaqueElement[0], [1], ...  (each padded to 4 bytes)  |
        +--------------------------------------------------------+
    """

    elements: tuple[OpaqueElement, ...]

    def __post_init__(self) -> None:
        if len(self.elements) > 0xFF:
            raise LocalProtocolError(f"{len(self.elements)} opaque elements, at most 255")
        if len(self.encode()) > MAX_OPAQUE_SIZE:
            raise LocalProtocolError("opaque data longer than 1024 bytes")

    def encode(self) -> bytes:
        return bytes((len(self.elements), 0, 0, 0)) + b"".join(e.encode() for e in self.elements)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(bytes(data), "OpaqueDataFmt1")
        if len(r.data) > MAX_OPAQUE_SIZE:
            raise SpdmDecodeError(f"opaque data of {len(r.data)} bytes (> {MAX_OPAQUE_SIZE})")
        count = r.u8("TotalElements")
        r.take(3, "Reserved")
        elements = []
        for i in range(count):
            start = r.pos
            registry = r.u8(f"element[{i}].ID")
            vendor = r.take(r.u8(f"element[{i}].VendorLen"), f"element[{i}].VendorID")
            body = r.take(r.u16(f"element[{i}].OpaqueElementDataLen"), f"element[{i}].data")
            r.take(-(r.pos - start) % 4, f"element[{i}].AlignPadding")
            elements.append(OpaqueElement(registry, body, vendor))
        r.end()
        return cls(tuple(elements))


def _sm_element(data_id: int, payload: bytes) -> OpaqueElement:
    return OpaqueElement(StandardId.DMTF, bytes((1, data_id)) + payload)


def _find_sm_element(data: bytes, data_id: int, what: str) -> _Reader:
    found = [
        e
        for e in OpaqueDataFmt1.decode(data).elements
        if e.registry_id == StandardId.DMTF
        and not e.vendor_id
        and e.data[:2] == bytes((1, data_id))
    ]
    if len(found) != 1:
        raise SpdmDecodeError(f"opaque data holds {len(found)} DMTF {what} elements, needs one")
    return _Reader(found[0].data, what, 2)


@dataclass(frozen=True)
class OpaqueSupportedVersions:
    """What a requester puts in KEY_EXCHANGE OpaqueData: the DSP0277 versions it supports.

    One DMTF element (ID 0, VendorLen 0) whose data is::

        | SMDataVersion = 1 | SMDataID = 1 | VersionCount | Version[VersionCount] (u16) |
    """

    versions: tuple[VersionNumberEntry, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.versions) <= 0xFF:
            raise LocalProtocolError(f"{len(self.versions)} supported versions, must be 1..255")

    def to_fmt1(self) -> OpaqueDataFmt1:
        body = bytes((len(self.versions),)) + b"".join(_u16(v.to_int()) for v in self.versions)
        return OpaqueDataFmt1((_sm_element(SecuredMessageDataId.SUPPORTED_VERSIONS, body),))

    def encode(self) -> bytes:
        return self.to_fmt1().encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _find_sm_element(data, SecuredMessageDataId.SUPPORTED_VERSIONS, "supported versions")
        count = r.u8("VersionCount")
        if count == 0:
            raise SpdmDecodeError("supported versions element lists no version")
        versions = tuple(VersionNumberEntry.from_int(r.u16("Version")) for _ in range(count))
        r.end()
        return cls(versions)


@dataclass(frozen=True)
class OpaqueVersionSelection:
    """What a responder puts in KEY_EXCHANGE_RSP OpaqueData: the DSP0277 version it chose.

    Wire layout::

        | SMDataVersion = 1 | SMDataID = 0 | SelectedVersion (u16) |
    """

    version: VersionNumberEntry

    def to_fmt1(self) -> OpaqueDataFmt1:
        body = _u16(self.version.to_int())
        return OpaqueDataFmt1((_sm_element(SecuredMessageDataId.VERSION_SELECTION, body),))

    def encode(self) -> bytes:
        return self.to_fmt1().encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _find_sm_element(data, SecuredMessageDataId.VERSION_SELECTION, "version selection")
        version = VersionNumberEntry.from_int(r.u16("SelectedVersion"))
        r.end()
        return cls(version)


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------

Request = (
    GetVersion
    | GetCapabilities
    | NegotiateAlgorithms
    | GetDigests
    | GetCertificate
    | Challenge
    | GetMeasurements
    | KeyExchange
    | Finish
    | Heartbeat
    | KeyUpdate
    | EndSession
    | VendorDefinedRequest
    | RespondIfReady
    | GetEncapsulatedRequest
    | DeliverEncapsulatedResponse
)
Response = (
    VersionResponse
    | Capabilities
    | Algorithms
    | Digests
    | Certificate
    | ChallengeAuth
    | Measurements
    | KeyExchangeRsp
    | FinishRsp
    | HeartbeatAck
    | KeyUpdateAck
    | EndSessionAck
    | VendorDefinedResponse
    | EncapsulatedRequest
    | EncapsulatedResponseAck
    | ErrorResponse
)


@dataclass(frozen=True)
class NegotiatedSizes:
    """What the variable-length decoders need to know; all zero/False/None before ALGORITHMS.

    - ``version``: the negotiated SPDMVersion.  When set, a message carrying another version
      (GET_VERSION and VERSION excepted, they always carry 1.0) is VERSION_MISMATCH.
    - ``hash_size`` H (BaseHashSel), ``signature_size`` S (BaseAsymSel), ``dhe_size`` D (DHE
      group), ``req_signature_size`` (ReqBaseAsymAlg, mutual authentication): from ALGORITHMS.
    - ``handshake_in_the_clear``: both sides set HANDSHAKE_IN_THE_CLEAR_CAP; KEY_EXCHANGE_RSP
      then has no ResponderVerifyData and FINISH_RSP has one.
    - ``measurement_summary`` (the CHALLENGE / KEY_EXCHANGE asked for a summary hash) and
      ``measurement_signed`` (the GET_MEASUREMENTS asked for a signature) describe the request
      a response answers: :meth:`for_response_to` sets them.
    """

    version: int | None = None
    hash_size: int = 0
    signature_size: int = 0
    dhe_size: int = 0
    req_signature_size: int = 0
    handshake_in_the_clear: bool = False
    measurement_summary: bool = False
    measurement_signed: bool = False

    def __post_init__(self) -> None:
        if self.version is not None and self.version not in _KNOWN_VERSIONS:
            raise LocalProtocolError(f"negotiated version {self.version!r} is not 1.0..1.3")
        for name in ("hash_size", "signature_size", "dhe_size", "req_signature_size"):
            _uint(name, getattr(self, name), 16)

    @classmethod
    def from_algorithms(
        cls, algorithms: Algorithms, *, handshake_in_the_clear: bool = False
    ) -> Self:
        """Version and sizes from a decoded ALGORITHMS (fields it left at 0 stay 0)."""

        def size(fn: Any, value: int) -> int:
            return fn(value) if value else 0

        return cls(
            version=algorithms.version,
            hash_size=size(hash_size, algorithms.base_hash_sel),
            signature_size=size(signature_size, algorithms.base_asym_sel),
            dhe_size=size(dhe_size, algorithms.dhe_group),
            req_signature_size=size(signature_size, algorithms.req_base_asym_alg),
            handshake_in_the_clear=handshake_in_the_clear,
        )

    def for_response_to(self, request: Request) -> Self:
        """These sizes with the per-exchange flags the response to ``request`` needs."""
        summary, signed = False, False
        if isinstance(request, Challenge | KeyExchange):
            summary = request.measurement_summary_hash_type != MeasurementSummaryHashType.NONE
        if isinstance(request, GetMeasurements):
            signed = request.signature_requested
        return replace(self, measurement_summary=summary, measurement_signed=signed)


def _need(size: int, what: str, name: str) -> int:
    if size <= 0:
        raise SpdmDecodeError(
            f"{name} needs the negotiated {what}, which is not known (no ALGORITHMS yet)",
            ErrorCode.UNEXPECTED_REQUEST,
        )
    return size


def _code_name(enum: type[IntEnum], code: int) -> str:
    known = _known(enum, code)
    return f"{code:#04x} ({known.name})" if isinstance(known, enum) else f"{code:#04x}"


def _check_negotiated(hdr: SpdmHeader, ctx: NegotiatedSizes, exempt: int) -> None:
    if ctx.version is not None and hdr.code != exempt and hdr.version != ctx.version:
        raise SpdmDecodeError(
            f"message carries SPDM {_vtext(hdr.version)}, {_vtext(ctx.version)} was negotiated",
            ErrorCode.VERSION_MISMATCH,
        )


def decode_request(data: bytes, ctx: NegotiatedSizes | None = None) -> Request:
    """Decode any request this codec models; ``ctx`` defaults to "nothing negotiated yet"."""
    ctx = ctx or NegotiatedSizes()
    hdr = peek_header(data)
    _check_negotiated(hdr, ctx, RequestCode.GET_VERSION)
    match hdr.code:
        case RequestCode.GET_VERSION:
            return GetVersion.decode(data)
        case RequestCode.GET_CAPABILITIES:
            return GetCapabilities.decode(data)
        case RequestCode.NEGOTIATE_ALGORITHMS:
            return NegotiateAlgorithms.decode(data)
        case RequestCode.GET_DIGESTS:
            return GetDigests.decode(data)
        case RequestCode.GET_CERTIFICATE:
            return GetCertificate.decode(data)
        case RequestCode.CHALLENGE:
            return Challenge.decode(data)
        case RequestCode.GET_MEASUREMENTS:
            return GetMeasurements.decode(data)
        case RequestCode.KEY_EXCHANGE:
            return KeyExchange.decode(
                data, dhe_size=_need(ctx.dhe_size, "DHE size", "KEY_EXCHANGE")
            )
        case RequestCode.FINISH:
            return Finish.decode(
                data,
                hash_size=_need(ctx.hash_size, "hash size", "FINISH"),
                signature_size=ctx.req_signature_size,
            )
        case RequestCode.HEARTBEAT:
            return Heartbeat.decode(data)
        case RequestCode.KEY_UPDATE:
            return KeyUpdate.decode(data)
        case RequestCode.END_SESSION:
            return EndSession.decode(data)
        case RequestCode.VENDOR_DEFINED_REQUEST:
            return VendorDefinedRequest.decode(data)
        case RequestCode.RESPOND_IF_READY:
            return RespondIfReady.decode(data)
        case RequestCode.GET_ENCAPSULATED_REQUEST:
            return GetEncapsulatedRequest.decode(data)
        case RequestCode.DELIVER_ENCAPSULATED_RESPONSE:
            return DeliverEncapsulatedResponse.decode(data)
    raise SpdmDecodeError(
        f"request code {_code_name(RequestCode, hdr.code)} is not supported here",
        ErrorCode.UNSUPPORTED_REQUEST,
        hdr.code,
    )


def decode_response(data: bytes, ctx: NegotiatedSizes | None = None) -> Response:
    """Decode any response this codec models, sized by ``ctx`` (see :class:`NegotiatedSizes`)."""
    ctx = ctx or NegotiatedSizes()
    hdr = peek_header(data)
    _check_negotiated(hdr, ctx, ResponseCode.VERSION)
    match hdr.code:
        case ResponseCode.VERSION:
            return VersionResponse.decode(data)
        case ResponseCode.CAPABILITIES:
            return Capabilities.decode(data)
        case ResponseCode.ALGORITHMS:
            return Algorithms.decode(data)
        case ResponseCode.DIGESTS:
            return Digests.decode(data, hash_size=_need(ctx.hash_size, "hash size", "DIGESTS"))
        case ResponseCode.CERTIFICATE:
            return Certificate.decode(data)
        case ResponseCode.CHALLENGE_AUTH:
            return ChallengeAuth.decode(
                data,
                hash_size=_need(ctx.hash_size, "hash size", "CHALLENGE_AUTH"),
                signature_size=_need(ctx.signature_size, "signature size", "CHALLENGE_AUTH"),
                measurement_summary=ctx.measurement_summary,
            )
        case ResponseCode.MEASUREMENTS:
            size = 0
            if ctx.measurement_signed:
                size = _need(ctx.signature_size, "signature size", "signed MEASUREMENTS")
            return Measurements.decode(data, signature_size=size)
        case ResponseCode.KEY_EXCHANGE_RSP:
            return KeyExchangeRsp.decode(
                data,
                dhe_size=_need(ctx.dhe_size, "DHE size", "KEY_EXCHANGE_RSP"),
                hash_size=_need(ctx.hash_size, "hash size", "KEY_EXCHANGE_RSP"),
                signature_size=_need(ctx.signature_size, "signature size", "KEY_EXCHANGE_RSP"),
                measurement_summary=ctx.measurement_summary,
                responder_verify_data=not ctx.handshake_in_the_clear,
            )
        case ResponseCode.FINISH_RSP:
            verify = ctx.handshake_in_the_clear
            h = _need(ctx.hash_size, "hash size", "FINISH_RSP") if verify else 0
            return FinishRsp.decode(data, hash_size=h, responder_verify_data=verify)
        case ResponseCode.HEARTBEAT_ACK:
            return HeartbeatAck.decode(data)
        case ResponseCode.KEY_UPDATE_ACK:
            return KeyUpdateAck.decode(data)
        case ResponseCode.END_SESSION_ACK:
            return EndSessionAck.decode(data)
        case ResponseCode.VENDOR_DEFINED_RESPONSE:
            return VendorDefinedResponse.decode(data)
        case ResponseCode.ENCAPSULATED_REQUEST:
            return EncapsulatedRequest.decode(data)
        case ResponseCode.ENCAPSULATED_RESPONSE_ACK:
            return EncapsulatedResponseAck.decode(data)
        case ResponseCode.ERROR:
            return ErrorResponse.decode(data)
    raise SpdmDecodeError(
        f"response code {_code_name(ResponseCode, hdr.code)} is not supported here",
        ErrorCode.INVALID_RESPONSE_CODE,
        hdr.code,
    )


_R = TypeVar("_R")


def decode_doe_padded(
    decode: Callable[[bytes, NegotiatedSizes], _R], data: bytes, ctx: NegotiatedSizes
) -> tuple[_R, bytes]:
    """Decode a message that came in a DOE object, zero-padded to a whole DW (PCIe §6.30.1).

    The bytes are tried as they are, then without one to three trailing zero bytes.  Returns
    the message and its exact bytes (what transcripts take); raises the first decode error.
    """
    first: SpdmDecodeError | None = None
    for trim in range(4):
        if trim and (len(data) < trim or data[-trim] != 0):
            break
        raw = data[: len(data) - trim]
        try:
            return decode(raw, ctx), raw
        except SpdmDecodeError as exc:
            first = first or exc
            if exc.error_code != ErrorCode.INVALID_REQUEST:
                break  # not a length problem: padding is not the cause
    assert first is not None
    raise first
