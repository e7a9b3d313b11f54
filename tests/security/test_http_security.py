"""HTTP security of the deployable project: deploy checks, headers, CSRF, authentication."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import database_url

AUTOMATE = str(Path(sys.executable).with_name("automate"))

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "asgi.settings",
    "SECRET_KEY": "k8RZ-production-like-key-6f1c2e9a0b7d4e3f8a5c1b2d9e0f7a6b5c4d3e2f1a0",
    "ALLOWED_HOSTS": "automate.example.com",
}


def test_deploy_check_is_clean_with_production_settings(live_db: None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "AUTOMATE_HTTPS"}}
    env.update(PRODUCTION_ENV, DATABASE_URL=database_url())
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.fixture
def https(settings: object) -> None:
    for name, value in {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }.items():
        setattr(settings, name, value)


@pytest.mark.usefixtures("https")
def test_security_headers_on_the_admin(db: None) -> None:
    response = Client().get("/admin/login/", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.usefixtures("https")
def test_plain_http_is_redirected_to_https(db: None) -> None:
    response = Client().get("/admin/login/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def _patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _patterns(entry, route)
        elif isinstance(entry, URLPattern):
            found.append(route)
    return found


def _sample_path(route: str) -> str:
    path = route.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\", "")
    for token, value in [("(?P<app_label>automate_core|auth)", "automate_core"), ("<path:object_id>", "1")]:
        path = path.replace(token, value)
    while "<" in path:
        start, end = path.index("<"), path.index(">")
        path = path[:start] + "1" + path[end + 1 :]
    while "(?P" in path:
        start = path.index("(?P")
        end = path.index(")", start)
        path = path[:start] + "x" + path[end + 1 :]
    return "/" + path


PUBLIC: tuple[str, ...] = (
    "hooks/",
    "admin/login/",
    "admin/logout/",
    "admin/password_reset",
    "admin/r/",
    "admin/jsi18n/",
)
# the HTTP API's description and its docs page are public; every operation needs a token (tests/api)
PUBLIC += ("api/v1/openapi.json", "api/v1/docs")


def test_every_endpoint_but_webhooks_needs_a_login(db: None) -> None:
    """Anonymous requests to every URL pattern are sent to the login page or refused."""
    client = Client()
    checked = 0
    for route in _patterns(get_resolver()):
        if route.startswith(PUBLIC) or route in {"", "admin/autocomplete/"}:
            continue
        path = _sample_path(route)
        response = client.get(path)
        # 405: a GET to an API path that only takes POST or PUT (its operations need a token)
        assert response.status_code in (302, 401, 403, 404, 405), f"{path}: {response.status_code}"
        if response.status_code == 302:
            assert "/admin/login/" in response["Location"], f"{path} redirects to {response['Location']}"
        checked += 1
    assert checked > 20  # the admin's model pages were all visited


def test_admin_actions_need_a_csrf_token(admin_user: object) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)  # type: ignore[arg-type]
    response = client.post(
        "/admin/automate_core/outboxjob/", {"action": "delete_selected", "_selected_action": ["1"]}
    )
    assert response.status_code == 403
