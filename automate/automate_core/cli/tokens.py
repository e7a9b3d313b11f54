"""``automate tokens``: API tokens (docs/api.md). ``create`` prints the token once; only its hash
is stored. ``list`` shows names, prefixes, scopes and state, never a token; ``revoke`` ends one
at once (its next request is a 401).
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any, TextIO

from django.db import transaction
from django.utils import timezone

from automate_core.api.auth import create_token, parse_expiry
from automate_core.exceptions import ApiError, AutomateError
from automate_core.models import ApiToken, AuditEntry
from automate_core.models.api import SCOPES

HELP = "API tokens: create (printed once), list, revoke."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("name", nargs="?", help="create: the token's name; revoke: its id or name.")
    parser.add_argument(
        "--scope", action="append", default=[], choices=SCOPES, help="A scope (repeat for several)."
    )
    parser.add_argument("--expires", help="create: 90d, 12h, 2w, or an ISO date-time (default: never).")
    parser.add_argument(
        "--source", action="append", default=[], help="create: only events for this source (repeatable)."
    )
    parser.add_argument("--rate-limit", type=int, help="create: requests per minute (0: none).")
    parser.add_argument("--json", action="store_true", help="list: machine-readable output.")


def _state(token: ApiToken) -> str:
    if token.revoked_at:
        return f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
    if token.expires_at and token.expires_at <= timezone.now():
        return f"expired {token.expires_at:%Y-%m-%d %H:%M}"
    return "active" + (f" until {token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "")


def run(options: dict[str, Any], out: TextIO) -> int:
    action = options["action"]
    if action == "list":
        return _list(options, out)
    if not options.get("name"):
        raise AutomateError(f"automate tokens {action} needs a NAME.")
    if action == "revoke":
        return _revoke(options["name"], out)
    try:
        expires = parse_expiry(options["expires"]) if options.get("expires") else None
        with transaction.atomic():
            row, token = create_token(
                options["name"],
                options["scope"],
                expires_at=expires,
                sources=options["source"],
                rate_limit=options.get("rate_limit"),
                created_by="cli",
            )
            AuditEntry.objects.create(
                actor="cli",
                token=row,
                action="tokens.create",
                target=f"token:{row.pk}",
                details={"name": row.name, "scopes": row.scopes},
            )
    except ApiError as exc:
        raise AutomateError(str(exc)) from exc
    out.write(f"token #{row.pk} {row.name} ({', '.join(row.scopes)}): {_state(row)}\n")
    out.write(f"{token}\n")
    out.write("Store it now: it is shown only once (only its hash is kept).\n")
    return 0


def _list(options: dict[str, Any], out: TextIO) -> int:
    rows = list(ApiToken.objects.order_by("id"))
    if options.get("json"):
        out.write(
            json.dumps(
                [
                    {
                        "id": t.pk,
                        "name": t.name,
                        "prefix": t.prefix,
                        "scopes": t.scopes,
                        "sources": t.sources,
                        "state": _state(t),
                        "last_used_at": t.last_used_at,
                        "created_at": t.created_at,
                    }
                    for t in rows
                ],
                indent=2,
                default=str,
            )
            + "\n"
        )
        return 0
    if not rows:
        out.write("No API tokens. Create one: automate tokens create NAME --scope events:write\n")
    for t in rows:
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        sources = f"  sources {','.join(t.sources)}" if t.sources else ""
        out.write(
            f"#{t.pk:<4} {t.name:<24} {t.prefix}…  {','.join(t.scopes)}{sources}  {_state(t)}  {used}\n"
        )
    return 0


def _revoke(ref: str, out: TextIO) -> int:
    tokens = ApiToken.objects.filter(pk=int(ref)) if ref.isdigit() else ApiToken.objects.filter(name=ref)
    with transaction.atomic():
        found = list(tokens.filter(revoked_at__isnull=True).select_for_update())
        if not found:
            out.write(f"No active token {ref!r}.\n")
            return 1
        if len(found) > 1:
            ids = ", ".join(f"#{t.pk}" for t in found)
            raise AutomateError(f"Several active tokens are named {ref!r} ({ids}); revoke one by id.")
        token = found[0]
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        AuditEntry.objects.create(
            actor="cli", token=token, action="tokens.revoke", target=f"token:{token.pk}"
        )
    out.write(f"token #{token.pk} {token.name} revoked\n")
    return 0
