"""The endpoint's security hardware in memory: IDE capability, key slots, stream and TDI state.

A model of what ``hdl/ide_cap`` and ``hdl/tdi`` do, written from their register maps and
rules (hdl/ide_cap/README.md; the TDI map in :class:`FakeTdi`), not from their RTL, so that
the ``fake`` rig runs IDE_KM and TDISP in memory and the HDL has something independent to be
compared with.  :mod:`hil.fake` re-exports the public names.

- :class:`FakeIdeCap`: the IDE extended capability's registers (config side), the firmware
  map's IDE part, the 12 write-only key slots per stream and each stream's Insecure/Secure
  state.  Its streams are the Selective IDE Streams (indices 0 .. num_streams - 1), then one
  Link IDE Stream per Link IDE register block (indices num_streams and up), as in the HDL.
- :class:`FakeTdi`: the TDI state machine with its enforcement, and its shadows of the Command
  register and BAR0 (which the fake configuration space also answers reads from).
- :class:`FakeFirmwareRegs`: the firmware register port, decoding addresses as the hardware
  does (0x000-0x07F and 0x800-0xFFF: IDE; 0x100-0x11F: TDI; anything else reads 0).

Key material is held only in the slots: no register read, ``repr`` or exception shows it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from enum import IntEnum

from . import _regs as R
from .firmware.regs import FirmwareRegisterPort

__all__ = [
    "BAR0_SIZE_LOG2",
    "CAP_AGGREGATION",
    "CAP_CONFIG_REQUESTS",
    "CAP_LINK",
    "CAP_PCRC",
    "CAP_PHE",
    "FakeFirmwareRegs",
    "FakeIdeCap",
    "FakeTdi",
    "IdeCmdStatus",
    "TdiCause",
    "TdiCmdStatus",
    "TdiOp",
    "TdiState",
]

_MASK32 = 0xFFFFFFFF

# -- IDE capability constants (hdl/ide_cap/README.md) -----------------------------------------
IDE_CAP_MAX_DW = 26  # room between IDE_CAP_OFFSET and the end of the cfg_ext window
NUM_SLOTS = 12  # 2 key sets x 2 directions x 3 sub-streams
SLOT_DW = 10  # 8 key DW, 2 IFV DW
_ALL_DW = (1 << SLOT_DW) - 1

# Selective IDE Stream Control fields
_CTL_ENABLE = 1 << 0
_CTL_ALG = 0x1F << 14
_CTL_TC = 0x7 << 19
_CTL_DEFAULT = 1 << 22
_CTL_TEE = 1 << 23
_CTL_STREAM_ID = 0xFF << 24
_CTL_FIXED = _CTL_ALG | _CTL_TEE  # sampled while Enable = 1
# Optional modes, writable only where the IDE Capability advertises them (§7.9.26.5.2; else
# hardwired to 0): Tx aggregation for NPR/PR/CPL [7:2] and PCRC Enable (8) free, Partial Header
# Encryption Mode [13:10] sampled while Enable = 1 like the algorithm.
_CTL_AGGREGATION = 0x3F << 2
_CTL_PCRC = 1 << 8
_CTL_PHE = 0xF << 10
_CTL_FREE = _CTL_TC | _CTL_DEFAULT | _CTL_STREAM_ID  # writable whatever Enable is
_STATUS_FAIL_RX = 1 << 31
_STATE_SECURE = 0b0010
_RID1_MASK = 0xFFFF << 8
_RID2_MASK = (0xFFFF << 8) | 1
_ADDR1_MASK = 0xFFFFFF01
# IDE Address Association (§7.9.26.5.5): addresses in units of 1 MiB, bits [19:0] implied 0
# (Memory Base) or all ones (Memory Limit, inclusive).
_ADDR_LOW_ONES = (1 << 20) - 1

# Link IDE Stream register block (§7.9.26.4): Control, then Status, one block per TC.  Control
# (§7.9.26.4.1) has the Selective Control's fields at the same places for what it holds:
# Enable (0), Tx aggregation [7:2], PCRC Enable (8), Partial Header Encryption Mode [13:10],
# Selected Algorithm [18:14], TC [21:19], Stream ID [31:24]; no Default Stream or TEE-Limited.
# Status (§7.9.26.4.2) is laid out as the Selective one.
LINK_BLOCK_DW = 2
_LINK_CTL_FREE = _CTL_TC | _CTL_STREAM_ID  # writable whatever Enable is

# Firmware map
FW_INFO = 0x000
FW_CMD = 0x001
FW_STREAM = 0x010
FW_CAP = 0x040
FW_KEY = 0x800
FW_MAP_VERSION = 0x02  # 02h: INFO [15:12] Link IDE blocks, Link streams after the Selective

# IDE Capability register (§7.9.26.2): what is always advertised (Selective IDE Streams,
# IDE_KM, TEE-Limited Stream) and the optional bits a fake may add (``features``): Partial
# Header Encryption (3), Aggregation (4), PCRC (5), Selective IDE for Configuration Requests (7).
# Advertised (configuration space, QUERY_RESP); of these the fake's TLP path (hil._fake_tlp)
# carries PCRC and aggregated units (received), not PHE.  Link IDE Stream Supported (0) and
# Number of TCs Supported for Link IDE [15:13] follow ``link_tcs``, not ``features``.
IDE_CAP_BASE = (1 << 1) | (1 << 6) | (1 << 24)
CAP_LINK = 1 << 0
_CAP_LINK_TCS_LSB = 13
CAP_PHE = 1 << 3
CAP_AGGREGATION = 1 << 4
CAP_PCRC = 1 << 5
CAP_CONFIG_REQUESTS = 1 << 7
IDE_CAP_OPTIONAL = CAP_PHE | CAP_AGGREGATION | CAP_PCRC | CAP_CONFIG_REQUESTS


class IdeCmdStatus(IntEnum):
    """Status of the last IDE firmware command (firmware map, CMD read)."""

    DONE = 0
    UNKNOWN_OP = 1
    BAD_STREAM = 2  # stream index >= num_streams + link_tcs
    BAD_SUB_STREAM = 3
    NOT_LOADED = 4


class _IdeOp(IntEnum):
    K_SET_GO = 1
    K_SET_STOP = 2
    WIPE = 3


def _merge(old: int, value: int, byte_enable: int) -> int:
    """``old`` with the enabled bytes of ``value`` written over it."""
    mask = 0
    for byte in range(4):
        if byte_enable >> byte & 1:
            mask |= 0xFF << (8 * byte)
    return (old & ~mask) | (value & mask)


class _Slot:
    """One key slot: 8 key DW and 2 IFV DW, which DW were written, whether it is armed."""

    __slots__ = ("armed", "words", "written")

    def __init__(self) -> None:
        self.words = [0] * SLOT_DW
        self.written = 0  # bit d: DW d written since the last wipe
        self.armed = False

    def __repr__(self) -> str:  # never the key
        return f"_Slot(loaded={self.loaded}, armed={self.armed})"

    @property
    def loaded(self) -> bool:
        return self.written == _ALL_DW

    def wipe(self) -> None:
        self.words = [0] * SLOT_DW
        self.written = 0
        self.armed = False


class _Stream:
    """One IDE stream's registers, slots and state: a Selective IDE Stream, or with ``link`` a
    Link IDE Stream (Control and Status only: no RID or address association)."""

    def __init__(self, num_addr_blocks: int, *, link: bool = False) -> None:
        self.link = link
        self.control = 0
        self.rid1 = 0
        self.rid2 = 0
        self.addr = [[0, 0, 0] for _ in range(num_addr_blocks)]
        self.fail_rx = False  # Status: Received IDE Fail Message
        self.secure = False
        self.failed = False  # a failure since Enable was last written 0
        self.slots = [_Slot() for _ in range(NUM_SLOTS)]

    def __repr__(self) -> str:
        kind = "link" if self.link else "selective"
        return f"_Stream({kind}, control={self.control:#010x}, secure={self.secure})"

    @property
    def enable(self) -> bool:
        return bool(self.control & _CTL_ENABLE)

    @property
    def armed(self) -> int:
        return sum(1 << c for c, s in enumerate(self.slots) if s.armed)

    @property
    def loaded(self) -> int:
        return sum(1 << c for c, s in enumerate(self.slots) if s.loaded)

    def may_be_secure(self) -> bool:
        """The five conditions for Insecure -> Secure (README, "Stream state"); a Link stream
        has no RID Association, so RID Association V is not one of its conditions."""
        key_set_armed = any(
            all(self.slots[c].armed for c in range(k, NUM_SLOTS, 2)) for k in (0, 1)
        )
        return (
            self.enable
            and (self.link or bool(self.rid2 & 1))
            and self.control & _CTL_ALG == 0
            and not self.failed
            and key_set_armed
        )

    def wipe(self) -> None:
        for slot in self.slots:
            slot.wipe()


#: Called with a stream index when that stream leaves Secure.
SecureExitHook = Callable[[int], None]
#: Called with a stream index when that stream's Enable is 0 after a Control write or a reset.
DisableHook = Callable[[int], None]


class FakeIdeCap:
    """The IDE extended capability for Selective and Link IDE Streams, its key slots and
    stream state.

    Layout (§7.9.26): header, IDE Capability, IDE Control, ``link_tcs`` Link IDE Stream
    register blocks of 2 DW (DW 3 + 2i), then ``num_streams`` Selective IDE Stream blocks, one
    after the other from DW 3 + 2 link_tcs.  Selective stream j's block is 5 + 3 x its count of
    IDE Address Association blocks DW; each block has its own count in its Selective IDE
    Stream Capability register (§7.9.26.5.1): ``stream_addr_blocks[j]``, or ``num_addr_blocks``
    for every stream when that is None (the HDL's NUM_ADDR_BLOCKS and STREAM_ADDR_BLOCKS).
    Stream indices, as the HDL numbers them (key slots, firmware map, TLP path): Selective
    stream j is j, Link block i is ``num_streams + i``.

    Config side: :meth:`read` / :meth:`write` take the byte offset from the capability base.
    Firmware side: :meth:`fw_read` / :meth:`fw_write` take firmware DW addresses of the IDE
    part of the map.  Events from the TLP path: :meth:`check_failed` and
    :meth:`fail_message_received`; the IDE Fail Messages the port would send are appended to
    :attr:`fail_messages_sent` (stream indices).
    """

    def __init__(
        self,
        offset: int = R.IDE_CAP_OFFSET,
        *,
        num_streams: int = 2,
        num_addr_blocks: int = 1,
        stream_addr_blocks: Sequence[int] | None = None,
        next_offset: int = R.IDE_CAP_NEXT,
        max_cap_dw: int = IDE_CAP_MAX_DW,
        features: int = 0,
        link_tcs: int = 0,
    ) -> None:
        if not 2 <= num_streams <= 8:
            raise ValueError(f"num_streams {num_streams}: 2 .. 8")
        if not 0 <= link_tcs <= 8 or num_streams + link_tcs > 8:
            raise ValueError(
                f"link_tcs {link_tcs}: 0 .. 8, and num_streams ({num_streams}) + link_tcs <= 8 "
                "(the stream indices of the key slots and the firmware map)"
            )
        if not 1 <= num_addr_blocks <= 15:
            raise ValueError(f"num_addr_blocks {num_addr_blocks}: 1 .. 15")
        if stream_addr_blocks is None:
            addr_blocks = [num_addr_blocks] * num_streams
        else:
            addr_blocks = list(stream_addr_blocks)
            if len(addr_blocks) != num_streams:
                raise ValueError(
                    f"stream_addr_blocks {addr_blocks}: one count per Selective stream "
                    f"({num_streams})"
                )
            for n in addr_blocks:
                if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 15:
                    raise ValueError(f"stream_addr_blocks {addr_blocks}: each count 1 .. 15")
        if next_offset and (next_offset < 0x100 or next_offset % 4):
            raise ValueError(f"next_offset {next_offset:#x}: 0 or DW aligned >= 0x100")
        if features & ~IDE_CAP_OPTIONAL:
            raise ValueError(f"features {features:#x}: only {IDE_CAP_OPTIONAL:#x} may be added")
        self.offset = offset
        self.next_offset = next_offset
        self.features = features
        self.num_streams = num_streams  # Selective IDE Streams
        self.link_tcs = link_tcs  # Link IDE Stream blocks
        self.num_addr_blocks = num_addr_blocks
        #: IDE Address Association blocks of each Selective stream (§7.9.26.5.1)
        self.addr_blocks = addr_blocks
        self.sel_dw0 = 3 + LINK_BLOCK_DW * link_tcs  # DW index of the first Selective block
        # DW index of each Selective block, then the capability's end: each block follows the
        # one before it, 5 DW and 3 per Address Association block.
        self._sel_base = [self.sel_dw0]
        for n in addr_blocks:
            self._sel_base.append(self._sel_base[-1] + 5 + 3 * n)
        self.size_dw = self._sel_base[-1]
        if not self.size_dw <= max_cap_dw <= 64:
            raise ValueError(
                f"an IDE capability of {self.size_dw} DW does not fit in {max_cap_dw} DW"
            )
        self.secure_exit_hooks: list[SecureExitHook] = []
        self.disable_hooks: list[DisableHook] = []
        self.fail_messages_sent: list[int] = []
        self.cmd_status = IdeCmdStatus.DONE
        self.streams = self._power_on_streams()

    def __repr__(self) -> str:
        return f"FakeIdeCap(offset={self.offset:#x}, streams={self.streams!r})"

    @property
    def total_streams(self) -> int:
        """Stream indices in use: the Selective streams, then the Link streams."""
        return self.num_streams + self.link_tcs

    def _power_on_streams(self) -> list[_Stream]:
        return [_Stream(n) for n in self.addr_blocks] + [
            _Stream(0, link=True) for _ in range(self.link_tcs)
        ]

    # -- reset ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Conventional reset or FLR: registers to power-on values, every slot zeroed, every
        stream Insecure and disabled.  Watchers hear of the streams that were Secure (a TDI
        reset with the capability, as :meth:`FakeTdi.reset` does, ends CONFIG_UNLOCKED all the
        same), and of every stream's Enable being 0."""
        was_secure = [j for j, s in enumerate(self.streams) if s.secure]
        self.cmd_status = IdeCmdStatus.DONE
        self.streams = self._power_on_streams()
        for j in was_secure:
            for hook in list(self.secure_exit_hooks):
                hook(j)
        for j in range(self.total_streams):
            for hook in list(self.disable_hooks):
                hook(j)

    # -- what the rest of the endpoint sees -----------------------------------------------------
    def is_secure(self, stream: int) -> bool:
        return 0 <= stream < self.total_streams and self.streams[stream].secure

    def is_link(self, stream: int) -> bool:
        """Whether stream index ``stream`` is a Link IDE Stream (index >= num_streams)."""
        return self.num_streams <= stream < self.total_streams

    def stream_block(self, stream: int) -> range:
        """Byte offsets (in configuration space) of a stream's register block: the Selective
        IDE Stream block for a Selective stream, the Link IDE Stream block for a Link one."""
        if self.is_link(stream):
            base = self.offset + 4 * (3 + LINK_BLOCK_DW * (stream - self.num_streams))
            return range(base, base + 4 * LINK_BLOCK_DW)
        return range(
            self.offset + 4 * self._sel_base[stream], self.offset + 4 * self._sel_base[stream + 1]
        )

    def addr_ranges(self, stream: int) -> list[tuple[int, int]]:
        """The memory ranges Selective stream ``stream``'s IDE Address Association blocks
        give (§7.9.26.5.5), in block order, for the blocks whose Valid bit is set: (base,
        limit) byte addresses, base = {Memory Base Upper, Memory Base Lower} with bits [19:0]
        0, limit = {Memory Limit Upper, Memory Limit Lower} with bits [19:0] all ones
        (inclusive).  A Link stream has none: []."""
        if not 0 <= stream < self.total_streams:
            raise ValueError(f"stream {stream}: 0 .. {self.total_streams - 1}")
        ranges = []
        for a1, limit_hi, base_hi in self.streams[stream].addr:
            if a1 & 1:
                base = (base_hi << 32) | (((a1 >> 8) & 0xFFF) << 20)
                limit = (limit_hi << 32) | (((a1 >> 20) & 0xFFF) << 20) | _ADDR_LOW_ONES
                ranges.append((base, limit))
        return ranges

    def tlp_key(self, stream: int, slot: int) -> tuple[bytes, int, bool]:
        """The TLP path's key port: (key, IFV, armed) of a slot; zeros for a wiped slot.

        This is the only reader of key material and is meant for a model of the IDE TLP
        engine; the config and firmware ports never return it.
        """
        if not (0 <= stream < self.total_streams and 0 <= slot < NUM_SLOTS):
            return bytes(32), 0, False
        s = self.streams[stream].slots[slot]
        key = b"".join(w.to_bytes(4, "big") for w in s.words[:8])
        return key, (s.words[8] << 32) | s.words[9], s.armed

    # -- stream state ---------------------------------------------------------------------------
    def _leave_secure(self, j: int, *, failure: bool, send_fail_message: bool) -> None:
        stream = self.streams[j]
        stream.secure = False
        stream.wipe()  # every exit from Secure zeroes and disarms the stream's slots
        if failure:
            stream.failed = True
        if send_fail_message:
            self.fail_messages_sent.append(j)
        for hook in list(self.secure_exit_hooks):
            hook(j)

    def _evaluate(self, j: int) -> None:
        stream = self.streams[j]
        if not stream.secure and stream.may_be_secure():
            stream.secure = True

    def check_failed(self, stream: int) -> None:
        """IDE Check Failed on ``stream``: Secure -> Insecure, and an IDE Fail Message."""
        if self.is_secure(stream):
            self._leave_secure(stream, failure=True, send_fail_message=True)

    def fail_message_received(self, stream: int) -> None:
        """An IDE Fail Message arrived for ``stream``: Received IDE Fail Message is set, and a
        Secure stream becomes Insecure without sending one back."""
        if not 0 <= stream < self.total_streams:
            return
        self.streams[stream].fail_rx = True
        if self.streams[stream].secure:
            self._leave_secure(stream, failure=True, send_fail_message=False)

    # -- config registers -----------------------------------------------------------------------
    def _locate(self, index: int) -> tuple[int, int] | None:
        """(Selective stream, register index within its block) for a capability DW index."""
        if index < self.sel_dw0 or index >= self.size_dw:
            return None
        j = bisect_right(self._sel_base, index) - 1
        return j, index - self._sel_base[j]

    def _locate_link(self, index: int) -> tuple[int, int] | None:
        """(stream index, 0 Control / 1 Status) for a DW index in a Link IDE Stream block."""
        if index < 3 or index >= self.sel_dw0:
            return None
        i, reg = divmod(index - 3, LINK_BLOCK_DW)
        return self.num_streams + i, reg

    def capability(self) -> int:
        """The IDE Capability register (§7.9.26.2)."""
        link = 0
        if self.link_tcs:
            link = CAP_LINK | ((self.link_tcs - 1) << _CAP_LINK_TCS_LSB)
        return IDE_CAP_BASE | self.features | link | ((self.num_streams - 1) << 16)

    @staticmethod
    def _status(s: _Stream) -> int:
        """IDE Stream Status (§7.9.26.4.2, §7.9.26.5.3): State, Received IDE Fail Message."""
        return (_STATE_SECURE if s.secure else 0) | (_STATUS_FAIL_RX if s.fail_rx else 0)

    def read_index(self, index: int) -> int:
        """Capability DW ``index`` as the config port reads it (past the end: 0)."""
        if index == 0:
            return R.IDE_CAP_ID | (R.IDE_CAP_VERSION << 16) | (self.next_offset << 20)
        if index == 1:
            return self.capability()
        link = self._locate_link(index)
        if link is not None:
            j, reg = link
            s = self.streams[j]
            return s.control if reg == 0 else self._status(s)
        located = self._locate(index)
        if located is None:
            return 0  # IDE Control (all reserved for endpoints) and past the end
        j, reg = located
        s = self.streams[j]
        if reg == 0:
            return self.addr_blocks[j]  # this block's own count (§7.9.26.5.1)
        if reg == 1:
            return s.control
        if reg == 2:
            return self._status(s)
        if reg == 3:
            return s.rid1
        if reg == 4:
            return s.rid2
        block, word = divmod(reg - 5, 3)
        return s.addr[block][word]

    def read(self, offset: int) -> int:
        """The config DW at byte ``offset`` from the capability base."""
        return self.read_index(offset // 4)

    def write(self, offset: int, value: int, byte_enable: int = 0xF) -> None:
        """A config write at byte ``offset`` from the capability base; enabled bytes only."""
        if not byte_enable & 0xF:
            return
        link = self._locate_link(offset // 4)
        if link is not None:
            j, reg = link
            s = self.streams[j]
            if reg == 0:
                self._write_control(j, _merge(s.control, value, byte_enable), byte_enable)
            elif _merge(0, value, byte_enable) & _STATUS_FAIL_RX:  # RW1C, byte 3
                s.fail_rx = False
            self._evaluate(j)
            return
        located = self._locate(offset // 4)
        if located is None:
            return  # header, IDE Capability and IDE Control are read-only; past the end
        j, reg = located
        s = self.streams[j]
        if reg == 1:
            self._write_control(j, _merge(s.control, value, byte_enable), byte_enable)
        elif reg == 2:
            if _merge(0, value, byte_enable) & _STATUS_FAIL_RX:  # RW1C, byte 3
                s.fail_rx = False
        elif reg == 3 and not s.enable:
            s.rid1 = _merge(s.rid1, value, byte_enable) & _RID1_MASK
        elif reg == 4 and not s.enable:
            s.rid2 = _merge(s.rid2, value, byte_enable) & _RID2_MASK
        elif reg >= 5:
            block, word = divmod(reg - 5, 3)
            mask = _ADDR1_MASK if word == 0 else _MASK32
            s.addr[block][word] = _merge(s.addr[block][word], value, byte_enable) & mask
        self._evaluate(j)

    def _write_control(self, j: int, merged: int, byte_enable: int) -> None:
        """A write to stream ``j``'s Control: Selective (§7.9.26.5.2) or Link (§7.9.26.4.1)."""
        s = self.streams[j]
        was_enabled = s.enable
        # Algorithm and TEE-Limited are sampled by the write that sets Enable and fixed while
        # it is set; the write that clears Enable does not change them yet.  PCRC Enable must
        # not change while Enable is Set (§7.9.26.5.2, §7.9.26.4.1): fixed the same way, as
        # the HDL does.  A Link stream has no TEE-Limited (nor Default Stream) bit.
        if s.link:
            fixed_mask, free_mask = _CTL_ALG, _LINK_CTL_FREE | _CTL_ENABLE
        else:
            fixed_mask, free_mask = _CTL_FIXED, _CTL_FREE | _CTL_ENABLE
        if self.features & CAP_PHE:
            fixed_mask |= _CTL_PHE
        if self.features & CAP_AGGREGATION:
            free_mask |= _CTL_AGGREGATION
        if self.features & CAP_PCRC:
            fixed_mask |= _CTL_PCRC
        fixed = (s.control if was_enabled else merged) & fixed_mask
        s.control = fixed | (merged & free_mask)
        if byte_enable & 1 and not merged & _CTL_ENABLE:
            s.failed = False  # Enable written 0: the stream may become Secure again
            if s.secure:
                self._leave_secure(j, failure=False, send_fail_message=False)
        if not s.enable:
            for hook in list(self.disable_hooks):
                hook(j)

    # -- firmware map ---------------------------------------------------------------------------
    def fw_read(self, addr: int) -> int:
        """A firmware read of the IDE part of the map; key slots and unlisted addresses: 0."""
        if addr == FW_INFO:
            return (
                self.num_streams
                | (max(self.addr_blocks) << 8)  # the largest count; each block has its own
                | (self.link_tcs << 12)
                | (self.size_dw << 16)
                | (FW_MAP_VERSION << 24)
            )
        if addr == FW_CMD:
            return int(self.cmd_status)
        if FW_STREAM <= addr < FW_STREAM + 2 * self.total_streams:
            j, which = divmod(addr - FW_STREAM, 2)
            s = self.streams[j]
            if which:
                return s.armed | (s.loaded << 16)
            return (
                (_STATE_SECURE if s.secure else 0)
                | (int(s.enable) << 4)
                | (int(s.failed) << 5)
                | (s.control & _CTL_STREAM_ID)
            )
        if FW_CAP <= addr < FW_CAP + 64:
            return self.read_index(addr - FW_CAP)
        return 0  # the key region is write-only

    def fw_write(self, addr: int, value: int) -> None:
        """A firmware write (whole DW) to the IDE part of the map."""
        value &= _MASK32
        if addr == FW_CMD:
            self.cmd_status = self._command(value)
        elif FW_KEY <= addr <= 0xFFF:
            j, slot, dw = (addr >> 8) & 0x7, (addr >> 4) & 0xF, addr & 0xF
            if j >= self.total_streams or slot >= NUM_SLOTS or dw >= SLOT_DW:
                return
            s = self.streams[j].slots[slot]
            if s.armed:
                return  # an armed slot is not overwritten: K_SET_STOP it first
            s.words[dw] = value
            s.written |= 1 << dw

    def _command(self, value: int) -> IdeCmdStatus:
        op, j, kss = (value >> 16) & 0xF, (value >> 8) & 0xFF, value & 0xFF
        if op not in tuple(_IdeOp):
            return IdeCmdStatus.UNKNOWN_OP
        if j >= self.total_streams:
            return IdeCmdStatus.BAD_STREAM
        stream = self.streams[j]
        if op == _IdeOp.WIPE:
            if stream.secure:
                self._leave_secure(j, failure=True, send_fail_message=True)
            else:
                stream.wipe()
            return IdeCmdStatus.DONE
        if kss >> 4 > 2:
            return IdeCmdStatus.BAD_SUB_STREAM
        slot = stream.slots[(kss & 0x3) | ((kss >> 2) & 0xC)]
        if op == _IdeOp.K_SET_GO:
            if not slot.loaded:
                return IdeCmdStatus.NOT_LOADED
            slot.armed = True
            self._evaluate(j)
        else:
            slot.wipe()  # K_SET_STOP: disarmed, zeroed; the state does not change by itself
        return IdeCmdStatus.DONE


# -- the TDI ----------------------------------------------------------------------------------
BAR0_SIZE_LOG2 = 12  # 4 KiB
_BAR0_TYPE = 0b0100  # memory, 64-bit, non-prefetchable
_CMD_MEM = 1 << 1  # Command: Memory Space Enable
_CMD_BME = 1 << 2  # Command: Bus Master Enable
TDI_MAP_BASE = 0x100
TDI_MAP_DW = 0x20
TDI_MAP_VERSION = 0x01


class TdiState(IntEnum):
    """The TDISP TDI_STATE codes."""

    CONFIG_UNLOCKED = 0
    CONFIG_LOCKED = 1
    RUN = 2
    ERROR = 3


class TdiCause(IntEnum):
    """Why the TDI last entered ERROR (TDI_STATE [15:8])."""

    NONE = 0
    CONFIG_WRITE = 1
    STREAM_INSECURE = 2
    FIRMWARE_FAIL = 3
    POISONED_TLP = 4


class TdiOp(IntEnum):
    LOCK = 1
    START = 2
    STOP = 3
    FAIL = 4


class TdiCmdStatus(IntEnum):
    DONE = 0
    NOT_ALLOWED = 1
    UNKNOWN_OP = 2
    BAD_STREAM = 3


class _TdiReg(IntEnum):
    STATE = 0
    CMD = 1
    BAR0_LO = 2
    BAR0_HI = 3
    BAR0_INFO = 4
    NUM_STREAMS = 5


# Type 0 header registers (DW numbers) a configuration write to which breaks a locked TDI.
_REG_COMMAND = 1
_REGS_BARS = range(4, 10)
_REG_ROM = 12


class FakeTdi:
    """The TDI state machine of function 0, its enforcement, and its header shadows.

    Firmware map (DW ``0x100 + offset``): 0 TDI_STATE (RO: [1:0] state, [6:4] bound stream,
    b7 bound, [15:8] cause of the last entry into ERROR, [31:24] map version 01h); 1 TDI_CMD
    (write: [3:0] op 1 LOCK / 2 START / 3 STOP / 4 FAIL, [10:8] stream index for LOCK; read:
    status 0 done, 1 not allowed in this state, 2 unknown op, 3 LOCK of a stream that does
    not exist or is not Secure); 2/3 BAR0 low/high as the host programmed them; 4 BAR0_INFO
    ([5:0] size log2, b8 Memory Space Enable, b9 Bus Master Enable); 5 NUM_STREAMS.

    A TDI binds a Selective IDE Stream only (indices 0 .. ``ide.num_streams`` - 1, as the HDL
    wires only the Selective streams' state to its TDI block): LOCK of a Link stream's index
    is BAD_STREAM, and NUM_STREAMS counts the Selective streams.

    The configuration space reports every config write to :meth:`config_write`; while
    CONFIG_LOCKED or RUN, a write to Command (byte 0 or 1), BAR0-5, the Expansion ROM BAR or
    the bound stream's Selective IDE registers forces ERROR, as does the bound stream leaving
    Secure and :meth:`poisoned_request`.  ERROR holds until STOP or :meth:`reset`.
    """

    def __init__(self, ide: FakeIdeCap) -> None:
        self.ide = ide
        ide.secure_exit_hooks.append(self._stream_left_secure)
        self._power_on()

    def _power_on(self) -> None:
        self.state = TdiState.CONFIG_UNLOCKED
        self.bound: int | None = None
        self.cause = TdiCause.NONE
        self.cmd_status = TdiCmdStatus.DONE
        self.command = 0  # Command register: Memory Space Enable, Bus Master Enable
        self.bar0_lo = _BAR0_TYPE
        self.bar0_hi = 0

    def __repr__(self) -> str:
        return f"FakeTdi(state={self.state.name}, bound={self.bound}, cause={self.cause.name})"

    def reset(self) -> None:
        """Conventional reset or FLR of function 0: CONFIG_UNLOCKED, header registers to their
        power-on values, and the IDE capability reset with every key wiped."""
        self.ide.reset()
        self._power_on()

    # -- enforcement ----------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        return self.state in (TdiState.CONFIG_LOCKED, TdiState.RUN)

    def _error(self, cause: TdiCause) -> None:
        if self.locked:
            self.state = TdiState.ERROR
            self.cause = cause

    def _stream_left_secure(self, stream: int) -> None:
        if stream == self.bound:
            self._error(TdiCause.STREAM_INSECURE)

    def poisoned_request(self) -> None:
        """A poisoned request reached the interface."""
        self._error(TdiCause.POISONED_TLP)

    def _breaks_lock(self, reg: int, byte_enable: int) -> bool:
        if reg == _REG_COMMAND:
            return bool(byte_enable & 0b0011)
        if reg in _REGS_BARS or reg == _REG_ROM:
            return True
        if self.bound is not None:
            return 4 * reg in self.ide.stream_block(self.bound)
        return False

    def config_write(self, reg: int, value: int, byte_enable: int = 0xF) -> None:
        """A configuration write to function 0's DW ``reg`` (it completes normally)."""
        byte_enable &= 0xF
        if not byte_enable:
            return
        if self._breaks_lock(reg, byte_enable):
            self._error(TdiCause.CONFIG_WRITE)
        if reg == _REG_COMMAND:
            self.command = _merge(self.command, value, byte_enable) & (_CMD_MEM | _CMD_BME)
        elif reg == 4:
            address = _merge(self.bar0_lo, value, byte_enable)
            self.bar0_lo = (address & ~((1 << BAR0_SIZE_LOG2) - 1) & _MASK32) | _BAR0_TYPE
        elif reg == 5:
            self.bar0_hi = _merge(self.bar0_hi, value, byte_enable)

    # -- header reads (the hard IP's registers, which the shadows equal) -----------------------
    def header_read(self, reg: int) -> int | None:
        """Command (Status reads 0), BAR0 and BAR1; None for the other header registers."""
        return {_REG_COMMAND: self.command, 4: self.bar0_lo, 5: self.bar0_hi}.get(reg)

    # -- firmware map ---------------------------------------------------------------------------
    def fw_read(self, offset: int) -> int:
        """Firmware read of TDI register ``offset`` (address - 0x100)."""
        if offset == _TdiReg.STATE:
            bound = self.bound if self.bound is not None else 0
            return (
                int(self.state)
                | (bound << 4)
                | (int(self.bound is not None) << 7)
                | (int(self.cause) << 8)
                | (TDI_MAP_VERSION << 24)
            )
        if offset == _TdiReg.CMD:
            return int(self.cmd_status)
        if offset == _TdiReg.BAR0_LO:
            return self.bar0_lo
        if offset == _TdiReg.BAR0_HI:
            return self.bar0_hi
        if offset == _TdiReg.BAR0_INFO:
            return (
                BAR0_SIZE_LOG2
                | (int(bool(self.command & _CMD_MEM)) << 8)
                | (int(bool(self.command & _CMD_BME)) << 9)
            )
        if offset == _TdiReg.NUM_STREAMS:
            return self.ide.num_streams & 0xF
        return 0

    def fw_write(self, offset: int, value: int) -> None:
        if offset == _TdiReg.CMD:
            self.cmd_status = self._command(value & 0xF, (value >> 8) & 0x7)

    def _command(self, op: int, stream: int) -> TdiCmdStatus:
        if op == TdiOp.LOCK:
            if self.state != TdiState.CONFIG_UNLOCKED:
                return TdiCmdStatus.NOT_ALLOWED
            if stream >= self.ide.num_streams or not self.ide.is_secure(stream):
                return TdiCmdStatus.BAD_STREAM  # no such Selective stream, or not Secure
            self.state, self.bound = TdiState.CONFIG_LOCKED, stream
        elif op == TdiOp.START:
            if self.state != TdiState.CONFIG_LOCKED:
                return TdiCmdStatus.NOT_ALLOWED
            self.state = TdiState.RUN
        elif op == TdiOp.STOP:
            self.state, self.bound, self.cause = TdiState.CONFIG_UNLOCKED, None, TdiCause.NONE
        elif op == TdiOp.FAIL:
            if not self.locked:
                return TdiCmdStatus.NOT_ALLOWED
            self._error(TdiCause.FIRMWARE_FAIL)
        else:
            return TdiCmdStatus.UNKNOWN_OP
        return TdiCmdStatus.DONE


class FakeFirmwareRegs(FirmwareRegisterPort):
    """The firmware register port: 0x000-0x07F and 0x800-0xFFF go to the IDE capability,
    0x100-0x11F to the TDI; every other address reads 0 and ignores writes."""

    def __init__(self, ide: FakeIdeCap, tdi: FakeTdi) -> None:
        if tdi.ide is not ide:
            raise ValueError("the TDI must watch the same IDE capability")
        self.ide = ide
        self.tdi = tdi
        self.reads = 0
        self.writes = 0

    async def read(self, addr: int) -> int:
        self.reads += 1
        addr &= 0xFFF
        if addr < 0x080 or addr >= FW_KEY:
            return self.ide.fw_read(addr)
        if TDI_MAP_BASE <= addr < TDI_MAP_BASE + TDI_MAP_DW:
            return self.tdi.fw_read(addr - TDI_MAP_BASE)
        return 0

    async def write(self, addr: int, value: int) -> None:
        self.writes += 1
        addr &= 0xFFF
        if addr < 0x080 or addr >= FW_KEY:
            self.ide.fw_write(addr, value)
        elif TDI_MAP_BASE <= addr < TDI_MAP_BASE + TDI_MAP_DW:
            self.tdi.fw_write(addr - TDI_MAP_BASE, value & _MASK32)
