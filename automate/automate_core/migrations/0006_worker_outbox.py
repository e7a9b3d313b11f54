"""The outbox worker: unspent releases, Django task results, and replay-once for dead jobs.

* ``releases``: claims handed back without spending the attempt (graceful shutdown, snooze, the
  database away mid-job). ``attempts`` now only grows, so the claim's attempt number is a fencing
  token that is never reused; a job is dead when ``attempts - releases`` reaches ``max_attempts``.
  ``db_default`` so that raw inserts (ingest) need not name it.
* ``result``: a Django task's return value, errors and worker ids (``automate_core.tasks``).
* ``automate_outbox_replayed_once``: a dead job is replayed at most once, even by two concurrent
  replays (``INSERT ... ON CONFLICT DO NOTHING`` relies on it). It also indexes ``replay_of`` for
  lookups, so the foreign key's own index (every row, nearly all NULL, and one more index entry
  written at every transition of every job) is dropped.
* ``automate_outbox_leased`` is keyed on ``lease_expires_at IS NOT NULL`` instead of ``status =
  'running'`` (the same rows): the settle statements, guarded by ``status = 'running'``, then always
  find their rows by primary key instead of scanning this index, which holds a dead entry for every
  job settled since the last vacuum (see models/outbox.py).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("automate_core", "0005_workflows_versions_schedules")]

    # The foreign key's own index goes before the partial unique index comes: dropping it afterwards
    # would drop that one too (both index the column).
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
        migrations.AlterField(
            model_name="outboxjob",
            name="replay_of",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="replays",
                to="automate_core.outboxjob",
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
        migrations.RemoveIndex(model_name="outboxjob", name="automate_outbox_leased"),
        migrations.AddIndex(
            model_name="outboxjob",
            index=models.Index(
                condition=models.Q(("lease_expires_at__isnull", False)),
                fields=["lease_expires_at"],
                name="automate_outbox_leased",
            ),
        ),
    ]
