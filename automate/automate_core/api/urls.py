"""``path("api/v1/", include("automate_core.api.urls"))``: the API, its OpenAPI and its docs.

Any other path under the prefix answers the API's JSON 404, and a method a path does not take
the API's JSON 405 (with ``Allow``), not Django's HTML pages.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern, path, re_path

from automate_core.api.app import api


def unknown(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse({"error": "not_found", "detail": f"No API endpoint {request.path}."}, status=404)


def _json_405(view: Callable[..., Awaitable[HttpResponseBase]]) -> Callable[..., Awaitable[HttpResponseBase]]:
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = await view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            answer = JsonResponse(
                {
                    "error": "method_not_allowed",
                    "detail": f"{request.method} is not allowed here; use {allowed}.",
                },
                status=405,
            )
            answer["Allow"] = allowed
            return answer
        return response

    for name in ("csrf_exempt", "__name__", "__doc__"):
        if hasattr(view, name):
            setattr(wrapped, name, getattr(view, name))
    return wrapped


def _urls() -> tuple[list[Any], str, str]:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and inspect.iscoroutinefunction(pattern.callback):
            pattern.callback = _json_405(pattern.callback)
    return patterns, app_name, namespace


urlpatterns = [path("", _urls()), re_path(r"^(?P<rest>.*)$", unknown)]
