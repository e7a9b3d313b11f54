from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core import definitions

HELP = "Load webhook sources, workflows and schedules from YAML or JSON files (upserted by name)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("file", nargs="+", help="Definition files (.yaml, .yml or .json).")


def run(options: dict[str, Any], out: TextIO) -> int:
    for path in options["file"]:
        counts = definitions.load_file(path)
        out.write(
            f"{path}: {counts['sources']} sources, {counts['workflows']} workflows "
            f"({counts['versions']} new versions), {counts['steps']} steps, "
            f"{counts['schedules']} schedules loaded\n"
        )
    return 0
