"""Block tests of the CQ/CC adapter (``hdl/boards/vcu118/usp_cq_cc_adapter.sv``).

The bench plays the UltraScale+ PCIe4 hard IP on one side and the endpoint on the other.  Two
independent models meet in the checks:

- the hard IP's descriptor formats (PG213, 128-bit interface, DWORD-aligned): the bench packs
  completer request descriptors field by field into CQ beats, and unpacks the completer
  completion descriptors it receives on CC field by field;
- the TLP header formats of the PCIe Base Specification (§2.2): the bench builds the request
  TLP bytes it expects on the endpoint side, and the completion TLP bytes it sends from there.

So a request travels descriptor -> RTL -> TLP bytes and is compared with the TLP the spec says
the same request is; a completion travels TLP bytes -> RTL -> descriptor and every descriptor
field is compared with the completion's fields.

All inputs change on the falling edge; handshakes are evaluated in the read-only phase after it,
so they are the transfers of the next rising edge.  Valid and ready are random on both sides.

Run with ``python -m pytest cocotb_tests/usp_cq_cc_adapter`` (one cached Verilator build).
"""

from __future__ import annotations

import os
import random
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

CLOCK_NS = 4  # 250 MHz user clock

#################################################
# PG213 descriptor formats (the hard IP's side) #
#################################################

# CQ request types (PG213, completer request descriptor, bits [78:75]).
REQ_MEM_READ = 0b0000
REQ_MEM_WRITE = 0b0001
REQ_IO_READ = 0b0010
REQ_IO_WRITE = 0b0011
REQ_FETCH_ADD = 0b0100
REQ_MEM_LOCKED_READ = 0b0111
REQ_MSG = 0b1100
REQ_VENDOR_MSG = 0b1101
FORWARDED = {REQ_MEM_READ, REQ_MEM_WRITE, REQ_MEM_LOCKED_READ}


@dataclass(frozen=True)
class Request:
    """One completer request as the hard IP describes it."""

    req_type: int
    address: int  # byte address, DW aligned
    dw_count: int  # 1 .. 1024
    first_be: int
    last_be: int
    requester_id: int  # bus << 8 | device << 3 | function
    tag: int
    tc: int
    attr: int  # bit 0 no snoop, bit 1 relaxed ordering, bit 2 ID-based ordering
    at: int = 0
    target_function: int = 0
    bar_id: int = 0
    bar_aperture: int = 12
    payload: bytes = b""
    discontinue: bool = False


def cq_descriptor(r: Request) -> int:
    """The 128-bit completer request descriptor of a memory/IO/atomic request."""
    d = r.at & 0x3
    d |= r.address & 0xFFFF_FFFF_FFFF_FFFC  # [63:2] address
    d |= (r.dw_count & 0x7FF) << 64  # [74:64] DWORD count
    d |= (r.req_type & 0xF) << 75  # [78:75] request type
    d |= (r.requester_id & 0xFFFF) << 80  # [95:80] requester ID
    d |= (r.tag & 0xFF) << 96  # [103:96] tag
    d |= (r.target_function & 0xFF) << 104  # [111:104] target function
    d |= (r.bar_id & 0x7) << 112  # [114:112] BAR ID
    d |= (r.bar_aperture & 0x3F) << 115  # [120:115] BAR aperture
    d |= (r.tc & 0x7) << 121  # [123:121] transaction class
    d |= (r.attr & 0x7) << 124  # [126:124] attributes
    return d


@dataclass(frozen=True)
class Beat:
    data: int
    keep: int
    last: bool
    user: int = 0


def cq_beats(r: Request) -> list[Beat]:
    """The CQ packet: descriptor beat, then payload DWs four to a beat (DWORD-aligned mode)."""
    user = (r.first_be & 0xF) | (r.last_be & 0xF) << 4 | 1 << 40  # first BE, last BE, sop
    dws = [int.from_bytes(r.payload[i : i + 4], "little") for i in range(0, len(r.payload), 4)]
    beats = [Beat(cq_descriptor(r), 0xF, not dws, user)]
    for i in range(0, len(dws), 4):
        chunk = dws[i : i + 4]
        data = sum(dw << (32 * k) for k, dw in enumerate(chunk))
        last = i + 4 >= len(dws)
        user = (1 << 41) if (last and r.discontinue) else 0
        beats.append(Beat(data, (1 << len(chunk)) - 1, last, user))
    if r.discontinue and not dws:
        beats[0] = Beat(beats[0].data, beats[0].keep, True, beats[0].user | 1 << 41)
    return beats


@dataclass(frozen=True)
class CcDescriptor:
    """The fields of a 96-bit completer completion descriptor."""

    lower_address: int
    at: int
    byte_count: int
    locked: bool
    dw_count: int
    status: int
    poisoned: bool
    requester_id: int
    tag: int
    completer_id: int
    completer_id_enable: bool
    tc: int
    attr: int
    force_ecrc: bool
    reserved: int  # every reserved bit, gathered; must be 0


def unpack_cc_descriptor(d: int) -> CcDescriptor:
    reserved_mask = (1 << 7) | (0x3F << 10) | (0x3 << 30) | (1 << 47)
    return CcDescriptor(
        lower_address=d & 0x7F,
        at=(d >> 8) & 0x3,
        byte_count=(d >> 16) & 0x1FFF,
        locked=bool(d >> 29 & 1),
        dw_count=(d >> 32) & 0x7FF,
        status=(d >> 43) & 0x7,
        poisoned=bool(d >> 46 & 1),
        requester_id=(d >> 48) & 0xFFFF,
        tag=(d >> 64) & 0xFF,
        completer_id=(d >> 72) & 0xFFFF,
        completer_id_enable=bool(d >> 88 & 1),
        tc=(d >> 89) & 0x7,
        attr=(d >> 92) & 0x7,
        force_ecrc=bool(d >> 95 & 1),
        reserved=d & reserved_mask,
    )


###########################################
# PCIe TLP formats (the endpoint's side) #
###########################################


def request_tlp(r: Request) -> bytes:
    """The memory request TLP the hard IP received: PCIe Base Spec §2.2.1, §2.2.7."""
    four_dw = r.address >= 1 << 32
    has_data = r.req_type == REQ_MEM_WRITE
    fmt = (has_data << 1) | four_dw
    typ = 0b00001 if r.req_type == REQ_MEM_LOCKED_READ else 0b00000
    length = r.dw_count % 1024
    attr_ro_ns = r.attr & 0x3
    ido = r.attr >> 2 & 1
    dw0 = bytes(
        [
            fmt << 5 | typ,
            r.tc << 4 | ido << 2,  # T9 = 0, TC, T8 = 0, Attr[2], LN = 0, TH = 0
            attr_ro_ns << 4 | r.at << 2 | length >> 8,  # TD = 0, EP = 0, Attr[1:0], AT
            length & 0xFF,
        ]
    )
    dw1 = r.requester_id.to_bytes(2, "big") + bytes([r.tag, r.last_be << 4 | r.first_be])
    if four_dw:
        addr = r.address.to_bytes(8, "big")
    else:
        addr = r.address.to_bytes(4, "big")
    return dw0 + dw1 + addr + r.payload


@dataclass(frozen=True)
class Completion:
    """A completion TLP as the endpoint sends it."""

    status: int
    byte_count: int  # 1 .. 4096
    lower_address: int
    requester_id: int
    tag: int
    completer_id: int
    tc: int = 0
    attr: int = 0
    ep: bool = False
    locked: bool = False
    bcm: bool = False
    payload: bytes = b""
    length_dw: int | None = None  # None: from the payload


def completion_tlp(c: Completion) -> bytes:
    """PCIe Base Spec §2.2.9: Cpl/CplD/CplLk/CplDLk with a 3-DW header."""
    has_data = c.length_dw is not None or bool(c.payload)
    length_dw = c.length_dw if c.length_dw is not None else len(c.payload) // 4
    fmt = 0b010 if has_data else 0b000
    typ = 0b01011 if c.locked else 0b01010
    length = length_dw % 1024
    dw0 = bytes(
        [
            fmt << 5 | typ,
            c.tc << 4 | (c.attr >> 2 & 1) << 2,
            c.ep << 6 | (c.attr & 0x3) << 4 | length >> 8,
            length & 0xFF,
        ]
    )
    bc = c.byte_count % 4096
    dw1 = c.completer_id.to_bytes(2, "big") + bytes(
        [c.status << 5 | c.bcm << 4 | bc >> 8, bc & 0xFF]
    )
    dw2 = c.requester_id.to_bytes(2, "big") + bytes([c.tag, c.lower_address & 0x7F])
    return dw0 + dw1 + dw2 + c.payload


def expected_cc_descriptor(c: Completion) -> CcDescriptor:
    """What PG213 asks for this completion; the hard IP supplies bus and device itself."""
    has_data = c.length_dw is not None or bool(c.payload)
    length_dw = c.length_dw if c.length_dw is not None else len(c.payload) // 4
    return CcDescriptor(
        lower_address=c.lower_address & 0x7F,
        at=0,
        byte_count=c.byte_count,
        locked=c.locked,
        dw_count=length_dw if has_data else 0,
        status=c.status,
        poisoned=c.ep,
        requester_id=c.requester_id,
        tag=c.tag,
        completer_id=c.completer_id,
        completer_id_enable=False,
        tc=c.tc,
        attr=c.attr,
        force_ecrc=False,
        reserved=0,
    )


def tlp_beats(tlp: bytes) -> list[Beat]:
    """Wire byte order: byte k of the TLP in bits [8k+7:8k]; keep is a low prefix."""
    beats = []
    for i in range(0, len(tlp), 16):
        chunk = tlp[i : i + 16]
        beats.append(
            Beat(int.from_bytes(chunk, "little"), (1 << len(chunk)) - 1, i + 16 >= len(tlp))
        )
    return beats


#########
# Bench #
#########


@dataclass
class Bench:
    dut: SimHandleBase
    rng: random.Random
    valid_p: float = 0.7
    ready_p: float = 0.7
    cq_in: list[Beat] = field(default_factory=list)
    tx_in: list[Beat] = field(default_factory=list)
    rx_beats: list[tuple[int, int, bool]] = field(default_factory=list)
    cc_beats: list[tuple[int, int, bool, int]] = field(default_factory=list)
    cq_drops: int = 0
    cq_discontinues: int = 0
    tx_drops: int = 0

    async def start(self) -> None:
        d = self.dut
        for sig in ("cq_tdata_i", "cq_tkeep_i", "cq_tlast_i", "cq_tuser_i", "cq_tvalid_i"):
            getattr(d, sig).value = 0
        for sig in ("tlp_tx_data_i", "tlp_tx_keep_i", "tlp_tx_last_i", "tlp_tx_valid_i"):
            getattr(d, sig).value = 0
        d.tlp_rx_ready_i.value = 0
        d.cc_tready_i.value = 0
        Clock(d.clk_i, CLOCK_NS, unit="ns").start()
        d.rst_ni.value = 0
        await ClockCycles(d.clk_i, 3)
        d.rst_ni.value = 1
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        d = self.dut
        while True:
            await FallingEdge(d.clk_i)
            cq_on = bool(self.cq_in) and self.rng.random() < self.valid_p
            if cq_on:
                b = self.cq_in[0]
                d.cq_tdata_i.value = b.data
                d.cq_tkeep_i.value = b.keep
                d.cq_tlast_i.value = b.last
                d.cq_tuser_i.value = b.user
            d.cq_tvalid_i.value = cq_on
            tx_on = bool(self.tx_in) and self.rng.random() < self.valid_p
            if tx_on:
                b = self.tx_in[0]
                d.tlp_tx_data_i.value = b.data
                d.tlp_tx_keep_i.value = b.keep
                d.tlp_tx_last_i.value = b.last
            d.tlp_tx_valid_i.value = tx_on
            d.tlp_rx_ready_i.value = self.rng.random() < self.ready_p
            d.cc_tready_i.value = self.rng.random() < self.ready_p
            await ReadOnly()
            if cq_on and d.cq_tready_o.value:
                self.cq_in.pop(0)
            if tx_on and d.tlp_tx_ready_o.value:
                self.tx_in.pop(0)
            if d.tlp_rx_valid_o.value and d.tlp_rx_ready_i.value:
                self.rx_beats.append(
                    (
                        int(d.tlp_rx_data_o.value),
                        int(d.tlp_rx_keep_o.value),
                        bool(d.tlp_rx_last_o.value),
                    )
                )
            if d.cc_tvalid_o.value and d.cc_tready_i.value:
                self.cc_beats.append(
                    (
                        int(d.cc_tdata_o.value),
                        int(d.cc_tkeep_o.value),
                        bool(d.cc_tlast_o.value),
                        int(d.cc_tuser_o.value),
                    )
                )
            self.cq_drops += int(d.cq_drop_o.value)
            self.cq_discontinues += int(d.cq_discontinue_o.value)
            self.tx_drops += int(d.tx_drop_o.value)

    async def drain(self, max_cycles: int = 200_000) -> None:
        """Wait until every input beat was taken and both outputs have been idle a while."""
        idle = 0
        for _ in range(max_cycles):
            await FallingEdge(self.dut.clk_i)
            busy = self.cq_in or self.tx_in
            busy = busy or self.dut.tlp_rx_valid_o.value or self.dut.cc_tvalid_o.value
            idle = 0 if busy else idle + 1
            if idle >= 8:
                return
        raise AssertionError("the adapter did not drain")

    def rx_packets(self) -> list[bytes]:
        """Reassemble the endpoint-side packets, checking the keep rules on the way."""
        packets, cur = [], b""
        for data, keep, last in self.rx_beats:
            n = keep.bit_length()
            assert keep == (1 << n) - 1 and n > 0, f"keep {keep:#06x} is not a low prefix"
            assert n == 16 or last, f"a partial beat (keep {keep:#06x}) before the last"
            cur += data.to_bytes(16, "little")[:n]
            if last:
                packets.append(cur)
                cur = b""
        assert not cur, "a packet without last"
        return packets

    def cc_packets(self) -> list[tuple[CcDescriptor, bytes]]:
        """Reassemble CC packets: descriptor fields, then payload bytes."""
        packets, cur = [], []
        for data, keep, last, user in self.cc_beats:
            assert user == 0, "discontinue/parity set on CC"
            n = keep.bit_length()
            assert keep == (1 << n) - 1 and n > 0, f"CC tkeep {keep:#x} is not a low prefix"
            assert n == 4 or last, "a partial CC beat before the last"
            cur += [(data >> (32 * k)) & 0xFFFF_FFFF for k in range(n)]
            if last:
                assert len(cur) >= 3, "CC packet shorter than its descriptor"
                desc = cur[0] | cur[1] << 32 | cur[2] << 64
                payload = b"".join(dw.to_bytes(4, "little") for dw in cur[3:])
                packets.append((unpack_cc_descriptor(desc), payload))
                cur = []
        assert not cur, "a CC packet without last"
        return packets


async def make_bench(dut: SimHandleBase, name: str) -> Bench:
    seed = int(os.environ.get("USP_ADAPTER_SEED", zlib.crc32(name.encode())))
    bench = Bench(dut, random.Random(seed))
    dut._log.info("seed %d", seed)
    await bench.start()
    return bench


def random_request(rng: random.Random, req_type: int | None = None) -> Request:
    req_type = rng.choice(sorted(FORWARDED)) if req_type is None else req_type
    dw_count = rng.choice([1, 1, 2, 3, 4, 5, 7, 8, 9, rng.randrange(1, 70)])
    if req_type == REQ_MEM_WRITE and rng.random() < 0.02:
        dw_count = 1024
    high = rng.random() < 0.5
    address = (rng.randrange(1, 1 << 30) << 34) if high else 0
    address |= rng.randrange(0, 1 << 32) & ~3
    payload = rng.randbytes(4 * dw_count) if req_type == REQ_MEM_WRITE else b""
    return Request(
        req_type=req_type,
        address=address,
        dw_count=dw_count,
        first_be=rng.randrange(1, 16),
        last_be=rng.randrange(1, 16) if dw_count > 1 else 0,
        requester_id=rng.randrange(1 << 16),
        tag=rng.randrange(256),
        tc=rng.randrange(8),
        attr=rng.randrange(8),
        at=rng.randrange(4),
        target_function=rng.randrange(4),
        bar_id=rng.randrange(7),
        bar_aperture=rng.randrange(64),
        payload=payload,
    )


def random_completion(rng: random.Random) -> Completion:
    kind = rng.randrange(4)
    locked = kind >= 2
    with_data = kind in (1, 3)
    length = rng.choice([1, 2, 3, 4, 5, 8, rng.randrange(1, 60)]) if with_data else 0
    payload = rng.randbytes(4 * length)
    byte_count = rng.choice([4 * length or 4, rng.randrange(1, 4097), 4096])
    return Completion(
        status=rng.choice([0, 1, 2, 4]),
        byte_count=byte_count,
        lower_address=rng.randrange(128),
        requester_id=rng.randrange(1 << 16),
        tag=rng.randrange(256),
        completer_id=rng.randrange(1 << 16),
        tc=rng.randrange(8),
        attr=rng.randrange(8),
        ep=rng.random() < 0.2,
        locked=locked,
        bcm=rng.random() < 0.1,
        payload=payload,
    )


def hexdiff(got: bytes, want: bytes) -> str:
    return f"\n got  {got[:40].hex()}\n want {want[:40].hex()} (lengths {len(got)}, {len(want)})"


#########
# Tests #
#########


@cocotb.test()
async def test_requests(dut: SimHandleBase) -> None:
    """Memory reads, writes and locked reads, 3-DW and 4-DW, become the spec's TLP bytes."""
    b = await make_bench(dut, "requests")
    reqs = [random_request(b.rng) for _ in range(300)]
    # Corner cases by name: both header sizes with one, four and five payload DWs.
    for high in (0, 1 << 40):
        for n in (1, 3, 4, 5):
            r = random_request(b.rng, REQ_MEM_WRITE)
            reqs.append(replace(r, address=high | 0x1000, dw_count=n, payload=bytes(range(4 * n))))
    for r in reqs:
        b.cq_in += cq_beats(r)
    await b.drain()
    got = b.rx_packets()
    assert len(got) == len(reqs), f"{len(got)} TLPs for {len(reqs)} requests"
    for r, tlp in zip(reqs, got, strict=True):
        assert tlp == request_tlp(r), f"{r}{hexdiff(tlp, request_tlp(r))}"
    assert b.cq_drops == 0 and b.cq_discontinues == 0 and b.tx_drops == 0


@cocotb.test()
async def test_header_fields(dut: SimHandleBase) -> None:
    """Each descriptor field lands in its header bits (one field varied at a time)."""
    b = await make_bench(dut, "fields")
    base = Request(REQ_MEM_READ, 0x1000, 1, 0xF, 0, 0, 0, 0, 0)
    variants = [
        {"tc": 5},
        {"attr": 1},
        {"attr": 2},
        {"attr": 4},
        {"at": 2},
        {"requester_id": 0xA5C3},
        {"tag": 0x9E},
        {"first_be": 0x6},
        {"dw_count": 2, "last_be": 0x3},
        {"dw_count": 1024, "last_be": 0xF},
        {"address": 0xFFFF_FFFC},
        {"address": 0x1_0000_0000},
        {"address": 0x8765_4321_0000_0004},
        {"req_type": REQ_MEM_LOCKED_READ},
        {"bar_id": 5, "bar_aperture": 33, "target_function": 3},  # not in the TLP
    ]
    reqs = [replace(base, **v) for v in variants]
    for r in reqs:
        b.cq_in += cq_beats(r)
    await b.drain()
    got = b.rx_packets()
    for v, r, tlp in zip(variants, reqs, got, strict=True):
        assert tlp == request_tlp(r), f"{v}{hexdiff(tlp, request_tlp(r))}"
    # Spot checks against literal header bytes, independent of request_tlp().
    assert got[0][:4] == bytes([0x00, 0x50, 0x00, 0x01])  # MRd, TC 5, length 1
    assert got[3][:2] == bytes([0x00, 0x04])  # IDO is Attr[2] in byte 1 bit 2
    assert got[9][2:4] == b"\x00\x00"  # 1024 DWs: length field 0
    assert got[11][0] == 0x20 and got[11][8:16] == bytes.fromhex("0000000100000000")
    assert got[13][0] == 0x01  # MRdLk


@cocotb.test()
async def test_dropped_requests(dut: SimHandleBase) -> None:
    """IO, atomic and message requests are consumed and counted; neighbours pass intact."""
    b = await make_bench(dut, "drops")
    kept, dropped = [], 0
    for i in range(60):
        if i % 3 == 1:
            kind = b.rng.choice([REQ_IO_READ, REQ_IO_WRITE, REQ_FETCH_ADD, REQ_MSG, REQ_VENDOR_MSG])
            r = random_request(b.rng, REQ_MEM_WRITE)
            r = replace(r, req_type=kind)  # keeps a payload: several beats
            dropped += 1
        else:
            r = random_request(b.rng)
            kept.append(r)
        b.cq_in += cq_beats(r)
    await b.drain()
    got = b.rx_packets()
    assert b.cq_drops == dropped
    assert [request_tlp(r) for r in kept] == got


@cocotb.test()
async def test_discontinue(dut: SimHandleBase) -> None:
    """A discontinue on the last beat of a forwarded request is reported once."""
    b = await make_bench(dut, "discontinue")
    reqs = []
    for i in range(20):
        r = random_request(b.rng, REQ_MEM_WRITE)
        reqs.append(replace(r, discontinue=i % 4 == 0))
    for r in reqs:
        b.cq_in += cq_beats(r)
    await b.drain()
    assert b.cq_discontinues == 5
    assert len(b.rx_packets()) == len(reqs)


@cocotb.test()
async def test_completions(dut: SimHandleBase) -> None:
    """Completion TLPs become PG213 completer completion descriptors; payload is unmoved."""
    b = await make_bench(dut, "completions")
    cpls = [random_completion(b.rng) for _ in range(300)]
    # A 1024-DW CplD (length field 0) and a byte count of 4096 (field 0).
    cpls.append(Completion(0, 4096, 0, 0x0100, 7, 0x0200, payload=b.rng.randbytes(4096)))
    for c in cpls:
        b.tx_in += tlp_beats(completion_tlp(c))
    await b.drain()
    got = b.cc_packets()
    assert len(got) == len(cpls)
    for c, (desc, payload) in zip(cpls, got, strict=True):
        assert desc == expected_cc_descriptor(c), f"{c}\n got  {desc}"
        assert payload == c.payload
    assert got[-1][0].dw_count == 1024 and got[-1][0].byte_count == 4096
    assert b.tx_drops == 0


@cocotb.test()
async def test_non_completions_dropped(dut: SimHandleBase) -> None:
    """A TX packet that is not a completion is dropped whole and counted."""
    b = await make_bench(dut, "tx_drops")
    cpls, dropped = [], 0
    for i in range(40):
        if i % 4 == 2:
            r = random_request(b.rng, REQ_MEM_WRITE)  # a request TLP on the completion path
            b.tx_in += tlp_beats(request_tlp(r))
            dropped += 1
        else:
            c = random_completion(b.rng)
            cpls.append(c)
            b.tx_in += tlp_beats(completion_tlp(c))
    await b.drain()
    got = b.cc_packets()
    assert b.tx_drops == dropped
    assert [expected_cc_descriptor(c) for c in cpls] == [d for d, _ in got]
    assert [c.payload for c in cpls] == [p for _, p in got]


@cocotb.test()
async def test_both_directions_full_rate(dut: SimHandleBase) -> None:
    """With valid and ready always high, 4-DW writes pass at one beat per cycle."""
    b = await make_bench(dut, "full_rate")
    b.valid_p = b.ready_p = 1.0
    reqs = []
    for _ in range(30):
        r = random_request(b.rng, REQ_MEM_WRITE)
        reqs.append(replace(r, address=r.address | 1 << 40))
    cpls = [random_completion(b.rng) for _ in range(30)]
    beats_in = sum(len(cq_beats(r)) for r in reqs)
    for r in reqs:
        b.cq_in += cq_beats(r)
    for c in cpls:
        b.tx_in += tlp_beats(completion_tlp(c))
    start = len(b.rx_beats)
    for _ in range(beats_in + 4):
        await FallingEdge(dut.clk_i)
    assert len(b.rx_beats) - start >= beats_in - 1, "4-DW requests did not stream at full rate"
    await b.drain()
    assert [request_tlp(r) for r in reqs] == b.rx_packets()
    assert [expected_cc_descriptor(c) for c in cpls] == [d for d, _ in b.cc_packets()]


#######################
# pytest entry point  #
#######################


def test_model_self_checks() -> None:
    """The model's own layouts against literal values from the two specifications."""
    r = Request(
        REQ_MEM_WRITE, 0x1234_5678, 1, 0xF, 0, 0x0108, 0x2A, 0, 0, payload=b"\x01\x02\x03\x04"
    )
    d = cq_descriptor(r)
    assert d & 0xFFFF_FFFF == 0x1234_5678 and (d >> 64) & 0x7FF == 1 and (d >> 75) & 0xF == 1
    assert request_tlp(r) == bytes.fromhex("40000001 0108 2a 0f 12345678 01020304".replace(" ", ""))
    beats = cq_beats(r)
    assert [b.last for b in beats] == [False, True] and beats[1].data == 0x0403_0201
    c = Completion(0, 4, 0x10, 0x0108, 0x2A, 0x0300, payload=b"\xaa\xbb\xcc\xdd")
    assert completion_tlp(c) == bytes.fromhex(
        "4a000001 0300 0004 0108 2a10 aabbccdd".replace(" ", "")
    )


def test_usp_cq_cc_adapter() -> None:
    """Build the adapter (cached) and run the cocotb tests above."""
    from hil.sim import build_hdl, rtl_sources, run_cocotb_tests

    build_dir = build_hdl("usp_cq_cc_adapter", rtl_sources("usp_cq_cc_adapter"))
    run_cocotb_tests("usp_cq_cc_adapter", build_dir, Path(__file__).stem, Path(__file__).parent)
