"""hil report: history, pass rate, flaky, rig rows that agree with the matrix, broken and crashed
results folders, shards, measurements, --compare; identity in run.json from a real fake run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hil.report import build_summary, collect_runs, compare_runs, fake_run, find_run, write_report


def _rec(vid: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"vector": vid, "outcome": outcome, "duration_s": 0.5, "message": "", **extra}


def _ts(n: int) -> str:
    return f"2026-01-01T00:{n:02d}:00.000Z"


def test_history_pass_rate_first_last_failure_and_flaky(tmp_path: Path) -> None:
    outcomes = ["fail", "pass", "fail", "pass"]
    for n, outcome in enumerate(outcomes):
        msg = f"broke in run {n}" if outcome == "fail" else ""
        fake_run(
            tmp_path,
            "r1",
            f"run{n}",
            [_rec("a.flip", outcome, message=msg), _rec("a.steady", "pass")],
            started=_ts(n),
            device_key="dev1",
        )
    # Another commit: its failure does not make a.steady flaky (one outcome per commit).
    fake_run(
        tmp_path, "r1", "run9", [_rec("a.steady", "fail")], started=_ts(9), device_key="dev1",
        git_sha="1" * 40,
    )  # fmt: skip
    s = write_report(tmp_path)
    cell = s["vectors"]["a.flip"]["rigs"]["r1"]
    assert cell["latest"] == "pass" and cell["runs"] == 4 and cell["pass_rate"] == 0.5
    assert cell["first_failure"]["run_id"] == "run0"
    assert cell["last_failure"]["run_id"] == "run2"
    assert cell["last_failure"]["message"] == "broke in run 2"
    assert [h[1] for h in cell["history"]] == outcomes
    assert [f["vector"] for f in s["flaky"]] == ["a.flip"]
    assert s["flaky"][0]["outcomes"] == {"fail": 2, "pass": 2}
    assert s["vectors"]["a.flip"]["flaky"] and not s["vectors"]["a.steady"]["flaky"]
    assert s["vectors"]["a.flip"]["flaky_rigs"] == ["r1"]
    steady = s["vectors"]["a.steady"]["rigs"]["r1"]
    assert steady["latest"] == "fail" and steady["pass_rate"] == 0.8
    assert s["devices"]["dev1"]["runs"] == 5


def test_rig_row_agrees_with_the_matrix_after_a_subset_run(tmp_path: Path) -> None:
    fake_run(
        tmp_path,
        "r1",
        "full",
        [_rec("a.x", "pass"), _rec("a.y", "pass"), _rec("b.z", "n/a")],
        started=_ts(1),
    )
    fake_run(tmp_path, "r1", "subset", [_rec("a.y", "fail")], started=_ts(2))  # hil run -k a.y
    s = write_report(tmp_path)
    rig = s["rigs"]["r1"]
    assert rig["latest_run"] == "subset" and rig["runs"] == 2
    matrix = [v["rigs"]["r1"]["latest"] for v in s["vectors"].values()]
    assert sorted(matrix) == ["fail", "n/a", "pass"]
    assert rig["totals"] == {"pass": 1, "fail": 1, "error": 0, "skip": 0, "n/a": 1}
    assert rig["vectors"] == 3
    md = (tmp_path / "summary.md").read_text()
    assert "| r1 | fake | 2 | subset | 1 | 1 | 0 | 0 | 1 |" in md


def test_empty_results_folder(tmp_path: Path) -> None:
    s = write_report(tmp_path)
    assert s["runs"] == [] and s["rigs"] == {} and s["vectors"] == {}
    assert any("no runs found" in p for p in s["problems"])
    md = (tmp_path / "summary.md").read_text()
    assert "No vector recorded." in md and "no runs found" in md
    html = (tmp_path / "report.html").read_text()
    assert "no runs found" in html and "</html>" in html


def test_corrupt_and_crashed_runs_keep_their_records(tmp_path: Path) -> None:
    good = fake_run(tmp_path, "r1", "good", [_rec("a.x", "pass")], started=_ts(1))
    corrupt = fake_run(
        tmp_path, "r1", "corrupt", [_rec("a.x", "fail"), _rec("a.y", "pass")], started=_ts(2)
    )
    (corrupt / "run.json").write_text('{"run_id": "corrupt", "rig": ')  # cut mid-write
    crashed = fake_run(
        tmp_path,
        "r1",
        "crashed",
        [_rec("a.x", "pass"), _rec("a.y", "error"), _rec("a.z", "pass")],
        started=_ts(3),
        finished=None,
    )
    text = (crashed / "records.jsonl").read_text()
    (crashed / "records.jsonl").write_text(text[: len(text) - 25])  # the last record cut off
    fake_run(tmp_path, "r2", "norecords", [], started=_ts(4))
    (tmp_path / "r2" / "norecords" / "records.jsonl").unlink()
    s = write_report(tmp_path)
    problems = "\n".join(s["problems"])
    assert "r1/corrupt/run.json: unreadable" in problems
    assert "r1/crashed: run has no finish time" in problems
    assert "r1/crashed/records.jsonl:3: truncated last line" in problems
    assert "r2/norecords: no records.jsonl" in problems
    by_id = {r["run_id"]: r for r in s["runs"]}
    assert by_id["corrupt"]["totals"]["fail"] == 1  # records of a run whose run.json broke
    assert by_id["crashed"]["totals"] == {"pass": 1, "fail": 0, "error": 1, "skip": 0, "n/a": 0}
    assert by_id["crashed"]["finished"] is None
    assert s["vectors"]["a.y"]["rigs"]["r1"]["latest"] == "error"
    assert "a.z" not in s["vectors"]  # the cut record is not invented
    assert good.exists()
    html = (tmp_path / "report.html").read_text()
    assert "truncated last line" in html


def test_totals_that_disagree_with_records_are_a_problem(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "r1", "x", [_rec("a.x", "pass")], started=_ts(1))
    meta = json.loads((run / "run.json").read_text())
    meta["totals"]["pass"] = 3
    (run / "run.json").write_text(json.dumps(meta))
    s = write_report(tmp_path)
    assert any("totals 3 pass but records.jsonl holds 1 pass" in p for p in s["problems"])


def _shard(root: Path, k: int, n: int, group: str, records: list[dict[str, Any]]) -> None:
    fake_run(
        root,
        "r1",
        f"s{group}-{k}",
        records,
        started=_ts(10 + k),
        shard={"k": k, "n": n, "group": group},
    )


def test_shards_of_one_group_become_one_run(tmp_path: Path) -> None:
    _shard(tmp_path, 1, 3, "ci-41", [_rec("a.x", "pass"), _rec("a.y", "fail")])
    _shard(tmp_path, 2, 3, "ci-41", [_rec("b.x", "pass")])
    _shard(tmp_path, 3, 3, "ci-41", [_rec("c.x", "n/a"), _rec("c.y", "pass")])
    _shard(tmp_path, 1, 2, "ci-42", [_rec("a.x", "fail")])  # shard 2/2 never arrived
    fake_run(tmp_path, "r1", "plain", [_rec("a.x", "pass")], started=_ts(1))
    s = write_report(tmp_path)
    runs = {r["run_id"]: r for r in s["runs"]}
    assert set(runs) == {"plain", "ci-41", "ci-42"}
    assert runs["ci-41"]["totals"] == {"pass": 3, "fail": 1, "error": 0, "skip": 0, "n/a": 1}
    assert len(runs["ci-41"]["shards"]) == 3 and runs["ci-41"]["problems"] == []
    assert runs["ci-42"]["finished"] is None
    assert any("ci-42: shard 2/2 missing" in p for p in s["problems"])
    assert not any("ci-41" in p for p in s["problems"])
    assert s["rigs"]["r1"]["runs"] == 3
    assert s["vectors"]["a.x"]["rigs"]["r1"]["latest"] == "fail"  # ci-42 is the latest


def test_a_vector_in_two_shards_is_a_problem(tmp_path: Path) -> None:
    _shard(tmp_path, 1, 2, "g", [_rec("a.x", "pass")])
    _shard(tmp_path, 2, 2, "g", [_rec("a.x", "fail")])
    s = write_report(tmp_path)
    assert any("a.x ran in more than one shard" in p for p in s["problems"])


def test_measurements_against_limits_over_time(tmp_path: Path) -> None:
    for n, value in enumerate([3.0, 4.0, 9.5, 4.2]):
        m = {"name": "latency", "value": value, "unit": "us", "low": 1.0, "high": 5.0}
        fake_run(tmp_path, "r1", f"run{n}", [_rec("a.m", "pass", measurements=[m])], started=_ts(n))
    s = write_report(tmp_path)
    (series,) = s["measurements"]
    assert (series["count"], series["out_of_limits"], series["max"]) == (4, 1, 9.5)
    assert [p[2] for p in series["points"]] == [True, True, False, True]
    html = (tmp_path / "report.html").read_text()
    assert html.count('class="measurement-plot"><svg') == 1  # limits given: plotted


def test_compare_two_runs(tmp_path: Path) -> None:
    m1 = {"name": "t", "value": 1.0, "unit": "s", "high": 2.0, "ok": True}
    m2 = {"name": "t", "value": 3.0, "unit": "s", "high": 2.0, "ok": False}
    fake_run(
        tmp_path,
        "r1",
        "A",
        [_rec("a.x", "pass", measurements=[m1]), _rec("a.y", "pass"), _rec("a.gone", "pass")],
        started=_ts(1),
    )
    b = fake_run(
        tmp_path,
        "r1",
        "B",
        [_rec("a.x", "fail", message="t out", measurements=[m2]), _rec("a.y", "pass")],
        started=_ts(2),
    )
    diff = compare_runs(find_run(tmp_path, "A"), find_run(tmp_path, str(b)))
    assert [(c["vector"], c["a"], c["b"]) for c in diff["changed"]] == [
        ("a.gone", "pass", "absent"),
        ("a.x", "pass", "fail"),
    ]
    (m,) = diff["measurements"]
    assert (m["a"], m["b"], m["delta"], m["b_ok"]) == (1.0, 3.0, 2.0, False)
    cmd = ["report", "--results", str(tmp_path), "--compare", "A", "B"]
    out = subprocess.run(
        [sys.executable, "-m", "hil.cli", *cmd], capture_output=True, text=True, check=True
    )
    assert "a.x" in out.stdout and "pass    -> fail" in out.stdout and "OUT OF LIMITS" in out.stdout
    with pytest.raises(LookupError, match="no run nope"):
        find_run(tmp_path, "nope")


def test_bundle_runs_and_local_runs_share_the_summary(tmp_path: Path) -> None:
    fake_run(tmp_path, "r1", "A", [_rec("a.x", "pass")], started=_ts(1), device_key="d")
    runs, problems = collect_runs(tmp_path)
    runs[0].lab = "labX"
    s = build_summary(runs, problems)
    assert s["interop"]["hosts"] == ["labX/r1"]
    assert s["interop"]["cells"]["d"]["labX/r1"]["a"]["runs"] == ["labX:A"]


@pytest.fixture(scope="module")
def fake_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real `hil run --rig fake` (a few seconds), with a vector selection."""
    root = tmp_path_factory.mktemp("results")
    subprocess.run(
        [sys.executable, "-m", "hil.cli", "run", "--rig", "fake", "--results", str(root),
         "-k", "spdm"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    (run_dir,) = (root / "fake").iterdir()
    return run_dir


def test_a_real_run_records_what_it_tested(fake_run_dir: Path) -> None:
    text = (fake_run_dir / "run.json").read_text()
    assert "PRIVATE KEY" not in text
    run = json.loads(text)
    device = run["device"]
    assert device["pci"]["vendor_id"] and device["pci"]["class_code"]
    assert len(device["dsn"]) == 16
    assert device["spdm"]["version"] in ("1.2", "1.3")
    assert device["spdm"]["algorithms"]["base_hash"] in ("SHA_384", "SHA_256")
    certs = device["spdm"]["slots"]["0"]["certificates"]
    assert len(certs) >= 2 and all(len(c["sha384"]) == 96 for c in certs)
    assert certs[-1]["subject"].startswith("CN=")
    kinds = {m["type"] for m in device["spdm"]["measurements"]}
    assert "version" in kinds and all(
        m.get("digest") or m.get("sha384") for m in device["spdm"]["measurements"]
    )
    assert device["firmware_version"]
    assert device["notes"] == []
    assert run["device_key"] == device["key"] and len(run["device_key"]) == 16
    assert run["selection"]["k"] == "spdm"
    assert run["command"][1:3] == ["run", "--rig"]
    assert "kind" in run["rig_file"]["text"]
    assert run["tested_by"]["kernel_release"]


def test_a_real_run_reports(fake_run_dir: Path, tmp_path: Path) -> None:
    root = fake_run_dir.parent.parent
    s = write_report(root, tmp_path)
    key = json.loads((fake_run_dir / "run.json").read_text())["device_key"]
    assert list(s["devices"]) == [key]
    assert s["devices"][key]["identity"]["spdm_version"]
    html = (tmp_path / "report.html").read_text()
    assert key in html and "hil test device" in html
    assert f'href="{fake_run_dir.resolve()}/run.json"' in html  # outside --out: absolute


def test_identity_never_fails_a_run() -> None:
    import asyncio

    from hil.backends.fake import FakeBackend
    from hil.identity import identify, probe
    from hil.rigs import find_rig
    from hil.transport import AsyncioTimebase
    from hil.vectors import VectorContext

    class Dead:
        async def read32(self, offset: int) -> int:
            return 0xFFFFFFFF

        async def write32(self, offset: int, value: int) -> None:
            pass

    ctx = VectorContext(
        rig_name="dead",
        rig_kind="fake",
        provides=frozenset({"config", "doe", "spdm"}),
        timebase=AsyncioTimebase(),
        config=Dead(),  # type: ignore[arg-type]
        settings={"doe_timeout_s": 0.05},
    )
    found = asyncio.run(probe(ctx))
    assert "pci" not in found
    assert any("no function answers" in n for n in found["notes"])
    assert any(n.startswith("SPDM") for n in found["notes"])

    class Broken(FakeBackend):
        def run_vector(self, vec, *, artifacts_dir, waves):  # type: ignore[no-untyped-def]
            raise RuntimeError("the rig fell over")

    device = identify(Broken(find_rig("fake")))
    assert device["key"] is None
    assert device["notes"] == ["identity probe failed: RuntimeError: the rig fell over"]


def test_report_html_is_self_contained_and_plots_only_what_changes(tmp_path: Path) -> None:
    for n in range(3):
        fake_run(tmp_path, "r1", f"run{n}", [_rec("a.many", "pass")], started=_ts(n))
    fake_run(tmp_path, "r2", "once", [_rec("a.once", "fail", message="x")], started=_ts(5))
    write_report(tmp_path)
    html = (tmp_path / "report.html").read_text()
    import re

    # Nothing fetched: no linked files, no sources, no CSS URLs but the SVGs' own url(#id).
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\((?!#)", html)
    external = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert external <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, external
    history = html[html.index('id="history-table"') : html.index('id="measurements"')]
    assert "a.many" in history and "a.once" not in history  # one run: nothing over time
    assert history.count('<svg class="spark"') == 1
    assert html.count('id="outcomes-plot"><svg') == 1


def test_identity_with_pytest_xdist_workers(tmp_path: Path) -> None:
    """The controller collects nothing under -n; the probe still runs, once, before vectors."""
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "run", "--rig", "fake", "-n", "2", "--results",
         str(tmp_path), "-k", "spdm.version"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (run_json,) = tmp_path.glob("fake/*/run.json")
    run = json.loads(run_json.read_text())
    assert run["device"]["notes"] == [] and run["device_key"]
    assert run["device"]["spdm"]["slots"]["0"]["certificates"]


def test_odd_values_in_result_files_are_read_not_crashed_on(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "r1", "odd", [], started=_ts(1))
    (run / "run.json").write_text(json.dumps({"rig": 7, "run_id": ["x"], "started": 12}))
    recs = [
        {"vector": "a.x", "outcome": "fail", "message": 42, "duration_s": "slow"},
        {"vector": "a.y", "outcome": "pass", "measurements": {"no": 1}, "artifacts": "a"},
        {"vector": "<b>a.z</b>", "outcome": "maybe"},
        [1, 2],
    ]
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    fake_run(tmp_path, "r1", "fine", [_rec("a.x", "pass")], started=_ts(2))
    s = write_report(tmp_path)
    odd = next(r for r in s["runs"] if r["run_id"] == "odd")
    assert odd["rig"] == "r1" and odd["totals"]["fail"] == 1 and odd["totals"]["pass"] == 1
    assert s["vectors"]["a.x"]["rigs"]["r1"]["first_failure"]["message"] == "42"
    problems = "\n".join(s["problems"])
    assert "record 3 lacks a vector or an outcome" in problems
    assert "record 4 lacks a vector or an outcome" in problems
    assert "measurements is not a list" in problems and "artifacts is not a list" in problems
    assert "<b>a.z" not in (tmp_path / "report.html").read_text()
