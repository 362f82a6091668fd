"""The simulated rigs end to end: hil run, --waves, a dying simulator.

None of these needs configuration accesses to travel as TLPs, so they run on sim-cfgext (the
same endpoint, build, firmware and settings as the default sim-verilator, with configuration
accesses handed straight to the hard-IP model).  That the two paths reach the same verdicts is
tests/test_config_paths.py's job, on this file's whole-suite run; ``hil run`` on sim-verilator
is what CI runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import hil, only_run
from helpers import records as read_records
from test_config_paths import assert_same_verdicts_on_the_tlp_path


def test_hil_run_sim_rig_passes_everything(tmp_path: Path, repo: Path) -> None:
    """The whole suite on a simulated rig: everything it can run passes.  On sim-cfgext: what
    is tested is each vector's verdict on the endpoint, not the TLP layer."""
    proc = hil("run", "--rig", "sim-cfgext", "-n", "2", "--results", str(tmp_path), cwd=repo)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run(tmp_path, "sim-cfgext")
    records = read_records(run_dir)
    assert len(records) >= 12
    # Everything the rig can run passes; what needs more than it provides is n/a.
    from hil.rigs import find_rig
    from hil.vectors import default_suite

    provides = find_rig("sim-cfgext").provides
    assert provides == find_rig("sim-verilator").provides
    rig_na = {v for v, vec in default_suite().items() if not vec.needs <= provides}
    # What the endpoint's IDE Capability rules out: it advertises Aggregation, so the vector
    # for a Port without it does not apply, and IDE_KM MaxPortIndex is 0: the device says so.
    device_na = {
        "ide_km.port_index.nonzero",
        "ide.aggregation.unsupported_unit_rejected",
    }
    expected_na = rig_na | device_na
    assert {v for v, r in records.items() if r["outcome"] == "n/a"} == expected_na
    bad = {
        v: r["message"]
        for v, r in records.items()
        if r["outcome"] != "pass" and v not in expected_na
    }
    assert not bad, bad
    # Every vector reached the HDL's configuration space.
    for rec in records.values():
        if rec["vector"] in rig_na:
            assert not rec["measurements"], rec["vector"]  # no simulation was started for it
            continue
        if rec["vector"] in device_na:
            assert rec["message"], rec["vector"]  # what the device does not advertise
        accesses = {m["name"]: m["value"] for m in rec["measurements"]}["config_accesses"]
        assert accesses > 0, rec["vector"]
    # The TLP path (sim-verilator, what CI's main job runs) reaches the same verdicts on a
    # representative set (tests/test_config_paths.py), compared with this run's records.
    assert_same_verdicts_on_the_tlp_path(records, tmp_path / "tlp", repo)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["simulator"] == "verilator" and "5." in run["simulator_version"]
    assert run["hdl_top"] == "hil_ep" and run["hdl_build"]
    assert run["totals"]["pass"] + run["totals"]["n/a"] == len(records)


def test_waves_of_a_failed_vector_are_kept(tmp_path: Path, repo: Path) -> None:
    """Waveforms and logs are the backend's, whichever configuration path: on sim-cfgext."""
    rig = tmp_path / "sim-wrong.toml"
    text = (repo / "rigs" / "sim-cfgext.toml").read_text()
    # This rig claims the endpoint lists one feature: the discovery vector must fail.
    text = text.replace(
        'doe_features = ["0001:00", "0001:01", "0001:02"]', 'doe_features = ["0001:00"]'
    )
    rig.write_text(text)
    proc = hil(
        "run",
        "--rig",
        str(rig),
        "-k",
        "lists_features or well_formed",
        "--waves",
        "--results",
        str(tmp_path / "res"),
        cwd=repo,
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    run_dir = only_run(tmp_path / "res", "sim-wrong")
    records = read_records(run_dir)
    failed = records["doe.discovery.lists_features"]
    assert failed["outcome"] == "fail"
    assert "0001:01" in failed["message"]
    from hil.sim import wave_format

    wave = f"artifacts/doe.discovery.lists_features/dump.{wave_format()}"
    if wave_format() == "vcd":
        print("lz4.h not found by the C++ compiler: waveforms are VCD, not FST")
    assert sorted(failed["artifacts"]) == [wave, "artifacts/doe.discovery.lists_features/sim.log"]
    assert (run_dir / wave).stat().st_size > 1000
    assert records["pcie.ext_caps.well_formed"]["artifacts"] == []  # passed: nothing kept


def test_a_dying_simulator_is_an_error_and_the_run_goes_on(
    tmp_path: Path, repo: Path, tests_on_path: Path
) -> None:
    """A simulator process dying is the backend's business, not the TLP layer's: on
    sim-cfgext."""
    proc = hil(
        "run",
        "--rig",
        "sim-cfgext",
        "--vectors",
        "outcome_vectors",
        "-k",
        "kills_process or passes",
        "--results",
        str(tmp_path),
        cwd=repo,
        env_extra={"HIL_SELFTEST_KILL": "1"},
    )
    assert proc.returncode == 1
    records = read_records(only_run(tmp_path, "sim-cfgext"))
    assert records["selftest.kills_process"]["outcome"] == "error"
    assert "without a result" in records["selftest.kills_process"]["message"]
    assert records["selftest.passes"]["outcome"] == "pass"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to read the project SHA")
def test_run_json_records_the_git_sha(tmp_path: Path, repo: Path) -> None:
    """run.json and the device probe do not depend on the configuration path: on sim-cfgext."""
    proc = hil(
        "run", "--rig", "sim-cfgext", "-k", "well_formed", "--results", str(tmp_path), cwd=repo
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    run = json.loads((only_run(tmp_path, "sim-cfgext") / "run.json").read_text())
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert run["git_sha"].startswith(head)
    # What was tested: the simulated endpoint's identity, learnt by the probe's own simulator.
    device = run["device"]
    assert device["notes"] == [], device["notes"]
    assert len(device["pci"]["vendor_id"]) == 4 and len(device["dsn"]) == 16
    assert device["spdm"]["slots"]["0"]["certificates"] and device["firmware_version"]
    assert run["device_key"] == device["key"]
    assert run["tested_by"]["hdl_build"] == run["hdl_build"]


def test_a_cached_build_from_another_environment_is_not_reused(tmp_path: Path) -> None:
    """A simulator binary links cocotb's VPI library by the path of the environment that built
    it: a cached build from an environment that no longer exists (or another one sharing
    HIL_BUILD_DIR) would not start, so it is not taken as built."""
    from cocotb_tools.config import libs_dir

    from hil.sim._build import _usable

    done = tmp_path / ".built"
    assert not _usable(done)  # never finished
    done.write_text(json.dumps({"seconds": 1.0, "parameters": {}}))
    assert not _usable(done)  # finished before the environment was recorded
    done.write_text(json.dumps({"seconds": 1.0, "cocotb_libs": str(tmp_path / "gone/libs")}))
    assert not _usable(done)
    done.write_text("not json")
    assert not _usable(done)
    done.write_text(json.dumps({"seconds": 1.0, "cocotb_libs": str(libs_dir)}))
    assert _usable(done)
