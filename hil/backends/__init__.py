"""How each rig kind runs one vector: one module per kind behind :class:`Backend`.

- ``sim`` (:mod:`.sim`): one Verilator simulation per vector, from a cached build;
- ``fake`` (:mod:`.fake`): asyncio, in this process, against :mod:`hil.fake`;
- ``spdm-socket`` (:mod:`.socket`): asyncio, to a responder on the spdm-emu socket protocol;
- ``lab`` and ``virtual`` (:mod:`.lab`): a Linux host's sysfs, or the virtual rig's FUSE tree.

A new kind is one module with a :class:`Backend` subclass and one line in :data:`KIND_BACKENDS`.
Modules are imported when a rig of their kind is used, so a fake run never loads cocotb.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import RigError
from ..rigs import Rig
from ._base import Backend, keep_artifacts

__all__ = ["KIND_BACKENDS", "Backend", "backend_for", "keep_artifacts"]

#: Rig kind -> "module:class" of its backend, relative to this package.
KIND_BACKENDS = {
    "sim": "sim:SimBackend",
    "fake": "fake:FakeBackend",
    "spdm-socket": "socket:SocketBackend",
    "lab": "lab:LabBackend",
    "virtual": "lab:LabBackend",
}


def _class(spec: str) -> type[Backend]:
    module, name = spec.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def backend_for(rig: Rig, vector_modules: list[str] | None = None) -> Backend:
    spec = KIND_BACKENDS.get(rig.kind)
    if spec is None:
        raise RigError(f"rig {rig.name}: no backend for kind {rig.kind!r}")
    return _class(spec)(rig, vector_modules)


def __getattr__(name: str) -> Any:
    """``from hil.backends import SimBackend`` and the like, loaded on use."""
    for spec in KIND_BACKENDS.values():
        if spec.endswith(":" + name):
            return _class(spec)
    raise AttributeError(name)
