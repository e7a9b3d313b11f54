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


@pytest.mark.usefixtures("demo_source")
async def test_refused_deliveries_are_counted_on_the_source_page(admin_client: Client, client: Any) -> None:
    """Issue 15.8: an operator sees a sender with the wrong secret (and every other refusal)."""
    from asgiref.sync import sync_to_async

    from automate_core.ingest.views import service
    from automate_core.models import WebhookRejection
    from automate_core.observability import metrics
    from tests.conftest import post_webhook

    mismatch = metrics.webhooks_rejected.labels("test", "signature_mismatch")
    before = mismatch._value.get()
    for _ in range(3):
        assert (
            await post_webhook(client, "test", {"type": "t"}, secret="wrong-secret-0123456789")
        ).status_code == 401
    big = {"type": "t", "pad": "x" * (1024 * 1024)}
    assert (await post_webhook(client, "test", big)).status_code == 413
    assert (await post_webhook(client, "nope", {"type": "t"})).status_code == 404  # no such source
    assert (await post_webhook(client, "test", {"type": "t"})).status_code == 202  # not a refusal
    await service().rejections.flush()
    assert mismatch._value.get() == before + 3
    counted = {r.reason: (r.status, r.count) async for r in WebhookRejection.objects.all()}
    assert counted == {"signature_mismatch": (401, 3), "body_too_large": (413, 1)}
    source = await WebhookSource.objects.aget(slug="test")
    page = (
        await sync_to_async(admin_client.get)(f"/admin/automate_core/webhooksource/{source.pk}/change/")
    ).content
    assert b"signature_mismatch" in page and b"<td>401</td><td>3</td>" in page
    assert b"does not match the body" in page  # the last message, as the sender got it
    listing = (await sync_to_async(admin_client.get)("/admin/automate_core/webhooksource/")).content
    assert b"<strong style='color:#b00'>4</strong>" in listing
    for _ in range(2):  # later refusals add up in the same row
        await post_webhook(client, "test", {"type": "t"}, secret="wrong-secret-0123456789")
    await service().rejections.flush()
    row = await WebhookRejection.objects.aget(source="test", reason="signature_mismatch")
    assert row.count == 5
