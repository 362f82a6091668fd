"""Reading a results root: every run folder, whole, partial or broken, with its problems.

A run is ``<root>/<rig>/<run-id>/`` holding ``run.json`` and ``records.jsonl``.  Nothing is
dropped silently: a run.json that does not parse still gives its records (rig and run id from
the folder names), a truncated records file gives every whole line before the cut, and each
such thing is a problem listed beside the run.  Shards of one run (``run.json`` ``shard``:
``{"k", "n", "group"}``) are merged into one run per rig and group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OUTCOMES", "Run", "collect_runs", "load_run", "merge_shards"]

OUTCOMES = ("pass", "fail", "error", "skip", "n/a")
_OUTCOME_SET = frozenset(OUTCOMES)
_TEXT_KEYS = ("message", "title", "spec", "started")
_LIST_KEYS = ("measurements", "artifacts")


@dataclass
class Run:
    """One run as the report sees it."""

    run_id: str
    rig: str
    kind: str | None
    started: str | None
    finished: str | None
    meta: dict[str, Any]
    records: list[dict[str, Any]]
    #: Folder of the run relative to the report's output folder (for links), or None.
    path: str | None
    lab: str = "local"
    #: Where the run came from: "results" or "bundle <file> (<lab>)".
    source: str = "results"
    problems: list[str] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)

    @property
    def device_key(self) -> str:
        key = self.meta.get("device_key")
        return str(key) if key else f"unknown@{self.rig}"

    @property
    def git_sha(self) -> str | None:
        sha = self.meta.get("git_sha")
        return str(sha) if sha else None

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(OUTCOMES, 0)
        for rec in self.records:
            totals[rec["outcome"]] = totals.get(rec["outcome"], 0) + 1
        return totals

    def sort_key(self) -> tuple[str, str]:
        return (self.started or "", self.run_id)


def _read_records(path: Path, where: str, problems: list[str]) -> list[dict[str, Any]]:
    """records.jsonl: one json.loads for the whole file when it is whole (the fast path),
    line by line to find and keep what precedes a bad line when it is not."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        problems.append(f"{where}/records.jsonl: unreadable ({exc.strerror or exc})")
        return []
    try:  # one record a line, so the lines joined by commas are one JSON array
        raw = json.loads("[" + text.rstrip("\n").replace("\n", ",") + "]")
    except ValueError:  # a blank, bad or cut line: find it, keep every line around it
        lines = [line for line in text.split("\n") if line.strip()]
        raw = []
        for n, line in enumerate(lines, 1):
            try:
                raw.append(json.loads(line))
            except ValueError:
                last = n == len(lines) and not text.endswith("\n")
                problems.append(
                    f"{where}/records.jsonl:{n}: "
                    + ("truncated last line (the run was cut off)" if last else "not JSON")
                )
    records = []
    for n, rec in enumerate(raw, 1):
        if type(rec) is not dict or rec.get("outcome") not in _OUTCOME_SET:
            problems.append(f"{where}/records.jsonl: record {n} lacks a vector or an outcome")
            continue
        if type(rec.get("vector")) is not str:
            problems.append(f"{where}/records.jsonl: record {n} lacks a vector or an outcome")
            continue
        for key in _TEXT_KEYS:  # text, whatever the file says
            value = rec.get(key)
            if value is not None and type(value) is not str:
                rec[key] = str(value)
        for key in _LIST_KEYS:
            value = rec.get(key)
            if value is not None and type(value) is not list:
                problems.append(f"{where}/records.jsonl: record {n}: {key} is not a list")
                rec[key] = []
        records.append(rec)
    return records


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def load_run(run_dir: Path, rel: str | None, where: str | None = None) -> Run:
    """One run folder, whatever state it is in; ``where`` names it in problems."""
    where = where or rel or str(run_dir)
    problems: list[str] = []
    meta: dict[str, Any] = {}
    run_json = run_dir / "run.json"
    if run_json.exists():
        try:
            loaded = json.loads(run_json.read_text(errors="replace"))
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            meta = loaded
        except (OSError, ValueError) as exc:
            problems.append(f"{where}/run.json: unreadable ({exc}); rig and run from the folder")
    else:
        problems.append(f"{where}: no run.json; rig and run from the folder")
    rec_path = run_dir / "records.jsonl"
    records = _read_records(rec_path, where, problems) if rec_path.exists() else []
    rig = _text(meta.get("rig")) or run_dir.parent.name
    run = Run(
        run_id=_text(meta.get("run_id")) or run_dir.name,
        rig=rig,
        kind=_text(meta.get("kind")),
        started=_text(meta.get("started")),
        finished=_text(meta.get("finished")),
        meta=meta,
        records=records,
        path=rel,
        problems=problems,
    )
    if meta and not run.finished:
        problems.append(f"{where}: run has no finish time (it crashed, or is still running)")
    declared = meta.get("totals")
    if run.finished and isinstance(declared, dict):
        have = run.totals()
        if any(int(declared.get(o, 0) or 0) != have[o] for o in OUTCOMES):
            problems.append(
                f"{where}: run.json totals {_fmt(declared)} but records.jsonl holds {_fmt(have)}"
            )
    if not records and not rec_path.exists():
        problems.append(f"{where}: no records.jsonl (no vector recorded)")
    return run


def _fmt(totals: dict[str, Any]) -> str:
    return ", ".join(f"{totals.get(o, 0)} {o}" for o in OUTCOMES if totals.get(o))


def collect_runs(root: Path, link_base: Path | None = None) -> tuple[list[Run], list[str]]:
    """Every run under ``root`` (``<rig>/<run-id>/``), oldest first; and root-level problems.
    Links are relative to ``link_base`` (the report's folder; ``root`` by default)."""
    base = link_base or root
    problems: list[str] = []
    runs: list[Run] = []
    if not root.is_dir():
        return [], [f"{root}: no results folder"]
    try:  # links: relative when the report sits above the results, else absolute
        prefix = root.resolve().relative_to(base.resolve()).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
    except ValueError:
        prefix = root.resolve().as_posix() + "/"
    for rig_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for run_dir in sorted(p for p in rig_dir.iterdir() if p.is_dir()):
            if not (run_dir / "run.json").exists() and not (run_dir / "records.jsonl").exists():
                continue  # not a run folder (e.g. someone's notes)
            runs.append(load_run(run_dir, f"{prefix}{rig_dir.name}/{run_dir.name}"))
    if not runs:
        problems.append(f"{root}: no runs found (no <rig>/<run-id>/run.json)")
    runs.sort(key=Run.sort_key)
    return runs, problems


def merge_shards(runs: list[Run]) -> list[Run]:
    """Shards of one run (same rig, lab and shard group) become one run: records unioned,
    totals from them, problems for a missing shard, a vector in two shards, or mixed N."""
    out: list[Run] = []
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        shard = run.meta.get("shard")
        if isinstance(shard, dict) and shard.get("group") not in (None, ""):
            groups.setdefault((run.lab, run.rig, str(shard["group"])), []).append(run)
        else:
            out.append(run)
    for (_lab, rig, group), parts in groups.items():
        parts.sort(key=lambda r: (_int(r.meta["shard"].get("k")), r.sort_key()))
        first = parts[0]
        problems = [p for r in parts for p in r.problems]
        ns = {_int(r.meta["shard"].get("n")) for r in parts}
        ks = [_int(r.meta["shard"].get("k")) for r in parts]
        where = f"{rig} shard group {group}"
        if len(ns) != 1:
            problems.append(f"{where}: shards disagree on N ({sorted(ns)})")
        n = max(ns)
        missing = [k for k in range(1, n + 1) if k not in ks]
        if missing:
            problems.append(
                f"{where}: shard{'s' if len(missing) > 1 else ''} "
                f"{', '.join(f'{k}/{n}' for k in missing)} missing; the run is incomplete"
            )
        dup = sorted({k for k in ks if ks.count(k) > 1})
        if dup:
            problems.append(f"{where}: shard {', '.join(map(str, dup))} recorded more than once")
        plans = {str(r.meta["shard"].get("plan")) for r in parts if r.meta["shard"].get("plan")}
        if len(plans) > 1:
            problems.append(
                f"{where}: shards followed different plans ({', '.join(sorted(plans))}): they "
                "saw different earlier durations or selections, so a vector may have run in "
                "none of them"
            )
        keys = {r.meta.get("device_key") for r in parts if r.meta.get("device_key")}
        if len(keys) > 1:
            problems.append(f"{where}: shards tested different devices ({', '.join(sorted(keys))})")
        records: dict[str, dict[str, Any]] = {}
        for part in parts:
            for rec in part.records:
                if rec["vector"] in records:
                    problems.append(f"{where}: {rec['vector']} ran in more than one shard")
                records[rec["vector"]] = rec
        finished = [r.finished for r in parts]
        # The merged run's identity: the first shard whose probe identified the device.
        meta = dict(next((r.meta for r in parts if r.meta.get("device_key")), first.meta))
        meta["shard"] = {"group": group, "n": n, "k": sorted(set(ks))}
        merged = Run(
            run_id=f"{group}",
            rig=rig,
            kind=first.kind,
            started=min((r.started for r in parts if r.started), default=None),
            finished=None if None in finished or missing else max(f for f in finished if f),
            meta=meta,
            records=list(records.values()),
            path=first.path,
            lab=first.lab,
            source=first.source,
            problems=problems,
            shards=[f"{r.run_id} ({_int(r.meta['shard'].get('k'))}/{n})" for r in parts],
        )
        out.append(merged)
    out.sort(key=Run.sort_key)
    return out


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
