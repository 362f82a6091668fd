"""What the device's side saw a TSM do, where the device firmware runs on the lab controller.

On the FPGA board (and the virtual rig) the firmware runs here, between the board's DSM port and
its firmware register port, so this side sees what no host interface shows: how many SPDM
sessions the firmware established (KEY_EXCHANGE_RSP objects it sent, in the clear on the CMA
channel), and how many DW it wrote into the hardware's key slots (register writes to the key
region, 0x800-0xFFF; counted, never recorded).  That is how a vector shows that a reconnect ran
a fresh session with freshly programmed keys without reading a key.

It can also make the device fail IDE_KM part way: after ``n`` whole key slots, further key-slot
writes are dropped before they reach the hardware, so the slot is not loaded and the firmware
answers that KEY_PROG with a failure status (KP_ACK, PCIe 6.x §6.33.3), as a device whose key
store broke would.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

from ..codec.doe import PCI_SIG_VENDOR_ID, DataObject, DoeType
from ..codec.spdm import ResponseCode
from ..firmware.regs import FirmwareRegisterPort

__all__ = ["FirmwareTap", "TappedPort"]

KEY_REGION = range(0x800, 0x1000)
SLOT_DW = 10  # 8 key DW, 2 IFV DW
Firmware = Callable[[DataObject], Awaitable[DataObject | None]]


class FirmwareTap:
    """Counters and the IDE_KM fault, shared by the firmware's wrappers (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sessions_established = 0
        self.key_slot_dw_written = 0
        self.key_slot_dw_dropped = 0
        self._fail_after_dw: int | None = None  # key DW still let through while failing

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                "sessions_established": self.sessions_established,
                "key_slot_dw_written": self.key_slot_dw_written,
                "key_slot_dw_dropped": self.key_slot_dw_dropped,
            }

    def fail_key_slot_writes_after(self, slots: int | None) -> None:
        """From now on, let ``slots`` whole key slots through, then drop key-slot writes
        (None: stop failing)."""
        with self._lock:
            self._fail_after_dw = None if slots is None else SLOT_DW * max(0, int(slots))

    def _key_write(self) -> bool:
        """Count one key-slot DW write; whether it reaches the hardware."""
        with self._lock:
            if self._fail_after_dw is not None:
                if self._fail_after_dw == 0:
                    self.key_slot_dw_dropped += 1
                    return False
                self._fail_after_dw -= 1
            self.key_slot_dw_written += 1
            return True

    def port(self, inner: FirmwareRegisterPort) -> TappedPort:
        return TappedPort(inner, self)

    def firmware(self, inner: Firmware) -> Firmware:
        """``inner`` with its established sessions counted."""

        async def handle(request: DataObject) -> DataObject | None:
            response = await inner(request)
            if (
                response is not None
                and (response.vendor_id, response.type) == (PCI_SIG_VENDOR_ID, DoeType.CMA_SPDM)
                and len(response.payload) >= 2
                and response.payload[1] == ResponseCode.KEY_EXCHANGE_RSP
            ):
                with self._lock:
                    self.sessions_established += 1
            return response

        return handle


class TappedPort(FirmwareRegisterPort):
    """The firmware's register port with key-slot writes counted (and dropped when failing)."""

    def __init__(self, inner: FirmwareRegisterPort, tap: FirmwareTap) -> None:
        self.inner = inner
        self.tap = tap

    async def read(self, addr: int) -> int:
        return await self.inner.read(addr)

    async def write(self, addr: int, value: int) -> None:
        if addr in KEY_REGION and not self.tap._key_write():
            return
        await self.inner.write(addr, value)
