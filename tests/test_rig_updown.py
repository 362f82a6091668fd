"""`hil rig up` / `hil rig down`: a virtual rig that outlives the command, used by `hil run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import hil, only_run
from helpers import records as read_records

from hil.lab.virtual import fuse_available

WHY = fuse_available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"virtual rig unavailable: {WHY}")


def test_rig_up_run_and_down(tmp_path: Path, repo: Path) -> None:
    env = {"HIL_RIG_STATE_DIR": str(tmp_path / "state")}
    up = hil("rig", "up", "virtual-fpga", cwd=repo, env_extra=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        root = Path(up.stdout.split("sysfs root:")[1].split()[0])
        assert (root / "bus" / "pci" / "devices" / "0000:01:00.0" / "config").exists()
        state = json.loads((tmp_path / "state" / "virtual-fpga" / "state.json").read_text())
        assert state["root"] == str(root)
        assert hil("rig", "status", "virtual-fpga", cwd=repo, env_extra=env).returncode == 0
        # A run uses the rig that is up, power cycles included (through its control socket).
        keyword = "doe.discovery.lists_features or power.cycle.recovers or telemetry.frames"
        run = hil(
            "run",
            "--rig",
            "virtual-fpga",
            "-k",
            keyword,
            "--results",
            str(tmp_path),
            cwd=repo,
            env_extra=env,
        )
        assert run.returncode == 0, run.stdout[-3000:]
        run_dir = only_run(tmp_path, "virtual-fpga")
        info = json.loads((run_dir / "run.json").read_text())
        assert info["virtual_rig"] == f"hil rig up (process {state['pid']})"
        records = read_records(run_dir)
        assert {r["outcome"] for r in records.values()} == {"pass"}, records
        assert len(records) == 3
        assert root.exists()  # the run did not take it down
        # After that run's power cycle the endpoint and configuration space still agree on
        # BAR0 (the host writes it again when the link returns): the TDI report's MMIO range
        # is where configuration space says BAR0 is.
        again = hil(
            "run", "--rig", "virtual-fpga", "-k", "tdisp.report.structure",
            "--results", str(tmp_path / "after"), cwd=repo, env_extra=env,
        )  # fmt: skip
        assert again.returncode == 0, again.stdout[-3000:]
    finally:
        down = hil("rig", "down", "virtual-fpga", cwd=repo, env_extra=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not root.exists()
    assert hil("rig", "status", "virtual-fpga", cwd=repo, env_extra=env).returncode == 1
    assert hil("rig", "down", "virtual-fpga", cwd=repo, env_extra=env).returncode == 1  # not up


def test_rig_up_refuses_a_rig_that_is_not_virtual(repo: Path) -> None:
    proc = hil("rig", "up", "sim-verilator", cwd=repo)
    assert proc.returncode == 1
    assert "virtual rigs" in proc.stderr
