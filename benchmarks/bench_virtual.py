"""The virtual FPGA rig's figures: the whole suite's wall time, the slowest vectors, and how
long the vectors that prove silence wait for it; each with its ratio to the figure before the
device-idle silence end (issue #14).

    python benchmarks/bench_virtual.py                  # run the suite (-n 2), then report it
    python benchmarks/bench_virtual.py -n 1 -k bad_mac  # a subset, one worker
    python benchmarks/bench_virtual.py --run results/virtual-fpga/<run-id>   # report a run
    python benchmarks/bench_virtual.py --clock          # wall time per simulated clock cycle

A silence wait is the time from Go to the end of a response wait that the device's idleness
ended (``silence_wait_max``, recorded by the lab backend); a wait that ran to the wall-clock
deadline shows as the vector's whole time instead.  Wall time on a shared machine: the load
average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Before (the issue's figures, -n 1, the 30 s wall-clock silence deadline).
SUITE_BEFORE_S = 900.0
VECTORS_BEFORE_S = {
    "spdm.session.end_session": 38.0,
    "spdm.negative.bad_mac": 39.0,
    "ide_km.outside_session.ignored": 39.0,
    "ide_km.session_binding": 52.0,
    "tdisp.flow.lock_start_stop": 31.0,
}
SILENCE_BEFORE_S = 30.0  # the wall-clock deadline a silence proof waited out


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def _measurements(record: dict) -> dict[str, float]:
    return {m["name"]: m["value"] for m in record.get("measurements", [])}


def _run(workers: int, k: str | None, results: Path) -> tuple[float, Path, str]:
    cmd = [sys.executable, "-m", "hil.cli", "run", "--rig", "virtual-fpga", "-n", str(workers)]
    if k:
        cmd += ["-k", k]
    cmd += ["--results", str(results)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    runs = sorted((results / "virtual-fpga").iterdir())
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("totals:")]
    return elapsed, runs[-1], summary[-1] if summary else f"exit {proc.returncode}"


def report(run_dir: Path, wall_s: float | None, workers: int | None) -> None:
    records = _records(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    print(f"run: {run_dir}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min)")
    print(f"outcomes: {', '.join(f'{n} {o}' for o, n in sorted(outcomes.items()))}")
    if wall_s is not None:
        full = run.get("selection", {}).get("k") is None
        ratio = f"  ({SUITE_BEFORE_S / wall_s:.1f}x faster than {SUITE_BEFORE_S:.0f} s)"
        print(f"suite wall time: {wall_s:8.1f} s with -n {workers}" + (ratio if full else ""))
    total = sum(r.get("duration_s", 0.0) for r in records)
    print(f"sum of vector times: {total:8.1f} s over {len(records)} vectors")
    print("slowest vectors:")
    for r in sorted(records, key=lambda r: -r.get("duration_s", 0.0))[:10]:
        before = VECTORS_BEFORE_S.get(r["vector"])
        vs = f"  (was {before:.0f} s: {before / r['duration_s']:.1f}x)" if before else ""
        print(f"  {r['vector']:48s} {r['outcome']:5s} {r['duration_s']:7.2f} s{vs}")
    waits = [
        (m["silence_wait_max"], int(m["silences"]), r["vector"])
        for r in records
        if "silence_wait_max" in (m := _measurements(r))
    ]
    if waits:
        print("silence waits (Go to the end of the wait, the longest of each vector):")
        for wait, n, vid in sorted(waits, reverse=True):
            print(f"  {vid:48s} {n:2d} x, longest {wait:6.3f} s")
        longest = max(w for w, _, _ in waits)
        ratio = SILENCE_BEFORE_S / longest
        print(
            f"longest silence wait: {longest:.3f} s ({ratio:.0f}x shorter than the "
            f"{SILENCE_BEFORE_S:.0f} s deadline)"
        )
    else:
        print("no silence wait was ended by the device's idleness")


def clock_cost(writes: int = 5) -> None:
    """Bring the rig up, then time how long the simulation takes to run a write's linger (the
    UART quiet, simulated time running until the board is idle): wall time per clock cycle."""
    from hil.lab.bdf import Bdf
    from hil.lab.virtual import VirtualFpga
    from hil.lab.virtual_fs import ConfigClient
    from hil.rigs import load_rig
    from hil.sim.simulation import Simulation

    rig = load_rig(REPO / "rigs" / "virtual-fpga.toml")
    sim = Simulation(rig)
    cycles = sim.uart_linger_ns() / float(rig.sim.get("clock_period_ns", 4.0))
    board = VirtualFpga(rig, Bdf.parse(rig.lab["bdf"]))
    board.start()
    client = ConfigClient(board.socket)
    try:
        times = []
        for _ in range(writes):
            while not board.device_idle():
                time.sleep(0.0005)
            start = time.perf_counter()
            client.write32(0x04, client.read32(0x04) & 0xFFFF)  # Command, as it is
            while not board.device_idle():
                time.sleep(0.0005)
            times.append(time.perf_counter() - start)
    finally:
        client.sock.close()
        board.stop()
    best = min(times)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min)")
    print(
        f"linger of {cycles:.0f} cycles after a write: best {best * 1e3:.1f} ms of "
        f"{len(times)}, {best / cycles * 1e6:.1f} us a clock cycle"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="report this run's records instead of running")
    ap.add_argument("-n", type=int, default=2, help="workers (pytest-xdist)")
    ap.add_argument("-k", help="only vectors matching this -k expression")
    ap.add_argument("--results", type=Path, help="keep the run here (default: a temp dir)")
    ap.add_argument("--clock", action="store_true", help="only the wall time per clock cycle")
    args = ap.parse_args()
    if args.clock:
        clock_cost()
        return
    if args.run is not None:
        report(args.run, None, None)
        return
    with tempfile.TemporaryDirectory(prefix="bench-virtual-") as tmp:
        wall, run_dir, summary = _run(args.n, args.k, args.results or Path(tmp))
        print(summary)
        report(run_dir, wall, args.n)


if __name__ == "__main__":
    main()
