"""Django settings of the benchmarked platform: the deployable project's, with variant switches.

``BENCH_GROUP_COMMIT=0`` writes one statement per webhook; ``BENCH_FAST_PATH=0`` sends webhooks
through Django's request handler and ``WebhookView`` instead of the lean lane; ``BENCH_NO_CACHE=1``
looks the source and its secrets up on every request.
"""

from __future__ import annotations

import os

from asgi.settings import *  # noqa: F403

AUTOMATE_INGEST_GROUP_COMMIT = os.environ.get("BENCH_GROUP_COMMIT", "1") == "1"
AUTOMATE_INGEST_FAST_PATH = os.environ.get("BENCH_FAST_PATH", "1") == "1"
AUTOMATE_INGEST_FLUSHERS = int(os.environ.get("BENCH_FLUSHERS", "2"))
AUTOMATE_INGEST_BATCH_SIZE = int(os.environ.get("BENCH_BATCH_SIZE", "256"))
AUTOMATE_INGEST_KEY_RELEASE_INTERVAL = 0.0
if os.environ.get("BENCH_NO_CACHE") == "1":  # look the source and its secrets up on every request
    AUTOMATE_SOURCE_CACHE_TTL = 0.0
    AUTOMATE_SECRETS_CACHE_TTL = 0.0
