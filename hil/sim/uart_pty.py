"""The simulated board's UART on a pseudo-terminal: what a USB-serial cable is in the lab.

The simulation holds the master end of a pty; the lab code opens the slave end by path with
pyserial (``hil.lab.serial_link``), exactly as it opens ``/dev/ttyUSB1``.  Bits go to and come
from the DUT's ``uart_rx_i``/``uart_tx_o`` at ``clks_per_bit`` clock cycles per bit (8N1), timed
with ``Timer`` so no Python runs per clock.  The master is read without blocking: the simulation
never waits on the controller.
"""

from __future__ import annotations

import logging
import os
import pty
import tty
from pathlib import Path

import cocotb
from cocotb.handle import HierarchyObject
from cocotb.triggers import Event, FallingEdge, First, Timer
from cocotb.utils import get_sim_time

__all__ = ["UartPty"]

log = logging.getLogger("hil.sim.uart_pty")


class UartPty:
    """Bridge ``dut.uart_tx_o``/``dut.uart_rx_i`` to a new pseudo-terminal.

    ``busy()`` says whether bits are in flight, or were lately, or the device was written to
    lately (``linger_ns``: long enough for the bridge to start a frame): the serving loop keeps
    simulated time running until the line has been quiet that long.  ``idle()`` adds that the
    controller has taken every byte sent to it and sent none not yet taken here: nothing moves
    again until the host or the controller does something (the deadline of a silence check).
    """

    def __init__(
        self,
        dut: HierarchyObject,
        *,
        clks_per_bit: int,
        clock_period_ns: float,
        linger_ns: float = 50_000.0,
        poll_ns: float = 10_000.0,
    ) -> None:
        self.dut = dut
        self.bit_ns = clks_per_bit * clock_period_ns
        self.linger_ns = linger_ns
        self.poll_ns = poll_ns
        self.master, self._slave = pty.openpty()
        tty.setraw(self.master)
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.closed = False
        self.to_dut = bytearray()  # from the controller, not yet on uart_rx_i
        self.from_dut = bytearray()  # from uart_tx_o, not yet taken by the pty
        self.bytes_in = 0
        self.bytes_out = 0
        self.pty_read = 0  # bytes taken from the controller (the master's reads)
        self.pty_written = 0  # bytes handed to the controller (the master's writes)
        self._rx_char = False  # a character is arriving on uart_tx_o
        self._tx_char = False  # a character is leaving on uart_rx_i
        self.framing_errors = 0
        self._last_activity_ns = 0.0
        self._arrived = Event()  # bytes from the controller wait in to_dut
        dut.uart_rx_i.value = 1
        cocotb.start_soon(self._receive())
        cocotb.start_soon(self._transmit())

    # -- published -------------------------------------------------------------------------
    def link(self, path: Path) -> None:
        """Publish the slave's path as the symlink ``path`` (made atomically)."""
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.path)
        tmp.replace(path)

    def fileno(self) -> int:
        """The master: readable when the controller sent something (for ``select``)."""
        return self.master

    def busy(self) -> bool:
        if self.closed:
            return False
        if self.to_dut or self.from_dut or self._rx_char or self._tx_char:
            return True
        return get_sim_time("ns") - self._last_activity_ns < self.linger_ns

    def idle(self, peer_received: int, peer_sent: int) -> bool:
        """Nothing in flight either way: the line and the bridge quiet for ``linger_ns`` of
        simulated time, and the controller's byte counts (``peer_received``, mod 2**24, and
        ``peer_sent``, mod 2**32) equal to what this end wrote and read, so no byte waits in
        the pseudo-terminal.  Never once the cable is pulled: simulated time then stands still
        between accesses, so quiet proves nothing."""
        if self.closed:
            return False
        self.pump()
        return (
            not self.busy()
            and peer_received == self.pty_written & 0xFFFFFF
            and peer_sent == self.pty_read & 0xFFFFFFFF
        )

    def close(self) -> None:
        """Pull the cable: the controller's port reports a hang-up."""
        if not self.closed:
            self.closed = True
            os.close(self.master)
            os.close(self._slave)

    # -- the pty side ----------------------------------------------------------------------
    def pump(self) -> None:
        """Move bytes between the pty and the queues, without blocking."""
        if self.closed:
            return
        try:
            while True:
                data = os.read(self.master, 4096)
                if not data:
                    break
                self.to_dut += data
                self.pty_read += len(data)
                self._arrived.set()
                self.touch()
        except BlockingIOError:
            pass
        except OSError as exc:  # EIO: no process holds the slave open
            log.debug("pty read: %s", exc)
        if self.from_dut:
            try:
                n = os.write(self.master, self.from_dut)
                del self.from_dut[:n]
                self.pty_written += n
            except BlockingIOError:
                pass  # the controller is not reading: keep the bytes
            except OSError as exc:
                log.debug("pty write: %s", exc)

    def touch(self) -> None:
        self._last_activity_ns = get_sim_time("ns")

    # -- the DUT side ----------------------------------------------------------------------
    async def _receive(self) -> None:
        """uart_tx_o to the pty: a falling edge starts a character; sample mid-bit."""
        line = self.dut.uart_tx_o
        while True:
            await FallingEdge(line)
            self.touch()
            self._rx_char = True
            try:
                await Timer(self.bit_ns / 2, "ns")
                if int(line.value):
                    continue  # a glitch, not a start bit
                byte = 0
                for i in range(8):
                    await Timer(self.bit_ns, "ns")
                    byte |= int(line.value) << i
                await Timer(self.bit_ns, "ns")
            finally:
                self._rx_char = False
                self.touch()
            if not int(line.value):
                self.framing_errors += 1
                continue
            self.bytes_out += 1
            if not self.closed:
                self.from_dut.append(byte)
                self.pump()

    async def _transmit(self) -> None:
        """The pty to uart_rx_i, one 8N1 character after another; poll while idle."""
        rx = self.dut.uart_rx_i
        while not self.closed:
            self.pump()
            if not self.to_dut:
                self._arrived.clear()
                await First(self._arrived.wait(), Timer(self.poll_ns, "ns"))
                continue
            byte = self.to_dut.pop(0)
            self._tx_char = True
            # One wait per run of equal bits (start, LSB first, stop), not one per bit.
            bits = (0, *((byte >> i) & 1 for i in range(8)), 1)
            i = 0
            while i < len(bits):
                run = 1
                while i + run < len(bits) and bits[i + run] == bits[i]:
                    run += 1
                rx.value = bits[i]
                await Timer(run * self.bit_ns, "ns")
                i += run
            self._tx_char = False
            self.bytes_in += 1
            self.touch()
        rx.value = 1
