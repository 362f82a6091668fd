"""The root port's end of an IDE stream (Selective or Link): keys by IDE_KM, TLPs through a
TlpPort.

A platform with IDE keys a stream at both ports and then protects its memory traffic.  Here the
device's port is keyed over IDE_KM (:class:`~hil.host.ide_km.IdeKmRequester`), the root port's
end is the reference model (:class:`hil.ide_model.IdeStreamModel`, AES-GCM from
``cryptography``), and TLPs travel through the rig's :class:`~hil.transport.TlpPort`.  Each
slot gets its own fresh key (§6.33.3); the device's Rx key of a sub-stream is the root port's
Tx key and the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..codec import ide_km as K
from ..codec.ide_tlp import (
    CfgRead,
    CfgWrite,
    Completion,
    IdeTlp,
    MemRead,
    MemWrite,
    SubStream,
    Tlp,
    TlpDecodeError,
    decode_tlp,
)
from ..errors import DeviceFailure, PeerProtocolError
from ..ide_model import IFV_INITIAL, IdeStreamModel, PortSide, Received, StreamKind
from ..transport import ConfigSpace, Timebase, TlpPort
from .ide_km import IdeKmRequester, StreamRegs
from .ide_regs import LinkBlock

__all__ = [
    "PCRC_ENABLE",
    "PHE_MODE_LSB",
    "IdeRootPort",
    "NoCompletion",
    "bar0_address",
    "enable_memory",
]

STATE_SECURE = 0b0010
PCRC_ENABLE = 1 << 8  # Selective IDE Stream Control bit 8 [§7.9.26.5.2]
PHE_MODE_LSB = 10  # Partial Header Encryption Mode, Stream Control [13:10] [§7.9.26.5.2]


class NoCompletion(PeerProtocolError):
    """A read got no completion in time (the device dropped it, or the stream is Insecure)."""


async def enable_memory(config: ConfigSpace) -> None:
    """Command.Memory Space Enable, as a driver's pci_enable_device sets it (§7.5.1.1.3)."""
    command = await config.read32(0x04) & 0xFFFF
    if not command & 0x2:
        await config.write32(0x04, command | 0x2)  # the Status half: RW1C, written as 0


async def bar0_address(config: ConfigSpace) -> int:
    """BAR0's address as configuration space holds it (a 32- or 64-bit memory BAR)."""
    low = await config.read32(0x10)
    if low & 1:
        raise DeviceFailure("BAR0 is an I/O BAR; the IDE vectors need memory")
    high = await config.read32(0x14) if (low >> 1) & 0b11 == 0b10 else 0
    return (high << 32) | (low & ~0xF)


class IdeRootPort:
    """One IDE stream from the root port's side: Selective IDE Stream block ``index``, or,
    with ``link_tc``, Link IDE Stream block ``index`` set to carry that TC (every TLP of the
    stream is sent with it)."""

    def __init__(
        self,
        km: IdeKmRequester,
        port: TlpPort,
        config: ConfigSpace,
        *,
        stream_id: int,
        index: int = 0,
        requester_id: int = 0x0000,
        timeout_s: float = 1e-4,
        key_source: Callable[[int], bytes] = os.urandom,
        pcrc: bool = False,
        link_tc: int | None = None,
        phe: int = 0,
    ) -> None:
        self.km = km
        self.port = port
        self.config = config
        self.stream_id = stream_id
        self.index = index
        self.requester_id = requester_id
        self.timeout_s = timeout_s
        self.key_source = key_source
        self.link_tc = link_tc
        self.tc = link_tc or 0  # the TC of every TLP sent
        kind = StreamKind.SELECTIVE if link_tc is None else StreamKind.LINK
        self.model = IdeStreamModel(
            stream_id, side=PortSide.ROOT_PORT, pcrc=pcrc, kind=kind, tc=self.tc, phe=phe
        )
        #: Stream Control bits besides Stream ID and Enable: PCRC Enable (§7.9.26.5.2 bit 8)
        #: and the Partial Header Encryption Mode [13:10], the same at both Partner Ports.
        self.control = (PCRC_ENABLE if pcrc else 0) | (phe << PHE_MODE_LSB)
        self.regs: StreamRegs | LinkBlock | None = None
        self.key_set = 0
        self.bar0 = 0
        self.pcrc_completions = 0  # completions received with a PCRC (checked by the model)
        #: The function's Routing ID, the Target ID of Configuration Requests sent on this
        #: stream: the Completer ID of the first completion the stream brought back.
        self.target_id: int | None = None
        self._tag = 0

    # -- keys ---------------------------------------------------------------------------------
    async def program(self, key_set: int) -> None:
        """KEY_PROG every slot of ``key_set`` at the device, and the same keys in the model."""
        for sub in K.SubStream:
            for direction in (K.KeyDirection.RX, K.KeyDirection.TX):
                key = self.key_source(K.KEY_SIZE)
                slot = K.KeySlot(key_set, direction, sub)
                ack = await self.km.key_prog(self.stream_id, slot, key, IFV_INITIAL)
                if ack.status != K.KpAckStatus.SUCCESS:
                    raise DeviceFailure(f"KEY_PROG {slot}: KP_ACK status {ack.status!r}")
                mine = K.KeySlot(key_set, 1 - direction, sub)  # the partner's direction
                self.model.key_prog(mine, key, IFV_INITIAL)

    async def go(self, key_set: int, direction: int) -> None:
        """K_SET_GO for one direction (of the device) at both ends, every sub-stream."""
        for sub in K.SubStream:
            slot = K.KeySlot(key_set, direction, sub)
            if not await self.km.go_stop(self.stream_id, slot, go=True):
                raise DeviceFailure(f"no K_GOSTOP_ACK for K_SET_GO {slot}")
            self.model.k_set_go(K.KeySlot(key_set, 1 - direction, sub))

    async def establish(self, key_set: int = 0) -> None:
        """QUERY, stream registers, keys, GO Rx then Tx (§6.33.3), Enable; Secure or fail."""
        await self.km.query()
        if self.link_tc is None:
            self.regs = await self.km.setup_stream(
                self.index, self.stream_id, self.requester_id, self.control
            )
        else:
            self.regs = await self.km.setup_link(
                self.index, self.stream_id, self.link_tc, self.control
            )
        await self.program(key_set)
        await self.go(key_set, K.KeyDirection.RX)
        await self.go(key_set, K.KeyDirection.TX)
        state = await self.km.enable(self.regs, self.stream_id, self._control_value() & 0xFFFFFF)
        self.model.set_enabled(True)
        if state != STATE_SECURE:
            raise DeviceFailure(
                f"stream {self.stream_id} state {state:04b} after Enable, not Secure"
            )
        self.key_set = key_set
        self.bar0 = await bar0_address(self.config)
        await enable_memory(self.config)

    async def refresh(self) -> int:
        """Key refresh (§6.33.3): the other key set programmed, GO Rx, then GO Tx."""
        new = 1 - self.key_set
        await self.program(new)
        await self.go(new, K.KeyDirection.RX)
        await self.go(new, K.KeyDirection.TX)
        self.key_set = new
        return new

    async def stop(self, key_set: int) -> None:
        """K_SET_STOP of every slot of ``key_set`` at the device (and in the model)."""
        for sub in K.SubStream:
            for direction in (K.KeyDirection.RX, K.KeyDirection.TX):
                slot = K.KeySlot(key_set, direction, sub)
                if not await self.km.go_stop(self.stream_id, slot, go=False):
                    raise DeviceFailure(f"no K_GOSTOP_ACK for K_SET_STOP {slot}")
                self.model.k_set_stop(K.KeySlot(key_set, 1 - direction, sub))

    async def disable(self) -> None:
        """Enable cleared at the device (and in the model): the stream is Insecure, and a Link
        stream lets go of its TC's non-IDE TLPs (§6.33.4)."""
        if self.regs is None:
            return
        await self.config.write32(self.regs.control, self._control_value())
        self.model.set_enabled(False)

    def _control_value(self) -> int:
        tc = (self.link_tc << 19) if self.link_tc is not None else 0
        return (self.stream_id << 24) | tc | self.control

    async def state(self) -> int:
        """The device's IDE Stream Status.State."""
        if self.regs is None:
            raise DeviceFailure("the stream was never set up")
        return (await self.config.read32(self.regs.status)) & 0xF

    async def settled_state(self, timebase: Timebase, want: int) -> int:
        """The State once it reads ``want``, or as it reads at the deadline (``timeout_s``):
        the device checks a TLP only after taking all of it."""
        deadline = timebase.now() + self.timeout_s
        while (state := await self.state()) != want and timebase.now() < deadline:
            await timebase.sleep(self.timeout_s / 50)
        return state

    # -- traffic ------------------------------------------------------------------------------
    def next_tag(self) -> int:
        self._tag = (self._tag + 1) & 0xFF
        return self._tag

    def write_tlp(self, offset: int, data: bytes, *, tc: int | None = None) -> MemWrite:
        return MemWrite.for_bytes(
            self.bar0 + offset, data, requester_id=self.requester_id, tc=self._tc(tc)
        )

    def read_tlp(self, offset: int, size: int, *, tc: int | None = None) -> MemRead:
        return MemRead.for_bytes(
            self.bar0 + offset,
            size,
            requester_id=self.requester_id,
            tag=self.next_tag(),
            tc=self._tc(tc),
        )

    def _tc(self, tc: int | None) -> int:
        return self.tc if tc is None else tc

    def protect(self, tlp: Tlp, *, t: bool = False, pcrc_fault: str | None = None) -> IdeTlp:
        ide = self.model.protect(tlp, t=t, pcrc_fault=pcrc_fault)
        if ide is None:
            raise DeviceFailure("the root port's end of the stream is not Secure")
        return ide

    async def write(self, offset: int, data: bytes, *, t: bool = False) -> None:
        await self.port.send(self.protect(self.write_tlp(offset, data), t=t).encode())

    async def read(self, offset: int, size: int, *, t: bool = False) -> tuple[Completion, bool]:
        """A protected read; the completion, checked and decrypted, and its T bit."""
        req = self.read_tlp(offset, size)
        await self.port.send(self.protect(req, t=t).encode())
        got = await self.receive_completion(req)
        return got.tlp, got.t  # type: ignore[return-value]

    async def receive_completion(self, req: MemRead | CfgRead | CfgWrite) -> Received:
        raw = await self.port.recv(self.timeout_s)
        if raw is None:
            raise NoCompletion(f"no completion for the read with tag {req.tag}")
        got = self.model.receive(raw)  # raises IdeCheckFailed on a bad MAC, IV or counter
        if got is None:
            raise DeviceFailure("a completion arrived while the root port's end is Insecure")
        cpl = got.tlp
        if not isinstance(cpl, Completion) or cpl.tag != req.tag:
            raise DeviceFailure(f"expected the completion for tag {req.tag}, got {cpl!r}")
        if got.prefix.stream_id != self.stream_id or got.prefix.sub_stream != SubStream.COMPLETION:
            raise DeviceFailure(f"completion on the wrong stream or sub-stream: {got.prefix}")
        self.pcrc_completions += got.prefix.p
        if self.target_id is None:
            self.target_id = cpl.completer_id
        return got

    # -- Configuration Requests on the stream (Selective IDE for Configuration Requests) ------
    async def learn_target(self) -> int:
        """The Target ID for Configuration Requests: the Completer ID of a protected read of
        BAR0 (§2.2.9: the Completer ID is the Routing ID of the function that answers)."""
        if self.target_id is None:
            await self.read(0, 4)
        assert self.target_id is not None
        return self.target_id

    async def config_read(self, offset: int) -> Completion:
        """A Configuration Read as an IDE TLP on this stream: Type 1, as a Root Port with
        Selective IDE for Configuration Requests Enable sends it (§6.33.4); its completion,
        checked and decrypted by the model."""
        req = CfgRead(
            target_id=await self.learn_target(),
            register=offset // 4,
            requester_id=self.requester_id,
            tag=self.next_tag(),
        )
        await self.port.send(self.protect(req).encode())
        return (await self.receive_completion(req)).tlp  # type: ignore[return-value]

    async def config_write(self, offset: int, value: int) -> Completion:
        """A Configuration Write of a whole DW as an IDE TLP on this stream (as
        :meth:`config_read`); its completion."""
        req = CfgWrite(
            target_id=await self.learn_target(),
            register=offset // 4,
            requester_id=self.requester_id,
            tag=self.next_tag(),
            payload=(value & 0xFFFF_FFFF).to_bytes(4, "little"),
        )
        await self.port.send(self.protect(req).encode())
        return (await self.receive_completion(req)).tlp  # type: ignore[return-value]

    async def read_plain(self, offset: int, size: int, *, tc: int = 0) -> Completion:
        """A read without IDE (the baseline path), on ``tc``."""
        req = self.read_tlp(offset, size, tc=tc)
        await self.port.send(req.encode())
        raw = await self.port.recv(self.timeout_s)
        if raw is None:
            raise NoCompletion(f"no completion for the plain read with tag {req.tag}")
        try:
            cpl = decode_tlp(raw)
        except TlpDecodeError as err:
            raise DeviceFailure(f"malformed completion: {err}") from None
        if not isinstance(cpl, Completion) or cpl.tag != req.tag:
            raise DeviceFailure(f"expected the completion for tag {req.tag}, got {cpl!r}")
        return cpl
