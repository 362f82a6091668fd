"""report.html: the summary through a Jinja2 template, plots inline, nothing fetched."""

from __future__ import annotations

from typing import Any

from ._collect import OUTCOMES
from ._plots import history_bars, measurement_svg, outcomes_svg

__all__ = ["render_html"]

#: Measurement series plotted (those with limits, out-of-limit ones first); the table lists more.
MEASUREMENT_PLOTS = 8
MEASUREMENT_ROWS = 300
FAILED_PER_RUN = 8


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("hil.report", "templates"),
        autoescape=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )


def render_html(summary: dict[str, Any]) -> str:
    histories = []
    for vid, v in summary["vectors"].items():
        bars = history_bars(v["rigs"])
        if bars is None:
            continue
        cells = list(v["rigs"].values())
        firsts = [c["first_failure"] for c in cells if c["first_failure"]]
        lasts = [c["last_failure"] for c in cells if c["last_failure"]]
        histories.append(
            {
                "vector": vid,
                "bars": bars,
                "runs": sum(c["runs"] for c in cells),
                "first": min((f["started"] or "", f["run_id"]) for f in firsts)[1]
                if firsts
                else None,
                "last": max((f["started"] or "", f["run_id"]) for f in lasts)[1] if lasts else None,
            }
        )
    limited = [
        m
        for m in summary["measurements"]
        if (m["low"] is not None or m["high"] is not None) and m["count"] > 1
    ]
    plots = [measurement_svg(m) for m in limited[:MEASUREMENT_PLOTS]]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            s=summary,
            outcomes=OUTCOMES,
            histories=histories,
            outcomes_svg=outcomes_svg(summary["runs"]),
            measurement_plots=plots,
            measurement_rows=MEASUREMENT_ROWS,
            failed_per_run=FAILED_PER_RUN,
        )
    )
