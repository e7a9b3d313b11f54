"""The messages a new user meets name the exact variable or command that fixes the problem."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from tests.conftest import post_webhook

pytestmark = pytest.mark.usefixtures("live_db")


async def test_a_webhook_to_a_source_without_its_secret_names_the_fix_and_the_log_names_the_secret(
    client: httpx.AsyncClient, load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await sync_to_async(load)(
        {"sources": [{"slug": "shop", "scheme": "hmac_sha256", "secret_ref": "SHOP_HOOK_NOT_SET"}]}
    )
    with caplog.at_level(logging.ERROR):
        response = await post_webhook(client, "shop", {"type": "order.created"})
    assert response.status_code == 401 and response.json()["error"] == "no_secret_configured"
    message = response.json()["detail"]
    assert "automate secrets set NAME" in message and "AUTOMATE_SECRET_NAME" in message
    assert "SHOP_HOOK_NOT_SET" not in message  # the sender learns nothing about the installation
    assert any("SHOP_HOOK_NOT_SET" in r.getMessage() for r in caplog.records)  # the operator does
