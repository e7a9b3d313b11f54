"""Installing a plugin package the way users do, and running the worker until a job is done."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from automate_core.worker.pool import WorkerOptions, WorkerPool
from tests.helpers import eventually


def pip_install(source: Path, work: Path) -> Path:
    """``pip install --target`` a copy of ``source`` (offline: setuptools is in the test venv);
    returns the directory holding the package and its dist-info, for ``sys.path``/PYTHONPATH."""
    copy = work / "src"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(copy)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    return target


def plain_pytest(tests: Path, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a plugin author's tests as they would: plain pytest, no Django settings of theirs."""
    import os

    dropped = {"DJANGO_SETTINGS_MODULE", "AUTOMATE_HTTP_ALLOWED_HOSTS"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider",
         "--rootdir", str(cwd), "-c", os.devnull, str(tests)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


async def run_worker_until(done: Callable[[], object], within: float = 20.0) -> None:
    pool = WorkerPool(WorkerOptions(concurrency=4, batch_size=4, poll_interval=0.1, lease_seconds=5))
    task = asyncio.create_task(pool.run())
    try:
        await eventually(done, within)
    finally:
        pool.stop()
        await task
