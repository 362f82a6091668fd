"""``hil report``: every run of every rig under a results root, summarised.

For each rig: its latest run's totals.  For each vector: its latest outcome on each rig (from the
latest run of that rig that ran it).  Unreadable runs are reported as problems and skipped;
nothing under the results root is modified except ``summary.json`` and ``summary.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .results import atomic_write_text, utc_now

__all__ = ["collect_runs", "summarise", "write_report"]


def collect_runs(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every run found: its run.json plus ``records``; and the problems met on the way."""
    runs, problems = [], []
    for run_json in sorted(root.glob("*/*/run.json")):
        run_dir = run_json.parent
        try:
            run = json.loads(run_json.read_text())
            if not isinstance(run, dict) or "rig" not in run or "run_id" not in run:
                raise ValueError("run.json lacks rig or run_id")
        except (OSError, ValueError) as exc:
            problems.append(f"{run_json}: unreadable ({exc})")
            continue
        records = []
        rec_path = run_dir / "records.jsonl"
        if rec_path.exists():
            for n, line in enumerate(rec_path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    records.append({"vector": rec["vector"], "outcome": rec["outcome"], **rec})
                except (ValueError, KeyError, TypeError) as exc:
                    problems.append(f"{rec_path}:{n}: bad record ({exc})")
        run["records"] = records
        run["path"] = str(run_dir.relative_to(root))
        runs.append(run)
    return runs, problems


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: (r.get("started") or "", r["run_id"]))
    rigs: dict[str, Any] = {}
    vectors: dict[str, dict[str, Any]] = {}
    for run in ordered:  # later runs overwrite earlier ones
        rigs[run["rig"]] = {
            "kind": run.get("kind"),
            "latest_run": run["run_id"],
            "started": run.get("started"),
            "finished": run.get("finished"),
            "totals": run.get("totals", {}),
            "runs": rigs.get(run["rig"], {}).get("runs", 0) + 1,
            "path": run["path"],
        }
        for rec in run["records"]:
            vectors.setdefault(rec["vector"], {})[run["rig"]] = {
                "outcome": rec["outcome"],
                "run_id": run["run_id"],
                "duration_s": rec.get("duration_s"),
            }
    return {
        "generated": utc_now(),
        "rigs": rigs,
        "vectors": dict(sorted(vectors.items())),
    }


def _markdown(summary: dict[str, Any]) -> str:
    outcomes = ("pass", "fail", "error", "skip", "n/a")
    lines = ["# hil results summary", "", f"Generated {summary['generated']}.", "", "## Rigs", ""]
    lines += ["| rig | kind | latest run | runs | " + " | ".join(outcomes) + " |"]
    lines += ["|---" * (4 + len(outcomes)) + "|"]
    for name, rig in sorted(summary["rigs"].items()):
        totals = rig["totals"]
        lines.append(
            f"| {name} | {rig['kind']} | {rig['latest_run']} | {rig['runs']} | "
            + " | ".join(str(totals.get(o, 0)) for o in outcomes)
            + " |"
        )
    rig_names = sorted(summary["rigs"])
    lines += ["", "## Vectors (latest outcome per rig)", ""]
    lines += ["| vector | " + " | ".join(rig_names) + " |", "|---" * (1 + len(rig_names)) + "|"]
    for vid, per_rig in summary["vectors"].items():
        cells = [per_rig.get(r, {}).get("outcome", "—") for r in rig_names]
        lines.append(f"| {vid} | " + " | ".join(cells) + " |")
    if summary["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in summary["problems"]]
    return "\n".join(lines) + "\n"


def write_report(root: Path) -> dict[str, Any]:
    runs, problems = collect_runs(root)
    summary = summarise(runs)
    summary["problems"] = problems
    atomic_write_text(root / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(root / "summary.md", _markdown(summary))
    return summary
