"""Splitting one suite run over N machines: ``hil run --shard K/N`` (and ``pytest --shard``).

The selected vector ids are partitioned into N shards, balanced by how long each vector took
in earlier runs of the rig (the median of its recorded durations; a vector never recorded
gets the median of the others, or :data:`DEFAULT_ESTIMATE_S`).  The partition is
longest-processing-time first: vectors by decreasing weight (ties by id), each to the least
loaded shard (ties to the lowest index).  Weights are whole microseconds, so the sums are exact
and the same input gives the same partition on every machine.

:func:`partition` is pure; :func:`recorded_durations` reads the results folder.  The shards of
one suite run share a group (``--shard-group``, or the CI run id), which ``hil report`` uses to
merge them back into one run; each records :func:`plan_digest` of the partition it followed,
so shards planned from different durations are found rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_ESTIMATE_S",
    "GROUP_ENV",
    "ShardSpec",
    "assign",
    "ci_group",
    "estimate_s",
    "partition",
    "plan_digest",
    "recorded_durations",
]

#: The weight of a vector no earlier run recorded, when no vector was recorded at all.
DEFAULT_ESTIMATE_S = 1.0
#: Every vector costs at least this much (item set-up, a record written).
_FLOOR_US = 1000
#: CI variables naming one pipeline or workflow run, in the order they are tried.
GROUP_ENV = (
    ("GITHUB_RUN_ID", "github"),
    ("CI_PIPELINE_ID", "gitlab"),
    ("BUILDKITE_BUILD_ID", "buildkite"),
    ("CIRCLE_WORKFLOW_ID", "circleci"),
    ("BUILD_TAG", "jenkins"),
)
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``k`` of ``n`` (1-based, as CI matrices count)."""

    k: int
    n: int

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        """``"2/3"``; ValueError saying what is wrong otherwise."""
        m = _SPEC.fullmatch(text or "")
        if not m:
            raise ValueError(f"--shard {text!r}: expected K/N, e.g. 2/3 (shard 2 of 3)")
        k, n = int(m[1]), int(m[2])
        if n < 1:
            raise ValueError(f"--shard {text}: N must be at least 1")
        if not 1 <= k <= n:
            raise ValueError(f"--shard {text}: K must be between 1 and N ({n})")
        return cls(k, n)

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def _weights_us(ids: Sequence[str], durations: Mapping[str, float]) -> dict[str, int]:
    known = sorted(durations[i] for i in ids if i in durations and math.isfinite(durations[i]))
    default = _median(known) if known else DEFAULT_ESTIMATE_S
    out = {}
    for vid in ids:
        d = durations.get(vid, default)
        if not math.isfinite(d) or d < 0:
            d = default
        out[vid] = max(_FLOOR_US, round(d * 1e6))
    return out


def partition(
    ids: Sequence[str], n: int, durations: Mapping[str, float] | None = None
) -> list[list[str]]:
    """``ids`` in ``n`` shards, each in the order of ``ids``; every id in exactly one shard.

    ``durations`` (seconds per vector id, e.g. from :func:`recorded_durations`) balance them;
    an id it lacks weighs the median of those it has.  Duplicate ids count once.
    """
    if n < 1:
        raise ValueError(f"cannot split into {n} shards")
    unique = list(dict.fromkeys(ids))
    weights = _weights_us(unique, durations or {})
    loads = [0] * n
    members: list[set[str]] = [set() for _ in range(n)]
    for vid in sorted(unique, key=lambda i: (-weights[i], i)):
        target = min(range(n), key=lambda s: (loads[s], s))
        loads[target] += weights[vid]
        members[target].add(vid)
    return [[i for i in unique if i in m] for m in members]


def assign(
    ids: Sequence[str], spec: ShardSpec, durations: Mapping[str, float] | None = None
) -> list[str]:
    """The ids shard ``spec`` runs, in the order of ``ids``."""
    return partition(ids, spec.n, durations)[spec.k - 1]


def plan_digest(shards: Sequence[Sequence[str]]) -> str:
    """A short digest of a partition: shards of one run that disagree were planned apart."""
    text = json.dumps([list(s) for s in shards], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def estimate_s(ids: Sequence[str], durations: Mapping[str, float]) -> float:
    """The estimated time of ``ids`` under the partition's weights."""
    return sum(_weights_us(list(ids), durations).values()) / 1e6


def _median(values: list[float]) -> float:
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def ci_group(environ: Mapping[str, str] | None = None) -> str | None:
    """The shard group a CI job belongs to, from its pipeline or workflow run id."""
    env = os.environ if environ is None else environ
    for var, name in GROUP_ENV:
        value = env.get(var, "").strip()
        if value:
            return f"{name}-{value}"
    return None


def recorded_durations(
    results_root: Path, rig: str, exclude_group: str | None = None
) -> tuple[dict[str, float], int]:
    """Median duration per vector over the rig's earlier runs, and how many runs gave them.

    Runs of ``exclude_group`` (the shards of the run being planned) are left out, so shards
    run one after another on one machine plan alike.  Unreadable files and lines are passed
    over: durations only balance the shards, they never decide a verdict.
    """
    seen: dict[str, list[float]] = {}
    runs = 0
    rig_dir = results_root / rig
    if not rig_dir.is_dir():
        return {}, 0
    for run_dir in sorted(p for p in rig_dir.iterdir() if p.is_dir()):
        if exclude_group is not None and _group_of(run_dir) == exclude_group:
            continue
        try:
            text = (run_dir / "records.jsonl").read_text(errors="replace")
        except OSError:
            continue
        found = False
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("vector"), str):
                continue
            d = rec.get("duration_s")
            if isinstance(d, int | float) and not isinstance(d, bool) and math.isfinite(d):
                if d >= 0:
                    seen.setdefault(rec["vector"], []).append(float(d))
                    found = True
        runs += found
    return {vid: _median(sorted(ds)) for vid, ds in seen.items()}, runs


def _group_of(run_dir: Path) -> str | None:
    try:
        meta = json.loads((run_dir / "run.json").read_text(errors="replace"))
    except (OSError, ValueError):
        return None
    shard = meta.get("shard") if isinstance(meta, dict) else None
    if isinstance(shard, dict) and shard.get("group") not in (None, ""):
        return str(shard["group"])
    return None
