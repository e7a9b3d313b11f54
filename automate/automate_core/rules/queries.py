"""SQL of the rules stage."""

from __future__ import annotations

from typing import LiteralString

# Every enabled workflow with the definition of its current version, one row per workflow.
# The engine runs versions only; the editable Workflow/Step rows take effect when published.
ACTIVE_WORKFLOWS: LiteralString = """
SELECT w.id, w.name, v.id, v.number, v.definition
FROM automate_workflow AS w
JOIN automate_workflow_version AS v ON v.id = w.current_version_id
WHERE w.enabled
ORDER BY w.id
"""

# One version by id (a replay on the original version, a retry that resumes on its version).
VERSION: LiteralString = """
SELECT w.id, w.name, v.id, v.number, v.definition
FROM automate_workflow_version AS v
JOIN automate_workflow AS w ON w.id = v.workflow_id
WHERE v.id = %(version_id)s
"""

# The (source, event_type, path) triples that wait_for_event steps correlate on (tiny, never
# shrinks): an event whose source and type are not in it cannot resolve a wait, with no query.
WAIT_PATTERNS: LiteralString = "SELECT source, event_type, path FROM automate_wait_pattern"
