"""SQL of debounce windows and batch buffers (``execution.grouping``), each transition guarded.

A group (``automate_event_group``) goes ``open`` -> ``flushed``, or ``open`` -> ``full`` ->
``flushed`` (a batch that reached ``max_size``), exactly once. Everything that changes a group
first takes the transaction-level advisory lock of its (workflow, key) (``LOCK_KEY``, a statement
of its own so that the next statement's snapshot sees every earlier change), so that an event
joining and the flush job closing the same group are serialised, whichever worker runs them:

* an event that arrives before the close joins the group, and the close sees it;
* an event that arrives after the close finds no open group and opens the next one.

A worker killed inside such a transaction holds nothing once its session ends (the lock is the
transaction's); a frozen one is ended by ``idle_in_transaction_session_timeout``. Joining is
idempotent per (workflow, event) (a unique index): a retried event job changes nothing.
"""

from __future__ import annotations

from typing import LiteralString

# Serialises every change to the groups of one (workflow, key), until the transaction ends.
LOCK_KEY: LiteralString = """
SELECT pg_advisory_xact_lock(hashtextextended('automate_group:' || %(workflow_id)s || ':' || %(key)s, 0))
"""

# An event joins its group (under LOCK_KEY), in one statement:
#   * already a member (a retried event job): nothing changes;
#   * an open group of this key whose run is still queued: size + 1, its last event the newest
#     (by id: two workers may absorb two events out of order); a debounce pushes the deadline
#     to now + period, capped at first event + max_wait; a batch that reaches max_size turns
#     ``full`` with its deadline now; the parked flush job moves to the deadline if no worker has
#     claimed it (a claimed one finds the group's deadline authoritative and snoozes until it);
#   * else a new group, its queued run (mode debounce/batch, pinned to this version) and its flush
#     job parked at the deadline (``payload = {"flush": group_id}``).
# No row back: an open group exists whose run is no longer queued (cancelled): RETIRE_GROUP it
# and join again.
JOIN_GROUP: LiteralString = """
WITH already AS (
    SELECT group_id FROM automate_event_group_member
    WHERE workflow_id = %(workflow_id)s AND event_id = %(event_id)s
), current AS (
    SELECT g.id FROM automate_event_group AS g
    WHERE g.workflow_id = %(workflow_id)s AND g.key = %(key)s AND g.status = 'open'
      AND NOT EXISTS (SELECT 1 FROM already)
      AND EXISTS (SELECT 1 FROM automate_run AS r WHERE r.id = g.run_id AND r.status = 'queued')
), pushed AS (
    UPDATE automate_event_group AS g
    SET size = g.size + 1, last_event_id = greatest(g.last_event_id, %(event_id)s), last_at = now(),
        deadline = CASE
            WHEN g.kind = 'debounce' THEN least(now() + make_interval(secs => %(period)s),
                                                g.first_at + make_interval(secs => %(max_wait)s))
            WHEN g.size + 1 >= g.max_size THEN now()
            ELSE g.deadline END,
        status = CASE WHEN g.kind = 'batch' AND g.size + 1 >= g.max_size THEN 'full' ELSE 'open' END
    FROM current
    WHERE g.id = current.id AND g.status = 'open'
    RETURNING g.id, g.run_id, g.job_id, g.size, g.status, g.deadline
), moved AS (
    UPDATE automate_outbox_job_live AS j SET available_at = pushed.deadline, updated_at = now()
    FROM pushed
    WHERE j.id = pushed.job_id AND j.status IN ('ready', 'retry') AND j.available_at <> pushed.deadline
    RETURNING j.id
), ids AS (
    SELECT nextval(pg_get_serial_sequence('automate_event_group', 'id')) AS group_id,
           automate_history_id('automate_run_id_seq') AS run_id,
           nextval(pg_get_serial_sequence('automate_outbox_job', 'id')) AS job_id,
           now() + make_interval(secs => CASE WHEN %(kind)s = 'batch' AND %(max_size)s::int <= 1 THEN 0
                                              ELSE %(period)s END) AS deadline
    WHERE NOT EXISTS (SELECT 1 FROM already) AND NOT EXISTS (SELECT 1 FROM current)
), created AS (
    INSERT INTO automate_event_group AS g
        (id, kind, workflow_id, version_id, key, status, run_id, job_id, size, max_size,
         first_event_id, last_event_id, first_at, last_at, deadline, flushed_by)
    SELECT ids.group_id, %(kind)s, %(workflow_id)s, %(version_id)s, %(key)s,
           CASE WHEN %(kind)s = 'batch' AND %(max_size)s::int <= 1 THEN 'full' ELSE 'open' END,
           ids.run_id, ids.job_id, 1, %(max_size)s, %(event_id)s, %(event_id)s, now(), now(),
           ids.deadline, ''
    FROM ids
    ON CONFLICT (workflow_id, key) WHERE status = 'open' DO NOTHING
    RETURNING g.id, g.run_id, g.job_id, g.status, g.deadline
), run AS (
    INSERT INTO automate_run
        (id, workflow_id, workflow_name, version_id, event_id, job_id, attempt, status, error,
         trace_id, mode, parent_id, started_at)
    SELECT created.run_id, %(workflow_id)s, %(workflow_name)s, %(version_id)s, %(event_id)s,
           created.job_id, 0, 'queued', '', %(trace_id)s, %(kind)s, NULL, now()
    FROM created
), job AS (
    INSERT INTO automate_outbox_job_live
        (id, event_id, kind, status, attempts, releases, max_attempts, available_at, lease_owner,
         last_error, payload, created_at, updated_at, queue)
    SELECT created.job_id, %(event_id)s, 'event', 'ready', 0, 0, %(max_attempts)s, created.deadline,
           '', '', jsonb_build_object('flush', created.id), now(), now(), %(queue)s
    FROM created
), target AS (
    SELECT id, size - 1 AS position, status, run_id FROM pushed
    UNION ALL
    SELECT id, 0, status, run_id FROM created
), member AS (
    INSERT INTO automate_event_group_member (group_id, workflow_id, event_id, position, added_at)
    SELECT id, %(workflow_id)s, %(event_id)s, position, now() FROM target
)
SELECT 'already', group_id, NULL::bigint, '' FROM already
UNION ALL
SELECT CASE WHEN position = 0 THEN 'opened' ELSE 'joined' END, id, run_id,
       CASE WHEN status = 'full' THEN status || pg_notify('automate_outbox', '')::text ELSE status END
FROM target
"""

# An open group whose run was cancelled takes no more events: it is flushed (its flush job then
# finds the run cancelled and completes), so that the next event opens a new group.
RETIRE_GROUP: LiteralString = """
WITH retired AS (
    UPDATE automate_event_group AS g SET status = 'flushed', flushed_at = now(), flushed_by = 'cancelled'
    WHERE g.workflow_id = %(workflow_id)s AND g.key = %(key)s AND g.status = 'open'
      AND NOT EXISTS (SELECT 1 FROM automate_run AS r WHERE r.id = g.run_id AND r.status = 'queued')
    RETURNING g.job_id
)
UPDATE automate_outbox_job_live AS j SET available_at = now(), updated_at = now()
FROM retired WHERE j.id = retired.job_id AND j.status IN ('ready', 'retry')
"""

GROUP_COLUMNS: LiteralString = """
    id, kind, workflow_id, key, status, run_id, job_id, size, first_event_id, last_event_id,
    first_at, deadline, flushed_by
"""
GET_GROUP: LiteralString = "SELECT" + GROUP_COLUMNS + "FROM automate_event_group WHERE id = %(group_id)s"

# The flush job closes its group (under LOCK_KEY): a full batch at once, an open group once its
# deadline has passed (a debounce's deadline may have been pushed since the job was parked: then
# no row, and the job snoozes until the new deadline). The queued run takes the group's last event
# as its own, in the same statement.
CLOSE_GROUP: LiteralString = (
    """
WITH closed AS (
    UPDATE automate_event_group AS g
    SET status = 'flushed', flushed_at = now(),
        flushed_by = CASE WHEN g.status = 'full' THEN 'full' ELSE 'deadline' END
    WHERE g.id = %(group_id)s AND (g.status = 'full' OR (g.status = 'open' AND g.deadline <= now()))
    RETURNING"""
    + GROUP_COLUMNS
    + """
), moved AS (
    UPDATE automate_run AS r SET event_id = closed.last_event_id
    FROM closed WHERE r.id = closed.run_id AND r.status = 'queued'
)
SELECT"""
    + GROUP_COLUMNS
    + "FROM closed"
)

# The events of a group, oldest first (a batch: all of them; a debounce: its newest one).
GROUP_EVENTS: LiteralString = """
SELECT e.id, e.source, e.event_type, e.payload, e.headers, e.trace_id, e.received_at
FROM automate_event_group_member AS m
JOIN automate_event AS e ON e.id = m.event_id
WHERE m.group_id = %(group_id)s AND (%(all)s OR m.event_id = %(last_event_id)s)
ORDER BY e.id
"""

# Why an event has no run of its own: the group it joined, and that group's run.
GROUPS_OF_EVENT: LiteralString = """
SELECT g.id, g.kind, g.workflow_id, g.key, g.status, g.run_id, g.size, m.position
FROM automate_event_group_member AS m
JOIN automate_event_group AS g ON g.id = m.group_id
WHERE m.event_id = %(event_id)s
ORDER BY g.id
"""
