"""IDE reference model: one end of one IDE Stream, transmit and receive (PCIe 6.x §6.33).

:class:`IdeStreamModel` is one port's end of one stream (the root port or the endpoint).  It
holds the key slots that IDE_KM addresses: 2 key sets x 2 directions x 3 sub-streams.  Its
:class:`IdeTx` turns plain TLPs into IDE TLPs and its :class:`IdeRx` checks and decrypts them.
Two models back to back are a working link.  A simulation playing the root port uses one
model; an HDL scoreboard uses one as the reference for each side.

AES-GCM comes from ``cryptography``; nothing cryptographic is written here.  Per TLP
(§6.33.4 and §6.33.5):

- IV, 96 bits: bits 95:64 are the fixed field, all zeros; bits 63:0 are the invocation field.
  The invocation field is a per-(sub-stream, key set) counter.  It starts at the IFV that
  KEY_PROG delivered (which must be 1) and goes up by one for each TLP, since one AES-GCM
  invocation covers one TLP when there is no aggregation.  In bytes: 00 00 00 00 followed by the
  counter, big-endian.  tee-io-validator's key_byte_order.md gives the same first PCIe IV: four
  zero bytes, then the counter 1 in eight bytes.  Early IDE ECN drafts put the sub-stream into
  the fixed field; r6.x makes it all zeros.
- A (AAD): [Local prefixes, Link IDE only] + IDE prefix + other End-End prefixes + header, in
  transmission byte order (§2.1.2).  A Selective stream keeps Local prefixes out of A and P.
- P: the data payload.  C replaces it in place.
- MAC: the AES-GCM tag truncated to 96 bits, sent after the payload.

What this model supports: Selective and Link IDE Streams (a Link stream carries the TLPs of
its TC only: another TC's IDE TLP with its Stream ID is misrouted), aggregation (below), PCRC
when the stream's PCRC Enable is set (below) and Partial Header Encryption (below).  It carries
Memory Reads, Memory Writes and Completions (the :mod:`hil.codec.ide_tlp` kinds), Local
prefixes, and any number of other End-End prefixes.
Which stream a port hands a TLP to, and a Link stream's hold on its TC's non-IDE TLPs
(§6.33.4), are the port's business (:mod:`hil._fake_tlp` for the in-memory endpoint).

PCRC (§6.33.4, :func:`hil.codec.ide_tlp.pcrc`): on a stream with PCRC Enable, every TLP with P
content gets P = 1 and the PCRC of its plaintext appended to P, encrypted with it, before the
MAC.  The receiver decrypts, checks the MAC first (IDE Check Failed), then the PCRC: a wrong
one, or P = 0 on a TLP with P content ("If ... the P bit ... is Clear and the M bit is Set,
the Receiver must report this as a PCRC Check Failed error"), is PCRC Check Failed, a reported
error that is not one of the §6.33.8 causes of Insecure.  The model raises
:class:`IdePcrcCheckFailed`, keeps the stream Secure and the TLP's invocation consumed, and
hands out no data.  P = 1 where no PCRC is due (PCRC not enabled, or no P content) fails the
IDE check.

Aggregation (§6.33.4, §6.33.6): :meth:`IdeTx.protect_unit` sends up to 8 TLPs of one
sub-stream (at most 256 DW of payload) as one AES-GCM invocation: A and P are the TLPs' A and
P concatenated in order, the MAC (and, with PCRC Enable, the one PCRC over all the P content)
goes on the last TLP, M = 0 on the others, one key set, one IV; PR_Sent_Counter stays per
TLP.  A receiver built with ``aggregation`` holds members until the last TLP
(:meth:`IdeRx.receive_unit`) and then checks the unit whole; a K that changes inside a unit
is IDE Check Failed ("Receivers must check for violations of this rule"), as is any TLP
without a MAC at a receiver without aggregation.  Other sub-streams may interleave.

Partial Header Encryption (§6.33.4, :func:`hil.codec.ide_tlp.phe_split`): with a mode set
(Stream Control [13:10]) a Memory Request goes in the 64-bit address format (§2.2.4.1), its
byte enables (except a Translation Request's) and Address[msb:2] move from A to the front of
P, and their ciphertext goes on the wire in their place; the PCRC covers them padded to 64
bits.  Completions are unchanged.  The receiver rebuilds the clear header after the MAC.

Ordering (§6.33.5): the transmitter counts Posted Requests since the last NPR (and, separately,
since the last Completion).  It sends each count in PR_Sent_Counter and then clears it.  The
receiver keeps 64-bit counts and subtracts; an underflow means an NPR or Completion overtook a
Posted Request.  This model does not build IDE Sync Messages.  A transmitter whose count has
reached 245 therefore refuses another Posted Request (the spec requires a Sync at 245).

Failures (§6.33.8): a MAC check failure (which is how a replayed, reordered or altered TLP
shows up), a PR_Sent_Counter underflow, a reserved or mismatched sub-stream, or use of an
invalid or stopped key set each make the stream Insecure.  The model records an
:class:`IdeFailure` and raises :class:`IdeCheckFailed`.  While the stream is Insecure every TLP
is discarded (``None``) and nothing more is reported.  On a MAC failure the receiver also tries
nearby invocation counter values.  That tells a replay (an old IV authenticates) from
reordering or loss (a later IV authenticates); the spec reports both as a MAC failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .codec.ide_km import (
    KEY_SIZE,
    IdeStreamState,
    KeyDirection,
    KeyProg,
    KeySet,
    KeySlot,
    KGostopAck,
    KpAck,
    KpAckStatus,
    KSetGo,
    KSetStop,
)
from .codec.ide_tlp import (
    MAC_SIZE,
    PCRC_SIZE,
    PHE_ADDRESS_MSB,
    IdePrefix,
    IdeTlp,
    SubStream,
    Tlp,
    pcrc,
    phe_applies,
    phe_hide,
    phe_pcrc_front,
    phe_reveal,
)
from .errors import LocalProtocolError, PeerProtocolError

__all__ = [
    "IFV_INITIAL",
    "PR_SENT_SYNC_LIMIT",
    "IdeCheckFailed",
    "IdeFailReason",
    "IdeFailure",
    "IdeKeyUnusable",
    "IdeMisrouted",
    "IdePcrcCheckFailed",
    "IdeRx",
    "IdeStreamModel",
    "IdeTx",
    "PortSide",
    "Received",
    "StreamKind",
    "TxStream",
    "establish",
    "ide_iv",
    "program_keys",
    "request_stream",
]

IFV_INITIAL = 1  # §6.33.3/§6.33.5: the invocation field starts at 1 (and restarts on refresh)
PR_SENT_SYNC_LIMIT = 245  # §6.33.5: an IDE Sync is due when a PR_Sent_Counter reaches 245
AGGREGATION_MAX_TLPS = 8  # §6.33.4: a unit of up to 2, 4 or 8 TLPs of one sub-stream
AGGREGATION_MAX_DW = 256  # §6.33.4: at most 256 DW of payload in a unit
_INVOCATION_LIMIT = 1 << 64


def ide_iv(invocation: int) -> bytes:
    """The 96-bit IV: fixed field (bits 95:64) all zeros, then the 64-bit invocation field."""
    if not 0 <= invocation < _INVOCATION_LIMIT:
        raise LocalProtocolError(f"invocation field {invocation} is not 64 bits")
    return bytes(4) + invocation.to_bytes(8, "big")


def _seal(key: bytes, invocation: int, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(ide_iv(invocation))).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext, encryptor.tag[:MAC_SIZE]


def _open(key: bytes, invocation: int, aad: bytes, ciphertext: bytes, mac: bytes) -> bytes:
    """Authenticated decryption with a 96-bit tag; raises ``InvalidTag``."""
    mode = modes.GCM(ide_iv(invocation), mac, min_tag_length=MAC_SIZE)
    decryptor = Cipher(algorithms.AES(key), mode).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


class PortSide(Enum):
    """Which end of the stream a model plays."""

    ROOT_PORT = "root port"
    ENDPOINT = "endpoint"


class StreamKind(Enum):
    """Selective and Link IDE differ here only in whether Local prefixes are in A."""

    SELECTIVE = "selective"
    LINK = "link"


class IdeFailReason(Enum):
    """Why a stream left Secure (all are IDE Check Failed errors, §6.33.8)."""

    MAC_CHECK = "MAC check failed"
    REPLAY = "MAC check failed: the TLP authenticates with an earlier IV (a replay)"
    REORDER = "MAC check failed: the TLP authenticates with a later IV (reordered or lost TLPs)"
    PR_COUNTER_UNDERFLOW = "PR_Sent_Counter underflow (a Posted Request was overtaken)"
    RESERVED_SUB_STREAM = "reserved Sub-Stream value"
    SUB_STREAM_MISMATCH = "Sub-Stream does not match the TLP type"
    KEY_SET_INVALID = "key set not programmed, not armed, stopped or superseded"
    NO_MAC = "TLP without a MAC: aggregation is not enabled"
    AGGREGATION = "aggregation rule broken (more than 8 TLPs or 256 DW in a unit, K changed)"
    PCRC_UNSUPPORTED = "P set where no PCRC is due (PCRC not enabled, or no P content)"


@dataclass(frozen=True)
class IdeFailure:
    """The record of one transition to Insecure."""

    stream_id: int
    side: PortSide
    direction: KeyDirection
    sub_stream: int
    key_set: int | None
    reason: IdeFailReason
    detail: str = ""

    def __str__(self) -> str:
        ks = "-" if self.key_set is None else f"K{self.key_set}"
        where = f"stream {self.stream_id} ({self.side.value}) {self.direction.name}"
        text = f"{where} sub-stream {self.sub_stream} {ks}: {self.reason.value}"
        return f"{text}: {self.detail}" if self.detail else text


class IdeCheckFailed(PeerProtocolError):
    """A received IDE TLP failed a check; the stream is now Insecure (``failure`` says why)."""

    def __init__(self, failure: IdeFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


class IdeKeyUnusable(LocalProtocolError):
    """This side tried to transmit with a stopped or missing key set; the stream is Insecure."""

    def __init__(self, failure: IdeFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


class IdePcrcCheckFailed(PeerProtocolError):
    """PCRC Check Failed (§6.33.4): the TLP authenticated but its PCRC is wrong or missing.
    A reported error; the stream stays Secure and the TLP's data must not be used."""


class IdeMisrouted(PeerProtocolError):
    """An IDE TLP for another Stream ID reached this stream (a Misrouted IDE TLP, §6.33.4)."""


@dataclass(frozen=True)
class Received:
    """A TLP that passed every check: the plaintext TLP and the prefix it came with."""

    tlp: Tlp
    prefix: IdePrefix

    @property
    def t(self) -> bool:
        return self.prefix.t

    @property
    def key_set(self) -> int:
        return self.prefix.k


@dataclass
class _Slot:
    """One programmed key slot: key, IFV, and the next invocation field value."""

    key: bytes = field(repr=False)
    ifv: int
    invocation: int


class _Event(Enum):
    READY = "Enable set and a K_SET_GO received, in either order"
    CHECK_FAILED = "IDE Check Failed (or use of an unusable key set)"
    DISABLED = "Enable cleared"
    RESET = "conventional reset / FLR: keys erased"


_S = IdeStreamState
# Stream state machine, per stream and port [PCIe §6.33.1, §6.33.8].  A failure latches: the
# stream stays Insecure until Enable is cleared and set again (with a K_SET_GO) - the spec's
# "write Enable=0, program new keys, set Enable".
_TRANSITIONS: dict[tuple[IdeStreamState, _Event], IdeStreamState] = {
    (_S.INSECURE, _Event.READY): _S.SECURE,
    (_S.SECURE, _Event.READY): _S.SECURE,  # K_SET_GO during a key refresh
    (_S.SECURE, _Event.CHECK_FAILED): _S.INSECURE,
    (_S.INSECURE, _Event.CHECK_FAILED): _S.INSECURE,
    (_S.SECURE, _Event.DISABLED): _S.INSECURE,
    (_S.INSECURE, _Event.DISABLED): _S.INSECURE,
    (_S.SECURE, _Event.RESET): _S.INSECURE,
    (_S.INSECURE, _Event.RESET): _S.INSECURE,
}


class _StreamCore:
    """State shared by a stream's Tx and Rx: Secure/Insecure and the failure log."""

    def __init__(self, stream_id: int, side: PortSide, kind: StreamKind) -> None:
        self.stream_id = stream_id
        self.side = side
        self.kind = kind
        self.state = IdeStreamState.INSECURE
        self.enabled = False
        self.go_received = False
        self.latched = False
        self.failures: list[IdeFailure] = []
        self.pcrc = False  # PCRC Enable of the stream's register block
        self.phe = 0  # Partial Header Encryption Mode of the stream's register block
        self.aggregation = False  # the receiver takes aggregated units (Aggregation Supported)
        self.tc = 0  # a Link stream's TC (§7.9.26.4.1); a Selective stream takes any TC
        self.pcrc_failures: list[str] = []  # PCRC Check Failed reports (not state changes)
        self.on_secure: list[Callable[[], None]] = []

    def apply(self, event: _Event) -> None:
        before = self.state
        self.state = _TRANSITIONS[(self.state, event)]
        if before is _S.INSECURE and self.state is _S.SECURE:
            for hook in self.on_secure:
                hook()

    def ready(self) -> None:
        if self.enabled and self.go_received and not self.latched:
            self.apply(_Event.READY)

    def fail(
        self,
        direction: KeyDirection,
        sub_stream: int,
        key_set: int | None,
        reason: IdeFailReason,
        detail: str = "",
    ) -> IdeFailure:
        failure = IdeFailure(
            self.stream_id, self.side, direction, sub_stream, key_set, reason, detail
        )
        self.failures.append(failure)
        self.latched = True
        self.apply(_Event.CHECK_FAILED)
        return failure


class _Direction:
    """Key slots of one direction: (sub-stream, key set) -> slot."""

    DIRECTION: ClassVar[KeyDirection]  # as IDE_KM's RxTxB bit names it

    def __init__(self, core: _StreamCore) -> None:
        self._core = core
        self._slots: dict[tuple[int, int], _Slot] = {}

    def _program(self, sub_stream: int, key_set: int, key: bytes, ifv: int) -> None:
        self._slots[(sub_stream, key_set)] = _Slot(bytes(key), ifv, ifv)

    def _stop(self, sub_stream: int, key_set: int) -> None:
        self._slots.pop((sub_stream, key_set), None)

    def programmed(self, sub_stream: int, key_set: int) -> bool:
        return (sub_stream, key_set) in self._slots

    def invocation(self, sub_stream: int, key_set: int) -> int | None:
        """The invocation field the next TLP of this slot uses (None: not programmed)."""
        slot = self._slots.get((sub_stream, key_set))
        return None if slot is None else slot.invocation

    def _erase(self) -> None:
        self._slots.clear()


class IdeTx(_Direction):
    """The transmit side of a stream end: plain TLP in, IDE TLP out."""

    DIRECTION = KeyDirection.TX

    def __init__(self, core: _StreamCore) -> None:
        super().__init__(core)
        self._active: dict[int, int] = {}  # sub-stream -> key set in use
        self._chosen_at: dict[int, int] = {}  # sub-stream -> when its key set was chosen
        self._clock = 0
        self._stream_k: int | None = None  # K of the last IDE TLP sent on the stream
        self._stream_k_at = 0  # when the key set of that TLP was chosen
        self.pr_sent_npr = 0
        self.pr_sent_cpl = 0
        core.on_secure.append(self._clear_counters)

    def _clear_counters(self) -> None:
        self.pr_sent_npr = self.pr_sent_cpl = 0  # both start at 0 on entry to Secure (§6.33.5)

    def _choose(self, sub_stream: int, key_set: int) -> None:
        self._clock += 1
        self._active[sub_stream] = key_set
        self._chosen_at[sub_stream] = self._clock

    def _go(self, sub_stream: int, key_set: int) -> None:
        self._choose(sub_stream, key_set)

    def active_key_set(self, sub_stream: int) -> int | None:
        return self._active.get(sub_stream)

    def _erase(self) -> None:
        super()._erase()
        self._active.clear()
        self._chosen_at.clear()
        self._stream_k = None

    def _select(self, sub_stream: int) -> int:
        key_set = self._active.get(sub_stream)
        if key_set is None:
            raise LocalProtocolError(
                f"stream {self._core.stream_id}: no K_SET_GO for Tx sub-stream {sub_stream}"
            )
        stream_k = self._stream_k
        if (
            stream_k is not None
            and key_set != stream_k
            and self._chosen_at[sub_stream] < self._stream_k_at
        ):
            # §6.33.4: after a TLP with K toggled goes out on any sub-stream, the other
            # sub-streams of the stream must use the new K too (their own later K_SET_GO aside).
            if not self.programmed(sub_stream, stream_k):
                raise LocalProtocolError(
                    f"stream {self._core.stream_id}: K is now {stream_k} on the stream but Tx "
                    f"sub-stream {sub_stream} has no key in set K{stream_k}"
                )
            self._choose(sub_stream, stream_k)
            key_set = stream_k
        return key_set

    def _tx_slot(self, sub_stream: int) -> tuple[int, _Slot]:
        """The key set and slot the next TLP (or unit) of ``sub_stream`` goes out with; a
        stopped or never programmed set raises :class:`IdeKeyUnusable` (stream now Insecure)."""
        key_set = self._select(sub_stream)
        slot = self._slots.get((sub_stream, key_set))
        if slot is None:
            failure = self._core.fail(
                self.DIRECTION,
                sub_stream,
                key_set,
                IdeFailReason.KEY_SET_INVALID,
                "the Tx key set was stopped or never programmed",
            )
            raise IdeKeyUnusable(failure)
        return key_set, slot

    def protect(
        self,
        tlp: Tlp,
        *,
        t: bool = False,
        local_prefixes: Iterable[bytes] = (),
        e2e_prefixes: Iterable[bytes] = (),
        pcrc_fault: str | None = None,
    ) -> IdeTlp | None:
        """The IDE TLP for ``tlp``, or None when the stream is not Secure (the TLP is dropped).

        On a stream with PCRC Enable a TLP with P content carries its PCRC.  ``pcrc_fault``
        builds the faulty TLPs a receiver's PCRC check must catch, with a valid MAC:
        ``"wrong"`` sends a PCRC with one bit flipped, ``"missing"`` sends none (P = 0).
        On a stream with a Partial Header Encryption mode a memory request goes in the
        64-bit format with the fields the mode selects encrypted (:func:`phe_split`).

        Raises :class:`IdeKeyUnusable` (stream now Insecure) if the selected key set was stopped,
        and :class:`~hil.errors.LocalProtocolError` for sequencing mistakes that change nothing.
        """
        unit = self.protect_unit(
            [tlp],
            t=t,
            local_prefixes=local_prefixes,
            e2e_prefixes=e2e_prefixes,
            pcrc_fault=pcrc_fault,
        )
        return None if unit is None else unit[0]

    def protect_unit(
        self,
        tlps: Sequence[Tlp],
        *,
        t: bool = False,
        unchecked: bool = False,
        toggle_k_at: int | None = None,
        local_prefixes: Iterable[bytes] = (),
        e2e_prefixes: Iterable[bytes] = (),
        pcrc_fault: str | None = None,
    ) -> list[IdeTlp] | None:
        """An aggregated unit (§6.33.4): the IDE TLPs for ``tlps``, one AES-GCM invocation
        over all of them, the MAC on the last only (M = 0 on the others), one key set, and,
        with PCRC Enable, one PCRC over all their P content on the last.  A = the TLPs' A in
        order, P = their P content (PHE front, payload) in order.  None when the stream is
        not Secure.  A unit of one TLP is a TLP without aggregation (:meth:`protect`).

        The TLPs must share a sub-stream; a unit is 1 .. 8 TLPs and at most 256 DW of payload,
        which ``unchecked`` lets a test break.  ``toggle_k_at`` builds the fault §6.33.6 has
        receivers check: that member carries the other K, inside a valid MAC."""
        core = self._core
        tlps = list(tlps)
        if not tlps:
            raise LocalProtocolError("an aggregated unit needs at least one TLP")
        if len({tlp.sub_stream for tlp in tlps}) != 1:
            raise LocalProtocolError("an aggregated unit's TLPs must share a sub-stream")
        payload_dw = sum(len(tlp.payload) for tlp in tlps) // 4
        too_big = len(tlps) > AGGREGATION_MAX_TLPS or payload_dw > AGGREGATION_MAX_DW
        if len(tlps) > 1 and too_big and not unchecked:
            raise LocalProtocolError(
                f"a unit of {len(tlps)} TLPs and {payload_dw} DW breaks §6.33.4's limits "
                f"({AGGREGATION_MAX_TLPS} TLPs, {AGGREGATION_MAX_DW} DW)"
            )
        for tlp in tlps:
            if core.kind is StreamKind.LINK and tlp.tc != core.tc:
                raise LocalProtocolError(
                    f"a TC{tlp.tc} TLP offered to the Link IDE Stream of TC{core.tc}"
                )
        if core.state is not IdeStreamState.SECURE:
            return None
        sub_stream = tlps[0].sub_stream
        key_set, slot = self._tx_slot(sub_stream)
        if slot.invocation >= _INVOCATION_LIMIT:
            raise LocalProtocolError("invocation counter exhausted: refresh the keys")
        counters = (self.pr_sent_npr, self.pr_sent_cpl)
        if sub_stream == SubStream.POSTED and max(counters) + len(tlps) > PR_SENT_SYNC_LIMIT:
            raise LocalProtocolError(
                f"PR_Sent_Counter would pass {PR_SENT_SYNC_LIMIT}: an IDE Sync Message is due "
                "(this model does not build them); send an NPR or Completion first"
            )
        sent = [
            phe_hide(tlp, core.phe) if phe_applies(tlp, core.phe) else (tlp, b"") for tlp in tlps
        ]
        p_content = b"".join(front + tlp.payload for tlp, front in sent)
        if pcrc_fault not in (None, "wrong", "missing"):
            raise LocalProtocolError(f"pcrc_fault {pcrc_fault!r}: None, 'wrong' or 'missing'")
        if pcrc_fault is not None and not (core.pcrc and p_content):
            raise LocalProtocolError("a PCRC fault needs PCRC Enable and a TLP with P content")
        with_pcrc = core.pcrc and bool(p_content) and pcrc_fault != "missing"
        shells = []
        for i, (tlp, front) in enumerate(sent):
            last = i == len(tlps) - 1
            if sub_stream == SubStream.POSTED:
                counter = 0
                self.pr_sent_npr += 1
                self.pr_sent_cpl += 1
            elif sub_stream == SubStream.NON_POSTED:
                counter, self.pr_sent_npr = self.pr_sent_npr, 0
            else:
                counter, self.pr_sent_cpl = self.pr_sent_cpl, 0
            prefix = IdePrefix(
                stream_id=core.stream_id,
                sub_stream=sub_stream,
                pr_sent_counter=counter,
                k=int(key_set) ^ (i == toggle_k_at),
                t=t,
                m=last,
                p=with_pcrc and last,
            )
            shells.append(
                IdeTlp(
                    prefix=prefix,
                    tlp=tlp,
                    mac=bytes(MAC_SIZE) if last else b"",
                    pcrc=bytes(PCRC_SIZE) if prefix.p else b"",
                    local_prefixes=tuple(local_prefixes),
                    e2e_prefixes=tuple(e2e_prefixes),
                    phe=bytes(len(front)),
                )
            )
        aad = b"".join(shell.aad(link=core.kind is StreamKind.LINK) for shell in shells)
        if with_pcrc:
            crc = bytearray(pcrc(_pcrc_input([(f, tlp.payload) for tlp, f in sent])))
            if pcrc_fault == "wrong":
                crc[0] ^= 0x01
            p_content += bytes(crc)
        ciphertext, mac = _seal(slot.key, slot.invocation, aad, p_content)
        slot.invocation += 1
        self._stream_k = key_set
        self._stream_k_at = self._chosen_at[sub_stream]
        out, pos = [], 0
        for shell in shells:
            width, cut = len(shell.phe), len(shell.tlp.payload)
            last = shell.prefix.m
            out.append(
                replace(
                    shell,
                    tlp=shell.tlp.with_payload(ciphertext[pos + width : pos + width + cut]),
                    phe=ciphertext[pos : pos + width],
                    mac=mac if last else b"",
                    pcrc=ciphertext[pos + width + cut :] if last else b"",
                )
            )
            pos += width + cut
        return out


def _hide(tlp: Tlp, mode: int) -> tuple[Tlp, bytes]:
    """(the TLP as its IDE TLP carries it, the PHE front of its P): PHE covers memory
    requests on a stream with a mode set; anything else goes as it is."""
    return phe_hide(tlp, mode) if phe_applies(tlp, mode) else (tlp, b"")  # type: ignore[arg-type]


def _pcrc_input(parts: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The PCRC's input from each TLP's (PHE front, payload): §6.33.4 pads the header part to
    64 bits with leading zeros "for the PCRC calculation only"."""
    return b"".join((phe_pcrc_front(front) if front else b"") + payload for front, payload in parts)


class IdeRx(_Direction):
    """The receive side of a stream end: IDE TLP in, checked plaintext TLP out."""

    DIRECTION = KeyDirection.RX

    def __init__(self, core: _StreamCore, *, diagnose_window: int = 8) -> None:
        super().__init__(core)
        self._armed: set[tuple[int, int]] = set()  # (sub-stream, key set) after K_SET_GO
        self._current: dict[int, int] = {}  # sub-stream -> key set in use (the established one)
        self.diagnose_window = diagnose_window
        self.pr_received_npr = 0
        self.pr_received_cpl = 0
        self._pending: dict[int, list[IdeTlp]] = {}  # sub-stream -> unit members so far
        core.on_secure.append(self._clear_counters)

    def _clear_counters(self) -> None:
        self.pr_received_npr = self.pr_received_cpl = 0
        self._pending.clear()

    def _program(self, sub_stream: int, key_set: int, key: bytes, ifv: int) -> None:
        super()._program(sub_stream, key_set, key, ifv)
        self._armed.discard((sub_stream, key_set))  # usable again only after K_SET_GO

    def _go(self, sub_stream: int, key_set: int) -> None:
        self._armed.add((sub_stream, key_set))
        # The first armed set is the established one; a TLP with the other K is the toggle.
        self._current.setdefault(sub_stream, key_set)

    def _stop(self, sub_stream: int, key_set: int) -> None:
        super()._stop(sub_stream, key_set)
        self._armed.discard((sub_stream, key_set))

    def _erase(self) -> None:
        super()._erase()
        self._armed.clear()
        self._current.clear()
        self._pending.clear()

    def held(self, sub_stream: int) -> int:
        """Members of an aggregated unit held on ``sub_stream`` until its last TLP."""
        return len(self._pending.get(sub_stream, ()))

    def current_key_set(self, sub_stream: int) -> int | None:
        return self._current.get(sub_stream)

    def receive(self, item: IdeTlp | bytes) -> Received | None:
        """Check and decrypt one IDE TLP.

        Returns the plaintext, or None when the stream is not Secure (the TLP is discarded).
        Raises :class:`IdeCheckFailed` when a check fails (the stream goes Insecure),
        :class:`IdeMisrouted` for another stream's TLP, and
        :class:`~hil.codec.ide_tlp.TlpDecodeError` for bytes that are not an IDE TLP at all
        (a Malformed TLP, which is not an IDE check and leaves the stream alone).  A member of
        an aggregated unit has no plaintext of its own: take units with :meth:`receive_unit`.
        """
        got = self.receive_unit(item)
        if got is None:
            return None
        if len(got) != 1:
            raise LocalProtocolError(
                f"{len(got)} TLPs of an aggregated unit (none until its last): use receive_unit"
            )
        return got[0]

    def receive_unit(self, item: IdeTlp | bytes) -> list[Received] | None:
        """Check and decrypt one IDE TLP, which may be a member of an aggregated unit.

        Returns None when the stream is not Secure (discarded); ``[]`` for a member (M = 0)
        held until its unit's last TLP, which a receiver with aggregation takes (§6.33.4: the
        MAC is on the last TLP only, so no member is used before it is checked); and, for a
        TLP with a MAC, the plaintext of every TLP of its unit, in order.  Raises as
        :meth:`receive`; a unit that breaks §6.33.4's rules (more than 8 TLPs or 256 DW of
        payload, K changed inside it) is IDE Check Failed.
        """
        core = self._core
        ide = item if isinstance(item, IdeTlp) else IdeTlp.decode(item, phe_mode=core.phe)
        prefix = ide.prefix
        if prefix.stream_id != core.stream_id:
            raise IdeMisrouted(
                f"IDE TLP for Stream ID {prefix.stream_id} reached stream {core.stream_id}"
            )
        if core.kind is StreamKind.LINK and ide.tlp.tc != core.tc:
            # A Link IDE Stream is the stream of its TC (§6.33.1, §7.9.26.4.1): an IDE TLP of
            # another TC has no stream here (Misrouted IDE TLP, §6.33.8).  The spec names no
            # rule for exactly this; Stream IDs are unique per Port, so nothing else takes it.
            raise IdeMisrouted(
                f"TC{ide.tlp.tc} IDE TLP with the Stream ID of the Link IDE Stream of TC{core.tc}"
            )
        if core.state is not IdeStreamState.SECURE:
            return None
        sub_stream, key_set = prefix.sub_stream, prefix.k

        def fail(reason: IdeFailReason, detail: str = "") -> IdeCheckFailed:
            return IdeCheckFailed(core.fail(self.DIRECTION, sub_stream, key_set, reason, detail))

        if sub_stream not in tuple(SubStream):
            raise fail(IdeFailReason.RESERVED_SUB_STREAM, f"{sub_stream:03b}")
        if sub_stream != ide.tlp.sub_stream:
            raise fail(
                IdeFailReason.SUB_STREAM_MISMATCH,
                f"{type(ide.tlp).__name__} carried on sub-stream {sub_stream}",
            )
        if not prefix.m and not core.aggregation:
            raise fail(IdeFailReason.NO_MAC)
        members = self._pending.pop(sub_stream, [])
        unit = [*members, ide]
        if members and not self._same_k(unit):
            raise fail(IdeFailReason.AGGREGATION, "K changed inside an aggregated unit")
        key_set = unit[0].prefix.k  # the unit's key set: K may toggle on its first TLP only
        if len(unit) > AGGREGATION_MAX_TLPS:
            raise fail(IdeFailReason.AGGREGATION, f"a unit of more than {AGGREGATION_MAX_TLPS}")
        payload_dw = sum(len(m.tlp.payload) for m in unit) // 4
        if len(unit) > 1 and payload_dw > AGGREGATION_MAX_DW:
            raise fail(IdeFailReason.AGGREGATION, f"{payload_dw} DW of payload in a unit")
        pcrc_due = core.pcrc and any(m.ciphertext for m in unit)
        if prefix.p and not pcrc_due:
            raise fail(IdeFailReason.PCRC_UNSUPPORTED)
        if not prefix.m:
            # Held: nothing of it is used before the unit's MAC.  Its PR_Sent_Counter counts
            # now, as it arrives (§6.33.5: "for each Posted Request IDE TLP received"), so a
            # TLP of another sub-stream between the members sees it.
            self._count(ide, fail)
            self._pending[sub_stream] = unit
            return []
        slot = self._slots.get((sub_stream, key_set))
        if slot is None or (sub_stream, key_set) not in self._armed:
            state = "not programmed or invalidated" if slot is None else "not armed by K_SET_GO"
            raise fail(IdeFailReason.KEY_SET_INVALID, f"K{key_set} is {state}")
        link = core.kind is StreamKind.LINK
        aad = b"".join(m.aad(link=link) for m in unit)
        ciphertext = b"".join(m.ciphertext for m in unit) + ide.pcrc
        try:
            plaintext = _open(slot.key, slot.invocation, aad, ciphertext, ide.mac)
        except InvalidTag:
            reason, detail = self._diagnose(slot, aad, ciphertext, ide.mac)
            raise fail(reason, detail) from None
        self._count(ide, fail)
        slot.invocation += 1
        old = self._current.get(sub_stream)
        if old is not None and old != key_set:
            # §6.33.3/§6.33.4: the first TLP with the new K invalidates the old key set for
            # this sub-stream; its later TLPs are discarded as an invalid key set.
            self._stop(sub_stream, old)
        self._current[sub_stream] = key_set
        parts, pos = [], 0
        for m in unit:
            width, cut = len(m.phe), len(m.tlp.payload)
            parts.append((plaintext[pos : pos + width], plaintext[pos + width : pos + width + cut]))
            pos += width + cut
        if pcrc_due:
            # After the MAC and counters: the TLP was authentic and consumed its invocation.
            got, want = plaintext[pos:], pcrc(_pcrc_input(parts))
            if not prefix.p:
                problem = "P is clear on a TLP with P content (PCRC Enable is set)"
            elif got != want:
                problem = f"PCRC {got.hex()} does not match the P content's {want.hex()}"
            else:
                problem = ""
            if problem:
                core.pcrc_failures.append(problem)
                raise IdePcrcCheckFailed(f"PCRC Check Failed (§6.33.4): {problem}")
        out = []
        for m, (front, payload) in zip(unit, parts, strict=True):
            tlp = m.tlp.with_payload(payload)
            if front:
                tlp = phe_reveal(tlp, front)  # type: ignore[arg-type]
            out.append(Received(tlp, m.prefix))
        return out

    @staticmethod
    def _same_k(unit: list[IdeTlp]) -> bool:
        """§6.33.6: "The same key and IV set must be used for all TLPs in an aggregated
        unit"; "Receivers must check for violations of this rule"."""
        return len({m.prefix.k for m in unit}) == 1

    def _count(self, ide: IdeTlp, fail: Callable[[IdeFailReason, str], IdeCheckFailed]) -> None:
        """PR_Sent_Counter (§6.33.5): a Posted Request counts, an NPR or Completion subtracts
        the count it carries; below zero, a Posted Request was overtaken."""
        prefix = ide.prefix
        received_npr, received_cpl = self.pr_received_npr, self.pr_received_cpl
        if prefix.sub_stream == SubStream.POSTED:
            received_npr += 1
            received_cpl += 1
        elif prefix.sub_stream == SubStream.NON_POSTED:
            received_npr -= prefix.pr_sent_counter
        else:
            received_cpl -= prefix.pr_sent_counter
        if received_npr < 0 or received_cpl < 0:
            have = self.pr_received_npr if received_npr < 0 else self.pr_received_cpl
            raise fail(
                IdeFailReason.PR_COUNTER_UNDERFLOW,
                f"PR_Sent_Counter {prefix.pr_sent_counter} but {have} Posted Requests received",
            )
        self.pr_received_npr, self.pr_received_cpl = received_npr, received_cpl

    def _diagnose(
        self, slot: _Slot, aad: bytes, ciphertext: bytes, mac: bytes
    ) -> tuple[IdeFailReason, str]:
        """Tell a replay or reordering from other MAC failures by trying nearby IVs."""
        expected = slot.invocation
        for distance in range(1, self.diagnose_window + 1):
            for invocation, reason in (
                (expected - distance, IdeFailReason.REPLAY),
                (expected + distance, IdeFailReason.REORDER),
            ):
                if not slot.ifv <= invocation < _INVOCATION_LIMIT:
                    continue
                try:
                    _open(slot.key, invocation, aad, ciphertext, mac)
                except InvalidTag:
                    continue
                return reason, f"expected invocation {expected}, TLP used {invocation}"
        return IdeFailReason.MAC_CHECK, f"expected invocation {expected}"


class IdeStreamModel:
    """One port's end of one IDE Stream: key slots, state, an :class:`IdeTx` and an :class:`IdeRx`.

    The slots are addressed as IDE_KM addresses them: ``KeySlot(key_set, direction,
    sub_stream)``, where the direction is seen from this port (its Tx keys are the partner's Rx
    keys).  The stream turns Secure once Enable is set and a K_SET_GO has arrived (in either
    order, §6.33.3).
    """

    def __init__(
        self,
        stream_id: int,
        *,
        side: PortSide = PortSide.ROOT_PORT,
        kind: StreamKind = StreamKind.SELECTIVE,
        diagnose_window: int = 8,
        pcrc: bool = False,
        tc: int = 0,
        aggregation: bool = False,
        phe: int = 0,
    ) -> None:
        """``aggregation``: this end receives aggregated units (its Port's Aggregation
        Supported, §6.33.6); without it a TLP without a MAC is IDE Check Failed.  ``phe``:
        the Partial Header Encryption Mode (0 none, 1..4, :data:`PHE_ADDRESS_MSB`)."""
        if not isinstance(stream_id, int) or not 0 <= stream_id <= 0xFF:
            raise LocalProtocolError(f"stream ID {stream_id!r} is not 8 bits")
        if not isinstance(tc, int) or not 0 <= tc <= 7:
            raise LocalProtocolError(f"TC {tc!r} is not 0..7")
        self._core = _StreamCore(stream_id, side, kind)
        self._core.pcrc = bool(pcrc)
        self._core.tc = tc
        self._core.aggregation = bool(aggregation)
        self.phe = phe
        self.tx = IdeTx(self._core)
        self.rx = IdeRx(self._core, diagnose_window=diagnose_window)

    def __repr__(self) -> str:
        core = self._core
        return (
            f"IdeStreamModel(stream_id={core.stream_id}, side={core.side.name}, "
            f"kind={core.kind.name}, state={core.state.name})"
        )

    @property
    def stream_id(self) -> int:
        return self._core.stream_id

    @property
    def side(self) -> PortSide:
        return self._core.side

    @property
    def kind(self) -> StreamKind:
        return self._core.kind

    @property
    def tc(self) -> int:
        """A Link stream's TC: the only TC it carries (ignored for a Selective stream)."""
        return self._core.tc

    @property
    def state(self) -> IdeStreamState:
        return self._core.state

    @property
    def secure(self) -> bool:
        return self._core.state is IdeStreamState.SECURE

    @property
    def enabled(self) -> bool:
        return self._core.enabled

    @property
    def failures(self) -> tuple[IdeFailure, ...]:
        return tuple(self._core.failures)

    @property
    def pcrc(self) -> bool:
        """PCRC Enable of the stream (§7.9.26.5.2 bit 8)."""
        return self._core.pcrc

    @pcrc.setter
    def pcrc(self, enabled: bool) -> None:
        if self._core.enabled and bool(enabled) != self._core.pcrc:
            raise LocalProtocolError("PCRC Enable must not change while the stream is enabled")
        self._core.pcrc = bool(enabled)

    @property
    def phe(self) -> int:
        """Partial Header Encryption Mode of the stream (§7.9.26.5.2 [13:10]), 0 for none."""
        return self._core.phe

    @phe.setter
    def phe(self, mode: int) -> None:
        if mode != 0 and mode not in PHE_ADDRESS_MSB:
            raise LocalProtocolError(f"Partial Header Encryption Mode {mode!r}: 0 .. 4")
        if self._core.enabled and mode != self._core.phe:
            raise LocalProtocolError("the PHE mode must not change while the stream is enabled")
        self._core.phe = mode

    @property
    def pcrc_failures(self) -> tuple[str, ...]:
        """PCRC Check Failed reports so far (the stream stayed Secure for each)."""
        return tuple(self._core.pcrc_failures)

    def _direction(self, slot: KeySlot) -> IdeTx | IdeRx:
        if not slot.valid:
            raise LocalProtocolError(f"sub-stream {slot.sub_stream} is reserved")
        return self.tx if slot.direction == KeyDirection.TX else self.rx

    # -- what IDE_KM does -------------------------------------------------------------------

    def key_prog(self, slot: KeySlot, key: bytes, ifv: int = IFV_INITIAL) -> None:
        """KEY_PROG: load ``key`` and ``ifv`` into ``slot``; its invocation counter restarts."""
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
            raise LocalProtocolError(f"an IDE key is {KEY_SIZE} bytes")
        if not isinstance(ifv, int) or not 0 <= ifv < _INVOCATION_LIMIT:
            raise LocalProtocolError(f"IFV {ifv!r} is not 64 bits")
        self._direction(slot)._program(slot.sub_stream, slot.key_set, key, ifv)

    def k_set_go(self, slot: KeySlot) -> None:
        """K_SET_GO: Rx accepts the key set; Tx transmits with it from the next TLP."""
        direction = self._direction(slot)
        if not direction.programmed(slot.sub_stream, slot.key_set):
            raise LocalProtocolError(f"K_SET_GO for an unprogrammed slot {slot}")
        direction._go(slot.sub_stream, slot.key_set)
        self._core.go_received = True
        self._core.ready()

    def k_set_stop(self, slot: KeySlot) -> None:
        """K_SET_STOP: invalidate the key set.  Using it later makes the stream Insecure."""
        self._direction(slot)._stop(slot.sub_stream, slot.key_set)

    def set_enabled(self, enabled: bool) -> None:
        """The Enable bit of the stream's IDE register block."""
        core = self._core
        if enabled:
            core.enabled = True
            core.ready()
        else:
            core.enabled = False
            core.go_received = False
            core.latched = False
            core.apply(_Event.DISABLED)

    def reset(self) -> None:
        """Conventional reset or FLR: Insecure, and every key erased (§6.33.8)."""
        core = self._core
        core.enabled = core.go_received = core.latched = False
        core.apply(_Event.RESET)
        self.tx._erase()
        self.rx._erase()

    def handle(self, message: KeyProg | KSetGo | KSetStop) -> KpAck | KGostopAck | None:
        """Act on an IDE_KM request addressed to this stream and build the answer.

        KEY_PROG always gets a KP_ACK (status 03h for a Stream ID or sub-stream this stream
        does not have).  A bad K_SET_GO/K_SET_STOP gets no answer (None), as §6.33.3
        recommends.  PortIndex is the caller's business.
        """
        if isinstance(message, KeyProg):
            if message.stream_id != self.stream_id or not message.slot.valid:
                status = KpAckStatus.UNSUPPORTED_VALUE
            else:
                self.key_prog(message.slot, message.key, message.ifv)
                status = KpAckStatus.SUCCESS
            return KpAck(
                stream_id=message.stream_id,
                slot=message.slot,
                port_index=message.port_index,
                status=status,
            )
        if message.stream_id != self.stream_id or not message.slot.valid:
            return None
        if isinstance(message, KSetGo):
            if not self._direction(message.slot).programmed(
                message.slot.sub_stream, message.slot.key_set
            ):
                return None
            self.k_set_go(message.slot)
        else:
            self.k_set_stop(message.slot)
        return KGostopAck(
            stream_id=message.stream_id, slot=message.slot, port_index=message.port_index
        )

    # -- traffic ----------------------------------------------------------------------------

    def protect(self, tlp: Tlp, *, t: bool = False, pcrc_fault: str | None = None) -> IdeTlp | None:
        """Shorthand for ``self.tx.protect``."""
        return self.tx.protect(tlp, t=t, pcrc_fault=pcrc_fault)

    def receive(self, item: IdeTlp | bytes) -> Received | None:
        """Shorthand for ``self.rx.receive``."""
        return self.rx.receive(item)

    def protect_unit(self, tlps: Sequence[Tlp], **kw: Any) -> list[IdeTlp] | None:
        """Shorthand for ``self.tx.protect_unit``."""
        return self.tx.protect_unit(tlps, **kw)

    def receive_unit(self, item: IdeTlp | bytes) -> list[Received] | None:
        """Shorthand for ``self.rx.receive_unit``."""
        return self.rx.receive_unit(item)


def program_keys(
    a: IdeStreamModel,
    b: IdeStreamModel,
    key_set: int = KeySet.K0,
    *,
    key_source: Callable[[int], bytes] = os.urandom,
) -> None:
    """KEY_PROG a fresh key, IFV 1, into every slot of ``key_set`` at both ends.

    Each direction and sub-stream gets its own key (§6.33.3); a's Tx key is b's Rx key.
    """
    if a.stream_id != b.stream_id:
        raise LocalProtocolError("the partner ports of a stream use the same Stream ID")
    for src, dst in ((a, b), (b, a)):
        for sub_stream in SubStream:
            key = key_source(KEY_SIZE)
            src.key_prog(KeySlot(key_set, KeyDirection.TX, sub_stream), key)
            dst.key_prog(KeySlot(key_set, KeyDirection.RX, sub_stream), key)


def establish(
    a: IdeStreamModel,
    b: IdeStreamModel,
    key_set: int = KeySet.K0,
    *,
    key_source: Callable[[int], bytes] = os.urandom,
) -> None:
    """Program both ends, K_SET_GO Rx at both then Tx at both (§6.33.3), then set Enable."""
    program_keys(a, b, key_set, key_source=key_source)
    for direction in (KeyDirection.RX, KeyDirection.TX):
        for end in (a, b):
            for sub_stream in SubStream:
                end.k_set_go(KeySlot(key_set, direction, sub_stream))
    for end in (a, b):
        end.set_enabled(True)


# --------------------------------------------------------------------------------------------
# Which stream a Port's own request goes on (§6.33.4)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TxStream:
    """One IDE stream of a Port as its registers describe it, for choosing the stream of a
    Memory Request the Port transmits: ``index`` as the caller counts streams, Enable, the TC,
    whether it is a Link IDE Stream, Default Stream, TEE-Limited Stream, and the Valid
    Address Association blocks as (base, limit) byte addresses, both inclusive
    (§7.9.26.5.5: 1 MB granules, the limit's low 20 bits all ones)."""

    index: int
    enabled: bool
    tc: int
    link: bool = False
    default: bool = False
    tee_limited: bool = False
    ranges: tuple[tuple[int, int], ...] = ()


def request_stream(
    streams: Sequence[TxStream], address: int, *, tc: int = 0, t: bool = False
) -> int | None:
    """The index of the stream a Memory Request to ``address`` on ``tc`` (T bit ``t``) goes on,
    or None for a non-IDE TLP (PCIe 6.x §6.33.4, "For a Transmitter to associate a specific
    TLP with a specific Selective IDE Stream"):

    1. an enabled Selective stream on the TC with an Address Association block that holds
       the address ("the destination address must be greater than or equal to the Memory Base
       value and less than or equal to Memory Limit value"); overlapping ranges are software's
       mistake and "it is implementation specific which" stream takes the TLP: here the lowest
       index, as the endpoint does;
    2. else the enabled Default Stream on the TC ("For a TLP not already associated with any
       other Stream, the Default Stream bit must be Set");
    3. a TEE-Limited stream takes only T = 1: "Requests that otherwise would be associated with
       this Selective IDE Stream and have the T bit Clear must be Transmitted as non-IDE TLPs
       if Link IDE is not enabled, or as Link IDE TLPs if Link IDE is enabled";
    4. what no Selective stream takes uses the TC's enabled Link IDE Stream ("TLPs not
       associated with any Selective IDE Stream must use Link IDE"), else goes as a non-IDE
       TLP.

    Whether the chosen stream is Secure is not asked here: a TLP for an enabled stream that
    is not Secure is discarded, never sent on another (§6.33.4).  ATS is not modelled (with
    ATS enabled, Untranslated requests go on the Default Stream).
    """
    on_tc = sorted((s for s in streams if s.enabled and s.tc == tc), key=lambda s: s.index)
    selective = [s for s in on_tc if not s.link]
    chosen = next(
        (s for s in selective if any(lo <= address <= hi for lo, hi in s.ranges)),
        None,
    ) or next((s for s in selective if s.default), None)
    if chosen is not None and (t or not chosen.tee_limited):
        return chosen.index
    link = next((s for s in on_tc if s.link), None)
    return None if link is None else link.index
