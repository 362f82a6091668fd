"""IDE traffic vectors (PCIe 6.x §6.33): protected memory TLPs to BAR0 and back.

The root port's end of the stream is the reference model (hil.ide_model) behind the rig's
TlpPort; the device's end is keyed over IDE_KM in a secured SPDM session.  Every check reads
the device's verdict where the spec puts it: completions (their MAC, IV and counters are
checked by the model), the Selective IDE Stream Status register, and BAR0's contents read
back over the plain (non-IDE) path.

Configurations: a vector that also runs under an optional IDE configuration has a variant
whose id ends with the configuration's name (``ide.traffic.protected_rw.pcrc``,
``ide.traffic.protected_rw.link``).  The variant is n/a unless the device's IDE Capability
advertises it; it selects it in the stream's Control register before Enable, and the root
port's end uses it too.  ``.pcrc``: PCRC Enable on a Selective stream.  ``.link``: a Link IDE
Stream (Link IDE block 0) set to carry TC ``LINK_TC`` instead of a Selective stream; the
plain reads that check BAR0 go on TC0, which the Link stream does not hold.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from ..codec.ide_tlp import (
    IDE_PREFIX_BYTE0,
    Completion,
    CplStatus,
    IdePrefix,
    MemRead,
    MemWrite,
    SubStream,
    Tlp,
    decode_tlp,
)
from ..errors import DeviceFailure, NotApplicable, PeerProtocolError
from ..host.ide import STATE_SECURE, IdeRootPort, NoCompletion
from ..host.ide_km import IdeKmRequester, stream_regs
from ..host.ide_regs import (
    CAP_TEE_LIMITED,
    IDE_CAP_ID,
    SEL_CTL_DEFAULT,
    SEL_CTL_TEE_LIMITED,
    IdeLayout,
    addr1_value,
)
from ..host.pci import CAP_ID_PCIE, DEVCAP_TEE_IO, find_capability, find_ext_capabilities
from ..ide_model import Received, TxStream, request_stream
from ..transport import DeviceDma, DmaOutcome
from ._cleanup import tidy
from ._model import Vector, VectorContext, vector
from .ide_km import _km, config_ide_capability

NEEDS = {"spdm", "ide_km", "ide_traffic", "config"}
STREAM_ID = 0x33
STATE_INSECURE = 0b0000
SIZES = (1, 2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 200, 252, 256)


CAP_LINK = 1 << 0  # IDE Capability: Link IDE Stream Supported [§7.9.26.2]
CAP_PHE = 1 << 3  # IDE Capability: Partial Header Encryption Supported [§7.9.26.2]
CAP_CONFIG_REQUESTS = 1 << 7  # IDE Capability: Selective IDE for Config Requests [§7.9.26.2]
CONFIG_SPEC = "§6.33.4 (Selective IDE for Configuration Requests), §7.9.26.2 bit 7, §2.2.7.1"
CAP_AGGREGATION = 1 << 4  # IDE Capability: Aggregation Supported [§7.9.26.2]
CAP_PCRC = 1 << 5  # IDE Capability: PCRC Supported [§7.9.26.2]
PCRC_SPEC = "§6.33.4 (PCRC), §7.9.26.5.2 (PCRC Enable)"
LINK_SPEC = "§6.33.1, §6.33.4 (Link IDE Streams), §7.9.26.4 (Link IDE Stream registers)"
PHE_SPEC = (
    "§6.33.4 (partial header encryption), §7.9.26.5.2 (Partial Header Encryption Mode), "
    "§2.2.4.1 (64-bit addressing)"
)
#: The ``.phe`` variants' mode: 0001b, Address[17:2] and the byte enables encrypted.
PHE_MODE = 0b0001
#: The Link variants' stream: its own Stream ID (IDs are unique across a Port's enabled Link
#: and Selective streams, §6.33.4) and a TC other than the plain path's TC0.
LINK_STREAM_ID = 0x4C
LINK_TC = 1


def root_port(
    ctx: VectorContext,
    km: IdeKmRequester,
    stream_id: int,
    index: int = 0,
    *,
    pcrc: bool = False,
    link_tc: int | None = None,
    phe: int = 0,
) -> IdeRootPort:
    """The root port's end of stream ``index`` (a Link IDE block with ``link_tc``) on this
    rig's TLP port and deadline; ``phe`` its Partial Header Encryption Mode."""
    return IdeRootPort(
        km,
        ctx.resource("tlp"),
        ctx.config,
        stream_id=stream_id,
        index=index,
        timeout_s=float(ctx.settings.get("tlp_timeout_s", 0.01)),
        pcrc=pcrc,
        link_tc=link_tc,
        phe=phe,
    )


class _Stream:
    """A keyed stream for one vector: the session is ended on the way out.  With ``pcrc`` the
    stream runs with PCRC Enable at both ends; with ``link`` it is Link IDE block 0 carrying
    ``LINK_TC`` (cleared again on the way out, so that the TC's plain TLPs pass again); with
    ``phe`` (True: ``PHE_MODE``, or a mode 1..4) both ends use Partial Header Encryption.
    Each is n/a where the device's IDE Capability (QUERY_RESP, checked against config space)
    does not advertise it."""

    def __init__(
        self,
        ctx: VectorContext,
        *,
        pcrc: bool = False,
        link: bool = False,
        aggregation: bool | None = None,
        phe: bool | int = False,
        config_requests: bool = False,
    ) -> None:
        self.ctx = ctx
        self.config_requests = config_requests
        self.pcrc = pcrc
        self.link = link
        self.phe = PHE_MODE if phe is True else int(phe)
        self.aggregation = aggregation  # None: either; True / False: Aggregation Supported is
        self.km_cm = _km(ctx)
        self.rp: IdeRootPort | None = None

    def _not_applicable(self, cap: int) -> str | None:
        """Why this configuration does not apply to a Port whose IDE Capability is ``cap``."""
        if self.pcrc and not cap & CAP_PCRC:
            return f"the IDE Capability ({cap:#010x}) does not advertise PCRC"
        if self.link and not cap & CAP_LINK:
            return f"the IDE Capability ({cap:#010x}) does not advertise Link IDE Streams"
        if self.config_requests and not cap & CAP_CONFIG_REQUESTS:
            return (
                f"the IDE Capability ({cap:#010x}) does not advertise Selective IDE for "
                "Configuration Requests"
            )
        if self.phe and not cap & CAP_PHE:
            return f"the IDE Capability ({cap:#010x}) does not advertise Partial Header Encryption"
        if self.aggregation is not None and bool(cap & CAP_AGGREGATION) != self.aggregation:
            have = "does not advertise" if self.aggregation else "advertises"
            return f"the IDE Capability ({cap:#010x}) {have} Aggregation"
        return None

    async def check_config(self) -> None:
        """n/a where configuration space already rules the configuration out: then no session
        is opened for nothing."""
        in_config = await config_ide_capability(self.ctx)
        if in_config is not None and (why := self._not_applicable(in_config)):
            raise NotApplicable(why)

    async def check_query(self, km: IdeKmRequester) -> None:
        """n/a where QUERY_RESP's IDE Capability (checked against configuration space for a
        downgrade) does not advertise the configuration."""
        if (
            self.pcrc
            or self.link
            or self.phe
            or self.config_requests
            or self.aggregation is not None
        ):
            cap = (await km.query()).capability.value
            if why := self._not_applicable(cap):
                raise NotApplicable(why)

    async def __aenter__(self) -> IdeRootPort:
        await self.check_config()
        km = await self.km_cm.__aenter__()
        try:
            await self.check_query(km)
            if self.link:
                self.rp = root_port(
                    self.ctx, km, LINK_STREAM_ID, pcrc=self.pcrc, link_tc=LINK_TC, phe=self.phe
                )
            else:
                self.rp = root_port(self.ctx, km, STREAM_ID, pcrc=self.pcrc, phe=self.phe)
            await self.rp.establish()
        except BaseException as exc:
            await self._disable()
            await self.km_cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self.rp

    async def _disable(self) -> None:
        if self.link and self.rp is not None:
            await tidy(self.ctx, "link_disable", self.rp.disable())

    async def __aexit__(self, *exc: object) -> None:
        await self._disable()
        await self.km_cm.__aexit__(*exc)


async def _expect_insecure(ctx: VectorContext, rp: IdeRootPort, what: str) -> None:
    """The stream's Status must show Insecure within the rig's TLP deadline."""
    state = await rp.settled_state(ctx.timebase, STATE_INSECURE)
    ctx.measure("stream_state_after", state, "", low=STATE_INSECURE, high=STATE_INSECURE)
    ctx.expect(state == STATE_INSECURE, f"{what}: the stream is still {state:04b}, not Insecure")


async def _memory(rp: IdeRootPort, offset: int, size: int) -> bytes:
    """BAR0 bytes read over the plain path (the TDI is unlocked, so T=0 reads are fine)."""
    cpl = await rp.read_plain(offset & ~3, (size + (offset & 3) + 3) & ~3)
    if cpl.status != CplStatus.SC:
        raise NoCompletion(f"plain read of BAR0 + {offset:#x} completed with {cpl.status!r}")
    return cpl.payload[offset & 3 : (offset & 3) + size]


async def _protected_rw(ctx: VectorContext, **config: bool) -> None:
    rng = random.Random(0x1DE)
    pcrc = config.get("pcrc", False)
    # With aggregation each write goes as a unit of two TLPs (§6.33.6): the data split at a DW
    # boundary, or, below 8 bytes, the same write twice.
    aggregation = config.pop("aggregation", False)
    async with _Stream(ctx, aggregation=True if aggregation else None, **config) as rp:
        tlps = 0
        for size in SIZES:
            offset = rng.randrange(0, 4096 - size)
            if size > 252:
                offset &= ~3
            data = rng.randbytes(size)
            start = ctx.timebase.now()
            if aggregation:
                cut = (((offset + size // 2) & ~3) - offset) if size >= 8 else 0
                parts = [(offset, data[:cut]), (offset + cut, data[cut:])] if cut > 0 else []
                unit = [rp.write_tlp(o, d) for o, d in parts] or [rp.write_tlp(offset, data)] * 2
                await _send_unit(rp, unit)
            else:
                await rp.write(offset, data)
            cpl, t = await rp.read(offset, size)
            if size == 256:
                ctx.measure("round_trip_256B_ns", (ctx.timebase.now() - start) * 1e9, "ns")
            tlps += 3
            ctx.expect(cpl.status == CplStatus.SC, f"read of {size} bytes: status {cpl.status!r}")
            got = cpl.payload[offset & 3 : (offset & 3) + size]
            ctx.expect(got == data, f"read back of {size} bytes at {offset:#x} differs")
            ctx.expect(not t, "a completion for a T=0 read came back with T=1")
            ctx.expect(cpl.byte_count == size, f"Byte Count {cpl.byte_count}, expected {size}")
            ctx.expect(cpl.tc == rp.tc, f"a completion on TC{cpl.tc} for a TC{rp.tc} read")
        ctx.measure("protected_tlps", tlps, "TLPs", low=3 * len(SIZES))
        if pcrc:
            # Every completion carried data, so every one must carry a PCRC the model checked.
            ctx.measure("pcrc_completions", rp.pcrc_completions, "", low=len(SIZES))
            ctx.expect(
                rp.pcrc_completions == len(SIZES),
                f"{len(SIZES) - rp.pcrc_completions} completions with data came without a "
                f"PCRC on a stream with PCRC Enable (PCIe 6.x {PCRC_SPEC})",
            )
        state = await rp.state()
        ctx.expect(state == STATE_SECURE, f"stream left Secure ({state:04b}) under good traffic")


#: Optional IDE configurations a vector can also run under: name -> (the title's lead, spec).
_VARIANTS = {
    "pcrc": ("With PCRC Enable (where advertised)", PCRC_SPEC),
    "link": (f"On a Link IDE Stream for TC{LINK_TC} (where advertised)", LINK_SPEC),
    "phe": ("With Partial Header Encryption mode 0001b (where advertised)", PHE_SPEC),
    "link_phe": (
        f"On a Link IDE Stream for TC{LINK_TC} with Partial Header Encryption mode 0001b "
        "(where advertised)",
        f"{LINK_SPEC}; {PHE_SPEC}",
    ),
    "aggregation": ("Writes as aggregated units of two TLPs (where advertised)", "§6.33.6"),
    "aggregation_phe": (
        "Writes as aggregated units of two TLPs with Partial Header Encryption mode 0001b "
        "(where advertised)",
        f"§6.33.6; {PHE_SPEC}",
    ),
}


def _with_variants(
    vid: str,
    *,
    title: str,
    spec: str,
    body: Callable[..., Awaitable[None]],
    variants: dict[str, str],
    needs: frozenset[str] | set[str] = NEEDS,
) -> tuple[Vector, ...]:
    """The vector ``vid`` and, for each configuration named in ``variants`` (name -> what the
    variant checks), ``vid.<name>``: one body, run plain, then with ``<name>=True`` for each
    part of the name (``link_phe``: ``link=True, phe=True``; n/a where the IDE Capability does
    not advertise that configuration)."""

    async def plain(ctx: VectorContext) -> None:
        await body(ctx)

    made = [vector(vid, title=title, spec=f"PCIe 6.x {spec}", needs=needs)(plain)]
    for name, what in variants.items():
        lead, clause = _VARIANTS[name]

        async def configured(ctx: VectorContext, _name: str = name) -> None:
            await body(ctx, **dict.fromkeys(_name.split("_"), True))

        configured.__name__ = f"{plain.__name__}_{name}"
        made.append(
            vector(
                f"{vid}.{name}",
                title=f"{lead}: {what}",
                spec=f"PCIe 6.x {spec}, {clause}",
                needs=needs,
            )(configured)
        )
    return tuple(made)


(
    protected_rw,
    protected_rw_pcrc,
    protected_rw_link,
    protected_rw_phe,
    protected_rw_link_phe,
    protected_rw_aggregation,
    protected_rw_aggregation_phe,
) = _with_variants(
    "ide.traffic.protected_rw",
    title="IDE-protected writes and reads of many sizes; completions protected on the stream",
    spec="§6.33.4-6.33.6 (IDE TLPs, AES-GCM, sub-streams), §2.2.9",
    body=_protected_rw,
    variants={
        "pcrc": "protected writes and reads of many sizes, every completion with a good PCRC",
        "link": "protected writes and reads of many sizes, completions on the Link stream",
        "phe": "protected writes and reads of many sizes with the byte enables and "
        "Address[17:2] encrypted; each lands where its clear header says",
        "link_phe": "protected writes and reads of many sizes on the Link stream with the byte "
        "enables and Address[17:2] encrypted",
        "aggregation": "protected writes of many sizes, each as a unit of two TLPs with one MAC, "
        "and reads of them",
        "aggregation_phe": "protected writes of many sizes as units of two TLPs whose byte "
        "enables and Address[17:2] are encrypted, and reads of them",
    },
)


async def _tamper(ctx: VectorContext, where: str, **config: bool) -> None:
    async with _Stream(ctx, **config) as rp:
        before = await _memory(rp, 0x100, 64)
        ide = rp.protect(rp.write_tlp(0x100, bytes(range(64))))
        wire = bytearray(ide.encode())
        header = len(ide.tlp.header())  # 4 DW with PHE (§2.2.4.1)
        pos = {"header": 4 + 5, "payload": 4 + header + 17, "mac": len(wire) - 5}[where]
        wire[pos] ^= 0x04
        await rp.port.send(bytes(wire))
        await _expect_insecure(ctx, rp, f"a flipped bit in the {where}")
        after = await _memory(rp, 0x100, 64)
        ctx.expect(after == before, f"the tampered write ({where}) reached BAR0")


@vector(
    "ide.tamper.header",
    title="A flipped bit in an IDE TLP's header is detected; the stream goes Insecure",
    spec="PCIe 6.x §6.33.4 (A = prefix + header), §6.33.8",
    needs=NEEDS,
)
async def tamper_header(ctx: VectorContext) -> None:
    await _tamper(ctx, "header")


async def _tamper_payload(ctx: VectorContext, **config: bool) -> None:
    await _tamper(ctx, "payload", **config)


tamper_payload, tamper_payload_pcrc, tamper_payload_link, tamper_payload_phe = _with_variants(
    "ide.tamper.payload",
    title="A flipped bit in an IDE TLP's encrypted payload is detected; the stream goes Insecure",
    spec="§6.33.4, §6.33.8",
    body=_tamper_payload,
    variants={
        "pcrc": "a flipped bit in the encrypted payload is an IDE Check Failed (the MAC), not a "
        "PCRC error; the stream goes Insecure",
        "link": "a flipped bit in the encrypted payload of a Link IDE TLP is detected; the Link "
        "stream goes Insecure",
        "phe": "a flipped bit in the encrypted payload of an IDE TLP with Partial Header "
        "Encryption is detected; the stream goes Insecure",
    },
)


@vector(
    "ide.tamper.mac",
    title="A flipped bit in an IDE TLP's MAC is detected; the stream goes Insecure",
    spec="PCIe 6.x §6.33.4, §6.33.8",
    needs=NEEDS,
)
async def tamper_mac(ctx: VectorContext) -> None:
    await _tamper(ctx, "mac")


async def _replay(ctx: VectorContext, **config: bool) -> None:
    async with _Stream(ctx, **config) as rp:
        wire = rp.protect(rp.write_tlp(0x40, b"\x11" * 16)).encode()
        await rp.port.send(wire)
        cpl, _ = await rp.read(0x40, 16)
        ctx.expect(cpl.payload == b"\x11" * 16, "the original write did not land")
        await rp.port.send(wire)  # the same bytes again
        await _expect_insecure(ctx, rp, "a replayed TLP")


replay_detected, replay_pcrc, replay_link, replay_phe = _with_variants(
    "ide.replay.detected",
    title="A replayed IDE TLP fails the check (the invocation counter moved on)",
    spec="§6.33.5 (IV), §6.33.8",
    body=_replay,
    variants={
        "pcrc": "a replayed IDE TLP with a good PCRC fails the check",
        "link": "a replayed IDE TLP on the Link stream fails the check",
        "phe": "a replayed IDE TLP with its header fields encrypted fails the check",
    },
)


async def _reorder(ctx: VectorContext, **config: bool) -> None:
    async with _Stream(ctx, **config) as rp:
        first = rp.protect(rp.write_tlp(0x80, b"\x22" * 8)).encode()
        second = rp.protect(rp.write_tlp(0x88, b"\x33" * 8)).encode()
        await rp.port.send(second)
        await rp.port.send(first)
        await _expect_insecure(ctx, rp, "reordered TLPs")


reorder_detected, reorder_pcrc, reorder_link, reorder_phe = _with_variants(
    "ide.reorder.detected",
    title="Two IDE TLPs delivered out of order fail the check",
    spec="§6.33.5, §6.33.8",
    body=_reorder,
    variants={
        "pcrc": "two IDE TLPs with PCRC delivered out of order fail the check",
        "link": "two IDE TLPs on the Link stream delivered out of order fail the check",
        "phe": "two IDE TLPs with encrypted header fields delivered out of order fail the check",
    },
)


async def _key_refresh(ctx: VectorContext, **config: bool) -> None:
    rng = random.Random(0xF5)
    async with _Stream(ctx, **config) as rp:
        expected = bytearray(await _memory(rp, 0, 256))

        async def traffic(n: int) -> None:
            for _ in range(n):
                off, size = rng.randrange(0, 240), rng.randint(1, 16)
                data = rng.randbytes(size)
                await rp.write(off, data)
                expected[off : off + size] = data

        await traffic(4)
        await rp.program(1)  # the new set is loaded while K0 carries traffic
        await traffic(4)
        await rp.go(1, 0)  # Rx at both ports first
        await traffic(4)
        await rp.go(1, 1)  # then Tx: the root port switches to K1
        rp.key_set = 1
        await traffic(4)
        cpl, _ = await rp.read(0, 256)
        ctx.expect(cpl.payload == bytes(expected), "BAR0 differs after the refresh")
        ctx.expect(rp.model.tx.active_key_set(1) == 1, "the root port did not switch to K1")
        state = await rp.state()
        ctx.expect(state == STATE_SECURE, f"stream left Secure ({state:04b}) during the refresh")
        ctx.measure("key_set", 1, "")


key_refresh, key_refresh_pcrc, key_refresh_link, key_refresh_phe = _with_variants(
    "ide.key_refresh.with_traffic",
    title="Key refresh K0 -> K1 while writes and reads flow; nothing is lost",
    spec="§6.33.3 (key refresh), §6.33.4 (K bit)",
    body=_key_refresh,
    variants={
        "pcrc": "key refresh K0 -> K1 with PCRC on every write and completion; nothing is lost",
        "link": "key refresh K0 -> K1 on the Link stream while traffic flows; nothing is lost",
        "phe": "key refresh K0 -> K1 with encrypted header fields; nothing is lost",
    },
)


@vector(
    "ide.k_set_stop.old_set_rejected",
    title="After refresh and K_SET_STOP of K0, K1 traffic flows and a K0 TLP is refused",
    spec="PCIe 6.x §6.33.3 (K_SET_STOP), §6.33.8 (use of a stopped key set)",
    needs=NEEDS,
)
async def k_set_stop_old_set(ctx: VectorContext) -> None:
    async with _Stream(ctx) as rp:
        stale = rp.protect(rp.write_tlp(0x200, b"\xee" * 4))  # made with K0, never delivered
        rp.model.tx.pr_sent_npr -= 1  # so the next read's PR_Sent_Counter stays honest
        await rp.refresh()
        await rp.stop(0)
        await rp.write(0x204, b"\x5a" * 4)
        cpl, _ = await rp.read(0x204, 4)
        ctx.expect(cpl.payload == b"\x5a" * 4, "K1 traffic after K_SET_STOP of K0 failed")
        state = await rp.state()
        ctx.expect(state == STATE_SECURE, f"K_SET_STOP changed the stream state to {state:04b}")
        await rp.port.send(stale.encode())
        await _expect_insecure(ctx, rp, "a TLP with the stopped key set")


@vector(
    "ide.insecure.discarded",
    title="Once Insecure, protected requests are discarded: no completion, no write",
    spec="PCIe 6.x §6.33.8 (TLPs of an Insecure stream are discarded)",
    needs=NEEDS,
)
async def insecure_discarded(ctx: VectorContext) -> None:
    async with _Stream(ctx) as rp:
        before = await _memory(rp, 0x300, 8)
        await rp.port.send(rp.protect(rp.write_tlp(0x300, b"\1" * 8)).encode()[:-1] + b"\0")
        await _expect_insecure(ctx, rp, "a TLP with a bad MAC")
        await rp.port.send(rp.protect(rp.write_tlp(0x300, b"\2" * 8)).encode())
        req = rp.read_tlp(0x300, 8)
        await rp.port.send(rp.protect(req).encode())
        ctx.expect(await rp.port.recv(rp.timeout_s) is None, "an Insecure stream answered a read")
        ctx.expect(await _memory(rp, 0x300, 8) == before, "an Insecure stream's write landed")


# --------------------------------------------------------------------------------------------
# Key sets with traffic: K1 from the start, K0 -> K1 -> K0
# --------------------------------------------------------------------------------------------


async def _round_trips(
    ctx: VectorContext, rp: IdeRootPort, rng: random.Random, key_set: int, n: int
) -> None:
    """``n`` protected writes, each read back: the requests must be taken on ``key_set`` and
    the completions must come back on it (the K bit of their prefix), MAC and counters good."""
    for _ in range(n):
        offset, size = rng.randrange(0, 0x400 - 16) & ~3, rng.choice((4, 8, 16))
        data = rng.randbytes(size)
        await rp.write(offset, data)
        req = rp.read_tlp(offset, size)
        await rp.port.send(rp.protect(req).encode())
        got = await rp.receive_completion(req)
        ctx.expect(
            got.prefix.k == key_set,
            f"a completion on key set {got.prefix.k} while key set {key_set} is in use",
        )
        ctx.expect(
            got.tlp.payload[:size] == data,  # type: ignore[union-attr]
            f"key set {key_set}: read back of {size} bytes at {offset:#x} differs",
        )


@vector(
    "ide.key_set_1.traffic",
    title="A stream keyed on key set 1 from the start carries writes and reads, completions on K1",
    spec="PCIe 6.x §6.33.3 (KeySet), §6.33.4 (K bit)",
    needs=NEEDS,
)
async def key_set_1_traffic(ctx: VectorContext) -> None:
    rng = random.Random(0x1D1)
    async with _km(ctx) as km:
        rp = root_port(ctx, km, STREAM_ID)
        await rp.establish(key_set=1)
        await _round_trips(ctx, rp, rng, 1, 8)
        state = await rp.state()
        ctx.expect(state == STATE_SECURE, f"stream left Secure ({state:04b}) on key set 1")


async def _switch_both_ways(ctx: VectorContext, **config: bool) -> None:
    rng = random.Random(0x5E7)
    async with _Stream(ctx, **config) as rp:
        await _round_trips(ctx, rp, rng, 0, 4)
        for new, old in ((1, 0), (0, 1)):
            ctx.expect(await rp.refresh() == new, f"the refresh did not move to key set {new}")
            await _round_trips(ctx, rp, rng, new, 4)
            await rp.stop(old)
            await _round_trips(ctx, rp, rng, new, 4)
            state = await rp.state()
            ctx.expect(
                state == STATE_SECURE,
                f"stream {state:04b} after K_SET_STOP of key set {old}, not Secure",
            )
        ctx.measure("switches", 2, "")


# --------------------------------------------------------------------------------------------
# PCRC faults: a valid MAC around a PCRC that is wrong or missing
# --------------------------------------------------------------------------------------------


async def _pcrc_fault(ctx: VectorContext, fault: str) -> None:
    """A write whose MAC is good but whose PCRC is ``fault`` ("wrong" or "missing").  §6.33.4:
    that is PCRC Check Failed, a reported error whose data should not be used; it is not among
    the §6.33.8 causes of Insecure, and the TLP consumed its invocation like any authentic TLP,
    so the stream must stay Secure and carry the next TLPs."""
    async with _Stream(ctx, pcrc=True) as rp:
        before = await _memory(rp, 0x180, 32)
        bad = rp.protect(rp.write_tlp(0x180, bytes(range(0x40, 0x60))), pcrc_fault=fault)
        await rp.port.send(bad.encode())
        after = await _memory(rp, 0x180, 32)
        ctx.expect(after == before, f"a write with a {fault} PCRC reached BAR0 ({PCRC_SPEC})")
        state = await rp.state()
        ctx.measure("stream_state_after", state, "", low=STATE_SECURE, high=STATE_SECURE)
        ctx.expect(
            state == STATE_SECURE,
            f"a {fault} PCRC (with a good MAC) took the stream to {state:04b}: PCRC Check "
            "Failed is not a cause of Insecure (§6.33.8)",
        )
        await rp.write(0x180, b"\x77" * 8)
        cpl, _ = await rp.read(0x180, 8)
        ctx.expect(
            cpl.payload[:8] == b"\x77" * 8,
            "the stream did not carry a good write after the PCRC error (invocation counter?)",
        )


@vector(
    "ide.pcrc.mismatch_detected",
    title="A write with a good MAC but a wrong PCRC is not used; the stream stays Secure",
    spec=f"PCIe 6.x {PCRC_SPEC} (PCRC Check Failed), §6.33.8",
    needs=NEEDS,
)
async def pcrc_mismatch_detected(ctx: VectorContext) -> None:
    await _pcrc_fault(ctx, "wrong")


@vector(
    "ide.pcrc.missing_detected",
    title="A write with P = 0 on a stream with PCRC Enable is PCRC Check Failed: not used, "
    "the stream stays Secure",
    spec=f"PCIe 6.x {PCRC_SPEC}: P Clear with M Set is PCRC Check Failed",
    needs=NEEDS,
)
async def pcrc_missing_detected(ctx: VectorContext) -> None:
    await _pcrc_fault(ctx, "missing")


# --------------------------------------------------------------------------------------------
# RID association
# --------------------------------------------------------------------------------------------


@vector(
    "ide.rid_association.outside_range_ur",
    title="A request on a (non-default) Selective stream from a Requester ID outside RID Base.."
    "Limit is an Unsupported Request: UR completion on the stream, write dropped, still Secure",
    spec="PCIe 6.x §6.33.4 (RID association at a TEE-IO Completer), §7.9.26.5.4, §7.5.3.3",
    needs=NEEDS,
)
async def rid_association_outside_range_ur(ctx: VectorContext) -> None:
    """The stream's RID range is the root port's RID alone (as Linux programs an endpoint's:
    RID Base = RID Limit = the Root Port).  Requests from the RIDs on either side of it are
    protected correctly on the stream, so only the association rule can refuse them.  §6.33.4
    states the rule for a device with TEE-IO Supported; without it the vector is n/a."""
    pcie = await find_capability(ctx.config, CAP_ID_PCIE)
    if pcie is None or not (await ctx.config.read32(pcie + 4)) & DEVCAP_TEE_IO:
        raise NotApplicable(
            "Device Capabilities does not set TEE-IO Supported: §6.33.4 states the RID "
            "association check for TEE-IO devices"
        )
    async with _Stream(ctx) as rp:
        own = rp.requester_id
        outside = [rid for rid in (own - 1, own + 1) if 0 <= rid <= 0xFFFF]
        offset = 0x280
        before = await _memory(rp, offset, 8)
        for rid in outside:
            data = bytes([0xA0 | (rid & 0xF)]) * 8
            await rp.port.send(
                rp.protect(MemWrite.for_bytes(rp.bar0 + offset, data, requester_id=rid)).encode()
            )
            req = MemRead.for_bytes(rp.bar0 + offset, 8, requester_id=rid, tag=rp.next_tag())
            await rp.port.send(rp.protect(req).encode())
            got = await rp.receive_completion(req)  # its MAC and counters checked
            ctx.expect(
                got.tlp.status == CplStatus.UR,  # type: ignore[union-attr]
                f"a read from RID {rid:#06x}, outside the stream's RID range {own:#06x}, "
                f"completed {got.tlp.status!r}, not UR",  # type: ignore[union-attr]
            )
            ctx.expect(
                await _memory(rp, offset, 8) == before,
                f"a write from RID {rid:#06x}, outside the stream's RID range, reached BAR0",
            )
        # In range: the same requests go through.
        await rp.write(offset, b"\x5c" * 8)
        cpl, _ = await rp.read(offset, 8)
        ctx.expect(cpl.payload[:8] == b"\x5c" * 8, "a request from the RID in range failed")
        state = await rp.state()
        ctx.expect(
            state == STATE_SECURE, f"the stream left Secure ({state:04b}): UR is not an IDE failure"
        )
        ctx.measure("outside_rids_refused", len(outside), "")


(
    key_set_switch_both_ways,
    key_set_switch_both_ways_pcrc,
    key_set_switch_both_ways_link,
    key_set_switch_both_ways_phe,
) = _with_variants(
    "ide.key_set.switch_both_ways",
    title="K0 -> K1 -> K0 with K_SET_STOP of the old set after each switch; traffic both ways "
    "on the set in use",
    spec="§6.33.3 (key refresh, K_SET_STOP), §6.33.4 (K bit), §6.33.8",
    body=_switch_both_ways,
    variants={
        "pcrc": "K0 -> K1 -> K0 with K_SET_STOP of the old set; traffic both ways carries "
        "good PCRCs on each set",
        "link": "K0 -> K1 -> K0 with K_SET_STOP of the old set on a Link IDE Stream; traffic "
        "both ways on the set in use",
        "phe": "K0 -> K1 -> K0 with K_SET_STOP of the old set; requests with Partial Header "
        "Encryption both ways on the set in use",
    },
)


# --------------------------------------------------------------------------------------------
# Link IDE: the Link stream's hold on its TC
# --------------------------------------------------------------------------------------------


@vector(
    "ide.link.plain_discarded_after_ide",
    title="On a Link IDE Stream's TC, non-IDE requests are taken until the first IDE TLP of their "
    "Sub-Stream and discarded from then on; other TCs and the stream's state are untouched",
    spec=f"PCIe 6.x {LINK_SPEC}: a receiver discards non-IDE TLPs of the Sub-Stream once an IDE "
    "TLP arrived on it, while the stream is enabled",
    needs=NEEDS,
)
async def link_plain_discarded_after_ide(ctx: VectorContext) -> None:
    async with _Stream(ctx, link=True) as rp:
        offset = 0x340
        # Before any IDE TLP on the stream: a plain write and read on the TC are still taken.
        await rp.port.send(rp.write_tlp(offset, b"\x11" * 8).encode())
        ctx.expect(
            await _memory(rp, offset, 8) == b"\x11" * 8,
            f"a plain TC{LINK_TC} write before the first IDE TLP was not taken",
        )
        early = await rp.read_plain(offset, 8, tc=LINK_TC)
        ctx.expect(early.status == CplStatus.SC, "a plain read before the first IDE TLP failed")
        # IDE TLPs on both request Sub-Streams (Posted: the write, Non-Posted: the read).
        await rp.write(offset, b"\x22" * 8)
        cpl, _ = await rp.read(offset, 8)
        ctx.expect(cpl.payload[:8] == b"\x22" * 8, "the Link stream's own write did not land")
        # From now on plain TLPs of the TC are discarded: no write, no completion.
        await rp.port.send(rp.write_tlp(offset, b"\x33" * 8).encode())
        ctx.expect(
            await _memory(rp, offset, 8) == b"\x22" * 8,
            f"a plain TC{LINK_TC} write after the Link stream's IDE TLPs reached BAR0",
        )
        late = rp.read_tlp(offset, 8, tc=LINK_TC)
        await rp.port.send(late.encode())
        ctx.expect(
            await rp.port.recv(rp.timeout_s) is None,
            f"a plain TC{LINK_TC} read after the Link stream's IDE TLPs was answered",
        )
        state = await rp.state()
        ctx.expect(
            state == STATE_SECURE,
            f"the Link stream left Secure ({state:04b}): a discarded plain TLP is no IDE error",
        )
        # The stream still carries its own traffic.
        cpl, _ = await rp.read(offset, 8)
        ctx.expect(cpl.payload[:8] == b"\x22" * 8, "the Link stream stopped carrying reads")


@vector(
    "ide.link.with_selective_stream",
    title="A Link IDE Stream (TC1) and a Selective IDE Stream (TC0) enabled together carry "
    "interleaved writes and reads, each on its own keys; both stay Secure",
    spec=f"PCIe 6.x {LINK_SPEC}: when both are enabled, TLPs a Selective stream selects use it "
    "and the others of the Link stream's TC use the Link stream",
    needs=NEEDS,
)
async def link_with_selective_stream(ctx: VectorContext) -> None:
    rng = random.Random(0x15E)
    async with _Stream(ctx, link=True) as link:
        selective = root_port(ctx, link.km, STREAM_ID)
        await selective.establish()
        try:
            expected: dict[int, bytes] = {}
            for n in range(12):
                rp = link if n % 2 else selective
                offset, data = 0x700 + 0x10 * n, rng.randbytes(rng.choice((4, 8, 16)))
                await rp.write(offset, data)
                expected[offset] = data
                cpl, _ = await rp.read(offset, len(data))
                ctx.expect(
                    cpl.payload[: len(data)] == data and cpl.tc == rp.tc,
                    f"{'Link' if rp is link else 'Selective'} stream: the read of "
                    f"{offset:#x} on TC{rp.tc} returned other data or came on TC{cpl.tc}",
                )
            for offset, data in expected.items():
                ctx.expect(
                    await _memory(link, offset, len(data)) == data,
                    f"BAR0 + {offset:#x} does not hold what was written",
                )
            states = (await link.state(), await selective.state())
            ctx.expect(
                states == (STATE_SECURE, STATE_SECURE),
                f"Link / Selective stream states {states[0]:04b} / {states[1]:04b}, not Secure",
            )
            ctx.measure("interleaved_round_trips", 12, "")
        finally:
            await tidy(ctx, "selective_disable", selective.disable())


# --------------------------------------------------------------------------------------------
# Aggregation (§6.33.6): one MAC over a unit of TLPs of one sub-stream
# --------------------------------------------------------------------------------------------

AGGREGATION_SPEC = "§6.33.4 (A and P of a unit), §6.33.6 (IDE TLP Aggregation)"


async def _send_unit(rp: IdeRootPort, tlps: list[MemWrite] | list[MemRead], **kw: object) -> None:
    unit = rp.model.protect_unit(tlps, **kw)
    if unit is None:
        raise NoCompletion("the root port's end of the stream is not Secure")
    for member in unit:
        await rp.port.send(member.encode())


@vector(
    "ide.aggregation.units_carried",
    title="Aggregated units of 2 and 4 writes and of 2 reads (one MAC each, on the last TLP) are "
    "taken whole: every write lands, every read is answered",
    spec=f"PCIe 6.x {AGGREGATION_SPEC}: a Receiver where aggregation is supported must take "
    "units of up to the lesser of 8 TLPs and its credits",
    needs=NEEDS,
)
async def aggregation_units_carried(ctx: VectorContext) -> None:
    async with _Stream(ctx, aggregation=True) as rp:
        rng = random.Random(0xA66)
        expected: dict[int, bytes] = {}
        for count in (2, 4):
            writes = []
            for i in range(count):
                offset, data = 0x500 + 0x20 * i + 0x100 * (count == 4), rng.randbytes(16)
                writes.append(rp.write_tlp(offset, data))
                expected[offset] = data
            start = ctx.timebase.now()
            await _send_unit(rp, writes)
            if count == 4:
                # Device time for the unit and a read after it (the read waits for the unit).
                cpl, _ = await rp.read(offset, 16)
                ctx.expect(cpl.payload[:16] == data, "a read after the unit missed its write")
                ctx.measure("unit_of_4_then_read_ns", (ctx.timebase.now() - start) * 1e9, "ns")
        reads = [rp.read_tlp(offset, 16) for offset in list(expected)[:2]]
        await _send_unit(rp, reads)
        for req in reads:
            got = await rp.receive_completion(req)
            ctx.expect(
                got.tlp.payload[:16] == expected[req.address - rp.bar0],  # type: ignore[union-attr]
                f"the aggregated read of BAR0 + {req.address - rp.bar0:#x} returned other data",
            )
        for offset, data in expected.items():
            cpl, _ = await rp.read(offset, 16)
            ctx.expect(cpl.payload[:16] == data, f"the unit's write to {offset:#x} did not land")
        state = await rp.state()
        ctx.expect(state == STATE_SECURE, f"the stream left Secure ({state:04b}) on good units")
        ctx.measure("units", 3, "")


@vector(
    "ide.aggregation.bad_member_fails_unit",
    title="A flipped bit in the first TLP of an aggregated unit fails the unit's MAC on its last "
    "TLP; the stream goes Insecure",
    spec=f"PCIe 6.x {AGGREGATION_SPEC}, §6.33.8 (MAC check failure of an aggregated unit)",
    needs=NEEDS,
)
async def aggregation_bad_member(ctx: VectorContext) -> None:
    """Whether the first member's data was used before the check is recorded
    (``tampered_member_landed``), not judged: §6.33.6 only recommends that a Receiver hold a
    unit back until its MAC is checked."""
    async with _Stream(ctx, aggregation=True) as rp:
        before = await _memory(rp, 0x600, 16)
        unit = rp.model.protect_unit(
            [rp.write_tlp(0x600, b"\x5b" * 16), rp.write_tlp(0x640, b"\x5c" * 16)]
        )
        assert unit is not None
        first = bytearray(unit[0].encode())
        first[-3] ^= 0x20  # in its encrypted payload
        await rp.port.send(bytes(first))
        await rp.port.send(unit[1].encode())
        await _expect_insecure(ctx, rp, "an aggregated unit with a tampered member")
        after = await _memory(rp, 0x600, 16)
        ctx.measure("tampered_member_landed", int(after != before), "")


@vector(
    "ide.aggregation.k_toggled_inside_unit",
    title="A unit whose second TLP carries the other K (inside a valid MAC) is IDE Check Failed; "
    "the stream goes Insecure",
    spec=f"PCIe 6.x {AGGREGATION_SPEC}: K may toggle only on the first TLP of a unit; "
    "Receivers must check for violations of this rule",
    needs=NEEDS,
)
async def aggregation_k_toggled(ctx: VectorContext) -> None:
    async with _Stream(ctx, aggregation=True) as rp:
        # Key set 1 loaded and armed for the device's receivers too, so that only the rule
        # (not an unusable key set) can refuse the unit.
        await rp.program(1)
        await rp.go(1, 0)
        unit = [rp.write_tlp(0x680, b"\x6a" * 8), rp.write_tlp(0x690, b"\x6b" * 8)]
        await _send_unit(rp, unit, toggle_k_at=1)
        await _expect_insecure(ctx, rp, "K toggled on the second TLP of an aggregated unit")


@vector(
    "ide.aggregation.unsupported_unit_rejected",
    title="Where Aggregation is not supported, an IDE TLP without a MAC (the first of a unit) is "
    "IDE Check Failed: the stream goes Insecure and the unit's writes do not land",
    spec=f"PCIe 6.x {AGGREGATION_SPEC}: an IDE TLP without a MAC at a Receiver where Aggregation "
    "is not supported is an IDE Check Failed error; §6.33.8",
    needs=NEEDS,
)
async def aggregation_unsupported_rejected(ctx: VectorContext) -> None:
    async with _Stream(ctx, aggregation=False) as rp:
        before = await _memory(rp, 0x6C0, 16)
        unit = rp.model.protect_unit(
            [rp.write_tlp(0x6C0, b"\x7c" * 8), rp.write_tlp(0x6C8, b"\x7d" * 8)]
        )
        assert unit is not None
        # The TLP without a MAC is the error itself: Insecure before the unit's last TLP.
        await rp.port.send(unit[0].encode())
        await _expect_insecure(ctx, rp, "an IDE TLP without a MAC")
        await rp.port.send(unit[1].encode())
        after = await _memory(rp, 0x6C0, 16)
        ctx.expect(after == before, "a write of the refused unit reached BAR0")


# --------------------------------------------------------------------------------------------
# Partial Header Encryption (§6.33.4): every mode, and a tampered header on either side
# --------------------------------------------------------------------------------------------


@vector(
    "ide.phe.each_mode",
    title="Writes and reads with Partial Header Encryption in each mode (Address[17:2], [25:2], "
    "[33:2], [41:2] and the byte enables encrypted) land where their clear header says",
    spec=f"PCIe 6.x {PHE_SPEC}",
    needs=NEEDS,
)
async def phe_each_mode(ctx: VectorContext) -> None:
    """One stream, set up again for each mode (the mode is fixed while Enable is set,
    §7.9.26.5.2), in one SPDM session; the same mode at both Partner Ports."""
    rng = random.Random(0x9E)
    await _Stream(ctx, phe=True).check_config()
    async with _km(ctx) as km:
        await _Stream(ctx, phe=True).check_query(km)
        for mode in (1, 2, 3, 4):
            rp = root_port(ctx, km, STREAM_ID, phe=mode)
            await rp.establish()
            try:
                for size in (1, 4, 7, 64):
                    offset, data = rng.randrange(0, 0x800 - size), rng.randbytes(size)
                    await rp.write(offset, data)
                    cpl, _ = await rp.read(offset, size)
                    got = cpl.payload[offset & 3 : (offset & 3) + size]
                    ctx.expect(
                        cpl.status == CplStatus.SC and got == data,
                        f"PHE mode {mode:04b}: {size} bytes at BAR0 + {offset:#x} read back "
                        f"{got.hex()} ({cpl.status!r})",
                    )
                    ctx.expect(
                        await _memory(rp, offset, size) == data,
                        f"PHE mode {mode:04b}: the write of {size} bytes is not at BAR0 + "
                        f"{offset:#x} (the decrypted address or byte enables were not used)",
                    )
                state = await rp.state()
                ctx.expect(state == STATE_SECURE, f"PHE mode {mode:04b}: stream {state:04b}")
            finally:
                await rp.disable()
        ctx.measure("phe_modes", 4, "")


async def _phe_tamper(ctx: VectorContext, byte: int, bit: int, what: str) -> None:
    """A protected write with one bit of header byte ``byte`` flipped on the wire: the stream
    must go Insecure and nothing may land, neither where the write was meant to go nor where
    the flipped header would send it."""
    async with _Stream(ctx, phe=True) as rp:
        offset, other = 0x3C0, 0x3C0 ^ (1 << 4)
        before = await _memory(rp, offset, 8), await _memory(rp, other, 8)
        ide = rp.protect(rp.write_tlp(offset, b"\xa5" * 8))
        wire = bytearray(ide.encode())
        wire[4 + byte] ^= 1 << bit  # after the IDE prefix
        await rp.port.send(bytes(wire))
        await _expect_insecure(ctx, rp, f"a flipped bit in {what}")
        after = await _memory(rp, offset, 8), await _memory(rp, other, 8)
        ctx.expect(after == before, f"the write with a flipped bit in {what} reached BAR0")


@vector(
    "ide.phe.tampered_clear_header",
    title="With Partial Header Encryption, a flipped bit in a header byte left in the clear (the "
    "Tag, in A) is detected: the stream goes Insecure, the write does not land",
    spec=f"PCIe 6.x {PHE_SPEC}: what PHE leaves in the clear stays in A; §6.33.8",
    needs=NEEDS,
)
async def phe_tampered_clear_header(ctx: VectorContext) -> None:
    await _phe_tamper(ctx, 6, 3, "the clear Tag byte")


@vector(
    "ide.phe.tampered_encrypted_header",
    title="With Partial Header Encryption, a flipped bit in the encrypted address (Address[4], in "
    "P) is detected: the stream goes Insecure, the write lands at neither address",
    spec=f"PCIe 6.x {PHE_SPEC}: the selected header content is encrypted and authenticated as "
    "part of P; §6.33.8",
    needs=NEEDS,
)
async def phe_tampered_encrypted_header(ctx: VectorContext) -> None:
    await _phe_tamper(ctx, 15, 4, "the encrypted Address[4]")


# --------------------------------------------------------------------------------------------
# Selective IDE for Configuration Requests (§6.33.4)
# --------------------------------------------------------------------------------------------

ALL_ONES = 0xFFFF_FFFF  # what software reads when a Configuration Read gets no Completion


async def _config_stream_off(ctx: VectorContext, rp: IdeRootPort) -> None:
    """Enable cleared by a Configuration Write on the stream itself: while the stream holds
    the device's Configuration Requests a plain write would be discarded.  §6.33.4: "For a
    Configuration Request that stops IDE, the Port must first return the Configuration
    Completion as an IDE TLP, and then stop IDE"."""
    assert rp.regs is not None
    cpl = await rp.config_write(rp.regs.control, rp._control_value() & ~1)
    ctx.expect(
        cpl.status == CplStatus.SC,
        f"the Configuration Write that clears Enable completed {cpl.status!r}, not as an IDE "
        f"Completion with status SC (PCIe 6.x {CONFIG_SPEC})",
    )
    rp.model.set_enabled(False)


@vector(
    "ide.config.protected_access",
    title="Configuration Reads and Writes sent as IDE TLPs (Type 1) on a Selective stream are "
    "answered on the stream with what the plain path reads",
    spec=f"PCIe 6.x {CONFIG_SPEC}: Configuration Requests associated with a Selective IDE "
    "Stream are received at an Upstream Port as Type 1; accepted for an implemented Function",
    needs=NEEDS,
)
async def config_protected_access(ctx: VectorContext) -> None:
    async with _Stream(ctx, config_requests=True) as rp:
        assert rp.regs is not None
        plain = {off: await ctx.config.read32(off) for off in (0x00, 0x08, rp.regs.control)}
        try:
            other = await stream_regs(ctx.config, 1)
        except PeerProtocolError:  # a device with one Selective stream
            other = None
        try:
            for off, want in plain.items():
                cpl = await rp.config_read(off)
                got = int.from_bytes(cpl.payload, "little") if cpl.payload else None
                ctx.expect(
                    cpl.status == CplStatus.SC and got == want,
                    f"an IDE Configuration Read of {off:#x} returned {cpl.status!r} "
                    f"{got if got is None else hex(got)}, the plain path {want:#010x}",
                )
                ctx.expect(
                    cpl.completer_id == rp.target_id and cpl.byte_count == 4,
                    f"the Completion of an IDE Configuration Read has Completer ID "
                    f"{cpl.completer_id:#06x}, Byte Count {cpl.byte_count} (§2.2.9)",
                )
            if other is not None:
                # A register nobody uses now: the other Selective stream's RID Limit.
                value = 0x00C3_5A00
                cpl = await rp.config_write(other.rid1, value)
                ctx.expect(cpl.status == CplStatus.SC, f"IDE Configuration Write: {cpl.status!r}")
                cpl = await rp.config_read(other.rid1)
                back = int.from_bytes(cpl.payload, "little") if cpl.payload else None
                ctx.expect(back == value, f"RID Limit written as {value:#x} over IDE reads {back}")
                await rp.config_write(other.rid1, 0)
            ctx.measure("ide_config_requests", len(plain) + 3 * (other is not None), "")
        finally:
            await _config_stream_off(ctx, rp)
        state = await rp.state()
        ctx.expect(state == STATE_INSECURE, f"the stream is {state:04b} after Enable was cleared")


@vector(
    "ide.config.plain_discarded_after_ide",
    title="Once a Configuration Request came as an IDE TLP on a Selective stream, plain ones are "
    "discarded until the stream is disabled (by a Configuration Write on the stream)",
    spec=f"PCIe 6.x {CONFIG_SPEC}: until then the Port must continue to accept Configuration "
    "Requests as non-IDE TLPs; afterwards it must discard them for as long as the stream is "
    "enabled",
    needs=NEEDS,
)
async def config_plain_discarded_after_ide(ctx: VectorContext) -> None:
    async with _Stream(ctx, config_requests=True) as rp:
        assert rp.regs is not None
        vendor = await ctx.config.read32(0x00)
        ctx.expect(vendor != ALL_ONES, "the plain path was refused before any IDE request")
        await rp.learn_target()
        try:
            cpl = await rp.config_read(0x00)
            ctx.expect(cpl.status == CplStatus.SC, f"IDE Configuration Read: {cpl.status!r}")
            held = await ctx.config.read32(0x00)
            ctx.measure("plain_read_while_held", held, "")
            ctx.expect(
                held == ALL_ONES,
                f"a plain Configuration Read after one came on the stream read {held:#010x}: "
                "it was answered, not discarded",
            )
            before = await rp.config_read(rp.regs.rid1)
            await ctx.config.write32(rp.regs.rid1, 0x00FF_FF00)  # discarded (and fixed anyway)
            after = await rp.config_read(rp.regs.rid1)
            ctx.expect(after.payload == before.payload, "a plain Configuration Write was taken")
        finally:
            await _config_stream_off(ctx, rp)
        again = await ctx.config.read32(0x00)
        ctx.expect(
            again == vendor,
            f"with the stream disabled a plain Configuration Read reads {again:#010x}, not "
            f"{vendor:#010x}: the hold outlived the stream",
        )


# --------------------------------------------------------------------------------------------
# The device's own requests (§6.33.4): which stream a Memory Write it sends goes on
# --------------------------------------------------------------------------------------------

REQUEST_SPEC = (
    "§6.33.4 (a Transmitter associates a TLP with a Selective IDE Stream by its Address "
    "Association, else the Default Stream; TEE-Limited Streams; Link IDE for the rest), "
    "§7.9.26.5.5 (IDE Address Association Register block)"
)
REQUEST_NEEDS = NEEDS | {"dma"}
#: The second Selective stream's Stream ID (unique at the Port, §6.33.4).
STREAM_ID_2 = 0x34
MB = 1 << 20
#: Host memory the vectors associate with streams (1 MB granules, §7.9.26.5.5): one above
#: 4 GB (a 4 DW header), one below (3 DW), one far up, and one no stream holds.
REGION_A = 0x0000_0001_2340_0000
REGION_B = 0x0000_0000_8000_0000
REGION_C = 0x0000_00F0_0000_0000
REGION_OUT = 0x0000_0002_0000_0000
_SOURCE = 0xC00  # BAR0 memory the device's writes carry
CMD_BUS_MASTER = 1 << 2  # Command.Bus Master Enable [§7.5.1.1.3]


async def _dma_engine(ctx: VectorContext) -> DeviceDma:
    """The rig's way to make the device write host memory; n/a without one (asked first, so
    that a device without an engine costs no session)."""
    dma: DeviceDma = ctx.resource("dma")
    if not await dma.supported():
        raise NotApplicable("the device was built without its DMA engine")
    return dma


async def _associate(
    ctx: VectorContext, rp: IdeRootPort, ranges: list[int], *, size: int = MB
) -> TxStream:
    """Program the Address Association blocks of ``rp``'s Selective stream (before Enable): block
    b holds ``ranges[b]`` .. + ``size`` - 1; the host's view of the stream for the oracle."""
    regs = await stream_regs(ctx.config, rp.index)
    if len(ranges) > regs.addr_blocks:
        raise NotApplicable(
            f"Selective stream {rp.index} has {regs.addr_blocks} Address Association "
            f"block(s); the vector needs {len(ranges)}"
        )
    for b, base in enumerate(ranges):
        limit = base + size - 1
        await ctx.config.write32(regs.addr2(b), limit >> 32)
        await ctx.config.write32(regs.addr3(b), base >> 32)
        await ctx.config.write32(regs.addr1(b), addr1_value(base, limit))
    return TxStream(
        rp.index,
        enabled=True,
        tc=(rp.control >> 19) & 7,
        default=bool(rp.control & SEL_CTL_DEFAULT),
        tee_limited=bool(rp.control & SEL_CTL_TEE_LIMITED),
        ranges=tuple((base, base + size - 1) for base in ranges),
    )


def _carrier(stream_id: int | None) -> str:
    return "a non-IDE TLP" if stream_id is None else f"an IDE TLP on Stream ID {stream_id:#x}"


class _DmaCheck:
    """Device writes checked where they arrive: on the stream the host's oracle
    (:func:`hil.ide_model.request_stream` over what the vector programmed) names, decrypted
    and checked by that stream's root-port model, with the payload and address sent."""

    def __init__(self, ctx: VectorContext, dma: DeviceDma, rps: list[IdeRootPort]) -> None:
        self.ctx = ctx
        self.dma = dma
        self.rps = {rp.stream_id: rp for rp in rps}
        self.streams: list[TxStream] = []
        self.rng = random.Random(0xD3A)
        self.checked = 0
        #: The function's Routing ID, as the Completer ID of its completions shows it: the
        #: Requester ID its own requests must carry (§2.2.6.2).
        self.function_id: int | None = None
        #: The IDE prefix of the last write that came as an IDE TLP (its K, its T).
        self.prefix: IdePrefix | None = None

    def stream_id(self, index: int | None, link_ids: dict[int, int] | None = None) -> int | None:
        if index is None:
            return None
        for rp in self.rps.values():
            if rp.index == index and rp.link_tc is None:
                return rp.stream_id
        return (link_ids or {}).get(index)

    async def _arrival(
        self, where: str, report: object, sub_stream: SubStream, want: int | None
    ) -> tuple[Tlp, IdeRootPort | None, Received | None]:
        """The TLP the device sent, as the root port gets it: decrypted and checked by the
        model of the stream it came on (its sub-stream ``sub_stream``), or plain; it must come
        as the oracle's ``want`` says (a Stream ID, None: plain)."""
        first = next(iter(self.rps.values()))
        raw = await first.port.recv(first.timeout_s)
        if raw is None:
            raise DeviceFailure(f"{where}: nothing arrived (the device reports {report})")
        rp: IdeRootPort | None = None
        got: Received | None = None
        if raw[0] == IDE_PREFIX_BYTE0:
            rp = self.rps.get(raw[2])
            if rp is None:
                raise DeviceFailure(f"{where} came on Stream ID {raw[2]:#x}, which is not set up")
            got = rp.model.receive(raw)  # a bad MAC, IV or PR_Sent_Counter: IdeCheckFailed
            if got is None:
                raise DeviceFailure(f"{where} came on an Insecure stream")
            self.ctx.expect(
                got.prefix.sub_stream == sub_stream,
                f"{where} came on sub-stream {got.prefix.sub_stream!r}, not {sub_stream!r}",
            )
            tlp = got.tlp
        else:
            tlp = decode_tlp(raw)
        got_id = None if rp is None else rp.stream_id
        self.ctx.expect(
            got_id == want,
            f"{where} came as {_carrier(got_id)}, not as {_carrier(want)} (PCIe 6.x §6.33.4)",
        )
        if isinstance(tlp, MemWrite | MemRead):
            self._requester(tlp.requester_id, where)
        self.checked += 1
        return tlp, rp, got

    async def write(
        self,
        address: int,
        *,
        tc: int = 0,
        t: bool = False,
        size: int = 16,
        link_ids: dict[int, int] | None = None,
    ) -> int | None:
        """One device write to ``address``; returns the Stream ID it came on (None: plain)."""
        ctx, first = self.ctx, next(iter(self.rps.values()))
        data = self.rng.randbytes(size)
        await first.port.send(MemWrite.for_bytes(first.bar0 + _SOURCE, data).encode())
        start = ctx.timebase.now()
        report = await self.dma.write(address, _SOURCE, size // 4, tc=tc, t=t)
        want = self.stream_id(request_stream(self.streams, address, tc=tc, t=t), link_ids)
        where = f"the device's write to {address:#x} (TC{tc}, T={int(t)})"
        tlp, rp, got = await self._arrival(where, report, SubStream.POSTED, want)
        if size == 256:
            # From the first DMA register write (the register accesses included) until the
            # root port has the TLP, in device time.
            ctx.measure("device_write_256B_ns", (ctx.timebase.now() - start) * 1e9, "ns")
        self.prefix = None if got is None else got.prefix
        ctx.expect(got is None or got.prefix.t == t, f"{where}: the prefix's T is not {t}")
        ctx.expect(
            isinstance(tlp, MemWrite) and tlp.address == address and tlp.payload == data,
            f"{where} arrived as {tlp!r}, not a write of the {size} bytes sent",
        )
        if isinstance(tlp, MemWrite):
            ctx.expect(tlp.tc == tc, f"{where} arrived on TC{tlp.tc}")
        return None if rp is None else rp.stream_id

    async def read(
        self, address: int, dest: int, size: int, *, tc: int = 0, t: bool = False
    ) -> tuple[MemRead, IdeRootPort | None, Received | None]:
        """Start a device read of ``size`` bytes at ``address`` into BAR0 + ``dest``; its MRd as
        the root port gets it (on the stream the oracle names, Non-Posted), the root port's end
        it came on (None: plain) and what that end's model made of it (None: plain)."""
        report = await self.dma.start_read(address, dest, size // 4, tc=tc, t=t)
        want = self.stream_id(request_stream(self.streams, address, tc=tc, t=t))
        where = f"the device's read of {address:#x} (TC{tc})"
        req, rp, got = await self._arrival(where, report, SubStream.NON_POSTED, want)
        if not isinstance(req, MemRead):
            raise DeviceFailure(f"{where} arrived as {req!r}")
        self.ctx.expect(
            (req.address, 4 * req.length, req.tc) == (address, size, tc),
            f"{where} arrived as a read of {4 * req.length} bytes at {req.address:#x} on "
            f"TC{req.tc}",
        )
        return req, rp, got

    def _requester(self, requester_id: int, where: str) -> None:
        if self.function_id is not None:
            self.ctx.expect(
                requester_id == self.function_id,
                f"{where} carries Requester ID {requester_id:#06x}, not the function's "
                f"{self.function_id:#06x} (the Completer ID of its completions, §2.2.6.2)",
            )

    async def complete(
        self,
        req: MemRead,
        rp: IdeRootPort | None,
        data: bytes,
        *,
        completer: int | None = None,
    ) -> None:
        """The root port's Completion for ``req``, protected on ``rp``'s stream (plain for
        None), from ``completer`` (default: the root port itself, ``rp.requester_id``)."""
        first = next(iter(self.rps.values()))
        cpl = Completion(
            completer_id=first.requester_id if completer is None else completer,
            requester_id=req.requester_id,
            tag=req.tag,
            byte_count=len(data),
            lower_address=req.address & 0x7C,
            tc=req.tc,
            payload=data,
        )
        await first.port.send(cpl.encode() if rp is None else rp.protect(cpl).encode())


async def _requests_setup(
    ctx: VectorContext,
    km: IdeKmRequester,
    dma: DeviceDma,
    ranges: list[list[int]],
    *,
    control: tuple[int, ...] = (),
    indexes: tuple[int, ...] = (0, 1),
    **config: bool,
) -> tuple[list[IdeRootPort], _DmaCheck]:
    """Selective streams ``indexes`` (one per entry of ``ranges``: the bases of their Address
    Association blocks; ``control``: more Stream Control bits each) keyed and Secure, with
    Bus Master Enable set; and the checker of the device's writes that knows them."""
    pcrc, phe = config.get("pcrc", False), PHE_MODE if config.get("phe") else 0
    rps = [
        root_port(ctx, km, sid, index, pcrc=pcrc, phe=phe)
        for index, sid, _ in zip(indexes, (STREAM_ID, STREAM_ID_2), ranges, strict=False)
    ]
    for rp, bits in zip(rps, control, strict=False):
        rp.control |= bits
    check = _DmaCheck(ctx, dma, rps)
    check.streams = [
        await _associate(ctx, rp, bases) for rp, bases in zip(rps, ranges, strict=True)
    ]
    for rp in rps:
        await rp.establish()
    await _bus_master(ctx)
    check.function_id = await rps[0].learn_target()  # a protected read's Completer ID
    return rps, check


async def _bus_master(ctx: VectorContext) -> None:
    """Command.Bus Master Enable (and Memory Space), as a driver's pci_set_master does."""
    command = await ctx.config.read32(0x04) & 0xFFFF
    await ctx.config.write32(0x04, command | CMD_BUS_MASTER | 0x2)


async def _address_association(ctx: VectorContext, **config: bool) -> None:
    dma = await _dma_engine(ctx)
    stream = _Stream(ctx, **config)  # n/a checks for the variant, and the session
    await stream.check_config()
    async with stream.km_cm as km:
        await stream.check_query(km)
        (rp0, rp1), check = await _requests_setup(ctx, km, dma, [[REGION_A], [REGION_B]], **config)
        for address in (
            REGION_A,
            REGION_A + MB - 16,  # the last 16 bytes the range holds
            REGION_B + 0x1230,  # below 4 GB: a 3 DW header (4 DW with PHE)
            REGION_A + MB,  # the first byte past the Memory Limit
            REGION_OUT,
            REGION_B - 16,
        ):
            await check.write(address, size=16)
        await check.write(REGION_A + 0x4000, size=256)
        ctx.measure("device_writes_checked", check.checked, "", low=7)
        states = (await rp0.state(), await rp1.state())
        ctx.expect(states == (STATE_SECURE, STATE_SECURE), f"stream states {states}")


(
    requests_address_association,
    requests_address_association_pcrc,
    requests_address_association_phe,
) = _with_variants(
    "ide.requests.address_association",
    title="The device's own Memory Writes go on the Selective stream whose Address Association "
    "holds the address (at both ends of the range, above and below 4 GB), and as non-IDE TLPs "
    "outside every range",
    spec=REQUEST_SPEC,
    body=_address_association,
    variants={
        "pcrc": "the device's writes on their streams with a good PCRC",
        "phe": "the device's writes on their streams with the byte enables and Address[17:2] "
        "encrypted",
    },
    needs=REQUEST_NEEDS,
)


@vector(
    "ide.requests.second_address_block",
    title="A Selective stream with two Address Association blocks carries the device's writes "
    "to either range; a write outside both goes as a non-IDE TLP",
    spec=f"PCIe 6.x {REQUEST_SPEC}: any of the stream's blocks holds the address",
    needs=REQUEST_NEEDS,
)
async def requests_second_address_block(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    caps = await find_ext_capabilities(ctx.config, IDE_CAP_ID)
    if not caps:
        raise NotApplicable("no IDE extended capability in configuration space")
    layout = await IdeLayout.read(ctx.config, caps[0].offset)
    index = next((b.index for b in layout.selective_blocks if b.addr_blocks >= 2), None)
    if index is None:
        raise NotApplicable("no Selective IDE Stream has two Address Association blocks")
    async with _km(ctx) as km:
        _, check = await _requests_setup(ctx, km, dma, [[REGION_B, REGION_C]], indexes=(index,))
        for address in (REGION_C + 0x40, REGION_B, REGION_C + MB - 4, REGION_OUT):
            await check.write(address, size=16 if address != REGION_C + MB - 4 else 4)
        ctx.measure("device_writes_checked", check.checked, "", low=4)


@vector(
    "ide.requests.default_stream",
    title="A device write that no Address Association holds goes on the Default Stream; one a "
    "range holds goes on that range's stream",
    spec=f"PCIe 6.x {REQUEST_SPEC}: for a TLP not already associated with any other Stream, "
    "the Default Stream bit must be Set",
    needs=REQUEST_NEEDS,
)
async def requests_default_stream(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    async with _km(ctx) as km:
        _, check = await _requests_setup(
            ctx, km, dma, [[REGION_A], []], control=(0, SEL_CTL_DEFAULT)
        )
        for address in (REGION_OUT, REGION_A + 0x80, REGION_B):
            await check.write(address)
        ctx.measure("device_writes_checked", check.checked, "", low=3)


@vector(
    "ide.requests.tee_limited",
    title="On a TEE-Limited stream only the device's T=1 writes take the range; its T=0 writes "
    "go as non-IDE TLPs",
    spec=f"PCIe 6.x {REQUEST_SPEC}: Requests that otherwise would be associated with this "
    "Selective IDE Stream and have the T bit Clear must be Transmitted as non-IDE TLPs if Link "
    "IDE is not enabled",
    needs=REQUEST_NEEDS,
)
async def requests_tee_limited(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    cap = await config_ide_capability(ctx)
    if cap is not None and not cap & CAP_TEE_LIMITED:
        raise NotApplicable(f"the IDE Capability ({cap:#010x}) does not advertise TEE-Limited")
    async with _km(ctx) as km:
        _, check = await _requests_setup(ctx, km, dma, [[REGION_A]], control=(SEL_CTL_TEE_LIMITED,))
        for t in (True, False, True):
            await check.write(REGION_A + 0x100, t=t)
        ctx.measure("device_writes_checked", check.checked, "", low=3)


@vector(
    "ide.requests.link_fallback",
    title="With a Link IDE Stream and a Selective stream on one TC, the device's writes in the "
    "Selective stream's range go on it and the others on the Link stream",
    spec=f"PCIe 6.x {REQUEST_SPEC}; {LINK_SPEC}: TLPs not associated with any Selective IDE "
    "Stream must use Link IDE",
    needs=REQUEST_NEEDS,
)
async def requests_link_fallback(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    async with _Stream(ctx, link=True) as link:
        selective = root_port(ctx, link.km, STREAM_ID)
        selective.control |= LINK_TC << 19  # the Selective stream on the Link stream's TC
        selective.tc = LINK_TC
        check = _DmaCheck(ctx, dma, [link, selective])
        check.streams = [
            await _associate(ctx, selective, [REGION_A]),
            TxStream(link.index + 1000, enabled=True, tc=LINK_TC, link=True),
        ]
        await selective.establish()
        try:
            await _bus_master(ctx)
            check.function_id = await selective.learn_target()
            ids = {link.index + 1000: link.stream_id}
            for address in (REGION_A + 0x20, REGION_OUT, REGION_A + 0x40):
                await check.write(address, tc=LINK_TC, link_ids=ids)
            await check.write(REGION_OUT, tc=0, link_ids=ids)  # TC0: no stream, plain
            ctx.measure("device_writes_checked", check.checked, "", low=4)
        finally:
            await tidy(ctx, "selective_disable", selective.disable())


@vector(
    "ide.requests.pr_sent_counter",
    title="A completion the device sends after its own Posted writes on the stream carries "
    "their number in PR_Sent_Counter, and 0 when none came between",
    spec="PCIe 6.x §6.33.5: when a Completion is Transmitted, PR_Sent_Counter-CPL goes in its "
    "PR_Sent_Counter field and is then reset to zero",
    needs=REQUEST_NEEDS,
)
async def requests_pr_sent_counter(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    async with _km(ctx) as km:
        (rp,), check = await _requests_setup(ctx, km, dma, [[REGION_A]])
        for writes in (3, 0, 1):
            for n in range(writes):
                await check.write(REGION_A + 0x10 * n)
            req = rp.read_tlp(0x40, 4)
            await rp.port.send(rp.protect(req).encode())
            got = await rp.receive_completion(req)
            ctx.expect(
                got.prefix.pr_sent_counter == writes,
                f"the completion after {writes} device writes carries PR_Sent_Counter "
                f"{got.prefix.pr_sent_counter}",
            )
        ctx.measure("device_writes_checked", check.checked, "", low=4)


@vector(
    "ide.requests.insecure_discarded",
    title="A device write for an enabled stream that has gone Insecure is discarded: it arrives "
    "neither on the stream nor as a non-IDE TLP",
    spec=f"PCIe 6.x {REQUEST_SPEC}: a TLP associated with an enabled Stream in the Insecure "
    "state must be discarded (§6.33.8)",
    needs=REQUEST_NEEDS,
)
async def requests_insecure_discarded(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    async with _km(ctx) as km:
        (rp,), check = await _requests_setup(ctx, km, dma, [[REGION_A]])
        await check.write(REGION_A)  # on the stream while it is Secure
        bad = bytearray(rp.protect(rp.write_tlp(0x100, bytes(8))).encode())
        bad[-1] ^= 1  # a MAC that fails: IDE Check Failed, the stream goes Insecure
        await rp.port.send(bytes(bad))
        await _expect_insecure(ctx, rp, "a write with a bad MAC")
        report = await check.dma.write(REGION_A + 0x200, _SOURCE, 4)
        raw = await rp.port.recv(rp.timeout_s)
        ctx.expect(
            raw is None,
            f"a write for the Insecure stream arrived ({raw[:4].hex() if raw else ''}...; the "
            f"device reports {report})",
        )
        await check.write(REGION_OUT)  # outside the range: still sent, as a non-IDE TLP


@vector(
    "ide.requests.key_refresh",
    title="The device's own writes follow a key refresh: K0 until K_SET_GO of its Tx key set "
    "K1, K1 from then on (and after K_SET_STOP of K0), each decrypted by the root port",
    spec="PCIe 6.x §6.33.3 (key refresh: a transmitter uses the new key set from the K_SET_GO "
    "of its Tx slots), §6.33.4 (K bit)",
    needs=REQUEST_NEEDS,
)
async def requests_key_refresh(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    async with _km(ctx) as km:
        (rp,), check = await _requests_setup(ctx, km, dma, [[REGION_A]])

        async def writes_with(k: int, step: str) -> None:
            for n in range(2):
                await check.write(REGION_A + 0x100 * n)
                got = None if check.prefix is None else check.prefix.k
                ctx.expect(got == k, f"{step}: the device's write came with K={got}, not K{k}")

        await writes_with(0, "K0 established")
        await rp.program(1)
        await rp.go(1, 0)  # the device's Rx slots first: its transmitter stays on K0
        await writes_with(0, "K1 armed for Rx only")
        await rp.go(1, 1)  # its Tx slots: the transmitter switches (§6.33.3)
        rp.key_set = 1
        await writes_with(1, "K1 armed for Tx")
        await rp.stop(0)
        await writes_with(1, "K0 stopped")
        cpl, _ = await rp.read(0, 16)
        ctx.expect(cpl.status == CplStatus.SC, f"the read after the refresh: {cpl.status!r}")
        state = await rp.state()
        ctx.expect(state == STATE_SECURE, f"stream left Secure ({state:04b}) in the refresh")
        ctx.measure("device_writes_checked", check.checked, "", low=8)


async def _reads(ctx: VectorContext, **config: bool) -> None:
    dma = await _dma_engine(ctx)
    stream = _Stream(ctx, **config)  # n/a checks for the variant, and the session
    await stream.check_config()
    async with stream.km_cm as km:
        await stream.check_query(km)
        (rp0, rp1), check = await _requests_setup(ctx, km, dma, [[REGION_A], [REGION_B]], **config)
        writes = dict.fromkeys((rp0.stream_id, rp1.stream_id), 0)  # since each one's last NPR
        for address, dest in (
            (REGION_A + 0x40, 0x900),
            (REGION_B + 0x80, 0x940),  # below 4 GB: a 3 DW header (4 DW with PHE)
            (REGION_OUT, 0x980),  # no range holds it: a non-IDE read
            (REGION_A + 0x20, 0x9C0),
        ):
            data = check.rng.randbytes(32)
            req, rp, got = await check.read(address, dest, len(data))
            if got is not None and rp is not None:
                ctx.expect(
                    got.prefix.pr_sent_counter == writes[rp.stream_id],
                    f"the read on Stream ID {rp.stream_id:#x} carries PR_Sent_Counter "
                    f"{got.prefix.pr_sent_counter}, but {writes[rp.stream_id]} device writes "
                    "went on it since its last Non-Posted Request (PCIe 6.x §6.33.5)",
                )
                writes[rp.stream_id] = 0
            await check.complete(req, rp, data)
            report = await check.dma.wait()
            ctx.expect(
                report.outcome is DmaOutcome.READ_DONE,
                f"the read of {address:#x}: the device reports {report}",
            )
            got_data = await _memory(rp0, dest, len(data))
            ctx.expect(got_data == data, f"BAR0 + {dest:#x} does not hold the read's data")
            await check.write(REGION_A + 0x200)  # counted in stream 0's next read
            writes[rp0.stream_id] += 1
        ctx.measure("device_requests_checked", check.checked, "", low=8)


(requests_read, requests_read_pcrc, requests_read_phe) = _with_variants(
    "ide.requests.read",
    title="The device's own Memory Reads go on the stream their address selects (Non-Posted, "
    "PR_Sent_Counter = its writes on the stream since), and the root port's Completion on it "
    "lands in the device's memory",
    spec=f"{REQUEST_SPEC}, §6.33.5 (PR_Sent_Counter-NPR)",
    body=_reads,
    variants={
        "pcrc": "the device's reads and their Completions on streams with PCRC Enable",
        "phe": "the device's reads with the byte enables and Address[17:2] encrypted (their "
        "PCRC-less P content is those fields alone)",
    },
    needs=REQUEST_NEEDS,
)


@vector(
    "ide.requests.read_completion_association",
    title="A Completion for the device's read from a Completer ID outside the stream's RID "
    "association, or on another stream, is an Unexpected Completion: its data does not land; "
    "the right one then completes the read",
    spec=f"PCIe 6.x {REQUEST_SPEC}: a Requester receiving a Completion on a Selective IDE "
    "Stream other than the Default Stream must handle it as an Unexpected Completion if the "
    "Completer ID is outside RID Base..RID Limit; for a Completion the Stream ID must match "
    "the Non-Posted Request's; §2.3.2 (Unexpected Completion)",
    needs=REQUEST_NEEDS,
)
async def requests_read_completion_association(ctx: VectorContext) -> None:
    dma = await _dma_engine(ctx)
    async with _km(ctx) as km:
        (rp0, rp1), check = await _requests_setup(ctx, km, dma, [[REGION_A], [REGION_B]])
        dest = 0xA00
        before = await _memory(rp0, dest, 16)
        req, rp, _ = await check.read(REGION_A + 0x40, dest, 16)
        outside = (rp0.requester_id + 0x0108) & 0xFFFF  # past RID Limit (the root port's RID)
        await check.complete(req, rp, check.rng.randbytes(16), completer=outside)
        await check.complete(req, rp1, check.rng.randbytes(16))  # on the other stream
        after = await _memory(rp0, dest, 16)
        ctx.expect(
            after == before,
            "a Completion from outside the RID association, or on another stream, was taken "
            "(its data is in BAR0)",
        )
        good = check.rng.randbytes(16)
        await check.complete(req, rp, good)
        report = await check.dma.wait()
        ctx.expect(
            report.outcome is DmaOutcome.READ_DONE,
            f"the read after its right Completion: the device reports {report}",
        )
        ctx.expect(await _memory(rp0, dest, 16) == good, "BAR0 does not hold the right data")
        states = (await rp0.state(), await rp1.state())
        ctx.expect(states == (STATE_SECURE, STATE_SECURE), f"stream states {states}")
