"""Console entry point ``automate``: prepares the environment, then runs the management command.

Before Django starts it reads the project's ``.env`` and sets the development defaults
(:mod:`automate_core.cli.devenv`), makes sure there is a database (``DATABASE_URL``, or the
embedded PostgreSQL in the project's home, see :mod:`automate_core.embedded`) and a ``SECRET_KEY``
(a random one kept in the project's home). Only ``automate up`` and ``automate migrate`` create a
project home or a cluster. Problems a user can fix (no database, a database that cannot be
reached, a setting that does not parse) are one line on standard error naming the fix, exit 2.
"""

from __future__ import annotations

import os
import secrets
import sys

from automate_core import embedded
from automate_core.cli import devenv

_NEEDS_NO_DB = {"-h", "--help", "help", "--version", "plugins"}
#: commands that set a project up: they may create its home and its embedded cluster
_CREATES = {"up", "migrate"}
#: long-running commands: they keep their SECRET_KEY in the project's home (shared by processes)
_KEEPS_KEY = _CREATES | {"serve", "worker"}


def _secret_key(keep: bool) -> None:
    if os.environ.get("SECRET_KEY"):
        return
    if not keep and embedded.existing_home() is None:
        # a short command outside any project signs nothing that outlives it
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
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


def _needs_db(args: list[str]) -> bool:
    if not args or {"-h", "--help"} & set(args):
        return False
    return args[0] not in _NEEDS_NO_DB and args[:2] != ["secrets", "genkey"]


def fail(message: str) -> SystemExit:
    print(f"automate: {message}", file=sys.stderr)
    return SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] == "--url" or args[0].startswith("--url=")):  # over the HTTP API, no database
        from automate_core.cli import remote

        raise SystemExit(remote.main(args))
    command = args[0] if args else ""
    devenv.load_dotenv()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")
    if command == "up":
        os.environ.setdefault("DEBUG", "1")  # local use over plain HTTP; production runs serve/worker
    if os.environ["DJANGO_SETTINGS_MODULE"] == "asgi.settings":
        _secret_key(keep=command in _KEEPS_KEY)
    devenv.development_defaults(may_create_home=command in _CREATES)
    if _needs_db(args) and not _brings_its_database(args):
        try:
            embedded.ensure_database_url(create=command in _CREATES)
        except embedded.NoDatabase as exc:
            raise fail(str(exc)) from None
    from automate_core.cli import preflight

    with preflight.one_line_errors():
        if _needs_db(args) and not _brings_its_database(args):
            preflight.check_database(command)
        from django.core.management import execute_from_command_line

        execute_from_command_line(["automate", "automate", *args])


if __name__ == "__main__":
    main()
