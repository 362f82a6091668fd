"""``hil report``: every run under a results root (and verified plugfest bundles), aggregated.

Writes ``summary.json``, ``summary.md`` and a self-contained ``report.html`` (no network, plots
inline) into the output folder.  Nothing under the results root is modified but those files.
Broken, partial and crashed runs are read as far as they go and listed as problems.
"""

from __future__ import annotations

from ._aggregate import aggregate, compare_runs
from ._collect import OUTCOMES, Run, collect_runs, load_run, merge_shards
from ._write import build_summary, compare_text, find_run, write_report

__all__ = [
    "OUTCOMES",
    "Run",
    "aggregate",
    "build_summary",
    "collect_runs",
    "compare_runs",
    "compare_text",
    "find_run",
    "load_run",
    "merge_shards",
    "write_report",
]
