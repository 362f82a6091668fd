"""Block tests of the UART bridge (``hdl/uart_bridge``) against ``hil.codec.uart``.

The bench plays the lab controller on the UART pins with a bit-level 8N1 model, and encodes
and decodes every frame with :mod:`hil.codec.uart` (the independent model of the wire format).
On the endpoint side it drives the DSM request stream and the abort pulse, takes the DSM
response stream, answers the firmware register port from a dictionary, and drives the telemetry
inputs (whose frames are decoded with :class:`hil.codec.uart.Telemetry`).

Run with ``python -m pytest cocotb_tests/uart_bridge`` (one cached Verilator build per
parameter set).
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

from hil.codec.uart import Channel, Deframer, Frame, Telemetry

CLOCK_NS = 10
RD_LATENCY = 2  # cycles from fw_rd_o to fw_rvalid_i in the register model


def words_to_bytes(words: Sequence[int]) -> bytes:
    return b"".join(struct.pack("<I", w) for w in words)


def bytes_to_words(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}I", data))


class Bench:
    """The controller on the UART, the endpoint on the DSM and register ports."""

    def __init__(self, dut: SimHandleBase, name: str) -> None:
        self.dut = dut
        self.clk = dut.clk_i
        self.cpb = int(os.environ["UART_CLKS_PER_BIT"])
        self.max_obj_dw = int(os.environ["UART_MAX_OBJ_DW"])
        self.num_streams = int(os.environ["UART_NUM_STREAMS"])
        self.cycles_per_ms = int(os.environ["UART_CLK_HZ"]) // 1000
        self.tel_gap = int(os.environ["UART_TEL_GAP_CYCLES"])
        self.reset_ns = 0.0
        self.rng = random.Random(zlib.crc32(name.encode()))
        self.deframer = Deframer()
        self.frames: Queue[Frame] = Queue()
        self.responses: Queue[list[int]] = Queue()
        self.regs: dict[int, int] = {}
        self.reg_writes: list[tuple[int, int]] = []
        self.rsp_ready_p = 1.0
        self.seq = 0  # next seq the bridge should send

    async def start(self) -> None:
        d = self.dut
        d.uart_rx_i.value = 1
        d.dsm_req_data_i.value = 0
        d.dsm_req_valid_i.value = 0
        d.dsm_req_last_i.value = 0
        d.dsm_rsp_ready_i.value = 0
        d.dsm_abort_i.value = 0
        d.fw_rdata_i.value = 0
        d.fw_rvalid_i.value = 0
        self.set_telemetry(Telemetry(0, (0,) * self.num_streams, 0, 0, 0))
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        d.rst_ni.value = 0
        await ClockCycles(self.clk, 3)
        d.rst_ni.value = 1
        self.reset_ns = get_sim_time("ns")
        cocotb.start_soon(self._uart_sink())
        cocotb.start_soon(self._rsp_sink())
        cocotb.start_soon(self._reg_port())
        await ClockCycles(self.clk, 4)

    # UART, bit level

    async def send_bytes(self, data: bytes) -> None:
        for byte in data:
            bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
            for bit in bits:
                self.dut.uart_rx_i.value = bit
                await ClockCycles(self.clk, self.cpb)

    async def send_frame(self, channel: int, payload: bytes = b"", seq: int = 0) -> None:
        await self.send_bytes(Frame(channel, seq, payload).encode())

    async def _uart_sink(self) -> None:
        while True:
            await FallingEdge(self.clk)
            if int(self.dut.uart_tx_o.value):
                continue
            await ClockCycles(self.clk, self.cpb // 2, rising=False)
            assert not int(self.dut.uart_tx_o.value), "start bit glitch on uart_tx_o"
            byte = 0
            for i in range(8):
                await ClockCycles(self.clk, self.cpb, rising=False)
                byte |= int(self.dut.uart_tx_o.value) << i
            await ClockCycles(self.clk, self.cpb, rising=False)
            assert int(self.dut.uart_tx_o.value), "no stop bit on uart_tx_o"
            for frame in self.deframer.feed(bytes([byte])):
                self.frames.put_nowait(frame)

    async def recv_frame(self, timeout_us: float = 2000) -> Frame:
        frame = await with_timeout(self.frames.get(), timeout_us, "us")
        assert frame.seq == self.seq, f"seq {frame.seq}, expected {self.seq}"
        self.seq = (self.seq + 1) & 0xFF
        return frame

    # Endpoint side

    async def send_object(self, words: Sequence[int], *, last: bool = True) -> None:
        """Offer words on the request stream (with gaps); last on the final one."""
        d = self.dut
        for i, w in enumerate(words):
            while self.rng.random() < 0.3:
                d.dsm_req_valid_i.value = 0
                await RisingEdge(self.clk)
            d.dsm_req_data_i.value = w
            d.dsm_req_valid_i.value = 1
            d.dsm_req_last_i.value = int(last and i == len(words) - 1)
            await RisingEdge(self.clk)
            while not int(d.dsm_req_ready_o.value):
                await RisingEdge(self.clk)
        d.dsm_req_valid_i.value = 0
        d.dsm_req_last_i.value = 0

    async def abort(self) -> None:
        self.dut.dsm_abort_i.value = 1
        await RisingEdge(self.clk)
        self.dut.dsm_abort_i.value = 0

    async def _rsp_sink(self) -> None:
        d = self.dut
        words: list[int] = []
        while True:
            d.dsm_rsp_ready_i.value = int(self.rng.random() < self.rsp_ready_p)
            await RisingEdge(self.clk)
            if int(d.dsm_rsp_valid_o.value) and int(d.dsm_rsp_ready_i.value):
                words.append(int(d.dsm_rsp_data_o.value))
                if int(d.dsm_rsp_last_o.value):
                    self.responses.put_nowait(words)
                    words = []

    async def _reg_port(self) -> None:
        d = self.dut
        pending: list[tuple[int, int]] = []  # (cycles left, data)
        while True:
            await RisingEdge(self.clk)
            d.fw_rvalid_i.value = 0
            d.fw_rdata_i.value = 0
            pending = [(n - 1, v) for n, v in pending]
            if pending and pending[0][0] == 0:
                d.fw_rvalid_i.value = 1
                d.fw_rdata_i.value = pending.pop(0)[1]
            wr, rd = int(d.fw_wr_o.value), int(d.fw_rd_o.value)
            assert not (wr and rd), "fw_wr_o and fw_rd_o together"
            addr = int(d.fw_addr_o.value)
            if wr:
                value = int(d.fw_wdata_o.value)
                self.regs[addr] = value
                self.reg_writes.append((addr, value))
            if rd:
                pending.append((RD_LATENCY, self.regs.get(addr, 0xDEAD0000 | addr)))

    def set_telemetry(self, t: Telemetry) -> None:
        """Drive the telemetry inputs with ``t``'s values (its uptime is the bridge's own)."""
        d = self.dut
        d.tel_tdi_state_i.value = t.tdi_state
        d.tel_stream_state_i.value = int.from_bytes(bytes(t.streams), "little")
        d.tel_doe_errors_i.value = t.doe_errors
        d.tel_ide_check_failures_i.value = t.ide_check_failures

    def uptime_bounds(self, since_ns: float) -> tuple[int, int]:
        """The uptime a frame may carry if it was taken between ``since_ns`` and now."""
        ms_ns = self.cycles_per_ms * CLOCK_NS
        return (
            int((since_ns - self.reset_ns) // ms_ns) - 1,
            int((get_sim_time("ns") - self.reset_ns) // ms_ns),
        )

    def random_telemetry(self) -> Telemetry:
        r = self.rng
        return Telemetry(
            tdi_state=r.randrange(4),
            streams=tuple(r.choice((0, 2, r.randrange(256))) for _ in range(self.num_streams)),
            doe_errors=r.choice((0, 1, r.getrandbits(32), 0xFFFFFFFF)),
            ide_check_failures=r.choice((0, r.getrandbits(32))),
            uptime_ms=0,
        )

    def frame_cycles(self) -> int:
        """Cycles a TELEMETRY frame takes on the line, at most (COBS, CRC and delimiter)."""
        return 10 * self.cpb * (14 + self.num_streams + 12)

    async def settle_telemetry(self) -> list[Telemetry]:
        """Wait out the gap and two telemetry frames (one on the line, one due); the telemetry
        frames that came."""
        await self.quiet(self.tel_gap + 2 * self.frame_cycles())
        got = []
        while not self.frames.empty():
            got.append(await self.recv_telemetry())
        return got

    async def recv_telemetry(self, timeout_us: float = 2000) -> Telemetry:
        frame = await self.recv_frame(timeout_us)
        assert frame.channel == Channel.TELEMETRY, f"channel {frame.channel:#x}"
        return Telemetry.decode(frame.payload)

    def fit(self, n: int) -> int:
        """n DW, or as many as the buffers take."""
        return min(n, self.max_obj_dw)

    def drops(self) -> int:
        return int(self.dut.drop_count_o.value)

    async def quiet(self, cycles: int = 40) -> None:
        await ClockCycles(self.clk, cycles)


async def new_bench(dut: SimHandleBase, name: str) -> Bench:
    b = Bench(dut, name)
    await b.start()
    return b


def random_words(rng: random.Random, n: int) -> list[int]:
    """Words rich in zero bytes and runs without zeros, to exercise COBS blocks."""
    kind = rng.choice(("random", "zeros", "dense"))
    if kind == "zeros":
        return [rng.choice((0, 0x100, rng.getrandbits(32))) for _ in range(n)]
    if kind == "dense":
        return [0x01010101 | rng.getrandbits(32) for _ in range(n)]
    return [rng.getrandbits(32) for _ in range(n)]


@cocotb.test()
async def test_dsm_request(dut: SimHandleBase) -> None:
    """Each request object leaves as one DSM_REQUEST frame, seq counting up."""
    b = await new_bench(dut, "test_dsm_request")
    sizes = [1, b.fit(2), b.fit(3), b.max_obj_dw, b.fit(64), b.fit(70)]
    sizes += [b.rng.randint(1, b.max_obj_dw) for _ in range(4)]
    for n in sizes:
        words = random_words(b.rng, n)
        await b.send_object(words)
        frame = await b.recv_frame()
        assert frame.channel == Channel.DSM_REQUEST
        assert frame.payload == words_to_bytes(words), f"request of {n} DW"
    # Two objects back to back: the second waits for the buffer.
    first, second = random_words(b.rng, b.fit(5)), random_words(b.rng, b.fit(7))
    await b.send_object(first)
    await b.send_object(second)
    assert (await b.recv_frame()).payload == words_to_bytes(first)
    assert (await b.recv_frame()).payload == words_to_bytes(second)
    assert b.drops() == 0


@cocotb.test()
async def test_dsm_response(dut: SimHandleBase) -> None:
    """A DSM_RESPONSE payload comes out on dsm_rsp_* byte-exact, last on its final DW."""
    b = await new_bench(dut, "test_dsm_response")
    b.rsp_ready_p = 0.6
    sizes = [1, b.fit(2), b.max_obj_dw, b.fit(64)]
    sizes += [b.rng.randint(1, b.max_obj_dw) for _ in range(4)]
    for seq, n in enumerate(sizes):
        words = random_words(b.rng, n)
        await b.send_frame(Channel.DSM_RESPONSE, words_to_bytes(words), seq=seq)
        got = await with_timeout(b.responses.get(), 100, "us")
        assert got == words, f"response of {n} DW"
    assert b.responses.empty()
    assert b.drops() == 0


@cocotb.test()
async def test_registers(dut: SimHandleBase) -> None:
    """REG_WRITE reaches the register port; REG_READ comes back as REG_DATA."""
    b = await new_bench(dut, "test_registers")
    values = {a: b.rng.getrandbits(32) for a in (0x000, 0x123, 0xFFF, 0x800)}
    for addr, value in values.items():
        await b.send_frame(Channel.REG_WRITE, struct.pack("<II", addr, value))
    await b.quiet()
    assert b.reg_writes == list(values.items())
    for addr in [*values, 0x456]:
        await b.send_frame(Channel.REG_READ, struct.pack("<I", addr))
        frame = await b.recv_frame()
        assert frame.channel == Channel.REG_DATA
        expected = values.get(addr, 0xDEAD0000 | addr)
        assert frame.payload == struct.pack("<II", addr, expected)
    # Out of the 12-bit DW address range, or of the wrong length: dropped, no strobe.
    await b.send_frame(Channel.REG_WRITE, struct.pack("<II", 0x1000, 1))
    await b.send_frame(Channel.REG_WRITE, struct.pack("<I", 0x10))
    await b.send_frame(Channel.REG_READ, struct.pack("<II", 0x10, 0))
    await b.quiet()
    assert b.drops() == 3
    assert len(b.reg_writes) == len(values)
    assert b.frames.empty()


@cocotb.test()
async def test_abort(dut: SimHandleBase) -> None:
    """An abort pulse yields DSM_ABORT; a request cut short by it is not sent."""
    b = await new_bench(dut, "test_abort")
    await b.abort()
    frame = await b.recv_frame()
    assert (frame.channel, frame.payload) == (Channel.DSM_ABORT, b"")
    # Half an object, then the abort: only the abort and the next whole object go out.
    await b.send_object(random_words(b.rng, b.fit(4)), last=False)
    await b.abort()
    words = random_words(b.rng, b.fit(3))
    await b.send_object(words)
    frame = await b.recv_frame()
    assert (frame.channel, frame.payload) == (Channel.DSM_ABORT, b"")
    frame = await b.recv_frame()
    assert (frame.channel, frame.payload) == (Channel.DSM_REQUEST, words_to_bytes(words))
    # A request on the line is finished before the abort notice.
    await b.send_object(words)
    await b.quiet(b.cpb * 20)
    await b.abort()
    assert (await b.recv_frame()).channel == Channel.DSM_REQUEST
    assert (await b.recv_frame()).channel == Channel.DSM_ABORT
    await b.quiet(b.cpb * 40)
    assert b.frames.empty()


@cocotb.test()
async def test_abort_ack(dut: SimHandleBase) -> None:
    """Responses after an abort answer aborted requests: dropped until every notice is acked."""
    b = await new_bench(dut, "test_abort_ack")
    words = random_words(b.rng, b.fit(4))

    async def response_delivered() -> bool:
        await b.send_frame(Channel.DSM_RESPONSE, words_to_bytes(words))
        await b.quiet(b.cpb * 40 + 4 * len(words))
        if b.responses.empty():
            return False
        assert await b.responses.get() == words
        return True

    assert await response_delivered()
    await b.abort()
    assert (await b.recv_frame()).channel == Channel.DSM_ABORT
    assert not await response_delivered()  # sent before the controller read the notice
    assert b.drops() == 1
    # Two notices: the first ack leaves the second one due.
    await b.abort()
    assert (await b.recv_frame()).channel == Channel.DSM_ABORT
    await b.send_frame(Channel.DSM_ABORT_ACK)
    assert not await response_delivered()
    await b.send_frame(Channel.DSM_ABORT_ACK)
    assert await response_delivered()
    # An ack with nothing to acknowledge, or with a payload, is dropped.
    await b.send_frame(Channel.DSM_ABORT_ACK)
    await b.abort()
    assert (await b.recv_frame()).channel == Channel.DSM_ABORT
    await b.send_frame(Channel.DSM_ABORT_ACK, b"\x00")
    assert not await response_delivered()
    assert b.drops() == 5


@cocotb.test()
async def test_drops(dut: SimHandleBase) -> None:
    """Garbage and damaged frames are counted and dropped; the next good frame is handled."""
    b = await new_bench(dut, "test_drops")
    words = random_words(b.rng, b.fit(6))
    good = Frame(Channel.DSM_RESPONSE, 7, words_to_bytes(words)).encode()
    reg_write = Frame(Channel.REG_WRITE, 1, struct.pack("<II", 0x42, 0x1234)).encode()

    async def check_good() -> None:
        await b.send_bytes(good)
        assert await with_timeout(b.responses.get(), 100, "us") == words

    # Line garbage up to a delimiter is one dropped frame; the frame after it gets through.
    await b.send_bytes(bytes(b.rng.randrange(1, 256) for _ in range(40)) + b"\x00")
    await check_good()
    assert b.drops() == 1
    # Empty frames (0x00 runs) are not frames and not counted.
    await b.send_bytes(b"\x00\x00\x00")
    await check_good()
    assert b.drops() == 1
    # One flipped bit anywhere in the frame (keeping it free of 0x00).
    for _ in range(6):
        damaged = bytearray(good)
        while True:
            i, bit = b.rng.randrange(len(good) - 1), 1 << b.rng.randrange(8)
            if damaged[i] ^ bit:
                break
        damaged[i] ^= bit
        await b.send_bytes(bytes(damaged))
        await check_good()
    assert b.drops() == 7
    # A frame cut short, and a wrong length field (with a correct CRC).
    await b.send_bytes(good[: len(good) // 2] + b"\x00")
    body = struct.pack("<BBH", Channel.DSM_RESPONSE, 0, len(words) * 4 + 4) + words_to_bytes(words)
    from cobs import cobs  # the codec's own dependency, to build a frame it refuses to

    await b.send_bytes(cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00")
    await check_good()
    assert b.drops() == 9
    # A response that is not whole DWs, one too long, and a channel the device does not take.
    await b.send_frame(Channel.DSM_RESPONSE, b"\x01\x02\x03")
    await b.send_frame(Channel.DSM_RESPONSE, bytes(4 * (b.max_obj_dw + 1)))
    await b.send_frame(Channel.TELEMETRY, b"\x00\x00" + bytes(12))
    await b.send_bytes(reg_write)
    await check_good()
    await b.quiet()
    assert b.reg_writes == [(0x42, 0x1234)]
    assert b.drops() == 12
    # A framing error (stop bit low) spoils its frame only.
    damaged = bytearray(good)
    await b.send_bytes(bytes(damaged[:5]))
    b.dut.uart_rx_i.value = 0
    await ClockCycles(b.clk, b.cpb * 10)
    b.dut.uart_rx_i.value = 1
    await ClockCycles(b.clk, b.cpb * 2)
    await b.send_bytes(bytes(damaged[5:]))
    await check_good()
    assert b.drops() == 13
    assert b.responses.empty()
    assert b.frames.empty()


@cocotb.test()
async def test_request_too_long(dut: SimHandleBase) -> None:
    """A request object longer than MAX_OBJ_DW is taken, counted and not sent."""
    b = await new_bench(dut, "test_request_too_long")
    await b.send_object(random_words(b.rng, b.max_obj_dw + 3))
    words = random_words(b.rng, b.fit(2))
    await b.send_object(words)
    assert (await b.recv_frame()).payload == words_to_bytes(words)
    assert b.drops() == 1


@cocotb.test()
async def test_both_directions(dut: SimHandleBase) -> None:
    """Requests, responses, register reads and aborts interleaved on a busy line."""
    b = await new_bench(dut, "test_both_directions")
    b.rsp_ready_p = 0.8
    expected: list[tuple[int, bytes]] = []
    rsp_expected: list[list[int]] = []
    for i in range(12):
        action = b.rng.choice(("req", "rsp", "read", "abort", "tel"))
        if action == "req":
            words = random_words(b.rng, b.rng.randint(1, b.fit(16)))
            cocotb.start_soon(b.send_object(words))
            expected.append((Channel.DSM_REQUEST, words_to_bytes(words)))
            got = await b.recv_frame()
            assert (got.channel, got.payload) == expected.pop(0)
        elif action == "rsp":
            words = random_words(b.rng, b.rng.randint(1, b.fit(16)))
            rsp_expected.append(words)
            await b.send_frame(Channel.DSM_RESPONSE, words_to_bytes(words), seq=i)
        elif action == "tel":
            want = b.random_telemetry()
            b.set_telemetry(want)
            assert all(same_values(t, want) for t in await b.settle_telemetry())
            await b.send_frame(Channel.TELEMETRY_REQ, seq=i)
            assert same_values(await b.recv_telemetry(), want)
        elif action == "read":
            addr = b.rng.randrange(0x1000)
            await b.send_frame(Channel.REG_READ, struct.pack("<I", addr), seq=i)
            got = await b.recv_frame()
            assert got.channel == Channel.REG_DATA
            assert got.payload == struct.pack("<II", addr, b.regs.get(addr, 0xDEAD0000 | addr))
        else:
            await b.abort()
            got = await b.recv_frame()
            assert got.channel == Channel.DSM_ABORT
            await b.send_frame(Channel.DSM_ABORT_ACK, seq=i)  # responses count again
    for words in rsp_expected:
        assert await with_timeout(b.responses.get(), 100, "us") == words
    assert b.drops() == 0


def same_values(got: Telemetry, want: Telemetry) -> bool:
    return (got.tdi_state, got.streams, got.doe_errors, got.ide_check_failures) == (
        want.tdi_state,
        want.streams,
        want.doe_errors,
        want.ide_check_failures,
    )


@cocotb.test()
async def test_telemetry_request(dut: SimHandleBase) -> None:
    """TELEMETRY_REQ is answered with the current values, decoded by hil.codec.uart."""
    b = await new_bench(dut, "test_telemetry_request")
    await b.quiet(b.cycles_per_ms * 3)
    for i in range(4):
        want = b.random_telemetry()
        b.set_telemetry(want)
        # The change is sent by itself (unless the draw equals the last one).
        assert all(same_values(t, want) for t in await b.settle_telemetry())
        asked = get_sim_time("ns")
        await b.send_frame(Channel.TELEMETRY_REQ, seq=i)
        got = await b.recv_telemetry()
        assert same_values(got, want), (got, want)
        assert len(got.streams) == b.num_streams
        low, high = b.uptime_bounds(asked)
        assert low <= got.uptime_ms <= high, (got.uptime_ms, low, high)
    # A request with a payload is not a request.
    await b.send_frame(Channel.TELEMETRY_REQ, b"\x00")
    assert await b.settle_telemetry() == []
    assert b.drops() == 1


@cocotb.test()
async def test_telemetry_on_change(dut: SimHandleBase) -> None:
    """A change is sent unasked, at most one frame per TEL_GAP_CYCLES, the last with the
    final values; no change, no frame."""
    b = await new_bench(dut, "test_telemetry_on_change")
    assert await b.settle_telemetry() == [], "telemetry without a change"
    for _ in range(3):
        want = b.random_telemetry()
        if same_values(want, Telemetry(0, (0,) * b.num_streams, 0, 0, 0)):
            continue
        b.set_telemetry(want)
        got = await b.recv_telemetry()
        assert same_values(got, want), (got, want)
        await b.quiet(b.tel_gap)
        b.set_telemetry(Telemetry(0, (0,) * b.num_streams, 0, 0, 0))
        assert same_values(await b.recv_telemetry(), Telemetry(0, (0,) * b.num_streams, 0, 0, 0))
        await b.quiet(b.tel_gap)
    # A counter that moves every cycle for a while.
    window = 4 * b.tel_gap + 2 * b.frame_cycles()
    start = b.random_telemetry()
    for n in range(window):
        b.set_telemetry(Telemetry(start.tdi_state, start.streams, n + 1, 7, 0))
        await RisingEdge(b.clk)
    final = Telemetry(start.tdi_state, start.streams, window, 7, 0)
    got = await b.settle_telemetry()
    limit = window // b.tel_gap + 2
    assert 1 <= len(got) <= limit, f"{len(got)} frames for {window} cycles of changes"
    assert same_values(got[-1], final), got[-1]
    assert [t.doe_errors for t in got] == sorted(t.doe_errors for t in got)
    assert await b.settle_telemetry() == []
    assert b.drops() == 0


@cocotb.test()
async def test_telemetry_request_not_held_by_the_gap(dut: SimHandleBase) -> None:
    """A request is answered at once, even right after a change-triggered frame."""
    b = await new_bench(dut, "test_telemetry_request_not_held_by_the_gap")
    first = Telemetry(1, (2,) * b.num_streams, 3, 4, 0)
    b.set_telemetry(first)
    assert same_values(await b.recv_telemetry(), first)
    sent = get_sim_time("ns")
    second = Telemetry(2, (0,) * b.num_streams, 3, 4, 0)
    b.set_telemetry(second)
    await b.send_frame(Channel.TELEMETRY_REQ)
    got = await b.recv_telemetry()
    answer_cycles = (get_sim_time("ns") - sent) / CLOCK_NS
    assert same_values(got, second)
    later = await b.settle_telemetry()
    if b.tel_gap > 2 * (answer_cycles + b.frame_cycles()):
        # The answer came long before the gap ended, and it sent the change: nothing follows.
        assert answer_cycles < b.tel_gap
        assert later == [], "the change was sent again after the answer"
    else:
        # A gap this short let the change go out by itself too, with the same values.
        assert all(same_values(t, second) for t in later) and len(later) <= 1


#######################
# pytest entry point  #
#######################

PARAMETER_SETS = [
    pytest.param(
        {
            "CLKS_PER_BIT": 4,
            "MAX_OBJ_DW": 80,
            "NUM_STREAMS": 2,
            "CLK_HZ": 100_000,  # 100 cycles per millisecond of uptime
            "TEL_GAP_CYCLES": 3000,
        },
        id="cpb4-obj80",
    ),
    pytest.param(
        {
            "CLKS_PER_BIT": 5,
            "MAX_OBJ_DW": 2,
            "NUM_STREAMS": 8,
            "CLK_HZ": 1000,  # uptime counts cycles
            "TEL_GAP_CYCLES": 1,
        },
        id="cpb5-obj2-str8",
    ),
]


@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_uart_bridge(parameters: dict[str, int]) -> None:
    """Build uart_bridge for one parameter set (cached) and run the cocotb tests above."""
    from hil.sim import build_hdl, rtl_sources, run_cocotb_tests

    build_dir = build_hdl("uart_bridge", rtl_sources("uart_bridge"), parameters)
    run_cocotb_tests(
        "uart_bridge",
        build_dir,
        Path(__file__).stem,
        Path(__file__).parent,
        extra_env={
            "UART_CLKS_PER_BIT": str(parameters["CLKS_PER_BIT"]),
            "UART_MAX_OBJ_DW": str(parameters["MAX_OBJ_DW"]),
            "UART_NUM_STREAMS": str(parameters["NUM_STREAMS"]),
            "UART_CLK_HZ": str(parameters["CLK_HZ"]),
            "UART_TEL_GAP_CYCLES": str(parameters["TEL_GAP_CYCLES"]),
        },
    )
