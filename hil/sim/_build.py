"""Verilator builds, cached by HDL sources and parameters.

A build directory is named by a hash of the top, the source files' contents, the parameters
and the build flags, so a second run with the same HDL reuses it, and each parameter set gets
its own.  A file lock makes concurrent pytest-xdist workers build once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._env import REPO_ROOT, verilator_env

__all__ = ["BUILD_ROOT", "build_hdl", "build_key", "last_build_seconds"]

BUILD_ROOT = Path(os.environ.get("HIL_BUILD_DIR", REPO_ROOT / "build" / "sim"))
_BUILD_ARGS = ("-Wno-fatal", "--assert", "-O2", "--x-assign", "fast", "--x-initial", "fast")
_TIMESCALE = ("1ns", "1ps")
_last_build_seconds: float | None = None


def build_key(
    toplevel: str, sources: Sequence[Path], parameters: Mapping[str, object], waves: bool
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([toplevel, sorted(parameters.items()), waves, _BUILD_ARGS]).encode())
    for src in sources:
        h.update(str(Path(src).name).encode())
        h.update(Path(src).read_bytes())
    return h.hexdigest()[:16]


def last_build_seconds() -> float | None:
    """Wall time of this process's last build that actually compiled (None: all cached)."""
    return _last_build_seconds


def build_hdl(
    toplevel: str,
    sources: Sequence[Path],
    parameters: Mapping[str, object] | None = None,
    *,
    waves: bool = True,
) -> Path:
    """Build ``toplevel`` once for these sources and parameters; return its build directory.

    Waveform support (FST) is compiled in by default and switched on per run, so one build
    serves runs with and without ``--waves``.
    """
    global _last_build_seconds
    from cocotb_tools.runner import get_runner

    parameters = dict(parameters or {})
    verilator_env()
    build_dir = BUILD_ROOT / f"{toplevel}-{build_key(toplevel, sources, parameters, waves)}"
    done = build_dir / ".built"
    if done.exists():
        return build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return build_dir
        start = time.perf_counter()
        runner = get_runner("verilator")
        runner.build(
            sources=[Path(s) for s in sources],
            hdl_toplevel=toplevel,
            parameters=parameters,
            build_args=list(_BUILD_ARGS),
            build_dir=build_dir,
            waves=waves,
            timescale=_TIMESCALE,
            log_file=build_dir / "build.log",
        )
        _last_build_seconds = time.perf_counter() - start
        done.write_text(json.dumps({"seconds": _last_build_seconds, "parameters": parameters}))
    return build_dir
