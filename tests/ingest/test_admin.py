"""The sources admin: unverified sources are flagged; a token is shown once and stored hashed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from automate_core.models import WebhookSource


@pytest.mark.django_db
def test_unverified_flag_and_token_issue(admin_client: Client, load: Callable[[dict[str, Any]], Any]) -> None:
    load({"sources": [{"slug": "open", "scheme": "none"}, {"slug": "erp", "scheme": "token"}]})
    listing = admin_client.get("/admin/automate_core/webhooksource/")
    assert b"UNVERIFIED" in listing.content
    erp = WebhookSource.objects.get(slug="erp")
    page = admin_client.post(
        "/admin/automate_core/webhooksource/",
        {"action": "issue_token", "_selected_action": [erp.pk]},
        follow=True,
    )
    token = re.search(rb"new token (atk_[A-Za-z0-9_-]+)", page.content)
    assert token is not None
    erp.refresh_from_db()
    assert len(erp.token_hash.split()) == 1 and token.group(1).decode() not in erp.token_hash
    change = admin_client.get(f"/admin/automate_core/webhooksource/{erp.pk}/change/")
    assert token.group(1) not in change.content and b"1 active" in change.content
    admin_client.post(
        "/admin/automate_core/webhooksource/", {"action": "revoke_tokens", "_selected_action": [erp.pk]}
    )
    erp.refresh_from_db()
    assert erp.token_hash == ""
