"""``sleep``: the run waits a duration (``for: 3d``) or until a moment (``until: "{{ ... }}"``).

The wait holds nothing: its wake job is parked at the deadline. A moment already past (or a
duration of 0) goes on at once without parking.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from automate_core.execution.constructs.base import (
    DURATION,
    DefinitionProblem,
    LoadContext,
    check_keys,
    check_template,
    moment,
    parse_duration,
)

if TYPE_CHECKING:
    from automate_core.execution.runner import Walk
    from automate_core.execution.waits import Wait
    from automate_core.rules.engine import StepSpec


class Sleep:
    key = "sleep"
    extra_keys: frozenset[str] = frozenset()
    durable = True
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"for": DURATION, "until": {"type": "string", "description": "an ISO 8601 date-time"}},
        "additionalProperties": False,
    }

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        where = f"{where}.sleep"
        spec = check_keys(where, step["sleep"], set(self.schema["properties"]), set())
        if ("for" in spec) == ("until" in spec):
            raise DefinitionProblem(f"{where}: give exactly one of 'for' (e.g. 3d) or 'until' (a date-time).")
        if "for" in spec:
            return {"for": parse_duration(f"{where}.for", spec["for"])}
        return {"until": check_template(f"{where}.until", spec["until"])}

    def deadline(self, walk: Walk, step: StepSpec) -> datetime:
        from automate_core.execution.actions import StepFailed

        config = step.config
        if "for" in config:
            return datetime.now(UTC) + timedelta(seconds=float(config["for"]))
        rendered = walk.render(config["until"])
        when = moment(rendered)
        if when is None:
            raise StepFailed(f"sleep.until rendered {str(rendered)[:80]!r}, not an ISO 8601 date-time", False)
        return when

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        from automate_core.execution.constructs import parking

        return await parking.park(walk, step, self, self.opening)

    async def opening(self, walk: Walk, step: StepSpec) -> tuple[Any, str, Any]:
        from automate_core.execution.waits import Opening

        deadline = self.deadline(walk, step)
        description = f"sleep until {deadline.isoformat()}"
        if deadline <= datetime.now(UTC):
            return None, description, {"slept_until": deadline.isoformat()}
        return Opening("sleep", deadline=deadline), description, None

    def outcome(self, step: StepSpec, wait: Wait) -> tuple[str, Any, str]:
        until = wait.deadline.isoformat() if wait.deadline else None
        return "succeeded", {"slept_until": until}, ""
