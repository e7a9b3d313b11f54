"""The outbox worker: unspent releases, Django task results, and replay-once for dead jobs.

* ``releases``: claims handed back without spending the attempt (graceful shutdown, snooze, the
  database away mid-job). ``attempts`` now only grows, so the claim's attempt number is a fencing
  token that is never reused; a job is dead when ``attempts - releases`` reaches ``max_attempts``.
  ``db_default`` so that raw inserts (ingest) need not name it.
* ``result``: a Django task's return value, errors and worker ids (``automate_core.tasks``).
* ``automate_outbox_replayed_once``: a dead job is replayed at most once, even by two concurrent
  replays (``INSERT ... ON CONFLICT DO NOTHING`` relies on it).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("automate_core", "0002_triggers")]

    operations = [
        migrations.AddField(
            model_name="outboxjob",
            name="releases",
            field=models.IntegerField(
                db_default=0,
                help_text="Claims handed back without spending the attempt (shutdown, snooze).",
            ),
        ),
        migrations.AddField(
            model_name="outboxjob",
            name="result",
            field=models.JSONField(
                blank=True,
                help_text="Django tasks: return value, errors and workers, by attempt.",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="outboxjob",
            constraint=models.UniqueConstraint(
                condition=models.Q(("replay_of__isnull", False)),
                fields=("replay_of",),
                name="automate_outbox_replayed_once",
            ),
        ),
    ]
