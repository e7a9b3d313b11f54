"""Events partitioned by day (issue 16), on a live database without a long lock.

The dedupe of ``(source, idempotency_key)`` was a unique index on the event table; a partitioned
table cannot have one across its partitions, so the held keys move to a table of their own,
``automate_event_key`` (``ingest.keys`` copies them beside the live ingest), and the table is
partitioned the way 0016 partitioned the run records (``history.convert``; the switch copies the
keys written since the copy began, under its lock). The job's foreign key to its event goes: a
day of events is dropped whole once no job names one of them (``history.partitions``).

**Deploy the new release with it, not after it**: the previous release's ingest names the old
unique index (``ON CONFLICT (source, idempotency_key)``), which the partitioned table does not
have, so its web processes answer 503 (and lose nothing: the sender retries) from the switch
until they are restarted on this release. Workers of either release run on it.

Migrating back past it leaves the event table partitioned (see 0016) and drops the key table:
the previous release cannot ingest into a partitioned event table, so going back is for a
database about to be migrated forward again (or dropped), not for running the previous release.
Forward again, the keys of the dedupe window are copied back into the key table from the events
(which keep their keys).
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

from automate_core.history import convert, tables
from automate_core.ingest import keys


def forward(apps, schema_editor):
    from automate_core.conf import settings

    window = float(settings.INGEST_DEDUPE_WINDOW)
    with schema_editor.connection.cursor() as cursor:
        catch_up = keys.backfill(cursor, window)
        if convert.is_partitioned(cursor, tables.EVENT_RECORDS):
            return  # migrated back and forward again: the keys are back, the table is as it was
        convert.convert(
            cursor,
            ahead=int(settings.HISTORY_PARTITIONS_AHEAD),
            group=tables.EVENT_RECORDS,
            catch_up=[catch_up],
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automate_core", "0016_partitioned_run_records"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "source",
                        "idempotency_key",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("source", models.CharField(max_length=100)),
                ("idempotency_key", models.CharField(max_length=255)),
                ("event_id", models.BigIntegerField()),
                ("trace_id", models.CharField(max_length=32)),
                ("received_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={"db_table": "automate_event_key"},
        ),
        migrations.AddIndex(
            model_name="eventkey",
            index=models.Index(fields=["received_at"], name="automate_event_key_received"),
        ),
        migrations.SeparateDatabaseAndState(
            # the database side is the conversion's: the partitioned parent is made without these
            # (the legacy partition keeps them as its own), and the foreign key is dropped by it
            state_operations=[
                migrations.RemoveConstraint(model_name="event", name="automate_event_idempotency"),
                migrations.RemoveIndex(model_name="event", name="automate_event_held_keys"),
                migrations.AlterField(
                    model_name="outboxjob",
                    name="event",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="jobs",
                        to="automate_core.event",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, migrations.RunPython.noop)],
        ),
    ]
