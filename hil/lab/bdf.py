"""PCI addresses, validated before any path is built from them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RigConfigError

__all__ = ["Bdf"]

_BDF = re.compile(r"^([0-9a-f]{4,5}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$")


@dataclass(frozen=True, order=True)
class Bdf:
    """Domain:Bus:Device.Function, as Linux names PCI devices (``0000:01:00.0``)."""

    domain: int
    bus: int
    device: int
    function: int

    @classmethod
    def parse(cls, text: str) -> Bdf:
        m = _BDF.match(text.strip().lower()) if isinstance(text, str) else None
        if not m:
            raise RigConfigError(f"{text!r} is not a PCI address of the form DDDD:BB:DD.F")
        domain, bus, device, function = (int(g, 16) for g in m.groups())
        if device > 0x1F:
            raise RigConfigError(f"{text!r}: device number {device:#x} is above 1f")
        return cls(domain, bus, device, function)

    @property
    def requester_id(self) -> int:
        """The 16-bit Requester ID (bus, device, function): TDISP's FUNCTION_ID RID."""
        return (self.bus << 8) | (self.device << 3) | self.function

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.device:02x}.{self.function}"
