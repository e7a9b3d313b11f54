"""The API's operations as plain descriptions (method, path, query, body, how to read the answer),
shared by :class:`~automate_client.Client` and :class:`~automate_client.AsyncClient`, which only
differ in how they send them. Also the retry policy both follow."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from automate_client import models
from automate_client.errors import ApiError, RateLimited, ServerError, TransportError

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    parse: Callable[[Any], Any]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    retry: bool = False  # safe to send again: a read, a PUT, or an event with its idempotency key


@dataclass(frozen=True, slots=True)
class Retry:
    """``attempts`` in all; waits ``backoff * 2**n`` (jittered, capped), or the server's Retry-After."""

    attempts: int = 4
    backoff: float = 0.25
    max_wait: float = 10.0

    def wait(self, attempt: int, error: Exception) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with ``error``."""
        if attempt + 1 >= self.attempts:
            return None
        if isinstance(error, ApiError):
            if error.status not in RETRY_STATUSES:
                return None
            after: float | None = error.retry_after
            if after is not None:
                return after if after <= self.max_wait else None
        elif not isinstance(error, TransportError):
            return None
        return min(self.max_wait, self.backoff * float(2**attempt) * (0.5 + random.random() / 2))


def _page(parse: Callable[[Any], Any]) -> Callable[[Any], tuple[list[Any], str | None]]:
    return lambda data: ([parse(i) for i in data["items"]], data.get("next_cursor"))


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}


def event_body(source: str, type: str, payload: Any, idempotency_key: str | None) -> dict[str, Any]:
    # a key of the client's own when none is given: a retried send cannot record the event twice
    return {
        "source": source,
        "type": type,
        "payload": payload,
        "idempotency_key": idempotency_key or uuid.uuid4().hex,
    }


def send_event(source: str, type: str, payload: Any, idempotency_key: str | None) -> Call:
    return Call(
        "POST",
        "/events",
        models.EventAccepted.from_dict,
        body=event_body(source, type, payload, idempotency_key),
        retry=True,
    )


def send_events(events: list[dict[str, Any]]) -> Call:
    body = [event_body(e["source"], e["type"], e.get("payload"), e.get("idempotency_key")) for e in events]
    return Call(
        "POST",
        "/events",
        lambda d: [models.BatchItem.from_dict(i) for i in d["items"]],
        body=body,
        retry=True,
    )


def get_event(event_id: int) -> Call:
    return Call("GET", f"/events/{int(event_id)}", models.Event.from_dict, retry=True)


def list_runs(cursor: str | None, limit: int, **filters: Any) -> Call:
    params = _clean({**filters, "cursor": cursor, "limit": limit})
    return Call("GET", "/runs", _page(models.Run.from_dict), params=params, retry=True)


def get_run(run_id: int) -> Call:
    return Call("GET", f"/runs/{int(run_id)}", models.Run.from_dict, retry=True)


def replay_run(run_id: int, mode: str, payload: Any) -> Call:
    body: dict[str, Any] = {"mode": mode}
    if payload is not None:
        body["payload"] = payload
    return Call("POST", f"/runs/{int(run_id)}/replay", models.QueuedRun.from_dict, body=body)


def cancel_run(run_id: int) -> Call:
    return Call("POST", f"/runs/{int(run_id)}/cancel", lambda d: str(d["status"]))


def list_jobs(cursor: str | None, limit: int, **filters: Any) -> Call:
    params = _clean({"status": "dead", **filters, "cursor": cursor, "limit": limit})
    return Call("GET", "/jobs", _page(models.Job.from_dict), params=params, retry=True)


def replay_jobs(dry_run: bool, **filters: Any) -> Call:
    body = {k: v for k, v in filters.items() if v not in (None, "", [], ())}
    return Call("POST", "/jobs/replay", models.JobReplay.from_dict, body={**body, "dry_run": dry_run})


def list_workflows() -> Call:
    return Call("GET", "/workflows", lambda d: [models.Workflow.from_dict(w) for w in d], retry=True)


def get_workflow(name: str) -> Call:
    return Call("GET", f"/workflows/{quote(name, safe='')}", models.Workflow.from_dict, retry=True)


def deploy(definitions: dict[str, Any], dry_run: bool) -> Call:
    return Call(
        "PUT",
        "/workflows",
        models.LoadResult.from_dict,
        params=_clean({"dry_run": dry_run}),
        body=definitions,
        retry=True,
    )


def rollback(name: str, to: int) -> Call:
    return Call(
        "POST", f"/workflows/{quote(name, safe='')}/rollback", models.Workflow.from_dict, body={"to": to}
    )


def set_enabled(name: str, enabled: bool) -> Call:
    action = "enable" if enabled else "disable"
    return Call(
        "POST", f"/workflows/{quote(name, safe='')}/{action}", lambda d: bool(d["enabled"]), retry=True
    )


def put_secret(name: str, value: str) -> Call:
    return Call("PUT", f"/secrets/{quote(name, safe='/')}", lambda d: None, body={"value": value}, retry=True)


def list_sources() -> Call:
    return Call("GET", "/sources", lambda d: [models.Source.from_dict(s) for s in d], retry=True)


def get_source(slug: str) -> Call:
    return Call("GET", f"/sources/{quote(slug, safe='')}", models.Source.from_dict, retry=True)


def list_schedules() -> Call:
    return Call("GET", "/schedules", lambda d: [models.Schedule.from_dict(s) for s in d], retry=True)


def get_schedule(name: str) -> Call:
    return Call("GET", f"/schedules/{quote(name, safe='')}", models.Schedule.from_dict, retry=True)


__all__ = ["RETRY_STATUSES", "Call", "RateLimited", "Retry", "ServerError"]
