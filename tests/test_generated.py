"""Generated files match their sources, and the RTL lints clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hil import regmap


def test_generated_files_are_up_to_date(repo: Path) -> None:
    for path, text in regmap.outputs(repo).items():
        assert path.read_text() == text, f"{path} is stale: run `hil regen`"


def test_generated_python_agrees_with_the_map() -> None:
    from hil import _regs as R

    assert R.DOE_CAP_ID == 0x002E and R.DOE_CAP_VERSION == 2
    assert R.DOE_STATUS_READY == 1 << 31 and R.DOE_CTRL_GO == 1 << 31
    assert R.DOE_CAP_OFFSET == R.CFG_EXT_BASE_REG * 4


def test_hil_lint_is_clean(repo: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "lint"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clean  hil_ep" in proc.stdout and "clean  doe_mbx" in proc.stdout


def test_ruff_is_clean(repo: Path) -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
