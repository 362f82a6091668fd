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
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ..codec import spdm as S
from ..codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from ..codec.secured import DecryptError, SecuredSession
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
from ..errors import HilError, LocalProtocolError, PeerProtocolError
from ..pki import Identity, validate_chain
from ..transport import DoeTransport

__all__ = ["ChainCache", "SpdmErrorResponse", "SpdmRequester", "SpdmSession"]

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


class ChainCache:
    """Certificate chains read in this run, in a folder, by digest: a chain is taken back only
    if it still hashes to the digest asked for, and the requester validates it again."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, digest: bytes) -> Path:
        return self.folder / f"{digest.hex()}.chain"

    def get(self, digest: bytes, hash_alg: HashAlg) -> bytes | None:
        try:
            chain = self._path(digest).read_bytes()
        except OSError:
            return None
        return chain if hash_alg.digest(chain) == digest else None

    def put(self, digest: bytes, chain: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self._path(digest).with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(chain)
            os.replace(tmp, self._path(digest))
        except OSError:
            pass  # a cache that cannot be written only costs the next GET_CERTIFICATE


@dataclass
class SpdmRequester:
    """One requester talking to one responder."""

    transport: DoeTransport
    trust_anchor: x509.Certificate | None = None
    #: How to wait (ResponseNotReady): the rig's timebase; asyncio's sleep by default.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    #: BaseAsymAlgo offered: every algorithm the requester verifies (DSP0274 ALGORITHMS).
    asym: int = (
        S.BaseAsymAlgo.ECDSA_P384
        | S.BaseAsymAlgo.ECDSA_P256
        | S.BaseAsymAlgo.ECDSA_P521
        | S.BaseAsymAlgo.RSAPSS_3072
        | S.BaseAsymAlgo.RSASSA_3072
        | S.BaseAsymAlgo.RSAPSS_2048
        | S.BaseAsymAlgo.RSASSA_2048
        | S.BaseAsymAlgo.RSAPSS_4096
        | S.BaseAsymAlgo.RSASSA_4096
    )
    hashes: int = S.BaseHashAlgo.SHA_384 | S.BaseHashAlgo.SHA_256
    dhe: int = S.DheGroup.SECP384R1 | S.DheGroup.SECP256R1
    #: The versions the requester speaks; GET_VERSION picks the highest the responder offers
    #: too, and ``version`` is then what it negotiated (DSP0274 1.3 §10.3).
    versions: tuple[int, ...] = (S.SpdmVersion.V12, S.SpdmVersion.V13)
    version: int = VERSION
    #: The requester's own certificate chain and key: with it, the requester offers mutual
    #: authentication (MUT_AUTH_CAP, ENCAP_CAP) and answers the responder's encapsulated
    #: requests (DSP0274 1.2 §10.18-10.19).
    identity: Identity | None = None
    #: Certificate chains already read and validated, by their digest: :meth:`authenticate`
    #: skips GET_CERTIFICATE for a slot whose DIGESTS entry names one (DSP0274 1.2 §10.6: a
    #: Requester may use a cached chain whose digest matches).
    chain_cache: ChainCache | None = None
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
    _mut_b: bytes = b""  # encapsulated GET_DIGESTS/DIGESTS, GET_CERTIFICATE/CERTIFICATE
    _mut_c: bytes = b""  # encapsulated CHALLENGE/CHALLENGE_AUTH (basic mutual auth)
    mutual_authentications: int = 0
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

    async def request_any(self, request: S.Request) -> tuple[S.Response, bytes, bytes]:
        """Send ``request`` in the clear and return whatever it is answered with (no ERROR)."""
        raw_req = request.encode()
        rsp, raw_rsp = self._decode(await self._exchange_raw(raw_req), request)
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
        offered = {e.version for e in rsp.entries}
        common = [v for v in self.versions if v in offered]
        if not common:
            wanted = ", ".join(S.SpdmVersion(v).text for v in self.versions)
            raise PeerProtocolError(f"responder offers none of SPDM {wanted}: {rsp.entries}")
        # DSP0274 §10.3 (VERSION): the highest version both support.
        self.version = max(common)
        self._vca = raw_req + raw_rsp
        self._sizes = S.NegotiatedSizes()
        return rsp

    async def get_capabilities(self) -> S.Capabilities:
        rsp, raw_rsp, raw_req = await self.request(
            S.GetCapabilities(
                version=self.version,
                ct_exponent=12,
                flags=self._flags(),
                data_transfer_size=MAX_MESSAGE,
                max_spdm_msg_size=MAX_MESSAGE,
            )
        )
        assert isinstance(rsp, S.Capabilities)
        self.capabilities = rsp
        self._vca += raw_req + raw_rsp
        return rsp

    def _context(self) -> bytes:
        """RequesterContext: 8 fresh bytes from SPDM 1.3 on, absent before."""
        return os.urandom(S.REQUESTER_CONTEXT_SIZE) if self.version >= S.SpdmVersion.V13 else b""

    def _flags(self) -> int:
        if self.identity is None:
            return REQUESTER_CAPS
        return REQUESTER_CAPS | S.CapFlag.MUT_AUTH | S.CapFlag.ENCAP

    @property
    def req_asym(self) -> int:
        """ReqBaseAsymAlg offered: what the requester's key can sign, or ``asym``."""
        if self.identity is None:  # nothing to sign with; what a responder may expect anyway
            return S.BaseAsymAlgo.ECDSA_P384 | S.BaseAsymAlgo.ECDSA_P256
        return int(self.identity.asym_algs)

    async def negotiate_algorithms(self) -> S.Algorithms:
        req = S.NegotiateAlgorithms(
            version=self.version,
            other_params=S.OtherParams.OPAQUE_FMT1,
            base_asym_algo=self.asym,
            base_hash_algo=self.hashes,
            alg_structs=(
                S.AlgStruct(S.AlgType.DHE, self.dhe),
                S.AlgStruct(S.AlgType.AEAD, S.AeadSuite.AES_256_GCM),
                S.AlgStruct(S.AlgType.REQ_BASE_ASYM_ALG, self.req_asym),
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
        req_sel = rsp.req_base_asym_alg
        if req_sel and (bin(req_sel).count("1") != 1 or not req_sel & self.req_asym):
            raise PeerProtocolError(
                f"ALGORITHMS ReqBaseAsymAlg {int(req_sel):#x} not one of {self.req_asym:#x}"
            )
        self.algorithms = rsp
        self._vca += raw_req + raw_rsp
        self._m1 = self._l1 = self._vca
        self._mut_b = self._mut_c = b""
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
        self.use_chain(chain)
        return chain

    def use_chain(self, chain: bytes) -> None:
        """Take ``chain`` (an SPDM certificate chain) as the responder's: decoded, its
        RootHash checked, and validated against the trust anchor when there is one."""
        parsed = S.CertChain.decode(chain, hash_size=self.hash_alg.size)
        certs = [x509.load_der_x509_certificate(d) for d in parsed.der_certificates()]
        if parsed.root_hash != self.hash_alg.digest(certs[0].public_bytes(Encoding.DER)):
            raise PeerProtocolError("certificate chain RootHash is not the hash of its root")
        if self.trust_anchor is not None:
            validate_chain(certs, self.trust_anchor)
        self.cert_chain, self.certificates = chain, certs

    def _leaf_key(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        if not self.certificates:
            raise PeerProtocolError("no certificate chain read yet")
        key = self.certificates[-1].public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise PeerProtocolError(f"the leaf key is {type(key).__name__}, not ECDSA or RSA")
        return key

    def _check(self, operation: SigningOperation, transcript: bytes, signature: bytes) -> None:
        assert self.algorithms is not None
        h = self.hash_alg
        try:
            ok = verify(
                self._leaf_key(),
                self.version,
                operation,
                h.digest(transcript),
                h,
                signature,
                asym_alg=int(self.algorithms.base_asym_sel),
            )
        except LocalProtocolError as exc:  # the leaf key cannot make the selected algorithm
            raise PeerProtocolError(
                f"{operation.value}: the leaf key does not fit BaseAsymSel "
                f"{int(self.algorithms.base_asym_sel):#x}: {exc}"
            ) from None
        if not ok:
            raise PeerProtocolError(f"{operation.value}: signature does not verify")

    async def challenge(self, slot: int = 0, summary: int = 0) -> S.ChallengeAuth:
        req = S.Challenge(
            version=self.version,
            slot_id=slot,
            measurement_summary_hash_type=summary,
            nonce=os.urandom(32),
            requester_context=self._context(),
        )
        rsp, raw_rsp, raw_req = await self.request(req)
        assert isinstance(rsp, S.ChallengeAuth)
        if rsp.requester_context != req.requester_context:
            raise PeerProtocolError(
                "CHALLENGE_AUTH RequesterContext is not the CHALLENGE's (DSP0274 1.3 §10.9)"
            )
        if rsp.cert_chain_hash != self.hash_alg.digest(self.cert_chain):
            raise PeerProtocolError("CHALLENGE_AUTH CertChainHash does not match the chain")
        body = raw_rsp[: len(raw_rsp) - len(rsp.signature)]
        self._check(SigningOperation.CHALLENGE_AUTH, self._m1 + raw_req + body, rsp.signature)
        self._m1 = self._vca
        # BasicMutAuthReq (Param1 bit 7): SPDM 1.1, deprecated from 1.2 on; libspdm still sets
        # it, at 1.2 and 1.3 alike, and then waits for GET_ENCAPSULATED_REQUEST (anything else
        # gets RequestInFlight).  A requester that offered MUT_AUTH_CAP runs the encapsulated
        # flow in the clear, ending with the responder's CHALLENGE (DSP0274 1.1 §10.19).
        if self.identity is not None and raw_rsp[2] & 0x80:
            await self._encapsulated_flow(None)
            self.mutual_authentications += 1
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
            requester_context=self._context(),
        )
        rsp, raw_rsp, raw_req = await self.request(req)
        assert isinstance(rsp, S.Measurements)
        if rsp.requester_context != req.requester_context:
            raise PeerProtocolError(
                "MEASUREMENTS RequesterContext is not the GET_MEASUREMENTS' (DSP0274 1.3 §10.11)"
            )
        if signed:
            body = raw_rsp[: len(raw_rsp) - len(rsp.signature)]
            self._check(SigningOperation.MEASUREMENTS, self._l1 + raw_req + body, rsp.signature)
            self._l1 = self._vca
        else:
            self._l1 += raw_req + raw_rsp
        return rsp

    # -- sessions -------------------------------------------------------------------------------
    async def key_exchange(
        self,
        req_session_id: int = 0xB00C,
        *,
        tamper_verify_data: Callable[[bytes], bytes] | None = None,
    ) -> SpdmSession:
        """KEY_EXCHANGE then FINISH: an established session in the data phase.

        ``tamper_verify_data`` changes FINISH's RequesterVerifyData before it is sent (a
        vector's check that the responder verifies it)."""
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
        session = SpdmSession(session_id, secured, rsp.heartbeat_period)
        transcript = self._vca + ct + raw_req + raw_rsp
        mut = S.MutAuthRequest(rsp.mut_auth_requested)
        slot: int | None = None
        if mut:
            # Mutual authentication (DSP0274 1.2 §10.13 MutAuthRequested): the responder may
            # first fetch our chain through encapsulated requests, under the handshake keys;
            # then FINISH carries our signature and the transcript takes our chain's hash.
            slot = await self._session_mutual_auth(session, mut, rsp.req_slot_id)
            transcript += h.digest(self._own_chain())
        # FINISH: [Signature over the transcript up to and with FINISH's header, then]
        # RequesterVerifyData over the transcript up to the signature's end.
        blank = S.Finish(
            version=self.version,
            signature=bytes(self._req_sig_size()) if slot is not None else b"",
            req_slot_id=slot or 0,
            requester_verify_data=bytes(h.size),
        ).encode()
        transcript += blank[:4]
        signature = b""
        if slot is not None:
            signature = self._sign(SigningOperation.FINISH, transcript)
            transcript += signature
        verify_data = schedule.verify_data(handshake.request_finished_key, h.digest(transcript))
        if tamper_verify_data is not None:
            verify_data = tamper_verify_data(verify_data)
        finish = S.Finish(
            version=self.version,
            signature=signature,
            req_slot_id=slot or 0,
            requester_verify_data=verify_data,
        )
        transcript = self._vca + ct + raw_req + raw_rsp
        if slot is not None:
            transcript += h.digest(self._own_chain())
        frsp, raw_frsp, raw_finish = await self.secured_request(session, finish)
        assert isinstance(frsp, S.FinishRsp)
        secured.enter_data_phase(h.digest(transcript + raw_finish + raw_frsp))
        if slot is not None:
            self.mutual_authentications += 1
        return session

    # -- mutual authentication: the requester's own identity ----------------------------------
    def _require_identity(self) -> Identity:
        if self.identity is None:
            raise PeerProtocolError(
                "the responder asks for mutual authentication, which this requester did not "
                "offer (no requester identity: MUT_AUTH_CAP was clear)"
            )
        return self.identity

    def _own_chain(self) -> bytes:
        return self._require_identity().spdm_chain(self.hash_alg)

    def _req_sig_size(self) -> int:
        assert self.algorithms is not None
        sel = self.algorithms.req_base_asym_alg
        if not sel:
            raise PeerProtocolError("mutual authentication without a negotiated ReqBaseAsymAlg")
        return S.signature_size(sel)

    def _sign(self, operation: SigningOperation, transcript: bytes) -> bytes:
        assert self.algorithms is not None
        h = self.hash_alg
        return self._require_identity().sign(
            self.version,
            operation,
            h.digest(transcript),
            hash_alg=h,
            asym_alg=int(self.algorithms.req_base_asym_alg),
        )

    async def _session_mutual_auth(
        self, session: SpdmSession, mut: S.MutAuthRequest, req_slot_id: int
    ) -> int:
        """What KEY_EXCHANGE_RSP's MutAuthRequested asks for; the slot FINISH signs with."""
        self._require_identity()
        if mut not in (
            S.MutAuthRequest.REQUESTED,
            S.MutAuthRequest.WITH_ENCAP_REQUEST,
            S.MutAuthRequest.WITH_GET_DIGESTS,
        ):
            raise PeerProtocolError(
                f"KEY_EXCHANGE_RSP MutAuthRequested {int(mut):#x}: at most one bit may be set "
                "(DSP0274 1.2 §10.13)"
            )
        slot = req_slot_id & 0xF
        if mut != S.MutAuthRequest.REQUESTED:
            given = await self._encapsulated_flow(
                session, implicit_get_digests=mut == S.MutAuthRequest.WITH_GET_DIGESTS
            )
            slot = given if given is not None else slot
        if slot != 0:
            raise PeerProtocolError(
                f"the responder wants the requester's slot {slot}; only slot 0 is provisioned"
            )
        return slot

    async def _encap_exchange(self, session: SpdmSession | None, request: S.Request) -> S.Response:
        if session is None:
            rsp, _, _ = await self.request_any(request)
        else:
            rsp, _, _ = await self.secured_request(session, request)
        return rsp

    async def _encapsulated_flow(
        self, session: SpdmSession | None, *, implicit_get_digests: bool = False
    ) -> int | None:
        """Answer the responder's encapsulated requests until it says the flow is over.

        DSP0274 1.2 §10.18-10.19: GET_ENCAPSULATED_REQUEST fetches the first request (or, for
        MutAuthRequested WITH_GET_DIGESTS, an implicit GET_DIGESTS with RequestID 0 is
        answered straight away); each DELIVER_ENCAPSULATED_RESPONSE is acknowledged with
        ENCAPSULATED_RESPONSE_ACK carrying the next request, nothing more, or the slot the
        requester is to sign FINISH with.  Returns that slot, if given.
        """
        if implicit_get_digests:
            request_id, payload = 0, S.GetDigests(version=self.version).encode()
        else:
            first = await self._encap_exchange(
                session, S.GetEncapsulatedRequest(version=self.version)
            )
            if not isinstance(first, S.EncapsulatedRequest):
                raise PeerProtocolError(
                    f"GET_ENCAPSULATED_REQUEST answered by {type(first).__name__}"
                )
            request_id, payload = first.request_id, first.payload
        for _ in range(64):
            answer = self._answer_encapsulated(payload)
            ack = await self._encap_exchange(
                session,
                S.DeliverEncapsulatedResponse(
                    version=self.version, request_id=request_id, payload=answer
                ),
            )
            if not isinstance(ack, S.EncapsulatedResponseAck):
                raise PeerProtocolError(
                    f"DELIVER_ENCAPSULATED_RESPONSE answered by {type(ack).__name__}"
                )
            if self.version >= S.SpdmVersion.V12 and ack.ack_request_id != request_id:
                raise PeerProtocolError(
                    f"ENCAPSULATED_RESPONSE_ACK AckRequestID {ack.ack_request_id} acknowledges "
                    f"another response than RequestID {request_id} (DSP0274 1.2 §10.19)"
                )
            if ack.payload_type == S.EncapPayloadType.ABSENT:
                return None
            if ack.payload_type == S.EncapPayloadType.REQ_SLOT_NUMBER:
                return ack.payload[0]
            request_id, payload = ack.request_id, ack.payload
        raise PeerProtocolError("the responder's encapsulated flow did not end in 64 requests")

    def _answer_encapsulated(self, data: bytes) -> bytes:
        """The requester's response to one encapsulated request (its own chain, CHALLENGE)."""
        identity = self._require_identity()
        h = self.hash_alg
        try:
            request = S.decode_request(data, self._sizes)
        except S.SpdmDecodeError as exc:
            return exc.error_response(self.version).encode()
        match request:
            case S.GetDigests():
                rsp = S.Digests(
                    version=self.version,
                    slot_mask=0x01,
                    digests=(h.digest(self._own_chain()),),
                    supported_slot_mask=0x01 if self.version >= S.SpdmVersion.V13 else 0,
                ).encode()
                self._mut_b += data + rsp
                return rsp
            case S.GetCertificate(slot_id=0):
                chain = self._own_chain()
                portion = chain[request.offset : request.offset + request.length]
                if request.offset >= len(chain) and chain:
                    return self._encap_error(S.ErrorCode.INVALID_REQUEST)
                rsp = S.Certificate(
                    version=self.version,
                    slot_id=0,
                    portion=portion,
                    remainder_length=len(chain) - request.offset - len(portion),
                ).encode()
                self._mut_b += data + rsp
                return rsp
            case S.Challenge(slot_id=0):
                return self._challenge_auth_as_requester(identity, request, data)
            case S.GetDigests() | S.GetCertificate() | S.Challenge():
                return self._encap_error(S.ErrorCode.INVALID_REQUEST)
        return self._encap_error(S.ErrorCode.UNSUPPORTED_REQUEST, request.CODE)

    def _encap_error(self, code: int, data: int = 0) -> bytes:
        return S.ErrorResponse(version=self.version, error_code=code, error_data=data).encode()

    def _challenge_auth_as_requester(
        self, identity: Identity, request: S.Challenge, raw: bytes
    ) -> bytes:
        """CHALLENGE_AUTH signed with the requester's key over VCA + mut B + mut C (1.2+)."""
        h = self.hash_alg
        fields = dict(
            version=self.version,
            slot_id=0,
            slot_mask=0x01,
            cert_chain_hash=h.digest(self._own_chain()),
            nonce=os.urandom(32),
            requester_context=getattr(request, "requester_context", b""),
        )
        unsigned = S.ChallengeAuth(**fields, signature=bytes(self._req_sig_size())).encode()
        body = unsigned[: len(unsigned) - self._req_sig_size()]
        self._mut_c = raw + body
        vca = self._vca if self.version >= S.SpdmVersion.V12 else b""
        signature = self._sign(SigningOperation.MUT_CHALLENGE_AUTH, vca + self._mut_b + self._mut_c)
        self._mut_b = self._mut_c = b""
        return S.ChallengeAuth(**fields, signature=signature).encode()

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
        ack, _ = self._decode(
            self._open_key_update_ack(secured, rsp.payload, all_keys=all_keys),
            S.KeyUpdate(operation=op, tag=tag),
        )
        if not isinstance(ack, S.KeyUpdateAck) or (ack.operation, ack.tag) != (op, tag):
            secured.rollback_key_update()
            raise PeerProtocolError(f"KEY_UPDATE answered by {ack!r}")
        verify_req = S.KeyUpdate(
            version=self.version, operation=S.KeyUpdateOp.VERIFY_NEW_KEY, tag=tag
        )
        ack2, _, _ = await self.secured_request(session, verify_req)
        if not isinstance(ack2, S.KeyUpdateAck):
            raise PeerProtocolError(f"VerifyNewKey answered by {type(ack2).__name__}")
        secured.commit_key_update()

    @staticmethod
    def _open_key_update_ack(secured: SecuredSession, record: bytes, *, all_keys: bool) -> bytes:
        """Open KEY_UPDATE_ACK; after UpdateAllKeys the response direction is updated too.

        For UpdateAllKeys the Responder updates both directions on receipt (DSP0274 1.2
        §10.16, KEY_UPDATE operations), and libspdm's responder seals the ACK under its new
        response key; its requester, on a failure, retries with the backup key, so a responder
        that answers under the old key is met too.  We do the same: new key first, then old.
        """
        if not all_keys:
            return secured.open(record)
        secured.response_channel.key_update()
        try:
            return secured.open(record)
        except DecryptError:
            secured.response_channel.rollback()
        opened = secured.open(record)
        secured.response_channel.key_update()
        return opened

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
        """The usual flow up to a verified CHALLENGE: VCA, digests, certificate, challenge.
        With a :attr:`chain_cache` that holds the chain slot 0's digest names, the chain comes
        from there (validated again) instead of GET_CERTIFICATE; the CHALLENGE transcript then
        holds the messages exchanged, as DSP0274 defines it."""
        await self.connect()
        digests = await self.get_digests()
        cached = None
        if self.chain_cache is not None and digests.slot_mask & 1 and digests.digests:
            cached = self.chain_cache.get(digests.digests[0], self.hash_alg)
        if cached is not None:
            self.use_chain(cached)
        else:
            chain = await self.get_certificate()
            if self.chain_cache is not None:
                self.chain_cache.put(self.hash_alg.digest(chain), chain)
        await self.challenge()
