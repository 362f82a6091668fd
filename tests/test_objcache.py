"""The runtime-library object cache (hil.sim._objcache): reused only while nothing it was built
from has changed, and never for code that depends on a build directory."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from hil.sim import _objcache

pytestmark = pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler (c++)")


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A 'runtime' source outside two build directories, and a compiler that logs its runs."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "rt.h").write_text("inline int rt_value() { return 41; }\n")
    (lib / "rt.cpp").write_text('#include "rt.h"\nint rt() { return rt_value() + 1; }\n')
    log = tmp_path / "compiles.log"
    cxx = tmp_path / "cxx"
    cxx.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec c++ "$@"\n')
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    builds = [tmp_path / "b1", tmp_path / "b2"]
    for b in builds:
        b.mkdir()
    return {
        "lib": lib,
        "log": log,
        "cxx": cxx,
        "b1": builds[0],
        "b2": builds[1],
        "cache": tmp_path / "cache",
    }


def _compile(
    tree: dict[str, Path],
    build: Path,
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    opt: str = "-Os",
) -> int:
    monkeypatch.chdir(build)
    argv = [
        str(tree["cxx"]),
        opt,
        "-I.",
        "-MMD",
        f"-I{tree['lib']}",
        "-c",
        "-o",
        "rt.o",
        str(source),
    ]
    return _objcache.main(["--dir", str(tree["cache"]), *argv])


def _runs(tree: dict[str, Path]) -> int:
    return len(tree["log"].read_text().splitlines()) if tree["log"].exists() else 0


def test_second_build_reuses_the_object(tree, monkeypatch) -> None:
    src = tree["lib"] / "rt.cpp"
    assert _compile(tree, tree["b1"], src, monkeypatch) == 0
    assert _compile(tree, tree["b2"], src, monkeypatch) == 0
    assert _runs(tree) == 1
    assert (tree["b2"] / "rt.o").read_bytes() == (tree["b1"] / "rt.o").read_bytes()
    assert (tree["b2"] / "rt.d").read_text() == (tree["b1"] / "rt.d").read_text()


def test_a_changed_header_compiles_again(tree, monkeypatch) -> None:
    src = tree["lib"] / "rt.cpp"
    assert _compile(tree, tree["b1"], src, monkeypatch) == 0
    (tree["lib"] / "rt.h").write_text("inline int rt_value() { return 7; }\n")
    assert _compile(tree, tree["b2"], src, monkeypatch) == 0
    assert _runs(tree) == 2
    assert (tree["b2"] / "rt.o").read_bytes() != (tree["b1"] / "rt.o").read_bytes()


def test_other_flags_compile_again(tree, monkeypatch) -> None:
    src = tree["lib"] / "rt.cpp"
    assert _compile(tree, tree["b1"], src, monkeypatch) == 0
    assert _compile(tree, tree["b2"], src, monkeypatch, opt="-O0") == 0
    assert _runs(tree) == 2


def test_code_reading_the_build_directory_is_never_cached(tree, monkeypatch) -> None:
    src = tree["lib"] / "uses_model.cpp"
    src.write_text('#include "model.h"\nint m() { return MODEL; }\n')
    for build, value in ((tree["b1"], 1), (tree["b2"], 2)):
        (build / "model.h").write_text(f"#define MODEL {value}\n")
        assert _compile(tree, build, src, monkeypatch) == 0
    assert _runs(tree) == 2
    assert not tree["cache"].exists() or not any(tree["cache"].iterdir())


def test_a_failed_compile_reports_its_status_and_stores_nothing(tree, monkeypatch) -> None:
    src = tree["lib"] / "broken.cpp"
    src.write_text("int broken( {\n")
    assert _compile(tree, tree["b1"], src, monkeypatch) != 0
    assert not tree["cache"].exists() or not any(tree["cache"].iterdir())


def test_bad_usage_is_refused() -> None:
    assert _objcache.main(["c++", "-c", "x.cpp"]) == 2
