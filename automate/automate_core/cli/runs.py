from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.models import ExecutionRun

HELP = "Show recent workflow runs and their steps."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--status", choices=["running", "succeeded", "failed"], default=None)
    parser.add_argument("--workflow", default=None)
    parser.add_argument("--json", action="store_true")


def run(options: dict[str, Any], out: TextIO) -> int:
    runs = ExecutionRun.objects.order_by("-id").prefetch_related("steps")
    if options["status"]:
        runs = runs.filter(status=options["status"])
    if options["workflow"]:
        runs = runs.filter(workflow_name=options["workflow"])
    selected = list(runs[: options["limit"]])
    if options["json"]:
        out.write(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "workflow": r.workflow_name,
                        "event_id": r.event_id,
                        "status": r.status,
                        "attempt": r.attempt,
                        "error": r.error,
                        "trace_id": r.trace_id,
                        "started_at": r.started_at.isoformat(),
                        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                        "steps": [
                            {"name": s.name, "status": s.status, "duration_ms": s.duration_ms}
                            for s in r.steps.all()
                        ],
                    }
                    for r in selected
                ],
                indent=2,
            )
            + "\n"
        )
        return 0
    if not selected:
        out.write("No runs yet.\n")
    for r in selected:
        out.write(
            f"#{r.id:<6} {r.status:<10} {r.workflow_name:<24} event {r.event_id:<6} "
            f"attempt {r.attempt}  {r.started_at:%Y-%m-%d %H:%M:%S}  trace {r.trace_id}\n"
        )
        for s in r.steps.all():
            out.write(f"         {s.position}. {s.name:<16} {s.status:<10} {s.duration_ms:8.1f} ms\n")
        if r.error:
            out.write(f"         error: {r.error}\n")
    return 0
