"""approval: answered once from the console, the CLI or a one-time link; a timeout and a default."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import Client

from automate_core.exceptions import ApprovalError
from automate_core.execution import approvals
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, RunWait, StepRun
from tests.flow.conftest import arecords, fast_forward, step
from tests.workflows.conftest import Probe, aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def refund(**approval: object) -> dict[str, Any]:
    spec = {"prompt": "Refund {{ event.payload.amount }} EUR?", "timeout": "1d", **approval}
    return workflow(
        "refund",
        {"name": "approve", "approval": spec},
        step(
            "pay", condition="steps.approve.output.approved", params={"amount": "{{ event.payload.amount }}"}
        ),
        trigger={"source": "shop", "event_type": "refund.requested"},
    )


async def parked() -> ExecutionRun:
    result = await sync_to_async(emit)("shop", "refund.requested", {"amount": 750})
    await drain(lambda: ExecutionRun.objects.filter(status="waiting").exists())
    return await ExecutionRun.objects.aget(event_id=result.event_id)


async def test_approved_from_the_cli_the_run_goes_on(probe: type[Probe]) -> None:
    await aload(refund())
    run = await parked()
    wait = await RunWait.objects.aget(run_id=run.pk)
    assert wait.kind == "approval" and wait.prompt == "Refund 750 EUR?"
    out = io.StringIO()
    await sync_to_async(call_command)(
        "automate", "approve", str(run.pk), "approve", "--yes", "--by", "alice", stdout=out
    )
    assert "approved by alice" in out.getvalue()
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())
    assert await arecords(run.pk) == [("approve", "waiting"), ("approve", "succeeded"), ("pay", "succeeded")]
    output = (await StepRun.objects.filter(run_id=run.pk, name="approve", status="succeeded").aget()).output
    assert output == {"approved": True, "by": "alice", "comment": "", "timed_out": False}
    assert [p for _a, p, _c in probe.calls] == [{"amount": 750}]


async def test_answered_twice_the_second_answer_is_refused_and_changes_nothing() -> None:
    await aload(refund())
    run = await parked()
    await sync_to_async(approvals.answer)(run.pk, "approve", False, by="bob", comment="too much")
    with pytest.raises(ApprovalError, match=r"already answered \(rejected by bob"):
        await sync_to_async(approvals.answer)(run.pk, "approve", True, by="mallory")
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())
    assert await arecords(run.pk) == [("approve", "waiting"), ("approve", "succeeded"), ("pay", "skipped")]
    with pytest.raises(ApprovalError, match="no approval of that name"):
        await sync_to_async(approvals.answer)(run.pk, "nope", True, by="x")


async def test_unanswered_the_timeout_applies_its_default(probe: type[Probe]) -> None:
    await aload(refund(on_timeout="approve"))
    run = await parked()
    await fast_forward(run.pk)
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())
    output: Any = (
        await StepRun.objects.filter(run_id=run.pk, name="approve", status="succeeded").aget()
    ).output
    assert output["approved"] is True and output["timed_out"] is True
    with pytest.raises(ApprovalError, match="expired"):
        await sync_to_async(approvals.answer)(run.pk, "approve", False, by="late")


def _link_flow(url: str) -> tuple[int, int, int, str]:
    client = Client()
    path = url.split("127.0.0.1:8000", 1)[1]
    shown = client.get(path)
    answered = client.post(path, {"answer": "approve", "name": "Carol"})
    again = client.post(path, {"answer": "reject"})
    return shown.status_code, answered.status_code, again.status_code, again.content.decode()


async def test_the_one_time_link_is_sent_works_once_and_never_reaches_the_records(probe: type[Probe]) -> None:
    notify = {
        "connector": "probe",
        "action": "echo",
        "params": {"text": "{{ approval.prompt }} {{ approval.url }}"},
    }
    await aload(refund(notify=notify))
    run = await parked()
    [(_a, params, _c)] = probe.calls
    url = re.search(r"http://\S+/approvals/\S+/", params["text"])
    assert url is not None
    token = url.group(0).rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 40
    recorded = [s async for s in StepRun.objects.filter(run_id=run.pk)]
    assert all(token not in str(s.input) + str(s.output) for s in recorded)  # masked like a secret
    assert (await RunWait.objects.aget(run_id=run.pk)).token_hash != token  # only its hash is stored

    shown, answered, again, page = await sync_to_async(_link_flow)(url.group(0))
    assert (shown, answered, again) == (200, 200, 410)
    assert "already answered (approved by link: Carol" in page
    await drain(lambda: ExecutionRun.objects.filter(pk=run.pk, status="succeeded").exists())


def _get(path: str) -> tuple[int, str]:
    response = Client().get(path)
    return response.status_code, response.content.decode()


async def test_unknown_and_expired_links_are_refused_with_a_clear_page() -> None:
    status, page = await sync_to_async(_get)("/approvals/not-a-real-token/")
    assert status == 404 and "not known" in page
    notify = {"connector": "probe", "action": "echo", "params": {"url": "{{ approval.url }}"}}
    await aload(refund(notify=notify))
    run = await parked()
    await fast_forward(run.pk)  # expired (the deadline has passed, whether or not the wake has run)
    url = Probe.calls[0][1]["url"]
    status, page = await sync_to_async(_get)(url.split("127.0.0.1:8000", 1)[1])
    assert status == 410 and "expired" in page


async def test_the_console_lists_pending_approvals_and_records_who_answered(admin_client: Client) -> None:
    await aload(refund())
    run = await parked()
    page = await sync_to_async(admin_client.get)("/admin/automate/approvals/")
    assert page.status_code == 200 and "Refund 750 EUR?" in page.content.decode()
    response = await sync_to_async(admin_client.post)(
        "/admin/automate/approvals/", {"run": run.pk, "step": "approve", "answer": "reject"}
    )
    assert response.status_code == 302
    wait = await RunWait.objects.aget(run_id=run.pk)
    assert wait.status == "resolved" and wait.resolved_by == "admin"
    assert wait.result is not None and wait.result["approved"] is False
