"""The claim order (issue 13): queues, priority with aging, fairness per key, in one rank column.

``claim_rank`` is the only thing the claim orders by (``claim_rank, id``). The database computes
it, so a writer sets ``queue``, ``priority`` and ``fair_key`` and nothing else:

* ``rank = available_at - priority x aging``: each priority point is worth ``aging`` seconds of
  waiting (``automate_outbox_tuning.priority_aging``, written from ``AUTOMATE_PRIORITY_AGING`` by
  every worker at start). A job is never overtaken by a job that became available more than
  ``(its priority - ours) x aging`` seconds after it: no starvation.
* With a ``fair_key``, the rank is also at least the last rank of the same key's claimable jobs
  (same queue and priority) plus ``fairness_quantum`` (``AUTOMATE_FAIRNESS_QUANTUM``): a key's
  backlog is spread out in rank, one quantum per job, so another key's job lands among the first
  ones instead of behind the whole flood. It is read from the outbox itself (the partial index
  ``automate_outbox_fair``): no clock table, no row lock shared by writers, nothing to prune and
  nothing a dead worker can leave stuck.
* The column's default, ``now()``, is the rank of a plain job (priority 0, no key, available now,
  i.e. every webhook): the trigger's WHEN clause is false for it and no function runs.
* An update that moves ``available_at`` keeps the rank when the job is available at once (a
  rescue, a release: the job goes back to its place) and moves it no earlier than its new time
  otherwise (a retry's backoff, a snooze).
"""

from __future__ import annotations

from django.db import migrations, models
from django.db.models.functions import Now

CLAIMABLE = ["ready", "retry"]

FORWARD = """
CREATE TABLE automate_outbox_tuning (
    id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    priority_aging double precision NOT NULL DEFAULT 1.0 CHECK (priority_aging >= 0),
    fairness_quantum double precision NOT NULL DEFAULT 0.01 CHECK (fairness_quantum >= 0)
);
INSERT INTO automate_outbox_tuning DEFAULT VALUES;

CREATE FUNCTION automate_outbox_rank() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    aging double precision;
    quantum double precision;
    base timestamptz;
    last_rank timestamptz;
BEGIN
    SELECT t.priority_aging, t.fairness_quantum INTO aging, quantum FROM automate_outbox_tuning AS t;
    aging := coalesce(aging, 1.0);
    quantum := coalesce(quantum, 0.01);
    base := NEW.available_at - make_interval(secs => NEW.priority * aging);
    IF TG_OP = 'INSERT' THEN
        IF NEW.fair_key <> '' THEN
            SELECT j.claim_rank INTO last_rank FROM automate_outbox_job AS j
            WHERE j.status IN ('ready', 'retry') AND j.queue = NEW.queue AND j.fair_key = NEW.fair_key
              AND j.priority = NEW.priority AND j.available_at <= now()
            ORDER BY j.claim_rank DESC
            LIMIT 1;
            IF last_rank IS NOT NULL THEN
                base := greatest(base, last_rank + make_interval(secs => quantum));
            END IF;
        END IF;
        NEW.claim_rank := base;
    ELSE
        -- the old rank, moved by the change of priority if any
        NEW.claim_rank := OLD.claim_rank - make_interval(secs => (NEW.priority - OLD.priority) * aging);
        IF NEW.available_at <= now() THEN
            NEW.claim_rank := least(NEW.claim_rank, base);  -- available now: back to its place
        ELSE
            NEW.claim_rank := greatest(NEW.claim_rank, base);  -- later: not before its time
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER automate_outbox_rank_inserted BEFORE INSERT ON automate_outbox_job
    FOR EACH ROW
    WHEN (NEW.priority <> 0 OR NEW.fair_key <> '' OR NEW.claim_rank IS DISTINCT FROM NEW.available_at)
    EXECUTE FUNCTION automate_outbox_rank();
CREATE TRIGGER automate_outbox_rank_moved BEFORE UPDATE OF available_at, priority ON automate_outbox_job
    FOR EACH ROW
    WHEN (NEW.available_at IS DISTINCT FROM OLD.available_at OR NEW.priority IS DISTINCT FROM OLD.priority)
    EXECUTE FUNCTION automate_outbox_rank();

-- the claimable jobs there are now get their rank (the others get one when they become claimable)
UPDATE automate_outbox_job SET claim_rank = available_at - make_interval(secs => priority * 1.0)
WHERE status IN ('ready', 'retry');
"""

BACKWARD = """
DROP TRIGGER IF EXISTS automate_outbox_rank_moved ON automate_outbox_job;
DROP TRIGGER IF EXISTS automate_outbox_rank_inserted ON automate_outbox_job;
DROP FUNCTION IF EXISTS automate_outbox_rank();
DROP TABLE IF EXISTS automate_outbox_tuning;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("automate_core", "0012_outbox_queue_priority"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxjob",
            name="claim_rank",
            field=models.DateTimeField(
                db_default=Now(),
                help_text="The claim's order (lowest first), computed by the database from "
                "available_at, priority and fair_key; writers never set it.",
            ),
        ),
        migrations.RemoveIndex(model_name="outboxjob", name="automate_outbox_claimable"),
        migrations.AddIndex(
            model_name="outboxjob",
            index=models.Index(
                fields=["claim_rank", "id"],
                condition=models.Q(status__in=CLAIMABLE),
                name="automate_outbox_claimable",
            ),
        ),
        migrations.AddIndex(
            model_name="outboxjob",
            index=models.Index(
                fields=["queue", "claim_rank", "id"],
                condition=models.Q(status__in=CLAIMABLE),
                name="automate_outbox_by_queue",
            ),
        ),
        migrations.AddIndex(
            model_name="outboxjob",
            index=models.Index(
                fields=["queue", "fair_key", "priority", "claim_rank"],
                condition=models.Q(status__in=CLAIMABLE) & ~models.Q(fair_key=""),
                name="automate_outbox_fair",
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
