"""Replaying dead jobs: each becomes a new ready job linked to the old one (``replay_of``)."""

from __future__ import annotations

from django.db import transaction

from automate_core.models import JobStatus, OutboxJob


def replay_dead(*, ids: list[int] | None = None, source: str | None = None) -> list[int]:
    jobs = OutboxJob.objects.filter(status=JobStatus.DEAD)
    if ids:
        jobs = jobs.filter(id__in=ids)
    if source:
        jobs = jobs.filter(event__source=source)
    created = []
    with transaction.atomic():
        for old in jobs.select_for_update(skip_locked=True):
            new = OutboxJob.objects.create(
                event_id=old.event_id,
                kind=old.kind,
                payload=old.payload,
                max_attempts=old.max_attempts,
                replay_of=old,
            )
            created.append(new.pk)
    return created
