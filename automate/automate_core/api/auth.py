"""Bearer tokens with scopes: creation (shown once, stored as a hash), lookup, rate limits.

``Authorization: Bearer <token>`` is looked up by the SHA-256 of the token through a unique
index, in one statement that also applies the token's rate limit and records its last use, on
the async psycopg pool (no ORM on the event loop). The hash found is compared again with
:func:`hmac.compare_digest`. The token itself is never logged, stored or put in an error.

Refusals: no or malformed header -> 401 with ``WWW-Authenticate``; unknown, revoked or expired
token -> 401; a token without the operation's scope -> 403 naming the scope; over the rate limit
-> 429 with ``Retry-After``. Rate limits are a GCRA (a token bucket of ``rate_limit`` requests
per minute) whose state lives in the token's row, so every web process shares it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from automate_core import db
from automate_core.conf import settings
from automate_core.exceptions import ApiError, DatabaseUnavailable
from automate_core.models.api import SCOPES

TOKEN_PREFIX = "atk_"
#: What a token limited to some sources (an event key) may do: send their events, read theirs.
SOURCE_LIMITED_SCOPES = frozenset({"events:write", "runs:read"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="automate"'}

# One statement: the UPDATE admits the request and advances the limiter (GCRA: the row's
# "theoretical arrival time" moves by 60/limit seconds per request; a request is admitted while it
# is at most a minute's allowance ahead of now). The row lock it takes serialises concurrent
# requests of one token across processes, and READ COMMITTED re-checks its WHERE against the row
# as the previous request left it. A token without a limit is written at most once a minute
# (last_used_at). The SELECT reads the row as it was before, to say why a request was refused.
AUTHENTICATE: LiteralString = """
WITH admitted AS (
    UPDATE automate_api_token
       SET last_used_at = now(),
           rate_tat = CASE WHEN coalesce(rate_limit, %(default_limit)s) = 0 THEN NULL
                           ELSE greatest(coalesce(rate_tat, now()), now())
                                + make_interval(secs => 60.0 / coalesce(rate_limit, %(default_limit)s)) END
     WHERE token_hash = %(hash)s
       AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
       AND (coalesce(rate_limit, %(default_limit)s) > 0
            OR last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')
       AND (coalesce(rate_limit, %(default_limit)s) = 0
            OR greatest(coalesce(rate_tat, now()), now()) - now()
               <= make_interval(secs => 60.0 - 60.0 / coalesce(rate_limit, %(default_limit)s)))
    RETURNING id
)
SELECT id, name, token_hash, scopes, sources,
       revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AS live,
       coalesce(rate_limit, %(default_limit)s) = 0 OR EXISTS (SELECT 1 FROM admitted) AS admitted,
       extract(epoch FROM greatest(coalesce(rate_tat, now()), now()) - now()
               - make_interval(secs => 60.0 - 60.0 / greatest(coalesce(rate_limit, %(default_limit)s), 1))
       )::float8 AS wait
FROM automate_api_token WHERE token_hash = %(hash)s
"""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, name, scopes and allowed sources (empty: any)."""

    token_id: int
    name: str
    scopes: frozenset[str]
    sources: frozenset[str]

    @property
    def actor(self) -> str:
        return f"token:{self.name}#{self.token_id}"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def may_send_for(self, source: str) -> bool:
        return not self.sources or source in self.sources


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """``atk_`` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str) -> datetime:
    """``90d``, ``12h``, ``2w`` from now, or an ISO date-time."""
    match = _DURATION.match(text.strip())
    if match:
        return timezone.now() + timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ApiError(
            f"Cannot read the expiry {text!r}: use a duration (30m, 12h, 90d, 2w) or an ISO date-time."
        ) from exc
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ApiError(f"Unknown scopes {unknown}; use: {', '.join(SCOPES)}.", code="unknown_scope")
    if not scopes:
        raise ApiError(f"A token needs at least one scope: {', '.join(SCOPES)}.", code="unknown_scope")
    return sorted(set(scopes))


def create_token(
    name: str,
    scopes: list[str],
    *,
    expires_at: datetime | None = None,
    sources: list[str] | None = None,
    rate_limit: int | None = None,
    created_by: str = "",
) -> tuple[Any, str]:
    """Store a new token (its hash only); returns the row and the token, to be shown once."""
    from automate_core.models import ApiToken

    if not name or len(name) > 100:
        raise ApiError("A token needs a name of 1 to 100 characters.")
    if rate_limit is not None and not 0 <= rate_limit <= 2**31 - 1:
        raise ApiError("A rate limit is a number of requests per minute (0: none).")
    token = new_token()
    row = ApiToken.objects.create(
        name=name,
        prefix=token[:10],
        token_hash=hash_token(token),
        scopes=check_scopes(scopes),
        sources=sorted(set(sources or [])),
        expires_at=expires_at,
        rate_limit=rate_limit,
        created_by=created_by,
    )
    return row, token


def _unauthorized(detail: str) -> ApiError:
    return ApiError(detail, status=401, code="unauthenticated", headers=CHALLENGE)


async def authenticate(token: str) -> Principal:
    """The principal of ``token``, or :class:`ApiError` 401/429/503."""
    digest = hash_token(token)
    try:
        pool = await db.get_pool()
        async with pool.connection(timeout=settings.INGEST_DB_TIMEOUT) as conn, conn.transaction():
            # the limiter's state and the last use are not worth a disk flush per request: after a
            # crash a token may get a few requests more than its limit, nothing else is lost
            await conn.execute("SET LOCAL synchronous_commit = off")
            cur = await conn.execute(
                AUTHENTICATE, {"hash": digest, "default_limit": int(settings.API_RATE_LIMIT)}
            )
            row = await cur.fetchone()
    except (psycopg.Error, OSError, TimeoutError) as exc:
        raise DatabaseUnavailable() from exc
    if row is None or not hmac.compare_digest(row[2], digest):
        raise _unauthorized("The token is not valid.")
    token_id, name, _, scopes, sources, live, admitted, wait = row
    if not live:
        raise _unauthorized("The token was revoked or has expired.")
    if not admitted:
        retry = max(1, math.ceil(wait or 1))
        raise ApiError(
            f"Token {name!r} is over its rate limit; retry in {retry} s.",
            status=429,
            code="rate_limited",
            headers={"Retry-After": str(retry)},
        )
    return Principal(token_id, name, frozenset(scopes), frozenset(sources or ()))


def _body_size(request: HttpRequest) -> None:
    limit = int(settings.API_MAX_BODY_BYTES)
    declared = request.META.get("CONTENT_LENGTH") or ""
    too_large = ApiError(
        f"The body is larger than the limit of {limit} bytes.", status=413, code="body_too_large"
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    if request.method in ("POST", "PUT", "PATCH") and len(request.body) > limit:
        raise too_large


class TokenAuth(HttpBearer):
    """The auth of one operation: a valid token holding ``scope`` (``admin`` holds every scope)."""

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope = scope
        super().__init__()

    async def __call__(self, request: HttpRequest) -> Principal:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Send a token: Authorization: Bearer <token> (automate tokens create).")
        principal = await authenticate(token)
        if not principal.allows(self.scope):
            raise ApiError(
                f"Token {principal.name!r} lacks the scope {self.scope!r} this operation needs.",
                status=403,
                code="missing_scope",
            )
        if principal.sources and self.scope not in SOURCE_LIMITED_SCOPES:
            raise ApiError(
                f"Token {principal.name!r} is limited to some sources: it may send events and read "
                f"theirs, nothing else.",
                status=403,
                code="source_limited",
            )
        _body_size(request)
        if "\x00" in request.path or any("\x00" in v for _, values in request.GET.lists() for v in values):
            raise ApiError("The URL contains a NUL character, which cannot be stored or matched.")
        return principal

    async def authenticate(self, request: HttpRequest, token: str) -> Principal:  # pragma: no cover
        return await authenticate(token)  # unused: __call__ does the work (no token in logs)


def principal(request: HttpRequest) -> Principal:
    found = getattr(request, "auth", None)
    assert isinstance(found, Principal)
    return found
