from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def tests_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the test-only vector modules in tests/ importable, here and in child processes."""
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    return TESTS_DIR


@pytest.fixture
def python() -> str:
    return sys.executable
