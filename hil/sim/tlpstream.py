"""The endpoint's TLP streams driven from cocotb (hdl/ide_tlp/README.md, "TLP streams").

A packet is one TLP as bytes in wire order; beat *n* carries bytes 16n .. 16n+15, byte *k* of
the beat in bits [8k+7:8k], ``keep`` marking the valid low bytes of the last beat.
"""

from __future__ import annotations

import random
from collections import deque

from cocotb.handle import HierarchyObject
from cocotb.triggers import Event, First, ReadOnly, RisingEdge, Timer

__all__ = ["TlpSink", "TlpSource"]

BEAT = 16


def _beats(tlp: bytes) -> list[tuple[int, int, bool]]:
    out = []
    for pos in range(0, len(tlp), BEAT):
        chunk = tlp[pos : pos + BEAT]
        keep = (1 << len(chunk)) - 1
        out.append((int.from_bytes(chunk, "little"), keep, pos + BEAT >= len(tlp)))
    return out


class TlpSource:
    """Drives ``<prefix>_{data,keep,valid,last}_i`` and watches ``<prefix>_ready_o``."""

    def __init__(self, dut: HierarchyObject, prefix: str, clk: HierarchyObject) -> None:
        self.clk = clk
        self.data = getattr(dut, f"{prefix}_data_i")
        self.keep = getattr(dut, f"{prefix}_keep_i")
        self.valid = getattr(dut, f"{prefix}_valid_i")
        self.last = getattr(dut, f"{prefix}_last_i")
        self.ready = getattr(dut, f"{prefix}_ready_o")
        self.valid.value = 0
        self.data.value = 0
        self.keep.value = 0
        self.last.value = 0
        self.sent = 0

    async def send(self, tlp: bytes, *, gap_probability: float = 0.0) -> None:
        """Hand over one TLP; returns when its last beat has been taken."""
        if not tlp:
            raise ValueError("an empty TLP")
        for data, keep, last in _beats(bytes(tlp)):
            while gap_probability and random.random() < gap_probability:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.data.value = data
            self.keep.value = keep
            self.last.value = int(last)
            self.valid.value = 1
            while True:
                await RisingEdge(self.clk)
                if int(self.ready.value):  # the value the edge sampled
                    break
        self.valid.value = 0
        self.last.value = 0
        self.sent += 1


class TlpSink:
    """Collects packets from ``<prefix>_{data,keep,valid,last}_o``; drives ``<prefix>_ready_i``."""

    def __init__(
        self,
        dut: HierarchyObject,
        prefix: str,
        clk: HierarchyObject,
        *,
        stall_probability: float = 0.0,
    ) -> None:
        self.clk = clk
        self.data = getattr(dut, f"{prefix}_data_o")
        self.keep = getattr(dut, f"{prefix}_keep_o")
        self.valid = getattr(dut, f"{prefix}_valid_o")
        self.last = getattr(dut, f"{prefix}_last_o")
        self.ready = getattr(dut, f"{prefix}_ready_i")
        self.stall_probability = stall_probability
        self.packets: deque[bytes] = deque()
        self.arrived = Event()
        self.ready.value = 1

    async def run(self) -> None:
        """Take beats; while nothing is offered, wait for valid instead of every clock."""
        buf = bytearray()
        ready = 1
        while True:
            await RisingEdge(self.clk)
            valid = int(self.valid.value)  # the value the edge sampled
            if ready and valid:
                keep = int(self.keep.value)
                n = keep.bit_length()
                if keep != (1 << n) - 1:
                    raise AssertionError(f"keep {keep:#06x} is not a contiguous low prefix")
                buf += int(self.data.value).to_bytes(BEAT, "little")[:n]
                if int(self.last.value):
                    self.packets.append(bytes(buf))
                    buf.clear()
                    self.arrived.set()
            if self.stall_probability:
                ready = 0 if random.random() < self.stall_probability else 1
                self.ready.value = ready
            elif not valid:
                await ReadOnly()
                if not int(self.valid.value):
                    await RisingEdge(self.valid)

    async def recv(self, timeout_ns: float = 100_000) -> bytes | None:
        """The next packet, or None if none arrives within ``timeout_ns`` of simulated time."""
        if not self.packets:
            self.arrived.clear()
            await First(self.arrived.wait(), Timer(timeout_ns, unit="ns"))
        return self.packets.popleft() if self.packets else None
