"""``manage.py automate <subcommand>``: the same commands as the ``automate`` console script."""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from automate_core.cli import SUBCOMMANDS
from automate_core.exceptions import AutomateError


class Command(BaseCommand):
    help = "Django Automate: run the platform, load workflows, inspect plugins, runs and jobs."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name in SUBCOMMANDS:
            module = importlib.import_module(f"automate_core.cli.{name.replace('-', '_')}")
            child = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(child)

    def handle(self, *args: Any, **options: Any) -> None:
        module = importlib.import_module(f"automate_core.cli.{options['subcommand'].replace('-', '_')}")
        try:
            code = module.run(options, self.stdout)
        except AutomateError as exc:
            raise CommandError(str(exc)) from exc
        if code:
            raise SystemExit(code)
