from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core import definitions

HELP = "Load webhook sources, workflows and schedules from YAML or JSON files (upserted by name)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("file", nargs="+", help="Definition files (.yaml, .yml or .json).")
    parser.add_argument(
        "--check", action="store_true", help="Validate only: report every error, write nothing."
    )


def run(options: dict[str, Any], out: TextIO) -> int:
    for path in options["file"]:
        counts = definitions.load(definitions.read(path), check=options["check"])
        if options["check"]:
            out.write(
                f"{path}: valid ({counts['workflows']} workflows, {counts['steps']} steps); nothing written\n"
            )
            continue
        out.write(
            f"{path}: {counts['sources']} sources, {counts['workflows']} workflows "
            f"({counts['versions']} new versions), {counts['steps']} steps, "
            f"{counts['schedules']} schedules loaded\n"
        )
    return 0
