"""``automate rollback``: make an earlier version current again (as a new version)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.cli.diff import get_workflow
from automate_core.rules import versions

HELP = "Roll a workflow back to an earlier version; history is kept (the rollback is a new version)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("workflow")
    parser.add_argument("--to", type=int, required=True, help="The version number to return to.")


def run(options: dict[str, Any], out: TextIO) -> int:
    workflow = get_workflow(options["workflow"])
    version = versions.rollback(workflow, options["to"], author="cli")
    out.write(f"{workflow.name}: v{version.number} is current (same definition as v{options['to']})\n")
    return 0
