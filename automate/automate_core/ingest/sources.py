"""Webhook source configuration as the web process needs it per request (cached briefly).

A source row (``WebhookSource``) becomes a :class:`SourceConfig`: the scheme instance, the limits
and where the idempotency key and the event type come from. :func:`parse_options` validates the
``config`` JSON; the model's ``clean()`` calls it too, so what the admin or ``automate load``
saved is what the ingest path can use. ``config`` keys::

    tolerance_seconds      timestamp tolerance, both directions (AUTOMATE_INGEST_TIMESTAMP_TOLERANCE)
    max_body_bytes         413 above this, at most 25 MB (AUTOMATE_MAX_BODY_BYTES, 1 MiB)
    max_in_flight          429 above this many at once (AUTOMATE_INGEST_MAX_IN_FLIGHT_PER_SOURCE)
    dedupe_window_seconds  keys are held at least this long (AUTOMATE_INGEST_DEDUPE_WINDOW, 7 days)
    idempotency_header / idempotency_path    override the scheme's idempotency key
    event_type_header / event_type_path      override the scheme's event type
    form_encoded           also accept application/x-www-form-urlencoded (Slack and GitHub always do)
    signature              options of the ``hmac`` scheme (see schemes/hmac.py)
    queue                  the queue of its event jobs ("default"; ``automate worker --queue``)
    priority               their priority, -100 to 100, higher first (0)
    fairness               share the workers fairly across keys: "source" (the source is one key),
                           {"path": "data.tenant"} or {"header": "X-Tenant"} (one key per value,
                           of the signed body or a header; a missing value is the source's key)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from automate_core.conf import settings
from automate_core.ingest import queries, schemes
from automate_core.ingest.dbwait import Budget, bounded
from automate_core.ingest.schemes import Scheme, SchemeConfigError

#: GitHub's payload cap; nothing larger is ever needed.
MAX_BODY_LIMIT = 25 * 1000 * 1000
MIN_DEDUPE_WINDOW = 3 * 24 * 3600.0

_KEYS = {
    "tolerance_seconds",
    "max_body_bytes",
    "max_in_flight",
    "dedupe_window_seconds",
    "idempotency_header",
    "idempotency_path",
    "event_type_header",
    "event_type_path",
    "form_encoded",
    "signature",
    "queue",
    "priority",
    "fairness",
}

QUEUE_MAX_LENGTH = 100  # automate_outbox_job.queue
FAIR_KEY_MAX_LENGTH = 200  # automate_outbox_job.fair_key


@dataclass(frozen=True, slots=True)
class SourceConfig:
    slug: str
    scheme_name: str
    secret_refs: tuple[str, ...]
    config: Mapping[str, Any]
    enabled: bool
    scheme: Scheme
    token_hashes: tuple[bytes, ...] = ()
    max_body_bytes: int = 1024 * 1024
    max_in_flight: int = 256
    dedupe_window: float = 7 * 24 * 3600.0
    idempotency_header: str = ""
    idempotency_path: str = ""
    event_type_header: str = ""
    event_type_path: str = ""
    form_encoded: bool = False
    queue: str = "default"
    priority: int = 0
    fairness_path: str = ""  # the fair key comes from this dotted path of the body,
    fairness_header: str = ""  # or from this header (lower case),
    fairness_by_source: bool = False  # or is the source's slug

    def fair_key(self, headers: Mapping[str, str], payload: Any) -> str:
        """The event job's fairness key: '' (fairness off), the slug, or ``slug:value``."""
        value: Any = None
        if self.fairness_header:
            value = headers.get(self.fairness_header)
        elif self.fairness_path:
            value = json_path_value(payload, self.fairness_path)
        elif not self.fairness_by_source:
            return ""
        if value is None or value == "" or isinstance(value, dict | list):
            return self.slug
        return f"{self.slug}:{value}"[:FAIR_KEY_MAX_LENGTH]


def json_path_value(payload: Any, path: str) -> Any:
    """The value at a dotted path of a JSON document, or None."""
    for part in path.split("."):
        if isinstance(payload, dict):
            payload = payload.get(part)
        elif isinstance(payload, list) and part.isdigit() and int(part) < len(payload):
            payload = payload[int(part)]
        else:
            return None
    return payload


def _job_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``queue``, ``priority`` and ``fairness`` options of a source's event jobs."""
    queue = config.get("queue", "default")
    if not isinstance(queue, str) or not 0 < len(queue.strip()) <= QUEUE_MAX_LENGTH:
        raise SchemeConfigError(f"queue must be a name of 1 to {QUEUE_MAX_LENGTH} characters.")
    priority = config.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -100 <= priority <= 100:
        raise SchemeConfigError("priority must be a whole number from -100 to 100 (higher first).")
    fairness = config.get("fairness")
    found: dict[str, Any] = {"queue": queue.strip(), "priority": priority}
    if fairness is None or fairness is False:
        return found
    if fairness == "source":
        return {**found, "fairness_by_source": True}
    if isinstance(fairness, Mapping) and len(fairness) == 1:
        ((kind, name),) = fairness.items()
        if kind in ("path", "header") and isinstance(name, str) and name.strip():
            if kind == "header":
                return {**found, "fairness_header": _header_name("fairness.header", name)}
            return {**found, "fairness_path": name.strip()}
    raise SchemeConfigError(
        'fairness must be "source", {"path": "dotted.path"} or {"header": "Header-Name"}.'
    )


def _positive(config: Mapping[str, Any], key: str, default: float, *, upper: float | None = None) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SchemeConfigError(f"{key} must be a positive number.")
    if upper is not None and value > upper:
        raise SchemeConfigError(f"{key} must be at most {upper:g}.")
    return float(value)


#: Headers that may carry credentials: never stored with an event (``service``), and never the
#: source of a value that is stored and shown (an idempotency key, an event type, a fair key).
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "cookie", "proxy-authorization", "x-api-key", "x-automate-token"}
)


def _header_name(key: str, name: str) -> str:
    """A header option's name, lower case; refused when the header may carry a credential."""
    name = name.strip().lower()
    if name in CREDENTIAL_HEADERS:
        raise SchemeConfigError(
            f"{key}: {name!r} may carry a credential, and its value would be stored and shown "
            "(in the event, the job, the console); name a header without one."
        )
    return name


def _text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key) or ""
    if not isinstance(value, str):
        raise SchemeConfigError(f"{key} must be a string.")
    return value.strip()


def parse_options(
    slug: str,
    scheme_name: str,
    config: Mapping[str, Any] | None,
    *,
    secret_refs: str = "",
    token_hash: str = "",
    enabled: bool = True,
    check_secrets: bool = False,
) -> SourceConfig:
    """Validate a source's settings and build its :class:`SourceConfig`; raises SchemeConfigError.

    With ``check_secrets`` (when a source is saved: the admin, ``automate load``), each secret
    that can be resolved now must suit the scheme (long enough, well formed); one that cannot be
    resolved here (set only in the server's environment, say) is checked at verification.
    """
    config = config or {}
    if not isinstance(config, Mapping):
        raise SchemeConfigError("config must be a mapping.")
    unknown = set(config) - _KEYS
    if unknown:
        raise SchemeConfigError(f"config: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}.")
    scheme = schemes.build(scheme_name, config, float(settings.INGEST_TIMESTAMP_TOLERANCE))
    hashes = []
    for item in token_hash.split():
        try:
            digest = bytes.fromhex(item)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise SchemeConfigError("token_hash holds SHA-256 hex digests separated by spaces.")
        hashes.append(digest)
    refs = tuple(r.strip() for r in secret_refs.split(",") if r.strip())
    if check_secrets and scheme.needs_secret:
        _check_secrets(scheme, refs)
    window = _positive(config, "dedupe_window_seconds", float(settings.INGEST_DEDUPE_WINDOW))
    if window < MIN_DEDUPE_WINDOW:
        raise SchemeConfigError(
            "dedupe_window_seconds must be at least 259200 (3 days, Stripe's retry horizon)."
        )
    return SourceConfig(
        slug=slug,
        scheme_name=scheme_name,
        secret_refs=refs,
        config=config,
        enabled=enabled,
        scheme=scheme,
        token_hashes=tuple(hashes),
        max_body_bytes=int(
            _positive(config, "max_body_bytes", float(settings.MAX_BODY_BYTES), upper=MAX_BODY_LIMIT)
        ),
        max_in_flight=int(
            _positive(config, "max_in_flight", float(settings.INGEST_MAX_IN_FLIGHT_PER_SOURCE))
        ),
        dedupe_window=window,
        idempotency_header=_header_name("idempotency_header", _text(config, "idempotency_header")),
        idempotency_path=_text(config, "idempotency_path"),
        event_type_header=_header_name("event_type_header", _text(config, "event_type_header")),
        event_type_path=_text(config, "event_type_path"),
        form_encoded=bool(config.get("form_encoded", False)) or scheme.form_encoded,
        **_job_options(config),
    )


def _check_secrets(scheme: Scheme, refs: tuple[str, ...]) -> None:
    from automate_core.exceptions import SecretsError
    from automate_governance.secrets.resolver import get_resolver

    resolver = get_resolver()
    for ref in refs:
        try:
            value = resolver.resolve(ref)
        except SecretsError:  # not found here, or the backend is down: checked when used
            continue
        try:
            scheme.secret(value)
        except SchemeConfigError as exc:
            raise SchemeConfigError(f"secret {ref}: {exc}") from None


class SourceCache:
    """Looks sources up by slug; a found source is cached for ``SOURCE_CACHE_TTL`` seconds.

    Unknown slugs are not cached (the cache stays as small as the source table); the admission
    bound keeps their lookups from piling up.

    A source whose stored configuration no longer validates is cached as the error, so every
    request to it gets the same clear 500 ``misconfigured_source`` until it is fixed.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, SourceConfig | SchemeConfigError | None]] = {}

    async def get(self, slug: str, budget: Budget | None = None) -> SourceConfig | None:
        """The source ``slug``; a database read waits at most what ``budget`` has left."""
        now = time.monotonic()
        hit = self._entries.get(slug)
        if hit is None or hit[0] <= now:
            hit = (now + float(settings.SOURCE_CACHE_TTL), await self._load(slug, budget))
            if hit[1] is None:  # not cached: random slugs from a scan must not grow the cache
                self._entries.pop(slug, None)
                return None
            self._entries[slug] = hit
        if isinstance(hit[1], SchemeConfigError):
            raise hit[1]
        return hit[1]

    async def _load(self, slug: str, budget: Budget | None) -> SourceConfig | SchemeConfigError | None:
        timeout = float(settings.INGEST_DB_TIMEOUT)

        async def work(conn: psycopg.AsyncConnection[Any]) -> Any:
            cur = await conn.execute(queries.SOURCE_BY_SLUG, {"slug": slug})
            return await cur.fetchone()

        row = await bounded(work, budget or Budget(timeout * 2), pool_timeout=timeout, writes=False)
        if row is None:
            return None
        slug, scheme, secret_ref, config, enabled, token_hash = row
        try:
            return parse_options(
                slug,
                scheme,
                config,
                secret_refs=secret_ref or "",
                token_hash=token_hash or "",
                enabled=enabled,
            )
        except SchemeConfigError as exc:
            return exc

    def known(self, slug: str) -> bool:
        """Whether ``slug`` was found in the database (cached or expired); no query."""
        return slug in self._entries

    def clear(self) -> None:
        self._entries.clear()
