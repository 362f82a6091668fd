"""The fake endpoint's security hardware: IDE capability, key slots, stream state and the TDI.

The rules checked here are those of hdl/ide_cap/README.md and the TDI firmware map; the fake
rig's IDE_KM and TDISP results are only as good as this model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil import _regs as R
from hil._fake_hw import IdeCmdStatus, TdiCause, TdiCmdStatus, TdiOp, TdiState
from hil.fake import FakeConfigSpace, FakeDoe, FakeFirmwareRegs, FakeIdeCap, FakeTdi
from hil.firmware import Dsm
from hil.host.pci import walk_ext_capabilities
from hil.transport import AsyncioTimebase
from hil.vectors import Outcome, VectorContext, VectorResult, default_suite, execute

T = TypeVar("T")

GO, STOP, WIPE = 1, 2, 3
ST_DONE, ST_OP, ST_STREAM, ST_SUB, ST_NOT_LOADED = 0, 1, 2, 3, 4
SECURE = 0b0010
ENABLE = 1
FAIL_RX = 1 << 31
TDI = 0x100
TDI_STATE, TDI_CMD, TDI_BAR0_LO, TDI_BAR0_HI, TDI_BAR0_INFO, TDI_NUM_STREAMS = range(6)
BLOCK_DW = 8  # one Selective IDE register block with one address association block


def sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine of the fake, which never waits for anything, to its end."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the fake hardware awaited something")


def kss(key_set: int, rxtx: int, sub: int) -> int:
    """The IDE_KM KeySubStream byte."""
    return key_set | (rxtx << 1) | (sub << 4)


def slot_code(key_set: int, rxtx: int, sub: int) -> int:
    return 4 * sub + 2 * rxtx + key_set


def key_addr(stream: int, slot: int, dw: int) -> int:
    return 0x800 | (stream << 8) | (slot << 4) | dw


def block(stream: int) -> int:
    """Byte offset of stream ``stream``'s Selective IDE register block."""
    return R.IDE_CAP_OFFSET + 0x0C + 4 * BLOCK_DW * stream


def ctl(stream: int) -> int:
    return block(stream) + 4


def status(stream: int) -> int:
    return block(stream) + 8


def rid1(stream: int) -> int:
    return block(stream) + 0x0C


def rid2(stream: int) -> int:
    return block(stream) + 0x10


class Bench:
    """The fake hardware with synchronous accessors for its two ports."""

    def __init__(self, ide: FakeIdeCap | None = None) -> None:
        self.ide = ide or FakeIdeCap()
        self.tdi = FakeTdi(self.ide)
        self.cfg = FakeConfigSpace(tdi=self.tdi)
        self.fw = FakeFirmwareRegs(self.ide, self.tdi)
        self.counter = 0

    def cr(self, offset: int) -> int:
        return sync(self.cfg.read32(offset))

    def cw(self, offset: int, value: int) -> None:
        sync(self.cfg.write32(offset, value))

    def cwb(self, offset: int, data: bytes) -> None:
        sync(self.cfg.write_bytes(offset, data))

    def fr(self, addr: int) -> int:
        return sync(self.fw.read(addr))

    def fw_write(self, addr: int, value: int) -> None:
        sync(self.fw.write(addr, value))

    def cmd(self, op: int, stream: int, key_sub_stream: int = 0) -> int:
        self.fw_write(0x001, (op << 16) | (stream << 8) | key_sub_stream)
        return self.fr(0x001)

    def tdi_cmd(self, op: int, stream: int = 0) -> int:
        self.fw_write(TDI + TDI_CMD, op | (stream << 8))
        return self.fr(TDI + TDI_CMD)

    def tdi_state(self) -> int:
        return self.fr(TDI + TDI_STATE)

    def program(self, stream: int, slot: int, words: list[int] | None = None) -> list[int]:
        if words is None:
            words = [(self.counter << 8 | d) + 0x11111111 for d in range(10)]
            self.counter += 1
        for d, w in enumerate(words):
            self.fw_write(key_addr(stream, slot, d), w)
        return words

    def arm(self, stream: int, key_set: int) -> None:
        for sub in range(3):
            for rxtx in range(2):
                self.program(stream, slot_code(key_set, rxtx, sub))
                assert self.cmd(GO, stream, kss(key_set, rxtx, sub)) == ST_DONE

    def reg(self, stream: int, index: int) -> int:
        """Byte offset of DW ``index`` of Selective stream ``stream``'s block, wherever this
        capability puts it (after its Link IDE blocks, if any)."""
        return self.ide.stream_block(stream).start + 4 * index

    def setup(self, stream: int, stream_id: int = 0x17) -> None:
        self.cw(self.reg(stream, 4), 1)  # RID Association 2: V
        self.cw(self.reg(stream, 1), stream_id << 24)

    def secure(self, stream: int, stream_id: int = 0x17) -> None:
        self.setup(stream, stream_id)
        self.arm(stream, 0)
        self.cw(self.reg(stream, 1), (stream_id << 24) | ENABLE)
        assert self.state(stream) == SECURE

    def state(self, stream: int) -> int:
        """A Selective stream's Status.State."""
        return self.cr(self.reg(stream, 2)) & 0xF

    def slots(self, stream: int) -> tuple[int, int]:
        """(armed, loaded) slot masks."""
        value = self.fr(0x011 + 2 * stream)
        return value & 0xFFF, value >> 16

    def stream_state(self, stream: int) -> int:
        return self.fr(0x010 + 2 * stream)

    def snapshot(self) -> tuple[list[int], list[int]]:
        """Everything both ports can read (config reads and firmware reads have no effects)."""
        return (
            [self.cr(o) for o in range(0, 0x1000, 4)],
            [self.fr(a) for a in range(0x1000)],
        )


# -- the capability's config registers ----------------------------------------------------------
def test_chain_header_and_capability() -> None:
    b = Bench()
    caps = sync(walk_ext_capabilities(b.cfg))
    assert [(c.cap_id, c.offset) for c in caps] == [
        (0x0003, 0x100),
        (0x002E, R.DOE_CAP_OFFSET),
        (0x0030, R.IDE_CAP_OFFSET),
    ]
    assert b.cr(R.IDE_CAP_OFFSET) == 0x0030 | (1 << 16)  # version 1, last capability
    # Selective streams, IDE_KM, AES-GCM-256 only, 2 streams, TEE-Limited supported.
    assert b.cr(R.IDE_CAP_OFFSET + 4) == 0x01010042
    assert b.cr(R.IDE_CAP_OFFSET + 8) == 0
    b.cw(R.IDE_CAP_OFFSET + 8, 0xFFFFFFFF)
    b.cw(R.IDE_CAP_OFFSET + 4, 0)
    assert b.cr(R.IDE_CAP_OFFSET + 8) == 0 and b.cr(R.IDE_CAP_OFFSET + 4) == 0x01010042
    for j in range(2):
        assert b.cr(block(j)) == 1  # one address association block
        b.cw(block(j), 0xF)
        assert b.cr(block(j)) == 1
    # 3 + 2 x 8 = 19 DW; the rest of the window reads 0 and ignores writes.
    for o in range(R.IDE_CAP_OFFSET + 19 * 4, 0x500, 4):
        b.cw(o, 0xFFFFFFFF)
        assert b.cr(o) == 0
    assert b.fr(0x000) == 2 | (1 << 8) | (19 << 16) | (2 << 24)  # no Link IDE; map version 2


def test_a_capability_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        FakeIdeCap(num_streams=3)
    FakeIdeCap(num_addr_blocks=2)  # 25 DW fits
    with pytest.raises(ValueError):
        FakeIdeCap(num_streams=1)


def test_reserved_bits_read_zero() -> None:
    b = Bench()
    b.cw(ctl(0), 0xFFFFFFFE)  # everything but Enable
    assert b.cr(ctl(0)) == 0xFFFFC000
    b.cw(rid1(0), 0xFFFFFFFF)
    b.cw(rid2(0), 0xFFFFFFFF)
    assert b.cr(rid1(0)) == 0x00FFFF00
    assert b.cr(rid2(0)) == 0x00FFFF01
    for off, want in ((0x14, 0xFFFFFF01), (0x18, 0xFFFFFFFF), (0x1C, 0xFFFFFFFF)):
        b.cw(block(0) + off, 0xFFFFFFFF)
        assert b.cr(block(0) + off) == want
    b.cw(status(0), 0xFFFFFFFF)
    assert b.cr(status(0)) == 0


def test_sampled_and_read_only_while_enabled() -> None:
    b = Bench()
    alg, tee = 0x1F << 14, 1 << 23
    b.cw(rid1(0), 0x00123400)
    b.cw(rid2(0), 0x00120001)
    # The write that sets Enable samples the Algorithm and TEE-Limited it carries.
    b.cw(ctl(0), 0x17000000 | tee | ENABLE)
    assert b.cr(ctl(0)) == 0x17000000 | tee | ENABLE
    # While enabled: Algorithm, TEE-Limited, RID Limit, RID Base and V are fixed...
    b.cw(ctl(0), 0x18000000 | alg | (5 << 19) | (1 << 22) | ENABLE)
    assert b.cr(ctl(0)) == 0x18000000 | tee | (5 << 19) | (1 << 22) | ENABLE  # ...TC etc. not
    b.cw(rid1(0), 0x00FFFF00)
    b.cw(rid2(0), 0x00FFFF00)
    assert (b.cr(rid1(0)), b.cr(rid2(0))) == (0x00123400, 0x00120001)
    b.cw(block(0) + 0x14, 0x12345601)  # the address association stays writable
    assert b.cr(block(0) + 0x14) == 0x12345601
    # The write that clears Enable does not yet change them; the next one does.
    b.cw(ctl(0), 0x18000000 | alg)
    assert b.cr(ctl(0)) == 0x18000000 | tee
    b.cw(ctl(0), 0x18000000 | alg)
    assert b.cr(ctl(0)) == 0x18000000 | alg
    b.cw(rid2(0), 0)
    assert b.cr(rid2(0)) == 0


def test_byte_enables_are_honoured() -> None:
    b = Bench()
    b.cw(ctl(0), 0x17000000)
    b.cwb(ctl(0) + 3, b"\x42")  # Stream ID only
    assert b.cr(ctl(0)) == 0x42000000
    b.cwb(ctl(0) + 2, b"\xff")  # TC, Default, TEE-Limited, Algorithm[18:16]
    assert b.cr(ctl(0)) == 0x42FF0000
    b.cwb(ctl(0) + 1, b"\x00")  # clears Algorithm[15:14] only; byte 0 untouched
    assert b.cr(ctl(0)) == 0x42FF0000
    assert b.stream_state(0) >> 24 == 0x42


def test_received_fail_message_is_rw1c() -> None:
    b = Bench()
    b.ide.fail_message_received(1)
    assert b.cr(status(1)) == FAIL_RX and b.cr(status(0)) == 0
    b.cw(status(1), 0x7FFFFFFF)  # 0 to bit 31: no effect
    b.cwb(status(1), b"\xff\xff")  # byte 3 not enabled: no effect
    b.ide.write(status(1) - R.IDE_CAP_OFFSET, FAIL_RX, byte_enable=0b0111)
    assert b.cr(status(1)) == FAIL_RX
    b.cwb(status(1) + 3, b"\x80")
    assert b.cr(status(1)) == 0
    b.ide.fail_message_received(1)
    b.cw(status(1), FAIL_RX)
    assert b.cr(status(1)) == 0
    assert b.ide.fail_messages_sent == []  # a received Fail Message is not answered


# -- Link IDE Stream register blocks (§7.9.26.4) -------------------------------------------------
LINK = 2  # the stream index of Link IDE block 0 beside two Selective streams
LINK_CTL = R.IDE_CAP_OFFSET + 0x0C  # DW 3: Link IDE block 0 Control
LINK_STATUS = R.IDE_CAP_OFFSET + 0x10  # DW 4: its Status
ALL_MODES = 0b111 << 3  # IDE Capability: PHE (3), Aggregation (4), PCRC (5)


def linked(link_tcs: int = 1, features: int = 0) -> Bench:
    """A bench whose capability has ``link_tcs`` Link IDE blocks beside 2 Selective streams."""
    return Bench(FakeIdeCap(link_tcs=link_tcs, features=features))


def sel_block(b: Bench, stream: int) -> int:
    """Byte offset of Selective stream ``stream``'s block, after the Link IDE blocks (worked out
    here from §7.9.26, not taken from the model)."""
    return R.IDE_CAP_OFFSET + 4 * (3 + 2 * b.ide.link_tcs + BLOCK_DW * stream)


def test_link_ide_blocks_come_first_and_shift_the_selective_ones() -> None:
    from hil.host.ide_regs import IdeLayout

    b = linked()
    # b0 Link IDE Stream Supported, [15:13] Link TCs - 1 = 0, and the rest as before.
    assert b.cr(R.IDE_CAP_OFFSET + 4) == 0x01010042 | 1
    assert linked(3).cr(R.IDE_CAP_OFFSET + 4) == 0x01010042 | 1 | (2 << 13)
    # DW 3..4 are Link block 0 (Control, Status); the Selective blocks start at DW 5.
    b.cw(LINK_CTL, 0x4C000000)
    assert b.cr(LINK_CTL) == 0x4C000000 and b.cr(LINK_STATUS) == 0
    assert b.ide.stream_block(LINK) == range(LINK_CTL, LINK_CTL + 8)
    for j in range(2):
        assert b.ide.stream_block(j).start == sel_block(b, j)
        assert b.cr(sel_block(b, j)) == 1  # Selective IDE Stream Capability: 1 address block
    b.cw(sel_block(b, 1) + 4, 0x17000000)  # Selective stream 1's Control, not the Link one's
    assert b.stream_state(1) >> 24 == 0x17 and b.cr(LINK_CTL) == 0x4C000000
    assert b.cr(block(1) + 4) != 0x17000000  # the old place of the block is something else now
    # 3 + 2 + 2 x 8 = 21 DW; past it reads 0.  A host's walk of the capability agrees.
    assert b.ide.size_dw == 21
    assert b.cr(R.IDE_CAP_OFFSET + 20 * 4) == 0 and b.cr(R.IDE_CAP_OFFSET + 21 * 4) == 0
    layout = sync(IdeLayout.read(b.cfg, R.IDE_CAP_OFFSET))
    assert [blk.base for blk in layout.link_blocks] == [LINK_CTL]
    assert [blk.base for blk in layout.selective_blocks] == [sel_block(b, 0), sel_block(b, 1)]
    assert layout.end == R.IDE_CAP_OFFSET + 21 * 4
    # Firmware INFO: 2 Selective streams, 1 address block, 1 Link block, 21 DW, map version 2.
    assert b.fr(0x000) == 2 | (1 << 8) | (1 << 12) | (21 << 16) | (2 << 24)
    assert b.fr(0x040 + 3) == 0x4C000000  # the firmware's copy of the capability too


def test_link_tcs_must_fit_beside_the_selective_streams() -> None:
    FakeIdeCap(link_tcs=3)  # 3 + 6 + 16 = 25 DW fits the 26
    with pytest.raises(ValueError, match="does not fit"):
        FakeIdeCap(link_tcs=4)
    for link_tcs, streams in ((9, 2), (-1, 2), (7, 2), (1, 8)):
        with pytest.raises(ValueError, match="link_tcs"):
            FakeIdeCap(num_streams=streams, link_tcs=link_tcs, max_cap_dw=64)
    assert FakeIdeCap(num_streams=2, link_tcs=6, max_cap_dw=64).total_streams == 8


@pytest.mark.parametrize("features", [0, ALL_MODES])
def test_link_control_fields_and_reserved_bits(features: int) -> None:
    b = linked(features=features)
    b.cw(LINK_CTL, 0xFFFFFFFE)  # everything but Enable
    # Stream ID, TC and Algorithm always; Default (22), TEE-Limited (23) and bit 9 reserved;
    # aggregation [7:2], PCRC (8) and PHE [13:10] only where advertised, as in Selective Control.
    modes = (0x3F << 2) | (1 << 8) | (0xF << 10) if features else 0
    assert b.cr(LINK_CTL) == 0xFF3FC000 | modes
    b.cw(LINK_STATUS, 0xFFFFFFFF)
    assert b.cr(LINK_STATUS) == 0
    assert all(b.cr(sel_block(b, j) + 4) == 0 for j in range(2))  # the Selective ones untouched


def test_link_algorithm_and_pcrc_are_sampled_and_fixed_while_enabled() -> None:
    b = linked(features=ALL_MODES)
    alg, pcrc = 0x1F << 14, 1 << 8
    b.cw(LINK_CTL, 0x4C000000 | pcrc | (1 << 19) | ENABLE)  # the write that sets Enable samples
    assert b.cr(LINK_CTL) == 0x4C000000 | pcrc | (1 << 19) | ENABLE
    # While enabled: Algorithm and PCRC Enable hold; TC and Stream ID are written.
    b.cw(LINK_CTL, 0x4D000000 | alg | (5 << 19) | ENABLE)
    assert b.cr(LINK_CTL) == 0x4D000000 | pcrc | (5 << 19) | ENABLE
    # The write that clears Enable does not change them yet; the next one does.
    b.cw(LINK_CTL, 0x4D000000 | alg)
    assert b.cr(LINK_CTL) == 0x4D000000 | pcrc
    b.cw(LINK_CTL, 0x4D000000 | alg)
    assert b.cr(LINK_CTL) == 0x4D000000 | alg
    # Without PCRC advertised, PCRC Enable reads 0 whatever is written.
    plain = linked()
    plain.cw(LINK_CTL, 0x4C000000 | pcrc)
    assert plain.cr(LINK_CTL) == 0x4C000000


def test_link_received_fail_message_is_rw1c() -> None:
    b = linked()
    b.ide.fail_message_received(LINK)
    assert b.cr(LINK_STATUS) == FAIL_RX
    assert all(b.cr(sel_block(b, j) + 8) == 0 for j in range(2))
    b.cw(LINK_STATUS, 0x7FFFFFFF)  # 0 to bit 31: no effect
    b.cwb(LINK_STATUS, b"\xff\xff")  # byte 3 not enabled: no effect
    assert b.cr(LINK_STATUS) == FAIL_RX
    b.cwb(LINK_STATUS + 3, b"\x80")
    assert b.cr(LINK_STATUS) == 0
    assert b.ide.fail_messages_sent == []


def test_a_link_stream_is_secure_without_rid_association_on_slots_of_its_index() -> None:
    b = linked()
    b.arm(LINK, 0)  # key region 0x800 | 2 << 8 | ..., commands for stream index 2
    assert b.slots(LINK) == (0x555, 0x555)
    assert b.slots(0) == (0, 0) and b.slots(1) == (0, 0)
    assert b.ide.tlp_key(LINK, 0)[2] and not b.ide.tlp_key(0, 0)[2]
    b.cw(LINK_CTL, 0x4C000000 | (1 << 14) | ENABLE)  # an unsupported algorithm
    assert b.cr(LINK_STATUS) == 0
    b.cw(LINK_CTL, 0x4C000000)
    b.cw(LINK_CTL, 0x4C000000 | ENABLE)  # no RID register was written: still Secure
    assert b.cr(LINK_STATUS) == SECURE and b.ide.is_secure(LINK)
    assert b.stream_state(LINK) == SECURE | (1 << 4) | (0x4C << 24)
    assert b.state(0) == 0 and b.state(1) == 0
    # Index 3 does not exist: BAD_STREAM, and its key region is ignored.
    assert b.cmd(GO, 3, kss(0, 0, 0)) == ST_STREAM
    b.program(3, 0)
    assert b.fr(0x016) == 0 and b.fr(0x017) == 0
    # A Selective stream still needs RID Association V.
    b.arm(0, 0)
    b.cw(sel_block(b, 0) + 4, 0x17000000 | ENABLE)
    assert b.state(0) == 0
    b.cw(sel_block(b, 0) + 4, 0x17000000)
    b.cw(sel_block(b, 0) + 0x10, 1)  # V, written while Enable = 0
    b.cw(sel_block(b, 0) + 4, 0x17000000 | ENABLE)
    assert b.state(0) == SECURE


#: Every way out of Secure (§6.33.8), whether it counts as a failure (Enable must be written 0
#: again), and whether an IDE Fail Message goes to the partner.
SECURE_EXITS = [
    ("enable cleared", False, False),
    ("check failed", True, True),
    ("fail message received", True, False),
    ("wipe", True, True),
]


@pytest.mark.parametrize(("how", "failure", "sends"), SECURE_EXITS)
def test_a_link_stream_leaves_secure_as_a_selective_one(
    how: str, failure: bool, sends: bool
) -> None:
    b = linked()
    left: list[int] = []
    b.ide.secure_exit_hooks.append(left.append)
    b.secure(0)
    b.arm(LINK, 0)
    b.cw(LINK_CTL, 0x4C000000 | ENABLE)
    assert b.cr(LINK_STATUS) == SECURE
    if how == "enable cleared":
        b.cw(LINK_CTL, 0x4C000000)
    elif how == "check failed":
        b.ide.check_failed(LINK)
    elif how == "fail message received":
        b.ide.fail_message_received(LINK)
    else:
        assert b.cmd(WIPE, LINK) == ST_DONE
    assert b.cr(LINK_STATUS) & 0xF == 0 and b.slots(LINK) == (0, 0)
    assert left == [LINK] and b.ide.fail_messages_sent == ([LINK] if sends else [])
    assert b.stream_state(LINK) >> 5 & 1 == int(failure)
    assert b.state(0) == SECURE  # the Selective stream keeps its state
    # After a failure, Enable must be written 0 before Secure again.
    b.arm(LINK, 1)
    b.cw(LINK_CTL, 0x4C000000 | ENABLE)
    assert b.cr(LINK_STATUS) & 0xF == (0 if failure else SECURE)
    if failure:
        b.cw(LINK_CTL, 0x4C000000)
        b.cw(LINK_CTL, 0x4C000000 | ENABLE)
        assert b.cr(LINK_STATUS) & 0xF == SECURE


def test_a_tdi_binds_selective_streams_only_and_ignores_link_block_writes() -> None:
    b = linked()
    b.arm(LINK, 0)
    b.cw(LINK_CTL, 0x4C000000 | ENABLE)
    assert b.ide.is_secure(LINK)
    assert b.tdi_cmd(TdiOp.LOCK, LINK) == TdiCmdStatus.BAD_STREAM
    assert b.tdi_state() == 0x01000000
    assert b.fr(TDI + TDI_NUM_STREAMS) == 2
    b.cw(sel_block(b, 1) + 0x10, 1)
    b.arm(1, 0)
    b.cw(sel_block(b, 1) + 4, 0x18000000 | ENABLE)
    assert b.tdi_cmd(TdiOp.LOCK, 1) == TdiCmdStatus.DONE
    assert b.tdi_cmd(TdiOp.START) == TdiCmdStatus.DONE
    # The Link block's registers are not the bound stream's; nor is the Link stream leaving
    # Secure an error of the TDI.
    b.cw(LINK_CTL, b.cr(LINK_CTL))
    b.cw(LINK_STATUS, FAIL_RX)
    b.ide.check_failed(LINK)
    assert b.tdi_state() & 3 == TdiState.RUN
    # The bound stream's shifted block is.
    b.cw(sel_block(b, 1) + 0x10, b.cr(sel_block(b, 1) + 0x10))
    assert b.tdi_state() & 0xFF03 == (TdiCause.CONFIG_WRITE << 8) | TdiState.ERROR


def test_reset_returns_the_link_stream_to_power_on() -> None:
    fresh = linked().snapshot()
    b = linked()
    b.arm(LINK, 0)
    b.cw(LINK_CTL, 0x4C000000 | (3 << 19) | ENABLE)
    b.ide.fail_message_received(LINK)
    disabled: list[int] = []
    b.ide.disable_hooks.append(disabled.append)
    assert b.snapshot() != fresh
    b.cfg.reset()
    assert b.snapshot() == fresh
    assert all(b.ide.tlp_key(LINK, c) == (bytes(32), 0, False) for c in range(12))
    assert LINK in disabled


# -- stream state -------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    enable=st.booleans(),
    valid=st.booleans(),
    alg=st.sampled_from([0, 0, 0, 1, 0x1F]),
    armed=st.sets(st.integers(0, 11)),
    go_first=st.booleans(),
)
def test_secure_exactly_when_the_rules_hold(
    enable: bool, valid: bool, alg: int, armed: set[int], go_first: bool
) -> None:
    b = Bench()
    b.cw(rid2(0), int(valid))

    def arm() -> None:
        for c in sorted(armed):
            b.program(0, c)
            assert b.cmd(GO, 0, (c & 3) | ((c >> 2) << 4)) == ST_DONE

    if go_first:
        arm()
    b.cw(ctl(0), 0x17000000 | (alg << 14) | int(enable))
    if not go_first:
        arm()
    evens, odds = set(range(0, 12, 2)), set(range(1, 12, 2))
    want = enable and valid and alg == 0 and (evens <= armed or odds <= armed)
    assert b.state(0) == (SECURE if want else 0)
    assert b.stream_state(0) & 0xF == b.state(0)
    assert b.stream_state(0) >> 4 & 1 == int(enable)
    assert b.state(1) == 0  # the other stream is untouched
    assert b.slots(0)[0] == sum(1 << c for c in armed)


def test_mixed_key_sets_do_not_make_a_stream_secure() -> None:
    b = Bench()
    b.setup(0)
    b.cw(ctl(0), 0x17000000 | ENABLE)
    for sub in range(3):
        for rxtx in range(2):
            k = (sub + rxtx) % 2
            b.program(0, slot_code(k, rxtx, sub))
            assert b.cmd(GO, 0, kss(k, rxtx, sub)) == ST_DONE
    assert bin(b.slots(0)[0]).count("1") == 6
    assert b.state(0) == 0


def test_once_secure_stop_and_key_refresh_keep_the_state() -> None:
    b = Bench()
    b.secure(0)
    b.arm(0, 1)  # key refresh to K1
    assert b.state(0) == SECURE
    for sub in range(3):
        for rxtx in range(2):
            assert b.cmd(STOP, 0, kss(0, rxtx, sub)) == ST_DONE
    assert b.state(0) == SECURE
    assert b.slots(0) == (0xAAA, 0xAAA)  # K1 armed and loaded; K0 zeroed
    assert b.ide.tlp_key(0, 0) == (bytes(32), 0, False)


def _exit_by(b: Bench, how: str) -> None:
    if how == "enable cleared":
        b.cw(ctl(0), 0x17000000)
    elif how == "check failed":
        b.ide.check_failed(0)
    elif how == "fail message received":
        b.ide.fail_message_received(0)
    elif how == "wipe":
        assert b.cmd(WIPE, 0, 0xFF) == ST_DONE  # sub-stream bits ignored
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(("how", "failure", "sends"), SECURE_EXITS)
def test_every_exit_from_secure_wipes_the_stream(how: str, failure: bool, sends: bool) -> None:
    b = Bench()
    b.secure(0)
    b.secure(1, 0x18)
    b.arm(0, 1)
    _exit_by(b, how)
    assert b.state(0) == 0
    assert b.slots(0) == (0, 0)
    assert all(b.ide.tlp_key(0, c) == (bytes(32), 0, False) for c in range(12))
    assert b.ide.fail_messages_sent == ([0] if sends else [])
    assert b.stream_state(0) >> 5 & 1 == int(failure)
    # The other stream keeps its state and keys.
    assert b.state(1) == SECURE and b.slots(1) == (0x555, 0x555)
    # Re-keying: after a failure, Enable must be written 0 before Secure again.
    b.arm(0, 0)
    b.cw(ctl(0), 0x17000000 | ENABLE)
    assert b.state(0) == (0 if failure else SECURE)
    if failure:
        b.cw(ctl(0), 0x17000000)
        assert b.stream_state(0) >> 5 & 1 == 0
        assert b.slots(0)[0] == 0x555, "clearing Enable of an Insecure stream keeps its keys"
        b.cw(ctl(0), 0x17000000 | ENABLE)
        assert b.state(0) == SECURE


def test_a_failure_on_an_insecure_stream_is_ignored() -> None:
    b = Bench()
    b.setup(0)
    b.arm(0, 0)  # armed, Enable still 0
    b.ide.check_failed(0)
    b.ide.fail_message_received(0)
    assert b.slots(0) == (0x555, 0x555)
    assert b.ide.fail_messages_sent == []
    assert b.stream_state(0) >> 5 & 1 == 0
    b.cw(ctl(0), 0x17000000 | ENABLE)
    assert b.state(0) == SECURE


def test_wipe_of_an_insecure_stream_zeroes_its_slots_without_a_fail_message() -> None:
    b = Bench()
    b.arm(1, 1)
    assert b.cmd(WIPE, 1) == ST_DONE
    assert b.slots(1) == (0, 0)
    assert b.ide.fail_messages_sent == []


# -- key slots and commands ---------------------------------------------------------------------
def test_k_set_go_needs_all_ten_dw() -> None:
    b = Bench()
    c = slot_code(1, 0, 2)
    for d in range(9):
        b.fw_write(key_addr(0, c, d), 0xA5A5A5A5)
    b.fw_write(key_addr(0, c, 10), 1)  # DW 10..15 are not slot DW
    b.fw_write(key_addr(0, c, 15), 1)
    assert b.slots(0) == (0, 0)
    assert b.cmd(GO, 0, kss(1, 0, 2)) == ST_NOT_LOADED
    assert b.slots(0) == (0, 0)
    b.fw_write(key_addr(0, c, 9), 0)  # any value counts as written
    assert b.slots(0) == (0, 1 << c)
    assert b.cmd(GO, 0, kss(1, 0, 2)) == ST_DONE
    assert b.slots(0) == (1 << c, 1 << c)
    # K_SET_STOP zeroes it: loaded again only after ten fresh DW.
    assert b.cmd(STOP, 0, kss(1, 0, 2) | 0b1100) == ST_DONE  # bits 3:2 ignored
    assert b.slots(0) == (0, 0)
    assert b.cmd(GO, 0, kss(1, 0, 2)) == ST_NOT_LOADED


def test_writes_outside_the_slots_are_ignored() -> None:
    b = Bench()
    for c in (12, 13, 15):
        b.program(0, c)
    for s in range(2, 8):
        b.program(s, 0)
    assert b.slots(0) == (0, 0) and b.slots(1) == (0, 0)
    assert all(b.ide.tlp_key(0, c)[0] == bytes(32) for c in range(12))


def test_an_armed_slot_is_not_overwritten() -> None:
    b = Bench()
    c = slot_code(0, 1, 1)
    words = b.program(0, c)
    assert b.cmd(GO, 0, kss(0, 1, 1)) == ST_DONE
    before = b.ide.tlp_key(0, c)
    b.program(0, c, [0xDEADBEEF] * 10)
    assert b.ide.tlp_key(0, c) == before
    key, ifv, armed = before
    assert key == b"".join(w.to_bytes(4, "big") for w in words[:8])
    assert ifv == (words[8] << 32) | words[9] and armed


def test_slot_codes_follow_the_key_sub_stream_byte() -> None:
    b = Bench()
    for sub in range(3):
        for rxtx in range(2):
            for k in range(2):
                c = slot_code(k, rxtx, sub)
                b.program(1, c)
                assert b.cmd(GO, 1, kss(k, rxtx, sub)) == ST_DONE
                assert b.slots(1)[0] & (1 << c)
    assert b.slots(1) == (0xFFF, 0xFFF)


@pytest.mark.parametrize(
    ("op", "stream", "key_sub_stream", "want"),
    [
        (0, 0, 0, ST_OP),
        (4, 0, 0, ST_OP),
        (15, 0, 0, ST_OP),
        (GO, 2, 0, ST_STREAM),
        (STOP, 0xFF, 0, ST_STREAM),
        (WIPE, 2, 0, ST_STREAM),
        (GO, 0, 0x30, ST_SUB),
        (STOP, 0, 0xF0, ST_SUB),
        (GO, 0, kss(1, 1, 1), ST_NOT_LOADED),
    ],
)
def test_command_statuses_and_nothing_changes_on_error(
    op: int, stream: int, key_sub_stream: int, want: int
) -> None:
    b = Bench()
    b.secure(0)
    b.program(0, slot_code(1, 0, 0))
    before = b.snapshot()
    assert b.cmd(op, stream, key_sub_stream) == want
    cfg, fw = b.snapshot()
    assert cfg == before[0]
    assert [v for a, v in enumerate(fw) if a != 0x001] == [
        v for a, v in enumerate(before[1]) if a != 0x001
    ]
    assert b.ide.fail_messages_sent == []
    assert b.cmd(STOP, 0, kss(1, 0, 0)) == ST_DONE  # the status is that of the last command


@settings(max_examples=25, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=40, max_size=40), min_size=12, max_size=12),
    other=st.lists(st.binary(min_size=40, max_size=40), min_size=12, max_size=12),
)
def test_no_key_byte_is_readable_through_either_port(keys: list[bytes], other: list[bytes]) -> None:
    """Two endpoints that differ only in their key bytes read the same everywhere."""

    def endpoint(material: list[bytes]) -> Bench:
        b = Bench()
        for j in range(2):
            b.setup(j, 0x20 + j)
            for c, slot in enumerate(material):
                b.program(j, c, [int.from_bytes(slot[i : i + 4], "big") for i in range(0, 40, 4)])
            for c in range(12):
                assert b.cmd(GO, j, (c & 3) | ((c >> 2) << 4)) == ST_DONE
            b.cw(ctl(j), ((0x20 + j) << 24) | ENABLE)
            assert b.state(j) == SECURE
        return b

    a, z = endpoint(keys), endpoint(other)
    snap_a, snap_z = a.snapshot(), z.snapshot()
    assert snap_a == snap_z
    assert all(v == 0 for v in snap_a[1][0x800:])  # the key region reads 0
    # The keys are there: only the TLP path's port returns them.
    assert a.ide.tlp_key(1, 5)[0] == keys[5][:32]
    assert keys[5][:4].hex() not in repr(a.ide) + repr(a.tdi) + repr(a.cfg.ide.streams)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(
                ["prog", "go", "stop", "wipe", "enable", "disable", "v", "fail", "fail_rx"]
            ),
            st.integers(0, 1),
            st.integers(0, 11),
        ),
        max_size=60,
    )
)
def test_random_sequences_keep_the_invariants(ops: list[tuple[str, int, int]]) -> None:
    b = Bench()
    was_secure = [False, False]
    for op, j, c in ops:
        code = (c & 3) | ((c >> 2) << 4)
        if op == "prog":
            b.program(j, c)
        elif op in ("go", "stop"):
            assert b.cmd(GO if op == "go" else STOP, j, code) in (ST_DONE, ST_NOT_LOADED)
        elif op == "wipe":
            assert b.cmd(WIPE, j) == ST_DONE
        elif op in ("enable", "disable"):
            b.cw(ctl(j), (0x30 + j) << 24 | int(op == "enable"))
        elif op == "v":
            b.cw(rid2(j), c & 1)
        elif op == "fail":
            b.ide.check_failed(j)
        else:
            b.ide.fail_message_received(j)
        for k in range(2):
            state, armed_loaded = b.stream_state(k), b.slots(k)
            secure = state & 0xF == SECURE
            assert state & 0xF in (0, SECURE)
            assert not secure or state >> 4 & 1, "Secure with Enable = 0"
            armed, loaded = armed_loaded
            assert armed & ~loaded == 0, "an armed slot that is not loaded"
            if was_secure[k] and not secure:
                assert armed_loaded == (0, 0), "left Secure without wiping"
            was_secure[k] = secure
        assert all(b.fr(a) == 0 for a in (0x800, 0x8FF, 0x955, 0xFFF))


# -- the firmware port --------------------------------------------------------------------------
def test_firmware_port_decodes_as_the_hardware() -> None:
    b = Bench()
    b.secure(1, 0x42)
    b.cw(block(1) + 0x1C, 0x89ABCDEF)  # the capability's last DW: Memory Base Upper
    assert b.fr(0x040) == b.cr(R.IDE_CAP_OFFSET)
    for i in range(64):  # the CAP window: past the capability's 19 DW, 0 as in config space
        assert b.fr(0x040 + i) == b.cr(R.IDE_CAP_OFFSET + 4 * i)
    assert b.fr(0x040 + 18) == 0x89ABCDEF and b.fr(0x040 + 19) == 0
    assert b.stream_state(1) == SECURE | (1 << 4) | (0x42 << 24)
    assert b.stream_state(0) == 0
    assert b.fr(0x014) == 0  # no third stream
    assert b.fr(TDI + TDI_STATE) >> 24 == 0x01
    assert b.fr(TDI + TDI_NUM_STREAMS) == 2
    for addr in (0x080, 0x0FF, 0x120, 0x200, 0x7FF, 0x106):
        b.fw_write(addr, 0xFFFFFFFF)
        assert b.fr(addr) == 0
    assert b.state(1) == SECURE
    with pytest.raises(ValueError):
        FakeFirmwareRegs(FakeIdeCap(), b.tdi)


# -- the TDI --------------------------------------------------------------------------------------
def tdi_in(state: TdiState, stream: int = 0) -> Bench:
    b = Bench()
    b.secure(0)
    b.secure(1, 0x18)
    if state != TdiState.CONFIG_UNLOCKED:
        assert b.tdi_cmd(TdiOp.LOCK, stream) == TdiCmdStatus.DONE
    if state == TdiState.RUN:
        assert b.tdi_cmd(TdiOp.START) == TdiCmdStatus.DONE
    if state == TdiState.ERROR:
        assert b.tdi_cmd(TdiOp.FAIL) == TdiCmdStatus.DONE
    assert b.tdi_state() & 3 == state
    return b


U, L, RUN, E = (
    TdiState.CONFIG_UNLOCKED,
    TdiState.CONFIG_LOCKED,
    TdiState.RUN,
    TdiState.ERROR,
)


@pytest.mark.parametrize(
    ("start", "op", "status", "end"),
    [
        (U, TdiOp.LOCK, TdiCmdStatus.DONE, L),
        (L, TdiOp.LOCK, TdiCmdStatus.NOT_ALLOWED, L),
        (RUN, TdiOp.LOCK, TdiCmdStatus.NOT_ALLOWED, RUN),
        (E, TdiOp.LOCK, TdiCmdStatus.NOT_ALLOWED, E),
        (U, TdiOp.START, TdiCmdStatus.NOT_ALLOWED, U),
        (L, TdiOp.START, TdiCmdStatus.DONE, RUN),
        (RUN, TdiOp.START, TdiCmdStatus.NOT_ALLOWED, RUN),
        (E, TdiOp.START, TdiCmdStatus.NOT_ALLOWED, E),
        (U, TdiOp.STOP, TdiCmdStatus.DONE, U),
        (L, TdiOp.STOP, TdiCmdStatus.DONE, U),
        (RUN, TdiOp.STOP, TdiCmdStatus.DONE, U),
        (E, TdiOp.STOP, TdiCmdStatus.DONE, U),
        (U, TdiOp.FAIL, TdiCmdStatus.NOT_ALLOWED, U),
        (L, TdiOp.FAIL, TdiCmdStatus.DONE, E),
        (RUN, TdiOp.FAIL, TdiCmdStatus.DONE, E),
        (E, TdiOp.FAIL, TdiCmdStatus.NOT_ALLOWED, E),
        (U, 0, TdiCmdStatus.UNKNOWN_OP, U),
        (RUN, 5, TdiCmdStatus.UNKNOWN_OP, RUN),
        (L, 15, TdiCmdStatus.UNKNOWN_OP, L),
    ],
)
def test_tdi_transitions(start: TdiState, op: int, status: int, end: TdiState) -> None:
    b = tdi_in(start, stream=1)
    before = b.tdi_state()
    assert b.tdi_cmd(op, 1) == status
    after = b.tdi_state()
    assert after & 3 == end
    if status != TdiCmdStatus.DONE:
        assert after == before, "a refused command changed something"
    elif end == U:
        assert after == 0x01000000, "STOP clears the binding and the cause"
    elif end == E:
        assert after >> 8 & 0xFF == TdiCause.FIRMWARE_FAIL
    if end != U:
        assert after >> 4 & 0xF == 0x8 | 1, "bound to stream 1"


@pytest.mark.parametrize("stream", [0, 1, 2, 7])
def test_lock_needs_a_secure_stream(stream: int) -> None:
    b = Bench()
    if stream == 1:
        b.setup(1)
        b.arm(1, 0)  # armed but not enabled: Insecure
    assert b.tdi_cmd(TdiOp.LOCK, stream) == TdiCmdStatus.BAD_STREAM
    assert b.tdi_state() == 0x01000000
    if stream < 2:
        b.secure(stream)
        assert b.tdi_cmd(TdiOp.LOCK, stream) == TdiCmdStatus.DONE
        assert b.tdi_state() == 0x01000000 | L | ((0x8 | stream) << 4)


def _header_writes() -> list[tuple[str, int, bytes | None]]:
    writes: list[tuple[str, int, bytes | None]] = [
        ("Command", 0x04, None),
        ("Command byte 0", 0x04, b"\x06"),
        ("Command byte 1", 0x05, b"\x00"),
        ("ROM BAR", 0x30, None),
    ]
    writes += [(f"BAR{i}", 0x10 + 4 * i, None) for i in range(6)]
    writes += [(f"BAR{i} byte 2", 0x12 + 4 * i, b"\x00") for i in range(6)]
    writes += [(f"bound stream DW {i}", block(1) + 4 * i, None) for i in range(BLOCK_DW)]
    writes += [("bound Status byte 3", status(1) + 3, b"\x80")]
    return writes


@pytest.mark.parametrize(("what", "offset", "data"), _header_writes())
@pytest.mark.parametrize("state", [L, RUN])
def test_config_writes_that_break_a_locked_tdi(
    what: str, offset: int, data: bytes | None, state: TdiState
) -> None:
    b = tdi_in(state, stream=1)
    value = b.cr(offset & ~3)  # writing back what is there still counts
    if data is None:
        b.cw(offset, value)
    else:
        b.cwb(offset, data)
    got = b.tdi_state()
    assert got & 3 == E, what
    assert got >> 8 & 0xFF == TdiCause.CONFIG_WRITE
    assert got >> 4 & 0xF == 0x8 | 1, "ERROR keeps the binding until STOP"


@pytest.mark.parametrize(
    ("what", "offset", "data"),
    [
        ("Status register", 0x06, b"\xff\xff"),
        ("Vendor/Device ID", 0x00, None),
        ("Cache Line Size", 0x0C, None),
        ("CardBus CIS", 0x28, None),
        ("Interrupt Line", 0x3C, None),
        ("DSN", 0x104, None),
        ("DOE Control", R.DOE_CAP_OFFSET + 8, None),
        ("IDE Control", R.IDE_CAP_OFFSET + 8, None),
        ("the other stream's Control", ctl(0), None),
        ("the other stream's RID 2", rid2(0), None),
    ],
)
def test_config_writes_that_do_not_break_it(what: str, offset: int, data: bytes | None) -> None:
    b = tdi_in(RUN, stream=1)
    if data is None:
        b.cw(offset, b.cr(offset))
    else:
        b.cwb(offset, data)
    assert b.tdi_state() & 3 == RUN, what


def test_config_writes_while_unlocked_change_nothing() -> None:
    b = tdi_in(U)
    for _, offset, _data in _header_writes():
        b.cw(offset & ~3, b.cr(offset & ~3))
    assert b.tdi_state() == 0x01000000


@pytest.mark.parametrize("how", ["check failed", "fail message received", "wipe"])
def test_the_bound_stream_leaving_secure_is_an_error(how: str) -> None:
    for bound, hit in ((0, True), (1, False)):
        b = tdi_in(RUN, stream=bound)
        _exit_by(b, how)  # stream 0 leaves Secure
        got = b.tdi_state()
        if hit:
            assert got & 3 == E and got >> 8 & 0xFF == TdiCause.STREAM_INSECURE
        else:
            assert got & 3 == RUN


def test_clearing_enable_of_the_bound_stream_is_a_config_write_error() -> None:
    b = tdi_in(L)
    _exit_by(b, "enable cleared")
    assert b.tdi_state() >> 8 & 0xFF == TdiCause.CONFIG_WRITE


def test_poisoned_request_and_error_is_sticky() -> None:
    b = tdi_in(U)
    b.tdi.poisoned_request()
    assert b.tdi_state() & 3 == U
    b = tdi_in(RUN)
    b.tdi.poisoned_request()
    assert b.tdi_state() >> 8 & 0xFF == TdiCause.POISONED_TLP
    # Nothing moves ERROR but STOP or reset; the cause is that of the entry.
    b.cw(0x10, 0)
    b.ide.check_failed(0)
    assert b.tdi_cmd(TdiOp.START) == TdiCmdStatus.NOT_ALLOWED
    assert b.tdi_state() & 0xFF03 == (TdiCause.POISONED_TLP << 8) | E
    assert b.tdi_cmd(TdiOp.STOP) == TdiCmdStatus.DONE
    assert b.tdi_state() == 0x01000000


def test_stop_leaves_the_stream_and_keys_alone() -> None:
    b = tdi_in(RUN)
    assert b.tdi_cmd(TdiOp.STOP) == TdiCmdStatus.DONE
    assert b.state(0) == SECURE and b.slots(0) == (0x555, 0x555)


# -- BAR0, Command, reset -----------------------------------------------------------------------
def test_bar0_sizing_and_programming() -> None:
    b = Bench()
    assert b.cr(0x10) == 0b0100 and b.cr(0x14) == 0
    b.cw(0x10, 0xFFFFFFFF)
    b.cw(0x14, 0xFFFFFFFF)
    assert (b.cr(0x10), b.cr(0x14)) == (0xFFFFF004, 0xFFFFFFFF)
    size = (~(b.cr(0x10) & ~0xF) & 0xFFFFFFFF) + 1
    assert size == 4096
    b.cw(0x10, 0xFEDC_B9A8)
    b.cw(0x14, 0x0000_0012)
    assert (b.cr(0x10), b.cr(0x14)) == (0xFEDCB004, 0x12)
    b.cwb(0x11, b"\xff")  # bits 15:8: only 15:12 exist
    assert b.cr(0x10) == 0xFEDCF004
    assert (b.fr(TDI + TDI_BAR0_LO), b.fr(TDI + TDI_BAR0_HI)) == (0xFEDCF004, 0x12)
    for off in (0x18, 0x1C, 0x20, 0x24, 0x30):  # no other BAR, no ROM
        b.cw(off, 0xFFFFFFFF)
        assert b.cr(off) == 0


@settings(max_examples=100, deadline=None)
@given(value=st.integers(0, 0xFFFFFFFF), high=st.integers(0, 0xFFFFFFFF))
def test_bar0_low_bits_are_fixed(value: int, high: int) -> None:
    b = Bench()
    b.cw(0x10, value)
    b.cw(0x14, high)
    assert b.cr(0x10) == (value & 0xFFFFF000) | 0b0100
    assert b.cr(0x14) == high == b.fr(TDI + TDI_BAR0_HI)


def test_command_register_shadow() -> None:
    b = Bench()
    assert b.fr(TDI + TDI_BAR0_INFO) == 12
    b.cw(0x04, 0xFFFFFFFF)
    # Memory Space and Bus Master Enable; Status shows only Capabilities List (bit 4)
    assert b.cr(0x04) == 0b110 | 1 << 20
    assert b.fr(TDI + TDI_BAR0_INFO) == 12 | 1 << 8 | 1 << 9
    b.cwb(0x04, b"\x02")
    assert b.fr(TDI + TDI_BAR0_INFO) == 12 | 1 << 8
    b.cwb(0x06, b"\xff\xff")
    assert b.cr(0x04) == 0b010 | 1 << 20


def test_reset_returns_everything_to_power_on() -> None:
    fresh = Bench().snapshot()
    b = tdi_in(RUN)
    b.cw(0x10, 0xABCDE000)
    b.cw(0x04, 0x6)
    b.ide.fail_message_received(1)
    b.program(1, 3)
    assert b.snapshot() != fresh
    b.cfg.reset()
    assert b.snapshot() == fresh
    assert all(b.ide.tlp_key(j, c) == (bytes(32), 0, False) for j in range(2) for c in range(12))
    # The TDI keeps watching the capability after the reset.
    b.secure(0)
    assert b.tdi_cmd(TdiOp.LOCK, 0) == TdiCmdStatus.DONE
    b.ide.check_failed(0)
    assert b.tdi_state() >> 8 & 0xFF == TdiCause.STREAM_INSECURE


def test_a_capability_reset_under_a_locked_tdi_is_its_stream_leaving_secure() -> None:
    b = tdi_in(RUN)
    b.ide.reset()
    assert b.tdi_state() & 0xFF03 == (TdiCause.STREAM_INSECURE << 8) | E


def test_tdi_reset_alone_wipes_the_keys() -> None:
    b = tdi_in(L)
    b.tdi.reset()
    assert b.tdi_state() == 0x01000000
    assert b.state(0) == 0 and b.slots(0) == (0, 0)
    assert b.cr(0x10) == 0b0100


# -- the fake rig's IDE_KM, and vectors that catch a broken model -------------------------------
SETTINGS = {
    "trust_anchor": "test-pki",
    "doe_timeout_s": 0.2,
    "doe_poll_interval_s": 0.0,
    "doe_quiet_s": 0.001,
}


def run_config(vid: str, config: FakeConfigSpace) -> VectorResult:
    """Vector ``vid`` on ``config``, whose DOE mailbox the firmware already serves."""
    ctx = VectorContext(
        rig_name="test",
        rig_kind="fake",
        provides=frozenset({"config", "doe", "spdm", "ide_km"}),
        timebase=AsyncioTimebase(),
        config=config,
        settings=SETTINGS,
    )
    return asyncio.run(execute(default_suite()[vid], ctx))


def run_on(vid: str, ide: FakeIdeCap) -> Outcome:
    config = FakeConfigSpace(FakeDoe(), tdi=FakeTdi(ide))
    config.doe.responder = Dsm(hdl_build="test", regs=config.firmware_regs()).handle
    return run_config(vid, config).outcome


class NeverSecure(FakeIdeCap):
    def _evaluate(self, j: int) -> None:
        pass


class StaysSecureOnDisable(FakeIdeCap):
    def _write_control(self, j: int, merged: int, byte_enable: int) -> None:
        secure = self.streams[j].secure
        super()._write_control(j, merged, byte_enable)
        self.streams[j].secure = secure


class DropsTheLastIfvDw(FakeIdeCap):
    def fw_write(self, addr: int, value: int) -> None:
        if addr >= 0x800 and addr & 0xF == 9:
            return
        super().fw_write(addr, value)


class RefusesStop(FakeIdeCap):
    def fw_write(self, addr: int, value: int) -> None:
        if addr == 0x001 and (value >> 16) & 0xF == STOP:
            self.cmd_status = IdeCmdStatus.UNKNOWN_OP
            return
        super().fw_write(addr, value)


@pytest.mark.parametrize(
    ("ide", "vid"),
    [
        (FakeIdeCap, "ide_km.k_set_go.secure"),
        (NeverSecure, "ide_km.k_set_go.secure"),
        (StaysSecureOnDisable, "ide_km.k_set_go.secure"),
        (FakeIdeCap, "ide_km.key_prog.all_slots"),
        (DropsTheLastIfvDw, "ide_km.key_prog.all_slots"),
        (FakeIdeCap, "ide_km.k_set_stop.acknowledged"),
        (RefusesStop, "ide_km.k_set_stop.acknowledged"),
    ],
)
def test_ide_km_vectors_pass_on_the_model_and_fail_on_a_broken_one(
    ide: type[FakeIdeCap], vid: str
) -> None:
    want = Outcome.PASS if ide is FakeIdeCap else Outcome.FAIL
    assert run_on(vid, ide()) is want


# -- what a rig's [fake] section makes the capability advertise ----------------------------------
def test_a_fake_section_shapes_the_capability_and_the_vectors_follow_it() -> None:
    from hil.fake import fake_ide_cap

    ide = fake_ide_cap(
        {"selective_streams": 4, "addr_blocks": 2, "ide_features": ["pcrc", "aggregation"]}
    )
    assert ide.num_streams == 4 and ide.size_dw == 3 + 4 * (5 + 3 * 2)
    # Selective, aggregation (4), PCRC (5), IDE_KM, 4 streams, TEE-Limited.
    assert ide.read_index(1) == 0x01030072
    config = FakeConfigSpace(tdi=FakeTdi(ide))
    dsm = Dsm(hdl_build="test", regs=config.firmware_regs(), ide_km_port_index=2)
    config.doe.responder = dsm.handle
    for vid in ("ide_km.query.reflects_config", "ide_km.port_index.nonzero"):
        result = run_config(vid, config)
        assert result.outcome is Outcome.PASS, (vid, result.message)
    with pytest.raises(ValueError, match="only"):
        FakeIdeCap(features=1 << 0)  # Link IDE comes with link_tcs, not as a feature bit


def test_a_fake_section_sets_the_link_ide_blocks_and_refuses_bad_ones() -> None:
    from pathlib import Path

    from hil.fake import fake_ide_cap
    from hil.rigs import RigConfigError, find_rig, parse_rig

    ide = fake_ide_cap({"link_tcs": 2})
    assert (ide.link_tcs, ide.total_streams, ide.size_dw) == (2, 4, 3 + 4 + 16)
    assert ide.read_index(1) & 0xE001 == 1 | (1 << 13)
    assert fake_ide_cap({}).link_tcs == 0
    for bad, match in ((9, "link_tcs 9"), (7, "link_tcs 7"), (True, "link_tcs True")):
        with pytest.raises(ValueError, match=match):
            fake_ide_cap({"link_tcs": bad})
    text = "[rig]\nkind = 'fake'\n[fake]\nlink_tcs = {}"
    with pytest.raises(RigConfigError, match="\\[fake\\] link_tcs 9"):
        parse_rig(text.format(9), Path("rigs/broken.toml"))
    with pytest.raises(RigConfigError, match="line 4: \\[fake\\] link_tcs = 'one' is not"):
        parse_rig(text.format("'one'"), Path("rigs/broken.toml"))
    assert parse_rig(text.format(1), Path("rigs/ok.toml")).fake["link_tcs"] == 1
    assert find_rig("fake").fake.get("link_tcs") == 1  # the default fake rig has one


def test_address_association_counts_may_differ_per_stream() -> None:
    """Each Selective IDE Stream block has its own Address Association count in its Selective
    IDE Stream Capability register (§7.9.26.5.1): stream 0 with 1 block, stream 1 with 2 and
    Link IDE for 2 TCs is 3 + 4 + 8 + 11 = 26 DW, the endpoint's whole window."""
    ide = FakeIdeCap(stream_addr_blocks=[1, 2], link_tcs=2)
    assert ide.addr_blocks == [1, 2] and ide.size_dw == 26
    sel0 = 3 + 2 * 2
    assert ide.stream_block(0) == range(ide.offset + 4 * sel0, ide.offset + 4 * (sel0 + 8))
    assert ide.stream_block(1) == range(ide.offset + 4 * (sel0 + 8), ide.offset + 4 * 26)
    assert ide.read_index(sel0) == 1 and ide.read_index(sel0 + 8) == 2
    # Stream 1's second block: its three registers right before the end.
    for k, value in enumerate((0xABC_DEF_01, 0x1234, 0x5678)):
        ide.write(4 * (sel0 + 8 + 5 + 3 + k), value)
    assert ide.streams[1].addr[1] == [0xABCDEF01, 0x1234, 0x5678]
    assert ide.read_index(sel0 + 8 + 5 + 3) == 0xABCDEF01
    # Writes past the end go nowhere; the Capability registers stay read-only.
    ide.write(4 * 26, 0xFFFFFFFF)
    ide.write(4 * (sel0 + 8), 0xFFFFFFFF)
    assert ide.read_index(26) == 0 and ide.read_index(sel0 + 8) == 2
    # Firmware INFO [11:8]: the largest count.
    assert ide.fw_read(0x000) == 2 | (2 << 8) | (2 << 12) | (26 << 16) | (2 << 24)
    # The capability walk Linux and the host tools do finds the same blocks.
    from hil.host.ide_regs import IdeLayout

    layout = IdeLayout.from_reader(ide.offset, lambda off: ide.read(off - ide.offset))
    assert [(b.base, b.addr_blocks) for b in layout.selective_blocks] == [
        (ide.stream_block(j).start, n) for j, n in enumerate((1, 2))
    ]
    assert layout.end == ide.offset + 4 * 26 and layout.kernel_selective_blocks == 1
    # A uniform list is the int form.
    same = FakeIdeCap(num_addr_blocks=2, stream_addr_blocks=None)
    assert [same.read_index(i) for i in range(25)] == [
        FakeIdeCap(stream_addr_blocks=[2, 2]).read_index(i) for i in range(25)
    ]


def test_per_stream_counts_are_checked() -> None:
    for bad, match in (
        ([1], "one count per Selective stream"),
        ([1, 2, 1], "one count per Selective stream"),
        ([1, 0], "each count 1 .. 15"),
        ([16, 1], "each count 1 .. 15"),
        ([1, True], "each count 1 .. 15"),
    ):
        with pytest.raises(ValueError, match=match):
            FakeIdeCap(stream_addr_blocks=bad)
    with pytest.raises(ValueError, match="29 DW does not fit in 26"):
        FakeIdeCap(stream_addr_blocks=[2, 2], link_tcs=2)
    FakeIdeCap(stream_addr_blocks=[2, 2], link_tcs=2, max_cap_dw=29)


def test_a_fake_section_takes_addr_blocks_as_a_list() -> None:
    from pathlib import Path

    from hil.fake import fake_ide_cap
    from hil.rigs import RigConfigError, parse_rig

    ide = fake_ide_cap({"selective_streams": 3, "addr_blocks": [2, 1, 3]})
    assert ide.addr_blocks == [2, 1, 3] and ide.size_dw == 3 + 3 * 5 + 3 * 6
    assert fake_ide_cap({"addr_blocks": 2}).addr_blocks == [2, 2]
    assert fake_ide_cap({}).addr_blocks == [1, 1]
    for bad, match in (
        (
            [1, 2, 1],
            r"addr_blocks \[1, 2, 1\]: one count \(1 \.\. 15\) per Selective stream "
            r"\(selective_streams = 2\)",
        ),
        ([1], "one count"),
        ([0, 1], "one count"),
        ([1, 16], "one count"),
        ([1, "2"], "one count"),
        (0, "addr_blocks 0: 1 .. 15"),
        (16, "addr_blocks 16: 1 .. 15"),
        ("2", "an integer 1 .. 15, or a list"),
        (True, "an integer 1 .. 15, or a list"),
    ):
        with pytest.raises(ValueError, match=match):
            fake_ide_cap({"addr_blocks": bad})
    text = "[rig]\nkind = 'fake'\n[fake]\naddr_blocks = {}"
    assert parse_rig(text.format("[1, 2]"), Path("rigs/ok.toml")).fake["addr_blocks"] == [1, 2]
    with pytest.raises(RigConfigError, match=r"\[fake\] addr_blocks \[1, 2, 3\]: one count"):
        parse_rig(text.format("[1, 2, 3]"), Path("rigs/broken.toml"))
    with pytest.raises(RigConfigError, match="is not a int or list"):
        parse_rig(text.format("['one', 'two']"), Path("rigs/broken.toml"))


def test_addr_ranges_are_the_valid_address_association_blocks() -> None:
    """(base, limit) of each Valid block (§7.9.26.5.5): base with bits [19:0] 0, limit
    inclusive with bits [19:0] all ones; in block order; none for a Link stream."""
    ide = FakeIdeCap(stream_addr_blocks=[1, 3], link_tcs=1, max_cap_dw=64)

    def put(stream: int, block: int, base: int, limit: int, valid: bool) -> None:
        at = ide.stream_block(stream).start - ide.offset + 0x14 + 12 * block
        lower = ((limit >> 20) & 0xFFF) << 20 | ((base >> 20) & 0xFFF) << 8 | int(valid)
        ide.write(at, lower)
        ide.write(at + 4, limit >> 32)  # Memory Limit Upper
        ide.write(at + 8, base >> 32)  # Memory Base Upper

    assert ide.addr_ranges(0) == [] and ide.addr_ranges(1) == []
    put(1, 0, 0x0000_0012_3450_0000, 0x0000_0012_3460_0000, True)
    put(1, 1, 0x8000_0000, 0x8FF0_0000, False)  # not Valid: left out
    put(1, 2, 0xFFFF_FFFF_FFF0_0000, 0xFFFF_FFFF_FFF0_0000, True)
    put(0, 0, 0xC000_0000, 0xC000_0000, True)
    assert ide.addr_ranges(1) == [
        (0x0000_0012_3450_0000, 0x0000_0012_3460_0000 | 0xFFFFF),
        (0xFFFF_FFFF_FFF0_0000, 0xFFFF_FFFF_FFFF_FFFF),
    ]
    assert ide.addr_ranges(0) == [(0xC000_0000, 0xC00F_FFFF)]
    assert ide.addr_ranges(2) == []  # the Link stream
    with pytest.raises(ValueError, match="stream 3"):
        ide.addr_ranges(3)
    # Valid cleared: gone; a reset clears them all.
    put(0, 0, 0xC000_0000, 0xC000_0000, False)
    assert ide.addr_ranges(0) == []
    ide.reset()
    assert ide.addr_ranges(1) == []


def test_unadvertised_modes_read_zero_and_the_vector_sees_a_writable_one() -> None:
    """Stream Control bits of a mode the capability does not advertise are hardwired to 0
    (§7.9.26.5.2); a fake whose PCRC Enable is writable without PCRC Supported fails the vector
    (the fake rig advertises PCRC, so its mutant there is another bit)."""
    from hil import _fake_hw

    def run(config: FakeConfigSpace) -> Outcome:
        config.doe.responder = Dsm(hdl_build="test", regs=config.firmware_regs()).handle
        return run_config("ide_km.stream_control.unadvertised_modes_zero", config).outcome

    assert run(FakeConfigSpace()) is Outcome.PASS
    original = _fake_hw.FakeIdeCap._write_control

    def pcrc_always_writable(self, j: int, merged: int, byte_enable: int) -> None:  # type: ignore[no-untyped-def]
        original(self, j, merged, byte_enable)
        self.streams[j].control |= merged & (1 << 8)

    _fake_hw.FakeIdeCap._write_control = pcrc_always_writable  # type: ignore[method-assign]
    try:
        assert run(FakeConfigSpace()) is Outcome.FAIL
    finally:
        _fake_hw.FakeIdeCap._write_control = original  # type: ignore[method-assign]
