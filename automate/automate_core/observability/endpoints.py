"""``/healthz``, ``/readyz`` and ``/metrics`` as plain ASGI handlers.

They are served by the lean lane of :class:`automate_core.asgi.AutomateApplication` (no Django
request, no middleware, no session: a probe costs microseconds), and by :class:`OpsApplication`,
which a worker process serves on its own port (``AUTOMATE_WORKER_METRICS_PORT``).

===========  ======================================================================================
path         answers
===========  ======================================================================================
/healthz     200 ``{"status": "ok"}`` while the process's event loop runs. No database.
/readyz      200 when the database answers and all migrations are applied, else 503 with the
             failing check (``{"status": "unavailable", "checks": {"database": ...}}``).
/metrics     Prometheus text (OpenMetrics on request); 401/403 unless the client is allowed
             (:func:`automate_core.observability.exposition.authorize`: a token, or an address
             the deployment lists; none by default on the web outside DEBUG).
/openapi.json  The OpenAPI description of the HTTP API (``automate_core/openapi.yaml``).
===========  ======================================================================================
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any

import yaml

from automate_core.observability import exposition, health

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _respond(
    scope: Scope,
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _json(scope: Scope, send: Send, status: int, data: dict[str, Any], **kw: Any) -> None:
    await _respond(scope, send, status, json.dumps(data, separators=(",", ":")).encode(), **kw)


def _read_only(handler: Handler) -> Handler:
    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in {"GET", "HEAD"}:
            await _json(
                scope,
                send,
                405,
                {"error": "method_not_allowed", "detail": "Use GET."},
                extra=[(b"allow", b"GET, HEAD")],
            )
            return
        await handler(scope, receive, send)

    wrapper.__doc__ = handler.__doc__
    return wrapper


@_read_only
async def healthz(scope: Scope, receive: Receive, send: Send) -> None:
    """The process is alive: its event loop answered."""
    await _json(scope, send, 200, {"status": "ok"})


@_read_only
async def readyz(scope: Scope, receive: Receive, send: Send) -> None:
    """The process can serve: database reachable, migrations applied."""
    result = await health.probe().check()
    status = "ready" if result.ready else "unavailable"
    await _json(scope, send, 200 if result.ready else 503, {"status": status, "checks": result.checks})


def metrics_handler(*, database: bool) -> Handler:
    """``/metrics``; with ``database`` (the web's), the scrape-time database gauges are included.

    The web's is judged by ``AUTOMATE_METRICS_ALLOWED_IPS``, a worker's (``database=False``) by
    ``AUTOMATE_WORKER_METRICS_ALLOWED_IPS`` (see ``exposition.authorize``).
    """

    @_read_only
    async def metrics(scope: Scope, receive: Receive, send: Send) -> None:
        decision = exposition.authorize(scope, worker=not database)
        if not decision.allowed:
            extra = [(b"www-authenticate", b"Bearer")] if decision.status == 401 else []
            refusal = {"error": "forbidden", "detail": decision.reason}
            await _json(scope, send, decision.status, refusal, extra=extra)
            return
        families = await exposition.database_gauges().families() if database else []
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        body, content_type = await asyncio.to_thread(exposition.render, accept, families)
        await _respond(scope, send, 200, body, content_type)

    return metrics


@functools.cache
def _openapi_document() -> bytes:
    text = resources.files("automate_core").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return json.dumps(yaml.safe_load(text), separators=(",", ":")).encode()


@_read_only
async def openapi(scope: Scope, receive: Receive, send: Send) -> None:
    """The OpenAPI description of this HTTP API (automate_core/openapi.yaml)."""
    await _respond(scope, send, 200, _openapi_document())


#: The web process's routes (served in front of Django by ``automate_core.asgi``).
ROUTES: dict[str, Handler] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics_handler(database=True),
    "/openapi.json": openapi,
}

#: A worker's routes: the queue gauges come from the web processes, so a worker does not add a
#: database read per scrape (and per replica) for them.
WORKER_ROUTES: dict[str, Handler] = {
    **{path: handler for path, handler in ROUTES.items() if path != "/openapi.json"},
    "/metrics": metrics_handler(database=False),
}


class OpsApplication:
    """An ASGI app with only the operational routes (what a worker serves on its metrics port)."""

    def __init__(self, routes: dict[str, Handler] | None = None) -> None:
        self.routes = WORKER_ROUTES if routes is None else routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        handler = self.routes.get(scope["path"])
        if handler is None:
            await _json(
                scope, send, 404, {"error": "not_found", "detail": "See /healthz, /readyz, /metrics."}
            )
            return
        await handler(scope, receive, send)
