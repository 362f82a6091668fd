"""The fake's TLP path (hil._fake_tlp) on its own: plain requests, bad input, a misrouted IDE
TLP.  The IDE traffic vectors run on it through the fake rig (tests/test_plugin.py,
tests/test_mutants.py); these are the cases no vector sends."""

from __future__ import annotations

from hil._fake_tlp import FakeTlpPath
from hil.codec.ide_tlp import (
    Completion,
    CplStatus,
    IdePrefix,
    IdeTlp,
    MemRead,
    MemWrite,
    decode_tlp,
)
from hil.fake import FakeIdeCap, FakeTdi

BAR0 = 0xE000_0000


def _path(memory_enable: bool = True) -> FakeTlpPath:
    tdi = FakeTdi(FakeIdeCap())
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
