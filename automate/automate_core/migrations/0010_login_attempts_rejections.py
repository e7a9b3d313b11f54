"""Failed admin logins (throttling, admin/login.py) and webhook rejections counted per source (ingest/rejections.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("automate_core", "0009_durable_flow"),
    ]

    operations = [
        migrations.CreateModel(
            name="LoginFailure",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("username", models.CharField(max_length=150)),
                ("address", models.CharField(max_length=64)),
                ("at", models.DateTimeField()),
            ],
            options={
                "db_table": "automate_login_failure",
                "indexes": [
                    models.Index(fields=["username", "address", "at"], name="automate_login_fail_idx")
                ],
            },
        ),
        migrations.CreateModel(
            name="WebhookRejection",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("source", models.CharField(max_length=100)),
                ("reason", models.CharField(max_length=64)),
                ("status", models.PositiveSmallIntegerField()),
                ("count", models.BigIntegerField(default=0)),
                ("last_detail", models.CharField(blank=True, default="", max_length=500)),
                ("first_at", models.DateTimeField()),
                ("last_at", models.DateTimeField()),
            ],
            options={
                "db_table": "automate_webhook_rejection",
                "ordering": ["source", "-last_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("source", "reason"), name="automate_rejection_source_reason"
                    )
                ],
            },
        ),
    ]
