"""Field checks shared by the codecs."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, TypeVar

from ..errors import LocalProtocolError, PeerProtocolError

__all__ = ["build", "known", "uint"]

_T = TypeVar("_T")


def uint(name: str, value: int, bits: int) -> None:
    """Refuse to encode a field that is not an unsigned ``bits``-bit integer."""
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise LocalProtocolError(f"{name} = {value!r} is not a {bits}-bit unsigned value")


def known(enum: type[IntEnum], value: int) -> int:
    """``value`` as a member of ``enum`` when it is one (nicer reprs), else the plain int."""
    try:
        return enum(value)
    except ValueError:
        return value


def build(cls: type[_T], error: type[PeerProtocolError], name: str, **fields: Any) -> _T:
    """Construct a decoded object; a value the constructor refuses is the peer's fault."""
    try:
        return cls(**fields)
    except LocalProtocolError as exc:
        raise error(f"{name}: {exc}") from None
