"""POST /hooks/<source>/: 202 only after the commit; every refusal has its code; nothing half-written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from automate_core.models import Event, OutboxJob
from tests.conftest import post_webhook, sign

pytestmark = pytest.mark.usefixtures("demo_source")


async def counts() -> tuple[int, int]:
    return await Event.objects.acount(), await OutboxJob.objects.acount()


async def test_signed_webhook_is_stored_with_its_job(client: httpx.AsyncClient) -> None:
    response = await post_webhook(client, "test", {"type": "order.created", "id": 7})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted" and len(body["trace_id"]) == 32
    event = await Event.objects.aget(pk=body["event_id"])
    assert event.event_type == "order.created"
    assert event.payload == {"type": "order.created", "id": 7}
    assert event.trace_id == body["trace_id"]
    job = await OutboxJob.objects.aget(event=event)
    assert (job.status, job.attempts, job.kind) == ("ready", 0, "event")


async def test_raw_body_is_kept_as_sent(client: httpx.AsyncClient) -> None:
    raw = b'{"type": "t",   "n": 1.50, "s": "\\u00e9"}'
    response = await post_webhook(client, "test", raw)
    assert response.status_code == 202
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert event.payload == {"type": "t", "n": 1.5, "s": "é"}


@pytest.mark.parametrize("raw", [b"null", b"[]", b"0", b'"text"'])
async def test_any_json_value_is_a_payload(client: httpx.AsyncClient, raw: bytes) -> None:
    """Found by schemathesis: a body that is just `null` once failed the group commit (503)."""
    response = await post_webhook(client, "test", raw)
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert event.payload == json.loads(raw)


async def test_credentials_headers_are_not_stored(client: httpx.AsyncClient) -> None:
    response = await post_webhook(
        client, "test", {"type": "t"}, headers={"authorization": "Bearer abc", "x-custom": "kept"}
    )
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert "authorization" not in event.headers
    assert event.headers["x-custom"] == "kept"


async def test_redelivery_answers_200_with_the_original(client: httpx.AsyncClient) -> None:
    headers = {"idempotency-key": "evt_123"}
    first = await post_webhook(client, "test", {"type": "t"}, headers=headers)
    second = await post_webhook(client, "test", {"type": "t"}, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["event_id"] == first.json()["event_id"]
    assert second.json()["trace_id"] == first.json()["trace_id"]
    assert second.json()["status"] == "duplicate"
    assert await counts() == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [
        ({"secret": "wrong-secret"}, 401, "signature_mismatch"),
        ({"headers": {"x-automate-signature": ""}}, 401, "missing_signature"),
        ({"headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ],
)
async def test_refusals(client: httpx.AsyncClient, kwargs: dict[str, Any], status: int, reason: str) -> None:
    response = await post_webhook(client, "test", {"type": "t"}, **kwargs)
    assert response.status_code == status
    assert response.json()["error"] == reason
    assert await counts() == (0, 0)


async def test_unknown_source_is_404(client: httpx.AsyncClient) -> None:
    response = await post_webhook(client, "nope", {"type": "t"})
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_source"


async def test_disabled_source_is_404(client: httpx.AsyncClient) -> None:
    from automate_core.models import WebhookSource

    await WebhookSource.objects.filter(slug="test").aupdate(enabled=False)
    response = await post_webhook(client, "test", {"type": "t"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b'{"n": NaN}', "invalid_json"),
        (b'{"s": "\\u0000"}', "invalid_json"),
        (b'{"a": {"k\\u0000": 1}}', "invalid_json"),  # in a nested key too
        (b'{"a": ["x", "\\\\\\u0000"]}', "invalid_json"),  # an escaped backslash, then a real NUL
        (b'{"s": "\\ud800"}', "invalid_json"),  # Python accepts a lone surrogate, PostgreSQL does not
        (b"\xff\xfe{}", "invalid_encoding"),
    ],
)
async def test_malformed_bodies_are_400(client: httpx.AsyncClient, body: bytes, reason: str) -> None:
    response = await post_webhook(client, "test", body)
    assert response.status_code == 400
    assert response.json()["error"] == reason
    assert await counts() == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [b'{"s": "\\\\u0000"}', b'{"\\\\u0000": ["\\\\u0000"]}'],
)
async def test_a_backslash_before_u0000_is_text_not_a_nul(client: httpx.AsyncClient, raw: bytes) -> None:
    """An escaped backslash followed by ``u0000`` is six characters PostgreSQL stores, not a NUL."""
    response = await post_webhook(client, "test", raw)
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(pk=response.json()["event_id"])
    assert event.payload == json.loads(raw)
    assert "\x00" not in json.dumps(event.payload)


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/hooks/test/")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_oversized_body_is_413_without_storing(client: httpx.AsyncClient) -> None:
    big = json.dumps({"type": "t", "blob": "x" * (1024 * 1024)}).encode()
    response = await post_webhook(client, "test", big)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert await counts() == (0, 0)


async def test_the_django_view_behaves_the_same(client: httpx.AsyncClient, settings: Any) -> None:
    """WebhookView (for projects that mount our URLs) answers like the lean lane."""
    from django.test import AsyncClient

    django_client = AsyncClient()
    body = json.dumps({"type": "via.django"}).encode()
    ok = await django_client.post(
        "/hooks/test/", body, content_type="application/json",
        headers={"x-automate-signature": sign(body)},
    )  # fmt: skip
    assert ok.status_code == 202
    bad = await django_client.post(
        "/hooks/test/", body, content_type="application/json",
        headers={"x-automate-signature": sign(body, "nope")},
    )  # fmt: skip
    assert bad.status_code == 401
    assert json.loads(bad.content)["error"] == "signature_mismatch"


async def test_database_down_answers_503_and_stores_nothing(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automate_core.exceptions import DatabaseUnavailable
    from automate_core.ingest.ingestor import EventIngestor

    async def unavailable(self: EventIngestor, event: Any, budget: Any = None) -> Any:
        raise DatabaseUnavailable()

    monkeypatch.setattr(EventIngestor, "ingest", unavailable)
    response = await post_webhook(client, "test", {"type": "t"})
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert await counts() == (0, 0)


async def test_the_django_view_applies_the_source_limit() -> None:
    from django.test import AsyncClient

    from automate_core.models import WebhookSource

    await WebhookSource.objects.filter(slug="test").aupdate(config={"max_body_bytes": 100})
    body = json.dumps({"type": "t", "pad": "x" * 200}).encode()
    response = await AsyncClient().post(
        "/hooks/test/", body, content_type="application/json", headers={"x-automate-signature": sign(body)}
    )
    assert response.status_code == 413
    assert json.loads(response.content)["error"] == "body_too_large"
    assert await counts() == (0, 0)


async def test_a_row_postgresql_refuses_fails_alone_in_its_batch(client: httpx.AsyncClient) -> None:
    """Concurrent requests share a statement; one bad row must not take the others down."""
    import asyncio

    bad = b'{"type": "t", "s": "\\udc00"}'
    good = [json.dumps({"type": "t", "n": n}).encode() for n in range(8)]
    answers = await asyncio.gather(
        *(post_webhook(client, "test", body) for body in [*good[:4], bad, *good[4:]])
    )
    assert [a.status_code for a in answers] == [202] * 4 + [400] + [202] * 4
    assert answers[4].json()["error"] == "invalid_json"
    assert await counts() == (8, 8)


async def test_scans_of_unknown_slugs_do_not_create_metric_labels(client: httpx.AsyncClient) -> None:
    from automate_core.observability import metrics

    unknown = metrics.webhooks_rejected.labels("(unknown)", "method_not_allowed")
    before = unknown._value.get()
    await client.get("/hooks/wp-admin/")
    await client.post("/hooks/phpmyadmin/", json={})
    assert unknown._value.get() == before + 1
    labels = {s.labels["source"] for m in metrics.webhooks_rejected.collect() for s in m.samples}
    assert not labels & {"wp-admin", "phpmyadmin"}
