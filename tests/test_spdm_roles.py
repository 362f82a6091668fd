"""The SPDM requester against the device firmware, back to back in memory."""

from __future__ import annotations

import asyncio
import copy

import pytest

from hil.codec import spdm as S
from hil.codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from hil.errors import PeerProtocolError
from hil.firmware import Dsm, FirmwareTransport
from hil.host.spdm import ChainCache, SpdmErrorResponse, SpdmRequester
from hil.pki import TestPki, UntrustedRoot


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.generate()


def _pair(pki: TestPki, **kw) -> tuple[SpdmRequester, Dsm]:
    dsm = Dsm(identity=pki.identity, hdl_build="test-build")
    return SpdmRequester(FirmwareTransport(dsm), trust_anchor=pki.trust_anchor, **kw), dsm


def run(coro):
    return asyncio.run(coro)


def test_authenticate_measure_and_hold_a_session(pki: TestPki) -> None:
    req, dsm = _pair(pki)

    async def flow() -> None:
        await req.authenticate()
        assert req.algorithms.base_asym_sel == S.BaseAsymAlgo.ECDSA_P384
        assert len(req.certificates) == 3
        meas = await req.get_measurements(signed=True)
        assert [b.index for b in meas.blocks] == [1, 2, 3]
        session = await req.key_exchange()
        await req.heartbeat(session)
        await req.key_update(session)
        await req.heartbeat(session)
        await req.key_update(session, all_keys=True)
        await req.heartbeat(session)
        await req.end_session(session)
        assert not dsm.spdm.sessions

    run(flow())
    assert dsm.spdm.errors_sent == 0


def test_a_p256_identity_negotiates_p256(pki: TestPki) -> None:
    p256 = TestPki.generate(curve="P-256")
    req, _ = _pair(p256)
    run(req.authenticate())
    assert req.algorithms.base_hash_sel == S.BaseHashAlgo.SHA_256


def test_an_untrusted_chain_is_rejected(pki: TestPki) -> None:
    req, _ = _pair(pki)
    req.trust_anchor = TestPki.generate().trust_anchor
    with pytest.raises(UntrustedRoot):
        run(req.authenticate())


def test_out_of_order_and_bad_requests_get_the_defined_errors(pki: TestPki) -> None:
    req, _dsm = _pair(pki)
    # Before GET_VERSION: anything else is unexpected.
    with pytest.raises(SpdmErrorResponse) as e:
        run(req.get_capabilities())
    assert e.value.code == S.ErrorCode.UNEXPECTED_REQUEST
    run(req.connect())
    # Wrong version byte after negotiation.
    with pytest.raises(SpdmErrorResponse) as e:
        run(req.request(S.GetDigests(version=S.SpdmVersion.V11)))
    assert e.value.code == S.ErrorCode.VERSION_MISMATCH
    # A certificate slot that is empty.
    with pytest.raises(SpdmErrorResponse) as e:
        run(req.request(S.GetCertificate(version=req.version, slot_id=3, length=16)))
    assert e.value.code == S.ErrorCode.INVALID_REQUEST
    # An unknown request code.
    rsp = run(req.send_raw(bytes([req.version, 0xF0, 0, 0])))
    assert rsp[1] == 0x7F and rsp[2] == S.ErrorCode.UNSUPPORTED_REQUEST
    # Truncated garbage.
    rsp = run(req.send_raw(bytes([req.version, 0x82])))
    assert rsp[1] == 0x7F
    # The responder still serves a good flow.
    run(req.authenticate())


def test_a_tampered_secured_message_is_dropped(pki: TestPki) -> None:
    req, dsm = _pair(pki)

    async def flow() -> None:
        await req.authenticate()
        session = await req.key_exchange()
        sealed = bytearray(session.secured.seal(S.Heartbeat(version=req.version).encode()))
        sealed[10] ^= 0x01
        answer = await dsm.handle(
            DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, bytes(sealed))
        )
        assert answer is None

    run(flow())


def test_a_bad_signature_is_caught(pki: TestPki) -> None:
    req, dsm = _pair(pki)
    run(req.authenticate())
    # Sign with another key under the same chain: the chain still names the old key.
    other = TestPki.generate()
    forged = copy.copy(pki.identity)  # Identity refuses a mismatched key; a broken device won't
    object.__setattr__(forged, "key", other.leaf_key)
    dsm.spdm.identity = forged
    with pytest.raises(PeerProtocolError, match="signature"):
        run(req.challenge())


def test_response_not_ready_is_followed_by_respond_if_ready(pki: TestPki) -> None:
    """A responder that needs time for CHALLENGE: ERROR ResponseNotReady, then the answer."""
    dsm = Dsm(identity=pki.identity)
    parked: dict[int, DataObject] = {}
    waits: list[float] = []

    async def slow_handle(obj: DataObject) -> DataObject | None:
        code = obj.payload[1]
        if code == S.RequestCode.CHALLENGE:
            parked[7] = await dsm.handle(obj)
            err = S.ErrorResponse(
                version=obj.payload[0],
                error_code=S.ErrorCode.RESPONSE_NOT_READY,
                extended=S.ResponseNotReadyData(
                    rd_exponent=3, request_code=S.RequestCode.CHALLENGE, token=7, rdtm=2
                ),
            )
            return DataObject(PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM, err.encode())
        if code == S.RequestCode.RESPOND_IF_READY:
            assert obj.payload[2:4] == bytes([S.RequestCode.CHALLENGE, 7])
            return parked.pop(7)
        return await dsm.handle(obj)

    class Slow(FirmwareTransport):
        async def exchange(self, request: DataObject) -> DataObject:
            rsp = await slow_handle(request)
            assert rsp is not None
            return rsp

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    req = SpdmRequester(Slow(dsm), trust_anchor=pki.trust_anchor, sleep=sleep)
    run(req.authenticate())  # the CHALLENGE signature still verifies over the right transcript
    assert waits == [8e-6]


def test_a_cached_chain_spares_get_certificate_and_is_checked(pki: TestPki, tmp_path) -> None:
    """The first requester reads the chain and caches it by digest; the next one with the same
    cache skips GET_CERTIFICATE, and CHALLENGE and a session still verify (the transcript holds
    what was exchanged).  A cache entry that no longer hashes to the digest is not used, and a
    cached chain is validated again (a requester trusting another root refuses it)."""
    cache = ChainCache(tmp_path)
    first, _ = _pair(pki, chain_cache=cache)
    run(first.authenticate())
    files = list(tmp_path.glob("*.chain"))
    assert len(files) == 1 and files[0].read_bytes() == first.cert_chain

    second, dsm = _pair(pki, chain_cache=cache)

    async def flow() -> int:
        await second.authenticate()
        exchanges = second.exchanges
        session = await second.key_exchange()
        await second.end_session(session)
        return exchanges

    assert first.exchanges - run(flow()) >= 2  # the GET_CERTIFICATE portions
    assert second.cert_chain == first.cert_chain and dsm.spdm.errors_sent == 0

    files[0].write_bytes(files[0].read_bytes()[:-1] + b"\x00")  # no longer the digest's
    third, _ = _pair(pki, chain_cache=cache)
    run(third.authenticate())
    assert third.exchanges == first.exchanges and files[0].read_bytes() == first.cert_chain

    other, _ = _pair(pki, chain_cache=cache)
    other.trust_anchor = TestPki.generate().trust_anchor
    with pytest.raises(UntrustedRoot):
        run(other.authenticate())
