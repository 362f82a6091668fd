#!/usr/bin/env bash
# Build the VCU118 bitstream: writes the RTL list of hil/sim/_env.py (RTL_TOPS["vcu118_top"],
# without the lint stubs) and runs build.tcl in Vivado batch mode.
#
#   hdl/boards/vcu118/build.sh [out_dir] [uart_baud]
#
# Needs Vivado on PATH and the hil package importable (PYTHON, default python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/build}" && cd "${1:-$here/build}" && pwd)
baud=${2:-2000000}
python=${PYTHON:-python3}

"$python" - "$out/sources.f" <<'PY'
import sys

from hil.sim import RTL_TOPS, hdl_root

root = hdl_root()
with open(sys.argv[1], "w") as f:
    for rel in RTL_TOPS["vcu118_top"]:
        if "/stubs/" not in rel:
            f.write(f"{root / rel}\n")
PY

command -v vivado >/dev/null || { echo "vivado not found on PATH" >&2; exit 1; }
cd "$out"
exec vivado -mode batch -nojournal -log "$out/vivado.log" \
  -source "$here/build.tcl" -tclargs "$out" "$out/sources.f" "$baud"
