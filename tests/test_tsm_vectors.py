"""The tsm.* vectors through a real FUSE mount of the emulated host, with an in-memory
endpoint (``virtual_fs --device fake``): the lab path end to end in seconds, no simulator.
(The same vectors on the simulated FPGA are in test_virtual_rig.py.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.lab import Bdf, KernelTsm, SysfsConfigSpace
from hil.lab.virtual import fuse_available

try:
    from hil.lab.virtual_fs import KernelControl
except OSError:  # mfusepy cannot load libfuse: every test here skips, saying why (WHY)
    KernelControl = None  # type: ignore[assignment,misc]
from hil.transport import AsyncioTimebase
from hil.vectors import Outcome, VectorContext, VectorResult, default_suite, execute

WHY = fuse_available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"FUSE unavailable: {WHY}")
BDF = Bdf.parse("0000:01:00.0")


class Mount:
    def __init__(self, root: Path, control: KernelControl) -> None:
        self.root = root
        self.control = control

    def run(self, vector_id: str, *, without: tuple[str, ...] = ()) -> VectorResult:
        resources: dict[str, Any] = {
            "tsm": KernelTsm(BDF, self.root),
            "bdf": BDF,
            "virtual_rig": self.control,  # rescan_device
            "telemetry": self.control,  # firmware_counters, fail_key_slot_writes_after
            "power": self.control,  # power_cycle
        }
        for name in without:
            resources.pop(name)
        config = SysfsConfigSpace(BDF, self.root)
        ctx = VectorContext(
            rig_name="fuse-fake",
            rig_kind="lab",
            provides=frozenset({"config", "doe", "tsm", "power"}),
            timebase=AsyncioTimebase(),
            config=config,
            settings={"doe_timeout_s": 1.0, "doe_poll_interval_s": 0.0},
            resources=resources,
        )
        try:
            return asyncio.run(execute(default_suite()[vector_id], ctx))
        finally:
            config.close()


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    root, control = tmp_path / "sys", tmp_path / "kernel.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hil.lab.virtual_fs",
            "--device",
            "fake",
            "--mount",
            str(root),
            "--control",
            str(control),
            "--bdf",
            str(BDF),
        ],
        stdout=open(tmp_path / "fuse.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (root / "bus").exists():
            assert proc.poll() is None, (tmp_path / "fuse.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the tree did not mount"
            time.sleep(0.05)
        yield Mount(root, KernelControl(control))
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)
        proc.terminate()
        proc.wait(timeout=10)


TSM_VECTORS = [vid for vid in default_suite() if vid.startswith("tsm.")]


def test_every_tsm_vector_passes_on_the_emulated_host(mount: Mount) -> None:
    assert len(TSM_VECTORS) >= 9
    for vid in TSM_VECTORS:
        result = mount.run(vid)
        assert result.outcome == Outcome.PASS, f"{vid}: {result.message}"
    state = mount.control.state()
    assert state["connected"] == "" and state["links"] == []
    assert state["available_secure_streams"] == 256


def test_the_reconnect_vector_measures_fresh_sessions_and_keys(mount: Mount) -> None:
    result = mount.run("tsm.reconnect.fresh_session")
    assert result.outcome == Outcome.PASS, result.message
    values = {m["name"]: m["value"] for m in result.measurements}
    assert values["sessions_established_1"] == values["sessions_established_2"] == 1
    assert values["key_slot_dw_written_1"] == values["key_slot_dw_written_2"] == 60


def test_a_tsm_reporting_success_with_an_insecure_stream_fails_the_connect_vector(
    mount: Mount,
) -> None:
    mount.control.device_fault("never_secure")
    result = mount.run("tsm.connect.sets_up_stream")
    assert result.outcome == Outcome.FAIL, result.message
    assert "reports success with an Insecure stream" in result.message
    assert mount.control.state()["enable_failures"] == 1


def test_without_the_rigs_hands_those_vectors_are_not_applicable(mount: Mount) -> None:
    for vid, need in (
        ("tsm.connect.needs_secured_cma", "virtual_rig"),
        ("tsm.reconnect.fresh_session", "telemetry"),
        ("tsm.connect.ide_km_failure_cleans_up", "telemetry"),
    ):
        result = mount.run(vid, without=(need,))
        assert result.outcome == Outcome.NA, (vid, result.message)
    result = mount.run("tsm.power.cycle_while_connected", without=("power",))
    assert result.outcome == Outcome.NA


def test_a_device_without_secured_cma_is_seen_in_doe_features(mount: Mount) -> None:
    dev = mount.root / "bus/pci/devices" / str(BDF)
    mount.control.rescan_device(["0001:02"])
    try:
        assert sorted(p.name for p in (dev / "doe_features").iterdir()) == [
            "0001:01",
            "doe_discovery",
        ]
        # On such a device the vector needs no rig help: doe_features already lacks 0001:02.
        result = mount.run("tsm.connect.needs_secured_cma", without=("virtual_rig",))
        assert result.outcome == Outcome.PASS, result.message
        errnos = {m["name"]: m["value"] for m in result.measurements}
        assert errnos["connect_errno"] == 14  # EFAULT, as SEV-TIO
    finally:
        mount.control.rescan_device([])
    assert (dev / "doe_features" / "0001:02").read_text() == "0001:02\n"
