"""IDE_KM in the device firmware (PCIe 6.x §6.33.3): the responder side of key management.

Only inside a secured SPDM session (the SPDM responder hands it VENDOR_DEFINED requests with
the PCI-SIG IDs and Protocol ID 00h from sessions only).  Keys go straight to the hardware's
write-only key slots through the firmware register port; the hardware decides the stream
state.  Session binding (§6.33.3): the first session that sends QUERY or KEY_PROG owns the
streams while it is open; requests from other sessions are dropped silently; when the owning
session ends, the next session's first QUERY/KEY_PROG wipes every stream's keys first.

KEY_PROG with an IFV other than 1 gets KP_ACK 03h (Unsupported value): the invocation
field of the IV starts at 1 for each key (§6.33.5), and the TLP path counts from there.

What gets no response, by §6.33.3: a payload whose size does not match its object (except
KEY_PROG, whose KP_ACK has a status for it), QUERY/KEY_PROG from a session other than the one
the streams are bound to, and a K_SET_GO/K_SET_STOP in error (recommended).  A QUERY for a
PortIndex this port does not answer has no IDE_KM error object: it gets SPDM
ERROR(InvalidRequest) (DSP0274: an unsuccessful request should get ERROR).

PortIndex: an endpoint answers 00h (§6.33.3).  ``port_index`` N > 0 presents the port at N as
well (MaxPortIndex N), the numbering a port that represents others uses, for a requester that
addresses a fixed index.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from ..codec import ide_km as K
from ..codec import spdm as S
from ..errors import LocalProtocolError
from .regs import (
    CMD,
    CMD_K_SET_GO,
    CMD_K_SET_STOP,
    CMD_WIPE,
    FirmwareRegisterPort,
    cap_word,
    command,
    key_dw,
    stream_state,
)
from .spdm_responder import VendorRequestRefused

__all__ = ["IFV_INITIAL", "IdeKmResponder"]

log = logging.getLogger("hil.firmware.ide_km")

_KEY_PROG_SIZE = 48
#: The one KEY_PROG IFV this port takes: the invocation field's start (§6.33.5).
IFV_INITIAL = 1
_REQUEST_OBJECTS = frozenset(
    {K.ObjectId.QUERY, K.ObjectId.KEY_PROG, K.ObjectId.K_SET_GO, K.ObjectId.K_SET_STOP}
)


@dataclass
class IdeKmResponder:
    regs: FirmwareRegisterPort
    bus: int = 0
    dev_func: int = 0
    segment: int = 0
    port_index: int = 0  # answered besides 00h (see the module docstring)
    owner: int | None = None  # the session the streams are bound to
    wipe_pending: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port_index <= 0xFF:
            raise LocalProtocolError(f"PortIndex {self.port_index} is not one byte")

    def _ports(self) -> frozenset[int]:
        return frozenset({0, self.port_index})

    # -- session binding ------------------------------------------------------------------------
    def session_ended(self, session_id: int) -> None:
        if session_id == self.owner:
            self.owner = None
            self.wipe_pending = True

    async def _bind(self, session_id: int) -> bool:
        if self.owner is None:
            if self.wipe_pending:
                await self._wipe_all()
                self.wipe_pending = False
            self.owner = session_id
        return self.owner == session_id

    async def _streams(self) -> int:
        """Stream indices in the hardware: the Selective streams, then one per Link IDE block
        (hdl/ide_cap/README.md, firmware map)."""
        cap = K.IdeCapability(await self.regs.read(cap_word(1)))
        return cap.selective_block_count + cap.link_block_count

    async def _wipe_all(self) -> None:
        for index in range(await self._streams()):
            await self.regs.write(CMD, command(CMD_WIPE, index, 0))

    async def _stream_index(self, stream_id: int) -> int | None:
        """Which register block carries this Stream ID (the host wrote it in config space)."""
        for index in range(await self._streams()):
            state = await self.regs.read(stream_state(index))
            if (state >> 24) & 0xFF == stream_id:
                return index
        return None

    # -- messages -------------------------------------------------------------------------------
    async def handle(self, session_id: int, request: S.VendorDefinedRequest) -> bytes | None:
        payload = request.payload
        try:
            msg = K.decode(payload, strict=False)
        except K.IdeKmDecodeError as exc:
            return await self._malformed(session_id, payload, exc)
        if not isinstance(msg, K.Query | K.KeyProg | K.KSetGo | K.KSetStop):
            if self.owner in (None, session_id):
                raise self._not_a_request(payload[1])
            return None
        if isinstance(msg, K.Query | K.KeyProg) and not await self._bind(session_id):
            log.info(
                "IDE_KM from session %#x dropped: streams bound to %#x", session_id, self.owner
            )
            return None
        if self.owner != session_id:
            return None
        match msg:
            case K.Query():
                if msg.port_index not in self._ports():
                    raise VendorRequestRefused(
                        S.ErrorCode.INVALID_REQUEST,
                        f"QUERY for PortIndex {msg.port_index}; MaxPortIndex {self.port_index}",
                    )
                return (await self._query_resp(msg.port_index)).encode()
            case K.KeyProg():
                return (await self._key_prog(msg)).encode()
            case K.KSetGo() | K.KSetStop():
                return await self._go_stop(msg)
        return None  # pragma: no cover - every request object is matched above

    @staticmethod
    def _not_a_request(object_id: int) -> VendorRequestRefused:
        """A response object (or a reserved Object ID) sent as a request: §6.33.3 defines no
        IDE_KM answer; DSP0274: an unsuccessful request should get ERROR(InvalidRequest)."""
        return VendorRequestRefused(
            S.ErrorCode.INVALID_REQUEST, f"IDE_KM Object ID {object_id:#04x} is not a request"
        )

    async def _malformed(self, session_id: int, payload: bytes, exc: Exception) -> bytes | None:
        """KEY_PROG of the wrong length still gets KP_ACK INCORRECT_LENGTH; another request
        object of the wrong size is ignored (§6.33.3: it must not result in a response); an
        Object ID that is no request gets ERROR."""
        may_talk = self.owner in (None, session_id)
        if len(payload) >= 2 and payload[1] not in _REQUEST_OBJECTS and may_talk:
            raise self._not_a_request(payload[1])
        if (
            len(payload) >= 8
            and payload[1] == K.ObjectId.KEY_PROG
            and len(payload) != _KEY_PROG_SIZE
            and self.owner in (None, session_id)
        ):
            head = payload[:8]
            ack = (
                bytes((0, K.ObjectId.KP_ACK)) + head[2:5] + bytes((K.KpAckStatus.INCORRECT_LENGTH,))
            )
            return ack + head[6:8]
        log.info("malformed IDE_KM ignored: %s", exc)
        return None

    async def _query_resp(self, port_index: int) -> K.QueryResp:
        cap = K.IdeCapability(await self.regs.read(cap_word(1)))
        control = await self.regs.read(cap_word(2))
        links, pos = [], 3
        for _ in range(cap.link_block_count):
            link = [await self.regs.read(cap_word(pos + i)) for i in range(2)]
            links.append(K.LinkIdeBlock(*link))
            pos += 2
        blocks = []
        for _ in range(cap.selective_block_count):
            stream_cap = await self.regs.read(cap_word(pos))
            head = [await self.regs.read(cap_word(pos + i)) for i in range(5)]
            assoc = []
            for a in range(stream_cap & 0xF):
                base = pos + 5 + 3 * a
                words = [await self.regs.read(cap_word(base + i)) for i in range(3)]
                assoc.append(K.AddressAssociation(*words))
            blocks.append(K.SelectiveIdeBlock(*head, address_associations=tuple(assoc)))
            pos += 5 + 3 * (stream_cap & 0xF)
        return K.QueryResp(
            port_index=port_index,  # §6.33.3: the PortIndex of the QUERY
            dev_func=self.dev_func,
            bus=self.bus,
            segment=self.segment,
            max_port_index=self.port_index,
            capability=cap,
            control=control,
            link_blocks=tuple(links),
            selective_blocks=tuple(blocks),
        )

    def _ack(self, msg: K.KeyProg, status: int) -> K.KpAck:
        return K.KpAck(
            stream_id=msg.stream_id, slot=msg.slot, port_index=msg.port_index, status=status
        )

    async def _key_prog(self, msg: K.KeyProg) -> K.KpAck:
        if msg.port_index not in self._ports():
            return self._ack(msg, K.KpAckStatus.UNSUPPORTED_PORT_INDEX)
        if not msg.slot.valid:
            return self._ack(msg, K.KpAckStatus.UNSUPPORTED_VALUE)
        if msg.ifv != IFV_INITIAL:
            # §6.33.5: the IV's invocation field starts at 1 for every key; the TLP path
            # counts from there, so another initial value is one this port does not support.
            return self._ack(msg, K.KpAckStatus.UNSUPPORTED_VALUE)
        index = await self._stream_index(msg.stream_id)
        if index is None:
            return self._ack(msg, K.KpAckStatus.UNSUPPORTED_VALUE)
        slot = _slot_code(msg.slot)
        armed = (await self.regs.read(stream_state(index) + 1)) & 0xFFF
        if armed & (1 << slot):
            # The hardware refuses to overwrite a key set in use: K_SET_STOP it first.
            return self._ack(msg, K.KpAckStatus.UNSPECIFIED_FAILURE)
        wire = K.key_to_wire(msg.key) + K.ifv_to_wire(msg.ifv)
        for dw, (value,) in enumerate(struct.iter_unpack("<I", wire)):
            await self.regs.write(key_dw(index, slot, dw), value)
        loaded = (await self.regs.read(stream_state(index) + 1)) >> 16
        if not loaded & (1 << slot):
            return self._ack(msg, K.KpAckStatus.UNSPECIFIED_FAILURE)  # e.g. the slot is armed
        return self._ack(msg, K.KpAckStatus.SUCCESS)

    async def _go_stop(self, msg: K.KSetGo | K.KSetStop) -> bytes | None:
        index = await self._stream_index(msg.stream_id)
        if msg.port_index not in self._ports() or index is None or not msg.slot.valid:
            return None  # §6.33.3: a bad GO/STOP should get no ACK
        op = CMD_K_SET_GO if isinstance(msg, K.KSetGo) else CMD_K_SET_STOP
        await self.regs.write(CMD, command(op, index, msg.slot.encode()))
        if await self.regs.read(CMD):
            return None
        return K.KGostopAck(
            stream_id=msg.stream_id, slot=msg.slot, port_index=msg.port_index
        ).encode()


def _slot_code(slot: K.KeySlot) -> int:
    """The hardware's slot number: sub-stream x 4 + RxTxB x 2 + key set."""
    return slot.sub_stream * 4 + slot.direction * 2 + slot.key_set
