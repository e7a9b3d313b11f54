"""Settings of the worker processes the fault tests start: the project's, plus the probe plugin."""

from __future__ import annotations

from asgi.settings import *  # noqa: F403

AUTOMATE_PLUGINS = {"django_automate.connectors": {"probe": "tests.worker.probe:Probe"}}
AUTOMATE_RETRY_BASE_SECONDS = 0.05
AUTOMATE_RETRY_MAX_SECONDS = 0.2
AUTOMATE_RETENTION_INTERVAL = 3600.0
