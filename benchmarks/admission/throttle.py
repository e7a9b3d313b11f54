"""Throttle accuracy: runs started per period, observed, against the limit set, over two workers.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/automate \\
        .venv/bin/python -m benchmarks.admission.throttle --limit 20 --period 1 --keys 3 --rate 40 \\
        --seconds 15 [--poll 0.05]

Works in ``<DATABASE_URL's database>_bench`` (dropped and created). A sender emits events for
``--keys`` customers at ``--rate`` events per second per key (above the limit, so that the throttle
delays most of them) for ``--seconds``, through the ingest statement; two ``automate worker``
processes drain them. The workflow throttles at ``--limit`` per ``--period`` per customer, burst 1.
From the runs' ``started_at`` (the database clock) it reports, per key: runs per aligned period
(mean, min, max, full periods only), the most runs in any sliding window of one period, and the
lateness of the delayed runs (start minus turn, the run job's ``available_at``), p50/p99; and that
no event was dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "automate"), str(ROOT)]

from benchmarks.databases import admin_url, bench_url, django_url, migrate_and_load  # noqa: E402

WORKFLOW = """
workflows:
  - name: throttled
    trigger: {{source: bench, event_type: call}}
    throttle: {{limit: {limit}, period: {period}, key: "{{{{ event.payload.customer }}}}"}}
    steps:
      - {{name: call, connector: log, action: debug, params: {{message: "{{{{ event.payload.customer }}}}"}}}}
"""

EMIT = """
WITH e AS (
    INSERT INTO automate_event (source, event_type, payload, headers, trace_id, received_at)
    SELECT 'bench', 'call', jsonb_build_object('customer', 'c' || k), '{}'::jsonb,
           md5(k::text || clock_timestamp()::text), now()
    FROM generate_series(1, %(keys)s) AS k
    RETURNING id
)
INSERT INTO automate_outbox_job (event_id, kind, status, attempts, max_attempts, available_at,
                                 lease_owner, last_error, created_at, updated_at)
SELECT id, 'event', 'ready', 0, 5, now(), '', '', now(), now() FROM e
"""

STARTS = """
SELECT e.payload ->> 'customer', extract(epoch FROM r.started_at)::float8,
       extract(epoch FROM r.started_at - j.available_at)::float8, j.payload ? 'run', j.attempts
FROM automate_run AS r
JOIN automate_event AS e ON e.id = r.event_id
JOIN automate_outbox_job AS j ON j.id = r.job_id
WHERE r.status = 'succeeded'
ORDER BY 1, 2
"""


def prepare(url: str, limit: int, period: float, tmp: Path) -> dict[str, str]:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    with psycopg.connect(admin_url(url, name), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": django_url(url),
        "DJANGO_SETTINGS_MODULE": "asgi.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-secret-key-0123456789abcdefghijklmnop"),
        "LOG_LEVEL": "INFO",  # the sender waits for each worker's "started" line
        "PYTHONPATH": os.pathsep.join([str(ROOT / "automate"), str(ROOT)]),
    }
    path = tmp / "throttle.yaml"
    path.write_text(WORKFLOW.format(limit=limit, period=period))
    migrate_and_load(env, path)
    return env


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def analyse(rows: list[tuple[str, float, float, bool, int]], limit: int, period: float) -> dict[str, object]:
    by_key: dict[str, list[float]] = {}
    late: list[float] = []
    for key, at, lateness, delayed, attempts in rows:
        by_key.setdefault(key, []).append(at)
        if delayed and attempts == 1:
            late.append(lateness)
    report: dict[str, object] = {}
    for key, starts in sorted(by_key.items()):
        t0 = starts[0]
        full = int((starts[-1] - t0) // period)  # whole periods from the first start
        per_period = [
            sum(1 for s in starts if t0 + i * period <= s < t0 + (i + 1) * period) for i in range(full)
        ]
        sliding, j = 0, 0
        for i in range(len(starts)):  # the most starts in any window [s_i, s_i + period)
            while j < len(starts) and starts[j] < starts[i] + period:
                j += 1
            sliding = max(sliding, j - i)
        report[key] = {
            "runs": len(starts),
            "periods": full,
            "per_period_mean": round(statistics.fmean(per_period), 2) if per_period else None,
            "per_period_min": min(per_period, default=None),
            "per_period_max": max(per_period, default=None),
            "max_in_any_sliding_period": sliding,
        }
    report["lateness_ms_p50_p99"] = [
        round(percentile(late, 0.5) * 1000, 1),
        round(percentile(late, 0.99) * 1000, 1),
    ]
    report["limit_per_period"] = limit
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--rate", type=float, default=40.0, help="events per second per key")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--poll", type=float, default=None, help="the workers' AUTOMATE_POLL_INTERVAL (default 1 s)"
    )
    args = parser.parse_args()
    url = bench_url(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/automate"))
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-throttle-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    env = prepare(url, args.limit, args.period, tmp)
    if args.poll is not None:
        env["AUTOMATE_POLL_INTERVAL"] = str(args.poll)
    automate = str(Path(sys.executable).with_name("automate"))
    logs = [open(tmp / f"worker-{i}.log", "wb") for i in range(args.workers)]  # noqa: SIM115
    procs = [
        subprocess.Popen([automate, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs
    ]
    sent = 0
    try:
        until = time.monotonic() + 60
        while time.monotonic() < until and not all(
            "started (concurrency" in (tmp / f"worker-{i}.log").read_text(errors="replace")
            for i in range(args.workers)
        ):
            time.sleep(0.1)  # both workers are up before the first event
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.monotonic()
            tick = 1.0 / args.rate
            while (elapsed := time.monotonic() - started) < args.seconds:
                due = int(elapsed / tick) + 1
                while sent < due:
                    conn.execute(EMIT, {"keys": args.keys})
                    sent += 1
                time.sleep(min(tick, 0.005))  # an open-loop sender: pace by the clock
            expected = sent * args.keys
            deadline = time.monotonic() + expected / (args.limit / args.period) * 1.5 + 60
            while time.monotonic() < deadline:
                row = conn.execute("SELECT count(*) FROM automate_run WHERE status = 'succeeded'").fetchone()
                if row and row[0] >= expected:
                    break
                time.sleep(0.5)
            rows = conn.execute(STARTS).fetchall()
            skipped = conn.execute("SELECT count(*) FROM automate_run WHERE status <> 'succeeded'").fetchone()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    report = analyse([tuple(r) for r in rows], args.limit, args.period)  # type: ignore[misc]
    report["events"] = expected
    report["succeeded_runs"] = len(rows)
    report["other_runs"] = int(skipped[0]) if skipped else 0
    report["args"] = vars(args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
