"""``approval``: the run waits for a person to approve or reject, with a timeout and a default.

::

    approval:
      prompt: "Refund {{ event.payload.amount }} EUR to {{ event.payload.customer }}?"
      timeout: 1d
      on_timeout: reject        # reject (default), approve or fail
      notify:                   # optional: an action that sends the one-time link
        connector: slack
        action: post_message
        params: {channel: "#refunds", text: "{{ approval.prompt }} {{ approval.url }}"}

The answer comes from the console (the pending approvals queue), ``automate approve RUN STEP
--yes/--no``, the API, or the link: ``{AUTOMATE_PUBLIC_URL}/approvals/<token>/``. The token is
random (256 bits), shown only to ``notify`` (masked in the run records like a secret) and stored
as its SHA-256; the link works once and not after the deadline. The step's output is
``{"approved": true|false, "by": ..., "comment": ..., "timed_out": false|true}``; branch on it
with a condition (``steps.approve.output.approved``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from automate_core.conf import settings
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

ON_TIMEOUT = ("reject", "approve", "fail")


def link(token: str) -> str:
    return f"{str(settings.PUBLIC_URL).rstrip('/')}/approvals/{token}/"


class Approval:
    key = "approval"
    extra_keys: frozenset[str] = frozenset()
    durable = True
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string"},
            "timeout": DURATION,
            "on_timeout": {"enum": list(ON_TIMEOUT)},
            "notify": {"$ref": "#/$defs/inner_step"},
        },
        "required": ["prompt"],
        "additionalProperties": False,
    }

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        where = f"{where}.approval"
        keys, required = set(self.schema["properties"]), set(self.schema["required"])
        spec = check_keys(where, step["approval"], keys, required)
        if not isinstance(spec["prompt"], str) or not spec["prompt"].strip():
            raise DefinitionProblem(f"{where}.prompt: the question the approver answers, as text.")
        on_timeout = spec.get("on_timeout", "reject")
        if on_timeout not in ON_TIMEOUT:
            raise DefinitionProblem(
                f"{where}.on_timeout: one of {', '.join(ON_TIMEOUT)}, got {on_timeout!r}."
            )
        timeout = spec.get("timeout")
        notify = spec.get("notify")
        return {
            "prompt": check_template(f"{where}.prompt", spec["prompt"]),
            "timeout": None
            if timeout is None
            else parse_duration(f"{where}.timeout", timeout, minimum=0.001),
            "on_timeout": on_timeout,
            "notify": None
            if notify is None
            else load.step(f"{where}.notify", notify, name=f"{step['name']}.notify", durable=False),
        }

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        from automate_core.execution.constructs import parking

        return await parking.park(walk, step, self, self.opening)

    async def opening(self, walk: Walk, step: StepSpec) -> tuple[Opening | None, str, Any]:
        from automate_core import masking
        from automate_core.execution.waits import Opening, new_token

        c = step.config
        prompt = str(walk.render(c["prompt"]))[:2000]
        deadline = None if c["timeout"] is None else datetime.now(UTC) + timedelta(seconds=c["timeout"])
        description = f"approval: {prompt!r}" + (f" until {deadline.isoformat()}" if deadline else "")
        token, hashed = new_token()
        if step.children and not walk.dry_run:
            masking.masker.register(token)  # the link is a credential: never in the records
            # sent before the wait opens (at least once: a retried claim sends a new link)
            await walk.runner._run_step(
                walk.run_id, walk.plan.workflow, step.children[0],
                {**walk.scope, "approval": {"prompt": prompt, "url": link(token), "until": deadline}},
                walk.job, name=step.children[0].name,
            )  # fmt: skip
        wanted = Opening(
            "approval", deadline=deadline, token_hash=hashed, prompt=prompt, on_timeout=c["on_timeout"]
        )
        return wanted, description, None

    def outcome(self, step: StepSpec, wait: Wait) -> tuple[str, Any, str]:
        if wait.status == "resolved":
            return "succeeded", {**(wait.result or {}), "timed_out": False}, ""
        if wait.on_timeout == "fail":
            return "failed", None, "the approval was not answered before its timeout"
        approved = wait.on_timeout == "approve"
        return "succeeded", {"approved": approved, "by": "timeout", "comment": "", "timed_out": True}, ""
