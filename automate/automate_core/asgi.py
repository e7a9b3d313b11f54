"""The ASGI application: Django for everything, plus a lean lane for ``/hooks/``.

Django's ASGI request path costs about a millisecond of CPU per request on a small machine, which
caps webhook ingestion far below what PostgreSQL can take. Webhooks need none of it (no session,
no CSRF, no middleware, no URL resolver), so :class:`AutomateApplication` hands ``/hooks/<slug>``
straight to :class:`~automate_core.ingest.service.WebhookService`, the same service the Django
view ``WebhookView`` uses. Set ``AUTOMATE_INGEST_FAST_PATH = False`` to send them through Django.

The lane reads a webhook's body within ``AUTOMATE_HTTP_BODY_TIMEOUT`` whatever server runs it
(``automate serve`` also cuts slow headers and bodies on every route, ``ingest/deadlines.py``);
a sender past it gets 408, counted against its source.

It also answers the ASGI lifespan protocol (Django does not): at startup it starts the task that
releases expired idempotency keys (``ingest/retention.py``); at shutdown it fails what is still
queued for the group commit with a 503, writes the rejection counts and closes the database pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("automate.asgi")

HOOKS_PREFIX = "/hooks/"


def _client_gone() -> Exception:
    from automate_core.ingest.service import ClientGone

    return ClientGone()


class AutomateApplication:
    def __init__(self, django_app: ASGIApp, *, fast_path: bool = True) -> None:
        from automate_core.ingest.views import service
        from automate_core.observability import endpoints, tracing

        self.django_app = django_app
        self.fast_path = fast_path
        self.service = service()
        # /healthz, /readyz, /metrics: answered here, never by Django (observability.endpoints)
        self.ops_routes = endpoints.ROUTES
        # each webhook request gets the trace id its event will carry (observability.tracing)
        self.request_trace = tracing.request_trace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"] in self.ops_routes:
            await self.ops_routes[scope["path"]](scope, receive, send)
        elif self.fast_path and scope["type"] == "http" and scope["path"].startswith(HOOKS_PREFIX):
            incoming = next((v for k, v in scope.get("headers", ()) if k == b"traceparent"), None)
            attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
            with self.request_trace("webhook", incoming, **attributes):
                await self._webhook(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        from automate_core import db
        from automate_core.conf import settings
        from automate_core.ingest import retention
        from automate_core.ingest.ingestor import close_committer
        from automate_core.observability import process

        release: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                process.web_startup()
                if float(settings.INGEST_KEY_RELEASE_INTERVAL) > 0:
                    release = asyncio.get_running_loop().create_task(retention.release_periodically())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if release is not None:
                    release.cancel()
                    await asyncio.gather(release, return_exceptions=True)
                await close_committer()
                await self.service.rejections.close()
                await process.web_shutdown()
                await db.close_pool()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        from automate_core.ingest.service import WebhookResponse

        slug = scope["path"][len(HOOKS_PREFIX) :].rstrip("/")
        if not slug or "/" in slug:
            await self.django_app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        async def read_body(limit: int) -> bytes:
            return await _read_body(receive, headers, limit)

        try:
            response = await self.service.handle(slug, scope["method"], headers, read_body)
            if response.status == 499:  # the client is gone (counted): nobody to answer
                return
        except Exception:
            logger.exception("webhook %s: unexpected error", slug)
            response = WebhookResponse(
                500,
                {"error": "internal_error", "detail": "Unexpected error; nothing was recorded."},
            )
        await _send_json(send, response.status, response.encode(), response.headers)


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """Read the request body, refusing (413) as soon as it exceeds ``limit`` bytes.

    At most ``limit`` bytes plus one chunk of the server's are ever held: a declared
    Content-Length over the limit is refused before reading, a chunked body when it passes it.
    """
    from automate_core.conf import settings
    from automate_core.exceptions import IngestError
    from automate_core.ingest.service import BodyTooLarge

    too_large = f"The body is larger than this source's limit of {limit} bytes."
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    deadline = float(settings.HTTP_BODY_TIMEOUT)
    try:
        async with asyncio.timeout(deadline if deadline > 0 else None):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _client_gone()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(too_large)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise IngestError(
            f"The body did not arrive within {deadline:g} s (AUTOMATE_HTTP_BODY_TIMEOUT); nothing was "
            "recorded. Send the whole request at once.",
            status=408,
            reason="request_timeout",
        ) from None


async def _send_json(send: Send, status: int, body: bytes, extra: dict[str, str]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def build_application() -> ASGIApp:
    """Django's ASGI handler wrapped with the webhook lane and lifespan support."""
    from django.core.asgi import get_asgi_application

    django_app = get_asgi_application()
    from automate_core.conf import settings

    return AutomateApplication(django_app, fast_path=bool(settings.INGEST_FAST_PATH))  # type: ignore[arg-type]
