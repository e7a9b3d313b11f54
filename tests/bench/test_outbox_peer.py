"""``automate bench outbox --compare-peer pgqueuer`` and ``--compare-history`` at a tiny size: the
contenders alternate (A B, then B A), each pair gives a ratio and the median is printed, and a
``--database-url`` run starts no embedded PostgreSQL of its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.bench.conftest import AUTOMATE, ROOT, harness_env


def bench(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTOMATE, "bench", "outbox", "--no-chart", "--out", str(home / "out"), *args],
        env=harness_env(home), cwd=home, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def report_of(home: Path) -> dict[str, Any]:
    (path,) = (home / "out").glob("outbox-*.json")
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_peer_drain_alternates_with_ours_and_prints_pair_ratios(bench_url: str, tmp_path: Path) -> None:
    done = bench(["-n", "300", "-w", "1", "--modes", "engine", "--compare-peer", "pgqueuer", "-r", "2",
                  "--database-url", bench_url], tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = report_of(tmp_path)
    assert [r["mode"] for r in report["runs"]] == ["engine", "pgqueuer", "pgqueuer", "engine"]
    for r in report["runs"]:
        assert r["completed"] == 300 and r["jobs_per_second"] > 0 and r["transactions"] > 0
    by_run = {(r["mode"], r["run"]): r["jobs_per_second"] for r in report["runs"]}
    pairs = [round(by_run["engine", i] / by_run["pgqueuer", i], 3) for i in (1, 2)]
    assert report["summary"]["pairs"]["engine/pgqueuer"] == pairs
    line = re.search(r"^engine/pgqueuer: (\d+\.\d{3}) \(median of 2 pairs: (.+)\)$", done.stdout, re.M)
    assert line, done.stdout
    assert line.group(2) == ", ".join(f"{p:.3f}" for p in pairs)
    assert abs(float(line.group(1)) - sum(pairs) / 2) < 0.002  # the median of two
    # the peer ran on the same database, in its own tables
    assert "pgqueuer" in done.stdout
    # --database-url without DATABASE_URL: no embedded PostgreSQL was started for it
    assert "embedded PostgreSQL" not in done.stderr
    assert not any(tmp_path.rglob("postmaster.pid")) and not (tmp_path / "pgdata").exists()


def test_history_comparison_alternates_which_table_goes_first(bench_url: str, tmp_path: Path) -> None:
    done = bench(["-n", "200", "-w", "1", "--modes", "sql", "--history", "500", "--compare-history",
                  "-r", "2", "--database-url", bench_url], tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = report_of(tmp_path)
    assert [r["mode"] for r in report["runs"]] == ["sql", "sql+history", "sql+history", "sql"]
    assert len(report["summary"]["pairs"]["sql+history/sql"]) == 2
    assert re.search(r"^sql\+history/sql: \d+\.\d{3} \(median of 2 pairs: ", done.stdout, re.M), done.stdout


def test_peer_script_refuses_a_database_not_named_for_benchmarks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers.pgqueuer_drain", "-n", "1",
         "--database-url", "postgresql://postgres@127.0.0.1:5432/postgres"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "must contain 'bench'" in done.stderr


def test_compare_peer_refuses_a_rate(tmp_path: Path) -> None:
    done = bench(["-n", "10", "--compare-peer", "pgqueuer", "--rate", "100",
                  "--database-url", "postgresql://postgres@127.0.0.1:5432/x_bench"], tmp_path)  # fmt: skip
    assert done.returncode != 0
    assert "--compare-peer compares drains" in done.stdout + done.stderr
