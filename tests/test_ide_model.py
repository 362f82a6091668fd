from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.codec.ide_km import (
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
    decode,
)
from hil.codec.ide_tlp import (
    Attr,
    CfgRead,
    CfgWrite,
    Completion,
    CplStatus,
    IdePrefix,
    IdeTlp,
    MemRead,
    MemWrite,
    SubStream,
    Tlp,
    TlpDecodeError,
    decode_tlp,
    pcrc,
)
from hil.errors import LocalProtocolError
from hil.ide_model import (
    PR_SENT_SYNC_LIMIT,
    IdeCheckFailed,
    IdeFailReason,
    IdeKeyUnusable,
    IdeMisrouted,
    IdePcrcCheckFailed,
    IdeStreamModel,
    PortSide,
    StreamKind,
    establish,
    ide_iv,
    program_keys,
)

STREAM = 0x2C
RP_RID = 0x0000
EP_RID = 0x0100


def hx(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def counting_keys() -> Callable[[int], bytes]:
    """A deterministic key source: key n is 32 bytes of n (keys differ per slot)."""
    counter = itertools.count(1)
    return lambda size: bytes([next(counter)]) * size


def pair(kind: StreamKind = StreamKind.SELECTIVE) -> tuple[IdeStreamModel, IdeStreamModel]:
    rp = IdeStreamModel(STREAM, side=PortSide.ROOT_PORT, kind=kind)
    ep = IdeStreamModel(STREAM, side=PortSide.ENDPOINT, kind=kind)
    establish(rp, ep, key_source=counting_keys())
    return rp, ep


def send(end: IdeStreamModel, tlp: Tlp, *, t: bool = False) -> IdeTlp:
    """Protect ``tlp`` at ``end``, which must be Secure."""
    ide = end.protect(tlp, t=t)
    assert ide is not None
    return ide


def write(size: int = 16, address: int = 0x1000_0000, tag: int = 0) -> MemWrite:
    return MemWrite.for_bytes(address, bytes(range(size)), requester_id=EP_RID, tag=tag)


def read(tag: int = 1) -> MemRead:
    return MemRead.for_bytes(0x1000_0000, 64, requester_id=EP_RID, tag=tag)


def completion(size: int = 16, tag: int = 1) -> Completion:
    return Completion(
        completer_id=RP_RID,
        requester_id=EP_RID,
        tag=tag,
        byte_count=max(size, 1),
        payload=bytes(i & 0xFF for i in range(size)),
    )


# --------------------------------------------------------------------------------------------
# TLP codec: byte-exact layouts
# --------------------------------------------------------------------------------------------


def test_mem_write_3dw_layout() -> None:
    tlp = MemWrite(
        address=0x1000,
        requester_id=0x0100,
        tag=0x12,
        first_be=0xF,
        last_be=0xF,
        payload=bytes(range(8)),
    )
    assert tlp.encode() == hx("40000002 010012ff 00001000") + bytes(range(8))
    assert decode_tlp(tlp.encode()) == tlp
    assert tlp.sub_stream is SubStream.POSTED


def test_mem_read_4dw_layout_with_10_bit_tag_and_attributes() -> None:
    tlp = MemRead(
        address=0x1_0000_0000,
        requester_id=0xABCD,
        tag=0x305,
        tc=2,
        attr=Attr.IDO | Attr.RO,
    )
    # byte 1: T9 | TC=2 | T8 | Attr[2];  byte 2: Attr[1:0] = RO
    assert tlp.encode() == hx("20ac2001 abcd050f 00000001 00000000")
    assert decode_tlp(tlp.encode()) == tlp
    assert tlp.sub_stream is SubStream.NON_POSTED


def test_completion_layouts() -> None:
    cpld = Completion(
        completer_id=0x0200,
        requester_id=0x0100,
        tag=7,
        byte_count=8,
        lower_address=0x10,
        payload=bytes(8),
    )
    assert cpld.encode() == hx("4a000002 02000008 01000710") + bytes(8)
    cpl = Completion(completer_id=0x0200, requester_id=0x0100, tag=7, status=CplStatus.UR)
    assert cpl.encode() == hx("0a000000 02002004 01000700")
    big = Completion(completer_id=1, requester_id=2, tag=3, byte_count=4096, payload=bytes(4096))
    assert big.encode()[:8] == hx("4a000000 00010000")  # Length 0 = 1024 DW, Byte Count 0 = 4096
    for tlp in (cpld, cpl, big):
        assert decode_tlp(tlp.encode()) == tlp
        assert tlp.sub_stream is SubStream.COMPLETION


def test_ide_prefix_layout() -> None:
    prefix = IdePrefix(
        stream_id=0x5A, sub_stream=SubStream.NON_POSTED, pr_sent_counter=7, k=1, t=True
    )
    # byte 1 PR_Sent_Counter, byte 2 Stream_ID, byte 3 {R, Sub-Stream[2:0], P, M, K, T}
    assert prefix.encode() == hx("92 07 5a 17")
    assert IdePrefix.decode(hx("92 07 5a 17")) == prefix
    assert IdePrefix(stream_id=1, sub_stream=2, m=True, p=True).encode() == hx("92 00 01 2c")


def test_ide_tlp_layout_and_aad() -> None:
    local = hx("8e 00 00 01")  # a Local prefix (Type bit 4 clear)
    e2e = hx("91 00 00 02")  # another End-End prefix (Type 1_0001b)
    tlp = write(8, address=0x2000)
    ide = IdeTlp(
        prefix=IdePrefix(stream_id=3),
        tlp=tlp,
        mac=bytes(range(12)),
        local_prefixes=(local,),
        e2e_prefixes=(e2e,),
    )
    wire = ide.encode()
    assert wire == local + hx("92 00 03 04") + e2e + tlp.encode() + bytes(range(12))
    assert IdeTlp.decode(wire) == ide
    assert ide.aad() == hx("92 00 03 04") + e2e + tlp.header()
    assert ide.aad(link=True) == local + hx("92 00 03 04") + e2e + tlp.header()


def test_byte_enable_builders() -> None:
    w = MemWrite.for_bytes(0x1003, b"abcde")
    assert (w.address, w.length_dw, w.first_be, w.last_be) == (0x1000, 2, 0b1000, 0b1111)
    assert w.payload == b"\0\0\0abcde" and w.data == b"abcde"
    one = MemWrite.for_bytes(0x1001, b"xy")
    assert (one.length_dw, one.first_be, one.last_be, one.data) == (1, 0b0110, 0, b"xy")
    zero = MemWrite.for_bytes(0x1000, b"")
    assert (zero.length_dw, zero.first_be, zero.data) == (1, 0, b"")
    r = MemRead.for_bytes(0x1002, 7)
    assert (r.length, r.first_be, r.last_be) == (3, 0b1100, 0b0001)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: MemWrite(address=0xFFC, payload=bytes(8)), "4 KB"),
        (lambda: MemWrite(address=0x1000, payload=bytes(8), first_be=0xF, last_be=0), "non-zero"),
        (lambda: MemWrite(address=0x1000, payload=bytes(4), last_be=1), "0000b"),
        (
            lambda: MemWrite(address=0x1000, payload=bytes(12), first_be=0b0101, last_be=0xF),
            "contig",
        ),
        (lambda: MemWrite(address=0x1002, payload=bytes(4)), "DW-aligned"),
        (lambda: MemWrite(address=0x1000, payload=bytes(3)), "whole DWs"),
        (lambda: MemRead(address=0x1000, length=1025), "1..1024"),
        (lambda: Completion(completer_id=0, requester_id=0, tag=0, status=3), "reserved"),
        (lambda: IdePrefix(stream_id=1, m=False, p=True), "P"),
        (lambda: IdeTlp(prefix=IdePrefix(stream_id=1), tlp=write()), "mac"),
        (
            lambda: IdeTlp(
                prefix=IdePrefix(stream_id=1, pr_sent_counter=1), tlp=write(), mac=bytes(12)
            ),
            "Posted",
        ),
    ],
)
def test_tlp_construction_refuses(make: Callable[[], object], why: str) -> None:
    with pytest.raises(LocalProtocolError, match=why):
        make()


def test_qw_aligned_two_dw_requests_may_have_sparse_byte_enables() -> None:
    tlp = MemWrite(address=0x1000, payload=bytes(8), first_be=0b0101, last_be=0b1010)
    assert decode_tlp(tlp.encode()) == tlp
    with pytest.raises(LocalProtocolError, match="contig"):
        MemWrite(address=0x1004, payload=bytes(8), first_be=0b0101, last_be=0b1010)


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (hx("20000001 0000000f 00000000 00001000"), "below 4 GB"),
        (hx("00000001 0000000f 00001001"), "PH bits"),
        (hx("00008001 0000000f 00001000"), "TD"),
        (hx("00010001 0000000f 00001000"), "TH"),
        (hx("00020001 0000000f 00001000"), "LN"),
        (hx("40000002 000000ff 00001000 00000000"), "payload bytes"),
        (hx("40000001 0000000f 00001000 00000000 00"), "trailing"),
        (hx("0a000000 0000e004 00000000"), "Status"),
        (hx("0a000001 00000004 00000000"), "Length"),
        (hx("0a000400 00000004 00000000"), "AT"),
        (hx("0a000000 00000004 00000080"), "reserved"),
        (hx("02000001 00000000 00000000"), "not a TLP kind"),  # IORd
        (hx("92000000"), "prefix"),
        (hx("000000"), "shorter"),
        (hx("00000001 0000"), "truncated"),
    ],
)
def test_tlp_decoder_rejects(wire: bytes, why: str) -> None:
    with pytest.raises(TlpDecodeError, match=why):
        decode_tlp(wire)


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (hx("8e000001") + write().encode(), "no IDE prefix"),
        (hx("92000084") + write().encode() + bytes(12), "bit 7"),
        (hx("92000004") + write().encode() + bytes(11), "needs exactly 12"),
        (hx("9200000c") + write().encode() + bytes(12), "needs exactly 16"),
        (hx("92000004 8e000001") + write().encode() + bytes(12), "Local prefix after"),
        (hx("92000004 92000004") + write().encode() + bytes(12), "second IDE prefix"),
        (hx("92010004") + write().encode() + bytes(12), "Posted"),
    ],
)
def test_ide_tlp_decoder_rejects(wire: bytes, why: str) -> None:
    with pytest.raises(TlpDecodeError, match=why):
        IdeTlp.decode(wire)


# --------------------------------------------------------------------------------------------
# The model back to back
# --------------------------------------------------------------------------------------------


def test_iv_construction() -> None:
    assert ide_iv(1) == hx("00000000 00000000 00000001")
    assert ide_iv(0x0102030405060708) == hx("00000000 0102030405060708")
    with pytest.raises(LocalProtocolError):
        ide_iv(2**64)


def test_back_to_back_every_payload_size_and_every_sub_stream() -> None:
    rp, ep = pair()
    for size in range(0, 1025):
        address = 0x4000_0000 + (size * 4099) % 0x800  # varying alignment, never crossing 4 KB
        data = bytes((size + i) & 0xFF for i in range(size))
        tag = size & 0x3FF
        for sender, receiver in ((rp, ep), (ep, rp)):
            posted = MemWrite.for_bytes(address, data, requester_id=RP_RID, tag=tag)
            non_posted = MemRead.for_bytes(address, size, requester_id=RP_RID, tag=tag)
            cpl = completion(size - size % 4, tag=tag)
            for tlp in (posted, non_posted, cpl):
                ide = sender.protect(tlp)
                assert ide is not None and ide.prefix.sub_stream == tlp.sub_stream
                got = receiver.receive(ide.encode())
                assert got is not None and got.tlp == tlp
            assert posted.data == data
    assert rp.secure and ep.secure and not rp.failures and not ep.failures
    for end in (rp, ep):
        for ss in SubStream:
            assert end.tx.invocation(ss, KeySet.K0) == 1026  # IFV 1 + 1025 TLPs
            assert end.rx.invocation(ss, KeySet.K0) == 1026


def test_payload_is_encrypted_and_t_bit_carried() -> None:
    rp, ep = pair()
    tlp = write(64)
    ide = rp.protect(tlp, t=True)
    assert ide is not None and ide.prefix.t
    assert ide.tlp.payload != tlp.payload and ide.tlp.header() == tlp.header()
    got = ep.receive(ide)
    assert got is not None and got.t and got.key_set == KeySet.K0


def test_mac_matches_an_independent_aes_gcm() -> None:
    rp = IdeStreamModel(STREAM)
    ep = IdeStreamModel(STREAM, side=PortSide.ENDPOINT)
    keys = {ss: bytes([0x10 + ss]) * 32 for ss in SubStream}
    for ss, key in keys.items():
        rp.key_prog(KeySlot(KeySet.K0, KeyDirection.TX, ss), key, ifv=1)
        ep.key_prog(KeySlot(KeySet.K0, KeyDirection.RX, ss), key, ifv=1)
        rp.k_set_go(KeySlot(KeySet.K0, KeyDirection.TX, ss))
        ep.k_set_go(KeySlot(KeySet.K0, KeyDirection.RX, ss))
    rp.set_enabled(True)
    ep.set_enabled(True)
    cases: list[tuple[Tlp, int, int]] = [  # TLP, header bytes, invocation field (from IFV 1)
        (write(100), 12, 1),
        (write(40, address=0x2_0000_0000), 16, 2),
        (read(), 12, 1),
        (completion(32), 12, 1),
        (write(4), 12, 3),
    ]
    for tlp, header_len, invocation in cases:
        wire = send(rp, tlp).encode()
        ss = tlp.sub_stream
        iv = bytes(4) + invocation.to_bytes(8, "big")
        aad = wire[: 4 + header_len]
        payload = tlp.payload
        sealed = AESGCM(keys[ss]).encrypt(iv, payload, aad)
        assert wire[-12:] == sealed[-16:][:12]
        assert wire[4 + header_len : -12] == sealed[:-16]
        assert ep.receive(wire) is not None


def test_link_stream_covers_local_prefixes_selective_does_not() -> None:
    local = hx("8e 00 00 01")
    for kind, covered in ((StreamKind.LINK, True), (StreamKind.SELECTIVE, False)):
        rp, ep = pair(kind)
        ide = rp.tx.protect(write(), local_prefixes=(local,), e2e_prefixes=(hx("91 00 00 00"),))
        assert ide is not None
        tampered = IdeTlp(
            prefix=ide.prefix,
            tlp=ide.tlp,
            mac=ide.mac,
            local_prefixes=(hx("8e 00 00 02"),),
            e2e_prefixes=ide.e2e_prefixes,
        )
        if covered:
            with pytest.raises(IdeCheckFailed):
                ep.receive(tampered.encode())
        else:
            got = ep.receive(tampered.encode())
            assert got is not None and got.tlp == write()


def test_link_stream_carries_its_tc_only() -> None:
    """A Link IDE Stream is its TC's (§6.33.1): the transmitter refuses another TC's TLP, and
    the receiver takes another TC's IDE TLP with its Stream ID as misrouted, staying Secure;
    a Selective stream takes any TC."""
    rp = IdeStreamModel(STREAM, side=PortSide.ROOT_PORT, kind=StreamKind.LINK, tc=3)
    ep = IdeStreamModel(STREAM, side=PortSide.ENDPOINT, kind=StreamKind.LINK, tc=3)
    establish(rp, ep, key_source=counting_keys())
    assert (rp.tc, ep.tc) == (3, 3)
    on_tc3 = MemWrite.for_bytes(0x1000_0000, b"\x5a" * 8, requester_id=EP_RID, tc=3)
    got = ep.receive(send(rp, on_tc3).encode())
    assert got is not None and got.tlp == on_tc3
    with pytest.raises(LocalProtocolError, match="TC0"):
        rp.protect(write())
    wire = bytearray(send(rp, on_tc3).encode())
    wire[5] &= ~0x70  # header byte 1 (after the prefix): TC 3 -> 0
    with pytest.raises(IdeMisrouted, match="TC0"):
        ep.receive(bytes(wire))
    assert ep.secure and not ep.failures
    sel_rp, sel_ep = pair(StreamKind.SELECTIVE)
    for tc in (0, 5):
        tlp = MemWrite.for_bytes(0x1000_0000, b"\x01" * 4, requester_id=EP_RID, tc=tc)
        assert sel_ep.receive(send(sel_rp, tlp).encode()) is not None
    with pytest.raises(LocalProtocolError):
        IdeStreamModel(STREAM, kind=StreamKind.LINK, tc=8)


def test_end_end_prefixes_are_authenticated() -> None:
    rp, ep = pair()
    ide = rp.tx.protect(write(), e2e_prefixes=(hx("91 00 00 00"),))
    assert ide is not None
    wire = bytearray(ide.encode())
    wire[7] ^= 1  # last byte of the second End-End prefix
    with pytest.raises(IdeCheckFailed, match="MAC"):
        ep.receive(bytes(wire))


# --------------------------------------------------------------------------------------------
# Tampering, replay, reordering
# --------------------------------------------------------------------------------------------


def _flip(wire: bytes, bit: int) -> bytes:
    out = bytearray(wire)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def _outcome(
    tlp: Tlp, bit: int
) -> tuple[type[Exception] | None, IdeFailReason | None, IdeStreamState]:
    rp, ep = pair()
    ide = rp.protect(tlp)
    assert ide is not None
    try:
        ep.receive(_flip(ide.encode(), bit))
    except IdeCheckFailed as exc:
        assert not ep.secure and ep.failures[-1] == exc.failure
        assert ep.receive(send(rp, tlp)) is None  # Insecure discards, reports nothing more
        return IdeCheckFailed, exc.failure.reason, ep.state
    except (IdeMisrouted, TlpDecodeError) as exc:
        return type(exc), None, ep.state
    return None, None, ep.state


@pytest.mark.parametrize("bit", range(8, 32))
def test_flipped_prefix_bit_is_detected(bit: int) -> None:
    kind, reason, state = _outcome(read(), bit)  # an NPR, so PR_Sent_Counter is meaningful
    byte, pos = divmod(bit, 8)
    if byte == 2:  # Stream_ID: another stream's TLP; this one is untouched
        assert kind is IdeMisrouted and state is IdeStreamState.SECURE
    elif byte == 3 and pos in (0, 4, 5):  # reserved bit 7, P, M: no longer a valid layout
        assert kind is TlpDecodeError and state is IdeStreamState.SECURE
    else:
        assert kind is IdeCheckFailed and state is IdeStreamState.INSECURE
        expected = {
            (3, 1): IdeFailReason.RESERVED_SUB_STREAM,  # Sub-Stream 001b -> 101b
            (3, 2): IdeFailReason.RESERVED_SUB_STREAM,  # 001b -> 011b
            (3, 3): IdeFailReason.SUB_STREAM_MISMATCH,  # 001b -> 000b (posted) for an MRd
            (3, 6): IdeFailReason.KEY_SET_INVALID,  # K: set K1 has no keys
        }.get((byte, pos), IdeFailReason.MAC_CHECK)  # PR_Sent_Counter and T: authenticated
        assert reason is expected


def test_flipped_header_bits_are_detected() -> None:
    tlp = write(16, address=0x1234_5670)
    header_bits = range(32, 32 + 12 * 8)
    outcomes = {bit: _outcome(tlp, bit) for bit in header_bits}
    for bit, (kind, _, state) in outcomes.items():
        assert kind in (IdeCheckFailed, TlpDecodeError), bit
        if kind is IdeCheckFailed:
            assert state is IdeStreamState.INSECURE
    address_bits = range(32 + 64, 32 + 94)  # Address[31:2]
    assert all(outcomes[bit][1] is IdeFailReason.MAC_CHECK for bit in address_bits)
    requester_bits = range(32 + 32, 32 + 56)  # Requester ID and Tag
    assert all(outcomes[bit][1] is IdeFailReason.MAC_CHECK for bit in requester_bits)


@pytest.mark.parametrize("region", ["payload", "mac"])
def test_flipped_payload_or_mac_bit_makes_the_stream_insecure(region: str) -> None:
    tlp = write(16)
    start = (4 + 12) * 8 if region == "payload" else (4 + 12 + 16) * 8
    for bit in range(start, start + (16 if region == "payload" else 12) * 8, 5):
        kind, reason, state = _outcome(tlp, bit)
        assert kind is IdeCheckFailed and reason is IdeFailReason.MAC_CHECK
        assert state is IdeStreamState.INSECURE


def test_replayed_tlp_is_detected() -> None:
    rp, ep = pair()
    first, second = send(rp, write(tag=1)), send(rp, write(tag=2))
    assert ep.receive(first) is not None
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(first.encode())
    assert info.value.failure.reason is IdeFailReason.REPLAY
    assert info.value.failure.direction is KeyDirection.RX
    assert not ep.secure and ep.receive(second) is None


def test_reordered_pair_in_a_sub_stream_is_detected() -> None:
    rp, ep = pair()
    first, second = send(rp, read(tag=1)), send(rp, read(tag=2))
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(second)
    assert info.value.failure.reason is IdeFailReason.REORDER
    assert ep.state is IdeStreamState.INSECURE
    assert ep.receive(first) is None  # the stream is Insecure: discarded, nothing reported


def test_in_order_pair_passes_where_the_reordered_one_fails() -> None:
    rp, ep = pair()
    first, second = send(rp, read(tag=1)), send(rp, read(tag=2))
    assert ep.receive(first) is not None and ep.receive(second) is not None


def test_non_posted_overtaking_a_posted_request_underflows_the_counter() -> None:
    rp, ep = pair()
    posted, non_posted = send(rp, write()), send(rp, read())
    assert non_posted.prefix.pr_sent_counter == 1
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(non_posted)
    assert info.value.failure.reason is IdeFailReason.PR_COUNTER_UNDERFLOW
    assert "PR_Sent_Counter 1 but 0 Posted Requests received" in str(info.value)
    assert ep.receive(posted) is None


def test_posted_requests_may_pass_non_posted_and_completions() -> None:
    rp, ep = pair()
    sent = [send(rp, t) for t in (read(1), write(tag=1), write(tag=2), read(2), write(tag=3))]
    assert [s.prefix.pr_sent_counter for s in sent] == [0, 0, 0, 2, 0]
    # the fabric lets the writes bypass the first read; counters still balance
    for index in (1, 2, 0, 3, 4):
        assert ep.receive(sent[index]) is not None
    assert (ep.rx.pr_received_npr, ep.rx.pr_received_cpl) == (1, 3)
    cpl = ep.protect(completion())
    assert cpl is not None and cpl.prefix.pr_sent_counter == 0
    assert rp.receive(cpl) is not None


def test_completion_counter_is_separate() -> None:
    rp, ep = pair()
    for tag in range(3):
        assert ep.receive(send(rp, write(tag=tag))) is not None
    cpl = rp.protect(completion())
    assert cpl is not None and cpl.prefix.pr_sent_counter == 3
    assert ep.receive(cpl) is not None
    assert (ep.rx.pr_received_npr, ep.rx.pr_received_cpl) == (3, 0)


def test_ide_sync_limit() -> None:
    rp, ep = pair()
    for tag in range(PR_SENT_SYNC_LIMIT):
        assert ep.receive(send(rp, write(tag=tag & 0x3FF))) is not None
    with pytest.raises(LocalProtocolError, match="IDE Sync"):
        rp.protect(write())
    assert ep.receive(send(rp, read())) is not None
    assert ep.receive(send(rp, completion())) is not None
    assert ep.receive(send(rp, write())) is not None


def test_reserved_sub_stream_and_aggregation_pcrc_bits() -> None:
    for prefix, reason in [
        (IdePrefix(stream_id=STREAM, sub_stream=0b110), IdeFailReason.RESERVED_SUB_STREAM),
        (IdePrefix(stream_id=STREAM, sub_stream=0b111), IdeFailReason.RESERVED_SUB_STREAM),
        (IdePrefix(stream_id=STREAM, m=False), IdeFailReason.NO_MAC),
        (IdePrefix(stream_id=STREAM, p=True), IdeFailReason.PCRC_UNSUPPORTED),
    ]:
        _, ep = pair()
        forged = IdeTlp(
            prefix=prefix,
            tlp=write(),
            mac=bytes(12) if prefix.m else b"",
            pcrc=bytes(4) if prefix.p else b"",
        )
        with pytest.raises(IdeCheckFailed) as info:
            ep.receive(forged.encode())
        assert info.value.failure.reason is reason and not ep.secure


# --------------------------------------------------------------------------------------------
# Key sets: refresh, K_SET_STOP, state
# --------------------------------------------------------------------------------------------


def _traffic(rp: IdeStreamModel, ep: IdeStreamModel, n: int, expect_k: int) -> None:
    for i in range(n):
        for sender, receiver, tlp in (
            (rp, ep, write(8 * i + 4, tag=i)),
            (rp, ep, read(tag=i)),
            (ep, rp, completion(4 * i, tag=i)),
        ):
            ide = sender.protect(tlp)
            assert ide is not None and ide.prefix.k == expect_k
            got = receiver.receive(ide)
            assert got is not None and got.tlp == tlp


def _go(end: IdeStreamModel, key_set: int, direction: KeyDirection) -> None:
    for ss in SubStream:
        end.k_set_go(KeySlot(key_set, direction, ss))


def test_key_refresh_k0_to_k1_with_traffic_flowing() -> None:
    rp, ep = pair()
    _traffic(rp, ep, 3, KeySet.K0)
    program_keys(rp, ep, KeySet.K1, key_source=counting_keys())
    _traffic(rp, ep, 2, KeySet.K0)  # programmed but not in use yet
    for end in (rp, ep):
        _go(end, KeySet.K1, KeyDirection.RX)
    _traffic(rp, ep, 2, KeySet.K0)  # receivers accept both sets now
    # Tx GO for the posted sub-stream only: once K toggles there, the other sub-streams follow.
    rp.k_set_go(KeySlot(KeySet.K1, KeyDirection.TX, SubStream.POSTED))
    k0_read = rp.protect(read(tag=99))  # still K0: nothing sent with K1 yet
    assert k0_read is not None and k0_read.prefix.k == KeySet.K0
    k1_write = rp.protect(write(tag=98))
    k1_read = rp.protect(read(tag=97))
    assert k1_write is not None and k1_write.prefix.k == KeySet.K1
    assert k1_read is not None and k1_read.prefix.k == KeySet.K1
    for ide in (k0_read, k1_write, k1_read):
        assert ep.receive(ide) is not None
    assert ep.rx.current_key_set(SubStream.POSTED) == KeySet.K1
    assert not ep.rx.programmed(SubStream.POSTED, KeySet.K0)  # old set invalidated on switch
    assert ep.rx.programmed(SubStream.COMPLETION, KeySet.K0)  # other sub-streams unaffected
    _go(rp, KeySet.K1, KeyDirection.TX)
    _go(ep, KeySet.K1, KeyDirection.TX)
    _traffic(rp, ep, 3, KeySet.K1)
    # K_SET_STOP for the old set is harmless now
    for end in (rp, ep):
        for slot in KeySlot.all(KeySet.K0):
            end.k_set_stop(slot)
    _traffic(rp, ep, 2, KeySet.K1)
    # and back again to K0, IFV restarting at 1
    program_keys(rp, ep, KeySet.K0, key_source=counting_keys())
    for direction in (KeyDirection.RX, KeyDirection.TX):
        for end in (rp, ep):
            _go(end, KeySet.K0, direction)
    assert rp.tx.invocation(SubStream.POSTED, KeySet.K0) == 1
    _traffic(rp, ep, 2, KeySet.K0)
    assert rp.secure and ep.secure and not rp.failures and not ep.failures


def test_old_key_set_tlp_after_the_switch_is_rejected() -> None:
    rp, ep = pair()
    program_keys(rp, ep, KeySet.K1, key_source=counting_keys())
    _go(ep, KeySet.K1, KeyDirection.RX)
    late = rp.protect(write(tag=1))  # K0, held back in the fabric
    _go(rp, KeySet.K1, KeyDirection.TX)
    new = rp.protect(write(tag=2))
    assert late is not None and late.prefix.k == KeySet.K0
    assert new is not None and new.prefix.k == KeySet.K1
    assert ep.receive(new) is not None  # K1 has its own invocation counter, starting at 1
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(late)  # the switch to K1 invalidated K0 for this sub-stream
    assert info.value.failure.reason is IdeFailReason.KEY_SET_INVALID
    assert info.value.failure.key_set == KeySet.K0


def test_k1_not_armed_by_k_set_go_is_rejected() -> None:
    rp, ep = pair()
    program_keys(rp, ep, KeySet.K1, key_source=counting_keys())
    _go(rp, KeySet.K1, KeyDirection.TX)  # wrong order: Tx before the partner's Rx
    ide = rp.protect(write())
    assert ide is not None and ide.prefix.k == KeySet.K1
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(ide)
    assert info.value.failure.reason is IdeFailReason.KEY_SET_INVALID
    assert "not armed" in str(info.value)


def test_k_set_stop_of_the_tx_key_set_makes_the_stream_insecure() -> None:
    rp, ep = pair()
    _traffic(rp, ep, 1, KeySet.K0)
    rp.k_set_stop(KeySlot(KeySet.K0, KeyDirection.TX, SubStream.POSTED))
    assert ep.receive(send(rp, read())) is not None  # other sub-streams keep working
    with pytest.raises(IdeKeyUnusable) as info:
        rp.protect(write())
    assert info.value.failure.reason is IdeFailReason.KEY_SET_INVALID
    assert info.value.failure.direction is KeyDirection.TX
    assert not rp.secure and rp.protect(read()) is None


def test_k_set_stop_of_the_rx_key_set_makes_the_stream_insecure() -> None:
    rp, ep = pair()
    ep.k_set_stop(KeySlot(KeySet.K0, KeyDirection.RX, SubStream.COMPLETION))
    assert ep.receive(send(rp, write())) is not None
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(send(rp, completion()))
    assert info.value.failure.reason is IdeFailReason.KEY_SET_INVALID
    assert not ep.secure


def test_secure_needs_enable_and_k_set_go_in_either_order() -> None:
    rp, ep = IdeStreamModel(STREAM), IdeStreamModel(STREAM, side=PortSide.ENDPOINT)
    program_keys(rp, ep, KeySet.K0)
    assert rp.protect(write()) is None  # not Secure: not transmitted on the stream
    rp.set_enabled(True)
    assert not rp.secure
    _go(rp, KeySet.K0, KeyDirection.TX)  # GO after Enable
    _go(ep, KeySet.K0, KeyDirection.RX)  # GO before Enable
    assert rp.secure and not ep.secure
    ide = rp.protect(write())
    assert ide is not None and ep.receive(ide) is None  # discarded while Insecure
    ep.set_enabled(True)
    assert ep.secure


def test_failure_latches_until_enable_is_cleared_and_keys_reprogrammed() -> None:
    rp, ep = pair()
    ide = rp.protect(write())
    assert ide is not None
    with pytest.raises(IdeCheckFailed):
        ep.receive(_flip(ide.encode(), 8 * 20))
    _go(ep, KeySet.K0, KeyDirection.RX)  # a K_SET_GO alone does not re-secure
    assert not ep.secure
    for end in (rp, ep):
        end.set_enabled(False)
    establish(rp, ep, key_source=counting_keys())
    assert rp.secure and ep.secure
    _traffic(rp, ep, 2, KeySet.K0)
    assert len(ep.failures) == 1


def test_reset_erases_keys() -> None:
    _, ep = pair()
    ep.reset()
    assert not ep.secure and not ep.rx.programmed(SubStream.POSTED, KeySet.K0)
    ep.set_enabled(True)
    with pytest.raises(LocalProtocolError, match="unprogrammed"):
        ep.k_set_go(KeySlot(KeySet.K0, KeyDirection.RX, SubStream.POSTED))


def test_misrouted_tlp_leaves_the_stream_alone() -> None:
    rp, ep = pair()
    other = IdeStreamModel(STREAM + 1, side=PortSide.ENDPOINT)
    ide = send(rp, write())
    with pytest.raises(IdeMisrouted):
        other.receive(ide)
    assert ep.receive(ide) is not None


# --------------------------------------------------------------------------------------------
# IDE_KM messages drive the model
# --------------------------------------------------------------------------------------------


def test_handle_ide_km_requests() -> None:
    ep = IdeStreamModel(STREAM, side=PortSide.ENDPOINT)
    slot = KeySlot(KeySet.K0, KeyDirection.RX, SubStream.POSTED)
    request = KeyProg(stream_id=STREAM, slot=slot, key=bytes(range(32)), port_index=0)
    answer = ep.handle(decode(request.encode()))  # type: ignore[arg-type]
    assert isinstance(answer, KpAck) and answer.outcome is KpAckStatus.SUCCESS
    assert answer.encode() == bytes((0, 3, 0, 0, STREAM, 0, slot.encode(), 0))
    assert ep.rx.programmed(SubStream.POSTED, KeySet.K0)
    wrong = KeyProg(stream_id=STREAM + 1, slot=slot, key=bytes(32))
    assert ep.handle(wrong) == KpAck(
        stream_id=STREAM + 1, slot=slot, status=KpAckStatus.UNSUPPORTED_VALUE
    )
    reserved = KeyProg(stream_id=STREAM, slot=KeySlot(0, 0, 5), key=bytes(32))
    assert ep.handle(reserved).status == KpAckStatus.UNSUPPORTED_VALUE  # type: ignore[union-attr]
    go = KSetGo(stream_id=STREAM, slot=slot)
    assert ep.handle(go) == KGostopAck(stream_id=STREAM, slot=slot)
    unprogrammed = KSetGo(stream_id=STREAM, slot=KeySlot(KeySet.K1, KeyDirection.RX, 0))
    assert ep.handle(unprogrammed) is None  # §6.33.3: no ACK for a bad K_SET_GO
    assert ep.handle(KSetGo(stream_id=9, slot=slot)) is None
    assert ep.handle(KSetStop(stream_id=STREAM, slot=slot)) == KGostopAck(
        stream_id=STREAM, slot=slot
    )
    assert not ep.rx.programmed(SubStream.POSTED, KeySet.K0)


def test_key_material_not_in_reprs() -> None:
    rp, _ = pair()
    text = repr(rp) + repr(rp.tx._slots)
    assert "\\x01\\x01" not in text and "0101010101" not in text


# --------------------------------------------------------------------------------------------
# Fuzzing
# --------------------------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
tags = st.integers(0, 0x3FF)


@st.composite
def tlps(draw: st.DrawFn) -> Tlp:
    kind = draw(st.sampled_from(["mrd", "mwr", "cpl", "cfgrd", "cfgwr"]))
    if kind.startswith("cfg"):
        fields = {
            "target_id": draw(u16),
            "register": draw(st.integers(0, 1023)),
            "requester_id": draw(u16),
            "tag": draw(tags),
            "first_be": draw(st.integers(0, 15)),
            "type1": draw(st.booleans()),
        }
        if kind == "cfgrd":
            return CfgRead(**fields)
        return CfgWrite(payload=draw(st.binary(min_size=4, max_size=4)), **fields)
    common = {"tc": draw(st.integers(0, 7)), "attr": draw(st.integers(0, 7)), "tag": draw(tags)}
    if kind == "cpl":
        size = draw(st.integers(0, 64)) * 4
        return Completion(
            completer_id=draw(u16),
            requester_id=draw(u16),
            status=draw(st.sampled_from(list(CplStatus))),
            byte_count=draw(st.integers(1, 4096)),
            lower_address=draw(st.integers(0, 127)),
            bcm=draw(st.booleans()),
            ep=draw(st.booleans()),
            payload=draw(st.binary(min_size=size, max_size=size)),
            **common,
        )
    base = draw(st.sampled_from([0, 0xFFFF_F000, 0x1_0000_0000, 2**64 - 4096]))
    address = base + draw(st.integers(0, 4095))
    size = draw(st.integers(0, 4096 - address % 4096))
    fields = {"requester_id": draw(u16), "at": draw(st.integers(0, 3)), **common}
    if kind == "mrd":
        return MemRead.for_bytes(address, size, **fields)
    return MemWrite.for_bytes(address, draw(st.binary(min_size=size, max_size=size)), **fields)


@settings(max_examples=150, deadline=None)
@given(tlps())
def test_tlp_round_trip(tlp: Tlp) -> None:
    assert decode_tlp(tlp.encode()) == tlp


@settings(max_examples=100, deadline=None)
@given(tlps(), st.integers(0, 255), st.integers(0, 2), st.booleans(), st.booleans())
def test_ide_tlp_round_trip(tlp: Tlp, stream_id: int, counter: int, k: bool, t: bool) -> None:
    prefix = IdePrefix(
        stream_id=stream_id,
        sub_stream=tlp.sub_stream,
        pr_sent_counter=0 if tlp.sub_stream == SubStream.POSTED else counter,
        k=int(k),
        t=t,
    )
    ide = IdeTlp(prefix=prefix, tlp=tlp, mac=bytes(range(12)))
    assert IdeTlp.decode(ide.encode()) == ide


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_tlp_decoders_fuzz_only_typed_errors_escape(data: bytes) -> None:
    for decoder in (decode_tlp, IdeTlp.decode, IdePrefix.decode):
        try:
            decoder(data)
        except TlpDecodeError:
            pass
    try:
        IdeTlp.decode(b"\x92" + data)
    except TlpDecodeError:
        pass


@settings(max_examples=150, deadline=None)
@given(tlps(), st.data())
def test_receiver_fuzz_only_typed_errors_escape(tlp: Tlp, data: st.DataObject) -> None:
    rp, ep = pair()
    ide = rp.protect(tlp)
    assert ide is not None
    wire = bytearray(ide.encode())
    for _ in range(data.draw(st.integers(0, 3))):
        wire[data.draw(st.integers(0, len(wire) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(max(0, len(wire) - 8), len(wire)))
    try:
        got = ep.receive(bytes(wire[:cut]))
    except (IdeCheckFailed, IdeMisrouted, TlpDecodeError):
        return
    assert got is not None and got.tlp == tlp and bytes(wire[:cut]) == ide.encode()


# --------------------------------------------------------------------------------------------
# PCRC (§6.33.4)
# --------------------------------------------------------------------------------------------


def _crc32_msb_first_reflected(data: bytes) -> int:
    """CRC-32 computed bit by bit as §6.33.4 words it (an independent check of ``pcrc``):
    polynomial 04C1_1DB7h, seed FFFF_FFFFh, bit 0 of each byte first, result complemented."""
    crc = 0xFFFF_FFFF
    for byte in data:
        for i in range(8):
            top = (crc >> 31) & 1
            crc = (crc << 1) & 0xFFFF_FFFF
            if top ^ ((byte >> i) & 1):
                crc ^= 0x04C1_1DB7
    return crc ^ 0xFFFF_FFFF


def _ecrc_map(result: int) -> bytes:
    """§2.7.1 Table 2-55 as a loop: result bit 8k+i goes to digest bit 8k+7-i; digest 31:24
    first on the wire.  The MSB-first register above holds bit 0 of the reflected one in bit 31,
    so its value is reversed as a whole before the mapping."""
    reflected = int(f"{result:032b}"[::-1], 2)
    digest = 0
    for k in range(4):
        for i in range(8):
            digest |= ((reflected >> (8 * k + i)) & 1) << (8 * k + 7 - i)
    return digest.to_bytes(4, "big")


@pytest.mark.parametrize("data", [b"", b"\x00", b"123456789", bytes(range(256)) * 4])
def test_pcrc_is_the_spec_crc_mapped_as_ecrc(data: bytes) -> None:
    assert pcrc(data) == _ecrc_map(_crc32_msb_first_reflected(data))


def pcrc_pair() -> tuple[IdeStreamModel, IdeStreamModel]:
    rp = IdeStreamModel(STREAM, side=PortSide.ROOT_PORT, pcrc=True)
    ep = IdeStreamModel(STREAM, side=PortSide.ENDPOINT, pcrc=True)
    establish(rp, ep, key_source=counting_keys())
    return rp, ep


def test_pcrc_travels_encrypted_after_the_payload_before_the_mac() -> None:
    rp, ep = pcrc_pair()
    tlp = write(37)
    ide = send(rp, tlp)
    assert ide.prefix.p and len(ide.pcrc) == 4
    wire = ide.encode()
    key = bytes([1]) * 32  # counting_keys: the root port's PR Tx key is the first
    sealed = AESGCM(key).encrypt(ide_iv(1), tlp.payload + pcrc(tlp.payload), wire[:16])
    assert wire[16:-12] == sealed[:-16] and wire[-12:] == sealed[-16:][:12]
    got = ep.receive(wire)
    assert got is not None and got.tlp == tlp
    mrd = send(rp, read())
    assert not mrd.prefix.p and not mrd.pcrc  # no P content, no PCRC
    assert ep.receive(mrd) is not None


@pytest.mark.parametrize("fault", ["wrong", "missing"])
def test_pcrc_fault_is_reported_and_the_stream_stays_secure(fault: str) -> None:
    rp, ep = pcrc_pair()
    with pytest.raises(IdePcrcCheckFailed):
        ep.receive(rp.protect(write(20), pcrc_fault=fault).encode())
    assert ep.secure and len(ep.pcrc_failures) == 1 and not ep.failures
    got = ep.receive(send(rp, write(8)))  # the invocation was consumed on both sides
    assert got is not None


def test_p_where_no_pcrc_is_due_fails_the_check() -> None:
    rp, ep = pair()  # no PCRC Enable
    rpc, _ = pcrc_pair()
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(send(rpc, write(8)).encode())
    assert info.value.failure.reason is IdeFailReason.PCRC_UNSUPPORTED and not ep.secure
    with pytest.raises(LocalProtocolError):
        rp.protect(write(8), pcrc_fault="wrong")  # no PCRC to get wrong
    with pytest.raises(LocalProtocolError):
        rpc.pcrc = False  # fixed while enabled (§7.9.26.5.2)


def aggregating_pair(*, pcrc: bool = False) -> tuple[IdeStreamModel, IdeStreamModel]:
    rp = IdeStreamModel(STREAM, side=PortSide.ROOT_PORT, pcrc=pcrc)
    ep = IdeStreamModel(STREAM, side=PortSide.ENDPOINT, pcrc=pcrc, aggregation=True)
    establish(rp, ep, key_source=counting_keys())
    return rp, ep


def unit_of(n: int, size: int = 8) -> list[MemWrite]:
    return [
        MemWrite.for_bytes(0x1000_0000 + 0x100 * i, bytes([i + 1]) * size, requester_id=EP_RID)
        for i in range(n)
    ]


@pytest.mark.parametrize("pcrc", [False, True])
def test_an_aggregated_unit_is_one_invocation_checked_whole(pcrc: bool) -> None:
    """§6.33.4/§6.33.6: M = 0 on all but the last, one MAC (and PCRC) over the A and P of the
    whole unit, one IV; the receiver hands out nothing before the last TLP, then all of them."""
    rp, ep = aggregating_pair(pcrc=pcrc)
    tlps = unit_of(3)
    wire = rp.protect_unit(tlps)
    assert wire is not None
    assert [w.prefix.m for w in wire] == [False, False, True]
    assert [w.prefix.p for w in wire] == [False, False, pcrc]
    assert [len(w.mac) for w in wire] == [0, 0, 12]
    assert rp.tx.invocation(SubStream.POSTED, KeySet.K0) == 2  # one IV for the unit
    # Independently: AES-GCM over A1||A2||A3 and P1||P2||P3 gives the last TLP's MAC.
    key = counting_keys()(32)  # the first key establish() hands out: root port Tx, PR
    aad = b"".join(w.aad() for w in wire)
    p = b"".join(t.payload for t in tlps)
    if pcrc:
        from hil.codec.ide_tlp import pcrc as pcrc_of

        p += pcrc_of(p)
    sealed = AESGCM(key).encrypt(bytes(4) + (1).to_bytes(8, "big"), p, aad)
    assert b"".join(w.tlp.payload for w in wire) + wire[-1].pcrc == sealed[: len(p)]
    assert wire[-1].mac == sealed[len(p) : len(p) + 12]
    assert ep.receive_unit(wire[0].encode()) == []
    assert ep.receive_unit(wire[1].encode()) == []
    assert ep.rx.held(SubStream.POSTED) == 2
    got = ep.receive_unit(wire[2].encode())
    assert got is not None and [r.tlp for r in got] == tlps
    # The next single TLP uses the next IV.
    assert ep.receive(send(rp, write()).encode()) is not None


def test_aggregation_faults_are_ide_check_failed() -> None:
    # A member altered: the unit's MAC fails on its last TLP; nothing of it is handed out.
    rp, ep = aggregating_pair()
    wire = rp.protect_unit(unit_of(2))
    assert wire is not None
    bad = bytearray(wire[0].encode())
    bad[-1] ^= 1
    assert ep.receive_unit(bytes(bad)) == []
    with pytest.raises(IdeCheckFailed):
        ep.receive_unit(wire[1].encode())
    assert not ep.secure
    # K toggled inside a unit, with a valid MAC: receivers must check (§6.33.6).
    rp, ep = aggregating_pair()
    program_keys(rp, ep, KeySet.K1, key_source=counting_keys())
    wire = rp.protect_unit(unit_of(2), toggle_k_at=1)
    assert wire is not None
    assert ep.receive_unit(wire[0].encode()) == []
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive_unit(wire[1].encode())
    assert info.value.failure.reason is IdeFailReason.AGGREGATION
    # A TLP without a MAC where aggregation is not supported.
    rp, ep = pair()
    wire = rp.protect_unit(unit_of(2))
    assert wire is not None
    with pytest.raises(IdeCheckFailed) as info:
        ep.receive(wire[0].encode())
    assert info.value.failure.reason is IdeFailReason.NO_MAC
    # Past 8 TLPs or 256 DW the transmitter refuses unless told to break the rule.
    rp, ep = aggregating_pair()
    with pytest.raises(LocalProtocolError):
        rp.protect_unit(unit_of(9))
    with pytest.raises(LocalProtocolError):
        rp.protect_unit(unit_of(2, size=4 * 200))
    wire = rp.protect_unit(unit_of(9), unchecked=True)
    assert wire is not None
    for member in wire[:8]:
        assert ep.receive_unit(member.encode()) == []
    with pytest.raises(IdeCheckFailed):
        ep.receive_unit(wire[8].encode())


def test_other_sub_streams_interleave_with_a_unit() -> None:
    """§6.33.6: other TLPs may come between the TLPs of an aggregated unit; a Posted member
    counts for PR_Sent_Counter as it arrives (§6.33.5)."""
    rp, ep = aggregating_pair()
    reads = rp.protect_unit([read(tag=1), read(tag=2)])
    assert reads is not None
    assert ep.receive_unit(reads[0].encode()) == []
    got = ep.receive_unit(send(rp, write()).encode())  # a Posted Request between the members
    assert got is not None and len(got) == 1 and isinstance(got[0].tlp, MemWrite)
    got = ep.receive_unit(reads[1].encode())
    assert got is not None and [r.tlp.tag for r in got] == [1, 2]  # type: ignore[union-attr]
    # A Posted unit's first member counts before a later read claims it.
    writes = rp.protect_unit(unit_of(2))
    assert writes is not None
    assert ep.receive_unit(writes[0].encode()) == []
    assert ep.receive_unit(writes[1].encode()) is not None
    assert ep.receive(send(rp, read(tag=3)).encode()) is not None


# --------------------------------------------------------------------------------------------
# Partial Header Encryption (§6.33.4)
# --------------------------------------------------------------------------------------------

PHE_MSB = {1: 17, 2: 25, 3: 33, 4: 41}  # §7.9.26.5.2 [13:10]: Address[msb:2] encrypted


def phe_pair(
    mode: int, *, pcrc: bool = False, aggregation: bool = False
) -> tuple[IdeStreamModel, IdeStreamModel]:
    kw = {"phe": mode, "pcrc": pcrc, "aggregation": aggregation}
    rp = IdeStreamModel(STREAM, side=PortSide.ROOT_PORT, **kw)  # type: ignore[arg-type]
    ep = IdeStreamModel(STREAM, side=PortSide.ENDPOINT, **kw)  # type: ignore[arg-type]
    establish(rp, ep, key_source=counting_keys())
    return rp, ep


def _phe_a_and_p(header: bytes, msb: int, with_be: bool) -> tuple[bytes, bytes]:
    """A's header part and P's front built from the §6.33.4 rules as a bit string (an
    independent construction: the header as 128 bits, the selected bits cut out of it)."""
    bits = "".join(f"{b:08b}" for b in header)
    # Header bit positions, counted from the first bit on the wire: byte 7 is the BE byte,
    # bytes 8..15 hold Address[63:2] (bit 64 = Address[63]) then PH.
    addr_lo_bit = lambda a: 64 + (63 - a)  # noqa: E731 - position of Address[a]
    selected = set(range(addr_lo_bit(msb), addr_lo_bit(2) + 1))
    if with_be:
        selected |= set(range(56, 64))
    kept = "".join(b for i, b in enumerate(bits) if i not in selected)
    front = (bits[56:64] if with_be else "") + bits[addr_lo_bit(msb) : addr_lo_bit(2) + 1]
    as_bytes = lambda s: int(s, 2).to_bytes(len(s) // 8, "big")  # noqa: E731
    assert len(kept) % 8 == 0 and len(front) % 8 == 0
    return as_bytes(kept), as_bytes(front)


@pytest.mark.parametrize("mode", [1, 2, 3, 4])
@pytest.mark.parametrize("address", [0x1234_5678, 0x3_9ABC_DEF0, 0xFEDC_BA98_7654_3000])
def test_phe_write_matches_an_independent_aes_gcm(mode: int, address: int) -> None:
    """A 4 DW header even below 4 GB (§2.2.4.1); A = prefix + the header without the BE byte
    and Address[msb:2]; P = BE, Address[msb:2] MSB first, payload; the ciphertext of the
    selected fields on the wire in their place; the receiver rebuilds the clear header."""
    rp, ep = phe_pair(mode)
    tlp = MemWrite.for_bytes(address + 2, bytes(range(1, 23)), requester_id=RP_RID, tag=0x2A)
    wire = send(rp, tlp).encode()
    clear = MemWrite.for_bytes(address + 2, bytes(range(1, 23)), requester_id=RP_RID, tag=0x2A)
    header = (clear.encode() if address >= 1 << 32 else _as_4dw(clear.encode()))[:16]
    a_part, front = _phe_a_and_p(header, PHE_MSB[mode], with_be=True)
    key = bytes([1]) * 32  # counting_keys: the root port's Posted Tx key is the first
    sealed = AESGCM(key).encrypt(ide_iv(1), front + clear.payload, wire[:4] + a_part)
    c_front, c_payload, mac = sealed[: len(front)], sealed[len(front) : -16], sealed[-16:][:12]
    assert wire[-12:] == mac and wire[20:-12] == c_payload
    assert wire[4] >> 5 == 0b011, "PHE needs the 64-bit address format (4 DW header)"
    # On the wire: every clear bit of the header as it was, the selected ones ciphertext.
    _, wire_front = _phe_a_and_p(wire[4:20], PHE_MSB[mode], with_be=True)
    wire_kept, _ = _phe_a_and_p(wire[4:20], PHE_MSB[mode], with_be=True)
    assert wire_front == c_front and wire_kept == a_part
    got = ep.receive(wire)
    assert got is not None
    assert got.tlp.encode() == header + clear.payload  # type: ignore[union-attr]
    assert got.tlp.data == bytes(range(1, 23))  # type: ignore[union-attr]


def _as_4dw(tlp_bytes: bytes) -> bytes:
    """A 3 DW memory request as the 64-bit format: Fmt bit 0 set, Address[63:32] = 0."""
    return bytes([tlp_bytes[0] | 0x20]) + tlp_bytes[1:8] + bytes(4) + tlp_bytes[8:]


@pytest.mark.parametrize("mode", [1, 4])
def test_phe_reads_and_translation_requests(mode: int) -> None:
    """A read's BEs are encrypted; a Translation Request's (AT = 01b) stay in A (§6.33.4);
    completions are not Memory Requests and go as before."""
    rp, ep = phe_pair(mode)
    for at, with_be in ((0b00, True), (0b01, False)):
        req = MemRead.for_bytes(0x8000_1004, 6, requester_id=RP_RID, tag=7, at=at)
        ide = send(rp, req)
        width = (PHE_MSB[mode] - 1) // 8 + with_be
        assert len(ide.phe) == width
        wire = ide.encode()
        a_part, _ = _phe_a_and_p(_as_4dw(req.encode())[:16], PHE_MSB[mode], with_be=with_be)
        assert ide.aad() == wire[:4] + a_part
        got = ep.receive(wire)
        assert got is not None and got.tlp.first_be == req.first_be  # type: ignore[union-attr]
        assert got.tlp.address == req.address and got.tlp.at == at  # type: ignore[union-attr]
    cpl = completion(16, tag=7)
    ide = send(ep, cpl)
    assert not ide.phe and ide.encode()[4:16] == cpl.header()
    assert rp.receive(ide.encode()) is not None


@pytest.mark.parametrize("where", ["clear", "encrypted"])
def test_phe_tampered_header_is_detected(where: str) -> None:
    """A bit flipped in a clear header byte (the Tag) or in an encrypted one (Address[9:2])
    fails the MAC: both are authenticated, one in A, the other in P."""
    rp, ep = phe_pair(1)
    wire = bytearray(send(rp, write(16, address=0x2000_0100)).encode())
    wire[4 + 6 if where == "clear" else 4 + 15] ^= 0x10
    with pytest.raises(IdeCheckFailed):
        ep.receive(bytes(wire))
    assert ep.state is IdeStreamState.INSECURE


def test_phe_mismatched_mode_fails_the_mac() -> None:
    """Both ends must use the same mode (§7.9.26.5.2); otherwise A differs and the MAC fails."""
    rp, _ = phe_pair(1)
    _, ep = phe_pair(2)
    with pytest.raises(IdeCheckFailed):
        ep.receive(send(rp, write(8)).encode())


def test_phe_pcrc_covers_the_header_part_padded_to_64_bits() -> None:
    """§6.33.4: the PCRC input is the selected header content "padded to 64bits with 0's in
    the most significant bits", then the payload; a read has P content too, so it gets one."""
    rp, ep = phe_pair(2, pcrc=True)
    tlp = MemWrite.for_bytes(0x4000_0010, bytes(range(12)), requester_id=RP_RID)
    ide = send(rp, tlp)
    wire = ide.encode()
    header = _as_4dw(tlp.encode())[:16]
    a_part, front = _phe_a_and_p(header, PHE_MSB[2], with_be=True)
    key = bytes([1]) * 32
    p = front + tlp.payload
    crc = pcrc(bytes(8 - len(front)) + front + tlp.payload)
    sealed = AESGCM(key).encrypt(ide_iv(1), p + crc, wire[:4] + a_part)
    assert ide.prefix.p and ide.phe + ide.tlp.payload + ide.pcrc == sealed[:-16]
    assert ep.receive(wire) is not None
    mrd = send(rp, MemRead.for_bytes(0x4000_0010, 4, requester_id=RP_RID, tag=3))
    assert mrd.prefix.p and len(mrd.pcrc) == 4
    assert ep.receive(mrd.encode()) is not None
    bad = rp.protect(MemWrite.for_bytes(0x4000_0020, b"\x01" * 8), pcrc_fault="wrong")
    assert bad is not None
    with pytest.raises(IdePcrcCheckFailed):
        ep.receive(bad.encode())
    assert ep.secure


def test_phe_aggregated_unit_round_trip() -> None:
    rp, ep = phe_pair(3, aggregation=True)
    tlps = [MemWrite.for_bytes(0x1_0000_0000 + 0x40 * i, bytes([i]) * 12) for i in range(3)]
    unit = rp.protect_unit(tlps)
    assert unit is not None and all(len(m.phe) == 5 for m in unit)
    got: list = []
    for member in unit:
        got += ep.receive_unit(member.encode()) or []
    assert [g.tlp for g in got] == tlps


def test_phe_rules_at_the_codec_and_registers() -> None:
    _, ep = phe_pair(1)
    plain_rp, _ = pair()
    wire = send(plain_rp, write(8, address=0x1000_0000)).encode()  # 3 DW header
    with pytest.raises(TlpDecodeError, match="64-bit addressing"):
        IdeTlp.decode(wire, phe_mode=1)
    with pytest.raises(LocalProtocolError, match="while the stream is enabled"):
        ep.phe = 2
    with pytest.raises(LocalProtocolError):
        IdeStreamModel(STREAM, phe=5)
    with pytest.raises(LocalProtocolError, match="read 0"):
        MemWrite(address=0x1_0000_0004, payload=bytes(4), phe_mode=1)


@settings(max_examples=120, deadline=None)
@given(tlps(), st.sampled_from([1, 2, 3, 4]))
def test_phe_round_trip_any_tlp(tlp: Tlp, mode: int) -> None:
    rp, ep = phe_pair(mode)
    sender, receiver = (ep, rp) if isinstance(tlp, Completion) else (rp, ep)
    got = receiver.receive(send(sender, tlp).encode())
    mem = isinstance(tlp, MemRead | MemWrite)
    want = replace(tlp, addr64=tlp.address < 1 << 32) if mem else tlp  # type: ignore[union-attr]
    assert got is not None and got.tlp == want


# --------------------------------------------------------------------------------------------
# Configuration Requests (§2.2.7.1), as Selective IDE carries them (§6.33.4)
# --------------------------------------------------------------------------------------------


def test_configuration_request_layouts() -> None:
    """CfgRd1 / CfgWr1: Fmt/Type 000_00101 / 010_00101, Length 1, Last DW BE 0; DW2 = Bus,
    Device, Function, Ext Register Number [11:8], Register Number [7:2] (§2.2.7.1)."""
    rd = CfgRead(target_id=0x0108, register=0x125, requester_id=0x0010, tag=0x2A, first_be=0xF)
    assert rd.encode() == hx("05000001 00102A0F 01080494")
    wr = CfgWrite(target_id=0x0100, register=0x3, payload=hx("11223344"), first_be=0b0011,
                  type1=False)  # fmt: skip
    assert wr.encode() == hx("44000001 00000003 0100000C 11223344")
    assert wr.value == 0x44332211 and wr.offset == 0x0C
    assert decode_tlp(rd.encode()) == rd and decode_tlp(wr.encode()) == wr
    assert rd.sub_stream == wr.sub_stream == SubStream.NON_POSTED  # both Non-Posted


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (hx("05100001 00102A0F 01080494"), "TC"),
        (hx("05000002 00102A0F 01080494"), "Length"),
        (hx("05000001 00102A1F 01080494"), "Last DW BE"),
        (hx("05000001 00102A0F 01081094"), "reserved"),
        (hx("45000001 0000000F 01000004 1122"), "payload bytes"),
    ],
)
def test_configuration_request_decoder_rejects(wire: bytes, why: str) -> None:
    with pytest.raises(TlpDecodeError, match=why):
        decode_tlp(wire)


def test_configuration_requests_travel_on_the_non_posted_sub_stream() -> None:
    rp, ep = pair()
    for req in (CfgRead(target_id=0x0100, register=4, tag=3),
                CfgWrite(target_id=0x0100, register=4, tag=4, payload=b"\1\2\3\4")):  # fmt: skip
        ide = send(rp, req)
        assert ide.prefix.sub_stream == SubStream.NON_POSTED
        got = ep.receive(ide.encode())
        assert got is not None and got.tlp == req


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([1, 2, 3, 4]))
def test_phe_decoder_fuzz_only_typed_errors_escape(data: bytes, mode: int) -> None:
    """Bytes from the peer on a PHE stream: a decode error or an IDE TLP, nothing else."""
    for raw in (data, b"\x92\x00\x2c\x10" + data):
        try:
            IdeTlp.decode(raw, phe_mode=mode)
        except TlpDecodeError:
            pass


@settings(max_examples=150, deadline=None)
@given(tlps(), st.sampled_from([1, 2, 3, 4]), st.data())
def test_phe_receiver_fuzz_only_typed_errors_escape(
    tlp: Tlp, mode: int, data: st.DataObject
) -> None:
    """A PHE IDE TLP with bytes flipped or cut: the receiver raises a typed error (IDE Check
    Failed, misrouted, malformed) or, untouched, returns the TLP."""
    rp, ep = phe_pair(mode)
    sender, receiver = (ep, rp) if isinstance(tlp, Completion) else (rp, ep)
    ide = send(sender, tlp)
    wire = bytearray(ide.encode())
    for _ in range(data.draw(st.integers(0, 3))):
        wire[data.draw(st.integers(0, len(wire) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(max(0, len(wire) - 8), len(wire)))
    try:
        got = receiver.receive(bytes(wire[:cut]))
    except (IdeCheckFailed, IdeMisrouted, TlpDecodeError):
        return
    assert got is not None and bytes(wire[:cut]) == ide.encode()


# -- which stream a Port's own request goes on (§6.33.4) -------------------------------------

_MB = 1 << 20


def _streams(**change: object) -> list:
    from hil.ide_model import TxStream

    base = [
        TxStream(0, enabled=True, tc=0, ranges=((0x1_0000_0000, 0x1_000F_FFFF),)),
        TxStream(
            1,
            enabled=True,
            tc=0,
            ranges=((0x8000_0000, 0x800F_FFFF), (0xF0 << 32, (0xF0 << 32) + 2 * _MB - 1)),
        ),
        TxStream(2, enabled=True, tc=1, link=True),
    ]
    return [replace(s, **change.get(str(s.index), {})) for s in base]


@pytest.mark.parametrize(
    ("address", "tc", "t", "change", "want"),
    [
        (0x1_0000_0000, 0, False, {}, 0),  # the Memory Base itself
        (0x1_000F_FFFC, 0, False, {}, 0),  # the last DW the Memory Limit holds
        (0x1_0010_0000, 0, False, {}, None),  # one past it: no stream, no Link on TC0
        ((0xF0 << 32) + _MB + 8, 0, False, {}, 1),  # the stream's second block
        (0x8000_0000, 1, False, {}, 2),  # another TC: its Link stream, not the range's
        (0x5000_0000, 0, False, {"1": {"default": True}}, 1),  # the Default Stream
        (0x1_0000_0040, 0, False, {"1": {"default": True}}, 0),  # a range beats Default
        (0x8000_0040, 0, False, {"1": {"tee_limited": True}}, None),  # T=0: plain
        (0x8000_0040, 0, True, {"1": {"tee_limited": True}}, 1),  # T=1: the stream
        (0x8000_0040, 1, False, {"1": {"tee_limited": True, "tc": 1}}, 2),  # T=0: Link
        (0x8000_0040, 0, False, {"1": {"enabled": False}}, None),  # not enabled
        (0x8000_0040, 0, False, {"0": {"ranges": ((0x8000_0000, 0x8FFF_FFFF),)}}, 0),  # overlap
    ],
)
def test_request_stream(address: int, tc: int, t: bool, change: dict, want: int | None) -> None:
    """PCIe 6.x §6.33.4: address association, then the Default Stream, TEE-Limited taking T=1
    only (T=0 goes plain, or Link), the TC's Link stream for the rest; the lowest index where
    software's ranges overlap."""
    from hil.ide_model import request_stream

    assert request_stream(_streams(**change), address, tc=tc, t=t) == want
