"""Failover cells: webhooks driven through the topology while the primary's host is lost (or a
switchover runs), then the chaos suite's ledger, and the time to recovery measured.

Recovery figures, from the fault (wall clock):

* ``ingest_recovery``: the first 202 to a webhook the sender had to retry after the fault (the
  first delivery the outage refused, accepted again);
* ``job_recovery``: the first job completed after the fault (for a killed host, from the instant
  all its processes are dead: only the new primary can have committed that job).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.chaos.driver import DriveResult, drive
from tests.chaos.ledger import Ledger, check
from tests.chaos.platform import SECRET
from tests.chaos.sink import Sink
from tests.ha.topology import HaPlatform, PatroniNode, Replication, Topology


@dataclass
class CellResult:
    cell: str
    synchronous: bool
    accepted: int
    ledger: Ledger
    ingest_recovery: float
    job_recovery: float
    old_leader: str
    new_leader: str
    sender_retries: int
    notes: list[str] = field(default_factory=list)

    def row(self) -> str:
        lg = self.ledger
        mode = "sync" if self.synchronous else "async"
        return (
            f"| {self.cell} | {mode} | {self.accepted} | {lg.lost} | {lg.duplicate_events} "
            f"| {lg.duplicate_runs} | {lg.unexplained_effects} | {self.ingest_recovery:.1f} "
            f"| {self.job_recovery:.1f} | {self.old_leader} -> {self.new_leader} |"
        )


class Rig:
    """A topology, the sink and the platform on it (two web processes, two workers)."""

    def __init__(self, replication: Replication, root: Path | None = None) -> None:
        self.topology = Topology(replication, root)
        self.sink = Sink()
        try:
            self.platform = HaPlatform(
                self.topology.proxy.url(), self.sink.url, self.topology.root, lease=3.0, step_timeout=2.0
            )
            # the web answers 503 fast while no primary is reachable; senders retry
            self.platform.env["AUTOMATE_INGEST_DB_TIMEOUT"] = "2"
            self.platform.setup()
            self.platform.start_web()
            self.platform.start_worker()
            self.platform.start_worker()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if hasattr(self, "platform"):
            self.platform.stop()
        self.sink.close()
        self.topology.close()


def _first_completion_after(url: str, since: float) -> float:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM min(completed_at)) FROM automate_outbox_job "
            "WHERE completed_at > to_timestamp(%s)",
            [since],
        ).fetchone()
    return float(row[0]) - since if row and row[0] is not None else float("nan")


def _ingest_recovery(result: DriveResult, fault_monotonic: float) -> float:
    retried = [
        o.acked_at for o in result.acked if o.acked_at and o.acked_at > fault_monotonic and o.tries > 1
    ]
    return (min(retried) - fault_monotonic) if retried else 0.0


async def run_cell(
    name: str,
    rig: Rig,
    fault: Callable[[Topology], PatroniNode],
    *,
    count: int,
    rate: float,
    fault_at: float,
    before_fault: Callable[[Topology], None] | None = None,
) -> CellResult:
    """Drive ``count`` webhooks at ``rate``; at ``fault_at`` seconds run ``fault`` (which returns the
    node that should lead afterwards); wait for that; check the ledger."""
    topo = rig.topology
    old = topo.leader()
    assert old is not None
    run_id = f"{name}-{int(time.time() * 1000)}"
    driving = asyncio.create_task(
        drive(rig.platform.hooks_urls, SECRET, count=count, rate=rate, run_id=run_id, give_up_after=120)
    )
    await asyncio.sleep(fault_at)
    if before_fault is not None:
        await asyncio.to_thread(before_fault, topo)
    fault_wall, fault_mono = time.time(), time.monotonic()
    expected = await asyncio.to_thread(fault, topo)
    if fault is kill_primary_host:  # from the instant the host is dead: it commits nothing after
        fault_wall, fault_mono = time.time(), time.monotonic()
    await asyncio.to_thread(
        lambda: _wait_leader(topo, expected, within=90),
    )
    result = await driving
    if fault is partition_primary:  # the old primary joins again once the checks have what they need
        await asyncio.to_thread(topo.heal, old)
    url = topo.proxy.url()
    ledger = await asyncio.to_thread(check, url, result, rig.sink, 120.0)
    new = topo.leader()
    return CellResult(
        cell=name,
        synchronous=topo.replication.synchronous,
        accepted=len(result.acked),
        ledger=ledger,
        ingest_recovery=_ingest_recovery(result, fault_mono),
        job_recovery=await asyncio.to_thread(_first_completion_after, url, fault_wall),
        old_leader=old.name,
        new_leader=new.name if new else "none",
        sender_retries=sum(o.tries - 1 for o in result.outcomes),
    )


def _wait_leader(topo: Topology, node: PatroniNode, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        leader = topo.leader()
        if leader is node:
            return
        time.sleep(0.2)
    raise AssertionError(f"{node.name} did not become the leader within {within}s")


# --- faults -------------------------------------------------------------------------------------


def kill_primary_host(topo: Topology) -> PatroniNode:
    """kill -9 the leader's Patroni and PostgreSQL (the host is lost); the standby must lead."""
    leader = topo.leader()
    assert leader is not None
    standby = next(n for n in topo.nodes if n is not leader)
    leader.kill9()
    return standby


def partition_primary(topo: Topology) -> PatroniNode:
    """Cut the leader's host off from etcd, HAProxy, the standby, the web processes and the workers
    (nftables rules, both directions, open connections too). It keeps running: it can renew
    nothing in etcd, so Patroni demotes it when its leader key expires, and the standby, which
    still reaches etcd, is promoted. A commit it takes meanwhile waits for a sync standby it can
    no longer reach, so no sender is told 2xx for a write that only the cut-off host holds."""
    leader = topo.leader()
    assert leader is not None
    standby = next(n for n in topo.nodes if n is not leader)
    topo.partition(leader)
    return standby


def switchover(topo: Topology) -> PatroniNode:
    leader = topo.leader()
    assert leader is not None
    standby = next(n for n in topo.nodes if n is not leader)
    topo.switchover(standby)
    return standby


def stall_replication(topo: Topology) -> None:
    """Freeze the leader's WAL senders (SIGSTOP): nothing more reaches the standby, as over a cut
    link. Synchronous commits now wait for it; asynchronous ones are acknowledged without it.
    The stall lasts STALL seconds (the fault's length), then the fault that follows kills the host."""
    leader = topo.leader()
    assert leader is not None
    senders = leader.walsenders()
    assert senders, "the leader streams to no standby"
    for proc in senders:
        proc.send_signal(signal.SIGSTOP)
    time.sleep(STALL)


#: Seconds the replication stall lasts before the primary's host dies.
STALL = 2.0
