"""``switch``: one list of steps, picked by a value.

::

    - name: route
      switch:
        on: "{{ event.payload.provider }}"
        cases:
          stripe: [ {name: refund_stripe, connector: http, ...} ]
          paypal: [ {name: refund_paypal, connector: http, ...} ]
        default: [ {name: alert, connector: slack, ...} ]

The switch step is recorded with ``{"case": ..., "value": ...}`` (``case`` is null when no case
matched and there is no default), then the case's steps run as if they stood in its place:
they may sleep, wait or call, and later steps see their outputs by name. Values compare as text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from automate_core.execution.constructs.base import DefinitionProblem, LoadContext, check_keys, check_template

if TYPE_CHECKING:
    from automate_core.execution.runner import Walk
    from automate_core.rules.engine import StepSpec


class Switch:
    key = "switch"
    extra_keys: frozenset[str] = frozenset()
    durable = False
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "on": {"type": "string"},
            "cases": {"type": "object", "additionalProperties": {"$ref": "#/$defs/steps"}},
            "default": {"$ref": "#/$defs/steps"},
        },
        "required": ["on", "cases"],
        "additionalProperties": False,
    }

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        where = f"{where}.switch"
        spec = step["switch"]
        if isinstance(spec, dict) and True in spec and "on" not in spec:  # YAML 1.1 reads `on:` as true
            spec = {("on" if k is True else k): v for k, v in spec.items()}
        spec = check_keys(where, spec, set(self.schema["properties"]), set(self.schema["required"]))
        if not isinstance(spec["cases"], dict) or not spec["cases"]:
            raise DefinitionProblem(f"{where}.cases: a mapping of values to lists of steps.")

        def steps(place: str, items: Any) -> list[dict[str, Any]]:
            if not isinstance(items, list) or not items:
                raise DefinitionProblem(f"{place}: a list of at least one step.")
            return [load.step(f"{place}[{i}]", s) for i, s in enumerate(items)]

        return {
            "on": check_template(f"{where}.on", spec["on"]),
            "cases": {str(k): steps(f"{where}.cases.{k}", v) for k, v in spec["cases"].items()},
            "default": steps(f"{where}.default", spec["default"]) if spec.get("default") is not None else [],
        }

    @staticmethod
    def _case(step: StepSpec, case: str | None) -> tuple[StepSpec, ...]:
        wanted = "" if case is None else case
        return next((steps for key, steps in step.cases if key == wanted), ())

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        from automate_core.exceptions import TemplateError
        from automate_core.execution.actions import StepFailed

        try:
            value = walk.render(step.config["on"])
        except TemplateError as exc:
            error = f"TemplateError: switch.on: {exc}"
            await walk.record(step, "failed", None, error)
            raise StepFailed(error, retryable=False) from exc
        text = "" if value is None else str(value)
        case: str | None = text if text in step.config["cases"] else None
        if case is None and step.config["default"]:
            case = ""
        output = {"case": None if case is None else (case or "default"), "value": text}
        await walk.record(step, "succeeded", output)
        await walk.steps(self._case(step, case))
        return {"output": output, "status": "succeeded"}

    async def resume(self, walk: Walk, step: StepSpec, output: Any) -> None:
        """The switch was recorded by an earlier pass: walk the case it chose."""
        case = (output or {}).get("case")
        await walk.steps(self._case(step, "" if case == "default" else case))
