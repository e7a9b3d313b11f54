"""A connector for the subprocess fault tests: it logs every call it starts and finishes.

Worker processes load it through ``AUTOMATE_PLUGINS`` (see ``proc_settings``); each call appends
``{"event", "attempt", "pid", "at", "phase"}`` lines to the file named by
``AUTOMATE_TEST_PROBE_LOG`` (``O_APPEND`` writes of one line are atomic across processes), so the
test can tell which process ran which attempt, and whether two ran the same job at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any, ClassVar

from automate_connectors.adapters.base import ConnectorAdapter


def _log(context: dict[str, Any], phase: str) -> None:
    line = {
        "event": context["event_id"],
        "attempt": context["attempt"],
        "pid": os.getpid(),
        "at": time.monotonic(),  # CLOCK_MONOTONIC: comparable across processes on one host
        "phase": phase,
    }
    fd = os.open(os.environ["AUTOMATE_TEST_PROBE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


class Probe(ConnectorAdapter):
    code = "probe"
    name = "Fault-test probe"
    actions: ClassVar[tuple[str, ...]] = ("work", "die")

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        _log(context, "start")
        if action == "die":  # a job that kills the worker running it, every time
            os.kill(os.getpid(), signal.SIGKILL)
        await asyncio.sleep(float(params.get("seconds", 0)))
        _log(context, "end")
        return {"pid": os.getpid()}


def read(path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
