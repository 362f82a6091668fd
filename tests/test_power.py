"""The SCPI power supply driver against a pyvisa-sim instrument."""

from __future__ import annotations

import asyncio

import pytest

from hil.lab.power import SIM_PSU, PowerSupplyError, open_power_supply

RESOURCE = "TCPIP::psu.lab::INSTR"


def test_identify_measure_and_power_cycle() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    psu = open_power_supply(RESOURCE, f"{SIM_PSU}@sim")
    psu.sleep = sleep
    assert psu.identify().startswith("hil,SIM-PSU-1")
    assert not psu.output()
    psu.set_voltage(3.3)
    assert psu.voltage() == pytest.approx(3.3)
    assert psu.current() == pytest.approx(0.512)
    psu.set_output(True)
    asyncio.run(psu.power_cycle(off_s=0.5, settle_s=1.5))
    assert psu.output() and waits == [0.5, 1.5]


def test_a_missing_instrument_is_a_clear_error() -> None:
    with pytest.raises(
        PowerSupplyError, match=r"cannot open VISA resource|failed|not a SCPI identity"
    ):
        open_power_supply("TCPIP::nowhere::INSTR", f"{SIM_PSU}@sim")
