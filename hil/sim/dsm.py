"""The endpoint's DSM port in simulation: where the device firmware meets the DOE mailbox.

Requests come out of the HDL as whole DOE objects on a valid/ready stream (``dsm_req_*``);
responses go back the same way (``dsm_rsp_*``).  ``dsm_abort_o`` tells the firmware that the
mailbox was aborted: a request half received is dropped.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

import cocotb
from cocotb.handle import HierarchyObject
from cocotb.triggers import RisingEdge, Timer

from ..codec.doe import DataObject
from ..errors import PeerProtocolError

__all__ = ["DsmPort", "Firmware"]

#: The firmware: a request object in, a response object (or None: no answer) out.
Firmware = Callable[[DataObject], Awaitable[DataObject | None]]


class DsmPort:
    """Serve the DSM port of ``dut`` with ``firmware``; without one, never accept a request."""

    def __init__(
        self,
        dut: HierarchyObject,
        firmware: Firmware | None,
        *,
        backpressure: float = 0.0,
        latency_ns: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.dut = dut
        self.clk = dut.clk_i
        self.firmware = firmware
        self.backpressure = backpressure
        self.latency_ns = latency_ns  # firmware time per request, in simulated time
        self.rng = random.Random(seed)
        self.log = logging.getLogger("hil.sim.dsm")
        self.requests: list[DataObject] = []
        self.malformed = 0
        self.aborts = 0
        dut.dsm_req_ready_i.value = 0
        dut.dsm_rsp_valid_i.value = 0
        dut.dsm_rsp_last_i.value = 0
        dut.dsm_rsp_data_i.value = 0
        if firmware is not None:
            self._watch = cocotb.start_soon(self._watch_aborts())
            self._task = cocotb.start_soon(self._serve())

    async def _watch_aborts(self) -> None:
        while True:
            await RisingEdge(self.dut.dsm_abort_o)
            self.aborts += 1

    def _ready(self) -> int:
        return int(self.rng.random() >= self.backpressure)

    async def _receive(self) -> list[int]:
        """One whole request's DWs; an abort in the middle drops what came so far.

        Signal values read right after a rising edge are those that edge sampled.  While no
        request is offered, ready is low and the port sleeps until ``dsm_req_valid_o`` rises.
        """
        words: list[int] = []
        d = self.dut
        epoch = self.aborts
        while True:
            if not words and not int(d.dsm_req_valid_o.value):
                # Idle: not ready, and asleep until the mailbox offers a request (rather than
                # awake on every clock); the handshake then runs clock by clock.
                d.dsm_req_ready_i.value = 0
                await RisingEdge(d.dsm_req_valid_o)
                epoch = self.aborts  # an abort before this request was offered is not its own
            ready = self._ready()
            d.dsm_req_ready_i.value = ready
            await RisingEdge(self.clk)
            if self.aborts != epoch or int(d.dsm_abort_o.value):
                epoch = self.aborts
                words = []
                continue
            if ready and int(d.dsm_req_valid_o.value):
                words.append(int(d.dsm_req_data_o.value))
                if int(d.dsm_req_last_o.value):
                    d.dsm_req_ready_i.value = 0
                    return words

    async def _send(self, obj: DataObject) -> None:
        d = self.dut
        words = obj.words()
        for i, word in enumerate(words):
            while True:
                valid = self._ready()
                d.dsm_rsp_valid_i.value = valid
                d.dsm_rsp_data_i.value = word
                d.dsm_rsp_last_i.value = int(i == len(words) - 1)
                await RisingEdge(self.clk)
                if valid and int(d.dsm_rsp_ready_o.value):
                    break
        d.dsm_rsp_valid_i.value = 0
        d.dsm_rsp_last_i.value = 0

    async def _serve(self) -> None:
        assert self.firmware is not None
        while True:
            words = await self._receive()
            try:
                request = DataObject.from_words(words)
            except PeerProtocolError as exc:
                self.malformed += 1
                self.log.error("DSM port delivered a malformed object: %s", exc)
                continue
            self.requests.append(request)
            epoch = self.aborts
            if self.latency_ns:
                # A firmware serves one request at a time: ready stays low meanwhile.
                await Timer(self.latency_ns, "ns")
            response = await self.firmware(request)
            if self.aborts != epoch:
                continue  # the host aborted meanwhile: this answer must not reach the mailbox
            if response is not None:
                await self._send(response)
