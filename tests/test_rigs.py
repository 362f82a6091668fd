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
        ("[other]\nx=1", "line 1: unknown section \\[other\\]"),
        ("x = 1", "unknown section \\[x\\]"),
        ("[settings]\nflr_wait_s = 1.0", "missing the \\[rig\\] table"),
        ("[rig]\nkind = 'bogus'", "kind = 'bogus'"),
        ("[rig]\nkind = 'fake'\nprovides = ['doe', 'teleport']", "unknown needs"),
        ("[rig]\nkind = 'fake'\nprovides = 'doe'", "line 3: .* is not a list\\[str\\]"),
        ("[rig]\nkind = 'fake'\nname = '../x'", "not a plain name"),
        ("[rig]\nkind = 'fake'\n[sim]\nclock_period_ns = 4", "means nothing for a fake rig"),
        ("[rig]\nkind = 'sim'\n[sim]\nclock_period_ns = -4", "positive number"),
        ("[rig]\nkind = 'sim'\n[sim]\nparameters = { A = 'x' }", "integers"),
        ("[rig]\nkind = 'sim'\ncolour = 'red'", "line 3: \\[rig\\] colour is not a key"),
        (
            "[rig]\nkind = 'fake'\n\n[settings]\ndoe_timout_s = 0.5",
            "line 5: \\[settings\\] doe_timout_s .*did you mean 'doe_timeout_s'",
        ),
        ("[rig]\nkind = 'fake'\n[setings]\n", "did you mean 'settings'"),
        ("[rig]\nkind = 'fake'\n[settings]\ndoe_timeout_s = 'slow'", "is not a float"),
        (
            "[rig]\nkind = 'fake'\nprovides = ['doe', 'ide_traffic', 'tsm']",
            "provides \\['tsm'\\], which a fake rig cannot meet",
        ),
        ("[rig]\nkind = 'fake'\n[settings]\nuart_timeout_s = 1.0", "means nothing for a fake"),
        (
            "[rig]\nkind = 'sim'\n[sim]\ntop = 'hil_fpga'",
            "a sim rig simulates one of \\['hil_ep'\\]",
        ),
        ("[rig]\nkind = 'virtual'\n[sim]\ntop = 'tdi'", "top = 'tdi'"),
        ("[rig]\nkind = 'fake'\n[fake]\nselective_streams = 9", "\\[fake\\] num_streams 9"),
        ("[rig]\nkind = 'fake'\n[fake]\nide_features = ['warp']", "ide_features \\['warp'\\]"),
        ("[rig]\nkind = 'fake'\n[fake]\nmax_port_index = 256", "max_port_index 256"),
        ("[rig]\nkind = 'sim'\n[fake]\nmax_port_index = 1", "means nothing for a sim rig"),
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


def test_relative_file_settings_are_relative_to_the_rig_file(tmp_path: Path) -> None:
    rigs = tmp_path / "lab" / "rigs"
    rigs.mkdir(parents=True)
    (rigs / "r.toml").write_text(
        "[rig]\nkind = 'fake'\n[settings]\ntrust_anchor = 'certs/root.pem'\n"
        "requester_key = '/abs/key.pem'\n"
    )
    rig = load_rig(rigs / "r.toml")
    assert rig.settings["trust_anchor"] == str((rigs / "certs" / "root.pem").resolve())
    assert rig.settings["requester_key"] == "/abs/key.pem"
    assert load_rig(Path("rigs/fake.toml").resolve()).settings["trust_anchor"] == "test-pki"


def test_every_project_rig_file_passes_the_schema(repo: Path) -> None:
    for path in sorted((repo / "rigs").glob("*.toml")):
        load_rig(path)


def test_the_rig_file_reference_is_generated_from_the_schema(repo: Path) -> None:
    from hil import rig_schema

    doc = (repo / "docs" / "rig-files.md").read_text()
    for section, keys in rig_schema.SECTIONS.items():
        assert f"## [{section}]" in doc
        for key in keys:
            assert f"| `{key.name}` |" in doc, f"{section}.{key.name} missing: run `hil regen`"
