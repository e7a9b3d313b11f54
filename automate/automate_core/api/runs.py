"""``/api/v1/runs``: list (filters, keyset pages), one run with its steps, replay and cancel.

Pages are keyset pages on the run id, newest first: ``WHERE id < <cursor> ORDER BY id DESC
LIMIT n`` walks the primary key backwards, so page 10 000 costs what page 1 costs and no count is
ever taken. A trace id is an exact match on ``automate_run_trace``; a workflow name is resolved to
its id first. Step inputs and outputs were masked before they were written (as the console shows
them) and are masked again on the way out, with the values registered in this process.

Replays and cancellation call the same functions as ``automate replay`` and ``automate cancel``
(``execution.replay``), each in one transaction with its audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, LiteralString

import psycopg
from django.http import HttpRequest
from ninja import Path, Query, Router, Status
from psycopg.rows import dict_row

from automate_core import db
from automate_core.api.auth import TokenAuth, principal
from automate_core.api.common import answers, audited, decode_cursor, encode_cursor, not_found, page_size
from automate_core.api.schemas import Cancelled, QueuedRun, ReplayIn, RunDetail, RunOut, RunPage, StepOut
from automate_core.conf import settings
from automate_core.exceptions import ApiError, AutomateError, DatabaseUnavailable, WorkflowError
from automate_core.execution import replay as replays
from automate_core.masking import masker
from automate_core.models import ExecutionRun
from automate_core.outbox.replay import parse_when

router = Router(tags=["runs"])

MAX_ID = 2**63 - 1
RunId = Path(..., ge=1, le=MAX_ID)
RunState = Literal["queued", "running", "waiting", "succeeded", "failed", "skipped", "cancelled", "reused"]


def _out(run: ExecutionRun) -> dict[str, Any]:
    event = run.event if run.event_id else None
    return {
        "id": run.pk,
        "workflow": run.workflow_name,
        "version": run.version.number if run.version_id and run.version else None,
        "event_id": run.event_id,
        "source": event.source if event else None,
        "event_type": event.event_type if event else None,
        "status": run.status,
        "mode": run.mode,
        "parent": run.parent_id,
        "attempt": run.attempt,
        "error": masker.mask(run.error),
        "trace_id": run.trace_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def _moment(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_when(value)
    except AutomateError as exc:
        raise ApiError(f"{name}: {exc}") from exc
    except (OverflowError, ValueError) as exc:  # an age or a date out of range: 10000000d
        raise ApiError(f"{name}: {value!r} is out of range.") from exc


@dataclass(frozen=True, slots=True)
class RunFilter:
    after: int | None = None
    workflow: str | None = None
    workflow_id: int | None = None  # the workflow's id, when a workflow of that name exists
    status: str | None = None
    source: str | None = None
    event_type: str | None = None
    trace_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sources: list[str] | None = None  # a source-limited token sees the runs of its sources only


WORKFLOW_ID: LiteralString = "SELECT id FROM automate_workflow WHERE name = %(name)s"

# The version number is a subquery per row of the page, not a join: a join with the (small, often
# freshly changed) versions table may be planned as a hash join, whose output the planner treats as
# unordered, and the page then sorts every matching run instead of walking the primary key.
LIST_RUNS: LiteralString = """
SELECT r.id, r.workflow_name AS workflow,
       (SELECT v.number FROM automate_workflow_version v WHERE v.id = r.version_id) AS version,
       r.event_id, e.source, e.event_type, r.status, r.mode, r.parent_id AS parent, r.attempt,
       r.error, r.trace_id, r.started_at, r.finished_at
FROM automate_run r
LEFT JOIN automate_event e ON e.id = r.event_id
WHERE true"""

# each filter, as the condition it adds (values are always parameters)
CONDITIONS: dict[str, LiteralString] = {
    "after": " AND r.id < %(after)s",
    "workflow_id": " AND r.workflow_id = %(workflow_id)s",
    "workflow": " AND r.workflow_name = %(workflow)s",
    "status": " AND r.status = %(status)s",
    "source": " AND e.source = %(source)s",
    "event_type": " AND e.event_type = %(event_type)s",
    "trace_id": " AND r.trace_id = %(trace_id)s",
    "since": " AND r.started_at >= %(since)s",
    "until": " AND r.started_at < %(until)s",
    "sources": " AND e.source = ANY(%(sources)s)",
}


def list_query(filters: RunFilter, limit: int) -> tuple[LiteralString, dict[str, Any]]:
    """The page's statement: newest first from the primary key (or the trace id index)."""
    params: dict[str, Any] = {"limit": limit}
    sql = LIST_RUNS
    for key, condition in CONDITIONS.items():
        value = getattr(filters, key)
        if key == "workflow" and filters.workflow_id is not None:
            continue  # the workflow's id says it (and outlives a rename of the runs' name column)
        if value is not None:
            sql += condition
            params[key] = value
    return sql + " ORDER BY r.id DESC LIMIT %(limit)s", params


@router.get(
    "",
    operation_id="list_runs",
    auth=TokenAuth("runs:read"),
    response=answers({200: RunPage}),
    openapi_extra={
        "responses": {
            "200": {
                "links": {
                    "GetFirstRun": {
                        "operationId": "get_run",
                        "parameters": {"run_id": "$response.body#/items/0/id"},
                    },
                    "ReplayFirstRun": {
                        "operationId": "replay_run",
                        "parameters": {"run_id": "$response.body#/items/0/id"},
                    },
                }
            }
        }
    },
    summary="Runs, newest first, by filter, a page at a time",
)
async def list_runs(
    request: HttpRequest,
    workflow: str | None = Query(None, max_length=200),
    status: RunState | None = None,
    source: str | None = Query(None, max_length=100),
    event_type: str | None = Query(None, max_length=200),
    trace_id: str | None = Query(None, max_length=32),
    since: str | None = Query(None, description="Started at or after: ISO date-time, or an age (2h, 7d)."),
    until: str | None = Query(None, description="Started before: ISO date-time, or an age."),
    cursor: str | None = Query(None, max_length=100, description="next_cursor of the previous page."),
    limit: int = Query(50, description="1 to AUTOMATE_API_PAGE_MAX (200)."),
) -> RunPage:
    size = page_size(limit)
    filters = RunFilter(
        after=decode_cursor("run", cursor),
        workflow=workflow or None,
        status=status,
        source=source or None,
        event_type=event_type or None,
        trace_id=trace_id or None,
        since=_moment("since", since),
        until=_moment("until", until),
        sources=sorted(principal(request).sources) or None,
    )
    try:
        pool = await db.get_pool()
        async with pool.connection(timeout=settings.INGEST_DB_TIMEOUT) as conn:
            cur = conn.cursor(row_factory=dict_row)
            if filters.workflow:
                await cur.execute(WORKFLOW_ID, {"name": filters.workflow})
                found = await cur.fetchone()
                filters = replace(filters, workflow_id=found["id"] if found else None)
            sql, params = list_query(filters, size + 1)
            await cur.execute(sql, params)
            rows = await cur.fetchall()
    except (psycopg.OperationalError, psycopg.InterfaceError, OSError, TimeoutError) as exc:
        raise DatabaseUnavailable() from exc
    more = len(rows) > size
    rows = rows[:size]
    items = [RunOut(**{**row, "error": masker.mask(row["error"])}) for row in rows]
    return RunPage(items=items, next_cursor=encode_cursor("run", rows[-1]["id"]) if more else None)


@router.get(
    "/{run_id}",
    operation_id="get_run",
    auth=TokenAuth("runs:read"),
    response=answers({200: RunDetail}, not_found=True),
    summary="One run with its steps (inputs and outputs masked)",
)
async def get_run(request: HttpRequest, run_id: int = RunId) -> RunDetail:
    run = await ExecutionRun.objects.select_related("version", "event").filter(pk=run_id).afirst()
    if run is None or not principal(request).may_send_for(run.event.source if run.event_id else ""):
        raise not_found(f"run #{run_id}")
    steps = [
        StepOut(
            position=s.position,
            name=s.name,
            connector=s.connector,
            action=s.action,
            status=s.status,
            attempt=s.attempt,
            input=masker.mask_data(s.input),
            output=masker.mask_data(s.output),
            error=masker.mask(s.error),
            started_at=s.started_at,
            finished_at=s.finished_at,
            duration_ms=s.duration_ms,
        )
        async for s in run.steps.order_by("position", "id")
    ]
    return RunDetail(**_out(run), steps=steps)


async def _existing(run_id: int) -> None:
    if not await ExecutionRun.objects.filter(pk=run_id).aexists():
        raise not_found(f"run #{run_id}")


def _conflict(exc: WorkflowError) -> ApiError:
    return ApiError(str(exc), status=409, code="conflict")


@router.post(
    "/{run_id}/replay",
    operation_id="replay_run",
    auth=TokenAuth("runs:write"),
    openapi_extra={
        "responses": {
            "202": {
                "links": {
                    "GetReplay": {
                        "operationId": "get_run",
                        "parameters": {"run_id": "$response.body#/run_id"},
                    },
                    "CancelReplay": {
                        "operationId": "cancel_run",
                        "parameters": {"run_id": "$response.body#/run_id"},
                    },
                }
            }
        }
    },
    response=answers({202: QueuedRun}, not_found=True, conflict=True),
    summary="Replay a run as a new run (original, current, resume or edited)",
)
async def replay_run(request: HttpRequest, body: ReplayIn, run_id: int = RunId) -> Status[QueuedRun]:
    if body.mode == "edited" and body.payload is None:
        raise ApiError("The 'edited' mode needs the edited payload.")
    if body.mode != "edited" and body.payload is not None:
        raise ApiError("A payload is only given with the 'edited' mode.")
    await _existing(run_id)
    try:
        new = await audited(
            principal(request),
            "runs.replay",
            f"run:{run_id}",
            lambda: replays.replay(run_id, body.mode, payload=body.payload),
            lambda run: {"mode": body.mode, "new_run": run.pk},
        )
    except WorkflowError as exc:
        raise _conflict(exc) from exc
    return Status(202, QueuedRun(run_id=new.pk, job_id=new.job_id, mode=body.mode, parent=run_id))


@router.post(
    "/{run_id}/cancel",
    operation_id="cancel_run",
    auth=TokenAuth("runs:write"),
    response=answers({200: Cancelled}, not_found=True, conflict=True),
    summary="Cancel a queued or running run (a running one stops before its next step)",
)
async def cancel_run(request: HttpRequest, run_id: int = RunId) -> Cancelled:
    await _existing(run_id)
    try:
        status = await audited(
            principal(request), "runs.cancel", f"run:{run_id}", lambda: replays.cancel(run_id), lambda s: {}
        )
    except WorkflowError as exc:
        raise _conflict(exc) from exc
    return Cancelled(run_id=run_id, status=str(status))
