from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from hil.codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from hil.codec.secured import (
    DecryptError,
    SecuredChannel,
    SecuredMessage,
    SecuredSession,
    open_,
    peek_session_id,
    seal,
)
from hil.codec.spdm_crypto import (
    MAX_SEQUENCE_NUMBER,
    SHA384,
    AeadAlg,
    DheGroup,
    DheKeyPair,
    KeySchedule,
    aead_nonce,
)
from hil.errors import LocalProtocolError, PeerProtocolError

KEY = bytes(range(32))
IV = bytes(range(0xA0, 0xAC))
SID = 0xFFFE_0001
MSG = b"\x12\xe8\x00\x00"  # HEARTBEAT


def test_record_layout_and_independent_decrypt() -> None:
    record = seal(SID, KEY, IV, 5, MSG)
    session_id, length = struct.unpack_from("<IH", record)
    assert session_id == SID
    assert length == 2 + len(MSG) + 16 == len(record) - 6
    assert peek_session_id(record) == SID
    # Decrypt with cryptography directly: AAD = SessionID || Length, nonce = IV ^ LE(seq).
    plain = AESGCM(KEY).decrypt(aead_nonce(IV, 5), record[6:], record[:6])
    assert plain == struct.pack("<H", len(MSG)) + MSG
    msg = SecuredMessage.decode(record)
    assert (msg.session_id, msg.length, msg.aad) == (SID, length, record[:6])
    assert msg.encode() == record


def test_round_trip() -> None:
    record = seal(SID, KEY, IV, 0, MSG)
    assert open_(record, KEY, IV, 0) == (SID, MSG)
    empty = seal(SID, KEY, IV, 7, b"")
    assert open_(empty, KEY, IV, 7) == (SID, b"")


@pytest.mark.parametrize("aead", list(AeadAlg))
def test_round_trip_every_aead(aead: AeadAlg) -> None:
    key = bytes(aead.key_size)
    record = seal(SID, key, IV, 3, MSG, aead=aead)
    assert open_(record, key, IV, 3, aead=aead) == (SID, MSG)


def test_record_travels_in_a_doe_object_with_dw_padding() -> None:
    record = seal(SID, KEY, IV, 0, b"\x12\x65\x00\x00\x01")  # 6 + 2 + 5 + 16 = 29 bytes
    obj = DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, record)
    back = DataObject.decode(obj.encode())
    assert len(back.payload) == 32
    assert open_(back.payload, KEY, IV, 0) == (SID, b"\x12\x65\x00\x00\x01")


@pytest.mark.parametrize("pad", [0, 1, 2, 3])
def test_up_to_three_padding_bytes_are_ignored(pad: int) -> None:
    record = seal(SID, KEY, IV, 0, MSG)
    assert open_(record + bytes(pad), KEY, IV, 0) == (SID, MSG)


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


RECORD = seal(SID, KEY, IV, 9, MSG)


@pytest.mark.parametrize(
    "index",
    [
        0,  # SessionID (AAD)
        3,
        *range(6, len(RECORD) - 16),  # encrypted AppDataLength and message
        len(RECORD) - 16,  # MAC
        len(RECORD) - 1,
    ],
)
def test_a_flipped_bit_fails_authentication(index: int) -> None:
    with pytest.raises(DecryptError):
        open_(_flip(RECORD, index), KEY, IV, 9)


def test_length_is_authenticated_too() -> None:
    # Shrink Length by one and drop a byte: the structure is fine, the AAD is not.
    shorter = RECORD[:4] + struct.pack("<H", len(RECORD) - 7) + RECORD[6:-1]
    with pytest.raises(DecryptError):
        open_(shorter, KEY, IV, 9)


@pytest.mark.parametrize(
    ("key", "seq"), [(KEY, 8), (KEY, 10), (bytes(32), 9)], ids=["seq-1", "seq+1", "key"]
)
def test_wrong_sequence_number_or_key_fails(key: bytes, seq: int) -> None:
    with pytest.raises(DecryptError):
        open_(RECORD, key, IV, seq)


def test_big_endian_nonce_is_a_different_nonce() -> None:
    record = seal(SID, KEY, IV, 1, MSG, byteorder="big")
    assert open_(record, KEY, IV, 1, byteorder="big") == (SID, MSG)
    with pytest.raises(DecryptError):
        open_(record, KEY, IV, 1)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "shorter than 6"),
        (b"\x01\x00\x00\x00\x12", "shorter than 6"),
        (struct.pack("<IH", SID, 40) + bytes(20), "only 20 bytes follow"),
        (struct.pack("<IH", SID, 17) + bytes(17), "cannot hold"),
        (struct.pack("<IH", SID, 18) + bytes(22), "more than DW padding"),
    ],
)
def test_malformed_lengths(data: bytes, why: str) -> None:
    with pytest.raises(PeerProtocolError, match=why) as info:
        open_(data, KEY, IV, 0)
    assert not isinstance(info.value, DecryptError)


def _seal_plaintext(plaintext: bytes, seq: int = 0) -> bytes:
    """A record whose plaintext the test chooses, sealed with cryptography directly."""
    aad = struct.pack("<IH", SID, len(plaintext) + 16)
    return aad + AESGCM(KEY).encrypt(aead_nonce(IV, seq), plaintext, aad)


def test_app_data_length_past_the_plaintext() -> None:
    with pytest.raises(PeerProtocolError, match="AppDataLength 9 exceeds"):
        open_(_seal_plaintext(struct.pack("<H", 9) + MSG), KEY, IV, 0)


def test_random_padding_is_refused_unless_allowed() -> None:
    record = _seal_plaintext(struct.pack("<H", len(MSG)) + MSG + b"\xaa\xbb")
    with pytest.raises(PeerProtocolError, match="random padding"):
        open_(record, KEY, IV, 0)
    assert open_(record, KEY, IV, 0, allow_random_padding=True) == (SID, MSG)


def test_seal_refuses_what_does_not_fit() -> None:
    with pytest.raises(LocalProtocolError):
        seal(SID, KEY, IV, 0, bytes(0xFFFF - 17))
    with pytest.raises(LocalProtocolError):
        seal(SID, KEY, IV, MAX_SEQUENCE_NUMBER + 1, MSG)
    with pytest.raises(LocalProtocolError):
        seal(SID, KEY[:16], IV, 0, MSG)
    assert len(seal(SID, KEY, IV, 0, bytes(0xFFFF - 18))) == 6 + 0xFFFF


def test_peek_session_id_needs_four_bytes() -> None:
    with pytest.raises(PeerProtocolError):
        peek_session_id(b"\x01\x02\x03")


# -- channels and sessions --------------------------------------------------------------------


def _schedule() -> KeySchedule:
    return KeySchedule(0x12, SHA384)


def _channel_pair() -> tuple[SecuredChannel, SecuredChannel]:
    ks = _schedule()
    traffic = ks.traffic(bytes(range(48)))
    return SecuredChannel(SID, ks, traffic), SecuredChannel(SID, ks, traffic)


def test_channel_sequence_numbers_advance() -> None:
    tx, rx = _channel_pair()
    records = [tx.seal(bytes([n])) for n in range(3)]
    assert tx.sequence_number == 3
    assert len(set(records)) == 3  # the same key, a new nonce each time
    assert [rx.open(r) for r in records] == [b"\x00", b"\x01", b"\x02"]
    assert rx.sequence_number == 3


def test_channel_replay_fails() -> None:
    tx, rx = _channel_pair()
    first = tx.seal(b"one")
    assert rx.open(first) == b"one"
    with pytest.raises(DecryptError):
        rx.open(first)  # replayed: the receiver is at sequence number 1 now


def test_channel_reorder_fails_and_cannot_resynchronise() -> None:
    tx, rx = _channel_pair()
    a, b = tx.seal(b"a"), tx.seal(b"b")
    with pytest.raises(DecryptError):
        rx.open(b)
    with pytest.raises(DecryptError):
        rx.open(a)  # the failed record consumed sequence number 0
    assert rx.sequence_number == 2


def test_channel_refuses_another_session_without_consuming() -> None:
    tx, rx = _channel_pair()
    record = tx.seal(MSG)
    foreign = struct.pack("<I", SID ^ 1) + record[4:]
    with pytest.raises(PeerProtocolError, match="on session") as info:
        rx.open(foreign)
    assert not isinstance(info.value, DecryptError)
    assert rx.sequence_number == 0
    assert rx.open(record) == MSG


def test_channel_key_update_commit_and_rollback() -> None:
    tx, rx = _channel_pair()
    rx.open(tx.seal(b"before"))
    old = tx.traffic
    tx.key_update()
    rx.key_update()
    assert tx.traffic != old and tx.traffic == rx.traffic
    assert (tx.sequence_number, rx.sequence_number) == (0, 0)
    assert rx.open(tx.seal(b"after")) == b"after"
    rx.rollback()
    assert rx.traffic == old and rx.sequence_number == 1
    with pytest.raises(DecryptError):
        rx.open(tx.seal(b"new keys, old receiver"))
    tx.commit()
    assert not tx.update_pending
    with pytest.raises(LocalProtocolError):
        tx.rollback()


def _session_pair(
    *, data_phase: bool = True
) -> tuple[SecuredSession, SecuredSession, KeySchedule, bytes]:
    """A requester and a responder that each derived their keys from their own ECDH half."""
    req_dhe, rsp_dhe = (
        DheKeyPair.generate(DheGroup.SECP384R1),
        DheKeyPair.generate(DheGroup.SECP384R1),
    )
    th1, th2 = SHA384.digest(b"TH1"), SHA384.digest(b"TH2")
    ks_q, ks_r = _schedule(), _schedule()
    requester = SecuredSession(
        SID,
        ks_q,
        ks_q.handshake(req_dhe.shared_secret(rsp_dhe.public_bytes()), th1),
        requester=True,
    )
    responder = SecuredSession(
        SID,
        ks_r,
        ks_r.handshake(rsp_dhe.shared_secret(req_dhe.public_bytes()), th1),
        requester=False,
    )
    if data_phase:
        requester.enter_data_phase(th2)
        responder.enter_data_phase(th2)
    return requester, responder, ks_q, th2


def test_session_handshake_then_data_phase() -> None:
    requester, responder, _, th2 = _session_pair(data_phase=False)
    finish = b"\x12\xe5\x00\x00" + bytes(48)
    assert responder.open(requester.seal(finish)) == finish
    assert requester.open(responder.seal(b"\x12\x65\x00\x00")) == b"\x12\x65\x00\x00"
    handshake_record = requester.seal(b"late handshake message")
    requester.enter_data_phase(th2)
    responder.enter_data_phase(th2)
    assert requester.send.sequence_number == 0
    data_keys = responder.receive.traffic
    assert responder.data is not None and data_keys == responder.data.request
    with pytest.raises(DecryptError):  # handshake keys are gone from the data phase
        open_(handshake_record, data_keys.key, data_keys.iv, 0)
    assert responder.open(requester.seal(b"\x12\xe8\x00\x00")) == b"\x12\xe8\x00\x00"
    assert requester.open(responder.seal(b"\x12\x68\x00\x00")) == b"\x12\x68\x00\x00"


def test_directions_use_different_keys() -> None:
    requester, responder, _, _ = _session_pair()
    record = requester.seal(MSG)
    with pytest.raises(DecryptError):
        requester.open(record)  # a requester opens with the response keys
    assert responder.open(record) == MSG


def test_key_update_one_direction_on_both_sides() -> None:
    requester, responder, _, _ = _session_pair()
    old_response = requester.response_channel.traffic
    requester.key_update()  # UpdateKey: request direction only
    responder.key_update()
    assert requester.request_channel.traffic == responder.request_channel.traffic
    assert requester.response_channel.traffic == old_response
    assert responder.open(requester.seal(b"q")) == b"q"
    assert requester.open(responder.seal(b"r")) == b"r"
    requester.commit_key_update()
    responder.commit_key_update()


def test_key_update_all_and_rollback() -> None:
    requester, responder, _, _ = _session_pair()
    requester.key_update(request=True, response=True)
    responder.key_update(request=True, response=True)
    assert responder.open(requester.seal(b"q")) == b"q"
    assert requester.open(responder.seal(b"r")) == b"r"
    before = requester.send.traffic
    requester.key_update()
    requester.rollback_key_update()
    assert requester.send.traffic == before
    assert responder.open(requester.seal(b"still old")) == b"still old"


def test_key_update_on_one_side_only_breaks_the_session() -> None:
    requester, responder, _, _ = _session_pair()
    requester.key_update()
    with pytest.raises(DecryptError):
        responder.open(requester.seal(b"q"))


def test_key_update_needs_the_data_phase() -> None:
    requester, _, _, _ = _session_pair(data_phase=False)
    with pytest.raises(LocalProtocolError):
        requester.key_update()


# -- fuzzing: only PeerProtocolError escapes a decoder ----------------------------------------


@given(st.binary(max_size=80))
def test_fuzz_decode_and_open(data: bytes) -> None:
    try:
        SecuredMessage.decode(data)
    except PeerProtocolError:
        pass
    try:
        open_(data, KEY, IV, 0)
    except PeerProtocolError:
        pass


@given(st.lists(st.tuples(st.integers(0, len(RECORD) + 3), st.integers(0, 255)), max_size=4))
def test_fuzz_mutated_records(edits: list[tuple[int, int]]) -> None:
    data = bytearray(RECORD + bytes(3))
    for index, value in edits:
        if index < len(data):
            data[index] = value
    try:
        session_id, message = open_(bytes(data), KEY, IV, 9)
    except PeerProtocolError:
        return
    assert (session_id, message) == (SID, MSG)  # only edits that changed nothing may pass
