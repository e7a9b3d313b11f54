"""The workflow editor: YAML of the file format, the messages of ``automate load``, a diff before
saving, and a dry run of one step of the (unsaved) text on a stored event."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from automate_core import definitions
from automate_core.models import Event, ExecutionRun, StepRun, Workflow, WorkflowVersion
from automate_core.rules import versions
from tests.console.test_pages import WORKFLOWS, text

pytestmark = pytest.mark.django_db

STEPS = [
    {"name": "say", "connector": "log", "action": "info",
     "params": {"message": 'order "{{ event.payload.id }}"'}},
    {"name": "notify", "connector": "http", "action": "post",
     "params": {"url": "{{ url }}/hook",
                "json": {"order": "{{ event.payload.id }}", "note": 'a "quoted" word'}}},
]  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()
    thread.join()


def make(url: str = "http://127.0.0.1:9", *, enabled: bool = True) -> Workflow:
    steps = yaml.safe_load(yaml.safe_dump(STEPS).replace("{{ url }}", url))
    definitions.load({
        "workflows": [{"name": "orders", "enabled": enabled,
                       "trigger": {"source": "shop", "event_type": "order.*"}, "steps": steps}]
    })  # fmt: skip
    return Workflow.objects.get(name="orders")


def published(wf: Workflow) -> dict[str, Any]:
    """The definition of the workflow's current version."""
    wf.refresh_from_db()
    assert wf.current_version is not None
    definition: dict[str, Any] = wf.current_version.definition
    return definition


def url_of(wf: Workflow) -> str:
    return f"{WORKFLOWS}{wf.pk}/yaml/"


def textarea(page: str) -> str:
    found = re.search(r"<textarea[^>]*name=\"text\"[^>]*>(.*?)</textarea>", page, re.S)
    assert found, "no editor on the page"
    return html.unescape(found.group(1)).lstrip("\n")


def token(page: str) -> str:
    found = re.search(r'name="checked" value="([^"]*)"', page)
    assert found
    return found.group(1)


def errors(page: str) -> list[str]:
    block = re.findall(r'<pre class="automate-error">(.*?)</pre>', page, re.S)
    return [html.unescape(b) for b in block]


def load_error(text_: str) -> str:
    """What ``automate load`` says about the same text."""
    with pytest.raises(definitions.DefinitionError) as caught:
        definitions.load(yaml.safe_load(text_))
    return str(caught.value)


def test_the_editor_shows_the_workflow_as_the_yaml_of_the_file_format(admin_client: Client) -> None:
    wf = make()
    page = admin_client.get(url_of(wf)).content.decode()
    shown = textarea(page)
    assert yaml.safe_load(shown) == {"workflows": [versions.exported(published(wf))]}
    assert (
        'message: order "{{ event.payload.id }}"' in shown
        or "message: 'order \"{{ event.payload.id }}\"'" in shown
    )
    assert '\\"' not in shown  # no escaped quotes, no JSON blob
    assert "connector: http" in shown and "action: post" in shown
    # the side panel says which connectors and actions exist
    assert "<code>http</code></td><td>request, get, post" in page.replace("\n", "")
    # and it is linked from the workflow's page and the list
    assert url_of(wf) in admin_client.get(f"{WORKFLOWS}{wf.pk}/change/").content.decode()
    assert url_of(wf) in admin_client.get(WORKFLOWS).content.decode()


TYPE_LINE = "    event_type: order.*"
# (text to replace, replacement, a word of what automate load says: the test compares the page
# with automate load's whole message; the word only shows the edit hit the error it is about)
BAD_EDITS = [
    ("action: info", "action: shout", "'shout'"),
    ("connector: log", "connector: nosuch", "nosuch"),
    ('"{{ event.payload.id }}"', '"{{ event.payload.id | shout }}"', "No filter named 'shout'"),
    ("  - name: say", "  - name: say\n    colour: red", "colour"),
    (TYPE_LINE, TYPE_LINE + "\n    condition: event.payload.x >", "condition"),
    ("name: say", "name: notify", "twice"),
    ("    action: info", "    action: info\n    timeout: -1", "timeout"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD_EDITS)
def test_a_bad_text_is_refused_with_the_message_automate_load_gives(
    admin_client: Client, old: str, new: str, expected: str
) -> None:
    wf = make()
    before = textarea(admin_client.get(url_of(wf)).content.decode())
    bad = before.replace(old, new, 1)
    assert bad != before, "the change did not apply to the text"
    page = admin_client.post(url_of(wf), {"text": bad, "_action": "check"}).content.decode()
    said = load_error(bad)
    assert expected in said
    assert errors(page) == [said]  # the very message automate load gives, and only it
    assert textarea(page) == bad  # the operator's text is kept to fix
    assert 'value="save"' not in page
    assert WorkflowVersion.objects.filter(workflow=wf).count() == 1


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("workflows: [\n  - name: orders\n", "not valid YAML"),
        ("- just a list", "the top level must be a mapping"),
        ("workflows: []", "exactly one"),
        ("sources: [{slug: x}]\nworkflows: [{name: orders}]", "sources are loaded with `automate load`"),
        ("workflows: [{name: renamed, steps: [{name: s}]}]", "this page edits 'orders'"),
    ],
)  # fmt: skip
def test_a_text_that_is_not_this_one_workflow_is_refused(
    admin_client: Client, bad: str, expected: str
) -> None:
    wf = make()
    page = admin_client.post(url_of(wf), {"text": bad, "_action": "save", "checked": "x"}).content.decode()
    assert any(expected in e for e in errors(page)), errors(page)
    assert Workflow.objects.count() == 1 and WorkflowVersion.objects.count() == 1


def test_check_shows_the_diff_and_saves_nothing_then_save_publishes(admin_client: Client) -> None:
    wf = make()
    before = textarea(admin_client.get(url_of(wf)).content.decode())
    edited = before.replace("event_type: order.*", "event_type: order.created")
    checked = admin_client.post(url_of(wf), {"text": edited, "_action": "check"}).content.decode()
    diff = html.unescape(
        " ".join(re.findall(r'<span class="automate-diff-(?:add|del)">(.*?)</span>', checked))
    )
    assert diff == "-    event_type: order.* +    event_type: order.created"
    assert "orders v1" in checked and 'value="save"' in checked
    assert WorkflowVersion.objects.count() == 1  # a check writes nothing
    wf.refresh_from_db()
    assert wf.event_type_pattern == "order.*" and wf.steps.count() == 2

    response = admin_client.post(url_of(wf), {"text": edited, "_action": "save", "checked": token(checked)})
    assert response.status_code == 302 and response["Location"] == url_of(wf)
    wf.refresh_from_db()
    assert wf.current_version is not None and wf.current_version.number == 2
    assert wf.current_version.author == "admin" and wf.event_type_pattern == "order.created"
    again = admin_client.get(url_of(wf)).content.decode()
    assert "Published orders v2." in text_of(again) and textarea(again) == edited


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_save_needs_a_check_of_the_same_text_on_the_same_version(admin_client: Client) -> None:
    wf = make()
    before = textarea(admin_client.get(url_of(wf)).content.decode())
    edited = before.replace("order.*", "order.paid")
    # not checked at all
    page = admin_client.post(url_of(wf), {"text": edited, "_action": "save", "checked": ""})
    assert "changed since the last check" in text(page) and WorkflowVersion.objects.count() == 1
    checked = token(page.content.decode())  # the page now shows the diff and a fresh check
    # checked, then edited again before saving
    further = edited.replace("order.paid", "order.refunded")
    page = admin_client.post(url_of(wf), {"text": further, "_action": "save", "checked": checked})
    assert "changed since the last check" in text(page) and WorkflowVersion.objects.count() == 1
    # checked, then someone else published a version meanwhile: their change is in the new diff
    checked = token(admin_client.post(url_of(wf), {"text": edited, "_action": "check"}).content.decode())
    definitions.load({"workflows": [{**versions.exported(published(wf)), "description": "theirs"}]})
    page = admin_client.post(url_of(wf), {"text": edited, "_action": "save", "checked": checked})
    assert "changed since the last check" in text(page)
    assert "-  description: theirs" in html.unescape(page.content.decode())
    assert WorkflowVersion.objects.count() == 2  # theirs only
    # and a text equal to the current version publishes nothing
    current = textarea(admin_client.get(url_of(wf)).content.decode())
    unchanged = admin_client.post(url_of(wf), {"text": current, "_action": "check"}).content.decode()
    assert "No changes from the current version" in text_of(unchanged) and 'value="save"' not in unchanged


def test_a_disabled_workflow_stays_disabled_through_the_editor(admin_client: Client) -> None:
    wf = make(enabled=False)
    shown = textarea(admin_client.get(url_of(wf)).content.decode())
    assert "enabled: false" in shown
    edited = shown.replace("order.*", "order.paid")
    checked = token(admin_client.post(url_of(wf), {"text": edited, "_action": "check"}).content.decode())
    admin_client.post(url_of(wf), {"text": edited, "_action": "save", "checked": checked})
    wf.refresh_from_db()
    assert (wf.enabled, wf.event_type_pattern, wf.current_version.number) == (False, "order.paid", 2)  # type: ignore[union-attr]


def test_a_dry_run_of_one_step_of_the_unsaved_text_sends_and_writes_nothing(
    admin_client: Client, receiver: tuple[str, list[str]]
) -> None:
    url, hits = receiver
    wf = make(url)
    event = Event.objects.create(
        source="shop", event_type="order.created", payload={"id": 42}, trace_id="e" * 32
    )
    edited = textarea(admin_client.get(url_of(wf)).content.decode()).replace("/hook", "/edited-hook")
    page = admin_client.post(
        url_of(wf), {"text": edited, "_action": "dry_run", "step": "notify", "event": event.pk}
    )
    body = html.unescape(page.content.decode())
    assert "Dry run of orders up to notify : succeeded" in text_of(page.content.decode())
    assert f'"url": "{url}/edited-hook"' in body  # the draft's params, rendered on the event
    assert '"order": "42"' in body or '"order": 42' in body
    assert '"dry_run": true' in body and '"message": "order \\"42\\""' in body  # the step before it too
    assert hits == []  # nothing was sent
    assert ExecutionRun.objects.count() == 0 and StepRun.objects.count() == 0  # nothing was written
    wf.refresh_from_db()
    assert wf.current_version.number == 1 and "/edited-hook" not in str(wf.current_version.definition)  # type: ignore[union-attr]


def test_a_dry_run_says_what_is_missing(admin_client: Client) -> None:
    wf = make()
    shown = textarea(admin_client.get(url_of(wf)).content.decode())
    no_event = admin_client.post(url_of(wf), {"text": shown, "_action": "dry_run", "step": "say"})
    assert "Give the id of a stored event" in text(no_event)
    missing = admin_client.post(
        url_of(wf), {"text": shown, "_action": "dry_run", "step": "say", "event": 999999}
    )
    assert "No event #999999." in text(missing)
    event = Event.objects.create(source="shop", event_type="order.created", payload={}, trace_id="e" * 32)
    bad = shown.replace("action: info", "action: shout")
    refused = admin_client.post(
        url_of(wf), {"text": bad, "_action": "dry_run", "step": "say", "event": event.pk}
    )
    assert errors(refused.content.decode()) == [load_error(bad)] and "Dry run of" not in text(refused)


def test_a_new_workflow_is_added_as_yaml_and_an_existing_name_is_refused(admin_client: Client) -> None:
    add = f"{WORKFLOWS}yaml/"
    assert f'href="{add}"' in admin_client.get(WORKFLOWS).content.decode()
    starter = textarea(admin_client.get(add).content.decode())
    checked = admin_client.post(add, {"text": starter, "_action": "check"}).content.decode()
    assert "(new)" in checked and not Workflow.objects.exists()
    response = admin_client.post(add, {"text": starter, "_action": "save", "checked": token(checked)})
    created = Workflow.objects.get()
    assert response.status_code == 302 and response["Location"] == url_of(created)
    again = admin_client.post(add, {"text": starter, "_action": "check"}).content.decode()
    assert any("exists already: edit it on its page" in e for e in errors(again))


def test_the_editor_needs_the_change_permission(admin_client: Client) -> None:
    wf = make()
    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    client = Client()
    client.force_login(staff)
    shown = textarea(admin_client.get(url_of(wf)).content.decode())
    assert client.get(url_of(wf)).status_code == 403
    assert (
        client.post(url_of(wf), {"text": shown.replace("order.*", "x"), "_action": "check"}).status_code
        == 403
    )
    assert client.get(f"{WORKFLOWS}yaml/").status_code == 403
    assert WorkflowVersion.objects.count() == 1


def test_the_step_form_shows_params_as_indented_json(admin_client: Client) -> None:
    wf = make()
    page = html.unescape(admin_client.get(f"{WORKFLOWS}{wf.pk}/change/").content.decode())
    assert '{\n  "message": "order \\"{{ event.payload.id }}\\""\n}' in page  # one key a line
    assert '<datalist id="id_steps-0-connector-choices"><option value="email">' in page


def test_a_version_published_between_the_check_and_the_save_is_not_overwritten() -> None:
    """The last guard: the save itself locks the workflow and compares its current version."""
    from automate_core.admin import editor

    wf = make()
    edited = editor.current_text(wf).replace("order.*", "order.paid")
    assert editor.check(edited, wf, author="me").text == edited  # checked against v1
    definitions.load({"workflows": [{**versions.exported(published(wf)), "description": "theirs"}]})
    with pytest.raises(editor.EditorError, match="was changed meanwhile"):
        editor.save(edited, wf, author="me")  # wf still says v1: the row says v2
    wf.refresh_from_db()
    assert wf.description == "theirs" and wf.current_version.number == 2  # type: ignore[union-attr]


def test_a_dry_run_on_a_past_run_reuses_its_outputs_before_the_step(
    admin_client: Client, receiver: tuple[str, list[str]]
) -> None:
    url, hits = receiver
    wf = make(url)
    event = Event.objects.create(
        source="shop", event_type="order.created", payload={"id": 7}, trace_id="p" * 32
    )
    past = ExecutionRun.objects.create(
        workflow=wf, workflow_name=wf.name, event=event, status="failed", trace_id="p" * 32
    )
    StepRun.objects.create(
        run=past, position=0, name="say", connector="log", action="info", status="succeeded",
        input={"message": "then"}, output={"marker": "from-the-past"}, error="", duration_ms=1.0,
        started_at=past.started_at, finished_at=past.started_at,
    )  # fmt: skip
    shown = textarea(admin_client.get(url_of(wf)).content.decode())
    edited = shown.replace('note: a "quoted" word', "note: '{{ steps.say.output.marker }}'")
    assert edited != shown
    page = admin_client.post(
        url_of(wf), {"text": edited, "_action": "dry_run", "step": "notify", "run": past.pk}
    )
    body = html.unescape(page.content.decode())
    assert "Dry run of orders up to notify : succeeded" in text_of(page.content.decode()), errors(body)
    assert '"note": "from-the-past"' in body and '"order": 7' in body  # its event, its outputs
    assert hits == [] and ExecutionRun.objects.count() == 1 and StepRun.objects.count() == 1
    assert f"<code>#{past.pk}</code> · <code>#{event.pk}</code> shop/order.created" in body  # offered
    missing = admin_client.post(
        url_of(wf), {"text": edited, "_action": "dry_run", "step": "notify", "run": 999999}
    )
    assert "No run #999999." in text(missing)


def test_the_editor_needs_a_login_and_a_csrf_token(admin_user: Any) -> None:
    wf = make()
    assert Client().get(url_of(wf))["Location"].startswith("/admin/login/")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    text_ = editor_text(wf).replace("order.*", "order.paid")
    assert client.post(url_of(wf), {"text": text_, "_action": "save", "checked": "x"}).status_code == 403
    assert WorkflowVersion.objects.count() == 1


def editor_text(wf: Workflow) -> str:
    from automate_core.admin import editor

    return editor.current_text(wf)
