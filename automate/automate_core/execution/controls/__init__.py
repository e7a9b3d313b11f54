"""Admission controls of a workflow: what happens to a matched event *before* its run starts.

One module per control, each enforced by PostgreSQL state that every worker shares:

* ``rate_limit``: at most N runs per period per key; the rest are recorded as ``skipped`` runs
  with the reason (a fixed window per key, one upsert);
* ``throttle``: at most N runs start per period per key; the rest are delayed, never dropped
  (GCRA: the key's theoretical arrival time is one row, advanced in the same transaction that
  queues the delayed run as a run job available at its turn, so a waiting run holds no worker);
* ``singleton``: one run at a time per key; a newer event waits (``queue``), is skipped
  (``skip``) or cancels the run in progress (``cancel``); the lock is a concurrency slot, tied
  to its holder's claim, so a killed worker's lock frees itself when its lease expires;
* ``handoff``: ``queue``, ``priority`` and ``fairness`` hand the run off to a run job on that
  queue, with that priority and fair key.

``gate.Gate`` applies them in that order; the engine calls it only for workflows that set one
(``WorkflowSpec.admission``), so a plain workflow keeps its inline path with no extra query.
``load`` validates the keys on load, ``load.SCHEMA`` is their part of ``automate schema``.
"""
