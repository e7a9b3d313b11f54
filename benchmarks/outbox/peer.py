"""The peer of ``automate bench outbox --compare-peer NAME``: its drain, run as one of the harness's runs.

The peer's script (``benchmarks/peers/<NAME>_drain.py``) runs in a process of its own on the
harness's database, empties its own queue, enqueues the same number of jobs, drains them and
prints what the database recorded as one JSON object; this turns it into a ``RunResult`` so that
it is reported, charted and paired with our runs like any mode.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks.outbox.harness import Harness, RunResult

PEERS = ("pgqueuer",)


def command(harness: Harness) -> list[str]:
    c = harness.config
    return [sys.executable, "-m", f"benchmarks.peers.{c.peer}_drain", "--database-url", harness.url,
            "-n", str(c.jobs), "--tasks", str(c.peer_tasks), "--batch-size", str(c.peer_batch_size),
            "--json"]  # fmt: skip


def run(harness: Harness, index: int) -> RunResult:
    """One drain of the peer's no-op jobs on the harness's database."""
    c = harness.config
    harness.say(
        f"  {c.peer} run {index + 1}/{c.repeat}: {c.peer_tasks} x {c.peer_batch_size}, {c.jobs:,} jobs"
    )
    timeout = c.timeout or max(120.0, c.jobs / 200)
    done = subprocess.run(
        command(harness), env=harness.env, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise SystemExit(f"the {c.peer} drain failed:\n{done.stdout}{done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(lines[-1])
    return RunResult(
        mode=c.peer,
        run=index + 1,
        jobs=c.jobs,
        # a job still in the peer's queue is one it did not drain
        completed=int(found["completed"]) - int(found["left_in_queue"]),
        retried=0,
        seconds=found["seconds"],
        jobs_per_second=found["jobs_per_second"],
        wall_seconds=found["wall_seconds"],
        latency_p50_ms=found["latency_p50_ms"],
        latency_p99_ms=found["latency_p99_ms"],
        latency_max_ms=found["latency_max_ms"],
        transactions=found["transactions"],
        transactions_per_job=found["transactions_per_job"],
        runs_recorded=0,
        steps_recorded=0,
        series=[(float(t), float(v)) for t, v in found["series"]],
    )
