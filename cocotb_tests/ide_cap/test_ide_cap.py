"""Block tests of the IDE capability (``hdl/ide_cap``) against a reference model.

``IdeModel`` restates the register semantics of PCIe 6.x §7.9.26 and the stream state rules of
§6.33.1, §6.33.3 and §6.33.8 as ``hdl/ide_cap/README.md`` states them for this block, one
register access or event at a time; it knows nothing of the RTL's structure.  Register offsets,
field positions and the firmware map are restated here from the spec and the README, not taken
from the RTL package.

Every access takes one clock cycle: inputs are driven and outputs sampled on the falling edge.
After every cycle the bench compares the per-stream outputs (Stream ID, Enable, Secure, TC,
Default Stream, TEE-Limited, armed slots, Address Association) and the IDE Fail Message
requests with the model; every read is compared with the model's value.

Run with ``python -m pytest cocotb_tests/ide_cap`` (one cached Verilator build per parameter
set); ``IDE_CAP_SEED`` overrides the per-test seeds.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge

# Configuration registers (PCIe 6.x §7.9.26): DW index from the capability base.  The Link IDE
# Stream blocks (Control, Status; §7.9.26.4) follow IDE Control, then the Selective blocks.
HEADER, IDE_CAP, IDE_CTRL, LINK0 = 0, 1, 2, 3
LINK_BLOCK_DW = 2
SEL_CAP, SEL_CTRL, SEL_STATUS, SEL_RID1, SEL_RID2, SEL_ADDR = range(6)
SEL_FIXED_DW, ADDR_BLOCK_DW = 5, 3
IDE_CAP_ID, IDE_CAP_VERSION = 0x0030, 1
MAX_IDX = 64  # reg_idx_i is 6 bits

# IDE Capability register (§7.9.26.2)
CAP_SELECTIVE = 1 << 1
CAP_IDE_KM = 1 << 6
CAP_TEE_LIMITED = 1 << 24
CAP_PCRC = 1 << 5
CAP_PHE = 1 << 3
CAP_CFG = 1 << 7  # Selective IDE for Configuration Requests Supported
CAP_AGG = 1 << 4  # Aggregation Supported
CAP_LINK = 1 << 0
CAP_LINK_TCS_SHIFT = 13  # [15:13] Number of TCs Supported for Link IDE, minus 1
CAP_NUM_SEL_SHIFT = 16

# Selective IDE Stream Control (§7.9.26.5.2)
CTRL_EN = 1 << 0
CTRL_ALG_SHIFT = 14
CTRL_ALG_MASK = 0x1F << CTRL_ALG_SHIFT
CTRL_TC_SHIFT = 19
CTRL_DEFAULT = 1 << 22
CTRL_TEE_LIMITED = 1 << 23
CTRL_SID_SHIFT = 24
CTRL_RW = 0xFFFF_C001  # Enable, Selected Algorithm, TC, Default, TEE-Limited, Stream ID
CTRL_SAMPLED = CTRL_ALG_MASK | CTRL_TEE_LIMITED  # read-only while Enable is Set
CTRL_PCRC = 1 << 8  # PCRC Enable: RW where PCRC is built (PCRC_SUPPORTED), fixed while enabled
# Partial Header Encryption Mode [13:10]: RW where PHE is built (PHE_SUPPORTED), sampled while
# enabled; 0001b..0100b are the modes, other values are reserved (the block keeps 0000b then).
CTRL_PHE_SHIFT = 10
CTRL_PHE = 0xF << CTRL_PHE_SHIFT
# Tx Aggregation Mode NPR, PR, CPL [7:2]: RW where aggregation is built (AGG_SUPPORTED), fixed
# while enabled ("Software must enable aggregation prior to enabling the IDE Stream").
CTRL_AGG = 0x3F << 2
# Link IDE Stream Control (§7.9.26.4.1): Enable, Selected Algorithm, TC, Stream ID (b22, b23
# reserved: no Default Stream or TEE-Limited on a Link stream)
LINK_CTRL_RW = 0xFF3F_C001
ALG_AES_GCM_256 = 0

# Selective IDE Stream Status (§7.9.26.5.3), RID and Address Association (§7.9.26.5.4-5)
STATE_SECURE = 0b0010
STS_FAIL_RX = 1 << 31
RID1_RW = 0x00FF_FF00  # RID Limit
RID2_RW = 0x00FF_FF01  # V, RID Base (Segment Base reserved: no Flit Mode)
RID2_V = 1 << 0
ADDR1_RW = 0xFFFF_FF01  # V, Memory Base Lower, Memory Limit Lower
ADDR_OUT_W = 89  # stream_addr_o entry: {Valid, Memory Base[63:20], Memory Limit[63:20]}

# Key slots (README "Key slots"): per stream 2 key sets x 2 directions x 3 sub-streams.
PR, NPR, CPL = 0, 1, 2
RX, TX = 0, 1
NUM_SLOTS, SLOT_DW, KEY_DW = 12, 10, 8

# Firmware port map (README "Firmware register map")
FW_INFO, FW_CMD, FW_STREAM, FW_CFG, FW_KEY = 0x000, 0x001, 0x010, 0x040, 0x800
FW_ADDRS = 1 << 12
OP_GO, OP_STOP, OP_WIPE = 1, 2, 3
STS_OK, STS_BAD_OP, STS_BAD_STREAM, STS_BAD_SUB, STS_NOT_LOADED = range(5)

CLOCK_NS = 10
LOG = logging.getLogger("cocotb.test")


def seed_for(name: str) -> int:
    """Fixed seed per test (overridable with IDE_CAP_SEED); printed so failures reproduce."""
    seed = int(os.environ.get("IDE_CAP_SEED", "0")) or zlib.crc32(name.encode())
    LOG.info("%s: seed %d", name, seed)
    return seed


def slot_of(key_set: int, rxtx: int, sub: int) -> int:
    """Slot code {sub-stream[1:0], RxTxB, key set}, as the IDE_KM KeySubStream byte orders it."""
    return sub * 4 + rxtx * 2 + key_set


def key_sub_stream(key_set: int, rxtx: int, sub: int) -> int:
    """The IDE_KM KeySubStream byte (§6.33.3): bit 0 key set, bit 1 RxTxB, bits 7:4 sub-stream."""
    return key_set | rxtx << 1 | sub << 4


def command(op: int, stream: int, key_set: int = 0, rxtx: int = 0, sub: int = 0) -> int:
    return op << 16 | stream << 8 | key_sub_stream(key_set, rxtx, sub)


def key_addr(stream: int, slot: int, dw: int) -> int:
    return FW_KEY | stream << 8 | slot << 4 | dw


def key_set_slots(key_set: int) -> list[int]:
    return [slot_of(key_set, d, sub) for d in (RX, TX) for sub in (PR, NPR, CPL)]


def addr_counts(num_streams: int, num_addr_blocks: int, stream_addr_blocks: int) -> list[int]:
    """Address Association blocks of each Selective stream: its nibble of STREAM_ADDR_BLOCKS,
    or NUM_ADDR_BLOCKS where that is 0 (§7.9.26.5.1: each block has its own count)."""
    return [stream_addr_blocks >> 4 * j & 0xF or num_addr_blocks for j in range(num_streams)]


def cap_dw(counts: list[int], num_link: int = 0) -> int:
    """Capability size in DW: header, IDE Capability, IDE Control, the Link blocks, then one
    Selective block of 5 + 3 x its count DW per stream."""
    sel0 = LINK0 + LINK_BLOCK_DW * num_link
    return sel0 + sum(SEL_FIXED_DW + ADDR_BLOCK_DW * n for n in counts)


def addr_entry(words: list[int]) -> int:
    """A stream_addr_o entry from an Address Association block's three registers
    (§7.9.26.5.5): {Valid, Memory Base Upper, Memory Base Lower, Memory Limit Upper, Memory
    Limit Lower}."""
    a1, limit_hi, base_hi = words
    base = base_hi << 12 | (a1 >> 8 & 0xFFF)
    limit = limit_hi << 12 | a1 >> 20
    return (a1 & 1) << 88 | base << 44 | limit


def be_mask(be: int) -> int:
    return sum(0xFF << (8 * i) for i in range(4) if be >> i & 1)


###############
# The model   #
###############


@dataclass
class StreamModel:
    """One Selective IDE Stream (or, with ``link``, Link IDE Stream): its register block, its
    state and its key slots."""

    num_addr_blocks: int
    link: bool = False
    ctrl: int = 0
    fail_rx: bool = False
    rid1: int = 0
    rid2: int = 0
    addr: list[list[int]] = field(default_factory=list)
    secure: bool = False
    relock: bool = False  # a failure: Enable must be written 0 before Secure again
    keys: list[list[int]] = field(default_factory=list)
    written: list[set[int]] = field(default_factory=list)
    go: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.addr = [[0, 0, 0] for _ in range(self.num_addr_blocks)]
        self.wipe()

    @property
    def enable(self) -> bool:
        return bool(self.ctrl & CTRL_EN)

    def loaded(self, slot: int) -> bool:
        return len(self.written[slot]) == SLOT_DW

    def wipe(self) -> None:
        self.keys = [[0] * SLOT_DW for _ in range(NUM_SLOTS)]
        self.written = [set() for _ in range(NUM_SLOTS)]
        self.go = [False] * NUM_SLOTS

    def wipe_slot(self, slot: int) -> None:
        self.keys[slot] = [0] * SLOT_DW
        self.written[slot] = set()
        self.go[slot] = False

    def armed(self) -> bool:
        return any(all(self.go[s] for s in key_set_slots(k)) for k in (0, 1))

    def may_be_secure(self) -> bool:
        """§6.33.3 K_SET_GO for Rx and Tx of every sub-stream of one key set, Enable Set, a
        valid RID association (§7.9.26.5.2), the supported algorithm, and no failure since
        Enable was last written 0 (§6.33.8)."""
        alg = (self.ctrl & CTRL_ALG_MASK) >> CTRL_ALG_SHIFT
        return (
            self.enable
            and (self.link or bool(self.rid2 & RID2_V))  # a Link stream has no RID association
            and alg == ALG_AES_GCM_256
            and not self.relock
            and self.armed()
        )


@dataclass
class IdeModel:
    num_streams: int
    num_addr_blocks: int  # the count of the streams that have no nibble in stream_addr_blocks
    next_cap: int = 0
    pcrc: bool = False  # built with PCRC_SUPPORTED
    num_link: int = 0  # Link IDE Stream blocks; stream indices num_streams and up
    streams: list[StreamModel] = field(default_factory=list)
    cmd_status: int = STS_OK
    fail_tx: list[int] = field(default_factory=list)  # IDE Fail Messages requested
    phe: bool = False  # built with PHE_SUPPORTED
    cfg: bool = False  # built with CFG_IDE_SUPPORTED
    agg: bool = False  # built with AGG_SUPPORTED
    stream_addr_blocks: int = 0  # STREAM_ADDR_BLOCKS: 4 bits per Selective stream, 0: default
    counts: list[int] = field(default_factory=list)  # Address Association blocks per stream

    def __post_init__(self) -> None:
        self.counts = addr_counts(self.num_streams, self.num_addr_blocks, self.stream_addr_blocks)
        self.fail_tx = [0] * self.num_all
        self.reset()

    @property
    def max_blocks(self) -> int:
        """Entries per stream on stream_addr_o, and INFO [11:8]: the largest count."""
        return max(self.counts)

    @property
    def num_all(self) -> int:
        return self.num_streams + self.num_link

    def reset(self) -> None:
        """Conventional reset: registers to defaults, streams Insecure, keys zeroed."""
        self.streams = [
            StreamModel(self.counts[j] if j < self.num_streams else 0, link=j >= self.num_streams)
            for j in range(self.num_all)
        ]
        self.cmd_status = STS_OK

    @property
    def cap_dw(self) -> int:
        return cap_dw(self.counts, self.num_link)

    @property
    def sel0(self) -> int:
        return LINK0 + LINK_BLOCK_DW * self.num_link

    def block_dw(self, j: int) -> int:
        """Size of Selective stream j's block: 5 DW and 3 per Address Association block."""
        return SEL_FIXED_DW + ADDR_BLOCK_DW * self.counts[j]

    def sel_base(self, j: int) -> int:
        """Register index of Selective stream j's block: after the blocks before it."""
        return self.sel0 + sum(self.block_dw(k) for k in range(j))

    def locate(self, idx: int) -> tuple[int, int] | None:
        """(stream, offset in its block) for a stream register index.  A Link block's Control
        and Status are given the Selective block's offsets of the same registers."""
        if LINK0 <= idx < self.sel0:
            i, reg = divmod(idx - LINK0, LINK_BLOCK_DW)
            return self.num_streams + i, (SEL_CTRL, SEL_STATUS)[reg]
        for j in range(self.num_streams):
            if self.sel_base(j) <= idx < self.sel_base(j) + self.block_dw(j):
                return j, idx - self.sel_base(j)
        return None

    def addr_out(self) -> int:
        """stream_addr_o as the registers say: entry (j, b) at ADDR_OUT_W x (j x max_blocks +
        b); the entries past a stream's count are 0."""
        out = 0
        for j in range(self.num_streams):
            for b, words in enumerate(self.streams[j].addr):
                out |= addr_entry(words) << ADDR_OUT_W * (j * self.max_blocks + b)
        return out

    def settle(self) -> None:
        for s in self.streams:
            if not s.secure and s.may_be_secure():
                s.secure = True

    def leave_secure(self, j: int, *, failure: bool, send_fail: bool) -> None:
        s = self.streams[j]
        if s.secure:
            s.secure = False
            s.wipe()  # every exit from Secure invalidates and zeroes the stream's keys
            s.relock = s.relock or (failure and s.enable)
            self.fail_tx[j] += send_fail

    # Configuration port

    def cfg_read(self, idx: int) -> int:
        if idx == HEADER:
            return self.next_cap << 20 | IDE_CAP_VERSION << 16 | IDE_CAP_ID
        if idx == IDE_CAP:
            link = CAP_LINK | (self.num_link - 1) << CAP_LINK_TCS_SHIFT if self.num_link else 0
            return (
                CAP_SELECTIVE
                | CAP_IDE_KM
                | (self.num_streams - 1) << CAP_NUM_SEL_SHIFT
                | CAP_TEE_LIMITED
                | (CAP_PCRC if self.pcrc else 0)
                | (CAP_PHE if self.phe else 0)
                | (CAP_CFG if self.cfg else 0)
                | (CAP_AGG if self.agg else 0)
                | link
            )
        loc = self.locate(idx)
        if loc is None:
            return 0  # IDE Control (reserved for endpoints) and past the capability
        j, off = loc
        s = self.streams[j]
        if off == SEL_CAP:
            return self.counts[j]  # this block's own count (§7.9.26.5.1)
        if off == SEL_CTRL:
            return s.ctrl
        if off == SEL_STATUS:
            return (STS_FAIL_RX if s.fail_rx else 0) | (STATE_SECURE if s.secure else 0)
        if off == SEL_RID1:
            return s.rid1
        if off == SEL_RID2:
            return s.rid2
        block, reg = divmod(off - SEL_ADDR, ADDR_BLOCK_DW)
        return s.addr[block][reg]

    def cfg_write(self, idx: int, value: int, be: int = 0xF) -> None:
        loc = self.locate(idx)
        if loc is None:
            return
        j, off = loc
        s = self.streams[j]
        m = be_mask(be)
        merged = (self.cfg_read(idx) & ~m) | (value & m)
        if off == SEL_CTRL:
            rw = (LINK_CTRL_RW if s.link else CTRL_RW) | (CTRL_PCRC if self.pcrc else 0)
            rw |= (CTRL_PHE if self.phe else 0) | (CTRL_AGG if self.agg else 0)
            fixed = CTRL_SAMPLED | CTRL_PCRC | CTRL_PHE | CTRL_AGG  # fixed while enabled
            new = merged & rw
            if (new & CTRL_PHE) >> CTRL_PHE_SHIFT > 4:
                new &= ~CTRL_PHE  # a reserved mode: none
            if s.enable:
                new = (new & ~fixed) | (s.ctrl & fixed)
            s.ctrl = new
            if not s.enable:
                self.leave_secure(j, failure=False, send_fail=False)
                s.relock = False
        elif off == SEL_STATUS:
            if value & m & STS_FAIL_RX:
                s.fail_rx = False
        elif off == SEL_RID1:
            if not s.enable:
                s.rid1 = merged & RID1_RW
        elif off == SEL_RID2:
            if not s.enable:
                s.rid2 = merged & RID2_RW
        elif off >= SEL_ADDR:
            block, reg = divmod(off - SEL_ADDR, ADDR_BLOCK_DW)
            s.addr[block][reg] = merged & ADDR1_RW if reg == 0 else merged
        self.settle()

    # TLP path events

    def check_failed(self, j: int) -> None:
        self.leave_secure(j, failure=True, send_fail=True)
        self.settle()

    def fail_msg_rx(self, j: int) -> None:
        self.streams[j].fail_rx = True
        self.leave_secure(j, failure=True, send_fail=False)
        self.settle()

    def tlp_read(self, stream: int, slot: int) -> tuple[int, int, bool]:
        """(key as a 256-bit big-endian number, IFV, armed) of a slot; zeros if none."""
        if stream >= self.num_all or slot >= NUM_SLOTS:
            return 0, 0, False
        s = self.streams[stream]
        dws = s.keys[slot]
        key = int.from_bytes(b"".join(d.to_bytes(4, "big") for d in dws[:KEY_DW]), "big")
        return key, dws[KEY_DW] << 32 | dws[KEY_DW + 1], s.go[slot]

    # Firmware port

    def fw_read(self, addr: int) -> int:
        if addr & FW_KEY:
            return 0  # no key or IFV is ever readable
        if addr == FW_INFO:
            return (
                0x02 << 24
                | self.cap_dw << 16
                | self.num_link << 12
                | self.max_blocks << 8  # the largest count; each block has its own
                | self.num_streams
            )
        if addr == FW_CMD:
            return self.cmd_status
        if FW_STREAM <= addr < FW_STREAM + 2 * self.num_all:
            j, reg = divmod(addr - FW_STREAM, 2)
            s = self.streams[j]
            if reg == 0:
                return (
                    (s.ctrl >> CTRL_SID_SHIFT) << 24
                    | s.relock << 5
                    | s.enable << 4
                    | (STATE_SECURE if s.secure else 0)
                )
            go = sum(1 << i for i in range(NUM_SLOTS) if s.go[i])
            loaded = sum(1 << i for i in range(NUM_SLOTS) if s.loaded(i))
            return loaded << 16 | go
        if FW_CFG <= addr < FW_CFG + MAX_IDX:
            return self.cfg_read(addr - FW_CFG)
        return 0

    def fw_write(self, addr: int, value: int) -> None:
        if addr & FW_KEY:
            stream, slot, dw = addr >> 8 & 0x7, addr >> 4 & 0xF, addr & 0xF
            if stream < self.num_all and slot < NUM_SLOTS and dw < SLOT_DW:
                s = self.streams[stream]
                if not s.go[slot]:  # an armed slot is not overwritten
                    s.keys[slot][dw] = value
                    s.written[slot].add(dw)
        elif addr == FW_CMD:
            self._command(value)
        self.settle()

    def _command(self, word: int) -> None:
        op, j, kss = word >> 16 & 0xF, word >> 8 & 0xFF, word & 0xFF
        slot = slot_of(kss & 1, kss >> 1 & 1, kss >> 4 & 3)
        if op not in (OP_GO, OP_STOP, OP_WIPE):
            self.cmd_status = STS_BAD_OP
        elif j >= self.num_all:
            self.cmd_status = STS_BAD_STREAM
        elif op != OP_WIPE and kss >> 4 > CPL:
            self.cmd_status = STS_BAD_SUB
        elif op == OP_GO and not self.streams[j].loaded(slot):
            self.cmd_status = STS_NOT_LOADED
        else:
            self.cmd_status = STS_OK
            s = self.streams[j]
            if op == OP_GO:
                s.go[slot] = True
            elif op == OP_STOP:
                s.wipe_slot(slot)  # §6.33.3: invalidated, unreadable; no Insecure by itself
            else:
                self.leave_secure(j, failure=True, send_fail=True)
                s.wipe()
                s.relock = s.enable


#############
# The bench #
#############


class Bench:
    """The block, driven one access per cycle, and the model, stepped together."""

    def __init__(self, dut: SimHandleBase, seed: int) -> None:
        self.dut = dut
        self.clk = dut.clk_i
        self.rng = random.Random(seed)
        self.ns = int(os.environ.get("IDE_NUM_STREAMS", "2"))
        self.nab = int(os.environ.get("IDE_NUM_ADDR_BLOCKS", "1"))
        self.next_cap = int(os.environ.get("IDE_NEXT_CAP_OFFSET", "0"))
        self.pcrc = os.environ.get("IDE_PCRC_SUPPORTED", "0") == "1"
        self.nl = int(os.environ.get("IDE_NUM_LINK_TCS", "0"))
        self.nall = self.ns + self.nl  # stream indices: Selective, then Link
        self.phe = os.environ.get("IDE_PHE_SUPPORTED", "0") == "1"
        self.cfg = os.environ.get("IDE_CFG_IDE_SUPPORTED", "0") == "1"
        self.agg = os.environ.get("IDE_AGG_SUPPORTED", "0") == "1"
        self.sab = int(os.environ.get("IDE_STREAM_ADDR_BLOCKS", "0"))
        self.model = IdeModel(
            self.ns,
            self.nab,
            self.next_cap,
            self.pcrc,
            self.nl,
            phe=self.phe,
            cfg=self.cfg,
            agg=self.agg,
            stream_addr_blocks=self.sab,
        )
        self.counts = self.model.counts  # Address Association blocks of each Selective stream
        self.fail_tx = [0] * self.nall
        self.cycles = 0
        for name in (
            "reg_wr_i",
            "reg_rd_i",
            "reg_idx_i",
            "reg_wdata_i",
            "reg_be_i",
            "fw_wr_i",
            "fw_rd_i",
            "fw_addr_i",
            "fw_wdata_i",
            "check_failed_i",
            "fail_msg_rx_i",
            "tlp_key_rd_i",
            "tlp_key_stream_i",
            "tlp_key_slot_i",
        ):
            getattr(dut, name).value = 0

    async def start(self) -> None:
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        await self.reset()

    async def reset(self) -> None:
        self.dut.rst_ni.value = 0
        await ClockCycles(self.clk, 3)
        await FallingEdge(self.clk)
        self.dut.rst_ni.value = 1
        self.model.reset()
        await self.cycle()

    async def cycle(self) -> None:
        """One clock; then the outputs must agree with the model."""
        await FallingEdge(self.clk)
        self.cycles += 1
        d, m = self.dut, self.model
        tx = int(d.fail_msg_tx_o.value)
        for j in range(self.nall):
            self.fail_tx[j] += tx >> j & 1
        assert self.fail_tx == m.fail_tx, f"Fail Message requests {self.fail_tx}, model {m.fail_tx}"
        sid = int(d.stream_id_o.value)
        tc = int(d.stream_tc_o.value)
        go = int(d.stream_slot_go_o.value)
        for j, s in enumerate(m.streams):
            got = (
                sid >> 8 * j & 0xFF,
                int(d.stream_enable_o.value) >> j & 1,
                int(d.stream_secure_o.value) >> j & 1,
                tc >> 3 * j & 7,
                int(d.stream_default_o.value) >> j & 1,
                int(d.stream_tee_limited_o.value) >> j & 1,
                int(d.stream_pcrc_o.value) >> j & 1,
                int(d.stream_phe_o.value) >> 4 * j & 0xF,
                int(d.stream_link_o.value) >> j & 1,
                int(d.stream_rid_base_o.value) >> 16 * j & 0xFFFF,
                int(d.stream_rid_limit_o.value) >> 16 * j & 0xFFFF,
                go >> 12 * j & 0xFFF,
            )
            want = (
                s.ctrl >> CTRL_SID_SHIFT,
                int(s.enable),
                int(s.secure),
                s.ctrl >> CTRL_TC_SHIFT & 7,
                int(bool(s.ctrl & CTRL_DEFAULT)),
                int(bool(s.ctrl & CTRL_TEE_LIMITED)),
                int(bool(s.ctrl & CTRL_PCRC)),
                (s.ctrl & CTRL_PHE) >> CTRL_PHE_SHIFT,
                int(s.link),
                s.rid2 >> 8 & 0xFFFF,
                s.rid1 >> 8 & 0xFFFF,
                sum(1 << i for i in range(NUM_SLOTS) if s.go[i]),
            )
            assert got == want, (
                f"stream {j} (id, en, secure, tc, dflt, tee, pcrc, phe, link, rid base, rid limit, "
                f"go): "
                f"{got} != {want}"
            )
        addr = int(d.stream_addr_o.value)
        assert addr == m.addr_out(), f"stream_addr_o {addr:#x}, model {m.addr_out():#x}"

    async def idle(self, n: int = 1) -> None:
        for _ in range(n):
            await self.cycle()

    # Config port

    async def cfg_write(self, idx: int, value: int, be: int = 0xF) -> None:
        self.model.cfg_write(idx, value, be)
        d = self.dut
        d.reg_wr_i.value, d.reg_idx_i.value, d.reg_wdata_i.value, d.reg_be_i.value = (
            1,
            idx,
            value,
            be,
        )
        await self.cycle()
        d.reg_wr_i.value = 0
        assert not int(d.reg_rvalid_o.value), "reg_rvalid_o without a read"

    async def cfg_read(self, idx: int) -> int:
        expected = self.model.cfg_read(idx)
        d = self.dut
        d.reg_rd_i.value, d.reg_idx_i.value = 1, idx
        await self.cycle()
        d.reg_rd_i.value = 0
        assert int(d.reg_rvalid_o.value), "reg_rvalid_o not set one cycle after the read"
        value = int(d.reg_rdata_o.value)
        assert value == expected, f"cfg {idx}: read {value:#010x}, model {expected:#010x}"
        return value

    # Firmware port

    async def fw_write(self, addr: int, value: int) -> None:
        self.model.fw_write(addr, value)
        d = self.dut
        d.fw_wr_i.value, d.fw_addr_i.value, d.fw_wdata_i.value = 1, addr, value
        await self.cycle()
        d.fw_wr_i.value = 0
        assert not int(d.fw_rvalid_o.value), "fw_rvalid_o without a read"

    async def fw_read(self, addr: int) -> int:
        expected = self.model.fw_read(addr)
        d = self.dut
        d.fw_rd_i.value, d.fw_addr_i.value = 1, addr
        await self.cycle()
        d.fw_rd_i.value = 0
        assert int(d.fw_rvalid_o.value), "fw_rvalid_o not set one cycle after the read"
        value = int(d.fw_rdata_o.value)
        assert value == expected, f"fw {addr:#05x}: read {value:#010x}, model {expected:#010x}"
        return value

    async def cmd(self, word: int) -> int:
        """Issue a firmware command; return its status."""
        await self.fw_write(FW_CMD, word)
        return await self.fw_read(FW_CMD)

    # TLP path

    async def check_failed(self, j: int) -> None:
        self.model.check_failed(j)
        self.dut.check_failed_i.value = 1 << j
        await self.cycle()
        self.dut.check_failed_i.value = 0

    async def fail_msg_rx(self, j: int) -> None:
        self.model.fail_msg_rx(j)
        self.dut.fail_msg_rx_i.value = 1 << j
        await self.cycle()
        self.dut.fail_msg_rx_i.value = 0

    async def tlp_read(self, stream: int, slot: int) -> tuple[int, int, bool]:
        expected = self.model.tlp_read(stream, slot)
        d = self.dut
        d.tlp_key_rd_i.value, d.tlp_key_stream_i.value, d.tlp_key_slot_i.value = 1, stream, slot
        await self.cycle()
        d.tlp_key_rd_i.value = 0
        assert int(d.tlp_key_rvalid_o.value), "tlp_key_rvalid_o not set after the read"
        got = (int(d.tlp_key_o.value), int(d.tlp_ifv_o.value), bool(int(d.tlp_key_go_o.value)))
        assert got == expected, f"slot {stream}/{slot}: {got} != model {expected}"
        return got

    # Setup sequences

    def sel(self, j: int, off: int) -> int:
        """Register index of offset off in stream j's Selective IDE Stream block; for a Link
        stream (j >= ns), of its Control (SEL_CTRL) or Status (SEL_STATUS) register."""
        if j >= self.ns:
            return LINK0 + LINK_BLOCK_DW * (j - self.ns) + {SEL_CTRL: 0, SEL_STATUS: 1}[off]
        return self.model.sel_base(j) + off

    def random_slot_data(self) -> list[int]:
        """Key and IFV DWs with no zero DW (so a leak can never hide as a 0)."""
        return [self.rng.randrange(1 << 28, 1 << 32) for _ in range(SLOT_DW)]

    async def program_slot(self, j: int, slot: int, data: list[int] | None = None) -> list[int]:
        """KEY_PROG as the firmware does it: 8 key DW then 2 IFV DW."""
        data = self.random_slot_data() if data is None else data
        for dw, value in enumerate(data):
            await self.fw_write(key_addr(j, slot, dw), value)
        return data

    async def arm(self, j: int, key_set: int) -> None:
        """KEY_PROG then K_SET_GO for Rx, then Tx, of every sub-stream of a key set."""
        for slot in key_set_slots(key_set):
            await self.program_slot(j, slot)
        for rxtx in (RX, TX):
            for sub in (PR, NPR, CPL):
                assert await self.cmd(command(OP_GO, j, key_set, rxtx, sub)) == STS_OK

    async def setup_stream(self, j: int, sid: int, *, enable: bool = False) -> None:
        """Linux's order: RID association with V, then Control with the Stream ID (a Link
        stream: Control only, with TC j - ns)."""
        if j >= self.ns:
            tc = (j - self.ns) << CTRL_TC_SHIFT
            await self.cfg_write(self.sel(j, SEL_CTRL), sid << CTRL_SID_SHIFT | tc | int(enable))
            return
        await self.cfg_write(self.sel(j, SEL_RID1), 0xFFFF << 8)  # RID Limit
        await self.cfg_write(self.sel(j, SEL_RID2), 0x0000 << 8 | RID2_V)  # RID Base, V
        await self.cfg_write(self.sel(j, SEL_CTRL), sid << CTRL_SID_SHIFT | int(enable))

    async def set_enable(self, j: int, on: bool) -> None:
        ctrl = self.model.streams[j].ctrl
        await self.cfg_write(self.sel(j, SEL_CTRL), (ctrl & ~CTRL_EN) | int(on))

    async def state(self, j: int) -> int:
        return await self.cfg_read(self.sel(j, SEL_STATUS)) & 0xF

    def all_cfg_idx(self) -> Iterator[int]:
        return iter(range(MAX_IDX))


async def new_bench(dut: SimHandleBase, name: str) -> Bench:
    b = Bench(dut, seed_for(name))
    await b.start()
    return b


###########
# Tests   #
###########


@cocotb.test()
async def test_reset_values(dut: SimHandleBase) -> None:
    """Every register reads its reset value; the capability says what the block supports."""
    b = await new_bench(dut, "test_reset_values")
    assert await b.cfg_read(HEADER) == b.next_cap << 20 | 0x0001_0030
    # Selective IDE, IDE_KM responder, AES-GCM-256 (00000b), TEE-Limited; no Flow-Through.
    pcrc = CAP_PCRC if b.pcrc else 0  # PCRC Supported exactly when built with it
    phe = CAP_PHE if b.phe else 0  # PHE likewise
    phe |= CAP_CFG if b.cfg else 0  # and Selective IDE for Configuration Requests
    phe |= CAP_AGG if b.agg else 0  # and Aggregation
    link = CAP_LINK | (b.nl - 1) << CAP_LINK_TCS_SHIFT if b.nl else 0  # Link IDE likewise
    assert await b.cfg_read(IDE_CAP) == 0x0100_0042 | (b.ns - 1) << 16 | pcrc | phe | link
    assert await b.cfg_read(IDE_CTRL) == 0
    for i in range(b.nl):
        assert await b.cfg_read(LINK0 + LINK_BLOCK_DW * i) == 0, f"Link block {i} Control"
        assert await b.cfg_read(LINK0 + LINK_BLOCK_DW * i + 1) == 0, f"Link block {i} Status"
    for j in range(b.ns):
        assert await b.cfg_read(b.sel(j, SEL_CAP)) == b.counts[j]
        for off in range(SEL_CTRL, SEL_FIXED_DW + ADDR_BLOCK_DW * b.counts[j]):
            assert await b.cfg_read(b.sel(j, off)) == 0, f"stream {j} offset {off}"
    for idx in range(cap_dw(b.counts, b.nl), MAX_IDX):
        assert await b.cfg_read(idx) == 0
    info = await b.fw_read(FW_INFO)
    size = cap_dw(b.counts, b.nl)
    # INFO [11:8]: the largest Address Association block count.
    assert info == 0x0200_0000 | size << 16 | b.nl << 12 | max(b.counts) << 8 | b.ns
    assert int(dut.stream_addr_o.value) == 0
    assert await b.fw_read(FW_CMD) == STS_OK
    for j in range(b.nall):
        assert await b.fw_read(FW_STREAM + 2 * j) == 0
        assert await b.fw_read(FW_STREAM + 2 * j + 1) == 0
    for slot in range(NUM_SLOTS):
        assert await b.tlp_read(0, slot) == (0, 0, False)


@cocotb.test()
async def test_writable_bits(dut: SimHandleBase) -> None:
    """All-ones and zero writes: only the RW bits stick, reserved and RO bits read 0."""
    b = await new_bench(dut, "test_writable_bits")
    for idx in (HEADER, IDE_CAP, IDE_CTRL):
        before = await b.cfg_read(idx)
        await b.cfg_write(idx, 0xFFFF_FFFF)
        assert await b.cfg_read(idx) == before, f"RO register {idx} changed"
    for j in range(b.ns):
        await b.cfg_write(b.sel(j, SEL_CAP), 0)
        assert await b.cfg_read(b.sel(j, SEL_CAP)) == b.counts[j]
        # Control without Enable first, so nothing is sampled yet.
        await b.cfg_write(b.sel(j, SEL_CTRL), 0xFFFF_FFFE)
        want = 0xFFFF_C000 | (CTRL_PCRC if b.pcrc else 0) | (CTRL_AGG if b.agg else 0)
        assert await b.cfg_read(b.sel(j, SEL_CTRL)) == want
        await b.cfg_write(b.sel(j, SEL_CTRL), 0)
        assert await b.cfg_read(b.sel(j, SEL_CTRL)) == 0
        # The PHE Mode: 0001b..0100b stick where PHE is built; 1111b (above) is reserved.
        for mode in (1, 4, 5):
            await b.cfg_write(b.sel(j, SEL_CTRL), mode << CTRL_PHE_SHIFT)
            want = mode << CTRL_PHE_SHIFT if b.phe and mode <= 4 else 0
            assert await b.cfg_read(b.sel(j, SEL_CTRL)) == want, f"PHE mode {mode}"
        await b.cfg_write(b.sel(j, SEL_CTRL), 0)
        await b.cfg_write(b.sel(j, SEL_STATUS), 0x7FFF_FFFF)
        assert await b.cfg_read(b.sel(j, SEL_STATUS)) == 0
        for off, rw in [(SEL_RID1, RID1_RW), (SEL_RID2, RID2_RW)] + [
            (SEL_ADDR + ADDR_BLOCK_DW * k + r, ADDR1_RW if r == 0 else 0xFFFF_FFFF)
            for k in range(b.counts[j])
            for r in range(ADDR_BLOCK_DW)
        ]:
            await b.cfg_write(b.sel(j, off), 0xFFFF_FFFF)
            assert await b.cfg_read(b.sel(j, off)) == rw, f"stream {j} offset {off}"
            await b.cfg_write(b.sel(j, off), 0)
            assert await b.cfg_read(b.sel(j, off)) == 0
    for j in range(b.ns, b.nall):
        # Link Control: Enable, PCRC (if built), Algorithm, TC, Stream ID; no Default Stream or
        # TEE-Limited (reserved, §7.9.26.4.1).  Status: RO but the RW1C bit.
        await b.cfg_write(b.sel(j, SEL_CTRL), 0xFFFF_FFFE)
        want = 0xFF3F_C000 | (CTRL_PCRC if b.pcrc else 0) | (CTRL_AGG if b.agg else 0)
        assert await b.cfg_read(b.sel(j, SEL_CTRL)) == want
        await b.cfg_write(b.sel(j, SEL_CTRL), 0)
        await b.cfg_write(b.sel(j, SEL_STATUS), 0x7FFF_FFFF)
        assert await b.cfg_read(b.sel(j, SEL_STATUS)) == 0
    # Writes past the capability go nowhere.
    for idx in range(cap_dw(b.counts, b.nl), MAX_IDX):
        await b.cfg_write(idx, 0xFFFF_FFFF)
    for idx in b.all_cfg_idx():
        await b.cfg_read(idx)


@cocotb.test()
async def test_byte_enables(dut: SimHandleBase) -> None:
    """Sub-DW writes change only the enabled bytes."""
    b = await new_bench(dut, "test_byte_enables")
    ctrl, rid1, addr2 = b.sel(0, SEL_CTRL), b.sel(0, SEL_RID1), b.sel(0, SEL_ADDR + 1)
    await b.cfg_write(addr2, 0x1122_3344)
    await b.cfg_write(addr2, 0xAABB_CCDD, be=0b0101)
    assert await b.cfg_read(addr2) == 0x11BB_33DD
    await b.cfg_write(rid1, 0x00AB_CD00, be=0b0100)
    assert await b.cfg_read(rid1) == 0x00AB_0000
    # Stream ID alone (byte 3) does not touch Enable (byte 0).
    await b.cfg_write(ctrl, 0x7700_0001, be=0b1000)
    assert await b.cfg_read(ctrl) == 0x7700_0000
    await b.cfg_write(ctrl, 0xFFFF_FFFF, be=0b0100)  # Algorithm[17:16], TC, Default, TEE
    assert await b.cfg_read(ctrl) == 0x77FF_0000
    await b.cfg_write(ctrl, 0, be=0)
    assert await b.cfg_read(ctrl) == 0x77FF_0000
    for _ in range(200):
        idx = b.rng.randrange(MAX_IDX)
        if b.model.locate(idx) is not None and b.model.locate(idx)[1] == SEL_CTRL:
            value = b.rng.getrandbits(32) & ~CTRL_EN  # this test leaves streams disabled
        else:
            value = b.rng.getrandbits(32)
        await b.cfg_write(idx, value, be=b.rng.randrange(16))
        await b.cfg_read(idx)


@cocotb.test()
async def test_sampled_while_enabled(dut: SimHandleBase) -> None:
    """Algorithm, TEE-Limited, RID Limit/Base and V are read-only while Enable is Set;
    TC, Default Stream, Stream ID and the address association stay writable."""
    b = await new_bench(dut, "test_sampled_while_enabled")
    ctrl, rid1, rid2 = b.sel(1, SEL_CTRL), b.sel(1, SEL_RID1), b.sel(1, SEL_RID2)
    await b.cfg_write(rid1, 0x0012_3400)
    await b.cfg_write(rid2, 0x0000_1001)
    # The write that sets Enable still writes the sampled fields.
    await b.cfg_write(ctrl, 0x05 << 24 | CTRL_TEE_LIMITED | 3 << CTRL_ALG_SHIFT | CTRL_EN)
    assert await b.cfg_read(ctrl) == 0x0580_C001
    await b.cfg_write(ctrl, 0x09 << 24 | CTRL_DEFAULT | 5 << CTRL_TC_SHIFT | CTRL_EN)
    assert await b.cfg_read(ctrl) == 0x09E8_C001, "Algorithm/TEE-Limited changed while enabled"
    await b.cfg_write(rid1, 0x00FF_FF00)
    await b.cfg_write(rid2, 0x00AA_AA00)
    assert await b.cfg_read(rid1) == 0x0012_3400
    assert await b.cfg_read(rid2) == 0x0000_1001
    addr1 = b.sel(1, SEL_ADDR)
    await b.cfg_write(addr1, 0xFFF0_0001)
    assert await b.cfg_read(addr1) == 0xFFF0_0001
    # Clearing Enable: the same write does not yet change the sampled fields ...
    await b.cfg_write(ctrl, 0x09 << 24)
    assert await b.cfg_read(ctrl) == 0x0980_C000
    # ... the next one does.
    await b.cfg_write(ctrl, 0x09 << 24)
    assert await b.cfg_read(ctrl) == 0x0900_0000
    await b.cfg_write(rid2, 0x0000_2000)
    assert await b.cfg_read(rid2) == 0x0000_2000
    assert await b.state(1) == 0


@cocotb.test()
async def test_stream_id_255_parking(dut: SimHandleBase) -> None:
    """Idle streams can be parked at Stream ID 255 (Linux's reserved ID) and read back."""
    b = await new_bench(dut, "test_stream_id_255_parking")
    for j in range(b.ns):
        await b.cfg_write(b.sel(j, SEL_CTRL), 0xFF00_0000)
        assert await b.cfg_read(b.sel(j, SEL_CTRL)) == 0xFF00_0000
        assert await b.fw_read(FW_STREAM + 2 * j) == 0xFF00_0000
        assert await b.fw_read(FW_CFG + b.sel(j, SEL_CTRL)) == 0xFF00_0000
    assert int(dut.stream_id_o.value) == (1 << 8 * b.ns) - 1
    # A parked stream still works once given a real ID.
    await b.setup_stream(0, 7)
    await b.arm(0, 0)
    await b.set_enable(0, True)
    assert await b.state(0) == STATE_SECURE
    assert await b.cfg_read(b.sel(1, SEL_CTRL)) == 0xFF00_0000


@cocotb.test()
async def test_fail_message_rw1c(dut: SimHandleBase) -> None:
    """Received IDE Fail Message: set by the TLP path, cleared only by writing 1 to bit 31."""
    b = await new_bench(dut, "test_fail_message_rw1c")
    sts = b.sel(0, SEL_STATUS)
    await b.fail_msg_rx(0)
    assert await b.cfg_read(sts) == STS_FAIL_RX
    assert await b.cfg_read(b.sel(1, SEL_STATUS)) == 0
    await b.cfg_write(sts, 0)
    await b.cfg_write(sts, 0x7FFF_FFFF)
    await b.cfg_write(sts, 0xFFFF_FFFF, be=0b0111)
    assert await b.cfg_read(sts) == STS_FAIL_RX
    await b.cfg_write(sts, 0x8000_0000, be=0b1000)
    assert await b.cfg_read(sts) == 0
    # On a Secure stream the message also makes it Insecure, wipes its keys and sends nothing.
    await b.setup_stream(0, 3)
    await b.arm(0, 1)
    await b.set_enable(0, True)
    assert await b.state(0) == STATE_SECURE
    await b.fail_msg_rx(0)
    assert await b.cfg_read(sts) == STS_FAIL_RX
    assert b.fail_tx == [0] * b.nall
    for slot in range(NUM_SLOTS):
        assert await b.tlp_read(0, slot) == (0, 0, False)
    # Set wins over a clear in the same cycle.
    b.dut.fail_msg_rx_i.value = 1
    await b.cfg_write(sts, STS_FAIL_RX)
    b.dut.fail_msg_rx_i.value = 0
    b.model.fail_msg_rx(0)
    assert await b.cfg_read(sts) == STS_FAIL_RX


@cocotb.test()
async def test_keys_never_readable(dut: SimHandleBase) -> None:
    """Every key slot written through the firmware port; the TLP port reads them back, while
    no DW of any key or IFV appears at any address of the firmware or config port."""
    b = await new_bench(dut, "test_keys_never_readable")
    secret: set[int] = set()
    for j in range(b.ns):
        for slot in range(NUM_SLOTS):
            secret.update(await b.program_slot(j, slot))
    # Make stream 0 Secure on key set 1 so the sweep sees live state too.
    await b.setup_stream(0, 0x42)
    for rxtx in (RX, TX):
        for sub in (PR, NPR, CPL):
            assert await b.cmd(command(OP_GO, 0, 1, rxtx, sub)) == STS_OK
    await b.set_enable(0, True)
    assert await b.state(0) == STATE_SECURE
    # Precondition: no legitimate register value happens to equal a key DW.
    legit = {b.model.fw_read(a) for a in range(FW_ADDRS)} | {
        b.model.cfg_read(i) for i in range(MAX_IDX)
    }
    assert not legit & secret, "a random key DW collides with a register value; change the seed"
    for j in range(b.ns):
        for slot in range(NUM_SLOTS):
            key, ifv, _ = await b.tlp_read(j, slot)
            assert key and ifv, f"slot {j}/{slot} not stored"
    leaks = []
    for addr in range(FW_ADDRS):
        value = await b.fw_read(addr)
        if value in secret:
            leaks.append(f"fw {addr:#05x}")
        if addr & FW_KEY:
            assert value == 0
    for idx in range(MAX_IDX):
        if await b.cfg_read(idx) in secret:
            leaks.append(f"cfg {idx}")
    assert not leaks, f"key material readable at {leaks}"


@cocotb.test()
async def test_key_byte_order(dut: SimHandleBase) -> None:
    """Slot DW 0 is the key's first 4 bytes (bits 255:224); the IFV is {DW 8, DW 9}."""
    b = await new_bench(dut, "test_key_byte_order")
    key = bytes(range(0x20, 0x40))
    data = [int.from_bytes(key[4 * i : 4 * i + 4], "big") for i in range(KEY_DW)] + [0, 1]
    slot = slot_of(1, TX, CPL)
    await b.program_slot(b.ns - 1, slot, data)
    got_key, got_ifv, _ = await b.tlp_read(b.ns - 1, slot)
    assert got_key.to_bytes(32, "big") == key
    assert got_ifv == 1
    # Out-of-range stream or slot: zeros.
    assert await b.tlp_read(b.ns, slot) == (0, 0, False)
    assert await b.tlp_read(b.ns - 1, 12) == (0, 0, False)


@cocotb.test()
async def test_commands(dut: SimHandleBase) -> None:
    """K_SET_GO / K_SET_STOP / wipe and their status codes."""
    b = await new_bench(dut, "test_commands")
    assert await b.cmd(command(0, 0)) == STS_BAD_OP
    assert await b.cmd(command(7, 0)) == STS_BAD_OP
    assert await b.cmd(command(OP_GO, b.nall)) == STS_BAD_STREAM
    assert await b.cmd(command(OP_STOP, 0xFF)) == STS_BAD_STREAM
    assert await b.cmd(command(OP_GO, 0, sub=3)) == STS_BAD_SUB
    assert await b.cmd(command(OP_STOP, 0, sub=15)) == STS_BAD_SUB
    assert await b.cmd(command(OP_GO, 0, 0, RX, PR)) == STS_NOT_LOADED
    # Nine of ten DWs is not loaded.
    slot = slot_of(0, RX, PR)
    for dw in range(SLOT_DW - 1):
        await b.fw_write(key_addr(0, slot, dw), 0x1234_5678 + dw)
    assert await b.cmd(command(OP_GO, 0, 0, RX, PR)) == STS_NOT_LOADED
    await b.fw_write(key_addr(0, slot, SLOT_DW - 1), 1)
    assert await b.fw_read(FW_STREAM + 1) == 1 << (16 + slot), "loaded, not armed"
    assert await b.cmd(command(OP_GO, 0, 0, RX, PR)) == STS_OK
    assert await b.fw_read(FW_STREAM + 1) == 1 << (16 + slot) | 1 << slot
    # An armed slot is not overwritten.
    await b.fw_write(key_addr(0, slot, 0), 0xDEAD_BEEF)
    key, _, go = await b.tlp_read(0, slot)
    assert go and key >> 224 == 0x1234_5678
    # Writes to DW 10..15 and slots 12..15 go nowhere.
    await b.fw_write(key_addr(0, slot_of(1, RX, PR), 12), 5)
    await b.fw_write(key_addr(0, 13, 0), 5)
    assert await b.fw_read(FW_STREAM + 1) == 1 << (16 + slot) | 1 << slot
    # K_SET_STOP zeroes and disarms the slot; reserved KeySubStream bits 3:2 are ignored.
    assert await b.cmd(command(OP_STOP, 0, 0, RX, PR) | 0b1100) == STS_OK
    assert await b.tlp_read(0, slot) == (0, 0, False)
    assert await b.fw_read(FW_STREAM + 1) == 0
    # Wipe of an Insecure stream: keys gone, no IDE Fail Message.
    await b.program_slot(1, 5)
    assert await b.cmd(command(OP_WIPE, 1, sub=9)) == STS_OK
    assert await b.tlp_read(1, 5) == (0, 0, False)
    assert b.fail_tx == [0] * b.nall


@cocotb.test()
async def test_insecure_to_secure(dut: SimHandleBase) -> None:
    """Secure needs Enable, V, AES-GCM-256 and K_SET_GO on all six slots of one key set."""
    b = await new_bench(dut, "test_insecure_to_secure")
    # Keys first, Enable last (the recommended order).
    await b.setup_stream(0, 1)
    for slot in key_set_slots(0) + key_set_slots(1):
        await b.program_slot(0, slot)
    for rxtx, sub in [(RX, PR), (RX, NPR), (RX, CPL), (TX, PR), (TX, NPR)]:
        assert await b.cmd(command(OP_GO, 0, 0, rxtx, sub)) == STS_OK
    # Tx CPL armed on the other key set only: no complete key set.
    assert await b.cmd(command(OP_GO, 0, 1, TX, CPL)) == STS_OK
    await b.set_enable(0, True)
    assert await b.state(0) == 0
    assert await b.cmd(command(OP_GO, 0, 0, TX, CPL)) == STS_OK
    assert await b.state(0) == STATE_SECURE
    assert await b.fw_read(FW_STREAM) == 1 << 24 | 1 << 4 | STATE_SECURE
    # K_SET_STOP of an armed slot does not by itself make the stream Insecure (§6.33.3).
    assert await b.cmd(command(OP_STOP, 0, 0, RX, PR)) == STS_OK
    assert await b.state(0) == STATE_SECURE
    # Enable cleared: Insecure at once, every key of the stream zeroed, no Fail Message.
    await b.set_enable(0, False)
    assert await b.state(0) == 0
    for slot in range(NUM_SLOTS):
        assert await b.tlp_read(0, slot) == (0, 0, False)
    assert b.fail_tx == [0] * b.nall
    # Enable before the keys is permitted: Secure when the last K_SET_GO arrives.
    await b.set_enable(0, True)
    await b.arm(0, 1)
    assert await b.state(0) == STATE_SECURE
    # Key refresh on the other set keeps it Secure.
    await b.arm(0, 0)
    assert await b.state(0) == STATE_SECURE
    assert await b.fw_read(FW_STREAM + 1) == 0xFFF << 16 | 0xFFF
    # Without V, or with a reserved algorithm, it stays Insecure.
    await b.set_enable(0, False)
    await b.cfg_write(b.sel(0, SEL_RID2), 0)
    await b.arm(0, 0)
    await b.set_enable(0, True)
    assert await b.state(0) == 0
    await b.set_enable(0, False)
    await b.cfg_write(b.sel(0, SEL_RID2), RID2_V)
    await b.cfg_write(b.sel(0, SEL_CTRL), 1 << CTRL_ALG_SHIFT | CTRL_EN)
    assert await b.state(0) == 0
    await b.cfg_write(b.sel(0, SEL_CTRL), 0)
    await b.cfg_write(b.sel(0, SEL_CTRL), CTRL_EN)
    assert await b.state(0) == STATE_SECURE
    # The other streams never moved.
    for j in range(1, b.ns):
        assert await b.state(j) == 0


@cocotb.test()
async def test_check_failed(dut: SimHandleBase) -> None:
    """IDE Check Failed: Insecure, keys wiped, one Fail Message, and no way back to Secure
    until Enable is written 0 and Set again (§6.33.8)."""
    b = await new_bench(dut, "test_check_failed")
    j = b.ns - 1
    await b.setup_stream(j, 9)
    await b.setup_stream(0, 8)
    await b.arm(j, 0)
    await b.arm(0, 0)
    await b.set_enable(j, True)
    await b.set_enable(0, True)
    assert await b.state(j) == STATE_SECURE
    await b.check_failed(j)
    assert b.fail_tx[j] == 1
    assert await b.state(j) == 0
    assert await b.fw_read(FW_STREAM + 2 * j) == 9 << 24 | 1 << 5 | 1 << 4
    for slot in range(NUM_SLOTS):
        assert await b.tlp_read(j, slot) == (0, 0, False)
    assert await b.state(0) == STATE_SECURE, "another stream was affected"
    # New keys with Enable still Set: not Secure.
    await b.arm(j, 1)
    await b.cfg_write(b.sel(j, SEL_CTRL), 9 << 24 | CTRL_EN)
    assert await b.state(j) == 0
    # Enable written 0, then Set: Secure with the armed keys.
    await b.set_enable(j, False)
    assert await b.fw_read(FW_STREAM + 2 * j) == 9 << 24
    await b.set_enable(j, True)
    assert await b.state(j) == STATE_SECURE
    # A failure on an Insecure stream does nothing.
    await b.set_enable(j, False)
    await b.program_slot(j, 0)
    await b.check_failed(j)
    assert b.fail_tx[j] == 1
    assert (await b.tlp_read(j, 0))[0] != 0
    # A firmware wipe of a Secure stream is a failure too, with a Fail Message.
    assert await b.cmd(command(OP_WIPE, 0)) == STS_OK
    assert b.fail_tx[0] == 1
    assert await b.state(0) == 0


@cocotb.test()
async def test_reset_wipes(dut: SimHandleBase) -> None:
    """Reset: every stream Insecure, every key and IFV zero, registers at their defaults."""
    b = await new_bench(dut, "test_reset_wipes")
    for j in range(b.nall):
        await b.setup_stream(j, j + 1)
        await b.arm(j, j & 1)
        await b.set_enable(j, True)
        assert await b.state(j) == STATE_SECURE
    await b.reset()
    for j in range(b.nall):
        for slot in range(NUM_SLOTS):
            assert await b.tlp_read(j, slot) == (0, 0, False)
    for idx in b.all_cfg_idx():
        await b.cfg_read(idx)
    for addr in [*range(FW_CFG), FW_KEY]:
        await b.fw_read(addr)


@cocotb.test()
async def test_link_streams(dut: SimHandleBase) -> None:
    """Link IDE Streams (§6.33.1, §7.9.26.4): keyed and made Secure like a Selective stream
    but with no RID association; failures and Enable act on the Link stream alone.  A build
    without Link IDE has no Link blocks: then nothing here applies (logged)."""
    b = await new_bench(dut, "test_link_streams")
    if not b.nl:
        LOG.info("test_link_streams: built with NUM_LINK_TCS = 0, no Link IDE Stream blocks")
        assert await b.cfg_read(IDE_CAP) & CAP_LINK == 0
        return
    sel, link = 0, b.ns  # the first Selective and the first Link stream
    await b.setup_stream(sel, 0x21, enable=True)
    await b.arm(sel, 0)
    await b.setup_stream(link, 0x42)
    await b.arm(link, 1)
    assert await b.state(link) == 0, "Secure before Enable"
    # Enable, Algorithm 00000b and one armed key set suffice: there is no V bit to set.
    await b.cfg_write(b.sel(link, SEL_CTRL), 0x42 << CTRL_SID_SHIFT | 3 << CTRL_TC_SHIFT | CTRL_EN)
    assert await b.state(link) == STATE_SECURE
    assert await b.fw_read(FW_STREAM + 2 * link) == 0x42 << 24 | 1 << 4 | STATE_SECURE
    # A reserved algorithm is sampled by the write that sets Enable: never Secure.
    await b.set_enable(link, False)
    await b.arm(link, 0)
    await b.cfg_write(b.sel(link, SEL_CTRL), 0x42 << CTRL_SID_SHIFT | 2 << CTRL_ALG_SHIFT | 1)
    assert await b.state(link) == 0
    await b.cfg_write(b.sel(link, SEL_CTRL), 0x42 << CTRL_SID_SHIFT)  # Enable cleared
    await b.cfg_write(b.sel(link, SEL_CTRL), 0x42 << CTRL_SID_SHIFT)  # now Algorithm 00000b
    await b.arm(link, 0)
    await b.set_enable(link, True)
    assert await b.state(link) == STATE_SECURE
    # IDE Check Failed on the Link stream: Insecure, keys wiped, a Fail Message; the Selective
    # stream is untouched.
    await b.check_failed(link)
    assert b.fail_tx[link] == 1
    assert await b.state(link) == 0
    assert await b.state(sel) == STATE_SECURE
    for slot in range(NUM_SLOTS):
        assert await b.tlp_read(link, slot) == (0, 0, False)
    # A received IDE Fail Message sets the Link Status bit (RW1C).
    await b.set_enable(link, False)
    await b.arm(link, 0)
    await b.set_enable(link, True)
    await b.fail_msg_rx(link)
    assert await b.cfg_read(b.sel(link, SEL_STATUS)) == STS_FAIL_RX
    await b.cfg_write(b.sel(link, SEL_STATUS), STS_FAIL_RX)
    assert await b.cfg_read(b.sel(link, SEL_STATUS)) == 0
    # Commands past the last Link stream are refused.
    assert await b.cmd(command(OP_GO, b.nall)) == STS_BAD_STREAM


def decode_addr_out(value: int, num_streams: int, max_blocks: int) -> list[list[tuple]]:
    """stream_addr_o as [stream][block] -> (Valid, base address, limit address), decoded from
    the port's layout: entry (j, b) in bits [89 (j max_blocks + b) +: 89] = {Valid, Memory
    Base[63:20], Memory Limit[63:20]}; the addresses are [63:20] shifted back into place."""
    out = []
    for j in range(num_streams):
        row = []
        for blk in range(max_blocks):
            e = value >> ADDR_OUT_W * (j * max_blocks + blk) & ((1 << ADDR_OUT_W) - 1)
            row.append((e >> 88, (e >> 44 & (1 << 44) - 1) << 20, (e & (1 << 44) - 1) << 20))
        out.append(row)
    return out


@cocotb.test()
async def test_address_association_out(dut: SimHandleBase) -> None:
    """Every Address Association block of every Selective stream written through the config
    port (§7.9.26.5.5); stream_addr_o carries each as {Valid, Memory Base[63:20], Memory
    Limit[63:20]}, at its stream's own block count (§7.9.26.5.1), and the entries past a
    stream's count stay 0."""
    b = await new_bench(dut, "test_address_association_out")
    mb = max(b.counts)
    assert len(dut.stream_addr_o) == b.ns * mb * ADDR_OUT_W, "stream_addr_o width"
    for j in range(b.ns):
        assert await b.cfg_read(b.sel(j, SEL_CAP)) & 0xF == b.counts[j]
    written: dict[tuple[int, int], tuple[int, int, int]] = {}
    for j in range(b.ns):
        for blk in range(b.counts[j]):
            base = b.rng.getrandbits(44) << 20
            limit = b.rng.getrandbits(44) << 20
            valid = (j + blk) & 1 if (j, blk) != (b.ns - 1, b.counts[-1] - 1) else 1
            a1 = (limit >> 20 & 0xFFF) << 20 | (base >> 20 & 0xFFF) << 8 | valid
            off = SEL_ADDR + ADDR_BLOCK_DW * blk
            await b.cfg_write(b.sel(j, off), a1 | 0x7E)  # reserved [7:1] read 0
            await b.cfg_write(b.sel(j, off + 1), limit >> 32)  # Memory Limit Upper
            await b.cfg_write(b.sel(j, off + 2), base >> 32)  # Memory Base Upper
            assert await b.cfg_read(b.sel(j, off)) == a1
            written[j, blk] = (valid, base, limit)
    assert any(v for v, _, _ in written.values()) and not all(v for v, _, _ in written.values())
    got = decode_addr_out(int(dut.stream_addr_o.value), b.ns, mb)
    for j in range(b.ns):
        for blk in range(mb):
            want = written.get((j, blk), (0, 0, 0))
            assert got[j][blk] == want, f"stream {j} block {blk}: {got[j][blk]} != {want}"
    # The DW after a stream's last block is the next stream's Capability register (RO): a
    # write there reaches no block.
    for j in range(b.ns - 1):
        nxt = b.sel(j, SEL_FIXED_DW + ADDR_BLOCK_DW * b.counts[j])
        assert nxt == b.sel(j + 1, SEL_CAP)
        await b.cfg_write(nxt, 0xFFFF_FFFF)
        assert await b.cfg_read(nxt) == b.counts[j + 1]
    # Enable does not fix them (§7.9.26.5.5 has no such rule): Valid cleared on an enabled
    # stream shows at once.
    await b.setup_stream(0, 0x11, enable=True)
    await b.cfg_write(b.sel(0, SEL_ADDR), 0)
    got = decode_addr_out(int(dut.stream_addr_o.value), b.ns, mb)
    assert got[0][0] == (
        0,
        written[0, 0][1] & ~((1 << 32) - 1),
        written[0, 0][2] & ~((1 << 32) - 1),
    )
    # Reset clears them all.
    await b.reset()
    assert int(dut.stream_addr_o.value) == 0


async def random_step(b: Bench) -> None:
    """One random host, firmware or TLP-path action."""
    rng = b.rng
    j = rng.randrange(b.nall)  # Selective or Link
    sel = rng.randrange(b.ns)  # a Selective stream, for what only those have
    action = rng.choices(
        [
            "ctrl",
            "enable",
            "rid",
            "cfg",
            "cfg_read",
            "status",
            "program",
            "key_dw",
            "go",
            "arm",
            "stop",
            "wipe",
            "bad_cmd",
            "fw_read",
            "check_failed",
            "fail_rx",
            "tlp",
        ],
        weights=[4, 8, 3, 3, 4, 2, 4, 3, 10, 3, 3, 1, 1, 4, 2, 1.5, 4],
    )[0]
    if action == "ctrl":
        alg = 0 if rng.random() < 0.85 else rng.randrange(32)
        value = (
            rng.getrandbits(8) << CTRL_SID_SHIFT
            | rng.getrandbits(4) << CTRL_TC_SHIFT
            | alg << CTRL_ALG_SHIFT
            | rng.getrandbits(1)
        )
        await b.cfg_write(b.sel(j, SEL_CTRL), value, be=rng.choice((0xF, 0xF, 0x1, 0x8, 0x4)))
    elif action == "enable":
        await b.set_enable(j, rng.random() < 0.6)
    elif action == "rid":
        value = rng.getrandbits(32) | (RID2_V if rng.random() < 0.8 else 0)
        await b.cfg_write(b.sel(sel, rng.choice((SEL_RID1, SEL_RID2))), value)
    elif action == "cfg":
        await b.cfg_write(rng.randrange(MAX_IDX), rng.getrandbits(32), be=rng.randrange(16))
    elif action == "cfg_read":
        await b.cfg_read(rng.randrange(MAX_IDX))
    elif action == "status":
        await b.cfg_write(b.sel(j, SEL_STATUS), rng.choice((STS_FAIL_RX, 0, 0xFFFF_FFFF)))
    elif action == "program":
        await b.program_slot(j, rng.randrange(NUM_SLOTS))
    elif action == "key_dw":
        await b.fw_write(
            key_addr(rng.randrange(8), rng.randrange(16), rng.randrange(16)), rng.getrandbits(32)
        )
    elif action == "go":
        await b.cmd(command(OP_GO, j, rng.getrandbits(1), rng.getrandbits(1), rng.randrange(3)))
    elif action == "arm":
        await b.arm(j, rng.getrandbits(1))
    elif action == "stop":
        await b.cmd(command(OP_STOP, j, rng.getrandbits(1), rng.getrandbits(1), rng.randrange(3)))
    elif action == "wipe":
        await b.cmd(command(OP_WIPE, j))
    elif action == "bad_cmd":
        await b.cmd(rng.getrandbits(20))
    elif action == "fw_read":
        addr = rng.choice(
            (
                rng.randrange(FW_ADDRS),
                FW_STREAM + rng.randrange(2 * b.nall),
                FW_CFG + rng.randrange(MAX_IDX),
                key_addr(j, rng.randrange(NUM_SLOTS), rng.randrange(SLOT_DW)),
            )
        )
        await b.fw_read(addr)
    elif action == "check_failed":
        await b.check_failed(j)
    elif action == "fail_rx":
        await b.fail_msg_rx(j)
    elif action == "tlp":
        await b.tlp_read(j, rng.randrange(16))


@cocotb.test()
async def test_random(dut: SimHandleBase) -> None:
    """Random host, firmware and TLP-path actions; the model predicts every read and output."""
    b = await new_bench(dut, "test_random")
    steps = int(os.environ.get("IDE_CAP_RANDOM_STEPS", "1500"))
    secure_cycles = 0
    entries = 0
    prev = [False] * b.nall
    for i in range(steps):
        await random_step(b)
        now = [s.secure for s in b.model.streams]
        entries += sum(n and not p for n, p in zip(now, prev, strict=True))
        secure_cycles += any(now)
        prev = now
        if i % 500 == 499:
            await b.reset()
            prev = [False] * b.nall
    LOG.info(
        "random: %d steps, %d cycles, %d entries to Secure, %d steps with a Secure stream, "
        "%s Fail Messages",
        steps,
        b.cycles,
        entries,
        secure_cycles,
        b.fail_tx,
    )
    assert entries >= 5, "the random mix rarely reaches Secure; it tests too little"


########################
# pytest entry points  #
########################

PARAMETER_SETS = [
    pytest.param({}, id="default"),
    pytest.param(
        {
            "NUM_ADDR_BLOCKS": 2,
            "NEXT_CAP_OFFSET": 0x500,
            "PCRC_SUPPORTED": 1,
            "PHE_SUPPORTED": 1,
            "CFG_IDE_SUPPORTED": 1,
        },
        id="s2-a2-pcrc-phe-cfg",
    ),
    pytest.param(
        {
            "NUM_STREAMS": 4,
            "NUM_LINK_TCS": 2,
            "MAX_CAP_DW": 39,
            "PHE_SUPPORTED": 1,
            "AGG_SUPPORTED": 1,
        },
        id="s4-a1-link2-phe-agg",
    ),
    # The endpoint's configuration: stream 0 with 1 Address Association block (the default
    # count), stream 1 with 2, Link IDE for 2 TCs: 3 + 2 x 2 + 8 + 11 = 26 DW, the whole room.
    pytest.param(
        {
            "STREAM_ADDR_BLOCKS": 0x20,
            "NUM_LINK_TCS": 2,
            "PCRC_SUPPORTED": 1,
            "PHE_SUPPORTED": 1,
            "CFG_IDE_SUPPORTED": 1,
            "AGG_SUPPORTED": 1,
        },
        id="s2-a1a2-link2-all",
    ),
]


@pytest.mark.parametrize("parameters", PARAMETER_SETS)
def test_ide_cap(parameters: dict[str, int]) -> None:
    """Build ide_cap for one parameter set (cached) and run the cocotb tests above."""
    from hil.sim import build_hdl, rtl_sources, run_cocotb_tests

    build_dir = build_hdl("ide_cap", rtl_sources("ide_cap"), parameters)
    run_cocotb_tests(
        "ide_cap",
        build_dir,
        Path(__file__).stem,
        Path(__file__).parent,
        extra_env={
            "IDE_NUM_STREAMS": str(parameters.get("NUM_STREAMS", 2)),
            "IDE_NUM_ADDR_BLOCKS": str(parameters.get("NUM_ADDR_BLOCKS", 1)),
            "IDE_NEXT_CAP_OFFSET": str(parameters.get("NEXT_CAP_OFFSET", 0)),
            "IDE_PCRC_SUPPORTED": str(parameters.get("PCRC_SUPPORTED", 0)),
            "IDE_PHE_SUPPORTED": str(parameters.get("PHE_SUPPORTED", 0)),
            "IDE_CFG_IDE_SUPPORTED": str(parameters.get("CFG_IDE_SUPPORTED", 0)),
            "IDE_AGG_SUPPORTED": str(parameters.get("AGG_SUPPORTED", 0)),
            "IDE_NUM_LINK_TCS": str(parameters.get("NUM_LINK_TCS", 0)),
            "IDE_STREAM_ADDR_BLOCKS": str(parameters.get("STREAM_ADDR_BLOCKS", 0)),
        },
    )


BAD_PARAMETER_SETS = [
    pytest.param({"NUM_STREAMS": 3}, "27 DW, more than MAX_CAP_DW", id="3-streams-in-26-dw"),
    pytest.param({"NUM_ADDR_BLOCKS": 3}, "31 DW, more than MAX_CAP_DW", id="3-blocks-in-26-dw"),
    pytest.param({"NUM_STREAMS": 1}, "NUM_STREAMS must be", id="1-stream"),
    pytest.param({"NUM_ADDR_BLOCKS": 0}, "NUM_ADDR_BLOCKS must be", id="0-blocks"),
    pytest.param({"NUM_STREAMS": 8, "MAX_CAP_DW": 80}, "MAX_CAP_DW must be", id="room-80"),
    pytest.param({"NEXT_CAP_OFFSET": 0x0F0}, "NEXT_CAP_OFFSET must be", id="next-0f0"),
    pytest.param({"NUM_LINK_TCS": 4}, "27 DW, more than MAX_CAP_DW", id="4-link-tcs-in-26-dw"),
    pytest.param(
        {"STREAM_ADDR_BLOCKS": 0x22, "NUM_LINK_TCS": 2},
        "29 DW, more than MAX_CAP_DW",
        id="blocks-2-2-link2-in-26-dw",
    ),
    pytest.param(
        {"STREAM_ADDR_BLOCKS": 0x300}, "sets a count for a stream >= NUM_STREAMS", id="blocks-s2"
    ),
    pytest.param(
        {"NUM_STREAMS": 7, "NUM_LINK_TCS": 2, "MAX_CAP_DW": 64},
        "NUM_STREAMS + NUM_LINK_TCS <= 8",
        id="9-streams",
    ),
]


@pytest.mark.parametrize(("parameters", "message"), BAD_PARAMETER_SETS)
def test_ide_cap_bad_parameters(parameters: dict[str, int], message: str) -> None:
    """A parameter set that does not fit or makes no sense stops elaboration with a message."""
    from hil.sim import lint_waivers, rtl_sources, verilator_env

    verilator_env()
    overrides = [f"-G{k}={v}" for k, v in parameters.items()]
    proc = subprocess.run(
        [
            "verilator",
            "--lint-only",
            "-Wall",
            "--top-module",
            "ide_cap",
            *overrides,
            *map(str, lint_waivers("ide_cap")),
            *map(str, rtl_sources("ide_cap")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{parameters} elaborated:\n{out}"
    assert "USERFATAL" in out and message in out, out
