"""Tokens and scopes: every operation refuses a missing token (401) and a token without its scope
(403 naming the scope); revoked and expired tokens are 401; rate limits answer 429 with
Retry-After; the token never reaches a log, and only its hash is stored."""

from __future__ import annotations

import itertools
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from automate_core.api.app import api as ninja_api
from automate_core.api.auth import hash_token
from automate_core.models import ApiToken
from automate_core.models.api import SCOPES
from tests.api.conftest import KEY, MakeToken, bearer

# (method, path, scope, body): every operation of the API, with a body it accepts
ENDPOINTS: list[tuple[str, str, str, Any]] = [
    ("POST", "/events", "events:write", {"source": "s", "type": "t", "payload": {}}),
    ("GET", "/events/1", "runs:read", None),
    ("GET", "/runs", "runs:read", None),
    ("GET", "/runs/1", "runs:read", None),
    ("POST", "/runs/1/replay", "runs:write", {"mode": "current"}),
    ("POST", "/runs/1/cancel", "runs:write", None),
    ("GET", "/jobs", "runs:read", None),
    ("POST", "/jobs/replay", "runs:write", {"source": "x", "dry_run": True}),
    ("GET", "/workflows", "workflows:read", None),
    ("GET", "/workflows/w", "workflows:read", None),
    ("PUT", "/workflows", "workflows:write", {}),
    ("POST", "/workflows/w/rollback", "workflows:write", {"to": 1}),
    ("POST", "/workflows/w/enable", "workflows:write", None),
    ("POST", "/workflows/w/disable", "workflows:write", None),
    ("PUT", "/secrets/x", "secrets:write", {"value": "abc"}),
    ("GET", "/sources", "workflows:read", None),
    ("GET", "/sources/x", "workflows:read", None),
    ("GET", "/schedules", "workflows:read", None),
    ("GET", "/schedules/x", "workflows:read", None),
    ("GET", "/waits", "runs:read", None),
    ("GET", "/approvals", "runs:read", None),
    ("POST", "/approvals/1/approve", "runs:write", {"approved": True}),
]


async def call(
    api: httpx.AsyncClient, method: str, path: str, body: Any, token: str | None
) -> httpx.Response:
    headers = bearer(token) if token else {}
    return await api.request(method, path, json=body, headers=headers)


def test_the_matrix_covers_every_operation() -> None:
    templated = {
        (m, p.replace("1", "{event_id}", 1) if p.startswith("/events/") else p) for m, p, _, _ in ENDPOINTS
    }
    schema = ninja_api.get_openapi_schema()
    operations = set()
    for path, methods in schema["paths"].items():
        for method in methods:
            operations.add((method.upper(), path.removeprefix("/api/v1")))
    concrete = {
        "{event_id}": "1",
        "{run_id}": "1",
        "{name}": ("w", "x"),
        "{slug}": "x",
        "{step}": "approve",
    }
    choices = [(k, v if isinstance(v, tuple) else (v,)) for k, v in concrete.items()]
    covered = set()
    for method, path in operations:
        for values in itertools.product(*(vs for _k, vs in choices)):
            candidate = path
            for (key, _vs), value in zip(choices, values, strict=True):
                candidate = candidate.replace(key, value)
            if (method, candidate) in {(m, p) for m, p, _, _ in ENDPOINTS}:
                covered.add((method, path))
    assert covered == operations, operations - covered
    assert templated  # the list itself is not empty


async def test_no_token_is_401_with_a_challenge(api: httpx.AsyncClient) -> None:
    for method, path, _, body in ENDPOINTS:
        for headers in (
            {},
            {"Authorization": "Basic abc"},
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer"},
        ):
            response = await api.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert response.json()["error"] == "unauthenticated"


async def test_a_token_without_the_scope_is_403_naming_it(
    api: httpx.AsyncClient, make_token: MakeToken
) -> None:
    tokens = {scope: await make_token(*[s for s in SCOPES if s not in (scope, "admin")]) for scope in SCOPES}
    for method, path, scope, body in ENDPOINTS:
        response = await call(api, method, path, body, tokens[scope])
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "missing_scope"
        assert repr(scope) in response.json()["detail"], response.text


async def test_the_scope_or_admin_gets_past_authorization(
    api: httpx.AsyncClient, make_token: MakeToken, settings: Any
) -> None:
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY]
    admin = await make_token("admin")
    for method, path, scope, body in ENDPOINTS:
        for token in (await make_token(scope), admin):
            response = await call(api, method, path, body, token)
            assert response.status_code not in (401, 403, 500), (method, path, response.text)
            assert response.status_code < 500, (method, path, response.text)


async def test_unknown_revoked_and_expired_tokens_are_401(
    api: httpx.AsyncClient, make_token: MakeToken
) -> None:
    revoked = await make_token("runs:read", name="revoked")
    expired = await make_token("runs:read", name="expired", expires_at=timezone.now() + timedelta(hours=1))
    await ApiToken.objects.filter(name="revoked").aupdate(revoked_at=timezone.now())
    await ApiToken.objects.filter(name="expired").aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    good = await make_token("runs:read")
    for token in (revoked, expired, good + "x", good[:-1], "atk_" + "A" * 43):
        response = await api.get("/runs", headers=bearer(token))
        assert response.status_code == 401, (token[:6], response.text)
        assert "www-authenticate" in response.headers
    assert (await api.get("/runs", headers=bearer(good))).status_code == 200


async def test_only_the_hash_is_stored(make_token: MakeToken) -> None:
    token = await make_token("runs:read", name="hashed")
    row = await ApiToken.objects.aget(name="hashed")
    assert row.token_hash == hash_token(token) and token not in str(
        await sync_to_async(lambda: list(ApiToken.objects.filter(pk=row.pk).values()))()
    )
    assert len(token) >= 40 and token.startswith(row.prefix)


async def test_the_token_is_never_logged(
    api: httpx.AsyncClient, make_token: MakeToken, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    settings.DEBUG = True  # django-ninja's own bearer class logs a bad header in DEBUG; ours does not
    token = await make_token("runs:read")
    with caplog.at_level(logging.DEBUG):
        await api.get("/runs", headers=bearer(token))
        await api.get("/runs", headers={"Authorization": f"Token {token}"})
        await api.get("/runs", headers=bearer(token + "x"))
        await api.put("/secrets/x", json={"value": "abc"}, headers=bearer(token))
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert caplog.records  # the requests were logged (Django's 401/403 warnings), without the token
    assert token not in text and token[4:20] not in text


async def test_rate_limit_is_429_with_retry_after(api: httpx.AsyncClient, make_token: MakeToken) -> None:
    limited = await make_token("runs:read", rate_limit=3)
    other = await make_token("runs:read")
    statuses = [(await api.get("/runs", headers=bearer(limited))).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await api.get("/runs", headers=bearer(limited))
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 20  # 3 a minute: the next one in at most 20 s
    assert (await api.get("/runs", headers=bearer(other))).status_code == 200  # per token


async def test_the_limit_is_kept_in_postgresql(api: httpx.AsyncClient, make_token: MakeToken) -> None:
    """Another process sees the same state: it lives in the token's row, not in this process."""
    await make_token("runs:read", name="shared", rate_limit=2)
    before = await ApiToken.objects.aget(name="shared")
    assert before.rate_tat is None and before.last_used_at is None
    token = await make_token("runs:read", name="shared2", rate_limit=2)
    await api.get("/runs", headers=bearer(token))
    row = await ApiToken.objects.aget(name="shared2")
    assert row.rate_tat is not None and row.last_used_at is not None
    # a second process would read this row: move its state into the future as that process would
    await ApiToken.objects.filter(pk=row.pk).aupdate(rate_tat=timezone.now() + timedelta(seconds=90))
    assert (await api.get("/runs", headers=bearer(token))).status_code == 429


async def test_an_unlimited_token_is_written_once_a_minute(
    api: httpx.AsyncClient, make_token: MakeToken
) -> None:
    token = await make_token("runs:read", name="free", rate_limit=0)
    for _ in range(5):
        assert (await api.get("/runs", headers=bearer(token))).status_code == 200
    first = (await ApiToken.objects.aget(name="free")).last_used_at
    assert first is not None
    await api.get("/runs", headers=bearer(token))
    assert (await ApiToken.objects.aget(name="free")).last_used_at == first  # not rewritten
    await ApiToken.objects.filter(name="free").aupdate(last_used_at=first - timedelta(minutes=2))
    await api.get("/runs", headers=bearer(token))
    later = (await ApiToken.objects.aget(name="free")).last_used_at
    assert later is not None and later > first  # a minute later: recorded


async def test_unknown_paths_and_methods_answer_json(api: httpx.AsyncClient, make_token: MakeToken) -> None:
    token = await make_token("admin")
    for method, path, status, code in (
        ("GET", "/events", 405, "method_not_allowed"),
        ("DELETE", "/runs/1", 405, "method_not_allowed"),
        ("GET", "/secrets/x", 405, "method_not_allowed"),  # write only: no route reads a secret
        ("GET", "/nothing/here", 404, "not_found"),
    ):
        response = await api.request(method, path, headers=bearer(token))
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["error"] == code
    assert (await api.get("/events")).headers["allow"] == "POST"


async def test_the_description_and_docs_are_served(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert schema["openapi"] == "3.1.0"
    assert schema["components"]["securitySchemes"] == {"TokenAuth": {"type": "http", "scheme": "bearer"}}
    for methods in schema["paths"].values():
        for operation in methods.values():
            assert operation["security"] == [{"TokenAuth": []}]  # every operation needs a token
            assert {"400", "401", "403", "429"} <= set(operation["responses"])
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in docs.text and "cdn." not in docs.text  # no CDN
