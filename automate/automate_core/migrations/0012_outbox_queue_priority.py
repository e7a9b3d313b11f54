"""The outbox job's queue and priority (issue 13): two columns with constant defaults, so adding
them is instant on a large table (no rewrite); the claim order that uses them is the next
migration's. ``fair_key`` names the tenant (or any key) that fairness shares the
workers across."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("automate_core", "0011_api_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxjob",
            name="queue",
            field=models.CharField(
                db_default="default",
                default="default",
                help_text="The queue the job is on: a worker claims from the queues it is told to (--queue).",
                max_length=100,
            ),
        ),
        migrations.AddField(
            model_name="outboxjob",
            name="priority",
            field=models.SmallIntegerField(
                db_default=0,
                default=0,
                help_text="-100 to 100, higher first (Django's task priority), without starving the rest.",
            ),
        ),
        migrations.AddField(
            model_name="outboxjob",
            name="fair_key",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Jobs with different keys share the workers fairly (a tenant's flood waits its turn).",
                max_length=200,
            ),
        ),
    ]
