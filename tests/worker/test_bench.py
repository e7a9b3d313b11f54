"""``automate bench outbox``, the small version CI can afford: it drains real jobs with real worker
processes, checks them, and writes its JSON result (and chart, when matplotlib is installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import database_url

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]

AUTOMATE = str(Path(sys.executable).with_name("automate"))
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "asgi.settings",
    "SECRET_KEY": "bench-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
}


@pytest.fixture
def bench_database() -> Iterator[str]:
    """The harness creates ``<test database>_bench``; it is dropped afterwards."""
    base = database_url()
    yield base
    name = f"{psycopg.conninfo.conninfo_to_dict(base)['dbname']}_bench"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))


def test_bench_drains_jobs_with_every_mode_and_reports_them(bench_database: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [AUTOMATE, "bench", "outbox", "-n", "2000", "-w", "1", "-c", "32", "-b", "50",
         "--modes", "engine,noop,sql", "--out", str(tmp_path)],
        env={**ENV, "DATABASE_URL": bench_database},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = tmp_path.glob("outbox-*.json")
    report = json.loads(result.read_text())
    runs = {r["mode"]: r for r in report["runs"]}
    assert set(runs) == {"engine", "noop", "sql"}
    for r in runs.values():
        assert r["completed"] == 2000 and r["retried"] == 0
        assert r["jobs_per_second"] > 0 and r["latency_p99_ms"] >= r["latency_p50_ms"] > 0
        assert r["transactions"] > 0 and r["series"]
    engine = runs["engine"]
    assert (engine["runs_recorded"], engine["steps_recorded"]) == (2000, 2000)
    assert runs["sql"]["runs_recorded"] == 0  # the baseline runs no engine
    # batched claims and settlements: far fewer commits than jobs without the engine
    assert runs["noop"]["transactions_per_job"] < 0.5 and runs["sql"]["transactions_per_job"] < 0.5
    assert set(report["summary"]["ratios"]) == {"engine/sql", "noop/sql"}
    assert "engine/sql:" in done.stdout
    chart = result.with_suffix(".png")
    if importlib.util.find_spec("matplotlib") is not None:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not chart.exists() and "chart:   skipped" in done.stderr


def test_bench_refuses_a_database_not_named_for_benchmarks(tmp_path: Path) -> None:
    done = subprocess.run(
        [AUTOMATE, "bench", "outbox", "-n", "10", "--database-url", database_url(), "--out", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "must contain 'bench'" in done.stdout + done.stderr


def test_bench_at_the_workers_defaults_with_days_of_history_partitions(
    bench_database: str, tmp_path: Path
) -> None:
    """Without -c and -b the drain runs at the worker's own defaults; --history-days gives the
    history tables the partitions of that many more days (twice prepared, still that many)."""
    name = f"{psycopg.conninfo.conninfo_to_dict(bench_database)['dbname']}_bench"
    url = psycopg.conninfo.make_conninfo(bench_database, dbname=name)
    for _ in range(2):
        done = subprocess.run(
            [AUTOMATE, "bench", "outbox", "-n", "300", "-w", "1", "--modes", "engine", "--history-days", "3",
             "--no-chart", "--out", str(tmp_path)],
            env={**ENV, "DATABASE_URL": bench_database},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    # legacy, today, the 7 days ahead, 3 more
    assert "12 day partitions per history table (--history-days 3)" in done.stdout + done.stderr
    with psycopg.connect(url) as conn:
        for table in ("automate_event", "automate_run", "automate_step_run"):
            row = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [table]
            ).fetchone()
            assert row == (12,), table
    report = json.loads(sorted(tmp_path.glob("outbox-*.json"))[-1].read_text())
    assert (report["config"]["concurrency"], report["config"]["batch_size"]) == (128, 50)
