"""Saying what a peer answered, for vector messages."""

from __future__ import annotations

from ..codec import spdm as S

__all__ = ["describe_spdm"]


def describe_spdm(raw: bytes) -> str:
    """A plain SPDM message for a person: its response code (and ERROR code), then its start."""
    if len(raw) < 4:
        return f"{len(raw)} bytes {raw.hex()}"
    try:
        name = S.ResponseCode(raw[1]).name
    except ValueError:
        name = f"code {raw[1]:#04x}"
    if raw[1] == S.ResponseCode.ERROR:
        try:
            name += f" {S.ErrorCode(raw[2]).name}"
        except ValueError:
            name += f" {raw[2]:#04x}"
    return f"{name} ({raw[:8].hex()})"
