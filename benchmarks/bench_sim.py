"""Simulation figures on this machine.

    python benchmarks/bench_sim.py            # everything
    python benchmarks/bench_sim.py --quick    # skip the cold build and the suite runs

Prints: the HDL build time cold and warm; configuration reads per second (wall time) through
the TLP path (sim-verilator: CfgRd0 TLPs from cocotbext-pcie's RootComplex through the hard-IP
model) and the cfg_ext path (sim-cfgext: straight into the hard-IP model), each with its ratio
to the TLP path's figure before the transaction-layer link (844/s); beside them, measured in
the same simulator run, the anchor: cocotbext-pcie's own pure-Python ``MemoryEndpoint`` on a
``RootComplex``; DOE discovery exchanges per second; the vector suite's wall and CPU time with
-n 1 and -n 2 on both rigs.
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
PARAMS = {"DOE_WR_DEPTH_DW": 1024, "DOE_RD_DEPTH_DW": 1024}
#: Configuration reads per second through the TLP path before this figure was worked on
#: (cocotbext-pcie's data-link layer between the root port and the hard-IP model).
BEFORE_PER_S = 844.0


def _build_time(build_dir: str | None) -> float:
    env = {**os.environ}
    if build_dir:
        env["HIL_BUILD_DIR"] = build_dir
    code = (
        "import time; from hil.sim import build_hdl, rtl_sources, ENDPOINT_TOP as T;"
        f"t=time.perf_counter(); build_hdl(T, rtl_sources(T), {PARAMS!r});"
        "print(time.perf_counter()-t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _in_sim(n: int) -> dict:
    from hil.sim import ENDPOINT_TOP, build_hdl, rtl_sources, run_cocotb_tests

    build = build_hdl(ENDPOINT_TOP, rtl_sources(ENDPOINT_TOP), PARAMS)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        run_cocotb_tests(
            ENDPOINT_TOP,
            build,
            "cocotb_bench",
            Path(__file__).parent,
            extra_env={"HIL_BENCH_OUT": str(out), "HIL_BENCH_N": str(n)},
        )
        return json.loads(out.read_text())


def _suite(workers: int, rig: str) -> tuple[float, float, str]:
    """``hil run`` of the whole suite: wall time, CPU seconds of it and its children, totals."""
    with tempfile.TemporaryDirectory() as tmp:
        before = os.times()
        t = time.perf_counter()
        command = ["run", "--rig", rig, "-n", str(workers), "--results", tmp]
        proc = subprocess.run(
            [sys.executable, "-m", "hil.cli", *command],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - t
        after = os.times()
        cpu = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        last = [ln for ln in proc.stdout.splitlines() if ln.startswith("totals:")]
        return elapsed, cpu, (last[-1] if last else f"exit {proc.returncode}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=2000, help="config reads per loop")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    if not args.quick:
        with tempfile.TemporaryDirectory() as cold:
            print(f"HDL build, cold:           {_build_time(cold):8.1f} s")
    print(f"HDL build, warm (cached):  {_build_time(None):8.3f} s")
    sim = _in_sim(args.n)
    anchor = sim["anchor_config_reads"]["count"] / sim["anchor_config_reads"]["wall_s"]
    rows = (
        ("config_reads_tlp", "config reads, TLP path (sim-verilator)", True),
        ("config_reads_cfg_ext", "config reads, cfg_ext path (sim-cfgext)", True),
        ("anchor_config_reads", "anchor: cocotbext-pcie MemoryEndpoint", False),
        ("discovery_exchanges", "DOE discovery exchanges (TLP path)", False),
    )
    for name, label, ratios in rows:
        r = sim[name]
        rate = r["count"] / r["wall_s"]
        extra = (
            f"  x{rate / BEFORE_PER_S:5.2f} vs {BEFORE_PER_S:.0f}/s before, "
            f"x{rate / anchor:5.2f} vs the anchor"
            if ratios
            else ""
        )
        print(
            f"{label + ' per second:':<50}{rate:10.1f}{extra}"
            f"   ({r['count']} in {r['wall_s']:.2f} s wall, {r['sim_s'] * 1e6:.1f} us sim)"
        )
    if not args.quick:
        print(f"load average before the suite runs: {os.getloadavg()[0]:.1f}")
        for rig in ("sim-verilator", "sim-cfgext"):
            for workers in (1, 2):
                elapsed, cpu, line = _suite(workers, rig)
                print(
                    f"vector suite on {rig}, -n {workers}: {elapsed:6.1f} s wall, "
                    f"{cpu:6.1f} s CPU   ({line})"
                )


if __name__ == "__main__":
    main()
