"""A benchmark database of the tests' own, next to the test database, dropped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from benchmarks.databases import django_url
from tests.conftest import database_url

AUTOMATE = str(Path(sys.executable).with_name("automate"))
ROOT = Path(__file__).resolve().parents[2]


def harness_env(home: Path) -> dict[str, str]:
    """The environment of a harness run: no DATABASE_URL (each test passes --database-url), its
    own AUTOMATE_HOME (where an embedded PostgreSQL would put its data), the checkout first."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {
        **env,
        "AUTOMATE_HOME": str(home),
        "DJANGO_SETTINGS_MODULE": "asgi.settings",
        "SECRET_KEY": "bench-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "automate"), str(ROOT), env.get("PYTHONPATH", "")]),
    }


def drop(base: str, name: str) -> None:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def bench_url(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``<test database>_bench`` and its ``_history`` sibling, migrated once for every harness test
    of the session (the harnesses empty the tables they use before each run); dropped afterwards."""
    base = database_url()
    params = conninfo_to_dict(base)
    name = f"{params['dbname']}_bench"
    names = [name, f"{name}_history"]
    urls = [make_conninfo("", **{**params, "dbname": n}) for n in names]
    for n in names:
        drop(base, n)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(n)))
    env = harness_env(tmp_path_factory.mktemp("home"))
    migrations = [
        subprocess.Popen([AUTOMATE, "migrate"], env={**env, "DATABASE_URL": django_url(url)},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for url in urls
    ]  # fmt: skip
    for proc in migrations:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode(errors="replace")
    yield urls[0]
    for n in names:
        drop(base, n)
