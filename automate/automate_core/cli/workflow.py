"""``automate workflow``: list workflows, turn one off or on, or delete it.

``disable NAME`` stops new events from starting runs of it (runs already queued still run);
``enable NAME`` turns it back on. ``delete NAME --yes`` removes the workflow, its steps and its
versions; its past runs stay (they keep the workflow's name). Without ``--yes`` ``delete`` only
says what it would remove. The workers see every change with their next claim.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.cli.words import plural
from automate_core.exceptions import WorkflowError
from automate_core.models import ExecutionRun, Workflow

HELP = "List workflows, disable or enable one, or delete one (with --yes)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "enable", "disable", "delete"])
    parser.add_argument("name", nargs="*", help="Workflow names (enable, disable, delete).")
    parser.add_argument("--yes", action="store_true", help="delete: really delete (without it: preview).")


def _named(names: list[str]) -> list[Workflow]:
    found = list(Workflow.objects.filter(name__in=names).order_by("name"))
    missing = set(names) - {w.name for w in found}
    if missing:
        raise WorkflowError(
            f"No workflow named {', '.join(repr(n) for n in sorted(missing))} (see `automate workflow list`)."
        )
    return found


def run(options: dict[str, Any], out: TextIO) -> int:
    action, names = options["action"], options["name"]
    if action == "list":
        workflows = list(Workflow.objects.order_by("name").select_related("current_version"))
        if not workflows:
            out.write("No workflows yet (load a file with `automate load FILE`).\n")
        for w in workflows:
            version = f"v{w.current_version.number}" if w.current_version else "v-"
            state = "enabled" if w.enabled else "disabled"
            out.write(
                f"{w.name:<32} {version:<5} {state:<9} "
                f"source {w.source_pattern}  type {w.event_type_pattern}\n"
            )
        return 0
    if not names:
        raise WorkflowError(f"automate workflow {action} needs one or more workflow names.")
    workflows = _named(names)
    if action in ("enable", "disable"):
        for w in workflows:
            w.enabled = action == "enable"
            w.save(update_fields=["enabled", "updated_at"])
            out.write(f"{w.name}: {action}d\n")
        return 0
    for w in workflows:
        runs = ExecutionRun.objects.filter(workflow=w).count()
        what = f"{w.name}: {plural(w.steps.count(), 'step')}, {plural(w.versions.count(), 'version')}"
        if not options["yes"]:
            out.write(f"would delete {what} (its {plural(runs, 'run')} stay); add --yes to delete\n")
            continue
        w.delete()
        out.write(f"deleted {what} (its {plural(runs, 'run')} stay)\n")
    return 0
