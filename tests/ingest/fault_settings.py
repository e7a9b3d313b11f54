"""Settings of the platform that test_faults.py starts: short waits, so faults show quickly."""

from __future__ import annotations

from asgi.settings import *  # noqa: F403

AUTOMATE_INGEST_DB_TIMEOUT = 1.0
AUTOMATE_SOURCE_CACHE_TTL = 0.5
AUTOMATE_INGEST_KEY_RELEASE_INTERVAL = 0.0
