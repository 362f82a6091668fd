"""The device's side of session-based mutual authentication (DSP0274 1.2/1.3).

A device may require the requester to authenticate itself in a session's handshake:
KEY_EXCHANGE_RSP ``MutAuthRequested`` (DSP0274 1.3 Table 71; 1.2 §10.13) asks for it, and
FINISH then carries the requester's signature (Table 72, ``Param1`` bit 0).  How the device
comes to hold the requester's certificate chain is the mode (:class:`MutAuthMode`):

- ``requested`` (bit 0): the chain was provisioned to the device beforehand; nothing is
  exchanged between KEY_EXCHANGE_RSP and FINISH, and ``SlotIDParam`` names the slot;
- ``encap`` (bit 1): the device fetches the chain with encapsulated GET_DIGESTS and
  GET_CERTIFICATE, the requester pulling each with GET_ENCAPSULATED_REQUEST /
  DELIVER_ENCAPSULATED_RESPONSE (DSP0274 1.2 §10.18-10.19; 1.3 "GET_ENCAPSULATED_REQUEST
  request and ENCAPSULATED_REQUEST response messages");
- ``digests`` (bit 2): the same, the first GET_DIGESTS implicit (RequestID 0): the requester
  answers it with DELIVER_ENCAPSULATED_RESPONSE straight away.

In both encapsulated modes the flow ends with ENCAPSULATED_RESPONSE_ACK ``Param2`` = 2 and the
slot the requester is to sign FINISH with (1.3 "Specify Requester certificate for session-based
mutual authentication": the Responder "shall use" that form).  The device validates the chain
it receives against its requester trust anchor, as a requester validates a responder's chain
(1.3 "Mutual authentication requirements for GET_CERTIFICATE and CERTIFICATE messages": the
roles reverse), with the requester leaf rules of :func:`hil.pki.validate_chain`.

This module holds the policy and the flow's state; :mod:`hil.firmware.spdm_responder` wires
them into KEY_EXCHANGE, the handshake phase and FINISH.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..codec import spdm as S
from ..codec.spdm_crypto import HashAlg, VerifyingKey, asym_algs_for_key
from ..errors import HilError, LocalProtocolError
from ..pki import CertificateChainError, build_spdm_chain, parse_spdm_chain, validate_chain

__all__ = [
    "REQ_ASYM_PRIORITY",
    "EncapsulatedFlow",
    "MutAuthMode",
    "MutualAuthError",
    "MutualAuthPolicy",
    "RequesterProof",
]

log = logging.getLogger("hil.firmware.spdm")

_A = S.BaseAsymAlgo
#: ReqBaseAsymAlg the device verifies, most preferred first: ECDSA, then RSA with the larger
#: moduli first (a requester that lists sizes its key does not have is then still met with the
#: size it does have, the largest), RSASSA-PSS before PKCS#1 v1.5.
REQ_ASYM_PRIORITY: tuple[int, ...] = (
    _A.ECDSA_P384,
    _A.ECDSA_P256,
    _A.ECDSA_P521,
    _A.RSAPSS_4096,
    _A.RSAPSS_3072,
    _A.RSAPSS_2048,
    _A.RSASSA_4096,
    _A.RSASSA_3072,
    _A.RSASSA_2048,
)
#: Bytes of the requester's chain asked for in each encapsulated GET_CERTIFICATE; the
#: CERTIFICATE comes back inside DELIVER_ENCAPSULATED_RESPONSE and must fit this device's own
#: DataTransferSize with room to spare.
CERT_PORTION = 0x400
_MAX_CHAIN = 0xFFFF  # Table 33: Length is a u16


class MutAuthMode(StrEnum):
    """What the device asks of a requester that offers mutual authentication."""

    NONE = "none"
    REQUESTED = "requested"  # MutAuthRequested bit 0: the chain was provisioned
    ENCAP = "encap"  # bit 1: encapsulated GET_DIGESTS / GET_CERTIFICATE
    DIGESTS = "digests"  # bit 2: the same with an implicit GET_DIGESTS

    @property
    def request(self) -> S.MutAuthRequest:
        """The MutAuthRequested bit of this mode (0 for none)."""
        return {
            MutAuthMode.NONE: S.MutAuthRequest(0),
            MutAuthMode.REQUESTED: S.MutAuthRequest.REQUESTED,
            MutAuthMode.ENCAP: S.MutAuthRequest.WITH_ENCAP_REQUEST,
            MutAuthMode.DIGESTS: S.MutAuthRequest.WITH_GET_DIGESTS,
        }[self]

    @property
    def encapsulated(self) -> bool:
        return self in (MutAuthMode.ENCAP, MutAuthMode.DIGESTS)


class MutualAuthError(HilError):
    """Answer the request with ERROR ``error_code`` (the responder turns it into one)."""

    def __init__(self, error_code: int, why: str) -> None:
        super().__init__(why)
        self.error_code = error_code


def _leaf_key(cert: x509.Certificate) -> VerifyingKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise LocalProtocolError(f"{type(key).__name__} is not an ECDSA or RSA key")
    return key


def _not_authenticated(why: str) -> MutualAuthError:
    """The requester cannot be authenticated: its chain is not one the device trusts.

    ERROR(DecryptError) in the handshake phase ends the session at both ends (DSP0274 1.2/1.3,
    session handshake phase: "If an error occurs in this phase with ErrorCode=DecryptError,
    the session shall immediately terminate"), which is what a requester that failed
    authentication must meet: no session.  DecryptError is also what FINISH gets when the
    requester's signature does not verify (libspdm's responder answers a FINISH signature
    failure so too)."""
    return MutualAuthError(S.ErrorCode.DECRYPT_ERROR, f"requester not authenticated: {why}")


@dataclass(frozen=True)
class RequesterProof:
    """What FINISH's signature is checked with: the requester's chain (SPDM format, under the
    negotiated hash; its hash goes into the transcript), its leaf key, and its slot."""

    chain: bytes
    leaf_key: VerifyingKey
    slot: int


@dataclass(frozen=True)
class MutualAuthPolicy:
    """Whether and how the device authenticates requesters in sessions.

    ``trust_anchor`` is the root requester chains must validate to; ``requester_chain`` is a
    chain the device already holds (root first), required by ``requested`` and used by
    ``digests``/``encap`` when the requester's DIGESTS shows the same chain (no GET_CERTIFICATE
    is then needed).  A provisioned chain is validated against the anchor here, once.
    """

    mode: MutAuthMode = MutAuthMode.NONE
    trust_anchor: x509.Certificate | None = None
    requester_chain: tuple[x509.Certificate, ...] = ()
    #: Requester leaf keys the provisioned chain allows (set from it; all supported otherwise).
    _leaf_algs: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", MutAuthMode(self.mode))
        object.__setattr__(self, "requester_chain", tuple(self.requester_chain))
        if self.mode is MutAuthMode.NONE:
            return
        if self.trust_anchor is None:
            raise LocalProtocolError(
                f"mutual authentication ({self.mode.value}) needs a requester trust anchor"
            )
        if self.mode is MutAuthMode.REQUESTED and not self.requester_chain:
            raise LocalProtocolError(
                "mutual authentication without encapsulated requests (MutAuthRequested bit 0) "
                "needs the requester's chain provisioned to the device"
            )
        algs = 0
        for alg in REQ_ASYM_PRIORITY:
            algs |= alg
        if self.requester_chain:
            try:
                validate_chain(self.requester_chain, self.trust_anchor, role="requester")
                algs = int(asym_algs_for_key(_leaf_key(self.requester_chain[-1])))
            except (CertificateChainError, LocalProtocolError) as exc:
                raise LocalProtocolError(
                    f"the provisioned requester chain is not usable: {exc}"
                ) from None
        object.__setattr__(self, "_leaf_algs", algs)

    @property
    def enabled(self) -> bool:
        return self.mode is not MutAuthMode.NONE

    def select_req_asym(self, offered: int) -> int:
        """ReqBaseAsymAlg for ALGORITHMS: one bit the requester offered that the device can
        verify (and, with a provisioned chain, that its leaf key makes), or 0."""
        for alg in REQ_ASYM_PRIORITY:
            if offered & alg & self._leaf_algs:
                return int(alg)
        return 0

    def provisioned(self, hash_alg: HashAlg) -> RequesterProof | None:
        """The provisioned chain as FINISH checks it (slot 0), if there is one."""
        if not self.requester_chain:
            return None
        leaf = _leaf_key(self.requester_chain[-1])
        return RequesterProof(build_spdm_chain(self.requester_chain, hash_alg), leaf, 0)


@dataclass
class EncapsulatedFlow:
    """The device's encapsulated request flow in one session's handshake phase: GET_DIGESTS,
    then GET_CERTIFICATE in portions, then the final ACK naming the slot.

    :meth:`get_encapsulated_request` answers GET_ENCAPSULATED_REQUEST, :meth:`deliver`
    answers DELIVER_ENCAPSULATED_RESPONSE; both raise :class:`MutualAuthError` for an ERROR.
    Once over, :attr:`proof` holds what FINISH is checked with, or :attr:`failure` why there
    is none.
    """

    version: int
    hash_alg: HashAlg
    sizes: S.NegotiatedSizes
    policy: MutualAuthPolicy
    #: ReqBaseAsymSel: the leaf key must be able to make it.
    req_asym: int
    request_id: int = 0
    in_flight: S.Request | None = None
    over: bool = False
    proof: RequesterProof | None = None
    failure: str = ""
    _slot: int = 0
    _digest: bytes = b""
    _chain: bytes = b""

    @classmethod
    def start(
        cls,
        mode: MutAuthMode,
        *,
        version: int,
        hash_alg: HashAlg,
        sizes: S.NegotiatedSizes,
        policy: MutualAuthPolicy,
        req_asym: int,
    ) -> EncapsulatedFlow:
        flow = cls(version, hash_alg, sizes, policy, req_asym)
        if mode is MutAuthMode.DIGESTS:
            # The optimized flow: GET_DIGESTS is in flight from KEY_EXCHANGE_RSP on, RequestID 0.
            flow.in_flight = S.GetDigests(version=version)
        return flow

    @property
    def started(self) -> bool:
        return self.in_flight is not None or self.over

    # -- the two requests that drive the flow ---------------------------------------------------
    def get_encapsulated_request(self) -> S.EncapsulatedRequest:
        """The request in flight (the first, GET_DIGESTS, if the flow has not started; the
        same one again if the requester asks twice)."""
        if self.over:
            raise MutualAuthError(S.ErrorCode.UNEXPECTED_REQUEST, "the flow is over")
        if self.in_flight is None:
            self._issue(S.GetDigests(version=self.version))
        assert self.in_flight is not None
        return S.EncapsulatedRequest(
            version=self.version, request_id=self.request_id, payload=self.in_flight.encode()
        )

    def deliver(self, request: S.DeliverEncapsulatedResponse) -> S.EncapsulatedResponseAck:
        if self.over or self.in_flight is None:
            raise MutualAuthError(
                S.ErrorCode.UNEXPECTED_REQUEST, "no encapsulated request is outstanding"
            )
        if request.request_id != self.request_id:
            raise MutualAuthError(
                S.ErrorCode.INVALID_REQUEST,
                f"DELIVER_ENCAPSULATED_RESPONSE RequestID {request.request_id}, the request "
                f"outstanding is {self.request_id}",
            )
        response = self._decode(request.payload)
        if isinstance(response, S.ErrorResponse):
            # DSP0274 1.2 §10.19: an encapsulated ERROR (ResponseNotReady in particular) ends
            # the flow: ENCAPSULATED_RESPONSE_ACK with PayloadType 0.  The requester is then
            # not authenticated, and its FINISH is refused.
            self._end(
                failure=f"the requester answered {type(self.in_flight).__name__} with "
                f"ERROR {response.error_code:#04x}"
            )
            return self._ack(request.request_id, S.EncapPayloadType.ABSENT)
        match self.in_flight, response:
            case S.GetDigests(), S.Digests():
                self._take_digests(response)
            case S.GetCertificate(), S.Certificate():
                self._take_certificate(response)
            case _:
                raise MutualAuthError(
                    S.ErrorCode.INVALID_RESPONSE_CODE,
                    f"{type(self.in_flight).__name__} answered by {type(response).__name__}",
                )
        if self.over:
            return self._ack(
                request.request_id, S.EncapPayloadType.REQ_SLOT_NUMBER, bytes((self._slot,))
            )
        assert self.in_flight is not None
        return self._ack(
            request.request_id, S.EncapPayloadType.PRESENT, self.in_flight.encode(), next_id=True
        )

    # -- steps ----------------------------------------------------------------------------------
    def _decode(self, payload: bytes) -> S.Response:
        try:
            response, _ = S.decode_doe_padded(S.decode_response, payload, self.sizes)
        except S.SpdmDecodeError as exc:
            code = (
                S.ErrorCode.INVALID_RESPONSE_CODE
                if exc.error_code == S.ErrorCode.INVALID_RESPONSE_CODE
                else S.ErrorCode.INVALID_REQUEST
            )
            raise MutualAuthError(code, f"encapsulated response: {exc}") from None
        return response

    def _issue(self, request: S.Request) -> None:
        """Put ``request`` in flight under the next RequestID (the implicit GET_DIGESTS of the
        optimized flow is 0; the others count from 1)."""
        self.request_id = (self.request_id + 1) & 0xFF
        self.in_flight = request

    def _take_digests(self, digests: S.Digests) -> None:
        slots = digests.by_slot()
        if not slots:
            self._end(failure="its DIGESTS lists no certificate chain")
            raise _not_authenticated(self.failure)
        self._slot = min(slots)
        self._digest = slots[self._slot]
        provisioned = self.policy.provisioned(self.hash_alg)
        if provisioned is not None and self.hash_alg.digest(provisioned.chain) == self._digest:
            log.info("requester slot %d holds the provisioned chain", self._slot)
            self._done(RequesterProof(provisioned.chain, provisioned.leaf_key, self._slot))
            return
        self._chain = b""
        self._issue(
            S.GetCertificate(
                version=self.version, slot_id=self._slot, offset=0, length=CERT_PORTION
            )
        )

    def _take_certificate(self, cert: S.Certificate) -> None:
        if cert.slot_id != self._slot:
            raise MutualAuthError(
                S.ErrorCode.INVALID_REQUEST,
                f"CERTIFICATE for slot {cert.slot_id}, slot {self._slot} was asked for",
            )
        if not cert.portion and cert.remainder_length:
            raise MutualAuthError(
                S.ErrorCode.INVALID_REQUEST, "CERTIFICATE with an empty portion and bytes remaining"
            )
        chain = self._chain + cert.portion
        if len(chain) + cert.remainder_length > _MAX_CHAIN:
            self._end(failure="its certificate chain grows past 65535 bytes")
            raise _not_authenticated(self.failure)
        self._chain = chain
        if cert.remainder_length:
            self._issue(
                S.GetCertificate(
                    version=self.version,
                    slot_id=self._slot,
                    offset=len(chain),
                    length=min(CERT_PORTION, cert.remainder_length),
                )
            )
            return
        self._done(self._check_chain(chain))

    def _check_chain(self, chain: bytes) -> RequesterProof:
        """The whole chain is in: it must be the one DIGESTS named, validate to the anchor
        with the requester leaf rules, and have a leaf key that makes ReqBaseAsymSel."""
        try:
            if self.hash_alg.digest(chain) != self._digest:
                raise _not_authenticated(
                    f"the chain read from slot {self._slot} is not the one its DIGESTS names"
                )
            certs = parse_spdm_chain(chain, self.hash_alg)
            assert self.policy.trust_anchor is not None
            validate_chain(certs, self.policy.trust_anchor, role="requester", version=self.version)
            try:
                key = _leaf_key(certs[-1])
                fits = bool(asym_algs_for_key(key) & self.req_asym)
            except LocalProtocolError as exc:
                raise _not_authenticated(f"its leaf key: {exc}") from None
            if not fits:
                raise _not_authenticated(
                    f"its leaf key ({type(key).__name__}) cannot make ReqBaseAsymSel "
                    f"{self.req_asym:#x}"
                )
        except CertificateChainError as exc:
            self._end(failure=f"its certificate chain: {exc}")
            raise _not_authenticated(self.failure) from None
        except MutualAuthError as exc:
            self._end(failure=str(exc))
            raise
        return RequesterProof(chain, key, self._slot)

    def _done(self, proof: RequesterProof) -> None:
        self.proof = proof
        self._end()

    def _end(self, *, failure: str = "") -> None:
        self.over = True
        self.in_flight = None
        self.failure = failure

    def _ack(
        self, delivered: int, payload_type: int, payload: bytes = b"", *, next_id: bool = False
    ) -> S.EncapsulatedResponseAck:
        """ENCAPSULATED_RESPONSE_ACK: Param1 the next request's RequestID (0 when none
        follows), AckRequestID the delivered one (1.2+)."""
        return S.EncapsulatedResponseAck(
            version=self.version,
            request_id=self.request_id if next_id else 0,
            payload_type=payload_type,
            ack_request_id=delivered,
            payload=payload,
        )
