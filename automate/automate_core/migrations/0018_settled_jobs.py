"""Completed jobs leave the queue for day partitions (issue 16), on a live database.

``automate_outbox_job`` becomes a parent partitioned by ``LIST (settled)``: the old table, renamed
``automate_outbox_job_live``, is its queue partition (nothing is copied, its indexes and triggers
stay its own), and ``automate_outbox_job_done``, partitioned by day of completion, takes the jobs
completed from now on (``history.settled``). The switch is catalog work under a short lock,
tried again while a long transaction holds the table.

Workers and web processes of the previous release go on working on the converted table (their
statements name ``automate_outbox_job``, which routes to the queue; their completed jobs stay
there and leave it row by row, as before). The replay's foreign key to its dead job goes (the
code keeps the link, like the run's).

Migrating back past it leaves the table partitioned (see 0016): the state is kept for the next
migration forward, which finds it converted and does nothing.
"""

from django.db import migrations, models

from automate_core.history import settled


def forward(apps, schema_editor):
    from automate_core.conf import settings

    with schema_editor.connection.cursor() as cursor:
        settled.convert_jobs(cursor, ahead=int(settings.HISTORY_PARTITIONS_AHEAD))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automate_core", "0017_partitioned_events"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # the database side is the conversion's (history.settled): the column too, added under
            # a short lock timeout, so that a migration interrupted anywhere can simply run again
            state_operations=[
                migrations.AddField(
                    model_name="outboxjob",
                    name="settled",
                    field=models.BooleanField(
                        db_default=False,
                        editable=False,
                        help_text="Completed by this release: the job is in a day partition of completed jobs.",
                    ),
                ),
                migrations.AlterField(
                    model_name="outboxjob",
                    name="replay_of",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="replays",
                        to="automate_core.outboxjob",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, migrations.RunPython.noop)],
        ),
    ]
