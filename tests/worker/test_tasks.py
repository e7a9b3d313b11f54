"""Django's tasks framework on the outbox: enqueued in the caller's transaction, run by our
workers with the same retries and dead letters, results readable from any process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.test import override_settings
from django.utils import timezone

from automate_core.models import Event, OutboxJob
from automate_core.outbox import replay
from automate_core.tasks.backend import OutboxTaskBackend
from tests.worker import tasks
from tests.worker.conftest import drain

pytestmark = pytest.mark.usefixtures("live_db")


def finished(result_id: str) -> bool:
    return default_task_backend.get_result(result_id).is_finished


def test_the_project_uses_the_outbox_backend() -> None:
    backend = task_backends["default"]
    assert isinstance(backend, OutboxTaskBackend)
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_enqueue_joins_the_callers_transaction() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.enqueue(1, 2)
        assert OutboxJob.objects.filter(kind="task").count() == 1  # visible inside the transaction
        raise RuntimeError("rolled back")
    assert not OutboxJob.objects.filter(kind="task").exists()  # gone with it
    with transaction.atomic():
        result = tasks.add.enqueue(1, 2)
    job = OutboxJob.objects.get(pk=int(result.id))
    assert (job.kind, job.status, job.event_id) == ("task", "ready", None)
    assert job.payload is not None
    assert job.payload["task"] == "tests.worker.tasks.add" and job.payload["args"] == [1, 2]
    fetched = tasks.add.get_result(result.id)
    assert fetched.status == TaskResultStatus.READY and fetched.enqueued_at is not None


async def test_a_worker_runs_sync_and_async_tasks_and_stores_their_results() -> None:
    added = await tasks.add.aenqueue(2, 3)
    shouted = await sync_to_async(tasks.shout.enqueue)("hi")
    noted = await sync_to_async(tasks.record.enqueue)("from a task")
    pool = await drain(lambda: all(finished(r.id) for r in (added, shouted, noted)))
    result = await tasks.add.aget_result(added.id)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 5
    assert result.worker_ids == [pool.worker_id] and result.attempts == 1
    assert result.started_at is not None and result.finished_at is not None
    assert result.last_attempted_at is not None and result.errors == []
    shout: object = (await tasks.shout.aget_result(shouted.id)).return_value  # typed as a coroutine
    assert shout == "HI"
    event_id = (await tasks.record.aget_result(noted.id)).return_value
    assert (await Event.objects.aget(pk=event_id)).payload == {"note": "from a task"}


@override_settings(
    TASKS={
        "default": {
            "BACKEND": "automate_core.tasks.backend.OutboxTaskBackend",
            "OPTIONS": {"MAX_ATTEMPTS": 2},
        }
    }
)
async def test_a_failing_task_is_retried_then_failed_with_every_error() -> None:
    result = await sync_to_async(tasks.boom.enqueue)()
    await drain(lambda: finished(result.id))
    failed = await tasks.boom.aget_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    assert len(failed.errors) == 2 and failed.attempts == 2
    assert failed.errors[0].exception_class is ValueError
    assert "the task went boom" in failed.errors[-1].traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = failed.return_value
    job = await OutboxJob.objects.aget(pk=int(result.id))
    assert (job.status, job.attempts) == ("dead", 2)
    # a dead task is replayed like any dead job
    assert len(await sync_to_async(replay.replay)(replay.DeadFilter(kind="task"))) == 1


async def test_a_task_that_fails_once_succeeds_on_its_retry_and_sees_its_attempt() -> None:
    result = await sync_to_async(tasks.flaky.enqueue)()
    await drain(lambda: finished(result.id))
    done = await tasks.flaky.aget_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == {"attempt": 2, "id": result.id}
    assert [e.exception_class for e in done.errors] == [ConnectionError]


async def test_deferred_tasks_wait_for_run_after() -> None:
    later = timezone.now() + timedelta(hours=1)
    deferred = await sync_to_async(tasks.add.using(run_after=later).enqueue)(1, 1)
    now = await sync_to_async(tasks.add.enqueue)(2, 2)
    await drain(lambda: finished(now.id))
    assert (await tasks.add.aget_result(deferred.id)).status == TaskResultStatus.READY
    job = await OutboxJob.objects.aget(pk=int(deferred.id))
    assert job.available_at == later and job.attempts == 0


async def test_a_task_that_cannot_be_imported_fails_without_retrying() -> None:
    result = await sync_to_async(tasks.add.enqueue)(1, 2)
    await OutboxJob.objects.filter(pk=int(result.id)).aupdate(payload={"task": "tests.worker.tasks.gone"})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())
    job = await OutboxJob.objects.aget(pk=int(result.id))
    assert job.attempts == 1 and "cannot be imported" in job.last_error


def test_a_priority_out_of_range_is_refused_and_unknown_results_do_not_exist() -> None:
    assert tasks.add.using(priority=10).priority == 10  # honoured: tests/worker/test_claim_order.py
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(priority=101)
    with pytest.raises(InvalidTask, match="Queue"):
        tasks.add.using(queue_name="not-in-QUEUES")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("999999")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("not-a-number")


async def test_results_are_readable_while_running() -> None:
    result = await sync_to_async(tasks.add.enqueue)(1, 2)
    await OutboxJob.objects.filter(pk=int(result.id)).aupdate(status="running", attempts=1)
    running = await tasks.add.aget_result(result.id)
    assert running.status == TaskResultStatus.RUNNING and running.started_at is not None


async def test_a_return_value_postgresql_cannot_store_fails_with_a_clear_error() -> None:
    result = await sync_to_async(tasks.nul.enqueue)()
    await drain(lambda: finished(result.id))
    failed = await tasks.nul.aget_result(result.id)
    assert failed.status == TaskResultStatus.FAILED and failed.attempts == 1  # not retried
    assert "NUL character" in failed.errors[0].traceback


async def test_a_task_whose_worker_died_records_the_lost_attempt() -> None:
    from automate_core.exceptions import LeaseExpired
    from automate_core.outbox.store import OutboxStore

    result = await sync_to_async(tasks.add.enqueue)(2, 2)
    store = OutboxStore()
    await store.claim_batch(1, "host:4242:dead", 30)  # a worker that then dies
    await OutboxJob.objects.aupdate(lease_expires_at="2000-01-01T00:00:00Z")
    assert len(await store.rescue_expired()) == 1
    await drain(lambda: finished(result.id))
    done = await tasks.add.aget_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL and done.return_value == 4
    assert [e.exception_class for e in done.errors] == [LeaseExpired]
    assert done.worker_ids[0] == "host:4242:dead" and done.attempts == 2
