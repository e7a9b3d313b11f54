"""``automate tokens`` and the console's token and audit pages: a token is shown once, stored as
a hash, listed without it, revoked at once; the audit log lists writes and cannot be edited."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from automate_core.api.auth import create_token, hash_token
from automate_core.models import ApiToken, AuditEntry

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r"^atk_[A-Za-z0-9_-]{43}$", re.M)


def automate(*args: str) -> str:
    out = io.StringIO()
    call_command("automate", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_token_once_and_stores_its_hash() -> None:
    out = automate("tokens", "create", "ci", "--scope", "events:write", "--scope", "runs:read",
                   "--expires", "90d", "--source", "shop")  # fmt: skip
    (token,) = TOKEN.findall(out)
    row = ApiToken.objects.get()
    assert row.token_hash == hash_token(token) and row.scopes == ["events:write", "runs:read"]
    assert row.sources == ["shop"] and row.prefix == token[:10]
    assert row.expires_at is not None
    assert timedelta(days=89) < row.expires_at - timezone.now() <= timedelta(days=90)
    listed = automate("tokens", "list")
    assert "ci" in listed and row.prefix in listed and token not in listed and "active until" in listed
    assert token not in automate("tokens", "list", "--json")
    assert AuditEntry.objects.filter(action="tokens.create", actor="cli").count() == 1


def test_revoke_by_name_or_id() -> None:
    automate("tokens", "create", "a", "--scope", "admin")
    row = ApiToken.objects.get()
    assert "revoked" in automate("tokens", "revoke", "a")
    assert ApiToken.objects.get().revoked_at is not None
    assert "revoked" in automate("tokens", "list")
    with pytest.raises(SystemExit):
        automate("tokens", "revoke", str(row.pk))  # already revoked: exit code 1
    create_token("twin", ["runs:read"])
    create_token("twin", ["runs:read"])
    with pytest.raises(CommandError, match="revoke one by id"):
        automate("tokens", "revoke", "twin")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokens", "create", "x"], "at least one scope"),
        (["tokens", "create", "x", "--scope", "runs:read", "--expires", "someday"], "Cannot read the expiry"),
        (["tokens", "create"], "needs a NAME"),
        (["tokens", "create", "x", "--scope", "runs:read", "--rate-limit", "-1"], "requests per minute"),
        (["tokens", "create", "x" * 101, "--scope", "runs:read"], "1 to 100 characters"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        automate(*args)
    assert not ApiToken.objects.exists()


def test_unknown_scopes_are_refused_by_the_parser() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        automate("tokens", "create", "x", "--scope", "everything")


def test_the_console_creates_a_token_shown_once(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/automate_core/apitoken/add/",
        {"name": "from-console", "scopes": ["runs:read", "workflows:read"], "sources": "shop, crm"},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    (token,) = [t for m in messages for t in re.findall(r"atk_[A-Za-z0-9_-]{43}", m)]
    row = ApiToken.objects.get()
    assert row.token_hash == hash_token(token) and row.sources == ["crm", "shop"]
    assert row.scopes == ["runs:read", "workflows:read"]
    page = admin_client.get(f"/admin/automate_core/apitoken/{row.pk}/change/").content.decode()
    assert token not in page and row.token_hash not in page
    assert token not in admin_client.get("/admin/automate_core/apitoken/").content.decode()
    admin_client.post(
        "/admin/automate_core/apitoken/", {"action": "revoke", "_selected_action": [row.pk]}, follow=True
    )
    assert ApiToken.objects.get().revoked_at is not None
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["tokens.create", "tokens.revoke"]


def test_the_audit_log_is_read_only(admin_client: Client) -> None:
    entry = AuditEntry.objects.create(
        actor="token:x#1", action="runs.replay", target="run:5", details={"a": 1}
    )
    listing = admin_client.get("/admin/automate_core/auditentry/").content.decode()
    assert "runs.replay" in listing and "run:5" in listing
    assert admin_client.get(f"/admin/automate_core/auditentry/{entry.pk}/change/").status_code == 200
    assert admin_client.get("/admin/automate_core/auditentry/add/").status_code == 403
    assert admin_client.post(f"/admin/automate_core/auditentry/{entry.pk}/delete/").status_code == 403
    assert AuditEntry.objects.count() == 1
