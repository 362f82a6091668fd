"""hil_ep behind the hard-IP model: enumeration, the capability walk, and the DSM port.

The root complex (cocotbext-pcie) reaches the HDL only through CfgRd0/CfgWr0 TLPs and the
cfg_ext_* interface; the DSM port is served by a firmware model that answers each object with a
digest of it, so every byte the host wrote is checked on the way out and on the way back.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import cocotb
from cocotb.triggers import Timer

from hil import _regs as R
from hil.codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from hil.host import DoeMailbox, walk_ext_capabilities
from hil.sim.harness import EndpointHarness

SEED = int(os.environ.get("HIL_SEED", "1"))


async def digest_firmware(request: DataObject) -> DataObject:
    """Answers with the request's SHA-256 followed by its payload reversed."""
    await Timer(random.randint(0, 200), "ns")
    payload = hashlib.sha256(request.encode()).digest() + request.payload[::-1]
    return DataObject(request.vendor_id, request.type, payload)


def expected_answer(request: DataObject) -> bytes:
    """Computed from the request as the host built it: the firmware sees it DW-padded."""
    padded = request.payload + bytes(-len(request.payload) % 4)
    body = hashlib.sha256(request.encode()).digest() + padded[::-1]
    return body + bytes(-len(body) % 4)


async def mailbox(harness: EndpointHarness) -> DoeMailbox:
    mbx = DoeMailbox(
        harness.config, R.DOE_CAP_OFFSET, harness.timebase, timeout_s=1e-3, poll_interval_s=1e-7
    )
    await mbx.init()
    return mbx


@cocotb.test()
async def enumerates_and_walks_to_doe(dut) -> None:
    harness = await EndpointHarness.start(dut)
    vid_did = await harness.config.read32(0)
    assert vid_did & 0xFFFF == 0x10EE, f"vendor/device {vid_did:#010x}"
    caps = await walk_ext_capabilities(harness.config)
    assert [(c.cap_id, c.offset) for c in caps] == [
        (0x0001, 0x100),
        (0x0003, caps[1].offset),
        (R.DOE_CAP_ID, R.DOE_CAP_OFFSET),
        (R.IDE_CAP_ID, R.IDE_CAP_OFFSET),
    ], caps
    assert caps[2].version == R.DOE_CAP_VERSION and caps[3].version == R.IDE_CAP_VERSION
    # Reads outside the window come from the hard IP, never from user logic.
    assert await harness.config.read32(caps[1].offset + 4) == 0x1D5EC0DE
    assert harness.hardip.cfg_ext_timeouts == 0


@cocotb.test()
async def dsm_port_carries_objects_both_ways(dut) -> None:
    random.seed(SEED)
    harness = await EndpointHarness.start(dut, firmware=digest_firmware, dsm_backpressure=0.3)
    mbx = await mailbox(harness)
    sizes = [0, 1, 3, 4, 5, 63, 64, 255, 1000, 4000]
    for i, size in enumerate(sizes):
        dtype = DoeType.CMA_SPDM if i % 2 == 0 else DoeType.SECURED_CMA_SPDM
        request = DataObject(PCI_SIG_VENDOR_ID, dtype, random.randbytes(size))
        response = await mbx.exchange(request)
        assert response.type == dtype
        assert response.payload == expected_answer(request), f"payload size {size}"
        assert harness.dsm.requests[-1].payload == request.payload + bytes(-size % 4)
    assert len(harness.dsm.requests) == len(sizes)
    assert harness.dsm.malformed == 0


@cocotb.test()
async def abort_reaches_the_firmware(dut) -> None:
    held: list[DataObject] = []

    async def stuck_firmware(request: DataObject) -> DataObject | None:
        held.append(request)
        return None  # never answers: the host has to abort

    harness = await EndpointHarness.start(dut, firmware=stuck_firmware)
    mbx = await mailbox(harness)
    await mbx.send(DataObject(PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM, b"\x10\x84\x00\x00"))
    await Timer(2, "us")
    assert len(held) == 1
    assert not (await mbx.status()).ready
    await mbx.abort()
    assert harness.dsm.aborts >= 1
    rsp = await mbx.discover_one(1)
    assert (rsp.vendor_id, rsp.type) == (PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM)


@cocotb.test()
async def interrupt_on_ready(dut) -> None:
    harness = await EndpointHarness.start(dut)
    mbx = await mailbox(harness)
    await mbx.enable_interrupts()
    before = harness.msi_count
    await mbx.discover_one(0)
    assert harness.msi_count == before + 1, (before, harness.msi_count)
    st = await mbx.status()
    assert st.int_status
    await harness.config.write32(R.DOE_CAP_OFFSET + R.DOE_STATUS, R.DOE_STATUS_INT_STATUS)
    assert not (await mbx.status()).int_status


@cocotb.test()
async def keys_never_readable_from_the_endpoint(dut) -> None:
    """Every key slot of every stream written with random keys through the firmware port: no
    DW of a key or IFV comes back at any firmware address (the IDE capability's, the TDI's,
    the TLP path's counters, the unmapped ones) or any config register the endpoint answers,
    while a stream is Secure on those keys and after a protected read has used them."""
    from hil.firmware.regs import CMD, command, key_dw, stream_state
    from hil.host.ide_regs import IdeLayout

    harness = await EndpointHarness.start(dut)
    fw = harness.fw_regs
    layout = await IdeLayout.read(harness.config, R.IDE_CAP_OFFSET)
    streams = len(layout.selective_blocks) + len(layout.link_blocks)
    assert streams >= 3, "the endpoint is built with Link IDE: key slots of 3 streams"
    rng = random.Random(SEED)
    secret: set[int] = set()
    for stream in range(streams):
        for slot in range(12):
            for dw in range(10):
                value = rng.getrandbits(32) | 0x0100_0001  # never 0 or a small count
                secret.add(value)
                await fw.write(key_dw(stream, slot, dw), value)
    # Stream 0 Secure on key set 0: Stream ID, RID association V, Enable; GO on six slots.
    block = layout.selective_blocks[0]
    await harness.config.write32(block.rid2, 1)  # RID Association 2: V
    await harness.config.write32(block.control, (0x21 << 24) | 1)
    for slot in (0, 2, 4, 6, 8, 10):
        await fw.write(CMD, command(1, 0, ((slot >> 2) << 4) | (slot & 3)))
        assert await fw.read(CMD) == 0
    assert (await fw.read(stream_state(0))) & 0xF == 0b0010
    leaks = []
    for addr in range(0x1000):
        if await fw.read(addr) in secret:
            leaks.append(f"fw {addr:#05x}")
    for offset in range(R.CFG_EXT_BASE_REG * 4, (R.CFG_EXT_BASE_REG + R.CFG_EXT_NUM_REGS) * 4, 4):
        if await harness.config.read32(offset) in secret:
            leaks.append(f"cfg {offset:#05x}")
    assert not leaks, f"key material readable at {leaks}"


@cocotb.test()
async def flr_resets_the_function(dut) -> None:
    """Initiate FLR in Device Control: the IDE stream leaves Secure with its keys gone, the
    DOE mailbox is idle again, and cfg_flr_done answered the hard IP."""
    from hil.firmware.regs import key_dw, stream_slots

    harness = await EndpointHarness.start(dut)
    fw = harness.fw_regs
    for dw in range(10):
        await fw.write(key_dw(0, 0, dw), 0x1234_5678 + dw)
    assert (await fw.read(stream_slots(0))) >> 16 & 1  # slot 0 loaded
    pcie = harness.hardip.pcie_cap.offset * 4
    control = await harness.config.read32(pcie + 8)
    await harness.config.write32(pcie + 8, (control & 0xFFFF) | 1 << 15)
    await Timer(1, "us")
    assert harness.hardip.flr_count == 1
    assert int(dut.cfg_flr_in_process_i.value) == 0, "the model never saw cfg_flr_done"
    assert (await fw.read(stream_slots(0))) == 0, "keys survived the FLR"
    mbx = await mailbox(harness)  # the mailbox answers again
    request = DataObject(PCI_SIG_VENDOR_ID, DoeType.DISCOVERY, bytes(4))
    assert (await mbx.exchange(request)).type == DoeType.DISCOVERY


def test_hil_ep() -> None:
    """pytest entry: build hil_ep (cached) and run the cocotb tests above."""
    from hil.sim import ENDPOINT_TOP, build_hdl, rtl_sources, run_cocotb_tests

    params = {"DOE_WR_DEPTH_DW": 1024, "DOE_RD_DEPTH_DW": 1024}
    build = build_hdl(ENDPOINT_TOP, rtl_sources(ENDPOINT_TOP), params)
    run_cocotb_tests(ENDPOINT_TOP, build, "test_hil_ep", Path(__file__).parent, seed=SEED)
