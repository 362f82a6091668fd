"""IDE_KM from the host: what a platform TSM does to key a Selective IDE stream (§6.33.3).

QUERY (with the downgrade check against configuration space), KEY_PROG of every slot with
fresh random keys, K_SET_GO (receivers first, then transmitters), Enable in config space, the
check that the stream reads Secure, key refresh to the other key set, K_SET_STOP.

Read leniently, check strictly: :meth:`IdeKmRequester.query` reads QUERY_RESP leniently (bytes
after the capability structure, reserved bits) so that a flow keyed on it goes on; what it let
pass is in :attr:`IdeKmRequester.notes` and the log.  The vector that judges QUERY_RESP asks
for ``strict=True``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from .. import _regs as R
from ..codec import ide_km as K
from ..errors import PeerProtocolError
from ..transport import ConfigSpace
from .ide_regs import IDE_CAP_ID, IdeLayout, LinkBlock, SelectiveBlock, selective_block
from .pci import find_ext_capabilities
from .spdm import SpdmRequester, SpdmSession

__all__ = ["IdeKmRequester", "StreamRegs", "link_regs", "stream_regs"]

log = logging.getLogger("hil.host.ide_km")

#: A Selective IDE Stream's registers, where the capability says they are (Link IDE blocks
#: first, each block sized by its own Address Association count: :mod:`hil.host.ide_regs`).
StreamRegs = SelectiveBlock


async def _ide_offset(config: ConfigSpace) -> int:
    caps = await find_ext_capabilities(config, IDE_CAP_ID)
    if not caps:
        raise PeerProtocolError("the function has no IDE extended capability")
    return caps[0].offset


async def stream_regs(config: ConfigSpace, index: int, cap_offset: int | None = None) -> StreamRegs:
    """Selective IDE Stream ``index`` of the function's IDE capability (found by the capability
    walk unless ``cap_offset`` is given)."""
    if cap_offset is None:
        cap_offset = await _ide_offset(config)
    return await selective_block(config, cap_offset, index)


async def link_regs(config: ConfigSpace, index: int) -> LinkBlock:
    """Link IDE Stream register block ``index`` of the function's IDE capability."""
    layout = await IdeLayout.read(config, await _ide_offset(config))
    if not 0 <= index < len(layout.link_blocks):
        raise PeerProtocolError(
            f"the IDE capability has {len(layout.link_blocks)} Link IDE Stream blocks; "
            f"no block {index}"
        )
    return layout.link_blocks[index]


@dataclass
class IdeKmRequester:
    spdm: SpdmRequester
    session: SpdmSession
    config: ConfigSpace | None = None
    port_index: int = 0
    keys: dict[tuple[int, int], bytes] = field(default_factory=dict, repr=False)
    #: What lenient reads let pass (the peer broke a rule that did not stop the flow).
    notes: list[str] = field(default_factory=list)

    async def request(self, msg: K.IdeKmMessage, *, strict: bool = True) -> K.IdeKmMessage | None:
        """Send one IDE_KM request in the session; its response (None: no answer)."""
        payload = await self.send_payload(msg.encode())
        if payload is None:
            return None
        return K.decode(payload, strict=strict)

    async def send_payload(self, payload: bytes) -> bytes | None:
        """Raw IDE_KM bytes (Protocol ID first) in the session; the response payload, or None
        when the device gave no answer."""
        try:
            return await self.spdm.vendor_request(self.session, payload[0], payload[1:])
        except PeerProtocolError:  # DOE timeout or an unopenable answer: nothing usable came
            return None

    async def query(self, *, strict: bool = False) -> K.QueryResp:
        """QUERY this port.  Read leniently unless ``strict``: what that let pass is noted."""
        payload = await self.send_payload(K.Query(port_index=self.port_index).encode())
        if payload is None:
            raise PeerProtocolError(f"no answer to QUERY of PortIndex {self.port_index}")
        try:
            rsp = K.decode(payload)
        except K.IdeKmDecodeError as exc:
            if strict:
                raise
            rsp = K.decode(payload, strict=False)  # raises again if even that cannot read it
            note = f"{exc} (read past it)"
            log.warning("%s", note)
            self.notes.append(note)
        if not isinstance(rsp, K.QueryResp):
            raise PeerProtocolError(f"QUERY answered by {rsp!r}")
        if self.config is not None:
            await self._downgrade_check(rsp)
        return rsp

    async def _downgrade_check(self, rsp: K.QueryResp) -> None:
        """§6.33.3: what QUERY_RESP reports must be what configuration space says."""
        assert self.config is not None
        caps = await find_ext_capabilities(self.config, IDE_CAP_ID)
        if not caps:
            raise PeerProtocolError("QUERY answered, but config space has no IDE capability")
        layout = await IdeLayout.read(self.config, caps[0].offset)
        cap = layout.capability.raw
        if rsp.capability.value != cap:
            raise PeerProtocolError(
                f"QUERY_RESP IDE Capability {rsp.capability.value:#010x}, config space {cap:#010x}"
            )
        for block, regs in zip(rsp.selective_blocks, layout.selective_blocks, strict=False):
            i = regs.index
            ctl = await self.config.read32(regs.control)
            if block.control != ctl:
                raise PeerProtocolError(
                    f"QUERY_RESP stream {i} Control {block.control:#010x}, config {ctl:#010x}"
                )

    async def key_prog(self, stream_id: int, slot: K.KeySlot, key: bytes, ifv: int = 1) -> K.KpAck:
        rsp = await self.request(
            K.KeyProg(stream_id=stream_id, slot=slot, key=key, ifv=ifv, port_index=self.port_index)
        )
        if not isinstance(rsp, K.KpAck):
            raise PeerProtocolError(f"KEY_PROG answered by {rsp!r}")
        return rsp

    async def program_all(self, stream_id: int, key_set: int = 0) -> list[K.KpAck]:
        """Every slot of one key set (Rx and Tx x PR/NPR/CPL) with fresh, distinct keys."""
        acks = []
        for slot in K.KeySlot.all(key_set):
            key = os.urandom(32)
            self.keys[(stream_id, slot.encode())] = key
            acks.append(await self.key_prog(stream_id, slot, key))
        return acks

    async def go_stop(self, stream_id: int, slot: K.KeySlot, *, go: bool) -> bool:
        cls = K.KSetGo if go else K.KSetStop
        rsp = await self.request(cls(stream_id=stream_id, slot=slot, port_index=self.port_index))
        return isinstance(rsp, K.KGostopAck)

    async def go_all(self, stream_id: int, key_set: int = 0) -> None:
        slots = K.KeySlot.all(key_set)
        ordered = [s for s in slots if s.direction == K.KeyDirection.RX] + [
            s for s in slots if s.direction == K.KeyDirection.TX
        ]
        for slot in ordered:
            if not await self.go_stop(stream_id, slot, go=True):
                raise PeerProtocolError(f"no K_GOSTOP_ACK for K_SET_GO {slot}")

    async def setup_stream(
        self, index: int, stream_id: int, partner_rid: int = 0, control: int = 0
    ) -> StreamRegs:
        """What Linux's pci_ide_stream_setup does on the endpoint: RID association, the Stream
        ID with Enable=0 (the device may need it before KEY_PROG).  ``control``: other Stream
        Control bits to select (e.g. PCRC Enable, bit 8), which must be set before Enable."""
        if self.config is None:  # a peer with no configuration space reachable (a socket rig)
            return StreamRegs(index, R.IDE_CAP_OFFSET + 0x0C, 1)
        regs = await stream_regs(self.config, index)
        await self.config.write32(regs.rid1, (partner_rid & 0xFFFF) << 8)  # RID Limit
        await self.config.write32(regs.rid2, 1 | (partner_rid << 8))  # V=1, RID Base
        await self.config.write32(regs.control, (stream_id << 24) | control)
        return regs

    async def link_regs(self, index: int) -> LinkBlock:
        """Link IDE Stream block ``index`` of the device's IDE capability."""
        if self.config is None:
            raise PeerProtocolError("a Link IDE Stream needs the device's configuration space")
        return await link_regs(self.config, index)

    async def setup_link(self, index: int, stream_id: int, tc: int, control: int = 0) -> LinkBlock:
        """Link IDE Stream block ``index``: TC and Stream ID with Enable=0 (§7.9.26.4.1), and
        the other ``control`` bits (PCRC Enable), before the keys."""
        regs = await self.link_regs(index)
        assert self.config is not None
        await self.config.write32(regs.control, (stream_id << 24) | (tc << 19) | control)
        return regs

    async def enable(self, regs: StreamRegs | LinkBlock, stream_id: int, control: int = 0) -> int:
        """Set Enable (keeping the ``control`` bits selected); return the stream's State
        (0010b Secure)."""
        assert self.config is not None
        await self.config.write32(regs.control, (stream_id << 24) | control | 1)
        return (await self.config.read32(regs.status)) & 0xF
