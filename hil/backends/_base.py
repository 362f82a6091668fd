"""The interface every rig kind implements: run one vector, prepare, finish, describe."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ..rigs import Rig
from ..vectors import Vector, VectorResult

__all__ = ["Backend", "keep_artifacts"]


class Backend(ABC):
    def __init__(self, rig: Rig, vector_modules: list[str] | None = None) -> None:
        self.rig = rig
        self.vector_modules = list(vector_modules or [])

    @abstractmethod
    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        """Run ``vec``; artifacts worth keeping go under ``artifacts_dir``."""

    def prepare(self) -> None:  # noqa: B027 - most rigs have nothing to prepare
        """Anything to do once per run before the first vector."""

    def finish(self) -> None:  # noqa: B027 - most rigs have nothing to release
        """Anything to release once the run is over (locks, processes, mounts)."""

    def info(self) -> dict[str, Any]:
        """What run.json records about this rig (simulator, versions...)."""
        return {}


def keep_artifacts(work: Path, artifacts_dir: Path, vector_id: str, waves: bool) -> list[str]:
    """Copy a failed vector's log (and waveform with --waves) into the run's artifacts."""
    kept = []
    dest = artifacts_dir / vector_id
    names = ["sim.log"] + (["dump.fst", "dump.vcd"] if waves else [])
    for name in names:
        src = work / name
        if src.exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
            kept.append(f"artifacts/{vector_id}/{name}")
    return kept
