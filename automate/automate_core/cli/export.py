"""``automate export``: sources, workflows and schedules as a file in the ``automate load`` format.

Without names everything is exported, so ``automate export -o all.yaml`` and ``automate load all.yaml``
round-trip. With workflow names, the sources their trigger matches come along (``--no-sources``
leaves them out). Secrets are never exported: a source carries its ``secret_ref`` (a reference),
and a ``token`` source's token hashes stay in the database (re-issue tokens on a new install).
"""

from __future__ import annotations

from argparse import ArgumentParser
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TextIO

import yaml

from automate_core.cli.words import plural
from automate_core.exceptions import WorkflowError
from automate_core.models import Schedule, WebhookSource, Workflow
from automate_core.rules import versions

HELP = "Export sources, workflows and schedules as a YAML file that `automate load` reads back."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("workflow", nargs="*", help="Workflow names (default: all, with every source).")
    parser.add_argument("--version", type=int, help="A version number instead of the current one.")
    parser.add_argument("--no-sources", action="store_true", help="Leave the webhook sources out.")
    parser.add_argument("-o", "--output", help="Write to this file instead of the terminal.")


def source_item(source: WebhookSource) -> dict[str, Any]:
    item: dict[str, Any] = {"slug": source.slug}
    if source.name:
        item["name"] = source.name
    item["scheme"] = source.scheme
    if source.secret_ref:
        item["secret_ref"] = source.secret_ref
    if source.config:
        item["config"] = source.config
    if not source.enabled:
        item["enabled"] = False
    return item


def schedule_item(schedule: Schedule) -> dict[str, Any]:
    item: dict[str, Any] = {"name": schedule.name, "cron": schedule.cron}
    if schedule.timezone != "UTC":
        item["timezone"] = schedule.timezone
    if schedule.source != "schedule":
        item["source"] = schedule.source
    if schedule.event_type != schedule.name:
        item["event_type"] = schedule.event_type
    if schedule.payload:
        item["payload"] = schedule.payload
    if not schedule.enabled:
        item["enabled"] = False
    return item


def run(options: dict[str, Any], out: TextIO) -> int:
    names = options["workflow"]
    workflows = list(Workflow.objects.order_by("name").filter(**({"name__in": names} if names else {})))
    missing = set(names) - {w.name for w in workflows}
    if missing:
        raise WorkflowError(f"No workflow named {', '.join(sorted(missing))}.")
    if options["version"] is not None and len(workflows) != 1:
        raise WorkflowError("--version needs exactly one workflow name.")
    items = []
    patterns = []
    for workflow in workflows:
        definition = versions.get_version(workflow, options["version"]).definition
        item = versions.exported(definition)
        if not workflow.enabled:
            item = {"name": item["name"], "enabled": False, **{k: v for k, v in item.items() if k != "name"}}
        items.append(item)
        patterns.append(definition["trigger"].get("source") or "*")
    data: dict[str, Any] = {}
    if not options["no_sources"]:
        sources = [
            s for s in WebhookSource.objects.order_by("slug")
            if not names or any(fnmatchcase(s.slug, p) for p in patterns)
        ]  # fmt: skip
        if sources:
            data["sources"] = [source_item(s) for s in sources]
    data["workflows"] = items
    if not names:
        schedules = list(Schedule.objects.order_by("name"))
        if schedules:
            data["schedules"] = [schedule_item(s) for s in schedules]
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    if options["output"]:
        Path(options["output"]).write_text(text, encoding="utf-8")
        counts = ", ".join(
            plural(len(data.get(k, [])), k[:-1]) for k in ("sources", "workflows", "schedules")
        )
        out.write(f"{counts} written to {options['output']}\n")
    else:
        out.write(text)
    return 0
