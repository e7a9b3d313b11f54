"""The benchmark databases: their names, their URLs, and their schema and workflow.

Every harness works in a database of its own whose name contains "bench" (it empties tables);
``bench_url`` names it next to ``DATABASE_URL``'s, ``admin_url`` says where to create it, and
``migrate_and_load`` brings it to the current schema with the harness's workflow loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo


def bench_url(base: str, *, history: bool = False) -> str:
    """``<DATABASE_URL's database>_bench``, or ``_bench_history`` for runs with a big history (kept
    apart so that it is built once and both kinds of runs can alternate)."""
    params = conninfo_to_dict(base)
    name = str(params.get("dbname") or "automate")
    if "bench" not in name:
        name = f"{name}_bench"
    params["dbname"] = f"{name}_history" if history and not name.endswith("_history") else name
    return make_conninfo("", **params)


def django_url(url: str) -> str:
    """A libpq conninfo (or URL) as the ``postgresql://`` URL that ``DATABASE_URL`` takes."""
    p = conninfo_to_dict(url)
    auth = str(p.get("user", "")) + (f":{p['password']}" if p.get("password") else "")
    host = str(p.get("host", ""))
    if host.startswith("/"):
        port = f"&port={p['port']}" if p.get("port") else ""
        return f"postgresql://{auth}@/{p['dbname']}?host={host}{port}"
    port = f":{p['port']}" if p.get("port") else ""
    return f"postgresql://{auth}@{host}{port}/{p['dbname']}"


MIGRATE_AND_LOAD = """
import sys, django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("automate", "load", sys.argv[1])
"""


def migrate_and_load(env: dict[str, str], workflow: Path) -> None:
    """``automate migrate`` then ``automate load WORKFLOW``, in one process (one Django start-up)."""
    command = [sys.executable, "-c", MIGRATE_AND_LOAD, str(workflow)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"migrating and loading {workflow.name} failed:\n{done.stdout}{done.stderr}")


def admin_url(base: str, name: str) -> str:
    """Where to create the database ``name``: ``base``, or its server's ``postgres`` database when
    ``base`` is that database itself (``--database-url``), which may not exist yet."""
    params = conninfo_to_dict(base)
    if params.get("dbname") == name:
        params["dbname"] = "postgres"
    return make_conninfo("", **params)
