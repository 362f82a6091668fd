"""``hil report``: every run under a results root (and verified plugfest bundles), aggregated.

Writes ``summary.json``, ``summary.md`` and a self-contained ``report.html`` (no network, plots
inline) into the output folder.  Nothing under the results root is modified but those files.
Broken, partial and crashed runs are read as far as they go and listed as problems.
:func:`fake_run` and :func:`synthetic_results` make results folders for tests and benchmarks.
"""

from __future__ import annotations

from ._aggregate import aggregate, compare_runs
from ._collect import OUTCOMES, Run, collect_runs, load_run, merge_shards
from ._synthetic import fake_run, synthetic_results
from ._write import build_summary, compare_text, find_run, write_report

__all__ = [
    "OUTCOMES",
    "Run",
    "aggregate",
    "build_summary",
    "collect_runs",
    "compare_runs",
    "compare_text",
    "fake_run",
    "find_run",
    "load_run",
    "merge_shards",
    "synthetic_results",
    "write_report",
]
