"""Issue 18.7: the admin login is throttled per username and address, in the database (so every
web process and every restart sees the same count), with a message that says what happened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from automate_core.models import LoginFailure

pytestmark = pytest.mark.django_db

RIGHT = "the-right-password-0123"


@pytest.fixture(autouse=True)
def admin_user(settings: Any) -> None:
    settings.AUTOMATE_LOGIN_MAX_FAILURES = 5
    settings.AUTOMATE_LOGIN_FAILURE_WINDOW = 900
    get_user_model().objects.create_superuser("admin", "admin@example.com", RIGHT)


def attempt(password: str, address: str = "203.0.113.7", username: str = "admin") -> tuple[bool, str]:
    """A fresh browser (its own session) posting the admin's login form; (logged in, page text)."""
    client = Client(REMOTE_ADDR=address)
    response = client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})
    return response.status_code == 302 and "_auth_user_id" in client.session, response.content.decode()


def test_the_right_password_is_refused_after_too_many_failures() -> None:
    for _ in range(5):
        ok, page = attempt("wrong")
        assert not ok and "Please enter the correct username and password" in page
    ok, page = attempt(RIGHT)
    assert not ok
    assert "Too many failed logins for this username from your address" in page
    assert "AUTOMATE_LOGIN_MAX_FAILURES" in page
    for _ in range(25):  # more guesses change nothing, and are not even checked
        assert not attempt("wrong")[0]
    assert not attempt(RIGHT)[0]
    assert LoginFailure.objects.count() == 5  # refused attempts are not counted again


def test_the_limit_is_per_username_and_address() -> None:
    for _ in range(5):
        attempt("wrong")
    assert attempt(RIGHT, address="198.51.100.9")[0]  # the same user from elsewhere
    get_user_model().objects.create_superuser("other", "other@example.com", RIGHT)
    assert attempt(RIGHT, username="other")[0]  # another user from the same address
    assert not attempt(RIGHT)[0]


def test_the_window_passes_and_a_success_clears_the_count() -> None:
    for _ in range(5):
        attempt("wrong")
    assert not attempt(RIGHT)[0]
    LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=901))  # the window has passed
    assert attempt(RIGHT)[0]
    for _ in range(4):
        attempt("wrong")
    assert attempt(RIGHT)[0]
    assert not LoginFailure.objects.filter(username="admin").exists()  # cleared by the success
    for _ in range(4):  # so four more failures do not lock it
        attempt("wrong")
    assert attempt(RIGHT)[0]
