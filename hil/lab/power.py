"""A SCPI bench power supply through pyvisa: identify, output on/off, power-cycle, measure.

The board's supply resets it (power-cycle with settle times) and injects power faults.  Any
SCPI supply that speaks the common subset (``*IDN?``, ``OUTP``, ``VOLT``, ``MEAS:VOLT?``,
``MEAS:CURR?``) works; a pyvisa-sim definition (``sim_psu.yaml`` here) stands in for one in
tests and on the virtual rig.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import RigError

__all__ = [
    "SIM_PSU",
    "BoardPower",
    "PowerSupply",
    "PowerSupplyError",
    "open_power_supply",
    "visa_library",
]

#: The pyvisa-sim library spec for the simulated supply: ``<path>@sim``.
SIM_PSU = str(resources.files("hil.lab") / "sim_psu.yaml")


class PowerSupplyError(RigError):
    """The instrument is missing, does not answer, or answered nonsense."""


@dataclass
class PowerSupply:
    """One output of a SCPI supply (pyvisa resource ``inst``)."""

    inst: object
    name: str = ""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def _query(self, cmd: str) -> str:
        try:
            with warnings.catch_warnings():
                # an absent or mute instrument reads back nothing: reported below, not warned
                warnings.simplefilter("ignore", UserWarning)
                return str(self.inst.query(cmd)).strip()  # type: ignore[attr-defined]
        except Exception as exc:  # pyvisa raises VisaIOError and friends
            raise PowerSupplyError(f"{self.name}: {cmd!r} failed: {exc}") from None

    def _write(self, cmd: str) -> None:
        try:
            self.inst.write(cmd)  # type: ignore[attr-defined]
        except Exception as exc:
            raise PowerSupplyError(f"{self.name}: {cmd!r} failed: {exc}") from None

    def identify(self) -> str:
        idn = self._query("*IDN?")
        if idn.count(",") < 3:
            raise PowerSupplyError(f"{self.name}: *IDN? answered {idn!r}, not a SCPI identity")
        return idn

    def output(self) -> bool:
        return self._query("OUTP?") in ("1", "ON")

    def set_output(self, on: bool) -> None:
        self._write(f"OUTP {1 if on else 0}")
        if self.output() != on:
            raise PowerSupplyError(f"{self.name}: output did not turn {'on' if on else 'off'}")

    def set_voltage(self, volts: float) -> None:
        self._write(f"VOLT {volts:.3f}")

    def voltage(self) -> float:
        return self._number("MEAS:VOLT?")

    def current(self) -> float:
        return self._number("MEAS:CURR?")

    def _number(self, cmd: str) -> float:
        text = self._query(cmd)
        try:
            return float(text)
        except ValueError:
            raise PowerSupplyError(f"{self.name}: {cmd} answered {text!r}") from None

    async def power_cycle(self, *, off_s: float = 1.0, settle_s: float = 2.0) -> None:
        """Output off, wait ``off_s``, on, wait ``settle_s`` for the board to come up."""
        self.set_output(False)
        await self.sleep(off_s)
        self.set_output(True)
        await self.sleep(settle_s)


def visa_library(name: str) -> str:
    """A rig file's ``visa_library``: ``@py`` (pyvisa-py), a pyvisa spec, or ``@sim-psu``,
    the project's simulated supply (``hil/lab/sim_psu.yaml`` under pyvisa-sim)."""
    return f"{SIM_PSU}@sim" if name == "@sim-psu" else name


def open_power_supply(resource: str, library: str | Path = "@py") -> PowerSupply:
    """Open and identify ``resource`` with pyvisa (``@py``: pyvisa-py; ``<yaml>@sim``:
    pyvisa-sim)."""
    import pyvisa

    if resource.upper().startswith("USB") and str(library) == "@py":
        # pyvisa-py reaches USBTMC instruments through PyUSB (and libusb), which it does not
        # install itself.
        try:
            import usb.core  # noqa: F401
        except ImportError:
            raise PowerSupplyError(
                f"VISA resource {resource!r} is a USB instrument: pyvisa-py needs PyUSB for "
                "it (pip install 'hil[lab]', and Debian's libusb-1.0-0)"
            ) from None
    try:
        rm = pyvisa.ResourceManager(str(library))
        inst = rm.open_resource(resource, read_termination="\n", write_termination="\n")
    except Exception as exc:
        raise PowerSupplyError(f"cannot open VISA resource {resource!r}: {exc}") from None
    inst.timeout = 2000
    psu = PowerSupply(inst, name=resource)
    psu.identify()  # an instrument that does not answer is caught here, not mid-vector
    return psu


class BoardPower:
    """A lab rig's bench supply as the board sees it: a power cycle also restarts the device
    firmware on the lab controller (the DSM's sessions and keys went with the board's power)
    and is counted, so a vector that fails under it is recorded as the rig's doing."""

    def __init__(self, psu: PowerSupply, on_cycle: Callable[[], None] | None = None) -> None:
        self.psu = psu
        self.on_cycle = on_cycle
        self.events = 0

    def identify(self) -> str:
        return self.psu.identify()

    def __getattr__(self, name: str) -> object:  # measure(), set_output(), ... as the supply's
        return getattr(self.psu, name)

    async def power_cycle(self, *, off_s: float = 1.0, settle_s: float = 2.0) -> None:
        self.events += 1
        await self.psu.power_cycle(off_s=off_s, settle_s=settle_s)
        if self.on_cycle is not None:
            self.on_cycle()
