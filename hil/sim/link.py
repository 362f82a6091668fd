"""A transaction-layer PCIe link between cocotbext-pcie's root port and the hard-IP model.

cocotbext-pcie's ``SimPort`` simulates the data-link layer too: sequence numbers, ACK/NAK and
flow-control DLLPs, a retry buffer and timers, several coroutines per TLP.  None of that is
what this project tests (the hard IP's link is the FPGA vendor's), and it was most of the
Python time of a configuration access.  :class:`TlpLinkPort` keeps what matters: every TLP is
encoded to its wire bytes by the sender's port and decoded from them at the receiver's
(cocotbext-pcie's own ``Tlp.pack``/``Tlp.unpack``), delivered in order to the receiving
function's handler, the root complex's and the device's logic unchanged on both sides.

    root_port, device = connect_transaction_link(rc, Device(hardip))
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import cocotb
from cocotb.triggers import Event
from cocotbext.pcie.core import Device, RootComplex
from cocotbext.pcie.core.bridge import RootPort
from cocotbext.pcie.core.port import SimPort
from cocotbext.pcie.core.tlp import Tlp

__all__ = ["TlpLinkPort", "connect_transaction_link"]

_IDLE_FOREVER_STEPS = 3_600 * 10**12  # an hour of simulated time, in 1 ps steps


class TlpLinkPort:
    """One end of a link that carries TLPs as bytes, without the data-link layer.

    It offers what cocotbext-pcie's devices and bridges use of a port: ``send``, ``connect``,
    ``rx_handler``, ``parent`` and ``log``.
    """

    def __init__(self) -> None:
        self.log = logging.getLogger("hil.sim.link")
        self.parent: Any = None
        self.rx_handler: Callable[[Tlp], Awaitable[None]] | None = None
        self.other: TlpLinkPort | None = None
        self.sent = 0
        self.received = 0
        self._rx: deque[bytes] = deque()
        self._rx_event = Event()
        self._task = cocotb.start_soon(self._run_receive())

    def connect(self, other: Any) -> None:
        if not isinstance(other, TlpLinkPort):
            other.connect(self)  # a device or bridge: connect to its port
            return
        if self.other is not None or other.other is not None:
            raise RuntimeError("a link port is connected once")
        self.other, other.other = other, self

    async def send(self, tlp: Tlp) -> None:
        """Put ``tlp`` on the link: its wire bytes reach the other end's handler, in order."""
        if self.other is None:
            raise RuntimeError("link port not connected")
        tlp.release_fc()  # no flow-control credits on this link: release at once
        self.sent += 1
        self.other._rx.append(bytes(tlp.pack()))
        self.other._rx_event.set()

    async def _run_receive(self) -> None:
        while True:
            if not self._rx:
                self._rx_event.clear()
                await self._rx_event.wait()
            tlp = Tlp.unpack(self._rx.popleft())
            self.received += 1
            if self.rx_handler is None:
                raise RuntimeError("link port has no receive handler")
            await self.rx_handler(tlp)


def _retire(port: SimPort) -> None:
    """A ``SimPort`` that is replaced before it is used: its data-link coroutines (already
    started by its constructor) find nothing to send and no timer worth waking for."""
    port.fc_initialized = True
    port.fc_idle_timer_steps = _IDLE_FOREVER_STEPS


def connect_transaction_link(rc: RootComplex, device: Device) -> tuple[RootPort, Device]:
    """A new root port of ``rc`` linked to ``device`` by a :class:`TlpLinkPort` pair.

    Call before the first await after making ``device``: the ``SimPort`` each side was built
    with is retired before its coroutines first run.
    """
    root_port = rc.make_port()
    _retire(root_port.downstream_port)
    root_port.set_downstream_port(TlpLinkPort())
    _retire(device.upstream_port)
    device.set_port(TlpLinkPort())
    root_port.downstream_port.connect(device.upstream_port)
    return root_port, device
