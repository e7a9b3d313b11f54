"""``automate export``: workflows as a file in the ``automate load`` format."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any, TextIO

from automate_core.exceptions import WorkflowError
from automate_core.models import Workflow
from automate_core.rules import versions

HELP = "Export workflows (current or a given version) as a YAML file that `automate load` reads back."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("workflow", nargs="*", help="Workflow names (default: all).")
    parser.add_argument("--version", type=int, help="A version number instead of the current one.")
    parser.add_argument("-o", "--output", help="Write to this file instead of the terminal.")


def run(options: dict[str, Any], out: TextIO) -> int:
    workflows = Workflow.objects.order_by("name")
    if options["workflow"]:
        workflows = workflows.filter(name__in=options["workflow"])
        missing = set(options["workflow"]) - set(workflows.values_list("name", flat=True))
        if missing:
            raise WorkflowError(f"No workflow named {', '.join(sorted(missing))}.")
    if options["version"] is not None and len(workflows) != 1:
        raise WorkflowError("--version needs exactly one workflow name.")
    definitions = [versions.get_version(w, options["version"]).definition for w in workflows]
    text = versions.to_yaml(definitions)
    if options["output"]:
        Path(options["output"]).write_text(text, encoding="utf-8")
        out.write(f"{len(definitions)} workflows written to {options['output']}\n")
    else:
        out.write(text)
    return 0
