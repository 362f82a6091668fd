"""Synthetic results folders, for the report's tests and its scale benchmark: runs as
``hil run`` writes them (run.json, records.jsonl), made up from a seed."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["fake_run", "synthetic_results"]


def fake_run(
    root: Path,
    rig: str,
    run_id: str,
    records: list[dict[str, Any]],
    *,
    started: str,
    finished: str | None = "",
    device_key: str | None = None,
    git_sha: str = "0" * 40,
    kind: str = "fake",
    **meta: Any,
) -> Path:
    """One run folder.  ``finished=""`` means ``started`` (a whole run), None a crashed one."""
    run_dir = root / rig / run_id
    run_dir.mkdir(parents=True)
    totals: dict[str, int] = dict.fromkeys(("pass", "fail", "error", "skip", "n/a"), 0)
    for rec in records:
        totals[rec["outcome"]] += 1
    data = {
        "run_id": run_id,
        "rig": rig,
        "kind": kind,
        "started": started,
        "finished": started if finished == "" else finished,
        "git_sha": git_sha,
        "device_key": device_key,
        "device": {"key": device_key, "notes": []} if device_key else {},
        **meta,
        "totals": totals,
    }
    (run_dir / "run.json").write_text(json.dumps(data))
    lines = [
        json.dumps({"run_id": run_id, "rig": rig, "title": "", "spec": "", **r}) for r in records
    ]
    (run_dir / "records.jsonl").write_text("".join(line + "\n" for line in lines))
    return run_dir


def synthetic_results(
    root: Path, *, rigs: int = 10, runs: int = 1000, vectors: int = 70, seed: int = 1
) -> None:
    """``runs`` runs spread over ``rigs`` rigs of ``vectors`` vectors each: mostly passes, a few
    flaky vectors, failures with messages and artifacts, measurements with limits."""
    rnd = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [f"g{j % 7}.check.v{j:03d}" for j in range(vectors)]
    flaky = set(ids[::9])
    broken = set(ids[5::23])
    for n in range(runs):
        rig = f"rig{n % rigs:02d}"
        start = t0 + timedelta(minutes=7 * n)
        stamp = start.strftime("%Y%m%dT%H%M%SZ")
        records = []
        for vid in ids:
            roll = rnd.random()
            if vid in broken and rig == "rig03":
                outcome = "fail"
            elif vid in flaky and roll < 0.15:
                outcome = "fail"
            elif vid.startswith("g6") and rig in ("rig08", "rig09"):
                outcome = "n/a"
            else:
                outcome = "pass"
            rec: dict[str, Any] = {
                "vector": vid,
                "outcome": outcome,
                "duration_s": round(rnd.uniform(0.05, 3.0), 4),
                "started": start.isoformat().replace("+00:00", "Z"),
                "message": f"{vid}: the device answered 0x{rnd.randrange(1 << 16):04x}"
                if outcome == "fail"
                else ("rig lacks tsm" if outcome == "n/a" else ""),
                "measurements": [],
                "artifacts": [f"artifacts/{vid}/sim.log"] if outcome == "fail" else [],
            }
            if vid.endswith(("0", "5")):
                value = rnd.gauss(10.0, 2.0)
                rec["measurements"].append(
                    {
                        "name": "latency",
                        "value": round(value, 3),
                        "unit": "us",
                        "low": None,
                        "high": 15.0,
                        "ok": value <= 15.0,
                    }
                )
            records.append(rec)
        fake_run(
            root,
            rig,
            f"{stamp}-{n:06x}",
            records,
            started=start.isoformat().replace("+00:00", "Z"),
            device_key=f"dev{n % rigs % 4}",
            git_sha=f"{n // 100:040x}",
        )
