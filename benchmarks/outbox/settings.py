"""Settings of the benchmark's worker processes: the project's, plus the no-op connector.

Retention passes are off (the harness reads every completed job afterwards), logging is quiet.
``BENCH_DB_POOL_MAX_SIZE`` and ``BENCH_SETTLE_LINGER`` let the harness try other values.
"""

from __future__ import annotations

import os

from asgi.settings import *  # noqa: F403

AUTOMATE_PLUGINS = {"django_automate.connectors": {"noop": "benchmarks.outbox.noop:NoopConnector"}}
AUTOMATE_RETENTION_COMPLETED_JOBS = None
AUTOMATE_RETENTION_DEAD_JOBS = None
AUTOMATE_RETENTION_EVENTS = None
AUTOMATE_DB_POOL_MAX_SIZE = int(os.environ.get("BENCH_DB_POOL_MAX_SIZE", "16"))
AUTOMATE_SETTLE_LINGER = float(os.environ.get("BENCH_SETTLE_LINGER", "0.002"))
LOGGING["root"]["level"] = os.environ.get("LOG_LEVEL", "WARNING")  # noqa: F405
