"""A time limit for synchronous Python code that cannot be awaited or cancelled: template rendering.

A template renders on the event loop's thread, in one go. A template that loops for a long time
would block every other run of the process, and Python cannot cancel a running function from
outside. :func:`run_limited` registers a deadline for the calling thread; one watchdog thread per
process raises :class:`Overtime` in that thread (``PyThreadState_SetAsyncExc``, delivered at the
next bytecode boundary) when the deadline passes while the function still runs.

The watchdog fires at most once per call and only while the call is registered (both under one
lock), and a call that returns just as the watchdog fires waits for the exception before it
unregisters, so the exception never lands in unrelated code. Long computations inside C code
(a single huge ``str.replace``) are not interrupted; the sandbox refuses those by size instead.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Overtime(BaseException):
    """Raised into a thread whose limited call ran past its deadline."""


@dataclass(slots=True)
class _Entry:
    deadline: float
    fired: bool = False  # the watchdog raised Overtime into the thread
    delivered: bool = False  # ... and it arrived inside the limited call


_lock = threading.Lock()
_active: dict[int, _Entry] = {}
_watchdog: threading.Thread | None = None
TICK = 0.02


def _watch() -> None:
    while True:
        time.sleep(TICK)
        now = time.monotonic()
        with _lock:
            for thread_id, entry in _active.items():
                if not entry.fired and now >= entry.deadline:
                    entry.fired = True
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(thread_id), ctypes.py_object(Overtime)
                    )


def _start() -> None:
    global _watchdog
    with _lock:
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(target=_watch, name="automate-deadline", daemon=True)
            _watchdog.start()


def run_limited[T](seconds: float, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``, or :class:`Overtime` when it runs longer than ``seconds``."""
    thread_id = threading.get_ident()
    if thread_id in _active:  # nested: the outer call's deadline applies
        return func(*args)
    if _watchdog is None or not _watchdog.is_alive():
        _start()
    entry = _Entry(time.monotonic() + seconds)
    with _lock:  # the watchdog iterates over _active under the same lock
        _active[thread_id] = entry
    try:
        return func(*args)
    except Overtime:
        entry.delivered = True
        raise
    finally:
        _unregister(thread_id, entry)


def _unregister(thread_id: int, entry: _Entry) -> None:
    """Stop watching; if the watchdog fired but its exception has not arrived, take it here."""
    try:
        with _lock:  # from here on the watchdog cannot fire for this call
            _active.pop(thread_id, None)
            pending = entry.fired and not entry.delivered
        if pending:  # it fired as the call ended: the exception is on its way
            while True:
                time.sleep(0.0001)
    except Overtime:
        pass
