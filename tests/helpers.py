"""Shared by the tests that drive the `hil` command in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def hil(*args: str, cwd: Path, env_extra: dict[str, str] | None = None, timeout: float = 1200):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def only_run(results: Path, rig: str) -> Path:
    runs = list((results / rig).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def records(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    return {r["vector"]: r for r in map(json.loads, lines)}


def query_resp_with_trailing_bytes(dsm: Any) -> None:
    """A device defect: every QUERY_RESP its firmware sends carries 288 bytes past the
    structure (what DMTF's IDE_KM sample does)."""
    from hil.codec import ide_km as K

    ide_km = dsm.ide_km
    assert ide_km is not None
    original = ide_km.handle

    async def handle(session_id: int, request: Any) -> bytes | None:
        rsp = await original(session_id, request)
        if rsp is not None and rsp[1] == K.ObjectId.QUERY_RESP:
            rsp += bytes(288)
        return rsp

    ide_km.handle = handle
