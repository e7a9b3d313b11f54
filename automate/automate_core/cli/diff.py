"""``automate diff``: what changed between two versions of a workflow; lists versions without any."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.exceptions import WorkflowError
from automate_core.models import Workflow
from automate_core.rules import versions

HELP = "Diff two versions of a workflow (automate diff NAME 3 5), or list its versions (automate diff NAME)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("workflow")
    parser.add_argument("a", nargs="?", type=int, help="Older version number.")
    parser.add_argument("b", nargs="?", type=int, help="Newer version number (default: the latest).")


def get_workflow(name: str) -> Workflow:
    workflow = Workflow.objects.filter(name=name).first()
    if workflow is None:
        raise WorkflowError(f"No workflow named {name!r}.")
    return workflow


def run(options: dict[str, Any], out: TextIO) -> int:
    workflow = get_workflow(options["workflow"])
    if options["a"] is None:
        for v in workflow.versions.order_by("-number"):
            current = "  (current)" if v.pk == workflow.current_version_id else ""
            note = f"  {v.comment}" if v.comment else ""
            out.write(f"v{v.number:<4} {v.created_at:%Y-%m-%d %H:%M:%S}  {v.author or '-'}{note}{current}\n")
        return 0
    text = versions.diff(workflow, options["a"], options["b"])
    out.write(text or "No differences.\n")
    return 0
