"""The admin's workflow actions: run on a payload, replay (every mode), resume, cancel."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from automate_core import definitions
from automate_core.models import Event, ExecutionRun, Workflow
from tests.workflows.conftest import workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    step = {"name": "s", "connector": "log", "action": "info", "params": {"message": "{{ event.payload.x }}"}}
    definitions.load({"workflows": [workflow("wf", step)]})
    user = get_user_model().objects.create_superuser("root", "root@localhost", "pw")
    c = Client()
    c.force_login(user)
    return c


def finished_run(status: str = "failed") -> ExecutionRun:
    wf = Workflow.objects.get()
    event = Event.objects.create(source="shop", event_type="order.created", payload={"x": 1}, trace_id="t")
    return ExecutionRun.objects.create(
        workflow=wf, workflow_name="wf", version=wf.current_version, event=event, status=status, trace_id="t"
    )


def test_run_on_a_payload_from_the_workflow_page(client: Client) -> None:
    wf = Workflow.objects.get()
    url = f"/admin/automate_core/workflow/{wf.pk}/trigger/"
    bad = client.post(url, {"payload": "{nope", "source": "manual", "event_type": "manual"})
    assert "Not valid JSON" in bad.content.decode()
    response = client.post(url, {"payload": '{"x": 5}', "source": "manual", "event_type": "manual"})
    run = ExecutionRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/executionrun/{run.pk}/change/")
    assert (run.status, run.mode, run.event.payload) == ("queued", "manual", {"x": 5})


def test_replay_page_queues_an_edited_replay(client: Client) -> None:
    original = finished_run()
    url = f"/admin/automate_core/executionrun/{original.pk}/replay/"
    page = client.get(url).content.decode()
    assert "Resume from the failed step" in page and "&quot;x&quot;: 1" in page  # payload pre-filled
    response = client.post(url, {"mode": "edited", "payload": json.dumps({"x": 2})})
    assert response.status_code == 302
    new = ExecutionRun.objects.exclude(pk=original.pk).get()
    assert (new.mode, new.parent_id, new.event.payload) == ("edited", original.pk, {"x": 2})
    refused = client.post(f"/admin/automate_core/executionrun/{new.pk}/replay/", {"mode": "current"})
    assert "still queued" in refused.content.decode()


def test_changelist_actions_replay_resume_and_cancel(client: Client) -> None:
    failed, succeeded = finished_run("failed"), finished_run("succeeded")
    changelist = "/admin/automate_core/executionrun/"
    client.post(changelist, {"action": "resume", "_selected_action": [failed.pk, succeeded.pk]}, follow=True)
    resumed = ExecutionRun.objects.get(mode="resume")
    assert resumed.parent_id == failed.pk  # the succeeded one was refused, with its reason shown
    client.post(changelist, {"action": "replay_original", "_selected_action": [succeeded.pk]})
    assert ExecutionRun.objects.filter(mode="original", parent=succeeded).exists()
    response = client.post(changelist, {"action": "cancel", "_selected_action": [resumed.pk]}, follow=True)
    resumed.refresh_from_db()
    assert resumed.status == "cancelled" and "Cancelled" in response.content.decode()
    page = client.get(f"/admin/automate_core/executionrun/{failed.pk}/change/").content.decode()
    assert "Timeline" in page and "Replay…" in page
