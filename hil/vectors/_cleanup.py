"""Clean-up on a vector's way out: it is tried, and what goes wrong is recorded, never judged.

A vector that leaves a long-lived device (a lab board, a peer on a socket) as it found it
STOPs the TDI and ends its session on the way out.  Those steps are housekeeping, not checks:
the verdict is the vector body's alone.  A clean-up step that fails is logged and counted as a
limitless measurement (``cleanup_<step>_failed``), which a report shows and a verdict ignores.
Whether a device must accept the step (STOP in CONFIG_UNLOCKED, say) is a vector of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from ._model import VectorContext

__all__ = ["tidy"]

_T = TypeVar("_T")


async def tidy(ctx: VectorContext, step: str, awaitable: Awaitable[_T]) -> _T | None:
    """Await one clean-up ``step``; its result, or None (logged and counted) if it failed."""
    try:
        return await awaitable
    except Exception as err:  # housekeeping: whatever went wrong, the verdict stands
        ctx.log.warning("clean-up %s failed (no effect on the verdict): %s", step, err)
        ctx.measure(f"cleanup_{step}_failed", 1, "")
        return None
