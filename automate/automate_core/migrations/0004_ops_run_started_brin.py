"""A BRIN index on run start times, for scrape-time run outcomes and time-window views.

Runs are inserted in time order, so a BRIN index (a few pages for millions of rows) lets
``/metrics`` count the last minutes' runs without scanning the table, and costs almost nothing
on insert. It is plain SQL, not a model index, because the execution stage owns the model.
"""

from __future__ import annotations

from django.db import migrations

FORWARD = "CREATE INDEX IF NOT EXISTS automate_run_started_brin ON automate_run USING brin (started_at);"
BACKWARD = "DROP INDEX IF EXISTS automate_run_started_brin;"


class Migration(migrations.Migration):
    dependencies = [("automate_core", "0003_ingest_schemes_tokens_keys")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
