from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.models import JobStatus, OutboxJob

HELP = "List dead jobs (attempts used up, or a failure that retrying cannot fix)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=50)


def run(options: dict[str, Any], out: TextIO) -> int:
    jobs = OutboxJob.objects.filter(status=JobStatus.DEAD).select_related("event").order_by("-id")
    rows = list(jobs[: options["limit"]])
    if not rows:
        out.write("No dead jobs.\n")
    for job in rows:
        event = job.event
        what = f"{event.source}/{event.event_type} event {event.pk}" if event else job.kind
        out.write(f"job {job.pk:<6} {what}  attempts {job.attempts}  {job.updated_at:%Y-%m-%d %H:%M:%S}\n")
        out.write(f"           {job.last_error[:300]}\n")
    return 0
