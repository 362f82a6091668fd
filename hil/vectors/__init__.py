"""The vector suite: checks written once as async functions, run on any rig that meets them."""

from __future__ import annotations

import importlib
from types import ModuleType

from ._execute import Outcome, Skip, VectorResult, classify, execute, missing_needs
from ._model import KNOWN_NEEDS, Measurement, Vector, VectorContext, vector

__all__ = [
    "KNOWN_NEEDS",
    "Measurement",
    "Outcome",
    "Skip",
    "Vector",
    "VectorContext",
    "VectorResult",
    "classify",
    "default_suite",
    "execute",
    "load_suite",
    "missing_needs",
    "suite_from_modules",
    "vector",
]


def suite_from_modules(*modules: ModuleType) -> dict[str, Vector]:
    """The vectors defined in ``modules``, by id, in definition order."""
    suite: dict[str, Vector] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Vector):
                if value.id in suite:
                    raise ValueError(f"two vectors share the id {value.id}")
                suite[value.id] = value
    return suite


def default_suite() -> dict[str, Vector]:
    """Every vector of the project."""
    from . import doe, ide, ide_km, pcie, power, spdm, tdisp, telemetry, tsm

    return suite_from_modules(pcie, doe, spdm, ide_km, ide, tdisp, tsm, power, telemetry)


def load_suite(modules: list[str] | None = None) -> dict[str, Vector]:
    """The project's suite, or the vectors of the named modules (``pkg.module`` names)."""
    if not modules:
        return default_suite()
    return suite_from_modules(*(importlib.import_module(m) for m in modules))
