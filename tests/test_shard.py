"""``--shard K/N``: the partition, its errors, and N shards of the fake rig merged by
``hil report`` into the records of one run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import hil, only_run, records
from hypothesis import given
from hypothesis import strategies as st

from hil.shard import (
    GROUP_ENV,
    ShardSpec,
    assign,
    ci_group,
    partition,
    plan_digest,
    recorded_durations,
)

_IDS = st.lists(st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6}){0,2}", fullmatch=True), max_size=60)
_DURATIONS = st.floats(min_value=0, max_value=120, allow_nan=False)
_NO_CI = {var: "" for var, _ in GROUP_ENV}


@given(ids=_IDS, n=st.integers(1, 9), data=st.data())
def test_every_vector_is_in_exactly_one_shard_in_suite_order(ids, n, data) -> None:
    durations = data.draw(st.dictionaries(st.sampled_from(ids), _DURATIONS) if ids else st.just({}))
    shards = partition(ids, n, durations)
    assert len(shards) == n
    flat = [vid for shard in shards for vid in shard]
    assert sorted(flat) == sorted(set(ids))  # each once, duplicates in the input counted once
    order = {vid: i for i, vid in reversed(list(enumerate(ids)))}
    for shard in shards:
        assert [order[v] for v in shard] == sorted(order[v] for v in shard)


@given(ids=_IDS, n=st.integers(1, 9), data=st.data())
def test_the_same_input_gives_the_same_partition(ids, n, data) -> None:
    """Whatever order the durations were read in, on whatever machine."""
    durations = data.draw(st.dictionaries(st.sampled_from(ids), _DURATIONS) if ids else st.just({}))
    again = dict(reversed(list(durations.items())))
    first = partition(ids, n, durations)
    assert partition(list(ids), n, again) == first
    assert plan_digest(first) == plan_digest(partition(ids, n, dict(durations)))
    assert [assign(ids, ShardSpec(k, n), durations) for k in range(1, n + 1)] == first


@given(
    weights=st.dictionaries(
        st.from_regex(r"v[0-9]{1,4}", fullmatch=True), st.floats(0.001, 100), min_size=1
    ),
    n=st.integers(1, 8),
)
def test_shards_are_balanced_by_duration(weights, n) -> None:
    """Longest first, each to the lightest shard: the heaviest and lightest shard differ by no
    more than the longest vector, and no shard exceeds an even share by more than that."""
    ids = sorted(weights)
    shards = partition(ids, n, weights)
    loads = [sum(weights[v] for v in s) for s in shards]
    longest = max(weights.values())
    assert max(loads) - min(loads) <= longest + 1e-6
    assert max(loads) <= sum(loads) / n + longest + 1e-6


def test_durations_decide_where_the_long_vectors_go() -> None:
    ids = ["a", "b", "c", "d", "e", "f"]
    slow = {"a": 30.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 26.0, "f": 1.0}
    assert partition(ids, 2, slow) == [["a"], ["b", "c", "d", "e", "f"]]
    # Without durations every vector weighs the same: three and three.
    assert [len(s) for s in partition(ids, 2, {})] == [3, 3]
    # A vector never recorded weighs the median of the others (1 s here), not zero.
    assert partition([*ids, "new"], 2, slow) == [["a", "new"], ["b", "c", "d", "e", "f"]]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("0/3", "K must be between 1 and N"),
        ("4/3", "K must be between 1 and N"),
        ("1/0", "N must be at least 1"),
        ("2", "expected K/N"),
        ("a/b", "expected K/N"),
        ("1/3/4", "expected K/N"),
        ("-1/3", "expected K/N"),
    ],
)
def test_a_malformed_shard_says_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ShardSpec.parse(text)


def test_shard_spec_reads_spaces_and_prints_back() -> None:
    assert ShardSpec.parse(" 2 / 3 ") == ShardSpec(2, 3)
    assert str(ShardSpec(2, 3)) == "2/3"


def test_the_group_comes_from_the_ci_run() -> None:
    assert ci_group({"GITHUB_RUN_ID": "8812"}) == "github-8812"
    assert ci_group({"CI_PIPELINE_ID": "77"}) == "gitlab-77"
    assert ci_group({"GITHUB_RUN_ID": " ", "CI_PIPELINE_ID": "77"}) == "gitlab-77"
    assert ci_group({}) is None


def _run(root: Path, name: str, recs: list[object], group: str | None = None) -> None:
    run = root / "fake" / name
    run.mkdir(parents=True)
    meta: dict[str, object] = {"run_id": name}
    if group:
        meta["shard"] = {"k": 1, "n": 2, "group": group}
    (run / "run.json").write_text(json.dumps(meta))
    (run / "records.jsonl").write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in recs)
    )


def test_recorded_durations_are_medians_of_earlier_runs(tmp_path: Path) -> None:
    _run(tmp_path, "r1", [{"vector": "a", "duration_s": 1.0}, {"vector": "b", "duration_s": 5}])
    _run(tmp_path, "r2", [{"vector": "a", "duration_s": 3.0}, "{cut off"])
    _run(tmp_path, "r3", [{"vector": "a", "duration_s": 2.5}, {"vector": "b", "duration_s": -1}])
    _run(tmp_path, "r4", [{"vector": "a", "duration_s": 99.0}], group="ci-7")
    durations, runs = recorded_durations(tmp_path, "fake", exclude_group="ci-7")
    assert durations == {"a": 2.5, "b": 5.0} and runs == 3
    durations, runs = recorded_durations(tmp_path, "fake")
    assert durations["a"] == pytest.approx((2.5 + 3.0) / 2) and runs == 4
    assert recorded_durations(tmp_path, "no-such-rig") == ({}, 0)


# -- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--shard", "4/3", "--shard-group", "g"], "--shard 4/3: K must be between 1 and N (3)"),
        (["--shard", "three", "--shard-group", "g"], "expected K/N"),
        (["--shard", "1/3"], "--shard 1/3: name the suite run the shards belong to"),
        (["--shard-group", "g"], "--shard-group needs --shard K/N"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(
    tmp_path: Path, repo: Path, args: list[str], error: str
) -> None:
    proc = hil(
        "run", "--rig", "fake", "--results", str(tmp_path), *args, cwd=repo, env_extra=_NO_CI
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("hil: --shard") and error in line, line
    assert not (tmp_path / "fake").exists()


def test_pytest_shard_errors_are_usage_errors(tmp_path: Path, repo: Path) -> None:
    env = {**os.environ, **_NO_CI}
    for args, error in (
        (["--shard", "2/x"], "expected K/N"),
        (["--shard", "1/2"], "--shard-group NAME"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--rig", "fake", "--results", str(tmp_path), *args],
            cwd=repo,
            capture_output=True,
            text=True,
            env=env,
        )
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
        assert error in proc.stderr


def _listed(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("shard "), lines[-2:]
    return [line.split()[0] for line in lines[:-2]]


def test_list_shows_each_shards_vectors(tmp_path: Path, repo: Path) -> None:
    whole = hil("run", "--rig", "fake", "--list", "--results", str(tmp_path), cwd=repo)
    everything = [line.split()[0] for line in whole.stdout.splitlines()[:-1]]
    shards = [
        _listed(
            hil(
                "run",
                "--rig",
                "fake",
                "--list",
                "--shard",
                f"{k}/3",
                "--results",
                str(tmp_path),
                cwd=repo,
                env_extra=_NO_CI,
            )
        )
        for k in (1, 2, 3)
    ]
    assert sorted(v for s in shards for v in s) == sorted(everything)
    assert all(abs(len(s) - len(everything) / 3) <= 1 for s in shards)  # no durations: equal
    # -k narrows what is split: only doe vectors, split two ways
    doe = [
        _listed(
            hil(
                "run",
                "--rig",
                "fake",
                "--list",
                "-k",
                "doe",
                "--shard",
                f"{k}/2",
                "--results",
                str(tmp_path),
                cwd=repo,
                env_extra=_NO_CI,
            )
        )
        for k in (1, 2)
    ]
    assert sorted(doe[0] + doe[1]) == sorted(v for v in everything if v.startswith("doe."))
    assert doe[0] and doe[1] and not set(doe[0]) & set(doe[1])


# -- end to end on the fake rig -------------------------------------------------------------


def test_three_shards_merge_into_the_records_of_one_run(tmp_path: Path, repo: Path) -> None:
    """One plain run, then the suite in three shards of one group, one after another on this
    machine (as three CI jobs would, each with the plain run's results): ``hil report``
    merges the shards into one run whose vectors and outcomes are the plain run's."""
    results = tmp_path / "results"
    plain = hil("run", "--rig", "fake", "--results", str(results), cwd=repo, env_extra=_NO_CI)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    plain_dir = only_run(results, "fake")
    single = {v: r["outcome"] for v, r in records(plain_dir).items()}
    assert len(single) > 50

    for k in (1, 2, 3):
        proc = hil(
            "run", "--rig", "fake", "--results", str(results), "--shard", f"{k}/3",
            cwd=repo, env_extra={**_NO_CI, "GITHUB_RUN_ID": "4242"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"shard {k}/3 of group github-4242" in proc.stdout
    shard_dirs = sorted(p for p in (results / "fake").iterdir() if p != plain_dir)
    metas = [json.loads((d / "run.json").read_text()) for d in shard_dirs]
    assert sorted(m["shard"]["k"] for m in metas) == [1, 2, 3]
    assert {m["shard"]["group"] for m in metas} == {"github-4242"}
    assert len({m["shard"]["plan"] for m in metas}) == 1  # each planned from the plain run alone
    assert all(m["shard"]["durations_from_runs"] == 1 for m in metas)
    per_shard = [set(records(d)) for d in shard_dirs]
    assert all(per_shard) and sum(map(len, per_shard)) == len(set().union(*per_shard))

    report = hil("report", "--results", str(results), cwd=repo)
    assert report.returncode == 0, report.stdout + report.stderr
    summary = json.loads((results / "summary.json").read_text())
    assert summary["problems"] == [], summary["problems"]
    runs = {r["run_id"]: r for r in summary["runs"]}
    merged = runs["github-4242"]
    assert len(merged["shards"]) == 3 and merged["finished"]
    assert merged["totals"] == runs[plain_dir.name]["totals"]
    from hil.report import collect_runs, merge_shards

    (one,) = [r for r in merge_shards(collect_runs(results)[0]) if r.run_id == "github-4242"]
    assert {r["vector"]: r["outcome"] for r in one.records} == single
    assert one.meta["device_key"] == json.loads((plain_dir / "run.json").read_text())["device_key"]


def test_an_empty_shard_is_recorded_and_a_lost_one_is_a_problem(tmp_path: Path, repo: Path) -> None:
    """More shards than vectors: a shard with nothing to run still leaves its (empty) run, so
    the report counts it; a shard that never reports is listed as missing."""
    results = tmp_path / "results"
    for k in (1, 2, 3):
        proc = hil(
            "run", "--rig", "fake", "--results", str(results), "-k", "pcie",
            "--shard", f"{k}/3", "--shard-group", "few", cwd=repo, env_extra=_NO_CI,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    dirs = list((results / "fake").iterdir())
    assert len(dirs) == 3
    counts = sorted(len(records(d)) for d in dirs)
    assert counts[0] == 0 and sum(counts) >= 1
    assert hil("report", "--results", str(results), cwd=repo).returncode == 0
    s = json.loads((results / "summary.json").read_text())
    assert s["problems"] == [], s["problems"]
    (merged,) = s["runs"]
    assert len(merged["shards"]) == 3 and merged["totals"]["pass"] == sum(counts)
    # the shard that ran the vector never reports: the report says so
    shutil.rmtree(max(dirs, key=lambda d: len(records(d))))
    hil("report", "--results", str(results), cwd=repo)
    s = json.loads((results / "summary.json").read_text())
    assert any("shard group few" in p and "missing" in p for p in s["problems"]), s["problems"]


def test_shards_with_workers_split_the_same_way(tmp_path: Path, repo: Path) -> None:
    """pytest-xdist workers plan from the controller's durations: two shards of the doe
    vectors, each over two workers, run every doe vector once, as ``--list`` said."""
    results = tmp_path / "results"
    seen: list[set[str]] = []
    for k in (1, 2):
        listed = _listed(
            hil("run", "--rig", "fake", "--list", "-k", "doe", "--shard", f"{k}/2",
                "--shard-group", "w", "--results", str(results), cwd=repo, env_extra=_NO_CI)
        )  # fmt: skip
        proc = hil(
            "run", "--rig", "fake", "-k", "doe", "-n", "2", "--shard", f"{k}/2",
            "--shard-group", "w", "--results", str(results), cwd=repo, env_extra=_NO_CI,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (run,) = [
            d
            for d in (results / "fake").iterdir()
            if json.loads((d / "run.json").read_text())["shard"]["k"] == k
        ]
        seen.append(set(records(run)))
        assert seen[-1] == set(listed)
    assert not seen[0] & seen[1] and all(v.startswith("doe.") for v in seen[0] | seen[1])


def _shard_run(root: Path, k: int, plan: str, device: str, vectors: list[str]) -> None:
    from hil.report import fake_run

    fake_run(
        root,
        "fake",
        f"s{k}",
        [{"vector": v, "outcome": "pass", "duration_s": 0.1} for v in vectors],
        started=f"2026-01-01T00:00:0{k}Z",
        device_key=device,
        shard={"k": k, "n": 2, "group": "g", "plan": plan},
    )


def test_shards_planned_apart_or_testing_other_devices_are_problems(tmp_path: Path) -> None:
    from hil.report import write_report

    _shard_run(tmp_path / "a", 1, "p1", "dev-1", ["a.x"])
    _shard_run(tmp_path / "a", 2, "p1", "dev-1", ["a.y"])
    assert write_report(tmp_path / "a")["problems"] == []
    _shard_run(tmp_path / "b", 1, "p1", "dev-1", ["a.x"])
    _shard_run(tmp_path / "b", 2, "p2", "dev-2", ["a.y"])
    problems = write_report(tmp_path / "b")["problems"]
    assert any("followed different plans (p1, p2)" in p for p in problems), problems
    assert any("tested different devices (dev-1, dev-2)" in p for p in problems), problems
