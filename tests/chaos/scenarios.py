"""The fault scenarios: drive webhooks at a steady rate, inject one fault, then check the ledger."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.chaos.cluster import Cluster
from tests.chaos.driver import DriveResult, drive
from tests.chaos.ledger import Ledger, check
from tests.chaos.platform import SECRET, Platform
from tests.chaos.sink import Behaviour, Sink


@dataclass
class Context:
    cluster: Cluster
    platform: Platform
    sink: Sink
    fault_at: float  # seconds after the drive starts
    fault_for: float  # seconds the fault lasts (where that applies)


Fault = Callable[[Context], Awaitable[None]]


@dataclass
class Result:
    scenario: str
    accepted: int
    ledger: Ledger
    sender_retries: int
    recovery_seconds: float
    rate_before: float
    rate_during: float
    rate_after: float
    notes: list[str] = field(default_factory=list)
    drive: DriveResult | None = None  # what the sender saw, webhook by webhook

    @property
    def ok(self) -> bool:
        return self.ledger.ok


async def _in_thread(func: Callable[[], object]) -> None:
    await asyncio.to_thread(func)


# --- faults -------------------------------------------------------------------------------------


async def none(ctx: Context) -> None:
    await asyncio.sleep(ctx.fault_for)


async def worker_kill9(ctx: Context) -> None:
    """kill -9 a worker every second during the window, starting a replacement each time."""
    end = time.monotonic() + ctx.fault_for
    while time.monotonic() < end:
        alive = ctx.platform.alive_workers()
        if alive:
            ctx.platform.signal_worker(random.choice(alive), signal.SIGKILL)
        ctx.platform.start_worker()
        await asyncio.sleep(1.0)


async def worker_sigterm(ctx: Context) -> None:
    end = time.monotonic() + ctx.fault_for
    while time.monotonic() < end:
        alive = ctx.platform.alive_workers()
        if alive:
            ctx.platform.signal_worker(random.choice(alive), signal.SIGTERM)
        ctx.platform.start_worker()
        await asyncio.sleep(1.5)


async def web_kill9(ctx: Context) -> None:
    ctx.platform.kill_web()
    await asyncio.sleep(ctx.fault_for)
    await _in_thread(ctx.platform.start_web)


async def pg_restart_fast(ctx: Context) -> None:
    await _in_thread(ctx.cluster.restart)


async def pg_restart_slow(ctx: Context) -> None:
    await _in_thread(ctx.cluster.stop)
    await asyncio.sleep(ctx.fault_for)
    await _in_thread(ctx.cluster.start)


async def pg_terminate(ctx: Context) -> None:
    for _ in range(3):
        await _in_thread(ctx.cluster.terminate_backends)
        await asyncio.sleep(ctx.fault_for / 3)


async def pg_pause(ctx: Context) -> None:
    await _in_thread(ctx.cluster.pause)
    await asyncio.sleep(ctx.fault_for)
    await _in_thread(ctx.cluster.resume)


def _sink(behaviour: Behaviour) -> Fault:
    async def fault(ctx: Context) -> None:
        ctx.sink.behaviour = behaviour
        await asyncio.sleep(ctx.fault_for)
        ctx.sink.calm()

    return fault


async def lease_expiry(ctx: Context) -> None:
    """Freeze a worker (SIGSTOP) past its lease while it holds jobs; others take them over; then
    let it continue: its late completions must not overwrite the new owners' results."""
    alive = ctx.platform.alive_workers()
    if not alive:
        return
    victim = alive[0]
    ctx.sink.behaviour = Behaviour(delay=0.5)  # so that the victim surely holds jobs mid-step
    await asyncio.sleep(1.0)
    ctx.platform.signal_worker(victim, signal.SIGSTOP)
    await asyncio.sleep(max(ctx.fault_for, ctx.platform.lease * 3))
    ctx.platform.signal_worker(victim, signal.SIGCONT)
    ctx.sink.calm()


SCENARIOS: dict[str, Fault] = {
    "baseline": none,
    "worker-kill9": worker_kill9,
    "worker-sigterm": worker_sigterm,
    "web-kill9": web_kill9,
    "pg-restart-fast": pg_restart_fast,
    "pg-restart-slow": pg_restart_slow,
    "pg-terminate-backends": pg_terminate,
    "pg-pause": pg_pause,
    "connector-hang": _sink(Behaviour(hang_ratio=0.3)),
    "connector-flaky": _sink(Behaviour(fail_ratio=0.3)),
    "connector-slow": _sink(Behaviour(delay=0.3)),
    "lease-expiry": lease_expiry,
}


# --- running one scenario -----------------------------------------------------------------------


def _rate(drive_result: DriveResult, start: float, end: float) -> float:
    if end <= start:
        return 0.0
    n = sum(1 for o in drive_result.acked if o.acked_at is not None and start <= o.acked_at < end)
    return n / (end - start)


async def run_scenario(
    name: str,
    cluster: Cluster,
    platform: Platform,
    sink: Sink,
    *,
    count: int,
    rate: float,
    fault_at: float,
    fault_for: float,
    workers: int = 2,
) -> Result:
    sink.calm()
    if platform.web is None or platform.web.poll() is not None:
        await asyncio.to_thread(platform.start_web)
    while len(platform.alive_workers()) < workers:
        platform.start_worker()
    ctx = Context(cluster, platform, sink, fault_at, fault_for)
    run_id = f"{name}-{int(time.time() * 1000)}"
    driving = asyncio.create_task(drive(platform.hooks_url, SECRET, count=count, rate=rate, run_id=run_id))
    started = time.monotonic()
    await asyncio.sleep(fault_at)
    fault_started = time.monotonic()
    await SCENARIOS[name](ctx)
    fault_ended = time.monotonic()
    result = await driving
    sink.calm()
    ledger = await asyncio.to_thread(check, cluster.url(), result, sink)
    after_fault = [o.acked_at for o in result.acked if o.acked_at and o.acked_at >= fault_ended]
    recovery = (min(after_fault) - fault_ended) if after_fault else float("nan")
    return Result(
        scenario=name,
        accepted=len(result.acked),
        ledger=ledger,
        sender_retries=sum(o.tries - 1 for o in result.outcomes),
        recovery_seconds=max(0.0, recovery),
        rate_before=_rate(result, started, fault_started),
        rate_during=_rate(result, fault_started, fault_ended),
        rate_after=_rate(result, fault_ended, result.finished),
        drive=result,
    )
