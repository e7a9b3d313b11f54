"""Django tasks the tests enqueue; the worker imports them by their module path."""

from __future__ import annotations

from typing import Any

from django.tasks import TaskContext, task

from automate_core.ingest.ingestor import emit


@task
def add(a: int, b: int) -> int:
    return a + b


@task
async def shout(text: str) -> str:
    return text.upper()


@task
def boom() -> None:
    raise ValueError("the task went boom")


@task(takes_context=True)
def flaky(context: TaskContext) -> dict[str, Any]:
    """Fails on its first attempt, succeeds on the next."""
    if context.attempt < 2:
        raise ConnectionError("first attempt fails")
    return {"attempt": context.attempt, "id": context.task_result.id}


@task
def record(note: str) -> int:
    """Uses the ORM from the task (it runs in the worker's thread pool)."""
    return emit("tasks", "noted", {"note": note}).event_id


@task
def nul() -> str:
    return "a\x00b"
