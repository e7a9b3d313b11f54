"""``WebhookService``: one webhook request in, one HTTP answer out, independent of the web framework.

The order of checks is the order of cost: method, source, size, content type, signature, JSON,
then the database write. Every refusal has a status, a reason code and a message; the JSON error
body is ``{"error": <reason>, "detail": <message>}``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from automate_core import context
from automate_core.conf import settings
from automate_core.exceptions import DatabaseUnavailable, IngestError, SecretsError
from automate_core.ingest.ingestor import EventIngestor, NewEvent, new_trace_id
from automate_core.ingest.signatures import VERIFIERS
from automate_core.ingest.sources import SourceCache, SourceConfig
from automate_core.observability import metrics

logger = logging.getLogger("automate.ingest")

# Headers that may carry credentials are not stored with the event.
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})


@dataclass(slots=True)
class WebhookRequest:
    source: str
    method: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


@dataclass(slots=True)
class WebhookResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


def error(exc: IngestError) -> WebhookResponse:
    return WebhookResponse(exc.status, {"error": exc.reason, "detail": str(exc)}, exc.headers)


class BodyTooLarge(IngestError):
    """The request body is larger than this source accepts."""

    status = 413
    reason = "body_too_large"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class WebhookService:
    def __init__(self, sources: SourceCache | None = None, ingestor: EventIngestor | None = None) -> None:
        self.sources = sources or SourceCache()
        self.ingestor = ingestor or EventIngestor()

    def body_limit(self, source: SourceConfig | None = None) -> int:
        if source is not None and source.config.get("max_body_bytes"):
            return int(source.config["max_body_bytes"])
        return int(settings.MAX_BODY_BYTES)

    async def lookup(self, slug: str) -> SourceConfig:
        try:
            source = await self.sources.get(slug)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            raise _unavailable() from exc
        if source is None or not source.enabled:
            raise IngestError(f"No enabled webhook source {slug!r}.", status=404, reason="unknown_source")
        return source

    async def handle(self, request: WebhookRequest) -> WebhookResponse:
        started = time.perf_counter()
        response = await self._handle(request)
        if response.status == 202:
            metrics.webhooks_accepted.labels(request.source).inc()
            metrics.ingest_latency.observe(time.perf_counter() - started)
        elif response.status == 200:
            metrics.webhooks_duplicate.labels(request.source).inc()
        else:
            # an unknown slug is a sender's typo or a scan: don't let it create label values
            source = request.source if response.status != 404 else "(unknown)"
            metrics.webhooks_rejected.labels(source, response.body.get("error", "")).inc()
        return response

    async def _handle(self, request: WebhookRequest) -> WebhookResponse:
        try:
            if request.method != "POST":
                raise IngestError(
                    "Webhooks must be sent with POST.",
                    status=405,
                    reason="method_not_allowed",
                    headers={"Allow": "POST"},
                )
            source = await self.lookup(request.source)
            if len(request.body) > self.body_limit(source):
                raise BodyTooLarge(f"The body is larger than {self.body_limit(source)} bytes.")
            return await self._accept(source, request)
        except IngestError as exc:
            return error(exc)
        except DatabaseUnavailable:
            return error(_unavailable())

    async def _accept(self, source: SourceConfig, request: WebhookRequest) -> WebhookResponse:
        headers = request.headers
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise IngestError(
                f"Content-Type must be application/json, not {content_type or 'missing'!r}.",
                status=415,
                reason="unsupported_media_type",
            )
        verify = VERIFIERS.get(source.scheme)
        if verify is None:
            raise IngestError(
                f"Source {source.slug!r} uses an unknown scheme {source.scheme!r}.",
                status=500,
                reason="misconfigured_source",
            )
        secrets = await self._secrets(source)
        verify(headers, request.body, secrets)
        text, payload = self._parse(request.body)
        event = NewEvent(
            source=source.slug,
            event_type=self._event_type(source, headers, payload),
            payload_json=text,
            headers={k: v for k, v in headers.items() if k not in _DROPPED_HEADERS},
            idempotency_key=self._idempotency_key(source, headers),
            trace_id=context.trace_id.get() or new_trace_id(),  # the request's (see asgi.py)
        )
        result = await self.ingestor.ingest(event)
        body = {"event_id": result.event_id, "trace_id": result.trace_id}
        if result.duplicate:
            return WebhookResponse(200, {**body, "status": "duplicate"})
        return WebhookResponse(202, {**body, "status": "accepted"})

    async def _secrets(self, source: SourceConfig) -> list[bytes]:
        if source.scheme == "none":
            return []
        from automate_governance.secrets.resolver import get_resolver

        resolver = get_resolver()
        values = []
        for ref in source.secret_refs:
            try:
                values.append((await resolver.aresolve(ref)).encode())
            except SecretsError as exc:
                logger.error("webhook source %s: secret %s: %s", source.slug, ref, exc)
        return values

    @staticmethod
    def _parse(body: bytes) -> tuple[str, Any]:
        try:
            text = body.decode("utf-8")
            payload = json.loads(text, parse_constant=_reject_constant)
        except UnicodeDecodeError as exc:
            raise IngestError("The body is not valid UTF-8.", reason="invalid_encoding") from exc
        except (ValueError, RecursionError) as exc:
            raise IngestError(f"The body is not valid JSON: {exc}", reason="invalid_json") from exc
        return text, payload

    @staticmethod
    def _event_type(source: SourceConfig, headers: Mapping[str, str], payload: Any) -> str:
        header = source.config.get("event_type_header")
        if header and headers.get(header.lower()):
            return headers[header.lower()][:200]
        if headers.get("x-automate-event"):
            return headers["x-automate-event"][:200]
        if isinstance(payload, dict):
            for key in ("type", "event_type", "event"):
                value = payload.get(key)
                if isinstance(value, str) and value:
                    return value[:200]
        return "webhook"

    @staticmethod
    def _idempotency_key(source: SourceConfig, headers: Mapping[str, str]) -> str | None:
        names = [source.config.get("idempotency_header") or "", "idempotency-key", "webhook-id"]
        for name in names:
            if name and headers.get(name.lower()):
                return headers[name.lower()][:255]
        return None


def _unavailable() -> IngestError:
    return IngestError(
        "The event store is unavailable; nothing was recorded. Retry shortly.",
        status=503,
        reason="unavailable",
        headers={"Retry-After": "5"},
    )
