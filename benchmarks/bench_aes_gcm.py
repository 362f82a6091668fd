"""AES-256-GCM engine figures, measured in simulation (``hdl/aes_gcm``).

    python benchmarks/bench_aes_gcm.py            # throughput and latency in clocks
    python benchmarks/bench_aes_gcm.py --synth    # plus Yosys resources (slow: minutes)

Prints: sustained throughput in bytes per clock for back-to-back packets of several payload
sizes (each with 16 bytes of AAD and its own key), with no input gaps and no back-pressure;
latency in clocks from the header beat to the first payload beat out and from the last input
beat to the tag beat out; and the resources from ``hdl/aes_gcm/synth.py`` (with ``--synth``,
else the figures of the last synthesis run if there are any). Every output beat is checked
against ``cryptography`` on the way, by the block test bench's scoreboard.

This file is also the cocotb test module the simulator runs (``bench_measure`` below).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_DIR = REPO / "cocotb_tests" / "aes_gcm"
SYNTH_DIR = REPO / "hdl" / "aes_gcm"
PAYLOADS = (4096, 1024, 256, 64, 16)  # bytes per packet
PACKETS = 16  # per payload size
AAD_BYTES = 16

if str(TEST_DIR) not in sys.path:
    sys.path.insert(0, str(TEST_DIR))


###################################
# Inside the simulator (cocotb)   #
###################################

try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a dependency
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def bench_measure(dut) -> None:  # type: ignore[no-untyped-def]
        from test_aes_gcm import BLOCK, Packet, new_bench

        figures: dict[str, object] = {}
        b = await new_bench(dut, "bench_measure")

        # Latency on an idle engine: one AAD block, four payload blocks; then an empty packet.
        key, iv = b.rng.randbytes(32), b.rng.randbytes(12)
        b.send(Packet(key, iv, b.rng.randbytes(16), b.rng.randbytes(64)))
        await b.drain()
        ins, outs = b.in_stamps, b.monitor.stamps
        figures["latency_header_to_first_text"] = outs[0] - ins[0]
        figures["latency_first_text_in_to_out"] = outs[0] - ins[2]
        figures["latency_last_in_to_tag"] = outs[-1] - ins[-1]
        n_in, n_out = len(ins), len(outs)
        b.send(Packet(key, iv, b"", b""))
        await b.drain()
        figures["latency_empty_packet_header_to_tag"] = b.monitor.stamps[n_out] - b.in_stamps[n_in]

        # Throughput: back-to-back packets, a new key each, no gaps, no back-pressure.
        rates = {}
        for size in PAYLOADS:
            first_in, first_out = len(b.in_stamps), len(b.monitor.stamps)
            for _ in range(PACKETS):
                b.send(
                    Packet(
                        b.rng.randbytes(32),
                        b.rng.randbytes(12),
                        b.rng.randbytes(AAD_BYTES),
                        b.rng.randbytes(size),
                    )
                )
            await b.drain()
            in_clocks = b.in_stamps[-1] - b.in_stamps[first_in] + 1
            out_clocks = b.monitor.stamps[-1] - b.monitor.stamps[first_out] + 1
            rates[size] = {
                "input_bytes_per_clock": PACKETS * size / in_clocks,
                "output_bytes_per_clock": PACKETS * size / out_clocks,
                "clocks_per_packet": in_clocks / PACKETS,
                "beats_per_packet": 1 + (AAD_BYTES + size) // BLOCK,
            }
        figures["throughput"] = rates
        Path(os.environ["AES_GCM_BENCH_OUT"]).write_text(json.dumps(figures))


##############
# Command    #
##############


def _measure() -> dict:
    from test_aes_gcm import build

    from hil.sim import run_cocotb_tests

    build_dir = build({})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        run_cocotb_tests(
            "aes_gcm",
            build_dir,
            Path(__file__).stem,
            Path(__file__).parent,
            extra_env={"AES_GCM_BENCH_OUT": str(out), "AES_GCM_OUT_DEPTH": "32"},
        )
        return json.loads(out.read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--synth", action="store_true", help="run Yosys (synth_xilinx) too")
    args = p.parse_args()

    start = time.perf_counter()
    fig = _measure()
    print(f"aes_gcm (OUT_DEPTH=32), measured in simulation [{time.perf_counter() - start:.0f} s]")
    print("  throughput, back-to-back packets, 16 B AAD each, new key each, no stalls:")
    for size, r in fig["throughput"].items():
        print(
            f"    {int(size):5d} B payload: {r['input_bytes_per_clock']:6.2f} B/clock in, "
            f"{r['output_bytes_per_clock']:6.2f} B/clock out, "
            f"{r['clocks_per_packet']:.1f} clocks a packet of {r['beats_per_packet']} input beats"
        )
    print("  latency (clocks between transfer edges, m_ready_i high):")
    rows = (
        ("header in -> first payload out (1 AAD block)", "latency_header_to_first_text"),
        ("payload block in -> same block out", "latency_first_text_in_to_out"),
        ("last input beat -> tag out", "latency_last_in_to_tag"),
        ("empty packet: header in -> tag out", "latency_empty_packet_header_to_tag"),
    )
    for label, name in rows:
        print(f"    {label:46s} {fig[name]}")

    sys.path.insert(0, str(SYNTH_DIR))
    import synth

    cached = REPO / "build" / "synth" / "aes_gcm.figures.json"
    if args.synth:
        res = synth.synthesise("aes_gcm", {"OUT_DEPTH": 32})
        cached.write_text(json.dumps({"top": "aes_gcm", "parameters": {"OUT_DEPTH": 32}, **res}))
        print("  yosys synth_xilinx (xc7), " + synth.format_figures("aes_gcm", res))
    elif cached.exists():
        res = json.loads(cached.read_text())
        print("  yosys synth_xilinx (xc7), last run: " + synth.format_figures("aes_gcm", res))
    else:
        print("  yosys figures: run with --synth (or hdl/aes_gcm/synth.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
