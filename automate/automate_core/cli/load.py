from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any, TextIO

from automate_core import definitions
from automate_core.cli.words import plural

HELP = "Load webhook sources, workflows and schedules from YAML or JSON files (upserted by name)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("file", nargs="+", help="Definition files (.yaml, .yml or .json).")
    parser.add_argument(
        "--check", action="store_true", help="Validate only: report every error, write nothing."
    )


def summary(counts: dict[str, int]) -> str:
    return (
        f"{plural(counts['sources'], 'source')}, {plural(counts['workflows'], 'workflow')} "
        f"({plural(counts['versions'], 'new version')}), {plural(counts['steps'], 'step')}, "
        f"{plural(counts['schedules'], 'schedule')} loaded"
    )


def run(options: dict[str, Any], out: TextIO) -> int:
    for path in options["file"]:
        if not Path(path).is_file():
            where = Path(path).resolve().parent
            raise definitions.DefinitionError(f"{path}: no such file (looked in {where}).")
        counts = definitions.load(definitions.read(path), check=options["check"])
        if options["check"]:
            summary_line = f"{counts['workflows']} workflows, {counts['steps']} steps"
            out.write(f"{path}: valid ({summary_line}); nothing written\n")
            continue
        out.write(f"{path}: {summary(counts)}\n")
    return 0
