"""The SPDM requester: what a platform TSM does to authenticate a device and open a session.

Async and transport-agnostic: it talks to any :class:`~hil.transport.DoeTransport` (a DOE
mailbox in config space, the spdm-emu socket, an in-memory firmware).  It keeps the transcripts
(DSP0274 §10) needed to verify what the responder signs, and the session keys (DSP0277).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ..codec import spdm as S
from ..codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from ..codec.secured import SecuredSession
from ..codec.spdm_crypto import (
    SHA256,
    SHA384,
    AeadAlg,
    DheGroup,
    DheKeyPair,
    HashAlg,
    KeySchedule,
    SigningOperation,
    verify,
)
from ..errors import HilError, PeerProtocolError
from ..pki import validate_chain
from ..transport import DoeTransport

__all__ = ["SpdmErrorResponse", "SpdmRequester", "SpdmSession"]

VERSION = S.SpdmVersion.V12
REQUESTER_CAPS = S.CapFlag.CERT | S.CapFlag.CHAL | S.CapFlag.ENCRYPT | S.CapFlag.MAC
REQUESTER_CAPS |= S.CapFlag.KEY_EX | S.CapFlag.HBEAT | S.CapFlag.KEY_UPD
MAX_MESSAGE = 4000


class SpdmErrorResponse(HilError):
    """The responder answered ERROR.  Not a protocol violation in itself: vectors decide."""

    def __init__(self, response: S.ErrorResponse, request: str) -> None:
        self.response = response
        self.code = response.error_code
        try:
            name = S.ErrorCode(self.code).name
        except ValueError:
            name = f"{self.code:#04x}"
        super().__init__(f"{request} answered ERROR {name} (data {response.error_data:#04x})")


@dataclass
class SpdmSession:
    session_id: int
    secured: SecuredSession
    heartbeat_period: int
    open: bool = True


@dataclass
class SpdmRequester:
    """One requester talking to one responder."""

    transport: DoeTransport
    trust_anchor: x509.Certificate | None = None
    #: How to wait (ResponseNotReady): the rig's timebase; asyncio's sleep by default.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    asym: int = S.BaseAsymAlgo.ECDSA_P384 | S.BaseAsymAlgo.ECDSA_P256
    hashes: int = S.BaseHashAlgo.SHA_384 | S.BaseHashAlgo.SHA_256
    dhe: int = S.DheGroup.SECP384R1 | S.DheGroup.SECP256R1
    version: int = VERSION
    responder_versions: tuple[S.VersionNumberEntry, ...] = ()
    capabilities: S.Capabilities | None = None
    algorithms: S.Algorithms | None = None
    certificates: list[x509.Certificate] = field(default_factory=list)
    cert_chain: bytes = b""
    bytes_sent: int = 0
    bytes_received: int = 0
    exchanges: int = 0
    _vca: bytes = b""
    _m1: bytes = b""
    _l1: bytes = b""
    _sizes: S.NegotiatedSizes = field(default_factory=S.NegotiatedSizes)

    # -- plumbing -------------------------------------------------------------------------------
    async def _exchange_raw(self, request: bytes, dtype: int = DoeType.CMA_SPDM) -> bytes:
        rsp = await self.transport.exchange(DataObject(PCI_SIG_VENDOR_ID, dtype, request))
        self.exchanges += 1
        self.bytes_sent += 8 + len(request) + (-len(request) % 4)
        self.bytes_received += 8 + len(rsp.payload)
        if rsp.type != dtype:
            raise PeerProtocolError(f"response object type {rsp.type}, request was {dtype}")
        return rsp.payload

    def _decode(self, data: bytes, request: S.Request) -> tuple[S.Response, bytes]:
        """Decode a response, trimming DOE DW padding; ERROR becomes SpdmErrorResponse."""
        rsp, raw = S.decode_doe_padded(
            S.decode_response, data, self._sizes.for_response_to(request)
        )
        if isinstance(rsp, S.ErrorResponse):
            raise SpdmErrorResponse(rsp, type(request).__name__)
        return rsp, raw

    async def request(self, request: S.Request) -> tuple[S.Response, bytes, bytes]:
        """Send ``request`` in the clear; return (response, response bytes, request bytes).

        ERROR ResponseNotReady is followed up as DSP0274 says: wait 2^RDExponent us, then
        RESPOND_IF_READY with the token, at most RDTM times.
        """
        raw_req = request.encode()
        data = await self._exchange_raw(raw_req)
        try:
            rsp, raw_rsp = self._decode(data, request)
        except SpdmErrorResponse as exc:
            if exc.code != S.ErrorCode.RESPONSE_NOT_READY:
                raise
            rsp, raw_rsp = await self._respond_if_ready(request, exc.response)
        expected = S.ResponseCode(request.CODE & 0x7F)
        if rsp.CODE != expected:
            raise PeerProtocolError(
                f"{type(request).__name__} answered by {S.ResponseCode(rsp.CODE).name}"
            )
        return rsp, raw_rsp, raw_req

    async def _respond_if_ready(
        self, request: S.Request, error: S.ErrorResponse
    ) -> tuple[S.Response, bytes]:
        info = error.extended
        if not isinstance(info, S.ResponseNotReadyData):
            raise PeerProtocolError("ResponseNotReady without its extended data")
        if info.request_code != request.CODE:
            raise PeerProtocolError(
                f"ResponseNotReady for request code {info.request_code:#x}, sent {request.CODE:#x}"
            )
        for _ in range(max(1, info.rdtm)):
            await self.sleep((1 << info.rd_exponent) * 1e-6)
            follow = S.RespondIfReady(
                version=request.version, request_code=info.request_code, token=info.token
            )
            data = await self._exchange_raw(follow.encode())
            try:
                return self._decode(data, request)
            except SpdmErrorResponse as exc:
                if exc.code != S.ErrorCode.RESPONSE_NOT_READY:
                    raise
        raise PeerProtocolError(f"still not ready after {info.rdtm} RESPOND_IF_READY")

    async def send_raw(self, data: bytes) -> bytes:
        """Send arbitrary bytes as a CMA/SPDM object and return the raw response payload."""
        return await self._exchange_raw(data)

    # -- VCA ------------------------------------------------------------------------------------
    async def get_version(self) -> S.VersionResponse:
        rsp, raw_rsp, raw_req = await self.request(S.GetVersion())
        assert isinstance(rsp, S.VersionResponse)
        self.responder_versions = rsp.entries
        if not any(e.version == self.version for e in rsp.entries):
            raise PeerProtocolError(f"responder offers no SPDM {self.version:#x}: {rsp.entries}")
        self._vca = raw_req + raw_rsp
        self._sizes = S.NegotiatedSizes()
        return rsp

    async def get_capabilities(self) -> S.Capabilities:
        rsp, raw_rsp, raw_req = await self.request(
            S.GetCapabilities(
                version=self.version,
                ct_exponent=12,
                flags=REQUESTER_CAPS,
                data_transfer_size=MAX_MESSAGE,
                max_spdm_msg_size=MAX_MESSAGE,
            )
        )
        assert isinstance(rsp, S.Capabilities)
        self.capabilities = rsp
        self._vca += raw_req + raw_rsp
        return rsp

    async def negotiate_algorithms(self) -> S.Algorithms:
        req = S.NegotiateAlgorithms(
            version=self.version,
            other_params=S.OtherParams.OPAQUE_FMT1,
            base_asym_algo=self.asym,
            base_hash_algo=self.hashes,
            alg_structs=(
                S.AlgStruct(S.AlgType.DHE, self.dhe),
                S.AlgStruct(S.AlgType.AEAD, S.AeadSuite.AES_256_GCM),
                S.AlgStruct(S.AlgType.REQ_BASE_ASYM_ALG, self.asym),
                S.AlgStruct(S.AlgType.KEY_SCHEDULE, S.KeySchedule.SPDM),
            ),
        )
        rsp, raw_rsp, raw_req = await self.request(req)
        assert isinstance(rsp, S.Algorithms)
        for name, selected, offered in (
            ("BaseAsymSel", rsp.base_asym_sel, self.asym),
            ("BaseHashSel", rsp.base_hash_sel, self.hashes),
        ):
            if bin(selected).count("1") != 1 or not selected & offered:
                raise PeerProtocolError(f"ALGORITHMS {name} {selected:#x} not one of {offered:#x}")
        self.algorithms = rsp
        self._vca += raw_req + raw_rsp
        self._m1 = self._l1 = self._vca
        self._sizes = S.NegotiatedSizes.from_algorithms(rsp)
        return rsp

    async def connect(self) -> None:
        await self.get_version()
        await self.get_capabilities()
        await self.negotiate_algorithms()

    @property
    def hash_alg(self) -> HashAlg:
        assert self.algorithms is not None, "no ALGORITHMS yet"
        return SHA384 if self.algorithms.base_hash_sel == S.BaseHashAlgo.SHA_384 else SHA256

    # -- certificates ---------------------------------------------------------------------------
    async def get_digests(self) -> S.Digests:
        rsp, raw_rsp, raw_req = await self.request(S.GetDigests(version=self.version))
        assert isinstance(rsp, S.Digests)
        self._m1 += raw_req + raw_rsp
        return rsp

    async def get_certificate(self, slot: int = 0, portion: int = 0x400) -> bytes:
        """Read the slot's whole SPDM certificate chain in portions; validate it if anchored."""
        chain = b""
        while True:
            rsp, raw_rsp, raw_req = await self.request(
                S.GetCertificate(
                    version=self.version, slot_id=slot, offset=len(chain), length=portion
                )
            )
            assert isinstance(rsp, S.Certificate)
            self._m1 += raw_req + raw_rsp
            if not rsp.portion and rsp.remainder_length:
                raise PeerProtocolError("CERTIFICATE with an empty portion and bytes remaining")
            chain += rsp.portion
            if rsp.remainder_length == 0:
                break
            if len(chain) > 0xFFFF:
                raise PeerProtocolError("certificate chain grows past 64 KiB")
        parsed = S.CertChain.decode(chain, hash_size=self.hash_alg.size)
        certs = [x509.load_der_x509_certificate(d) for d in parsed.der_certificates()]
        if parsed.root_hash != self.hash_alg.digest(certs[0].public_bytes(Encoding.DER)):
            raise PeerProtocolError("certificate chain RootHash is not the hash of its root")
        if self.trust_anchor is not None:
            validate_chain(certs, self.trust_anchor)
        self.cert_chain, self.certificates = chain, certs
        return chain

    def _leaf_key(self) -> ec.EllipticCurvePublicKey:
        if not self.certificates:
            raise PeerProtocolError("no certificate chain read yet")
        key = self.certificates[-1].public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise PeerProtocolError("the leaf key is not an EC key")
        return key

    def _check(self, operation: SigningOperation, transcript: bytes, signature: bytes) -> None:
        h = self.hash_alg
        if not verify(
            self._leaf_key(), self.version, operation, h.digest(transcript), h, signature
        ):
            raise PeerProtocolError(f"{operation.value}: signature does not verify")

    async def challenge(self, slot: int = 0, summary: int = 0) -> S.ChallengeAuth:
        req = S.Challenge(
            version=self.version,
            slot_id=slot,
            measurement_summary_hash_type=summary,
            nonce=os.urandom(32),
        )
        rsp, raw_rsp, raw_req = await self.request(req)
        assert isinstance(rsp, S.ChallengeAuth)
        if rsp.cert_chain_hash != self.hash_alg.digest(self.cert_chain):
            raise PeerProtocolError("CHALLENGE_AUTH CertChainHash does not match the chain")
        body = raw_rsp[: len(raw_rsp) - len(rsp.signature)]
        self._check(SigningOperation.CHALLENGE_AUTH, self._m1 + raw_req + body, rsp.signature)
        self._m1 = self._vca
        return rsp

    async def get_measurements(
        self, *, signed: bool = True, operation: int = 0xFF
    ) -> S.Measurements:
        req = S.GetMeasurements(
            version=self.version,
            operation=operation,
            signature_requested=signed,
            nonce=os.urandom(32) if signed else b"",
            slot_id=0,
        )
        rsp, raw_rsp, raw_req = await self.request(req)
        assert isinstance(rsp, S.Measurements)
        if signed:
            body = raw_rsp[: len(raw_rsp) - len(rsp.signature)]
            self._check(SigningOperation.MEASUREMENTS, self._l1 + raw_req + body, rsp.signature)
            self._l1 = self._vca
        else:
            self._l1 += raw_req + raw_rsp
        return rsp

    # -- sessions -------------------------------------------------------------------------------
    async def key_exchange(self, req_session_id: int = 0xB00C) -> SpdmSession:
        """KEY_EXCHANGE then FINISH: an established session in the data phase."""
        assert self.algorithms is not None
        group = DheGroup(self.algorithms.dhe_group)
        dhe = DheKeyPair.generate(group)
        req = S.KeyExchange(
            version=self.version,
            slot_id=0,
            req_session_id=req_session_id,
            random_data=os.urandom(32),
            exchange_data=dhe.public_bytes(),
            opaque_data=S.OpaqueSupportedVersions((S.VersionNumberEntry(1, 1),)).encode(),
        )
        rsp, raw_rsp, raw_req = await self.request(req)
        assert isinstance(rsp, S.KeyExchangeRsp)
        h = self.hash_alg
        ct = h.digest(self.cert_chain)
        tail = len(rsp.signature) + len(rsp.responder_verify_data)
        signed = self._vca + ct + raw_req + raw_rsp[: len(raw_rsp) - tail]
        self._check(SigningOperation.KEY_EXCHANGE_RSP, signed, rsp.signature)
        th1 = h.digest(signed + rsp.signature)
        schedule = KeySchedule(self.version, h, AeadAlg.AES_256_GCM)
        handshake = schedule.handshake(dhe.shared_secret(rsp.exchange_data), th1)
        if not schedule.check_verify_data(
            handshake.response_finished_key, th1, rsp.responder_verify_data
        ):
            raise PeerProtocolError("KEY_EXCHANGE_RSP ResponderVerifyData does not verify")
        session_id = (rsp.rsp_session_id << 16) | req_session_id
        secured = SecuredSession(session_id, schedule, handshake, requester=True)
        transcript = self._vca + ct + raw_req + raw_rsp
        # FINISH: RequesterVerifyData over the transcript up to FINISH's header.
        header = S.Finish(version=self.version, requester_verify_data=bytes(h.size)).encode()
        header = header[: len(header) - h.size]
        verify_data = schedule.verify_data(
            handshake.request_finished_key, h.digest(transcript + header)
        )
        finish = S.Finish(version=self.version, requester_verify_data=verify_data)
        session = SpdmSession(session_id, secured, rsp.heartbeat_period)
        frsp, raw_frsp, raw_finish = await self.secured_request(session, finish)
        assert isinstance(frsp, S.FinishRsp)
        secured.enter_data_phase(h.digest(transcript + raw_finish + raw_frsp))
        return session

    async def secured_exchange(self, session: SpdmSession, message: bytes) -> bytes | None:
        """Send raw SPDM bytes inside the session; the opened response (None: no answer)."""
        sealed = session.secured.seal(message)
        rsp = await self.transport.exchange(
            DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, sealed)
        )
        self.exchanges += 1
        self.bytes_sent += 8 + len(sealed) + (-len(sealed) % 4)
        self.bytes_received += 8 + len(rsp.payload)
        if rsp.type != DoeType.SECURED_CMA_SPDM:
            raise PeerProtocolError(f"secured request answered by DOE type {rsp.type}")
        return session.secured.open(rsp.payload)

    async def secured_request(
        self, session: SpdmSession, request: S.Request
    ) -> tuple[S.Response, bytes, bytes]:
        raw_req = request.encode()
        data = await self.secured_exchange(session, raw_req)
        if data is None:
            raise PeerProtocolError(f"no answer to {type(request).__name__} in the session")
        rsp, raw_rsp = self._decode(data, request)
        return rsp, raw_rsp, raw_req

    async def heartbeat(self, session: SpdmSession) -> None:
        rsp, _, _ = await self.secured_request(session, S.Heartbeat(version=self.version))
        if not isinstance(rsp, S.HeartbeatAck):
            raise PeerProtocolError(f"HEARTBEAT answered by {type(rsp).__name__}")

    async def key_update(self, session: SpdmSession, *, all_keys: bool = False) -> None:
        """KEY_UPDATE (UpdateKey or UpdateAllKeys), then VerifyNewKey under the new keys."""
        op = S.KeyUpdateOp.UPDATE_ALL_KEYS if all_keys else S.KeyUpdateOp.UPDATE_KEY
        tag = os.urandom(1)[0]
        secured = session.secured
        sealed = secured.seal(S.KeyUpdate(version=self.version, operation=op, tag=tag).encode())
        secured.request_channel.key_update()  # what follows goes under the new request key
        rsp = await self.transport.exchange(
            DataObject(PCI_SIG_VENDOR_ID, DoeType.SECURED_CMA_SPDM, sealed)
        )
        ack, _ = self._decode(secured.open(rsp.payload), S.KeyUpdate(operation=op, tag=tag))
        if not isinstance(ack, S.KeyUpdateAck) or (ack.operation, ack.tag) != (op, tag):
            secured.rollback_key_update()
            raise PeerProtocolError(f"KEY_UPDATE answered by {ack!r}")
        if all_keys:
            secured.response_channel.key_update()
        verify_req = S.KeyUpdate(
            version=self.version, operation=S.KeyUpdateOp.VERIFY_NEW_KEY, tag=tag
        )
        ack2, _, _ = await self.secured_request(session, verify_req)
        if not isinstance(ack2, S.KeyUpdateAck):
            raise PeerProtocolError(f"VerifyNewKey answered by {type(ack2).__name__}")
        secured.commit_key_update()

    async def end_session(self, session: SpdmSession) -> None:
        rsp, _, _ = await self.secured_request(session, S.EndSession(version=self.version))
        if not isinstance(rsp, S.EndSessionAck):
            raise PeerProtocolError(f"END_SESSION answered by {type(rsp).__name__}")
        session.open = False

    async def vendor_request(
        self, session: SpdmSession, protocol_id: int, message: bytes
    ) -> bytes | None:
        """A PCI-SIG VENDOR_DEFINED_REQUEST (IDE_KM, TDISP) in the session; its payload back."""
        req = S.VendorDefinedRequest.pci_sig(protocol_id, message, version=self.version)
        data = await self.secured_exchange(session, req.encode())
        if data is None:
            return None
        rsp, _ = self._decode(data, req)
        if not isinstance(rsp, S.VendorDefinedResponse):
            raise PeerProtocolError(f"VENDOR_DEFINED_REQUEST answered by {type(rsp).__name__}")
        return rsp.payload

    async def authenticate(self) -> None:
        """The usual flow up to a verified CHALLENGE: VCA, digests, certificate, challenge."""
        await self.connect()
        await self.get_digests()
        await self.get_certificate()
        await self.challenge()
