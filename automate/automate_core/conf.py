"""Typed platform settings.

Every setting has a default here and can be overridden in Django settings as ``AUTOMATE_<NAME>``
(for example ``AUTOMATE_WORKER_CONCURRENCY = 64``). Only this module reads ``django.conf.settings``
for platform options; everything else receives them as arguments or through ``conf.settings``.
"""

from __future__ import annotations

import os
from typing import Any

from psycopg.conninfo import conninfo_to_dict


class Defaults:
    #: Jobs one worker process runs at the same time.
    WORKER_CONCURRENCY: int = 32
    #: Most jobs claimed in one statement (claims are also capped by free slots).
    WORKER_BATCH_SIZE: int = 50
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
    #: Retention, in seconds (None keeps forever): completed jobs; dead jobs; events, which are
    #: pruned with their runs once every job of theirs is settled and pruned and their newest run
    #: is older than this too.
    RETENTION_COMPLETED_JOBS: float | None = 86400.0
    RETENTION_DEAD_JOBS: float | None = 30 * 86400.0
    RETENTION_EVENTS: float | None = 30 * 86400.0
    #: Seconds between retention passes, and rows deleted per statement (small, to keep locks short).
    RETENTION_INTERVAL: float = 60.0
    RETENTION_BATCH_SIZE: int = 1000
    #: Attempts before a job is dead, unless the workflow says otherwise.
    MAX_ATTEMPTS: int = 5
    #: Exponential backoff: base * 2**(attempt-1) seconds, capped, with full jitter.
    RETRY_BASE_SECONDS: float = 2.0
    RETRY_MAX_SECONDS: float = 3600.0
    #: Seconds a step may run before it is timed out (per step override in the workflow).
    STEP_TIMEOUT_SECONDS: float = 60.0
    #: Threads for sync plugins (connectors, secrets backends, LLM providers).
    THREAD_POOL_SIZE: int = 16
    #: Secrets backends searched in order for an unqualified reference.
    SECRETS_BACKENDS: list[str] = ["env"]
    #: Seconds a resolved secret is cached in process.
    SECRETS_CACHE_TTL: float = 60.0
    #: Connections in each process's async psycopg pool.
    DB_POOL_MIN_SIZE: int = 1
    DB_POOL_MAX_SIZE: int = 16
    #: Largest webhook body accepted, in bytes.
    MAX_BODY_BYTES: int = 1024 * 1024
    #: Serve ``/hooks/`` in a lean ASGI lane in front of Django's request handler.
    INGEST_FAST_PATH: bool = True
    #: Seconds a webhook source's configuration is cached by the web process.
    SOURCE_CACHE_TTL: float = 5.0


class _Settings(Defaults):
    """Reads ``AUTOMATE_<NAME>`` from Django settings, falling back to :class:`Defaults`."""

    def __getattribute__(self, name: str) -> Any:
        if name.isupper():
            from django.conf import settings as django_settings

            default = getattr(Defaults, name)
            return getattr(django_settings, f"AUTOMATE_{name}", default)
        return super().__getattribute__(name)


settings = _Settings()


def env_bool(name: str, *, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


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
    params = conninfo_to_dict(url)
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
