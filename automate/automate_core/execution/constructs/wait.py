"""``wait_for_event``: the run waits for an event correlated with it, with a timeout.

::

    wait_for_event:
      source: shop
      event_type: shipment.created
      match: "event.payload.order == run.event.payload.order"
      timeout: 2h            # optional; without it the run waits until cancelled
      lookback: 10m          # optional: an event received up to 10 minutes before counts too
      on_timeout: continue   # or fail; on continue the output says timed_out: true

``match`` compares one path of the incoming event's payload (left) with a value rendered from
the waiting run (right, where ``run.event`` is the run's own event) when the wait opens. The
pair is stored with the wait and indexed, so an incoming event finds its waits with one index
lookup however many are open. ``match`` may also be a mapping ``{path: payload.order, equals:
"{{ event.payload.order }}"}``. Values compare as text (numbers as written, booleans as
true/false).
"""

from __future__ import annotations

import json
import re
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

_MATCH = re.compile(r"^\s*event\.payload((?:\.[A-Za-z0-9_]+)+)\s*==\s*(.+?)\s*$", re.S)
_PATH = re.compile(r"^payload((?:\.[A-Za-z0-9_]+)+)$")
_LITERAL = re.compile(r"^[A-Za-z0-9_.:\-/]+$")


def as_text(value: Any) -> str | None:
    """A correlation value as PostgreSQL's ``#>>`` gives it for a JSON scalar."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return json.dumps(value)
    return str(value)


class WaitForEvent:
    key = "wait_for_event"
    extra_keys: frozenset[str] = frozenset()
    durable = True
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "source": {"type": "string"},
            "event_type": {"type": "string"},
            "match": {
                "oneOf": [
                    {"type": "string", "pattern": "^\\s*event\\.payload\\..+==.+$"},
                    {"type": "object", "properties": {"path": {"type": "string"}, "equals": {}},
                     "required": ["path", "equals"], "additionalProperties": False},
                ]
            },
            "timeout": DURATION,
            "lookback": DURATION,
            "on_timeout": {"enum": ["continue", "fail"]},
        },
        "required": ["source", "event_type", "match"],
        "additionalProperties": False,
    }  # fmt: skip

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        where = f"{where}.wait_for_event"
        allowed, required = set(self.schema["properties"]), set(self.schema["required"])
        spec = check_keys(where, step["wait_for_event"], allowed, required)
        for key in ("source", "event_type"):
            if not isinstance(spec[key], str) or not _LITERAL.match(spec[key]):
                raise DefinitionProblem(
                    f"{where}.{key}: an exact {key} (letters, digits and . _ - : /), not a pattern or "
                    f"template, got {spec[key]!r}."
                )
        match = spec["match"]
        if isinstance(match, str):
            found = _MATCH.match(match)
            if found is None:
                raise DefinitionProblem(
                    f"{where}.match: expected 'event.payload.<path> == <expression>' (e.g. "
                    f"'event.payload.order == run.event.payload.order'), got {match!r}."
                )
            path, equals = found.group(1)[1:], "{{ " + found.group(2) + " }}"
        else:
            check_keys(f"{where}.match", match, {"path", "equals"}, {"path", "equals"})
            found = _PATH.match(str(match["path"]))
            if found is None:
                raise DefinitionProblem(
                    f"{where}.match.path: a dotted path under payload, e.g. payload.order, "
                    f"got {match['path']!r}."
                )
            path, equals = found.group(1)[1:], match["equals"]
        check_template(f"{where}.match", equals)
        on_timeout = spec.get("on_timeout", "continue")
        if on_timeout not in ("continue", "fail"):
            raise DefinitionProblem(f"{where}.on_timeout: continue or fail, got {on_timeout!r}.")
        timeout = spec.get("timeout")
        lookback = spec.get("lookback")
        return {
            "source": spec["source"],
            "event_type": spec["event_type"],
            "path": path,
            "equals": equals,
            "timeout": None
            if timeout is None
            else parse_duration(f"{where}.timeout", timeout, minimum=0.001),
            "lookback": None if lookback is None else parse_duration(f"{where}.lookback", lookback),
            "on_timeout": on_timeout,
        }

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        from automate_core.execution.constructs import parking

        return await parking.park(walk, step, self, self.opening)

    async def opening(self, walk: Walk, step: StepSpec) -> tuple[Opening | None, str, Any]:
        from automate_core.execution.actions import StepFailed
        from automate_core.execution.waits import Opening, waits

        c = step.config
        rendered = walk.render(c["equals"], {"run": {**walk.scope["run"], "event": walk.scope["event"]}})
        value = as_text(rendered)
        if value is None:
            raise StepFailed(
                f"wait_for_event.match rendered {rendered!r}: a correlation value must be a string, "
                f"number or boolean",
                False,
            )
        description = f"wait for {c['source']}/{c['event_type']} with payload.{c['path']} = {value!r}"
        if c["timeout"] is not None:
            description += f" for up to {c['timeout']:g}s"
        if c["lookback"] and not walk.dry_run:
            seen = await waits.look_back(c["source"], c["event_type"], c["path"], value, c["lookback"])
            if seen is not None:
                return None, description, {"event_id": seen[0], "payload": seen[1], "timed_out": False}
        deadline = None if c["timeout"] is None else datetime.now(UTC) + timedelta(seconds=c["timeout"])
        wanted = Opening(
            "event", deadline=deadline, source=c["source"], event_type=c["event_type"], path=c["path"],
            value=value, on_timeout=c["on_timeout"],
        )  # fmt: skip
        return wanted, description, None

    def outcome(self, step: StepSpec, wait: Wait) -> tuple[str, Any, str]:
        if wait.status == "resolved":
            return "succeeded", wait.result, ""
        if wait.on_timeout == "fail":
            return "failed", None, f"no {wait.source}/{wait.event_type} event matched before the timeout"
        return "succeeded", {"event_id": None, "payload": None, "timed_out": True}, ""
