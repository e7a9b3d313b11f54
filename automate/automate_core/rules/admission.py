"""The admission controls of a workflow, as the engine reads them from a version's definition.

``throttle`` (delay, never drop), ``rate_limit`` (drop, recorded as skipped), ``singleton`` (one run
at a time per key) and the hand-off keys ``queue``, ``priority`` and ``fairness``. A definition
carries each key only when the workflow sets it (``execution.controls.load`` validates and
normalises them); a workflow with none of them has ``admission = None`` and takes none of the
admission paths (no query, one attribute test per plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The top-level workflow keys of the admission controls, in the order they are applied.
ADMISSION_KEYS = ("rate_limit", "throttle", "singleton", "queue", "priority", "fairness")


@dataclass(frozen=True, slots=True)
class Throttle:
    limit: int
    period: float  # seconds
    key: str = ""
    burst: int = 1


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    period: float  # seconds
    key: str = ""


@dataclass(frozen=True, slots=True)
class Singleton:
    key: str = ""
    mode: str = "queue"  # queue | skip | cancel


@dataclass(frozen=True, slots=True)
class Admission:
    throttle: Throttle | None = None
    rate_limit: RateLimit | None = None
    singleton: Singleton | None = None
    queue: str | None = None
    priority: int | None = None
    fair_key: str | None = None  # the template of fairness.key

    @property
    def admits(self) -> bool:
        """Whether an event's run passes a control before it is planned (all but the singleton,
        which applies when the run starts)."""
        return self.rate_limit is not None or self.throttle is not None or self.hands_off

    @property
    def hands_off(self) -> bool:
        """Whether the workflow names a queue, a priority or a fairness key (see ``handoff``)."""
        return self.queue is not None or self.priority is not None or self.fair_key is not None


def admission_of(definition: dict[str, Any]) -> Admission | None:
    """The admission controls of a normalised definition, or None when it sets none."""
    if not any(k in definition for k in ADMISSION_KEYS):
        return None
    t, r, s = definition.get("throttle"), definition.get("rate_limit"), definition.get("singleton")
    fairness = definition.get("fairness")
    return Admission(
        throttle=Throttle(t["limit"], float(t["period"]), t.get("key", ""), t.get("burst", 1)) if t else None,
        rate_limit=RateLimit(r["limit"], float(r["period"]), r.get("key", "")) if r else None,
        singleton=Singleton(s.get("key", ""), s.get("mode", "queue")) if s else None,
        queue=definition.get("queue"),
        priority=definition.get("priority"),
        fair_key=fairness["key"] if fairness else None,
    )
