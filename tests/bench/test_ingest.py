"""``benchmarks/ingest/run.py`` at a tiny size: ours and the one-statement bare baseline alternated,
every accepted webhook found in the database, and the ratios of req/s and p99 printed per pair."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.conftest import ROOT, harness_env
from tests.pooler.binaries import require


@pytest.fixture(autouse=True)
def _wrk() -> None:
    """The ingest harness drives the server with wrk: installed by scripts/install-test-services
    when missing (CI), skipped only where it cannot be installed (no root or apt), with why."""
    require("wrk")


def test_ingest_runs_ours_and_the_bare_baseline_alternated(bench_url: str, tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest" / "run.py"), "--database-url", bench_url,
         "--runs", "2", "--duration", "1", "--warmup", "0", "--seed", "1000", "--connections", "4",
         # more distinct requests than 4 connections can send in the second (wrk repeats the pool
         # when it runs out, and a repeat is a duplicate: 200, not 202); 3,000 ran out on CI
         "--pool-rate", "20000", "--json", str(out)],
        env=harness_env(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    runs = json.loads(out.read_text())
    order = [(r["variant"], r["run"]) for r in runs]
    assert order == [("bare1", 1), ("group", 1), ("group", 2), ("bare1", 2)]  # A B, then B A
    for r in runs:
        assert r["accepted"] > 0 and r["missing"] == 0  # every 202 is an event with its job
        assert r["statuses"] == {"202": r["accepted"]}
    line = re.search(
        r"^group/bare1: accepted/s (\d+\.\d\d)x \(pairs ([\d.]+), ([\d.]+)\); p99 (\d+\.\d\d)x \(pairs ",
        done.stdout,
        re.M,
    )
    assert line, done.stdout
    by = {(r["variant"], r["run"]): r["accepted_per_s"] for r in runs}
    pairs = [round(by["group", n] / by["bare1", n], 2) for n in (1, 2)]
    assert [float(line.group(i)) for i in (2, 3)] == pairs
    assert "| bare1: one-statement bare baseline" in done.stdout
