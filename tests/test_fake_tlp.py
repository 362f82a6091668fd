"""The fake's TLP path (hil._fake_tlp) on its own: plain requests, bad input, a misrouted IDE
TLP, and a Link IDE Stream (its TC, its hold on that TC's plain requests).  The IDE traffic
vectors run on it through the fake rig (tests/test_plugin.py, tests/test_mutants.py); these are
the cases no vector sends."""

from __future__ import annotations

import asyncio

from hil._fake_hw import CAP_CONFIG_REQUESTS
from hil._fake_tlp import FakeTlpPath
from hil.codec.ide_km import KeyDirection, KeySlot
from hil.codec.ide_tlp import (
    CfgRead,
    CfgWrite,
    Completion,
    CplStatus,
    IdePrefix,
    IdeTlp,
    MemRead,
    MemWrite,
    decode_tlp,
)
from hil.fake import FakeConfigSpace, FakeIdeCap, FakeTdi
from hil.ide_model import IFV_INITIAL, IdeStreamModel, PortSide, StreamKind

BAR0 = 0xE000_0000
LINK = 2  # the stream index of Link IDE block 0, after the two Selective streams
LINK_ID, LINK_TC = 0x4C, 1
LINK_CTL = 0x0C  # its Control, from the capability base (DW 3; Status is DW 4)
RID = 0x0200  # a requester no RID association would admit: a Link stream has none


def _path(memory_enable: bool = True, ide: FakeIdeCap | None = None) -> FakeTlpPath:
    tdi = FakeTdi(ide or FakeIdeCap())
    tdi.bar0_lo = BAR0 | 0b0100
    tdi.command = 0b10 if memory_enable else 0
    return FakeTlpPath(tdi.ide, tdi, completer_id=0x0100)


def _completion(path: FakeTlpPath) -> Completion:
    assert len(path.sent) == 1
    cpl = decode_tlp(path.sent.popleft())
    assert isinstance(cpl, Completion)
    return cpl


def test_plain_write_then_read_with_byte_enables() -> None:
    path = _path()
    path.receive(MemWrite.for_bytes(BAR0 + 0x21, b"\xaa\xbb\xcc", requester_id=7).encode())
    assert not path.sent  # posted: no answer
    path.receive(MemRead.for_bytes(BAR0 + 0x20, 8, requester_id=7, tag=5).encode())
    cpl = _completion(path)
    assert cpl.status == CplStatus.SC and (cpl.tag, cpl.requester_id) == (5, 7)
    assert cpl.payload == b"\x00\xaa\xbb\xcc\x00\x00\x00\x00"
    assert cpl.byte_count == 8 and cpl.completer_id == 0x0100
    path.receive(MemRead.for_bytes(BAR0 + 0x22, 3, tag=6).encode())
    cpl = _completion(path)
    assert (cpl.byte_count, cpl.lower_address) == (3, 0x22)


def test_outside_bar0_or_without_memory_space_enable_is_unsupported() -> None:
    for path, address in ((_path(), BAR0 + 0x1000), (_path(memory_enable=False), BAR0)):
        path.receive(MemWrite.for_bytes(address, b"\x01" * 4).encode())
        path.receive(MemRead.for_bytes(address, 4, tag=1).encode())
        assert _completion(path).status == CplStatus.UR
        assert path.counters["ur"] == 2 and not any(path.memory)


def test_bad_bytes_are_counted_malformed_and_change_nothing() -> None:
    path = _path()
    good = MemWrite.for_bytes(BAR0, b"\x55" * 8).encode()
    for raw in (b"", b"\x00", good[:-1], good + b"\x00" * 4, bytes([0x92, 0, 0, 0])):
        path.receive(raw)
    assert path.counters["malformed"] == 5
    assert not path.sent and not any(path.memory)


def test_an_ide_tlp_for_no_enabled_stream_is_misrouted() -> None:
    path = _path()
    ide = IdeTlp(prefix=IdePrefix(stream_id=9), tlp=MemWrite.for_bytes(BAR0, b"\x01" * 4),
                 mac=bytes(12))  # fmt: skip
    path.receive(ide.encode())
    assert path.counters["misrouted"] == 1 and not any(path.memory) and not path.sent


# -- Link IDE ---------------------------------------------------------------------------------
def _keyed(path: FakeTlpPath, index: int, rp: IdeStreamModel) -> IdeStreamModel:
    """Stream ``index`` keyed (key set 0, through the firmware port, as IDE_KM would) and
    ``rp``, the root port's end, keyed to match."""
    ide = path.ide
    for sub in range(3):
        for device_dir in KeyDirection:
            key = bytes([0x40 + 2 * sub + device_dir + index]) * 32
            code = 4 * sub + 2 * device_dir  # {sub-stream, RxTxB, key set 0}
            words = [int.from_bytes(key[i : i + 4], "big") for i in range(0, 32, 4)]
            for d, word in enumerate([*words, 0, IFV_INITIAL]):
                ide.fw_write(0x800 | index << 8 | code << 4 | d, word)
            ide.fw_write(0x001, 1 << 16 | index << 8 | device_dir << 1 | sub << 4)  # K_SET_GO
            slot = KeySlot(0, KeyDirection(1 - device_dir), sub)  # the device's Rx: our Tx
            rp.key_prog(slot, key, IFV_INITIAL)
            rp.k_set_go(slot)
    return rp


def _link_stream(path: FakeTlpPath) -> IdeStreamModel:
    """Link IDE block 0 keyed and enabled for ``LINK_TC``; returns the root port's end."""
    rp = IdeStreamModel(LINK_ID, side=PortSide.ROOT_PORT, kind=StreamKind.LINK, tc=LINK_TC)
    _keyed(path, LINK, rp)
    path.ide.write(LINK_CTL, LINK_ID << 24 | LINK_TC << 19 | 1)  # no RID registers to write
    rp.set_enabled(True)
    assert path.ide.is_secure(LINK) and rp.secure
    return rp


def _link_path() -> tuple[FakeTlpPath, IdeStreamModel]:
    path = _path(ide=FakeIdeCap(link_tcs=1))
    return path, _link_stream(path)


def _send(path: FakeTlpPath, rp: IdeStreamModel, tlp: MemWrite | MemRead) -> None:
    ide = rp.protect(tlp)
    assert ide is not None
    path.receive(ide.encode())


def _plain_write(path: FakeTlpPath, offset: int, data: bytes, tc: int = LINK_TC) -> None:
    path.receive(MemWrite.for_bytes(BAR0 + offset, data, requester_id=RID, tc=tc).encode())


def _plain_read(path: FakeTlpPath, offset: int, size: int, tc: int = LINK_TC) -> bytes | None:
    """The bytes a plain read gets back, or None if it gets no completion."""
    path.receive(MemRead.for_bytes(BAR0 + offset, size, requester_id=RID, tag=9, tc=tc).encode())
    if not path.sent:
        return None
    cpl = _completion(path)
    assert cpl.status == CplStatus.SC and cpl.tc == tc
    return cpl.payload[offset & 3 : (offset & 3) + size]


def _unchecked(tc: int) -> bytes:
    """An IDE write with the Link stream's Stream ID on ``tc`` and a MAC of zeros: it fails the
    check of any stream it reaches."""
    tlp = MemWrite.for_bytes(BAR0, b"\x01" * 4, tc=tc)
    return IdeTlp(prefix=IdePrefix(stream_id=LINK_ID), tlp=tlp, mac=bytes(12)).encode()


def test_a_link_stream_carries_protected_writes_and_reads_of_its_tc() -> None:
    path, rp = _link_path()
    _send(path, rp, MemWrite.for_bytes(BAR0 + 0x41, b"\x5a" * 6, requester_id=RID, tc=LINK_TC))
    assert path.memory[0x40:0x48] == b"\x00" + b"\x5a" * 6 + b"\x00"
    _send(path, rp, MemRead.for_bytes(BAR0 + 0x41, 6, requester_id=RID, tag=3, tc=LINK_TC))
    assert len(path.sent) == 1
    got = rp.receive(path.sent.popleft())  # the completion on the Link stream, checked
    assert got is not None
    cpl = got.tlp
    assert isinstance(cpl, Completion) and cpl.status == CplStatus.SC
    assert (cpl.tc, cpl.tag, cpl.requester_id, cpl.byte_count) == (LINK_TC, 3, RID, 6)
    assert cpl.payload[1:7] == b"\x5a" * 6
    assert (path.counters["rx_ok"], path.counters["tx"], path.counters["ur"]) == (2, 1, 0)
    assert path.ide.is_secure(LINK) and path.ide.fail_messages_sent == []


def test_an_ide_tlp_of_another_tc_with_the_link_stream_id_is_misrouted() -> None:
    path, _ = _link_path()
    for tc in (0, 2, 7):
        path.receive(_unchecked(tc))
    assert path.counters["misrouted"] == 3 and path.counters["rx_ok"] == 0
    assert path.ide.is_secure(LINK) and not any(path.memory) and not path.sent
    # The same TLP on the stream's TC reaches the stream and fails its check.
    path.receive(_unchecked(LINK_TC))
    assert path.counters["misrouted"] == 3
    assert not path.ide.is_secure(LINK) and path.ide.fail_messages_sent == [LINK]


def test_a_link_stream_holds_its_tc_once_an_ide_tlp_came_on_the_sub_stream() -> None:
    """§6.33.4: plain requests of the Link stream's TC are taken until the first IDE TLP of
    their Sub-Stream, then discarded silently while the stream is enabled; other TCs pass."""
    path, rp = _link_path()
    _plain_write(path, 0x80, b"\x11" * 4)  # before any IDE TLP: taken
    assert _plain_read(path, 0x80, 4) == b"\x11" * 4
    _send(path, rp, MemWrite.for_bytes(BAR0 + 0x80, b"\x22" * 4, requester_id=RID, tc=LINK_TC))
    # Posted held now, Non-Posted not yet.
    _plain_write(path, 0x80, b"\x33" * 4)
    assert path.memory[0x80:0x84] == b"\x22" * 4 and path.counters["discarded"] == 1
    assert _plain_read(path, 0x80, 4) == b"\x22" * 4
    _send(path, rp, MemRead.for_bytes(BAR0 + 0x80, 4, requester_id=RID, tag=1, tc=LINK_TC))
    assert rp.receive(path.sent.popleft()) is not None
    assert _plain_read(path, 0x80, 4) is None  # Non-Posted held: no completion at all
    assert path.counters["discarded"] == 2 and path.counters["ur"] == 0
    # Other TCs are not the stream's.
    _plain_write(path, 0x90, b"\x44" * 4, tc=0)
    assert _plain_read(path, 0x90, 4, tc=0) == b"\x44" * 4
    assert _plain_read(path, 0x90, 4, tc=LINK_TC + 1) == b"\x44" * 4
    assert path.ide.is_secure(LINK) and path.ide.fail_messages_sent == []
    # Insecure but still enabled: the hold stays.
    path.ide.check_failed(LINK)
    assert not path.ide.is_secure(LINK)
    _plain_write(path, 0x80, b"\x55" * 4)
    assert _plain_read(path, 0x80, 4) is None and path.memory[0x80:0x84] == b"\x22" * 4
    # Enable = 0 lets go, and enabling again does not hold until IDE TLPs come again.
    path.ide.write(LINK_CTL, LINK_ID << 24 | LINK_TC << 19)
    _plain_write(path, 0x80, b"\x66" * 4)
    assert _plain_read(path, 0x80, 4) == b"\x66" * 4
    path.ide.write(LINK_CTL, LINK_ID << 24 | LINK_TC << 19 | 1)
    _plain_write(path, 0x80, b"\x77" * 4)
    assert _plain_read(path, 0x80, 4) == b"\x77" * 4


def test_a_reset_ends_the_link_hold() -> None:
    path, rp = _link_path()
    _send(path, rp, MemWrite.for_bytes(BAR0, b"\x22" * 4, requester_id=RID, tc=LINK_TC))
    _send(path, rp, MemRead.for_bytes(BAR0, 4, requester_id=RID, tag=1, tc=LINK_TC))
    path.sent.clear()
    assert _plain_read(path, 0, 4) is None
    path.tdi.reset()  # FLR: the capability and the TDI to power-on values
    path.tdi.bar0_lo = BAR0 | 0b0100  # the host programs BAR0 and Memory Space Enable again
    path.tdi.command = 0b10
    path.ide.write(LINK_CTL, LINK_ID << 24 | LINK_TC << 19 | 1)  # enabled again, not keyed
    _plain_write(path, 0, b"\x33" * 4)
    assert _plain_read(path, 0, 4) == b"\x33" * 4


def test_the_link_stream_follows_a_tc_written_while_it_is_enabled() -> None:
    """TC stays writable while Enable is Set (§7.9.26.4.1): the stream, its hold and its
    completions move to the new TC, as the HDL reads the field per TLP."""
    path, rp = _link_path()
    _send(path, rp, MemWrite.for_bytes(BAR0, b"\x22" * 4, requester_id=RID, tc=LINK_TC))
    path.ide.write(LINK_CTL, LINK_ID << 24 | 3 << 19 | 1)
    assert path.ide.is_secure(LINK)
    rp._core.tc = 3  # the root port's end moves with it (the model has no setter)
    _send(path, rp, MemRead.for_bytes(BAR0, 4, requester_id=RID, tag=2, tc=3))
    got = rp.receive(path.sent.popleft())
    assert got is not None and got.tlp.tc == 3 and got.tlp.payload == b"\x22" * 4
    _plain_write(path, 0, b"\x33" * 4, tc=3)  # held on the new TC, released on the old
    assert _plain_read(path, 0, 4, tc=LINK_TC) == b"\x22" * 4
    path.receive(_unchecked(LINK_TC))
    assert path.counters["misrouted"] == 1 and path.ide.is_secure(LINK)


# --------------------------------------------------------------------------------------------
# Configuration Requests as IDE TLPs (Selective IDE for Configuration Requests, §6.33.4)
# --------------------------------------------------------------------------------------------

SEL_CTL = (0x10, 0x30)  # Selective blocks 0 and 1: Control (capability DW 4 and 12)
CFG_IDS = (0x21, 0x22)


def _config_path(features: int = CAP_CONFIG_REQUESTS) -> tuple[FakeTlpPath, FakeConfigSpace]:
    config = FakeConfigSpace(tdi=FakeTdi(FakeIdeCap(features=features)))
    path = FakeTlpPath(config.ide, config.tdi, completer_id=0x0100, config=config)
    return path, config


def _selective(path: FakeTlpPath, j: int) -> IdeStreamModel:
    rp = _keyed(path, j, IdeStreamModel(CFG_IDS[j], side=PortSide.ROOT_PORT))
    path.ide.write(SEL_CTL[j] + 0xC, 1)  # RID Association: V (Base = Limit = 0)
    path.ide.write(SEL_CTL[j], CFG_IDS[j] << 24 | 1)
    rp.set_enabled(True)
    assert path.ide.is_secure(j)
    return rp


def _cfg(path: FakeTlpPath, rp: IdeStreamModel, req: CfgRead | CfgWrite) -> Completion | None:
    """Send ``req`` protected on ``rp``'s stream; its completion (checked by the model)."""
    ide = rp.protect(req)
    assert ide is not None
    path.receive(ide.encode())
    if not path.sent:
        return None
    got = rp.receive(path.sent.popleft())
    assert got is not None and isinstance(got.tlp, Completion)
    return got.tlp


def test_ide_configuration_requests_are_answered_on_the_stream() -> None:
    path, config = _config_path()
    rp = _selective(path, 0)
    cpl = _cfg(path, rp, CfgRead(target_id=0x0100, register=0, tag=1))
    assert cpl is not None and cpl.status == CplStatus.SC and cpl.byte_count == 4
    assert int.from_bytes(cpl.payload, "little") == config.read_now(0) == 0x0E111234
    # A write to stream 1's RID Limit, then read back, both on stream 0.
    rid1 = config.ide.offset + SEL_CTL[1] + 8
    cpl = _cfg(path, rp, CfgWrite(target_id=0x0100, register=rid1 // 4, payload=bytes(
        [0, 0x5A, 0xC3, 0])))  # fmt: skip
    assert cpl is not None and cpl.status == CplStatus.SC and not cpl.payload
    cpl = _cfg(path, rp, CfgRead(target_id=0x0100, register=rid1 // 4, tag=2))
    assert cpl is not None and cpl.payload == bytes([0, 0x5A, 0xC3, 0])


def test_ide_configuration_requests_the_function_does_not_take_are_unsupported() -> None:
    for features, req in (
        (0, CfgRead(target_id=0x0100, register=0)),  # not advertised
        (CAP_CONFIG_REQUESTS, CfgRead(target_id=0x0100, register=0, type1=False)),  # Type 0
        (CAP_CONFIG_REQUESTS, CfgRead(target_id=0x0108, register=0)),  # another function
    ):
        path, config = _config_path(features)
        cpl = _cfg(path, _selective(path, 0), req)
        assert cpl is not None and cpl.status == CplStatus.UR, req
        assert path.config_stream is None and asyncio.run(config.read32(0)) != 0xFFFF_FFFF


def test_the_stream_that_took_one_holds_the_configuration_requests_until_disabled() -> None:
    path, config = _config_path()
    rp0, rp1 = _selective(path, 0), _selective(path, 1)
    assert asyncio.run(config.read32(0)) == 0x0E111234  # before: the plain path is taken
    assert _cfg(path, rp0, CfgRead(target_id=0x0100, register=0)) is not None
    assert asyncio.run(config.read32(0)) == 0xFFFF_FFFF  # discarded: no Completion
    asyncio.run(config.write32(config.ide.offset + SEL_CTL[0], 0))  # discarded too
    assert path.ide.is_secure(0)
    assert _cfg(path, rp1, CfgRead(target_id=0x0100, register=0)) is None  # another stream
    assert path.counters["discarded"] == 1
    # The write that clears Enable is answered on the stream, then IDE stops.
    ctl = CfgWrite(target_id=0x0100, register=(config.ide.offset + SEL_CTL[0]) // 4,
                   payload=(CFG_IDS[0] << 24).to_bytes(4, "little"))  # fmt: skip
    cpl = _cfg(path, rp0, ctl)
    assert cpl is not None and cpl.status == CplStatus.SC
    assert not path.ide.is_secure(0) and path.config_stream is None
    assert asyncio.run(config.read32(0)) == 0x0E111234
