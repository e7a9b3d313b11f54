"""Console entry point ``automate``: prepares the environment, then runs the management command.

Before Django starts it makes sure there is a database (``DATABASE_URL``, or the embedded
PostgreSQL under ``.automate/``) and a ``SECRET_KEY`` (a random one kept in ``.automate/``).
"""

from __future__ import annotations

import os
import secrets
import sys

from automate_core import embedded

_NEEDS_NO_DB = {"-h", "--help", "help", "plugins"}


def _secret_key() -> None:
    if os.environ.get("SECRET_KEY"):
        return
    path = embedded.home() / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    os.environ["SECRET_KEY"] = path.read_text().strip()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] == "--url" or args[0].startswith("--url=")):  # over the HTTP API, no database
        from automate_core.cli import remote

        raise SystemExit(remote.main(args))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")
    if args[:1] == ["up"]:
        os.environ.setdefault("DEBUG", "1")  # local use over plain HTTP; production runs serve/worker
    if os.environ["DJANGO_SETTINGS_MODULE"] == "asgi.settings":
        _secret_key()
    if not args or args[0] not in _NEEDS_NO_DB:
        embedded.ensure_database_url()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["automate", "automate", *args])


if __name__ == "__main__":
    main()
