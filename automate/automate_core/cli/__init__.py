"""The ``automate`` command line: ``automate <subcommand>``, also ``manage.py automate <subcommand>``.

Each subcommand is a module in this package with ``HELP``, ``add_arguments(parser)`` and
``run(options, out)``; ``test-step`` lives in ``test_step``.
"""

from __future__ import annotations

SUBCOMMANDS = [
    "up",
    "serve",
    "worker",
    "migrate",
    "load",
    "plugins",
    "secrets",
    "runs",
    "dead",
    "replay",
    "cancel",
    "approve",
    "waits",
    "schema",
    "trigger",
    "test-step",
    "export",
    "workflow",
    "diff",
    "rollback",
    "bench",
    "tokens",
]
