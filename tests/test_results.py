from __future__ import annotations

import json
import os
from pathlib import Path

from hil.report import write_report
from hil.results import RunWriter, atomic_write_text


def test_runs_never_share_a_directory(tmp_path: Path) -> None:
    dirs = {RunWriter(tmp_path, "rig", "fake").run_dir for _ in range(20)}
    assert len(dirs) == 20


def test_records_survive_a_crash_between_vectors(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, "rig", "fake")
    w.add({"vector": "a.b", "outcome": "pass"})
    w.add({"vector": "a.c", "outcome": "fail"})
    # No finish(): the process "died".  Everything written so far is whole and readable.
    lines = (w.run_dir / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["vector"] for line in lines] == ["a.b", "a.c"]
    run = json.loads((w.run_dir / "run.json").read_text())
    assert run["finished"] is None and run["rig"] == "rig"
    assert not [p for p in w.run_dir.iterdir() if p.name.endswith(".tmp")]


def test_run_json_has_the_fields(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, "r1", "sim", {"simulator": "verilator"})
    w.add({"vector": "x.y", "outcome": "n/a"})
    w.finish()
    run = json.loads((w.run_dir / "run.json").read_text())
    for key in (
        "run_id",
        "rig",
        "kind",
        "started",
        "finished",
        "hil_version",
        "git_sha",
        "host",
        "simulator",
        "totals",
    ):
        assert key in run, key
    assert run["totals"]["n/a"] == 1
    assert run["finished"] >= run["started"]


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    try:
        atomic_write_text(target, None)  # type: ignore[arg-type]
    except TypeError:
        pass
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.json"]


def _run(root: Path, rig: str, outcomes: dict[str, str]) -> RunWriter:
    w = RunWriter(root, rig, "fake")
    for vid, outcome in outcomes.items():
        w.add({"vector": vid, "outcome": outcome})
    w.finish()
    return w


def test_report_takes_the_latest_run_per_rig(tmp_path: Path) -> None:
    _run(tmp_path, "a", {"v.one": "fail", "v.two": "pass"})
    latest = _run(tmp_path, "a", {"v.one": "pass"})
    _run(tmp_path, "b", {"v.one": "error"})
    (tmp_path / "a" / "garbage").mkdir()
    (tmp_path / "a" / "garbage" / "run.json").write_text("{not json")
    summary = write_report(tmp_path)
    assert summary["rigs"]["a"]["latest_run"] == latest.run_id
    assert summary["rigs"]["a"]["runs"] == 3  # the garbage folder is a run too, with a problem
    cell = summary["vectors"]["v.one"]["rigs"]["a"]
    assert (cell["latest"], cell["latest_run"], cell["runs"]) == ("pass", latest.run_id, 2)
    assert summary["vectors"]["v.one"]["rigs"]["b"]["latest"] == "error"
    assert summary["vectors"]["v.two"]["rigs"]["a"]["latest"] == "pass"  # from the earlier run
    assert any("garbage/run.json: unreadable" in p for p in summary["problems"])
    md = (tmp_path / "summary.md").read_text()
    assert "| v.one (flaky) | pass (50%) | error |" in md  # fail then pass, one commit
    assert json.loads((tmp_path / "summary.json").read_text())["rigs"].keys() == {"a", "b"}
