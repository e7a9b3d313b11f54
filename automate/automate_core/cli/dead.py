"""``automate dead``: list dead letters; ``automate dead replay``: run them again as new jobs.

A dead letter is a dead job not resolved since: not replayed, and its event not run again
successfully (``observability.dead_letters``, the definition the console's card and list and the
``automate_dead_letters`` gauge count too). ``--include-resolved`` takes the resolved dead jobs
as well (listed with how they were resolved; replayed again only when asked).

Both take the same filters, so what ``automate dead --source shop --since 2h`` lists is what
``automate dead replay --source shop --since 2h`` replays; ``--dry-run`` shows the count without
replaying. The replay runs on the server in one statement; an empty filter needs ``--all``.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from automate_core.cli.words import plural
from automate_core.models import OutboxJob
from automate_core.observability import dead_letters
from automate_core.outbox import replay

HELP = "Dead jobs (attempts used up, or a failure retrying cannot fix): list them, or replay them."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=["list", "replay"], default="list", help="list (default) or replay"
    )
    parser.add_argument("job", nargs="*", type=int, help="Dead job ids.")
    parser.add_argument("--source", help="Only jobs of events from this webhook source.")
    parser.add_argument("--event-type", help="Only events of this type (* is a wildcard: order.*).")
    parser.add_argument("--kind", choices=["event", "task"], help="Only workflow jobs, or Django tasks.")
    parser.add_argument("--error", help="Only jobs whose last error contains this text.")
    parser.add_argument("--since", help="Died at or after: an ISO time, or how long ago (90m, 2h, 7d).")
    parser.add_argument("--until", help="Died before: an ISO time, or how long ago.")
    parser.add_argument("--all", action="store_true", help="replay: every dead job (no filter).")
    parser.add_argument("--dry-run", action="store_true", help="replay: count what would be replayed.")
    parser.add_argument(
        "--include-resolved",
        action="store_true",
        help="Also dead jobs resolved since (list: replayed ones too; replay: those whose event "
        "was run again successfully).",
    )
    parser.add_argument("--limit", type=int, default=50, help="list: at most this many (newest first).")
    parser.add_argument("--json", action="store_true", help="list: machine-readable output.")


def _filter(options: dict[str, Any], *, replayable: bool) -> replay.DeadFilter:
    return replay.DeadFilter(
        ids=tuple(options.get("job") or ()),
        source=options.get("source"),
        event_type=options.get("event_type"),
        kind=options.get("kind"),
        error=options.get("error"),
        since=replay.parse_when(options["since"]) if options.get("since") else None,
        until=replay.parse_when(options["until"]) if options.get("until") else None,
        replayed=False if replayable else None,
        everything=bool(options.get("all")),
    )


def run(options: dict[str, Any], out: TextIO) -> int:
    if options["action"] == "replay":
        return _replay(options, out)
    return _list(options, out)


def _replay(options: dict[str, Any], out: TextIO) -> int:
    selection = _filter(options, replayable=True)
    if selection.is_empty() and not selection.everything:
        raise replay.EmptyReplayFilter()
    matching = selection.queryset()  # dead, not replayed yet, matching the filter
    chosen = matching if options.get("include_resolved") else dead_letters.dead_letters(matching)
    skipped = 0 if options.get("include_resolved") else matching.count() - chosen.count()
    note = (
        f" {skipped} whose event was run again successfully since were skipped "
        "(--include-resolved replays them too)."
        if skipped
        else ""
    )
    if options.get("dry_run"):
        count = chosen.count()
        out.write(
            f"{plural(count, 'dead job')} would be replayed (not yet replayed and matching the "
            f"filter).{note}\n"
        )
        return 0
    new = replay.replay(chosen)
    if new:
        out.write(f"Replayed {plural(len(new), 'dead job')} as new jobs {new[0]}..{new[-1]}.{note}\n")
    else:
        out.write(f"No dead job matches (or every match was replayed already).{note}\n")
    return 0


def _list(options: dict[str, Any], out: TextIO) -> int:
    dead = _filter(options, replayable=False).queryset()
    jobs = dead if options.get("include_resolved") else dead_letters.dead_letters(dead)
    jobs = jobs.select_related("event").order_by("-id")
    total = jobs.count()
    rows = list(jobs.prefetch_related("replays")[: options["limit"]])
    open_ids = set(
        dead_letters.dead_letters(OutboxJob.objects.filter(pk__in=[j.pk for j in rows])).values_list(
            "pk", flat=True
        )
    )
    if options.get("json"):
        out.write(
            json.dumps([_as_dict(job, job.pk in open_ids) for job in rows], indent=2, default=str) + "\n"
        )
        return 0
    if not rows:
        resolved = 0 if options.get("include_resolved") else dead.count()
        if resolved:
            out.write(
                f"No dead jobs not resolved ({resolved} matching dead jobs were resolved since: "
                "replayed, or their event run again successfully; --include-resolved lists them).\n"
            )
        else:
            out.write("No dead jobs.\n")
        return 0
    shown = f" (showing the newest {len(rows)})" if total > len(rows) else ""
    what_kind = "resolved or not" if options.get("include_resolved") else "not resolved"
    out.write(f"{plural(total, 'dead job')} ({what_kind}){shown}\n")
    for job in rows:
        event = job.event
        what = f"{event.source}/{event.event_type} event {event.pk}" if event else job.kind
        replays = [r.pk for r in job.replays.all()]
        note = f"  replayed as job {replays[0]}" if replays else ""
        if not replays and job.pk not in open_ids:
            note = "  resolved: its event was run again successfully"
        out.write(
            f"job {job.pk:<8} {what}  attempts {job.spent_attempts}  died {job.updated_at:%Y-%m-%d %H:%M:%S}"
            f"{note}\n"
        )
        out.write(f"             {job.last_error[:300]}\n")
    return 0


def _as_dict(job: Any, dead_letter: bool) -> dict[str, Any]:
    event = job.event
    return {
        "id": job.pk,
        "kind": job.kind,
        "event_id": event.pk if event else None,
        "source": event.source if event else None,
        "event_type": event.event_type if event else None,
        "attempts": job.spent_attempts,
        "died_at": job.updated_at.isoformat(),
        "last_error": job.last_error,
        "replayed_as": [r.pk for r in job.replays.all()],
        "dead_letter": dead_letter,
    }
