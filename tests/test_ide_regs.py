"""The IDE capability's register layout, walked as PCIe 6.x §7.9.26 defines it."""

from __future__ import annotations

import asyncio

import pytest

from hil import _regs as R
from hil._fake_hw import FakeIdeCap
from hil.errors import PeerProtocolError
from hil.fake import FakeConfigSpace
from hil.host.ide_regs import (
    CAP_LINK,
    CAP_SELECTIVE,
    IdeCapability,
    IdeLayout,
    addr1_value,
    selective_block,
)

CAP = 0x200


def image(capability: int, addr_counts: list[int]) -> dict[int, int]:
    """A capability at CAP: header, the IDE Capability register, Link blocks, then one
    Selective block per entry of ``addr_counts`` (its own Address Association count)."""
    words = {CAP: 0x0030 | (1 << 16), CAP + 4: capability}
    pos = CAP + 0x0C + 8 * IdeCapability(capability).link_blocks
    for count in addr_counts:
        words[pos] = count
        pos += 20 + 12 * count
    return words


def walk(words: dict[int, int]) -> IdeLayout:
    return IdeLayout.from_reader(CAP, lambda off: words.get(off, 0))


def test_the_endpoints_layout_matches_the_hardware_model() -> None:
    for blocks in ([1, 1], [2, 2], [1, 2]):  # [1, 2]: the endpoint's Selective blocks
        ide = FakeIdeCap(num_streams=2, stream_addr_blocks=blocks)
        layout = IdeLayout.from_reader(
            R.IDE_CAP_OFFSET, lambda off, ide=ide: ide.read(off - ide.offset)
        )
        assert layout.link_blocks == ()
        assert [b.base for b in layout.selective_blocks] == [
            ide.stream_block(j).start for j in range(2)
        ]
        assert layout.end == ide.stream_block(1).stop
        assert [b.addr_blocks for b in layout.selective_blocks] == blocks
        assert layout.capability.tee_limited and not layout.capability.sel_cfg


def test_link_blocks_come_first_two_dw_per_tc() -> None:
    cap = CAP_LINK | CAP_SELECTIVE | (3 << 13) | (1 << 16)  # 4 TCs, 2 Selective streams
    layout = walk(image(cap, [1, 1]))
    assert [b.control for b in layout.link_blocks] == [CAP + 0x0C + 8 * k for k in range(4)]
    assert [b.status for b in layout.link_blocks] == [CAP + 0x10 + 8 * k for k in range(4)]
    first = layout.selective_blocks[0]
    assert first.base == CAP + 0x0C + 32
    assert first.control == first.base + 4 and first.status == first.base + 8
    assert layout.selective_blocks[1].base == first.base + 32


def test_no_link_ide_means_no_link_blocks_whatever_the_tc_field_says() -> None:
    layout = walk(image(CAP_SELECTIVE | (7 << 13), [1]))
    assert layout.link_blocks == ()
    assert layout.selective_blocks[0].base == CAP + 0x0C


def test_each_block_has_its_own_address_association_count() -> None:
    layout = walk(image(CAP_SELECTIVE | (2 << 16), [1, 2, 0]))
    bases = [b.base for b in layout.selective_blocks]
    assert bases == [CAP + 0x0C, CAP + 0x0C + 32, CAP + 0x0C + 32 + 44]
    second = layout.selective_blocks[1]
    assert [second.addr1(1), second.addr2(1), second.addr3(1)] == [
        second.base + 32,
        second.base + 36,
        second.base + 40,
    ]
    with pytest.raises(IndexError):
        second.addr1(2)
    assert not layout.uniform
    assert layout.kernel_selective_blocks == 1  # Linux stops at block 1 (its count differs)


def test_two_address_blocks_per_stream_as_the_hdl_allows() -> None:
    layout = walk(image(CAP_SELECTIVE | (1 << 16), [2, 2]))
    assert layout.uniform and layout.kernel_selective_blocks == 2
    assert layout.selective_blocks[1].base == CAP + 0x0C + 44
    assert layout.selective_blocks[0].association_registers()[-1] == CAP + 0x0C + 40


def test_a_capability_running_past_config_space_is_the_devices_error() -> None:
    with pytest.raises(PeerProtocolError, match="past the end"):
        walk(image(CAP_SELECTIVE | (255 << 16), [15] * 256))
    with pytest.raises(PeerProtocolError, match="no IDE capability"):
        IdeLayout.from_reader(CAP, lambda off: 0x0001_002E)


def test_async_walk_over_a_config_space() -> None:
    config = FakeConfigSpace()
    block = asyncio.run(selective_block(config, R.IDE_CAP_OFFSET, 1))
    assert block.base == config.ide.stream_block(1).start
    with pytest.raises(PeerProtocolError, match="no block 2"):
        asyncio.run(selective_block(config, R.IDE_CAP_OFFSET, 2))


def test_address_association_register_1() -> None:
    value = addr1_value(0xFE00_0000, 0xFE0F_FFFF)
    assert value & 1 and (value >> 8) & 0xFFF == 0xFE0 and value >> 20 == 0xFE0
