"""Session-based mutual authentication: the device firmware requires it, the requester gives it.

Both roles back to back in memory (DSP0274 1.2/1.3, KEY_EXCHANGE_RSP MutAuthRequested bits 0, 1
and 2; the encapsulated request flow; FINISH's signature), and once through ``hil serve``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from helpers import only_run
from helpers import records as read_records
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_serve import Server, _run

from hil.codec import spdm as S
from hil.codec.spdm_crypto import SHA384
from hil.errors import LocalProtocolError, RigError
from hil.firmware import Dsm, FirmwareTransport, MutAuthMode, MutualAuthPolicy
from hil.firmware import test_pki as device_pki
from hil.firmware.mutual_auth import EncapsulatedFlow, MutualAuthError
from hil.host.spdm import SpdmErrorResponse, SpdmRequester, SpdmSession
from hil.pki import TestPki
from hil.serve import ServeOptions

VERSIONS = {"1.2": S.SpdmVersion.V12, "1.3": S.SpdmVersion.V13}
MODES = [MutAuthMode.REQUESTED, MutAuthMode.ENCAP, MutAuthMode.DIGESTS]
#: For the fuzz test (hypothesis does not mix with function-scoped fixtures).
_FUZZ_PKI = TestPki.generate_requester(key_type="P-384", seed_label="hil-fuzz-requester")


@pytest.fixture(scope="module")
def rsa_requester() -> TestPki:
    return TestPki.generate_requester()  # RSA-3072


@pytest.fixture(scope="module")
def ecdsa_requester() -> TestPki:
    return TestPki.generate_requester(key_type="P-384")


def _device(mode: MutAuthMode, anchor_pki: TestPki, *, provisioned: TestPki | None = None) -> Dsm:
    """The device requiring ``mode``, trusting ``anchor_pki``'s root; with ``requested`` it
    holds ``provisioned``'s chain (``anchor_pki``'s by default)."""
    chain = ()
    if mode is MutAuthMode.REQUESTED:
        chain = (provisioned or anchor_pki).chain
    policy = MutualAuthPolicy(mode, anchor_pki.trust_anchor, chain)
    return Dsm(identity=device_pki().identity, mutual_auth=policy)


def _requester(dsm: Dsm, who: TestPki | None, version: str) -> SpdmRequester:
    return SpdmRequester(
        FirmwareTransport(dsm),
        trust_anchor=device_pki().trust_anchor,
        identity=who.identity if who is not None else None,
        versions=(VERSIONS[version],),
    )


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _open(req: SpdmRequester) -> SpdmSession:
    await req.connect()
    await req.get_digests()
    await req.get_certificate()
    return await req.key_exchange()


# -- sessions that authenticate the requester --------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
@pytest.mark.parametrize("key", ["rsa3072", "ecdsa-p384"])
def test_a_mutually_authenticated_session_is_established_and_used(
    request: pytest.FixtureRequest, key: str, mode: MutAuthMode, version: str
) -> None:
    who: TestPki = request.getfixturevalue(
        "rsa_requester" if key == "rsa3072" else "ecdsa_requester"
    )
    dsm = _device(mode, who)
    req = _requester(dsm, who, version)

    async def flow() -> None:
        session = await _open(req)
        assert req.version == VERSIONS[version]
        device_side = dsm.spdm.sessions[session.session_id]
        assert device_side.established
        assert device_side.mut_auth == mode.request
        # The device holds the requester's chain: provisioned, or read in the handshake.
        assert device_side.requester is not None
        assert device_side.requester.chain == who.identity.spdm_chain(SHA384)
        await req.heartbeat(session)
        await req.key_update(session)
        await req.key_update(session, all_keys=True)
        await req.heartbeat(session)
        await req.end_session(session)
        assert not dsm.spdm.sessions

    run(flow())
    caps = req.capabilities
    assert caps is not None and caps.flags & S.CapFlag.MUT_AUTH and caps.flags & S.CapFlag.ENCAP
    assert req.algorithms is not None
    # ReqBaseAsymAlg: one the requester's key makes (RSASSA-PSS preferred for RSA).
    expected = S.BaseAsymAlgo.RSAPSS_3072 if key == "rsa3072" else S.BaseAsymAlgo.ECDSA_P384
    assert req.algorithms.req_base_asym_alg == expected
    assert req.mutual_authentications == 1
    assert dsm.spdm.mutual_authentications == 1
    assert dsm.spdm.errors_sent == 0


def test_the_digests_flow_skips_get_certificate_for_a_chain_the_device_holds(
    ecdsa_requester: TestPki,
) -> None:
    """MutAuthRequested bit 2 with the requester's chain provisioned: its DIGESTS names that
    chain, so the encapsulated flow ends after DIGESTS."""
    policy = MutualAuthPolicy(
        MutAuthMode.DIGESTS, ecdsa_requester.trust_anchor, ecdsa_requester.chain
    )
    dsm = Dsm(identity=device_pki().identity, mutual_auth=policy)
    req = _requester(dsm, ecdsa_requester, "1.3")
    run(_open(req))
    exchanges_with_certificate = req.exchanges

    dsm2 = _device(MutAuthMode.DIGESTS, ecdsa_requester)
    req2 = _requester(dsm2, ecdsa_requester, "1.3")
    run(_open(req2))
    assert req.mutual_authentications == req2.mutual_authentications == 1
    assert exchanges_with_certificate < req2.exchanges


def test_a_device_without_mutual_authentication_does_not_offer_it(
    ecdsa_requester: TestPki,
) -> None:
    dsm = Dsm(identity=device_pki().identity)
    req = _requester(dsm, ecdsa_requester, "1.3")
    run(_open(req))
    assert req.capabilities is not None
    assert not req.capabilities.flags & (S.CapFlag.MUT_AUTH | S.CapFlag.ENCAP)
    assert req.algorithms is not None and req.algorithms.req_base_asym_alg == 0
    assert req.mutual_authentications == 0


# -- requesters that do not or cannot authenticate ---------------------------------------------


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_a_requester_that_does_not_offer_mutual_authentication_is_not_asked(
    ecdsa_requester: TestPki, mode: MutAuthMode
) -> None:
    """Without an identity the requester clears MUT_AUTH_CAP ("shall support mutual
    authentication", DSP0274 1.3 Table 13): the device asks nothing (MutAuthRequested 0,
    ReqBaseAsymAlg 0 per Table 25), and the session is one without mutual authentication."""
    dsm = _device(mode, ecdsa_requester)
    req = _requester(dsm, None, "1.3")

    async def flow() -> None:
        session = await _open(req)
        assert dsm.spdm.sessions[session.session_id].mut_auth == 0
        await req.heartbeat(session)
        await req.end_session(session)

    run(flow())
    assert req.capabilities is not None and req.capabilities.flags & S.CapFlag.MUT_AUTH
    assert req.algorithms is not None and req.algorithms.req_base_asym_alg == 0
    assert req.mutual_authentications == 0 and dsm.spdm.mutual_authentications == 0
    assert dsm.spdm.errors_sent == 0


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", [MutAuthMode.ENCAP, MutAuthMode.DIGESTS], ids=["encap", "digests"])
def test_a_requester_chain_not_under_the_anchor_gets_no_session(
    ecdsa_requester: TestPki, mode: MutAuthMode, version: str
) -> None:
    """The chain read in the encapsulated flow does not validate to the device's requester
    anchor: ERROR(DecryptError), which ends the session in its handshake phase."""
    stranger = TestPki.generate_requester(key_type="P-256")
    dsm = _device(mode, ecdsa_requester)
    req = _requester(dsm, stranger, version)
    with pytest.raises(SpdmErrorResponse) as err:
        run(_open(req))
    assert err.value.code == S.ErrorCode.DECRYPT_ERROR
    assert "DeliverEncapsulatedResponse" in str(err.value)  # the last CERTIFICATE's
    assert not dsm.spdm.sessions
    assert req.mutual_authentications == 0 and dsm.spdm.mutual_authentications == 0


def test_a_chain_with_only_the_responder_eku_is_refused(ecdsa_requester: TestPki) -> None:
    """The requester leaf rules apply (DSP0274 1.2 §10.8.2.1: a requester's leaf must not
    carry only the responder authentication EKU)."""
    from hil.pki import leaf_profile

    wrong_role = ecdsa_requester.reissue_leaf(leaf_profile())
    dsm = _device(MutAuthMode.ENCAP, ecdsa_requester)
    req = _requester(dsm, wrong_role, "1.2")
    with pytest.raises(SpdmErrorResponse) as err:
        run(_open(req))
    assert err.value.code == S.ErrorCode.DECRYPT_ERROR
    assert "DeliverEncapsulatedResponse" in str(err.value)
    assert not dsm.spdm.sessions


def test_a_requester_that_is_not_the_provisioned_one_gets_no_session(
    ecdsa_requester: TestPki,
) -> None:
    """MutAuthRequested bit 0: the device checks FINISH against the chain it holds; another
    requester's signature (even one under the same anchor's rules) does not verify."""
    other = TestPki.generate_requester(key_type="P-384")
    policy = MutualAuthPolicy(MutAuthMode.REQUESTED, other.trust_anchor, other.chain)
    dsm = Dsm(identity=device_pki().identity, mutual_auth=policy)
    req = _requester(dsm, ecdsa_requester, "1.3")
    with pytest.raises(SpdmErrorResponse) as err:
        run(_open(req))
    assert err.value.code == S.ErrorCode.DECRYPT_ERROR
    assert "Finish" in str(err.value)
    assert not dsm.spdm.sessions


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_a_tampered_finish_signature_gets_no_session(
    rsa_requester: TestPki, mode: MutAuthMode
) -> None:
    dsm = _device(mode, rsa_requester)
    req = _requester(dsm, rsa_requester, "1.2")
    sign = req._sign

    def tampered(operation: str, transcript: bytes) -> bytes:
        signature = bytearray(sign(operation, transcript))  # type: ignore[arg-type]
        signature[7] ^= 0x20
        return bytes(signature)

    req._sign = tampered  # type: ignore[method-assign]
    with pytest.raises(SpdmErrorResponse) as err:
        run(_open(req))
    assert err.value.code == S.ErrorCode.DECRYPT_ERROR
    assert "Finish" in str(err.value)
    assert not dsm.spdm.sessions
    assert dsm.spdm.mutual_authentications == 0


def _finish_as(req: SpdmRequester, slot: int | None) -> None:
    """Make the requester skip what KEY_EXCHANGE_RSP asked and sign FINISH with ``slot``
    (None: no signature at all)."""

    async def answer(session: SpdmSession, mut: S.MutAuthRequest, req_slot_id: int) -> int | None:
        return slot

    req._session_mutual_auth = answer  # type: ignore[method-assign, assignment]


@pytest.mark.parametrize(
    ("slot", "why"), [(None, "without a signature"), (1, "names requester slot 1")]
)
def test_finish_without_a_signature_or_for_another_slot_is_an_invalid_request(
    ecdsa_requester: TestPki, slot: int | None, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    """DSP0274 1.3 Table 72: Param1 bit 0 "shall be set when Session-based mutual
    authentication occurs"; Param2 names the requester chain, which must be the one the
    device asked for.  InvalidRequest; the session stays in its handshake phase."""
    caplog.set_level(logging.INFO, logger="hil.firmware.spdm")
    dsm = _device(MutAuthMode.REQUESTED, ecdsa_requester)
    req = _requester(dsm, ecdsa_requester, "1.3")
    _finish_as(req, slot)
    with pytest.raises(SpdmErrorResponse) as err:
        run(_open(req))
    assert err.value.code == S.ErrorCode.INVALID_REQUEST
    assert why in caplog.text
    (session,) = dsm.spdm.sessions.values()
    assert not session.established
    assert dsm.spdm.mutual_authentications == 0


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        (MutAuthMode.ENCAP, S.ErrorCode.UNEXPECTED_REQUEST),  # flow not started
        (MutAuthMode.DIGESTS, S.ErrorCode.REQUEST_IN_FLIGHT),  # implicit GET_DIGESTS is out
    ],
    ids=["encap", "digests"],
)
def test_finish_before_the_encapsulated_flow_is_refused(
    ecdsa_requester: TestPki, mode: MutAuthMode, code: int
) -> None:
    dsm = _device(mode, ecdsa_requester)
    req = _requester(dsm, ecdsa_requester, "1.2")
    _finish_as(req, 0)
    with pytest.raises(SpdmErrorResponse) as err:
        run(_open(req))
    assert err.value.code == code


def test_encapsulated_requests_with_nothing_pending(ecdsa_requester: TestPki) -> None:
    """Outside a session nothing is pending: NoPendingRequests from 1.3, UnexpectedRequest
    at 1.2; a DELIVER_ENCAPSULATED_RESPONSE nobody asked for is UnexpectedRequest."""
    for version, code in (
        ("1.3", S.ErrorCode.NO_PENDING_REQUESTS),
        ("1.2", S.ErrorCode.UNEXPECTED_REQUEST),
    ):
        dsm = _device(MutAuthMode.ENCAP, ecdsa_requester)
        req = _requester(dsm, ecdsa_requester, version)
        run(req.connect())
        with pytest.raises(SpdmErrorResponse) as err:
            run(req.request(S.GetEncapsulatedRequest(version=req.version)))
        assert err.value.code == code
        with pytest.raises(SpdmErrorResponse) as err:
            run(
                req.request(
                    S.DeliverEncapsulatedResponse(
                        version=req.version, request_id=1, payload=bytes((req.version, 1, 0, 0))
                    )
                )
            )
        assert err.value.code == S.ErrorCode.UNEXPECTED_REQUEST


# -- the encapsulated flow fed what a broken requester might deliver ----------------------------


def _flow(pki: TestPki, *, digests_in: bool) -> tuple[EncapsulatedFlow, bytes]:
    """A device-side flow (1.3, SHA-384, ECDSA P-384) with GET_DIGESTS in flight, or, with
    ``digests_in``, the requester's DIGESTS taken and GET_CERTIFICATE in flight."""
    v = S.SpdmVersion.V13
    sizes = S.NegotiatedSizes(version=v, hash_size=48, signature_size=96, req_signature_size=96)
    policy = MutualAuthPolicy(MutAuthMode.DIGESTS, pki.trust_anchor)
    flow = EncapsulatedFlow.start(
        MutAuthMode.DIGESTS,
        version=v,
        hash_alg=SHA384,
        sizes=sizes,
        policy=policy,
        req_asym=S.BaseAsymAlgo.ECDSA_P384,
    )
    chain = pki.identity.spdm_chain(SHA384)
    if digests_in:
        digests = S.Digests(
            version=v, slot_mask=1, digests=(SHA384.digest(chain),), supported_slot_mask=1
        )
        flow.deliver(S.DeliverEncapsulatedResponse(version=v, payload=digests.encode()))
    return flow, chain


def _valid_deliveries() -> list[bytes]:
    v = S.SpdmVersion.V13
    chain = _FUZZ_PKI.identity.spdm_chain(SHA384)
    return [
        S.Digests(
            version=v, slot_mask=1, digests=(SHA384.digest(chain),), supported_slot_mask=1
        ).encode(),
        S.Certificate(
            version=v, portion=chain[:0x400], remainder_length=len(chain) - 0x400
        ).encode(),
        S.ErrorResponse(
            version=v,
            error_code=S.ErrorCode.RESPONSE_NOT_READY,
            extended=S.ResponseNotReadyData(
                rd_exponent=10, request_code=S.RequestCode.GET_DIGESTS, token=1, rdtm=2
            ),
        ).encode(),
    ]


@st.composite
def _deliveries(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid encapsulated response with a few bytes changed."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    data = bytearray(draw(st.sampled_from(_valid_deliveries())))
    for _ in range(draw(st.integers(0, 3))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return bytes(data[:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_deliveries(), st.booleans(), st.one_of(st.none(), st.integers(0, 3)))
def test_the_encapsulated_flow_answers_any_delivery_with_an_ack_or_an_error(
    payload: bytes, digests_in: bool, other_id: int | None
) -> None:
    flow, _ = _flow(_FUZZ_PKI, digests_in=digests_in)
    request_id = flow.request_id if other_id is None else other_id
    delivery = S.DeliverEncapsulatedResponse(
        version=S.SpdmVersion.V13, request_id=request_id, payload=payload
    )
    try:
        ack = flow.deliver(delivery)
    except MutualAuthError as exc:
        event(f"ERROR {S.ErrorCode(exc.error_code).name}")
        assert flow.proof is None
        return
    event(f"ACK {S.EncapPayloadType(ack.payload_type).name}")
    assert ack.ack_request_id == request_id
    assert flow.proof is None  # one delivery never completes a chain


def test_the_encapsulated_flow_reads_a_chain_in_portions(ecdsa_requester: TestPki) -> None:
    flow, chain = _flow(ecdsa_requester, digests_in=True)
    v = S.SpdmVersion.V13
    while not flow.over:
        asked = flow.in_flight
        assert isinstance(asked, S.GetCertificate) and asked.length <= 0x400
        portion = chain[asked.offset : asked.offset + asked.length]
        cert = S.Certificate(
            version=v,
            portion=portion,
            remainder_length=len(chain) - asked.offset - len(portion),
        )
        ack = flow.deliver(
            S.DeliverEncapsulatedResponse(
                version=v, request_id=flow.request_id, payload=cert.encode()
            )
        )
    assert ack.payload_type == S.EncapPayloadType.REQ_SLOT_NUMBER and ack.payload == b"\x00"
    assert flow.proof is not None and flow.proof.chain == chain
    # Over: nothing more is pending.
    with pytest.raises(MutualAuthError) as err:
        flow.get_encapsulated_request()
    assert err.value.error_code == S.ErrorCode.UNEXPECTED_REQUEST


# -- configuration -----------------------------------------------------------------------------


def test_a_policy_needs_its_anchor_and_a_provisioned_chain_that_validates(
    ecdsa_requester: TestPki,
) -> None:
    with pytest.raises(LocalProtocolError, match="trust anchor"):
        MutualAuthPolicy(MutAuthMode.ENCAP)
    with pytest.raises(LocalProtocolError, match="provisioned"):
        MutualAuthPolicy(MutAuthMode.REQUESTED, ecdsa_requester.trust_anchor)
    stranger = TestPki.generate_requester(key_type="P-256")
    with pytest.raises(LocalProtocolError, match="not usable"):
        MutualAuthPolicy(MutAuthMode.REQUESTED, ecdsa_requester.trust_anchor, stranger.chain)


def test_serve_options_for_mutual_authentication(tmp_path: Path, ecdsa_requester: TestPki) -> None:
    files = ecdsa_requester.write_pem(tmp_path, stem="requester")
    with pytest.raises(RigError, match="--requester-trust-anchor"):
        ServeOptions(mut_auth="encap")
    with pytest.raises(RigError, match="--requester-cert-chain"):
        ServeOptions(mut_auth="requested", requester_trust_anchor=files.root)
    with pytest.raises(RigError, match="one of"):
        ServeOptions(mut_auth="sometimes", requester_trust_anchor=files.root)
    options = ServeOptions(
        mut_auth="requested", requester_trust_anchor=files.root, requester_cert_chain=files.chain
    )
    policy = ServeOptions.from_json(options.to_json()).mutual_auth_policy()
    assert policy.mode is MutAuthMode.REQUESTED
    assert policy.requester_chain == ecdsa_requester.chain
    assert ServeOptions().mutual_auth_policy().mode is MutAuthMode.NONE


# -- through hil serve ----------------------------------------------------------------------------


def test_hil_run_with_a_requester_identity_against_hil_serve_requiring_it(
    tmp_path: Path, repo: Path, rsa_requester: TestPki
) -> None:
    """`hil run --rig <socket rig>` with the rig's requester_cert_chain/requester_key against
    `hil serve --rig fake --mut-auth encap --requester-trust-anchor ...`: the session vectors
    pass, and their session was mutually authenticated."""
    files = rsa_requester.write_pem(tmp_path / "pki", stem="requester")
    server = Server(
        repo,
        "--rig",
        "fake",
        "--mut-auth",
        "encap",
        "--requester-trust-anchor",
        str(files.root),
    )
    try:
        rig = tmp_path / "peer.toml"
        rig.write_text(
            "[rig]\nkind = 'spdm-socket'\nprovides = ['spdm']\n"
            f"[socket]\nhost = '127.0.0.1'\nport = {server.port}\n"
            "[settings]\ntrust_anchor = 'test-pki'\n"
            f"requester_cert_chain = '{files.chain}'\nrequester_key = '{files.key}'\n"
        )
        proc = _run(repo, rig, tmp_path / "res", "-k", "spdm")
        assert proc.returncode == 0, proc.stdout[-3000:]
        records = read_records(only_run(tmp_path / "res", "peer"))
        assert records and {r["outcome"] for r in records.values()} == {"pass"}, {
            v: (r["outcome"], r.get("message")) for v, r in records.items()
        }
        session = records["spdm.session.established_and_used"]
        measured = {m["name"]: m["value"] for m in session["measurements"]}
        # One per SPDM version the vector runs the session at.
        assert measured["mutual_authentications"] >= 1, session
    finally:
        assert server.shutdown() == 0
