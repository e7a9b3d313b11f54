"""Versions: every change is a new immutable version, runs are pinned to theirs; export, diff,
roll back; the file format's errors are located; the admin validates before it saves."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.test import Client

from automate_core import definitions
from automate_core.definitions import DefinitionError
from automate_core.exceptions import WorkflowError
from automate_core.models import Step, Workflow, WorkflowVersion
from automate_core.rules import versions
from tests.workflows.conftest import workflow

pytestmark = pytest.mark.django_db


def full(name: str = "wf", message: str = "hi") -> dict[str, Any]:
    return workflow(
        name,
        {"name": "first", "connector": "probe", "action": "echo",
         "params": {"m": message, "t": '{{ secret("TOKEN") }}'},
         "condition": "event.payload.go", "timeout": 5,
         "retry": {"max_attempts": 3, "backoff_seconds": 0.5},
         "continue_on_error": True},
        {"name": "second", "connector": "log", "action": "info",
         "params": {"message": "{{ steps.first.output }}"}},
        trigger={"source": "shop", "event_type": "order.*", "condition": "event.payload.amount > 1"},
        retry={"max_attempts": 4, "base_seconds": 1, "max_seconds": 60},
        concurrency={"limit": 2, "key": "{{ event.payload.customer }}"},
        description="all the keys",
        secrets=["TOKEN"],
    )  # fmt: skip


def test_loading_publishes_a_version_only_when_something_changed() -> None:
    counts = definitions.load({"workflows": [full()]})
    assert counts["versions"] == 1
    assert definitions.load({"workflows": [full()]})["versions"] == 0  # same file: no new version
    definitions.load({"workflows": [full(message="changed")]})
    wf = Workflow.objects.get()
    assert list(wf.versions.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert wf.current_version is not None and wf.current_version.number == 2
    v1 = wf.versions.get(number=1)
    assert v1.definition["steps"][0]["params"]["m"] == "hi"  # the old version is untouched
    assert v1.definition["concurrency"] == {"limit": 2, "key": "{{ event.payload.customer }}"}


def test_export_loads_back_to_the_same_definition() -> None:
    definitions.load({"workflows": [full()]})
    text = versions.to_yaml([Workflow.objects.get().current_version.definition])  # type: ignore[union-attr]
    Workflow.objects.all().delete()
    definitions.load(yaml.safe_load(text))
    wf = Workflow.objects.get()
    assert wf.current_version is not None
    assert wf.current_version.definition == definitions.normalize_workflow("x", full())


def test_diff_and_rollback() -> None:
    definitions.load({"workflows": [full()]})
    definitions.load({"workflows": [full(message="changed")]})
    wf = Workflow.objects.get()
    text = versions.diff(wf, 1, 2)
    assert "-      m: hi" in text and "+      m: changed" in text
    new = versions.rollback(wf, 1, author="tester")
    assert new.number == 3 and new.comment == "rollback to v1"
    assert new.definition == wf.versions.get(number=1).definition
    assert Step.objects.get(name="first").params["m"] == "hi"  # the editable rows follow
    with pytest.raises(WorkflowError, match="has no version 9; it has: 1, 2, 3"):
        versions.rollback(wf, 9)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            {"steps": [{"name": "s", "connector": "probe", "action": "echo", "params": {"x": "{{ oops"}}]},
            r"workflows\[1\]\.steps\[0\]\.params\.x: Template syntax error on line 1",
        ),
        (
            {"steps": [{"name": "s", "connector": "probe", "action": "nope"}]},
            r"workflows\[1\]\.steps\[0\]\.action: connector 'probe' has no action 'nope'",
        ),
        (
            {"steps": [{"name": "s", "connector": "nowhere", "action": "x"}]},
            r"workflows\[1\]\.steps\[0\]\.connector: No plugin 'nowhere'",
        ),
        (
            {"trigger": {"condition": "event.payload.x >"}},
            r"workflows\[1\]\.trigger\.condition: Template syntax",
        ),
        (
            {"trigger": {"condition": "secret('X') == 'y'"}},
            r"trigger\.condition: Conditions cannot read secrets",
        ),
        ({"concurrency": {"key": "{{ event.id }}"}}, r"concurrency: a key needs a limit"),
        ({"concurrency": {"limit": 0}}, r"concurrency\.limit: expected an integer of at least 1"),
        (
            {"concurrency": {"limit": 1, "key": "{{ secret('K') }}"}},
            r"concurrency\.key: .*cannot read secrets",
        ),
        (
            {
                "steps": [
                    {"name": "s", "connector": "probe", "action": "echo", "retry": {"max_attempts": "3"}}
                ]
            },
            r"steps\[0\]\.retry\.max_attempts: expected an integer",
        ),
        ({"steps": [{"name": "bad name", "connector": "probe", "action": "echo"}]}, r"steps\[0\]\.name"),
        ({"max_attempts": 2, "retry": {"max_attempts": 3}}, r"give max_attempts once"),
        ({"steps": []}, r"at least one step"),
    ],
)
def test_invalid_files_change_nothing_and_say_where(change: dict[str, Any], where: str) -> None:
    item = {**workflow("wf", {"name": "s", "connector": "probe", "action": "echo"}), **change}
    with pytest.raises(DefinitionError, match=where):
        fine = workflow("fine", {"name": "s", "connector": "probe", "action": "echo"})
        definitions.load({"workflows": [fine, item]})
    assert not Workflow.objects.exists()  # the valid workflow before it was rolled back too


def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@localhost", "pw")
    client = Client()
    client.force_login(user)
    return client


def admin_form(wf: Workflow, **step: Any) -> dict[str, Any]:
    s = wf.steps.get()
    data = {
        "name": wf.name, "description": "", "enabled": "on", "source_pattern": "shop",
        "event_type_pattern": "*", "condition": "", "max_attempts": "5", "concurrency_key": "",
        "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "1", "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000", "steps-0-id": str(s.pk), "steps-0-workflow": str(wf.pk),
        "steps-0-position": "0", "steps-0-name": "s", "steps-0-connector": "probe",
        "steps-0-action": "echo", "steps-0-params": '{"x": "ok"}', "steps-0-condition": "",
        "steps-0-retry_max_attempts": "1", "steps-0-retry_backoff_seconds": "1.0",
        "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0", "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    data.update({f"steps-0-{k}": v for k, v in step.items()})
    return data


def test_admin_refuses_a_bad_template_with_line_and_reason_and_publishes_good_edits() -> None:
    definitions.load({"workflows": [workflow("wf", {"name": "s", "connector": "probe", "action": "echo"})]})
    wf = Workflow.objects.get()
    client = admin_client()
    url = f"/admin/automate_core/workflow/{wf.pk}/change/"
    bad = client.post(url, admin_form(wf, params='{"x": "fine\\n{{ event.payload.x | }}"}'))
    assert bad.status_code == 200  # the form again, with the error
    assert "Template syntax error on line 2" in bad.content.decode()
    bad_action = client.post(url, admin_form(wf, action="launch"))
    assert "has no action" in bad_action.content.decode()
    assert WorkflowVersion.objects.count() == 1
    good = client.post(url, admin_form(wf, params='{"x": "{{ event.payload.x }}"}'))
    assert good.status_code == 302, good.content.decode()[:2000]
    wf.refresh_from_db()
    assert wf.current_version is not None and wf.current_version.number == 2
    assert wf.current_version.author == "root"
    assert wf.current_version.definition["steps"][0]["params"] == {"x": "{{ event.payload.x }}"}
    assert client.get(f"/admin/automate_core/workflow/{wf.pk}/trigger/").status_code == 200
