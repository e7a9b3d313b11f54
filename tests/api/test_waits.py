"""The API of waiting runs: what they wait for, and answering an approval (once)."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async

from automate_core.ingest.ingestor import emit
from automate_core.models import AuditEntry, ExecutionRun, RunWait
from tests.api.conftest import MakeToken, bearer
from tests.workflows.conftest import aload, drain, probe, workflow  # noqa: F401

pytestmark = pytest.mark.usefixtures("live_db")


async def parked() -> ExecutionRun:
    await aload(
        workflow(
            "refund",
            {
                "name": "approve",
                "approval": {"prompt": "Refund {{ event.payload.amount }}?", "timeout": "1d"},
            },
            {
                "name": "pay",
                "connector": "probe",
                "action": "echo",
                "condition": "steps.approve.output.approved",
            },
        )
    )
    result = await sync_to_async(emit)("shop", "order.created", {"amount": 700})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    return await ExecutionRun.objects.aget(event_id=result.event_id)


async def test_a_program_lists_waits_and_answers_an_approval_once(
    api: httpx.AsyncClient, make_token: MakeToken
) -> None:
    run = await parked()
    reader, writer = await make_token("runs:read"), await make_token("runs:write", name="bot")
    waits = (await api.get("/waits", headers=bearer(reader))).json()
    assert [(w["run_id"], w["kind"], w["waits_for"]) for w in waits] == [
        (run.pk, "approval", "approval: Refund 700?")
    ]
    assert (await api.get("/approvals", headers=bearer(reader))).json()[0]["step"] == "approve"
    assert (await api.get("/waits?kind=sleep", headers=bearer(reader))).json() == []

    answer = await api.post(f"/approvals/{run.pk}/approve", json={"approved": True}, headers=bearer(writer))
    assert answer.status_code == 200 and answer.json()["by"].startswith("token:bot#")
    again = await api.post(f"/approvals/{run.pk}/approve", json={"approved": False}, headers=bearer(writer))
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert "already answered (approved by token:bot#" in again.json()["detail"]
    missing = await api.post(f"/approvals/{run.pk}/nope", json={"approved": True}, headers=bearer(writer))
    assert missing.status_code == 404
    wait = await RunWait.objects.aget(run_id=run.pk)
    assert wait.status == "resolved" and wait.resolved_by.startswith("token:bot#")
    assert await AuditEntry.objects.filter(action="approvals.answer").acount() == 1
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())


async def test_bad_answers_are_400_and_change_nothing(api: httpx.AsyncClient, make_token: MakeToken) -> None:
    run = await parked()
    writer = await make_token("runs:write")
    for body in (
        {},
        {"approved": "yes"},
        {"approved": True, "extra": 1},
        {"approved": True, "comment": "x" * 3000},
    ):
        response = await api.post(f"/approvals/{run.pk}/approve", json=body, headers=bearer(writer))
        assert response.status_code == 400, body
    assert (await RunWait.objects.aget(run_id=run.pk)).status == "open"
