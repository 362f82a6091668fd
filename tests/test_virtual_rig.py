"""The virtual FPGA rig: the lab path (sysfs over FUSE, the kernel TSM ABI, the firmware and
telemetry over the board's UART on a pseudo-terminal) on the simulation of hil_fpga."""

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


def test_telemetry_vectors_on_the_virtual_rig(tmp_path: Path, repo: Path) -> None:
    """Telemetry over the UART: records decode, stream states agree with config space after
    IDE_KM keyed a stream, a malformed DOE write is counted."""
    proc = hil(
        "run", "--rig", "virtual-fpga", "-k", "telemetry", "--results", str(tmp_path), cwd=repo
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    records = read_records(only_run(tmp_path, "virtual-fpga"))
    assert set(records) == {
        "telemetry.frames.decode",
        "telemetry.ide.streams_match_config",
        "telemetry.doe.error_counted",
    }
    assert {r["outcome"] for r in records.values()} == {"pass"}
    counted = records["telemetry.doe.error_counted"]["measurements"]
    assert {m["name"]: m["value"] for m in counted}["doe_errors_added"] == 1


def test_the_uart_vanishing_mid_run(tmp_path: Path, repo: Path, tests_on_path: Path) -> None:
    """The pty goes away under a vector: it and the later vectors that need the firmware are
    errors naming the serial port; the run goes on and keeps what came before."""
    proc = hil(
        "run",
        "--rig",
        "virtual-fpga",
        "--vectors",
        "fault_vectors",
        "-k",
        "a_before or e_unplug or f_after or g_config",
        "--results",
        str(tmp_path),
        cwd=repo,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    run_dir = only_run(tmp_path, "virtual-fpga")
    records = read_records(run_dir)
    assert records["fault.a_before"]["outcome"] == "pass"
    for vid in ("fault.e_unplug_uart", "fault.f_after_uart"):
        rec = records[vid]
        assert rec["outcome"] == "error", rec
        assert "serial port" in rec["message"] and "/uart" in rec["message"], rec["message"]
    # The failed vector keeps the UART frames it saw: headers only, no register write data.
    (capture,) = [a for a in records["fault.e_unplug_uart"]["artifacts"] if "serial" in a]
    lines = (run_dir / capture).read_text().splitlines()
    assert any("<- DSM_REQUEST" in line and "doe_header=" in line for line in lines), lines
    assert any("-> DSM_RESPONSE" in line for line in lines), lines
    # The device is still there for what does not need its UART.
    assert records["fault.g_config_after_uart"]["outcome"] == "pass"
    import json

    run = json.loads((run_dir / "run.json").read_text())
    assert run["finished"] and run["totals"]["error"] == 2 and run["totals"]["pass"] == 2
