"""Synthesise the AES-256-GCM engine with Yosys for Xilinx 7-series and print its resources.

    python hdl/aes_gcm/synth.py                       # the engine, OUT_DEPTH=32
    python hdl/aes_gcm/synth.py -P OUT_DEPTH=8
    python hdl/aes_gcm/synth.py ghash                 # one block: a quicker check
    python hdl/aes_gcm/synth.py aes256_enc --json figures.json
    python hdl/aes_gcm/synth.py --netlist build/synth/aes_gcm_yosys.v   # for simulation

The same as ``hil synth aes_gcm`` (``hil/synth.py``, which synthesises every RTL top): the
engine is its default top here. The flow fails if a latch is inferred, before or after
technology mapping; scratch files go to ``build/synth/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# The checkout's package, importable without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hil.synth import (
    add_arguments,
    format_figures,
    run,
    synthesise,
    write_netlist,
)

__all__ = ["TOPS", "format_figures", "main", "synthesise", "write_netlist"]

TOPS = ("aes_gcm", "aes256_enc", "ghash", "aes256_round")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_arguments(p, default_top="aes_gcm")
    args = p.parse_args(argv)
    if args.top not in TOPS:
        p.error(f"top {args.top!r}: the engine's are {', '.join(TOPS)} (else use hil synth)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
