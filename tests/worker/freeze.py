"""A test hook for worker processes: freeze (SIGSTOP itself) right after the run-finishing statement.

Installed by ``proc_settings`` when ``AUTOMATE_TEST_FREEZE_MARKER`` names a file. Every psycopg
``execute`` of the process is wrapped; the first one (across all the processes sharing the marker)
that sent one of the run journal's run-ending statements (``FINISH_RUNS``; ``WHOLE_RUNS``, which
writes a short run whole at its end) creates the marker (``O_EXCL``: exactly one
process wins), writes its pid there and stops itself with ``SIGSTOP`` before doing anything else.

That is the earliest moment a worker can freeze once its run-finishing UPDATE has reached the
server: in pipeline mode ``execute`` returns as soon as the statement is sent, so a transaction
sent in pieces is frozen between that UPDATE and its COMMIT (holding the run's row lock), while a
transaction sent as one message has committed by then. The freeze is deterministic: it waits on
nothing and is not timed; the test waits for the stop with ``waitid(WSTOPPED)``.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import psycopg

#: Text only the run journal's run-ending statements contain: FINISH_RUNS, WHOLE_RUNS.
RUN_END_MARKS = ("UPDATE automate_run AS r", "lease was taken over while this run went on")


def install(marker: str) -> None:
    original = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, query, *args, **kwargs)
        text = query.decode() if isinstance(query, bytes) else str(query)
        if any(mark in text for mark in RUN_END_MARKS) and _claim(marker):
            os.kill(os.getpid(), signal.SIGSTOP)
        return result

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]


def _claim(marker: str) -> bool:
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
    return True
