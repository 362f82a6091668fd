"""What a new user meets first: bad input answered in one line, selection, listing."""

from __future__ import annotations

from pathlib import Path

from helpers import hil, only_run, records

from hil.pytest_plugin import select_ids

IDS = [
    "ide.protected.write_read",
    "ide_km.query.matches_config",
    "tdisp.outside_session.ignored",
    "telemetry.ide.streams_match_config",
    "spdm.challenge.signature",
    "spdm.measurements.signed",
]


def test_k_is_a_dotted_prefix_first() -> None:
    assert select_ids(IDS, "ide") == {"ide.protected.write_read"}
    assert select_ids(IDS, "spdm.challenge") == {"spdm.challenge.signature"}
    assert select_ids(IDS, "spdm.*.signature") == {"spdm.challenge.signature"}
    assert select_ids(IDS, "spdm or ide") is None  # a pytest expression: pytest decides
    assert select_ids(IDS, "outside_session") is None  # no prefix matches: pytest keywords


def _lines(proc) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def test_an_unwritable_results_folder_is_one_line(tmp_path: Path, repo: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = hil("run", "--rig", "fake", "--results", str(blocker / "results"), cwd=repo)
    assert proc.returncode not in (0, 1)
    lines = _lines(proc)
    assert len(lines) == 1 and "cannot write results there" in lines[0], lines


def test_nothing_selected_leaves_no_results_folder(tmp_path: Path, repo: Path) -> None:
    for args in (["-k", "nosuch"], ["-k", "doe and"], ["--list"]):
        proc = hil("run", "--rig", "fake", *args, "--results", str(tmp_path), cwd=repo)
        assert "Traceback" not in proc.stdout + proc.stderr
        assert not (tmp_path / "fake").exists() or not list((tmp_path / "fake").iterdir()), args


def test_list_says_what_runs_and_what_is_na(tmp_path: Path, repo: Path) -> None:
    proc = hil("run", "--rig", "fake", "-k", "tsm", "--list", cwd=repo)
    assert proc.returncode == 0
    lines = _lines(proc)
    assert all(line.startswith("tsm.") for line in lines[:-1]), lines
    assert "n/a (lacks tsm)" in lines[0]
    assert lines[-1].endswith(f"0 run, {len(lines) - 1} n/a"), lines[-1]


def test_vectors_from_a_file_or_a_module_in_the_current_folder(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "my_vectors.py").write_text(
        "from hil.vectors import vector\n\n"
        "@vector('mine.vendor_id', title='a vendor ID', spec='PCIe 6.x §7.5.1.1', "
        "needs={'config'})\n"
        "async def vendor_id(ctx):\n"
        "    ctx.expect(await ctx.config.read32(0) & 0xFFFF != 0xFFFF, 'no device')\n"
    )
    for spec in ("./my_vectors.py", "my_vectors", str(tmp_path / "my_vectors.py")):
        results = tmp_path / f"results-{len(spec)}"
        proc = hil(
            "run", "--rig", "fake", "--vectors", spec, "--results", str(results), cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert records(only_run(results, "fake"))["mine.vendor_id"]["outcome"] == "pass"
    proc = hil("run", "--rig", "fake", "--vectors", "nosuch_mod", cwd=tmp_path)
    lines = _lines(proc)
    assert len(lines) == 1 and "no module of that name" in lines[0], lines


def test_one_totals_line(tmp_path: Path, repo: Path) -> None:
    proc = hil("run", "--rig", "fake", "-k", "doe", "--results", str(tmp_path), cwd=repo)
    assert proc.returncode == 0
    totals = [line for line in proc.stdout.splitlines() if "pass" in line and "total" in line]
    assert len(totals) == 1, proc.stdout
    assert " passed" not in proc.stdout  # pytest's own count of the same thing is gone
    assert ".junit.xml.partial" not in proc.stdout


def test_a_vector_error_shows_its_own_frames(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "bad_vectors.py").write_text(
        "from hil.vectors import vector\n\n"
        "@vector('mine.bug', title='a bug', spec='none', needs={'config'})\n"
        "async def bug(ctx):\n"
        "    missing = None\n"
        "    return missing + 1\n\n"
        "@vector('mine.limit', title='a limit', spec='none', needs={'config'})\n"
        "async def limit(ctx):\n"
        "    ctx.measure('settle_time', 1, 'ms', low=5)\n"
    )
    proc = hil(
        "run",
        "--rig",
        "fake",
        "--vectors",
        "./bad_vectors.py",
        "--results",
        str(tmp_path),
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert 'bad_vectors.py", line 6, in bug' in out
    assert "pytest_plugin.py" not in out and "_pytest" not in out
    assert "settle_time = 1 ms < 5 ms (low)" in out
    assert len(out.splitlines()) < 40, out


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path, repo: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = hil("serve", "--rig", "fake", "--port", str(port), cwd=repo, timeout=60)
    lines = _lines(proc)
    assert proc.returncode == 2
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], lines


def test_serve_a_rig_with_no_device_here_says_why(repo: Path) -> None:
    proc = hil("serve", "--rig", "spdm-emu", cwd=repo, timeout=60)
    lines = _lines(proc)
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert "kind spdm-socket" in lines[0] and "hil serve: hil serve" not in lines[0]


def test_a_trust_anchor_that_is_not_a_certificate_is_one_line(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "root.pem").write_text("not a certificate\n")
    (tmp_path / "r.toml").write_text(
        "[rig]\nkind = 'fake'\nprovides = ['doe', 'spdm']\n[settings]\ntrust_anchor = 'root.pem'\n"
    )
    proc = hil("run", "--rig", str(tmp_path / "r.toml"), "--results", str(tmp_path), cwd=repo)
    lines = _lines(proc)
    assert proc.returncode not in (0, 1)
    assert len(lines) == 1 and "trust_anchor" in lines[0] and "root.pem" in lines[0], lines
