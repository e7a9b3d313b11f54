"""A frozen worker cannot stall its job: it is done by another worker within the lease bound.

A worker frozen (``SIGSTOP``, a paused VM, a host cut off) must not hold anything another worker
needs: its jobs are back in the queue within ``lease + rescue interval`` and then run to the end.
The dangerous moment is the run journal's flush that ends a run: had the worker sent its
run-finishing UPDATE but not yet its COMMIT, its backend would hold that run's row lock forever
(a backend waiting for the rest of a pipeline is "active", so no idle-in-transaction timeout ends
it), and the worker that takes the job over would wait on that lock forever.

Also here: what bounds the other waits a frozen or partitioned peer could cause (the platform
connections' idle-in-transaction timeout and TCP keepalives, and the takeover's lock timeout).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async

from automate_core import db
from automate_core.models import ExecutionRun, OutboxJob
from tests.conftest import database_url
from tests.helpers import eventually
from tests.worker.test_faults import (  # noqa: F401  (probe_connector: an autouse fixture)
    PROBE_WORKFLOW,
    Workers,
    bulk_events,
    load_and_enqueue,
    probe_connector,
)

pytestmark = pytest.mark.usefixtures("live_db")

LEASE = 2.0
RESCUE = 0.5


def stopped(pid: int) -> bool:
    """True once ``pid`` (a child) has stopped on a signal; reaps nothing."""
    info = os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
    return info is not None and info.si_code == os.CLD_STOPPED


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path, database_url())
    yield w
    for proc, _log in w.procs:  # one may still be stopped: let it go on, then stop it
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
    w.stop_all()


@pytest.mark.slow
async def test_a_worker_frozen_while_ending_its_run_does_not_stall_the_job(
    workers: Workers, tmp_path: Path
) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(PROBE_WORKFLOW % 0)
    await sync_to_async(load_and_enqueue)(path, 0)
    marker = tmp_path / "frozen.pid"
    workers.env["AUTOMATE_TEST_FREEZE_MARKER"] = str(marker)  # whichever runs the job first freezes
    flags = ("--lease", str(LEASE), "--rescue-interval", str(RESCUE))
    procs = [workers.start(*flags), workers.start(*flags)]
    await eventually(lambda: all("started" in workers.log(p) for p in procs), within=60)
    await sync_to_async(bulk_events)(1)

    # the marker is created, then the pid written into it
    await eventually(
        lambda: marker.exists() and marker.read_text().strip(), within=30, message="no worker ran the job"
    )
    frozen_pid = int(await asyncio.to_thread(marker.read_text))
    (frozen,) = [p for p in procs if p.pid == frozen_pid]
    (other,) = [p for p in procs if p is not frozen]
    await eventually(lambda: stopped(frozen.pid), within=10, message="the worker did not freeze")
    frozen_at = time.monotonic()

    # the bound: the frozen worker's lease runs out (at most LEASE after its last heartbeat, which
    # is before the freeze), the next rescue (RESCUE, jittered) hands the job back, the other
    # worker claims and finishes it; 5 s of slack for a loaded machine
    bound = LEASE + RESCUE * 1.1 + 5.0
    try:
        await eventually(
            lambda: OutboxJob.objects.filter(status="completed").exists(),
            within=bound,
            message=f"the job was not completed by the other worker within {bound:.1f}s of the freeze",
        )
    finally:
        waited = time.monotonic() - frozen_at
        os.kill(frozen.pid, signal.SIGCONT)
    job = await OutboxJob.objects.aget()
    assert job.event_id is not None
    assert job.attempts == 2  # it was taken over: the frozen worker's claim was rescued
    assert waited < bound
    # the frozen worker's run had ended when it froze: the takeover saw it done and did not redo it
    runs = [r.status async for r in ExecutionRun.objects.filter(event_id=job.event_id)]
    assert runs == ["succeeded"]
    calls = workers.calls()[job.event_id]
    assert [(c["pid"], c["phase"]) for c in calls] == [(frozen.pid, "start"), (frozen.pid, "end")]
    # resumed, the frozen worker finds its claim taken over and stops cleanly
    assert workers.stop(frozen) == 0, workers.log(frozen)
    assert workers.stop(other) == 0, workers.log(other)


async def test_platform_connections_free_the_locks_of_a_session_that_stopped_talking(
    settings: Any,
) -> None:
    """A platform session that stops in the middle of a transaction (its process froze between
    two statements) is ended by PostgreSQL and its locks freed; keepalives are set at both ends."""
    settings.AUTOMATE_DB_IDLE_IN_TRANSACTION_TIMEOUT = 0.5
    settings.AUTOMATE_DB_TCP_KEEPALIVE = 4.0
    await db.close_pool()  # new connections, with these settings
    await sync_to_async(bulk_events)(1)
    job_id = (await OutboxJob.objects.aget()).id
    pool = await db.get_pool()
    try:
        async with pool.connection() as conn:
            shown = {
                name: (await (await conn.execute(f"SHOW {name}")).fetchone())[0]
                for name in (
                    "idle_in_transaction_session_timeout", "tcp_keepalives_idle",
                    "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout",
                )
            }  # fmt: skip
            assert shown == {
                "idle_in_transaction_session_timeout": "500ms",
                "tcp_keepalives_idle": "4",  # seconds
                "tcp_keepalives_interval": "2",
                "tcp_keepalives_count": "3",
                "tcp_user_timeout": "10000",  # milliseconds
            }
            assert conn.info.get_parameters().get("keepalives_idle") == "4"  # and the client's side
            await conn.execute("BEGIN")
            await conn.execute("UPDATE automate_outbox_job SET updated_at = now() WHERE id = %s", (job_id,))
            # ... and now this session says nothing more: another one waits for the row lock
            async with await psycopg.AsyncConnection.connect(database_url(), autocommit=True) as other:
                await other.execute("SET lock_timeout = '10s'")  # before the fix: LockNotAvailable
                started = time.monotonic()
                await other.execute("SELECT 1 FROM automate_outbox_job WHERE id = %s FOR UPDATE", (job_id,))
                assert time.monotonic() - started < 5
            with pytest.raises(psycopg.Error):  # the stuck session was ended by the server
                await conn.execute("SELECT 1")
    finally:
        await db.close_pool()
