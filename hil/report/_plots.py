"""Plots for report.html: matplotlib (Agg) figures as inline SVG, and the data the template
draws the per-vector history sparklines from (hand-drawn SVG: a figure per vector would cost
more than the whole report's budget)."""

from __future__ import annotations

import io
import re
from typing import Any

__all__ = ["COLOURS", "history_bars", "measurement_svg", "outcomes_svg"]

COLOURS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "error": "#ef6c00",
    "skip": "#9e9e9e",
    "n/a": "#cfd8dc",
}
#: Points a plot shows at most: the latest.
PLOT_POINTS = 200


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text as text: smaller files
            "svg.hashsalt": "hil",  # the same input gives the same SVG
            "font.size": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


_HEADER = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)


def _svg(fig: Any) -> str:
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = _METADATA.sub("", _HEADER.sub("", buf.getvalue(), count=1))
    return text.strip()


def outcomes_svg(runs: list[dict[str, Any]]) -> str | None:
    """Stacked outcome counts of the latest runs, oldest left."""
    if not runs:
        return None
    plt = _pyplot()
    shown = runs[-PLOT_POINTS:]
    fig, ax = plt.subplots(figsize=(9, 2.4))
    xs = list(range(len(shown)))
    present = [o for o in COLOURS if any(r["totals"].get(o, 0) for r in shown)]
    # One polygon per outcome (stackplot), not a rectangle per run and outcome: cheap to draw.
    ax.stackplot(
        xs,
        *[[r["totals"].get(o, 0) for r in shown] for o in present],
        colors=[COLOURS[o] for o in present],
        labels=present,
        step="mid",
        linewidth=0,
    )
    ax.set_xlim(-0.5, len(shown) - 0.5)
    ax.set_xlabel(
        f"run (oldest left; the latest {len(shown)} of {len(runs)})"
        if len(runs) > len(shown)
        else "run (oldest left)"
    )
    ax.set_ylabel("vectors")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _svg(fig)


def measurement_svg(series: dict[str, Any]) -> str:
    """One measurement over runs, with its limits (OpenHTF-style: limits as lines, points
    outside them marked)."""
    plt = _pyplot()
    pts = series["points"][-PLOT_POINTS:]
    fig, ax = plt.subplots(figsize=(4.2, 2.0))
    xs = list(range(len(pts)))
    ax.plot(xs, [p[1] for p in pts], color="#455a64", linewidth=0.8)
    bad = [(x, p[1]) for x, p in zip(xs, pts, strict=True) if not p[2]]
    ax.plot(xs, [p[1] for p in pts], ".", markersize=2.5, color=COLOURS["pass"])
    if bad:
        ax.plot(*zip(*bad, strict=True), "o", markersize=3.5, color=COLOURS["fail"])
    for limit, name in ((series.get("low"), "low"), (series.get("high"), "high")):
        if limit is not None:
            ax.axhline(limit, color=COLOURS["fail"], linestyle="--", linewidth=0.8)
            ax.annotate(name, (0, limit), fontsize=7, color=COLOURS["fail"])
    unit = f" ({series['unit']})" if series.get("unit") else ""
    ax.set_title(f"{series['vector']} · {series['rig']}", fontsize=8)
    ax.set_ylabel(series["name"] + unit)
    ax.set_xlabel("run")
    return _svg(fig)


def history_bars(
    cells: dict[str, dict[str, Any]], width: int = 240, height: int = 28
) -> dict[str, Any] | None:
    """A vector's history over every rig as bars: colour the outcome, height the duration.
    None when it ran once (nothing to show over time)."""
    merged = sorted((h for cell in cells.values() for h in cell["history"]), key=lambda h: h[0])[
        -60:
    ]
    if len(merged) < 2:
        return None
    top = max(h[2] for h in merged) or 1.0
    step = width / len(merged)
    w = round(max(step - 1, 1), 1)
    paths: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for i, (_run, outcome, duration) in enumerate(merged):
        h = round(max(2.0, (height - 2) * duration / top), 1)
        # One path per outcome, a rectangle per run: a few elements per vector, not one per run.
        paths.setdefault(outcome, []).append(f"M{i * step:.1f} {height - h:.1f}h{w}v{h}h-{w}z")
        counts[outcome] = counts.get(outcome, 0) + 1
    return {
        "width": width,
        "height": height,
        "paths": [{"c": COLOURS.get(o, "#000"), "d": "".join(d)} for o, d in paths.items()],
        "title": f"latest {len(merged)} runs: " + ", ".join(f"{n} {o}" for o, n in counts.items()),
        "max_s": round(top, 3),
    }
