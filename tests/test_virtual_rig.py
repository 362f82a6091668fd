"""The virtual FPGA rig: the lab path (sysfs over FUSE, the kernel TSM ABI) on the simulation."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import hil, only_run
from helpers import records as read_records

from hil.lab.virtual import fuse_available

WHY = fuse_available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"virtual rig unavailable: {WHY}")


def test_lab_path_vectors_pass_on_the_virtual_rig(tmp_path: Path, repo: Path) -> None:
    proc = hil(
        "run",
        "--rig",
        "virtual-fpga",
        "-k",
        "tsm or discovery or well_formed or partial_write or challenge or established",
        "--results",
        str(tmp_path),
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    records = read_records(only_run(tmp_path, "virtual-fpga"))
    assert {
        "tsm.connect.authenticates",
        "tsm.connect.bad_names",
        "doe.discovery.lists_features",
        "spdm.challenge.signature",
    } <= set(records)
    assert {r["outcome"] for r in records.values()} == {"pass"}


def test_the_simulation_killed_mid_run(tmp_path: Path, repo: Path, tests_on_path: Path) -> None:
    """The affected vectors are errors that name the cause; nothing recorded before is lost."""
    proc = hil(
        "run",
        "--rig",
        "virtual-fpga",
        "--vectors",
        "fault_vectors",
        "-k",
        "a_before or b_kill or c_after",
        "--results",
        str(tmp_path),
        cwd=repo,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    run_dir = only_run(tmp_path, "virtual-fpga")
    records = read_records(run_dir)
    assert records["fault.a_before"]["outcome"] == "pass"
    for vid in ("fault.b_kill_simulation", "fault.c_after"):
        assert records[vid]["outcome"] == "error", records[vid]
        assert "gone" in records[vid]["message"], records[vid]["message"]
    import json

    run = json.loads((run_dir / "run.json").read_text())
    assert run["finished"] and run["totals"]["error"] == 2


def test_a_power_cycle_mid_vector_is_an_error_naming_it(
    tmp_path: Path, repo: Path, tests_on_path: Path
) -> None:
    proc = hil(
        "run",
        "--rig",
        "virtual-fpga",
        "--vectors",
        "fault_vectors",
        "-k",
        "a_before or d_power",
        "--results",
        str(tmp_path),
        cwd=repo,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    records = read_records(only_run(tmp_path, "virtual-fpga"))
    assert records["fault.a_before"]["outcome"] == "pass"
    rec = records["fault.d_power_cycle_mid_exchange"]
    assert rec["outcome"] == "error" and "power-cycled" in rec["message"], rec


def test_power_vector_on_the_virtual_rig(tmp_path: Path, repo: Path) -> None:
    proc = hil("run", "--rig", "virtual-fpga", "-k", "power", "--results", str(tmp_path), cwd=repo)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (
        read_records(only_run(tmp_path, "virtual-fpga"))["power.cycle.recovers"]["outcome"]
        == "pass"
    )
