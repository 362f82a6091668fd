"""The simulated rig: the project's endpoint under Verilator, driven by cocotb.

Importing this package does not import cocotb's simulator side; the cocotb parts
(``hil.sim.hardip``, ``hil.sim.dsm``, ``hil.sim.harness``, ``hil.sim.entry``) run inside the
simulator.
"""

from ._build import (
    BUILD_ROOT,
    build_hdl,
    build_key,
    bytecode_cache_env,
    last_build_seconds,
    run_cocotb_tests,
    wave_format,
)
from ._env import (
    ENDPOINT_TOP,
    REPO_ROOT,
    RTL_TOPS,
    hdl_root,
    lint_waivers,
    rtl_sources,
    verilator_env,
    verilator_version,
)

__all__ = [
    "BUILD_ROOT",
    "ENDPOINT_TOP",
    "REPO_ROOT",
    "RTL_TOPS",
    "build_hdl",
    "build_key",
    "bytecode_cache_env",
    "hdl_root",
    "last_build_seconds",
    "lint_waivers",
    "rtl_sources",
    "run_cocotb_tests",
    "verilator_env",
    "verilator_version",
    "wave_format",
]
