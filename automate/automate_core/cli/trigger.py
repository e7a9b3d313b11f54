"""``automate trigger``: run a workflow now on a given payload (a manual run, queued for the workers)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.cli._json import payload_argument
from automate_core.execution import replay

HELP = "Run a workflow on a given JSON payload, whatever its trigger (queued for the workers)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("workflow", help="The workflow's name.")
    parser.add_argument("--payload", help="The event payload as JSON (default: {}).")
    parser.add_argument("--payload-file", help="The event payload in a JSON file.")
    parser.add_argument("--source", default="manual", help="The event's source (default: manual).")
    parser.add_argument(
        "--type", dest="event_type", default="manual", help="The event's type (default: manual)."
    )


def run(options: dict[str, Any], out: TextIO) -> int:
    payload = payload_argument(options.get("payload"), options.get("payload_file"))
    new = replay.trigger(
        options["workflow"],
        {} if payload is None else payload,
        source=options["source"],
        event_type=options["event_type"],
    )
    out.write(
        f"run #{new.pk} queued ({new.workflow_name}, event {new.event_id}); "
        f"follow it with: automate runs {new.pk}\n"
    )
    return 0
