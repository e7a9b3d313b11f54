"""Before a command runs: is the database there? And problems a user can fix, as one line.

``check_database`` connects once (5 s at most) and, for commands other than ``up`` and ``migrate``,
looks for the platform's tables. A command fails with one line naming the database (never its
password) and the fix; ``serve`` and ``worker`` say so at start and go on (they wait for the
database: ``/readyz`` answers 503 meanwhile), since a process manager restarts them anyway.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from automate_core.cli.main import _CREATES, fail

#: commands that start even when the database is not there yet
_WAITS = {"serve", "worker"}
CONNECT_TIMEOUT = 5
#: serve and worker only warn: they should not wait long for that (a paused database)
WAITING_CONNECT_TIMEOUT = 2


def describe(url: str) -> str:
    """The database a URL names, without its password: ``user@host:port/db``."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "the database of DATABASE_URL"
    host = str(params.get("host") or "localhost")
    where = f"{host}:{params.get('port') or 5432}" if not host.startswith("/") else host
    user = f"{params['user']}@" if params.get("user") else ""
    source = "DATABASE_URL" if "host=/" not in url and "?host=" not in url else "embedded PostgreSQL"
    return f"{user}{where}/{params.get('dbname') or ''} ({source})"


def _hint(text: str, url: str) -> str:
    lowered = text.lower()
    if "does not exist" in lowered and "database" in lowered:
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(url).get("dbname", "DB")
        return f"createdb {name}, or fix the name in DATABASE_URL"
    if "password" in lowered or "authentication" in lowered:
        return "check the user and password in DATABASE_URL"
    if any(word in lowered for word in ("refused", "timeout", "timed out", "resolve", "translate")):
        return "is PostgreSQL running there? Check the host and port in DATABASE_URL"
    return "check DATABASE_URL"


def first_line(exc: BaseException, url: str = "") -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.removeprefix("connection failed: ")
    if url:
        text = text.replace(url, "<DATABASE_URL>")
    return " ".join(text.split())


def check_database(command: str) -> None:
    import psycopg

    from automate_core.conf import database_from_url

    url = os.environ.get("DATABASE_URL", "")
    database_from_url(url)  # a malformed URL: ImproperlyConfigured, one line below
    what = describe(url)
    try:
        timeout = WAITING_CONNECT_TIMEOUT if command in _WAITS else CONNECT_TIMEOUT
        with psycopg.connect(url, connect_timeout=timeout, autocommit=True) as conn:
            migrated = conn.execute("SELECT to_regclass('automate_outbox_job') IS NOT NULL").fetchone()
    except psycopg.Error as exc:
        message = f"cannot connect to {what}: {first_line(exc, url)} ({_hint(str(exc), url)})"
        if command in _WAITS:
            print(f"automate: warning: {message}; starting anyway", file=sys.stderr)
            return
        raise fail(message) from None
    if command not in _CREATES and not (migrated and migrated[0]):
        message = f"{what} has no Django Automate tables yet: run `automate migrate` (or `automate up`)"
        if command in _WAITS:
            print(f"automate: warning: {message}", file=sys.stderr)
            return
        raise fail(message)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Configuration and database errors as one line (``automate: ...``, exit 2), not a traceback."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import Error as DjangoDatabaseError

    url = os.environ.get("DATABASE_URL", "")
    try:
        yield
    except ImproperlyConfigured as exc:
        raise fail(first_line(exc, url)) from None
    except DjangoDatabaseError as exc:
        text = first_line(exc, url)
        hint = " (run `automate migrate`)" if "does not exist" in text else f" ({_hint(text, url)})"
        raise fail(f"database error on {describe(url)}: {text}{hint}") from None
