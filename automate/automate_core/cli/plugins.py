"""``automate plugins``: every discovered plugin, how it is called, and the ones that are broken.

Columns: code, name, class (``module:Class``), distribution and version (``settings`` when chosen
in ``AUTOMATE_PLUGINS``), mode (``async``: awaited on the event loop; ``sync``: run in the plugin
thread pool) and status (``ok``, or the recorded error). ``--json`` prints the same as a list of
objects. The exit status is 1 when any plugin is broken, so CI can run it as a check.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.plugins import registry

HELP = "List discovered plugins (connectors, secrets backends, LLM providers) and load failures."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")


def run(options: dict[str, Any], out: TextIO) -> int:
    rows = [info for reg in registry.all_registries() for info in reg.info()]
    broken = any(r.status == "error" for r in rows)
    if options["json"]:
        out.write(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
        return 1 if broken else 0
    table = [("CODE", "NAME", "MODE", "CLASS", "DISTRIBUTION", "STATUS")]
    table += [(r.code, r.name or "-", r.mode or "-", r.target, r.distribution or "settings",
               r.status if r.status == "ok" else f"ERROR: {r.error}") for r in rows]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for group in dict.fromkeys(r.group for r in rows):
        out.write(f"{group}\n")
        for row, info in zip(table, [None, *rows], strict=True):
            if info is None or info.group == group:
                cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
                out.write("  " + "  ".join([*cells, row[5]]) + "\n")
    return 1 if broken else 0
