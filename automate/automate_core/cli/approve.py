"""``automate approve RUN STEP --yes|--no``: answer a waiting approval."""

from __future__ import annotations

import getpass
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.execution import approvals

HELP = "Approve (--yes) or reject (--no) the approval step STEP of waiting run RUN."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("run", type=int, help="The run's id (automate waits lists them).")
    parser.add_argument("step", help="The approval step's name.")
    answer = parser.add_mutually_exclusive_group(required=True)
    answer.add_argument("--yes", dest="approved", action="store_true", help="Approve.")
    answer.add_argument("--no", dest="approved", action="store_false", help="Reject.")
    parser.add_argument("--comment", default="", help="Recorded with the answer.")
    parser.add_argument("--by", default=None, help="Who answers (default: the system user).")


def run(options: dict[str, Any], out: TextIO) -> int:
    by = options["by"] or f"cli:{getpass.getuser()}"
    wait = approvals.answer(
        options["run"], options["step"], options["approved"], by=by, comment=options["comment"]
    )
    verdict = "approved" if options["approved"] else "rejected"
    out.write(f"run #{wait.run_id} {wait.step_name}: {verdict} by {by}; the run resumes now\n")
    return 0
