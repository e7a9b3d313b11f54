"""A connector for the process tests of debounce and batching, and a hook that kills a worker
inside a group's transaction.

``record`` appends ``{"pid", "run", "event", "params"}`` to the file named by
``AUTOMATE_TEST_GROUP_LOG`` (``O_APPEND`` lines are atomic across processes); ``die_once`` kills
its worker with SIGKILL the first time any process calls it (the marker file
``AUTOMATE_TEST_DIE_MARKER`` is created with ``O_EXCL``: one process wins) and does nothing after.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any, ClassVar

import psycopg

from automate_connectors.adapters.base import ConnectorAdapter


def _append(line: dict[str, Any]) -> None:
    fd = os.open(os.environ["AUTOMATE_TEST_GROUP_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def _first(marker: str) -> bool:
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
    return True


class Probe(ConnectorAdapter):
    code = "gprobe"
    name = "Grouping probe"
    actions: ClassVar[tuple[str, ...]] = ("record", "die_once")

    async def execute(self, action: str, params: dict, context: dict) -> Any:
        if action == "die_once" and _first(os.environ["AUTOMATE_TEST_DIE_MARKER"]):
            os.kill(os.getpid(), signal.SIGKILL)
        line = {"pid": os.getpid(), "run": context["run_id"], "event": context["event_id"], "params": params}
        _append({"action": action, **line})
        return {"pid": os.getpid()}


def read(path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def install_kill(mark: str, marker: str) -> None:
    """SIGKILL the first process (across those sharing ``marker``) right after it sent a statement
    containing ``mark``: inside its transaction, before the COMMIT, holding the group's locks."""
    original = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, query, *args, **kwargs)
        text = query.decode() if isinstance(query, bytes) else str(query)
        if mark in text and _first(marker):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
