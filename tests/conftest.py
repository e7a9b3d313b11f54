"""Fixtures shared by the whole suite. Every database test runs on a real PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

SECRET = "test-signing-secret-0123456789"


@pytest.fixture(scope="session", autouse=True)
def _signing_secret() -> Iterator[None]:
    os.environ["AUTOMATE_SECRET_TEST_HOOK"] = SECRET
    yield


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Process-wide caches must not carry state from one test into the next (the masker too:
    a weak secret one test resolves must not mask words in the next test's output)."""
    from automate_core.masking import masker

    registered = set(masker._values)
    yield
    if masker._values != registered:
        with masker._lock:
            masker._values = registered
            if registered:
                masker._compile()
            else:  # nothing registered: nothing to mask
                masker._pattern = masker._word_ends = masker._reversed = None
    from automate_core.ingest.views import service
    from automate_governance.secrets.resolver import get_resolver

    service().sources.clear()
    get_resolver().clear()


@pytest.fixture(scope="session")
async def _pool_lifetime() -> AsyncIterator[None]:
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    from automate_connectors.httpclient import aclose_pools
    from automate_core import db

    await db.close_pool()
    await aclose_pools()  # the HTTP connectors' pooled keep-alive connections of this loop
    # async tests reach the ORM through sync_to_async's thread, which holds its own connection
    await sync_to_async(connections.close_all)()


@pytest.fixture
def live_db(transactional_db: None, _pool_lifetime: None) -> None:
    """Committed data, visible to the async psycopg pool and to subprocesses."""


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def load() -> Callable[[dict[str, Any]], dict[str, int]]:
    from automate_core import definitions

    return definitions.load


@pytest.fixture
def demo_source(live_db: None, load: Callable[[dict[str, Any]], Any]) -> str:
    load({"sources": [{"slug": "test", "scheme": "hmac_sha256", "secret_ref": "env:TEST_HOOK"}]})
    return "test"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the ASGI application in process (the webhook lane and Django)."""
    from asgi.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def post_webhook(
    client: httpx.AsyncClient,
    source: str,
    payload: Any,
    *,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    all_headers = {"content-type": "application/json", "x-automate-signature": sign(body, secret)}
    all_headers.update(headers or {})
    return await client.post(f"/hooks/{source}/", content=body, headers=all_headers)


def database_url() -> str:
    """URL of the database the tests use right now (the test database, once it exists)."""
    from django.db import connection

    p = connection.settings_dict
    host = p.get("HOST") or ""
    auth = quote(p.get("USER") or "")
    if p.get("PASSWORD"):
        auth += ":" + quote(p["PASSWORD"])
    auth = auth + "@" if auth else ""
    if host.startswith("/"):
        return f"postgresql://{auth}/{p['NAME']}?host={quote(host)}"
    port = f":{p['PORT']}" if p.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{p['NAME']}"
