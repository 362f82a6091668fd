"""The ``sim`` rig: one Verilator simulation per vector (the endpoint reset and enumerated
afresh), started through cocotb's runner from a build cached by HDL sources and parameters."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..rigs import Rig
from ..sim.simulation import Simulation
from ..vectors import Outcome, Vector, VectorResult
from ._base import Backend, keep_artifacts

__all__ = ["SimBackend"]


class SimBackend(Backend):
    def __init__(self, rig: Rig, vector_modules: list[str] | None = None) -> None:
        super().__init__(rig, vector_modules)
        self.sim = Simulation(rig)
        self._chains: str | None = None

    def prepare(self) -> None:
        self.sim.build()

    def build(self) -> Path:
        return self.sim.build()

    def info(self) -> dict[str, Any]:
        return self.sim.info()

    def _chain_cache(self) -> str:
        """A folder for the certificate chains this worker's vectors read (one simulator
        process each): the first reads the chain, the others find it by its digest."""
        if self._chains is None:
            self._chains = tempfile.mkdtemp(prefix="hil-chains-")
            atexit.register(shutil.rmtree, self._chains, True)
        return self._chains

    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        work = Path(tempfile.mkdtemp(prefix=f"hil-{vec.id}-"))
        try:
            job = self.sim.job(
                vector=vec.id,
                vector_modules=self.vector_modules,
                result=str(work / "result.json"),
            )
            job["settings"] = {**job["settings"], "chain_cache_dir": self._chain_cache()}
            log = work / "sim.log"
            start = time.perf_counter()
            crashed = None
            try:
                self.sim.simulate("run_vector", work, job, waves=waves, log_file=log)
            except (RuntimeError, SystemExit) as exc:
                crashed = exc
            result_path = work / "result.json"
            if result_path.exists():
                result = VectorResult.from_json(json.loads(result_path.read_text()))
            else:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                result = VectorResult(
                    Outcome.ERROR,
                    f"the simulator ended without a result ({crashed!r}); log tail:\n{tail}",
                    duration_s=time.perf_counter() - start,
                )
            if result.outcome in (Outcome.FAIL, Outcome.ERROR):
                result.artifacts += keep_artifacts(work, artifacts_dir, vec.id, waves)
            return result
        finally:
            shutil.rmtree(work, ignore_errors=True)
