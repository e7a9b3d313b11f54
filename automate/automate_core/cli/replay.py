from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.exceptions import AutomateError
from automate_core.outbox import replay

HELP = "Replay dead jobs as new jobs linked to the old ones (by id, or all dead jobs of a source)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("job", nargs="*", type=int, help="Dead job ids.")
    parser.add_argument("--source", help="Replay every dead job of this source.")


def run(options: dict[str, Any], out: TextIO) -> int:
    if not options["job"] and not options["source"]:
        raise AutomateError("Name dead job ids or --source; an empty filter is refused.")
    new = replay.replay_dead(ids=options["job"] or None, source=options["source"])
    out.write(f"{len(new)} jobs queued again: {', '.join(map(str, new)) or '-'}\n")
    return 0
