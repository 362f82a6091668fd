"""The seeded device bugs (hil.mutants): each is killed by the vectors it names, a shadowed one
says why it cannot be, and none outlives its context."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil import _fake_hw, _fake_tlp, fake, mutants
from hil.codec.spdm_crypto import KeySchedule
from hil.firmware import Dsm, spdm_responder
from hil.firmware.ide_km import IdeKmResponder
from hil.firmware.spdm_responder import SpdmResponder
from hil.firmware.tdisp import TdispResponder
from hil.rigs import Rig, find_rig
from hil.vectors import Outcome, default_suite

PATCHABLE = (
    Dsm,
    TdispResponder,
    IdeKmResponder,
    SpdmResponder,
    _fake_hw.FakeTdi,
    _fake_hw.FakeIdeCap,
    _fake_tlp.FakeTlpPath,
    _fake_tlp,  # module functions (_byte_count)
    fake.FakeDoe,
    fake.FakeConfigSpace,
    KeySchedule,
    spdm_responder,  # module constants: ALLOWED, SESSION_ONLY, CT_EXPONENT
)
FAKE = tuple(m for m in mutants.MUTANTS if not m.hdl)
HDL = tuple(m for m in mutants.MUTANTS if m.hdl)
KILLERS = sorted({v for m in FAKE for v in m.killed_by})


def _rig() -> Rig:
    """The fake rig with a short DOE deadline: its firmware answers within the write that
    starts it, so a response that has not come in 0.1 s never will.  The vectors that check
    silence wait out the deadline; with the rig's 0.5 s they would make this file slow."""
    rig = find_rig("fake")
    return dataclasses.replace(rig, settings={**rig.settings, "doe_timeout_s": 0.1})


def _vectors_for(mutant: mutants.Mutant) -> list[str]:
    """Its killers; for a shadowed mutant, the vectors that exercise its rule."""
    return list(mutant.killed_by or mutant.checked_by)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _snapshot() -> dict[object, dict[str, object]]:
    return {cls: dict(vars(cls)) for cls in PATCHABLE}


def test_the_list_is_well_formed() -> None:
    ids = [m.id for m in mutants.MUTANTS]
    assert len(ids) == len(set(ids))
    suite = default_suite()
    for m in mutants.MUTANTS:
        assert "§" in m.breaks, m.id  # the rule it breaks, with its clause
        assert bool(m.killed_by) != bool(m.shadowed), m.id  # killers, or why there are none
        assert bool(m.checked_by) == bool(m.shadowed), m.id  # and what shows it
        assert set(m.killed_by) | set(m.checked_by) <= set(suite), m.id


@pytest.mark.parametrize("mutant", FAKE, ids=lambda m: m.id)
def test_each_mutant_is_killed_and_leaves_the_device_good(mutant: mutants.Mutant) -> None:
    rig = _rig()
    suite = default_suite()
    vectors = {v: suite[v] for v in _vectors_for(mutant)}
    before = _snapshot()
    good = mutants._run_vectors(rig, vectors)
    assert all(r.outcome is Outcome.PASS for r in good.values()), good
    result = mutants.run_one(mutant, vectors, rig, set(vectors))
    if mutant.shadowed:  # the vectors that exercise the rule do not see the bug
        assert result.verdict == "shadowed", result.messages
    else:
        assert result.killed_by == list(mutant.killed_by), result.messages
        assert all(result.messages.values())
    assert _snapshot() == before, "the mutant was not undone"
    after = mutants._run_vectors(rig, vectors)
    assert all(r.outcome is Outcome.PASS for r in after.values()), after


def test_every_vector_the_fake_rig_runs_is_named_by_a_mutant_or_excused() -> None:
    """The list covers the suite: each vector the fake rig can run is some mutant's expected
    killer, or ``UNMUTATED`` says why no device-side mutant is listed for it."""
    rig = find_rig("fake")
    suite = default_suite()
    runnable = {v for v, vec in suite.items() if vec.needs <= rig.provides}
    excused = set(mutants.UNMUTATED)
    assert not runnable - set(KILLERS) - excused, "vectors with neither a mutant nor a reason"
    assert not excused & set(KILLERS), "UNMUTATED lists a vector a mutant names"
    assert excused <= runnable, "UNMUTATED lists a vector the fake rig does not run"
    assert all(reason.strip() for reason in mutants.UNMUTATED.values())
    assert mutants.unnamed(runnable) == []


def test_hdl_mutants_are_parameters_that_default_to_the_correct_endpoint() -> None:
    """Each HDL mutant names top-level parameters of hdl/hil_ep that exist and default to 0
    (the correct behaviour); running them needs a Verilator build each (``hil mutate --rig
    sim-verilator``), which this file does not do."""
    import re

    top = (Path(__file__).parents[1] / "hdl" / "hil_ep" / "hil_ep.sv").read_text()
    defaults = dict(re.findall(r"parameter bit (MUTANT_\w+) = (1'b[01])", top))
    assert HDL and defaults
    for m in HDL:
        assert m.killed_by and not m.shadowed, m.id
        for name, value in m.hdl.items():
            assert defaults.get(name) == "1'b0", f"{m.id}: {name} is no hil_ep parameter off"
            assert value == 1, m.id
        # A configuration (a build without an optional feature) is other hil_ep parameters.
        for name in m.config:
            assert not name.startswith("MUTANT_"), f"{m.id}: {name} is a bug, not a configuration"
            assert re.search(rf"parameter [^;=]*\b{name} =", top), f"{m.id}: no parameter {name}"
    assert {n for m in HDL for n in m.hdl} == set(defaults), "a MUTANT_ parameter no mutant uses"


def test_a_survivor_is_reported() -> None:
    harmless = mutants.Mutant(
        "noop", "nothing (§0)", ("doe.discovery.lists_features",), lambda: mutants._both()()
    )
    results, baseline = mutants.run((harmless,), vector_ids={"doe.discovery.lists_features"})
    assert baseline == {"doe.discovery.lists_features"}
    assert results[0].verdict == "SURVIVED" and not results[0].killed_by
    assert "SURVIVED" in mutants.table(results)


def test_hil_mutate_prints_the_table_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from hil.cli import main

    report = tmp_path / "mutants.json"
    rig = tmp_path / "fake-quick.toml"  # the fake rig, its DOE deadline short (see _rig)
    text = (Path(__file__).parents[1] / "rigs" / "fake.toml").read_text()
    rig.write_text(text.replace("doe_timeout_s = 0.5", "doe_timeout_s = 0.1"))
    assert "doe_timeout_s = 0.1" in rig.read_text()
    args = ["mutate", "--rig", str(rig), "-k", "next_index", "--report", str(report)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "doe.discovery.next_index_wrong" in out and "killed" in out
    (entry,) = json.loads(report.read_text())
    assert entry["verdict"] == "killed" and "doe.discovery.lists_features" in entry["killed_by"]
    assert main(["mutate", "-k", "no-such-mutant"]) == 2
