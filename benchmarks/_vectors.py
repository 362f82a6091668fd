"""Run vectors on a simulated rig (sim-verilator unless told) and collect their records."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_vectors(
    keyword: str, *, workers: int = 1, rig: str = "sim-verilator"
) -> tuple[float, dict[str, dict]]:
    """``hil run -k keyword`` on ``rig``: total wall time and the records by vector."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        command = ["run", "--rig", rig, "-k", keyword, "-n", str(workers), "--results", tmp]
        proc = subprocess.run(
            [sys.executable, "-m", "hil.cli", *command],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(proc.stdout[-3000:])
        (run,) = list((Path(tmp) / rig).iterdir())
        records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
        return wall, {r["vector"]: r for r in records}


def measurements(record: dict) -> dict[str, float]:
    return {m["name"]: m["value"] for m in record["measurements"]}
