"""``automate test-step``: run a step (or a whole workflow) against a stored event, in dry run."""

from __future__ import annotations

import asyncio
import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.cli._json import payload_argument
from automate_core.execution import testmode

HELP = (
    "Test a workflow or one step against a stored event or past run, connectors in dry run: "
    "nothing is sent, nothing is written; shows rendered inputs and what would be sent."
)


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("workflow", help="The workflow's name (its current version is tested).")
    parser.add_argument("--step", help="Stop after this step (default: the whole workflow).")
    parser.add_argument("--event", type=int, help="A stored event's id.")
    parser.add_argument("--run", type=int, help="A past run: its event, and its outputs of earlier steps.")
    parser.add_argument("--payload", help="Use this JSON payload instead of the event's.")
    parser.add_argument("--json", action="store_true")


async def _dry_run(options: dict[str, Any]) -> Any:
    from automate_core import db

    try:
        return await testmode.dry_run(
            options["workflow"],
            step=options.get("step"),
            event_id=options.get("event"),
            run_id=options.get("run"),
            payload=payload_argument(options.get("payload"), None),
        )
    finally:
        await db.close_pool()


def run(options: dict[str, Any], out: TextIO) -> int:
    result = asyncio.run(_dry_run(options))
    steps = [
        {
            "step": s.name,
            "connector": f"{s.connector}.{s.action}",
            "status": s.status,
            "input": s.input,
            "output": s.output,
            "error": s.error,
        }
        for s in result.steps
    ]
    if options["json"]:
        out.write(
            json.dumps({"status": result.status, "error": result.error, "steps": steps}, indent=2) + "\n"
        )
        return 0 if result.status == "succeeded" else 1
    out.write(f"test mode (dry run) of {result.workflow_name}: {result.status}\n")
    for s in steps:
        out.write(f"- {s['step']} [{s['connector']}] {s['status']}\n")
        out.write(f"    input:  {json.dumps(s['input'], default=str)}\n")
        if s["output"] is not None:
            out.write(f"    would send / output: {json.dumps(s['output'], default=str)}\n")
        if s["error"]:
            out.write(f"    note:   {s['error']}\n")
    if result.error:
        out.write(f"error: {result.error}\n")
    return 0 if result.status == "succeeded" else 1
