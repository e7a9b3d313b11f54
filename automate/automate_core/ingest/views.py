"""``WebhookView``: the Django async view for ``POST /hooks/<source>/``.

Mount ``automate_core.ingest.urls`` in your own project to get it. The deployable project in
``asgi/`` also routes ``/hooks/`` through a leaner ASGI lane (``automate_core.asgi``) that calls
the same :class:`WebhookService`, skipping Django's per-request machinery. Django buffers the
whole body before a view runs, so only the lean lane refuses an oversized body while reading it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from automate_core.ingest.service import BodyReader, BodyTooLarge, WebhookService

_service: WebhookService | None = None


def service() -> WebhookService:
    global _service
    if _service is None:
        _service = WebhookService()
    return _service


def _reader(request: HttpRequest) -> BodyReader:
    async def read(limit: int) -> bytes:
        # request.read() instead of request.body: no DATA_UPLOAD_MAX_MEMORY_SIZE, our own limit
        body = request.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge(f"The body is larger than this source's limit of {limit} bytes.")
        return body

    return read


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    http_method_names = ["get", "post", "put", "patch", "delete", "options"]

    async def post(self, request: HttpRequest, source: str) -> HttpResponse:
        return await self._handle(request, source)

    async def get(self, request: HttpRequest, source: str) -> HttpResponse:
        return await self._handle(request, source)

    async def put(self, request: HttpRequest, source: str) -> HttpResponse:
        return await self._handle(request, source)

    patch = delete = put

    async def options(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        return await self._handle(request, str(kwargs.get("source", "")))

    async def _handle(self, request: HttpRequest, source: str) -> HttpResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        result = await service().handle(source, request.method or "GET", headers, _reader(request))
        response = HttpResponse(result.encode(), status=result.status, content_type="application/json")
        for name, value in result.headers.items():
            response[name] = value
        return response
