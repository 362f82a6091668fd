"""SPDM figures on this machine.

    python benchmarks/bench_spdm.py

Prints: session establishment (VCA, digests, certificate, challenge, key exchange, finish) per
second in memory, both roles in one process; the same flow's wall time through the simulated
endpoint's DOE mailbox; and the DOE bytes and exchanges one flow moves.
"""

from __future__ import annotations

import asyncio
import time

from _vectors import measurements, run_vectors

from hil.firmware import Dsm, FirmwareTransport, test_pki
from hil.host.spdm import SpdmRequester


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


def main() -> None:
    rate, req = in_memory(50)
    print(
        f"session establishment in memory:      {rate:8.1f} flows/s "
        f"(VCA+digests+certificate+challenge+key exchange+finish+end, P-384/SHA-384)"
    )
    print(
        f"DOE traffic per flow:                 {req.bytes_sent + req.bytes_received:8d} bytes "
        f"in {req.exchanges} exchanges"
    )
    sim = simulated()
    print(
        f"spdm.session.established_and_used through the HDL DOE mailbox: "
        f"{sim['vector']:.2f} s in the simulator ({sim['wall']:.1f} s with start-up), "
        f"{int(sim['doe_exchanges'])} DOE exchanges, {int(sim['doe_bytes'])} bytes, "
        f"{int(sim['config_accesses'])} config accesses"
    )


if __name__ == "__main__":
    main()
