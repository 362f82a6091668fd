"""`hil serve` on the spdm-emu socket protocol, driven by `hil run --rig <spdm-socket rig>`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import only_run
from helpers import records as read_records

from hil.pki import TestPki
from hil.transport.spdm_socket import SpdmSocketClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _socket_rig(tmp: Path, port: int, anchor: str = "test-pki", provides: str = "['spdm']") -> Path:
    rig = tmp / "peer.toml"
    rig.write_text(
        f"[rig]\nkind = 'spdm-socket'\nprovides = {provides}\n"
        f"[socket]\nhost = '127.0.0.1'\nport = {port}\n"
        f"[settings]\ntrust_anchor = '{anchor}'\nfunction_id = 0x0100\n"
    )
    return rig


class Server:
    def __init__(self, repo: Path, *args: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hil.cli", "serve", "--port", str(self.port), *args],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "listening on" in line:
                return
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"hil serve exited with {self.proc.returncode}")
        raise AssertionError("hil serve did not start listening")

    def shutdown(self) -> int:
        async def bye() -> None:
            async with SpdmSocketClient(port=self.port) as client:
                await client.shutdown()

        asyncio.run(bye())
        return self.proc.wait(timeout=60)


def _run(repo: Path, rig: Path, results: Path, *extra: str):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hil.cli",
            "run",
            "--rig",
            str(rig),
            "--results",
            str(results),
            *extra,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.parametrize("served_rig", ["fake", "sim-verilator"])
def test_spdm_vectors_pass_against_hil_serve(tmp_path: Path, repo: Path, served_rig: str) -> None:
    server = Server(repo, "--rig", served_rig)
    try:
        args = ["-k", "spdm"] if served_rig == "fake" else ["-k", "challenge or established"]
        proc = _run(repo, _socket_rig(tmp_path, server.port), tmp_path / "res", *args)
        assert proc.returncode == 0, proc.stdout[-3000:]
        records = read_records(only_run(tmp_path / "res", "peer"))
        assert records and {r["outcome"] for r in records.values()} == {"pass"}
    finally:
        assert server.shutdown() == 0  # SHUTDOWN ends the server


def test_ide_km_and_tdisp_messaging_against_hil_serve(tmp_path: Path, repo: Path) -> None:
    """An external requester's view: IDE_KM and TDISP over the socket get spec answers; the
    vectors that need the device's registers are n/a (by their needs, or at run time when the
    firmware refuses keys for a Stream ID the socket cannot write), every other one passes."""
    from hil.vectors import default_suite

    server = Server(repo, "--rig", "fake")
    try:
        rig = _socket_rig(tmp_path, server.port, provides="['spdm', 'ide_km', 'tdisp']")
        proc = _run(repo, rig, tmp_path / "res", "-k", "ide_km or tdisp")
        assert proc.returncode == 0, proc.stdout[-3000:]
        records = read_records(only_run(tmp_path / "res", "peer"))
        provides = {"spdm", "ide_km", "tdisp"}
        suite = default_suite()
        runnable = {v for v in records if suite[v].needs <= provides}
        passed = {v for v in runnable if records[v]["outcome"] == "pass"}
        assert len(passed) >= 9, passed
        others = {v: records[v] for v in runnable - passed}
        assert all(
            r["outcome"] == "n/a" and "configuration space" in r["message"] for r in others.values()
        ), {v: (r["outcome"], r["message"]) for v, r in others.items()}
        assert {r["outcome"] for v, r in records.items() if v not in runnable} == {"n/a"}
    finally:
        assert server.shutdown() == 0


def test_a_vendor_identity_and_its_trust_anchor(tmp_path: Path, repo: Path) -> None:
    vendor = TestPki.generate(curve="P-256")
    files = vendor.write_pem(tmp_path / "vendor")
    chain, key, root = files.chain, files.key, files.root
    server = Server(repo, "--rig", "fake", "--cert-chain", str(chain), "--key", str(key))
    try:
        rig = _socket_rig(tmp_path, server.port)
        ok = _run(
            repo,
            rig,
            tmp_path / "ok",
            "-k",
            "chain_valid or challenge",
            "--trust-anchor",
            str(root),
        )
        assert ok.returncode == 0, ok.stdout[-2000:]
        # The project's own test root does not vouch for the vendor's device.
        bad = _run(repo, rig, tmp_path / "bad", "-k", "chain_valid")
        assert bad.returncode == 1
        (run,) = list((tmp_path / "bad" / "peer").iterdir())
        rec = json.loads((run / "records.jsonl").read_text().splitlines()[0])
        assert rec["outcome"] == "fail" and "Untrusted" in rec["message"]
    finally:
        server.shutdown()


def test_serve_refuses_a_key_that_is_not_the_leafs(tmp_path: Path, repo: Path) -> None:
    a, b = TestPki.generate(), TestPki.generate()
    chain = a.write_pem(tmp_path / "a").chain
    key = b.write_pem(tmp_path / "b").key
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hil.cli",
            "serve",
            "--rig",
            "fake",
            "--port",
            "0",
            "--cert-chain",
            str(chain),
            "--key",
            str(key),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert proc.returncode == 2
    assert "does not match" in proc.stderr
