"""Database-side wiring the ORM cannot express.

* ``automate_config_generation``: a sequence bumped by a statement trigger whenever workflows,
  steps or webhook sources change. Workers read it with every claim and reload their rule index
  when it moved; the web process does the same for source configuration.
* A statement trigger on the outbox sends ``NOTIFY automate_outbox`` once per inserting statement
  (delivered at commit), which wakes idle workers at once; polling is only the safety net.
* Aggressive autovacuum on the outbox: every claim and completion leaves a dead tuple and a dead
  entry in the claim's partial index; vacuuming early keeps the claim fast.
"""

from __future__ import annotations

from django.db import migrations

FORWARD = """
CREATE SEQUENCE automate_config_generation;
SELECT nextval('automate_config_generation');  -- so that the first change moves it off 1

CREATE FUNCTION automate_bump_config_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('automate_config_generation');
    PERFORM pg_notify('automate_config', '');
    RETURN NULL;
END $$;

CREATE TRIGGER automate_workflow_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON automate_workflow FOR EACH STATEMENT EXECUTE FUNCTION automate_bump_config_generation();
CREATE TRIGGER automate_step_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON automate_step FOR EACH STATEMENT EXECUTE FUNCTION automate_bump_config_generation();
CREATE TRIGGER automate_source_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON automate_webhook_source FOR EACH STATEMENT EXECUTE FUNCTION automate_bump_config_generation();

CREATE FUNCTION automate_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('automate_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER automate_outbox_inserted AFTER INSERT ON automate_outbox_job
    FOR EACH STATEMENT EXECUTE FUNCTION automate_notify_outbox();

ALTER TABLE automate_outbox_job SET (
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_vacuum_insert_scale_factor = 0.0,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02
);
"""

BACKWARD = """
DROP TRIGGER IF EXISTS automate_outbox_inserted ON automate_outbox_job;
DROP FUNCTION IF EXISTS automate_notify_outbox();
DROP TRIGGER IF EXISTS automate_workflow_changed ON automate_workflow;
DROP TRIGGER IF EXISTS automate_step_changed ON automate_step;
DROP TRIGGER IF EXISTS automate_source_changed ON automate_webhook_source;
DROP FUNCTION IF EXISTS automate_bump_config_generation();
DROP SEQUENCE IF EXISTS automate_config_generation;
ALTER TABLE automate_outbox_job RESET (
    autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay,
    autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold,
    autovacuum_analyze_scale_factor
);
"""


class Migration(migrations.Migration):
    dependencies = [("automate_core", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
