"""``automate cancel``: cancel queued or running runs."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.execution import replay

HELP = "Cancel queued or running runs (a running run stops before its next step)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("run", nargs="+", type=int, help="Run ids.")


def run(options: dict[str, Any], out: TextIO) -> int:
    for run_id in options["run"]:
        replay.cancel(run_id)
        out.write(f"run #{run_id} cancelled\n")
    return 0
