from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import RigConfigError
from hil.rigs import find_rig, list_rigs, load_rig, parse_rig


def test_project_rigs_load(repo: Path) -> None:
    sim = load_rig(repo / "rigs" / "sim-verilator.toml")
    assert sim.name == "sim-verilator" and sim.kind == "sim"
    assert {"config", "doe"} <= sim.provides
    assert find_rig("fake").kind == "fake"
    assert sim.sim.get("top", "hil_ep") == "hil_ep"  # the default rig simulates the endpoint
    virtual = load_rig(repo / "rigs" / "virtual-fpga.toml")
    assert virtual.sim["top"] == "hil_fpga" and "telemetry" in virtual.provides


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rig\nkind='sim'", "not valid TOML"),
        ("[other]\nx=1", "unknown sections"),
        ("x = 1", "unknown sections"),
        ("[settings]\na=1", "missing the \\[rig\\] table"),
        ("[rig]\nkind = 'bogus'", "kind = 'bogus'"),
        ("[rig]\nkind = 'fake'\nprovides = ['doe', 'teleport']", "unknown needs"),
        ("[rig]\nkind = 'fake'\nprovides = 'doe'", "list of strings"),
        ("[rig]\nkind = 'fake'\nname = '../x'", "not a plain name"),
        ("[rig]\nkind = 'fake'\n[sim]\nclock_period_ns = 4", "only for kind = 'sim'"),
        ("[rig]\nkind = 'sim'\n[sim]\nclock_period_ns = -4", "positive number"),
        ("[rig]\nkind = 'sim'\n[sim]\nparameters = { A = 'x' }", "integers"),
        ("[rig]\nkind = 'sim'\ncolour = 'red'", "unknown \\[rig\\] keys"),
        (
            "[rig]\nkind = 'sim'\n[sim]\ntop = 'hil_fpga'",
            "a sim rig simulates one of \\['hil_ep'\\]",
        ),
        ("[rig]\nkind = 'virtual'\n[sim]\ntop = 'tdi'", "top = 'tdi'"),
    ],
)
def test_broken_rig_files_get_clear_errors(text: str, message: str) -> None:
    with pytest.raises(RigConfigError, match=message):
        parse_rig(text, Path("rigs/broken.toml"))


def test_a_broken_file_is_listed_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "good.toml").write_text("[rig]\nkind = 'fake'\nprovides = ['doe']\n")
    (tmp_path / "bad.toml").write_text("[rig]\nkind = 3\n")
    monkeypatch.setenv("HIL_RIGS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    found = list_rigs()
    errors = [f for f in found if isinstance(f, RigConfigError)]
    names = [f.name for f in found if not isinstance(f, RigConfigError)]
    assert "good" in names
    assert len(errors) == 1 and "bad.toml" in str(errors[0])


def test_unknown_rig_names_where_it_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RigConfigError, match="no rig named 'nope'"):
        find_rig("nope")
    with pytest.raises(RigConfigError, match="no rig file"):
        find_rig(str(tmp_path / "missing.toml"))
