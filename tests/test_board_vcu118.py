"""The VCU118 board top: it lints against the hard-IP stub, and its files agree with each other.

Vivado is not available here, so the board is checked as far as text and Verilator can:
``hil lint`` over the board top with the hard IP as a port-accurate black box, every hard-IP
port connected by name, every top-level port constrained, and the hard-IP settings in
build.tcl matching what the rest of the project assumes (hil/sim/hardip.py, hil/regmap.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from hil import _regs as R
from hil.sim import RTL_TOPS

BOARD = Path(__file__).resolve().parents[1] / "hdl" / "boards" / "vcu118"
PORT_RE = re.compile(r"^\s*(input|output)\s+logic\s*(?:\[(\d+):0\])?\s*(\w+)", re.M)


def ports(path: Path) -> dict[str, tuple[str, int]]:
    text = path.read_text()
    start = text.index("\nmodule ")
    header = text[start : text.index(");", start)]
    return {m[3]: (m[1], int(m[2] or 0) + 1) for m in PORT_RE.finditer(header)}


def test_board_tops_lint_clean(repo: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "lint", "usp_cq_cc_adapter", "vcu118_top"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clean  usp_cq_cc_adapter" in proc.stdout
    assert "clean  vcu118_top" in proc.stdout


def test_lint_uses_the_stubs_and_the_shared_rtl() -> None:
    srcs = RTL_TOPS["vcu118_top"]
    assert set(RTL_TOPS["hil_fpga"]) <= set(srcs), "the board top must lint the real hil_fpga"
    assert "boards/vcu118/stubs/pcie4_uscale_plus_0.sv" in srcs
    assert srcs[-1] == "boards/vcu118/vcu118_top.sv"


def test_every_hard_ip_port_is_connected_by_name() -> None:
    stub = ports(BOARD / "stubs" / "pcie4_uscale_plus_0.sv")
    top = (BOARD / "vcu118_top.sv").read_text()
    inst = top[top.index("pcie4_uscale_plus_0 u_pcie (") : top.index("usp_cq_cc_adapter u_adapter")]
    connected = re.findall(r"^\s*\.(\w+)\s*\(", inst, re.M)
    assert sorted(connected) == sorted(stub), set(connected) ^ set(stub)
    # The interfaces the board relies on, with PG213's widths for a 128-bit x4 core.
    assert stub["m_axis_cq_tuser"] == ("output", 88)
    assert stub["s_axis_cc_tuser"] == ("input", 33)
    assert stub["cfg_ext_register_number"] == ("output", 10)
    assert stub["cfg_interrupt_msi_int"] == ("input", 32)
    assert stub["pci_exp_rxp"] == ("input", 4)


def test_every_top_port_is_constrained() -> None:
    xdc = (BOARD / "vcu118.xdc").read_text()
    constrained = set(re.findall(r"get_ports \{?(\w+)", xdc))
    top_ports = ports(BOARD / "vcu118_top.sv")
    assert set(top_ports) == constrained, set(top_ports) ^ constrained
    # Every pin whose source could not be checked against the user guide says so.
    for line in xdc.splitlines():
        if "PACKAGE_PIN" in line and not line.lstrip().startswith("#"):
            assert "check against UG1224" in line or "MGTY" in line, line


def test_hard_ip_settings_match_the_project() -> None:
    tcl = (BOARD / "build.tcl").read_text()

    def prop(name: str) -> str:
        m = re.search(rf"CONFIG\.{name}\s+\{{([^}}]*)\}}", tcl)
        assert m, f"build.tcl sets no {name}"
        return m[1]

    from hil.sim.hardip import XILINX_VENDOR_ID, UspHardIp

    defaults = UspHardIp.__init__.__kwdefaults__
    assert int(prop("PF0_DEVICE_ID"), 16) == defaults["device_id"]
    assert int(prop("vendor_id"), 16) == XILINX_VENDOR_ID
    assert prop("PF0_CLASS_CODE") == "120000"
    # PG213 fixes the PCIe4 user window at bytes 0x480-0x4FF; the register map must use it.
    assert prop("ext_pcie_cfg_space_enabled") == "true"
    assert R.CFG_EXT_BASE_REG * 4 == 0x480 and R.CFG_EXT_NUM_REGS * 4 == 0x80
    assert prop("pf0_bar0_64bit") == "true" and prop("pf0_bar0_size") == "4"
    assert prop("pf0_bar0_scale") == "Kilobytes"
    assert prop("axisten_if_width") == "128_bit" and prop("axisten_freq") == "250"
    assert prop("AXISTEN_IF_CQ_ALIGNMENT_MODE") == "DWORD_Aligned"
    assert prop("AXISTEN_IF_CC_ALIGNMENT_MODE") == "DWORD_Aligned"
    assert prop("pf0_msi_enabled") == "true" and prop("pf0_msix_enabled") == "false"
    top = (BOARD / "vcu118_top.sv").read_text()
    dsn = re.search(r"DSN\s*=\s*64'h([0-9A-Fa-f_]+)", top)
    assert dsn and int(dsn[1].replace("_", ""), 16) == defaults["serial"]
