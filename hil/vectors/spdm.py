"""SPDM vectors any responder can be held to (DSP0274 1.2, DSP0277, PCIe 6.x §6.31 CMA)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..codec import spdm as S
from ..codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from ..errors import DoeTimeout, PeerProtocolError
from ..host.spdm import SpdmErrorResponse, SpdmRequester
from ._answers import describe_spdm
from ._execute import Skip
from ._model import VectorContext, vector

NEEDS = {"spdm"}


async def _expect_error(ctx: VectorContext, coro, code: int, what: str) -> None:
    try:
        await coro
    except SpdmErrorResponse as exc:
        ctx.expect(
            exc.code == code,
            f"{what}: ERROR {S.ErrorCode(exc.code).name}, expected {S.ErrorCode(code).name}",
        )
        return
    ctx.expect(False, f"{what}: answered normally, expected ERROR {S.ErrorCode(code).name}")


@vector(
    "spdm.version.well_formed",
    title="VERSION lists 1.2 among well-formed, ascending, distinct entries in a 1.0 header",
    spec="DSP0274 1.2 §10.3 (GET_VERSION)",
    needs=NEEDS,
)
async def version_well_formed(ctx: VectorContext) -> None:
    req = await ctx.spdm()
    rsp = await req.get_version()
    entries = [e.to_int() for e in rsp.entries]
    ctx.measure("version_entries", len(entries), "", low=1)
    ctx.expect(rsp.version == S.SpdmVersion.V10, f"VERSION header version {rsp.version:#x}")
    ctx.expect(len(set(entries)) == len(entries), f"duplicate entries {entries}")
    ctx.expect(any(e.version == 0x12 for e in rsp.entries), f"no SPDM 1.2 in {entries}")


@vector(
    "spdm.capabilities.flag_rules",
    title="CAPABILITIES flags are consistent and meet the PCIe CMA and TEE-IO minimum",
    spec="DSP0274 1.2 §10.4; PCIe 6.x §6.31.3-4",
    needs=NEEDS,
)
async def capabilities_flag_rules(ctx: VectorContext) -> None:
    req = await ctx.spdm()
    await req.get_version()
    caps = await req.get_capabilities()
    f = S.CapFlag(caps.flags)
    ctx.expect(
        not (f & S.CapFlag.MEAS_NO_SIG and f & S.CapFlag.MEAS_SIG), "MEAS_CAP is 11b (reserved)"
    )
    secure = bool(f & (S.CapFlag.ENCRYPT | S.CapFlag.MAC))
    ctx.expect(secure == bool(f & S.CapFlag.KEY_EX), f"ENCRYPT/MAC and KEY_EX disagree: {f!r}")
    for need in (S.CapFlag.CERT, S.CapFlag.MEAS_SIG, S.CapFlag.ENCRYPT, S.CapFlag.MAC):
        ctx.expect(f & need, f"a TEE-IO device needs {need.name}: flags {caps.flags:#x}")
    ctx.measure("ct_exponent", caps.ct_exponent, "", high=23)
    ctx.measure("data_transfer_size", caps.data_transfer_size, "B", low=42)
    ctx.expect(
        caps.max_spdm_msg_size >= caps.data_transfer_size,
        f"MaxSPDMmsgSize {caps.max_spdm_msg_size} below DataTransferSize",
    )


@vector(
    "spdm.capabilities.second_request",
    title="A second GET_CAPABILITIES after CAPABILITIES is an unexpected request",
    spec="DSP0274 1.2 §10.4, §9 (request ordering)",
    needs=NEEDS,
)
async def capabilities_second_request(ctx: VectorContext) -> None:
    req = await ctx.spdm()
    await req.get_version()
    await req.get_capabilities()
    different = S.GetCapabilities(
        version=req.version,
        ct_exponent=10,
        flags=S.CapFlag.CERT,
        data_transfer_size=1024,
        max_spdm_msg_size=1024,
    )
    await _expect_error(
        ctx, req.request(different), S.ErrorCode.UNEXPECTED_REQUEST, "second GET_CAPABILITIES"
    )


@vector(
    "spdm.algorithms.selected_from_offer",
    title="ALGORITHMS selects exactly one of each offered algorithm, PCIe CMA minimum met",
    spec="DSP0274 1.2 §10.5; PCIe 6.x §6.31.3",
    needs=NEEDS,
)
async def algorithms_selected_from_offer(ctx: VectorContext) -> None:
    req = await ctx.spdm()
    await req.get_version()
    await req.get_capabilities()
    rsp = await req.negotiate_algorithms()
    structs = {s.alg_type: s.supported for s in rsp.alg_structs}
    ctx.expect(
        structs.get(S.AlgType.AEAD) == S.AeadSuite.AES_256_GCM,
        f"AEAD selection {structs.get(S.AlgType.AEAD)!r}: PCIe CMA needs AES-256-GCM",
    )
    dhe = structs.get(S.AlgType.DHE, 0)
    ctx.expect(dhe in (S.DheGroup.SECP256R1, S.DheGroup.SECP384R1), f"DHE selection {dhe:#x}")
    ctx.expect(structs.get(S.AlgType.KEY_SCHEDULE) == S.KeySchedule.SPDM, "key schedule not SPDM")
    ctx.expect(
        rsp.measurement_specification_sel == S.MeasurementSpec.DMTF,
        f"MeasurementSpecificationSel {rsp.measurement_specification_sel:#x}",
    )


async def _authenticated(ctx: VectorContext) -> SpdmRequester:
    req = await ctx.spdm()
    await req.connect()
    return req


async def _each_version(ctx: VectorContext) -> AsyncIterator[tuple[str, SpdmRequester]]:
    """A connected requester at each SPDM version both sides speak (1.2, 1.3): where the
    versions differ (RequesterContext, signing context, key schedule labels) each is checked.
    The rig may pin the versions (settings ``spdm_versions``, e.g. ["1.2"])."""
    req = await ctx.spdm()  # one transport: a socket rig's responder serves one connection
    await req.get_version()
    offered = {e.version for e in req.responder_versions}
    common = [v for v in req.versions if v in offered]
    ctx.measure("spdm_versions_checked", len(common), "", low=1)
    for version in common:
        req.versions = (version,)
        await req.connect()  # GET_VERSION resets the responder's connection state (§10.3)
        yield S.SpdmVersion(version).text, req


@vector(
    "spdm.digests.match_chain",
    title="DIGESTS slot 0 is the hash of the certificate chain CERTIFICATE returns",
    spec="DSP0274 1.2 §10.6-10.7",
    needs=NEEDS,
)
async def digests_match_chain(ctx: VectorContext) -> None:
    req = await _authenticated(ctx)
    digests = await req.get_digests()
    ctx.expect(digests.slot_mask & 1, f"slot 0 not provisioned (mask {digests.slot_mask:#x})")
    chain = await req.get_certificate()
    ctx.measure("cert_chain_bytes", len(chain), "B")
    ctx.expect(digests.digests[0] == req.hash_alg.digest(chain), "slot 0 digest is not H(chain)")


@vector(
    "spdm.certificate.chain_valid",
    title="The certificate chain is well formed and valid to the rig's trust anchor",
    spec="DSP0274 1.2 §10.7; PCIe 6.x §6.31.3 (leaf SAN)",
    needs=NEEDS,
)
async def certificate_chain_valid(ctx: VectorContext) -> None:
    req = await _authenticated(ctx)
    if req.trust_anchor is None:
        ctx.log.warning("rig names no trust_anchor: the chain is checked for form only")
    await req.get_digests()
    await req.get_certificate()  # validates against the anchor when there is one
    ctx.measure("certificates", len(req.certificates), "", low=1)
    leaf = req.certificates[-1]
    ctx.expect(leaf.public_key() is not None, "leaf without a public key")


@vector(
    "spdm.challenge.signature",
    title="CHALLENGE_AUTH is signed by the leaf key over the M1 transcript",
    spec="DSP0274 1.2 §10.8, §15 (signing)",
    needs=NEEDS,
)
async def challenge_signature(ctx: VectorContext) -> None:
    async for text, req in _each_version(ctx):
        await req.get_digests()
        await req.get_certificate()
        rsp = await req.challenge()  # raises if the signature does not verify
        ctx.expect(len(rsp.nonce) == 32, f"SPDM {text}: CHALLENGE_AUTH nonce is not 32 bytes")


@vector(
    "spdm.measurements.signed",
    title="MEASUREMENTS are well-formed DMTF blocks, signed over the L1 transcript",
    spec="DSP0274 1.2 §10.11",
    needs=NEEDS,
)
async def measurements_signed(ctx: VectorContext) -> None:
    async for text, req in _each_version(ctx):
        await req.get_digests()
        await req.get_certificate()
        count = await req.get_measurements(signed=False, operation=S.MEASUREMENT_OP_COUNT)
        rsp = await req.get_measurements(signed=True)
        indices = [b.index for b in rsp.blocks]
        ctx.measure(f"measurement_blocks_{text}", len(indices), "", low=1)
        ctx.expect(
            len(indices) == count.total_count,
            f"SPDM {text}: {count.total_count} counted, got {indices}",
        )
        ctx.expect(len(set(indices)) == len(indices), f"SPDM {text}: duplicate indices {indices}")


@vector(
    "spdm.session.established_and_used",
    title="KEY_EXCHANGE and FINISH open a session that carries HEARTBEAT and KEY_UPDATE",
    spec="DSP0274 1.2 §10.12-10.16; DSP0277",
    needs=NEEDS,
)
async def session_established_and_used(ctx: VectorContext) -> None:
    req: SpdmRequester | None = None
    async for text, req in _each_version(ctx):
        await req.get_digests()
        await req.get_certificate()
        start = ctx.timebase.now()
        session = await req.key_exchange()
        ctx.measure(f"session_setup_time_{text}", ctx.timebase.now() - start, "s")
        await req.heartbeat(session)
        await req.key_update(session)
        await req.heartbeat(session)
        await req.key_update(session, all_keys=True)
        await req.heartbeat(session)
        await req.end_session(session)
    assert req is not None
    ctx.measure("mutual_authentications", req.mutual_authentications, "")
    ctx.measure("doe_exchanges", req.exchanges, "")
    ctx.measure("doe_bytes", req.bytes_sent + req.bytes_received, "B")


@vector(
    "spdm.session.unexpected_request",
    title="CHALLENGE inside a session gets ERROR UnexpectedRequest in the session, which stays "
    "usable",
    spec="DSP0274 1.2 §10.2 (UnexpectedRequest), request validity in a session's application phase",
    needs=NEEDS,
)
async def session_unexpected_request(ctx: VectorContext) -> None:
    """CHALLENGE may not be sent inside a session; the ERROR for it goes back as a secured
    message of that session, and the session carries on.  (GET_VERSION is not used here: it
    carries SPDMVersion 1.0, so VersionMismatch describes it as well.)"""
    req = await _authenticated(ctx)
    await req.get_digests()
    await req.get_certificate()
    session = await req.key_exchange()
    context = bytes(S.REQUESTER_CONTEXT_SIZE) if req.version >= S.SpdmVersion.V13 else b""
    for name, message in (
        (
            "CHALLENGE",
            S.Challenge(
                version=req.version, slot_id=0, nonce=bytes(32), requester_context=context
            ).encode(),
        ),
    ):
        raw = await req.secured_exchange(session, message)
        ctx.expect(
            raw is not None
            and len(raw) >= 4
            and raw[1] == S.ResponseCode.ERROR
            and raw[2] == S.ErrorCode.UNEXPECTED_REQUEST,
            f"{name} inside a session answered with "
            f"{describe_spdm(raw) if raw is not None else 'nothing'}, expected ERROR "
            "UnexpectedRequest (DSP0274 1.2 §10.2)",
        )
    await req.heartbeat(session)
    await req.end_session(session)


@vector(
    "spdm.session.end_session",
    title="After END_SESSION the session's keys no longer open anything",
    spec="DSP0274 1.2 §10.17",
    needs=NEEDS,
)
async def session_end(ctx: VectorContext) -> None:
    req = await _authenticated(ctx)
    await req.get_digests()
    await req.get_certificate()
    session = await req.key_exchange()
    await req.end_session(session)
    try:
        answer = await req.secured_exchange(session, S.Heartbeat(version=req.version).encode())
    except (DoeTimeout, PeerProtocolError):
        return  # no answer, or nothing the old keys open: the session is gone
    ctx.expect(answer is None, "a HEARTBEAT after END_SESSION was answered inside the session")


@vector(
    "spdm.negative.version_mismatch",
    title="A request with a version other than the negotiated one gets VersionMismatch",
    spec="DSP0274 1.2 §10.2 (ERROR), §9",
    needs=NEEDS,
)
async def negative_version_mismatch(ctx: VectorContext) -> None:
    req = await _authenticated(ctx)
    # 1.1, and the other of 1.2 / 1.3: a version the responder's decoder reads, so the check
    # of the negotiated version itself is what answers.
    other = S.SpdmVersion.V13 if req.version == S.SpdmVersion.V12 else S.SpdmVersion.V12
    for version in (S.SpdmVersion.V11, other):
        await _expect_error(
            ctx,
            req.request(S.GetDigests(version=version)),
            S.ErrorCode.VERSION_MISMATCH,
            f"GET_DIGESTS at {S.SpdmVersion(version).text} after negotiating "
            f"{S.SpdmVersion(req.version).text}",
        )


@vector(
    "spdm.negative.invalid_request",
    title="A request with invalid fields gets InvalidRequest",
    spec="DSP0274 1.2 §10.2 (ERROR)",
    needs=NEEDS,
)
async def negative_invalid_request(ctx: VectorContext) -> None:
    req = await _authenticated(ctx)
    digests = await req.get_digests()
    empty = next((s for s in range(8) if not digests.slot_mask & (1 << s)), None)
    if empty is not None:
        await _expect_error(
            ctx,
            req.request(S.GetCertificate(version=req.version, slot_id=empty, length=16)),
            S.ErrorCode.INVALID_REQUEST,
            f"GET_CERTIFICATE of empty slot {empty}",
        )
    raw = await req.send_raw(bytes([req.version, S.RequestCode.GET_CERTIFICATE]))
    ctx.expect(
        len(raw) >= 4 and raw[1] == S.ResponseCode.ERROR and raw[2] == S.ErrorCode.INVALID_REQUEST,
        f"a 2-byte GET_CERTIFICATE answered {raw[:4].hex()}, expected ERROR InvalidRequest",
    )


@vector(
    "spdm.negative.unexpected_request",
    title="A request out of order (GET_DIGESTS right after VERSION) gets UnexpectedRequest or "
    "VersionMismatch",
    spec="DSP0274 1.2 §10.2 (ERROR codes), §10.3-§10.4 (the version is selected by "
    "GET_CAPABILITIES)",
    needs=NEEDS,
)
async def negative_unexpected_request(ctx: VectorContext) -> None:
    """Right after VERSION, GET_DIGESTS is out of order: UnexpectedRequest describes it ("the
    Responder received an unexpected request message, for example CHALLENGE before
    NEGOTIATE_ALGORITHMS").  It also carries an SPDMVersion no GET_CAPABILITIES has selected yet
    (the Requester's GET_CAPABILITIES is what carries the selected version), which is what
    VersionMismatch reports: DSP0274 orders neither check before the other, and DMTF's libspdm
    checks the version first.  Either is an answer the spec allows; anything else (DIGESTS
    above all) fails."""
    req = await ctx.spdm()
    await req.get_version()
    raw = await req.send_raw(S.GetDigests().encode())
    allowed = (S.ErrorCode.UNEXPECTED_REQUEST, S.ErrorCode.VERSION_MISMATCH)
    is_error = len(raw) >= 4 and raw[1] == S.ResponseCode.ERROR
    if is_error:
        ctx.measure("error_code", raw[2], "")
    ctx.expect(
        is_error and raw[2] in allowed,
        f"GET_DIGESTS right after VERSION answered with {describe_spdm(raw)}, expected ERROR "
        "UnexpectedRequest or VersionMismatch (DSP0274 1.2 §10.2: GET_CAPABILITIES and "
        "NEGOTIATE_ALGORITHMS come first)",
    )
    # After CAPABILITIES the version is selected, so VersionMismatch no longer describes it:
    # requests that need NEGOTIATE_ALGORITHMS first (the spec's own example is CHALLENGE
    # before it) must get UnexpectedRequest.
    await req.get_version()
    await req.get_capabilities()
    early = (
        ("GET_DIGESTS", S.GetDigests(version=req.version).encode()),
        (
            "CHALLENGE",
            S.Challenge(
                version=req.version,
                slot_id=0,
                nonce=bytes(32),
                requester_context=bytes(S.REQUESTER_CONTEXT_SIZE)
                if req.version >= S.SpdmVersion.V13
                else b"",
            ).encode(),
        ),
    )
    for name, message in early:
        raw = await req.send_raw(message)
        ctx.expect(
            len(raw) >= 4
            and raw[1] == S.ResponseCode.ERROR
            and raw[2] == S.ErrorCode.UNEXPECTED_REQUEST,
            f"{name} after CAPABILITIES, before NEGOTIATE_ALGORITHMS, answered with "
            f"{describe_spdm(raw)}, expected ERROR UnexpectedRequest (DSP0274 1.2 §10.2, §9)",
        )


@vector(
    "spdm.negative.session_required",
    title="HEARTBEAT, KEY_UPDATE, END_SESSION and FINISH outside a session get ERROR "
    "SessionRequired",
    spec="DSP0274 1.2 §10.2 (SessionRequired), request validity outside a session",
    needs=NEEDS,
)
async def negative_session_required(ctx: VectorContext) -> None:
    """DSP0274 1.2 added SessionRequired ("the request is supported but must be sent in a
    session") for the requests that are only valid inside one.  FINISH with no KEY_EXCHANGE
    before it is also out of order, so UnexpectedRequest describes it as well."""
    req = await _authenticated(ctx)
    h = req.hash_alg.size
    if req.version < S.SpdmVersion.V12:
        raise Skip("SessionRequired is defined from SPDM 1.2")
    messages = (
        ("HEARTBEAT", S.Heartbeat(version=req.version).encode(), ()),
        (
            "KEY_UPDATE",
            S.KeyUpdate(version=req.version, operation=S.KeyUpdateOp.UPDATE_KEY, tag=1).encode(),
            (),
        ),
        ("END_SESSION", S.EndSession(version=req.version).encode(), ()),
        (
            "FINISH",
            S.Finish(version=req.version, requester_verify_data=bytes(h)).encode(),
            (S.ErrorCode.UNEXPECTED_REQUEST,),
        ),
    )
    for name, message, also in messages:
        raw = await req.send_raw(message)
        allowed = (S.ErrorCode.SESSION_REQUIRED, *also)
        ctx.expect(
            len(raw) >= 4 and raw[1] == S.ResponseCode.ERROR and raw[2] in allowed,
            f"{name} outside a session answered with {describe_spdm(raw)}, expected ERROR "
            f"{' or '.join(S.ErrorCode(c).name for c in allowed)} (DSP0274 1.2 §10.2)",
        )


@vector(
    "spdm.finish.bad_verify_data",
    title="FINISH with a wrong RequesterVerifyData opens no session (ERROR DecryptError or no "
    "answer); a good FINISH still does",
    spec="DSP0274 1.2 §10.14 (FINISH: RequesterVerifyData over TH; DecryptError), §10.2",
    needs=NEEDS,
)
async def finish_bad_verify_data(ctx: VectorContext) -> None:
    """RequesterVerifyData is the HMAC of the transcript hash under the requester's finished
    key: it is what proves the requester holds the handshake secret.  A responder that does not
    check it answers FINISH_RSP and enters the application phase with anyone."""
    req = await _authenticated(ctx)
    await req.get_digests()
    await req.get_certificate()

    def flipped(verify_data: bytes) -> bytes:
        return bytes((verify_data[0] ^ 0x01,)) + verify_data[1:]

    try:
        await req.key_exchange(tamper_verify_data=flipped)
    except SpdmErrorResponse as exc:
        ctx.expect(
            exc.code == S.ErrorCode.DECRYPT_ERROR,
            f"FINISH with a wrong RequesterVerifyData: ERROR {S.ErrorCode(exc.code).name}, "
            "expected DecryptError (DSP0274 1.2 §10.14)",
        )
    except (DoeTimeout, PeerProtocolError):
        pass  # dropped: no session either
    else:
        ctx.expect(
            False,
            "FINISH with a wrong RequesterVerifyData was answered FINISH_RSP: the session is "
            "open to a requester that did not prove the handshake secret (DSP0274 1.2 §10.14)",
        )
    session = await req.key_exchange(req_session_id=0xB00D)
    await req.heartbeat(session)
    await req.end_session(session)


@vector(
    "spdm.negative.bad_mac",
    title="A secured message with a bad MAC is not processed: dropped, or answered DecryptError",
    spec="DSP0277 (record authentication); DSP0274 1.2 §10.2 (DecryptError), session phases",
    needs=NEEDS,
)
async def negative_bad_mac(ctx: VectorContext) -> None:
    """A record whose MAC does not verify must not be processed (DSP0277: the AEAD tag
    authenticates the record).  What a responder says about it: DSP0274 defines ERROR
    DecryptError for a message that could not be decrypted or authenticated, and an ERROR with
    DecryptError ends the session's application phase.  The spec lets it drop the record or
    answer DecryptError, and does not say whether that ERROR travels in the clear or as a
    secured message of the session whose ID the record carried: libspdm (DMTF's reference)
    sends it secured with that session's keys, unless its policy says drop.  Accepted: no
    answer; ERROR DecryptError in the clear; ERROR DecryptError in the session.  A secured
    answer that is anything else means the forged record was processed: fail."""
    req = await _authenticated(ctx)
    await req.get_digests()
    await req.get_certificate()
    session = await req.key_exchange()
    sealed = bytearray(session.secured.seal(S.Heartbeat(version=req.version).encode()))
    sealed[-1] ^= 0x80  # the last MAC byte
    try:
        rsp = await req.transport.exchange(
            DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, bytes(sealed))
        )
    except (DoeTimeout, PeerProtocolError):
        ctx.measure("answer", 0, "")  # 0 dropped, 1 in the clear, 2 in the session
        return
    if rsp.type == DoeType.CMA_SPDM:
        ctx.measure("answer", 1, "")
        raw = rsp.payload
        where = "in the clear"
    elif rsp.type == DoeType.SECURED_CMA_SPDM:
        ctx.measure("answer", 2, "")
        where = "in the session"
        try:
            raw = session.secured.open(rsp.payload)
        except PeerProtocolError as exc:
            ctx.expect(
                False,
                f"a record with a bad MAC got a secured answer that does not open under the "
                f"session's response keys ({exc}; DSP0277)",
            )
            return
    else:
        ctx.expect(False, f"a record with a bad MAC got a DOE type {rsp.type} answer")
        return
    ctx.expect(
        len(raw) >= 4 and raw[1] == S.ResponseCode.ERROR and raw[2] == S.ErrorCode.DECRYPT_ERROR,
        f"a record with a bad MAC was answered {where} with {describe_spdm(raw)}: it must be "
        "dropped or answered ERROR DecryptError (DSP0277; DSP0274 1.2 §10.2)",
    )


@vector(
    "spdm.negative.survives_garbage",
    title="After malformed requests the responder still completes a full authentication",
    spec="DSP0274 1.2 §10.2",
    needs=NEEDS,
)
async def negative_survives_garbage(ctx: VectorContext) -> None:
    req = await ctx.spdm()
    for junk in (b"\x12", b"\x12\xe1", bytes(64), b"\x12\xe3\x04\x00", b"\xff" * 9):
        raw = await req.send_raw(junk)
        ctx.expect(
            len(raw) >= 4 and raw[1] == S.ResponseCode.ERROR,
            f"{junk[:8].hex()} answered {raw[:4].hex()}, expected ERROR",
        )
    await req.connect()
    await req.get_digests()
    await req.get_certificate()
    await req.challenge()
