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
        # n/a: the registers only configuration space reaches, or a second IDE_KM port, which
        # hil serve presents only when asked (--ide-km-port-index).
        assert all(
            r["outcome"] == "n/a"
            and ("configuration space" in r["message"] or "MaxPortIndex is 0" in r["message"])
            for r in others.values()
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


# -- what a peer that speaks only DOE meets (in process, the fake rig's device) -----------------
async def _served(options, body) -> None:
    from hil.serve import serve_fake

    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve_fake("127.0.0.1", 0, options, ready=port.set_result))
    await body(await port)
    async with SpdmSocketClient(port=port.result()) as client:
        await client.shutdown()
    await asyncio.wait_for(server, 5)


def test_serve_presents_port_index_function_id_and_a_configured_stream() -> None:
    """spdm_requester_emu's PCIe steps, by hil's own requester over the socket: IDE_KM at
    PortIndex 1, TDISP on FUNCTION_ID 0xBEEF, locked on stream 0 that the server set up in
    configuration space; a second requester after CONTINUE does it all again."""
    from hil.codec import tdisp as T
    from hil.firmware import test_pki
    from hil.host.ide_km import IdeKmRequester
    from hil.host.spdm import SpdmRequester
    from hil.host.tdisp import TdispRequester
    from hil.serve import ServeOptions

    options = ServeOptions(function_id=0xBEEF, ide_km_port_index=1, ide_stream_id=0)

    async def flow(port: int) -> None:
        async with SpdmSocketClient(port=port) as client:
            spdm = SpdmRequester(client, trust_anchor=test_pki().trust_anchor)
            await spdm.authenticate()
            session = await spdm.key_exchange()
            ide = IdeKmRequester(spdm, session, port_index=1)
            rsp = await ide.query()
            assert (rsp.port_index, rsp.max_port_index) == (1, 1)
            acks = await ide.program_all(0)
            assert {a.status for a in acks} == {0}
            await ide.go_all(0)
            tdi = TdispRequester(spdm, session, T.InterfaceId(0xBEEF))
            await tdi.get_version()
            await tdi.lock(0, mmio_reporting_offset=0xD0000000)
            report = await tdi.get_report(check=False)
            assert report.mmio_ranges and report.mmio_ranges[0].first_page >= 0xD0000
            await tdi.start()
            assert await tdi.get_state() == T.TdiState.RUN
            await tdi.stop()
            assert await tdi.get_state() == T.TdiState.CONFIG_UNLOCKED
            await spdm.end_session(session)

    async def body(port: int) -> None:
        await flow(port)
        await flow(port)  # a new connection: the stream is set up again and re-keyed

    asyncio.run(_served(options, body))


def test_serve_fake_presents_the_rigs_fake_section() -> None:
    """``hil serve --rig`` of a fake rig serves the device its ``[fake]`` table describes, as
    ``hil run`` does: the optional IDE Capability bits reach a peer (PortIndex stays the
    ``--ide-km-port-index`` option's)."""
    from hil.firmware import test_pki
    from hil.host.ide_km import IdeKmRequester
    from hil.host.spdm import SpdmRequester
    from hil.serve import ServeOptions, serve_fake

    async def main() -> None:
        fake = {"ide_features": ["pcrc", "phe"], "max_port_index": 2}
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(
            serve_fake("127.0.0.1", 0, ServeOptions(), ready=ready.set_result, fake=fake)
        )
        async with SpdmSocketClient(port=await ready) as client:
            spdm = SpdmRequester(client, trust_anchor=test_pki().trust_anchor)
            await spdm.authenticate()
            session = await spdm.key_exchange()
            rsp = await IdeKmRequester(spdm, session, port_index=0).query()
            assert rsp.capability.value & (1 << 5 | 1 << 3) == 1 << 5 | 1 << 3  # PCRC, PHE
            assert not rsp.capability.value & (1 << 4)  # no aggregation asked for
            assert rsp.max_port_index == 0
            await spdm.end_session(session)
            await client.shutdown()
        await asyncio.wait_for(server, 5)

    asyncio.run(main())


def test_serve_offers_the_versions_asked_for() -> None:
    from hil.codec import spdm as S
    from hil.codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
    from hil.serve import ServeOptions

    async def body(port: int) -> None:
        async with SpdmSocketClient(port=port) as client:
            get_version = DataObject(PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM, S.GetVersion().encode())
            rsp = S.VersionResponse.decode((await client.exchange(get_version)).payload)
            assert [e.version for e in rsp.entries] == [S.SpdmVersion.V12]

    asyncio.run(_served(ServeOptions(spdm_versions=(S.SpdmVersion.V12,)), body))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--spdm-versions", "1.1"], "SPDM version"),
        (["--function-id", "0x2000000"], "FUNCTION_ID"),
        (["--ide-km-port-index", "256"], "PortIndex"),
        (["--heartbeat-period", "300"], "HeartbeatPeriod"),
    ],
)
def test_serve_refuses_bad_options(repo: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "serve", "--rig", "fake", "--port", "0", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_serve_options_travel_to_the_simulator_intact() -> None:
    """The simulated rig's firmware is made from the job file: what goes in comes out."""
    from hil.serve import ServeOptions

    options = ServeOptions(
        cert_chain=Path("/chain.pem"),
        key=Path("/key.pem"),
        function_id=0xBEEF,
        ide_km_port_index=1,
        ide_stream_id=0,
        spdm_versions=(0x12,),
        heartbeat_period_s=5,
    )
    job = json.loads(json.dumps({"host": "127.0.0.1", "port": 1, **options.to_json()}))
    assert ServeOptions.from_json(job) == options
    assert ServeOptions.from_json(job).dsm_kwargs()["spdm_versions"] == (0x12,)
