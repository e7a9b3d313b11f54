"""``call``: run another workflow as a child run, and wait for its end.

::

    call:
      workflow: notify_customer
      input: {customer: "{{ event.payload.customer }}", text: "Your order shipped"}
      timeout: 1h      # optional: the caller fails if the child has not ended by then

The child is a run of the called workflow's current version, on the caller's event, with
``input`` in its scope (``{{ input.customer }}``); it is queued in the same transaction that parks
the caller. When it ends (succeeded, or failed with no attempt left) the caller wakes with
``{"run_id", "status", "output", "error"}``, where ``output`` is the output of the child's last
step that succeeded; a failed child fails the step. Calls form no cycle (checked at load), and a
chain of calls is at most ``AUTOMATE_FLOW_MAX_CALL_DEPTH`` deep.
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
    parse_duration,
)

if TYPE_CHECKING:
    from automate_core.execution.runner import Walk
    from automate_core.execution.waits import Opening, Wait
    from automate_core.rules.engine import StepSpec


class Call:
    key = "call"
    extra_keys: frozenset[str] = frozenset()
    durable = True
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"workflow": {"type": "string"}, "input": {}, "timeout": DURATION},
        "required": ["workflow"],
        "additionalProperties": False,
    }

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        where = f"{where}.call"
        spec = check_keys(where, step["call"], set(self.schema["properties"]), set(self.schema["required"]))
        if not isinstance(spec["workflow"], str) or not spec["workflow"]:
            raise DefinitionProblem(f"{where}.workflow: the name of the workflow to call.")
        timeout = spec.get("timeout")
        return {
            "workflow": spec["workflow"],
            "input": check_template(f"{where}.input", spec.get("input", {}), secrets=False),
            "timeout": None
            if timeout is None
            else parse_duration(f"{where}.timeout", timeout, minimum=0.001),
        }

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        from automate_core.execution.constructs import parking

        return await parking.park(walk, step, self, self.opening)

    async def opening(self, walk: Walk, step: StepSpec) -> tuple[Opening | None, str, Any]:
        from automate_core.execution.waits import Opening

        c = step.config
        deadline = None if c["timeout"] is None else datetime.now(UTC) + timedelta(seconds=c["timeout"])
        description = f"call {c['workflow']}" + (f" (up to {c['timeout']:g}s)" if c["timeout"] else "")
        return (
            Opening("call", deadline=deadline, call=(c["workflow"], walk.render(c["input"]))),
            description,
            None,
        )

    def outcome(self, step: StepSpec, wait: Wait) -> tuple[str, Any, str]:
        if wait.status == "timed_out":
            return (
                "failed",
                None,
                f"the called workflow {step.config['workflow']} did not end within its timeout",
            )
        result = wait.result or {}
        if result.get("status") != "succeeded":
            return (
                "failed",
                result,
                f"the called workflow {step.config['workflow']} failed: {result.get('error', '')}",
            )
        return "succeeded", result, ""
