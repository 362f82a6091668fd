from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.codec import ide_km
from hil.codec.ide_km import (
    AddressAssociation,
    IdeCapability,
    IdeKmDecodeError,
    IdeStreamState,
    KeyDirection,
    KeyProg,
    KeySet,
    KeySlot,
    KGostopAck,
    KpAck,
    KpAckStatus,
    KSetGo,
    KSetStop,
    LinkIdeBlock,
    ObjectId,
    Query,
    QueryResp,
    SelectiveIdeBlock,
    SubStream,
    decode,
    from_vendor_defined,
    ifv_from_wire,
    ifv_to_wire,
    key_from_wire,
    key_to_wire,
)
from hil.codec.spdm import VendorDefinedRequest, VendorDefinedResponse
from hil.errors import LocalProtocolError


def hx(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


# The AES-GCM key of tee-io-validator doc/key_byte_order.md (as OpenSSL and PCIe Appendix L
# write it, k[0] first), and how that document shows it in the IDE_KM KEY_PROG message.
EXAMPLE_KEY = hx(
    "df 25 41 52 05 6e 02 e0 ef 8b 7f eb 97 39 d4 d96a 4e b8 01 03 24 1d f7 cd 5e 24 b4 9c cd 27 20"
)
EXAMPLE_KEY_WIRE = hx(
    "52 41 25 df e0 02 6e 05 eb 7f 8b ef d9 d4 39 9701 b8 4e 6a f7 1d 24 03 b4 24 5e cd 20 27 cd 9c"
)


# --------------------------------------------------------------------------------------------
# Key and IFV byte order
# --------------------------------------------------------------------------------------------


def test_key_wire_order_matches_the_reference_example() -> None:
    assert key_to_wire(EXAMPLE_KEY) == EXAMPLE_KEY_WIRE
    assert key_from_wire(EXAMPLE_KEY_WIRE) == EXAMPLE_KEY
    # The first key DW, read as the little-endian DW the message carries, holds k[0] in 31:24.
    assert int.from_bytes(EXAMPLE_KEY_WIRE[:4], "little") == 0xDF254152


def test_ifv_wire_order_puts_the_high_dw_first() -> None:
    assert ifv_to_wire(1) == hx("00 00 00 00 01 00 00 00")
    assert ifv_to_wire(0x0123_4567_89AB_CDEF) == hx("67 45 23 01 ef cd ab 89")
    assert ifv_from_wire(hx("67 45 23 01 ef cd ab 89")) == 0x0123_4567_89AB_CDEF


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1))
def test_key_and_ifv_wire_round_trip(key: bytes, ifv: int) -> None:
    assert key_from_wire(key_to_wire(key)) == key
    assert ifv_from_wire(ifv_to_wire(ifv)) == ifv


def test_key_wire_functions_refuse_wrong_sizes() -> None:
    with pytest.raises(LocalProtocolError):
        key_to_wire(bytes(31))
    with pytest.raises(IdeKmDecodeError):
        key_from_wire(bytes(33))
    with pytest.raises(LocalProtocolError):
        ifv_to_wire(2**64)
    with pytest.raises(IdeKmDecodeError):
        ifv_from_wire(bytes(7))


# --------------------------------------------------------------------------------------------
# Byte-exact layouts
# --------------------------------------------------------------------------------------------


def test_key_sub_stream_byte() -> None:
    slot = KeySlot(KeySet.K1, KeyDirection.TX, SubStream.COMPLETION)
    assert slot.encode() == 0x23  # sub-stream in 7:4, RxTxB bit 1, key set bit 0
    assert KeySlot.decode(0x23) == slot
    assert KeySlot.decode(0x10) == KeySlot(KeySet.K0, KeyDirection.RX, SubStream.NON_POSTED)
    assert len(set(KeySlot.all(KeySet.K0))) == 6
    with pytest.raises(IdeKmDecodeError, match="bits 3:2"):
        KeySlot.decode(0x04)
    assert KeySlot.decode(0x04, strict=False) == KeySlot(0, 0, 0)
    reserved = KeySlot.decode(0x30)
    assert reserved.sub_stream == 3 and not reserved.valid


def test_query_layout() -> None:
    assert Query(port_index=5).encode() == hx("00 00 00 05")
    assert Query.decode(hx("00 00 00 05")) == Query(port_index=5)


def test_key_prog_layout() -> None:
    msg = KeyProg(
        stream_id=0x5A,
        slot=KeySlot(KeySet.K1, KeyDirection.TX, SubStream.NON_POSTED),
        key=EXAMPLE_KEY,
        ifv=1,
        port_index=2,
    )
    wire = msg.encode()
    assert len(wire) == 48
    assert wire[:8] == hx("00 02 00 00 5a 00 13 02")
    assert wire[8:40] == EXAMPLE_KEY_WIRE
    assert wire[40:] == hx("00 00 00 00 01 00 00 00")
    assert KeyProg.decode(wire) == msg
    assert decode(wire) == msg


def test_key_never_appears_in_a_repr() -> None:
    msg = KeyProg(stream_id=1, slot=KeySlot(0, 0, 0), key=EXAMPLE_KEY)
    assert "df" not in repr(msg).lower().replace("ifv", "")
    assert EXAMPLE_KEY.hex() not in repr(msg)
    assert repr(EXAMPLE_KEY) not in repr(msg)


@pytest.mark.parametrize("status", list(KpAckStatus))
def test_kp_ack_layout_for_every_status(status: KpAckStatus) -> None:
    msg = KpAck(stream_id=7, slot=KeySlot(0, 1, 2), status=status, port_index=0)
    wire = msg.encode()
    assert wire == bytes((0x00, 0x03, 0, 0, 7, status, 0x22, 0))
    decoded = KpAck.decode(wire)
    assert decoded == msg and decoded.outcome is status


def test_kp_ack_reserved_status_reads_as_unspecified_failure() -> None:
    decoded = KpAck.decode(hx("00 03 00 00 07 9c 22 00"))
    assert decoded.status == 0x9C
    assert decoded.outcome is KpAckStatus.UNSPECIFIED_FAILURE
    assert decoded.encode() == hx("00 03 00 00 07 9c 22 00")


@pytest.mark.parametrize(
    ("cls", "object_id"),
    [(KSetGo, 0x04), (KSetStop, 0x05), (KGostopAck, 0x06)],
)
def test_key_set_command_layouts(cls: type[KSetGo], object_id: int) -> None:
    msg = cls(stream_id=0xFE, slot=KeySlot(1, 0, 1), port_index=3)
    wire = msg.encode()
    assert wire == bytes((0, object_id, 0, 0, 0xFE, 0, 0x11, 3))
    assert decode(wire) == msg


def _query_resp() -> QueryResp:
    cap = IdeCapability.build(link_tcs=2, selective_streams=2, aggregation=True, tee_limited=True)
    return QueryResp(
        port_index=0,
        dev_func=0x08,
        bus=0x3A,
        segment=0,
        max_port_index=0,
        capability=cap,
        control=0,
        link_blocks=(LinkIdeBlock(0x0100_0001, 2), LinkIdeBlock(0xFF00_0000, 0)),
        selective_blocks=(
            SelectiveIdeBlock(
                capability=2,
                control=0x0540_0001,
                status=2,
                rid_association_1=0x00_FF_FF_00,
                rid_association_2=0x00_01_00_01,
                address_associations=(
                    AddressAssociation.for_range(0x1_0000_0000, 0x1_3FFF_FFFF),
                    AddressAssociation.for_range(0xFE00_0000, 0xFEFF_FFFF, valid=False),
                ),
            ),
            SelectiveIdeBlock(capability=0, control=0xFF00_0000),
        ),
    )


def test_query_resp_layout_and_derived_counts() -> None:
    msg = _query_resp()
    cap = msg.capability
    assert cap.value == 0x0101_2053  # link, selective, aggregation, IDE_KM, 2 TCs, 2 streams
    assert (cap.link_block_count, cap.selective_block_count) == (2, 2)
    assert cap.ide_km_supported and cap.aggregation_supported and cap.tee_limited_supported
    wire = msg.encode()
    # header + cap + ctl + 2 x (2 DW) + (5 + 2 x 3 DW) + 5 DW
    assert len(wire) == 8 + 4 * (2 + 4 + 11 + 5)
    assert wire[:16] == hx("00 01 00 00 08 3a 00 00 53 20 01 01 00 00 00 00")
    assert wire[16:32] == hx("01 00 00 01 02 00 00 00 00 00 00 ff 00 00 00 00")
    decoded = QueryResp.decode(wire)
    assert decoded == msg
    assert decoded.words() == msg.words()
    assert decode(wire) == msg


def test_query_resp_register_views() -> None:
    msg = _query_resp()
    link = msg.link_blocks[0]
    assert link.enabled and link.stream_id == 1 and link.state is IdeStreamState.SECURE
    sel = msg.selective_blocks[0]
    assert sel.enabled and sel.stream_id == 5 and sel.default_stream
    assert (sel.rid_base, sel.rid_limit, sel.rid_valid) == (0x0100, 0xFFFF, True)
    first, second = sel.address_associations
    assert (first.valid, first.memory_base, first.memory_limit) == (
        True,
        0x1_0000_0000,
        0x1_3FFF_FFFF,
    )
    assert not second.valid and second.memory_base == 0xFE00_0000
    assert msg.selective_blocks[1].stream_id == 0xFF and not msg.selective_blocks[1].enabled


def test_query_resp_without_link_or_selective_blocks() -> None:
    cap = IdeCapability.build(link_tcs=0, selective_streams=0)
    msg = QueryResp(capability=cap)
    assert msg.encode() == hx("00 01 00 00 00 00 00 00 40 00 00 00 00 00 00 00")
    assert QueryResp.decode(msg.encode()) == msg
    # Link IDE not supported: bits 15:13 do not add blocks (Linux drivers/pci/ide.c agrees).
    sneaky = IdeCapability(0x40 | (7 << 13))
    assert sneaky.link_block_count == 0


def test_query_resp_block_counts_must_match_the_capability() -> None:
    cap = IdeCapability.build(link_tcs=1, selective_streams=0)
    with pytest.raises(LocalProtocolError, match="Link IDE blocks"):
        QueryResp(capability=cap)
    with pytest.raises(LocalProtocolError, match="address association"):
        SelectiveIdeBlock(capability=1, control=0)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda w: w[:-4], "truncated"),
        (lambda w: w + bytes(4), "after the blocks"),
        (lambda w: w[:-1], "truncated"),
        (lambda w: w[:2] + b"\x01" + w[3:], "reserved"),
        (lambda w: w[:8] + b"\x53\x20\x03\x01" + w[12:], "truncated"),  # 4 selective blocks
    ],
)
def test_query_resp_decoder_rejects(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IdeKmDecodeError, match=why):
        QueryResp.decode(mutate(_query_resp().encode()))


@pytest.mark.parametrize("extra", [bytes(4), bytes(288), b"\x01\x02\x03", b"\xff" * 9])
def test_query_resp_trailing_bytes_rejected_when_strict_kept_when_not(extra: bytes) -> None:
    msg = _query_resp()
    wire = msg.encode() + extra
    with pytest.raises(IdeKmDecodeError, match=f"{len(extra)} bytes after the blocks"):
        QueryResp.decode(wire)
    with pytest.raises(IdeKmDecodeError, match="after the blocks"):
        decode(wire)
    lenient = decode(wire, strict=False)
    assert isinstance(lenient, QueryResp)
    assert lenient.trailing == extra
    assert lenient == msg  # the registers it reports are all there
    assert lenient.words() == msg.words()
    assert lenient.encode() == msg.encode()  # re-encodes as a strict reader takes it
    assert QueryResp.decode(lenient.encode()).trailing == b""


def test_query_resp_lenient_still_refuses_what_it_cannot_read() -> None:
    wire = _query_resp().encode()
    for bad in (wire[:-4], wire[:-1], wire[:15]):
        with pytest.raises(IdeKmDecodeError):
            QueryResp.decode(bad, strict=False)
    with pytest.raises(LocalProtocolError, match="trailing"):
        QueryResp(capability=IdeCapability(0), trailing="x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Strictness, lengths, dispatch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "offset"),
    [
        (Query(port_index=1).encode(), 2),
        (KSetGo(stream_id=1, slot=KeySlot(0, 0, 0)).encode(), 2),
        (KSetGo(stream_id=1, slot=KeySlot(0, 0, 0)).encode(), 3),
        (KSetStop(stream_id=1, slot=KeySlot(0, 0, 0)).encode(), 5),
        (KGostopAck(stream_id=1, slot=KeySlot(0, 0, 0)).encode(), 5),
        (KeyProg(stream_id=1, slot=KeySlot(0, 0, 0), key=bytes(32)).encode(), 5),
        (KpAck(stream_id=1, slot=KeySlot(0, 0, 0)).encode(), 2),
    ],
)
def test_reserved_bytes_rejected_when_strict_ignored_when_not(wire: bytes, offset: int) -> None:
    bad = bytearray(wire)
    bad[offset] = 0xA5
    with pytest.raises(IdeKmDecodeError, match="reserved"):
        decode(bytes(bad))
    assert decode(bytes(bad), strict=False) == decode(wire)


@pytest.mark.parametrize(
    "wire",
    [
        Query().encode(),
        KeyProg(stream_id=1, slot=KeySlot(0, 0, 0), key=bytes(32)).encode(),
        KpAck(stream_id=1, slot=KeySlot(0, 0, 0)).encode(),
        KSetGo(stream_id=1, slot=KeySlot(0, 0, 0)).encode(),
        KSetStop(stream_id=1, slot=KeySlot(0, 0, 0)).encode(),
        KGostopAck(stream_id=1, slot=KeySlot(0, 0, 0)).encode(),
    ],
)
def test_fixed_lengths_are_exact(wire: bytes) -> None:
    name = ObjectId(wire[1]).name
    with pytest.raises(IdeKmDecodeError, match=name):
        decode(wire + b"\x00")
    with pytest.raises(IdeKmDecodeError, match=name):
        decode(wire[:-1])


def test_dispatch_errors() -> None:
    with pytest.raises(IdeKmDecodeError, match="Object ID 0x07"):
        decode(hx("00 07 00 00"))
    with pytest.raises(IdeKmDecodeError, match="Protocol ID 0x01"):
        decode(hx("01 00 00 00"))
    with pytest.raises(IdeKmDecodeError):
        decode(b"\x00")
    with pytest.raises(IdeKmDecodeError, match="not KEY_PROG"):
        KeyProg.decode(Query().encode())


def test_reserved_sub_stream_is_decoded_for_the_responder_to_answer() -> None:
    wire = bytearray(KeyProg(stream_id=1, slot=KeySlot(0, 0, 0), key=bytes(32)).encode())
    wire[6] = 0x70  # sub-stream 7: the responder answers KP_ACK 03h, so the codec must pass it
    msg = decode(bytes(wire))
    assert isinstance(msg, KeyProg) and msg.slot.sub_stream == 7 and not msg.slot.valid


def test_construction_refuses_bad_values() -> None:
    with pytest.raises(LocalProtocolError, match="32 bytes"):
        KeyProg(stream_id=1, slot=KeySlot(0, 0, 0), key=bytes(16))
    with pytest.raises(LocalProtocolError):
        KSetGo(stream_id=256, slot=KeySlot(0, 0, 0))
    with pytest.raises(LocalProtocolError):
        KeySlot(2, 0, 0)
    with pytest.raises(LocalProtocolError):
        AddressAssociation.for_range(0x1000, 0xFFFFF)


# --------------------------------------------------------------------------------------------
# SPDM VENDOR_DEFINED wrapping
# --------------------------------------------------------------------------------------------


def test_vendor_defined_round_trip() -> None:
    query = Query(port_index=0)
    vd = query.to_vendor_defined()
    assert isinstance(vd, VendorDefinedRequest)
    assert vd.encode() == hx("12 fe 00 00  03 00  02  01 00  04 00  00 00 00 00")
    assert from_vendor_defined(VendorDefinedRequest.decode(vd.encode())) == query
    resp = _query_resp().to_vendor_defined()
    assert isinstance(resp, VendorDefinedResponse)
    assert from_vendor_defined(VendorDefinedResponse.decode(resp.encode())) == _query_resp()


def test_vendor_defined_mismatches_are_rejected() -> None:
    ack = KGostopAck(stream_id=1, slot=KeySlot(0, 0, 0))
    wrong_kind = VendorDefinedRequest.pci_sig(ide_km.PROTOCOL_ID, ack.encode()[1:])
    with pytest.raises(IdeKmDecodeError, match="K_GOSTOP_ACK in a VENDOR_DEFINED_REQUEST"):
        from_vendor_defined(wrong_kind)
    other = VendorDefinedRequest(standard_id=0, vendor_id=b"", payload=Query().encode())
    with pytest.raises(IdeKmDecodeError, match="not a PCI-SIG"):
        from_vendor_defined(other)


# --------------------------------------------------------------------------------------------
# Round trips and fuzzing
# --------------------------------------------------------------------------------------------

slots = st.builds(
    KeySlot,
    st.sampled_from(list(KeySet)),
    st.sampled_from(list(KeyDirection)),
    st.integers(0, 15),
)
u8 = st.integers(0, 255)
u32 = st.integers(0, 2**32 - 1)

simple_messages = st.one_of(
    st.builds(Query, port_index=u8),
    st.builds(
        KeyProg,
        stream_id=u8,
        slot=slots,
        key=st.binary(min_size=32, max_size=32),
        ifv=st.integers(0, 2**64 - 1),
        port_index=u8,
    ),
    st.builds(KpAck, stream_id=u8, slot=slots, status=u8, port_index=u8),
    st.builds(KSetGo, stream_id=u8, slot=slots, port_index=u8),
    st.builds(KSetStop, stream_id=u8, slot=slots, port_index=u8),
    st.builds(KGostopAck, stream_id=u8, slot=slots, port_index=u8),
)


@st.composite
def query_resps(draw: st.DrawFn) -> QueryResp:
    link_tcs = draw(st.integers(0, 8))
    n_sel = draw(st.integers(0, 4))
    cap = IdeCapability.build(link_tcs=link_tcs, selective_streams=n_sel)
    links = tuple(LinkIdeBlock(draw(u32), draw(u32)) for _ in range(link_tcs))
    blocks = []
    for _ in range(n_sel):
        n_assoc = draw(st.integers(0, 15))
        assocs = tuple(AddressAssociation(draw(u32), draw(u32), draw(u32)) for _ in range(n_assoc))
        cap_reg = draw(u32) & ~0xF | n_assoc
        blocks.append(
            SelectiveIdeBlock(cap_reg, draw(u32), draw(u32), draw(u32), draw(u32), assocs)
        )
    return QueryResp(
        port_index=draw(u8),
        dev_func=draw(u8),
        bus=draw(u8),
        segment=draw(u8),
        max_port_index=draw(u8),
        capability=cap,
        control=draw(u32),
        link_blocks=links,
        selective_blocks=tuple(blocks),
    )


@settings(max_examples=150, deadline=None)
@given(st.one_of(simple_messages, query_resps()))
def test_every_message_round_trips(msg: ide_km.IdeKmMessage) -> None:
    assert decode(msg.encode()) == msg


@settings(max_examples=100, deadline=None)
@given(query_resps(), st.binary(min_size=1, max_size=64))
def test_query_resp_keeps_exactly_the_trailing_bytes(msg: QueryResp, extra: bytes) -> None:
    with pytest.raises(IdeKmDecodeError):
        decode(msg.encode() + extra)
    lenient = decode(msg.encode() + extra, strict=False)
    assert isinstance(lenient, QueryResp)
    assert lenient == msg and lenient.trailing == extra


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_fuzz_only_typed_errors_escape(data: bytes) -> None:
    for strict in (True, False):
        try:
            decode(data, strict=strict)
        except IdeKmDecodeError:
            pass


@settings(max_examples=250, deadline=None)
@given(st.integers(0, 7), st.binary(max_size=120))
def test_decoder_fuzz_behind_a_valid_header(object_id: int, rest: bytes) -> None:
    try:
        msg = decode(bytes((0, object_id)) + rest, strict=False)
    except IdeKmDecodeError:
        return
    assert decode(msg.encode()) == msg  # anything accepted re-encodes to a strict-valid form


@settings(max_examples=150, deadline=None)
@given(st.one_of(simple_messages, query_resps()), st.data())
def test_decoder_fuzz_mutated_messages(msg: ide_km.IdeKmMessage, data: st.DataObject) -> None:
    wire = bytearray(msg.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(u8)
    cut = data.draw(st.integers(0, len(wire)))
    try:
        decode(bytes(wire[:cut]))
    except IdeKmDecodeError:
        pass
