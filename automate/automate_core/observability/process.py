"""Per-process observability lifecycle: what a web or worker process starts and cleans up.

* Web: :func:`web_startup` / :func:`web_shutdown`, called by the ASGI lifespan of
  ``automate_core.asgi``: the startup heap frozen (``automate_core.heap``), the loop monitor, and
  the process's live gauges marked dead on exit.
* Worker: ``observer = await start_worker_observability(port)`` once the worker's loop runs and
  ``await observer.stop()`` at the end: the loop monitor and, when a port is given (or
  ``AUTOMATE_WORKER_METRICS_PORT`` is set), ``/healthz``, ``/readyz`` and ``/metrics`` on that port.

In multiprocess mode a process must remove its live-gauge files when it exits, or its last
values (jobs running, threads busy) would be summed forever; :func:`mark_dead` does that, from the
shutdown path and from ``atexit`` (and the scrape drops files of pids that vanished without it).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import socket
from collections.abc import Iterator

from automate_core import heap
from automate_core.conf import settings
from automate_core.observability import exposition
from automate_core.observability.loop import start_loop_monitor, stop_loop_monitor

logger = logging.getLogger("automate.observability")

_atexit_registered = False


def mark_dead() -> None:
    """Remove this process's live-gauge files from the metrics directory (idempotent)."""
    path = exposition.multiprocess_dir()
    if path and os.path.isdir(path):
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(mark_dead)
        _atexit_registered = True


def web_startup() -> None:
    heap.freeze_startup()
    start_loop_monitor()
    _register_atexit()


async def web_shutdown() -> None:
    await stop_loop_monitor()
    mark_dead()


class WorkerObserver:
    """What :func:`start_worker_observability` started; :meth:`stop` undoes it."""

    def __init__(
        self, server: object | None = None, task: asyncio.Task[None] | None = None, port: int | None = None
    ) -> None:
        self.server = server
        self.task = task
        self._port = port

    @property
    def port(self) -> int | None:
        """The port the ops server listens on (useful with an ephemeral port)."""
        return self._port

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True  # type: ignore[attr-defined]
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await stop_loop_monitor()
        mark_dead()


async def start_worker_observability(port: int | None = None, host: str | None = None) -> WorkerObserver:
    """Start the loop monitor and, with a port, the worker's ops server (``/metrics`` etc.).

    ``port`` defaults to ``AUTOMATE_WORKER_METRICS_PORT`` (0 or unset: no server); ``host`` to
    ``AUTOMATE_WORKER_METRICS_HOST`` (loopback). Pass ``port=-1`` for an ephemeral port.
    """
    start_loop_monitor()
    _register_atexit()
    if port is None:
        port = int(settings.WORKER_METRICS_PORT or 0)
    if port == 0:
        return WorkerObserver()
    import uvicorn

    from automate_core.observability.endpoints import OpsApplication

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the worker owns SIGTERM/SIGINT
            yield

    host = host or str(settings.WORKER_METRICS_HOST)
    # Bind here rather than in uvicorn, which exits the process when a port is taken: a worker
    # whose metrics port is busy still works, and says so.
    try:
        sock = socket.create_server((host, max(port, 0)), family=_family(host), backlog=64)
    except OSError as exc:
        logger.error("worker metrics server: cannot listen on %s:%d: %s", host, port, exc)
        return WorkerObserver()
    config = uvicorn.Config(
        OpsApplication(),
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        limit_concurrency=16,
    )
    server = _Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name="automate-ops-server")
    observer = WorkerObserver(server, task, int(sock.getsockname()[1]))
    logger.info("worker /healthz, /readyz and /metrics on %s:%s", host, sock.getsockname()[1])
    return observer


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
