"""The report of ``automate bench outbox``: medians, ratios, the JSON file, the chart, the summary."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import psycopg


def paired(results: list[Any], mode: str, base: str) -> list[float]:
    """``mode``'s jobs/s over ``base``'s, for each repeat that ran both (side by side, minutes apart
    at most): the drift of a shared machine between repeats cancels out of each ratio."""
    bases = {r.run: r.jobs_per_second for r in results if r.mode == base}
    return [round(r.jobs_per_second / bases[r.run], 3) for r in results if r.mode == mode and r.run in bases]


def summarize(results: list[Any], peer: str = "") -> dict[str, Any]:
    """Medians (and extremes) per mode, and each mode's ratios: to itself without history, to the
    raw-SQL baseline, and to the peer; each ratio is the median of the ratios of the pairs."""
    modes: dict[str, Any] = {}
    for mode in dict.fromkeys(r.mode for r in results):
        rs = [r for r in results if r.mode == mode]

        def med(attr: str, rs: list[Any] = rs) -> float:
            return float(statistics.median(getattr(r, attr) for r in rs))

        modes[mode] = {
            "runs": len(rs),
            "jobs_per_second": med("jobs_per_second"),
            "jobs_per_second_min": min(r.jobs_per_second for r in rs),
            "jobs_per_second_max": max(r.jobs_per_second for r in rs),
            "latency_p50_ms": med("latency_p50_ms"),
            "latency_p99_ms": med("latency_p99_ms"),
            "transactions_per_job": med("transactions_per_job"),
        }
    ratios: dict[str, float] = {}
    pairs: dict[str, list[float]] = {}
    for mode in modes:
        if mode == peer:
            continue
        bases = []
        without = mode.removesuffix("+history")
        if without != mode:  # the same mode with and without history
            bases.append(without)
        bases.append("sql+history" if mode.endswith("+history") else "sql")
        if peer:
            bases.append(peer)
        for base in bases:
            ratio = paired(results, mode, base) if base != mode and base in modes else []
            if ratio:
                pairs[f"{mode}/{base}"] = ratio
                ratios[f"{mode}/{base}"] = float(statistics.median(ratio))
    return {"modes": modes, "ratios": ratios, "pairs": pairs}


def machine(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    settings = dict(
        conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', "
            "'synchronous_commit', 'shared_buffers', 'max_connections', 'wal_sync_method')"
        ).fetchall()
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": settings,
            "load_average_at_end": load, "host": platform.node()}  # fmt: skip


def chart_title(c: Any) -> str:
    what = f"{c.rate:,.0f}/s fed" if c.rate else "backlog drain"
    history = f", {c.history:,} completed in history" if c.history else ""
    return f"{c.jobs:,} jobs, {what}, {c.workers} processes x {c.concurrency}, batch {c.batch_size}{history}"


def save(
    document: dict[str, Any], results: list[Any], c: Any, out: TextIO, say: Callable[[str], None]
) -> None:
    c.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = c.out_dir / f"outbox-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str))
    say(f"results: {path}")
    if c.chart:
        from benchmarks.outbox import chart

        png = chart.draw(results, path.with_suffix(".png"), title=chart_title(c))
        say(f"chart:   {png}" if png else "chart:   skipped (pip install 'django-automate[bench]')")
    summary = document["summary"]
    for mode, s in summary["modes"].items():
        out.write(
            f"{mode:<15} median {s['jobs_per_second']:>9,.0f} jobs/s "
            f"(min {s['jobs_per_second_min']:,.0f}, max {s['jobs_per_second_max']:,.0f})  "
            f"latency p50 {s['latency_p50_ms']:,.0f} ms p99 {s['latency_p99_ms']:,.0f} ms  "
            f"{s['transactions_per_job']:.3f} transactions/job\n"
        )
    for name, value in summary["ratios"].items():
        each = ", ".join(f"{r:.3f}" for r in summary["pairs"][name])
        out.write(f"{name}: {value:.3f} (median of {len(summary['pairs'][name])} pairs: {each})\n")
