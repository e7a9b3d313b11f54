"""Metrics across processes, the loop monitor, the thread-offload gauges, the worker's ops port."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from automate_core.observability import exposition, metrics, process
from automate_core.observability.loop import start_loop_monitor, stop_loop_monitor
from automate_core.plugins import offload
from tests.ops.test_endpoints import samples

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from prometheus_client import Counter, Gauge
    jobs = Counter("ops_test_jobs", "jobs")
    running = Gauge("ops_test_running", "running", multiprocess_mode="livesum")
    jobs.inc(int(sys.argv[1]))
    running.set(int(sys.argv[2]))
    if sys.argv[3] == "exit":
        from prometheus_client.multiprocess import mark_process_dead
        mark_process_dead(os.getpid())
    else:
        print("ready", flush=True)
        time.sleep(60)
    """
)


def child(path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)}
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.PIPE, text=True)


def test_one_scrape_counts_every_process_and_forgets_dead_ones_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exited = child(tmp_path, "3", "5", "exit")  # a clean exit: marks itself dead
    exited.communicate(timeout=30)
    assert exited.returncode == 0
    killed = child(tmp_path, "4", "7", "stay")  # will die by SIGKILL, saying nothing
    alive = child(tmp_path, "10", "1", "stay")
    try:
        for proc in (killed, alive):
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=10)
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        body, _ = exposition.render("")
        page = samples(body.decode())
        # every process's counter stays counted (totals never go down)...
        assert page["ops_test_jobs_total"] == 3 + 4 + 10
        # ...but only the live process's gauge is summed
        assert page["ops_test_running"] == 1
        assert not list(tmp_path.glob(f"gauge_live*_{killed.pid}.db"))
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.communicate(timeout=10)


async def test_the_loop_monitor_measures_a_blocked_loop(caplog: pytest.LogCaptureFixture) -> None:
    task = start_loop_monitor(0.02, warn_after=0.2)
    assert start_loop_monitor() is task  # once per loop
    try:
        await asyncio.sleep(0.05)
        count, total = _count(metrics.event_loop_lag), _sum(metrics.event_loop_lag)
        with caplog.at_level(logging.WARNING, logger="automate.observability"):
            time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point of this test
            # the signal is a sample the monitor task records: poll the histogram
            while _count(metrics.event_loop_lag) < count + 1:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        # the monitor's timer fired at least 0.3 - 0.02 s late
        assert _sum(metrics.event_loop_lag) - total >= 0.25
        assert any("event loop blocked for" in r.getMessage() for r in caplog.records)
    finally:
        await stop_loop_monitor()
    assert task.done()


async def test_offload_gauges_show_busy_threads_and_waiting_calls(settings: Any) -> None:
    settings.AUTOMATE_THREAD_POOL_SIZE = 1
    offload._limiters.pop(asyncio.get_running_loop(), None)
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    import threading

    gate = threading.Event()

    def hold() -> None:
        loop.call_soon_threadsafe(release.set)
        gate.wait(10)

    first = asyncio.create_task(offload.run_sync(hold))
    await release.wait()
    second = asyncio.create_task(offload.run_sync(lambda: None))
    await asyncio.sleep(0.05)
    from automate_core.observability.loop import sample_pools

    sample_pools()
    try:
        assert _value(metrics.offload_busy) == 1
        assert _value(metrics.offload_limit) == 1
        assert _value(metrics.offload_waiting) == 1
    finally:
        gate.set()
        await asyncio.gather(first, second)
        offload._limiters.pop(asyncio.get_running_loop(), None)
    sample_pools()
    assert _value(metrics.offload_busy) == 0
    assert _value(metrics.offload_waiting) == 0


@pytest.mark.usefixtures("live_db")
async def test_a_worker_serves_its_own_health_and_metrics() -> None:
    observer = await process.start_worker_observability(port=-1)
    try:
        assert observer.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{observer.port}") as c:
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            assert (await c.get("/readyz")).status_code == 200
            page = await c.get("/metrics")
            assert page.status_code == 200
            assert "automate_jobs_claimed_total" in page.text
            # the queue gauges are the web's job: no database read per worker scrape
            assert "automate_outbox_jobs" not in page.text
            assert (await c.get("/admin/")).status_code == 404
            assert (await c.get("/metrics", headers={"X-Forwarded-For": "1.2.3.4"})).status_code == 403
    finally:
        await observer.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as c:
            await c.get(f"http://127.0.0.1:{observer.port}/healthz")


async def test_a_busy_metrics_port_does_not_stop_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with caplog.at_level(logging.ERROR, logger="automate.observability"):
            observer = await process.start_worker_observability(port=taken.getsockname()[1])
        await observer.stop()
    assert observer.port is None
    assert any("cannot listen on 127.0.0.1" in r.getMessage() for r in caplog.records)


async def test_no_port_means_no_server() -> None:
    observer = await process.start_worker_observability()
    await observer.stop()
    assert observer.port is None


def _samples(metric: Any) -> list[Any]:
    return [s for family in metric.collect() for s in family.samples]


def _value(metric: Any) -> float:
    (sample,) = _samples(metric)
    return float(sample.value)


def _count(histogram: Any) -> float:
    return float(next(s.value for s in _samples(histogram) if s.name.endswith("_count")))


def _sum(histogram: Any) -> float:
    return float(next(s.value for s in _samples(histogram) if s.name.endswith("_sum")))
