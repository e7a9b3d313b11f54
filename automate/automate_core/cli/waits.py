"""``automate waits``: runs that wait, what for and until when."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.models import ExecutionRun, RunWait

HELP = "Runs that are waiting (sleep, event, approval, call): what for and until when."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--kind", choices=["sleep", "event", "approval", "call"], default=None)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="One JSON object per line.")


def run(options: dict[str, Any], out: TextIO) -> int:
    waits = RunWait.objects.filter(status="open").order_by("created_at", "id")
    if options["kind"]:
        waits = waits.filter(kind=options["kind"])
    rows = list(waits[: options["limit"]])
    names = dict(
        ExecutionRun.objects.filter(pk__in=[w.run_id for w in rows]).values_list("pk", "workflow_name")
    )
    if not rows and not options["json"]:
        out.write("no run is waiting\n")
    for w in rows:
        until = w.deadline.isoformat(timespec="seconds") if w.deadline else "no deadline"
        if options["json"]:
            out.write(json.dumps({"run": w.run_id, "workflow": names.get(w.run_id), "step": w.step_name,
                            "kind": w.kind, "waits_for": w.describe(), "until": w.deadline,
                            "since": w.created_at}, default=str) + "\n")  # fmt: skip
        else:
            name = names.get(w.run_id, "?")
            out.write(f"#{w.run_id:<6} {name:<24} {w.step_name:<16} {w.describe()} (until {until})\n")
    return 0
