"""Settings of the worker processes the fault tests start: the project's, plus the probe plugin."""

from __future__ import annotations

import os

from asgi.settings import *  # noqa: F403

AUTOMATE_PLUGINS = {"django_automate.connectors": {"probe": "tests.worker.probe:Probe"}}
AUTOMATE_RETRY_BASE_SECONDS = 0.05
AUTOMATE_RETRY_MAX_SECONDS = 0.2
AUTOMATE_RETENTION_INTERVAL = 3600.0

if _freeze_marker := os.environ.get("AUTOMATE_TEST_FREEZE_MARKER"):  # see tests/worker/freeze.py
    from tests.worker import freeze

    freeze.install(_freeze_marker)
