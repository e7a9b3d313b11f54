"""``manage.py automate <subcommand>``: the same commands as the ``automate`` console script."""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from automate_core.cli import SUBCOMMANDS
from automate_core.exceptions import AutomateError

#: commands that run the platform: Django's system checks (the settings' types, plugins, keys:
#: automate_core.checks) run first, so a misconfiguration stops them at start
CHECKED = {"up", "serve", "worker"}


class Command(BaseCommand):
    help = "Django Automate: run the platform, load workflows, inspect plugins, runs and jobs."
    # checked per subcommand in handle(): the read-only ones stay fast and work on a broken config
    requires_system_checks: list[str] = []

    def get_version(self) -> str:
        import django

        from automate_core import __version__

        return f"django-automate {__version__} (Django {django.get_version()})"

    def add_arguments(self, parser: CommandParser) -> None:
        if parser.prog == "automate automate":  # the console script: `automate`, not `automate automate`
            parser.prog = "automate"
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name in SUBCOMMANDS:
            module = importlib.import_module(f"automate_core.cli.{name.replace('-', '_')}")
            child = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(child)

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["subcommand"]
        if name in CHECKED and not options.get("skip_checks"):
            self.check(display_num_errors=False)
        module = importlib.import_module(f"automate_core.cli.{name.replace('-', '_')}")
        try:
            code = module.run(options, self.stdout)
        except AutomateError as exc:
            raise CommandError(str(exc)) from exc
        if code:
            raise SystemExit(code)
