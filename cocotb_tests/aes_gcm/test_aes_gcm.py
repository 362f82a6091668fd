"""Block tests of the AES-256-GCM engine (``hdl/aes_gcm``) against ``cryptography``.

The model is ``cryptography``'s AES-GCM: ``AESGCM`` for encryption and full tags, the ``GCM``
mode object with ``min_tag_length=12`` for 96-bit tags. It knows nothing of the RTL. Every
output beat (text blocks, then the tag beat) is checked in order by cocotb-bus's ``Scoreboard``
through a ``BusMonitor`` on the ``m_*`` port; the input is driven with random gaps and the
output with random back-pressure. Inputs are driven and outputs sampled on the falling edge.

The published AES-256 cases of the GCM specification (McGrew and Viega, test cases 13 to 16,
96-bit IVs) are checked as known answers first, then random packets: random keys and IVs,
0..64 bytes of AAD, 0..300 bytes of payload, both directions, both tag lengths, and tampered
ciphertext, AAD, tag, IV or key on decryption (``m_tag_ok_o`` must drop).

Run with ``python -m pytest cocotb_tests/aes_gcm`` (one cached Verilator build per parameter
set); ``AES_GCM_SEED`` overrides the per-test seeds, ``AES_GCM_PACKETS`` the random count.
``AES_GCM_NETLIST=<file>`` runs them on Yosys's elaboration of the engine instead of the RTL
(written by ``hdl/aes_gcm/synth.py --netlist``; use ``-k default``, it has OUT_DEPTH 32).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from cocotb_bus.monitors import BusMonitor
from cocotb_bus.scoreboard import Scoreboard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Beat kinds on s_kind_i (hdl/aes_gcm/README.md).
KIND_HDR, KIND_AAD, KIND_TEXT = 0, 1, 2
BLOCK = 16
TAG_FULL, TAG_IDE = 16, 12  # bytes: the GCM tag and the IDE MAC (first 96 bits)

CLOCK_NS = 10
OUT_DEPTH = int(os.environ.get("AES_GCM_OUT_DEPTH", "32"))
LOG = logging.getLogger("cocotb.test")

# Latency in clocks stated in hdl/aes_gcm/README.md: from the header beat to the first text
# beat out, and from the packet's last input beat to its tag beat out (no gaps, no stalls).
FIRST_OUT_LATENCY = 18
TAG_LATENCY = 18


def seed_for(name: str) -> int:
    """Fixed seed per test (overridable with AES_GCM_SEED); printed so failures reproduce."""
    seed = int(os.environ.get("AES_GCM_SEED", "0")) or zlib.crc32(name.encode())
    LOG.info("%s: seed %d", name, seed)
    return seed


###########
# Model   #
###########


@dataclass(frozen=True)
class Packet:
    """One engine job: ``text`` is plaintext to encrypt or ciphertext to decrypt."""

    key: bytes
    iv: bytes
    aad: bytes
    text: bytes
    decrypt: bool = False
    tag_len: int = TAG_FULL
    expected_tag: bytes = b""  # decryption only: the received tag (tag_len bytes)


@dataclass(frozen=True)
class OutBeat:
    """One beat on the output port, bytes in stream order."""

    data: bytes  # 16 bytes, zero past keep
    keep: int
    last: bool
    tag_ok: bool

    def __repr__(self) -> str:
        return (
            f"OutBeat(data={self.data.hex()}, keep={self.keep:#06x}, last={int(self.last)}, "
            f"tag_ok={int(self.tag_ok)})"
        )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _keep(n: int) -> int:
    return (1 << n) - 1


def tag_verifies(pkt: Packet) -> bool:
    """Does ``expected_tag`` authenticate (aad, text) under key and IV? (SP 800-38D §7.2)"""
    if pkt.tag_len == TAG_FULL:
        try:
            AESGCM(pkt.key).decrypt(pkt.iv, pkt.text + pkt.expected_tag, pkt.aad)
        except InvalidTag:
            return False
        return True
    dec = Cipher(
        algorithms.AES(pkt.key), modes.GCM(pkt.iv, pkt.expected_tag, min_tag_length=pkt.tag_len)
    ).decryptor()
    dec.authenticate_additional_data(pkt.aad)
    dec.update(pkt.text)
    try:
        dec.finalize()
    except InvalidTag:
        return False
    return True


def model(pkt: Packet) -> tuple[bytes, bytes, bool]:
    """(text out, full 16-byte tag over (aad, ciphertext), tag_ok) as cryptography computes."""
    gcm = AESGCM(pkt.key)
    if not pkt.decrypt:
        sealed = gcm.encrypt(pkt.iv, pkt.text, pkt.aad)
        return sealed[:-TAG_FULL], sealed[-TAG_FULL:], False
    # CTR keystream: the ciphertext of zeros; then the tag is the one sealing the plaintext.
    keystream = gcm.encrypt(pkt.iv, bytes(len(pkt.text)), b"")[: len(pkt.text)]
    plain = _xor(pkt.text, keystream)
    sealed = gcm.encrypt(pkt.iv, plain, pkt.aad)
    assert sealed[:-TAG_FULL] == pkt.text
    return plain, sealed[-TAG_FULL:], tag_verifies(pkt)


def expected_beats(pkt: Packet) -> list[OutBeat]:
    out, tag, ok = model(pkt)
    beats = []
    for i in range(0, len(out), BLOCK):
        chunk = out[i : i + BLOCK]
        beats.append(OutBeat(chunk.ljust(BLOCK, b"\0"), _keep(len(chunk)), False, False))
    mac = tag[: pkt.tag_len]
    beats.append(OutBeat(mac.ljust(BLOCK, b"\0"), _keep(pkt.tag_len), True, ok))
    return beats


def seal(key: bytes, iv: bytes, aad: bytes, plain: bytes, tag_len: int) -> tuple[bytes, bytes]:
    sealed = AESGCM(key).encrypt(iv, plain, aad)
    return sealed[:-TAG_FULL], sealed[-TAG_FULL:][:tag_len]


##################
# Input beats    #
##################


def _le(data: bytes) -> int:
    return int.from_bytes(data, "little")


def input_beats(pkt: Packet, rng: random.Random) -> list[dict[str, int]]:
    """The packet as input beats; fields a beat does not use carry random junk."""

    def junk(nbytes: int) -> int:
        return rng.getrandbits(8 * nbytes)

    def data_beat(kind: int, chunk: bytes) -> dict[str, int]:
        pad = junk(BLOCK) & ~((1 << (8 * len(chunk))) - 1)  # junk past keep
        return {
            "kind": kind,
            "data": _le(chunk) | pad,
            "keep": _keep(len(chunk)),
            "key": junk(32),
            "iv": junk(12),
            "decrypt": rng.getrandbits(1),
            "tag96": rng.getrandbits(1),
            "tag": junk(16),
            "last": 0,
        }

    beats = [
        {
            "kind": KIND_HDR,
            "data": junk(16),
            "keep": rng.getrandbits(16),
            "key": _le(pkt.key),
            "iv": _le(pkt.iv),
            "decrypt": int(pkt.decrypt),
            "tag96": int(pkt.tag_len == TAG_IDE),
            "tag": junk(16),
            "last": 0,
        }
    ]
    for i in range(0, len(pkt.aad), BLOCK):
        beats.append(data_beat(KIND_AAD, pkt.aad[i : i + BLOCK]))
    for i in range(0, len(pkt.text), BLOCK):
        beats.append(data_beat(KIND_TEXT, pkt.text[i : i + BLOCK]))
    beats[-1]["last"] = 1
    if pkt.decrypt:
        beats[-1]["tag"] = _le(pkt.expected_tag) | (junk(16) << (8 * pkt.tag_len)) % (1 << 128)
    return beats


###############
# Test bench  #
###############


class OutMonitor(BusMonitor):
    """Turns transfers on the ``m_*`` port into ``OutBeat`` transactions.

    Samples on the falling edge, after the bench has driven ``m_ready_i`` for the coming rising
    edge: valid and ready high then means the beat transfers at that edge.
    """

    _signals = {
        "valid": "valid_o",
        "ready": "ready_i",
        "data": "data_o",
        "keep": "keep_o",
        "last": "last_o",
        "tag_ok": "tag_ok_o",
    }

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.cycle = 0
        self.stamps: list[int] = []  # falling-edge index of each transfer
        super().__init__(*args, **kwargs)

    async def _monitor_recv(self) -> None:
        while True:
            await FallingEdge(self.clock)
            await ReadOnly()
            self.cycle += 1
            if self.in_reset or not (self.bus.valid.value and self.bus.ready.value):
                continue
            self.stamps.append(self.cycle)
            self._recv(
                OutBeat(
                    data=self.bus.data.value.to_unsigned().to_bytes(BLOCK, "little"),
                    keep=self.bus.keep.value.to_unsigned(),
                    last=bool(self.bus.last.value),
                    tag_ok=bool(self.bus.tag_ok.value),
                )
            )


class Bench:
    """Clock, reset, input driver with gaps, output back-pressure, monitor and scoreboard."""

    def __init__(self, dut: SimHandleBase, name: str) -> None:
        self.dut = dut
        self.rng = random.Random(seed_for(name))
        self.p_gap = 0.0  # probability of an idle input cycle between beats
        self.p_ready = 1.0  # probability that m_ready_i is high in a cycle
        self.queue: deque[dict[str, int]] = deque()
        self.expected: list[OutBeat] = []
        self.in_stamps: list[int] = []  # falling-edge index of each input transfer
        self.packets = 0
        self.cycle = 0

    async def start(self) -> None:
        dut = self.dut
        Clock(dut.clk_i, CLOCK_NS, unit="ns").start()
        dut.s_valid_i.value = 0
        dut.m_ready_i.value = 0
        for name in ("kind", "last", "data", "keep", "key", "iv", "decrypt", "tag96", "tag"):
            getattr(dut, f"s_{name}_i").value = 0
        dut.rst_ni.value = 0
        await ClockCycles(dut.clk_i, 3)
        await FallingEdge(dut.clk_i)
        dut.rst_ni.value = 1
        self.monitor = OutMonitor(dut, "m", dut.clk_i, reset_n=dut.rst_ni)
        self.scoreboard = Scoreboard(dut, fail_immediately=True)
        self.scoreboard.add_interface(self.monitor, self.expected)
        cocotb.start_soon(self._drive())
        cocotb.start_soon(self._back_pressure())

    def send(self, pkt: Packet) -> None:
        self.expected.extend(expected_beats(pkt))
        self.queue.extend(input_beats(pkt, self.rng))
        self.packets += 1

    async def _drive(self) -> None:
        dut = self.dut
        beat: dict[str, int] | None = None
        while True:
            await FallingEdge(dut.clk_i)
            self.cycle += 1
            ready = bool(dut.s_ready_o.value)  # depends on registers only
            if beat is None and self.queue and self.rng.random() >= self.p_gap:
                beat = self.queue.popleft()
            if beat is None:
                dut.s_valid_i.value = 0
                continue
            for name, value in beat.items():
                getattr(dut, f"s_{name}_i").value = value
            dut.s_valid_i.value = 1
            if ready:  # transfers at the coming rising edge
                self.in_stamps.append(self.cycle)
                beat = None

    async def _back_pressure(self) -> None:
        while True:
            await FallingEdge(self.dut.clk_i)
            self.dut.m_ready_i.value = int(self.rng.random() < self.p_ready)

    async def drain_some(self, keep_queued: int) -> None:
        """Let the input queue shrink to ``keep_queued`` beats (bounded wait)."""
        for _ in range(100_000):
            if len(self.queue) <= keep_queued:
                return
            await FallingEdge(self.dut.clk_i)
        raise AssertionError("input stalled")

    async def drain(self, max_cycles: int = 100_000) -> None:
        """Wait until every expected beat came out, then check that nothing else does."""
        for _ in range(max_cycles):
            if not self.queue and not self.expected:
                break
            await FallingEdge(self.dut.clk_i)
        assert not self.queue, f"{len(self.queue)} input beats never taken"
        assert not self.expected, f"{len(self.expected)} output beats missing: {self.expected[:3]}"
        await ClockCycles(self.dut.clk_i, 40)  # a stray beat would fail the scoreboard here
        assert self.scoreboard.errors == 0
        LOG.info(
            "%d packets, %d beats in, %d beats out, %d cycles",
            self.packets,
            len(self.in_stamps),
            len(self.monitor.stamps),
            self.cycle,
        )


async def new_bench(dut: SimHandleBase, name: str) -> Bench:
    bench = Bench(dut, name)
    await bench.start()
    return bench


###########################
# Published test vectors  #
###########################

# AES-256 cases of "The Galois/Counter Mode of Operation (GCM)", McGrew and Viega, appendix B
# (the vectors NIST published with SP 800-38D): (name, key, IV, AAD, P, C, T).
_K15 = "feffe9928665731c6d6a8f9467308308" * 2
_IV15 = "cafebabefacedbaddecaf888"
_P15 = (
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
_C15 = (
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
)
PUBLISHED: Sequence[tuple[str, str, str, str, str, str, str]] = (
    ("TC13", "00" * 32, "00" * 12, "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    (
        "TC14",
        "00" * 32,
        "00" * 12,
        "",
        "00" * 16,
        "cea7403d4d606b6e074ec5d3baf39d18",
        "d0d1c8a799996bf0265b98b5d48ab919",
    ),
    ("TC15", _K15, _IV15, "", _P15, _C15, "b094dac5d93471bdec1a502270e3cc6c"),
    (
        "TC16",
        _K15,
        _IV15,
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        _P15[:120],
        _C15[:120],
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
)


@cocotb.test()
async def test_published_vectors(dut: SimHandleBase) -> None:
    """GCM spec test cases 13-16, both directions, both tag lengths, and a wrong tag."""
    b = await new_bench(dut, "test_published_vectors")
    for name, *fields in PUBLISHED:
        key, iv, aad, p, c, t = (bytes.fromhex(f) for f in fields)
        # The model must reproduce the published answer before it judges the RTL.
        assert model(Packet(key, iv, aad, p)) == (c, t, False), name
        for tag_len in (TAG_FULL, TAG_IDE):
            b.send(Packet(key, iv, aad, p, tag_len=tag_len))
            b.send(Packet(key, iv, aad, c, True, tag_len, t[:tag_len]))
            wrong = bytes([t[0] ^ 0x80]) + t[1:tag_len]
            b.send(Packet(key, iv, aad, c, True, tag_len, wrong))
    await b.drain()


####################
# Random packets   #
####################

TAMPER = ("text", "aad", "expected_tag", "iv", "key")  # Packet fields flipped on decryption


def random_packet(rng: random.Random, keys: list[bytes]) -> Packet:
    """Random direction, tag length, lengths; decryptions tampered one time in three."""
    key = rng.choice(keys) if keys and rng.random() < 0.3 else rng.randbytes(32)
    keys.append(key)
    iv = rng.randbytes(12)
    aad = rng.randbytes(rng.choice((0, 0, rng.randint(1, 64), 16 * rng.randint(1, 4))))
    text = rng.randbytes(rng.choice((0, rng.randint(1, 300), 16 * rng.randint(1, 18))))
    tag_len = rng.choice((TAG_FULL, TAG_IDE))
    if rng.random() < 0.5:
        return Packet(key, iv, aad, text, False, tag_len)
    ct, tag = seal(key, iv, aad, text, tag_len)
    pkt = Packet(key, iv, aad, ct, True, tag_len, tag)
    if rng.random() < 1 / 3:
        field = rng.choice([f for f in TAMPER if getattr(pkt, f)])
        value = bytearray(getattr(pkt, field))
        value[rng.randrange(len(value))] ^= 1 << rng.randrange(8)
        pkt = dataclasses.replace(pkt, **{field: bytes(value)})
        assert not tag_verifies(pkt), f"tampered {field} still verifies"
    return pkt


@cocotb.test()
async def test_random_packets(dut: SimHandleBase) -> None:
    """Random packets with input gaps and output back-pressure."""
    b = await new_bench(dut, "test_random_packets")
    count = int(os.environ.get("AES_GCM_PACKETS", "2000"))
    keys: list[bytes] = []
    for i in range(count):
        # Change the traffic shape every 250 packets: busy, gappy, throttled, both.
        if i % 250 == 0:
            b.p_gap = b.rng.choice((0.0, 0.0, 0.2, 0.6))
            b.p_ready = b.rng.choice((1.0, 1.0, 0.7, 0.3))
        b.send(random_packet(b.rng, keys))
        if len(b.queue) > 400:  # keep the expected list short for the scoreboard
            await b.drain_some(200)
    await b.drain()


####################################
# Timing: throughput and latency   #
####################################


def _stream(rng: random.Random, blocks: Sequence[tuple[int, int]]) -> list[Packet]:
    return [
        Packet(rng.randbytes(32), rng.randbytes(12), rng.randbytes(16 * a), rng.randbytes(16 * t))
        for a, t in blocks
    ]


@cocotb.test(skip=OUT_DEPTH < 32)
async def test_throughput(dut: SimHandleBase) -> None:
    """One block per clock: a new key per packet costs one clock (the J0 slot), nothing else.

    Needs OUT_DEPTH >= 32 (the default); smaller FIFOs throttle the input by design.
    """
    b = await new_bench(dut, "test_throughput")
    shapes = [(0, 0), (1, 0), (0, 1), (2, 64), (0, 0), (1, 1), (4, 19), (0, 2), (3, 0)] * 4
    packets = _stream(b.rng, shapes)
    for pkt in packets:
        b.send(pkt)
    await b.drain()
    # Input: every beat back to back, except one idle clock after each header.
    headers, stamps = 0, b.in_stamps
    for pkt in packets:
        n = 1 + len(pkt.aad) // BLOCK + len(pkt.text) // BLOCK
        beats = stamps[headers : headers + n]
        assert beats == [beats[0], *range(beats[0] + 2, beats[0] + n + 1)], beats
        headers += n
    assert stamps[-1] - stamps[0] == len(stamps) - 1 + len(packets), "bubbles beyond one a packet"
    # Latency of the long packet: header in -> first text out, last text in -> tag out.
    first = sum(1 + len(p.aad) // BLOCK + len(p.text) // BLOCK for p in packets[:3])
    outs_before = sum(len(p.text) // BLOCK + 1 for p in packets[:3])
    long = packets[3]
    n_in = 1 + len(long.aad) // BLOCK + len(long.text) // BLOCK
    n_out = len(long.text) // BLOCK + 1
    hdr_in, last_in = stamps[first], stamps[first + n_in - 1]
    out = b.monitor.stamps[outs_before : outs_before + n_out]
    LOG.info("latency: first text out %d, tag out %d clocks", out[0] - hdr_in, out[-1] - last_in)
    assert out[0] - hdr_in == FIRST_OUT_LATENCY + len(long.aad) // BLOCK
    assert out[-1] - last_in == TAG_LATENCY
    assert out[:-1] == list(range(out[0], out[0] + n_out - 1)), "text beats not back to back"


@cocotb.test()
async def test_short_packets_back_to_back(dut: SimHandleBase) -> None:
    """Empty and one-block packets with no gaps: a packet's tag overlaps the next one's H."""
    b = await new_bench(dut, "test_short_packets_back_to_back")
    keys: list[bytes] = []
    for i in range(400):
        b.p_ready = 1.0 if i < 200 else 0.5
        key = b.rng.randbytes(32)
        keys.append(key)
        aad = b.rng.randbytes(b.rng.choice((0, 0, 5, 16)))
        text = b.rng.randbytes(b.rng.choice((0, 0, 1, 16)))
        tag_len = b.rng.choice((TAG_FULL, TAG_IDE))
        if b.rng.random() < 0.5:
            b.send(Packet(key, b.rng.randbytes(12), aad, text, tag_len=tag_len))
        else:
            iv = b.rng.randbytes(12)
            ct, tag = seal(key, iv, aad, text, tag_len)
            if b.rng.random() < 0.3:
                tag = bytes([tag[0] ^ 1]) + tag[1:]
            b.send(Packet(key, iv, aad, ct, True, tag_len, tag))
    await b.drain()


@cocotb.test()
async def test_reset_mid_stream(dut: SimHandleBase) -> None:
    """Reset with packets in flight drops them; the next packet comes out whole and right."""
    b = await new_bench(dut, "test_reset_mid_stream")
    b.p_ready = 0.3
    keys: list[bytes] = []
    for _ in range(20):
        b.send(random_packet(b.rng, keys))
    await ClockCycles(dut.clk_i, 60)
    await FallingEdge(dut.clk_i)
    dut.rst_ni.value = 0
    b.queue.clear()
    b.expected.clear()
    dut.s_valid_i.value = 0
    await ClockCycles(dut.clk_i, 2)
    await FallingEdge(dut.clk_i)
    assert not dut.m_valid_o.value, "output valid during reset"
    dut.rst_ni.value = 1
    for _ in range(10):
        b.send(random_packet(b.rng, keys))
    await b.drain()


########################
# pytest entry point   #
########################


def build(parameters: dict[str, int]) -> Path:
    """The cached Verilator build of aes_gcm for ``parameters``.

    With ``AES_GCM_NETLIST`` set, the build is of that Verilog file instead: Yosys's
    elaboration of the engine (``hdl/aes_gcm/synth.py --netlist``), already parametrised.
    """
    from hil.sim import build_hdl, rtl_sources

    netlist = os.environ.get("AES_GCM_NETLIST")
    if netlist:
        return build_hdl("aes_gcm", [Path(netlist).resolve()], {}, waves=False)
    return build_hdl("aes_gcm", rtl_sources("aes_gcm"), parameters)


# (parameters, random packets): the 2-entry FIFO takes one beat per round trip, so fewer.
PARAMETER_SETS = [
    pytest.param({}, 2000, id="default"),
    pytest.param({"OUT_DEPTH": 2}, 500, id="out2"),
]


@pytest.mark.parametrize(("parameters", "packets"), PARAMETER_SETS)
def test_aes_gcm(parameters: dict[str, int], packets: int) -> None:
    """Build aes_gcm for one parameter set (cached) and run the cocotb tests above."""
    from hil.sim import run_cocotb_tests

    run_cocotb_tests(
        "aes_gcm",
        build(parameters),
        Path(__file__).stem,
        Path(__file__).parent,
        extra_env={
            "AES_GCM_OUT_DEPTH": str(parameters.get("OUT_DEPTH", 32)),
            "AES_GCM_PACKETS": os.environ.get("AES_GCM_PACKETS", str(packets)),
        },
    )
