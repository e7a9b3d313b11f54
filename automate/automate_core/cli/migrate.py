from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from django.core.management import call_command

HELP = "Apply database migrations."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="Exit non-zero if migrations are missing.")


def run(options: dict[str, Any], out: TextIO) -> int:
    if options["check"]:
        call_command("migrate", check=True, plan=True, stdout=out)
    else:
        call_command("migrate", interactive=False, stdout=out, verbosity=options.get("verbosity", 1))
        ensure_partitions()
    return 0


def ensure_partitions() -> None:
    """The history's partitions of today and the days ahead (workers keep them made too), for
    the tables that are partitioned."""
    from django.db import connection, transaction

    from automate_core.conf import settings
    from automate_core.history import partitions

    with transaction.atomic(), connection.cursor() as cursor:
        partitions.ensure_ahead_sync(cursor, int(settings.HISTORY_PARTITIONS_AHEAD))
