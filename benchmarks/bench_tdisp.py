"""TDISP figures on this machine.

    python benchmarks/bench_tdisp.py

Prints the wall time of the whole TDISP flow in memory, both roles in one process, with the
firmware driving the in-memory hardware model (hil.fake: IDE key slots and the TDI): SPDM up to
a secured session, GET_TDISP_VERSION and CAPABILITIES, IDE_KM keying of one stream (QUERY,
six KEY_PROG, six K_SET_GO, Enable), LOCK, the report in portions, START, STOP, END_SESSION.
Then the DOE bytes and exchanges the flow moves, in all and for the TDISP part alone; then the
same flow as a vector through the simulated endpoint (``tdisp.flow.lock_start_stop``) on
sim-verilator (configuration accesses as TLPs) and on sim-cfgext (straight to the hard IP).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _vectors import measurements, run_vectors

from hil.codec import tdisp as T
from hil.fake import FakeConfigSpace
from hil.firmware import Dsm, FirmwareTransport, test_pki
from hil.host.ide_km import IdeKmRequester
from hil.host.spdm import SpdmRequester
from hil.host.tdisp import TdispRequester

STREAM_ID = 0x2A
RUNS = 30


async def flow() -> tuple[float, SpdmRequester, dict[str, int]]:
    config = FakeConfigSpace()
    dsm = Dsm(hdl_build="bench", regs=config.firmware_regs())
    req = SpdmRequester(FirmwareTransport(dsm), trust_anchor=test_pki().trust_anchor)
    t0 = time.perf_counter()
    await req.authenticate()
    session = await req.key_exchange()
    km = IdeKmRequester(req, session, config)
    td = TdispRequester(req, session, T.InterfaceId(dsm.requester_id), config)
    tdisp = {"exchanges": 0, "bytes": 0}

    def count(sign: int) -> None:  # TDISP's share: counters after minus before
        tdisp["exchanges"] += sign * req.exchanges
        tdisp["bytes"] += sign * (req.bytes_sent + req.bytes_received)

    count(-1)
    await td.get_version()
    await td.get_capabilities()
    count(+1)
    await km.query()
    regs = await km.setup_stream(0, STREAM_ID)
    await km.program_all(STREAM_ID, 0)
    await km.go_all(STREAM_ID, 0)
    await km.enable(regs, STREAM_ID)
    count(-1)
    await td.lock(STREAM_ID)
    await td.get_report()
    await td.start()
    await td.get_state()
    await td.stop()
    count(+1)
    tdisp["portions"] = td.portions
    await req.end_session(session)
    return time.perf_counter() - t0, req, tdisp


def main() -> None:
    times = []
    last = None
    for _ in range(RUNS):
        wall, req, tdisp = asyncio.run(flow())
        times.append(wall)
        last = (req, tdisp)
    assert last is not None
    req, tdisp = last
    print(
        f"TDISP flow in memory (SPDM session, IDE keys, LOCK..STOP): "
        f"median {1e3 * statistics.median(times):7.2f} ms, best {1e3 * min(times):7.2f} ms "
        f"over {RUNS} runs"
    )
    print(
        f"DOE traffic per flow:                 {req.bytes_sent + req.bytes_received:8d} bytes "
        f"in {req.exchanges} exchanges"
    )
    print(
        f"  of which TDISP:                     {tdisp['bytes']:8d} bytes "
        f"in {tdisp['exchanges']} exchanges (report in {tdisp['portions']} portions)"
    )
    for rig, path in (("sim-verilator", "TLP path"), ("sim-cfgext", "cfg_ext path")):
        wall, records = run_vectors("tdisp.flow", rig=rig)
        rec = records["tdisp.flow.lock_start_stop"]
        m = measurements(rec)
        print(
            f"tdisp.flow.lock_start_stop on {rig} ({path}; HDL TDI, IDE keys in the "
            f"hardware): {rec['duration_s']:.2f} s ({wall:.1f} s with start-up), "
            f"{int(m['doe_exchanges'])} DOE exchanges, {int(m['doe_bytes'])} bytes, "
            f"{int(m['config_accesses'])} config accesses, "
            f"{m['sim_time'] * 1e6:.0f} us of device time"
        )


if __name__ == "__main__":
    main()
