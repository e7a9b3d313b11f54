"""Fixtures of the durable-flow tests: the workflow tests' probe connector and helpers."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection

from tests.workflows.conftest import probe  # noqa: F401  (the autouse recording connector)


def step(name: str, action: str = "echo", **extra: Any) -> dict[str, Any]:
    return {"name": name, "connector": "probe", "action": action, **extra}


def _fast_forward(run_id: int) -> list[int]:
    """The open wait's deadline has come: move it, and its parked wake job, to now."""
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE automate_run_wait SET deadline = now() - interval '1 millisecond' "
            "WHERE run_id = %s AND status = 'open' RETURNING job_id",
            [run_id],
        )
        jobs = [r[0] for r in cur.fetchall()]
        cur.execute("UPDATE automate_outbox_job SET available_at = now() WHERE id = ANY(%s)", [jobs])
    return jobs


fast_forward = sync_to_async(_fast_forward)


def records(run_id: int) -> list[tuple[str, str]]:
    from automate_core.models import StepRun

    return list(
        StepRun.objects.filter(run_id=run_id).order_by("position", "id").values_list("name", "status")
    )


arecords = sync_to_async(records)
