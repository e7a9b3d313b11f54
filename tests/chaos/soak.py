"""The soak: a steady load for a long while; latency, memory, file descriptors and the outbox depth
must stay flat. ``python -m tests.chaos.soak --minutes 10 --rate R`` (CI runs one minute)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg

from tests.chaos.cluster import Cluster
from tests.chaos.driver import sign
from tests.chaos.platform import SECRET, Platform
from tests.chaos.sink import Sink


@dataclass
class Sample:
    t: float
    rss_mb: dict[str, float]
    fds: dict[str, int]
    depth: int
    p99_ms: float


@dataclass
class SoakResult:
    minutes: float
    rate: float
    sent: int = 0
    accepted: int = 0
    failed: int = 0
    samples: list[Sample] = field(default_factory=list)

    def slope(self, values: list[float]) -> float:
        """Least-squares slope per minute over the second half (after warm-up)."""
        pts = [(s.t, v) for s, v in zip(self.samples, values, strict=True)]
        pts = pts[len(pts) // 2 :]
        if len(pts) < 3:
            return 0.0
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        denom = sum((x - mx) ** 2 for x in xs) or 1.0
        return 60.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / denom

    def summary(self) -> dict[str, float]:
        worker_rss = [s.rss_mb.get("worker", 0.0) for s in self.samples]
        web_rss = [s.rss_mb.get("web", 0.0) for s in self.samples]
        fds = [float(sum(s.fds.values())) for s in self.samples]
        p99 = [s.p99_ms for s in self.samples]
        depth = [float(s.depth) for s in self.samples]
        half = len(p99) // 2
        return {
            "minutes": self.minutes,
            "rate": self.rate,
            "sent": self.sent,
            "accepted": self.accepted,
            "failed": self.failed,
            "p99_ms_first_half": statistics.median(p99[:half]) if half else 0.0,
            "p99_ms_second_half": statistics.median(p99[half:]) if p99 else 0.0,
            "p99_ms_slope_per_min": self.slope(p99),
            "worker_rss_mb_end": worker_rss[-1] if worker_rss else 0.0,
            "worker_rss_mb_slope_per_min": self.slope(worker_rss),
            "web_rss_mb_slope_per_min": self.slope(web_rss),
            "fds_slope_per_min": self.slope(fds),
            "outbox_depth_max": max(depth) if depth else 0.0,
        }


def _usage(proc: psutil.Process) -> tuple[float, int]:
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs) / 1e6, sum(p.num_fds() for p in procs)


async def soak(platform: Platform, url: str, *, minutes: float, rate: float) -> SoakResult:
    result = SoakResult(minutes, rate)
    latencies: list[float] = []
    stop_at = time.monotonic() + minutes * 60
    started = time.monotonic()

    async def sender(client: httpx.AsyncClient, i: int) -> None:
        body = json.dumps({"type": "soak.tick", "n": i, "pad": "x" * 800}).encode()
        headers = {"content-type": "application/json", "x-automate-signature": sign(body, SECRET)}
        t0 = time.perf_counter()
        try:
            response = await client.post(platform.hooks_url, content=body, headers=headers)
        except httpx.TransportError:
            result.failed += 1
            return
        latencies.append((time.perf_counter() - t0) * 1000)
        if response.status_code == 202:
            result.accepted += 1
        else:
            result.failed += 1

    async def sampler() -> None:
        assert platform.web is not None
        web = psutil.Process(platform.web.pid)
        workers = [psutil.Process(w.pid) for w in platform.alive_workers()]
        while time.monotonic() < stop_at:
            await asyncio.sleep(5)
            window = latencies[:]
            latencies.clear()
            p99 = statistics.quantiles(window, n=100)[98] if len(window) >= 100 else max(window or [0])
            web_rss, web_fds = _usage(web)
            w_rss, w_fds = 0.0, 0
            for w in workers:
                rss, fds = _usage(w)
                w_rss, w_fds = w_rss + rss, w_fds + fds
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM automate_outbox_job WHERE status IN ('ready','retry')"
                ).fetchone()
            depth = int(row[0]) if row else 0
            result.samples.append(
                Sample(time.monotonic() - started, {"web": web_rss, "worker": w_rss},
                       {"web": web_fds, "worker": w_fds}, depth, p99)
            )  # fmt: skip

    async with httpx.AsyncClient(timeout=10.0) as client:
        sampling = asyncio.create_task(sampler())
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            task = asyncio.create_task(sender(client, i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            next_at += 1.0 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        result.sent = i
        await asyncio.gather(*tasks)
        await sampling
    return result


async def run_soak(
    *, minutes: float, rate: float, workers: int = 1, prefix: str = "automate-soak-"
) -> SoakResult:
    """A soak on a cluster of its own: its PostgreSQL, one web process, ``workers`` workers, a sink."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = Cluster(root / "pg")
    sink = Sink()
    platform = Platform(cluster.url(), sink.url, root, concurrency=32)
    try:
        platform.setup()
        platform.start_web()
        for _ in range(workers):
            platform.start_worker()
        return await soak(platform, cluster.url(), minutes=minutes, rate=rate)
    finally:
        platform.stop()
        sink.close()
        cluster.close()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    result = await run_soak(minutes=args.minutes, rate=args.rate, workers=args.workers)
    print(json.dumps(result.summary(), indent=2))
    return 0 if result.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
