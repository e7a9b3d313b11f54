"""``/api/v1/jobs``: dead jobs by filter (keyset pages), and their replay as new jobs.

The filter is ``automate dead``'s (``outbox.replay.DeadFilter``): what ``GET /jobs?status=dead&
source=shop`` lists is what ``POST /jobs/replay {"source": "shop"}`` replays. An empty filter is
refused unless ``all`` is true; ``dry_run`` answers the count without replaying. Dead jobs are
read through the partial index ``automate_outbox_dead``.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router

from automate_core.api.auth import TokenAuth, principal
from automate_core.api.common import answers, audited, decode_cursor, encode_cursor, page_size
from automate_core.api.schemas import JobOut, JobPage, JobReplayIn, JobReplayOut
from automate_core.exceptions import ApiError, AutomateError
from automate_core.models import OutboxJob
from automate_core.outbox import replay as dead

router = Router(tags=["jobs"])


def _when(name: str, value: str | None) -> Any:
    if not value:
        return None
    try:
        return dead.parse_when(value)
    except AutomateError as exc:
        raise ApiError(f"{name}: {exc}") from exc
    except (OverflowError, ValueError) as exc:  # an age or a date out of range: 10000000d
        raise ApiError(f"{name}: {value!r} is out of range.") from exc


def _selection(
    *,
    ids: list[int] | None = None,
    source: str | None,
    event_type: str | None,
    kind: str | None,
    error: str | None,
    since: str | None,
    until: str | None,
    replayable: bool,
    everything: bool = False,
) -> dead.DeadFilter:
    return dead.DeadFilter(
        ids=tuple(ids or ()),
        source=source or None,
        event_type=event_type or None,
        kind=kind,
        error=error or None,
        since=_when("since", since),
        until=_when("until", until),
        replayed=False if replayable else None,
        everything=everything,
    )


def _out(job: OutboxJob, replayed_as: list[int]) -> JobOut:
    event = job.event
    return JobOut(
        id=job.pk,
        kind=job.kind,
        status=job.status,
        event_id=job.event_id,
        source=event.source if event else None,
        event_type=event.event_type if event else None,
        attempts=job.spent_attempts,
        last_error=job.last_error,
        updated_at=job.updated_at,
        replayed_as=replayed_as,
    )


@router.get(
    "",
    auth=TokenAuth("runs:read"),
    response=answers({200: JobPage}),
    summary="Dead jobs, newest first, by filter",
)
async def list_jobs(
    request: HttpRequest,
    status: Literal["dead"] = "dead",
    source: str | None = Query(None, max_length=100),
    event_type: str | None = Query(None, max_length=200, description="* is a wildcard: order.*"),
    kind: Literal["event", "task"] | None = None,
    error: str | None = Query(None, max_length=500),
    since: str | None = Query(None, description="Died at or after: ISO time, or an age (90m, 2h, 7d)."),
    until: str | None = None,
    cursor: str | None = Query(None, max_length=100),
    limit: int = 50,
) -> JobPage:
    size = page_size(limit)
    after = decode_cursor("job", cursor)
    selection = _selection(
        source=source,
        event_type=event_type,
        kind=kind,
        error=error,
        since=since,
        until=until,
        replayable=False,
    )
    jobs = selection.queryset().select_related("event").order_by("-id")
    if principal(request).sources:  # a source-limited token sees the jobs of its sources only
        jobs = jobs.filter(event__source__in=sorted(principal(request).sources))
    if after is not None:
        jobs = jobs.filter(id__lt=after)
    rows = [job async for job in jobs[: size + 1]]
    more = len(rows) > size
    rows = rows[:size]
    replays: dict[int, list[int]] = {}
    async for new_id, old_id in OutboxJob.objects.filter(replay_of__in=[j.pk for j in rows]).values_list(
        "id", "replay_of"
    ):
        if old_id is not None:
            replays.setdefault(old_id, []).append(new_id)
    return JobPage(
        items=[_out(j, replays.get(j.pk, [])) for j in rows],
        next_cursor=encode_cursor("job", rows[-1].pk) if more else None,
    )


@router.post(
    "/replay",
    auth=TokenAuth("runs:write"),
    response=answers({200: JobReplayOut}),
    summary="Replay dead jobs by filter (dry_run: count only; an empty filter needs all=true)",
)
async def replay_jobs(request: HttpRequest, body: JobReplayIn) -> JobReplayOut:
    selection = _selection(
        ids=body.ids,
        source=body.source,
        event_type=body.event_type,
        kind=body.kind,
        error=body.error,
        since=body.since,
        until=body.until,
        replayable=True,
        everything=body.all,
    )
    if selection.is_empty() and not selection.everything:
        raise dead.EmptyReplayFilter()
    if not selection.is_empty() and body.all:
        raise ApiError("Give a filter or all=true, not both.")
    matched = await selection.queryset().acount()
    if body.dry_run:
        return JobReplayOut(matched=matched, replayed=[], dry_run=True)
    filters = body.model_dump(exclude={"dry_run"}, exclude_defaults=True)
    created = await audited(
        principal(request),
        "jobs.replay",
        "jobs:dead",
        lambda: dead.replay(selection),
        lambda new: {"filter": filters, "replayed": len(new)},
    )
    return JobReplayOut(matched=matched, replayed=created, dry_run=False)
