"""report.html in a real browser: headless Chromium renders the matrix and the plots with no
script error; the screenshot is kept beside the report (the test's tmp folder)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hil.report import fake_run, synthetic_results, write_report

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    return next((shutil.which(b) for b in _BROWSERS if shutil.which(b)), None)


def _headless(browser: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={cwd / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(
        [browser, *flags, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    synthetic_results(root, rigs=3, runs=30, vectors=20)
    fake_run(
        root,
        "rig00",
        "zz-crashed",
        [{"vector": "g0.check.v000", "outcome": "error", "message": "<script>alert(1)</script>"}],
        started="2026-12-31T00:00:00Z",
        finished=None,
    )
    write_report(root)
    return root / "report.html"


def test_report_renders_in_chromium(report: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser on PATH ({', '.join(_BROWSERS)}); .ci/run installs one")
    work = report.parent
    dom = _headless(browser, "--dump-dom", report.as_uri(), cwd=work)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    root_tag = re.search(r"<html[^>]*>", html)
    assert root_tag, html[:500]
    tag = root_tag.group(0)
    assert 'data-rendered="ok"' in tag, tag  # the page's script ran to its end
    assert "data-js-errors" not in tag, tag  # window.onerror never fired
    cells = int(re.search(r'data-matrix-cells="(\d+)"', tag).group(1))  # type: ignore[union-attr]
    svgs = int(re.search(r'data-svgs="(\d+)"', tag).group(1))  # type: ignore[union-attr]
    assert cells == 20 * 3  # every vector on every rig
    assert svgs >= 3  # the outcome plot, a measurement plot, history sparklines
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    # The hostile message is in the page as text, never as markup: the page's two scripts only.
    assert "alert(1)" in html and 'data-scripts="2"' in tag, tag
    shot = work / "report.png"
    out = _headless(
        browser, f"--screenshot={shot}", "--window-size=1400,2000", report.as_uri(), cwd=work
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")
