"""Typed platform settings.

Every setting has a default here and can be overridden in Django settings as ``AUTOMATE_<NAME>``
(for example ``AUTOMATE_WORKER_CONCURRENCY = 64``), or, in the deployable project (``asgi/``), by
an environment variable of the same name (``AUTOMATE_WORKER_CONCURRENCY=64``; lists are
comma-separated or JSON, mappings JSON, booleans 1/true/yes/on or 0/false/no/off, an optional
value ``null`` for None; see :mod:`automate_core.conftypes`). Every value is checked against its
declared type: a variable that does not convert stops the process at start with its name
(:func:`settings_from_environ`), and the system check ``automate.E010`` (run by ``automate serve``,
``worker`` and ``up``) checks the values set in Django settings. Only this module reads
``django.conf.settings`` for platform options; everything else receives them as arguments or
through ``conf.settings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, get_type_hints

from django.core.signals import setting_changed
from psycopg.conninfo import conninfo_to_dict

from automate_core.conftypes import check_value, describe, parse, parse_bool, unquoted


class Defaults:
    #: Jobs one worker process runs at the same time. Most of a job's time is spent waiting (its
    #: run records' commits, the connector's network), so a worker keeps many in flight: at 32 one
    #: worker beside one web process fell behind 2,000 webhooks/s on two cores, at 128 it keeps up
    #: (docs/benchmarks.md, "End to end"). Sync plugins still share AUTOMATE_THREAD_POOL_SIZE
    #: threads, and a workflow's ``concurrency`` limit bounds what a downstream API sees.
    WORKER_CONCURRENCY: int = 128
    #: Most jobs claimed in one statement (claims are also capped by free slots).
    WORKER_BATCH_SIZE: int = 50
    #: Queues an ``automate worker`` claims from (``--queue`` overrides); empty: every queue.
    WORKER_QUEUES: list[str] = []
    #: Priority aging, in seconds per priority point: a job is never overtaken by one that became
    #: available more than (its priority - ours) x this many seconds after it (docs/architecture.md,
    #: "Claim order"). 0 ignores priority (FIFO); the longer, the closer to strict priority. Stored in the
    #: database (automate_outbox_tuning) by every worker at start: set the same value everywhere.
    PRIORITY_AGING: float = 1.0
    #: Fairness per key, in seconds per job: each claimable job of a fair key (same queue and
    #: priority) ranks this much after the key's previous one, so a flooding key's backlog is
    #: spread out and other keys' jobs land among its first ones. Fairness holds while the
    #: workers finish at least (flooding keys) / quantum jobs a second. Stored like PRIORITY_AGING.
    FAIRNESS_QUANTUM: float = 0.01
    #: Seconds a claim is valid without a heartbeat (renewed every third of it while the job runs).
    LEASE_SECONDS: float = 15.0
    #: Seconds between rescues of expired leases (jittered); a job whose worker died is back in the
    #: queue at most LEASE_SECONDS + RESCUE_INTERVAL after the last heartbeat.
    RESCUE_INTERVAL: float = 5.0
    #: Seconds between polls when no NOTIFY arrives (jittered by up to 10%).
    POLL_INTERVAL: float = 1.0
    #: Seconds a stopping worker lets running jobs finish before it hands them back.
    SHUTDOWN_TIMEOUT: float = 30.0
    #: Seconds a finished job waits for others to share its completion's commit (0: flush at once;
    #: completions that arrive while a flush is in flight always share the next one).
    SETTLE_LINGER: float = 0.002
    #: Run-record flushes one worker process keeps in flight at once: the run journal's writes
    #: (run started, step recorded, run ended) of concurrent jobs share transactions.
    JOURNAL_FLUSHERS: int = 2
    #: Seconds a plain run (a list of actions) may go before its start is written. One that ends
    #: sooner is written once, whole, at its end: one insert instead of an insert, an update and
    #: their two commits (execution.late_start). A longer one is written ``running`` then, and is
    #: seen and can be cancelled from then on. 0 writes every run's start before its first step.
    RUN_START_DELAY: float = 0.2
    #: Retention, in seconds (None keeps forever): completed jobs; dead jobs; events and their runs:
    #: a day of runs and steps is dropped once it is all older than this (none of its runs
    #: pending), and an event once every job of theirs is settled and pruned and no run is left.
    RETENTION_COMPLETED_JOBS: float | None = 86400.0
    RETENTION_DEAD_JOBS: float | None = 30 * 86400.0
    RETENTION_EVENTS: float | None = 30 * 86400.0
    #: Seconds between retention passes, and rows deleted per statement (small, to keep locks short).
    RETENTION_INTERVAL: float = 60.0
    #: Days of run-record partitions kept made ahead of today (automate_core.history): how long
    #: every worker may be stopped before the console's manual runs and replays cannot be written.
    HISTORY_PARTITIONS_AHEAD: int = 7
    RETENTION_BATCH_SIZE: int = 1000
    #: Attempts before a job is dead, unless the workflow says otherwise.
    MAX_ATTEMPTS: int = 5
    #: Exponential backoff: base * 2**(attempt-1) seconds, capped, with full jitter.
    RETRY_BASE_SECONDS: float = 2.0
    RETRY_MAX_SECONDS: float = 3600.0
    #: Seconds a step may run before it is timed out (per step override in the workflow).
    STEP_TIMEOUT_SECONDS: float = 60.0
    #: Plugins chosen or added by settings, ahead of entry points:
    #: ``{"django_automate.connectors": {"my_erp": "my_app.adapters:MyERPAdapter"}}``.
    PLUGINS: dict[str, dict[str, str]] = {}
    #: Seconds a template (step parameters, a condition) may take to render.
    TEMPLATE_TIMEOUT_SECONDS: float = 2.0
    #: Longest string a template may produce, in characters.
    TEMPLATE_MAX_OUTPUT: int = 1024 * 1024
    #: Largest step output accepted (its JSON, in bytes); a larger one fails the step.
    STEP_OUTPUT_MAX_BYTES: int = 1024 * 1024
    #: Durable flow (docs/workflows.md): most items one ``for_each`` step takes (more fail the
    #: step), most branches of one ``parallel`` step, deepest nesting of ``switch``/``for_each``/
    #: ``parallel`` steps inside one another, and longest chain of ``call`` steps.
    FLOW_MAX_ITEMS: int = 1000
    FLOW_MAX_BRANCHES: int = 20
    FLOW_MAX_DEPTH: int = 4
    FLOW_MAX_CALL_DEPTH: int = 8
    #: The platform's public address, for links sent to people (approval links).
    PUBLIC_URL: str = "http://127.0.0.1:8000"
    #: Seconds a job waits before it tries again when a workflow's concurrency limit is full.
    CONCURRENCY_SNOOZE_SECONDS: float = 1.0
    #: Workers fire due cron schedules (``automate worker``, ``automate up``).
    SCHEDULER_ENABLED: bool = True
    #: Seconds between two looks at the schedules table.
    SCHEDULER_INTERVAL: float = 1.0
    #: Threads for sync plugins (connectors, secrets backends, LLM providers).
    THREAD_POOL_SIZE: int = 16
    #: Web and worker processes freeze the objects alive once they have started out of the cyclic
    #: garbage collector's walks (``gc.freeze()``; automate_core.heap): full collections stop
    #: pausing the event loop for Django's own objects (the webhook lane's p99 at 64 connections:
    #: 39 ms with False, 17 ms with True). False leaves the collector as Python sets it.
    GC_FREEZE: bool = True
    #: Secrets backends searched in order for an unqualified reference: ``{NAME: {"BACKEND": code,
    #: "OPTIONS": {...}}}`` (a reference ``NAME:key`` asks one; two Vaults are two names with
    #: ``"BACKEND": "vault"``). The old form, a list of codes (``["env", "db"]``), still works
    #: (deprecated: automate.W010). See automate_governance.secrets.config.
    SECRETS_BACKENDS: dict[str, dict[str, Any]] | list[str] = {"env": {"BACKEND": "env"}}
    #: Seconds a resolved secret is cached in process.
    SECRETS_CACHE_TTL: float = 60.0
    #: ``db`` secrets backend: base64 AES-256 keys; the first encrypts, all decrypt (rotation).
    #: Make one with ``automate secrets genkey``.
    SECRETS_ENCRYPTION_KEYS: list[str] = []
    #: ``file`` secrets backend: the directory of secret files (Docker and Kubernetes mounts).
    SECRETS_FILE_DIR: str = "/run/secrets"
    #: ``vault`` secrets backend: ``url``, ``mount`` (default "secret"), ``auth`` ("token" or
    #: "approle"), ``token`` / ``role_id``, ``secret_id``, ``namespace``, ``timeout``. Unset keys
    #: fall back to VAULT_ADDR, VAULT_TOKEN, VAULT_ROLE_ID, VAULT_SECRET_ID, VAULT_NAMESPACE.
    VAULT: dict[str, Any] = {}
    #: Hosts (names, ``*.wildcards``, addresses or networks; ``:port`` or ``:*``, else 80/443 only)
    #: connectors may call although private.
    HTTP_ALLOWED_HOSTS: list[str] = []
    #: SSRF protection of the http, slack and webhook connectors (metadata stays refused if off).
    HTTP_SSRF_PROTECTION: bool = True
    #: Slack Web API base URL (``chat.postMessage``).
    SLACK_API_URL: str = "https://slack.com/api"
    #: LLM providers' settings by code: ``{"openai": {"base_url": ..., "api_key": ..., "model": ...}}``.
    LLM_PROVIDERS: dict[str, dict[str, Any]] = {}
    #: Output tokens reserved (and asked for as ``max_tokens``) when a step gives no ``max_tokens``.
    LLM_DEFAULT_MAX_TOKENS: int = 1024
    #: Token budgets: ``{"global": N, "workflow": N, "run": N, "workflows": {name: N},
    #: "period": "month"|"day"|"total"}``; a missing limit is unlimited.
    LLM_BUDGETS: dict[str, Any] = {}
    #: Seconds after which a token reservation whose call never settled (its worker died mid-call)
    #: is charged its estimate and closed; workers check every RETENTION_INTERVAL.
    LLM_STALE_RESERVATION_SECONDS: float = 3600.0
    #: Connections in each process's async psycopg pool.
    DB_POOL_MIN_SIZE: int = 1
    DB_POOL_MAX_SIZE: int = 16
    #: Seconds a lost pool connection is retried (after 1 s, then at the end) before its slot is
    #: given up; the next request that needs one then connects at once. psycopg_pool's own default
    #: (60) doubles the wait between tries, so a process came back up to an outage's length again
    #: after its database did; with 2 it serves again about a second after the database returns.
    DB_RECONNECT_TIMEOUT: float = 2.0
    #: Seconds a platform connection may sit idle inside a transaction before PostgreSQL ends it
    #: (its process froze or was cut off: its locks are freed). Keep it below LEASE_SECONDS; 0: off.
    DB_IDLE_IN_TRANSACTION_TIMEOUT: float = 5.0
    #: Seconds of silence before TCP keepalives probe a platform connection, at both ends (three
    #: probes, half this apart; unacknowledged data times out alike): a peer cut off is dropped
    #: after about 2.5x this. 0 leaves the system's defaults (hours).
    DB_TCP_KEEPALIVE: float = 5.0
    #: Seconds a takeover (a new claim closing the run its earlier claim left running) waits for
    #: that run's row lock; past it the job is handed back to try again later (attempt not spent).
    DB_TAKEOVER_LOCK_TIMEOUT: float = 2.0
    #: A pooler in transaction mode (PgBouncer ``pool_mode = transaction``) is in front of
    #: DATABASE_URL: no server-side prepared statements or cursors, no session state on pooled
    #: connections (docs/operations.md, "Scaling past one machine").
    DB_TRANSACTION_POOLING: bool = False
    #: A direct connection (not through a transaction pooler) for LISTEN and session advisory
    #: locks, as a postgresql:// URL. Empty: DATABASE_URL, unless DB_TRANSACTION_POOLING is on,
    #: in which case workers poll (every POLL_INTERVAL) instead of listening.
    LISTEN_DATABASE_URL: str = ""
    #: Seconds a replica (``DATABASES["replica"]``) may lag behind before reads go to the primary,
    #: and seconds its lag is cached between looks.
    REPLICA_MAX_LAG_SECONDS: float = 30.0
    REPLICA_CHECK_INTERVAL: float = 5.0
    #: Largest webhook body accepted, in bytes.
    MAX_BODY_BYTES: int = 1024 * 1024
    #: Serve ``/hooks/`` in a lean ASGI lane in front of Django's request handler.
    INGEST_FAST_PATH: bool = True
    #: Seconds a webhook source's configuration is cached by the web process.
    SOURCE_CACHE_TTL: float = 5.0
    #: The web's ``/metrics`` answers clients from these addresses or networks (none unless set:
    #: a same-host proxy makes everyone look like loopback)...
    METRICS_ALLOWED_IPS: list[str] = []
    #: ...a worker's own ``/metrics`` port, these (loopback: that port is not published)...
    WORKER_METRICS_ALLOWED_IPS: list[str] = ["127.0.0.1", "::1"]
    #: ...and any client that sends ``Authorization: Bearer <METRICS_TOKEN>`` (when set).
    METRICS_TOKEN: str = ""
    #: Seconds the database gauges of ``/metrics`` (outbox depth, ...) are reused between scrapes.
    METRICS_DB_CACHE_SECONDS: float = 5.0
    #: Seconds ``/readyz`` waits for the database before answering 503.
    READY_TIMEOUT_SECONDS: float = 2.0
    #: Port of the worker's own ``/healthz``, ``/readyz`` and ``/metrics`` (0: none).
    WORKER_METRICS_PORT: int = 0
    WORKER_METRICS_HOST: str = "127.0.0.1"
    #: Seconds a signed timestamp may differ from the receiver's clock, both directions.
    INGEST_TIMESTAMP_TOLERANCE: float = 300.0
    #: Seconds an idempotency key is held (redeliveries within it answer 200); at least 3 days.
    INGEST_DEDUPE_WINDOW: float = 7 * 24 * 3600.0
    #: Seconds between passes that release idempotency keys older than their source's window.
    INGEST_KEY_RELEASE_INTERVAL: float = 600.0
    #: Webhook requests in flight per web process, in total and per source; beyond: 429.
    INGEST_MAX_IN_FLIGHT: int = 1024
    INGEST_MAX_IN_FLIGHT_PER_SOURCE: int = 512
    #: Seconds ingest waits for the database (a pooled connection, the insert) before a 503.
    INGEST_DB_TIMEOUT: float = 2.0
    #: Retry-After (seconds) sent with 503 (database unavailable) and 429 (too many in flight).
    INGEST_RETRY_AFTER: int = 5
    INGEST_RETRY_AFTER_BUSY: int = 1
    #: Group commit: concurrent webhooks share one multi-row statement (one commit); each is
    #: answered after that commit. Up to INGEST_BATCH_SIZE rows per statement, INGEST_FLUSHERS
    #: statements at once per process.
    INGEST_GROUP_COMMIT: bool = True
    INGEST_BATCH_SIZE: int = 256
    INGEST_FLUSHERS: int = 2
    #: Webhook requests per web process still being read or verified (before admission counts them
    #: against INGEST_MAX_IN_FLIGHT and their source); beyond: 429. Bounds the bodies held in memory.
    INGEST_MAX_UNVERIFIED: int = 1024
    #: Seconds a request's headers, and then its body, may take to arrive (``automate serve``); past
    #: either the client gets 408 and the connection is closed (automate_core/ingest/deadlines.py).
    HTTP_HEADER_TIMEOUT: float = 10.0
    HTTP_BODY_TIMEOUT: float = 30.0
    #: Admin logins: after this many failed attempts for one username from one address within
    #: LOGIN_FAILURE_WINDOW seconds, further attempts are refused until the window has passed.
    LOGIN_MAX_FAILURES: int = 5
    LOGIN_FAILURE_WINDOW: float = 900.0
    #: HTTP API (``/api/v1/``, docs/api.md): requests per minute per token unless the token sets
    #: its own (0: unlimited); largest request body in bytes; most events in one batch; most
    #: items in one page.
    API_RATE_LIMIT: int = 600
    API_MAX_BODY_BYTES: int = 1024 * 1024
    API_BATCH_MAX: int = 500
    API_PAGE_MAX: int = 200


_cache: dict[str, Any] = {}


class _Settings(Defaults):
    """Reads ``AUTOMATE_<NAME>`` from Django settings, falling back to :class:`Defaults`.

    Values are cached (the hot paths read settings per job and per step; a setting the project
    does not set cost an AttributeError each time) and the cache is cleared whenever Django
    reports a changed setting (``override_settings``, the tests' ``settings`` fixture)."""

    def __getattribute__(self, name: str) -> Any:
        if name.isupper():
            try:
                return _cache[name]
            except KeyError:
                pass
            from django.conf import settings as django_settings

            value = _cache[name] = getattr(django_settings, f"AUTOMATE_{name}", getattr(Defaults, name))
            return value
        return super().__getattribute__(name)


def _clear_cache(**_: Any) -> None:
    _cache.clear()


setting_changed.connect(_clear_cache)

settings = _Settings()


#: settings that may hold credentials: a message about a bad value never quotes it
SENSITIVE = frozenset(
    {"METRICS_TOKEN", "SECRETS_ENCRYPTION_KEYS", "VAULT", "LLM_PROVIDERS", "SECRETS_BACKENDS"}
)


def settings_from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"AUTOMATE_<NAME>": value}`` for every ``AUTOMATE_<NAME>`` environment variable naming a
    platform setting, converted to the setting's type. A value that does not convert is refused
    with the variable's name, so a typo in a deployment fails at start, not at 3 a.m."""
    environ = os.environ if environ is None else environ
    kinds = get_type_hints(Defaults)
    found = {}
    for name, kind in kinds.items():
        raw = environ.get(f"AUTOMATE_{name}")
        if raw is None or raw == "":
            continue
        try:
            found[f"AUTOMATE_{name}"] = parse(name, raw, kind)
        except ValueError as exc:
            from django.core.exceptions import ImproperlyConfigured

            takes = "" if str(exc).startswith("expected") else f" (AUTOMATE_{name} takes {describe(kind)})"
            shown, problem = f"AUTOMATE_{name}={raw!r}", str(exc)
            if name in SENSITIVE:  # the value may be a credential: never in a message
                shown, problem = f"AUTOMATE_{name} (value not shown)", unquoted(problem)
            raise ImproperlyConfigured(
                f"Environment variable {shown} is not valid: {problem}{takes}."
            ) from None
    return found


def setting_problems() -> list[tuple[str, str]]:
    """``(setting, problem)`` for every ``AUTOMATE_<NAME>`` Django setting not of its declared type."""
    from django.conf import settings as django_settings

    problems = []
    for name, kind in get_type_hints(Defaults).items():
        if not hasattr(django_settings, f"AUTOMATE_{name}"):
            continue
        problem = check_value(getattr(django_settings, f"AUTOMATE_{name}"), kind)
        if problem and name in SENSITIVE:
            problem = unquoted(problem)
        if problem:
            problems.append((f"AUTOMATE_{name}", f"{problem} (it takes {describe(kind)})"))
    return problems


def env_bool(name: str, *, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return parse_bool(value)
    except ValueError:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is not valid: expected 1/true/yes/on or 0/false/no/off."
        ) from None


def env_int(name: str, *, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return parse(name, value, int)  # type: ignore[no-any-return]
    except ValueError:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is not valid: expected a whole number of at least 0."
        ) from None


def env_list(name: str, *, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, Any]:
    """Django ``DATABASES`` entry for a ``postgresql://`` URL (libpq URI syntax).

    An empty URL gives a configuration that fails on first use with a message saying what to do,
    so that commands that need no database (``--help``, ``check``) still work.
    """
    if not url:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "",
            "OPTIONS": {},
            "TEST": {},
        }
    if not url.startswith(("postgres://", "postgresql://")):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgresql:// URL; got one starting with {url.split(':', 1)[0]!r}."
        )
    try:
        params = conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError; its text may quote the URL (and a password)
        from django.core.exceptions import ImproperlyConfigured

        reason = str(exc).replace(url, "<the URL>").strip().splitlines()[0] if str(exc).strip() else ""
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid PostgreSQL URL: {reason}") from None
    options = {k: v for k, v in params.items() if k not in {"dbname", "user", "password", "host", "port"}}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.get("dbname", ""),
        "USER": params.get("user", ""),
        "PASSWORD": params.get("password", ""),
        "HOST": params.get("host", ""),
        "PORT": str(params.get("port", "")),
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
    }
