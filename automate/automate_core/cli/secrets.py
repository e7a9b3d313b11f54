"""``automate secrets``: the ``db`` secrets backend's values and keys.

``set NAME`` stores a value read from standard input (never from the command line, where it would
land in shell history and ``ps``); ``delete NAME``; ``list`` shows names and key ids, never values;
``genkey`` prints a new encryption key; ``rotate`` re-encrypts every value under the first key of
``AUTOMATE_SECRETS_ENCRYPTION_KEYS``.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any, TextIO

HELP = "Manage the db secrets backend: set, delete, list, genkey, rotate."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("action", choices=["set", "delete", "list", "genkey", "rotate"])
    parser.add_argument("name", nargs="?", help="The secret's name (set, delete).")


def run(options: dict[str, Any], out: TextIO) -> int:
    from automate_governance.secrets import crypto, db

    action, name = options["action"], options.get("name")
    if action == "genkey":
        out.write(crypto.generate_key() + "\n")
        return 0
    if action == "rotate":
        from automate_core.cli.words import plural

        out.write(f"re-encrypted {plural(db.rotate(), 'secret')} under the current key\n")
        return 0
    if action == "list":
        from automate_governance.models import StoredSecret

        rows = list(StoredSecret.objects.order_by("name"))
        if not rows:
            out.write(
                "No secrets stored in the db backend "
                '(add one: printf %s "$VALUE" | automate secrets set NAME).\n'
            )
        for row in rows:
            out.write(f"{row.name}  key={row.key_id}  updated={row.updated_at:%Y-%m-%d %H:%M}\n")
        out.write(_backend_note())
        return 0
    if not name:
        out.write(f"automate secrets {action} needs a NAME\n")
        return 2
    if action == "delete":
        found = db.delete_secret(name)
        out.write(("deleted " if found else "no secret named ") + name + "\n")
        return 0 if found else 1
    value = sys.stdin.read().removesuffix("\n")
    if not value:
        out.write('no value on standard input (pipe it in: printf %s "$VALUE" | automate secrets set NAME)\n')
        return 2
    db.set_secret(name, value)
    note = _backend_note(name)
    read = "" if note else f': templates read it as secret("{name}"), sources as secret_ref: {name}'
    out.write(f"stored {name}{read}\n{note}")
    return 0


def _backend_note(name: str = "NAME") -> str:
    """When the db backend is not searched, say how its values are reached anyway, and the fix."""
    import json

    from automate_governance.secrets import config

    entries = config.entries()
    if "db" in config.backend_codes():
        return ""
    # never the OPTIONS themselves: they may hold credentials
    wanted = {e.name: {"BACKEND": e.backend, **({"OPTIONS": "..."} if e.options else {})} for e in entries}
    wanted["db"] = {"BACKEND": "db"}
    return (
        f"note: the db backend is not in AUTOMATE_SECRETS_BACKENDS ({', '.join(config.names()) or 'empty'}), "
        f'so a bare reference does not find this value: write secret("db:{name}") (secret_ref: db:{name}), '
        f"or set AUTOMATE_SECRETS_BACKENDS='{json.dumps(wanted)}'\n"
    )
