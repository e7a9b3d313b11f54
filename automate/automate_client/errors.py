"""Errors of the client: one exception per kind of refusal, each carrying the API's code.

Every refusal of the API is ``{"error": code, "detail": message}`` with an HTTP status; the
client raises the class for the status with ``code``, ``detail``, ``status`` and, for 429 and
503, ``retry_after`` (seconds). Transport failures (connection refused, timeouts) after the
retries are :class:`TransportError`.
"""

from __future__ import annotations

from typing import Any


class AutomateClientError(Exception):
    """Base class of every error this client raises."""


class TransportError(AutomateClientError):
    """The server could not be reached (after the retries, for calls that are retried)."""


class ApiError(AutomateClientError):
    """The API refused the request: ``status``, ``code`` (stable, to act on) and ``detail``."""

    def __init__(self, status: int, code: str, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail, self.retry_after = status, code, detail, retry_after


class InvalidRequest(ApiError):
    """400, 413, 415: the request itself is wrong; ``detail`` names the field."""


class Unauthenticated(ApiError):
    """401: no token, an unknown one, or a revoked or expired one."""


class PermissionDenied(ApiError):
    """403: the token lacks the scope (named in ``detail``), or may not send for that source."""


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409: the request conflicts with the object's state (a run still running, already ended)."""


class RateLimited(ApiError):
    """429: over the token's rate limit; ``retry_after`` says when to try again."""


class ServerError(ApiError):
    """5xx: 503 when the database is unavailable (retry), 500 for a bug on the server."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    429: RateLimited,
}


def error_for(status: int, body: Any, retry_after: str | None) -> ApiError:
    code, detail = "http_error", f"HTTP {status}"
    if isinstance(body, dict):
        code = str(body.get("error") or code)
        detail = str(body.get("detail") or detail)
    after: float | None = None
    if retry_after:
        try:
            after = float(retry_after)
        except ValueError:
            after = None
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, code, detail, retry_after=after)
