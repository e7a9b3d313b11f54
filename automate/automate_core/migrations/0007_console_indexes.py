"""Indexes the operator's console reads (the admin's lists and its dashboard).

* ``automate_event_received_brin``: events are inserted in time order, so a BRIN index on
  ``received_at`` (a few pages for millions of rows, next to nothing per insert) serves the
  events list's time filters and the dashboard's "events received per minute". The B-tree
  ``automate_event_held_keys`` cannot: it only holds events whose idempotency key is still held.
* ``automate_run_workflow_started``: ``(workflow_id, started_at)`` gives the workflows list each
  workflow's last run and its last-24-hours counts with one index probe per workflow, however many
  runs the workflow has had. Neither column changes after the insert: the update that finishes a
  run does not touch it. It is partial (``workflow_id IS NOT NULL``, which every lookup by
  workflow implies) so that time-only queries such as ``/metrics``' recent runs never pick it
  over the BRIN index.

Plain SQL, not model indexes, because the execution and ingest stages own these models (as with
``0004_ops_run_started_brin``).
"""

from __future__ import annotations

from django.db import migrations

FORWARD = """
CREATE INDEX IF NOT EXISTS automate_event_received_brin ON automate_event USING brin (received_at);
CREATE INDEX IF NOT EXISTS automate_run_workflow_started ON automate_run (workflow_id, started_at)
    WHERE workflow_id IS NOT NULL;
"""
BACKWARD = """
DROP INDEX IF EXISTS automate_event_received_brin;
DROP INDEX IF EXISTS automate_run_workflow_started;
"""


class Migration(migrations.Migration):
    dependencies = [("automate_core", "0006_worker_outbox")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
