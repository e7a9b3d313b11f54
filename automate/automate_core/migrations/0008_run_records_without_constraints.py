"""Run records without foreign-key constraints, and without their redundant indexes.

Every operation is instant on a large table (constraints and indexes dropped, one index renamed):
the trace_id index Django would rebuild under a new name is renamed instead, and only its unused
``varchar_pattern_ops`` twin is dropped. See the docstring of ``models/execution.py``.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("automate_core", "0007_console_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="executionrun",
                    name="trace_id",
                    field=models.CharField(max_length=32),
                ),
                migrations.AddIndex(
                    model_name="executionrun",
                    index=models.Index(fields=["trace_id"], name="automate_run_trace"),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        "DROP INDEX IF EXISTS automate_run_trace_id_17baeda1_like",
                        "ALTER INDEX IF EXISTS automate_run_trace_id_17baeda1 RENAME TO automate_run_trace",
                    ],
                    reverse_sql=[
                        "ALTER INDEX IF EXISTS automate_run_trace RENAME TO automate_run_trace_id_17baeda1",
                        "CREATE INDEX IF NOT EXISTS automate_run_trace_id_17baeda1_like "
                        "ON automate_run (trace_id varchar_pattern_ops)",
                    ],
                ),
            ],
        ),
        migrations.RemoveIndex(
            model_name="executionrun",
            name="automate_run_job",
        ),
        migrations.AlterField(
            model_name="executionrun",
            name="event",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="runs",
                to="automate_core.event",
            ),
        ),
        migrations.AlterField(
            model_name="executionrun",
            name="job",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                to="automate_core.outboxjob",
            ),
        ),
        migrations.AlterField(
            model_name="executionrun",
            name="version",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="runs",
                to="automate_core.workflowversion",
            ),
        ),
        migrations.AlterField(
            model_name="executionrun",
            name="workflow",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="runs",
                to="automate_core.workflow",
            ),
        ),
        migrations.AlterField(
            model_name="steprun",
            name="run",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="steps",
                to="automate_core.executionrun",
            ),
        ),
    ]
