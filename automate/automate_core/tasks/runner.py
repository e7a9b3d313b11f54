"""How a worker runs one Django task job: import it, call it, report the outcome and a result.

The result is merged into the job's stored one by the settlement (``errors`` and ``worker_ids``
accumulate over attempts). Django's ``task_started`` and ``task_finished`` signals are sent for
every attempt (``task_finished`` with ``FAILED`` also when a retry follows). Tracebacks are masked
like every other error the platform records.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from traceback import format_exception
from typing import Any

from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import Task, TaskError
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.json import normalize_json

from automate_core import masking
from automate_core.execution.engine import JobOutcome
from automate_core.outbox.store import ClaimedJob, text_safe
from automate_core.plugins import offload
from automate_core.tasks.backend import OutboxTaskBackend, resolve_task

logger = logging.getLogger("automate.tasks")


def _error(exc: BaseException) -> dict[str, str]:
    kind = type(exc)
    return {
        "exception_class_path": f"{kind.__module__}.{kind.__qualname__}",
        "traceback": masking.masker.mask("".join(format_exception(exc))),
    }


async def run_task(job: ClaimedJob, worker_id: str) -> tuple[JobOutcome, dict[str, Any]]:
    payload = job.payload if isinstance(job.payload, dict) else {}
    previous = job.result if isinstance(job.result, dict) else {}
    started = timezone.now()
    attempt: dict[str, Any] = {"worker_ids": [worker_id], "last_attempted_at": started.isoformat()}
    if not previous.get("started_at"):
        attempt["started_at"] = started.isoformat()
    try:
        task = resolve_task(str(payload.get("task")))
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        error = f"The task {payload.get('task')!r} cannot be imported on this worker: {exc}"
        return JobOutcome(False, retryable=False, error=error), {**attempt, "errors": [_error(exc)]}

    args, kwargs = list(payload.get("args", [])), dict(payload.get("kwargs", {}))
    result: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=str(job.id),
        status=TaskResultStatus.RUNNING,
        enqueued_at=None,
        started_at=started,
        finished_at=None,
        last_attempted_at=started,
        args=args,
        kwargs=kwargs,
        backend=task.backend,
        errors=[TaskError(**e) for e in previous.get("errors", [])],
        worker_ids=[*previous.get("worker_ids", []), worker_id],
    )
    await task_started.asend_robust(OutboxTaskBackend, task_result=result)
    try:
        value = normalize_json(await _call(task, result, args, kwargs))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        failure = _error(exc)
        await _finished(result, TaskResultStatus.FAILED, error=failure)
        message = masking.masker.mask(f"{type(exc).__name__}: {exc}")
        return JobOutcome(False, retryable=True, error=message), {**attempt, "errors": [failure]}
    if text_safe(value) != value:  # the same value every time: retrying cannot help
        refused = ValueError(
            "The task's return value contains a NUL character (\\x00), which PostgreSQL cannot "
            "store; return such data encoded (base64, hex)."
        )
        failure = _error(refused)
        await _finished(result, TaskResultStatus.FAILED, error=failure)
        return JobOutcome(False, retryable=False, error=str(refused)), {**attempt, "errors": [failure]}
    await _finished(result, TaskResultStatus.SUCCESSFUL, value=value)
    return JobOutcome(True), {**attempt, "return_value": value, "finished_at": timezone.now().isoformat()}


async def _call(task: Task, result: TaskResult, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if task.takes_context:
        args = [TaskContext(task_result=result), *args]
    if inspect.iscoroutinefunction(task.func):
        return await task.func(*args, **kwargs)
    return await offload.run_sync(task.func, *args, **kwargs)


async def _finished(
    result: TaskResult, status: TaskResultStatus, *, value: Any = None, error: dict[str, str] | None = None
) -> None:
    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", timezone.now())
    if error is not None:
        result.errors.append(TaskError(**error))
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", value)
    for receiver, response in await task_finished.asend_robust(OutboxTaskBackend, task_result=result):
        if isinstance(response, Exception):
            logger.warning("task_finished receiver %r failed: %s", receiver, response)
