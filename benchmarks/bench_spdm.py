"""SPDM figures on this machine, beside DMTF spdm-emu's when a build of it is at hand.

    python benchmarks/bench_spdm.py [--flows 20] [--no-sim]
    HIL_DMTF_BIN=/path/to/spdm-emu/build/bin python benchmarks/bench_spdm.py

Prints: session establishment (VCA, digests, certificate, challenge, key exchange, finish, end)
per second in memory, both roles in one process; the DOE bytes and exchanges one flow moves;
the same flow's wall time through the simulated endpoint's DOE mailbox (unless ``--no-sim``);
and the flow's time over the spdm-emu socket protocol (PCI_DOE) between this project's
requester and responder (``hil serve --rig fake``) and, with ``HIL_DMTF_BIN`` (the folder
holding ``spdm_responder_emu`` and ``spdm_requester_emu``), DMTF's: every pairing of the two
requesters and the two responders, the median of ``--flows`` flows each.  The peers are found
and started as tests/test_interop_dmtf.py does.  Without ``HIL_DMTF_BIN`` one line says that
the anchor was not measured, and why.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _vectors import REPO, measurements, run_vectors
from cryptography import x509

from hil.firmware import Dsm, FirmwareTransport, test_pki
from hil.host.spdm import SpdmRequester
from hil.pki import load_certificates
from hil.transport.spdm_socket import SpdmSocketClient

sys.path.insert(0, str(REPO / "tests"))
import test_interop_dmtf as dmtf  # the peers, found and started as the interop tests do

#: What both requesters do in one flow: VCA, GET_DIGESTS, GET_CERTIFICATE, CHALLENGE,
#: KEY_EXCHANGE, FINISH, END_SESSION, with no mutual authentication.
_EMU_FLOW = (
    "--ver",
    "1.3",
    "--exe_conn",
    "DIGEST,CERT,CHAL",
    "--exe_session",
    "KEY_EX",
    "--exe_mode",
    "CONTINUE",  # leave the responder serving the next flow
)
_EMU_RESPONDER = ("--mut_auth", "NO", "--basic_mut_auth", "NO")


async def flow(req: SpdmRequester) -> None:
    await req.authenticate()
    session = await req.key_exchange()
    await req.end_session(session)


def in_memory(n: int) -> tuple[float, SpdmRequester]:
    dsm = Dsm(hdl_build="bench")
    anchor = test_pki().trust_anchor
    last = None
    t0 = time.perf_counter()
    for _ in range(n):
        last = SpdmRequester(FirmwareTransport(dsm), trust_anchor=anchor)
        asyncio.run(flow(last))
    return n / (time.perf_counter() - t0), last


def simulated() -> dict:
    wall, records = run_vectors("established_and_used")
    (rec,) = records.values()
    return {"wall": wall, "vector": rec["duration_s"], **measurements(rec)}


async def _socket_flow(port: int, anchor: x509.Certificate) -> None:
    client = SpdmSocketClient("127.0.0.1", port)
    await client.connect()
    try:
        await flow(SpdmRequester(client, trust_anchor=anchor))
    finally:
        await client.close()  # CONTINUE: the responder serves the next connection


def hil_requester(port: int, anchor: x509.Certificate) -> Callable[[], None]:
    return lambda: asyncio.run(_socket_flow(port, anchor))


def emu_requester(port: int) -> Callable[[], None]:
    def run() -> None:
        proc, log = dmtf._requester_emu(port, *_EMU_FLOW)
        if proc.returncode != 0 or "ERROR" in log:
            raise SystemExit(f"spdm_requester_emu failed (exit {proc.returncode}): {log[-2000:]}")

    return run


def timed(one: Callable[[], None], flows: int) -> list[float]:
    one()  # a first flow outside the figures: imports, caches, the peer's first connection
    times = []
    for _ in range(flows):
        t0 = time.perf_counter()
        one()
        times.append(time.perf_counter() - t0)
    return times


def _ms(times: list[float]) -> str:
    return (
        f"{statistics.median(times) * 1e3:8.1f} ms  "
        f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})"
    )


def socket_figures(flows: int) -> None:
    why = dmtf._why_not(("spdm_responder_emu", "spdm_requester_emu"))
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        started = []
        try:
            if why:
                anchor = test_pki().trust_anchor
                serve, serve_port = dmtf.start_hil_serve(logs, REPO, "--rig", "fake", "--quiet")
            else:
                # Both responders present DMTF's sample P-384 chain: one identity, one root.
                anchor = load_certificates((dmtf._bin() / "ecp384" / "ca.cert.der").read_bytes())[0]
                serve, serve_port = dmtf.start_hil_serve(
                    logs, REPO, "--rig", "fake", "--quiet", *dmtf._dmtf_identity()
                )
            started.append(serve)
            pairs: list[tuple[str, str, Callable[[], None]]] = []
            if not why:
                emu, emu_port = dmtf.start_emu_responder(logs, *_EMU_RESPONDER)
                started.append(emu)
                pairs.append(("hil", "spdm_responder_emu", hil_requester(emu_port, anchor)))
            pairs.append(("hil", "hil serve --rig fake", hil_requester(serve_port, anchor)))
            if not why:
                pairs.append(
                    ("spdm_requester_emu", "hil serve --rig fake", emu_requester(serve_port))
                )
                pairs.append(("spdm_requester_emu", "spdm_responder_emu", emu_requester(emu_port)))
            print(
                f"SPDM flow over the spdm-emu socket (PCI_DOE, 127.0.0.1), median of {flows} "
                f"(VCA+digests+certificate+challenge+key exchange+finish+end, SPDM 1.3, P-384):"
            )
            figures = {}
            for requester, responder, one in pairs:
                figures[(requester, responder)] = statistics.median(times := timed(one, flows))
                print(f"  {requester:<19} -> {responder:<21} {_ms(times)}")
        finally:
            for proc in started:
                dmtf.stop(proc)
    if why:
        print(f"DMTF anchor not measured: {why}")
        return
    print(
        "  (spdm_requester_emu is a process per flow, its start-up included; the hil requester "
        "is a connection per flow in one process.  Both emu programs write a frame in several "
        "send() calls on sockets without TCP_NODELAY, and hil's ends set TCP_NODELAY and "
        "TCP_QUICKACK: between the two emu programs each exchange can wait out a delayed ACK, "
        "about 40 ms on Linux, which is the socket's time, not libspdm's)"
    )
    for responder in ("spdm_responder_emu", "hil serve --rig fake"):
        ratio = figures[("hil", responder)] / figures[("spdm_requester_emu", responder)]
        print(f"  requester ratio hil / spdm_requester_emu against {responder}: {ratio:.2f}")
    for requester in ("hil", "spdm_requester_emu"):
        ratio = (
            figures[(requester, "hil serve --rig fake")]
            / figures[(requester, "spdm_responder_emu")]
        )
        print(
            f"  responder ratio hil serve / spdm_responder_emu with the {requester} requester: "
            f"{ratio:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=20, help="flows timed per pairing")
    parser.add_argument("--no-sim", action="store_true", help="skip the simulated endpoint")
    args = parser.parse_args()
    rate, req = in_memory(50)
    print(
        f"session establishment in memory:      {rate:8.1f} flows/s "
        f"(VCA+digests+certificate+challenge+key exchange+finish+end, P-384/SHA-384)"
    )
    print(
        f"DOE traffic per flow:                 {req.bytes_sent + req.bytes_received:8d} bytes "
        f"in {req.exchanges} exchanges"
    )
    if not args.no_sim:
        sim = simulated()
        print(
            f"spdm.session.established_and_used through the HDL DOE mailbox: "
            f"{sim['vector']:.2f} s in the simulator ({sim['wall']:.1f} s with start-up), "
            f"{int(sim['doe_exchanges'])} DOE exchanges, {int(sim['doe_bytes'])} bytes, "
            f"{int(sim['config_accesses'])} config accesses"
        )
    socket_figures(args.flows)


if __name__ == "__main__":
    main()
