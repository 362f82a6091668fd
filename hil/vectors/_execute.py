"""Running one vector and classifying how it ended.  Shared by every rig kind."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import DeviceFailure, NotApplicable, PeerProtocolError
from ._model import Vector, VectorContext

__all__ = ["Outcome", "VectorResult", "classify", "execute", "missing_needs"]


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # the device broke the spec
    ERROR = "error"  # the rig or the vector broke
    SKIP = "skip"
    NA = "n/a"  # the rig lacks what the vector needs


class Skip(Exception):
    """Raised by a vector that decides, with a reason, not to run."""


@dataclass
class VectorResult:
    outcome: Outcome
    message: str = ""
    duration_s: float = 0.0
    measurements: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    #: What the vector learnt about the device (``ctx.facts``), e.g. its identity: JSON values.
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {
            "outcome": str(self.outcome),
            "message": self.message,
            "duration_s": self.duration_s,
            "measurements": self.measurements,
            "artifacts": self.artifacts,
        }
        if self.facts:
            data["facts"] = self.facts
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VectorResult:
        return cls(
            outcome=Outcome(data["outcome"]),
            message=str(data.get("message", "")),
            duration_s=float(data.get("duration_s", 0.0)),
            measurements=list(data.get("measurements", [])),
            artifacts=list(data.get("artifacts", [])),
            facts=dict(data.get("facts") or {}),
        )


def missing_needs(vec: Vector, provides: frozenset[str]) -> frozenset[str]:
    return vec.needs - provides


def classify(exc: BaseException) -> tuple[Outcome, str]:
    """The outcome an exception out of a vector means, and the message to record."""
    if isinstance(exc, NotApplicable):
        return Outcome.NA, str(exc)
    if isinstance(exc, Skip):
        return Outcome.SKIP, str(exc)
    if isinstance(exc, DeviceFailure | AssertionError):
        return Outcome.FAIL, str(exc) or type(exc).__name__
    if isinstance(exc, PeerProtocolError):
        return Outcome.FAIL, f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc)).strip()
    return Outcome.ERROR, f"{type(exc).__name__}: {exc}\n{tb}"


async def execute(vec: Vector, ctx: VectorContext) -> VectorResult:
    """Run ``vec`` in ``ctx``.  Never raises for what the vector does; returns the outcome."""
    missing = missing_needs(vec, ctx.provides)
    if missing:
        return VectorResult(Outcome.NA, f"rig {ctx.rig_name} lacks {', '.join(sorted(missing))}")
    start = time.perf_counter()
    try:
        await vec.fn(ctx)
    except Exception as exc:  # every way a vector can end is a recorded outcome
        outcome, message = classify(exc)
    else:
        bad = [m for m in ctx.measurements if not m.ok]
        if bad:
            outcome = Outcome.FAIL
            message = "; ".join(m.verdict() for m in bad)
        else:
            outcome, message = Outcome.PASS, ""
    return VectorResult(
        outcome,
        message,
        duration_s=time.perf_counter() - start,
        measurements=[m.to_json() for m in ctx.measurements],
        artifacts=list(ctx.artifacts),
        facts=dict(ctx.facts),
    )
