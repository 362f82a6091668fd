"""The virtual FPGA rig: the lab path (sysfs over FUSE, the kernel TSM ABI, the firmware and
telemetry over the board's UART on a pseudo-terminal) on the simulation of hil_fpga."""

from __future__ import annotations

import errno
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
    tsm = {vid for vid in records if vid.startswith("tsm.")}
    assert tsm == {
        "tsm.connect.sets_up_stream",
        "tsm.disconnect.tears_down",
        "tsm.connect.twice_busy",
        "tsm.disconnect.refusals",
        "tsm.connect.bad_names",
        "tsm.connect.needs_secured_cma",
        "tsm.reconnect.fresh_session",
        "tsm.connect.ide_km_failure_cleans_up",
        "tsm.power.cycle_while_connected",
    }
    assert {"doe.discovery.lists_features", "spdm.challenge.signature"} <= set(records)
    assert {r["outcome"] for r in records.values()} == {"pass"}
    # The stream was set up and checked at both ends (the Root Port through its config file).
    got = measurements(records["tsm.connect.sets_up_stream"])
    assert got["ide_streams_set_up"] == got["root_port_checked"] == got["secure_streams_taken"] == 1
    got = measurements(records["tsm.reconnect.fresh_session"])
    assert got["sessions_established_1"] == got["sessions_established_2"] == 1
    assert got["key_slot_dw_written_1"] == got["key_slot_dw_written_2"] == 60
    assert measurements(records["tsm.connect.needs_secured_cma"])["connect_errno"] == errno.EFAULT


def test_silence_is_proved_by_the_device_going_idle(tmp_path: Path, repo: Path) -> None:
    """A request that must go unanswered: the wait for its response ends when the board is
    idle (nothing in flight in the mailbox, the UART bridge, the line or the firmware), not
    at the wall-clock deadline; the lab backend records each such end as a silence."""
    proc = hil(
        "run",
        "--rig",
        "virtual-fpga",
        "-k",
        "spdm.negative.bad_mac or ide_km.outside_session.ignored",
        "--results",
        str(tmp_path),
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    records = read_records(only_run(tmp_path, "virtual-fpga"))
    assert {r["outcome"] for r in records.values()} == {"pass"}
    bad_mac = measurements(records["spdm.negative.bad_mac"])
    assert bad_mac["answer"] == 0  # dropped, not answered DecryptError
    assert bad_mac["silences"] == 1
    # QUERY before the session binds the streams, then KEY_PROG, K_SET_GO, K_SET_STOP.
    assert measurements(records["ide_km.outside_session.ignored"])["silences"] == 4


def measurements(record: dict) -> dict[str, float]:
    return {m["name"]: m["value"] for m in record["measurements"]}


def test_rigs_check_sees_the_emulated_hosts_tsm_requirements(repo: Path) -> None:
    """The device probes of a lab host against the virtual rig: DEVCAP.TEE from the simulated
    hard IP, the Root Port's IDE, the TSM class device, doe_features."""
    proc = hil("rigs", "check", "virtual-fpga", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in (
        "ok    DEVCAP.TEE             set",
        "ok    Root Port IDE          0000:00:01.0: IDE at 0x100, Link IDE (1 TC)",
        "ok    TSM present            tsm0 (device hil-link-tsm)",
        "ok    device tsm/            bound, connect, disconnect, dsm; not connected",
        "ok    doe_features           0001:01, 0001:02, doe_discovery",
    ):
        assert line in proc.stdout, proc.stdout


def test_tsm_vectors_on_a_rig_that_hil_rig_up_holds(tmp_path: Path, repo: Path) -> None:
    """The firmware's counters and faults through the running rig's control socket, the
    rescan through the emulated host's."""
    env = {"HIL_RIG_STATE_DIR": str(tmp_path / "state")}
    up = hil("rig", "up", "virtual-fpga", cwd=repo, env_extra=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # bad_mac: its silence is proved through the running rig's device_idle.
        keyword = "tsm.reconnect or tsm.connect.needs_secured_cma or ide_km_failure or bad_mac"
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
        records = read_records(only_run(tmp_path, "virtual-fpga"))
        assert len(records) == 4 and {r["outcome"] for r in records.values()} == {"pass"}
        assert measurements(records["spdm.negative.bad_mac"])["silences"] == 1
    finally:
        down = hil("rig", "down", "virtual-fpga", cwd=repo, env_extra=env)
    assert down.returncode == 0, down.stdout + down.stderr


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
