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


def _brings_its_database(args: list[str]) -> bool:
    """``automate bench ... --database-url URL`` names its own database: no embedded one for it."""
    given = any(a == "--database-url" or a.startswith("--database-url=") for a in args)
    return args[:1] == ["bench"] and given


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")
    if args[:1] == ["up"]:
        os.environ.setdefault("DEBUG", "1")  # local use over plain HTTP; production runs serve/worker
    if os.environ["DJANGO_SETTINGS_MODULE"] == "asgi.settings":
        _secret_key()
    if (not args or args[0] not in _NEEDS_NO_DB) and not _brings_its_database(args):
        embedded.ensure_database_url()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["automate", "automate", *args])


if __name__ == "__main__":
    main()
