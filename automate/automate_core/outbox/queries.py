"""The outbox's SQL: one named statement per transition, each guarded by the state it expects.

Every transition out of ``running`` takes arrays of claims (``unnest``), so a worker settles a
whole batch of jobs in one statement and one commit, and matches a row only while the claim it
names still holds: ``status = 'running'``, the claim's attempt number (``attempts`` only grows,
so it is never reused) and the worker that holds the lease. A worker whose lease expired, and
whose job was rescued and claimed again, matches nothing: its late write is dropped.
"""

from __future__ import annotations

from typing import LiteralString

# Claim up to %(limit)s jobs for one worker, in one statement:
#   1. candidates: the first claimable rows in claim order, read from a partial index of the
#      claimable rows (status ready/retry): automate_outbox_claimable (claim_rank, id) when the
#      worker takes every queue, automate_outbox_by_queue (queue, claim_rank, id) when it names its
#      queues (CLAIM_BATCH_QUEUE for one, CLAIM_BATCH_QUEUES for several). FOR UPDATE SKIP
#      LOCKED skips rows another worker is claiming right now instead of waiting for it.
#      claim_rank is computed by the database (migration 0013, trigger automate_outbox_rank):
#      available_at moved earlier by priority x aging, and for a job with a fair_key no earlier
#      than its key's last claimable job plus a quantum (docs/architecture.md, "Claim order").
#      Since claim_rank is never earlier than available_at - priority x aging,
#      a row not yet available (a retry in its backoff, a sleeping run's wake job) sorts near its
#      time: the scan passes over only the ones ranked before the rows it claims, i.e. jobs due
#      soon with a higher priority (or due before a flooding key's spread-out backlog), never
#      the history and never the keys.
#   2. claimed: flip them to running, set the lease and count the attempt (the attempt number is
#      the claim's fencing token: every later transition names it, with the lease owner).
#   3. the result reports the configuration generation, so the worker knows when to reload its
#      rule index. A task's earlier result (errors, workers) comes along so the task sees its own
#      history. The jobs' events are read next, by ``CLAIMED_EVENTS``.
#   4. each event job brings the id of the first run it starts in this attempt, drawn here (one
#      nextval, no row written): a short run is then written once, whole, at its end, yet its steps
#      and connectors know its id from the start (execution.late_start). Drawn at the claim, the ids
#      of a job's runs grow with its attempts, which "the latest run" of a retry relies on.
_CLAIM_REST: LiteralString = """
), claimed AS (
    UPDATE automate_outbox_job_live AS j
    SET status = 'running',
        attempts = j.attempts + 1,
        lease_owner = %(owner)s,
        lease_expires_at = now() + make_interval(secs => %(lease)s),
        updated_at = now()
    FROM candidates
    WHERE j.id = candidates.id
    RETURNING j.id, j.kind, j.attempts, j.releases, j.max_attempts, j.event_id, j.payload,
              CASE WHEN j.kind = 'task' THEN j.result END AS result, j.queue
)
SELECT c.id, c.kind, c.attempts, c.releases, c.max_attempts, c.payload, c.result, c.event_id,
       (SELECT last_value FROM automate_config_generation) AS generation, c.queue,
       CASE WHEN c.kind = 'event' THEN automate_history_id('automate_run_id_seq') END AS run_id
FROM claimed AS c
ORDER BY c.id
"""

# The events of the jobs just claimed, by id, given as a constant array (an unnamed statement,
# planned with its values): the planner reads only the day partitions of automate_event those ids
# name, one primary-key lookup each. Read by the claim itself (a join, or a LATERAL lookup per
# job), every partition of the events would be planned at every claim, a cost that grows with the
# days retained, and a planner misjudging the partitions may hash all of them (a test reads the
# plan). Events are never updated, and a job names its event until it is settled, so reading them
# after the claim has committed reads what the claim would have.
CLAIMED_EVENTS: LiteralString = """
SELECT id, source, event_type, payload, headers, trace_id, received_at
FROM automate_event WHERE id = ANY(%(ids)s::bigint[])
"""

# Every queue (a worker started without --queue).
CLAIM_BATCH: LiteralString = (
    """
WITH candidates AS (
    SELECT id FROM automate_outbox_job_live
    WHERE status IN ('ready', 'retry') AND available_at <= now()
    ORDER BY claim_rank, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED"""
    + _CLAIM_REST
)

# One queue, %(queue)s (a worker started with one --queue): one range of automate_outbox_by_queue.
# The queue is a range (BETWEEN q AND q, one value) and the order starts with it, so only that
# index gives the order: with "queue = q" the planner drops the constant queue from the order, and
# a generic plan (prepared statements), which does not know the queue, may then walk
# automate_outbox_claimable with a filter through every other queue's rows (a test checks it).
CLAIM_BATCH_QUEUE: LiteralString = (
    """
WITH candidates AS (
    SELECT id FROM automate_outbox_job_live
    WHERE queue BETWEEN %(queue)s AND %(queue)s AND status IN ('ready', 'retry') AND available_at <= now()
    ORDER BY queue, claim_rank, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED"""
    + _CLAIM_REST
)

# Several queues, %(queues)s: the first rows of each queue in claim order (one index range per
# queue), then the first %(limit)s of those. With several queues, the rows locked but not taken
# (at most (queues - 1) x limit) are free again when the statement commits.
CLAIM_BATCH_QUEUES: LiteralString = (
    """
WITH candidates AS (
    SELECT c.id FROM unnest(%(queues)s::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, claim_rank FROM automate_outbox_job_live
        WHERE queue BETWEEN q.name AND q.name AND status IN ('ready', 'retry') AND available_at <= now()
        ORDER BY queue, claim_rank, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.claim_rank, c.id
    LIMIT %(limit)s"""
    + _CLAIM_REST
)

# Today's claim before issue 13 (available_at order, no queues), kept for the drain benchmark's
# baseline (benchmarks/claim_order.py); the platform never runs it.
CLAIM_BATCH_FIFO: LiteralString = (
    """
WITH candidates AS (
    SELECT id FROM automate_outbox_job_live
    WHERE status IN ('ready', 'retry') AND available_at <= now()
    ORDER BY available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED"""
    + _CLAIM_REST
)

# How a settlement's ``result`` (Django tasks only; NULL for events) merges into the stored one:
# ``errors`` and ``worker_ids`` accumulate over attempts, other keys are replaced. {old} is the
# stored result, {new} the settlement's.
_MERGE: LiteralString = """
    CASE WHEN {new} IS NULL THEN {old} ELSE
        coalesce({old}, '{{}}'::jsonb) || {new} || jsonb_build_object(
            'errors', coalesce({old} -> 'errors', '[]'::jsonb)
                      || coalesce({new} -> 'errors', '[]'::jsonb),
            'worker_ids', coalesce({old} -> 'worker_ids', '[]'::jsonb)
                          || coalesce({new} -> 'worker_ids', '[]'::jsonb))
    END"""
_MERGE_RESULT: LiteralString = _MERGE.format(old="j.result", new="s.result")

# B. running -> completed, for a batch of claims held by %(owner)s: each job leaves the queue
# (automate_outbox_job_live) for the day of its completion (automate_outbox_job_done, partitioned
# by completed_at; history.settled), with its id, in one statement. A concurrent statement that
# waits for one of these rows (a heartbeat, the rescuer) finds it deleted and passes over it, as it
# passed over a row no longer running.
COMPLETE: LiteralString = (
    """
WITH s AS (
    DELETE FROM automate_outbox_job_live AS j
    USING unnest(%(ids)s::bigint[], %(attempts)s::int[], %(results)s::jsonb[]) AS s(id, attempts, result)
    WHERE j.id = s.id AND j.attempts = s.attempts AND j.status = 'running' AND j.lease_owner = %(owner)s
    RETURNING j.id, j.event_id, j.kind, j.attempts, j.releases, j.max_attempts, j.available_at,
              j.claim_rank, j.payload, j.result, j.replay_of_id, j.queue, j.priority, j.fair_key,
              j.created_at, s.result AS settlement
)
INSERT INTO automate_outbox_job_done
    (id, event_id, kind, status, attempts, releases, max_attempts, available_at, claim_rank,
     lease_owner, lease_expires_at, last_error, payload, result, replay_of_id, queue, priority,
     fair_key, created_at, updated_at, completed_at, settled)
SELECT id, event_id, kind, 'completed', attempts, releases, max_attempts, available_at, claim_rank,
       '', NULL, '', payload, """
    + _MERGE.format(old="s.result", new="s.settlement")
    + """,
       replay_of_id, queue, priority, fair_key, created_at, now(), now(), true
FROM s
RETURNING id
"""
)

# C, D. running -> retry (after its backoff delay) or dead, for a batch of claims held by %(owner)s.
# ``max_attempts`` takes the workflow's retry policy, so the rescuer applies it too.
FAIL: LiteralString = (
    """
UPDATE automate_outbox_job_live AS j
SET status = s.status,
    available_at = now() + make_interval(secs => s.delay),
    last_error = s.error,
    max_attempts = s.max_attempts,
    updated_at = now(), lease_owner = '', lease_expires_at = NULL,
    result = """
    + _MERGE_RESULT
    + """
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[], %(statuses)s::text[], %(delays)s::float8[],
            %(errors)s::text[], %(max_attempts)s::int[], %(results)s::jsonb[])
     AS s(id, attempts, status, delay, error, max_attempts, result)
WHERE j.id = s.id AND j.attempts = s.attempts AND j.status = 'running' AND j.lease_owner = %(owner)s
  AND s.status IN ('retry', 'dead')
RETURNING j.id
"""
)

# F. running -> ready (no delay) or retry (after a delay) without spending the attempt: graceful
# shutdown hands unfinished jobs back, a snooze puts a job back for later, and a job interrupted by
# a database outage goes back too. ``attempts`` keeps growing (the fencing token is never reused);
# ``releases`` records that this claim did not count.
RELEASE: LiteralString = """
UPDATE automate_outbox_job_live AS j
SET status = CASE WHEN s.delay > 0 THEN 'retry' ELSE 'ready' END,
    releases = j.releases + 1,
    available_at = now() + make_interval(secs => s.delay),
    updated_at = now(), lease_owner = '', lease_expires_at = NULL
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[], %(delays)s::float8[]) AS s(id, attempts, delay)
WHERE j.id = s.id AND j.attempts = s.attempts AND j.status = 'running' AND j.lease_owner = %(owner)s
RETURNING j.id
"""

# The heartbeat: extend the lease of claims this worker still holds; the ids not returned were
# taken from it (rescued after its lease expired), and it stops running them.
HEARTBEAT: LiteralString = """
UPDATE automate_outbox_job_live AS j
SET lease_expires_at = now() + make_interval(secs => %(lease)s)
FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]) AS s(id, attempts)
WHERE j.id = s.id AND j.attempts = s.attempts AND j.status = 'running' AND j.lease_owner = %(owner)s
RETURNING j.id
"""

# E. The rescuer: running jobs whose lease expired (worker killed, host gone, database unreachable
# from it for a whole lease) go to retry, or to dead when that claim spent their last attempt. The
# attempt counts, so a job that kills its worker every time ends dead instead of looping. Reads the
# partial index automate_outbox_leased (lease_expires_at IS NOT NULL: the running jobs); the UPDATE
# re-checks the expiry in case a heartbeat landed between the two. A task's result records the lost
# attempt like any other error.
RESCUE_EXPIRED: LiteralString = """
WITH expired AS (
    SELECT id FROM automate_outbox_job_live
    WHERE lease_expires_at < now() AND status = 'running'
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE automate_outbox_job_live AS j
SET status = CASE WHEN j.attempts - j.releases >= j.max_attempts THEN 'dead' ELSE 'retry' END,
    available_at = now(),
    last_error = 'LeaseExpired: the worker ' || j.lease_owner
                 || ' stopped renewing its lease (attempt ' || j.attempts || ')',
    result = CASE WHEN j.kind = 'task' THEN
        coalesce(j.result, '{}'::jsonb) || jsonb_build_object(
            'errors', coalesce(j.result -> 'errors', '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
                'exception_class_path', 'automate_core.exceptions.LeaseExpired',
                'traceback', 'LeaseExpired: the worker ' || j.lease_owner || ' stopped renewing its lease')),
            'worker_ids', coalesce(j.result -> 'worker_ids', '[]'::jsonb) || to_jsonb(j.lease_owner))
        ELSE j.result END,
    updated_at = now(), lease_owner = '', lease_expires_at = NULL
FROM expired
WHERE j.id = expired.id AND j.status = 'running' AND j.lease_expires_at < now()
RETURNING j.id, j.status
"""

GENERATION: LiteralString = "SELECT last_value FROM automate_config_generation"

# The claim order's two constants live in the database (the rank trigger reads them on every
# insert that needs it, whoever the writer); every worker writes its settings at start.
SET_TUNING: LiteralString = """
INSERT INTO automate_outbox_tuning (id, priority_aging, fairness_quantum)
VALUES (1, %(aging)s, %(quantum)s)
ON CONFLICT (id) DO UPDATE SET priority_aging = excluded.priority_aging,
                               fairness_quantum = excluded.fairness_quantum
WHERE (automate_outbox_tuning.priority_aging, automate_outbox_tuning.fairness_quantum)
      IS DISTINCT FROM (excluded.priority_aging, excluded.fairness_quantum)
"""

# G. Replay: each selected dead job becomes a new ready job linked to it by replay_of (on the same
# queue, with the same priority and fairness key, ranked as a new job), in one
# statement on the server however many match. {selection} is a subquery of job ids built by the
# ORM from the user's filter (its parameters are passed separately). The unique index
# automate_outbox_replayed_once makes a second replay of the same dead job (a concurrent one, or
# a repeated command) insert nothing. The insert fires the outbox NOTIFY, waking the workers.
REPLAY_DEAD = """
INSERT INTO automate_outbox_job_live
    (event_id, kind, status, attempts, releases, max_attempts, available_at, lease_owner,
     last_error, payload, replay_of_id, queue, priority, fair_key, created_at, updated_at)
SELECT d.event_id, d.kind, 'ready', 0, 0, d.max_attempts, now(), '', '', d.payload, d.id,
       d.queue, d.priority, d.fair_key, now(), now()
FROM automate_outbox_job_live AS d
WHERE d.status = 'dead' AND d.id IN ({selection})
  AND NOT EXISTS (SELECT 1 FROM automate_outbox_job_done AS r WHERE r.replay_of_id = d.id)
ORDER BY d.id
ON CONFLICT (replay_of_id) WHERE replay_of_id IS NOT NULL DO NOTHING
RETURNING id
"""

# Retention: completed jobs older than %(completed_age)s seconds and dead jobs older than
# %(dead_age)s (NULL keeps them), looking at %(scan)s rows after id %(after)s per statement, so
# each statement is short and a pass walks the table once, oldest first. Runs keep their history
# but lose the link to the pruned job (job_id NULL, what the model's SET_NULL means); a replay
# loses its link to a pruned dead job. The last column tells the pass it reached rows too young
# to prune, where it stops.
PRUNE_JOBS: LiteralString = """
WITH scanned AS (
    SELECT id, created_at FROM automate_outbox_job_live
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(scan)s
), doomed AS (
    SELECT j.id FROM automate_outbox_job_live AS j JOIN scanned USING (id)
    WHERE (j.status = 'completed' AND j.completed_at < now() - make_interval(secs => %(completed_age)s))
       OR (j.status = 'dead' AND j.updated_at < now() - make_interval(secs => %(dead_age)s))
    FOR UPDATE OF j SKIP LOCKED
), unlinked_runs AS (
    UPDATE automate_run SET job_id = NULL WHERE job_id IN (SELECT id FROM doomed)
), unlinked_replays AS (
    UPDATE automate_outbox_job SET replay_of_id = NULL
    WHERE replay_of_id IN (SELECT id FROM doomed) AND id NOT IN (SELECT id FROM doomed)
), pruned AS (
    DELETE FROM automate_outbox_job_live AS j USING doomed WHERE j.id = doomed.id RETURNING j.id
)
SELECT (SELECT count(*) FROM pruned), (SELECT max(id) FROM scanned),
       coalesce((SELECT bool_or(created_at >= now() - make_interval(secs => %(young)s)) FROM scanned), true)
"""

# Retention of a day of events (partitioned: history.partitions drops the day whole): first its
# events' settled jobs go, a batch at a time, the completed ones and the ones dead for longer
# than %(dead_age)s (NULL keeps dead jobs, and so their day). The ids in [%(lower)s, %(upper)s)
# are the day's events (their partition's bounds); the job table's event_id index finds them.
PRUNE_EVENT_DAY_JOBS: LiteralString = """
WITH doomed AS (
    SELECT id FROM automate_outbox_job
    WHERE event_id >= %(lower)s AND event_id < %(upper)s
      AND (status = 'completed'
           OR (status = 'dead' AND updated_at < now() - make_interval(secs => %(dead_age)s)))
    LIMIT %(scan)s
    FOR UPDATE SKIP LOCKED
), unlinked_runs AS (
    UPDATE automate_run SET job_id = NULL WHERE job_id IN (SELECT id FROM doomed)
), unlinked_replays AS (
    UPDATE automate_outbox_job SET replay_of_id = NULL
    WHERE replay_of_id IN (SELECT id FROM doomed) AND id NOT IN (SELECT id FROM doomed)
), pruned AS (
    DELETE FROM automate_outbox_job WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT count(*) FROM pruned
"""

# Retention of debounce windows and batches (execution.grouping): a group flushed more than
# %(age)s seconds ago goes with its member rows (its run went, or goes, with its event). A flushed
# group never changes again, so no lock is needed. Same keyset walk; a group created within
# %(age)s ends the walk (groups are created in id order).
PRUNE_GROUPS: LiteralString = """
WITH scanned AS (
    SELECT id, status, first_at, flushed_at FROM automate_event_group
    WHERE id > %(after)s
    ORDER BY id
    LIMIT %(scan)s
), doomed AS (
    SELECT id FROM scanned
    WHERE status = 'flushed' AND flushed_at < now() - make_interval(secs => %(age)s)
), members AS (
    DELETE FROM automate_event_group_member WHERE group_id IN (SELECT id FROM doomed)
), pruned AS (
    DELETE FROM automate_event_group WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT (SELECT count(*) FROM pruned), (SELECT max(id) FROM scanned),
       coalesce((SELECT bool_or(first_at >= now() - make_interval(secs => %(age)s)) FROM scanned), true)
"""

# A throttle's state row whose theoretical arrival time is an hour past is the same as no row (the
# next run of that key is due at once either way), so it goes: keys that come and go (a customer
# per key) do not pile up rows. A concurrent upsert of the key waits for the delete, then inserts.
PRUNE_THROTTLE_STATE: LiteralString = """
WITH doomed AS (
    SELECT id FROM automate_admission_state
    WHERE kind = 'throttle' AND at < now() - interval '1 hour'
    LIMIT %(scan)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM automate_admission_state WHERE id IN (SELECT id FROM doomed)
"""

# Retention passes run on one worker at a time (a session advisory lock; others skip the pass).
TRY_RETENTION_LOCK: LiteralString = "SELECT pg_try_advisory_lock(%(key)s)"
RETENTION_UNLOCK: LiteralString = "SELECT pg_advisory_unlock(%(key)s)"
