"""``path("api/v1/", include("automate_core.api.urls"))``: the API, its OpenAPI and its docs.

Any other path under the prefix answers the API's JSON 404, not Django's HTML page.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path

from automate_core.api.app import api


def unknown(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse({"error": "not_found", "detail": f"No API endpoint {request.path}."}, status=404)


urlpatterns = [path("", api.urls), re_path(r"^(?P<rest>.*)$", unknown)]
