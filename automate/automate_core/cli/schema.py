"""``automate schema``: the JSON Schema of the definitions file, for editors."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core import file_schema

HELP = "Print the JSON Schema of the workflow file format (point your editor's YAML plugin at it)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--indent", type=int, default=2)


def run(options: dict[str, Any], out: TextIO) -> int:
    out.write(json.dumps(file_schema.schema(), indent=options["indent"]) + "\n")
    return 0
