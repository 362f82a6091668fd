"""The vector suite: checks written once as async functions, run on any rig that meets them."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
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


def _load_module(spec: str) -> ModuleType:
    """A module by file path (``./my_vectors.py``) or by name (``pkg.module``).

    A name is looked up on the import path and in the current directory, as ``python -m``
    would; a path is loaded from that file.  ImportError says which was tried.
    """
    path = Path(spec).expanduser()
    if spec.endswith(".py") or os.sep in spec:
        if not path.is_file():
            raise ImportError(f"{spec}: no such file")
        name = "hil_user_vectors_" + re.sub(r"\W", "_", str(path.resolve()))
        if name in sys.modules:
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"{spec}: not a Python module file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
        return module
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.append(cwd)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise ImportError(
                f"{spec}: no module of that name on the import path or in {cwd} "
                "(give a file path, e.g. ./my_vectors.py, to load a file)"
            ) from None
        raise


def load_suite(modules: list[str] | None = None) -> dict[str, Vector]:
    """The project's suite, or the vectors of the named modules (names or ``.py`` paths)."""
    if not modules:
        return default_suite()
    loaded = [_load_module(m) for m in modules]
    suite = suite_from_modules(*loaded)
    if not suite:
        raise ValueError(f"{', '.join(modules)} define no vectors (functions decorated @vector)")
    return suite
