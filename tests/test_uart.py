"""The UART framing, and the firmware served over a real pseudo-terminal with pyserial."""

from __future__ import annotations

import asyncio
import os
import pty
import struct
import time
import tty

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.codec.doe import DataObject
from hil.codec.uart import Channel, Deframer, Frame, Telemetry
from hil.firmware import Dsm
from hil.lab.serial_link import SerialFirmwareHost, SerialLink, SerialVanished, UartDsm


@given(st.lists(st.binary(max_size=64), max_size=6), st.binary(max_size=30), st.integers(1, 9))
def test_frames_survive_splits_and_garbage(payloads: list[bytes], junk: bytes, chunk: int) -> None:
    stream = junk + b"\x00" + b"".join(Frame(1, i, p).encode() for i, p in enumerate(payloads))
    d = Deframer()
    got = []
    for i in range(0, len(stream), chunk):
        got += d.feed(stream[i : i + chunk])
    assert [f.payload for f in got] == payloads


def test_a_damaged_frame_is_dropped_and_the_next_one_read() -> None:
    good = Frame(Channel.TELEMETRY, 1, b"abc").encode()
    bad = bytearray(Frame(Channel.TELEMETRY, 2, b"xyz").encode())
    bad[2] ^= 0x40
    d = Deframer()
    frames = d.feed(bytes(bad) + good)
    assert [f.seq for f in frames] == [1]
    assert d.dropped == 1 and "CRC" in d.last_error


def test_telemetry_round_trip() -> None:
    t = Telemetry(tdi_state=2, streams=(2, 0), doe_errors=1, ide_check_failures=3, uptime_ms=99)
    assert Telemetry.decode(t.encode()) == t


@pytest.fixture
def pty_pair():
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass  # closed by the test


def _device_reads(master: int, deframer: Deframer) -> list[Frame]:
    out: list[Frame] = []
    for _ in range(200):
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            data = b""
        out += deframer.feed(data)
        if out:
            return out
    return out


def test_firmware_served_over_a_pty(pty_pair) -> None:
    master, path = pty_pair
    os.set_blocking(master, False)
    link = SerialLink(path)
    bridge = UartDsm(link)
    dsm = Dsm(hdl_build="uart")
    request = DataObject(1, 1, bytes([0x10, 0x84, 0, 0]))  # SPDM GET_VERSION

    async def scenario() -> None:
        # The "board": noise, then a DSM request, then telemetry.
        os.write(
            master, b"\x13\x37noise\x00" + Frame(Channel.DSM_REQUEST, 0, request.encode()).encode()
        )
        assert await bridge.serve_one(dsm.handle, 2.0)
        deframer = Deframer()
        frames = []
        for _ in range(100):
            frames = _device_reads(master, deframer)
            if frames:
                break
            await asyncio.sleep(0.01)
        (rsp,) = frames
        assert rsp.channel == Channel.DSM_RESPONSE
        assert DataObject.decode(rsp.payload).payload[1] == 0x04  # VERSION
        os.write(
            master, Frame(Channel.TELEMETRY, 1, Telemetry(1, (0, 0), 0, 0, 5).encode()).encode()
        )
        assert await bridge.serve_one(dsm.handle, 2.0)
        assert bridge.telemetry[-1].tdi_state == 1
        # Register read: the board answers REG_DATA for the address asked.
        task = asyncio.ensure_future(bridge.reg_read(0x40))
        await asyncio.sleep(0.05)
        (req,) = _device_reads(master, Deframer())
        assert req.channel == Channel.REG_READ and struct.unpack("<I", req.payload) == (0x40,)
        os.write(master, Frame(Channel.REG_DATA, 2, struct.pack("<II", 0x40, 7)).encode())
        assert await task == 7

    asyncio.run(scenario())
    assert link.deframer.dropped == 1  # the noise
    link.close()


def test_a_vanished_port_is_named(pty_pair) -> None:
    _, path = pty_pair
    link = SerialLink(path)
    link.port.close()
    with pytest.raises(SerialVanished, match="vanished"):
        link.send(Channel.REG_READ, b"\x00\x00\x00\x00")
    with pytest.raises(SerialVanished, match="cannot open"):
        SerialLink("/dev/nonexistent-tty")


class _Board:
    """The device end of a pty, polled by the test: frames in, frames out."""

    def __init__(self, master: int) -> None:
        self.master = master
        os.set_blocking(master, False)
        self.deframer = Deframer()
        self.seq = 0

    def send(self, channel: int, payload: bytes = b"") -> None:
        os.write(self.master, Frame(channel, self.seq, payload).encode())
        self.seq += 1

    async def recv(self, channel: int, timeout_s: float = 5.0) -> Frame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                data = b""
            for frame in self.deframer.feed(data):
                if frame.channel == channel:
                    return frame
            await asyncio.sleep(0.005)
        raise AssertionError(f"no frame on channel {channel:#x}")


def test_the_firmware_host_serves_registers_and_telemetry(pty_pair) -> None:
    """The controller's thread: the firmware's register reads go over the line, telemetry is
    kept and asked for, and a vanished port is named."""
    master, path = pty_pair
    board = _Board(master)
    seen_regs: list[int] = []

    def make_firmware(regs):
        async def firmware(request: DataObject) -> DataObject:
            value = await regs.read(0x040)  # the firmware asks the hardware something
            seen_regs.append(value)
            return DataObject(1, 1, struct.pack("<I", value))

        return firmware

    host = SerialFirmwareHost(path, make_firmware=make_firmware).start()
    try:

        async def scenario() -> None:
            board.send(Channel.DSM_REQUEST, DataObject(1, 1, b"\x10\x84\x00\x00").encode())
            read = await board.recv(Channel.REG_READ)
            assert struct.unpack("<I", read.payload) == (0x040,)
            board.send(Channel.REG_DATA, struct.pack("<II", 0x040, 0xCAFE))
            rsp = await board.recv(Channel.DSM_RESPONSE)
            assert DataObject.decode(rsp.payload).payload == struct.pack("<I", 0xCAFE)
            # Telemetry sent unasked is kept; asking sends TELEMETRY_REQ and returns the answer.
            board.send(Channel.TELEMETRY, Telemetry(0, (0, 2), 1, 0, 10).encode())
            for _ in range(500):
                if host.received():
                    break
                await asyncio.sleep(0.01)
            assert [t.streams for t in host.received()] == [(0, 2)]
            task = asyncio.ensure_future(host.request(5.0))
            assert (await board.recv(Channel.TELEMETRY_REQ)).payload == b""
            board.send(Channel.TELEMETRY, Telemetry(2, (2, 2), 1, 0, 11).encode())
            assert (await task).tdi_state == 2
            assert [t.uptime_ms for t in host.received()] == [10, 11]

        asyncio.run(scenario())
        assert seen_regs == [0xCAFE]
        # The cable is pulled: the thread ends, and every use names the port.
        os.close(master)
        for _ in range(200):
            if host.error is not None:
                break
            time.sleep(0.01)
        assert host.error is not None and path in str(host.error)
        with pytest.raises(SerialVanished, match="vanished"):
            host.received()
    finally:
        host.stop()


def test_an_answer_to_an_aborted_request_is_not_sent(pty_pair) -> None:
    """The host aborted while the firmware worked: that answer would land in the emptied
    mailbox and be read as the next exchange's, so it is dropped; the next one goes out."""
    master, path = pty_pair
    board = _Board(master)

    def make_firmware(regs):
        async def firmware(request: DataObject) -> DataObject:
            await asyncio.sleep(0.3)  # long enough for the abort notice to arrive meanwhile
            return DataObject(1, 1, request.payload)

        return firmware

    host = SerialFirmwareHost(path, make_firmware=make_firmware).start()
    try:

        async def scenario() -> None:
            board.send(Channel.DSM_REQUEST, DataObject(1, 1, b"old!").encode())
            await asyncio.sleep(0.1)
            board.send(Channel.DSM_ABORT)
            board.send(Channel.DSM_REQUEST, DataObject(1, 1, b"new!").encode())
            rsp = await board.recv(Channel.DSM_RESPONSE)
            assert DataObject.decode(rsp.payload).payload == b"new!"

        asyncio.run(scenario())
        assert host.uart.served == 2 and host.uart.aborted == 1
    finally:
        host.stop()


def test_the_frame_log_keeps_headers_and_never_register_write_data(pty_pair) -> None:
    """What a failed vector's serial.txt holds: one line a frame each way, a register's
    address but never the value written (key slots are filled by register writes)."""
    master, path = pty_pair
    link = SerialLink(path, 115200)
    try:
        mark = link.frames_logged
        key_dw = 0x5AC3_E11D
        link.send(Channel.REG_WRITE, struct.pack("<II", 0x812, key_dw))
        obj = DataObject(1, 1, bytes(range(12)))
        os.write(master, Frame(Channel.DSM_REQUEST, 7, obj.encode()).encode())
        for _ in range(200):
            link._poll()
            if link.frames_logged - mark == 2:
                break
        lines = link.frames_since(mark)
        assert len(lines) == 2, lines
        assert "-> REG_WRITE" in lines[0] and "addr=0x812" in lines[0]
        assert "<- DSM_REQUEST seq=7" in lines[1] and obj.encode()[:8].hex() in lines[1]
        text = "\n".join(lines)
        assert f"{key_dw:08x}" not in text and struct.pack("<I", key_dw).hex() not in text
        assert link.frames_since(link.frames_logged) == []
    finally:
        link.close()


def test_the_link_says_when_nothing_is_in_flight(pty_pair) -> None:
    """quiet_counts: None while a DSM request waits or is being served; otherwise the bytes
    received and sent, which match what the board's end wrote and read (the virtual rig's
    device_idle compares them with the simulation's own counts)."""
    master, path = pty_pair
    os.set_blocking(master, False)
    link = SerialLink(path)
    bridge = UartDsm(link)
    dsm = Dsm(hdl_build="uart")
    seen_while_serving: list[object] = []

    async def firmware(obj: DataObject) -> DataObject | None:
        seen_while_serving.append(link.quiet_counts())
        return await dsm.handle(obj)

    async def scenario() -> None:
        assert link.quiet_counts() == (0, 1)  # the delimiter sent on opening
        wire = Frame(Channel.DSM_REQUEST, 0, DataObject(1, 1, bytes([0x10, 0x84, 0, 0])).encode())
        os.write(master, wire.encode())
        for _ in range(200):
            if link.waiting(Channel.DSM_REQUEST):
                break
            await asyncio.sleep(0.005)
        assert link.quiet_counts() is None  # a request waits to be served
        assert await bridge.serve_one(firmware, 2.0)
        assert seen_while_serving == [None]  # and while it was served
        got = link.quiet_counts()
        assert got is not None
        board_read = b""
        for _ in range(200):
            try:
                board_read += os.read(master, 65536)
            except BlockingIOError:
                await asyncio.sleep(0.005)
            if len(board_read) == got[1]:
                break
        assert got == (len(wire.encode()), len(board_read))
        (rsp,) = Deframer().feed(board_read)
        assert rsp.channel == Channel.DSM_RESPONSE

    asyncio.run(scenario())
    link.close()
