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


class _Methods:
    """The operations; ``_run`` sends a call (sync or async, by subclass)."""

    def _run(self, call: calls.Call) -> Any:
        raise NotImplementedError

    def send_event(self, source: str, type: str, payload: Any, *, idempotency_key: str | None = None) -> Any:
        """Record an event; ``EventAccepted.duplicate`` when the key was used before (same source)."""
        return self._run(calls.send_event(source, type, payload, idempotency_key))

    def send_events(self, events: list[dict[str, Any]]) -> Any:
        """A batch (dicts: source, type, payload, idempotency_key) in one transaction; a BatchItem each."""
        return self._run(calls.send_events(events))

    def get_event(self, event_id: int) -> Any:
        return self._run(calls.get_event(event_id))

    def list_runs(self, *, cursor: str | None = None, limit: int = 50, **filters: Any) -> Any:
        """One page: ``(runs, next_cursor)``.

        Filters: workflow, status, source, event_type, trace_id, since, until."""
        return self._run(calls.list_runs(cursor, limit, **filters))

    def get_run(self, run_id: int) -> Any:
        return self._run(calls.get_run(run_id))

    def replay_run(self, run_id: int, mode: str = "current", *, payload: Any = None) -> Any:
        return self._run(calls.replay_run(run_id, mode, payload))

    def cancel_run(self, run_id: int) -> Any:
        return self._run(calls.cancel_run(run_id))

    def list_dead_jobs(self, *, cursor: str | None = None, limit: int = 50, **filters: Any) -> Any:
        return self._run(calls.list_jobs(cursor, limit, **filters))

    def replay_dead_jobs(self, *, dry_run: bool = False, **filters: Any) -> Any:
        """Filters: ids, source, event_type, kind, error, since, until, or all=True."""
        return self._run(calls.replay_jobs(dry_run, **filters))

    def list_workflows(self) -> Any:
        return self._run(calls.list_workflows())

    def get_workflow(self, name: str) -> Any:
        return self._run(calls.get_workflow(name))

    def deploy(self, definitions: dict[str, Any], *, dry_run: bool = False) -> Any:
        """Load an ``automate load`` file (as a dict): ``LoadResult`` with counts and per-workflow diffs."""
        return self._run(calls.deploy(definitions, dry_run))

    def rollback(self, name: str, to: int) -> Any:
        return self._run(calls.rollback(name, to))

    def enable_workflow(self, name: str) -> Any:
        return self._run(calls.set_enabled(name, True))

    def disable_workflow(self, name: str) -> Any:
        return self._run(calls.set_enabled(name, False))

    def put_secret(self, name: str, value: str) -> Any:
        """Store a secret in the db backend. Nothing ever reads it back through the API."""
        return self._run(calls.put_secret(name, value))

    def list_sources(self) -> Any:
        return self._run(calls.list_sources())

    def get_source(self, slug: str) -> Any:
        return self._run(calls.get_source(slug))

    def list_schedules(self) -> Any:
        return self._run(calls.list_schedules())

    def get_schedule(self, name: str) -> Any:
        return self._run(calls.get_schedule(name))


class Client(_Methods):
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


class AsyncClient(_Methods):
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
