"""The console's pages through Django's test client: what an operator sees and can do on each."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automate_core import definitions
from automate_core.admin import paging, queries
from automate_core.admin.events import exact_key
from automate_core.models import Event, ExecutionRun, OutboxJob, Workflow
from tests.console.rows import dead_job, event, run

pytestmark = pytest.mark.django_db

WORKFLOWS = "/admin/automate_core/workflow/"
EVENTS = "/admin/automate_core/event/"
RUNS = "/admin/automate_core/executionrun/"
JOBS = "/admin/automate_core/outboxjob/"
DASHBOARD = "/admin/automate/dashboard/"


def two_workflows() -> tuple[Workflow, Workflow]:
    step = {
        "name": "s",
        "connector": "log",
        "action": "info",
        "params": {"message": "{{ event.payload.id }}"},
    }
    definitions.load({
        "workflows": [
            {"name": name, "trigger": {"source": "shop", "event_type": "order.*"}, "steps": [step]}
            for name in ("billing", "shipping")
        ]
    })  # fmt: skip
    return Workflow.objects.get(name="billing"), Workflow.objects.get(name="shipping")


def text(response: Any) -> str:
    """The page's text without tags, whitespace collapsed."""
    return text_of(response.content.decode())


# -- workflows ---------------------------------------------------------------------------------


def test_workflow_list_shows_last_run_and_last_day_counts(admin_client: Client) -> None:
    billing, _ = two_workflows()
    run(billing, "succeeded", ago=timedelta(hours=30))  # outside the day: not counted
    run(billing, "succeeded", ago=timedelta(hours=2))
    run(billing, "failed", ago=timedelta(hours=1))
    last = run(billing, "succeeded", ago=timedelta(minutes=5))
    page = admin_client.get(WORKFLOWS).content.decode()
    rows = {text_of(r).split()[0]: text_of(r) for r in re.findall(r"<tr>.*?</tr>", page, re.S)[1:]}
    assert "2 succeeded" in rows["billing"] and "1 failed" in rows["billing"]
    assert f"/executionrun/{last.pk}/change/" in rows_html(page, "billing")
    assert (
        "never" in rows["shipping"] and "0 succeeded" in rows["shipping"] and "0 failed" in rows["shipping"]
    )


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def rows_html(page: str, first_word: str) -> str:
    rows: list[str] = re.findall(r"<tr>.*?</tr>", page, re.S)
    return next(r for r in rows if text_of(r).startswith(first_word))


def test_workflow_form_refuses_a_bad_template_with_its_line_and_reason(admin_client: Client) -> None:
    def post(params: str, connector: str = "log", action: str = "info", condition: str = "") -> str:
        data = {
            "name": "notify",
            "enabled": "on",
            "source_pattern": "shop",
            "event_type_pattern": "order.*",
            "condition": condition,
            "max_attempts": "5",
            "concurrency_key": "",
            "steps-TOTAL_FORMS": "1",
            "steps-INITIAL_FORMS": "0",
            "steps-0-position": "0",
            "steps-0-name": "say",
            "steps-0-connector": connector,
            "steps-0-action": action,
            "steps-0-params": params,
            "steps-0-condition": "",
            "steps-0-retry_max_attempts": "1",
            "steps-0-retry_backoff_seconds": "1.0",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        }
        response = admin_client.post(WORKFLOWS + "add/", data)
        return "" if response.status_code == 302 else text(response)

    bad = post('{"message": "Hello\\n{{ event.payload.name | shout }}"}')
    assert "line 2" in bad and "No filter named 'shout'" in bad
    unclosed = post('{"message": "{% if event.payload.x %}yes"}')
    assert "line 1" in unclosed and "Unexpected end of template" in unclosed
    assert "has no action 'shout'" in post('{"message": "hi"}', action="shout")
    assert "connector" in post('{"message": "hi"}', connector="nosuch").lower()
    assert "condition" in post('{"message": "hi"}', condition="event.payload.x >").lower()
    assert not Workflow.objects.exists()  # nothing refused was saved
    assert post('{"message": "Hello {{ event.payload.name }}"}') == ""
    assert Workflow.objects.get().current_version.number == 1  # type: ignore[union-attr]


# -- events --------------------------------------------------------------------------------------


def test_event_search_is_exact_on_ids_trace_ids_and_idempotency_keys(admin_client: Client) -> None:
    a = event(trace_id="a" * 32, idempotency_key="evt_123")
    b = event(
        "github", "push", trace_id="b" * 32, idempotency_key=exact_key("x" * 300)
    )  # as ingest stores it
    event(trace_id="c" * 32)

    def found(term: str) -> set[int]:
        page = admin_client.get(EVENTS, {"q": term}).content.decode()
        return {int(pk) for pk in re.findall(r"/admin/automate_core/event/(\d+)/change/", page)}

    assert found("a" * 32) == {a.pk}
    assert found("evt_123") == {a.pk}
    assert found("x" * 300) == {b.pk}
    assert found(str(b.pk)) == {b.pk}
    assert found("evt_") == set()  # exact only: a substring would read every event


def test_event_filters_source_type_and_time(admin_client: Client) -> None:
    old = event("shop", "order.created", ago=timedelta(days=3))
    new = event("shop", "order.paid", ago=timedelta(minutes=5))
    gh = event("github", "push", ago=timedelta(minutes=5))

    def listed(**params: str) -> set[int]:
        page = admin_client.get(EVENTS, params).content.decode()
        return {int(pk) for pk in re.findall(r"/admin/automate_core/event/(\d+)/change/", page)}

    page = text(admin_client.get(EVENTS))
    assert "By source" in page and "github" in page and "shop" in page  # choices by skip scan
    assert listed(source="shop") == {old.pk, new.pk}
    assert listed(type="order.paid") == {new.pk}
    assert listed(type="order.*") == {old.pk, new.pk}
    assert listed(since="1h") == {new.pk, gh.pk}
    assert listed(since="7d", until="1d") == {old.pk}
    assert listed(source="shop", since="24h") == {new.pk}
    when = old.received_at.strftime("%Y-%m-%d %H:%M:%S")
    assert old.pk in listed(since=when)
    late = event("shop", "order.paid", ago=timedelta(minutes=1))
    Event.objects.filter(pk=late.pk).update(received_at=new.received_at - timedelta(seconds=30))
    page = admin_client.get(EVENTS, {"since": "1h"}).content.decode()
    order = [int(pk) for pk in re.findall(r"/admin/automate_core/event/(\d+)/change/", page)]
    assert order == [gh.pk, new.pk, late.pk]  # with a time range: newest first by time, not by id
    refused = admin_client.get(EVENTS, {"since": "yesterday"}, follow=True)
    assert refused.status_code == 200 and "neither an age" in text(refused)


def test_event_page_shows_payload_formatted_with_its_runs_and_jobs(admin_client: Client) -> None:
    billing, _ = two_workflows()
    e = event(payload={"order": {"id": "A-1", "lines": [1, 2]}})
    r = run(billing, "failed", on=e)
    job = dead_job(e)
    page = admin_client.get(f"{EVENTS}{e.pk}/change/").content.decode()
    assert "&quot;order&quot;: {\n    &quot;id&quot;: &quot;A-1&quot;" in page  # indented JSON
    assert f"/executionrun/{r.pk}/change/" in page and f"/outboxjob/{job.pk}/change/" in page
    assert "step post: ConnectorError: 503" in page


# -- big tables: counts and queries per page -----------------------------------------------------


def test_lists_cost_the_same_number_of_queries_whatever_the_rows(admin_client: Client) -> None:
    billing, shipping = two_workflows()

    def queries_for(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    def add_rows() -> None:
        for wf in (billing, shipping):
            e = event()
            parent = run(wf, "failed", on=e, steps=2)
            child = run(wf, "succeeded", on=e)
            ExecutionRun.objects.filter(pk=child.pk).update(parent=parent)
            dead_job(e)

    add_rows()
    before = {url: queries_for(url) for url in (WORKFLOWS, EVENTS, RUNS, JOBS)}
    for _ in range(5):
        add_rows()
    after = {url: queries_for(url) for url in (WORKFLOWS, EVENTS, RUNS, JOBS)}
    assert after == before  # no query per row


def test_counts_are_capped_then_estimated(admin_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(8):
        event()
    assert "8 events" in text(admin_client.get(EVENTS))
    monkeypatch.setattr(paging.BigTablePaginator, "CAP", 5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE automate_event")  # the planner's estimate: 8 rows
        # (and at least one for each partition, as the planner counts an empty table: the event
        # table has a partition a day, and one for the time before the partitioning)
        cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'automate_event'::regclass")
        partitions = cursor.fetchone()[0]
    estimate = re.search(r"about (\d+) events", text(admin_client.get(EVENTS)))
    assert estimate is not None and 8 <= int(estimate.group(1)) <= 8 + partitions
    assert "0 events" in text(admin_client.get(EVENTS, {"type": "nope"}))  # under the cap: exact


def test_a_count_that_takes_too_long_gives_up_and_leaves_the_transaction_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(3):
        event()
    slow = Event.objects.extra(where=["pg_sleep(0.05) IS NOT NULL"])
    assert queries.capped_count(Event.objects.all(), 10) == 3
    monkeypatch.setattr(queries, "COUNT_TIMEOUT_MS", 20)
    assert queries.capped_count(slow, 10) is None
    assert Event.objects.count() == 3  # the timeout was rolled back with its savepoint
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


# -- runs ----------------------------------------------------------------------------------------


def test_run_page_is_a_timeline_with_inputs_outputs_errors_and_durations(admin_client: Client) -> None:
    billing, _ = two_workflows()
    r = run(billing, "failed", steps=3)
    page = admin_client.get(f"{RUNS}{r.pk}/change/")
    body = page.content.decode()
    assert body.count('class="automate-step automate-step-') == 3
    assert "log.info" in body and "30.0 ms" in body and "ConnectorError: boom" in body
    assert "&quot;logged&quot;: &quot;step 0&quot;" in body  # output, as JSON
    assert "margin-left:33.33%" in body  # the second step starts 40 ms into the run's 120 ms
    assert f"/admin/automate_core/event/{r.event_id}/change/" in body
    assert f"{RUNS}{r.pk}/replay/" in body and f"{RUNS}{r.pk}/cancel/" not in body  # ended: no cancel


def test_cancel_from_the_run_page(admin_client: Client) -> None:
    billing, _ = two_workflows()
    queued = run(billing, "queued")
    page = admin_client.get(f"{RUNS}{queued.pk}/change/").content.decode()
    assert f"{RUNS}{queued.pk}/cancel/" in page
    confirm = admin_client.get(f"{RUNS}{queued.pk}/cancel/")
    assert 'value="Cancel the run"' in confirm.content.decode()
    done = admin_client.post(f"{RUNS}{queued.pk}/cancel/", follow=True)
    queued.refresh_from_db()
    assert queued.status == "cancelled" and f"Run #{queued.pk} cancelled." in text(done)
    again = admin_client.post(f"{RUNS}{queued.pk}/cancel/")
    assert "already ended (cancelled)" in text(again)


def test_runs_filter_by_workflow_and_search_by_trace_or_event(admin_client: Client) -> None:
    billing, shipping = two_workflows()
    a, b = run(billing), run(shipping)

    def listed(**params: str) -> set[int]:
        page = admin_client.get(RUNS, params).content.decode()
        return {int(pk) for pk in re.findall(r"/admin/automate_core/executionrun/(\d+)/change/", page)}

    assert listed(workflow=str(billing.pk)) == {a.pk}
    assert listed(q=str(b.event_id)) == {b.pk}
    assert listed(q="r" * 32) == {a.pk, b.pk}
    assert "not a workflow id" in text(admin_client.get(RUNS, {"workflow": "x"}, follow=True))


def test_replay_and_cancel_need_the_change_permission() -> None:
    client = Client()
    billing, _ = two_workflows()
    queued = run(billing, "queued")
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_executionrun"))
    client.force_login(viewer)
    assert client.get(f"{RUNS}{queued.pk}/change/").status_code == 200
    assert client.post(f"{RUNS}{queued.pk}/cancel/").status_code == 403
    assert client.post(f"{RUNS}{queued.pk}/replay/", {"mode": "current"}).status_code == 403
    listing = client.get(RUNS).content.decode()
    assert 'value="cancel"' not in listing and 'value="replay_current"' not in listing
    queued.refresh_from_db()
    assert queued.status == "queued"


# -- dashboard -----------------------------------------------------------------------------------


def test_dashboard_counts_the_last_hour_per_minute(admin_client: Client) -> None:
    billing, _ = two_workflows()
    for minutes in (1, 1, 2, 30, 58):
        event(ago=timedelta(minutes=minutes))
    event(ago=timedelta(minutes=90))  # before the hour
    run(billing, "succeeded", ago=timedelta(minutes=3))
    run(billing, "succeeded", ago=timedelta(minutes=3))
    run(billing, "failed", ago=timedelta(minutes=10))
    run(billing, "failed", ago=timedelta(hours=3))  # before the hour
    dead_job(event(ago=timedelta(hours=2)), ago=timedelta(minutes=4))
    rows = queries.throughput()
    assert len(rows) == 60
    assert [sum(r[i] for r in rows) for i in range(1, 5)] == [5 + 3, 2, 1, 1]  # + the runs' events
    page = text(admin_client.get(DASHBOARD))
    assert "Events received per minute (total 8," in page
    assert "2 runs succeeded" in page and "1 runs failed" in page and "33.3 % failure rate" in page
    assert "1 dead letters (not resolved) 1 dead jobs in all" in page


def test_dashboard_shows_depth_and_age_per_queue(admin_client: Client) -> None:
    from automate_core.ingest.ingestor import emit

    emit("shop", "a", {}, queue="billing")
    emit("shop", "b", {}, queue="billing", priority=5)
    emit("shop", "c", {})
    OutboxJob.objects.filter(queue="billing").update(available_at=timezone.now() - timedelta(seconds=90))
    page = text(admin_client.get(DASHBOARD))
    assert "Queues queue waiting due oldest due job waiting billing 2 2 90." in page
    assert "default 1 1 " in page
    assert "?queue=billing" in admin_client.get(DASHBOARD).content.decode()
    listed = text(admin_client.get("/admin/automate_core/outboxjob/?queue=billing"))
    assert "2 jobs" in listed or "2 outbox jobs" in listed


def test_dashboard_is_for_staff_only_and_linked_from_the_index(admin_client: Client) -> None:
    client = Client()
    assert client.get(DASHBOARD)["Location"].startswith("/admin/login/")
    user = get_user_model().objects.create_user("someone", password="pw")
    client.force_login(user)
    assert client.get(DASHBOARD)["Location"].startswith("/admin/login/")
    assert DASHBOARD in admin_client.get("/admin/").content.decode()


# -- static files --------------------------------------------------------------------------------


async def test_admin_static_files_are_served_with_debug_off() -> None:
    """The deployable ASGI application serves the admin's CSS itself (no DEBUG, no collectstatic)."""
    from django.conf import settings

    from asgi.asgi import application

    assert not settings.DEBUG
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    ) as http:
        css = await http.get("/static/admin/css/base.css")
        ours = await http.get("/static/automate_core/console.css")
        missing = await http.get("/static/admin/css/nope.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "max-age=60" in css.headers["cache-control"] and b"--header-bg" in css.content
    assert ours.status_code == 200 and b".automate-timeline" in ours.content
    assert missing.status_code == 404


# -- outbox --------------------------------------------------------------------------------------


def test_outbox_list_shows_the_queue_and_the_dead_letters_last_errors(admin_client: Client) -> None:
    e = event("github", "push", trace_id="d" * 32)
    dead = dead_job(e, error="step post: ConnectorError: POST https://erp.example.com answered 503")
    OutboxJob.objects.create(event=event(), status="ready")
    OutboxJob.objects.create(event=event(), status="retry", available_at=timezone.now() + timedelta(hours=1))
    page = text(admin_client.get(JOBS, {"status__exact": "dead"}))
    assert "1 ready 1 retry scheduled 0 running" in page and "1 dead letters" in page
    assert "answered 503" in page and f"#{e.pk} github/push" in page

    def listed(**params: str) -> set[int]:
        body = admin_client.get(JOBS, params).content.decode()
        return {int(pk) for pk in re.findall(r"/admin/automate_core/outboxjob/(\d+)/change/", body)}

    assert listed(q="d" * 32) == {dead.pk}
    assert listed(q=str(e.pk)) == {dead.pk}
    assert listed(q=str(dead.pk)) == {dead.pk}
    assert listed(source="github") == {dead.pk}


def test_a_dead_job_is_replayed_from_its_page(admin_client: Client) -> None:
    dead = dead_job(event())
    page = admin_client.get(f"{JOBS}{dead.pk}/change/").content.decode()
    assert f"{JOBS}{dead.pk}/replay/" in page and "ConnectorError: 503" in page
    done = admin_client.post(f"{JOBS}{dead.pk}/replay/", follow=True)
    new = OutboxJob.objects.get(replay_of=dead)
    assert new.status == "ready" and f"queued again as job #{new.pk}" in text(done)
    again = admin_client.post(f"{JOBS}{dead.pk}/replay/")
    assert "replayed already: nothing was queued" in text(again)
    assert OutboxJob.objects.filter(replay_of=dead).count() == 1
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboxjob"))
    client = Client()
    client.force_login(viewer)
    assert client.post(f"{JOBS}{new.pk}/replay/").status_code == 403
    assert 'value="replay_dead"' not in client.get(JOBS).content.decode()


# -- an event no workflow matched --------------------------------------------------------------


def test_an_event_no_workflow_matched_says_so_and_which_came_close(admin_client: Client) -> None:
    def wf(name: str, source: str, kind: str, condition: str = "", enabled: bool = True) -> dict[str, Any]:
        step = {"name": "s", "connector": "log", "action": "info", "params": {"message": "hi"}}
        trigger = {"source": source, "event_type": kind, "condition": condition}
        return {"name": name, "enabled": enabled, "trigger": trigger, "steps": [step]}

    definitions.load({
        "workflows": [
            wf("big_orders", "shop", "order.*", "event.payload.amount > 100"),
            wf("refunds", "shop", "refund.*"),
            wf("github_orders", "github", "order.created"),
            wf("contacts", "crm", "contact.*"),
            wf("retired", "shop", "order.created", enabled=False),
            wf("broken", "shop", "order.*", "event.payload.amount + 'x' > 1"),
        ]
    })  # fmt: skip
    e = event(payload={"amount": 5})
    OutboxJob.objects.create(event=e, status="completed")
    page = text(admin_client.get(f"{EVENTS}{e.pk}/change/"))
    assert "no workflow matched Its job completed without running any workflow" in page
    assert "big_orders source and type match; condition 'event.payload.amount > 100' is false" in page
    assert "refunds type 'order.created' does not match 'refund.*'" in page
    assert "github_orders source 'shop' does not match 'github'" in page
    assert "retired source, type and condition match, but the workflow is disabled" in page
    assert "broken condition \"event.payload.amount + 'x' > 1\" failed" in page
    assert "contacts" not in page and "1 other workflow: neither source nor type match" in page

    # a workflow added since that matches is named as such, not hidden
    definitions.load({"workflows": [wf("new_orders", "shop", "order.*")]})
    page = text(admin_client.get(f"{EVENTS}{e.pk}/change/"))
    assert "new_orders matches the event now (created or changed since the event came)" in page

    # an event that ran, or whose job is not done, does not say "no workflow matched"
    ran = event()
    run(Workflow.objects.get(name="new_orders"), "succeeded", on=ran)
    OutboxJob.objects.create(event=ran, status="completed")
    waiting = event()
    OutboxJob.objects.create(event=waiting, status="ready")
    died = event()
    dead_job(died)
    for other, says in ((ran, "Ran the workflows above."), (waiting, "No run yet"), (died, "No run yet")):
        page = text(admin_client.get(f"{EVENTS}{other.pk}/change/"))
        assert says in page and "no workflow matched" not in page


def test_no_match_with_no_workflow_close_says_so(admin_client: Client) -> None:
    e = event("nobody", "ping")
    OutboxJob.objects.create(event=e, status="completed")
    page = text(admin_client.get(f"{EVENTS}{e.pk}/change/"))
    assert "no workflow matched" in page and "No workflow came close" in page
