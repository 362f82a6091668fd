"""Run records: ``results/<rig>/<run-id>/`` with run.json, records.jsonl, junit.xml, artifacts.

Every file is written atomically (a temporary file in the same directory, then a rename), a run
directory is never reused, and records.jsonl is rewritten after each vector so a crash leaves
every record written before it.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._version import __version__

__all__ = ["RunWriter", "atomic_write_text", "git_sha", "utc_now"]

OUTCOMES = ("pass", "fail", "error", "skip", "n/a")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def git_sha(repo: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    sha = out.stdout.strip()
    if out.returncode != 0 or not sha:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def _new_run_dir(rig_dir: Path) -> tuple[str, Path]:
    rig_dir.mkdir(parents=True, exist_ok=True)
    while True:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        run_id = f"{stamp}-{secrets.token_hex(3)}"
        run_dir = rig_dir / run_id
        try:
            run_dir.mkdir()  # fails if it exists: a run directory is never reused
        except FileExistsError:
            continue
        return run_id, run_dir


@dataclass
class RunWriter:
    """Writes one run's files.  Lives in the controlling process only."""

    results_root: Path
    rig: str
    kind: str
    info: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    run_dir: Path = Path()
    started: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run_id, self.run_dir = _new_run_dir(self.results_root / self.rig)
        self.started = utc_now()
        (self.run_dir / "artifacts").mkdir()
        self.write_run(finished=None)

    @property
    def artifacts_dir(self) -> Path:
        return self.run_dir / "artifacts"

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(OUTCOMES, 0)
        for rec in self.records:
            totals[rec["outcome"]] = totals.get(rec["outcome"], 0) + 1
        return totals

    def write_run(self, finished: str | None) -> None:
        repo = Path(__file__).resolve().parents[1]
        data = {
            "run_id": self.run_id,
            "rig": self.rig,
            "kind": self.kind,
            "started": self.started,
            "finished": finished,
            "hil_version": __version__,
            "git_sha": git_sha(repo),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            **self.info,
            "totals": self.totals(),
        }
        atomic_write_text(self.run_dir / "run.json", json.dumps(data, indent=2) + "\n")

    def add(self, record: dict[str, Any]) -> None:
        record = {"run_id": self.run_id, "rig": self.rig, **record}
        self.records.append(record)
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records)
        atomic_write_text(self.run_dir / "records.jsonl", text)

    def finish(self) -> None:
        self.write_run(finished=utc_now())
