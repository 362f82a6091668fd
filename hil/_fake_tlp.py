"""The in-memory endpoint's TLP path: what ``hdl/ide_tlp`` does, with the IDE reference model.

:class:`FakeTlpPath` takes whole TLPs (wire-order bytes) from the root port's side and answers
reads with completions, as the HDL's TLP path does (``hdl/ide_tlp/README.md``, "What happens to
a TLP"): an IDE TLP is matched to an enabled stream by its Stream ID and, for a Link IDE Stream,
by the TC of its header as well (none: Misrouted, dropped), discarded while the stream is not
Secure, then checked and decrypted by the stream's end of :class:`hil.ide_model.IdeStreamModel`
(side ENDPOINT; kind LINK with the block's TC for a Link stream), whose key slots follow the
fake IDE capability's (:meth:`FakeIdeCap.tlp_key`, the only reader of keys).  An IDE Check
Failed makes the capability's stream Insecure (:meth:`FakeIdeCap.check_failed`: keys wiped, the
bound TDI to ERROR); PCRC Check Failed drops the TLP and leaves the stream Secure.  A request
that passes goes to BAR0 under the same rules as the HDL: Memory Space Enable and BAR0's range,
the RID association of a non-default Selective stream (§6.33.4; a Link stream has none), the
TDISP rules (§11.2: T = 1 only in RUN on the bound stream, and only that there), and a poisoned
request sends a locked TDI to ERROR.  A read is answered with a completion on the stream of the
request (sub-stream Completion, its T bit, the request's TC), encrypted with the stream's Tx
key set.

A Link IDE Stream holds its TC (§6.33.4): once it is enabled, a non-IDE request of its TC is
taken until the first IDE TLP on that request's Sub-Stream (Posted for a write, Non-Posted for
a read) has passed the MAC and counter checks on the stream; from then on, while the stream
stays enabled (Secure or not), such requests are discarded silently.  Clearing Enable, or a
reset, lets go.  Non-IDE requests of other TCs are not affected.

The fake advertises what its ``[fake]`` table lists; this path implements Selective and Link
IDE with PCRC and, where the fake advertises Aggregation, the receiving of aggregated units
(§6.33.6: members are held until the unit's MAC on its last TLP has been checked, then taken in
order; a K changed inside a unit is IDE Check Failed).  Its own completions are never
aggregated (Tx aggregation permits up to N TLPs per unit, it does not demand it).  Where the
fake advertises Partial Header Encryption, a stream's mode (Control [13:10], 0001b..0100b)
tells how its IDE TLPs' headers are read: the model decrypts the selected fields and rebuilds
the header before the request goes to BAR0 (§6.33.4).

The path also sends Memory Writes of its own, as ``hdl/ide_tlp``'s DMA engine does
(:meth:`FakeTlpPath.dma_write`, the ``dma`` resource): BAR0 memory to a host address, on the
stream :func:`hil.ide_model.request_stream` picks from the capability's registers (Address
Association blocks, Default Stream, TEE-Limited Stream, Link IDE, §6.33.4), protected by that
stream's end of the model (Posted sub-stream, its PR_Sent_Counter rules), or plain; and Memory
Reads of host memory into BAR0's (:meth:`FakeTlpPath.dma_read`), whose Completion is taken only
with the read's Tag, on the read's stream and, on a Selective stream other than the Default
Stream, from a Completer ID within its RID association (§6.33.4); any other is an Unexpected
Completion, counted and dropped.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ._fake_hw import (
    BAR0_SIZE_LOG2,
    CAP_AGGREGATION,
    CAP_CONFIG_REQUESTS,
    CAP_PHE,
    FakeIdeCap,
    FakeTdi,
    TdiState,
)
from .codec.ide_km import KeyDirection, KeySlot
from .codec.ide_tlp import (
    IDE_PREFIX_BYTE0,
    PHE_ADDRESS_MSB,
    CfgRead,
    CfgWrite,
    Completion,
    CplStatus,
    IdeTlp,
    MemRead,
    MemWrite,
    TlpDecodeError,
    decode_tlp,
)
from .errors import LocalProtocolError, PeerProtocolError
from .ide_model import (
    IdeCheckFailed,
    IdeKeyUnusable,
    IdePcrcCheckFailed,
    IdeStreamModel,
    PortSide,
    StreamKind,
    TxStream,
    request_stream,
)
from .transport import DeviceDma, DmaOutcome, DmaReport, TlpPort

if TYPE_CHECKING:
    from .fake import FakeConfigSpace

__all__ = ["FakeDma", "FakeTlpPath", "FakeTlpPort"]

MAX_PAYLOAD_DW = 64  # as the endpoint is built (hdl/hil_ep MAX_PAYLOAD_DW)
_NUM_SLOTS = 12
_CTL_PCRC = 1 << 8
_CTL_PHE_LSB = 10  # Partial Header Encryption Mode [13:10]
_CTL_TC_LSB = 19
_CTL_DEFAULT = 1 << 22
_CTL_TEE_LIMITED = 1 << 23
_CMD_MEM = 1 << 1
_CMD_BUS_MASTER = 1 << 2


def _slot(code: int) -> KeySlot:
    """Slot code {sub-stream[1:0], RxTxB, key set} as IDE_KM addresses it."""
    return KeySlot(code & 1, KeyDirection((code >> 1) & 1), code >> 2)


def _first_byte(be: int) -> int:
    return next((i for i in range(4) if be >> i & 1), 0)


def _byte_count(req: MemRead) -> int:
    """Byte Count of the (only) completion of ``req`` (§2.2.9, Table 2-39 rules)."""
    if req.length == 1:
        if not req.first_be:
            return 1
        last = max(i for i in range(4) if req.first_be >> i & 1)
        return last - _first_byte(req.first_be) + 1
    last = max((i for i in range(4) if req.last_be >> i & 1), default=3)
    return 4 * req.length - _first_byte(req.first_be) - (3 - last)


def _tc(control: int) -> int:
    """The TC field [21:19] of a Stream Control register."""
    return (control >> _CTL_TC_LSB) & 0x7


class _StreamEnd:
    """The endpoint's end of one stream: the model and what it was last given of each slot.
    A Link stream's model carries the TC of its block (``tc``); a Selective one has None."""

    def __init__(
        self, stream_id: int, pcrc: bool, tc: int | None, aggregation: bool, phe: int
    ) -> None:
        kind = StreamKind.SELECTIVE if tc is None else StreamKind.LINK
        self.model = IdeStreamModel(
            stream_id,
            side=PortSide.ENDPOINT,
            kind=kind,
            tc=tc or 0,
            pcrc=pcrc,
            aggregation=aggregation,
            phe=phe,
        )
        self.given: dict[int, tuple[bytes, int, bool]] = {}


class FakeTlpPath:
    """Function 0's TLP path; :meth:`receive` a TLP, then :attr:`sent` holds the answers."""

    def __init__(
        self,
        ide: FakeIdeCap,
        tdi: FakeTdi,
        *,
        completer_id: int = 0x0100,
        config: FakeConfigSpace | None = None,
    ) -> None:
        self.ide = ide
        self.tdi = tdi
        self.completer_id = completer_id
        #: The function's configuration space, for Configuration Requests that arrive as IDE
        #: TLPs; its plain path is gated by :meth:`config_held`.
        self.config = config
        #: The Selective stream that took a Configuration Request as an IDE TLP since it was
        #: enabled (§6.33.4): from then on only its Configuration Requests are taken.
        self.config_stream: int | None = None
        if config is not None:
            config.plain_gate = self.config_held
        self.memory = bytearray(1 << BAR0_SIZE_LOG2)
        self.sent: deque[bytes] = deque()
        self.counters = dict.fromkeys(
            ("rx_ok", "tx", "misrouted", "discarded", "plain", "ur", "malformed", "pcrc_failed"),
            0,
        )
        self._ends: dict[int, _StreamEnd] = {}
        ide.secure_exit_hooks.append(lambda j: self._ends.pop(j, None))
        #: (Link stream index, sub-stream 0 Posted / 1 Non-Posted) on which an IDE TLP has
        #: passed the checks since the stream was enabled: its TC's non-IDE requests of that
        #: sub-stream are discarded (§6.33.4).  Cleared by Enable = 0 and by reset.
        self._held: set[tuple[int, int]] = set()
        ide.disable_hooks.append(self._release)
        #: The DMA read waiting for its Completion: (Tag, stream or None, length DW, BAR0
        #: offset); the outcome of the last one; the next Tag.
        self.read_wait: tuple[int, int | None, int, int] | None = None
        self.read_outcome = DmaOutcome.NONE
        self._read_tag = 0
        self.counters["unexpected_cpl"] = 0

    # -- IDE --------------------------------------------------------------------------------
    def _end(self, j: int) -> _StreamEnd:
        """Stream ``j``'s end, its slots brought up to the capability's (KEY_PROG, K_SET_GO
        and K_SET_STOP since the last TLP, as the HDL reads the slots per TLP)."""
        stream = self.ide.streams[j]
        end = self._ends.get(j)
        if end is None:
            tc = _tc(stream.control) if stream.link else None
            aggregation = bool(self.ide.features & CAP_AGGREGATION)  # §6.33.6: the Port's
            end = self._ends[j] = _StreamEnd(
                stream.control >> 24, self._pcrc_enabled(j), tc, aggregation, self._phe_mode(j)
            )
        model = end.model
        if stream.link and model.tc != _tc(stream.control):
            # TC stays writable while the stream is enabled (§7.9.26.4.1) and the HDL reads it
            # per TLP; the model took it when it was built.
            model._core.tc = _tc(stream.control)
        for code in range(_NUM_SLOTS):
            now = self.ide.tlp_key(j, code)
            before = end.given.get(code, (b"", 0, False))
            if now == before:
                continue
            key, ifv, armed = now
            if armed:  # newly armed (K_SET_GO), or stopped and armed again with a new key
                model.key_prog(_slot(code), key, ifv)
                model.k_set_go(_slot(code))
            elif before[2]:  # K_SET_STOP, or wiped
                model.k_set_stop(_slot(code))
            end.given[code] = now
        if not model.enabled:
            model.set_enabled(True)
        return end

    def _pcrc_enabled(self, j: int) -> bool:
        """PCRC Enable of stream ``j`` (fixed while it is enabled)."""
        return bool(self.ide.streams[j].control & _CTL_PCRC)

    def _phe_mode(self, j: int | None) -> int:
        """Partial Header Encryption Mode of stream ``j`` (fixed while it is enabled); 0 where
        the capability does not advertise PHE (the field is reserved then)."""
        if j is None or not self.ide.features & CAP_PHE:
            return 0
        mode = (self.ide.streams[j].control >> _CTL_PHE_LSB) & 0xF
        return mode if mode in PHE_ADDRESS_MSB else 0

    def _check_failed(self, j: int) -> None:
        """IDE Check Failed: the capability's stream goes Insecure (keys wiped, the bound TDI
        to ERROR, an IDE Fail Message due), as ide_tlp's check_failed_o does."""
        self.ide.check_failed(j)

    def _tee_ok(self, stream: int | None, t: bool) -> bool:
        """The TDISP rules (§11.2): outside RUN a request with T = 1 is refused; in RUN the
        interface's MMIO (all of BAR0) takes only T = 1 requests on the bound stream."""
        if self.tdi.state == TdiState.RUN:
            return stream is not None and t and self.tdi.bound == stream
        return not t

    def _write(self, offset: int, req: MemWrite) -> None:
        """BAR0 bytes of a write, as its byte enables select (§2.2.5)."""
        last = req.length_dw - 1
        for i, byte in enumerate(req.payload):
            dw, lane = divmod(i, 4)
            be = req.first_be if dw == 0 else req.last_be if dw == last else 0xF
            if be >> lane & 1:
                self.memory[offset + i] = byte

    def _protect(self, end: _StreamEnd, cpl: Completion, t: bool) -> IdeTlp | None:
        """The completion as an IDE TLP: the stream's Tx key set of the Completion sub-stream
        (the one armed last), its invocation counter, the request's T bit."""
        return end.model.protect(cpl, t=t)

    def _protect_request(self, end: _StreamEnd, req: MemWrite, t: bool) -> IdeTlp | None:
        """A write of the function's own as an IDE TLP: the Tx key set of the stream's Posted
        sub-stream (the one armed last), its invocation counter, PR_Sent_Counter counted."""
        return end.model.protect(req, t=t)

    def _stream_of(self, stream_id: int, tc: int | None) -> int | None:
        """The enabled stream (lowest index) with ``stream_id``; a Link stream only if ``tc``
        is its TC (any, for None): it carries the TLPs of that TC alone (§6.33.1,
        §7.9.26.4.1)."""
        for j, stream in enumerate(self.ide.streams):
            if not stream.enable or stream.control >> 24 != stream_id:
                continue
            if stream.link and tc is not None and _tc(stream.control) != tc:
                continue
            return j
        return None

    # -- the Link IDE hold (§6.33.4) ----------------------------------------------------------
    def _release(self, j: int) -> None:
        """Stream ``j``'s Enable is 0 (a Control write or a reset): its holds end."""
        self._held.discard((j, 0))
        self._held.discard((j, 1))
        if self.config_stream == j:
            self.config_stream = None

    def config_held(self) -> bool:
        """Whether Configuration Requests that arrive as non-IDE TLPs are discarded (§6.33.4:
        "Once a Configuration Request has been received as an IDE TLP on that Selective IDE
        Stream, then the Port must accept only Configuration Requests associated with that
        Selective IDE Stream ... for as long as that Selective IDE Stream is enabled")."""
        return self.config_stream is not None

    def _hold(self, j: int, ide: IdeTlp) -> None:
        """An IDE TLP passed the MAC and counter checks on stream ``j``: a Link stream now
        holds its TC's non-IDE requests of that Sub-Stream."""
        if self.ide.streams[j].link and isinstance(ide.tlp, MemWrite | MemRead):
            self._held.add((j, int(ide.tlp.sub_stream)))

    def _link_holds(self, req: MemWrite | MemRead) -> bool:
        """Whether a non-IDE request is discarded (§6.33.4): an enabled Link stream has its TC
        and has taken an IDE TLP on the request's Sub-Stream since it was enabled."""
        sub = int(req.sub_stream)
        for j, stream in enumerate(self.ide.streams):
            if stream.link and stream.enable and _tc(stream.control) == req.tc:
                if (j, sub) in self._held:
                    return True
        return False

    # -- TLPs -------------------------------------------------------------------------------
    def receive(self, raw: bytes) -> None:
        """Take one TLP from the link (and queue the completion, if it gets one)."""
        stream: int | None = None
        t = False
        try:
            if raw[:1] == bytes((IDE_PREFIX_BYTE0,)):
                # The stream's PHE mode tells how to read the header (which of its fields are
                # ciphertext); Stream IDs are unique among a Port's enabled streams.
                phe = self._phe_mode(self._stream_of(raw[2], None))
                ide = IdeTlp.decode(raw, phe_mode=phe)
                stream = self._stream_of(ide.prefix.stream_id, ide.tlp.tc)
                if stream is None:
                    self.counters["misrouted"] += 1  # Misrouted IDE TLP: no such stream
                    return
                if not self.ide.is_secure(stream):
                    self.counters["discarded"] += 1  # §6.33.8: discarded, nothing logged
                    return
                end = self._end(stream)
                try:
                    unit = end.model.receive_unit(ide)
                except IdeCheckFailed:
                    self._check_failed(stream)
                    return
                except IdePcrcCheckFailed:
                    # The MAC and counters passed (the HDL's hold starts there), the PCRC not.
                    self._hold(stream, ide)
                    self.counters["pcrc_failed"] += 1  # reported; the data is not used
                    return
                if unit is None:
                    self.counters["discarded"] += 1
                    return
                # A member of an aggregated unit waits for the unit's MAC (§6.33.6); then the
                # unit's TLPs are taken in order.
                for got in unit:
                    self._hold(stream, ide)
                    self.counters["rx_ok"] += 1
                    if isinstance(got.tlp, MemWrite | MemRead):
                        self._execute(got.tlp, stream, got.prefix.t)
                    elif isinstance(got.tlp, CfgRead | CfgWrite):
                        self._configure(got.tlp, stream, got.prefix.t)
                    elif isinstance(got.tlp, Completion):
                        self._complete(got.tlp, stream)
                    else:
                        self.counters["ur"] += 1  # not a request this function takes
                return
            else:
                tlp = decode_tlp(raw)
                # A write longer than any taken is refused whatever the hold (the HDL calls it
                # malformed first); any other memory request of a held TC is discarded.
                if (
                    isinstance(tlp, MemRead)
                    or (isinstance(tlp, MemWrite) and tlp.length_dw <= MAX_PAYLOAD_DW)
                ) and self._link_holds(tlp):
                    self.counters["discarded"] += 1  # §6.33.4: no completion, nothing logged
                    return
                self.counters["plain"] += 1
        except (TlpDecodeError, PeerProtocolError, IndexError):
            self.counters["malformed"] += 1
            return
        if isinstance(tlp, MemWrite | MemRead):
            self._execute(tlp, stream, t)
        elif isinstance(tlp, Completion):
            self._complete(tlp, None)
        else:
            self.counters["ur"] += 1  # not a request this function takes

    def _configure(self, req: CfgRead | CfgWrite, stream: int, t: bool) -> None:
        """A Configuration Request that arrived as an IDE TLP (§6.33.4, Selective IDE for
        Configuration Requests).  Taken where the capability advertises it, on a Selective
        stream, as Type 1 and for this function; otherwise Unsupported Request.  Once one is
        taken, Configuration Requests on other streams (and non-IDE ones) are discarded while
        the stream is enabled.  A write's Completion is protected before the write takes
        effect ("For a Configuration Request that stops IDE, the Port must first return the
        Configuration Completion as an IDE TLP, and then stop IDE") and reaches the requester
        after it, as the HDL sends it."""
        if self.config_stream not in (None, stream):
            self.counters["discarded"] += 1  # held by another stream
            return
        taken = (
            self.config is not None
            and bool(self.ide.features & CAP_CONFIG_REQUESTS)
            and not self.ide.streams[stream].link
            and req.type1
            and req.target_id == self.completer_id
        )
        common = {
            "completer_id": self.completer_id,
            "requester_id": req.requester_id,
            "tag": req.tag,
        }
        if not taken or self.config is None:
            self.counters["ur"] += 1
            self._send(Completion(status=CplStatus.UR, **common), stream, t)
            return
        self.config_stream = stream
        if isinstance(req, CfgRead):
            value = self.config.read_now(req.offset)
            data = value.to_bytes(4, "little")
            self._send(Completion(payload=data, **common), stream, t)
            return
        self._send(Completion(**common), stream, t)
        self.config.write_now(req.offset, req.value, req.first_be)

    async def settle(self) -> None:
        """Serve what a Configuration Write through this path handed the mailbox."""
        if self.config is not None:
            await self.config.doe.serve_pending()

    def _accept(self, req: MemWrite | MemRead, stream: int | None, t: bool) -> bool:
        size = 1 << BAR0_SIZE_LOG2
        base = ((self.tdi.bar0_hi << 32) | self.tdi.bar0_lo) & ~(size - 1)
        end = req.address + 4 * req.length_dw
        bar_hit = bool(self.tdi.command & _CMD_MEM) and base <= req.address and end <= base + size
        if req.ep and bar_hit:
            self.tdi.poisoned_request()  # §11.2: a locked TDI goes to ERROR
        tee_ok = self._tee_ok(stream, t)
        rid_ok = True
        s = self.ide.streams[stream] if stream is not None else None
        if s is not None and not s.link and not s.control & _CTL_DEFAULT:
            # §6.33.4: a non-default Selective stream's RID range; a Link stream has none.
            rid_ok = (s.rid2 >> 8) & 0xFFFF <= req.requester_id <= (s.rid1 >> 8) & 0xFFFF
        return bar_hit and tee_ok and rid_ok and not req.ep

    def _execute(self, req: MemWrite | MemRead, stream: int | None, t: bool) -> None:
        size = 1 << BAR0_SIZE_LOG2
        offset = req.address & (size - 1)
        too_long = req.length_dw > MAX_PAYLOAD_DW
        accept = not too_long and self._accept(req, stream, t)
        if isinstance(req, MemWrite):
            if not accept:
                self.counters["ur"] += 1  # a refused write is dropped
                return
            self._write(offset, req)
            return
        if accept:
            data = bytes(self.memory[offset : offset + 4 * req.length])
            cpl = Completion(
                completer_id=self.completer_id,
                requester_id=req.requester_id,
                tag=req.tag,
                byte_count=_byte_count(req),
                lower_address=(req.address & 0x7C) | _first_byte(req.first_be),
                tc=req.tc,
                attr=req.attr,
                payload=data,
            )
        else:
            self.counters["ur"] += 1
            cpl = Completion(
                completer_id=self.completer_id,
                requester_id=req.requester_id,
                tag=req.tag,
                status=CplStatus.UR,
                tc=req.tc,
                attr=req.attr,
            )
        self._send(cpl, stream, t)

    def _send(self, cpl: Completion, stream: int | None, t: bool) -> None:
        if stream is None:
            self.sent.append(cpl.encode())
            return
        if not self.ide.is_secure(stream):
            self.counters["discarded"] += 1  # the stream went Insecure: nothing is sent
            return
        try:
            ide = self._protect(self._end(stream), cpl, t)
        except IdeKeyUnusable:
            ide = None  # no armed Tx key: nothing is sent (as the HDL's StTxKey)
        if ide is None:
            self.counters["discarded"] += 1
            return
        self.counters["tx"] += 1
        self.sent.append(ide.encode())

    # -- the function's own requests (the DMA engine) ----------------------------------------
    def tx_streams(self) -> list[TxStream]:
        """The capability's streams as a transmitter reads them to pick a request's stream."""
        streams = []
        for j, stream in enumerate(self.ide.streams):
            selective = not stream.link
            streams.append(
                TxStream(
                    j,
                    enabled=bool(stream.enable),
                    tc=_tc(stream.control),
                    link=stream.link,
                    default=selective and bool(stream.control & _CTL_DEFAULT),
                    tee_limited=selective and bool(stream.control & _CTL_TEE_LIMITED),
                    ranges=tuple(self.ide.addr_ranges(j)) if selective else (),
                )
            )
        return streams

    def _refused(self, address: int, offset: int, length_dw: int, read: bool) -> DmaReport | None:
        """Why the engine would not start this request (as the HDL's StDmaSel), or None."""
        if (
            not 1 <= length_dw <= MAX_PAYLOAD_DW
            or offset + 4 * length_dw > len(self.memory)
            or (address | offset) & 3
            or (address & 0xFFF) + 4 * length_dw > 0x1000  # §2.2.7: no 4 KB crossing
            or (read and (address & 0x3F) + 4 * length_dw > 0x40)  # one Completion (RCB)
        ):
            return DmaReport(DmaOutcome.BAD_REQUEST)
        if not self.tdi.command & _CMD_BUS_MASTER:
            return DmaReport(DmaOutcome.NO_BUS_MASTER)  # §7.5.1.1.3
        return None

    def _send_request(
        self, req: MemWrite | MemRead, tc: int, t: bool
    ) -> tuple[DmaReport, int | None]:
        """Send ``req`` on the stream §6.33.4 picks for it (or plain): the report, the stream."""
        j = request_stream(self.tx_streams(), req.address, tc=tc, t=t)
        if j is None:
            self.sent.append(req.encode())
            return DmaReport(DmaOutcome.SENT_PLAIN), None
        stream_id = self.ide.streams[j].control >> 24
        report = DmaReport(DmaOutcome.DISCARDED, j, stream_id)
        if not self.ide.is_secure(j):
            self.counters["discarded"] += 1  # §6.33.4: discarded, never sent on another stream
            return report, j
        try:
            ide = self._protect_request(self._end(j), req, t)
        except IdeKeyUnusable:
            ide = None  # no armed Tx key
        except LocalProtocolError:
            return DmaReport(DmaOutcome.SYNC_DUE, j, stream_id), j  # §6.33.5: a Sync is due
        if ide is None:
            self.counters["discarded"] += 1
            return report, j
        self.counters["tx"] += 1
        self.sent.append(ide.encode())
        return DmaReport(DmaOutcome.SENT_IDE, j, stream_id), j

    def dma_write(
        self, address: int, source_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        """One Memory Write of ``length_dw`` DW of BAR0 memory from ``source_offset`` to
        ``address``, queued for the root port as the HDL's DMA engine sends it."""
        refused = self._refused(address, source_offset, length_dw, read=False)
        if refused is not None:
            return refused
        data = bytes(self.memory[source_offset : source_offset + 4 * length_dw])
        req = MemWrite.for_bytes(address, data, requester_id=self.completer_id, tc=tc)
        return self._send_request(req, tc, t)[0]

    def dma_read(
        self, address: int, dest_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        """One Memory Read of ``length_dw`` DW at ``address`` (its Completion goes to BAR0
        memory at ``dest_offset``), queued for the root port; NONE while it waits."""
        refused = self._refused(address, dest_offset, length_dw, read=True)
        if refused is not None:
            self.read_outcome = refused.outcome
            return refused
        tag, self._read_tag = self._read_tag, (self._read_tag + 1) & 0xFF
        req = MemRead.for_bytes(
            address, 4 * length_dw, requester_id=self.completer_id, tag=tag, tc=tc
        )
        report, j = self._send_request(req, tc, t)
        if report.outcome not in (DmaOutcome.SENT_IDE, DmaOutcome.SENT_PLAIN):
            self.read_outcome = report.outcome
            return report
        self.read_wait = (
            tag,
            j if report.outcome is DmaOutcome.SENT_IDE else None,
            length_dw,
            dest_offset,
        )
        self.read_outcome = DmaOutcome.NONE
        return DmaReport(DmaOutcome.NONE, report.stream_index, report.stream_id)

    def _rid_ok(self, stream: int | None, completer_id: int) -> bool:
        """§6.33.4: on a Selective stream other than the Default Stream, a Completion's
        Completer ID must lie within the RID association; else it is Unexpected."""
        s = self.ide.streams[stream] if stream is not None else None
        if s is None or s.link or s.control & _CTL_DEFAULT:
            return True
        return (s.rid2 >> 8) & 0xFFFF <= completer_id <= (s.rid1 >> 8) & 0xFFFF

    def _complete(self, cpl: Completion, stream: int | None) -> None:
        """A Completion for the DMA read (HDL: StCplRx)."""
        wait = self.read_wait
        if (
            wait is None
            or (cpl.tag, cpl.requester_id, stream) != (wait[0], self.completer_id, wait[1])
            or not self._rid_ok(stream, cpl.completer_id)
        ):
            self.counters["unexpected_cpl"] += 1  # §2.3.2: dropped, the read waits on
            return
        _, _, length_dw, offset = wait
        self.read_wait = None
        if cpl.status != CplStatus.SC or len(cpl.payload) != 4 * length_dw:
            self.read_outcome = DmaOutcome.READ_ERROR
            return
        self.memory[offset : offset + 4 * length_dw] = cpl.payload
        self.read_outcome = DmaOutcome.READ_DONE

    def dma_wait(self) -> DmaReport:
        """The last request's outcome; a read still waiting has its Completion Timeout now (the
        fake answers at once, so a Completion that has not come will not)."""
        if self.read_wait is not None:
            self.read_wait = None
            self.read_outcome = DmaOutcome.READ_TIMEOUT
        return DmaReport(self.read_outcome)


class FakeDma(DeviceDma):
    """The ``dma`` resource of the fake rig: :meth:`FakeTlpPath.dma_write`."""

    def __init__(self, path: FakeTlpPath) -> None:
        self.path = path

    async def write(
        self, address: int, source_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        return self.path.dma_write(address, source_offset, length_dw, tc=tc, t=t)

    async def start_read(
        self, address: int, dest_offset: int, length_dw: int, *, tc: int = 0, t: bool = False
    ) -> DmaReport:
        return self.path.dma_read(address, dest_offset, length_dw, tc=tc, t=t)

    async def wait(self) -> DmaReport:
        return self.path.dma_wait()


class FakeTlpPort(TlpPort):
    """The root port's side of the fake's link: the device answers at once, so a TLP that gets
    no answer is known to have none when :meth:`recv` is called."""

    def __init__(self, path: FakeTlpPath) -> None:
        self.path = path

    async def send(self, tlp: bytes) -> None:
        self.path.receive(bytes(tlp))
        await self.path.settle()

    async def recv(self, timeout_s: float) -> bytes | None:
        return self.path.sent.popleft() if self.path.sent else None
