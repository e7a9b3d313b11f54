"""The ``NinjaAPI`` of ``/api/v1/``: its routers, and one JSON shape for every refusal.

Every error is ``{"error": <code>, "detail": <message>}`` with its status, as on the webhook
endpoint: ``invalid_request`` (400: wrong types, unknown fields, bad JSON, bad cursor),
``unauthenticated`` (401), ``missing_scope`` / ``source_not_allowed`` / ``source_limited`` (403),
``not_found`` (404), ``method_not_allowed`` (405, ``urls.py``), ``conflict`` (409),
``body_too_large`` (413), ``rate_limited`` (429), ``unavailable`` (503) and ``internal_error``
(500, logged with its traceback; never expected).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from automate_core.exceptions import ApiError, AutomateError, DatabaseUnavailable
from automate_core.ingest import tuning

logger = logging.getLogger("automate.api")

DESCRIPTION = """\
Send events, follow runs, replay dead jobs, deploy workflows and store secrets from your own
programs. Authenticate with `Authorization: Bearer <token>` (`automate tokens create`); each
operation names the scope it needs. Errors are `{"error": code, "detail": message}`.
Guide: docs/api.md.
"""

api = NinjaAPI(
    title="Django Automate API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="automate_api",
)


def _error(
    request: HttpRequest, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = api.create_response(request, {"error": code, "detail": detail}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _location(loc: Any) -> str:
    """``body.steps[0].name`` from pydantic's location (ninja's own wrappers left out)."""
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif "function-" not in str(p) and "[" not in str(p) and (not parts or parts[-1] != f".{p}"):
            parts.append(f".{p}")
    return "".join(parts).lstrip(".") or "body"


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.code, str(exc), exc.headers)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors[:10]]
    return _error(request, 400, "invalid_request", "; ".join(problems) or "The request is invalid.")


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "body_too_large", "The body is larger than this server accepts.")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request,
        401,
        "unauthenticated",
        "Send a token: Authorization: Bearer <token>.",
        {"WWW-Authenticate": 'Bearer realm="automate"'},
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", str(exc) or "Not found.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = "invalid_request" if exc.status_code == 400 else "bad_request"
    return _error(request, exc.status_code, code if exc.status_code < 500 else "internal_error", str(exc))


@api.exception_handler(DatabaseUnavailable)
def _unavailable(request: HttpRequest, exc: DatabaseUnavailable) -> HttpResponse:
    return _error(request, 503, "unavailable", str(exc), {"Retry-After": str(tuning.current().retry_after)})


@api.exception_handler(AutomateError)
def _refused(request: HttpRequest, exc: AutomateError) -> HttpResponse:
    """A domain refusal (WorkflowError, DefinitionError, EmptyReplayFilter...): the caller's to fix."""
    return _error(request, 400, "invalid_request", str(exc))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("api %s %s: unexpected error", request.method, request.path)
    return _error(request, 500, "internal_error", "Unexpected error; see the server's log.")


def _register() -> None:
    from automate_core.api import events, jobs, runs, secrets, sources, waits, workflows

    api.add_router("/events", events.router)
    api.add_router("/runs", runs.router)
    api.add_router("/jobs", jobs.router)
    api.add_router("/workflows", workflows.router)
    api.add_router("/secrets", secrets.router)
    api.add_router("/", sources.router)
    api.add_router("/", waits.router)


_register()
