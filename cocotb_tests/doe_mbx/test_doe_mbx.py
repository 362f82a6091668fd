"""Block tests of the DOE mailbox (``hdl/doe_mbx``) against a reference model.

``MailboxModel`` restates the DOE semantics (PCIe 6.x §6.30, §7.9.24, as summarised in
``hdl/doe_mbx/README.md``) at the level of register accesses; it knows nothing of the RTL's
structure.  The DSM side is a small firmware model built on cocotbext-axi stream source and
sink, whose signals are mapped onto the block's ``dsm_req_*``/``dsm_rsp_*`` ports.

Every register access takes one clock cycle: inputs are driven and outputs sampled on the
falling edge.  After each step the bench lets the mailbox and the firmware settle, hands what
crossed the DSM port to the model, and compares Status, read data and interrupt pulses.

Run with ``python -m pytest cocotb_tests/doe_mbx`` (one cached Verilator build per parameter
set); ``DOE_MBX_SEED`` overrides the per-test seeds.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamSink, AxiStreamSource

# Register DW indices and fields, restated from PCIe 6.x §7.9.24 (not from the RTL package).
HEADER, CAPS, CTRL, STATUS, WMBX, RMBX = range(6)
CTRL_ABORT = 1 << 0
CTRL_INT_EN = 1 << 1
CTRL_GO = 1 << 31
ST_BUSY = 1 << 0
ST_INT = 1 << 1
ST_ERROR = 1 << 2
ST_DOR = 1 << 31
MBX_REGS = (CTRL, STATUS, WMBX, RMBX)  # whole-DW access only
DOE_CAP_ID = 0x002E
DOE_CAP_VERSION = 2

# Data objects (§6.30.1) and the features the mailbox announces (§6.30.1.1, §6.31.3).
PCISIG = 0x0001
T_DISCOVERY, T_CMA, T_SECURED_CMA = 0x00, 0x01, 0x02
FEATURES = ((PCISIG, T_DISCOVERY), (PCISIG, T_CMA), (PCISIG, T_SECURED_CMA))
MAX_OBJ_DW = 1 << 18

# Bounds stated in hdl/doe_mbx/README.md.
ABORT_CYCLES = 1  # Status read issued this many cycles after the Abort write shows it done
RSP_READY_LOW_MAX = 3  # longest run of cycles with dsm_rsp_ready_o low

CLOCK_NS = 10
LOG = logging.getLogger("cocotb.test")


def seed_for(name: str) -> int:
    """Fixed seed per test (overridable with DOE_MBX_SEED); printed so failures reproduce."""
    seed = int(os.environ.get("DOE_MBX_SEED", "0")) or zlib.crc32(name.encode())
    LOG.info("%s: seed %d", name, seed)
    return seed


###############################
# Data objects and the model  #
###############################


def words_to_bytes(words: Sequence[int]) -> bytes:
    return b"".join(struct.pack("<I", w) for w in words)


def bytes_to_words(data: bytes) -> list[int]:
    assert len(data) % 4 == 0, f"{len(data)} bytes is not a whole number of DW"
    return [w for (w,) in struct.iter_unpack("<I", data)]


def data_object(
    vendor: int, obj_type: int, payload: Sequence[int], length: int | None = None
) -> list[int]:
    """A data object as DWs; ``length`` overrides the Length field (0 encodes 2^18 DW)."""
    n = len(payload) + 2 if length is None else length
    return [(obj_type << 16) | vendor, n & 0x3FFFF, *payload]


def discovery_request(index: int, version: int = 2) -> list[int]:
    return data_object(PCISIG, T_DISCOVERY, [(version << 8) | index])


def discovery_response(index: int) -> list[int]:
    """The response bytes laid out as protocols.md §1 (Discovery) describes them."""
    if index < len(FEATURES):
        vendor, obj_type = FEATURES[index]
        next_index = 0 if index == len(FEATURES) - 1 else index + 1
    else:
        vendor, obj_type, next_index = 0xFFFF, 0x00, 0x00
    header = struct.pack("<HBBI", PCISIG, T_DISCOVERY, 0, 3)
    return bytes_to_words(header + struct.pack("<HBB", vendor, obj_type, next_index))


@dataclass
class MailboxModel:
    """What a DOE mailbox must do, one register access at a time."""

    wr_depth: int
    rd_depth: int
    next_cap: int = 0
    wmbx: list[int] = field(default_factory=list)
    rbuf: deque[int] = field(default_factory=deque)
    error: bool = False
    int_en: bool = False
    int_status: bool = False
    irqs: int = 0
    pending: list[int] | None = None  # request waiting for the DSM to take it (Busy)
    rsp_on_wire: bool = False  # a DSM response object is mid-stream
    deferred: list[int] | None = None  # discovery response waiting for that object (Busy)

    @property
    def busy(self) -> bool:
        return self.pending is not None or self.deferred is not None

    @property
    def dor(self) -> bool:
        return bool(self.rbuf)

    def status(self) -> int:
        return (
            (ST_BUSY if self.busy else 0)
            | (ST_INT if self.int_status else 0)
            | (ST_ERROR if self.error else 0)
            | (ST_DOR if self.dor else 0)
        )

    @contextmanager
    def _events(self) -> Iterator[None]:
        """Interrupt Status is set when DOR or Error rises while Interrupt Enable is set."""
        dor, error = self.dor, self.error
        yield
        if self.int_en and ((self.dor and not dor) or (self.error and not error)):
            if not self.int_status:
                self.irqs += 1
            self.int_status = True

    def read(self, idx: int) -> int:
        if idx == HEADER:
            return (self.next_cap << 20) | (DOE_CAP_VERSION << 16) | DOE_CAP_ID
        if idx == CAPS:
            return 1  # Interrupt Support, message number 0
        if idx == CTRL:
            return CTRL_INT_EN if self.int_en else 0
        if idx == STATUS:
            return self.status()
        if idx == RMBX:
            return self.rbuf[0] if self.rbuf else 0
        return 0

    def write(self, idx: int, value: int, be: int = 0xF) -> None:
        with self._events():
            if be != 0xF:
                if idx in MBX_REGS:
                    self.error = True
            elif idx == CTRL:
                self.int_en = bool(value & CTRL_INT_EN)
                if value & CTRL_ABORT:
                    self._abort()
                elif value & CTRL_GO:
                    self._go()
            elif idx == STATUS:
                if value & ST_INT:
                    self.int_status = False
            elif idx == WMBX:
                if self.busy or self.error:
                    pass
                elif len(self.wmbx) == self.wr_depth:
                    self.error = True
                else:
                    self.wmbx.append(value)
            elif idx == RMBX and self.rbuf:
                self.rbuf.popleft()

    def _go(self) -> None:
        if self.busy or self.error or not self.wmbx:
            return
        obj, self.wmbx = self.wmbx, []
        if len(obj) < 2 or len(obj) != ((obj[1] & 0x3FFFF) or MAX_OBJ_DW):
            return  # DW count differs from Length: silently discarded
        vendor, obj_type = obj[0] & 0xFFFF, (obj[0] >> 16) & 0xFF
        if vendor == PCISIG and obj_type == T_DISCOVERY and len(obj) >= 3:
            # A response object is never split: discovery waits for a DSM one mid-stream.
            if self.rsp_on_wire:
                self.deferred = discovery_response(obj[2] & 0xFF)
            else:
                self._queue(discovery_response(obj[2] & 0xFF))
        elif vendor == PCISIG and obj_type in (T_CMA, T_SECURED_CMA):
            self.pending = obj
        # anything else: unsupported, silently discarded

    def _queue(self, response: Sequence[int]) -> None:
        if len(self.rbuf) + len(response) > self.rd_depth:
            self.error = True  # does not fit: dropped whole
        else:
            self.rbuf.extend(response)

    def _abort(self) -> None:
        self.wmbx = []
        self.rbuf.clear()
        self.error = False
        self.pending = None
        self.deferred = None

    def dsm_take(self) -> list[int] | None:
        """The DSM took the whole pending request: Busy clears."""
        with self._events():
            request, self.pending = self.pending, None
        return request

    def dsm_respond(
        self, response: Sequence[int], *, aborted: bool = False, overflowed: bool = False
    ) -> None:
        """The last DW of a DSM response arrived.

        ``aborted``: the mailbox was aborted while it was on the wire, so it is dropped.
        ``overflowed``: it ran out of room on the way (room freed later does not count).
        """
        with self._events():
            if overflowed:
                self.error = True
            elif not aborted:
                self._queue(response)
            self.rsp_on_wire = False
            if self.deferred is not None:
                self._queue(self.deferred)
                self.deferred = None


######################
# Drivers and models #
######################


class DsmReqBus(AxiStreamBus):
    """The request stream as a cocotbext-axi bus on the block's port names."""

    _signals = {"tdata": "dsm_req_data_o"}
    _optional_signals = {
        "tvalid": "dsm_req_valid_o",
        "tready": "dsm_req_ready_i",
        "tlast": "dsm_req_last_o",
    }


class DsmRspBus(AxiStreamBus):
    """The response stream as a cocotbext-axi bus on the block's port names."""

    _signals = {"tdata": "dsm_rsp_data_i"}
    _optional_signals = {
        "tvalid": "dsm_rsp_valid_i",
        "tready": "dsm_rsp_ready_o",
        "tlast": "dsm_rsp_last_i",
    }


def random_pauses(rng: random.Random, p_pause: float) -> Iterator[bool]:
    return (rng.random() < p_pause for _ in itertools.count())


@dataclass
class Response:
    words: list[int]
    aborted: bool = False  # the mailbox was aborted while this one was on the wire
    overflowed: bool = False  # it ran out of read buffer room on the way
    reconciled: bool = False


class Firmware:
    """The DSM: takes each request object and answers it with an object of its own.

    ``dsm_abort_o`` resets the request sink (a half-received request is dropped), and a
    request taken before an abort is not answered.
    """

    LATENCY_CYCLES = 2

    def __init__(self, dut: SimHandleBase, rng: random.Random, max_payload_dw: int) -> None:
        self.dut = dut
        self.rng = rng
        self.max_payload_dw = max_payload_dw
        self.sink = AxiStreamSink(DsmReqBus(dut), dut.clk_i, reset=dut.dsm_abort_o)
        self.source = AxiStreamSource(DsmRspBus(dut), dut.clk_i)
        self.sink.log.setLevel(logging.WARNING)
        self.source.log.setLevel(logging.WARNING)
        self.answer: Callable[[list[int]], list[int] | None] = self.random_answer
        self.requests: list[bytes] = []
        self.responses: list[Response] = []
        self.stalled = False
        self.aborts = 0
        self._p_req = 0.0
        self._working = False
        cocotb.start_soon(self._serve())
        cocotb.start_soon(self._watch_abort())

    def random_answer(self, request: list[int]) -> list[int]:
        """Same vendor and type as the request, random payload of random length."""
        n = self.rng.randint(0, self.max_payload_dw)
        payload = [self.rng.getrandbits(32) for _ in range(n)]
        return data_object(request[0] & 0xFFFF, (request[0] >> 16) & 0xFF, payload)

    def stall(self, on: bool) -> None:
        """Hold dsm_req_ready_i low (on), or go back to random back-pressure (off)."""
        self.stalled = on
        self.sink.clear_pause_generator()
        self.sink.pause = on
        if not on and self._p_req:
            self.sink.set_pause_generator(random_pauses(self.rng, self._p_req))

    def steady(self) -> None:
        """No back-pressure: the DSM always ready, its responses sent without gaps."""
        self._p_req = 0.0
        for stream in (self.sink, self.source):
            stream.clear_pause_generator()
            stream.pause = False
        self.stalled = False

    def backpressure(self, p_req: float, p_rsp: float) -> None:
        """Random pauses: dsm_req_ready_i low with p_req, dsm_rsp_valid_i low with p_rsp."""
        self._p_req = p_req
        self.sink.set_pause_generator(random_pauses(self.rng, p_req))
        self.source.set_pause_generator(random_pauses(self.rng, p_rsp))

    def idle(self) -> bool:
        return (
            not self._working and self.sink.empty() and not self.sink.active and self.source.idle()
        )

    async def _watch_abort(self) -> None:
        while True:
            await RisingEdge(self.dut.clk_i)
            if int(self.dut.dsm_abort_o.value):
                self.aborts += 1

    async def _serve(self) -> None:
        while True:
            frame = await self.sink.recv()
            self._working = True
            aborts = self.aborts
            self.requests.append(bytes(frame.tdata))
            await ClockCycles(self.dut.clk_i, self.LATENCY_CYCLES)
            answer = self.answer(bytes_to_words(bytes(frame.tdata)))
            if answer is not None and aborts == self.aborts:
                self.responses.append(Response(answer))
                await self.source.send(words_to_bytes(answer))
            self._working = False


class RegPort:
    """The register port: one access per cycle, driven and sampled on the falling edge."""

    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        dut.reg_wr_i.value = 0
        dut.reg_rd_i.value = 0
        dut.reg_idx_i.value = 0
        dut.reg_wdata_i.value = 0
        dut.reg_be_i.value = 0

    async def write(self, idx: int, value: int, be: int = 0xF) -> None:
        self.dut.reg_wr_i.value = 1
        self.dut.reg_idx_i.value = idx
        self.dut.reg_wdata_i.value = value
        self.dut.reg_be_i.value = be
        await FallingEdge(self.dut.clk_i)
        self.dut.reg_wr_i.value = 0
        assert not int(self.dut.reg_rvalid_o.value), "reg_rvalid_o without a read"

    async def read(self, idx: int) -> int:
        self.dut.reg_rd_i.value = 1
        self.dut.reg_idx_i.value = idx
        await FallingEdge(self.dut.clk_i)
        self.dut.reg_rd_i.value = 0
        assert int(self.dut.reg_rvalid_o.value), "reg_rvalid_o not set one cycle after the read"
        return int(self.dut.reg_rdata_o.value)


class Bench:
    """The mailbox, its firmware and the model, stepped together."""

    def __init__(self, dut: SimHandleBase, seed: int) -> None:
        self.dut = dut
        self.clk = dut.clk_i
        self.rng = random.Random(seed)
        self.wr_depth = int(os.environ.get("DOE_WR_DEPTH_DW", "1024"))
        self.rd_depth = int(os.environ.get("DOE_RD_DEPTH_DW", "1024"))
        self.next_cap = int(os.environ.get("DOE_NEXT_CAP_OFFSET", "0"))
        self.model = MailboxModel(self.wr_depth, self.rd_depth, self.next_cap)
        self.regs = RegPort(dut)
        self.fw = Firmware(dut, self.rng, max_payload_dw=min(self.rd_depth // 2, 24))
        self.irqs = 0
        self.abort_pulses = 0
        self.rsp_ready_low_max = 0
        self.rsp_beats = 0
        self._requests_seen = 0

    async def start(self) -> None:
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        await self.reset()
        cocotb.start_soon(self._monitor())

    async def reset(self) -> None:
        self.dut.rst_ni.value = 0
        await ClockCycles(self.clk, 3)
        await FallingEdge(self.clk)
        self.dut.rst_ni.value = 1
        await FallingEdge(self.clk)
        self.model = MailboxModel(self.wr_depth, self.rd_depth, self.next_cap, irqs=self.irqs)

    async def _monitor(self) -> None:
        """Count irq_o and dsm_abort_o pulses and response beats; time dsm_rsp_ready_o low."""
        irq_prev = 0
        low = 0
        while True:
            await FallingEdge(self.clk)
            irq = int(self.dut.irq_o.value)
            assert not (irq and irq_prev), "irq_o longer than one cycle"
            self.irqs += irq
            irq_prev = irq
            self.abort_pulses += int(self.dut.dsm_abort_o.value)
            ready = int(self.dut.dsm_rsp_ready_o.value)
            self.rsp_beats += ready & int(self.dut.dsm_rsp_valid_i.value)
            low = 0 if ready else low + 1
            self.rsp_ready_low_max = max(self.rsp_ready_low_max, low)

    # Register accesses, applied to the mailbox and the model alike.

    async def write(self, idx: int, value: int, be: int = 0xF) -> None:
        self.model.write(idx, value, be)
        await self.regs.write(idx, value, be)

    async def read(self, idx: int) -> int:
        value = await self.regs.read(idx)
        expected = self.model.read(idx)
        assert value == expected, f"reg {idx}: read {value:#010x}, model {expected:#010x}"
        return value

    def ctrl(self, bits: int = 0) -> int:
        """A Control value that keeps Interrupt Enable as the model has it."""
        return bits | (CTRL_INT_EN if self.model.int_en else 0)

    async def go(self) -> None:
        await self.write(CTRL, self.ctrl(CTRL_GO))

    async def send(self, words: Sequence[int]) -> None:
        for w in words:
            await self.write(WMBX, w)

    async def check(self) -> int:
        """Status and the interrupt count agree with the model."""
        status = await self.read(STATUS)
        assert self.irqs == self.model.irqs, f"{self.irqs} irq pulses, model {self.model.irqs}"
        assert self.rsp_ready_low_max <= RSP_READY_LOW_MAX, (
            f"dsm_rsp_ready_o low for {self.rsp_ready_low_max} cycles"
        )
        return status

    async def settle(self, quiet: int = 8, limit: int = 50_000) -> None:
        """Let the mailbox and the firmware finish, then tell the model what they did."""
        n = 0
        for _ in range(limit):
            if self.fw.idle() and (self.fw.stalled or not int(self.dut.dsm_req_valid_o.value)):
                n += 1
                if n >= quiet:
                    break
            else:
                n = 0
            await FallingEdge(self.clk)
        else:
            raise AssertionError(f"mailbox and firmware not quiet after {limit} cycles")
        self._reconcile()

    def _reconcile(self) -> None:
        self.sync_requests()
        for response in self.fw.responses:
            if not response.reconciled:
                self.model.dsm_respond(
                    response.words, aborted=response.aborted, overflowed=response.overflowed
                )
            response.reconciled = True

    async def step(self) -> int:
        await self.settle()
        return await self.check()

    async def abort(self) -> None:
        """Abort, and check it completes within the README's bound."""
        self.sync_requests()
        for response in self.fw.responses:
            if not response.reconciled and not self.fw.source.idle():
                response.aborted = True  # on the wire: the mailbox drops the rest of it
        pulses = self.abort_pulses
        await self.write(CTRL, self.ctrl(CTRL_ABORT))
        # The cycle after the Abort write: the DSM is told, and no request is on offer.
        assert int(self.dut.dsm_abort_o.value), "dsm_abort_o not high the cycle after Abort"
        assert not int(self.dut.dsm_req_valid_o.value), "request still valid after Abort"
        cycles = 0
        while True:
            cycles += 1
            status = await self.regs.read(STATUS)
            if not status & (ST_BUSY | ST_ERROR | ST_DOR):
                break
            assert cycles < ABORT_CYCLES, f"Status {status:#010x} {cycles} cycles after Abort"
        assert cycles <= ABORT_CYCLES
        assert self.abort_pulses == pulses + 1, "dsm_abort_o did not pulse once"
        assert await self.read(RMBX) == 0

    def sync(self, *, on_wire: bool = False) -> None:
        """Tell the model, without waiting to settle, that the DSM took the requests it
        holds and (``on_wire``) that a response object is now mid-stream."""
        self.sync_requests()
        self.model.rsp_on_wire = self.model.rsp_on_wire or on_wire

    def sync_requests(self) -> None:
        """Tell the model the DSM took the requests it holds."""
        for request in self.fw.requests[self._requests_seen :]:
            expected = self.model.dsm_take()
            assert expected is not None, "the DSM got a request the mailbox should have dropped"
            assert request == words_to_bytes(expected), (
                f"DSM request {request.hex()} != written {words_to_bytes(expected).hex()}"
            )
        self._requests_seen = len(self.fw.requests)

    async def read_object(self) -> list[int]:
        """Read one response object as the Linux driver does: read, then ack, DW by DW."""
        words: list[int] = []
        length = 2
        while len(words) < length:
            assert self.model.dor, "no object to read"
            words.append(await self.read(RMBX))
            if len(words) == 2:
                length = (words[1] & 0x3FFFF) or MAX_OBJ_DW
            await self.write(RMBX, 0)
            status = await self.read(STATUS)
            assert bool(status & ST_DOR) == self.model.dor
        return words

    async def rsp_beats_reach(self, n: int) -> None:
        """Wait until n DSM response DWs have been taken since the start."""
        while self.rsp_beats < n:
            await FallingEdge(self.clk)

    async def exchange(self, request: Sequence[int]) -> list[int]:
        """Send a request, Go, wait, and read back one response object."""
        await self.send(request)
        await self.go()
        status = await self.step()
        assert status & ST_DOR, f"no response (Status {status:#010x})"
        return await self.read_object()

    async def discovery_walk(self) -> list[tuple[int, int]]:
        features = []
        index = 0
        for _ in range(256):
            rsp = await self.exchange(discovery_request(index))
            assert rsp == discovery_response(index)
            features.append((rsp[2] & 0xFFFF, (rsp[2] >> 16) & 0xFF))
            index = rsp[2] >> 24
            if index == 0:
                break
        return features

    async def cma_exchange(self, payload_dw: int, obj_type: int = T_CMA) -> list[int]:
        """A CMA request through the DSM; check the answer the firmware gave comes back."""
        payload = [self.rng.getrandbits(32) for _ in range(payload_dw)]
        n = len(self.fw.responses)
        rsp = await self.exchange(data_object(PCISIG, obj_type, payload))
        assert len(self.fw.responses) == n + 1
        assert rsp == self.fw.responses[-1].words
        return rsp


async def new_bench(dut: SimHandleBase, name: str) -> Bench:
    bench = Bench(dut, seed_for(name))
    await bench.start()
    return bench


###########
# Tests   #
###########


@cocotb.test()
async def test_registers(dut: SimHandleBase) -> None:
    """Header, Capabilities and idle register values; RO registers ignore writes."""
    b = await new_bench(dut, "test_registers")
    header = (b.next_cap << 20) | 0x0002002E  # ID 002Eh, version 2
    assert await b.read(HEADER) == header
    assert await b.read(CAPS) == 0x00000001
    for idx in (CTRL, STATUS, WMBX, RMBX, 6, 7):
        assert await b.read(idx) == 0
    for idx in (HEADER, CAPS, 6, 7):
        await b.write(idx, 0xFFFFFFFF)
        await b.write(idx, 0x12345678, be=0x3)  # partial writes here do not set Error
    assert await b.read(HEADER) == header
    assert await b.read(CAPS) == 0x00000001
    assert await b.check() == 0
    # Control reads back Interrupt Enable only.
    await b.write(CTRL, 0x7FFFFFFE & ~CTRL_ABORT)
    assert await b.read(CTRL) == CTRL_INT_EN
    await b.write(CTRL, 0)
    assert await b.read(CTRL) == 0
    # Write Data Mailbox reads 0 even with data in it.
    await b.write(WMBX, 0xDEADBEEF)
    assert await b.read(WMBX) == 0
    await b.step()


@cocotb.test()
async def test_discovery(dut: SimHandleBase) -> None:
    """Indices 0..3 and 255 answer per the table; the walk from 0 ends at the last entry."""
    b = await new_bench(dut, "test_discovery")
    for index in (0, 1, 2, 3, 255):
        assert await b.exchange(discovery_request(index)) == discovery_response(index)
    assert await b.discovery_walk() == list(FEATURES)
    # Discovery Version 0 (older requesters) and a longer object: DW2 counts, the rest not.
    assert await b.exchange(discovery_request(1, version=0)) == discovery_response(1)
    longer = data_object(PCISIG, T_DISCOVERY, [0x0202, 0xAAAAAAAA, 0x55555555])
    assert await b.exchange(longer) == discovery_response(2)
    # Reserved DW0 bits do not change the type.
    assert await b.exchange([0xFF000001, 3, 0x0200]) == discovery_response(0)
    assert b.fw.requests == []
    assert await b.check() == 0


@cocotb.test()
async def test_length_mismatch(dut: SimHandleBase) -> None:
    """Objects whose DW count differs from Length are dropped silently; the mailbox works on."""
    b = await new_bench(dut, "test_length_mismatch")
    bad = [
        discovery_request(0)[:2],  # fewer DWs than Length
        [*discovery_request(0), 0],  # more DWs than Length
        data_object(PCISIG, T_CMA, [1, 2, 3], length=4),
        data_object(PCISIG, T_CMA, [1, 2, 3], length=6),
        data_object(PCISIG, T_SECURED_CMA, [1, 2], length=0),  # 0 means 2^18 DW
        data_object(PCISIG, T_CMA, [], length=1),  # Length 1 is illegal
        [0x00010001],  # a lone DW0
    ]
    for obj in bad:
        await b.send(obj)
        await b.go()
        assert await b.step() == 0, f"{obj} was not dropped silently"
        assert await b.exchange(discovery_request(1)) == discovery_response(1)
    await b.cma_exchange(4)
    assert len(b.fw.requests) == 1
    assert b.abort_pulses == 0


@cocotb.test()
async def test_unsupported(dut: SimHandleBase) -> None:
    """Unsupported types, short discovery and Go on an empty mailbox do nothing."""
    b = await new_bench(dut, "test_unsupported")
    for obj in (
        data_object(PCISIG, 0x03, [0, 0]),  # CMA with Connection ID: not offered
        data_object(PCISIG, 0x05, [0]),  # Async Message
        data_object(PCISIG, 0xFF, []),
        data_object(0x8086, T_CMA, [1, 2]),  # another vendor's type 01h
        data_object(0xFFFF, T_DISCOVERY, [0]),
        data_object(PCISIG, T_DISCOVERY, []),  # Discovery needs 3 DW
    ):
        await b.send(obj)
        await b.go()
        assert await b.step() == 0, f"{obj} was not dropped silently"
    await b.go()  # empty mailbox
    assert await b.step() == 0
    assert b.fw.requests == []
    assert await b.exchange(discovery_request(0)) == discovery_response(0)


@cocotb.test()
async def test_write_overflow(dut: SimHandleBase) -> None:
    """Overflow sets Error; Error blocks Go and writes; only Abort clears it."""
    b = await new_bench(dut, "test_write_overflow")
    obj = data_object(PCISIG, T_CMA, list(range(b.wr_depth - 2)))  # exactly fills the mailbox
    await b.send(obj)
    assert await b.check() == 0
    await b.write(WMBX, 0x11111111)
    assert await b.check() == ST_ERROR
    await b.go()
    assert await b.step() == ST_ERROR
    assert b.fw.requests == []
    await b.send(discovery_request(0))
    await b.go()
    assert await b.step() == ST_ERROR  # no response while Error
    # Error is not cleared by RW1C, by Control without Abort, or by reading.
    await b.write(STATUS, 0xFFFFFFFF)
    await b.write(CTRL, 0)
    assert await b.step() == ST_ERROR
    await b.abort()
    assert await b.check() == 0
    assert await b.exchange(discovery_request(0)) == discovery_response(0)
    # The full-size object is accepted when it is the only thing written.
    b.fw.answer = lambda request: data_object(PCISIG, T_CMA, [7])
    await b.send(obj)
    await b.go()
    await b.step()
    assert b.fw.requests == [words_to_bytes(obj)]
    assert await b.read_object() == data_object(PCISIG, T_CMA, [7])


@cocotb.test()
async def test_partial_writes(dut: SimHandleBase) -> None:
    """A write without all byte enables to a mailbox register only sets Error."""
    b = await new_bench(dut, "test_partial_writes")
    for idx in MBX_REGS:
        for be in (0x0, 0x1, 0x7, 0x8, 0xE):
            await b.abort()
            # A response queued (Interrupt Status set), a request written, Interrupt Enable
            # off: a stray Go, Abort, ack, append, enable or RW1C would show.
            await b.write(CTRL, CTRL_INT_EN)
            await b.send(discovery_request(2))
            await b.go()
            await b.step()
            await b.send(discovery_request(1))
            await b.write(CTRL, 0)
            value = {CTRL: CTRL_GO | CTRL_ABORT | CTRL_INT_EN, STATUS: ST_INT}.get(idx, 0x12345678)
            await b.write(idx, value, be=be)
            assert await b.step() == ST_ERROR | ST_DOR | ST_INT, f"reg {idx} be {be:#x}"
            assert await b.read(CTRL) == 0
            # Error blocks Go; the queued response still reads back whole, and alone.
            await b.go()
            assert await b.step() == ST_ERROR | ST_DOR | ST_INT
            assert await b.read_object() == discovery_response(2)
            assert await b.check() == ST_ERROR | ST_INT
    await b.abort()
    assert await b.exchange(discovery_request(2)) == discovery_response(2)


@cocotb.test()
async def test_go_while_busy(dut: SimHandleBase) -> None:
    """While Busy (DSM not ready), mailbox writes are dropped and Go is ignored."""
    b = await new_bench(dut, "test_go_while_busy")
    b.fw.stall(True)
    request = data_object(PCISIG, T_SECURED_CMA, [0xA5A5A5A5, 0x5A5A5A5A, 3])
    await b.send(request)
    await b.go()
    assert await b.step() == ST_BUSY
    assert int(dut.dsm_req_valid_o.value) and not int(dut.dsm_req_last_o.value)
    assert int(dut.dsm_req_data_o.value) == request[0]
    await b.send(discovery_request(0))  # dropped
    await b.go()  # ignored
    await b.go()
    assert await b.step() == ST_BUSY
    assert b.fw.requests == []
    b.fw.stall(False)
    assert await b.step() == ST_DOR
    assert b.fw.requests == [words_to_bytes(request)]
    assert await b.read_object() == b.fw.responses[-1].words
    # The dropped discovery request left nothing behind.
    await b.go()
    assert await b.step() == 0


@cocotb.test()
async def test_dsm_echo(dut: SimHandleBase) -> None:
    """Requests of random length reach the DSM intact; its answers come back intact."""
    b = await new_bench(dut, "test_dsm_echo")
    b.fw.backpressure(p_req=0.5, p_rsp=0.5)
    for _ in range(40):
        n = b.rng.randint(0, min(b.wr_depth - 2, 40))
        await b.cma_exchange(n, b.rng.choice((T_CMA, T_SECURED_CMA)))
    # A header-only object is a whole object too.
    await b.cma_exchange(0)
    assert await b.check() == 0


@cocotb.test()
async def test_back_to_back_responses(dut: SimHandleBase) -> None:
    """Several queued objects read back to back; DOR stays set until the last ack."""
    b = await new_bench(dut, "test_back_to_back_responses")
    b.fw.answer = lambda req: data_object(PCISIG, req[0] >> 16, [req[2] ^ 0xFFFFFFFF] * 2)
    await b.send(data_object(PCISIG, T_CMA, [1]))
    await b.go()
    await b.step()
    await b.send(data_object(PCISIG, T_SECURED_CMA, [2]))
    await b.go()
    assert await b.step() == ST_DOR
    assert len(b.model.rbuf) == 8
    assert await b.read_object() == data_object(PCISIG, T_CMA, [0xFFFFFFFE] * 2)
    assert await b.read_object() == data_object(PCISIG, T_SECURED_CMA, [0xFFFFFFFD] * 2)
    assert await b.check() == 0
    # Discovery then DSM, then discovery again, all queued before any read.
    await b.send(discovery_request(1))
    await b.go()
    await b.step()
    await b.send(data_object(PCISIG, T_CMA, [3]))
    await b.go()
    await b.step()
    await b.send(discovery_request(7))
    await b.go()
    assert await b.step() == ST_DOR
    assert await b.read_object() == discovery_response(1)
    assert await b.read_object() == data_object(PCISIG, T_CMA, [0xFFFFFFFC] * 2)
    assert await b.read_object() == discovery_response(7)
    assert await b.check() == 0
    # Acks past the end do nothing.
    await b.write(RMBX, 0)
    assert await b.check() == 0


@cocotb.test()
async def test_read_buffer_overflow(dut: SimHandleBase) -> None:
    """A response larger than the free read buffer is dropped whole and sets Error."""
    b = await new_bench(dut, "test_read_buffer_overflow")
    size = 3
    b.fw.answer = lambda req: data_object(PCISIG, T_CMA, list(range(size - 2)))
    # A discovery response (3 DW), then a DSM response that fills the rest exactly.
    await b.send(discovery_request(2))
    await b.go()
    await b.step()
    size = b.rd_depth - 3
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    assert await b.step() == ST_DOR
    assert len(b.model.rbuf) == b.rd_depth
    # Full: the next response is dropped whole and sets Error.
    size = 2
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    assert await b.step() == ST_DOR | ST_ERROR
    assert len(b.fw.requests) == 2
    # What was queued before reads back intact.
    assert await b.read_object() == discovery_response(2)
    assert await b.read_object() == data_object(PCISIG, T_CMA, list(range(b.rd_depth - 5)))
    assert await b.check() == ST_ERROR
    await b.abort()
    # One DW short of room: dropped, Error, the earlier object intact.
    await b.send(discovery_request(0))
    await b.go()
    await b.step()
    size = b.rd_depth - 2
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    assert await b.step() == ST_DOR | ST_ERROR
    assert await b.read_object() == discovery_response(0)
    await b.abort()
    # Two DW of room: a discovery response does not fit either.
    size = b.rd_depth - 2
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    assert await b.step() == ST_DOR
    await b.send(discovery_request(1))
    await b.go()
    assert await b.step() == ST_DOR | ST_ERROR
    assert await b.read_object() == data_object(PCISIG, T_CMA, list(range(b.rd_depth - 4)))
    assert await b.check() == ST_ERROR
    await b.abort()
    # Exactly three DW of room: a discovery response fits.
    size = b.rd_depth - 3
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    await b.step()
    await b.send(discovery_request(2))
    await b.go()
    assert await b.step() == ST_DOR
    assert len(b.model.rbuf) == b.rd_depth
    assert await b.read_object() == data_object(PCISIG, T_CMA, list(range(b.rd_depth - 5)))
    assert await b.read_object() == discovery_response(2)
    # Larger than the whole buffer, with back-pressure on the response.
    b.fw.backpressure(p_req=0.0, p_rsp=0.3)
    size = b.rd_depth + 5
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    assert await b.step() == ST_ERROR
    assert b.rsp_ready_low_max <= RSP_READY_LOW_MAX
    await b.abort()
    size = 6
    assert await b.cma_exchange(0) == data_object(PCISIG, T_CMA, [0, 1, 2, 3])


@cocotb.test()
async def test_room_freed_mid_response(dut: SimHandleBase) -> None:
    """A response that ran out of room stays dropped when the host frees room meanwhile."""
    b = await new_bench(dut, "test_room_freed_mid_response")
    size = b.rd_depth - 2
    b.fw.answer = lambda req: data_object(PCISIG, T_CMA, list(range(size - 2)))
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    assert await b.step() == ST_DOR
    # Two DW of room; an 8-DW response arrives one DW every 16 cycles.
    size = 8
    b.fw.source.set_pause_generator(itertools.cycle((True,) * 15 + (False,)))
    start = b.rsp_beats
    await b.send(data_object(PCISIG, T_CMA, []))
    await b.go()
    await b.rsp_beats_reach(start + 3)  # two DW stored, the third had no room
    b.sync(on_wire=True)
    for _ in range(8):
        await b.read(RMBX)
        await b.write(RMBX, 0)
    assert b.rsp_beats - start < 6, "room was freed too late to matter"
    b.fw.responses[-1].overflowed = True
    assert await b.step() == ST_DOR | ST_ERROR
    while b.model.dor:
        await b.read(RMBX)
        await b.write(RMBX, 0)
    assert await b.check() == ST_ERROR
    b.fw.steady()
    await b.abort()
    assert await b.cma_exchange(0) == data_object(PCISIG, T_CMA, list(range(6)))


@cocotb.test()
async def test_discovery_during_response(dut: SimHandleBase) -> None:
    """Discovery waits (Busy) for a DSM response mid-stream; both objects come out whole."""
    b = await new_bench(dut, "test_discovery_during_response")
    n = min(b.rd_depth - 5, 40)
    b.fw.answer = lambda req: data_object(PCISIG, T_SECURED_CMA, list(range(n)))
    b.fw.source.set_pause_generator(itertools.cycle((True, True, False)))
    await b.send(data_object(PCISIG, T_SECURED_CMA, [5]))
    await b.go()
    await b.rsp_beats_reach(b.rsp_beats + 2)
    b.sync(on_wire=True)
    await b.send(discovery_request(1))
    await b.go()
    assert await b.read(STATUS) == ST_BUSY
    assert await b.step() == ST_DOR
    assert await b.read_object() == data_object(PCISIG, T_SECURED_CMA, list(range(n)))
    assert await b.read_object() == discovery_response(1)
    assert await b.check() == 0
    assert b.rsp_ready_low_max <= RSP_READY_LOW_MAX


@cocotb.test()
async def test_abort_mid_write(dut: SimHandleBase) -> None:
    """Abort with half an object in the write mailbox empties it."""
    b = await new_bench(dut, "test_abort_mid_write")
    await b.send(data_object(PCISIG, T_CMA, [1, 2, 3, 4])[:3])
    await b.abort()
    # Had the three DWs stayed, this object would be too long and be dropped.
    assert await b.exchange(discovery_request(0)) == discovery_response(0)
    assert b.fw.requests == []


@cocotb.test()
async def test_abort_mid_request(dut: SimHandleBase) -> None:
    """Abort while the DSM takes a request: the stream stops and the DSM drops the rest."""
    b = await new_bench(dut, "test_abort_mid_request")
    n = min(b.wr_depth - 2, 60)
    b.fw.sink.set_pause_generator(itertools.cycle((True, True, False)))
    await b.send(data_object(PCISIG, T_CMA, list(range(n))))
    await b.go()
    await ClockCycles(dut.clk_i, 3 * n // 2)
    await FallingEdge(dut.clk_i)
    assert int(dut.dsm_req_valid_o.value), "the request should still be on its way"
    assert await b.read(STATUS) == ST_BUSY
    await b.abort()
    await b.step()
    assert b.fw.requests == [], "the DSM kept a half request"
    b.fw.steady()
    b.fw.backpressure(p_req=0.3, p_rsp=0.3)
    await b.cma_exchange(n)
    assert len(b.fw.requests) == 1


@cocotb.test()
async def test_abort_mid_response(dut: SimHandleBase) -> None:
    """Abort while a DSM response streams in: the rest of it is dropped."""
    b = await new_bench(dut, "test_abort_mid_response")
    n = min(b.rd_depth - 2, 60)
    b.fw.answer = lambda req: data_object(PCISIG, T_CMA, list(range(n)))
    b.fw.source.set_pause_generator(itertools.cycle((True, False)))
    await b.send(data_object(PCISIG, T_CMA, [1]))
    await b.go()
    await b.rsp_beats_reach(b.rsp_beats + n // 2)
    assert not b.fw.source.idle(), "the response should still be on its way"
    b.sync(on_wire=True)
    assert await b.read(STATUS) == 0
    await b.abort()
    assert await b.step() == 0, "a dropped response was queued"
    b.fw.steady()
    b.fw.answer = b.fw.random_answer
    await b.cma_exchange(3)
    assert await b.exchange(discovery_request(1)) == discovery_response(1)
    # A discovery request waits (Busy) for a DSM object mid-stream to end; Abort drops both.
    b.fw.answer = lambda req: data_object(PCISIG, T_CMA, list(range(n)))
    b.fw.source.set_pause_generator(itertools.cycle((True, False)))
    await b.send(data_object(PCISIG, T_CMA, [1]))
    await b.go()
    await b.rsp_beats_reach(b.rsp_beats + n // 2)
    b.sync(on_wire=True)
    await b.send(discovery_request(0))
    await b.go()
    assert await b.read(STATUS) == ST_BUSY
    await b.abort()
    # A discovery request after the Abort waits for the dropped object to end too.
    await b.send(discovery_request(1))
    await b.go()
    assert await b.read(STATUS) == ST_BUSY
    assert await b.step() == ST_DOR
    assert await b.read_object() == discovery_response(1)
    b.fw.steady()
    assert await b.exchange(discovery_request(2)) == discovery_response(2)


@cocotb.test()
async def test_abort_partly_read(dut: SimHandleBase) -> None:
    """Abort with a response partly read clears DOR and the rest of the read buffer."""
    b = await new_bench(dut, "test_abort_partly_read")
    await b.send(discovery_request(0))
    await b.go()
    await b.step()
    await b.send(data_object(PCISIG, T_CMA, [9, 9]))
    await b.go()
    assert await b.step() == ST_DOR
    for _ in range(4):  # the discovery object and DW0 of the DSM one
        await b.read(RMBX)
        await b.write(RMBX, 0)
    assert await b.check() == ST_DOR
    await b.abort()
    assert await b.step() == 0
    assert await b.exchange(discovery_request(0)) == discovery_response(0)


@cocotb.test()
async def test_interrupts(dut: SimHandleBase) -> None:
    """Interrupt Status follows DOR and Error rises while enabled; irq_o pulses on 0 -> 1."""
    b = await new_bench(dut, "test_interrupts")
    # Disabled: DOR rises, no interrupt.
    await b.send(discovery_request(0))
    await b.go()
    assert await b.step() == ST_DOR
    assert b.irqs == 0
    await b.read_object()
    # Enabled: DOR rises, one pulse.
    await b.write(CTRL, CTRL_INT_EN)
    await b.send(discovery_request(1))
    await b.go()
    assert await b.step() == ST_DOR | ST_INT
    assert b.irqs == 1
    # DOR rising again while Interrupt Status is still set: no new pulse.
    await b.read_object()
    await b.cma_exchange(2)
    assert await b.check() == ST_INT
    assert b.irqs == 1
    # RW1C: writing 0 keeps it, writing 1 clears it.
    await b.write(STATUS, 0)
    assert await b.check() == ST_INT
    await b.write(STATUS, ST_INT)
    assert await b.check() == 0
    # Error rising: a pulse; RW1C clears Interrupt Status but not Error.
    await b.write(RMBX, 0, be=0x1)
    assert await b.step() == ST_ERROR | ST_INT
    assert b.irqs == 2
    await b.write(STATUS, ST_INT | ST_ERROR | ST_DOR | ST_BUSY)
    assert await b.check() == ST_ERROR
    await b.write(WMBX, 0, be=0x0)  # Error already set: no rise, no pulse
    assert await b.step() == ST_ERROR
    assert b.irqs == 2
    await b.abort()
    assert b.irqs == 2
    # Overflow and a dropped response both raise Error, so interrupt.
    await b.send([0] * (b.wr_depth + 1))
    assert await b.step() == ST_ERROR | ST_INT
    assert b.irqs == 3
    await b.write(STATUS, ST_INT)
    await b.abort()
    # DOR rising with Interrupt Enable cleared in the same Go write: no interrupt.
    await b.send(discovery_request(2))
    await b.write(CTRL, CTRL_GO)
    assert await b.step() == ST_DOR
    assert b.irqs == 3
    # Enabling with DOR already set does not interrupt either.
    await b.write(CTRL, CTRL_INT_EN)
    assert await b.step() == ST_DOR
    assert b.irqs == 3


@cocotb.test()
async def test_reset(dut: SimHandleBase) -> None:
    """Reset clears every register and drops work in flight."""
    b = await new_bench(dut, "test_reset")
    await b.write(CTRL, CTRL_INT_EN)
    await b.send(discovery_request(0))
    await b.go()
    await b.step()
    b.fw.stall(True)
    await b.send(data_object(PCISIG, T_CMA, [1, 2, 3]))
    await b.go()
    await b.write(WMBX, 0, be=0x1)
    assert await b.step() == ST_BUSY | ST_INT | ST_ERROR | ST_DOR
    await b.reset()
    b.fw.stall(False)
    assert not int(dut.dsm_req_valid_o.value)
    for idx in range(8):
        await b.read(idx)
    assert await b.step() == 0
    assert b.fw.requests == []
    assert await b.exchange(discovery_request(1)) == discovery_response(1)


async def random_step(b: Bench) -> None:
    """One random host or firmware action."""
    rng = b.rng
    action = rng.choices(
        [
            "dw",
            "discovery",
            "cma",
            "bad_length",
            "go",
            "abort",
            "read",
            "ack",
            "object",
            "partial",
            "ctrl",
            "clear",
            "stall",
            "reg",
            "flood",
            "unsupported",
        ],
        weights=[8, 6, 6, 3, 6, 4, 5, 5, 3, 1.5, 2, 2, 2, 3, 0.3, 1],
    )[0]
    if action == "dw":
        await b.write(WMBX, rng.choice((rng.getrandbits(32), 0x00010001, 3, 0x00020001)))
    elif action == "discovery":
        await b.send(discovery_request(rng.choice((0, 1, 2, 3, 4, 255))))
        if rng.random() < 0.8:
            await b.go()
    elif action == "cma":
        payload = [rng.getrandbits(32) for _ in range(rng.randint(0, min(b.wr_depth - 2, 20)))]
        await b.send(data_object(PCISIG, rng.choice((T_CMA, T_SECURED_CMA)), payload))
        if rng.random() < 0.8:
            await b.go()
    elif action == "bad_length":
        payload = [rng.getrandbits(32) for _ in range(rng.randint(1, 6))]
        await b.send(data_object(PCISIG, T_CMA, payload, length=len(payload) + rng.choice((1, 3))))
        await b.go()
    elif action == "unsupported":
        await b.send(data_object(rng.choice((PCISIG, 0x1AF4)), rng.choice((3, 4, 5, 9)), [1]))
        await b.go()
    elif action == "go":
        await b.go()
    elif action == "abort":
        await b.abort()
    elif action == "read":
        await b.read(RMBX)
    elif action == "ack":
        await b.write(RMBX, rng.getrandbits(32))
    elif action == "object":
        if b.model.dor and len(b.model.rbuf) >= 2:
            length = (b.model.rbuf[1] & 0x3FFFF) or MAX_OBJ_DW
            if length <= len(b.model.rbuf):
                await b.read_object()
    elif action == "partial":
        await b.write(rng.choice(MBX_REGS), rng.getrandbits(32), be=rng.randrange(15))
    elif action == "ctrl":
        await b.write(CTRL, rng.choice((0, CTRL_INT_EN)))
    elif action == "clear":
        await b.write(STATUS, rng.choice((ST_INT, 0, 0xFFFFFFFF)))
    elif action == "stall":
        b.fw.stall(not b.fw.stalled)
    elif action == "reg":
        await b.read(rng.randrange(8))
    elif action == "flood":
        await b.send([rng.getrandbits(32) for _ in range(b.wr_depth + 1)])


@cocotb.test()
async def test_random(dut: SimHandleBase) -> None:
    """Random host and firmware actions; the model predicts Status after every step."""
    b = await new_bench(dut, "test_random")
    b.fw.backpressure(p_req=0.3, p_rsp=0.3)
    steps = int(os.environ.get("DOE_MBX_RANDOM_STEPS", "2000"))
    for i in range(steps):
        await random_step(b)
        await b.step()
        if i % 100 == 99 or i == steps - 1:
            # Whatever happened, Abort and one discovery exchange bring the mailbox back.
            await b.abort()
            b.fw.stall(False)
            assert await b.exchange(discovery_request(0)) == discovery_response(0)
            await b.cma_exchange(b.rng.randint(0, min(b.wr_depth - 2, 8)))
    LOG.info(
        "random: %d steps, %d requests, %d responses, %d irqs, %d aborts",
        steps,
        len(b.fw.requests),
        len(b.fw.responses),
        b.irqs,
        b.abort_pulses,
    )


########################
# pytest entry point   #
########################

PARAMETER_SETS = [
    pytest.param({}, id="default"),
    pytest.param({"WR_DEPTH_DW": 16, "RD_DEPTH_DW": 16}, id="wr16-rd16"),
    pytest.param({"WR_DEPTH_DW": 8, "RD_DEPTH_DW": 32, "NEXT_CAP_OFFSET": 0x498}, id="wr8-rd32"),
]


@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_doe_mbx(parameters: dict[str, int]) -> None:
    """Build doe_mbx for one parameter set (cached) and run the cocotb tests above."""
    from hil import _regs as R
    from hil.sim import build_hdl, rtl_sources, run_cocotb_tests

    build_dir = build_hdl("doe_mbx", rtl_sources("doe_mbx"), parameters)
    run_cocotb_tests(
        "doe_mbx",
        build_dir,
        Path(__file__).stem,
        Path(__file__).parent,
        extra_env={
            "DOE_WR_DEPTH_DW": str(parameters.get("WR_DEPTH_DW", 1024)),
            "DOE_RD_DEPTH_DW": str(parameters.get("RD_DEPTH_DW", 1024)),
            # The RTL's default next pointer is the register map's (DOE, then IDE).
            "DOE_NEXT_CAP_OFFSET": str(parameters.get("NEXT_CAP_OFFSET", R.DOE_CAP_NEXT)),
        },
    )
