"""``OutboxTaskBackend``: Django's tasks framework (``django.tasks``) on Django Automate's outbox.

::

    TASKS = {
        "default": {
            "BACKEND": "automate_core.tasks.backend.OutboxTaskBackend",
            "OPTIONS": {"MAX_ATTEMPTS": 3},  # optional; default AUTOMATE_MAX_ATTEMPTS
        }
    }

``enqueue()`` writes one outbox job of kind ``task`` through Django's connection, so inside a
``transaction.atomic()`` the task exists only if the transaction commits (and no worker sees it
before). ``automate worker`` processes run it with the same leases, heartbeats, rescue, retries
with backoff, dead letters, replay (``automate dead replay --kind task``) and admin as workflows.

* ``supports_defer``: ``run_after`` becomes the job's ``available_at``.
* ``supports_async_task``: coroutine functions are awaited on the worker's event loop; plain
  functions run in the plugin thread pool (``automate_core.plugins.offload``).
* ``supports_get_result``: ``get_result(id)`` reads the job: ``READY`` (waiting, or a retry is
  scheduled), ``RUNNING``, ``SUCCESSFUL`` or ``FAILED`` (dead: attempts spent, or the task could
  not be imported), with the return value, one error per failed attempt and the workers' ids.
  Results live as long as the job row (``AUTOMATE_RETENTION_COMPLETED_JOBS``).
* ``supports_priority``: ``priority`` (-100 to 100, higher first) becomes the job's priority, with
  the outbox's aging (``AUTOMATE_PRIORITY_AGING``): a higher priority is claimed first, a lower
  one is never starved (docs/architecture.md, "Claim order").
* ``queue_name`` (validated against the backend's ``QUEUES``, as ``BaseTaskBackend`` does; without
  ``QUEUES`` only ``"default"``) is the job's queue: ``automate worker --queue NAME`` claims it,
  a worker without ``--queue`` claims every queue.

A task that raises is retried (the exception is its error) until its attempts are spent, then it
is ``FAILED``; a task whose worker died mid-run is rescued like any job. Tasks run at least once:
make them idempotent.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import connections
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task, TaskError
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from automate_core.conf import settings
from automate_core.tasks import queries

QUEUE_NAME_MAX_LENGTH = 100  # the outbox job's queue column

_STATUS = {
    "ready": TaskResultStatus.READY,
    "retry": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "completed": TaskResultStatus.SUCCESSFUL,
    "dead": TaskResultStatus.FAILED,
}


def resolve_task(module_path: str) -> Task:
    """The ``Task`` a ``@task``-decorated function at ``module_path`` became."""
    found = import_string(module_path)
    if not isinstance(found, Task):
        raise TypeError(f"{module_path} is not a task (decorate it with @django.tasks.task).")
    return found


class OutboxTaskBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.database: str = self.options.get("DATABASE", "default")
        self.max_attempts = int(self.options.get("MAX_ATTEMPTS", settings.MAX_ATTEMPTS))

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Write the task to the outbox, in the caller's transaction if there is one."""
        self.validate_task(task)
        if len(task.queue_name) > QUEUE_NAME_MAX_LENGTH:
            raise InvalidTask(
                f"Queue name {task.queue_name[:20]!r}... is longer than {QUEUE_NAME_MAX_LENGTH}."
            )
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        payload = {
            "task": task.module_path,
            "args": args,
            "kwargs": kwargs,
            "queue": task.queue_name,
            "backend": self.alias,
        }
        with connections[self.database].cursor() as cursor:
            params = {
                "max_attempts": self.max_attempts,
                "run_after": task.run_after,
                "queue": task.queue_name,
                "priority": int(task.priority),
            }
            cursor.execute(queries.ENQUEUE_TASK, {**params, "payload": json.dumps(payload)})
            job_id, created_at = cursor.fetchone()
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=str(job_id),
            status=TaskResultStatus.READY,
            enqueued_at=created_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        try:
            job_id = int(result_id)
        except (TypeError, ValueError):
            raise TaskResultDoesNotExist(result_id) from None
        with connections[self.database].cursor() as cursor:
            cursor.execute(queries.TASK_RESULT, {"id": job_id})
            row = cursor.fetchone()
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        return self._result(*row)

    def _result(
        self,
        job_id: int,
        status: str,
        payload: Any,
        stored: Any,
        created_at: datetime,
        updated_at: datetime,
        completed_at: datetime | None,
    ) -> TaskResult:
        payload = _loads(payload) or {}
        stored = _loads(stored) or {}
        try:
            task = resolve_task(payload["task"])
        except (KeyError, ImportError, AttributeError, TypeError, ValueError) as exc:
            raise TaskResultDoesNotExist(
                f"Task result {job_id} exists but its task {payload.get('task')!r} cannot be imported: {exc}"
            ) from exc
        running = status == "running"
        finished = completed_at if status == "completed" else updated_at if status == "dead" else None
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=str(job_id),
            status=_STATUS[status],
            enqueued_at=created_at,
            started_at=_when(stored.get("started_at")) or (updated_at if running else None),
            finished_at=finished,
            last_attempted_at=(updated_at if running else _when(stored.get("last_attempted_at"))),
            args=payload.get("args", []),
            kwargs=payload.get("kwargs", {}),
            backend=self.alias,
            errors=[TaskError(**e) for e in stored.get("errors", [])],
            worker_ids=list(stored.get("worker_ids", [])),
        )
        if status == "completed":
            object.__setattr__(result, "_return_value", stored.get("return_value"))
        return result


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
