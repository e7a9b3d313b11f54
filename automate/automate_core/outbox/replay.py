"""Dead jobs: listing them by filter, and replaying them as new jobs linked to the old ones.

A replay is one ``INSERT ... SELECT`` on the server (``queries.REPLAY_DEAD``), however many jobs
match: each selected dead job gets a new ``ready`` job with the same event (or task payload) and a
fresh attempt budget, linked by ``replay_of``. The dead job stays as it was, for the record. A dead
job is replayed at most once (a unique index), so repeating a command or two people replaying the
same filter at the same time does not double the work; if the replay dies too, replay that one.

An empty filter is refused: replaying every dead job must be asked for (``everything=True``,
``automate dead replay --all``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from automate_core.exceptions import AutomateError
from automate_core.models import JobStatus, OutboxJob
from automate_core.observability import metrics
from automate_core.outbox import queries


class EmptyReplayFilter(AutomateError):
    """Name what to replay (job ids, --source, --event-type, --kind, --error, --since, --until) or pass --all to replay every dead job; an empty filter is refused."""  # noqa: E501


@dataclass(frozen=True, slots=True)
class DeadFilter:
    """Which dead jobs. Every given criterion must hold; ``event_type`` takes ``*`` wildcards."""

    ids: tuple[int, ...] = ()
    source: str | None = None
    event_type: str | None = None
    kind: str | None = None
    error: str | None = None  # a case-insensitive substring of the last error
    since: datetime | None = None  # died at or after
    until: datetime | None = None  # died before
    replayed: bool | None = None  # None: both; False: not replayed yet; True: already replayed
    everything: bool = field(default=False)

    def is_empty(self) -> bool:
        return not (
            self.ids or self.source or self.event_type or self.kind or self.error or self.since or self.until
        )

    def queryset(self) -> QuerySet[OutboxJob]:
        jobs = OutboxJob.objects.filter(status=JobStatus.DEAD)
        if self.ids:
            jobs = jobs.filter(id__in=self.ids)
        if self.source:
            jobs = jobs.filter(event__source=self.source)
        if self.event_type:
            if "*" in self.event_type:
                pattern = "^" + ".*".join(re.escape(p) for p in self.event_type.split("*")) + "$"
                jobs = jobs.filter(event__event_type__regex=pattern)
            else:
                jobs = jobs.filter(event__event_type=self.event_type)
        if self.kind:
            jobs = jobs.filter(kind=self.kind)
        if self.error:
            jobs = jobs.filter(last_error__icontains=self.error)
        if self.since:
            jobs = jobs.filter(updated_at__gte=self.since)
        if self.until:
            jobs = jobs.filter(updated_at__lt=self.until)
        if self.replayed is not None:
            jobs = jobs.filter(~Q(replays=None) if self.replayed else Q(replays=None))
        return jobs


def replay(selection: DeadFilter | QuerySet[OutboxJob]) -> list[int]:
    """Replay the dead jobs selected; returns the new jobs' ids (empty filters are refused)."""
    if isinstance(selection, DeadFilter):
        if selection.is_empty() and not selection.everything:
            raise EmptyReplayFilter()
        selection = selection.queryset()
    sub_sql, params = selection.values("id").query.sql_with_params()
    with connection.cursor() as cursor:  # one statement: atomic on its own
        cursor.execute(queries.REPLAY_DEAD.format(selection=sub_sql), params)
        created = [row[0] for row in cursor.fetchall()]
    metrics.jobs_replayed.inc(len(created))
    return created


def replay_dead(*, ids: list[int] | None = None, source: str | None = None) -> list[int]:
    """Replay dead jobs by id and/or source (the original, narrower API)."""
    return replay(DeadFilter(ids=tuple(ids or ()), source=source))


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str) -> datetime:
    """``2026-05-01``, ``2026-05-01T12:00``, or a relative ``90m``/``2h``/``7d`` (that long ago)."""
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = match.groups()
        return timezone.now() - timedelta(**{_UNITS[unit]: float(amount)})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise AutomateError(
            f"Cannot read the time {value!r}: use an ISO date or time (2026-05-01, "
            f"2026-05-01T12:00) or how long ago (90m, 2h, 7d)."
        ) from exc
    return when if timezone.is_aware(when) else timezone.make_aware(when, timezone.get_current_timezone())
