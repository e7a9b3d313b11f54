"""Fixtures of the debounce and batching tests: the workflow tests' probe, and group helpers."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection

from tests.workflows.conftest import probe  # noqa: F401  (the autouse recording connector)

RECORD = {
    "name": "record",
    "connector": "probe",
    "action": "echo",
    "params": {"last": "{{ event.id }}", "ids": "{{ events | map(attribute='id') | list }}"},
}
LAST = {"name": "record", "connector": "probe", "action": "echo", "params": {"last": "{{ event.id }}"}}


def _due(**where: Any) -> int:
    """The open groups' deadline has come: move it, and their parked flush jobs, to now."""
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE automate_event_group SET deadline = now() - interval '1 millisecond' "
            "WHERE status = 'open' RETURNING job_id"
        )
        jobs = [r[0] for r in cur.fetchall()]
        cur.execute("UPDATE automate_outbox_job SET available_at = now() WHERE id = ANY(%s)", [jobs])
    return len(jobs)


make_due = sync_to_async(_due)


def groups() -> list[tuple[Any, ...]]:
    from automate_core.models import EventGroup

    return list(EventGroup.objects.order_by("id").values_list("kind", "key", "status", "size", "run_id"))


agroups = sync_to_async(groups)


def members() -> dict[int, list[int]]:
    """Each group's events, in arrival order."""
    from automate_core.models import GroupMember

    out: dict[int, list[int]] = {}
    for group_id, event_id in GroupMember.objects.order_by("group_id", "position").values_list(
        "group_id", "event_id"
    ):
        out.setdefault(group_id, []).append(event_id)
    return out


amembers = sync_to_async(members)


def settled() -> bool:
    """Every job completed and every group flushed: nothing is left to run."""
    from automate_core.models import EventGroup, OutboxJob

    return (
        EventGroup.objects.exists()
        and not EventGroup.objects.exclude(status="flushed").exists()
        and not OutboxJob.objects.exclude(status="completed").exists()
    )
