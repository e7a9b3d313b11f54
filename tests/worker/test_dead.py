"""Dead jobs: ``automate dead`` lists them by filter, ``automate dead replay`` and the admin replay
them server-side as new jobs linked to the old ones, at most once each; empty filters are refused."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from automate_core.ingest.ingestor import emit
from automate_core.models import OutboxJob
from automate_core.outbox import replay

pytestmark = pytest.mark.usefixtures("live_db")


def bury(source: str, event_type: str, error: str = "remote said no", kind: str = "event") -> OutboxJob:
    """A dead job, as the worker leaves one."""
    result = emit(source, event_type, {"x": 1})
    job = OutboxJob.objects.get(event_id=result.event_id)
    OutboxJob.objects.filter(pk=job.pk).update(status="dead", attempts=5, last_error=error, kind=kind)
    job.refresh_from_db()
    return job


def automate(*args: str) -> str:
    out = io.StringIO()
    call_command("automate", *args, stdout=out)
    return out.getvalue()


def test_dead_lists_with_filters_and_as_json() -> None:
    shop = bury("shop", "order.created", "HttpError: 503 from the ERP")
    bury("crm", "contact.updated")
    assert "2 dead jobs" in automate("dead")
    listed = automate("dead", "--source", "shop")
    assert f"job {shop.pk}" in listed and "shop/order.created" in listed and "503 from the ERP" in listed
    assert "crm" not in listed
    rows = json.loads(automate("dead", "--event-type", "order.*", "--json"))
    assert [(r["id"], r["source"], r["attempts"]) for r in rows] == [(shop.pk, "shop", 5)]
    assert automate("dead", "--error", "nothing like this") == "No dead jobs.\n"


def test_replay_creates_new_jobs_linked_to_the_old_ones() -> None:
    old = bury("shop", "order.created")
    other = bury("crm", "contact.updated")
    out = automate("dead", "replay", "--source", "shop")
    assert "Replayed 1 dead job " in out
    new = OutboxJob.objects.get(replay_of=old)
    assert (new.status, new.attempts, new.event_id, new.kind) == ("ready", 0, old.event_id, "event")
    assert new.max_attempts == old.max_attempts
    old.refresh_from_db()
    assert old.status == "dead"  # kept for the record
    assert not OutboxJob.objects.filter(replay_of=other).exists()
    assert "replayed as job" in automate("dead", "--source", "shop", "--include-resolved")


def test_a_dead_job_is_replayed_at_most_once() -> None:
    old = bury("shop", "order.created")
    assert len(replay.replay(replay.DeadFilter(ids=(old.pk,)))) == 1
    assert replay.replay(replay.DeadFilter(ids=(old.pk,))) == []
    assert "No dead job matches" in automate("dead", "replay", str(old.pk))
    assert OutboxJob.objects.filter(replay_of=old).count() == 1


def test_concurrent_replays_of_the_same_filter_do_not_double_the_work() -> None:
    for _ in range(30):
        bury("shop", "order.created")
    results: list[list[int]] = []

    def replay_all() -> None:
        results.append(replay.replay(replay.DeadFilter(source="shop")))
        from django.db import connection

        connection.close()

    threads = [threading.Thread(target=replay_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r) for r in results) == 30
    assert OutboxJob.objects.filter(replay_of__isnull=False).count() == 30


def test_an_empty_replay_filter_is_refused_unless_all_is_given() -> None:
    bury("shop", "order.created")
    bury("crm", "contact.updated")
    with pytest.raises(CommandError, match="empty filter is refused"):
        automate("dead", "replay")
    with pytest.raises(replay.EmptyReplayFilter):
        replay.replay(replay.DeadFilter())
    assert "2 dead jobs would be replayed" in automate("dead", "replay", "--all", "--dry-run")
    assert OutboxJob.objects.filter(replay_of__isnull=False).count() == 0  # a dry run changes nothing
    assert "Replayed 2 dead jobs" in automate("dead", "replay", "--all")


def test_replay_filters_by_time_error_kind_and_type() -> None:
    old = bury("shop", "order.created", "TemplateError: undefined")
    OutboxJob.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    recent = bury("shop", "order.paid", "HttpError: 503")
    task = bury("shop", "order.paid", "HttpError: 503", kind="task")
    assert "1 dead job would be replayed" in automate("dead", "replay", "--until", "2d", "--dry-run")
    assert "2 dead jobs would be replayed" in automate("dead", "replay", "--since", "1h", "--dry-run")
    assert "1 dead job would be replayed" in automate(
        "dead", "replay", "--error", "503", "--kind", "event", "--dry-run"
    )
    assert "1 dead job would be replayed" in automate(
        "dead", "replay", "--event-type", "*.created", "--dry-run"
    )
    automate("dead", "replay", "--error", "503", "--event-type", "order.paid")
    assert set(OutboxJob.objects.filter(replay_of__isnull=False).values_list("replay_of", flat=True)) == {
        recent.pk,
        task.pk,
    }


def test_a_bad_time_says_what_to_write() -> None:
    with pytest.raises(CommandError, match="90m, 2h, 7d"):
        automate("dead", "--since", "yesterday")


def test_replay_is_one_statement_however_many_match() -> None:
    for _ in range(50):
        bury("shop", "order.created")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        created = replay.replay(replay.DeadFilter(source="shop"))
    assert len(created) == 50
    assert len(queries.captured_queries) == 1
    assert "INSERT INTO automate_outbox_job" in queries.captured_queries[0]["sql"]


def test_admin_replays_the_selected_dead_jobs_and_lists_them() -> None:
    dead = bury("shop", "order.created")
    running = emit("shop", "order.created", {})
    live = OutboxJob.objects.get(event_id=running.event_id)
    User.objects.create_superuser("admin", "a@example.com", "pw")
    client = Client()
    client.login(username="admin", password="pw")
    page = client.get("/admin/automate_core/outboxjob/?status__exact=dead")
    assert page.status_code == 200 and f">{dead.pk}<" in page.content.decode()
    response = client.post(
        "/admin/automate_core/outboxjob/",
        {"action": "replay_dead", "_selected_action": [str(dead.pk), str(live.pk)]},
        follow=True,
    )
    assert "1 dead jobs queued again" in response.content.decode()
    assert "1 selected jobs are not dead" in response.content.decode()
    assert OutboxJob.objects.filter(replay_of=dead).count() == 1
    assert not OutboxJob.objects.filter(replay_of=live).exists()
