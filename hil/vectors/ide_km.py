"""IDE_KM vectors (PCIe 6.x §6.33.3) over a secured SPDM session.

Requests go to the rig's ``ide_km_port_index``.  A flow reads QUERY_RESP leniently (what that
let pass is logged); ``ide_km.query.well_formed`` is the vector that judges QUERY_RESP.  Ending
the session on the way out is clean-up: it never decides a verdict.
"""

from __future__ import annotations

import os

from ..codec import ide_km as K
from ..codec import spdm as S
from ..errors import NotApplicable
from ..host.ide_km import IdeKmRequester, StreamRegs, stream_regs
from ..host.ide_regs import IDE_CAP_ID, LinkBlock
from ..host.pci import find_ext_capabilities
from ..host.spdm import SpdmErrorResponse, SpdmRequester
from ._answers import answer_in_the_clear
from ._cleanup import tidy
from ._model import Vector, VectorContext, vector

NEEDS = {"spdm", "ide_km", "config"}
#: IDE_KM messaging alone: these run on a peer with no configuration space (a socket rig).
#: A device may need a stream's Stream ID in its IDE registers before it takes KEY_PROG for it
#: (Linux writes it first for that reason); where this rig cannot write it and the device
#: refuses the keys, a keying vector is not applicable rather than failed.
MESSAGING = {"spdm", "ide_km"}
STREAM_ID = 0x17
SPEC = "PCIe 6.x §6.33.3"


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
            await tidy(self.ctx, "end_session", self.km.spdm.end_session(self.km.session))


def _km(ctx: VectorContext) -> _Km:
    return _Km(ctx)


def _require(cap: int | None, bits: int, label: str) -> None:
    """n/a unless the IDE Capability ``cap`` has all of ``bits`` (None: not known, go on)."""
    if cap is not None and cap & bits != bits:
        raise NotApplicable(f"the IDE Capability ({cap:#010x}) does not advertise {label}")


async def config_ide_capability(ctx: VectorContext) -> int | None:
    """The IDE Capability register as configuration space holds it (None: no configuration
    space, or no IDE extended capability in it).  Vectors for an optional configuration read
    it first, so that a Port that rules the configuration out costs no session; the verdict
    still rests on QUERY_RESP, which :meth:`IdeKmRequester.query` checks against it."""
    config = ctx.config_if_any
    if config is None:
        return None
    caps = await find_ext_capabilities(config, IDE_CAP_ID)
    return await config.read32(caps[0].offset + 4) if caps else None


async def _raw_answer(km: IdeKmRequester, payload: bytes) -> bytes | str | None:
    """Send raw IDE_KM bytes; the answer's IDE_KM bytes, a description of an SPDM ERROR that
    came instead, or None: no answer."""
    try:
        return await km.send_payload(payload)
    except SpdmErrorResponse as err:
        return f"SPDM ERROR ({err})"


def _lenient(raw: bytes | str | None) -> K.IdeKmMessage | str | None:
    """An answer decoded leniently, or what it is when it is no IDE_KM message."""
    if not isinstance(raw, bytes):
        return raw
    try:
        return K.decode(raw, strict=False)
    except K.IdeKmDecodeError as exc:
        return f"bytes that are no IDE_KM message ({exc})"


def _describe(answer: K.IdeKmMessage | str | None) -> str:
    """An answer for a message: the IDE_KM object (and KP_ACK status), or what came instead."""
    if answer is None:
        return "nothing"
    if isinstance(answer, str):
        return answer
    if isinstance(answer, K.KpAck):
        return f"KP_ACK status {answer.status:02x}h"
    return answer.OBJECT_ID.name


async def _answer(km: IdeKmRequester, payload: bytes) -> K.IdeKmMessage | str | None:
    """Send raw IDE_KM bytes; the decoded answer (read leniently), a description of what else
    came back (an SPDM ERROR, bytes no IDE_KM decoder reads), or None: no answer."""
    return _lenient(await _raw_answer(km, payload))


async def _program(ctx: VectorContext, km: IdeKmRequester, key_set: int) -> list[K.KpAck]:
    """KEY_PROG of the six slots of ``key_set`` on STREAM_ID (see MESSAGING for the n/a)."""
    acks = await km.program_all(STREAM_ID, key_set)
    refused = [a for a in acks if a.outcome == K.KpAckStatus.UNSUPPORTED_VALUE]
    if refused and ctx.config_if_any is None:
        raise NotApplicable(
            f"KEY_PROG of Stream ID {STREAM_ID:#x} refused (unsupported value): the device may "
            "need the Stream ID in its IDE registers, which this rig (no configuration space) "
            "cannot write"
        )
    return acks


@vector(
    "ide_km.query.well_formed",
    title="QUERY_RESP echoes the PortIndex and is exactly the port's IDE capability structure",
    spec=f"{SPEC} (QUERY, QUERY_RESP, payload size), Figure 6-57",
    needs=MESSAGING,
)
async def query_well_formed(ctx: VectorContext) -> None:
    """§6.33.3: "The remainder of QUERY_RESPONSE must consist of the contents of the IDE
    Extended Capability Structure, other than the IDE Extended Capability Header itself", and
    "the size of the VendorDefinedRespPayload must match the size of the data object"; the
    PortIndex must echo the QUERY's; a Responder must answer a QUERY of PortIndex 00h."""
    findings: list[str] = []
    async with _km(ctx) as km:
        ports = [0, km.port_index] if km.port_index else [0]
        for port in ports:  # the rig's port last: some responders key the port queried last
            raw = await _raw_answer(km, K.Query(port_index=port).encode())
            answer = _lenient(raw)
            if not isinstance(answer, K.QueryResp) or not isinstance(raw, bytes):
                findings.append(
                    f"QUERY of PortIndex {port} answered by {_describe(answer)}, not QUERY_RESP"
                )
                continue
            try:
                K.QueryResp.decode(raw)  # strictly: what the lenient read let pass
            except K.IdeKmDecodeError as exc:
                findings.append(f"PortIndex {port}: {exc}")
            ctx.measure(f"query_resp_trailing_bytes_port{port}", len(answer.trailing), "B")
            if answer.port_index != port:
                findings.append(f"QUERY of PortIndex {port} answered for {answer.port_index}")
            if answer.max_port_index < port:
                findings.append(
                    f"QUERY of PortIndex {port} answered, but MaxPortIndex is "
                    f"{answer.max_port_index}"
                )
            if port == km.port_index:
                cap = answer.capability
                ctx.measure("link_streams", cap.link_block_count, "")
                ctx.measure("selective_streams", cap.selective_block_count, "")
                ctx.measure("ide_km_supported", int(cap.ide_km_supported), "")
                ctx.measure("max_port_index", answer.max_port_index, "")
                if answer.max_port_index < 0xFF:
                    # A PortIndex past MaxPortIndex names no port: no QUERY_RESP describes it
                    # (an SPDM ERROR, or no answer, is what a Responder can give).
                    beyond = answer.max_port_index + 1
                    other = _lenient(await _raw_answer(km, K.Query(port_index=beyond).encode()))
                    if isinstance(other, K.QueryResp):
                        findings.append(
                            f"QUERY of PortIndex {beyond}, past MaxPortIndex "
                            f"{answer.max_port_index}, answered by QUERY_RESP"
                        )
    ctx.expect(not findings, f"{'; '.join(findings)} ({SPEC}, QUERY_RESP)")


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
    needs=MESSAGING,
)
async def key_prog_all_slots(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        acks = await _program(ctx, km, 0) + await _program(ctx, km, 1)
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
    title="K_SET_STOP of a programmed key set is acknowledged and frees the set for KEY_PROG",
    spec="PCIe 6.x §6.33.3 (K_SET_STOP, K_GOSTOP_ACK)",
    needs=MESSAGING,
)
async def k_set_stop_acknowledged(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        acks = await _program(ctx, km, 1)
        bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in acks if a.outcome]
        ctx.expect(not bad, f"KP_ACK failures: {bad}")
        await km.go_all(STREAM_ID, 1)
        for slot in K.KeySlot.all(1):
            ctx.expect(await km.go_stop(STREAM_ID, slot, go=False), f"no ACK for K_SET_STOP {slot}")
        # A stopped set is no longer in use: the next key refresh programs it again, so
        # KEY_PROG of it must succeed (§6.33.3 key refresh; a set still in use may be refused).
        again = await _program(ctx, km, 1)
        bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in again if a.outcome]
        ctx.expect(
            not bad,
            f"KEY_PROG of key set 1 after K_SET_STOP of it refused: {bad}; a stopped key set "
            f"is free for the next refresh ({SPEC})",
        )


async def _session_end_wipes_keys(ctx: VectorContext, *, link: bool = False) -> None:
    """Session A keys the stream and makes it Secure, then ends.  §6.33.3: once that session
    has ended, the first QUERY or KEY_PROG over another session must first invalidate every key
    of the streams it bound, which takes a Secure stream to Insecure, before the response.
    With ``link`` the stream is Link IDE block 0 (n/a where Link IDE is not advertised)."""
    label = "Link IDE Streams"
    if link:
        _require(await config_ide_capability(ctx), _CAP_LINK, label)
    stream_id = _LINK_STREAM_ID if link else STREAM_ID
    async with _km(ctx) as first:
        cap = (await first.query()).capability.value
        if link:
            _require(cap, _CAP_LINK, label)
            regs: StreamRegs | LinkBlock = await first.setup_link(0, stream_id, _LINK_TC)
        else:
            regs = await first.setup_stream(0, stream_id)
        await first.program_all(stream_id, 0)
        await first.go_all(stream_id, 0)
        state = await first.enable(regs, stream_id, _LINK_TC << 19 if link else 0)
        ctx.expect(state == K.IdeStreamState.SECURE, f"stream state {state:#x} after GO and Enable")
        await first.spdm.end_session(first.session)
    try:
        async with _km(ctx) as second:
            await second.query()
            state = (await ctx.config.read32(regs.status)) & 0xF
            ctx.expect(
                state == K.IdeStreamState.INSECURE,
                f"stream state {state:#x} after a new session's QUERY; {SPEC} (session binding): "
                "the keys programmed over an ended session are invalidated first",
            )
    finally:
        if link:
            await tidy(ctx, "link_disable", ctx.config.write32(regs.control, 0))


@vector(
    "ide_km.session_end.wipes_keys",
    title="After the owning session ends, a new session's first QUERY leaves the stream Insecure",
    spec="PCIe 6.x §6.33.3 (session binding: a new session's first QUERY/KEY_PROG wipes the "
    "keys), §6.33.1 (stream state)",
    needs=NEEDS,
)
async def session_end_wipes_keys(ctx: VectorContext) -> None:
    await _session_end_wipes_keys(ctx)


@vector(
    "ide_km.session_end.wipes_keys.link",
    title="On a Link IDE Stream (where advertised): after the owning session ends, a new "
    "session's first QUERY leaves the Link stream Insecure",
    spec="PCIe 6.x §6.33.3 (session binding: a new session's first QUERY/KEY_PROG wipes the "
    "keys of the streams it bound), §7.9.26.4 (Link IDE Stream registers)",
    needs=NEEDS,
)
async def session_end_wipes_keys_link(ctx: VectorContext) -> None:
    await _session_end_wipes_keys(ctx, link=True)


@vector(
    "ide_km.key_prog.bad_fields",
    title="KEY_PROG with a bad port, sub-stream or size gets the KP_ACK status for it (or none)",
    spec="PCIe 6.x §6.33.3 (KP_ACK Status; payload size), §6.33.5 (Sub-Stream encodings)",
    needs=MESSAGING,
)
async def key_prog_bad_fields(ctx: VectorContext) -> None:
    """What §6.33.3 asks, case by case:

    - a PortIndex beyond QUERY_RESP's MaxPortIndex: KP_ACK 02h ("a Port implementing the
      Responder role must acknowledge receipt of a KEY_PROG command by returning KP_ACK", whose
      Status 02h is "Unsupported value in PortIndex");
    - a reserved Key Sub-Stream (0011b; the Sub-Stream encodings of §6.33.5): KP_ACK 03h, since
      no key can be programmed for a sub-stream that does not exist;
    - a KEY_PROG of 40 bytes: "the size of the VendorDefinedReqPayload must match the size of
      the data object ... if it is a request, must not result in a response", while KP_ACK has a
      Status 01h "Incorrect Length": no answer or KP_ACK 01h, nothing else;
    - a Stream ID no register holds: §6.33.3 does not say that KEY_PROG must fail for it (Linux
      writes the Stream ID first because some devices need it), so any KP_ACK will do; its
      Status is recorded.
    """
    findings: list[str] = []
    async with _km(ctx) as km:
        query = await km.query()
        await km.setup_stream(0, STREAM_ID)
        slot = K.KeySlot(0, 0, 0)
        key = bytes(range(32))
        port = km.port_index

        def ack_status(answer: K.IdeKmMessage | str | None) -> int | None:
            return answer.status if isinstance(answer, K.KpAck) else None

        if query.max_port_index < 0xFF:
            bad_port = query.max_port_index + 1
            msg = K.KeyProg(stream_id=STREAM_ID, slot=slot, key=key, port_index=bad_port)
            answer = await _answer(km, msg.encode())
            if ack_status(answer) != K.KpAckStatus.UNSUPPORTED_PORT_INDEX:
                findings.append(
                    f"KEY_PROG for PortIndex {bad_port} (MaxPortIndex {query.max_port_index}) "
                    f"answered by {_describe(answer)}, expected KP_ACK status 02h"
                )
        else:
            ctx.log.info("MaxPortIndex is FFh: no PortIndex is out of range")

        reserved = bytearray(K.KeyProg(stream_id=STREAM_ID, slot=slot, key=key).encode())
        reserved[6] = 0x30  # sub-stream 0011b: reserved
        reserved[7] = port
        answer = await _answer(km, bytes(reserved))
        if ack_status(answer) != K.KpAckStatus.UNSUPPORTED_VALUE:
            findings.append(
                f"KEY_PROG for reserved Sub-Stream 0011b answered by {_describe(answer)}, "
                "expected KP_ACK status 03h"
            )

        short = K.KeyProg(stream_id=STREAM_ID, slot=slot, key=key, port_index=port).encode()[:40]
        answer = await _answer(km, short)
        if answer is not None and ack_status(answer) != K.KpAckStatus.INCORRECT_LENGTH:
            findings.append(
                f"a 40-byte KEY_PROG answered by {_describe(answer)}; a request of the wrong size "
                "must get "
                "no response (or KP_ACK status 01h)"
            )

        msg = K.KeyProg(stream_id=0x99, slot=slot, key=key, port_index=port)
        answer = await _answer(km, msg.encode())
        status = ack_status(answer)
        if status is None:
            findings.append(
                f"KEY_PROG of an unconfigured Stream ID answered by {_describe(answer)}, not KP_ACK"
            )
        else:
            ctx.measure("unconfigured_stream_kp_ack_status", status, "")
    ctx.expect(not findings, f"{'; '.join(findings)} ({SPEC})")


@vector(
    "ide_km.outside_session.ignored",
    title="IDE_KM outside a secured session gets no answer",
    spec="PCIe 6.x §6.33.3",
    needs=MESSAGING,
)
async def outside_session_ignored(ctx: VectorContext) -> None:
    """§6.33.3: "If any IDE_KM data object is received that has not been transferred securely
    per [Secured-SPDM], the received data object must not be used for key management, and, if
    it is a request, must not result in a response."  An SPDM ERROR is a response too."""
    port = ctx.ide_km_port_index
    # One requester, one connection (a socket rig's responder serves one at a time).  QUERY in
    # the clear first, while no session has bound the streams; the rule covers every request,
    # and a device has streams to act on once a session owns them: that session configures a
    # stream and loads key set 0's first slot, then KEY_PROG, K_SET_GO and K_SET_STOP of that
    # slot come in the clear.
    async with _km(ctx) as owner:
        await _in_the_clear(ctx, owner.spdm, "QUERY", K.Query(port_index=port))
        await owner.query()
        await owner.setup_stream(0, STREAM_ID)
        slot = K.KeySlot(0, K.KeyDirection.RX, 0)
        kp = K.KeyProg(stream_id=STREAM_ID, slot=slot, key=os.urandom(32), port_index=port)
        await _answer(owner, kp.encode())
        for name, msg in (
            ("KEY_PROG", kp),
            ("K_SET_GO", K.KSetGo(stream_id=STREAM_ID, slot=slot, port_index=port)),
            ("K_SET_STOP", K.KSetStop(stream_id=STREAM_ID, slot=slot, port_index=port)),
        ):
            await _in_the_clear(ctx, owner.spdm, name, msg)


async def _in_the_clear(
    ctx: VectorContext, req: SpdmRequester, name: str, msg: K.IdeKmMessage
) -> None:
    vdm = S.VendorDefinedRequest.pci_sig(
        S.PciProtocolId.IDE_KM, msg.encode()[1:], version=req.version
    )
    answer = await answer_in_the_clear(req, vdm.encode())
    ctx.expect(
        answer is None,
        f"IDE_KM {name} in the clear was answered with {answer}; {SPEC}: an IDE_KM request not "
        "sent in a secured session must not result in a response",
    )


@vector(
    "ide_km.session_binding",
    title="While one session owns the streams, IDE_KM from another session is dropped",
    spec="PCIe 6.x §6.33.3 (session binding)",
    needs=MESSAGING,
)
async def session_binding(ctx: VectorContext) -> None:
    """§6.33.3: "For a given IDE Stream, once a secure [SPDM] session has been used to respond
    to one QUERY or KEY_PROG request: while the secure [SPDM] session that was used for initial
    key programming remains open, all QUERY and/or KEY_PROG requests that are received through
    a different secure [SPDM] session must be discarded by the Responder, and must not result
    in a response".  The owner QUERYs and programs one key of STREAM_ID: a KP_ACK Success shows
    that stream exists for IDE_KM even where QUERY_RESP lists none.  A port that lists no
    stream and takes no key has no stream to bind: not applicable."""
    async with _km(ctx) as owner:
        query = await owner.query()
        await owner.setup_stream(0, STREAM_ID)
        slot = K.KeySlot(0, K.KeyDirection.RX, 0)
        kp = K.KeyProg(
            stream_id=STREAM_ID, slot=slot, key=os.urandom(32), port_index=owner.port_index
        )
        ack = await _answer(owner, kp.encode())
        keyed = isinstance(ack, K.KpAck) and ack.outcome == K.KpAckStatus.SUCCESS
        streams = query.capability.link_block_count + query.capability.selective_block_count
        if not keyed and not streams:
            raise NotApplicable("the port lists no IDE Stream and took no key: nothing to bind")
        other_session = await owner.spdm.key_exchange(req_session_id=0xC0DE)
        intruder = IdeKmRequester(
            owner.spdm, other_session, ctx.config_if_any, port_index=owner.port_index
        )
        requests: list[tuple[str, K.IdeKmMessage]] = [
            ("QUERY", K.Query(port_index=owner.port_index))
        ]
        if keyed:
            requests.append(("KEY_PROG", kp))
        for name, msg in requests:
            answer = await _answer(intruder, msg.encode())
            ctx.expect(
                answer is None,
                f"a second session's {name} was answered by {_describe(answer)}; {SPEC}: while "
                "the session that bound the stream is open, QUERY/KEY_PROG from another session "
                "must not result in a response",
            )
        await owner.query()  # the owner still is
        await tidy(ctx, "other_end_session", owner.spdm.end_session(other_session))


# --------------------------------------------------------------------------------------------
# KP_ACK: one status per vector
# --------------------------------------------------------------------------------------------

_KP_ACK = f"{SPEC} (KP_ACK Status)"


def _echoes(ack: K.KpAck, sent: bytes) -> bool:
    """KP_ACK repeats the request's Stream ID, Key Sub-Stream and PortIndex (bytes 4, 6, 7)."""
    head = ack.encode()
    return (head[4], head[6], head[7]) == (sent[4], sent[6], sent[7])


async def _kp_ack_cases(
    ctx: VectorContext,
    km: IdeKmRequester,
    cases: list[tuple[str, bytes]],
    want: K.KpAckStatus,
    *,
    silence_allowed: bool = False,
    spec: str = _KP_ACK,
) -> None:
    """Send each raw KEY_PROG; each must get KP_ACK ``want`` repeating its fields (or, with
    ``silence_allowed``, no answer)."""
    findings: list[str] = []
    for what, payload in cases:
        answer = await _answer(km, payload)
        if answer is None and silence_allowed:
            ctx.log.info("%s: no answer", what)
            continue
        if not isinstance(answer, K.KpAck) or answer.status != want:
            findings.append(f"{what} answered by {_describe(answer)}")
        elif not _echoes(answer, payload):
            findings.append(f"{what}: KP_ACK does not repeat Stream ID, Sub-Stream and PortIndex")
    ctx.measure("cases", len(cases), "", low=1)
    ctx.expect(
        not findings, f"{'; '.join(findings)}; expected KP_ACK status {int(want):02x}h ({spec})"
    )


def _key_prog(km: IdeKmRequester, **kwargs: int) -> bytearray:
    fields = {"stream_id": STREAM_ID, "port_index": km.port_index, "ifv": 1} | kwargs
    slot = K.KeySlot(0, K.KeyDirection.RX, 0)
    return bytearray(K.KeyProg(slot=slot, key=os.urandom(32), **fields).encode())


@vector(
    "ide_km.kp_ack.incorrect_length",
    title="KEY_PROG four bytes short or four bytes long gets KP_ACK 01h (Incorrect Length) or "
    "no answer",
    spec=f"{_KP_ACK}: 01h Incorrect Length; payload size rule",
    needs=MESSAGING,
)
async def kp_ack_incorrect_length(ctx: VectorContext) -> None:
    """A request whose size does not match its object "must not result in a response"
    (§6.33.3), and KP_ACK has Status 01h for it: one of the two, never Success."""
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        whole = bytes(_key_prog(km))
        cases = [
            ("a 44-byte KEY_PROG", whole[:44]),
            ("a 52-byte KEY_PROG", whole + bytes(4)),
        ]
        await _kp_ack_cases(ctx, km, cases, K.KpAckStatus.INCORRECT_LENGTH, silence_allowed=True)


@vector(
    "ide_km.kp_ack.unsupported_port_index",
    title="KEY_PROG for a PortIndex past MaxPortIndex gets KP_ACK 02h",
    spec=f"{_KP_ACK}: 02h Unsupported PortIndex; QUERY_RESP MaxPortIndex",
    needs=MESSAGING,
)
async def kp_ack_unsupported_port_index(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        query = await km.query()
        await km.setup_stream(0, STREAM_ID)
        if query.max_port_index == 0xFF:
            raise NotApplicable("MaxPortIndex is FFh: every PortIndex names a port")
        ports = sorted({query.max_port_index + 1, 0xFF})
        cases = [
            (
                f"KEY_PROG for PortIndex {p} (MaxPortIndex {query.max_port_index})",
                bytes(_key_prog(km, port_index=p)),
            )
            for p in ports
        ]
        await _kp_ack_cases(ctx, km, cases, K.KpAckStatus.UNSUPPORTED_PORT_INDEX)


@vector(
    "ide_km.kp_ack.unsupported_sub_stream",
    title="KEY_PROG for a reserved Sub-Stream (0011b, 0100b, 1111b) gets KP_ACK 03h",
    spec=f"{_KP_ACK}: 03h Unsupported value; §6.33.5 (Sub-Stream encodings)",
    needs=MESSAGING,
)
async def kp_ack_unsupported_sub_stream(ctx: VectorContext) -> None:
    """Only 000b PR, 001b NPR and 010b CPL name a sub-stream (§6.33.5); a port that took a key
    for another would have to put it in some real sub-stream's slot."""
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        cases = []
        for sub in (0b0011, 0b0100, 0b1111):
            payload = _key_prog(km)
            payload[6] = sub << 4
            cases.append((f"KEY_PROG for Sub-Stream {sub:04b}b", bytes(payload)))
        await _kp_ack_cases(ctx, km, cases, K.KpAckStatus.UNSUPPORTED_VALUE)


@vector(
    "ide_km.kp_ack.unsupported_ifv",
    title="KEY_PROG with an IFV other than 1 (0, 2, 2^63) gets KP_ACK 03h",
    spec=f"{_KP_ACK}: 03h Unsupported value; §6.33.5 (the invocation field starts at 1)",
    needs=MESSAGING,
)
async def kp_ack_unsupported_ifv(ctx: VectorContext) -> None:
    """§6.33.5 starts the IV's invocation field at 1 for each key; a port that took another
    initial value would count from a value the other end does not."""
    async with _km(ctx) as km:
        await km.query()
        await km.setup_stream(0, STREAM_ID)
        cases = [
            (f"KEY_PROG with IFV {ifv:#x}", bytes(_key_prog(km, ifv=ifv)))
            for ifv in (0, 2, 1 << 63)
        ]
        spec = f"{_KP_ACK}; §6.33.5: the invocation field starts at 1"
        await _kp_ack_cases(ctx, km, cases, K.KpAckStatus.UNSUPPORTED_VALUE, spec=spec)


@vector(
    "ide_km.kp_ack.unsupported_stream_id",
    title="KEY_PROG for a Stream ID no stream is configured with gets KP_ACK 03h (or Success "
    "from a port that keys streams before their registers)",
    spec=f"{_KP_ACK}: 03h Unsupported value in another field",
    needs=NEEDS,
)
async def kp_ack_unsupported_stream_id(ctx: VectorContext) -> None:
    """With every stream's Stream ID written in configuration space, a KEY_PROG for another
    Stream ID names no stream.  §6.33.3 does not force a refusal (some ports key a stream
    before its registers are written), but a refusal must be 03h, the status for a value the
    port does not support, and the KP_ACK must repeat the request's fields."""
    async with _km(ctx) as km:
        query = await km.query()
        await km.setup_stream(0, STREAM_ID)
        for j in range(1, len(query.selective_blocks)):
            await km.setup_stream(j, (STREAM_ID + j) & 0xFF)
        unknown = (STREAM_ID + 0x80) & 0xFF
        payload = bytes(_key_prog(km, stream_id=unknown))
        answer = await _answer(km, payload)
        ctx.expect(
            isinstance(answer, K.KpAck)
            and answer.status in (K.KpAckStatus.SUCCESS, K.KpAckStatus.UNSUPPORTED_VALUE)
            and _echoes(answer, payload),
            f"KEY_PROG for unconfigured Stream ID {unknown:#x} answered by {_describe(answer)}; "
            f"expected a KP_ACK repeating its fields with status 03h or 00h ({_KP_ACK})",
        )
        assert isinstance(answer, K.KpAck)
        ctx.measure("kp_ack_status", answer.status, "")


# --------------------------------------------------------------------------------------------
# Key sets: K1 alone, K0 -> K1 -> K0, K_SET_STOP of the old set
# --------------------------------------------------------------------------------------------


async def _secure(ctx: VectorContext, regs: StreamRegs, when: str) -> None:
    state = (await ctx.config.read32(regs.status)) & 0xF
    ctx.measure(
        f"state_{when}", state, "", low=K.IdeStreamState.SECURE, high=K.IdeStreamState.SECURE
    )


@vector(
    "ide_km.k_set_go.key_set_1",
    title="Key set 1 alone (KEY_PROG, K_SET_GO of its six slots, Enable) brings the stream to "
    "Secure",
    spec=f"{SPEC} (KeySet bit), §6.33.1 (stream state), §7.9.26.5.3",
    needs=NEEDS,
)
async def k_set_go_key_set_1(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        await km.query()
        regs = await km.setup_stream(0, STREAM_ID)
        acks = await km.program_all(STREAM_ID, 1)
        bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in acks if a.outcome]
        ctx.expect(not bad, f"KP_ACK failures for key set 1: {bad}")
        await km.go_all(STREAM_ID, 1)
        state = await km.enable(regs, STREAM_ID)
        ctx.expect(
            state == K.IdeStreamState.SECURE,
            f"stream state {state:#x} with key set 1 armed and Enable set ({SPEC})",
        )


@vector(
    "ide_km.key_set.switch",
    title="K0 -> K1 -> K0: each K_SET_GO of the other set is acknowledged, the stream stays "
    "Secure, and K_SET_STOP of the old set leaves it Secure and free for the next KEY_PROG",
    spec=f"{SPEC} (key refresh, K_SET_STOP), §6.33.1 (stream state)",
    needs=NEEDS,
)
async def key_set_switch(ctx: VectorContext) -> None:
    """The refresh of §6.33.3 twice over: program the set not in use, K_SET_GO it (Rx then Tx),
    K_SET_STOP the old one.  K_SET_STOP "does not by itself" make a stream Insecure, and a
    stopped set is no longer in use, so the next refresh's KEY_PROG of it must succeed."""
    async with _km(ctx) as km:
        await km.query()
        regs = await km.setup_stream(0, STREAM_ID)
        acks = await km.program_all(STREAM_ID, 0)
        ctx.expect(not [a for a in acks if a.outcome], "KP_ACK failures for key set 0")
        await km.go_all(STREAM_ID, 0)
        state = await km.enable(regs, STREAM_ID)
        ctx.expect(state == K.IdeStreamState.SECURE, f"stream state {state:#x} on key set 0")
        for new, old in ((1, 0), (0, 1)):
            acks = await km.program_all(STREAM_ID, new)
            bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in acks if a.outcome]
            ctx.expect(not bad, f"KEY_PROG of key set {new} (not in use) refused: {bad}")
            await km.go_all(STREAM_ID, new)
            await _secure(ctx, regs, f"after_go_k{new}")
            for slot in K.KeySlot.all(old):
                ctx.expect(
                    await km.go_stop(STREAM_ID, slot, go=False),
                    f"no K_GOSTOP_ACK for K_SET_STOP of old key set {old} {slot}",
                )
            await _secure(ctx, regs, f"after_stop_k{old}")
        # K0 is in use again and K1 stopped: the next refresh's KEY_PROG of K1 goes through.
        again = await km.program_all(STREAM_ID, 1)
        bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in again if a.outcome]
        ctx.expect(not bad, f"KEY_PROG of stopped key set 1 refused: {bad}")


@vector(
    "ide_km.port_index.nonzero",
    title="Every PortIndex up to MaxPortIndex is answered for itself: QUERY_RESP, KEY_PROG and "
    "K_SET_GO/STOP at a non-zero PortIndex",
    spec=f"{SPEC} (PortIndex, MaxPortIndex)",
    needs=MESSAGING,
)
async def port_index_nonzero(ctx: VectorContext) -> None:
    async with _km(ctx) as km:
        query = await km.query()
        if query.max_port_index == 0:
            raise NotApplicable("MaxPortIndex is 0: the responder presents one port")
        ctx.measure("max_port_index", query.max_port_index, "", low=1)
        await km.setup_stream(0, STREAM_ID)
        port = query.max_port_index
        rsp = await km.request(K.Query(port_index=port), strict=False)
        ctx.expect(
            isinstance(rsp, K.QueryResp) and rsp.port_index == port,
            f"QUERY of PortIndex {port} answered by {_describe(rsp)} ({SPEC})",
        )
        target = IdeKmRequester(km.spdm, km.session, ctx.config_if_any, port_index=port)
        acks = await target.program_all(STREAM_ID, 0)
        bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in acks if a.outcome]
        ctx.expect(not bad, f"KEY_PROG at PortIndex {port} refused: {bad}")
        ctx.expect(
            all(a.port_index == port for a in acks), f"KP_ACK for PortIndex {port} names another"
        )
        await target.go_all(STREAM_ID, 0)
        slot = K.KeySlot(0, K.KeyDirection.RX, 0)
        ctx.expect(
            await target.go_stop(STREAM_ID, slot, go=False),
            f"no K_GOSTOP_ACK for K_SET_STOP at PortIndex {port}",
        )


# --------------------------------------------------------------------------------------------
# Optional Selective IDE configurations: each runs where the IDE Capability advertises it
# --------------------------------------------------------------------------------------------


class _Config:
    """One optional IDE configuration: the IDE Capability bits that advertise it and the
    Stream Control bits that select it (§7.9.26.2, §7.9.26.5.2); with ``link``, on Link IDE
    Stream block 0 for TC ``_LINK_TC`` (§7.9.26.4) instead of Selective block 0."""

    def __init__(
        self, name: str, label: str, cap_bit: int, control: int, *, link: bool = False
    ) -> None:
        self.name = name
        self.label = label
        self.cap_bit = cap_bit
        self.control = control
        self.link = link


#: A Link stream's Stream ID differs from the Selective vectors' (IDs are unique across a
#: Port's enabled streams, §6.33.4); its TC is not the plain path's TC0.
_LINK_STREAM_ID = 0x4C
_LINK_TC = 1
_CAP_LINK = 1 << 0


_CONFIGS = (
    _Config("selective_pcrc", "PCRC", 1 << 5, 1 << 8),
    # Tx aggregation of up to 2 TLPs for NPR, PR and CPL (01b in [3:2], [5:4], [7:6]).
    _Config("selective_aggregation", "Aggregation", 1 << 4, 0b01_01_01 << 2),
    # Partial Header Encryption of Address[17:2] (mode 0001b in [13:10]).
    _Config("selective_phe", "Partial Header Encryption", 1 << 3, 0b0001 << 10),
    _Config("selective_tee_limited", "TEE-Limited Stream", 1 << 24, 1 << 23),
    _Config("link", "a Link IDE Stream", _CAP_LINK, _LINK_TC << 19, link=True),
    _Config(
        "link_pcrc",
        "a Link IDE Stream with PCRC",
        _CAP_LINK | 1 << 5,
        _LINK_TC << 19 | 1 << 8,
        link=True,
    ),
    _Config(
        "link_phe",
        "a Link IDE Stream with Partial Header Encryption",
        _CAP_LINK | 1 << 3,
        _LINK_TC << 19 | 0b0001 << 10,
        link=True,
    ),
)
_CONTROL_SPEC = "§7.9.26.5.2 (Selective IDE Stream Control), §7.9.26.2 (IDE Capability)"


async def _advertised(ctx: VectorContext, km: IdeKmRequester) -> int:
    """The port's IDE Capability, as QUERY_RESP reports it (checked against config space)."""
    return (await km.query()).capability.value


async def _secure_with(ctx: VectorContext, km: IdeKmRequester, config: _Config) -> None:
    """Stream 0 configured with ``config``'s control bits, keyed, armed and enabled: the bits
    must hold and the stream must be Secure.  The stream is disabled again on the way out, its
    configuration bits cleared: a Link stream so that its TC's plain TLPs pass (§6.33.4); a
    Selective one so that a long-lived device does not keep a stream enabled under a mode the
    next user did not choose (a host probing the device again claims an enabled stream's ID,
    Linux's pci_ide_init)."""
    try:
        await _keyed_and_enabled(ctx, km, config, _LINK_STREAM_ID if config.link else STREAM_ID)
    finally:
        if ctx.config is not None:
            if config.link:
                control = (await km.link_regs(0)).control
            else:
                control = (await stream_regs(ctx.config, 0)).control
            await tidy(ctx, "stream_disable", ctx.config.write32(control, 0))


async def _keyed_and_enabled(
    ctx: VectorContext, km: IdeKmRequester, config: _Config, stream_id: int
) -> None:
    if config.link:
        regs: StreamRegs | LinkBlock = await km.setup_link(0, stream_id, _LINK_TC)
    else:
        regs = await km.setup_stream(0, stream_id)
    control = (stream_id << 24) | config.control
    await ctx.config.write32(regs.control, control)
    held = await ctx.config.read32(regs.control)
    ctx.expect(
        held & config.control == config.control,
        f"{config.label} is advertised, but Stream Control reads {held:#010x} after "
        f"{control:#010x} was written (PCIe 6.x {_CONTROL_SPEC})",
    )
    acks = await km.program_all(stream_id, 0)
    bad = [(a.slot, K.KpAckStatus(a.outcome).name) for a in acks if a.outcome]
    ctx.expect(not bad, f"KP_ACK failures with {config.label}: {bad}")
    await km.go_all(stream_id, 0)
    await ctx.config.write32(regs.control, control | 1)
    state = (await ctx.config.read32(regs.status)) & 0xF
    ctx.expect(
        state == K.IdeStreamState.SECURE,
        f"stream state {state:#x} with {config.label} selected, keys armed and Enable set "
        f"({SPEC}, §6.33.1)",
    )
    held = await ctx.config.read32(regs.control)
    ctx.expect(
        held & (config.control | 1) == config.control | 1,
        f"Stream Control {held:#010x} lost {config.label} or Enable once Secure",
    )


def _k_set_go_under(config: _Config) -> Vector:
    async def run(ctx: VectorContext) -> None:
        _require(await config_ide_capability(ctx), config.cap_bit, config.label)
        async with _km(ctx) as km:
            _require(await _advertised(ctx, km), config.cap_bit, config.label)
            await _secure_with(ctx, km, config)

    if config.link:
        title = (
            f"On {config.label} (where advertised), KEY_PROG, K_SET_GO and Enable bring the "
            "Link stream to Secure, with no RID association, and its Control holds"
        )
        spec = f"{SPEC}, PCIe 6.x §7.9.26.4 (Link IDE Stream Control), §7.9.26.2"
    else:
        title = (
            f"With {config.label} selected in Stream Control (where advertised), K_SET_GO and "
            "Enable bring the stream to Secure and the selection holds"
        )
        spec = f"{SPEC}, PCIe 6.x {_CONTROL_SPEC}"
    return vector(f"ide_km.k_set_go.{config.name}", title=title, spec=spec, needs=NEEDS)(run)


k_set_go_selective_pcrc = _k_set_go_under(_CONFIGS[0])
k_set_go_selective_aggregation = _k_set_go_under(_CONFIGS[1])
k_set_go_selective_phe = _k_set_go_under(_CONFIGS[2])
k_set_go_selective_tee_limited = _k_set_go_under(_CONFIGS[3])
k_set_go_link = _k_set_go_under(_CONFIGS[4])
k_set_go_link_pcrc = _k_set_go_under(_CONFIGS[5])
k_set_go_link_phe = _k_set_go_under(_CONFIGS[6])


#: Selective IDE Stream Control bit 9, Configuration Requests Enable: a Root Port's; reserved
#: (reads 0) in an endpoint's stream (§7.9.26.5.2).
_CONFIG_REQUESTS_ENABLE = _Config("config_requests", "Configuration Requests Enable", 0, 1 << 9)


@vector(
    "ide_km.stream_control.unadvertised_modes_zero",
    title="Stream Control bits of a mode the IDE Capability does not advertise, and the Root "
    "Port's Configuration Requests Enable, read 0 after a write of 1s",
    spec=f"PCIe 6.x {_CONTROL_SPEC}: hardwired to 0 when not supported; bit 9 Root Ports only",
    needs=NEEDS,
)
async def unadvertised_modes_zero(ctx: VectorContext) -> None:
    """The device under test is an endpoint: bit 9 is reserved in its streams whatever it
    advertises, so there is always at least one bit to check."""
    async with _km(ctx) as km:
        cap = await _advertised(ctx, km)
        absent = [c for c in _CONFIGS if not c.link and not cap & c.cap_bit] + [
            _CONFIG_REQUESTS_ENABLE
        ]
        regs = await km.setup_stream(0, STREAM_ID)
        findings = []
        for config in absent:
            await ctx.config.write32(regs.control, (STREAM_ID << 24) | config.control)
            held = await ctx.config.read32(regs.control)
            if held & config.control:
                findings.append(f"{config.label} (not supported) reads {held:#010x}")
        await ctx.config.write32(regs.control, STREAM_ID << 24)
        ctx.measure("bits_checked", len(absent), "", low=1)
        ctx.expect(not findings, f"{'; '.join(findings)} (PCIe 6.x {_CONTROL_SPEC})")
