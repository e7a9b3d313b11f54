"""Debounce windows and batch buffers: events of one workflow and key gathered into one run.

A workflow with ``debounce:`` or ``batch:`` does not run for each matching event. The event joins
the :class:`EventGroup` open for its workflow and rendered key (one open group per pair: a
partial unique index), recorded as a :class:`GroupMember` (one group per event and workflow,
ever: a unique index, so a retried event job never joins twice). The group points at its queued
run and at the *flush job* (``payload = {"flush": group_id}``) that carries the run out; the
flush job is parked at the group's deadline, which a debounce pushes with each event (capped at
first event + ``max_wait``) and a batch fixes at first event + ``timeout`` (or now, when full).

Every transition is guarded by the state it expects (``execution.grouping_queries``): a group
goes ``open`` -> ``full`` (batch) -> ``flushed`` exactly once; the flush job's close and a new
event racing for the same group serialise on the group's row, and whoever comes second sees the
other's commit. The rows carry no foreign-key constraints, like the run records they point at.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class GroupKind(models.TextChoices):
    DEBOUNCE = "debounce", "Debounce window"
    BATCH = "batch", "Batch buffer"


class GroupStatus(models.TextChoices):
    OPEN = "open", "Open (takes events)"
    FULL = "full", "Full (flushing now)"
    FLUSHED = "flushed", "Flushed (its run has the events)"


class EventGroup(models.Model):
    kind = models.CharField(max_length=16, choices=GroupKind.choices)
    workflow_id = models.BigIntegerField()
    version_id = models.BigIntegerField(null=True)
    key = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=GroupStatus.choices, default=GroupStatus.OPEN)
    run_id = models.BigIntegerField()  # the queued run that carries the events out
    job_id = models.BigIntegerField()  # its flush job
    size = models.IntegerField(default=0)  # events absorbed
    max_size = models.IntegerField(null=True, blank=True)  # batch only
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    first_at = models.DateTimeField(db_default=Now())
    last_at = models.DateTimeField(db_default=Now())
    deadline = models.DateTimeField()
    flushed_at = models.DateTimeField(null=True, blank=True)
    flushed_by = models.CharField(max_length=32, blank=True, default="")  # deadline, max_wait, full

    class Meta:
        db_table = "automate_event_group"
        ordering = ["-id"]
        constraints = [
            # one open window (or buffer) per workflow and key: concurrent events meet here
            models.UniqueConstraint(
                fields=["workflow_id", "key"],
                condition=models.Q(status="open"),
                name="automate_group_open_key",
            ),
        ]
        indexes = [
            models.Index(fields=["run_id"], name="automate_group_run"),
            models.Index(fields=["job_id"], name="automate_group_job"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} of workflow {self.workflow_id} key {self.key!r} ({self.status})"


class GroupMember(models.Model):
    group_id = models.BigIntegerField()
    workflow_id = models.BigIntegerField()
    event_id = models.BigIntegerField()
    position = models.IntegerField()  # arrival order in the group, from 0
    added_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "automate_event_group_member"
        ordering = ["group_id", "position"]
        constraints = [
            # an event joins one group per workflow, once (a retried event job changes nothing)
            # (also: the groups of one event, ``automate runs --event``)
            models.UniqueConstraint(fields=["event_id", "workflow_id"], name="automate_group_member_event"),
            models.UniqueConstraint(fields=["group_id", "position"], name="automate_group_member_position"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} in group {self.group_id} at {self.position}"
