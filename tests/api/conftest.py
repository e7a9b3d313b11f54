"""Fixtures of the API tests: tokens with chosen scopes, and an HTTP client on the application."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from automate_core.api.auth import create_token

MakeToken = Callable[..., Any]
KEY = base64.urlsafe_b64encode(b"k" * 32).decode()  # a db secrets backend key for the tests


@pytest.fixture
def make_token(live_db: None) -> MakeToken:
    """``await make_token("runs:read", sources=[...])``: a new token's plaintext."""

    async def make(*scopes: str, **options: Any) -> str:
        _, token = await sync_to_async(create_token)(options.pop("name", "test"), list(scopes), **options)
        return token

    return make


@pytest.fixture
async def api(live_db: None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the ASGI application, in process, under /api/v1/."""
    from asgi.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
