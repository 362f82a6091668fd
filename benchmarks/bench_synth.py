"""Yosys resource figures of the endpoint and of its AES-256-GCM engine (``hil synth``).

    python benchmarks/bench_synth.py            # figures of the last runs in build/synth/
    python benchmarks/bench_synth.py --run      # synthesise both first (slow: ~25 min, 1 core)

Prints, for ``hil_ep`` (default parameters) and ``aes_gcm`` (OUT_DEPTH=32, as ide_tlp
instantiates it): LUTs (logic, LUT RAM, shift registers), flip-flops, block RAM tiles, DSP
slices, CARRY4 and MUXF7/8 cells, inferred latches and Yosys's wall time, from ``synth_xilinx
-family xc7 -flatten`` after the ``read_slang`` front end; then the engine's share of the
endpoint. Without ``--run`` it shows the figures the last ``--run`` (or ``hil synth TOP
--json build/synth/TOP.figures.json``) stored.
"""

from __future__ import annotations

import argparse
import json
import sys

from hil import synth

RUNS = (("hil_ep", {}), ("aes_gcm", {"OUT_DEPTH": 32}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", action="store_true", help="run Yosys (synth_xilinx) first")
    args = p.parse_args()

    figures = {}
    for top, params in RUNS:
        stored = synth.BUILD / f"{top}.figures.json"
        if args.run:
            res = synth.synthesise(top, params)
            stored.write_text(json.dumps({"top": top, "parameters": params, **res}, indent=2))
        elif stored.exists():
            res = json.loads(stored.read_text())
        else:
            print(f"{top}: no figures yet (python benchmarks/bench_synth.py --run)")
            continue
        figures[top] = res
        print("yosys synth_xilinx (xc7), " + synth.format_figures(top, res))

    if len(figures) == len(RUNS):
        ep, eng = figures["hil_ep"], figures["aes_gcm"]
        shares = ", ".join(
            f"{name} {100 * eng[key] / ep[key]:.0f} %"
            for name, key in (("LUT", "lut"), ("FF", "ff"))
            if ep[key]
        )
        print(f"the engine's share of the endpoint: {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
