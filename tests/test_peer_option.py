"""Pointing a socket rig at a responder from the command line, and what a dead one gives."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from helpers import hil

from hil.errors import RigConfigError
from hil.health import parse_peer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:2323", ("127.0.0.1", 2323)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:65535", ("::1", 65535)),
    ],
)
def test_peer_parses(text: str, expected: tuple[str, int]) -> None:
    assert parse_peer(text) == expected


@pytest.mark.parametrize("text", ["", "2323", "host:", ":2323", "host:0", "host:65536", "h:x"])
def test_a_bad_peer_is_refused(text: str) -> None:
    with pytest.raises(RigConfigError, match="HOST:PORT"):
        parse_peer(text)


def _run_with_peer(port: int, results: Path, repo: Path):
    """`hil run --rig spdm-emu --peer 127.0.0.1:PORT`."""
    peer = f"127.0.0.1:{port}"
    return hil("run", "--rig", "spdm-emu", "--peer", peer, "--results", str(results), cwd=repo)


def test_a_dead_peer_ends_the_run_with_one_line(tmp_path: Path, repo: Path) -> None:
    port = _free_port()
    proc = _run_with_peer(port, tmp_path, repo)
    assert proc.returncode not in (0, 1), proc.returncode  # a usage error, not a verdict
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"no SPDM responder at 127.0.0.1:{port}" in lines[0]
    assert not list(tmp_path.rglob("records.jsonl")), "a run that never started left records"


def test_hil_peer_environment_variable(tmp_path: Path, repo: Path) -> None:
    port = _free_port()
    proc = hil(
        "run",
        "--rig",
        "spdm-emu",
        "--results",
        str(tmp_path),
        cwd=repo,
        env_extra={"HIL_PEER": f"127.0.0.1:{port}"},
        timeout=120,
    )
    assert f"127.0.0.1:{port}" in proc.stdout + proc.stderr


def test_peer_on_a_rig_without_one(tmp_path: Path, repo: Path) -> None:
    proc = hil(
        "run",
        "--rig",
        "fake",
        "--peer",
        "127.0.0.1:2323",
        "--results",
        str(tmp_path),
        cwd=repo,
        timeout=120,
    )
    assert proc.returncode not in (0, 1)
    assert "only spdm-socket rigs have a peer" in proc.stdout + proc.stderr


def test_a_peer_that_is_not_a_responder_is_one_line(tmp_path: Path, repo: Path) -> None:
    """Something listens, but it does not speak the spdm-emu socket protocol."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def babble() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    threading.Thread(target=babble, daemon=True).start()
    try:
        proc = _run_with_peer(port, tmp_path, repo)
    finally:
        server.close()
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode not in (0, 1)
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port} is not an spdm-emu socket responder" in lines[0]
