"""hil_fpga: the endpoint behind the hard-IP model, its DSM and register ports on the UART.

The UART pins are bridged to a pseudo-terminal by ``hil.sim.uart_pty`` (what the virtual rig
does); the bench opens the pty's slave end as a controller would and speaks the frames of
:mod:`hil.codec.uart` on it.  Its firmware answers each DSM object with a digest of it, so
every byte crosses the UART both ways checked.  Register reads over the UART are checked
against configuration reads of the same IDE capability words, telemetry against the codec and
the DOE Status register.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tomllib
import tty
from pathlib import Path

import cocotb
from cocotb.queue import Queue
from cocotb.triggers import Timer, with_timeout

from hil import _regs as R
from hil.codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from hil.codec.uart import Channel, Deframer, Frame, Telemetry
from hil.firmware.regs import cap_word
from hil.host import DoeMailbox
from hil.sim._env import REPO_ROOT
from hil.sim.harness import EndpointHarness
from hil.sim.uart_pty import UartPty

#: The parameters the virtual rig builds hil_fpga with, so that this bench and the rig share one
#: simulator build (and this bench tests what the rig runs).
PARAMS = tomllib.loads((REPO_ROOT / "rigs" / "virtual-fpga.toml").read_text())["sim"]["parameters"]
CLOCK_NS = 4.0


class Controller:
    """The lab controller's end of the pty: frames out, frames in (by channel)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.deframer = Deframer()
        self.queues: dict[int, Queue[Frame]] = {}
        self.seq = 0
        cocotb.start_soon(self._poll())

    def queue(self, channel: int) -> Queue[Frame]:
        return self.queues.setdefault(channel, Queue())

    async def _poll(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                data = b""
            for frame in self.deframer.feed(data):
                self.queue(frame.channel).put_nowait(frame)
            await Timer(500, "ns")

    def send(self, channel: int, payload: bytes = b"") -> None:
        os.write(self.fd, Frame(channel, self.seq, payload).encode())
        self.seq = (self.seq + 1) & 0xFF

    async def recv(self, channel: int, timeout_us: float = 500) -> Frame:
        return await with_timeout(self.queue(channel).get(), timeout_us, "us")

    async def telemetry(self) -> Telemetry:
        self.send(Channel.TELEMETRY_REQ)
        while True:  # the answer is the first telemetry frame after asking
            frame = await self.recv(Channel.TELEMETRY)
            if self.queue(Channel.TELEMETRY).empty():
                return Telemetry.decode(frame.payload)


def digest(request: DataObject) -> DataObject:
    """The bench firmware's answer: the request's SHA-256, then its payload reversed."""
    body = hashlib.sha256(request.encode()).digest() + request.payload[::-1]
    return DataObject(request.vendor_id, request.type, body + bytes(-len(body) % 4))


async def serve_digests(ctl: Controller) -> None:
    while True:
        frame = await ctl.queue(Channel.DSM_REQUEST).get()
        ctl.send(Channel.DSM_RESPONSE, digest(DataObject.decode(frame.payload)).encode())


async def start(dut) -> tuple[EndpointHarness, UartPty, Controller, DoeMailbox]:
    # The UART first: its line idles high through the reset.
    uart = UartPty(dut, clks_per_bit=PARAMS["CLKS_PER_BIT"], clock_period_ns=CLOCK_NS)
    harness = await EndpointHarness.start(dut, clock_period_ns=CLOCK_NS, dsm_port=False)
    ctl = Controller(uart.path)
    mbx = DoeMailbox(
        harness.config, R.DOE_CAP_OFFSET, harness.timebase, timeout_s=2e-3, poll_interval_s=1e-6
    )
    await mbx.init()
    await with_timeout(ctl.recv(Channel.DSM_ABORT), 200, "us")  # the init's abort
    ctl.send(Channel.DSM_ABORT_ACK)  # read: responses count again
    return harness, uart, ctl, mbx


@cocotb.test()
async def dsm_objects_cross_the_uart(dut) -> None:
    """Objects of every size go out as DSM_REQUEST and their answers come back through DOE."""
    _, uart, ctl, mbx = await start(dut)
    cocotb.start_soon(serve_digests(ctl))
    for i, size in enumerate([0, 1, 3, 64, 255, 1000]):
        dtype = DoeType.CMA_SPDM if i % 2 == 0 else DoeType.SECURED_CMA_SPDM
        payload = bytes((7 * i + k) & 0xFF for k in range(size))
        request = DataObject(PCI_SIG_VENDOR_ID, dtype, payload)
        response = await mbx.exchange(request)
        padded = DataObject(request.vendor_id, dtype, request.payload + bytes(-size % 4))
        assert response == digest(padded), f"payload of {size} bytes"
    # Discovery stays in hardware: nothing crosses the UART for it.
    before = uart.bytes_out
    assert (await mbx.discover_one(0)).type == 0
    assert uart.bytes_out == before
    assert ctl.deframer.dropped == 0 and uart.framing_errors == 0


@cocotb.test()
async def abort_and_registers_cross_the_uart(dut) -> None:
    """An abort is a DSM_ABORT frame; register reads over the UART see the IDE capability."""
    harness, _, ctl, mbx = await start(dut)
    await mbx.abort()
    assert (await ctl.recv(Channel.DSM_ABORT)).payload == b""
    for i in range(4):
        ctl.send(Channel.REG_READ, struct.pack("<I", cap_word(i)))
        addr, value = struct.unpack("<II", (await ctl.recv(Channel.REG_DATA)).payload)
        assert addr == cap_word(i)
        assert value == await harness.config.read32(R.IDE_CAP_OFFSET + 4 * i), f"IDE DW {i}"


@cocotb.test()
async def telemetry_reports_the_endpoint(dut) -> None:
    """Telemetry on request matches the reset state; a DOE Error is counted and sent unasked."""
    harness, _, ctl, mbx = await start(dut)
    t = await ctl.telemetry()
    assert (t.tdi_state, t.streams, t.doe_errors, t.ide_check_failures) == (0, (0, 0), 0, 0)
    # A partial write to the Write Data Mailbox sets Error (doe_mbx README).
    await harness.config.write_bytes(R.DOE_CAP_OFFSET + R.DOE_WMBX, b"\x01")
    assert (await mbx.status()).error
    change = Telemetry.decode((await ctl.recv(Channel.TELEMETRY)).payload)
    assert change.doe_errors == 1, change
    assert (await ctl.telemetry()).doe_errors == 1
    await mbx.abort()  # clears Error; the count stays
    assert not (await mbx.status()).error
    assert (await ctl.telemetry()).doe_errors == 1


def test_hil_fpga() -> None:
    """pytest entry: build hil_fpga (cached) and run the cocotb tests above."""
    from hil.sim import build_hdl, rtl_sources, run_cocotb_tests

    build = build_hdl("hil_fpga", rtl_sources("hil_fpga"), PARAMS)
    run_cocotb_tests("hil_fpga", build, "test_hil_fpga", Path(__file__).parent)
