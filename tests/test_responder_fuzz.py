"""The device firmware fed random and mutated requests: no crash, no hang, still serving."""

from __future__ import annotations

import asyncio
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.codec import spdm as S
from hil.codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from hil.firmware import Dsm, FirmwareTransport
from hil.host.spdm import SpdmRequester


def _valid_requests(dsm: Dsm) -> list[bytes]:
    """Well-formed requests of the whole flow, recorded from a real exchange."""
    seen: list[bytes] = []
    original = dsm.handle

    async def tap(obj: DataObject) -> DataObject | None:
        if obj.type == DoeType.CMA_SPDM:
            seen.append(obj.payload)
        return await original(obj)

    dsm.handle = tap  # type: ignore[method-assign]
    req = SpdmRequester(FirmwareTransport(dsm))
    asyncio.run(req.authenticate())
    asyncio.run(req.get_measurements())
    dsm.handle = original  # type: ignore[method-assign]
    return seen


async def _feed(dsm: Dsm, payload: bytes, dtype: int) -> None:
    rsp = await asyncio.wait_for(dsm.handle(DataObject(PCI_SIG_VENDOR_ID, dtype, payload)), 5)
    if dtype == DoeType.CMA_SPDM:
        assert rsp is not None, "every CMA/SPDM request gets an answer (ERROR at worst)"
        header = S.peek_header(rsp.payload)
        assert header.code in {c.value for c in S.ResponseCode}


def _requests_13() -> list[bytes]:
    """A 1.3 flow's requests (hil's requester speaks 1.2), built from the codec."""
    v = S.SpdmVersion.V13
    return [
        S.GetVersion().encode(),
        S.GetCapabilities(
            version=v,
            flags=S.CapFlag.CERT | S.CapFlag.CHAL | S.CapFlag.ENCRYPT | S.CapFlag.KEY_EX,
            data_transfer_size=4096,
            max_spdm_msg_size=4096,
        ).encode(),
        S.NegotiateAlgorithms(
            version=v,
            other_params=S.OtherParams.OPAQUE_FMT1,
            base_asym_algo=S.BaseAsymAlgo.ECDSA_P384,
            base_hash_algo=S.BaseHashAlgo.SHA_384,
            alg_structs=(
                S.AlgStruct(S.AlgType.DHE, S.DheGroup.SECP384R1),
                S.AlgStruct(S.AlgType.AEAD, S.AeadSuite.AES_256_GCM),
                S.AlgStruct(S.AlgType.KEY_SCHEDULE, S.KeySchedule.SPDM),
            ),
        ).encode(),
        S.GetDigests(version=v).encode(),
        S.GetCertificate(version=v, length=512, slot_size_requested=True).encode(),
        S.Challenge(version=v, nonce=bytes(32), requester_context=bytes(8)).encode(),
        S.GetMeasurements(
            version=v,
            signature_requested=True,
            nonce=bytes(32),
            requester_context=bytes(8),
        ).encode(),
    ]


def test_thousands_of_mutated_1_3_requests() -> None:
    dsm = Dsm(hdl_build="fuzz-13")
    corpus = _requests_13()
    rng = random.Random(1313)

    async def storm() -> None:
        for _ in range(2000):
            if rng.random() < 0.05:  # now and then a clean connection, to reach later states
                for raw in corpus[:3]:
                    await _feed(dsm, raw, DoeType.CMA_SPDM)
            data = bytearray(rng.choice(corpus))
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(data))
                data[pos] ^= 1 << rng.randrange(8)
            await _feed(dsm, bytes(data), DoeType.CMA_SPDM)

    asyncio.run(storm())
    assert dsm.spdm.errors_sent > 100
    _still_serves(dsm)


def _still_serves(dsm: Dsm) -> None:
    req = SpdmRequester(FirmwareTransport(dsm))
    asyncio.run(req.authenticate())


def test_thousands_of_mutated_requests() -> None:
    dsm = Dsm(hdl_build="fuzz")
    corpus = _valid_requests(dsm)
    rng = random.Random(1234)

    async def storm() -> None:
        for _ in range(3000):
            data = bytearray(rng.choice(corpus))
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(3)
                pos = rng.randrange(len(data) + 1)
                if op == 0 and data:
                    data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
                elif op == 1:
                    data[pos:pos] = bytes([rng.randrange(256)])
                elif data:
                    del data[min(pos, len(data) - 1)]
            dtype = DoeType.CMA_SPDM if rng.random() < 0.9 else DoeType.SECURED_CMA_SPDM
            await _feed(dsm, bytes(data), dtype)

    asyncio.run(storm())
    assert dsm.spdm.errors_sent > 100  # the storm was mostly refused, with ERROR answers
    _still_serves(dsm)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from([DoeType.CMA_SPDM, DoeType.SECURED_CMA_SPDM]))
def test_random_bytes(payload: bytes, dtype: int) -> None:
    asyncio.run(_feed(_DSM, payload, dtype))
    # ...and a GET_VERSION right after is answered with VERSION.
    rsp = asyncio.run(_DSM.handle(DataObject(PCI_SIG_VENDOR_ID, 1, b"\x10\x84\x00\x00")))
    assert rsp is not None and rsp.payload[1] == S.ResponseCode.VERSION


_DSM = Dsm(hdl_build="fuzz-random")
