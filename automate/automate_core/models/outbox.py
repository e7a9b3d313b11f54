"""The outbox: one durable job per event (or Django task), claimed by workers.

States and transitions (drawn and explained in docs/architecture.md, section 2)::

    ready ──claim──▶ running ──complete──▶ completed ──(retention)──▶ pruned
      ▲  ▲             │ │ │
      │  │             │ │ └──fail, attempts left──▶ retry ──(available_at passes)──▶ claim
      │  │             │ └──fail, none left / not retryable──▶ dead ──replay──▶ new ready job
      │  │             └──lease expired (worker gone)──▶ retry, or dead when attempts are used up
      │  └──release / snooze (not spent: shutdown, a full limit, the database away)── running
      └──replay of a dead job (a new row, ``replay_of`` = the dead one)

Every transition out of ``running`` names the claim it expects: the job id, the claim's attempt
number (``attempts`` only ever grows, so it is a fencing token) and the worker holding the lease.
A worker whose lease expired cannot overwrite the outcome of the worker that took the job over.

``attempts`` counts claims; ``releases`` counts the claims that were handed back unspent. A job is
dead when ``attempts - releases`` (the attempts it actually spent) reaches ``max_attempts``.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class JobStatus(models.TextChoices):
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    RETRY = "retry", "Retry scheduled"
    COMPLETED = "completed", "Completed"
    DEAD = "dead", "Dead"


CLAIMABLE = [JobStatus.READY, JobStatus.RETRY]


class OutboxJob(models.Model):
    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        TASK = "task", "Django task"

    # No database constraint: the event table is partitioned by day, and its days are dropped
    # whole once no job names one of their events (history.partitions); the code keeps the link.
    event = models.ForeignKey(
        "automate_core.Event",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="jobs",
        db_constraint=False,
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EVENT)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.READY)
    attempts = models.IntegerField(default=0)  # claims so far: the fencing token, it only grows
    releases = models.IntegerField(
        db_default=0, help_text="Claims handed back without spending the attempt (shutdown, snooze)."
    )
    max_attempts = models.IntegerField(default=5)
    queue = models.CharField(
        max_length=100,
        db_default="default",
        default="default",
        help_text="The queue the job is on: a worker claims from the queues it is told to (--queue).",
    )
    priority = models.SmallIntegerField(
        db_default=0,
        default=0,
        help_text="-100 to 100, higher first (Django's task priority), without starving the rest.",
    )
    fair_key = models.CharField(
        max_length=200,
        db_default="",
        default="",
        blank=True,
        help_text="Jobs with different keys share the workers fairly (a tenant's flood waits its turn).",
    )
    available_at = models.DateTimeField(db_default=Now())
    claim_rank = models.DateTimeField(
        db_default=Now(),
        help_text="The claim's order (lowest first), computed by the database from "
        "available_at, priority and fair_key; writers never set it.",
    )
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    payload = models.JSONField(null=True, blank=True)
    result = models.JSONField(
        null=True, blank=True, help_text="Django tasks: return value, errors and workers, by attempt."
    )
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
        db_index=False,  # automate_outbox_replayed_once (partial) indexes the few non-NULL values
        # no database constraint: a completed replay is in a partition (history.settled)
        db_constraint=False,
    )
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    completed_at = models.DateTimeField(null=True, blank=True)
    settled = models.BooleanField(
        db_default=False,
        editable=False,
        help_text="Completed by this release: the job is in a day partition of completed jobs.",
    )

    class Meta:
        db_table = "automate_outbox_job"
        ordering = ["-id"]
        indexes = [
            # The claim reads one of these: claimable rows in claim order (migration 0013 computes
            # claim_rank from available_at, priority and fair_key), of every queue or by queue.
            models.Index(
                fields=["claim_rank", "id"],
                condition=models.Q(status__in=CLAIMABLE),
                name="automate_outbox_claimable",
            ),
            models.Index(
                fields=["queue", "claim_rank", "id"],
                condition=models.Q(status__in=CLAIMABLE),
                name="automate_outbox_by_queue",
            ),
            # Fairness: the last rank of a key's claimable jobs, read when a job of that key is
            # inserted. Holds only jobs with a key (fairness is off for the others).
            models.Index(
                fields=["queue", "fair_key", "priority", "claim_rank"],
                condition=models.Q(status__in=CLAIMABLE) & ~models.Q(fair_key=""),
                name="automate_outbox_fair",
            ),
            # The rescuer reads this one: leased (running) jobs by lease expiry. Its predicate is on
            # lease_expires_at, not status, so that the settle statements (guarded by status =
            # 'running') never pick it over the primary key: with few running jobs in the planner's
            # statistics it looks cheap, but it holds a dead entry for every job settled since the
            # last vacuum, and scanning them made every COMPLETE slower as a drain went on.
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(lease_expires_at__isnull=False),
                name="automate_outbox_leased",
            ),
            models.Index(
                fields=["id"],
                condition=models.Q(status=JobStatus.DEAD),
                name="automate_outbox_dead",
            ),
        ]
        constraints = [
            # A dead job is replayed at most once (the replay, if it dies too, is the one to replay):
            # two admins replaying the same filter at the same time cannot double the work.
            models.UniqueConstraint(
                fields=["replay_of"],
                condition=models.Q(replay_of__isnull=False),
                name="automate_outbox_replayed_once",
            )
        ]

    @property
    def spent_attempts(self) -> int:
        return self.attempts - self.releases

    def __str__(self) -> str:
        return f"job #{self.pk} ({self.status})"
