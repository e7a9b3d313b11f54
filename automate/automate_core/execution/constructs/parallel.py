"""``parallel``: actions side by side, joined: the step ends when all have.

::

    - name: notify
      parallel:
        - {connector: slack, action: post_message, params: {...}}
        - {connector: email, action: send, params: {...}}

Each branch is a step record of its own (``notify[0]``, ``notify[1]``); the output is the list
of the branches' outputs in order. A failed branch fails the step once all have ended, unless
that branch has ``continue_on_error``. At most ``AUTOMATE_FLOW_MAX_BRANCHES`` branches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from automate_core.conf import settings
from automate_core.execution.constructs.base import DefinitionProblem, LoadContext

if TYPE_CHECKING:
    from automate_core.execution.runner import Walk
    from automate_core.rules.engine import StepSpec


class Parallel:
    key = "parallel"
    extra_keys: frozenset[str] = frozenset()
    durable = False
    schema: ClassVar[dict[str, Any]] = {
        "type": "array",
        "items": {"$ref": "#/$defs/inner_step"},
        "minItems": 1,
    }

    def normalize(self, where: str, step: dict[str, Any], load: LoadContext) -> dict[str, Any]:
        branches = step["parallel"]
        most = int(settings.FLOW_MAX_BRANCHES)
        if not isinstance(branches, list) or not branches:
            raise DefinitionProblem(f"{where}.parallel: a list of at least one step.")
        if len(branches) > most:
            raise DefinitionProblem(
                f"{where}.parallel: {len(branches)} branches; the most is {most} "
                f"(AUTOMATE_FLOW_MAX_BRANCHES)."
            )
        return {
            "branches": [
                load.step(f"{where}.parallel[{i}]", b, name=f"{step['name']}[{i}]", durable=False)
                for i, b in enumerate(branches)
            ]
        }

    async def run(self, walk: Walk, step: StepSpec) -> dict[str, Any]:
        from automate_core.execution.constructs.fanout import join

        children = [(child, child.name, None) for child in step.children]
        return await join(walk, step, children, len(children))
