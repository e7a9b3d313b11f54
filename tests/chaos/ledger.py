"""Checking the claim: every acknowledged webhook is exactly one event and one completed run, and
no side effect happened more often than the recorded attempts explain."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests.chaos.driver import DriveResult
from tests.chaos.sink import Sink


@dataclass
class Ledger:
    accepted: int = 0
    lost: int = 0  # acknowledged, but no event
    duplicate_events: int = 0  # one idempotency key stored twice
    not_finished: int = 0  # job neither completed nor dead when the wait ended
    dead: int = 0
    missing_runs: int = 0  # job completed without a succeeded run
    duplicate_runs: int = 0  # more than one succeeded run for one event
    unexplained_effects: int = 0  # deliveries beyond the job's recorded attempts
    duplicate_effects: int = 0  # deliveries beyond the first, all explained by recorded attempts
    drain_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.duplicate_events or self.not_finished or self.missing_runs
            or self.duplicate_runs or self.unexplained_effects
        )  # fmt: skip


def wait_drained(url: str, timeout: float) -> float:
    """Seconds until no job is ready, retrying or running (the backlog is drained)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM automate_outbox_job WHERE status IN ('ready','retry','running')"
                ).fetchone()
            if row is not None and row[0] == 0:
                return time.monotonic() - started
        except psycopg.OperationalError:
            pass
        time.sleep(0.25)
    return time.monotonic() - started


def check(url: str, drive: DriveResult, sink: Sink, drain_timeout: float = 120.0) -> Ledger:
    ledger = Ledger(accepted=len(drive.acked))
    ledger.drain_seconds = wait_drained(url, drain_timeout)
    acked = {o.key: o.event_id for o in drive.acked}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, array_agg(id) FROM automate_event "
            "WHERE idempotency_key = ANY(%s) GROUP BY idempotency_key",
            [list(acked)],
        ).fetchall()
        stored = {key: ids for key, ids in rows}
        for key, event_id in acked.items():
            ids = stored.get(key, [])
            if event_id not in ids:
                ledger.lost += 1
            if len(ids) > 1:
                ledger.duplicate_events += 1
        jobs = conn.execute(
            "SELECT j.event_id, j.status, j.attempts, "
            "  (SELECT count(*) FROM automate_run r WHERE r.event_id = j.event_id "
            "   AND r.status = 'succeeded') "
            "FROM automate_outbox_job j WHERE j.event_id = ANY(%s)",
            [[e for e in acked.values()]],
        ).fetchall()
    attempts: dict[int, int] = {}
    for event_id, status, job_attempts, succeeded_runs in jobs:
        attempts[event_id] = attempts.get(event_id, 0) + job_attempts
        if status == "dead":
            ledger.dead += 1
        elif status != "completed":
            ledger.not_finished += 1
        elif succeeded_runs == 0:
            ledger.missing_runs += 1
        if succeeded_runs > 1:
            ledger.duplicate_runs += 1
    for event_id in acked.values():
        delivered = sink.deliveries.get(event_id or -1, 0)
        if delivered > max(attempts.get(event_id or -1, 0), 1):
            ledger.unexplained_effects += 1
        elif delivered > 1:
            ledger.duplicate_effects += delivered - 1
    return ledger


def find_secret(url: str, secret: str, log_dir: Path) -> list[str]:
    """Every place the secret's value is stored in clear: ``table.column`` or a log file."""
    hits = []
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')"
        ).fetchall()
        for table, column in columns:
            query = sql.SQL("SELECT count(*) FROM {} WHERE {}::text LIKE %s").format(
                sql.Identifier(table), sql.Identifier(column)
            )
            row = conn.execute(query, [f"%{secret}%"]).fetchone()
            if row and row[0]:
                hits.append(f"{table}.{column}")
    for path in sorted(log_dir.glob("*.log")):
        if secret in path.read_text(errors="replace"):
            hits.append(str(path))
    return hits
