"""Checks across a workflow's flow constructs: walking nested steps, and the graph of calls.

A ``call`` step names another workflow; the calls of all workflows form a graph that must have
no cycle (a workflow that calls itself, directly or through others, would never end) and no
chain deeper than ``AUTOMATE_FLOW_MAX_CALL_DEPTH``. The loader checks the file's workflows
together with the stored ones they call, so an error names the place in the file.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F as models_f

from automate_core.exceptions import WorkflowError


class CallGraphError(WorkflowError):
    """The workflows' call steps form a cycle, name a missing workflow or chain too deep."""


def iter_steps(steps: list[dict[str, Any]]) -> Any:
    """Every normalised step, a construct's inner steps included, in order."""
    for step in steps:
        yield step
        kind, params = step.get("kind", "action"), step.get("params") or {}
        if kind == "switch":
            for case in [*params["cases"].values(), params.get("default") or []]:
                yield from iter_steps(case)
        elif kind == "for_each":
            yield from iter_steps([params["step"]])
        elif kind == "parallel":
            yield from iter_steps(params["branches"])
        elif kind == "approval" and params.get("notify"):
            yield from iter_steps([params["notify"]])


def calls_of(definition: dict[str, Any]) -> list[str]:
    """The workflows a definition's ``call`` steps call."""
    return [s["params"]["workflow"] for s in iter_steps(definition["steps"]) if s.get("kind") == "call"]


def check_calls(defined: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Calls name existing workflows, form no cycle and chain at most FLOW_MAX_CALL_DEPTH deep.

    ``defined`` maps the file's workflows to (their place, definition); the others come from the
    database's current versions."""
    from automate_core.conf import settings
    from automate_core.models import WorkflowVersion

    graph = {name: calls_of(d) for name, (_, d) in defined.items()}
    wanted = {c for calls in graph.values() for c in calls} - set(graph)
    for _ in range(int(settings.FLOW_MAX_CALL_DEPTH) + 1):  # follow calls into stored workflows
        if not wanted:
            break
        stored = WorkflowVersion.objects.filter(
            workflow__name__in=wanted, workflow__current_version_id=models_f("id")
        ).values_list("workflow__name", "definition")
        found = {name: calls_of(d) for name, d in stored}
        for name in wanted - set(found):
            where = next(w for w, d in defined.values() if name in calls_of(d)) if defined else "file"
            raise CallGraphError(
                f"{where}: calls workflow {name!r}, which does not exist (load it first, or in the "
                f"same file)."
            )
        graph.update(found)
        wanted = {c for calls in found.values() for c in calls} - set(graph)

    most = int(settings.FLOW_MAX_CALL_DEPTH)

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise CallGraphError(f"{defined[path[0]][0]}: calls form a cycle: {cycle}.")
        if len(path) > most:
            raise CallGraphError(
                f"{defined[path[0]][0]}: calls chain {len(path)} deep ({' -> '.join(path)}); the most is "
                f"{most} (AUTOMATE_FLOW_MAX_CALL_DEPTH)."
            )
        for callee in graph.get(name, []):
            visit(callee, [*path, name])

    for name in defined:
        visit(name, [])
