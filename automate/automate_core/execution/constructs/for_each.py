"""``for_each``: one action per item of a list, at most ``concurrency`` at once, results in order.

::

    - name: reserve
      for_each: "{{ event.payload['items'] }}"
      concurrency: 5
      step: {connector: http, action: post, params: {url: ..., json: {sku: "{{ item.sku }}"}}}

The step sees ``item`` and ``item_index``; each item is a step record of its own
(``reserve[0]``, ``reserve[1]`` ...), and the step's output is the list of the items' outputs in
the list's order. A failed item fails the step once every item has ended, unless the inner step
has ``continue_on_error`` (its output is then null). A resumed run (a retry after a crash) runs
again only the items that did not succeed. At most ``AUTOMATE_FLOW_MAX_ITEMS`` items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from automate_core.conf import settings
from automate_core.execution.constructs.base import LoadContext, check_int, check_template

if TYPE_CHECKING:
    from automate_core.execution.runner import Walk
    from automate_core.rules.engine import StepSpec


class ForEach:
    key = "for_each"
    extra_keys: frozenset[str] = frozenset({"concurrency", "step"})
    durable = False
    schema: ClassVar[dict[str, Any]] = {
        "type": ["string", "array"],
        "description": "the list, or a template giving it",
    }
    extra_schema: ClassVar[dict[str, Any]] = {
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 1000},
        "step": {"$ref": "#/$defs/inner_step"},
    }

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        from automate_core.execution.constructs.base import DefinitionProblem

        items = step["for_each"]
        if not isinstance(items, str | list):
            raise DefinitionProblem(f"{where}.for_each: a template giving a list, or a list, got {items!r}.")
        if "step" not in step:
            raise DefinitionProblem(f"{where}: a for_each needs the step to run per item (step: {{...}}).")
        return {
            "items": check_template(f"{where}.for_each", items),
            "concurrency": check_int(
                f"{where}.concurrency", step.get("concurrency", 1), minimum=1, maximum=1000
            ),
            "step": load.step(f"{where}.step", step["step"], name=f"{step['name']}[]", durable=False),
        }

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        from automate_core.execution.actions import StepFailed
        from automate_core.execution.constructs.fanout import join

        items = walk.render(step.config["items"])
        error = ""
        if isinstance(items, tuple):
            items = list(items)
        if not isinstance(items, list):
            error = f"for_each rendered {type(items).__name__}, not a list"
        elif len(items) > int(settings.FLOW_MAX_ITEMS):
            error = (
                f"for_each has {len(items)} items; the most is {settings.FLOW_MAX_ITEMS} "
                f"(AUTOMATE_FLOW_MAX_ITEMS)"
            )
        if error:
            await walk.record(step, "failed", None, error)
            raise StepFailed(error, retryable=False)
        child = step.children[0]
        children = [
            (child, f"{step.name}[{i}]", {"item": item, "item_index": i}) for i, item in enumerate(items)
        ]
        return await join(walk, step, children, int(step.config["concurrency"]))
