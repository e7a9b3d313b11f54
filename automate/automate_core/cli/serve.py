"""``automate serve``: the web platform (webhooks, admin, /healthz, /readyz, /metrics) under uvicorn.

The defaults are the production configuration (docs/operations.md explains each choice): uvloop
and httptools (with the header and body read deadlines of ``automate_core.ingest.deadlines``: a
slow sender is cut off with 408), no ``Server`` header, proxy headers trusted only from
``--forwarded-allow-ips``, keep-alive and graceful-shutdown timeouts, a listen backlog, and an
optional cap on concurrent connections per process (beyond it uvicorn answers 503 at once
instead of queueing in memory).
Logging is the project's ``LOGGING`` (JSON lines), handed to uvicorn so its own lines match.

With ``--workers`` above 1 the processes share a Prometheus multiprocess directory: the one in
``PROMETHEUS_MULTIPROC_DIR`` (emptied at start: it belongs to this command), or a temporary
one made (and removed) here. ``--print-command``
prints the equivalent ``uvicorn`` command line instead of serving, for process managers that
want to run uvicorn themselves.

It refuses to start with a weak ``SECRET_KEY`` (shorter than 50 characters, fewer than 5
distinct ones, Django's ``django-insecure-`` default or a ``change-me`` placeholder) unless
``DEBUG`` is on: the key signs the admin's sessions and its CSRF tokens.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from argparse import ArgumentParser, ArgumentTypeError
from typing import Any, TextIO

HELP = "Serve the web platform (webhooks, admin, health and metrics) with uvicorn."
APP = "asgi.asgi:application"


def workers_arg(value: str) -> int:
    """``N`` processes, or ``auto`` for one per CPU this process may run on."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise ArgumentTypeError(f"expected a number of processes or 'auto', not {value!r}") from None
    if count < 1:
        raise ArgumentTypeError("--workers must be at least 1")
    return count


def add_arguments(parser: ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--host", default=env("AUTOMATE_HOST", "127.0.0.1"))
    # string defaults from the environment are converted by argparse when used, so a bad one is a
    # usage error of this command only (not a traceback of every command)
    parser.add_argument(
        "--port", type=int, default=env("AUTOMATE_PORT", "8000"), help="(default $AUTOMATE_PORT or 8000)"
    )
    parser.add_argument("--uds", default=None, help="Listen on this Unix socket instead of host:port.")
    parser.add_argument(
        "--workers",
        type=workers_arg,
        default=env("WEB_CONCURRENCY", "1"),
        help="Web processes: a number, or 'auto' for one per CPU (default $WEB_CONCURRENCY or 1).",
    )
    parser.add_argument("--log-level", default=env("UVICORN_LOG_LEVEL", "warning"))
    parser.add_argument("--access-log", action="store_true", help="Log every request (costs CPU).")
    parser.add_argument(
        "--forwarded-allow-ips",
        default=env("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        help="Proxies whose X-Forwarded-For/-Proto are trusted: comma-separated IPs or networks.",
    )
    parser.add_argument(
        "--no-proxy-headers", dest="proxy_headers", action="store_false", help="Ignore X-Forwarded-*."
    )
    parser.add_argument("--root-path", default=env("AUTOMATE_ROOT_PATH", ""))
    parser.add_argument("--backlog", type=int, default=2048, help="Listen backlog (pending connections).")
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        default=env("AUTOMATE_LIMIT_CONCURRENCY") or None,
        help="Most connections and tasks per process; beyond it, 503 at once ($AUTOMATE_LIMIT_CONCURRENCY).",
    )
    parser.add_argument(
        "--limit-max-requests", type=int, default=None, help="Recycle a process after this many requests."
    )
    parser.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=5,
        help="Seconds an idle keep-alive connection stays open (behind a load balancer: more than "
        "its idle timeout).",
    )
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=30,
        help="Seconds open requests may take to finish after SIGTERM.",
    )
    parser.add_argument(
        "--print-command", action="store_true", help="Print the equivalent uvicorn command and exit."
    )


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def weak_secret_key(key: str) -> str | None:
    """Why ``key`` is too weak to serve with (the rules of Django's ``check --deploy``), or None."""
    if key.startswith("django-insecure-"):
        return "it is the development default (django-insecure-...)"
    if "change-me" in key.lower() or "changeme" in key.lower():
        return "it is a placeholder (change-me)"
    if len(key) < 50:
        return f"it has {len(key)} characters, fewer than 50"
    if len(set(key)) < 5:
        return "it has fewer than 5 distinct characters"
    return None


def check_secret_key() -> None:
    """Refuse (ConfigurationError) to serve with a weak SECRET_KEY, unless DEBUG is on."""
    from django.conf import settings

    from automate_core.exceptions import ConfigurationError

    if settings.DEBUG:
        return
    why = weak_secret_key(str(settings.SECRET_KEY))
    if why:
        raise ConfigurationError(
            f"SECRET_KEY is too weak to serve with: {why}. Set SECRET_KEY to 50 or more random "
            "characters, for example SECRET_KEY=$(python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'), or set DEBUG=1 for local development "
            "(`automate up` does)."
        )


def uvicorn_options(options: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` (and ``uvicorn.Config``)."""
    from automate_core.ingest.deadlines import protocol_path

    values: dict[str, Any] = {
        "host": options.get("host", "127.0.0.1"),
        "port": options.get("port", 8000),
        "uds": options.get("uds"),
        "workers": options.get("workers", 1),
        "loop": "uvloop" if _importable("uvloop") else "asyncio",
        "http": protocol_path("httptools" if _importable("httptools") else "h11"),
        "lifespan": "on",
        "log_level": options.get("log_level", "warning"),
        "access_log": bool(options.get("access_log", False)),
        "proxy_headers": options.get("proxy_headers", True),
        "forwarded_allow_ips": options.get("forwarded_allow_ips", "127.0.0.1"),
        "server_header": False,
        "root_path": options.get("root_path", ""),
        "backlog": options.get("backlog", 2048),
        "limit_concurrency": options.get("limit_concurrency"),
        "limit_max_requests": options.get("limit_max_requests"),
        "timeout_keep_alive": options.get("timeout_keep_alive", 5),
        "timeout_graceful_shutdown": options.get("timeout_graceful_shutdown", 30),
    }
    if not values["uds"]:
        del values["uds"]
    return values


def uvicorn_command(options: dict[str, Any], python: str = sys.executable) -> list[str]:
    """The ``uvicorn`` command line equivalent to :func:`uvicorn_options`."""
    values = uvicorn_options(options)
    argv = [python, "-m", "uvicorn", APP]
    if "uds" in values:
        argv += ["--uds", values["uds"]]
    else:
        argv += ["--host", str(values["host"]), "--port", str(values["port"])]
    argv += [
        "--workers", str(values["workers"]),
        "--loop", values["loop"],
        "--http", values["http"],
        "--lifespan", "on",
        "--log-level", values["log_level"],
        "--access-log" if values["access_log"] else "--no-access-log",
        "--proxy-headers" if values["proxy_headers"] else "--no-proxy-headers",
        "--forwarded-allow-ips", values["forwarded_allow_ips"],
        "--no-server-header",
        "--backlog", str(values["backlog"]),
        "--timeout-keep-alive", str(values["timeout_keep_alive"]),
        "--timeout-graceful-shutdown", str(values["timeout_graceful_shutdown"]),
    ]  # fmt: skip
    if values["root_path"]:
        argv += ["--root-path", values["root_path"]]
    if values["limit_concurrency"]:
        argv += ["--limit-concurrency", str(values["limit_concurrency"])]
    if values["limit_max_requests"]:
        argv += ["--limit-max-requests", str(values["limit_max_requests"])]
    return argv


def empty_metrics_dir(path: str) -> None:
    """Remove the metric files a previous run left in ``path`` (it belongs to this command).

    A new process must not find an old file under its own pid (pids repeat after a restart, in
    a container almost surely): it would carry on from the dead process's gauge values.
    """
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def run(options: dict[str, Any], out: TextIO) -> int:
    check_secret_key()
    if options.get("print_command"):
        out.write(shlex.join(uvicorn_command(options)) + "\n")
        return 0
    import uvicorn
    from django.conf import settings

    made_dir = None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        empty_metrics_dir(given)
    elif options.get("workers", 1) > 1:
        # the web processes must share one, or each scrape would see one process's counters
        made_dir = tempfile.mkdtemp(prefix="automate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made_dir
    where = options["uds"] if options.get("uds") else f"http://{options['host']}:{options['port']}/"
    out.write(f"Serving on {where} ({options.get('workers', 1)} process(es))\n")
    out.flush()
    try:
        uvicorn.run(APP, log_config=settings.LOGGING, **uvicorn_options(options))
    finally:
        if made_dir:
            shutil.rmtree(made_dir, ignore_errors=True)
    return 0
