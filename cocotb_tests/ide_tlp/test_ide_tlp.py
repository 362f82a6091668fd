"""Block tests of ide_tlp: the endpoint's TLP path with IDE, checked against hil.ide_model.

The root port's end of each stream is ``hil.ide_model.IdeStreamModel`` (AES-GCM from
``cryptography``): it protects the requests the test sends and checks and decrypts the
completions the block returns.  The block's memory is checked against a bytearray.  The test
bench plays ide_cap: a table of key slots answers the block's key-read port, and the stream
registers (Stream ID, Enable, Secure, armed slots, Link and TC) are driven from it.  Streams 0
and 1 are Selective; stream 2 is a Link IDE Stream for TC ``LINK_TC``, as ide_cap orders them.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, RisingEdge

from hil.codec.ide_km import KeyDirection, KeySet, KeySlot
from hil.codec.ide_tlp import (
    CfgRead,
    CfgWrite,
    Completion,
    CplStatus,
    MemRead,
    MemWrite,
    SubStream,
    decode_tlp,
)
from hil.ide_model import (
    IdeStreamModel,
    PortSide,
    StreamKind,
    TxStream,
    establish,
    program_keys,
    request_stream,
)
from hil.sim.tlpstream import TlpSink, TlpSource

CLOCK_NS = 4
BAR0 = 0x9000_0000
BAR_SIZE = 4096
RID = 0x0010  # the root port's requester ID
CPL_ID = 0x0100  # the endpoint's ID
STREAM_IDS = (0x17, 0x42, 0x5C)  # two Selective streams, then a Link stream
LINK, LINK_TC = 2, 2

# ide_tlp firmware counters (hdl/ide_tlp/README.md)
RX_OK, TX, CHECK_FAILED, LAST_FAIL = 0, 1, 2, 3
MISROUTED, DISCARDED, PLAIN, UR, MALFORMED, INFO, PCRC_FAILED = range(0x20, 0x27)
#: The block is built with PCRC, PHE and aggregation; each stream's PCRC Enable and PHE Mode
#: are the bench's (Stream.pcrc, Stream.phe), so streams without them test the path as a build
#: without them runs it.  A TLP without a MAC is a unit's member here, never IDE Check Failed.
PARAMS = {
    "PCRC_SUPPORTED": 1,
    "PHE_SUPPORTED": 1,
    "CFG_IDE_SUPPORTED": 1,
    "AGG_SUPPORTED": 1,
    "DMA_SUPPORTED": 1,
    "ADDR_BLOCKS": 2,
    "NUM_STREAMS": len(STREAM_IDS),
}
ADDR_BLOCKS = 2
# The DMA engine's registers (hdl/ide_tlp/README.md, "DMA") and DMA_STATUS outcomes
DMA_ADDR_LO, DMA_ADDR_HI, DMA_CTRL, DMA_STATUS = range(0x30, 0x34)
DMA_SENT_IDE, DMA_SENT_PLAIN, DMA_DISCARDED, DMA_NO_BUS_MASTER, DMA_BAD_REQUEST = range(1, 6)
DMA_READ_DONE, DMA_READ_ERROR, DMA_READ_TIMEOUT = range(7, 10)
DMA_READ = 1 << 30  # DMA_CTRL: a read of host memory into BAR0's
UNEXPECTED_CPL = 0x27
FAIL_MAC, FAIL_PR, FAIL_SUB, FAIL_SUB_MISMATCH, FAIL_KEYSET, FAIL_NO_MAC, FAIL_PCRC = range(1, 8)
FAIL_AGGREGATION = 8


def slot_code(sub: int, direction: int, key_set: int) -> int:
    return 4 * sub + 2 * direction + key_set


@dataclass
class Stream:
    """What ide_cap holds for one stream, and the root port's model of the other end."""

    stream_id: int
    slots: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # code -> (key, ifv)
    armed: set[int] = field(default_factory=set)
    enabled: bool = False
    secure: bool = False
    pcrc: bool = False  # PCRC Enable (ide_cap's stream_pcrc_o)
    default: bool = False  # Default Stream
    rid_range: tuple[int, int] = (RID, RID)  # RID Base, RID Limit: the root port, as Linux sets
    link: bool = False  # a Link IDE Stream (ide_cap's stream_link_o)
    tc: int = 0  # its TC
    phe: int = 0  # Partial Header Encryption Mode (ide_cap's stream_phe_o)
    tee_limited: bool = False  # TEE-Limited Stream
    #: Valid Address Association blocks, (base, limit) bytes inclusive, 1 MB granules
    ranges: list[tuple[int, int]] = field(default_factory=list)
    rp: IdeStreamModel | None = None

    def tx_stream(self, j: int) -> TxStream:
        """The stream as the oracle (hil.ide_model.request_stream) reads it."""
        return TxStream(
            j,
            enabled=self.enabled,
            tc=self.tc,
            link=self.link,
            default=self.default,
            tee_limited=self.tee_limited,
            ranges=tuple(self.ranges),
        )

    def model(self, side: PortSide) -> IdeStreamModel:
        kind = StreamKind.LINK if self.link else StreamKind.SELECTIVE
        return IdeStreamModel(
            self.stream_id, side=side, pcrc=self.pcrc, kind=kind, tc=self.tc, phe=self.phe
        )


class Bench:
    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self.clk = dut.clk_i
        self.streams = [Stream(sid) for sid in STREAM_IDS]
        # ide_cap gives a Link stream no RID association (0, 0): requests from RID still pass.
        self.streams[LINK] = Stream(STREAM_IDS[LINK], link=True, tc=LINK_TC, rid_range=(0, 0))
        self.mem = bytearray(BAR_SIZE)
        self.fails: list[int] = [0] * len(self.streams)
        self.poisoned = 0
        self.tag = 0
        self.src = TlpSource(dut, "rx", self.clk)
        self.sink = TlpSink(dut, "tx", self.clk)
        #: The hard IP's configuration space behind cfg_mgmt_*: register -> value, and the
        #: accesses made, in order.
        self.cfg_space: dict[int, int] = {0: 0x9048_10EE, 1: 0x0010_0006}
        self.cfg_log: list[tuple[str, int, int]] = []

    async def start(self) -> None:
        d = self.dut
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        d.completer_id_i.value = CPL_ID
        d.bar0_base_i.value = BAR0
        d.mem_enable_i.value = 1
        d.tdi_state_i.value = 0
        d.tdi_bound_i.value = 0
        d.tdi_bound_stream_i.value = 0
        d.fw_rd_i.value = 0
        d.fw_wr_i.value = 0
        d.fw_wdata_i.value = 0
        d.fw_addr_i.value = 0
        d.bus_master_i.value = 1
        d.key_i.value = 0
        d.ifv_i.value = 0
        d.key_go_i.value = 0
        d.key_rvalid_i.value = 0
        d.cfg_mgmt_read_data_i.value = 0
        d.cfg_mgmt_read_write_done_i.value = 0
        self.drive_streams()
        d.rst_ni.value = 0
        await ClockCycles(self.clk, 4)
        d.rst_ni.value = 1
        await ClockCycles(self.clk, 2)
        cocotb.start_soon(self.sink.run())
        cocotb.start_soon(self._key_port())
        cocotb.start_soon(self._events())
        cocotb.start_soon(self._cfg_mgmt())

    # -- ide_cap's part ---------------------------------------------------------------------
    def drive_streams(self) -> None:
        ids = en = sec = go = pcrc = dflt = base = limit = link = tc = phe = tee = addr = 0
        for j, s in enumerate(self.streams):
            tee |= int(s.tee_limited) << j
            for b, (lo, hi) in enumerate(s.ranges):
                entry = 1 << 88 | (lo >> 20) << 44 | hi >> 20  # {Valid, Base, Limit}[63:20]
                addr |= entry << (89 * (j * ADDR_BLOCKS + b))
            phe |= s.phe << (4 * j)
            link |= int(s.link) << j
            tc |= s.tc << (3 * j)
            dflt |= int(s.default) << j
            base |= s.rid_range[0] << (16 * j)
            limit |= s.rid_range[1] << (16 * j)
            ids |= s.stream_id << (8 * j)
            en |= int(s.enabled) << j
            sec |= int(s.secure) << j
            pcrc |= int(s.pcrc) << j
            for code in s.armed:
                go |= 1 << (12 * j + code)
        d = self.dut
        d.stream_id_i.value = ids
        d.stream_enable_i.value = en
        d.stream_secure_i.value = sec
        d.stream_slot_go_i.value = go
        d.stream_pcrc_i.value = pcrc
        d.stream_default_i.value = dflt
        d.stream_rid_base_i.value = base
        d.stream_rid_limit_i.value = limit
        d.stream_link_i.value = link
        d.stream_tc_i.value = tc
        d.stream_phe_i.value = phe
        d.stream_tee_limited_i.value = tee
        d.stream_addr_i.value = addr

    async def _key_port(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(self.clk)
            if int(d.key_rd_o.value):
                s = self.streams[int(d.key_stream_o.value)]
                code = int(d.key_slot_o.value)
                key, ifv = s.slots.get(code, (bytes(32), 0))
                d.key_i.value = int.from_bytes(key, "big")
                d.ifv_i.value = ifv
                d.key_go_i.value = int(code in s.armed)
                d.key_rvalid_i.value = 1
            else:
                d.key_i.value = 0
                d.ifv_i.value = 0
                d.key_go_i.value = 0
                d.key_rvalid_i.value = 0

    async def _cfg_mgmt(self) -> None:
        """The hard IP's configuration management port (PG213): a request holds until done."""
        d = self.dut
        while True:
            await RisingEdge(self.clk)
            reg = int(d.cfg_mgmt_addr_o.value)
            if int(d.cfg_mgmt_read_o.value):
                d.cfg_mgmt_read_data_i.value = self.cfg_space.get(reg, 0)
                self.cfg_log.append(("rd", reg, 0))
            elif int(d.cfg_mgmt_write_o.value):
                be = int(d.cfg_mgmt_byte_enable_o.value)
                mask = sum(0xFF << 8 * i for i in range(4) if be >> i & 1)
                old = self.cfg_space.get(reg, 0)
                self.cfg_space[reg] = (old & ~mask) | (int(d.cfg_mgmt_write_data_o.value) & mask)
                self.cfg_log.append(("wr", reg, be))
            else:
                continue
            await ClockCycles(self.clk, 3)  # the hard IP takes a few clocks
            d.cfg_mgmt_read_write_done_i.value = 1
            await RisingEdge(self.clk)
            d.cfg_mgmt_read_write_done_i.value = 0

    async def _events(self) -> None:
        """IDE Check Failed makes the stream Insecure and wipes its keys, as ide_cap does."""
        d = self.dut
        while True:
            await RisingEdge(self.clk)
            failed = int(d.check_failed_o.value)
            if int(d.tlp_poisoned_o.value):
                self.poisoned += 1
            for j, s in enumerate(self.streams):
                if failed >> j & 1:
                    self.fails[j] += 1
                    if s.secure:
                        s.secure = False
                        s.slots.clear()
                        s.armed.clear()
                        self.drive_streams()

    def establish(self, j: int, key_set: int = KeySet.K0) -> IdeStreamModel:
        """Keys for both ends (the root port model and the block's slots), GO, Enable."""
        s = self.streams[j]
        if s.rp is None:
            s.rp = s.model(PortSide.ROOT_PORT)
        ep = s.model(PortSide.ENDPOINT)
        keys: list[bytes] = []

        def source(n: int) -> bytes:
            keys.append(os.urandom(n))
            return keys[-1]

        if key_set == KeySet.K0 and not s.rp.secure:
            establish(s.rp, ep, key_set, key_source=source)
        else:
            program_keys(s.rp, ep, key_set, key_source=source)
        # program_keys: root port Tx / endpoint Rx first, then endpoint Tx / root port Rx.
        for i, sub in enumerate(SubStream):
            s.slots[slot_code(sub, KeyDirection.RX, key_set)] = (keys[i], 1)
            s.slots[slot_code(sub, KeyDirection.TX, key_set)] = (keys[3 + i], 1)
        return s.rp

    def arm(self, j: int, key_set: int, direction: int | None = None) -> None:
        s = self.streams[j]
        for sub in SubStream:
            for dr in (KeyDirection.RX, KeyDirection.TX):
                if direction is None or dr == direction:
                    s.armed.add(slot_code(sub, dr, key_set))
        s.enabled = True
        s.secure = True
        self.drive_streams()

    # -- traffic --------------------------------------------------------------------------
    def next_tag(self) -> int:
        self.tag = (self.tag + 1) & 0xFF
        return self.tag

    def write_tlp(self, offset: int, data: bytes, tc: int = 0) -> MemWrite:
        return MemWrite.for_bytes(BAR0 + offset, data, requester_id=RID, tag=0, tc=tc)

    def read_tlp(self, offset: int, size: int, tc: int = 0) -> MemRead:
        return MemRead.for_bytes(BAR0 + offset, size, requester_id=RID, tag=self.next_tag(), tc=tc)

    async def counter(self, index: int) -> int:
        d = self.dut
        await RisingEdge(self.clk)
        d.fw_addr_i.value = index
        d.fw_rd_i.value = 1
        await RisingEdge(self.clk)
        d.fw_rd_i.value = 0
        await RisingEdge(self.clk)
        return int(d.fw_rdata_o.value)

    async def fw_write(self, index: int, value: int) -> None:
        d = self.dut
        await RisingEdge(self.clk)
        d.fw_addr_i.value = index
        d.fw_wdata_i.value = value
        d.fw_wr_i.value = 1
        await RisingEdge(self.clk)
        d.fw_wr_i.value = 0

    async def dma(
        self,
        address: int,
        source: int,
        length_dw: int,
        *,
        tc: int = 0,
        t: bool = False,
        read: bool = False,
        wait: bool = True,
    ) -> int:
        """One DMA write (or read) started on the firmware port; DMA_STATUS once it is done
        (``wait``), or at once."""
        await self.fw_write(DMA_ADDR_LO, address & 0xFFFF_FFFF)
        await self.fw_write(DMA_ADDR_HI, address >> 32)
        ctrl = length_dw | tc << 12 | int(t) << 15 | (source // 4) << 16 | DMA_READ * read
        await self.fw_write(DMA_CTRL, ctrl)
        if not wait:
            return await self.counter(DMA_STATUS)
        return await self.dma_done()

    async def dma_done(self, polls: int = 200) -> int:
        """DMA_STATUS once the engine is no longer busy."""
        for _ in range(polls):
            status = await self.counter(DMA_STATUS)
            if not status >> 31 and status & 0xF:
                return status
        raise AssertionError("the DMA write never finished")

    async def idle(self, cycles: int = 400) -> None:
        await ClockCycles(self.clk, cycles)

    async def read_plain(self, offset: int, size: int, tc: int = 0) -> Completion:
        req = self.read_tlp(offset, size, tc)
        await self.src.send(req.encode())
        raw = await self.sink.recv()
        assert raw is not None, "no completion"
        cpl = decode_tlp(raw)
        assert isinstance(cpl, Completion)
        assert (cpl.tag, cpl.requester_id, cpl.completer_id) == (req.tag, RID, CPL_ID)
        return cpl

    async def read_ide(
        self, j: int, offset: int, size: int, *, t: bool = False
    ) -> tuple[Completion, bool]:
        rp = self.streams[j].rp
        req = self.read_tlp(offset, size, self.streams[j].tc)
        ide = rp.protect(req, t=t)
        await self.src.send(ide.encode())
        raw = await self.sink.recv()
        assert raw is not None, "no completion"
        got = rp.receive(raw)  # checks the block's MAC, IV and counters
        assert got is not None
        cpl = got.tlp
        assert isinstance(cpl, Completion)
        assert got.prefix.stream_id == self.streams[j].stream_id
        assert (cpl.tag, cpl.requester_id, cpl.completer_id) == (req.tag, RID, CPL_ID)
        return cpl, got.t


def expected_read(mem: bytearray, offset: int, size: int) -> bytes:
    start = offset & ~3
    end = (offset + size + 3) & ~3
    return bytes(mem[start:end])


async def fresh(dut: SimHandleBase, *, pcrc: tuple[int, ...] = ()) -> Bench:
    """A reset block; the memory model starts from what BAR0 holds (reset keeps memory).
    ``pcrc``: the streams whose PCRC Enable is set."""
    bench = Bench(dut)
    for j in pcrc:
        bench.streams[j].pcrc = True
    await bench.start()
    for offset in range(0, BAR_SIZE, 256):
        cpl = await bench.read_plain(offset, 256)
        bench.mem[offset : offset + 256] = cpl.payload
    return bench


@cocotb.test()
async def test_plain_write_read(dut: SimHandleBase) -> None:
    """Without IDE: writes land in BAR0 with their byte enables, reads return them."""
    b = await fresh(dut)
    rng = random.Random(1)
    for _ in range(40):
        size = rng.randint(1, 252)
        offset = rng.randrange(0, BAR_SIZE - size)
        data = rng.randbytes(size)
        await b.src.send(b.write_tlp(offset, data).encode())
        b.mem[offset : offset + size] = data
        rsize = rng.randint(1, 252)
        roff = rng.randrange(0, BAR_SIZE - rsize)
        cpl = await b.read_plain(roff, rsize)
        assert cpl.status == CplStatus.SC
        assert cpl.payload == expected_read(b.mem, roff, rsize)
        assert cpl.byte_count == rsize
        assert cpl.lower_address == roff & 0x7F
    assert await b.counter(PLAIN) == 80 + BAR_SIZE // 256


@cocotb.test()
async def test_ide_write_read_many_sizes(dut: SimHandleBase) -> None:
    """IDE MWr/MRd of 1..256 bytes on both streams; completions are IDE on the same stream."""
    b = await fresh(dut)
    for j in (0, 1):
        b.establish(j)
        b.arm(j, KeySet.K0)
    rng = random.Random(2)
    b.sink.stall_probability = 0.3
    for n in range(60):
        j = n % 2
        rp = b.streams[j].rp
        size = rng.choice([1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 64, 100, 255, 256])
        offset = rng.randrange(0, BAR_SIZE - size)
        if size > 252:
            offset &= ~3  # at most 64 DW (MAX_PAYLOAD_DW)
        data = rng.randbytes(size)
        await b.src.send(rp.protect(b.write_tlp(offset, data)).encode(), gap_probability=0.2)
        b.mem[offset : offset + size] = data
        cpl, t = await b.read_ide(j, offset, size)
        assert cpl.payload == expected_read(b.mem, offset, size)
        assert not t
    for j in (0, 1):
        assert await b.counter(4 * j + RX_OK) == 60
        assert await b.counter(4 * j + TX) == 30
        assert await b.counter(4 * j + CHECK_FAILED) == 0
    assert b.fails == [0, 0, 0]


async def _tamper(b: Bench, where: str) -> None:
    rp = b.streams[0].rp
    data = bytes(range(64))
    wire = bytearray(rp.protect(b.write_tlp(0x100, data)).encode())
    pos = {"prefix": 1, "header": 4 + 5, "payload": 4 + 12 + 20, "mac": len(wire) - 3}[where]
    wire[pos] ^= 0x10
    await b.src.send(bytes(wire))
    await b.idle()


@cocotb.test()
async def test_tamper_detected(dut: SimHandleBase) -> None:
    """A flipped bit in the prefix, header, payload or MAC fails the MAC; the stream fails."""
    for where in ("prefix", "header", "payload", "mac"):
        b = await fresh(dut)
        b.establish(0)
        b.arm(0, KeySet.K0)
        before = bytes(b.mem)
        await _tamper(b, where)
        assert b.fails[0] == 1, where
        assert await b.counter(CHECK_FAILED) == 1
        last = await b.counter(LAST_FAIL)
        # The prefix byte flipped is PR_Sent_Counter: MAC checked after the prefix checks.
        assert last & 0xF == FAIL_MAC, (where, hex(last))
        cpl = await b.read_plain(0x100, 64)  # the memory was not written
        assert cpl.payload == before[0x100:0x140], where


@cocotb.test()
async def test_replay_and_reorder(dut: SimHandleBase) -> None:
    """A replayed TLP, and two TLPs swapped, fail the MAC check (the IV moved on)."""
    b = await fresh(dut)
    b.establish(0)
    b.arm(0, KeySet.K0)
    rp = b.streams[0].rp
    first = rp.protect(b.write_tlp(0x40, b"\x11" * 8)).encode()
    await b.src.send(first)
    await b.src.send(first)
    await b.idle()
    assert b.fails[0] == 1
    assert await b.counter(RX_OK) == 1
    # Re-establish and swap two writes.
    b.streams[0].rp = None
    b.establish(0)
    b.arm(0, KeySet.K0)
    rp = b.streams[0].rp
    one = rp.protect(b.write_tlp(0x40, b"\x22" * 8)).encode()
    two = rp.protect(b.write_tlp(0x48, b"\x33" * 8)).encode()
    await b.src.send(two)
    await b.src.send(one)
    await b.idle()
    assert b.fails[0] == 2
    assert (await b.counter(LAST_FAIL)) & 0xF == FAIL_MAC


@cocotb.test()
async def test_prefix_checks(dut: SimHandleBase) -> None:
    """Reserved Sub-Stream, a request on the wrong Sub-Stream, P = 1, PR counter.  (M = 0 is
    a unit's member in this build: test_aggregation.)"""
    cases = [
        ("reserved sub-stream", FAIL_SUB),
        ("wrong sub-stream", FAIL_SUB_MISMATCH),
        ("PCRC", FAIL_PCRC),
        ("PR counter", FAIL_PR),
    ]
    for what, reason in cases:
        b = await fresh(dut)
        b.establish(0)
        b.arm(0, KeySet.K0)
        rp = b.streams[0].rp
        if what == "PR counter":
            # One Posted Request sent, two claimed by the read: an underflow (§6.33.5).
            await b.src.send(rp.protect(b.write_tlp(0, b"\0" * 4)).encode())
            rp.tx.pr_sent_npr += 1  # a Posted Request the block never received
            ide = rp.protect(b.read_tlp(0, 4))
            assert ide.prefix.pr_sent_counter == 2
            wire = bytearray(ide.encode())
        else:
            wire = bytearray(rp.protect(b.write_tlp(0, b"\0" * 4)).encode())
            if what == "reserved sub-stream":
                wire[3] = (wire[3] & 0x0F) | (5 << 4)
            elif what == "wrong sub-stream":
                wire[3] = (wire[3] & 0x0F) | (1 << 4)
            else:  # P = 1 and a PCRC DW before the MAC, on a stream without PCRC Enable
                wire[3] |= 0x08
                wire[-12:-12] = bytes(4)
        await b.src.send(bytes(wire))
        await b.idle()
        assert b.fails[0] == 1, what
        assert (await b.counter(LAST_FAIL)) & 0xF == reason, what


@cocotb.test()
async def test_key_refresh_with_traffic(dut: SimHandleBase) -> None:
    """K0 -> K1 while traffic flows: the first K1 TLP retires K0; K0 TLPs then fail."""
    b = await fresh(dut)
    b.establish(0)
    b.arm(0, KeySet.K0)
    rp = b.streams[0].rp
    for i in range(4):
        await b.src.send(rp.protect(b.write_tlp(4 * i, bytes([i]) * 4)).encode())
        b.mem[4 * i : 4 * i + 4] = bytes([i]) * 4
    stale = rp.protect(b.write_tlp(0x200, b"\xee" * 4))  # made with K0, sent late
    rp.tx.pr_sent_npr -= 1  # not delivered before the reads below: not in their counter
    # Refresh: program K1, GO Rx at both ends, then Tx at both (§6.33.3).
    b.establish(0, KeySet.K1)
    for sub in SubStream:
        rp.k_set_go(KeySlot(KeySet.K1, KeyDirection.RX, sub))
    b.arm(0, KeySet.K1, KeyDirection.RX)
    for sub in SubStream:
        rp.k_set_go(KeySlot(KeySet.K1, KeyDirection.TX, sub))
    b.arm(0, KeySet.K1, KeyDirection.TX)
    for i in range(4):
        ide = rp.protect(b.write_tlp(0x40 + 4 * i, bytes([0x80 + i]) * 4))
        assert ide.prefix.k == 1
        await b.src.send(ide.encode())
        b.mem[0x40 + 4 * i : 0x44 + 4 * i] = bytes([0x80 + i]) * 4
    cpl, _ = await b.read_ide(0, 0, 0x50)
    assert cpl.payload == bytes(b.mem[0:0x50])
    assert b.fails[0] == 0
    await b.src.send(stale.encode())
    await b.idle()
    assert b.fails[0] == 1
    assert (await b.counter(LAST_FAIL)) & 0xF == FAIL_KEYSET


@cocotb.test()
async def test_stopped_key_set(dut: SimHandleBase) -> None:
    """A TLP with a key set that was never armed (or stopped) fails: key set invalid."""
    b = await fresh(dut)
    b.establish(0)
    b.arm(0, KeySet.K0)
    rp = b.streams[0].rp
    ide = rp.protect(b.write_tlp(0, b"\1" * 4))
    wire = bytearray(ide.encode())
    wire[3] |= 0x02  # K1, never programmed
    await b.src.send(bytes(wire))
    await b.idle()
    assert b.fails[0] == 1
    assert (await b.counter(LAST_FAIL)) & 0xF == FAIL_KEYSET


@cocotb.test()
async def test_misrouted_and_insecure(dut: SimHandleBase) -> None:
    """Unknown Stream ID: misrouted, dropped.  Stream not Secure: discarded, nothing logged."""
    b = await fresh(dut)
    b.establish(0)
    b.arm(0, KeySet.K0)
    rp = b.streams[0].rp
    wire = bytearray(rp.protect(b.write_tlp(0, b"\7" * 4)).encode())
    wire[2] = 0x99
    await b.src.send(bytes(wire))
    b.streams[0].secure = False
    b.drive_streams()
    await b.src.send(rp.protect(b.write_tlp(0, b"\7" * 4)).encode())
    await b.src.send(rp.protect(b.read_tlp(0, 4)).encode())
    await b.idle()
    assert await b.counter(MISROUTED) == 1
    assert await b.counter(DISCARDED) == 2
    assert b.fails == [0, 0, 0]
    assert not b.sink.packets
    assert (await b.read_plain(0, 4)).payload == bytes(b.mem[0:4])


@cocotb.test()
async def test_tdisp_rules(dut: SimHandleBase) -> None:
    """T = 1 outside RUN is refused; in RUN only T = 1 on the bound stream reaches BAR0."""
    b = await fresh(dut)
    for j in (0, 1):
        b.establish(j)
        b.arm(j, KeySet.K0)
    d = b.dut
    cpl, t = await b.read_ide(0, 0, 4, t=True)  # CONFIG_UNLOCKED: T = 1 refused
    assert cpl.status == CplStatus.UR and t
    d.tdi_state_i.value = 2  # RUN, bound to stream 1
    d.tdi_bound_i.value = 1
    d.tdi_bound_stream_i.value = 1
    cpl = await b.read_plain(0, 4)
    assert cpl.status == CplStatus.UR
    cpl, t = await b.read_ide(0, 0, 4, t=True)  # wrong stream
    assert cpl.status == CplStatus.UR
    cpl, t = await b.read_ide(1, 0, 4, t=False)  # bound stream without T
    assert cpl.status == CplStatus.UR
    rp = b.streams[1].rp
    await b.src.send(rp.protect(b.write_tlp(8, b"\x5a" * 8), t=True).encode())
    cpl, t = await b.read_ide(1, 8, 8, t=True)
    assert cpl.status == CplStatus.SC and t and cpl.payload == b"\x5a" * 8
    # A write without T in RUN is dropped.
    await b.src.send(rp.protect(b.write_tlp(8, b"\x00" * 8)).encode())
    cpl, _ = await b.read_ide(1, 8, 8, t=True)
    assert cpl.payload == b"\x5a" * 8
    assert b.fails == [0, 0, 0]


@cocotb.test()
async def test_bar_and_malformed(dut: SimHandleBase) -> None:
    """Outside BAR0 or with memory disabled: UR; a length mismatch: dropped as malformed;
    a poisoned write to BAR0 is dropped and reported."""
    b = await fresh(dut)
    req = MemRead.for_bytes(BAR0 + BAR_SIZE, 4, requester_id=RID, tag=9)
    await b.src.send(req.encode())
    cpl = decode_tlp(await b.sink.recv())
    assert cpl.status == CplStatus.UR and cpl.tag == 9
    b.dut.mem_enable_i.value = 0
    assert (await b.read_plain(0, 4)).status == CplStatus.UR
    b.dut.mem_enable_i.value = 1
    wire = b.write_tlp(0, b"\1" * 8).encode()
    await b.src.send(wire[:-4])  # one DW short
    await b.src.send(MemWrite(address=BAR0, requester_id=RID, payload=b"\2" * 4, ep=True).encode())
    await b.idle()
    assert await b.counter(MALFORMED) == 1
    assert b.poisoned == 1
    assert (await b.read_plain(0, 8)).payload == bytes(b.mem[0:8])


@cocotb.test()
async def test_pcrc_traffic(dut: SimHandleBase) -> None:
    """PCRC Enable on stream 0, not on stream 1: writes of every size pass the block's PCRC
    check, and its completions carry a PCRC the model checks (P = 1) on stream 0 only."""
    b = await fresh(dut, pcrc=(0,))
    for j in (0, 1):
        b.establish(j)
        b.arm(j, KeySet.K0)
    rng = random.Random(7)
    b.sink.stall_probability = 0.2
    for n in range(40):
        j = n % 2
        rp = b.streams[j].rp
        size = rng.choice([1, 3, 4, 5, 12, 16, 17, 33, 64, 100, 252, 256])
        offset = rng.randrange(0, BAR_SIZE - size) & (~3 if size > 252 else ~0)
        data = rng.randbytes(size)
        ide = rp.protect(b.write_tlp(offset, data))
        assert ide.prefix.p == (j == 0)
        await b.src.send(ide.encode(), gap_probability=0.2)
        b.mem[offset : offset + size] = data
        req = b.read_tlp(offset, size)
        await b.src.send(rp.protect(req).encode())
        raw = await b.sink.recv()
        assert raw is not None, "no completion"
        got = rp.receive(raw)  # raises IdePcrcCheckFailed on a wrong or missing PCRC
        assert got is not None and got.prefix.p == (j == 0), (j, got.prefix)
        assert got.tlp.payload == expected_read(b.mem, offset, size)
    assert await b.counter(PCRC_FAILED) == 0
    assert (await b.counter(INFO) >> 8) & 1 == 1  # PCRC_SUPPORTED
    assert b.fails == [0, 0, 0]


@cocotb.test()
async def test_pcrc_faults(dut: SimHandleBase) -> None:
    """A good MAC around a wrong or missing PCRC: PCRC Check Failed (counted), the write not
    done, the stream still Secure and in step; P = 1 where no PCRC is due fails the IDE check."""
    b = await fresh(dut, pcrc=(0,))
    b.establish(0)
    b.arm(0, KeySet.K0)
    rp = b.streams[0].rp
    for n, fault in enumerate(("wrong", "missing"), start=1):
        before = bytes(b.mem[0x100:0x120])
        await b.src.send(rp.protect(b.write_tlp(0x100, bytes(32 * [n])), pcrc_fault=fault).encode())
        await b.idle()
        assert await b.counter(PCRC_FAILED) == n, fault
        assert b.fails[0] == 0, f"a {fault} PCRC made the stream Insecure"
        cpl, _ = await b.read_ide(0, 0x100, 32)  # in step: the model's IV still matches
        assert cpl.payload == before, f"the write with a {fault} PCRC was done"
    # A read has no P content: P = 1 on it is not a PCRC the stream expects.
    wire = bytearray(rp.protect(b.read_tlp(0, 4)).encode())
    wire[3] |= 0x08
    wire[-12:-12] = bytes(4)
    await b.src.send(bytes(wire))
    await b.idle()
    assert b.fails[0] == 1
    assert (await b.counter(LAST_FAIL)) & 0xF == FAIL_PCRC
    # Stream 1 has no PCRC Enable: P = 1 there fails the IDE check too.
    b.establish(1)
    b.arm(1, KeySet.K0)
    wire = bytearray(b.streams[1].rp.protect(b.write_tlp(0, b"\0" * 4)).encode())
    wire[3] |= 0x08
    wire[-12:-12] = bytes(4)
    await b.src.send(bytes(wire))
    await b.idle()
    assert b.fails[1] == 1
    assert (await b.counter(4 + LAST_FAIL)) & 0xF == FAIL_PCRC


@cocotb.test()
async def test_rid_association(dut: SimHandleBase) -> None:
    """§6.33.4 (TEE-IO): a request on a Selective stream other than the Default Stream from a
    Requester ID outside RID Base..Limit is an Unsupported Request: a read gets a UR
    completion on the stream, a write is dropped; not an IDE failure.  On the Default Stream
    the range is not applied."""
    b = await fresh(dut)
    b.streams[0].rid_range = (0x0020, 0x002F)
    b.drive_streams()
    b.establish(0)
    b.arm(0, KeySet.K0)
    rp = b.streams[0].rp
    ur_before = await b.counter(UR)
    for rid, inside in ((0x001F, False), (0x0020, True), (0x002F, True), (0x0030, False)):
        data = bytes([rid & 0xFF]) * 8
        before = bytes(b.mem[0x200:0x208])
        wr = MemWrite.for_bytes(BAR0 + 0x200, data, requester_id=rid)
        await b.src.send(rp.protect(wr).encode())
        req = MemRead.for_bytes(BAR0 + 0x200, 8, requester_id=rid, tag=b.next_tag())
        await b.src.send(rp.protect(req).encode())
        raw = await b.sink.recv()
        assert raw is not None, f"no completion for RID {rid:#06x}"
        got = rp.receive(raw)  # protected on the stream either way
        assert got is not None and got.tlp.requester_id == rid
        if inside:
            assert got.tlp.status == CplStatus.SC and got.tlp.payload == data, hex(rid)
            b.mem[0x200:0x208] = data
        else:
            assert got.tlp.status == CplStatus.UR, hex(rid)
            assert bytes(b.mem[0x200:0x208]) == before
            cpl = await b.read_plain(0x200, 8)
            assert cpl.payload == before, f"the write from RID {rid:#06x} landed"
    assert await b.counter(UR) == ur_before + 4  # two writes dropped, two reads answered UR
    assert b.fails == [0, 0, 0]
    # The Default Stream carries TLPs whatever their RID.
    b.streams[0].default = True
    b.drive_streams()
    req = MemRead.for_bytes(BAR0 + 0x200, 8, requester_id=0x0300, tag=b.next_tag())
    await b.src.send(rp.protect(req).encode())
    raw = await b.sink.recv()
    assert raw is not None
    got = rp.receive(raw)
    assert got is not None and got.tlp.status == CplStatus.SC


@cocotb.test()
async def test_link_stream(dut: SimHandleBase) -> None:
    """A Link IDE Stream (§6.33.1, §6.33.4) beside a Selective one: it carries its TC's IDE
    TLPs (no RID association: the bench gives it the range ide_cap does, 0..0, and RID passes),
    an IDE TLP with its Stream ID on another TC is misrouted, and once an IDE TLP arrived on a
    Sub-Stream, non-IDE TLPs of its TC on that Sub-Stream are discarded (silently) while it is
    enabled; other TCs are untouched."""
    b = await fresh(dut)
    b.establish(0)
    b.arm(0, KeySet.K0)
    b.establish(LINK)
    b.arm(LINK, KeySet.K0)
    link = b.streams[LINK].rp
    # Enabled, no IDE TLP yet: plain TC2 requests are still taken ("must continue to accept").
    await b.src.send(b.write_tlp(0x300, b"\x11" * 8, LINK_TC).encode())
    b.mem[0x300:0x308] = b"\x11" * 8
    cpl = await b.read_plain(0x300, 8, LINK_TC)
    assert cpl.payload == b"\x11" * 8 and cpl.tc == LINK_TC
    # IDE traffic on the Link stream, interleaved with the Selective stream's.
    rng = random.Random(7)
    for n in range(12):
        size = rng.choice([4, 8, 16, 64, 256])
        offset = rng.randrange(0, BAR_SIZE - size) & ~3
        data = rng.randbytes(size)
        j = LINK if n % 3 else 0
        rp = b.streams[j].rp
        await b.src.send(rp.protect(b.write_tlp(offset, data, b.streams[j].tc)).encode())
        b.mem[offset : offset + size] = data
        got, _ = await b.read_ide(j, offset, size)
        assert got.payload == expected_read(b.mem, offset, size)
        assert got.tc == b.streams[j].tc
    ok_before = await b.counter(4 * LINK + RX_OK)
    assert ok_before == 16
    # The Link stream's Stream ID on TC0: no stream takes it (Misrouted), nothing changes.
    wire = bytearray(link.protect(b.write_tlp(0x300, b"\x99" * 8, LINK_TC)).encode())
    wire[5] &= ~0x70  # TC in header byte 1 (after the 4-byte prefix)
    link.tx.pr_sent_npr -= 1  # never received, so the next read must not count it
    await b.src.send(bytes(wire))
    # Plain TC2 requests are now discarded on both request Sub-Streams; TC0 is served.
    await b.src.send(b.write_tlp(0x300, b"\x22" * 8, LINK_TC).encode())
    await b.src.send(b.read_tlp(0x300, 8, LINK_TC).encode())
    await b.idle()
    assert not b.sink.packets, "a plain TC2 read was answered after the Link stream's IDE TLPs"
    assert (await b.read_plain(0x300, 8)).payload == bytes(b.mem[0x300:0x308])
    assert await b.counter(MISROUTED) == 1
    assert await b.counter(DISCARDED) == 2
    assert b.fails == [0, 0, 0]
    got, _ = await b.read_ide(LINK, 0x300, 8)
    assert got.payload == bytes(b.mem[0x300:0x308])
    # Insecure but still enabled: the hold stays ("for as long as the Stream is enabled").
    b.streams[LINK].secure = False
    b.drive_streams()
    await b.src.send(b.write_tlp(0x300, b"\x33" * 8, LINK_TC).encode())
    await b.idle()
    assert (await b.read_plain(0x300, 8)).payload == bytes(b.mem[0x300:0x308])
    # Enable cleared: plain TC2 requests are taken again.
    b.streams[LINK].enabled = False
    b.drive_streams()
    await b.src.send(b.write_tlp(0x300, b"\x44" * 8, LINK_TC).encode())
    b.mem[0x300:0x308] = b"\x44" * 8
    assert (await b.read_plain(0x300, 8, LINK_TC)).payload == b"\x44" * 8


async def _restart(b: Bench, j: int, *, phe: int = 0) -> IdeStreamModel:
    """Stream j disabled, then established anew (K0) with PHE Mode ``phe``."""
    s = b.streams[j]
    s.secure = s.enabled = False
    s.slots.clear()
    s.armed.clear()
    b.drive_streams()
    await b.idle(10)
    s.phe, s.rp = phe, None
    rp = b.establish(j)
    b.arm(j, KeySet.K0)
    return rp


@cocotb.test()
async def test_phe(dut: SimHandleBase) -> None:
    """Partial Header Encryption (§6.33.4) in each mode: the model sends writes and reads with
    the byte enables (but a Translation Request's) and Address[msb:2] encrypted, in the 64-bit
    format; the block rebuilds the header, so each lands where the clear header says, and its
    completions (not Memory Requests, so without PHE) check out.  Stream 1 adds PCRC, which
    covers the encrypted header fields padded to 64 bits, reads included.  A flipped bit in a
    clear or in an encrypted header field fails the MAC; a 3 DW request on a PHE stream is
    malformed."""
    b = await fresh(dut, pcrc=(1,))
    assert (await b.counter(INFO) >> 9) & 1 == 1  # PHE_SUPPORTED
    rng = random.Random(0x9E)
    b.sink.stall_probability = 0.2
    for mode in (1, 2, 3, 4):
        for j in (0, 1):
            await _restart(b, j, phe=mode if j == 0 else 5 - mode)
        for n in range(10):
            j = n % 2
            rp = b.streams[j].rp
            size = rng.choice([1, 2, 3, 4, 5, 7, 12, 16, 17, 33, 64, 100, 255, 256])
            offset = rng.randrange(0, BAR_SIZE - size) & (~3 if size > 252 else ~0)
            data = rng.randbytes(size)
            ide = rp.protect(b.write_tlp(offset, data))
            assert ide.phe and len(ide.tlp.header()) == 16
            await b.src.send(ide.encode(), gap_probability=0.2)
            b.mem[offset : offset + size] = data
            got, _ = await b.read_ide(j, offset, size)
            assert got.payload == expected_read(b.mem, offset, size), (mode, j, size, offset)
        # A Translation Request (AT = 01b) keeps its byte enables in A.
        rp = b.streams[0].rp
        req = MemRead.for_bytes(BAR0 + 0x40, 6, requester_id=RID, tag=b.next_tag(), at=0b01)
        await b.src.send(rp.protect(req).encode())
        raw = await b.sink.recv()
        assert raw is not None and rp.receive(raw) is not None
        assert b.fails == [0, 0, 0], mode
    assert (await b.read_plain(0, 256)).payload == bytes(b.mem[0:256])
    # A wrong PCRC on a read (its P content is the encrypted header fields): not used.
    rp1 = b.streams[1].rp
    pcrc_before = await b.counter(PCRC_FAILED)
    bad = rp1.protect(b.read_tlp(0x80, 8), pcrc_fault="wrong")
    await b.src.send(bad.encode())
    await b.idle()
    assert not b.sink.packets, "a read with a wrong PCRC was answered"
    assert await b.counter(PCRC_FAILED) == pcrc_before + 1 and b.fails[1] == 0
    got, _ = await b.read_ide(1, 0x80, 8)  # in step
    assert got.payload == expected_read(b.mem, 0x80, 8)
    # A 3 DW request on a PHE stream: malformed (§2.2.4.1), the stream left alone.
    plain = IdeStreamModel(STREAM_IDS[0], side=PortSide.ROOT_PORT)
    wire = bytearray(rp.protect(b.write_tlp(0x20, b"\x55" * 4)).encode())
    rp.tx.pr_sent_npr -= 1  # never taken, so the next read must not count it
    three_dw = wire[:4] + bytes([wire[4] & ~0x20]) + wire[5:12] + wire[16:]
    malformed = await b.counter(MALFORMED)
    await b.src.send(bytes(three_dw))
    await b.idle()
    assert await b.counter(MALFORMED) == malformed + 1 and b.fails[0] == 0
    del plain
    # Flipped bits: the Tag (clear, in A) on stream 0, the BE byte (encrypted, in P) on 1.
    for j, pos in ((0, 4 + 6), (1, 4 + 7)):
        before = bytes(b.mem[0x3C0:0x3C8])
        wire = bytearray(b.streams[j].rp.protect(b.write_tlp(0x3C0, b"\xa5" * 8)).encode())
        wire[pos] ^= 0x08
        await b.src.send(bytes(wire))
        await b.idle()
        assert b.fails[j] == 1, f"a flipped header bit at {pos} passed on stream {j}"
        assert (await b.counter(4 * j + LAST_FAIL)) & 0xF == FAIL_MAC
        assert (await b.read_plain(0x3C0, 8)).payload == before


async def _send_unit(b: Bench, unit: list, **kw: float) -> None:
    for member in unit:
        await b.src.send(member.encode(), **kw)


@cocotb.test()
async def test_aggregation(dut: SimHandleBase) -> None:
    """Aggregation (§6.33.6) against the model's protect_unit: units of 2 to 8 writes (up to
    256 DW) and of reads, with and without PHE and PCRC, interleaved with TLPs of the other
    stream, a plain read and a unit of the other Sub-Stream; every write lands and every read
    is answered, each completion checked by the model.  Then the faults: a tampered member
    fails the unit's MAC and none of its writes lands; a K toggled inside a unit, a ninth TLP
    and more than 256 DW fail the stream; a wrong PCRC over a unit is PCRC Check Failed, the
    unit unused and the stream in step."""
    b = await fresh(dut, pcrc=(1,))
    assert (await b.counter(INFO) >> 11) & 1 == 1  # AGG_SUPPORTED
    rng = random.Random(0xA66)
    b.sink.stall_probability = 0.2

    async def check_reads(j: int, reads: list[MemRead], want: list[bytes]) -> None:
        rp = b.streams[j].rp
        for req, data in zip(reads, want, strict=True):
            raw = await b.sink.recv()
            assert raw is not None, "no completion for a read of a unit"
            got = rp.receive(raw)
            assert got is not None and isinstance(got.tlp, Completion)
            assert got.tlp.tag == req.tag and got.tlp.payload == data

    for phe in (0, 2, 4):
        for j in (0, 1):
            await _restart(b, j, phe=phe)
        for n in range(6):
            j = n % 2
            rp, other = b.streams[j].rp, 1 - j
            count = rng.choice([2, 3, 4, 8])
            budget, writes, lands = 1024, [], []
            for i in range(count):
                size = rng.choice([4, 8, 12, 16, 36, 64, 128, 256])
                size = min(size, budget - 4 * (count - 1 - i))
                budget -= size
                offset = rng.randrange(0, BAR_SIZE - size) & ~3
                data = rng.randbytes(size)
                writes.append(b.write_tlp(offset, data))
                lands.append((offset, data))
            # Reads of the same stream protected first (they claim no Posted Request of the
            # write unit), sent interleaved with it: the two Sub-Streams' units are apart.
            reads = [b.read_tlp(rng.randrange(0, BAR_SIZE - 16) & ~3, 16) for _ in range(2)]
            want = [expected_read(b.mem, r.address - BAR0, 16) for r in reads]
            runit = rp.protect_unit(reads)
            wunit = rp.protect_unit(writes)
            assert runit is not None and wunit is not None
            assert [m.prefix.m for m in wunit] == [False] * (count - 1) + [True]
            await b.src.send(wunit[0].encode())
            await b.src.send(runit[0].encode())
            # Between the members: a TLP of the other stream, a plain read.
            got, _ = await b.read_ide(other, 0x10, 8)
            assert got.payload == expected_read(b.mem, 0x10, 8)
            assert (await b.read_plain(0x20, 4)).payload == expected_read(b.mem, 0x20, 4)
            await b.src.send(runit[1].encode())
            await check_reads(j, reads, want)
            await _send_unit(b, wunit[1:], gap_probability=0.2)
            for offset, data in lands:
                b.mem[offset : offset + len(data)] = data
            probe = lands[-1][0]
            got, _ = await b.read_ide(j, probe, 8)
            assert got.payload == expected_read(b.mem, probe, 8), (phe, n)
        assert b.fails == [0, 0, 0], phe
    assert (await b.read_plain(0, 256)).payload == bytes(b.mem[0:256])
    for offset in range(0, BAR_SIZE, 256):
        got, _ = await b.read_ide(0, offset, 256)
        assert got.payload == bytes(b.mem[offset : offset + 256]), offset

    # A wrong PCRC over a unit (stream 1): not used, the stream Secure and in step.
    rp1 = b.streams[1].rp
    before, pcrc_before = bytes(b.mem[0x700:0x710]), await b.counter(PCRC_FAILED)
    unit = rp1.protect_unit(
        [b.write_tlp(0x700, b"\x11" * 8), b.write_tlp(0x708, b"\x22" * 8)], pcrc_fault="wrong"
    )
    await _send_unit(b, unit)
    await b.idle()
    assert await b.counter(PCRC_FAILED) == pcrc_before + 1 and b.fails[1] == 0
    assert (await b.read_ide(1, 0x700, 16))[0].payload == before

    # Faults that fail the stream; none of the unit's writes lands.
    rp0 = b.streams[0].rp
    faults = ("tampered member", "K toggled", "nine TLPs", "257 DW")
    for k, what in enumerate(faults):
        if k:
            rp0 = await _restart(b, 0)
        fails = b.fails[0]
        if what == "K toggled":
            # Key set 1 programmed and armed too: only the rule can refuse the unit.
            b.establish(0, KeySet.K1)
            b.arm(0, KeySet.K1)
        before = bytes(b.mem[0x800:0xC10])
        if what == "nine TLPs":
            tlps = [b.write_tlp(0x800 + 4 * i, bytes([i]) * 4) for i in range(9)]
        elif what == "257 DW":
            tlps = [b.write_tlp(0x800, b"\x5a" * 256) for _ in range(4)]
            tlps.append(b.write_tlp(0xC00, b"\x5b" * 4))
        else:
            tlps = [b.write_tlp(0x800, b"\x5c" * 64), b.write_tlp(0x840, b"\x5d" * 64)]
        toggle = 1 if what == "K toggled" else None
        unit = rp0.protect_unit(tlps, unchecked=True, toggle_k_at=toggle)
        wires = [bytearray(m.encode()) for m in unit]
        if what == "tampered member":
            wires[0][-3] ^= 0x20  # its encrypted payload
        for wire in wires:
            await b.src.send(bytes(wire))
        await b.idle()
        assert b.fails[0] == fails + 1, what
        reason = FAIL_MAC if what == "tampered member" else FAIL_AGGREGATION
        assert (await b.counter(LAST_FAIL)) & 0xF == reason, what
        for offset in range(0x800, 0xC00, 256):
            got = (await b.read_plain(offset, 256)).payload
            assert got == before[offset - 0x800 : offset - 0x700], what


@cocotb.test()
async def test_config_requests(dut: SimHandleBase) -> None:
    """Selective IDE for Configuration Requests (§6.33.4): a Type 1 CfgRd/CfgWr for this
    function as an IDE TLP is done through cfg_mgmt and answered on its stream (CplD / Cpl,
    Byte Count 4, with PCRC where enabled); Type 0, another Target ID or a Link stream get UR;
    once one was taken, cfg_ide_hold_o is up and Configuration Requests on other streams are
    discarded, until the stream is disabled."""
    b = await fresh(dut, pcrc=(0,))
    for j in (0, 1, LINK):
        b.establish(j)
        b.arm(j, KeySet.K0)

    async def cfg(j: int, req: CfgRead | CfgWrite) -> Completion | None:
        rp = b.streams[j].rp
        await b.src.send(rp.protect(req).encode())
        raw = await b.sink.recv()
        if raw is None:
            return None
        got = rp.receive(raw)
        assert got is not None and isinstance(got.tlp, Completion)
        assert got.prefix.sub_stream == SubStream.COMPLETION
        return got.tlp

    # Not taken: Type 0, another function, a Link stream (TC0 is not its TC: stream 0's ID).
    for j, req in (
        (1, CfgRead(target_id=CPL_ID, register=0, requester_id=RID, tag=1, type1=False)),
        (1, CfgRead(target_id=CPL_ID + 1, register=0, requester_id=RID, tag=2)),
    ):
        cpl = await cfg(j, req)
        assert cpl is not None and cpl.status == CplStatus.UR and not cpl.payload
    assert not b.cfg_log and int(dut.cfg_ide_hold_o.value) == 0
    # Taken on stream 0 (PCRC Enable): a read, a write with byte enables, a read back.
    cpl = await cfg(0, CfgRead(target_id=CPL_ID, register=0, requester_id=RID, tag=3))
    assert cpl is not None and cpl.status == CplStatus.SC
    assert int.from_bytes(cpl.payload, "little") == 0x9048_10EE
    assert (cpl.byte_count, cpl.lower_address, cpl.completer_id) == (4, 0, CPL_ID)
    wr = CfgWrite(target_id=CPL_ID, register=0x125, requester_id=RID, tag=4, first_be=0b0110,
                  payload=bytes([0x11, 0x22, 0x33, 0x44]))  # fmt: skip
    cpl = await cfg(0, wr)
    assert cpl is not None and cpl.status == CplStatus.SC and not cpl.payload
    await b.idle(20)
    assert b.cfg_space[0x125] == 0x0033_2200
    assert b.cfg_log == [("rd", 0, 0), ("wr", 0x125, 0b0110)]
    assert int(dut.cfg_ide_hold_o.value) == 1
    # Another stream's Configuration Request is discarded while stream 0 holds.
    discarded = await b.counter(DISCARDED)
    assert await cfg(1, CfgRead(target_id=CPL_ID, register=0, requester_id=RID, tag=5)) is None
    assert await b.counter(DISCARDED) == discarded + 1
    assert (await b.counter(INFO) >> 10) & 1 == 1  # CFG_IDE_SUPPORTED
    # Stream 0 disabled: the hold ends.
    b.streams[0].enabled = b.streams[0].secure = False
    b.drive_streams()
    await b.idle(4)
    assert int(dut.cfg_ide_hold_o.value) == 0
    assert b.fails == [0, 0, 0]


MB = 1 << 20


@cocotb.test()
async def test_dma_requests(dut: SimHandleBase) -> None:
    """The block's own Memory Writes (DMA_SUPPORTED): each arrives on the stream
    hil.ide_model.request_stream picks from the stream registers (§6.33.4: Address
    Association blocks, the Default Stream, TEE-Limited, the TC's Link stream, else plain),
    decrypted by that stream's root-port model (PCRC and PHE on a stream that has them), with
    BAR0's bytes at the address asked; DMA_STATUS says the same.  Refusals send nothing;
    completions carry PR_Sent_Counter (§6.33.5)."""
    b = await fresh(dut)
    rng = random.Random(0xD3A)
    a, bb, c, out = 0x1_2340_0000, 0x8000_0000, 0xF0_0000_0000, 0x2_0000_0000
    s0, s1, _link = b.streams
    s0.ranges = [(a, a + MB - 1)]
    s1.ranges = [(bb, bb + MB - 1), (c, c + 2 * MB - 1)]  # two blocks
    s1.pcrc, s1.phe = True, 2  # its writes with a PCRC and Address[25:2], BE encrypted
    for j in range(3):
        b.establish(j)
        b.arm(j, KeySet.K0)
    for offset in range(0, BAR_SIZE, 4):
        b.mem[offset : offset + 4] = rng.randbytes(4)
    for offset in range(0, BAR_SIZE, 256):
        await b.src.send(b.write_tlp(offset, bytes(b.mem[offset : offset + 256])).encode())
    sent_on = [0, 0, 0]  # Posted writes since each stream's last completion

    async def one(address: int, tc: int = 0, t: bool = False, n: int = 0) -> None:
        n = n or rng.choice((1, 2, 3, 4, 7, 16, 33, 64))
        n = min(n, (0x1000 - (address & 0xFFF)) // 4)  # §2.2.7: no 4 KB boundary crossed
        src = 4 * rng.randrange(0, BAR_SIZE // 4 - n + 1)
        status = await b.dma(address, src, n, tc=tc, t=t)
        want = request_stream(
            [s.tx_stream(j) for j, s in enumerate(b.streams)], address, tc=tc, t=t
        )
        raw = await b.sink.recv()
        assert raw is not None, f"nothing sent for the write to {address:#x}"
        if want is None:
            tlp = decode_tlp(raw)
            assert status & 0xF == DMA_SENT_PLAIN, hex(status)
        else:
            s = b.streams[want]
            assert raw[0] == 0x92 and raw[2] == s.stream_id, (hex(address), raw[:4].hex(), want)
            got = s.rp.receive(raw)  # MAC, IV, PHE, PCRC: checked
            assert got is not None and got.prefix.sub_stream == SubStream.POSTED
            assert got.prefix.t == t and got.prefix.p == s.pcrc
            tlp = got.tlp
            assert status & 0xF == DMA_SENT_IDE and (status >> 8) & 7 == want, hex(status)
            assert (status >> 16) & 0xFF == s.stream_id
            sent_on[want] += 1
        assert isinstance(tlp, MemWrite), tlp
        assert (tlp.address, tlp.tc, tlp.requester_id) == (address, tc, CPL_ID)
        assert tlp.payload == bytes(b.mem[src : src + 4 * n]), hex(address)

    for _ in range(3):
        for address in (a, a + MB - 4, bb + 0x40, c + MB + 0x100, c + 2 * MB - 4, out, bb - 4):
            await one(address)
        await one(c + 0x200, tc=LINK_TC)  # TC2: the Link stream (no Selective stream on it)
        await one(a, tc=1)  # TC1: no stream at all
    # PR_Sent_Counter: each stream's next completion counts its Posted writes (§6.33.5).
    for j in (0, 1):
        cpl, _ = await b.read_ide(j, 0x10, 4)
        assert cpl.status == CplStatus.SC
    assert b.streams[0].rp.rx.pr_received_cpl == 0 and b.streams[1].rp.rx.pr_received_cpl == 0
    # Default Stream and TEE-Limited: stream 0 becomes the Default Stream, stream 1
    # TEE-Limited; the engine reads them per request.
    s0.default, s1.tee_limited = True, True
    b.drive_streams()
    for address, t in ((out, False), (bb, True), (bb, False), (c, False), (c, True)):
        await one(address, t=t)
    # Refusals: nothing is sent, DMA_STATUS says why.
    b.dut.bus_master_i.value = 0
    assert await b.dma(a, 0, 4) & 0xF == DMA_NO_BUS_MASTER
    b.dut.bus_master_i.value = 1
    assert await b.dma(a, 0, 0) & 0xF == DMA_BAD_REQUEST
    assert await b.dma(a, BAR_SIZE - 8, 4) & 0xF == DMA_BAD_REQUEST
    assert await b.dma(a + 0xFF8, 0, 4) & 0xF == DMA_BAD_REQUEST  # would cross 4 KB
    s1.secure = False  # enabled, Insecure: its writes are discarded, never sent elsewhere
    b.drive_streams()
    assert await b.dma(bb, 0, 4, t=True) & 0xF == DMA_DISCARDED
    assert await b.sink.recv(timeout_ns=4000) is None
    await one(a)  # stream 0 still carries its own
    assert b.fails == [0, 0, 0]


@cocotb.test()
async def test_dma_reads(dut: SimHandleBase) -> None:
    """The block's own Memory Reads of host memory into BAR0's: each MRd arrives on the
    stream request_stream picks (Non-Posted sub-stream, PR_Sent_Counter-NPR = the writes sent
    since, PHE and PCRC where the stream has them), checked by the root port's model; its
    Completion is taken only on that stream, with its Tag, and from a Completer ID within the
    stream's RID association (§6.33.4): else it is an Unexpected Completion and the read waits
    on.  An error status ends the read; no completion at all, the Completion Timeout."""
    b = await fresh(dut)
    rng = random.Random(0x2EAD)
    a, bb, out = 0x1_2340_0000, 0x8000_0000, 0x2_0000_0000
    s0, s1, _link = b.streams
    s0.ranges = [(a, a + MB - 1)]
    s1.ranges = [(bb, bb + MB - 1)]
    s1.pcrc, s1.phe = True, 1  # its MRd has P content: the encrypted BE and Address[17:2]
    for j in range(3):
        b.establish(j)
        b.arm(j, KeySet.K0)
    writes_since_npr = [0, 0, 0]

    async def request(address: int, n: int, dst: int, tc: int = 0) -> tuple[MemRead, int | None]:
        """Start a read; the MRd as the root port decodes it, and its stream."""
        await b.dma(address, dst, n, tc=tc, read=True, wait=False)
        want = request_stream([s.tx_stream(j) for j, s in enumerate(b.streams)], address, tc=tc)
        raw = await b.sink.recv()
        assert raw is not None, "no MRd"
        if want is None:
            req = decode_tlp(raw)
        else:
            s = b.streams[want]
            assert raw[0] == 0x92 and raw[2] == s.stream_id
            got = s.rp.receive(raw)  # MAC, PHE, PCRC and the PR_Sent_Counter rule
            assert got is not None and got.prefix.sub_stream == SubStream.NON_POSTED
            assert got.prefix.pr_sent_counter == writes_since_npr[want]
            assert got.prefix.p == (s.pcrc and s.phe != 0)
            writes_since_npr[want] = 0
            req = got.tlp
        assert isinstance(req, MemRead), req
        assert (req.address, req.length, req.requester_id, req.tc) == (address, n, CPL_ID, tc)
        return req, want

    async def answer(
        req: MemRead, stream: int | None, data: bytes, *, completer: int = RID, status=None
    ) -> None:
        cpl = Completion(
            completer_id=completer,
            requester_id=req.requester_id,
            tag=req.tag,
            byte_count=len(data) if status is None else 4,
            lower_address=req.address & 0x7C,
            tc=req.tc,
            payload=data if status is None else b"",
            **({} if status is None else {"status": status}),
        )
        wire = cpl.encode() if stream is None else b.streams[stream].rp.protect(cpl).encode()
        await b.src.send(wire)

    for address, tc in ((a + 0x40, 0), (bb + 0x80, 0), (out, 0), (a, LINK_TC), (a + 0x10, 0)):
        n = rng.choice((1, 2, 4, 12))
        dst = 4 * rng.randrange(0, BAR_SIZE // 4 - n)
        req, stream = await request(address, n, dst, tc)
        data = rng.randbytes(4 * n)
        await answer(req, stream, data)
        status = await b.dma_done()
        assert status & 0xF == DMA_READ_DONE, hex(status)
        b.mem[dst : dst + 4 * n] = data
        assert bytes((await b.read_plain(dst, 4 * n)).payload) == data
        # a write on the stream, counted in the next read's PR_Sent_Counter (§6.33.5)
        await b.dma(a + 0x400, 0, 2)
        raw = await b.sink.recv()
        assert raw is not None
        s0.rp.receive(raw)
        writes_since_npr[0] += 1
    # Unexpected Completions: a Completer ID outside stream 0's RID association, then the
    # right one on stream 1, then a wrong Tag; none lands, the read still waits.
    before = await b.counter(UNEXPECTED_CPL)
    req, stream = await request(a + 0x20, 4, 0x300)
    good = rng.randbytes(16)
    await answer(req, stream, rng.randbytes(16), completer=RID + 1)
    await answer(req, 1, rng.randbytes(16))
    await answer(
        MemRead.for_bytes(req.address, 16, requester_id=CPL_ID, tag=req.tag ^ 1), 0, b"x" * 16
    )
    await b.idle(200)
    assert await b.counter(UNEXPECTED_CPL) == before + 3
    assert (await b.counter(DMA_STATUS)) >> 31 == 1, "the read stopped waiting"
    await answer(req, stream, good)
    assert await b.dma_done() & 0xF == DMA_READ_DONE
    assert bytes((await b.read_plain(0x300, 16)).payload) == good
    b.mem[0x300:0x310] = good
    # An error status ends the read; no completion at all, the Completion Timeout.
    req, stream = await request(a + 0x20, 4, 0x300)
    await answer(req, stream, b"", status=CplStatus.UR)
    assert await b.dma_done() & 0xF == DMA_READ_ERROR
    req, stream = await request(bb, 2, 0x300)
    assert await b.dma_done(polls=20000) & 0xF == DMA_READ_TIMEOUT
    assert bytes((await b.read_plain(0x300, 16)).payload) == good
    # A read that would cross 64 bytes (a completer may split it at RCB) is refused.
    assert await b.dma(a + 0x30, 0, 8, read=True) & 0xF == DMA_BAD_REQUEST
    assert b.fails == [0, 0, 0]


# ----------------------------------------------------------------------------------------
# pytest entry point
# ----------------------------------------------------------------------------------------


def test_ide_tlp() -> None:
    """Build ide_tlp (cached) and run the cocotb tests above."""
    from hil.sim import build_hdl, rtl_sources, run_cocotb_tests

    build = build_hdl("ide_tlp", rtl_sources("ide_tlp"), PARAMS)
    run_cocotb_tests("ide_tlp", build, Path(__file__).stem, Path(__file__).parent)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
