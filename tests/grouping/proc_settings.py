"""Settings of the worker processes the debounce and batching process tests start."""

from __future__ import annotations

import os

from asgi.settings import *  # noqa: F403

AUTOMATE_PLUGINS = {"django_automate.connectors": {"gprobe": "tests.grouping.probe:Probe"}}
AUTOMATE_RETRY_BASE_SECONDS = 0.05
AUTOMATE_RETRY_MAX_SECONDS = 0.2
AUTOMATE_RETENTION_INTERVAL = 3600.0

if _kill_on := os.environ.get("AUTOMATE_TEST_KILL_ON"):
    from tests.grouping import probe

    probe.install_kill(_kill_on, os.environ["AUTOMATE_TEST_KILL_MARKER"])
