"""``POST /api/v1/events`` (one event, or a batch) and ``GET /api/v1/events/{id}``.

An event is written with its outbox job in one statement, exactly as a webhook is: a single event
goes through the ingest path's :class:`~automate_core.ingest.ingestor.EventIngestor` (and its
group commit), a batch through the same multi-row statement (``ingest.queries.INSERT_EVENTS``)
on one connection, so the batch's events and jobs commit together. Both answer after the commit.

A batch is checked item by item first: an item the token may not send (another source) or that
cannot be stored (a NUL character, NaN) is answered with its own 4xx and not written; the others
are written in the one statement. Wrong types or unknown fields anywhere refuse the whole request
(400, nothing written). The event row records the token that sent it (``headers``): the events
table is the audit trail of ingestion, so sending costs no second write.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pydantic
from django.http import HttpRequest
from ninja import Path, Router, Status

from automate_core import db
from automate_core.api.auth import Principal, TokenAuth, principal
from automate_core.api.common import answers, not_found
from automate_core.api.schemas import BatchAccepted, BatchItem, Error, EventAccepted, EventIn, EventOut
from automate_core.conf import settings
from automate_core.exceptions import ApiError, DatabaseUnavailable, IngestError
from automate_core.ingest import queries, tuning
from automate_core.ingest.batcher import rows_document
from automate_core.ingest.ingestor import EventIngestor, NewEvent, holds_nul, new_trace_id
from automate_core.models import Event, ExecutionRun

router = Router(tags=["events"])
ingestor = EventIngestor()

TOKEN_HEADER = "x-automate-api-token"


def _new_event(item: EventIn, who: Principal) -> NewEvent:
    """The event to write, or :class:`ApiError` (403 other source, 400 unstorable payload)."""
    if not who.may_send_for(item.source):
        raise ApiError(
            f"Token {who.name!r} may not send events for source {item.source!r}.",
            status=403,
            code="source_not_allowed",
        )
    try:
        text = json.dumps(item.payload, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise ApiError(f"payload: not storable as JSON ({exc}).", code="invalid_request") from exc
    if holds_nul(text, item.payload) or "\x00" in item.type or "\x00" in (item.idempotency_key or ""):
        raise ApiError("The event contains a NUL character, which PostgreSQL cannot store.")
    return NewEvent(
        source=item.source,
        event_type=item.type,
        payload_json=text,
        headers={TOKEN_HEADER: who.actor},
        idempotency_key=item.idempotency_key,
        trace_id=new_trace_id(),
    )


def _body_schema() -> dict[str, Any]:
    one = EventIn.model_json_schema()
    batch = {"type": "array", "items": one, "minItems": 1, "maxItems": int(settings.API_BATCH_MAX)}
    return {"required": True, "content": {"application/json": {"schema": {"oneOf": [one, batch]}}}}


def _parse(request: HttpRequest) -> EventIn | list[EventIn]:
    """The body as one event or a list of them; 415 for another media type, 400 naming the field."""
    media = (request.content_type or "").lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            f"Content-Type must be application/json, not {media or 'missing'!r}.",
            status=415,
            code="unsupported_media_type",
        )
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(f"The body is not valid JSON: {exc}"[:300], code="invalid_json") from exc
    if not isinstance(data, list):
        return _item(data, "")
    maximum = int(settings.API_BATCH_MAX)
    if not data:
        raise ApiError("An empty batch: send at least one event.")
    if len(data) > maximum:
        raise ApiError(
            f"A batch holds at most {maximum} events; this one has {len(data)}.", code="batch_too_large"
        )
    return [_item(item, f"[{i}]") for i, item in enumerate(data)]


def _item(data: Any, where: str) -> EventIn:
    try:
        return EventIn.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for e in exc.errors()[:10]:
            path = "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in e["loc"])
            problems.append(f"{(where + path).lstrip('.') or 'body'}: {e['msg']}")
        raise ApiError("; ".join(problems), code="invalid_request") from exc


@router.post(
    "",
    auth=TokenAuth("events:write"),
    response={**answers({200: EventAccepted | BatchAccepted, 202: EventAccepted}), 415: Error},
    openapi_extra={
        "requestBody": _body_schema(),
        "responses": {
            "202": {
                "links": {
                    "GetEvent": {
                        "operationId": "get_event",
                        "parameters": {"event_id": "$response.body#/event_id"},
                    }
                }
            }
        },
    },
    summary="Send an event, or a batch of events",
    description=(
        "One event answers 202 `{event_id, trace_id}` once committed, or 200 with the original's "
        "ids for a repeated idempotency key. A list (at most AUTOMATE_API_BATCH_MAX, 500 by "
        "default) is written in one transaction and answered 200 with one item per event, in order."
    ),
)
async def send(request: HttpRequest) -> Status[Any]:
    who = principal(request)
    body = _parse(request)
    if isinstance(body, list):
        return Status(200, BatchAccepted(items=await _batch(body, who)))
    try:
        result = await ingestor.ingest(_new_event(body, who))
    except IngestError as exc:
        raise ApiError(str(exc), status=exc.status, code=exc.reason, headers=exc.headers) from exc
    answer = EventAccepted(
        event_id=result.event_id,
        trace_id=result.trace_id,
        status="duplicate" if result.duplicate else "accepted",
    )
    return Status(200 if result.duplicate else 202, answer)


async def _batch(items: list[EventIn], who: Principal) -> list[BatchItem]:
    answers_: list[BatchItem | None] = [None] * len(items)
    rows: list[tuple[int, dict[str, Any]]] = []
    options = tuning.current()
    for index, item in enumerate(items):
        try:
            rows.append((index, _new_event(item, who).params(options.max_attempts)))
        except ApiError as exc:
            answers_[index] = BatchItem(index=index, status=exc.status, error=exc.code, detail=str(exc))
    if rows:
        for index, (event_id, trace_id, duplicate) in zip(
            [i for i, _ in rows], await _write([r for _, r in rows]), strict=True
        ):
            answers_[index] = BatchItem(
                index=index, status=200 if duplicate else 202, event_id=event_id, trace_id=trace_id
            )
    return [a for a in answers_ if a is not None]


async def _write(rows: list[dict[str, Any]]) -> list[tuple[int, str, bool]]:
    """The rows and their jobs in one statement; ``(event_id, trace_id, duplicate)`` per row."""
    timeout = tuning.current().db_timeout
    pool = await db.get_pool()
    try:
        async with asyncio.timeout(timeout * 4), pool.connection(timeout=timeout) as conn:
            cur = await conn.execute(
                queries.INSERT_EVENTS, {"rows": rows_document(rows), "max_attempts": rows[0]["max_attempts"]}
            )
            inserted = {trace_id: event_id for event_id, trace_id in await cur.fetchall()}
            missing = [r for r in rows if r["trace_id"] not in inserted]
            originals: dict[tuple[str, str], tuple[int, str]] = {}
            if missing:
                cur = await conn.execute(
                    queries.FIND_DUPLICATES,
                    {
                        "sources": [r["source"] for r in missing],
                        "keys": [r["idempotency_key"] for r in missing],
                    },
                )
                originals = {(s, k): (i, t) for s, k, i, t in await cur.fetchall()}
    except (psycopg.errors.DataError, psycopg.errors.UntranslatableCharacter) as exc:
        message = exc.diag.message_primary or "rejected by the database"
        raise ApiError(f"The batch cannot be stored (nothing was written): {message}") from exc
    except (psycopg.Error, OSError, TimeoutError) as exc:
        raise DatabaseUnavailable(
            "The event store is unavailable; nothing was recorded. Retry shortly."
        ) from exc
    results = []
    for row in rows:
        if row["trace_id"] in inserted:
            results.append((inserted[row["trace_id"]], row["trace_id"], False))
            continue
        original = originals.get((row["source"], row["idempotency_key"]))
        if original is None:  # its original's key was released in between: the sender retries
            raise DatabaseUnavailable("An event conflicted with one that no longer exists; retry the batch.")
        results.append((original[0], original[1], True))
    return results


@router.get(
    "/{event_id}",
    operation_id="get_event",
    auth=TokenAuth("runs:read"),
    response=answers({200: EventOut}, not_found=True),
    summary="One event, as received, with the runs it started",
)
async def get_event(request: HttpRequest, event_id: int = Path(..., ge=1, le=2**63 - 1)) -> EventOut:
    who = principal(request)
    event = await Event.objects.filter(pk=event_id).afirst()
    if event is None or not who.may_send_for(event.source):
        raise not_found(f"event #{event_id}")
    runs = [
        pk
        async for pk in ExecutionRun.objects.filter(event_id=event_id)
        .order_by("id")
        .values_list("id", flat=True)
    ]
    return EventOut(
        id=event.pk,
        source=event.source,
        type=event.event_type,
        payload=event.payload,
        idempotency_key=event.idempotency_key,
        trace_id=event.trace_id,
        received_at=event.received_at,
        runs=runs,
    )
