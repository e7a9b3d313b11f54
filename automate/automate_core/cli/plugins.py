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
    if options["json"]:
        out.write(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
        return 1 if any(r.status == "error" for r in rows) else 0
    for group in dict.fromkeys(r.group for r in rows):
        out.write(f"{group}\n")
        for r in (r for r in rows if r.group == group):
            status = r.status if r.status == "ok" else f"ERROR: {r.error}"
            out.write(
                f"  {r.code:<12} {r.name or '-':<40} {r.mode or '-':<6} {r.target}  "
                f"[{r.distribution or 'settings'}]  {status}\n"
            )
    return 1 if any(r.status == "error" for r in rows) else 0
