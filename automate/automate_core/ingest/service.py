"""``WebhookService``: one webhook request in, one HTTP answer out, independent of the web framework.

The order of checks is the order of cost: method (405), admission (429), source (404), content
type (415), body size while reading (413), verification (401), body parsing (400), then the
database write (202, 200 for a redelivery, 503 when the database is unavailable). Every refusal
has a status, a reason code and a message; the JSON error body is ``{"error": <reason>,
"detail": <message>}``. Both the lean ASGI lane (``automate_core.asgi``) and the Django view
(``views.WebhookView``) call :meth:`WebhookService.handle`, so both answer the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import psycopg

from automate_core import context
from automate_core.exceptions import DatabaseUnavailable, IngestError, SecretNotFoundError, SecretsError
from automate_core.ingest import tuning
from automate_core.ingest.admission import Admission
from automate_core.ingest.ingestor import EventIngestor, NewEvent, new_trace_id
from automate_core.ingest.schemes import SchemeConfigError
from automate_core.ingest.schemes.base import body_str, json_path
from automate_core.ingest.schemes.slack import url_verification_challenge
from automate_core.ingest.sources import SourceCache, SourceConfig
from automate_core.observability import metrics

logger = logging.getLogger("automate.ingest")

# Headers that may carry credentials are not stored with the event.
_DROPPED_HEADERS = frozenset(
    {"authorization", "cookie", "proxy-authorization", "x-api-key", "x-automate-token"}
)

#: Reads the request body, raising :class:`BodyTooLarge` as soon as it exceeds the limit given.
BodyReader = Callable[[int], Awaitable[bytes]]


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


def fixed_body(body: bytes) -> BodyReader:
    """A :data:`BodyReader` for a body that is already in memory (the Django view, tests)."""

    async def read(limit: int) -> bytes:
        if len(body) > limit:
            raise BodyTooLarge(f"The body is larger than this source's limit of {limit} bytes.")
        return body

    return read


def unavailable(
    message: str = "The event store is unavailable; nothing was recorded. Retry shortly.",
) -> IngestError:
    retry = tuning.current().retry_after
    return IngestError(message, status=503, reason="unavailable", headers={"Retry-After": retry})


class WebhookService:
    def __init__(self, sources: SourceCache | None = None, ingestor: EventIngestor | None = None) -> None:
        self.sources = sources or SourceCache()
        self.ingestor = ingestor or EventIngestor()
        self.admission = Admission()

    async def handle(
        self, slug: str, method: str, headers: Mapping[str, str], read_body: BodyReader
    ) -> WebhookResponse:
        """Answer one request to ``/hooks/<slug>/``; ``headers`` have lower-case names."""
        started = time.perf_counter()
        try:
            response = await self._handle(slug, method, headers, read_body)
        except IngestError as exc:
            response = error(exc)
        if response.status == 202:
            metrics.webhooks_accepted.labels(slug).inc()
            metrics.ingest_latency.observe(time.perf_counter() - started)
        elif response.status == 200 and response.body.get("status") == "duplicate":
            metrics.webhooks_duplicate.labels(slug).inc()
        elif response.status >= 400:
            # an unknown slug is a sender's typo or a scan: don't let it create label values
            source = slug if self.sources.known(slug) else "(unknown)"
            metrics.webhooks_rejected.labels(source, response.body.get("error", "")).inc()
        return response

    async def lookup(self, slug: str) -> SourceConfig:
        try:
            source = await self.sources.get(slug)
        except SchemeConfigError as exc:
            logger.error("webhook source %s is misconfigured: %s", slug, exc)
            raise IngestError(
                f"Source {slug!r} is misconfigured ({exc}); fix it in the admin.",
                status=500,
                reason="misconfigured_source",
            ) from exc
        except (psycopg.Error, OSError, TimeoutError) as exc:  # pool timeout, connection refused, ...
            raise unavailable() from exc
        if source is None or not source.enabled:
            raise IngestError(f"No enabled webhook source {slug!r}.", status=404, reason="unknown_source")
        return source

    async def _handle(
        self, slug: str, method: str, headers: Mapping[str, str], read_body: BodyReader
    ) -> WebhookResponse:
        if method != "POST":
            raise IngestError(
                "Webhooks must be sent with POST.",
                status=405,
                reason="method_not_allowed",
                headers={"Allow": "POST"},
            )
        self.admission.enter()
        try:
            source = await self.lookup(slug)
            self.admission.enter_source(slug, source.max_in_flight)
            try:
                form = self._content_type(source, headers)
                body = await read_body(source.max_body_bytes)
                return await self._accept(source, headers, body, form)
            finally:
                self.admission.leave_source(slug)
        except DatabaseUnavailable as exc:
            raise unavailable() from exc
        finally:
            self.admission.leave()

    @staticmethod
    def _content_type(source: SourceConfig, headers: Mapping[str, str]) -> bool:
        """True for a form-encoded body, False for JSON; 415 for anything else."""
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type == "application/json" or content_type.endswith("+json"):
            return False
        if source.form_encoded and content_type == "application/x-www-form-urlencoded":
            return True
        accepted = "application/json" + (
            " or application/x-www-form-urlencoded" if source.form_encoded else ""
        )
        raise IngestError(
            f"Content-Type must be {accepted}, not {content_type or 'missing'!r}.",
            status=415,
            reason="unsupported_media_type",
        )

    async def _accept(
        self, source: SourceConfig, headers: Mapping[str, str], body: bytes, form: bool
    ) -> WebhookResponse:
        keys = await self._keys(source)
        source.scheme.verify(headers, body, keys, time.time())
        text, payload = _parse_form(body) if form else _parse_json(body)
        if source.scheme_name == "slack":
            challenge = url_verification_challenge(payload)
            if challenge is not None:  # Slack's one-time check of the URL: echo, store nothing
                return WebhookResponse(200, {"challenge": challenge})
        event = NewEvent(
            source=source.slug,
            event_type=_event_type(source, headers, payload)[:200],
            payload_json=text,
            headers={k: v.replace("\x00", "") for k, v in headers.items() if k not in _DROPPED_HEADERS},
            idempotency_key=_idempotency_key(source, headers, payload),
            trace_id=context.trace_id.get() or new_trace_id(),  # the request's (see asgi.py)
        )
        result = await self.ingestor.ingest(event)
        answer = {"event_id": result.event_id, "trace_id": result.trace_id}
        if result.duplicate:
            return WebhookResponse(200, {**answer, "status": "duplicate"})
        return WebhookResponse(202, {**answer, "status": "accepted"})

    async def _keys(self, source: SourceConfig) -> list[bytes]:
        """The keys the scheme verifies against: resolved secrets, or the token hashes."""
        if source.scheme_name == "token":
            return list(source.token_hashes)
        if not source.scheme.needs_secret:
            return []
        from automate_governance.secrets.resolver import get_resolver

        resolver = get_resolver()
        keys: list[bytes] = []
        failed = False
        for ref in source.secret_refs:
            try:
                keys.append(source.scheme.secret(await resolver.aresolve(ref)))
            except SecretNotFoundError as exc:
                logger.error("webhook source %s: secret %s: %s", source.slug, ref, exc)
            except SchemeConfigError as exc:
                logger.error("webhook source %s: secret %s is not usable: %s", source.slug, ref, exc)
            except SecretsError as exc:
                failed = True
                logger.error("webhook source %s: secret %s: %s", source.slug, ref, exc)
        if not keys and failed:
            raise unavailable("The secrets backend is unavailable; nothing was recorded. Retry shortly.")
        return keys


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> tuple[str, Any]:
    try:
        text = body.decode("utf-8")
        payload = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise IngestError("The body is not valid UTF-8.", reason="invalid_encoding") from exc
    except (ValueError, RecursionError) as exc:
        raise IngestError(f"The body is not valid JSON: {exc}", reason="invalid_json") from exc
    if "\\u0000" in text:
        raise IngestError("The JSON contains \\u0000, which PostgreSQL cannot store.", reason="invalid_json")
    return text, payload


def _parse_form(body: bytes) -> tuple[str, Any]:
    """A form body: the JSON of its ``payload`` field (Slack, GitHub), else its fields as an object."""
    try:
        fields = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=1000
        )
    except UnicodeDecodeError as exc:
        raise IngestError("The body is not valid UTF-8.", reason="invalid_encoding") from exc
    except ValueError as exc:
        raise IngestError(f"The form body is invalid: {exc}", reason="invalid_form") from exc
    data = dict(fields)
    if "payload" in data:
        return _parse_json(data["payload"].encode())
    text = json.dumps(data)
    if "\\u0000" in text:
        raise IngestError("The form contains a NUL character, which cannot be stored.", reason="invalid_form")
    return text, data


def _event_type(source: SourceConfig, headers: Mapping[str, str], payload: Any) -> str:
    if source.event_type_header and headers.get(source.event_type_header):
        return headers[source.event_type_header]
    if source.event_type_path:
        found = json_path(payload, source.event_type_path)
        if found:
            return found
    found = source.scheme.event_type(headers, payload)
    if found:
        return found
    if headers.get("x-automate-event"):
        return headers["x-automate-event"]
    for key in ("type", "event_type", "event"):
        found = body_str(payload, key)
        if found:
            return found
    return "webhook"


def _idempotency_key(source: SourceConfig, headers: Mapping[str, str], payload: Any) -> str | None:
    key = None
    if source.idempotency_header:
        key = headers.get(source.idempotency_header) or None
    elif source.idempotency_path:
        key = json_path(payload, source.idempotency_path)
    else:
        key = source.scheme.idempotency_key(headers, payload) or headers.get("idempotency-key") or None
    if key is not None and len(key) > 255:  # keep long keys distinct instead of cutting them
        key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key
