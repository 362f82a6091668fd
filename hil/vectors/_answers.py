"""Saying what a peer answered, for vector messages."""

from __future__ import annotations

from ..codec import spdm as S
from ..errors import DoeTimeout, PeerProtocolError
from ..host.doe import DoeError
from ..host.spdm import SpdmRequester

__all__ = ["answer_in_the_clear", "describe_spdm"]


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


async def answer_in_the_clear(req: SpdmRequester, message: bytes) -> str | None:
    """Send ``message`` as a CMA/SPDM object (in the clear): None when no response object
    came (the deadline passed, or the mailbox set Error instead of answering), otherwise what
    came, for a person.  Anything that came counts, one the host cannot even take (another
    DOE type, a malformed object) included: that too is a response."""
    try:
        raw = await req.send_raw(message)
    except (DoeTimeout, DoeError):
        return None
    except PeerProtocolError as exc:
        return f"a response the host could not take ({exc})"
    return describe_spdm(raw)
