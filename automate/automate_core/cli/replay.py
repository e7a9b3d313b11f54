"""``automate replay``: replay runs as new runs linked to the originals, one by id or many by filter.

Bulk replay runs on the workers: this command records the request and prints its preview count;
``--yes`` starts it, ``--progress ID`` shows how far it got.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.cli._json import payload_argument
from automate_core.cli.words import plural
from automate_core.exceptions import WorkflowError
from automate_core.execution import replay
from automate_core.models import BulkReplay, RunMode

HELP = (
    "Replay runs: from the start on the original or current version, resume from the failed step, "
    "or with an edited payload. Many at once with a filter (preview, then --yes)."
)
MODES = {
    "original": RunMode.ORIGINAL,
    "current": RunMode.CURRENT,
    "resume": RunMode.RESUME,
    "edited": RunMode.EDITED,
}


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("run", nargs="*", type=int, help="Run ids to replay.")
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="current",
        help="original: same version; current: current version (default); resume: from the failed "
        "step, reusing earlier outputs; edited: with --payload.",
    )
    parser.add_argument("--payload", help="The edited payload as JSON (mode edited).")
    parser.add_argument("--payload-file", help="The edited payload in a JSON file (mode edited).")
    bulk = parser.add_argument_group("bulk replay by filter (run on the workers)")
    for key in replay.FILTER_KEYS:
        hint = "an ISO date-time or an age like 6h, 2d" if key in ("since", "until") else None
        bulk.add_argument(f"--{key.replace('_', '-')}", dest=f"filter_{key}", help=hint)
    bulk.add_argument(
        "--include-fixed",
        action="store_true",
        help="Also replay runs whose event has a later run of the workflow (fixed by a later replay, "
        "or replayed again): skipped by default, so that no event's side effects are repeated.",
    )
    bulk.add_argument("--yes", action="store_true", help="Start the bulk replay (without it: preview only).")
    bulk.add_argument("--progress", type=int, metavar="BULK_ID", help="Show a bulk replay's progress.")
    bulk.add_argument("--json", action="store_true", help="--progress as JSON.")


def describe_progress(state: dict[str, Any]) -> str:
    """A bulk replay's progress for people: what, how far, and its runs by status."""
    filters = ", ".join(f"{k}={v}" for k, v in sorted((state.get("filter") or {}).items())) or "all runs"
    total, queued = int(state["total"] or 0), int(state["queued"] or 0)
    share = f" ({100 * queued // total}%)" if total else ""
    runs = state.get("runs") or {}
    lines = [
        f"bulk replay #{state['id']}: {state['status']}, mode {state['mode']}, filter {filters}",
        f"  queued {queued} of {plural(total, 'run')}{share}",
        "  runs: " + (", ".join(f"{n} {status}" for status, n in sorted(runs.items())) or "none yet"),
    ]
    return "\n".join(lines) + "\n"


def run(options: dict[str, Any], out: TextIO) -> int:
    if options.get("progress") is not None:
        bulk = BulkReplay.objects.filter(pk=options["progress"]).first()
        if bulk is None:
            raise WorkflowError(f"No bulk replay #{options['progress']}.")
        state = replay.progress(bulk)
        if options.get("json"):
            out.write(json.dumps(state, indent=2, default=str) + "\n")
        else:
            out.write(describe_progress(state))
        return 0
    mode = MODES[options["mode"]]
    filters = {k: options.get(f"filter_{k}") for k in replay.FILTER_KEYS}
    filters = {k: v for k, v in filters.items() if v}
    if options["run"]:
        if filters:
            raise WorkflowError("Give run ids or a filter, not both.")
        payload = payload_argument(options.get("payload"), options.get("payload_file"))
        for run_id in options["run"]:
            new = replay.replay(run_id, mode, payload=payload)
            out.write(f"run #{run_id}: replay queued as run #{new.pk} ({mode}, job {new.job_id})\n")
        return 0
    if mode == RunMode.EDITED:
        raise WorkflowError(
            "An edited payload is given per run: automate replay RUN_ID --mode edited --payload …"
        )
    include_fixed = bool(options.get("include_fixed"))
    preview_filters = {**filters, "status": "failed"} if mode == RunMode.RESUME else filters
    counts = replay.preview(preview_filters, include_fixed=include_fixed)
    skipped = skipped_note(counts)
    if not options["yes"]:
        out.write(
            f"{plural(counts['replay'], 'run')} match {json.dumps(preview_filters)}{skipped}; "
            f"add --yes to replay them ({mode}).\n"
        )
        return 0
    bulk = replay.start_bulk(filters, mode, author="cli", include_fixed=include_fixed)
    out.write(
        f"bulk replay #{bulk.pk} started for {plural(bulk.total, 'run')} ({mode}){skipped}; the workers "
        f"queue them. Follow it with: automate replay --progress {bulk.pk}\n"
    )
    return 0


def skipped_note(counts: dict[str, int]) -> str:
    """ ", skipping N ..." when the preview leaves runs out; "" when it does not."""
    parts = []
    if counts["fixed"]:
        parts.append(f"{counts['fixed']} whose event's workflow has succeeded since")
    if counts["superseded"]:
        parts.append(f"{counts['superseded']} whose event was replayed again since (its latest run counts)")
    if not parts:
        return ""
    return f" (skipping {' and '.join(parts)}; --include-fixed replays them too)"
