"""The UART framing, and the firmware served over a real pseudo-terminal with pyserial."""

from __future__ import annotations

import asyncio
import os
import pty
import struct
import tty

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.codec.doe import DataObject
from hil.codec.uart import Channel, Deframer, Frame, Telemetry
from hil.firmware import Dsm
from hil.lab.serial_link import SerialLink, SerialVanished, UartDsm


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
    os.close(master)
    os.close(slave)


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
