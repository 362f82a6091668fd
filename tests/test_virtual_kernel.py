"""The virtual rig's emulated host, in memory (no simulator, no FUSE): the sysfs tree it
shows, the errnos of tsm/connect and tsm/disconnect, and the IDE programming of its TSM."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import pytest

from hil import _regs as R
from hil import firmware
from hil.host.ide_regs import IdeLayout, SelectiveBlock
from hil.lab.bdf import Bdf
from hil.lab.virtual_fs import InMemoryEndpoint, VirtualSysfs
from hil.lab.virtual_kernel import VirtualKernel, parse_tsm_id
from hil.lab.virtual_rp import VirtualRootPort

EP = Bdf.parse("0000:01:00.0")
RP = Bdf.parse("0000:00:01.0")


class Host:
    """An emulated host around an in-memory endpoint, with every IDE register write logged."""

    def __init__(self, *, tee: bool = True, rp_ide: bool = True, doe: bool = True) -> None:
        self.ep = InMemoryEndpoint(tee=tee)
        if not doe:  # the DSN's next pointer skips the DOE capability: no mailbox at all
            space = self.ep.config
            read = space.read32

            async def no_doe(offset: int) -> int:
                value = await read(offset)
                if offset == 0x100:
                    value = (value & 0xFFFFF) | (R.IDE_CAP_OFFSET << 20)
                return value

            space.read32 = no_doe  # type: ignore[method-assign]
        self.rp = VirtualRootPort(RP, EP.bus, ide=rp_ide)
        self.kernel = VirtualKernel(
            EP, self.ep.config, self.rp, trust_anchor=firmware.test_pki().trust_anchor
        )
        self.kernel.run(self.kernel.enumerate())
        self.writes: list[tuple[str, int, int]] = []
        self._spy("ep", self.kernel.ep.config)
        self._spy("rp", self.kernel.rp.config)
        self.fs = VirtualSysfs(self.kernel, self.ep)

    def _spy(self, who: str, config: Any) -> None:
        write = config.write32
        writes = self.writes

        async def spy(offset: int, value: int) -> None:
            if offset >= R.IDE_CAP_OFFSET or who == "rp":
                writes.append((who, offset, value))
            elif offset == R.DOE_CAP_OFFSET + R.DOE_CTRL:
                writes.append((who + "-doe-ctrl", offset, value))
            await write(offset, value)

        config.write32 = spy

    # -- the tree -------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        return f"{self.fs.dev}/{rel}" if not rel.startswith("/") else rel

    def read(self, rel: str) -> str:
        return self.fs.read(self.path(rel), 4096, 0, None).decode()

    def write(self, rel: str, data: bytes) -> int:
        return self.fs.write(self.path(rel), data, 0, None)

    def errno_of(self, rel: str, data: bytes) -> int | None:
        try:
            self.write(rel, data)
        except OSError as exc:
            return exc.errno
        return None

    def exists(self, rel: str) -> bool:
        return self.path(rel) in self.fs.nodes

    # -- the registers --------------------------------------------------------------------------
    def ep_block(self, index: int = 0) -> SelectiveBlock:
        return IdeLayout.from_reader(R.IDE_CAP_OFFSET, self.ep.read32).selective_blocks[index]

    def rp_block(self, index: int = 0) -> SelectiveBlock:
        return IdeLayout.from_reader(0x100, self.rp.read32).selective_blocks[index]

    def ep_regs(self, index: int = 0) -> list[int]:
        b = self.ep_block(index)
        return [self.ep.read32(o) for o in (b.control, b.status, *b.association_registers())]

    def rp_regs(self, index: int = 0) -> list[int]:
        b = self.rp_block(index)
        return [self.rp.read32(o) for o in (b.control, b.status, *b.association_registers())]


@pytest.fixture
def host() -> Host:
    return Host()


def test_the_tree_a_host_with_a_link_tsm_shows(host: Host) -> None:
    fs = host.fs
    assert fs.bridge == "/devices/pci0000:00"
    assert host.read("/devices/pci0000:00/available_secure_streams") == "256\n"
    assert sorted(fs.nodes[f"{fs.dev}/tsm"].children) == ["bound", "connect", "disconnect", "dsm"]
    assert host.read("tsm/connect") == "\n" and host.read("tsm/bound") == "\n"
    assert host.read("authenticated") == "\n"
    features = fs.nodes[f"{fs.dev}/doe_features"].children
    assert sorted(features) == ["0001:01", "0001:02", "doe_discovery"]
    assert host.read("doe_features/0001:01") == "0001:01\n"
    assert host.read("doe_features/doe_discovery") == "0001:00\n"
    # /sys/class/tsm/tsm0 is a class device under its platform parent, not a plain directory.
    assert fs.nodes["/class/tsm/tsm0"].kind == "link"
    tsm0 = "/devices/platform/hil-link-tsm/tsm/tsm0"
    assert fs.nodes["/class/tsm/tsm0"].target == "../.." + tsm0
    assert fs.nodes[f"{tsm0}/device"].target == "../../../hil-link-tsm"
    assert fs.nodes[f"{tsm0}/subsystem"].kind == "link"
    assert fs.nodes["/bus/pci/devices/0000:00:01.0"].target.endswith("pci0000:00/0000:00:01.0")
    assert host.read(f"{fs.port}/class") == "0x060400\n"


def test_bound_needs_devcap_tee_the_tsm_dir_needs_tee_or_ide() -> None:
    ide_only = Host(tee=False)  # PF0 through its IDE capability (its Root Port has IDE)
    assert sorted(ide_only.fs.nodes[f"{ide_only.fs.dev}/tsm"].children) == [
        "connect",
        "disconnect",
        "dsm",
    ]
    neither = Host(tee=False, rp_ide=False)  # no IDE in use, no TEE: not a TSM PF0
    assert not neither.exists("tsm") and not neither.exists("authenticated")
    tee_only = Host(rp_ide=False)
    assert tee_only.exists("tsm/bound") and tee_only.kernel.ep.ide is None


def test_no_mailbox_no_doe_features_and_connect_is_enxio() -> None:
    host = Host(doe=False)
    assert not host.exists("doe_features")
    assert host.errno_of("tsm/connect", b"tsm0\n") == errno.ENXIO
    assert any("no CMA mailbox" in e for e in host.kernel.events)


def test_the_tsm_name_is_parsed_as_sscanf_does() -> None:
    assert parse_tsm_id(b"tsm0\n") == 0
    assert parse_tsm_id(b"tsm12xyz") == 12
    assert parse_tsm_id(b"tsm \t3") == 3  # %d skips white space
    assert parse_tsm_id(b"tsm-1") == -1
    for bad in (b"tsm+1", b" tsm0", b"tsm", b"tsmx", b"TSM0", b"1", b""):
        assert parse_tsm_id(bad) is None, bad


def test_connect_errnos_in_the_kernels_order(host: Host) -> None:
    assert host.errno_of("tsm/connect", b"garbage\n") == errno.EINVAL
    assert host.errno_of("tsm/connect", b"tsm7\n") == errno.ENXIO
    assert host.write("tsm/connect", b"tsm0\n") == 5
    # Already connected is EBUSY, checked before the name is looked up; parsing comes first.
    assert host.errno_of("tsm/connect", b"tsm0\n") == errno.EBUSY
    assert host.errno_of("tsm/connect", b"tsm7\n") == errno.EBUSY
    assert host.errno_of("tsm/connect", b"tsm+0\n") == errno.EINVAL
    assert host.read("tsm/connect") == "tsm0\n" and host.read("authenticated") == "tsm0\n"
    assert host.read("tsm/dsm") == "0000:01:00.0\n"


def test_disconnect_errnos(host: Host) -> None:
    for data in (b"tsm0\n", b"garbage", b""):  # not connected: ENXIO whatever was written
        assert host.errno_of("tsm/disconnect", data) == errno.ENXIO
    host.write("tsm/connect", b"tsm0")
    for data in (b"tsm1\n", b"tsm0\n\n", b" tsm0", b"1\n"):
        assert host.errno_of("tsm/disconnect", data) == errno.EINVAL, data
    assert host.read("tsm/connect") == "tsm0\n"
    assert host.write("tsm/disconnect", b"tsm0\n") == 5
    assert host.read("tsm/connect") == "\n"


def test_enumeration_parks_idle_blocks_at_stream_id_255(host: Host) -> None:
    assert host.ep_regs(0)[0] == 0xFF00_0000 and host.ep_regs(1)[0] == 0xFF00_0000
    rp_layout = IdeLayout.from_reader(0x100, host.rp.read32)
    assert host.rp.read32(rp_layout.link_blocks[0].control) >> 24 == 0xFF
    assert all(host.rp.read32(b.control) == 0xFF00_0000 for b in rp_layout.selective_blocks)


def test_connect_programs_the_stream_the_kernels_way(host: Host) -> None:
    host.writes.clear()
    host.write("tsm/connect", b"tsm0\n")
    ep, rp = host.ep_block(0), host.rp_block(0)
    ep_ctl = 1 << 22 | 1 << 23  # Default Stream, TEE-Limited (the capability offers it)
    rp_ctl = 1 << 9  # Configuration Requests (its capability offers it; no TEE-Limited)
    window = host.rp.mem_window
    expected_setup = [
        ("ep", ep.rid1, RP.requester_id << 8),
        ("ep", ep.rid2, 1 | RP.requester_id << 8),
        ("ep", ep.addr1(0), 0),
        ("ep", ep.addr2(0), 0),
        ("ep", ep.addr3(0), 0),
        ("ep", ep.control, ep_ctl),
        ("rp", rp.rid1, EP.requester_id << 8),
        ("rp", rp.rid2, 1 | EP.requester_id << 8),
        ("rp", rp.addr1(0), 1 | (window[0] >> 20) << 8 | (window[1] >> 20) << 20),
        ("rp", rp.addr2(0), 0),
        ("rp", rp.addr3(0), 0),
        ("rp", rp.addr1(1), 0),
        ("rp", rp.addr2(1), 0),
        ("rp", rp.addr3(1), 0),
        ("rp", rp.control, rp_ctl),
    ]
    ide_writes = [w for w in host.writes if not w[0].endswith("doe-ctrl")]
    assert ide_writes[: len(expected_setup)] == expected_setup
    # Then the keys (not in config space), then Enable: the Root Port before the endpoint.
    assert ide_writes[len(expected_setup) :] == [
        ("rp", rp.control, rp_ctl | 1),
        ("ep", ep.control, ep_ctl | 1),
    ]
    # The Stream ID is the host-bridge pool index (SEV-TIO), 0 on an empty pool.
    assert host.ep_regs(0)[:2] == [ep_ctl | 1, 0b0010]
    assert host.rp_regs(0)[:2] == [rp_ctl | 1, 0b0010]
    assert host.kernel.host_bridge.links == {"stream0.0.0": EP}
    assert host.read("/devices/pci0000:00/available_secure_streams") == "255\n"
    assert host.fs.nodes["/devices/pci0000:00/stream0.0.0"].target == "0000:00:01.0/0000:01:00.0"
    # The mailbox the kernel found at enumeration: no Abort (nor Discovery) per connect.
    assert not [w for w in host.writes if w[0] == "ep-doe-ctrl" and w[2] & R.DOE_CTRL_ABORT]


def test_disconnect_ends_the_session_then_disables_then_tears_down(host: Host) -> None:
    host.write("tsm/connect", b"tsm0\n")
    sessions = host.kernel.tsms[0].connections[EP].session
    assert sessions is not None and sessions.open
    host.writes.clear()
    host.write("tsm/disconnect", b"tsm0\n")
    assert not sessions.open  # END_SESSION came first: it needs the stream's session
    ep, rp = host.ep_block(0), host.rp_block(0)
    # END_SESSION went first (a Go on the mailbox), then Control 0 on both ends, teardown.
    assert host.writes[0][0] == "ep-doe-ctrl" and host.writes[0][2] & R.DOE_CTRL_GO
    assert [w for w in host.writes if w[0] != "ep-doe-ctrl"] == [
        ("ep", ep.control, 0),
        ("rp", rp.control, 0),
        ("ep", ep.control, 0),
        ("ep", ep.addr1(0), 0),
        ("ep", ep.addr2(0), 0),
        ("ep", ep.addr3(0), 0),
        ("ep", ep.rid2, 0),
        ("ep", ep.rid1, 0),
        ("rp", rp.control, 0),
        *[("rp", reg, 0) for j in (0, 1) for reg in (rp.addr1(j), rp.addr2(j), rp.addr3(j))],
        ("rp", rp.rid2, 0),
        ("rp", rp.rid1, 0),
    ]
    assert host.kernel.host_bridge.links == {}
    assert host.read("/devices/pci0000:00/available_secure_streams") == "256\n"
    assert not any(host.ep_regs(0)) and not any(host.rp_regs(0))


def test_without_secured_cma_on_the_cma_mailbox_connect_is_efault(host: Host) -> None:
    host.fs.rescan(["0001:02"])
    assert not host.exists("doe_features/0001:02") and host.exists("doe_features/0001:01")
    before = host.ep_regs(0), host.rp_regs(0)
    assert host.errno_of("tsm/connect", b"tsm0\n") == errno.EFAULT
    assert (host.ep_regs(0), host.rp_regs(0)) == before
    assert host.read("tsm/connect") == "\n" and host.kernel.host_bridge.links == {}
    assert any("must support SSESSION" in e for e in host.kernel.events)


def test_without_root_port_ide_connect_is_efault() -> None:
    host = Host(rp_ide=False)
    assert host.errno_of("tsm/connect", b"tsm0\n") == errno.EFAULT
    assert host.read("/devices/pci0000:00/available_secure_streams") == "256\n"


def test_a_device_failing_ide_km_midway_leaves_nothing_programmed(host: Host) -> None:
    host.ep.tap.fail_key_slot_writes_after(2)  # the third KEY_PROG finds its slot unloaded
    code = host.errno_of("tsm/connect", b"tsm0\n")
    assert code == errno.EINVAL  # a failed firmware command, as SEV-TIO reports it
    assert host.ep.tap.counters()["key_slot_dw_dropped"] > 0
    assert not any(host.ep_regs(0)) and not any(host.rp_regs(0))
    assert host.kernel.host_bridge.links == {} and host.kernel.host_bridge.pool == set()
    assert host.read("tsm/connect") == "\n"
    host.ep.tap.fail_key_slot_writes_after(None)
    host.write("tsm/connect", b"tsm0\n")  # and the host recovers
    assert host.ep_regs(0)[1] == 0b0010


def test_an_insecure_result_is_logged_and_ignored_like_sev_tio(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    host.ep.never_secure()
    with caplog.at_level(logging.WARNING, "hil.lab.virtual_kernel"):
        assert host.write("tsm/connect", b"tsm0\n") == 5
    assert "endpoint stream not Secure" in caplog.text
    assert host.kernel.tsms[0].enable_failures == 1
    ep_ctl, ep_status = host.ep_regs(0)[:2]
    assert ep_ctl & 1 and ep_status == 0  # Enable left set, Insecure
    assert host.rp_regs(0)[0] == 0  # the Root Port disabled again
    assert host.kernel.host_bridge.links == {"stream0.0.0": EP}


def test_stream_id_is_the_pool_index_and_255_is_reserved(host: Host) -> None:
    hb = host.kernel.host_bridge
    hb.pool = {0, 1}  # two streams of other devices below this bridge
    host.write("tsm/connect", b"tsm0\n")
    assert list(hb.links) == ["stream2.0.0"] and host.ep_regs(0)[0] >> 24 == 2
    host.write("tsm/disconnect", b"tsm0\n")
    hb.pool = set(range(255))  # the next free index is 255, a Stream ID nobody may use
    assert host.errno_of("tsm/connect", b"tsm0\n") == errno.EBUSY
    assert any("Stream ID 255 in use" in e for e in host.kernel.events)
    assert hb.pool == set(range(255)) and not any(host.ep_regs(0))


def test_reconnect_runs_a_fresh_session_with_fresh_keys(host: Host) -> None:
    counts = []
    for _ in range(2):
        host.write("tsm/connect", b"tsm0\n")
        counts.append(host.ep.tap.counters())
        host.write("tsm/disconnect", b"tsm0\n")
    assert counts[1]["sessions_established"] == counts[0]["sessions_established"] + 1
    assert counts[1]["key_slot_dw_written"] == 2 * counts[0]["key_slot_dw_written"] == 120


def test_a_stream_active_at_enumeration_is_claimed() -> None:
    ep = InMemoryEndpoint()
    ide = ep.config.ide
    ide.write(ide.stream_block(0).start - ide.offset + 4, 7 << 24 | 1)  # Stream ID 7, Enable
    rp = VirtualRootPort(RP, EP.bus)
    kernel = VirtualKernel(EP, ep.config, rp, trust_anchor=firmware.test_pki().trust_anchor)
    kernel.run(kernel.enumerate())
    assert any("Stream ID 7 active at init" in e for e in kernel.events)
    assert 7 in kernel.host_bridge.stream_ids and kernel.ep.ide is not None
    assert kernel.ep.ide.used == {0}
    fs = VirtualSysfs(kernel, ep)
    fs.write(f"{fs.dev}/tsm/connect", b"tsm0\n", 0, None)
    assert list(kernel.host_bridge.links) == ["stream0.0.1"]  # E skips the active block


def test_the_kernels_doe_deadline_comes_from_the_rig(repo: Path, tmp_path: Path) -> None:
    from hil.lab.virtual import kernel_doe_timeout_s
    from hil.rigs import load_rig, parse_rig

    assert kernel_doe_timeout_s(load_rig(repo / "rigs" / "virtual-fpga.toml")) == 10.0
    bare = parse_rig("[rig]\nkind = 'virtual'\n", tmp_path / "bare.toml")
    assert kernel_doe_timeout_s(bare) == 1.0  # the kernel's own


def test_a_device_that_does_not_answer_is_eio_after_the_deadline_and_an_abort() -> None:
    host = Host()
    host.kernel.ep.mailboxes[0].mbx.timeout_s = 0.05  # the kernel's 1 s, shortened here

    async def silent(request):  # type: ignore[no-untyped-def]
        return None

    host.ep.config.doe.responder = silent
    host.writes.clear()
    assert host.errno_of("tsm/connect", b"tsm0\n") == errno.EIO
    aborts = [w for w in host.writes if w[0] == "ep-doe-ctrl" and w[2] & R.DOE_CTRL_ABORT]
    assert len(aborts) == 1  # the timed-out exchange was aborted, once, by the kernel
    assert not any(host.ep_regs(0)) and host.kernel.host_bridge.pool == set()
    host.kernel.ep.mailboxes[0].mbx.dead = True  # an Abort that failed: every later one EIO
    assert host.errno_of("tsm/connect", b"tsm0\n") == errno.EIO
