"""``automate runs``: recent runs, or one run's timeline with each step's input, output and error."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.cli._json import compact
from automate_core.execution import grouping
from automate_core.models import ExecutionRun, RunMode, RunStatus, RunWait

HELP = "Show recent workflow runs and their steps, or one run in detail (automate runs ID)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", type=int, help="One run's id: show its timeline in full.")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument(
        "--status", choices=[s.value for s in RunStatus if s != RunStatus.REUSED], default=None
    )
    parser.add_argument("--workflow", default=None)
    parser.add_argument(
        "--event", type=int, default=None, help="The runs of one event (and the debounce or batch it joined)."
    )
    parser.add_argument("--json", action="store_true")


def as_dict(r: ExecutionRun, *, full: bool = False) -> dict[str, Any]:
    steps = []
    for s in r.steps.all():
        step: dict[str, Any] = {
            "position": s.position,
            "name": s.name,
            "status": s.status,
            "attempt": s.attempt,
            "duration_ms": s.duration_ms,
        }
        if full:
            step.update(connector=s.connector, action=s.action, input=s.input, output=s.output, error=s.error)
        steps.append(step)
    return {
        "id": r.id,
        "workflow": r.workflow_name,
        "version": r.version.number if r.version else None,
        "event_id": r.event_id,
        "status": r.status,
        "mode": r.mode,
        "parent": r.parent_id,
        "attempt": r.attempt,
        "error": r.error,
        "trace_id": r.trace_id,
        "started_at": r.started_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "steps": steps,
    }


def _headline(r: ExecutionRun) -> str:
    version = f"v{r.version.number}" if r.version else "v-"
    origin = f"  {r.mode} of #{r.parent_id}" if r.parent_id else (f"  {r.mode}" if r.mode else "")
    return (
        f"#{r.id:<6} {r.status:<10} {r.workflow_name:<24} {version:<4} event {r.event_id:<6} "
        f"attempt {r.attempt}  {r.started_at:%Y-%m-%d %H:%M:%S}  trace {r.trace_id}{origin}\n"
    )


def _detail(r: ExecutionRun, out: TextIO) -> None:
    out.write(_headline(r))
    for s in r.steps.all():
        retry = f" (attempt {s.attempt})" if s.attempt > 1 else ""
        out.write(
            f"  {s.position}. {s.name} [{s.connector}.{s.action}] {s.status}{retry} {s.duration_ms:.1f} ms\n"
        )
        if s.input is not None:
            out.write(f"       input:  {compact(s.input, 2000)}\n")
        if s.output is not None:
            out.write(f"       output: {compact(s.output, 2000)}\n")
        if s.error:
            out.write(f"       error:  {s.error}\n")
    if r.error:
        out.write(f"  error: {r.error}\n")
    if r.mode in (RunMode.DEBOUNCE, RunMode.BATCH):
        out.write(f"  {grouping.describe_run(r.id, r.job_id)}\n")


def run(options: dict[str, Any], out: TextIO) -> int:
    runs = ExecutionRun.objects.order_by("-id").select_related("version").prefetch_related("steps")
    if options["run"] is not None:
        selected = list(runs.filter(pk=options["run"]))
        if not selected:
            out.write(f"No run #{options['run']}.\n")
            return 1
        if options["json"]:
            out.write(json.dumps(as_dict(selected[0], full=True), indent=2, default=str) + "\n")
        else:
            _detail(selected[0], out)
        return 0
    if options["status"]:
        runs = runs.filter(status=options["status"])
    if options["workflow"]:
        runs = runs.filter(workflow_name=options["workflow"])
    if options.get("event") is not None:
        runs = runs.filter(event_id=options["event"])
        for line in [] if options["json"] else grouping.describe_event(options["event"]):
            out.write(line + "\n")  # why it has no run of its own
    selected = list(runs[: options["limit"]])
    if options["json"]:
        out.write(json.dumps([as_dict(r) for r in selected], indent=2) + "\n")
        return 0
    if not selected:
        out.write("No runs yet.\n")
    waiting = {w.run_id: w for w in RunWait.objects.filter(
        run_id__in=[r.id for r in selected if r.status == RunStatus.WAITING], status="open")}  # fmt: skip
    for r in selected:
        out.write(_headline(r))
        if r.id in waiting:
            w = waiting[r.id]
            until = w.deadline.isoformat(timespec="seconds") if w.deadline else "no deadline"
            out.write(f"         waiting at {w.step_name}: {w.describe()} (until {until})\n")
        for s in r.steps.all():
            out.write(f"         {s.position}. {s.name:<16} {s.status:<10} {s.duration_ms:8.1f} ms\n")
        if r.error:
            out.write(f"         error: {r.error}\n")
    return 0
