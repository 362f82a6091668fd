"""The SCPI power supply driver against a pyvisa-sim instrument."""

from __future__ import annotations

import asyncio

import pytest

from hil.lab.power import SIM_PSU, BoardPower, PowerSupplyError, open_power_supply

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


def test_a_lab_board_power_cycle_restarts_the_firmware_and_is_counted() -> None:
    """BoardPower: the supply cycles, then the controller's firmware starts afresh (the
    board's DSM state is gone) and the event is counted for the run's fault accounting."""
    order: list[str] = []

    async def sleep(s: float) -> None:
        order.append(f"wait {s}")

    psu = open_power_supply(RESOURCE, f"{SIM_PSU}@sim")
    psu.sleep = sleep
    board = BoardPower(psu, lambda: order.append("firmware restarted"))
    assert board.identify().startswith("hil,SIM-PSU-1")
    assert board.voltage() == psu.voltage()  # the supply's own readings pass through
    asyncio.run(board.power_cycle(off_s=0.1, settle_s=0.2))
    assert order == ["wait 0.1", "wait 0.2", "firmware restarted"]
    assert board.events == 1 and psu.output()


def test_a_usb_supply_without_pyusb_says_what_to_install(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_usb(name, *args, **kwargs):
        if name == "usb.core" or name.startswith("usb"):
            raise ImportError("No module named 'usb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_usb)
    with pytest.raises(PowerSupplyError, match="needs PyUSB"):
        open_power_supply("USB0::0x2A8D::0x1002::MY00000001::INSTR")
