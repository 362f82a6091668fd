"""Block tests of the TDI state machine (``hdl/tdi``) against a table-driven model.

``TdiModel`` restates the TDISP interface rules of PCIe 6.x §11.2 and §11.4.5-11.4.9 as
``hdl/tdi/README.md`` states them for this block: the firmware commands as a table of
(state, op) -> next state, the events that force ERROR as a table of guarded config registers
and byte enables, and the Type 0 header shadow.  It is stepped one clock at a time with
everything the block sees in that cycle and knows nothing of the RTL's structure; register
offsets, field positions and codes are restated here from the README, not taken from the RTL
package.

Every cycle, inputs are driven after a falling edge and outputs sampled at the next one; after
every cycle the bench compares the TLP-path outputs (state, binding, BAR0 base, Memory Space
Enable) with the model, and every firmware read with the model's value.

Run with ``python -m pytest cocotb_tests/tdi`` (one cached Verilator build per parameter set);
``TDI_SEED`` overrides the per-test seeds.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import zlib
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge

CLOCK_NS = 10
LOG = logging.getLogger("cocotb.test")


class State(IntEnum):
    """TDISP TDI_STATE codes (§11.2)."""

    CONFIG_UNLOCKED = 0
    CONFIG_LOCKED = 1
    RUN = 2
    ERROR = 3


class Op(IntEnum):
    LOCK = 1
    START = 2
    STOP = 3
    FAIL = 4


class Status(IntEnum):
    DONE = 0
    NOT_ALLOWED = 1
    UNKNOWN_OP = 2
    BAD_STREAM = 3


class Cause(IntEnum):
    NONE = 0
    CONFIG_WRITE = 1
    STREAM_INSECURE = 2
    FW_FAIL = 3
    POISONED = 4


U, L, R, E = State

# Firmware register map (README "Firmware register map"): DW offsets in the 32-DW region.
TDI_STATE, TDI_CMD, BAR0_LO, BAR0_HI, BAR0_INFO, NUM_STREAMS_REG = range(6)
FW_REGION_DW = 32
MAP_VERSION = 0x01

# The firmware commands as a table: (state, op) -> the state after it.  A pair that is not
# listed is refused with NOT_ALLOWED and changes nothing (§11.2 state machine: LOCK only from
# CONFIG_UNLOCKED, START only from CONFIG_LOCKED, STOP from anywhere; FAIL is the firmware's
# way of reporting an event of §11.4.5-9 it detected, such as its SPDM session ending).
COMMANDS: dict[tuple[State, Op], State] = {
    (U, Op.LOCK): L,
    (L, Op.START): R,
    (U, Op.STOP): U,
    (L, Op.STOP): U,
    (R, Op.STOP): U,
    (E, Op.STOP): U,
    (L, Op.FAIL): E,
    (R, Op.FAIL): E,
}

# States in which the hardware events force ERROR.
EVENT_STATES = frozenset({L, R})

# Config registers of function 0 whose write forces ERROR, with the byte enables that count:
# Command (bytes 0-1; bytes 2-3 are Status), BAR0..BAR5, Expansion ROM BAR (Type 0 header,
# PCIe 6.x §7.5.1.1-2).
GUARDED_BYTES: dict[int, int] = {1: 0b0011, **dict.fromkeys(range(4, 10), 0b1111), 12: 0b1111}

# Type 0 header registers the block shadows.
REG_COMMAND, REG_BAR0, REG_BAR1 = 1, 4, 5
CMD_MSE, CMD_BME = 1 << 1, 1 << 2
BAR_MEM64_NP = 0b0100  # [3:0] of a 64-bit non-prefetchable memory BAR


def seed_for(name: str) -> int:
    """Fixed seed per test (overridable with TDI_SEED); printed so failures reproduce."""
    seed = int(os.environ.get("TDI_SEED", "0")) or zlib.crc32(name.encode())
    LOG.info("%s: seed %d", name, seed)
    return seed


def be_mask(be: int) -> int:
    return sum(0xFF << (8 * i) for i in range(4) if be >> i & 1)


def command(op: int, stream: int = 0) -> int:
    return (stream & 7) << 8 | (op & 0xF)


@dataclass(frozen=True)
class CfgWrite:
    reg: int
    data: int
    be: int = 0xF
    func: int = 0


@dataclass
class Cycle:
    """Everything the block sees in one clock cycle (secure is a level, the rest pulses)."""

    secure: int
    cfg: CfgWrite | None = None
    ide_wr: int = 0
    poisoned: bool = False
    fw_wr: tuple[int, int] | None = None  # (offset, data)
    fw_rd: int | None = None  # offset


###############
# The model   #
###############


class TdiModel:
    def __init__(self, num_streams: int, bar0_size_log2: int) -> None:
        self.num_streams = num_streams
        self.size_log2 = bar0_size_log2
        self.addr_mask = 0xFFFF_FFFF & ~((1 << bar0_size_log2) - 1)
        self.reset()

    def reset(self) -> None:
        """Conventional reset or FLR: CONFIG_UNLOCKED, unbound, no cause, shadows 0."""
        self.state = State.CONFIG_UNLOCKED
        self.bound: int | None = None
        self.cause = Cause.NONE
        self.status = Status.DONE
        self.mse = self.bme = False
        self.bar_lo = 0  # address bits only
        self.bar_hi = 0

    # What the block shows

    def read(self, off: int) -> int:
        if off == TDI_STATE:
            bound = self.bound if self.bound is not None else 0
            return (
                self.state
                | bound << 4
                | (self.bound is not None) << 7
                | self.cause << 8
                | MAP_VERSION << 24
            )
        if off == TDI_CMD:
            return int(self.status)
        if off == BAR0_LO:
            return self.bar_lo | BAR_MEM64_NP
        if off == BAR0_HI:
            return self.bar_hi
        if off == BAR0_INFO:
            return self.size_log2 | self.mse << 8 | self.bme << 9
        if off == NUM_STREAMS_REG:
            return self.num_streams
        return 0

    def outputs(self) -> dict[str, int]:
        return {
            "tdi_state_o": int(self.state),
            "bound_o": int(self.bound is not None),
            "bound_stream_o": self.bound or 0,
            "bar0_base_o": self.bar_hi << 32 | self.bar_lo,
            "mem_enable_o": int(self.mse),
            "bus_master_o": int(self.bme),
        }

    # One clock

    def step(self, c: Cycle) -> int | None:
        """Apply one cycle; return the value a read in it returns (the state before it)."""
        rdata = self.read(c.fw_rd) if c.fw_rd is not None else None
        cause = self.event_cause(c)
        if c.cfg is not None:
            self._shadow(c.cfg)
        # Events act first; a command in the same cycle sees the state they left.
        if self.state in EVENT_STATES and cause is not Cause.NONE:
            self.state, self.cause = State.ERROR, cause
        if c.fw_wr is not None and c.fw_wr[0] == TDI_CMD:
            self._command(c.fw_wr[1], c.secure)
        return rdata

    def event_cause(self, c: Cycle) -> Cause:
        """The cause an event in this cycle records (the lowest code when several coincide)."""
        if self.bound is None:
            return Cause.NONE
        w = c.cfg
        if (w is not None and w.func == 0 and w.be & GUARDED_BYTES.get(w.reg, 0)) or (
            c.ide_wr >> self.bound & 1
        ):
            return Cause.CONFIG_WRITE
        if not c.secure >> self.bound & 1:
            return Cause.STREAM_INSECURE
        if c.poisoned:
            return Cause.POISONED
        return Cause.NONE

    def _shadow(self, w: CfgWrite) -> None:
        if w.func != 0:
            return
        m = be_mask(w.be)
        if w.reg == REG_COMMAND and w.be & 1:
            self.mse, self.bme = bool(w.data & CMD_MSE), bool(w.data & CMD_BME)
        elif w.reg == REG_BAR0:
            self.bar_lo = ((self.bar_lo & ~m) | (w.data & m)) & self.addr_mask
        elif w.reg == REG_BAR1:
            self.bar_hi = (self.bar_hi & ~m) | (w.data & m)

    def _command(self, word: int, secure: int) -> None:
        code, stream = word & 0xF, word >> 8 & 7
        if code not in set(Op):
            self.status = Status.UNKNOWN_OP
            return
        op = Op(code)
        nxt = COMMANDS.get((self.state, op))
        if nxt is None:
            self.status = Status.NOT_ALLOWED
        elif op is Op.LOCK and (stream >= self.num_streams or not secure >> stream & 1):
            self.status = Status.BAD_STREAM
        else:
            self.status = Status.DONE
            self.state = nxt
            if op is Op.LOCK:
                self.bound = stream
            elif op is Op.STOP:
                self.bound, self.cause = None, Cause.NONE
            elif op is Op.FAIL:
                self.cause = Cause.FW_FAIL


#############
# The bench #
#############


class Bench:
    """The block and the model, stepped together one cycle at a time."""

    def __init__(self, dut: SimHandleBase, seed: int) -> None:
        self.dut = dut
        self.rng = random.Random(seed)
        self.ns = int(os.environ.get("TDI_NUM_STREAMS", "2"))
        self.size_log2 = int(os.environ.get("TDI_BAR0_SIZE_LOG2", "12"))
        self.all_streams = (1 << self.ns) - 1
        self.model = TdiModel(self.ns, self.size_log2)
        self.secure = self.all_streams
        self.cycles = 0
        self._idle()

    def _idle(self) -> None:
        d = self.dut
        for name in (
            "cfg_wr_i",
            "cfg_func_i",
            "cfg_reg_i",
            "cfg_be_i",
            "cfg_wdata_i",
            "ide_stream_reg_wr_i",
            "tlp_poisoned_i",
            "fw_wr_i",
            "fw_rd_i",
            "fw_addr_i",
            "fw_wdata_i",
        ):
            getattr(d, name).value = 0
        d.stream_secure_i.value = self.secure

    async def start(self) -> None:
        Clock(self.dut.clk_i, CLOCK_NS, unit="ns").start()
        await self.reset()

    async def reset(self) -> None:
        """Reset (conventional or FLR) for two cycles; then every output is at its reset value."""
        self._idle()
        self.dut.rst_ni.value = 0
        await ClockCycles(self.dut.clk_i, 2)
        await FallingEdge(self.dut.clk_i)
        self.model.reset()
        self.check_outputs("in reset")
        self.dut.rst_ni.value = 1
        await self.cycle()

    def check_outputs(self, when: str) -> None:
        d = self.dut
        got = {name: int(getattr(d, name).value) for name in self.model.outputs()}
        want = self.model.outputs()
        assert got == want, f"{when}: outputs {got} != model {want}"

    async def step(self, c: Cycle) -> int | None:
        """Drive one cycle, step the model, compare; return the read data if c reads."""
        d = self.dut
        self.secure = c.secure
        d.stream_secure_i.value = c.secure
        if c.cfg is not None:
            d.cfg_wr_i.value = 1
            d.cfg_func_i.value = c.cfg.func
            d.cfg_reg_i.value = c.cfg.reg
            d.cfg_be_i.value = c.cfg.be
            d.cfg_wdata_i.value = c.cfg.data
        d.ide_stream_reg_wr_i.value = c.ide_wr
        d.tlp_poisoned_i.value = int(c.poisoned)
        if c.fw_wr is not None:
            d.fw_wr_i.value, d.fw_addr_i.value, d.fw_wdata_i.value = 1, c.fw_wr[0], c.fw_wr[1]
        if c.fw_rd is not None:
            d.fw_rd_i.value, d.fw_addr_i.value = 1, c.fw_rd
        expected = self.model.step(c)
        await FallingEdge(d.clk_i)
        self.cycles += 1
        d.cfg_wr_i.value = 0
        d.ide_stream_reg_wr_i.value = 0
        d.tlp_poisoned_i.value = 0
        d.fw_wr_i.value = 0
        d.fw_rd_i.value = 0
        self.check_outputs(f"cycle {self.cycles}")
        assert int(d.fw_rvalid_o.value) == (c.fw_rd is not None), "fw_rvalid_o"
        if c.fw_rd is None:
            return None
        value = int(d.fw_rdata_o.value)
        assert value == expected, f"fw {c.fw_rd}: read {value:#010x}, model {expected:#010x}"
        return value

    # Single actions (one cycle each)

    async def cycle(self) -> None:
        await self.step(Cycle(self.secure))

    async def read(self, off: int) -> int:
        value = await self.step(Cycle(self.secure, fw_rd=off))
        assert value is not None
        return value

    async def dump(self) -> list[int]:
        """Read every listed register (each compared with the model)."""
        return [await self.read(off) for off in range(NUM_STREAMS_REG + 1)]

    async def fw_write(self, off: int, data: int) -> None:
        await self.step(Cycle(self.secure, fw_wr=(off, data)))

    async def cmd(self, op: int, stream: int = 0) -> int:
        """Issue a command; return its status (read back the next cycle)."""
        await self.fw_write(TDI_CMD, command(op, stream))
        return await self.read(TDI_CMD)

    async def cfg_write(self, reg: int, data: int, be: int = 0xF, func: int = 0) -> None:
        await self.step(Cycle(self.secure, cfg=CfgWrite(reg, data, be, func)))

    async def set_secure(self, mask: int) -> None:
        await self.step(Cycle(mask & self.all_streams))

    async def state(self) -> tuple[State, int | None, Cause]:
        """(state, bound stream or None, cause) as TDI_STATE reads."""
        v = await self.read(TDI_STATE)
        return State(v & 3), (v >> 4 & 7) if v >> 7 & 1 else None, Cause(v >> 8 & 0xFF)

    async def go_to(self, state: State, stream: int = 0) -> None:
        """Bring the interface to state (bound to stream unless CONFIG_UNLOCKED) by commands."""
        self.secure |= 1 << stream
        await self.set_secure(self.secure)
        assert await self.cmd(Op.STOP) == Status.DONE
        if state is not State.CONFIG_UNLOCKED:
            assert await self.cmd(Op.LOCK, stream) == Status.DONE
        if state is State.RUN:
            assert await self.cmd(Op.START) == Status.DONE
        if state is State.ERROR:
            assert await self.cmd(Op.FAIL) == Status.DONE
        assert self.model.state is state


async def new_bench(dut: SimHandleBase, name: str) -> Bench:
    b = Bench(dut, seed_for(name))
    await b.start()
    return b


###########
# Tests   #
###########


@cocotb.test()
async def test_reset_values(dut: SimHandleBase) -> None:
    """After reset: CONFIG_UNLOCKED, unbound, no cause; the map reads its fixed values."""
    b = await new_bench(dut, "test_reset_values")
    assert await b.read(TDI_STATE) == 0x0100_0000
    assert await b.read(TDI_CMD) == Status.DONE
    assert await b.read(BAR0_LO) == 0b0100
    assert await b.read(BAR0_HI) == 0
    assert await b.read(BAR0_INFO) == b.size_log2
    assert await b.read(NUM_STREAMS_REG) == b.ns
    for off in range(NUM_STREAMS_REG + 1, FW_REGION_DW):
        assert await b.read(off) == 0, f"unlisted offset {off}"
    # Writes to read-only and unlisted offsets change nothing.
    for off in range(FW_REGION_DW):
        if off != TDI_CMD:
            await b.fw_write(off, 0xFFFF_FFFF)
    await b.dump()


@cocotb.test()
async def test_every_command_in_every_state(dut: SimHandleBase) -> None:
    """Each of the 16 op codes from each of the four states: status and next state."""
    b = await new_bench(dut, "test_every_command_in_every_state")
    stream = b.ns - 1
    for state in State:
        for code in range(16):
            await b.go_to(state, stream)
            status = await b.cmd(code, stream)
            after, bound, cause = await b.state()
            if code not in set(Op):
                assert status == Status.UNKNOWN_OP and after is state
                continue
            nxt = COMMANDS.get((state, Op(code)))
            assert status == (Status.DONE if nxt is not None else Status.NOT_ALLOWED)
            assert after is (nxt if nxt is not None else state), f"{state.name} {Op(code).name}"
            if after is State.CONFIG_UNLOCKED:
                assert bound is None and cause is Cause.NONE
            else:
                assert bound == stream
            if after is State.ERROR:
                assert cause is Cause.FW_FAIL
            await b.dump()
    # The walk through the TDISP flow: LOCK, START, STOP.
    await b.go_to(State.CONFIG_UNLOCKED)
    assert await b.cmd(Op.LOCK, 0) == Status.DONE
    assert (await b.state())[:2] == (State.CONFIG_LOCKED, 0)
    assert await b.cmd(Op.LOCK, 0) == Status.NOT_ALLOWED
    assert await b.cmd(Op.START) == Status.DONE
    assert await b.cmd(Op.START) == Status.NOT_ALLOWED
    assert (await b.state())[:2] == (State.RUN, 0)
    assert await b.cmd(Op.STOP) == Status.DONE
    assert await b.state() == (State.CONFIG_UNLOCKED, None, Cause.NONE)


@cocotb.test()
async def test_lock_checks_the_stream(dut: SimHandleBase) -> None:
    """LOCK binds only an existing, Secure stream (status 3 otherwise); state is checked first."""
    b = await new_bench(dut, "test_lock_checks_the_stream")
    for mask in {0, b.all_streams, 0b1 & b.all_streams, 0b10 & b.all_streams, 0x55 & b.all_streams}:
        for stream in range(8):
            await b.go_to(State.CONFIG_UNLOCKED)
            await b.set_secure(mask)
            ok = stream < b.ns and mask >> stream & 1
            status = await b.cmd(Op.LOCK, stream)
            assert status == (Status.DONE if ok else Status.BAD_STREAM), (mask, stream)
            want = (State.CONFIG_LOCKED, stream) if ok else (State.CONFIG_UNLOCKED, None)
            assert (await b.state())[:2] == want
            assert int(dut.bound_o.value) == bool(ok)
            assert int(dut.bound_stream_o.value) == (stream if ok else 0)
    # Not allowed in the state wins over a bad stream.
    await b.go_to(State.RUN)
    await b.set_secure(0b1)
    assert await b.cmd(Op.LOCK, 7) == Status.NOT_ALLOWED


@cocotb.test()
async def test_config_writes(dut: SimHandleBase) -> None:
    """Writes to Command (bytes 0-1), BAR0..5 and the ROM BAR of function 0 force ERROR from
    CONFIG_LOCKED and RUN with cause 1; other registers, Status bytes, no byte enabled, other
    functions, and the states CONFIG_UNLOCKED and ERROR do not."""
    b = await new_bench(dut, "test_config_writes")
    regs = [*range(16), 0x3C, 0x120, 0x3FF]
    for state in State:
        for reg in regs:
            for be in range(16):
                await b.go_to(state)
                cause_before = b.model.cause
                await b.cfg_write(reg, b.rng.getrandbits(32), be)
                after, _, cause = await b.state()
                guarded = bool(be & GUARDED_BYTES.get(reg, 0))
                if state in EVENT_STATES and guarded:
                    assert (after, cause) == (State.ERROR, Cause.CONFIG_WRITE), (state, reg, be)
                else:
                    assert (after, cause) == (state, cause_before), (state, reg, be)
        # Another function's writes are not the interface's.
        for reg in GUARDED_BYTES:
            await b.go_to(state)
            await b.cfg_write(reg, 0xFFFF_FFFF, 0xF, func=b.rng.randrange(1, 256))
            assert (await b.state())[0] is state
    # The guarded registers exactly: 1 (bytes 0-1), 4..9, 12.
    await b.go_to(State.RUN)
    await b.cfg_write(REG_COMMAND, 0xFFFF_0000, 0b1100)  # Status RW1C bytes only
    assert (await b.state())[0] is State.RUN
    await b.cfg_write(REG_COMMAND, 0, 0b0010)  # Command byte 1 (INTx Disable, ...)
    assert await b.state() == (State.ERROR, 0, Cause.CONFIG_WRITE)


@cocotb.test()
async def test_bound_stream_events(dut: SimHandleBase) -> None:
    """IDE register writes and leaving Secure count only for the bound stream."""
    b = await new_bench(dut, "test_bound_stream_events")
    for state in (State.CONFIG_LOCKED, State.RUN):
        for bound in range(b.ns):
            others = b.all_streams & ~(1 << bound)
            # Another stream's IDE registers, or another stream leaving Secure: no change.
            await b.go_to(state, bound)
            if others:
                await b.step(Cycle(b.secure, ide_wr=others))
                await b.set_secure(b.all_streams & ~others)
                await b.set_secure(b.all_streams)
            assert (await b.state())[0] is state
            # A write to the bound stream's IDE registers: cause 1.
            await b.step(Cycle(b.secure, ide_wr=1 << bound))
            assert await b.state() == (State.ERROR, bound, Cause.CONFIG_WRITE)
            # The bound stream leaving Secure: cause 2, and it stays ERROR when Secure again.
            await b.go_to(state, bound)
            await b.set_secure(others)
            await b.set_secure(b.all_streams)
            assert await b.state() == (State.ERROR, bound, Cause.STREAM_INSECURE)
    # In CONFIG_UNLOCKED no stream is bound and nothing happens.
    await b.go_to(State.CONFIG_UNLOCKED)
    await b.step(Cycle(0, ide_wr=b.all_streams))
    await b.set_secure(b.all_streams)
    assert await b.state() == (State.CONFIG_UNLOCKED, None, Cause.NONE)


@cocotb.test()
async def test_poisoned_and_fail(dut: SimHandleBase) -> None:
    """A poisoned request (cause 4) and firmware FAIL (cause 3) from CONFIG_LOCKED and RUN."""
    b = await new_bench(dut, "test_poisoned_and_fail")
    for state in State:
        await b.go_to(state, b.ns - 1)
        cause_before = b.model.cause
        await b.step(Cycle(b.secure, poisoned=True))
        want = (State.ERROR, Cause.POISONED) if state in EVENT_STATES else (state, cause_before)
        after, _, cause = await b.state()
        assert (after, cause) == want, state
        await b.go_to(state, b.ns - 1)
        status = await b.cmd(Op.FAIL)
        after, _, cause = await b.state()
        if state in EVENT_STATES:
            assert (status, after, cause) == (Status.DONE, State.ERROR, Cause.FW_FAIL)
        else:
            assert status == Status.NOT_ALLOWED and after is state


@cocotb.test()
async def test_error_holds_until_stop(dut: SimHandleBase) -> None:
    """ERROR keeps its state, binding and first cause through every event and command but
    STOP; STOP clears all three."""
    b = await new_bench(dut, "test_error_holds_until_stop")
    stream = b.ns - 1
    await b.go_to(State.RUN, stream)
    await b.step(Cycle(b.secure, poisoned=True))
    for c in (
        Cycle(b.secure, cfg=CfgWrite(REG_BAR0, 0xFFFF_FFFF)),
        Cycle(b.secure, ide_wr=b.all_streams),
        Cycle(0),
        Cycle(b.all_streams, poisoned=True),
    ):
        await b.step(c)
    for op in (Op.LOCK, Op.START, Op.FAIL, 0, 15):
        assert await b.cmd(op, stream) == (
            Status.NOT_ALLOWED if op in set(Op) else Status.UNKNOWN_OP
        )
    assert await b.state() == (State.ERROR, stream, Cause.POISONED)
    for _ in range(20):
        await b.cycle()
    assert await b.state() == (State.ERROR, stream, Cause.POISONED)
    assert await b.cmd(Op.STOP) == Status.DONE
    assert await b.state() == (State.CONFIG_UNLOCKED, None, Cause.NONE)


@cocotb.test()
async def test_event_priority(dut: SimHandleBase) -> None:
    """Coinciding events record the lowest cause code: config write, insecure, poisoned."""
    b = await new_bench(dut, "test_event_priority")
    bound = 0
    bar = CfgWrite(REG_BAR0 + 2, 0x1234_5678)
    combos = [
        (Cycle(0, cfg=bar, poisoned=True), Cause.CONFIG_WRITE),
        (Cycle(0, ide_wr=1, poisoned=True), Cause.CONFIG_WRITE),
        (Cycle(0, poisoned=True), Cause.STREAM_INSECURE),
        (Cycle(b.all_streams, ide_wr=1, poisoned=True), Cause.CONFIG_WRITE),
        (Cycle(b.all_streams, cfg=CfgWrite(3, 0), poisoned=True), Cause.POISONED),
    ]
    for c, want in combos:
        await b.go_to(State.RUN, bound)
        await b.step(c)
        await b.set_secure(b.all_streams)
        assert await b.state() == (State.ERROR, bound, want), c


@cocotb.test()
async def test_event_and_command_same_cycle(dut: SimHandleBase) -> None:
    """An event and a command in one cycle: the event acts first, the command meets the state
    it left (START/FAIL refused in ERROR, STOP always done, LOCK unaffected in CONFIG_UNLOCKED)."""
    b = await new_bench(dut, "test_event_and_command_same_cycle")
    events = {
        "cfg": lambda s: Cycle(s, cfg=CfgWrite(REG_COMMAND, CMD_MSE, 0b0001)),
        "ide": lambda s: Cycle(s, ide_wr=1),
        "insecure": lambda s: Cycle(s & ~1),
        "poisoned": lambda s: Cycle(s, poisoned=True),
    }
    for state in State:
        for op in Op:
            for name, make in events.items():
                await b.go_to(state, 0)
                c = make(b.all_streams)
                # LOCK of a Secure stream: the bound stream index 0 unless stream 0 is dropping.
                lock_stream = b.ns - 1 if name == "insecure" and b.ns > 1 else 0
                c.fw_wr = (TDI_CMD, command(op, lock_stream))
                await b.step(c)
                await b.set_secure(b.all_streams)
                status = Status(await b.read(TDI_CMD))
                after, _, cause = await b.state()
                if state in EVENT_STATES and op is not Op.STOP:
                    # The event wins: ERROR with the event's cause, the command refused.
                    assert after is State.ERROR and cause is not Cause.FW_FAIL, (state, op, name)
                    assert status == Status.NOT_ALLOWED, (state, op, name)
                if op is Op.STOP:
                    assert (status, after, cause) == (Status.DONE, State.CONFIG_UNLOCKED, 0)
                await b.dump()


@cocotb.test()
async def test_bar_and_command_shadow(dut: SimHandleBase) -> None:
    """BAR0 low/high and Command MSE/BME follow function 0's writes byte by byte."""
    b = await new_bench(dut, "test_bar_and_command_shadow")
    size = 1 << b.size_log2
    # Sizing: all ones reads back ~(size - 1) | 0100b; the high half takes all 32 bits.
    await b.cfg_write(REG_BAR0, 0xFFFF_FFFF)
    await b.cfg_write(REG_BAR1, 0xFFFF_FFFF)
    assert await b.read(BAR0_LO) == (0xFFFF_FFFF & ~(size - 1)) | 0b0100
    assert await b.read(BAR0_HI) == 0xFFFF_FFFF
    # Programming: the address bits stay, the rest reads as the BAR type.
    base = 0x0000_00A5_0000_0000 | (0xDEAD_BEEF & ~(size - 1))
    await b.cfg_write(REG_BAR0, base & 0xFFFF_FFFF | 0xFFF)
    await b.cfg_write(REG_BAR1, base >> 32)
    assert int(dut.bar0_base_o.value) == base
    assert await b.read(BAR0_LO) == base & 0xFFFF_FFFF | 0b0100
    # Byte enables: one byte at a time.
    for be in (0b0001, 0b0010, 0b0100, 0b1000, 0b0000, 0b0110):
        await b.cfg_write(REG_BAR0, b.rng.getrandbits(32), be)
        await b.cfg_write(REG_BAR1, b.rng.getrandbits(32), be)
        await b.dump()
    # Other functions' BARs are not this one's.
    await b.cfg_write(REG_BAR0, 0, 0xF, func=1)
    await b.cfg_write(REG_BAR1, 0, 0xF, func=0x80)
    await b.dump()
    # Command: MSE and BME from byte 0 only.
    await b.cfg_write(REG_COMMAND, CMD_MSE | CMD_BME, 0b0001)
    assert await b.read(BAR0_INFO) == b.size_log2 | 1 << 8 | 1 << 9
    assert int(dut.mem_enable_o.value) == 1
    await b.cfg_write(REG_COMMAND, 0, 0b1110)
    assert await b.read(BAR0_INFO) == b.size_log2 | 1 << 8 | 1 << 9
    await b.cfg_write(REG_COMMAND, CMD_BME, 0b0001)
    assert await b.read(BAR0_INFO) == b.size_log2 | 1 << 9
    await b.cfg_write(REG_COMMAND, 0, 0b0001, func=2)
    assert await b.read(BAR0_INFO) == b.size_log2 | 1 << 9
    # The shadow follows writes in every state (the hard IP completes them).
    await b.go_to(State.RUN)
    await b.cfg_write(REG_BAR1, 0x1234_5678)
    assert await b.read(BAR0_HI) == 0x1234_5678
    assert (await b.state())[0] is State.ERROR
    # Reset clears the shadows.
    await b.reset()
    assert await b.dump() == [0x0100_0000, 0, 0b0100, 0, b.size_log2, b.ns]


@cocotb.test()
async def test_reset_from_every_state(dut: SimHandleBase) -> None:
    """Reset (conventional or FLR) returns every state to CONFIG_UNLOCKED, unbound, cause 0."""
    b = await new_bench(dut, "test_reset_from_every_state")
    for state in State:
        await b.go_to(state, b.ns - 1)
        await b.cfg_write(REG_COMMAND, CMD_MSE, 0b0001)
        await b.fw_write(TDI_CMD, command(0))  # status 2 before the reset
        await b.reset()
        assert await b.dump() == [0x0100_0000, 0, 0b0100, 0, b.size_log2, b.ns]


def random_cycle(b: Bench) -> Cycle:
    """A random cycle: any mix of config write, IDE register write, stream state change,
    poisoned request and firmware access."""
    rng = b.rng
    secure = b.secure
    if rng.random() < 0.04:
        secure ^= 1 << rng.randrange(b.ns)
    elif b.model.bound is not None and rng.random() < 0.01:
        secure &= ~(1 << b.model.bound)  # with many streams a random one is rarely the bound one
    elif rng.random() < 0.1:
        secure = b.all_streams
    c = Cycle(secure)
    if rng.random() < 0.08:
        reg = rng.choice((*GUARDED_BYTES, 0, 2, 3, 10, 11, 13, 15, 0x120, rng.randrange(1024)))
        func = 0 if rng.random() < 0.85 else rng.randrange(1, 256)
        c.cfg = CfgWrite(reg, rng.getrandbits(32), rng.randrange(16), func)
    if rng.random() < 0.04:
        c.ide_wr = rng.randrange(1, 1 << b.ns)
    c.poisoned = rng.random() < 0.03
    r = rng.random()
    if r < 0.35:
        op = rng.choices([*Op, 0, rng.randrange(16)], weights=[8, 8, 4, 2, 1, 1])[0]
        stream = rng.randrange(b.ns) if rng.random() < 0.9 else rng.randrange(8)
        reserved = rng.getrandbits(21) << 11 | rng.getrandbits(4) << 4
        c.fw_wr = (TDI_CMD, reserved | stream << 8 | op)
    elif r < 0.38:
        c.fw_wr = (rng.randrange(FW_REGION_DW), rng.getrandbits(32))
    elif r < 0.5:
        c.fw_rd = rng.randrange(FW_REGION_DW)
    return c


@cocotb.test()
async def test_random(dut: SimHandleBase) -> None:
    """Random commands, config writes, stream changes, events and resets; after every step the
    outputs and every listed register agree with the model."""
    b = await new_bench(dut, "test_random")
    steps = int(os.environ.get("TDI_RANDOM_STEPS", "3000"))
    visits = {s: 0 for s in State}
    entries = {c: 0 for c in Cause if c is not Cause.NONE}
    for _ in range(steps):
        before = b.model.state
        await b.step(random_cycle(b))
        if b.model.state is State.ERROR and before is not State.ERROR:
            entries[b.model.cause] += 1
        visits[b.model.state] += 1
        await b.dump()
        if b.rng.random() < 0.005:
            await b.reset()
    LOG.info(
        "random: %d steps, %d cycles, states %s, ERROR entries %s",
        steps,
        b.cycles,
        {s.name: n for s, n in visits.items()},
        {c.name: n for c, n in entries.items()},
    )
    assert min(visits.values()) >= steps // 50, f"a state was rarely reached: {visits}"
    assert min(entries.values()) >= 2, f"an ERROR cause rarely happened: {entries}"


########################
# pytest entry points  #
########################

PARAMETER_SETS = [
    pytest.param({}, id="default"),
    pytest.param({"NUM_STREAMS": 1, "BAR0_SIZE_LOG2": 31}, id="s1-b31"),
    pytest.param({"NUM_STREAMS": 8, "BAR0_SIZE_LOG2": 20}, id="s8-b20"),
]


@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_tdi(parameters: dict[str, int]) -> None:
    """Build tdi for one parameter set (cached) and run the cocotb tests above."""
    from hil.sim import build_hdl, rtl_sources, run_cocotb_tests

    build_dir = build_hdl("tdi", rtl_sources("tdi"), parameters)
    run_cocotb_tests(
        "tdi",
        build_dir,
        Path(__file__).stem,
        Path(__file__).parent,
        extra_env={
            "TDI_NUM_STREAMS": str(parameters.get("NUM_STREAMS", 2)),
            "TDI_BAR0_SIZE_LOG2": str(parameters.get("BAR0_SIZE_LOG2", 12)),
        },
    )


BAD_PARAMETER_SETS = [
    pytest.param({"NUM_STREAMS": 0}, "NUM_STREAMS must be", id="0-streams"),
    pytest.param({"NUM_STREAMS": 9}, "NUM_STREAMS must be", id="9-streams"),
    pytest.param({"BAR0_SIZE_LOG2": 11}, "BAR0_SIZE_LOG2 must be", id="bar-2k"),
    pytest.param({"BAR0_SIZE_LOG2": 32}, "BAR0_SIZE_LOG2 must be", id="bar-4g"),
]


@pytest.mark.parametrize(("parameters", "message"), BAD_PARAMETER_SETS)
def test_tdi_bad_parameters(parameters: dict[str, int], message: str) -> None:
    """A parameter out of range stops elaboration with a message."""
    from hil.sim import lint_waivers, rtl_sources, verilator_env

    verilator_env()
    overrides = [f"-G{k}={v}" for k, v in parameters.items()]
    proc = subprocess.run(
        [
            "verilator",
            "--lint-only",
            "-Wall",
            "--top-module",
            "tdi",
            *overrides,
            *map(str, lint_waivers("tdi")),
            *map(str, rtl_sources("tdi")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{parameters} elaborated:\n{out}"
    assert "USERFATAL" in out and message in out, out
