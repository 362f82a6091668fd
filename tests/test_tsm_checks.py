"""How the tsm vectors decide whether a connect set up a stream, on sysfs trees in a temporary
directory: from the streamH.R.E links and the stream registers, never from
available_secure_streams being there (it is on every host bridge of a PCI_IDE kernel)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_lab import BDF, make_sysfs

from hil import _regs as R
from hil.errors import DeviceFailure
from hil.lab import KernelTsm, SysfsConfigSpace
from hil.transport import AsyncioTimebase
from hil.vectors import VectorContext
from hil.vectors.tsm import _check_connected, _check_torn_down, _view

EP_CTL = R.IDE_CAP_OFFSET + 0x0C + 4  # the device's Selective block 0: Control, Status, RID 2
EP_STS, EP_RID2 = EP_CTL + 4, EP_CTL + 12
RP_CTL = 0x100 + 0x0C + 8 + 4  # the Root Port's block 0, after its one Link IDE block
RP_STS = RP_CTL + 4


class Tree:
    def __init__(self, root: Path, **kw: bool) -> None:
        self.dev = make_sysfs(root, **kw)
        self.root = root
        self.tsm = KernelTsm(BDF, root)
        self.config = SysfsConfigSpace(BDF, root)
        self.ctx = VectorContext(
            rig_name="tmp",
            rig_kind="lab",
            provides=frozenset({"tsm"}),
            timebase=AsyncioTimebase(),
            config=self.config,
            resources={"tsm": self.tsm},
        )

    def poke(self, who: str, offset: int, value: int) -> None:
        path = (self.dev if who == "ep" else self.dev.parent) / "config"
        image = bytearray(path.read_bytes())
        image[offset : offset + 4] = value.to_bytes(4, "little")
        path.write_bytes(bytes(image))

    def kernel_says_connected(self, *, available: int | None = None) -> None:
        for name in ("tsm/connect", "authenticated"):
            (self.dev / name).write_text("tsm0\n")
        (self.dev / "tsm" / "dsm").write_text(f"{BDF}\n")
        if available is not None:
            (self.dev.parents[1] / "available_secure_streams").write_text(f"{available}\n")

    def link(self, name: str = "stream0.0.0") -> None:
        (self.dev.parents[1] / name).symlink_to(self.dev)

    def check(self, before):  # type: ignore[no-untyped-def]
        return asyncio.run(_check_connected(self.ctx, self.tsm, "tsm0", before))

    def view(self):  # type: ignore[no-untyped-def]
        return asyncio.run(_view(self.ctx, self.tsm))


def measured(tree: Tree) -> dict[str, float]:
    return {m.name: m.value for m in tree.ctx.measurements}


def test_no_stream_set_up_is_not_an_error_whatever_the_pool_says(tmp_path: Path) -> None:
    tree = Tree(tmp_path, rp_ide=False)
    before = tree.view()
    assert before.available == 256 and before.rp is None and "no IDE" in before.rp_why
    tree.kernel_says_connected(available=255)  # a pool count alone is no stream
    assert tree.check(before) is None
    assert measured(tree) == {"ide_streams_set_up": 0}


def test_a_stream_set_up_at_both_ends(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    before = tree.view()
    tree.kernel_says_connected(available=255)
    tree.link()
    tree.poke("ep", EP_CTL, 3 << 24 | 1 << 22 | 1)
    tree.poke("ep", EP_STS, 0b0010)
    tree.poke("ep", EP_RID2, 1 | 0x0008 << 8)
    tree.poke("rp", RP_CTL, 3 << 24 | 1)
    tree.poke("rp", RP_STS, 0b0010)
    stream = tree.check(before)
    assert stream is not None and (stream.h, stream.r, stream.e, stream.stream_id) == (0, 0, 0, 3)
    assert measured(tree) == {
        "ide_streams_set_up": 1,
        "secure_streams_taken": 1,
        "root_port_checked": 1,
    }
    # What the kernel's teardown leaves passes; a Control left behind does not.
    (tmp_path / "devices/pci0000:00/stream0.0.0").unlink()
    for who, ctl, sts in (("ep", EP_CTL, EP_STS), ("rp", RP_CTL, RP_STS)):
        tree.poke(who, ctl, 0)
        tree.poke(who, sts, 0)
    tree.poke("ep", EP_RID2, 0)
    for name in ("tsm/connect", "authenticated"):
        (tree.dev / name).write_text("\n")
    (tree.dev.parents[1] / "available_secure_streams").write_text("256\n")
    asyncio.run(_check_torn_down(tree.ctx, tree.tsm, before, stream, "disconnect"))
    tree.poke("rp", RP_CTL, 3 << 24)
    with pytest.raises(DeviceFailure, match="Root Port block 0 after disconnect"):
        asyncio.run(_check_torn_down(tree.ctx, tree.tsm, before, stream, "disconnect"))


def test_success_with_an_insecure_stream_is_what_the_check_catches(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    before = tree.view()
    tree.kernel_says_connected()
    tree.link()
    tree.poke("ep", EP_CTL, 1)  # enabled, but Status still Insecure
    with pytest.raises(DeviceFailure, match="reports success with an Insecure stream"):
        tree.check(before)


def test_an_enabled_block_without_a_link(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    before = tree.view()
    tree.kernel_says_connected()
    tree.poke("ep", EP_CTL, 1)
    tree.poke("ep", EP_STS, 0b0010)
    with pytest.raises(DeviceFailure, match=r"added 0 streamH\.R\.E links"):
        tree.check(before)
