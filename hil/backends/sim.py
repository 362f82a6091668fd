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
        self._shared: dict[str, str] | None = None

    def prepare(self) -> None:
        self.sim.build()

    def build(self) -> Path:
        return self.sim.build()

    def info(self) -> dict[str, Any]:
        return self.sim.info()

    def _run_files(self) -> dict[str, str]:
        """What this worker's vectors (one simulator process each) share: the device's
        identity, written once so that every process presents the same certificate chain, as
        one device does, and a folder for the chains the requesters read, so that only the
        first vector reads it and the others find it by its digest."""
        if self._shared is None:
            from ..firmware import test_pki

            folder = tempfile.mkdtemp(prefix="hil-run-")
            atexit.register(shutil.rmtree, folder, True)
            pem = test_pki().write_pem(folder)
            self._shared = {
                "cert_chain": str(pem.chain),
                "key": str(pem.key),
                "chain_cache_dir": str(Path(folder) / "chains"),
            }
        return self._shared

    def run_vector(self, vec: Vector, *, artifacts_dir: Path, waves: bool) -> VectorResult:
        work = Path(tempfile.mkdtemp(prefix=f"hil-{vec.id}-"))
        try:
            job = self.sim.job(
                vector=vec.id,
                vector_modules=self.vector_modules,
                result=str(work / "result.json"),
            )
            shared = self._run_files()
            job.setdefault("cert_chain", shared["cert_chain"])
            job.setdefault("key", shared["key"])
            job["settings"] = {**job["settings"], "chain_cache_dir": shared["chain_cache_dir"]}
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
