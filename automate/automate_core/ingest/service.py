"""``WebhookService``: one webhook request in, one HTTP answer out, independent of the web framework.

The order of checks is the order of cost: method (405), the source's name (404), an unverified
slot (429), source (404), content type (415), body size while reading (413), verification (401),
then a verified slot of the process and of the source (429, see ``admission.py``), body parsing
(400), then the database write (202, 200 for a redelivery, 503 when the database is unavailable).
Every refusal has a status, a reason code and a message; the JSON error body is ``{"error":
<reason>, "detail": <message>}`` (a 503 adds ``"outcome"``: ``not_recorded``, or ``unknown``
when the write was sent and not confirmed, see ``dbwait.py``). All database waits of a request
together take at most ``2 x INGEST_DB_TIMEOUT``. Both the lean ASGI lane (``automate_core.asgi``)
and the Django view (``views.WebhookView``) call :meth:`WebhookService.handle`, so both answer
the same. Refusals are counted per source and reason (``rejections.py``: the metrics, and the
source's page in the admin).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
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
from automate_core.ingest.dbwait import Budget
from automate_core.ingest.ingestor import EventIngestor, NewEvent, holds_nul, new_trace_id
from automate_core.ingest.rejections import RejectionCounter
from automate_core.ingest.schemes import SchemeConfigError
from automate_core.ingest.schemes.base import body_str, json_path
from automate_core.ingest.schemes.slack import url_verification_challenge
from automate_core.ingest.sources import CREDENTIAL_HEADERS, SourceCache, SourceConfig
from automate_core.observability import metrics

logger = logging.getLogger("automate.ingest")

# Headers that may carry credentials are not stored with the event.
_DROPPED_HEADERS = CREDENTIAL_HEADERS

#: Reads the request body, raising :class:`BodyTooLarge` as soon as it exceeds the limit given.
BodyReader = Callable[[int], Awaitable[bytes]]

#: What a source's slug can be (``models.source.SLUG_VALIDATOR``); anything else is a 404 at once.
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")


@dataclass(slots=True)
class WebhookResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


def error(exc: IngestError) -> WebhookResponse:
    body = {"error": exc.reason, "detail": str(exc)}
    outcome = getattr(exc, "outcome", None)
    if outcome:
        body["outcome"] = outcome
    return WebhookResponse(exc.status, body, exc.headers)


class ClientGone(IngestError):
    """The client went away (or was cut off by the body deadline) before its body had arrived."""

    status = 499  # nginx's "client closed request": counted, never sent
    reason = "client_disconnected"


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


class Unavailable(IngestError):
    """503: the event store (or the secrets backend) is unavailable; ``outcome`` says what is known."""

    status = 503
    reason = "unavailable"

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message, headers={"Retry-After": tuning.current().retry_after})
        self.outcome = outcome


def unavailable(
    message: str = "The event store is unavailable; nothing was recorded. Retry shortly.",
) -> IngestError:
    """A 503 for a failure before anything was written."""
    return Unavailable(message, "not_recorded")


def database_unavailable(exc: DatabaseUnavailable, idempotency_key: str | None) -> IngestError:
    """The 503 for a failed write: "nothing was recorded" only when that is known."""
    if exc.outcome == "not_recorded":
        return unavailable()
    if idempotency_key is not None:
        advice = (
            "Retrying with the same idempotency key is safe: if it was recorded, the retry "
            "answers 200 duplicate with the event's id."
        )
    else:
        advice = (
            "This request named no idempotency key, so a retry may record it a second time; "
            "send one to make retries safe."
        )
    return Unavailable(
        "The event store did not confirm the write in time: the event may or may not have been "
        f"recorded. {advice}",
        "unknown",
    )


class WebhookService:
    def __init__(self, sources: SourceCache | None = None, ingestor: EventIngestor | None = None) -> None:
        self.sources = sources or SourceCache()
        self.ingestor = ingestor or EventIngestor()
        self.admission = Admission()
        self.rejections = RejectionCounter()

    async def handle(
        self, slug: str, method: str, headers: Mapping[str, str], read_body: BodyReader
    ) -> WebhookResponse:
        """Answer one request to ``/hooks/<slug>/``; ``headers`` have lower-case names.

        A response with status 499 means the client is gone: count it, send nothing.
        """
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
            reason = str(response.body.get("error", ""))
            # an unknown slug is a sender's typo or a scan: don't let it create label values
            if self.sources.known(slug):
                metrics.webhooks_rejected.labels(slug, reason).inc()
                self.rejections.add(slug, response.status, reason, str(response.body.get("detail", "")))
            else:
                metrics.webhooks_rejected.labels("(unknown)", reason).inc()
        return response

    async def lookup(self, slug: str, budget: Budget | None = None) -> SourceConfig:
        if not _SLUG.fullmatch(slug):
            logger.info("webhook refused: %.120r is not a source name (404)", slug)
            raise IngestError(
                "No webhook source by that name: a source's name is lowercase letters, digits, '-' and '_'.",
                status=404,
                reason="unknown_source",
            )
        try:
            source = await self.sources.get(slug, budget)
        except SchemeConfigError as exc:
            logger.error("webhook source %s is misconfigured: %s", slug, exc)
            raise IngestError(
                f"Source {slug!r} is misconfigured ({exc}); fix it in the admin.",
                status=500,
                reason="misconfigured_source",
            ) from exc
        except (DatabaseUnavailable, psycopg.Error, OSError, TimeoutError) as exc:
            raise unavailable() from exc  # a read: nothing was written
        if source is None or not source.enabled:
            logger.info("webhook refused: no enabled source %r (404)", slug)
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
        budget = Budget(tuning.current().db_timeout * 2)
        # reading and verifying: anyone can get this far, so it counts against no source
        self.admission.enter_unverified()
        try:
            source = await self.lookup(slug, budget)
            form = self._content_type(source, headers)
            body = await read_body(source.max_body_bytes)
            keys = await self._keys(source, budget)
            source.scheme.verify(headers, body, keys, time.time())
        finally:
            self.admission.leave_unverified()
        self.admission.enter()
        try:
            self.admission.enter_source(slug, source.max_in_flight)
            try:
                return await self._accept(source, headers, body, form, budget)
            finally:
                self.admission.leave_source(slug)
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
        self, source: SourceConfig, headers: Mapping[str, str], body: bytes, form: bool, budget: Budget
    ) -> WebhookResponse:
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
            queue=source.queue,
            priority=source.priority,
            fair_key=source.fair_key(headers, payload),
        )
        try:
            result = await self.ingestor.ingest(event, budget)
        except DatabaseUnavailable as exc:
            raise database_unavailable(exc, event.idempotency_key) from exc
        answer = {"event_id": result.event_id, "trace_id": result.trace_id}
        if result.duplicate:
            return WebhookResponse(200, {**answer, "status": "duplicate"})
        return WebhookResponse(202, {**answer, "status": "accepted"})

    async def _keys(self, source: SourceConfig, budget: Budget) -> list[bytes]:
        """The keys the scheme verifies against: resolved secrets, or the token hashes."""
        if source.scheme_name == "token":
            return list(source.token_hashes)
        if not source.scheme.needs_secret:
            return []
        from automate_governance.secrets.resolver import get_resolver

        resolver = get_resolver()
        keys: list[bytes] = []
        failed = False
        loop = asyncio.get_running_loop()
        for ref in source.secret_refs:
            started = loop.time()
            try:
                # a backend that hangs (a database, Vault) must not hold the request past its budget
                async with asyncio.timeout(max(budget.left, 0.0)):
                    value = await resolver.aresolve(ref)
                keys.append(source.scheme.secret(value))
            except SecretNotFoundError as exc:
                logger.error("webhook source %s: secret %s: %s", source.slug, ref, exc)
            except SchemeConfigError as exc:
                logger.error("webhook source %s: secret %s is not usable: %s", source.slug, ref, exc)
            except (SecretsError, TimeoutError) as exc:
                failed = True
                logger.error("webhook source %s: secret %s: %s", source.slug, ref, exc or "no answer in time")
            finally:
                budget.left -= loop.time() - started
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
    if holds_nul(text, payload):
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
    if holds_nul(text, data):
        raise IngestError("The form contains a NUL character, which cannot be stored.", reason="invalid_form")
    return text, data


def _event_type(source: SourceConfig, headers: Mapping[str, str], payload: Any) -> str:
    """The event type: the source's explicit choice, the scheme's, else what the body says.

    ``X-Automate-Event`` is read only for sources whose scheme signs nothing (``token``,
    ``none``): a signed body's type must not be overridden by a header a replayer can write.
    """
    if source.event_type_header and headers.get(source.event_type_header):
        return headers[source.event_type_header]
    if source.event_type_path:
        found = json_path(payload, source.event_type_path)
        if found:
            return found
    found = source.scheme.event_type(headers, payload)
    if found:
        return found
    if source.scheme.trusts_event_header(headers) and headers.get("x-automate-event"):
        return headers["x-automate-event"]
    for key in ("type", "event_type", "event"):
        found = body_str(payload, key)
        if found:
            return found
    return "webhook"


def _idempotency_key(source: SourceConfig, headers: Mapping[str, str], payload: Any) -> str | None:
    """The idempotency key: the source's explicit choice, the scheme's, the signed body's
    ``idempotency_key``, one derived from the signature, and only then ``Idempotency-Key``."""
    key = None
    if source.idempotency_header:
        key = headers.get(source.idempotency_header) or None
    elif source.idempotency_path:
        key = json_path(payload, source.idempotency_path)
    else:
        scheme = source.scheme
        key = scheme.idempotency_key(headers, payload)
        if key is None and scheme.signs_body:
            key = body_str(payload, "idempotency_key") or scheme.derived_key(headers)
        if key is None and scheme.trusts_idempotency_header(headers):
            key = headers.get("idempotency-key") or None
    if key is not None and len(key) > 255:  # keep long keys distinct instead of cutting them
        key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key
