"""``POST /api/v1/events`` and ``GET /api/v1/events/{id}``: one event and its job per item,
committed before the answer; idempotency keys; batches in one transaction; bad input refused
with 400/413/415 and nothing written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from automate_core.models import Event, OutboxJob
from tests.api.conftest import MakeToken, bearer


@pytest.fixture
async def token(make_token: MakeToken) -> str:
    return str(await make_token("events:write", "runs:read", name="producer"))


async def counts() -> tuple[int, int]:
    return await Event.objects.acount(), await OutboxJob.objects.acount()


async def test_an_event_is_written_with_its_job(api: httpx.AsyncClient, token: str) -> None:
    body = {"source": "shop", "type": "order.created", "payload": {"id": 7, "total": 9.5}}
    response = await api.post("/events", json=body, headers=bearer(token))
    assert response.status_code == 202, response.text
    answer = response.json()
    event = await Event.objects.aget(pk=answer["event_id"])
    assert (event.source, event.event_type, event.payload) == ("shop", "order.created", body["payload"])
    assert event.trace_id == answer["trace_id"] and len(answer["trace_id"]) == 32
    assert event.headers == {"x-automate-api-token": f"token:producer#{(await token_id())}"}
    job = await OutboxJob.objects.aget(event=event)
    assert job.status == "ready" and job.kind == "event"


async def test_a_backslash_before_u0000_is_stored_as_text(api: httpx.AsyncClient, token: str) -> None:
    payload = {"s": "\\u0000", "\\u0000": ["\\u0000"]}  # six characters each, no NUL
    response = await api.post(
        "/events", json={"source": "shop", "type": "t", "payload": payload}, headers=bearer(token)
    )
    assert response.status_code == 202, response.text
    assert (await Event.objects.aget(pk=response.json()["event_id"])).payload == payload


async def token_id() -> int:
    from automate_core.models import ApiToken

    return (await ApiToken.objects.aget(name="producer")).pk


async def test_a_repeated_key_answers_200_with_the_original(api: httpx.AsyncClient, token: str) -> None:
    body = {"source": "shop", "type": "t", "payload": 1, "idempotency_key": "order-1"}
    first = await api.post("/events", json=body, headers=bearer(token))
    again = await api.post("/events", json={**body, "payload": 2}, headers=bearer(token))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["trace_id"] == first.json()["trace_id"] and again.json()["status"] == "duplicate"
    assert await counts() == (1, 1)
    other_source = await api.post("/events", json={**body, "source": "crm"}, headers=bearer(token))
    assert other_source.status_code == 202  # keys are per source


async def test_a_batch_is_answered_per_item_in_order(api: httpx.AsyncClient, token: str) -> None:
    await api.post(
        "/events",
        json={"source": "shop", "type": "t", "payload": 0, "idempotency_key": "old"},
        headers=bearer(token),
    )
    batch = [
        {"source": "shop", "type": "a", "payload": {"n": 1}},
        {"source": "shop", "type": "b", "payload": [1, 2], "idempotency_key": "old"},
        {"source": "shop", "type": "c", "payload": None, "idempotency_key": "new"},
        {"source": "shop", "type": "d", "payload": "x", "idempotency_key": "new"},  # repeats the item before
    ]
    response = await api.post("/events", json=batch, headers=bearer(token))
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    assert [i["status"] for i in items] == [202, 200, 202, 200]
    assert items[3]["event_id"] == items[2]["event_id"]
    assert await counts() == (3, 3)
    stored = await Event.objects.aget(pk=items[2]["event_id"])
    assert stored.payload is None and stored.event_type == "c"


async def test_a_batch_the_database_refuses_writes_nothing(api: httpx.AsyncClient, token: str) -> None:
    # \ud800 is valid JSON text but no character: PostgreSQL's jsonb refuses it
    body = (
        '[{"source": "shop", "type": "a", "payload": 1},'
        ' {"source": "shop", "type": "b", "payload": "\\ud800"}]'
    )
    response = await api.post(
        "/events", content=body, headers={**bearer(token), "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert (
        response.json()["error"] == "invalid_request" and "nothing was written" in response.json()["detail"]
    )
    assert await counts() == (0, 0)


async def test_a_source_limited_token(api: httpx.AsyncClient, make_token: MakeToken) -> None:
    limited = await make_token("events:write", "runs:read", sources=["shop"])
    refused = await api.post(
        "/events", json={"source": "crm", "type": "t", "payload": 1}, headers=bearer(limited)
    )
    assert refused.status_code == 403 and refused.json()["error"] == "source_not_allowed"
    batch = [{"source": "shop", "type": "t", "payload": 1}, {"source": "crm", "type": "t", "payload": 2}]
    items = (await api.post("/events", json=batch, headers=bearer(limited))).json()["items"]
    assert [(i["status"], i["error"]) for i in items] == [(202, None), (403, "source_not_allowed")]
    assert await counts() == (1, 1)
    # reading: another source's event is not found for this token
    other = await Event.objects.acreate(source="crm", event_type="t", payload={}, trace_id="t" * 32)
    assert (await api.get(f"/events/{other.pk}", headers=bearer(limited))).status_code == 404
    assert (await api.get(f"/events/{items[0]['event_id']}", headers=bearer(limited))).status_code == 200


BAD_BODIES: list[tuple[Any, str]] = [
    ({"source": "shop", "type": "t"}, "payload: Field required"),
    ({"source": "shop", "payload": 1}, "type: Field required"),
    ({"source": 5, "type": "t", "payload": 1}, "source: Input should be a valid string"),
    ({"source": "shop", "type": ["t"], "payload": 1}, "type: Input should be a valid string"),
    ({"source": "shop", "type": "t", "payload": 1, "extra": 1}, "extra: Extra inputs are not permitted"),
    ({"source": "", "type": "t", "payload": 1}, "source: String should have at least 1 character"),
    ({"source": "a b", "type": "t", "payload": 1}, "source: String should match pattern"),
    ({"source": "s", "type": "t" * 201, "payload": 1}, "type: String should have at most 200 characters"),
    (
        {"source": "s", "type": "t", "payload": 1, "idempotency_key": ""},
        "idempotency_key: String should have",
    ),
    ({"source": "s", "type": "t", "payload": 1, "idempotency_key": 3}, "idempotency_key: Input should be"),
    ({"source": "s", "type": "t", "payload": "a\u0000b"}, "NUL"),
    ({"source": "s", "type": "t", "payload": {"k\u0000": 1}}, "NUL"),
    ("just a string", "Input should be a valid dictionary"),
    (42, "Input should be a valid dictionary"),
    (None, "Input should be a valid dictionary"),
    ([], "empty batch"),
    ([{"source": "s", "type": "t", "payload": 1}, {"source": "s"}], "[1].type: Field required"),
    ([{"source": "s", "type": "t", "payload": 1}, 7], "[1]: Input should be a valid dictionary"),
]


async def test_bad_bodies_are_400_naming_the_field_and_write_nothing(
    api: httpx.AsyncClient, token: str
) -> None:
    for body, message in BAD_BODIES:
        headers = {**bearer(token), "content-type": "application/json"}
        response = await api.post("/events", content=json.dumps(body), headers=headers)
        assert response.status_code == 400, (body, response.text)
        assert message in response.json()["detail"], (body, response.text)
        assert response.json()["error"] in ("invalid_request", "bad_request")
    for raw in (
        b"{",
        b"",
        b"\xff\xfe",
        b'{"source": NaN}',
        b"[" * 100000 + b"]" * 100000,
        b'{"source": "s", "type": "t", "payload": NaN}',
    ):
        response = await api.post(
            "/events", content=raw, headers={**bearer(token), "content-type": "application/json"}
        )
        assert response.status_code == 400, (raw[:20], response.text)
    assert await counts() == (0, 0)


async def test_other_media_types_are_415(api: httpx.AsyncClient, token: str) -> None:
    body = json.dumps({"source": "s", "type": "t", "payload": 1})
    for media in ("text/plain", "application/x-www-form-urlencoded", ""):
        headers = {**bearer(token), "content-type": media}
        response = await api.post("/events", content=body, headers=headers)
        assert response.status_code == 415, (media, response.text)
        assert response.json()["error"] == "unsupported_media_type"
    assert await counts() == (0, 0)


async def test_oversized_bodies_are_413_and_batches_400(
    api: httpx.AsyncClient, token: str, settings: Any
) -> None:
    settings.AUTOMATE_API_MAX_BODY_BYTES = 2000
    big = {"source": "s", "type": "t", "payload": "x" * 3000}
    response = await api.post("/events", json=big, headers=bearer(token))
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"

    async def chunked() -> Any:  # no Content-Length: the size is known only once read
        yield json.dumps(big).encode()

    response = await api.post(
        "/events", content=chunked(), headers={**bearer(token), "content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    settings.AUTOMATE_API_MAX_BODY_BYTES = 1024 * 1024
    settings.AUTOMATE_API_BATCH_MAX = 3
    batch = [{"source": "s", "type": "t", "payload": i} for i in range(4)]
    response = await api.post("/events", json=batch, headers=bearer(token))
    assert response.status_code == 400 and response.json()["error"] == "batch_too_large"
    assert "at most 3" in response.json()["detail"]
    assert await counts() == (0, 0)


async def test_get_an_event_with_its_runs(api: httpx.AsyncClient, token: str) -> None:
    from automate_core.models import ExecutionRun

    sent = await api.post(
        "/events", json={"source": "s", "type": "t", "payload": {"a": [1]}}, headers=bearer(token)
    )
    event_id = sent.json()["event_id"]
    run = await ExecutionRun.objects.acreate(
        workflow_name="w", event_id=event_id, status="succeeded", trace_id="t"
    )
    response = await api.get(f"/events/{event_id}", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["payload"] == {"a": [1]} and response.json()["runs"] == [run.pk]
    for missing in ("999999", str(2**63 - 1)):
        response = await api.get(f"/events/{missing}", headers=bearer(token))
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    for bad in ("0", "-1", "abc", str(2**63), "1.5"):
        response = await api.get(f"/events/{bad}", headers=bearer(token))
        assert response.status_code == 400, (bad, response.text)


async def test_events_sent_through_the_api_are_run(api: httpx.AsyncClient, token: str, load: Any) -> None:
    """The job the API wrote is the ordinary outbox job: a worker runs the workflow on it."""
    from automate_core.models import ExecutionRun
    from tests.worker.conftest import drain

    await sync_to_async(load)(
        {
            "workflows": [
                {
                    "name": "api_flow",
                    "trigger": {"source": "app"},
                    "steps": [
                        {
                            "name": "s",
                            "connector": "log",
                            "action": "info",
                            "params": {"message": "n={{ event.payload.n }}"},
                        }
                    ],
                }
            ]
        }
    )
    sent = await api.post(
        "/events", json={"source": "app", "type": "t", "payload": {"n": 3}}, headers=bearer(token)
    )
    event_id = sent.json()["event_id"]
    await drain(lambda: ExecutionRun.objects.filter(event_id=event_id, status="succeeded").exists())
