"""SQL of the rules stage."""

from __future__ import annotations

from typing import LiteralString

# Every enabled workflow with its steps in order, one row per workflow.
ACTIVE_WORKFLOWS: LiteralString = """
SELECT w.id, w.name, w.source_pattern, w.event_type_pattern, w.max_attempts,
       coalesce(
           json_agg(json_build_object(
               'position', s.position, 'name', s.name, 'connector', s.connector,
               'action', s.action, 'params', s.params, 'timeout', s.timeout_seconds
           ) ORDER BY s.position, s.id) FILTER (WHERE s.id IS NOT NULL),
           '[]'::json)
FROM automate_workflow AS w
LEFT JOIN automate_step AS s ON s.workflow_id = w.id
WHERE w.enabled
GROUP BY w.id
ORDER BY w.id
"""
