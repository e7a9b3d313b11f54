"""The console's dashboard: the last hour per minute, and the queue now, from the database.

One page for "is it working?": events received, runs succeeded and failed, jobs that died, per
minute over the last hour (``queries.THROUGHPUT``, BRIN and partial indexes: its cost follows the
hour's volume, not the history), and the outbox by state with the age of the oldest due job (the
statement ``/metrics`` uses). Staff only, through the admin site's login.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from automate_core.admin import queries
from automate_core.observability import dead_letters
from automate_core.observability import queries as ops_queries

CHART_WIDTH = 600  # SVG user units: 60 bars of 10
CHART_HEIGHT = 60


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    css: str
    total: int
    peak: int
    bars: list[dict[str, Any]]


def _chart(title: str, css: str, minutes: list[Any], values: list[int]) -> Chart:
    peak = max(values) if values else 0
    bars = []
    for i, (minute, value) in enumerate(zip(minutes, values, strict=True)):
        height = round(value / peak * (CHART_HEIGHT - 2), 2) if peak else 0
        bars.append(
            {"x": i * 10, "y": CHART_HEIGHT - height, "height": height, "value": value, "minute": minute}
        )
    return Chart(title, css, sum(values), peak, bars)


def outbox_depth() -> dict[str, float]:
    """Jobs by state now (ready, retry, due, running, dead), the oldest due job's age in seconds,
    and the dead letters (``dead_letters``: dead jobs not resolved; ``dead`` counts them all)."""
    with connection.cursor() as cursor:
        cursor.execute(ops_queries.OUTBOX_DEPTH)
        row = cursor.fetchone()
        names = [c[0] for c in cursor.description]
    depth = dict(zip(names, row, strict=True))
    depth["dead_letters"] = dead_letters.count()
    return depth


def queue_depth() -> list[dict[str, Any]]:
    """Per queue: jobs waiting (ready or retry), due now, and the oldest due job's age in seconds
    (``observability.queries.QUEUE_DEPTH``: the by-queue index of claimable rows)."""
    jobs = reverse("admin:automate_core_outboxjob_changelist")
    with connection.cursor() as cursor:
        cursor.execute(ops_queries.QUEUE_DEPTH)
        rows = cursor.fetchall()
    return [
        {"queue": q, "waiting": w, "due": d, "oldest_due_age": a, "link": f"{jobs}?{urlencode({'queue': q})}"}
        for q, w, d, a in rows
    ]


def dashboard_context() -> dict[str, Any]:
    rows = queries.throughput()
    minutes = [r[0] for r in rows]
    received, succeeded, failed, dead = ([int(r[i]) for r in rows] for i in range(1, 5))
    finished = sum(succeeded) + sum(failed)
    depth = outbox_depth()
    return {
        "charts": [
            _chart("Events received", "received", minutes, received),
            _chart("Runs succeeded", "succeeded", minutes, succeeded),
            _chart("Runs failed", "failed", minutes, failed),
            _chart("Jobs dead", "dead", minutes, dead),
        ],
        "first_minute": minutes[0] if minutes else None,
        "last_minute": minutes[-1] if minutes else None,
        "hour": {
            "received": sum(received),
            "per_minute": sum(received) / 60.0,
            "succeeded": sum(succeeded),
            "failed": sum(failed),
            "failure_rate": (sum(failed) / finished * 100.0) if finished else None,
            "dead": sum(dead),
        },
        "depth": depth,
        "queues": queue_depth(),
        "links": {
            "failed_runs": reverse("admin:automate_core_executionrun_changelist")
            + "?status__exact=failed&since=1h",
            "dead_letters": reverse("admin:automate_core_outboxjob_changelist") + "?dead_letters=open",
            "dead_jobs": reverse("admin:automate_core_outboxjob_changelist") + "?status__exact=dead",
            "events": reverse("admin:automate_core_event_changelist") + "?since=1h",
            "jobs": reverse("admin:automate_core_outboxjob_changelist"),
        },
    }


def dashboard_view(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard: the last hour",
        **dashboard_context(),
    }
    return TemplateResponse(request, "automate_core/admin/dashboard.html", context)
