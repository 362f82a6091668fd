from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.codec.doe import (
    MAX_LENGTH_DW,
    DataObject,
    DiscoveryRequest,
    DiscoveryResponse,
    DoeType,
    decode_length,
    encode_length,
)
from hil.errors import LocalProtocolError, PeerProtocolError


def test_object_layout_matches_the_spec() -> None:
    obj = DataObject(0x0001, DoeType.CMA_SPDM, b"\x10\x84\x00\x00\xaa")
    data = obj.encode()
    dw0, dw1 = struct.unpack_from("<II", data)
    assert dw0 == 0x0001_0001  # vendor 0001h, type 01h in [23:16]
    assert dw1 == 4  # 2 header DW + 2 payload DW (5 bytes padded to 8)
    assert data[8:] == b"\x10\x84\x00\x00\xaa\x00\x00\x00"
    assert DataObject.decode(data) == DataObject(1, 1, b"\x10\x84\x00\x00\xaa\x00\x00\x00")


def test_length_encoding_edges() -> None:
    assert encode_length(2) == 2
    assert encode_length(MAX_LENGTH_DW) == 0
    assert decode_length(0) == MAX_LENGTH_DW
    with pytest.raises(LocalProtocolError):
        encode_length(1)
    with pytest.raises(LocalProtocolError):
        encode_length(MAX_LENGTH_DW + 1)


@pytest.mark.parametrize(
    ("words", "why"),
    [
        ([0x0001_0001, 3], "says 3 DW but the object carries 2"),
        ([0x0001_0001, 1], "Length 1 is illegal"),
        ([0x0101_0001, 2], "reserved bits [31:24]"),
        ([0x0001_0001, 0x4000_0002], "reserved bits [31:30]"),
        ([0x0000_0001, (5 << 18) | 2], "Connection ID"),
    ],
)
def test_decoder_rejects_malformed_objects(words: list[int], why: str) -> None:
    data = b"".join(struct.pack("<I", w) for w in words)
    with pytest.raises(PeerProtocolError, match=why.replace("[", r"\[").replace("]", r"\]")):
        DataObject.decode(data)


def test_decoder_rejects_ragged_bytes() -> None:
    with pytest.raises(PeerProtocolError):
        DataObject.decode(b"\x01\x00\x01\x00\x02\x00\x00")


def test_discovery_round_trip() -> None:
    req = DiscoveryRequest(5, 2)
    assert req.encode()[8:] == b"\x05\x02\x00\x00"
    assert DiscoveryRequest.decode(req.encode()) == req
    rsp = DiscoveryResponse(0x0001, 0x02, 3)
    assert rsp.encode()[8:] == b"\x01\x00\x02\x03"
    assert DiscoveryResponse.decode(rsp.encode()) == rsp
    assert not DiscoveryResponse(0xFFFF, 0, 0).valid


def test_discovery_from_another_type_is_the_peers_error() -> None:
    with pytest.raises(PeerProtocolError, match="expected a discovery object"):
        DiscoveryResponse.decode(DataObject(1, 1, bytes(4)).encode())


@given(
    vendor=st.integers(0, 0xFFFF),
    dtype=st.integers(0, 0xFF),
    payload=st.binary(max_size=300),
)
def test_encode_decode_round_trip(vendor: int, dtype: int, payload: bytes) -> None:
    obj = DataObject(vendor, dtype, payload)
    back = DataObject.decode(obj.encode())
    assert (back.vendor_id, back.type) == (vendor, dtype)
    assert back.payload == payload + bytes(-len(payload) % 4)
    assert back.length_dw == obj.length_dw


@given(st.binary(max_size=64))
def test_decoder_never_fails_any_other_way(data: bytes) -> None:
    try:
        obj = DataObject.decode(data)
    except PeerProtocolError:
        return
    assert obj.encode() == data
