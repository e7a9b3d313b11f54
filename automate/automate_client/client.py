"""``Client`` (sync) and ``AsyncClient``: the same methods, over httpx.

::

    from automate_client import Client

    with Client("https://automate.example.com", token="atk_...") as api:
        sent = api.send_event("shop", "order.created", {"id": 42}, idempotency_key="order-42")
        for run in api.iter_runs(status="failed", since="2h"):
            print(run.id, run.workflow, run.error)

Reads, PUTs and event sends are retried on connection errors, 429 and 502/503/504 (honouring
Retry-After); an event is always sent with an idempotency key (the client makes one when none is
given), so a retry never records it twice. Other writes (replay, cancel, rollback) are sent once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from automate_client import _calls as calls
from automate_client import models
from automate_client.errors import ApiError, TransportError, error_for

API_PREFIX = "/api/v1"


def _base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "User-Agent": "automate-client/1",
        "Accept": "application/json",
    }


def _answer(call: calls.Call, response: httpx.Response) -> Any:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if 300 <= response.status_code < 400:  # e.g. the server redirects http:// to https://
        location = response.headers.get("location", "")
        raise ApiError(
            response.status_code, "redirect", f"The server redirects to {location!r}; use that URL."
        )
    if response.status_code >= 400:
        raise error_for(response.status_code, body, response.headers.get("retry-after"))
    return call.parse(body)


class Client:
    """A synchronous client. ``url`` is the platform's address (``/api/v1`` is added)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retry: calls.Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or calls.Retry()
        self._http = httpx.Client(
            base_url=_base(url), headers=_headers(token), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: calls.Call) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    response = self._http.request(call.method, call.path, params=call.params, json=call.body)
                except httpx.TransportError as exc:
                    raise TransportError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
                return _answer(call, response)
            except (ApiError, TransportError) as exc:
                wait = self.retry.wait(attempt, exc) if call.retry else None
                if wait is None:
                    raise
                time.sleep(wait)
                attempt += 1

    def send_event(
        self, source: str, type: str, payload: Any, *, idempotency_key: str | None = None
    ) -> models.EventAccepted:
        """Record an event; ``duplicate`` when the key was used before for this source."""
        return self._run(calls.send_event(source, type, payload, idempotency_key))  # type: ignore[no-any-return]

    def send_events(self, events: list[dict[str, Any]]) -> list[models.BatchItem]:
        """A batch (dicts: source, type, payload, idempotency_key) in one transaction; a BatchItem each."""
        return self._run(calls.send_events(events))  # type: ignore[no-any-return]

    def get_event(self, event_id: int) -> models.Event:
        return self._run(calls.get_event(event_id))  # type: ignore[no-any-return]

    def list_runs(
        self, *, cursor: str | None = None, limit: int = 50, **filters: Any
    ) -> tuple[list[models.Run], str | None]:
        """One page ``(runs, next_cursor)``.

        Filters: workflow, status, source, event_type, trace_id, since, until."""
        return self._run(calls.list_runs(cursor, limit, **filters))  # type: ignore[no-any-return]

    def get_run(self, run_id: int) -> models.Run:
        """One run with its steps."""
        return self._run(calls.get_run(run_id))  # type: ignore[no-any-return]

    def replay_run(self, run_id: int, mode: str = "current", *, payload: Any = None) -> models.QueuedRun:
        """Replay as a new run: original, current, resume, or edited (with ``payload``)."""
        return self._run(calls.replay_run(run_id, mode, payload))  # type: ignore[no-any-return]

    def cancel_run(self, run_id: int) -> str:
        return self._run(calls.cancel_run(run_id))  # type: ignore[no-any-return]

    def list_dead_jobs(
        self, *, cursor: str | None = None, limit: int = 50, **filters: Any
    ) -> tuple[list[models.Job], str | None]:
        """One page of dead jobs; filters: source, event_type, kind, error, since, until."""
        return self._run(calls.list_jobs(cursor, limit, **filters))  # type: ignore[no-any-return]

    def replay_dead_jobs(self, *, dry_run: bool = False, **filters: Any) -> models.JobReplay:
        """Filters: ids, source, event_type, kind, error, since, until, or all=True."""
        return self._run(calls.replay_jobs(dry_run, **filters))  # type: ignore[no-any-return]

    def list_workflows(self) -> list[models.Workflow]:
        return self._run(calls.list_workflows())  # type: ignore[no-any-return]

    def get_workflow(self, name: str) -> models.Workflow:
        """One workflow with its definition and versions."""
        return self._run(calls.get_workflow(name))  # type: ignore[no-any-return]

    def deploy(self, definitions: dict[str, Any], *, dry_run: bool = False) -> models.LoadResult:
        """Load an ``automate load`` file (as a dict): counts, and per workflow the diff of its file."""
        return self._run(calls.deploy(definitions, dry_run))  # type: ignore[no-any-return]

    def rollback(self, name: str, to: int) -> models.Workflow:
        return self._run(calls.rollback(name, to))  # type: ignore[no-any-return]

    def enable_workflow(self, name: str) -> bool:
        return self._run(calls.set_enabled(name, True))  # type: ignore[no-any-return]

    def disable_workflow(self, name: str) -> bool:
        return self._run(calls.set_enabled(name, False))  # type: ignore[no-any-return]

    def put_secret(self, name: str, value: str) -> None:
        """Store a secret in the db backend; nothing reads it back through the API."""
        return self._run(calls.put_secret(name, value))  # type: ignore[no-any-return]

    def list_sources(self) -> list[models.Source]:
        return self._run(calls.list_sources())  # type: ignore[no-any-return]

    def get_source(self, slug: str) -> models.Source:
        return self._run(calls.get_source(slug))  # type: ignore[no-any-return]

    def list_schedules(self) -> list[models.Schedule]:
        return self._run(calls.list_schedules())  # type: ignore[no-any-return]

    def get_schedule(self, name: str) -> models.Schedule:
        return self._run(calls.get_schedule(name))  # type: ignore[no-any-return]

    def iter_runs(self, *, page_size: int = 100, **filters: Any) -> Iterator[models.Run]:
        """Every run matching the filters, newest first, fetched a page at a time."""
        cursor = None
        while True:
            runs, cursor = self.list_runs(cursor=cursor, limit=page_size, **filters)
            yield from runs
            if cursor is None:
                return

    def iter_dead_jobs(self, *, page_size: int = 100, **filters: Any) -> Iterator[models.Job]:
        cursor = None
        while True:
            jobs, cursor = self.list_dead_jobs(cursor=cursor, limit=page_size, **filters)
            yield from jobs
            if cursor is None:
                return


class AsyncClient:
    """The asynchronous client: the same methods, awaited (``iter_*`` are async iterators)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retry: calls.Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or calls.Retry()
        self._http = httpx.AsyncClient(
            base_url=_base(url), headers=_headers(token), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: calls.Call) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    response = await self._http.request(
                        call.method, call.path, params=call.params, json=call.body
                    )
                except httpx.TransportError as exc:
                    raise TransportError(f"{call.method} {call.path}: {type(exc).__name__}: {exc}") from exc
                return _answer(call, response)
            except (ApiError, TransportError) as exc:
                wait = self.retry.wait(attempt, exc) if call.retry else None
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                attempt += 1

    async def send_event(
        self, source: str, type: str, payload: Any, *, idempotency_key: str | None = None
    ) -> models.EventAccepted:
        """Record an event; ``duplicate`` when the key was used before for this source."""
        return await self._run(calls.send_event(source, type, payload, idempotency_key))  # type: ignore[no-any-return]

    async def send_events(self, events: list[dict[str, Any]]) -> list[models.BatchItem]:
        """A batch (dicts: source, type, payload, idempotency_key) in one transaction; a BatchItem each."""
        return await self._run(calls.send_events(events))  # type: ignore[no-any-return]

    async def get_event(self, event_id: int) -> models.Event:
        return await self._run(calls.get_event(event_id))  # type: ignore[no-any-return]

    async def list_runs(
        self, *, cursor: str | None = None, limit: int = 50, **filters: Any
    ) -> tuple[list[models.Run], str | None]:
        """One page ``(runs, next_cursor)``.

        Filters: workflow, status, source, event_type, trace_id, since, until."""
        return await self._run(calls.list_runs(cursor, limit, **filters))  # type: ignore[no-any-return]

    async def get_run(self, run_id: int) -> models.Run:
        """One run with its steps."""
        return await self._run(calls.get_run(run_id))  # type: ignore[no-any-return]

    async def replay_run(
        self, run_id: int, mode: str = "current", *, payload: Any = None
    ) -> models.QueuedRun:
        """Replay as a new run: original, current, resume, or edited (with ``payload``)."""
        return await self._run(calls.replay_run(run_id, mode, payload))  # type: ignore[no-any-return]

    async def cancel_run(self, run_id: int) -> str:
        return await self._run(calls.cancel_run(run_id))  # type: ignore[no-any-return]

    async def list_dead_jobs(
        self, *, cursor: str | None = None, limit: int = 50, **filters: Any
    ) -> tuple[list[models.Job], str | None]:
        """One page of dead jobs; filters: source, event_type, kind, error, since, until."""
        return await self._run(calls.list_jobs(cursor, limit, **filters))  # type: ignore[no-any-return]

    async def replay_dead_jobs(self, *, dry_run: bool = False, **filters: Any) -> models.JobReplay:
        """Filters: ids, source, event_type, kind, error, since, until, or all=True."""
        return await self._run(calls.replay_jobs(dry_run, **filters))  # type: ignore[no-any-return]

    async def list_workflows(self) -> list[models.Workflow]:
        return await self._run(calls.list_workflows())  # type: ignore[no-any-return]

    async def get_workflow(self, name: str) -> models.Workflow:
        """One workflow with its definition and versions."""
        return await self._run(calls.get_workflow(name))  # type: ignore[no-any-return]

    async def deploy(self, definitions: dict[str, Any], *, dry_run: bool = False) -> models.LoadResult:
        """Load an ``automate load`` file (as a dict): counts, and per workflow the diff of its file."""
        return await self._run(calls.deploy(definitions, dry_run))  # type: ignore[no-any-return]

    async def rollback(self, name: str, to: int) -> models.Workflow:
        return await self._run(calls.rollback(name, to))  # type: ignore[no-any-return]

    async def enable_workflow(self, name: str) -> bool:
        return await self._run(calls.set_enabled(name, True))  # type: ignore[no-any-return]

    async def disable_workflow(self, name: str) -> bool:
        return await self._run(calls.set_enabled(name, False))  # type: ignore[no-any-return]

    async def put_secret(self, name: str, value: str) -> None:
        """Store a secret in the db backend; nothing reads it back through the API."""
        return await self._run(calls.put_secret(name, value))  # type: ignore[no-any-return]

    async def list_sources(self) -> list[models.Source]:
        return await self._run(calls.list_sources())  # type: ignore[no-any-return]

    async def get_source(self, slug: str) -> models.Source:
        return await self._run(calls.get_source(slug))  # type: ignore[no-any-return]

    async def list_schedules(self) -> list[models.Schedule]:
        return await self._run(calls.list_schedules())  # type: ignore[no-any-return]

    async def get_schedule(self, name: str) -> models.Schedule:
        return await self._run(calls.get_schedule(name))  # type: ignore[no-any-return]

    async def iter_runs(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[models.Run]:
        cursor = None
        while True:
            runs, cursor = await self.list_runs(cursor=cursor, limit=page_size, **filters)
            for run in runs:
                yield run
            if cursor is None:
                return

    async def iter_dead_jobs(self, *, page_size: int = 100, **filters: Any) -> AsyncIterator[models.Job]:
        cursor = None
        while True:
            jobs, cursor = await self.list_dead_jobs(cursor=cursor, limit=page_size, **filters)
            for job in jobs:
                yield job
            if cursor is None:
                return
