"""``automate --url URL --token TOKEN runs``: ``automate runs`` over the HTTP API.

The same listing as on the database, through :mod:`automate_client` (no Django, no database):
for a platform reached only over HTTPS. The token can come from ``AUTOMATE_TOKEN`` instead of
the command line (where ``ps`` and shell history would see it); it needs the ``runs:read`` scope.
"""

from __future__ import annotations

import json
import os
import sys
from argparse import ArgumentParser
from dataclasses import asdict
from typing import Any, TextIO

STATUSES = ["queued", "running", "succeeded", "failed", "skipped", "cancelled"]


def parser() -> ArgumentParser:
    top = ArgumentParser(prog="automate", description="Django Automate over its HTTP API (docs/api.md).")
    top.add_argument("--url", required=True, help="The platform's address, e.g. https://automate.example.com")
    top.add_argument(
        "--token", default=os.environ.get("AUTOMATE_TOKEN"), help="API token (or AUTOMATE_TOKEN)."
    )
    sub = top.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("runs", help="Recent runs, or one run's steps (automate runs ID).")
    runs.add_argument("run", nargs="?", type=int)
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--status", choices=STATUSES)
    runs.add_argument("--workflow")
    runs.add_argument("--json", action="store_true")
    return top


def _headline(r: Any) -> str:
    version = f"v{r.version}" if r.version else "v-"
    origin = f"  {r.mode} of #{r.parent}" if r.parent else (f"  {r.mode}" if r.mode else "")
    return (
        f"#{r.id:<6} {r.status:<10} {r.workflow:<24} {version:<4} event {r.event_id:<6} "
        f"attempt {r.attempt}  {r.started_at:%Y-%m-%d %H:%M:%S}  trace {r.trace_id}{origin}\n"
    )


def runs(api: Any, options: Any, out: TextIO) -> int:
    if options.run is not None:
        run = api.get_run(options.run)
        if options.json:
            out.write(json.dumps(asdict(run), indent=2, default=str) + "\n")
            return 0
        out.write(_headline(run))
        for s in run.steps:
            retry = f" (attempt {s.attempt})" if s.attempt > 1 else ""
            out.write(
                f"  {s.position}. {s.name} [{s.connector}.{s.action}] {s.status}{retry}"
                f" {s.duration_ms:.1f} ms\n"
            )
            for label, value in (("input", s.input), ("output", s.output)):
                if value is not None:
                    out.write(f"       {label}: {json.dumps(value, default=str)[:2000]}\n")
            if s.error:
                out.write(f"       error:  {s.error}\n")
        if run.error:
            out.write(f"  error: {run.error}\n")
        return 0
    found, _ = api.list_runs(limit=options.limit, status=options.status, workflow=options.workflow)
    if options.json:
        out.write(json.dumps([asdict(r) for r in found], indent=2, default=str) + "\n")
        return 0
    if not found:
        out.write("No runs yet.\n")
    for r in found:
        out.write(_headline(r))
        if r.error:
            out.write(f"         error: {r.error}\n")
    return 0


def main(argv: list[str], out: TextIO = sys.stdout) -> int:
    from automate_client import ApiError, Client, TransportError

    options = parser().parse_args(argv)
    if not options.token:
        sys.stderr.write("automate: give --token or set AUTOMATE_TOKEN (automate tokens create ...)\n")
        return 2
    try:
        with Client(options.url, options.token) as api:
            return runs(api, options, out)
    except ApiError as exc:
        sys.stderr.write(f"automate: {exc.detail} ({exc.code})\n")
        return 1
    except TransportError as exc:
        sys.stderr.write(f"automate: {exc}\n")
        return 1
