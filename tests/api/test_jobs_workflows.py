"""``/api/v1/jobs`` (dead jobs and their replay), ``/api/v1/workflows`` (deploy, dry run, diff,
rollback, enable), ``/api/v1/secrets`` (write only), sources and schedules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from automate_core.models import AuditEntry, Event, OutboxJob, Schedule, Workflow, WorkflowVersion
from tests.api.conftest import KEY, MakeToken, bearer

STEP = {"name": "s", "connector": "log", "action": "info", "params": {"message": "hi"}}


@pytest.fixture
async def admin(make_token: MakeToken) -> str:
    return str(await make_token("admin", name="deployer"))


async def dead_jobs() -> list[OutboxJob]:
    made = []
    for i, (source, error) in enumerate([("shop", "timeout"), ("shop", "HTTP 500"), ("crm", "timeout")]):
        event = await Event.objects.acreate(
            source=source, event_type=f"order.{i}", payload={}, trace_id="t" * 32
        )
        made.append(await OutboxJob.objects.acreate(event=event, status="dead", attempts=5, last_error=error))
    await OutboxJob.objects.acreate(event=made[0].event, status="completed")
    return made


async def test_dead_jobs_by_filter_in_pages(api: httpx.AsyncClient, admin: str) -> None:
    jobs = await dead_jobs()
    everything = await api.get("/jobs", params={"status": "dead", "limit": 2}, headers=bearer(admin))
    assert everything.status_code == 200, everything.text
    page = everything.json()
    assert [j["id"] for j in page["items"]] == [jobs[2].pk, jobs[1].pk] and page["next_cursor"]
    rest = await api.get("/jobs", params={"limit": 2, "cursor": page["next_cursor"]}, headers=bearer(admin))
    assert [j["id"] for j in rest.json()["items"]] == [jobs[0].pk] and rest.json()["next_cursor"] is None
    shop = await api.get("/jobs", params={"source": "shop", "error": "TIME"}, headers=bearer(admin))
    assert [j["id"] for j in shop.json()["items"]] == [jobs[0].pk]
    wildcard = await api.get("/jobs", params={"event_type": "order.*", "since": "1h"}, headers=bearer(admin))
    assert len(wildcard.json()["items"]) == 3
    for params in (
        {"status": "ready"},
        {"kind": "cron"},
        {"since": "soon"},
        {"cursor": "cnVuOjU"},
        {"since": "99999999999d"},
        {"until": "999999999999w"},
    ):
        response = await api.get("/jobs", params=params, headers=bearer(admin))
        assert response.status_code == 400, (params, response.text)


async def test_replaying_dead_jobs(api: httpx.AsyncClient, admin: str) -> None:
    jobs = await dead_jobs()
    empty = await api.post("/jobs/replay", json={}, headers=bearer(admin))
    assert empty.status_code == 400 and "empty filter is refused" in empty.json()["detail"]
    both = await api.post("/jobs/replay", json={"source": "shop", "all": True}, headers=bearer(admin))
    assert both.status_code == 400
    preview = await api.post(
        "/jobs/replay", json={"error": "timeout", "dry_run": True}, headers=bearer(admin)
    )
    assert preview.json() == {"matched": 2, "replayed": [], "dry_run": True}
    assert await OutboxJob.objects.acount() == 4 and not await AuditEntry.objects.aexists()
    done = await api.post("/jobs/replay", json={"error": "timeout"}, headers=bearer(admin))
    assert done.status_code == 200 and done.json()["matched"] == 2 and len(done.json()["replayed"]) == 2
    new = [j async for j in OutboxJob.objects.filter(pk__in=done.json()["replayed"])]
    assert {j.replay_of_id for j in new} == {jobs[0].pk, jobs[2].pk} and {j.status for j in new} == {"ready"}
    again = await api.post("/jobs/replay", json={"error": "timeout"}, headers=bearer(admin))
    assert again.json()["replayed"] == []  # a dead job is replayed once
    listed = await api.get("/jobs", params={"error": "timeout"}, headers=bearer(admin))
    assert {j["id"]: bool(j["replayed_as"]) for j in listed.json()["items"]} == {
        jobs[0].pk: True,
        jobs[2].pk: True,
    }
    every = await api.post("/jobs/replay", json={"all": True}, headers=bearer(admin))
    assert every.json()["replayed"] and len(every.json()["replayed"]) == 1
    entry = await AuditEntry.objects.filter(action="jobs.replay").order_by("id").afirst()
    assert entry is not None and entry.details == {"filter": {"error": "timeout"}, "replayed": 2}


FILE: dict[str, Any] = {
    "sources": [{"slug": "shop", "scheme": "none"}],
    "workflows": [{"name": "flow", "trigger": {"source": "shop"}, "steps": [STEP]}],
    "schedules": [{"name": "nightly", "cron": "0 3 * * *"}],
}


async def test_deploy_with_a_dry_run_first(api: httpx.AsyncClient, admin: str) -> None:
    dry = await api.put("/workflows", params={"dry_run": "true"}, json=FILE, headers=bearer(admin))
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and dry.json()["counts"]["workflows"] == 1
    assert "+  - name: s" in dry.json()["diff"]["flow"]
    assert not await Workflow.objects.aexists() and not await Schedule.objects.aexists()
    real = await api.put("/workflows", json=FILE, headers=bearer(admin))
    assert real.status_code == 200 and real.json()["dry_run"] is False
    assert await Workflow.objects.filter(name="flow", current_version__number=1).aexists()
    assert await Schedule.objects.filter(name="nightly").aexists()
    same = await api.put("/workflows", params={"dry_run": True}, json=FILE, headers=bearer(admin))
    assert same.json()["diff"] == {"flow": ""} and same.json()["counts"]["versions"] == 0
    changed = {**FILE, "workflows": [{**FILE["workflows"][0], "description": "now with words"}]}
    diff = (await api.put("/workflows", params={"dry_run": True}, json=changed, headers=bearer(admin))).json()
    assert (
        "+description: now with words" in diff["diff"]["flow"].replace("  ", "")
        and diff["counts"]["versions"] == 1
    )
    assert await WorkflowVersion.objects.acount() == 1
    entry = await AuditEntry.objects.aget(action="workflows.load")
    assert entry.actor.startswith("token:deployer#") and entry.target == "flow"


BAD_FILES: list[tuple[Any, str]] = [
    (
        {"workflows": [{"name": "w", "steps": [{**STEP, "connector": "nope"}]}]},
        "workflows[0].steps[0].connector",
    ),
    ({"workflows": [{"name": "w", "steps": []}]}, "workflows[0].steps"),
    ({"workflows": [{"name": "ok", "steps": [STEP]}, {"name": "w", "stepz": []}]}, "workflows[1]"),
    ({"workflows": [{"name": "w", "steps": [STEP], "retry": {"max_attempts": 0}}]}, "workflows[0]"),
    ({"schedules": [{"name": "s", "cron": "every day"}]}, "schedules[0].cron"),
    ({"sources": [{"slug": "bad slug!", "scheme": "none"}]}, "sources[0]"),
    (
        {"sources": [{"slug": "x", "scheme": "hmac_sha256"}]},
        "sources[0]: scheme hmac_sha256 needs a secret_ref",
    ),
    ({"workflows": "not a list"}, "workflows"),
    ({"workflows": [5]}, "workflows"),
    ({"flows": []}, "flows"),
]


async def test_bad_files_name_the_place_and_write_nothing(api: httpx.AsyncClient, admin: str) -> None:
    for body, place in BAD_FILES:
        for dry_run in (True, False):
            response = await api.put(
                "/workflows", params={"dry_run": dry_run}, json=body, headers=bearer(admin)
            )
            assert response.status_code == 400, (body, response.text)
            assert place in response.json()["detail"], (body, response.text)
    assert not await Workflow.objects.aexists() and not await AuditEntry.objects.aexists()


async def test_read_rollback_enable_disable(api: httpx.AsyncClient, admin: str) -> None:
    await api.put("/workflows", json=FILE, headers=bearer(admin))
    changed = {"workflows": [{**FILE["workflows"][0], "description": "v2"}]}
    await api.put("/workflows", json=changed, headers=bearer(admin))
    listed = (await api.get("/workflows", headers=bearer(admin))).json()
    assert [(w["name"], w["current_version"], w["enabled"]) for w in listed] == [("flow", 2, True)]
    one = (await api.get("/workflows/flow", headers=bearer(admin))).json()
    assert [v["number"] for v in one["versions"]] == [2, 1] and one["versions"][0]["current"]
    assert one["definition"]["description"] == "v2"
    back = await api.post("/workflows/flow/rollback", json={"to": 1}, headers=bearer(admin))
    assert back.status_code == 200 and back.json()["current_version"] == 3, back.text
    assert (await api.get("/workflows/flow", headers=bearer(admin))).json()["definition"]["description"] == ""
    missing = await api.post("/workflows/flow/rollback", json={"to": 9}, headers=bearer(admin))
    assert missing.status_code == 400 and "no version 9" in missing.json()["detail"]
    for bad in ({"to": 0}, {"to": "x"}, {}, {"to": 1, "also": 2}):
        assert (
            await api.post("/workflows/flow/rollback", json=bad, headers=bearer(admin))
        ).status_code == 400
    off = await api.post("/workflows/flow/disable", headers=bearer(admin))
    assert off.json() == {"name": "flow", "enabled": False}
    assert not (await Workflow.objects.aget(name="flow")).enabled
    assert (await api.post("/workflows/flow/enable", headers=bearer(admin))).json()["enabled"] is True
    for path in ("/workflows/nope", "/workflows/nope/enable", "/workflows/nope/rollback"):
        method = "GET" if path == "/workflows/nope" else "POST"
        response = await api.request(
            method, path, json={"to": 1} if "rollback" in path else None, headers=bearer(admin)
        )
        assert response.status_code == 404, (path, response.text)
    actions = [e.action async for e in AuditEntry.objects.order_by("id")]
    assert actions == [
        "workflows.load",
        "workflows.load",
        "workflows.rollback",
        "workflows.disable",
        "workflows.enable",
    ]


async def test_sources_and_schedules(api: httpx.AsyncClient, admin: str, load: Any) -> None:
    await sync_to_async(load)(
        {**FILE, "sources": [{"slug": "gh", "scheme": "github", "secret_ref": "env:GH"}]}
    )
    sources = (await api.get("/sources", headers=bearer(admin))).json()
    assert [(s["slug"], s["scheme"], s["secret_ref"]) for s in sources] == [("gh", "github", "env:GH")]
    assert (await api.get("/sources/gh", headers=bearer(admin))).json()["slug"] == "gh"
    assert (await api.get("/sources/none", headers=bearer(admin))).status_code == 404
    schedules = (await api.get("/schedules", headers=bearer(admin))).json()
    assert [(s["name"], s["cron"]) for s in schedules] == [("nightly", "0 3 * * *")]
    assert (await api.get("/schedules/nightly", headers=bearer(admin))).json()["event_type"] == "nightly"
    assert (await api.get("/schedules/x", headers=bearer(admin))).status_code == 404


async def test_secrets_are_write_only(api: httpx.AsyncClient, make_token: MakeToken, settings: Any) -> None:
    from automate_governance.secrets.db import DbSecretsBackend

    token = await make_token("secrets:write")
    unconfigured = await api.put("/secrets/SHOP", json={"value": "value-one-2345"}, headers=bearer(token))
    assert unconfigured.status_code == 503 and unconfigured.json()["error"] == "unavailable"
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY]
    stored = await api.put("/secrets/SHOP", json={"value": "value-one-2345"}, headers=bearer(token))
    assert stored.status_code == 200 and stored.json() == {"name": "SHOP", "stored": True}
    replaced = await api.put("/secrets/SHOP", json={"value": "value-two-6789"}, headers=bearer(token))
    assert replaced.status_code == 200 and "value-two" not in replaced.text
    assert await sync_to_async(DbSecretsBackend().get_secret)("SHOP") == "value-two-6789"
    for bad_name, body in (
        ("a b", {"value": "x" * 5}),
        ("x", {"value": ""}),
        ("x", {"value": 5}),
        ("x", {"value": "abc", "note": 1}),
        ("x", {}),
    ):
        response = await api.put(f"/secrets/{bad_name}", json=body, headers=bearer(token))
        assert response.status_code in (400, 404), (bad_name, body, response.text)
    entries = [e async for e in AuditEntry.objects.filter(action="secrets.put").values("target", "details")]
    assert entries == [{"target": "secret:SHOP", "details": {}}] * 2
    audit_text = str([e async for e in AuditEntry.objects.values()])
    assert "value-one" not in audit_text and "value-two" not in audit_text
    # no route reads a secret back
    assert (await api.get("/secrets/SHOP", headers=bearer(token))).status_code in (404, 405)


async def test_a_source_limited_token_sees_its_dead_jobs_only(
    api: httpx.AsyncClient, make_token: MakeToken
) -> None:
    jobs = await dead_jobs()
    key = await make_token("runs:read", "runs:write", sources=["crm"])
    listed = await api.get("/jobs", headers=bearer(key))
    assert [j["id"] for j in listed.json()["items"]] == [jobs[2].pk]
    refused = await api.post("/jobs/replay", json={"all": True}, headers=bearer(key))
    assert refused.status_code == 403 and refused.json()["error"] == "source_limited"
    assert not await OutboxJob.objects.filter(replay_of__isnull=False).aexists()
