"""Writing the report files, and finding runs for ``--compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..results import atomic_write_text, utc_now
from ._aggregate import aggregate
from ._collect import OUTCOMES, Run, collect_runs, load_run, merge_shards

__all__ = ["build_summary", "compare_text", "find_run", "write_report"]


def build_summary(runs: list[Run], problems: list[str] | None = None) -> dict[str, Any]:
    """The summary of ``runs`` (shards merged), with every problem met listed."""
    merged = merge_shards(runs)
    summary = {"generated": utc_now(), **aggregate(merged)}
    listed = list(problems or [])
    for run in merged:
        listed += [
            p if p.startswith(run.path or "\0") else f"{run.rig}/{run.run_id}: {p}"
            for p in run.problems
        ]
    summary["problems"] = listed
    summary["sources"] = sorted({r.source for r in merged if r.source != "results"})
    return summary


def _markdown(summary: dict[str, Any]) -> str:
    lines = ["# hil results summary", "", f"Generated {summary['generated']}.", "", "## Rigs", ""]
    lines += ["| rig | kind | runs | latest run | " + " | ".join(OUTCOMES) + " |"]
    lines += ["|---" * (4 + len(OUTCOMES)) + "|"]
    for name, rig in summary["rigs"].items():
        lines.append(
            f"| {name} | {rig['kind'] or '?'} | {rig['runs']} | {rig['latest_run']} | "
            + " | ".join(str(rig["totals"][o]) for o in OUTCOMES)
            + " |"
        )
    if not summary["rigs"]:
        lines.append("| (no runs) |" + " |" * (3 + len(OUTCOMES)))
    rig_names = list(summary["rigs"])
    lines += ["", "## Vectors (latest outcome per rig; pass rate over its runs)", ""]
    if rig_names:
        lines += ["| vector | " + " | ".join(rig_names) + " |"]
        lines += ["|---" * (1 + len(rig_names)) + "|"]
        for vid, v in summary["vectors"].items():
            cells = []
            for r in rig_names:
                c = v["rigs"].get(r)
                if c is None:
                    cells.append("—")
                    continue
                text = c["latest"]
                if c["runs"] > 1 and c["pass_rate"] is not None and c["pass_rate"] < 1:
                    text += f" ({c['pass_rate'] * 100:.0f}%)"
                cells.append(text)
            flag = " (flaky)" if v["flaky"] else ""
            lines.append(f"| {vid}{flag} | " + " | ".join(cells) + " |")
    else:
        lines.append("No vector recorded.")
    interop = summary["interop"]
    if interop["hosts"]:
        lines += ["", "## Interop (device by lab/rig: passing vectors per group)", ""]
        lines += ["| device | " + " | ".join(interop["hosts"]) + " |"]
        lines += ["|---" * (1 + len(interop["hosts"])) + "|"]
        for dkey, label in interop["devices"].items():
            cells = []
            for host in interop["hosts"]:
                groups = interop["cells"][dkey].get(host) or {}
                cells.append(
                    " ".join(
                        f"{g} {c['counts'].get('pass', 0)}/{sum(c['counts'].values())}"
                        + ("" if c["verdict"] in ("pass", "n/a", "skip") else f" ({c['verdict']})")
                        for g, c in sorted(groups.items())
                    )
                    or "—"
                )
            lines.append(f"| {dkey} {label} | " + " | ".join(cells) + " |")
    if summary["flaky"]:
        lines += ["", "## Flaky", ""]
        for f in summary["flaky"]:
            outcomes = ", ".join(f"{n} {o}" for o, n in f["outcomes"].items())
            lines.append(f"- {f['vector']} on {f['rig']} (device {f['device']}): {outcomes}")
    if summary["problems"]:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in summary["problems"]]
    return "\n".join(lines) + "\n"


def write_report(
    root: Path,
    out: Path | None = None,
    *,
    extra_runs: list[Run] | None = None,
    extra_problems: list[str] | None = None,
    html: bool = True,
) -> dict[str, Any]:
    """Aggregate every run under ``root`` (and ``extra_runs``, e.g. from bundles) into
    ``summary.json``, ``summary.md`` and ``report.html`` in ``out`` (default ``root``)."""
    out = out or root
    runs, problems = collect_runs(root, link_base=out)
    if extra_runs is not None:  # bundles given: a missing or empty results root is no problem
        runs = sorted(runs + extra_runs, key=Run.sort_key)
        # collect_runs' own problems are only "no folder" and "no runs": moot with bundles
        problems = [] if runs else ["no runs: no results here and no bundle verified"]
    summary = build_summary(runs, problems + list(extra_problems or []))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "summary.json", json.dumps(summary, separators=(",", ":")) + "\n")
    atomic_write_text(out / "summary.md", _markdown(summary))
    if html:
        from ._html import render_html

        atomic_write_text(out / "report.html", render_html(summary))
    return summary


def find_run(root: Path, ident: str) -> Run:
    """A run by folder path, or by run id (or shard group) under ``root``."""
    path = Path(ident)
    if (path / "run.json").exists() or (path / "records.jsonl").exists():
        return load_run(path, None)
    found = [p for p in root.glob(f"*/{ident}") if p.is_dir()]
    if len(found) == 1:
        return load_run(found[0], None)
    if len(found) > 1:
        raise LookupError(f"run id {ident} is in more than one rig: {[str(p) for p in found]}")
    runs, _ = collect_runs(root)
    merged = [r for r in merge_shards(runs) if r.run_id == ident]
    if len(merged) == 1:
        return merged[0]
    raise LookupError(f"no run {ident} (neither a run folder nor a run id under {root})")


def compare_text(diff: dict[str, Any]) -> str:
    a, b = diff["a"], diff["b"]
    lines = [
        f"A: {a['run_id']} on {a['rig']} (device {a['device']})",
        f"B: {b['run_id']} on {b['rig']} (device {b['device']})",
        "",
    ]
    if diff["changed"]:
        width = max(len(c["vector"]) for c in diff["changed"])
        lines.append(f"{'vector':<{width}}  {'A':<7} -> {'B':<7}  message (B)")
        for c in diff["changed"]:
            msg = (c["message"].splitlines() or [""])[0][:80]
            lines.append(f"{c['vector']:<{width}}  {c['a']:<7} -> {c['b']:<7}  {msg}")
    else:
        lines.append("no outcome changed")
    if diff["measurements"]:
        lines += ["", "measurements that changed:"]
        for m in diff["measurements"]:
            flag = "" if m["b_ok"] else "  OUT OF LIMITS"
            lines.append(
                f"  {m['vector']} {m['name']}: {m['a']} -> {m['b']} {m['unit']} "
                f"({m['delta']:+.6g}){flag}"
            )
    return "\n".join(lines) + "\n"
