"""The two simulated configuration paths reach the same verdicts.

sim-verilator sends every configuration access as a CfgRd0/CfgWr0 TLP from cocotbext-pcie's
root complex through the hard-IP model; sim-cfgext hands it straight to the hard-IP model's
configuration space (``[sim] config_path = "cfg_ext"``).  Same endpoint, build, firmware and
settings: a representative set of vectors must come out the same on both, failures included.
The passing set is compared inside tests/test_sim_rig.py's whole-suite run on sim-cfgext
(``assert_same_verdicts_on_the_tlp_path``), which already holds the sim-cfgext verdicts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import hil, only_run
from helpers import records as read_records

# One or more vectors from each area: config space walks, DOE (aborts, partial writes),
# SPDM, IDE_KM, IDE traffic, and TDISP (a whole flow, FLR, protected MMIO).
REPRESENTATIVE = (
    "pcie.ext_caps.well_formed",
    "doe.discovery.lists_features",
    "doe.abort.mid_write",
    "doe.partial_write.sets_error",
    "spdm.version.well_formed",
    "spdm.challenge.signature",
    "ide_km.query.well_formed",
    "ide.tamper.mac",
    "tdisp.flow.lock_start_stop",
    "tdisp.flr.unlocks",
    "tdisp.run.protected_mmio",
)


def _outcomes(rig: str | Path, results: Path, expr: str, repo: Path) -> dict[str, dict]:
    proc = hil("run", "--rig", str(rig), "-n", "2", "-k", expr, "--results", str(results), cwd=repo)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    name = Path(rig).stem if str(rig).endswith(".toml") else str(rig)
    return read_records(only_run(results, name))


def assert_same_verdicts_on_the_tlp_path(
    cfg_ext: dict[str, dict], results: Path, repo: Path
) -> None:
    """Run REPRESENTATIVE on sim-verilator and compare with ``cfg_ext``, the records of a
    sim-cfgext run that included them (test_sim_rig's whole-suite run, so that the sim-cfgext
    half is not run twice)."""
    tlp = _outcomes("sim-verilator", results, " or ".join(REPRESENTATIVE), repo)
    assert set(tlp) == set(REPRESENTATIVE) <= set(cfg_ext)
    assert {v: cfg_ext[v]["outcome"] for v in REPRESENTATIVE} == {
        v: r["outcome"] for v, r in tlp.items()
    }
    assert {r["outcome"] for r in tlp.values()} == {"pass"}, {
        v: r["message"] for v, r in tlp.items() if r["outcome"] != "pass"
    }
    # Both reached the HDL, the same vector making a like number of accesses either way.
    for vector in REPRESENTATIVE:
        assert _accesses(tlp[vector]) > 0 and _accesses(cfg_ext[vector]) > 0, vector


def _accesses(record: dict) -> int:
    return {m["name"]: m["value"] for m in record["measurements"]}["config_accesses"]


@pytest.mark.parametrize("rig", ["sim-verilator", "sim-cfgext"])
def test_a_wrong_expectation_fails_alike_on_both_paths(
    rig: str, tmp_path: Path, repo: Path
) -> None:
    # The rig claims the endpoint lists one DOE feature: discovery must fail, the same way.
    text = (repo / "rigs" / f"{rig}.toml").read_text()
    wrong = 'doe_features = ["0001:00"]'
    text = text.replace('doe_features = ["0001:00", "0001:01", "0001:02"]', wrong)
    assert wrong in text
    rig_file = tmp_path / f"{rig}-wrong.toml"
    rig_file.write_text(text)
    records = _outcomes(rig_file, tmp_path / "res", "lists_features or well_formed", repo)
    failed = records["doe.discovery.lists_features"]
    assert failed["outcome"] == "fail"
    assert "0001:01" in failed["message"]
    assert records["pcie.ext_caps.well_formed"]["outcome"] == "pass"
