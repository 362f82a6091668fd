"""One rig's simulation: the cached Verilator build of its RTL top, run through cocotb's runner
with :mod:`hil.sim.entry` for a vector, a configuration server or an spdm-emu socket server."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RigError
from ..rigs import Rig
from . import ENDPOINT_TOP

if TYPE_CHECKING:
    from ..serve import ServeOptions

__all__ = ["Simulation"]


class Simulation:
    """The simulated endpoint (or FPGA top) a rig file describes, on its cached Verilator build:
    run one vector, serve configuration accesses (the virtual rig's device), or serve the
    spdm-emu socket protocol (``hil serve``)."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig

        self.top = rig.sim.get("top", ENDPOINT_TOP)
        # hil_fpga carries the DSM and firmware register ports on its UART: the firmware runs
        # at the far end of a pseudo-terminal (the virtual rig's lab controller).
        self.uart = self.top == "hil_fpga"
        self._build_dir: Path | None = None

    def build(self) -> Path:
        from . import build_hdl, rtl_sources

        if self._build_dir is None:
            self._build_dir = build_hdl(
                self.top,
                rtl_sources(self.top),
                self.rig.sim.get("parameters", {}),
            )
        return self._build_dir

    def info(self) -> dict[str, Any]:
        from . import build_key, rtl_sources, verilator_version, wave_format

        return {
            "simulator": "verilator",
            "simulator_version": verilator_version(),
            "hdl_top": self.top,
            "hdl_build": build_key(
                self.top,
                rtl_sources(self.top),
                self.rig.sim.get("parameters", {}),
                True,
            ),
            "hdl_parameters": self.rig.sim.get("parameters", {}),
            "wave_format": wave_format(),
            "firmware": self.rig.firmware,
        }

    def job(self, **extra: Any) -> dict[str, Any]:
        return {
            "rig": self.rig.name,
            "kind": self.rig.kind,
            "provides": sorted(self.rig.provides),
            "settings": self.rig.settings,
            "clock_period_ns": self.rig.sim.get("clock_period_ns", 4.0),
            "dsm_latency_ns": self.rig.sim.get("dsm_latency_ns", 0.0),
            "config_path": self.rig.sim.get("config_path", "tlp"),
            "firmware": self.rig.firmware,
            "hdl_build": self.info()["hdl_build"],
            "wall_timeout_s": self.rig.sim.get("wall_timeout_s", 600),
            **extra,
        }

    def uart_clks_per_bit(self) -> int:
        """The UART's bit time in clock cycles: the ``CLKS_PER_BIT`` the rig builds with."""
        cpb = self.rig.sim.get("parameters", {}).get("CLKS_PER_BIT")
        if not isinstance(cpb, int) or cpb < 4:
            raise RigError(
                f"rig {self.rig.name}: [sim] parameters must set CLKS_PER_BIT (>= 4) for "
                f"{self.top}'s UART"
            )
        return cpb

    def uart_linger_ns(self) -> float:
        """How long simulated time runs on after the last UART or configuration activity: long
        enough for ``hil_fpga`` to react to anything, so a board quiet that long does nothing
        more until something reaches it.  The slowest reactions: a whole object moving between
        the mailbox and the bridge's buffer before its frame starts or after its frame ended
        (1 DW a cycle; up to 2 while a response is delivered, plus the mailbox's 3-cycle
        Discovery stalls), and a telemetry frame held for its gap (``TEL_GAP_CYCLES``); twice
        the slower of them, and a few characters' time."""
        params = self.rig.sim.get("parameters", {})
        depth = max(
            int(params.get("DOE_WR_DEPTH_DW", 1024)), int(params.get("DOE_RD_DEPTH_DW", 1024))
        )
        obj_dw = int(params.get("UART_MAX_OBJ_DW", min(depth, 4096)))
        clk_hz = int(params.get("CLK_HZ", 250_000_000))
        tel_gap = int(params.get("TEL_GAP_CYCLES", clk_hz // 100))
        cycles = 2 * max(2 * obj_dw + 8, tel_gap) + 4 * 10 * self.uart_clks_per_bit()
        return cycles * float(self.rig.sim.get("clock_period_ns", 4.0))

    def simulate(self, testcase: str, work: Path, job: dict[str, Any], **kwargs: Any) -> None:
        """Run one test of :mod:`hil.sim.entry` on the cached build, with ``job`` as its input."""
        from cocotb_tools.runner import get_runner

        (work / "job.json").write_text(json.dumps(job))
        get_runner("verilator").test(
            test_module="hil.sim.entry",
            testcase=testcase,
            hdl_toplevel=self.top,
            hdl_toplevel_lang="verilog",
            build_dir=self.build(),
            test_dir=work,
            extra_env={
                "HIL_JOB": str(work / "job.json"),
                # cocotb hands every module imported after it starts to pytest's assertion
                # rewriter; without a bytecode cache (PYTHONDONTWRITEBYTECODE) that is a parse
                # and compile of hil, cryptography and cocotbext in every simulator process,
                # i.e. every vector.  Vectors run without it on every other rig, and an
                # AssertionError is a fail with or without it: off unless asked for.
                "COCOTB_REWRITE_ASSERTION_FILES": os.environ.get(
                    "COCOTB_REWRITE_ASSERTION_FILES", ""
                ),
            },
            timescale=("1ns", "1ps"),
            **kwargs,
        )

    def serve_config(self, socket_path: Path, uart_link: Path | None = None) -> None:
        """Run the simulated endpoint serving config accesses on ``socket_path`` (the virtual
        rig's device), until a client ends it.  A top with a UART gets a pseudo-terminal on its
        pins, published as the symlink ``uart_link``."""
        work = Path(tempfile.mkdtemp(prefix="hil-virtual-"))
        try:
            job = self.job(config_socket=str(socket_path), wall_timeout_s=None)
            if self.uart:
                if uart_link is None:
                    raise RigError(f"{self.top} has a UART: serve_config needs uart_link")
                job["uart"] = {
                    "clks_per_bit": self.uart_clks_per_bit(),
                    "link": str(uart_link),
                    "linger_ns": self.uart_linger_ns(),
                }
            self.simulate("serve_config", work, job, log_file=work / "sim.log")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def serve(self, host: str, port: int, *, options: ServeOptions | None = None) -> int:
        """Run the simulated endpoint as an spdm-emu socket responder (``hil serve``)."""
        from ..serve import ServeOptions

        options = options or ServeOptions()
        work = Path(tempfile.mkdtemp(prefix="hil-serve-"))
        try:
            job = self.job(
                serve={"host": host, "port": port, **options.to_json()},
                cert_chain=str(options.cert_chain) if options.cert_chain else None,
                key=str(options.key) if options.key else None,
                wall_timeout_s=None,
            )
            self.simulate("serve_socket", work, job)
            return 0
        finally:
            shutil.rmtree(work, ignore_errors=True)
