"""The platform's Prometheus metrics, defined in one place.

Each stage increments these at its own instrumentation points; ``/metrics`` exposes them (in
multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set, so every uvicorn and worker process
is counted). Label values are bounded sets (source slugs, reason codes, workflow names, connector
codes), never ids.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- ingest ---------------------------------------------------------------------------------
webhooks_accepted = Counter(
    "automate_webhooks_accepted_total", "Webhooks stored and answered 202.", ["source"]
)
webhooks_duplicate = Counter(
    "automate_webhooks_duplicate_total", "Redeliveries recognised and answered 200.", ["source"]
)
webhooks_rejected = Counter(
    "automate_webhooks_rejected_total",
    "Webhooks refused, by reason code (signature_mismatch, unavailable, ...).",
    ["source", "reason"],
)
http_request_timeouts = Counter(
    "automate_http_request_timeouts_total",
    "Requests cut off because their headers or body did not arrive in time (ingest/deadlines.py).",
    ["phase"],
)
login_refusals = Counter(
    "automate_admin_login_throttled_total", "Admin login attempts refused by the failure limit."
)
ingest_latency = Histogram(
    "automate_ingest_latency_seconds",
    "Time from the request's arrival to its answer, for accepted webhooks.",
    buckets=LATENCY_BUCKETS,
)

# --- outbox and worker ------------------------------------------------------------------------
jobs_claimed = Counter("automate_jobs_claimed_total", "Jobs claimed by workers.")
jobs_completed = Counter("automate_jobs_completed_total", "Jobs completed.")
jobs_retried = Counter("automate_jobs_retried_total", "Job attempts that failed and were rescheduled.")
jobs_dead = Counter("automate_jobs_dead_total", "Jobs that ended dead.")
jobs_rescued = Counter("automate_jobs_rescued_total", "Jobs whose lease expired and were rescued.")
jobs_released = Counter(
    "automate_jobs_released_total", "Claims handed back unspent (shutdown, snooze, database outage)."
)
jobs_replayed = Counter("automate_jobs_replayed_total", "Dead jobs replayed as new jobs.")
leases_lost = Counter(
    "automate_leases_lost_total", "Claims a worker found taken over (its lease had expired)."
)
claim_batch_size = Histogram(
    "automate_claim_batch_size", "Jobs per claim statement.", buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500)
)
settle_batch_size = Histogram(
    "automate_settle_batch_size",
    "Jobs settled per flush of the batched completer.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
settle_duration = Histogram(
    "automate_settle_duration_seconds", "Time to write one batch of settlements.", buckets=LATENCY_BUCKETS
)
retention_pruned = Counter(
    "automate_retention_pruned_total",
    "Rows pruned by retention, by kind (jobs, events, event_groups).",
    ["kind"],
)
jobs_running = Gauge(
    "automate_jobs_running", "Jobs running in this worker process.", multiprocess_mode="livesum"
)

# --- runs and steps ----------------------------------------------------------------------------
runs_finished = Counter("automate_runs_total", "Workflow runs finished, by outcome.", ["workflow", "status"])
run_duration = Histogram(
    "automate_run_duration_seconds", "Workflow run duration.", ["workflow"], buckets=LATENCY_BUCKETS
)
steps_finished = Counter(
    "automate_steps_total", "Steps finished, by connector and outcome.", ["connector", "status"]
)
step_duration = Histogram(
    "automate_step_duration_seconds", "Step duration.", ["connector"], buckets=LATENCY_BUCKETS
)

# --- plugins ---------------------------------------------------------------------------------
llm_tokens = Counter(
    "automate_llm_tokens_total",
    "LLM tokens used, by provider and kind (input/output).",
    ["provider", "kind"],
)
offload_busy = Gauge(
    "automate_offload_threads_busy",
    "Sync plugin calls running in the thread pool.",
    multiprocess_mode="livesum",
)
offload_limit = Gauge(
    "automate_offload_threads_limit",
    "Threads available to sync plugin calls (AUTOMATE_THREAD_POOL_SIZE, summed over processes).",
    multiprocess_mode="livesum",
)
offload_waiting = Gauge(
    "automate_offload_calls_waiting",
    "Sync plugin calls waiting for a free thread (sampled by the loop monitor).",
    multiprocess_mode="livesum",
)

# --- process health ---------------------------------------------------------------------------
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
event_loop_lag = Histogram(
    "automate_event_loop_lag_seconds",
    "How late the loop monitor's timer fired: time the event loop was blocked.",
    buckets=LAG_BUCKETS,
)
event_loop_lag_last = Gauge(
    "automate_event_loop_lag_last_seconds",
    "The lag the monitor measured last; over live processes, the worst one.",
    multiprocess_mode="livemax",
)
db_pool_connections = Gauge(
    "automate_db_pool_connections",
    "Connections of the async psycopg pools, by state (in_use, idle), summed over processes.",
    ["state"],
    multiprocess_mode="livesum",
)
db_pool_waiting = Gauge(
    "automate_db_pool_requests_waiting",
    "Tasks waiting for a connection from the async psycopg pools.",
    multiprocess_mode="livesum",
)


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: MetricWrapperBase, *values: str) -> Any:
    """``metric.labels(*values)``, kept: the hot path (a step, a run) asks for the same few
    children every time, and ``labels()`` validates and locks on every call. Label values are
    bounded sets (workflow names, connector codes, statuses), and so is this."""
    key = (id(metric), values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found
