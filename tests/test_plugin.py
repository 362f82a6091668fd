"""`pytest --rig` and `hil run`: items, outcomes, records, junit, xdist, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import hil, only_run
from helpers import records as read_records

OUTCOMES = {
    "selftest.passes": "pass",
    "selftest.fails": "fail",
    "selftest.out_of_limits": "fail",
    "selftest.crashes": "error",
    "selftest.skips": "skip",
    "selftest.not_applicable": "n/a",
    "selftest.kills_process": "pass",
}


@pytest.mark.parametrize("workers", [None, "2"])
def test_every_outcome_is_recorded(tmp_path: Path, tests_on_path: Path, workers) -> None:
    args = ["run", "--rig", "fake", "--vectors", "outcome_vectors", "--results", str(tmp_path)]
    if workers:
        args += ["-n", workers]
    proc = hil(*args, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a fail and an error
    run_dir = only_run(tmp_path, "fake")
    records = read_records(run_dir)
    assert {v: r["outcome"] for v, r in records.items()} == OUTCOMES
    assert records["selftest.fails"]["message"] == "the device said no"
    assert "ZeroDivisionError" in records["selftest.crashes"]["message"]
    assert "telemetry" in records["selftest.not_applicable"]["message"]
    assert records["selftest.passes"]["measurements"] == [
        {"name": "answer", "value": 42, "unit": "", "low": 0, "high": 100, "ok": True}
    ]
    for rec in records.values():
        for key in (
            "run_id",
            "rig",
            "vector",
            "title",
            "outcome",
            "duration_s",
            "started",
            "message",
            "measurements",
            "artifacts",
        ):
            assert key in rec, key
    run = json.loads((run_dir / "run.json").read_text())
    assert run["totals"] == {"pass": 2, "fail": 2, "error": 1, "skip": 1, "n/a": 1}
    assert run["finished"]
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "2", "1")
    # The table hil run prints.
    assert "selftest.crashes" in proc.stdout and "error" in proc.stdout
    assert f"results: {run_dir}" in proc.stdout


def test_a_dead_worker_still_leaves_an_error_record(tmp_path: Path, tests_on_path: Path) -> None:
    proc = hil(
        "run",
        "--rig",
        "fake",
        "--vectors",
        "outcome_vectors",
        "--results",
        str(tmp_path),
        "-n",
        "2",
        "-k",
        "passes or kills_process or fails",
        cwd=tmp_path,
        env_extra={"HIL_SELFTEST_KILL": "1"},
    )
    assert proc.returncode == 1
    records = read_records(only_run(tmp_path, "fake"))
    assert records["selftest.kills_process"]["outcome"] == "error"
    assert records["selftest.passes"]["outcome"] == "pass"
    assert records["selftest.fails"]["outcome"] == "fail"


def test_all_passing_exits_zero_and_k_selects(tmp_path: Path, tests_on_path: Path) -> None:
    proc = hil(
        "run",
        "--rig",
        "fake",
        "--vectors",
        "outcome_vectors",
        "-k",
        "passes or skips",
        "--results",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout
    assert set(read_records(only_run(tmp_path, "fake"))) == {"selftest.passes", "selftest.skips"}


def test_pytest_rig_option_runs_the_project_suite(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--rig",
            "fake",
            "--results",
            str(tmp_path),
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout
    records = read_records(only_run(tmp_path, "fake"))
    assert "doe.discovery.lists_features" in records and "spdm.challenge.signature" in records
    # The fake firmware answers within the Go write, so nothing can be caught Busy; and the
    # fake rig has no kernel TSM.
    not_passed = {v: r["outcome"] for v, r in records.items() if r["outcome"] != "pass"}
    assert not_passed.pop("doe.go_while_busy") == "skip"
    assert set(not_passed.values()) == {"n/a"}
    from hil.rigs import find_rig
    from hil.vectors import default_suite

    provides = find_rig("fake").provides
    # n/a from the rig (needs it lacks), and from the device: the RID association rule is
    # stated for TEE-IO devices, and the fake's configuration space does not claim TEE-IO;
    # the fake advertises Aggregation, so the vector for a Port without it does not apply.
    device_na = {
        "ide.rid_association.outside_range_ur",
        "ide.aggregation.unsupported_unit_rejected",
    }
    rig_na = {v for v, vec in default_suite().items() if not vec.needs <= provides}
    assert rig_na | device_na == set(not_passed), not_passed


def test_a_broken_rig_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rig]\nkind = 'warp'\n")
    proc = hil("run", "--rig", str(bad), "--results", str(tmp_path), cwd=tmp_path)
    assert proc.returncode != 0
    assert "kind = 'warp'" in proc.stdout + proc.stderr
    assert not (tmp_path / "bad").exists()


def test_hil_rigs_and_report(tmp_path: Path, repo: Path) -> None:
    proc = hil("rigs", cwd=repo)
    assert proc.returncode == 0
    assert "sim-verilator" in proc.stdout and "fake" in proc.stdout
    assert hil("run", "--rig", "fake", "--results", str(tmp_path), cwd=tmp_path).returncode == 0
    proc = hil("report", "--results", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    totals = summary["rigs"]["fake"]["totals"]
    assert totals["pass"] + totals["skip"] + totals["n/a"] == len(summary["vectors"])
    assert totals["fail"] == totals["error"] == 0
