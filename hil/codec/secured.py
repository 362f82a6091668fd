r"""Secured SPDM messages over PCI-DOE: the DSP0277 record inside a DOE type-02h object.

Record layout as bound for PCI-DOE (PCIe §6.31.4; libspdm ``spdm_secured_message.h`` and
``libspdm_secmes_encode_decode.c``; all integers little-endian)::

     0               4           6                 8                        6+Length-16
    +---------------+-----------+-----------------+------------------------+-----------+
    | SessionID (4) | Length(2) | AppDataLength(2)| SPDM message           | MAC (16)  |
    +---------------+-----------+-----------------+------------------------+-----------+
     \______ AAD ______________/ \________ encrypted (AEAD) _______________/

- PCI-DOE carries no sequence number in the record (S = 0) and no random padding (R = 0): both
  sides keep the 64-bit sequence number to themselves and XOR it into the IV
  (:func:`hil.codec.spdm_crypto.aead_nonce`).
- Length counts the bytes after it: the encrypted AppDataLength and message plus the MAC.  It
  excludes the zero padding that brings the DOE object to a whole DW; a decoder here accepts up
  to 3 such trailing bytes.
- The MAC is the AEAD tag over AAD = SessionID || Length and the plaintext.

Sequence numbers follow DSP0277 §4.2.3 as libspdm does: each record sealed or opened on a
direction consumes the next number, and a record that fails to open still consumes its number,
so the session cannot resynchronise and is expected to end (a replayed record never opens).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, Self

from cryptography.exceptions import InvalidTag

from ..errors import LocalProtocolError, PeerProtocolError
from .spdm_crypto import (
    MAX_SEQUENCE_NUMBER,
    AeadAlg,
    DataSecrets,
    HandshakeSecrets,
    KeySchedule,
    TrafficSecret,
    aead_nonce,
)

__all__ = [
    "HEADER_SIZE",
    "MAC_SIZE",
    "DecryptError",
    "SecuredChannel",
    "SecuredMessage",
    "SecuredSession",
    "open_",
    "peek_session_id",
    "seal",
]

HEADER_SIZE = 6  # SessionID + Length: the AAD
MAC_SIZE = 16
_APP_LENGTH_SIZE = 2
_MAX_DW_PADDING = 3

ByteOrder = Literal["little", "big"]


class DecryptError(PeerProtocolError):
    """A secured message did not authenticate (bad MAC, wrong key, wrong sequence number)."""


def peek_session_id(data: bytes) -> int:
    """The SessionID of a secured record, without checking anything else."""
    if len(data) < 4:
        raise PeerProtocolError(f"secured message of {len(data)} bytes has no SessionID")
    return int(struct.unpack_from("<I", data)[0])


@dataclass(frozen=True)
class SecuredMessage:
    """A secured record as it travels: the header in clear, the rest as ciphertext and MAC."""

    session_id: int
    ciphertext: bytes
    mac: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.session_id <= 0xFFFF_FFFF:
            raise LocalProtocolError(f"session ID {self.session_id:#x} is not 32 bits")
        if self.length > 0xFFFF:
            raise LocalProtocolError(f"secured message Length {self.length} exceeds 0xFFFF")

    @property
    def length(self) -> int:
        """The Length field: bytes after it, MAC included."""
        return len(self.ciphertext) + len(self.mac)

    @property
    def aad(self) -> bytes:
        return struct.pack("<IH", self.session_id, self.length)

    def encode(self) -> bytes:
        return self.aad + self.ciphertext + self.mac

    @classmethod
    def decode(cls, data: bytes, *, mac_size: int = MAC_SIZE) -> Self:
        """Split a record into its fields; up to 3 trailing bytes of DOE padding are ignored."""
        if len(data) < HEADER_SIZE:
            raise PeerProtocolError(f"secured message of {len(data)} bytes is shorter than 6")
        session_id, length = struct.unpack_from("<IH", data)
        body = len(data) - HEADER_SIZE
        if length > body:
            raise PeerProtocolError(f"secured message Length {length} but only {body} bytes follow")
        if body - length > _MAX_DW_PADDING:
            raise PeerProtocolError(
                f"secured message Length {length} leaves {body - length} bytes after the MAC "
                f"(more than DW padding)"
            )
        if length < mac_size + _APP_LENGTH_SIZE:
            raise PeerProtocolError(
                f"secured message Length {length} cannot hold AppDataLength "
                f"and a {mac_size}-byte MAC"
            )
        end = HEADER_SIZE + length
        return cls(
            session_id, bytes(data[HEADER_SIZE : end - mac_size]), bytes(data[end - mac_size : end])
        )


def seal(
    session_id: int,
    key: bytes,
    iv: bytes,
    seq: int,
    app_message: bytes,
    *,
    aead: AeadAlg = AeadAlg.AES_256_GCM,
    byteorder: ByteOrder = "little",
) -> bytes:
    """Encrypt ``app_message`` into a secured record with sequence number ``seq``."""
    if len(app_message) > 0xFFFF - _APP_LENGTH_SIZE - aead.tag_size:
        raise LocalProtocolError(f"application message of {len(app_message)} bytes is too long")
    plaintext = struct.pack("<H", len(app_message)) + app_message
    length = len(plaintext) + aead.tag_size
    aad = struct.pack("<IH", session_id, length)
    sealed = aead.cipher(key).encrypt(aead_nonce(iv, seq, byteorder), plaintext, aad)
    return SecuredMessage(session_id, sealed[: -aead.tag_size], sealed[-aead.tag_size :]).encode()


def open_(
    data: bytes,
    key: bytes,
    iv: bytes,
    seq: int,
    *,
    aead: AeadAlg = AeadAlg.AES_256_GCM,
    byteorder: ByteOrder = "little",
    allow_random_padding: bool = False,
) -> tuple[int, bytes]:
    """Authenticate and decrypt a secured record; returns (session ID, application message).

    Plaintext after the AppDataLength bytes of message is DSP0277 random padding, which the
    PCI-DOE binding forbids: it is a :class:`PeerProtocolError` unless ``allow_random_padding``.
    """
    msg = SecuredMessage.decode(data, mac_size=aead.tag_size)
    try:
        plaintext = aead.cipher(key).decrypt(
            aead_nonce(iv, seq, byteorder), msg.ciphertext + msg.mac, msg.aad
        )
    except InvalidTag as exc:
        raise DecryptError(
            f"secured message for session {msg.session_id:#010x} (sequence number {seq}) "
            f"failed authentication"
        ) from exc
    (app_length,) = struct.unpack_from("<H", plaintext)
    room = len(plaintext) - _APP_LENGTH_SIZE
    if app_length > room:
        raise PeerProtocolError(f"AppDataLength {app_length} exceeds the {room} decrypted bytes")
    if app_length < room and not allow_random_padding:
        raise PeerProtocolError(
            f"{room - app_length} bytes of random padding after the message (none over PCI-DOE)"
        )
    return msg.session_id, plaintext[_APP_LENGTH_SIZE : _APP_LENGTH_SIZE + app_length]


class SecuredChannel:
    """One direction of one session: its traffic secret, AEAD key, IV and sequence number.

    A sender seals with it and the peer's receiver opens with an equal channel.  KEY_UPDATE
    moves to the next secret (:meth:`key_update`) and keeps the previous one until
    :meth:`commit` or :meth:`rollback` (KEY_UPDATE VerifyNewKey decides which).
    """

    def __init__(
        self,
        session_id: int,
        schedule: KeySchedule,
        traffic: TrafficSecret,
        *,
        byteorder: ByteOrder = "little",
        allow_random_padding: bool = False,
    ) -> None:
        if not 0 <= session_id <= 0xFFFF_FFFF:
            raise LocalProtocolError(f"session ID {session_id:#x} is not 32 bits")
        self.session_id = session_id
        self.schedule = schedule
        self.byteorder: ByteOrder = byteorder
        self.allow_random_padding = allow_random_padding
        self._traffic = traffic
        self._seq = 0
        self._backup: tuple[TrafficSecret, int] | None = None

    @property
    def traffic(self) -> TrafficSecret:
        return self._traffic

    @property
    def sequence_number(self) -> int:
        """The sequence number the next record will use."""
        return self._seq

    @property
    def update_pending(self) -> bool:
        return self._backup is not None

    def _take(self, error: type[LocalProtocolError] | type[PeerProtocolError]) -> int:
        if self._seq > MAX_SEQUENCE_NUMBER:
            raise error(f"session {self.session_id:#010x}: sequence numbers exhausted, update keys")
        seq = self._seq
        self._seq += 1
        return seq

    def seal(self, app_message: bytes) -> bytes:
        seq = self._take(LocalProtocolError)
        return seal(
            self.session_id,
            self._traffic.key,
            self._traffic.iv,
            seq,
            app_message,
            aead=self.schedule.aead,
            byteorder=self.byteorder,
        )

    def open(self, data: bytes) -> bytes:
        """Open the next record; a record of another session is refused without consuming."""
        session_id = peek_session_id(data)
        if session_id != self.session_id:
            raise PeerProtocolError(
                f"secured message for session {session_id:#010x} on session {self.session_id:#010x}"
            )
        seq = self._take(PeerProtocolError)
        _, message = open_(
            data,
            self._traffic.key,
            self._traffic.iv,
            seq,
            aead=self.schedule.aead,
            byteorder=self.byteorder,
            allow_random_padding=self.allow_random_padding,
        )
        return message

    def rekey(self, traffic: TrafficSecret) -> None:
        """Switch to new keys (handshake to data phase): sequence number back to 0."""
        self._traffic = traffic
        self._seq = 0
        self._backup = None

    def key_update(self) -> None:
        """KEY_UPDATE: derive the next secret, restart at sequence number 0, keep a backup."""
        self._backup = (self._traffic, self._seq)
        self._traffic = self.schedule.update(self._traffic)
        self._seq = 0

    def commit(self) -> None:
        """The updated keys are confirmed: forget the previous ones."""
        self._backup = None

    def rollback(self) -> None:
        """Return to the keys and sequence number from before the last :meth:`key_update`."""
        if self._backup is None:
            raise LocalProtocolError("no key update to roll back")
        self._traffic, self._seq = self._backup
        self._backup = None


class SecuredSession:
    """Both directions of one session as one role sees them.

    The requester seals with the request-direction keys and opens with the response-direction
    keys; the responder the other way round.  It starts in the handshake phase (keys from TH1,
    protecting FINISH/FINISH_RSP) and moves to the data phase with :meth:`enter_data_phase`.
    """

    def __init__(
        self,
        session_id: int,
        schedule: KeySchedule,
        handshake: HandshakeSecrets,
        *,
        requester: bool,
        byteorder: ByteOrder = "little",
    ) -> None:
        self.session_id = session_id
        self.schedule = schedule
        self.requester = requester
        self.handshake = handshake
        self.data: DataSecrets | None = None
        request = SecuredChannel(session_id, schedule, handshake.request, byteorder=byteorder)
        response = SecuredChannel(session_id, schedule, handshake.response, byteorder=byteorder)
        self.request_channel = request
        self.response_channel = response

    @property
    def send(self) -> SecuredChannel:
        return self.request_channel if self.requester else self.response_channel

    @property
    def receive(self) -> SecuredChannel:
        return self.response_channel if self.requester else self.request_channel

    def seal(self, app_message: bytes) -> bytes:
        return self.send.seal(app_message)

    def open(self, data: bytes) -> bytes:
        return self.receive.open(data)

    def enter_data_phase(self, th2: bytes) -> DataSecrets:
        """Derive the data secrets from TH2 and switch both directions to them."""
        self.data = self.schedule.data(self.handshake, th2)
        self.request_channel.rekey(self.data.request)
        self.response_channel.rekey(self.data.response)
        return self.data

    def key_update(self, *, request: bool = True, response: bool = False) -> None:
        """KEY_UPDATE UpdateKey (``request`` only) or UpdateAllKeys (both directions)."""
        if self.data is None:
            raise LocalProtocolError("KEY_UPDATE before the session reached the data phase")
        if request:
            self.request_channel.key_update()
        if response:
            self.response_channel.key_update()

    def commit_key_update(self) -> None:
        self.request_channel.commit()
        self.response_channel.commit()

    def rollback_key_update(self) -> None:
        for channel in (self.request_channel, self.response_channel):
            if channel.update_pending:
                channel.rollback()
