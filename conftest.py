"""Test scheduling for ``pytest -n`` (the README's test command).

pytest-xdist hands tests out in collection order.  The suite's cost is dominated by a few dozen
tests that build a simulator or run a whole rig: started last, they leave one core working
alone at the end.  Here the long tests go first, longest first, and the rest (milliseconds
each) fill the gaps; with ``--maxschedchunk`` (pyproject ``addopts``) a worker holds only a
few tests at a time, so the order is kept.  The costs below are rough seconds on 2 cores, for
ordering only; nothing asserts on them.
"""

from __future__ import annotations

import pytest

#: Node-id prefix -> rough cost in seconds.  A prefix without ``::`` covers a whole file.
_COST = {
    "tests/test_virtual_rig.py::test_lab_path_vectors_pass_on_the_virtual_rig": 100,
    "tests/test_sim_rig.py::test_hil_run_sim_rig_passes_everything": 120,
    "tests/test_rig_updown.py::test_rig_up_run_and_down": 40,
    "cocotb_tests/aes_gcm": 33,
    "tests/test_generated.py::test_hil_lint_is_clean": 31,
    "tests/test_virtual_rig.py::test_tsm_vectors_on_a_rig_that_hil_rig_up_holds": 28,
    "tests/test_shard.py::test_three_shards_merge_into_the_records_of_one_run": 26,
    "cocotb_tests/ide_tlp": 24,
    "cocotb_tests/hil_fpga": 24,
    "cocotb_tests/ide_cap": 20,
    "tests/test_virtual_rig.py::test_silence_is_proved_by_the_device_going_idle": 18,
    "tests/test_virtual_rig.py::test_telemetry_vectors_on_the_virtual_rig": 15,
    "tests/test_synth.py": 12,
    "cocotb_tests/uart_bridge": 10,
    "tests/test_serve.py": 8,
    "cocotb_tests": 6,
}


def _cost(nodeid: str) -> int:
    for prefix, cost in _COST.items():
        if nodeid == prefix or nodeid.startswith(prefix + ("::" if "::" not in prefix else "[")):
            return cost
        if "::" not in prefix and nodeid.startswith(prefix + "/"):
            return cost
    return 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first; ties keep their collection order (``sort`` is stable).  A session with
    none of the tests above (``hil run``, ``pytest --rig``: vectors) is left in its order.

    xdist's first hand-out gives worker 1 items 0-1 and worker 2 items 2-3 (two each with
    ``--maxschedchunk=2``), so items 1 and 3 trade places: each worker starts with one of the
    two longest tests and one of the next two."""
    costs = {item.nodeid: _cost(item.nodeid) for item in items}
    if not any(costs.values()):
        return  # not this project's tests (a vector run through pytest): its order stands
    items.sort(key=lambda item: -costs[item.nodeid])
    if len(items) >= 4 and all(costs[item.nodeid] for item in items[:4]):
        items[1], items[3] = items[3], items[1]
