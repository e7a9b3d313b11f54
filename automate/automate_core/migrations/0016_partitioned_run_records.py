"""Run and step records partitioned by day (issue 16), on a live database without a long lock.

``automate_core.history.convert`` does the work and its docstring says which lock each phase
takes; on a database created by this version the tables are empty and it takes milliseconds.
Not atomic: the proof that the old rows fit below the first day (``VALIDATE CONSTRAINT``) and the
step table's new unique index (``CREATE INDEX CONCURRENTLY``) run outside a transaction, so that
writes go on while they read the tables; only the switch is one transaction.

Migrating back past it leaves the tables partitioned: a partitioned table cannot be turned back
into a plain one in place (it would mean copying every row under a lock), and it need not be: the
previous version runs on them as they are (its run ids come from the sequence, below the first
day, so its runs and steps go to the legacy partitions, and its retention deletes rows, which a
partitioned table allows). Migrating forward again finds them partitioned and does nothing.
"""

from django.db import migrations, models

from automate_core.history import convert, ids


def forward(apps, schema_editor):
    from automate_core.conf import settings

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(ids.CREATE_FUNCTION)
        convert.convert(cursor, ahead=int(settings.HISTORY_PARTITIONS_AHEAD))


def backward(apps, schema_editor):
    """The tables stay partitioned (see the module's docstring)."""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automate_core", "0015_admission"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="executionrun",
                    name="parent",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="replays",
                        to="automate_core.executionrun",
                    ),
                ),
                migrations.AlterField(
                    model_name="executionrun",
                    name="bulk_replay",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="runs",
                        to="automate_core.bulkreplay",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
