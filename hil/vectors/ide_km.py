"""IDE_KM vectors (PCIe 6.x §6.33.3) over a secured SPDM session."""

from __future__ import annotations

from ..codec import ide_km as K
from ..codec import spdm as S
from ..errors import DoeTimeout, PeerProtocolError
from ..host.ide_km import IdeKmRequester
from ._model import VectorContext, vector

NEEDS = {"spdm", "ide_km", "config"}
#: IDE_KM messaging alone: these run on a peer with no configuration space (a socket rig).
#: Keying a stream needs its Stream ID in the device's registers first (Linux writes it
#: before KEY_PROG: devices may need it), so those vectors need config.
MESSAGING = {"spdm", "ide_km"}
STREAM_ID = 0x17


class _Km:
    """An IDE_KM requester in a fresh session, ended on the way out: on a long-lived device
    (a lab board) the next vector must find the streams unbound (§6.33.3 session binding)."""

    def __init__(self, ctx: VectorContext) -> None:
        self.ctx = ctx
        self.km: IdeKmRequester | None = None

    async def __aenter__(self) -> IdeKmRequester:
        req = await self.ctx.spdm()
        await req.authenticate()
        session = await req.key_exchange()
        self.km = IdeKmRequester(
            req, session, self.ctx.config_if_any, port_index=self.ctx.ide_km_port_index
        )
        return self.km

    async def __aexit__(self, *exc: object) -> None:
        if self.km is not None and self.km.session.open:
            try:
                await self.km.spdm.end_session(self.km.session)
            except Exception as err:  # the vector's own outcome matters more
                self.ctx.log.warning("END_SESSION on the way out failed: %s", err)


def _km(ctx: VectorContext) -> _Km:
    return _Km(ctx)


@vector(
    "ide_km.query.reflects_config",
    title="QUERY_RESP reports the IDE capability and stream registers config space holds",
    spec="PCIe 6.x §6.33.3 (QUERY, downgrade check), §7.9.26",
    needs=NEEDS,
)
async def query_reflects_config(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        rsp = await km.query()  # raises on any difference from config space
        ctx.expect(rsp.capability.ide_km_supported, "IDE_KM responder not supported per QUERY_RESP")
        ctx.measure("selective_streams", len(rsp.selective_blocks), "", low=1)


@vector(
    "ide_km.key_prog.all_slots",
    title="KEY_PROG of all twelve slots of a stream is acknowledged with Success",
    spec="PCIe 6.x §6.33.3 (KEY_PROG, KP_ACK)",
    needs=NEEDS,
)
async def key_prog_all_slots(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        acks = await km.program_all(STREAM_ID, 0) + await km.program_all(STREAM_ID, 1)
        bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in acks if a.outcome]
        ctx.measure("slots_programmed", len(acks) - len(bad), "", low=12, high=12)
        ctx.expect(not bad, f"KP_ACK failures: {bad}")


@vector(
    "ide_km.k_set_go.secure",
    title="K_SET_GO on every sub-stream and Enable bring the stream to Secure",
    spec="PCIe 6.x §6.33.3, §6.33.1 (stream state), §7.9.26.5.3",
    needs=NEEDS,
)
async def k_set_go_secure(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        await km.query()
        regs = await km.setup_stream(0, STREAM_ID)
        await km.program_all(STREAM_ID, 0)
        state = (await ctx.config.read32(regs.status)) & 0xF
        ctx.expect(state == K.IdeStreamState.INSECURE, f"Secure before K_SET_GO (state {state})")
        await km.go_all(STREAM_ID, 0)
        state = await km.enable(regs, STREAM_ID)
        ctx.expect(state == K.IdeStreamState.SECURE, f"stream state {state:#x} after GO and Enable")
        # Clearing Enable makes it Insecure again (§6.33.1).
        await ctx.config.write32(regs.control, STREAM_ID << 24)
        state = (await ctx.config.read32(regs.status)) & 0xF
        ctx.expect(state == K.IdeStreamState.INSECURE, f"state {state:#x} after Enable cleared")


@vector(
    "ide_km.k_set_stop.acknowledged",
    title="K_SET_STOP of a programmed key set is acknowledged",
    spec="PCIe 6.x §6.33.3 (K_SET_STOP, K_GOSTOP_ACK)",
    needs=NEEDS,
)
async def k_set_stop_acknowledged(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        await km.program_all(STREAM_ID, 1)
        await km.go_all(STREAM_ID, 1)
        for slot in K.KeySlot.all(1):
            ctx.expect(await km.go_stop(STREAM_ID, slot, go=False), f"no ACK for K_SET_STOP {slot}")


@vector(
    "ide_km.key_prog.bad_fields",
    title="KEY_PROG with a bad port, stream or sub-stream gets the KP_ACK status for it",
    spec="PCIe 6.x §6.33.3 (KP_ACK Status)",
    needs=MESSAGING,
)
async def key_prog_bad_fields(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        slot = K.KeySlot(0, 0, 0)
        key = bytes(range(32))
        cases = [
            (
                "port index 5",
                K.KeyProg(stream_id=STREAM_ID, slot=slot, key=key, port_index=5),
                K.KpAckStatus.UNSUPPORTED_PORT_INDEX,
            ),
            (
                "an unconfigured stream",
                K.KeyProg(stream_id=0x99, slot=slot, key=key),
                K.KpAckStatus.UNSUPPORTED_VALUE,
            ),
        ]
        reserved = bytearray(K.KeyProg(stream_id=STREAM_ID, slot=slot, key=key).encode())
        reserved[6] = 0x30  # sub-stream 3: reserved
        for what, msg, want in cases:
            ack = await km.request(msg)
            ctx.expect(
                isinstance(ack, K.KpAck) and ack.status == want,
                f"KEY_PROG with {what} answered {ack!r}, expected status {want.name}",
            )
        raw = await km.send_payload(bytes(reserved))
        ack = K.decode(raw, strict=False) if raw else None
        ctx.expect(
            isinstance(ack, K.KpAck) and ack.status == K.KpAckStatus.UNSUPPORTED_VALUE,
            f"KEY_PROG with reserved sub-stream answered {ack!r}",
        )
        raw = await km.send_payload(
            K.KeyProg(stream_id=STREAM_ID, slot=slot, key=key).encode()[:40]
        )
        ack = K.decode(raw, strict=False) if raw else None
        ctx.expect(
            isinstance(ack, K.KpAck) and ack.status == K.KpAckStatus.INCORRECT_LENGTH,
            f"a 40-byte KEY_PROG answered {ack!r}, expected INCORRECT_LENGTH",
        )


@vector(
    "ide_km.outside_session.ignored",
    title="IDE_KM outside a secured session gets no answer",
    spec="PCIe 6.x §6.33.3",
    needs=MESSAGING,
)
async def outside_session_ignored(ctx: VectorContext) -> None:
    req = await ctx.spdm()
    await req.authenticate()
    query = S.VendorDefinedRequest.pci_sig(
        S.PciProtocolId.IDE_KM, K.Query().encode()[1:], version=req.version
    )
    try:
        raw = await req.send_raw(query.encode())
    except (DoeTimeout, PeerProtocolError):
        return  # no response: right
    ctx.expect(False, f"IDE_KM QUERY in the clear was answered: {raw[:8].hex()}")


@vector(
    "ide_km.session_binding",
    title="While one session owns the streams, IDE_KM from another session is dropped",
    spec="PCIe 6.x §6.33.3 (session binding)",
    needs=MESSAGING,
)
async def session_binding(ctx: VectorContext) -> None:
    async with _km(ctx) as owner:
        await owner.query()
        other_session = await owner.spdm.key_exchange(req_session_id=0xC0DE)
        intruder = IdeKmRequester(owner.spdm, other_session, ctx.config_if_any)
        answer = await intruder.request(K.Query())
        ctx.expect(answer is None, f"a second session's QUERY was answered: {answer!r}")
        await owner.query()  # the owner still is
