"""``automate serve``: the production flags, the rendered uvicorn command run for real, and one
event followed by its trace id through the JSON logs of the web and worker processes."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from argparse import ArgumentParser, ArgumentTypeError
from pathlib import Path
from typing import Any

import httpx
import pytest

from automate_core.cli import serve
from automate_core.models import ExecutionRun, OutboxJob
from tests.acceptance.test_platform import (
    AUTOMATE,
    free_port,
    platform_env,
    post_order,
    start,
    stop,
    wait_http,
)
from tests.conftest import SECRET

__all__ = ["platform_env"]  # the fixture, imported for these tests


def parse(*argv: str) -> dict[str, Any]:
    parser = ArgumentParser()
    serve.add_arguments(parser)
    return vars(parser.parse_args(argv))


def test_the_defaults_are_the_production_configuration() -> None:
    options = serve.uvicorn_options(parse())
    # uvicorn[standard], with the header and body deadlines (issue 18.1)
    assert options["loop"] == "uvloop"
    assert options["http"] == "automate_core.ingest.deadlines:HttpToolsProtocol"
    assert options["lifespan"] == "on"
    assert options["server_header"] is False
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == "127.0.0.1"  # trust no one else's X-Forwarded-For
    assert options["access_log"] is False
    assert (options["timeout_keep_alive"], options["timeout_graceful_shutdown"]) == (5, 30)
    assert options["backlog"] == 2048


def test_flags_reach_uvicorn() -> None:
    options = serve.uvicorn_options(
        parse(
            "--workers",
            "3",
            "--limit-concurrency",
            "500",
            "--limit-max-requests",
            "10000",
            "--forwarded-allow-ips",
            "10.0.0.0/8",
            "--timeout-keep-alive",
            "75",
            "--access-log",
            "--no-proxy-headers",
            "--uds",
            "/run/automate.sock",
        )
    )
    assert options["workers"] == 3
    assert options["limit_concurrency"] == 500 and options["limit_max_requests"] == 10000
    assert options["forwarded_allow_ips"] == "10.0.0.0/8"
    assert options["timeout_keep_alive"] == 75
    assert options["access_log"] is True and options["proxy_headers"] is False
    assert options["uds"] == "/run/automate.sock"


def test_workers_auto_is_one_per_usable_cpu() -> None:
    import os

    assert parse("--workers", "auto")["workers"] == len(os.sched_getaffinity(0))
    for bad in ("0", "many"):
        with pytest.raises(ArgumentTypeError):
            serve.workers_arg(bad)


def test_a_given_metrics_directory_is_emptied_at_start(tmp_path: Path) -> None:
    """A new process must not inherit a dead one's gauges through a reused pid."""
    (tmp_path / "gauge_livesum_7.db").write_bytes(b"old")
    (tmp_path / "counter_7.db").write_bytes(b"old")
    (tmp_path / "README").write_text("not ours")
    serve.empty_metrics_dir(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README"]


@pytest.mark.acceptance
@pytest.mark.usefixtures("live_db")
def test_the_rendered_uvicorn_command_serves_and_stops_gracefully(
    platform_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    printed = subprocess.run(
        [AUTOMATE, "serve", "--print-command", "--port", str(port), "--workers", "2"],
        env=platform_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    argv = shlex.split(printed.stdout)
    assert argv[:4] == [sys.executable, "-m", "uvicorn", "asgi.asgi:application"]
    assert {"--loop", "uvloop", "--workers", "2"} <= set(argv)
    assert argv[argv.index("--http") + 1] == "automate_core.ingest.deadlines:HttpToolsProtocol"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **platform_env,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "INFO",
        "AUTOMATE_METRICS_ALLOWED_IPS": "127.0.0.1",  # none by default
    }
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        assert httpx.get(base + "/readyz").status_code == 200
        for _ in range(4):  # both processes are likely to answer one of these
            page = httpx.get(base + "/metrics")
            assert page.status_code == 200
        assert "automate_outbox_jobs{status=" in page.text
        assert "automate_event_loop_lag_seconds_bucket" in page.text
        assert list(metrics_dir.glob("gauge_live*.db")), "the processes write to the shared directory"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    log = out.decode(errors="replace")
    assert proc.returncode in (0, -signal.SIGTERM), log
    assert time.monotonic() - started < 35  # within --timeout-graceful-shutdown and its margin
    assert "Application shutdown complete." in log
    # each process removed its live gauges on the way out
    assert not list(metrics_dir.glob("gauge_live*.db")), log
    app_lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line["message"] == "readiness: ready" for line in app_lines)
    # each web process froze its startup heap out of the garbage collector's walks (automate_core.heap)
    frozen = {line["pid"]: line["message"] for line in app_lines if line["message"].startswith("gc: froze ")}
    assert len(frozen) == 2, log
    assert all(int(message.split()[2]) > 10_000 for message in frozen.values()), frozen


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("django-insecure-dev-only-" + "x" * 40, "the development default"),
        ("CHANGE-ME-50-random-characters-CHANGE-ME-50-random-chars", "a placeholder"),
        ("fault-test", "10 characters, fewer than 50"),
        ("a" * 30 + "b" * 30, "fewer than 5 distinct characters"),
    ],
)
def test_serve_refuses_a_weak_secret_key(platform_env: dict[str, str], key: str, why: str) -> None:
    """Issue 18.7: the key signs the admin's sessions; refused by name, with the fix."""
    for extra in ([], ["--print-command"]):
        done = subprocess.run(
            [AUTOMATE, "serve", "--port", str(free_port()), *extra],
            env={**platform_env, "SECRET_KEY": key, "DEBUG": "0"}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode != 0
        assert "SECRET_KEY is too weak to serve with" in done.stderr and why in done.stderr, done.stderr
        assert "DEBUG=1" in done.stderr and "Traceback" not in done.stderr
        assert key not in done.stderr + done.stdout


def test_a_strong_key_or_debug_serves() -> None:
    assert (
        serve.weak_secret_key("k8RZ-production-like-key-6f1c2e9a0b7d4e3f8a5c1b2d9e0f7a6b5c4d3e2f1a0") is None
    )
    from django.test import override_settings

    with override_settings(DEBUG=True, SECRET_KEY="django-insecure-dev-only-" + "x" * 40):
        serve.check_secret_key()  # automate up / DEBUG: development keys are fine


WORKFLOW = {
    "sources": [{"slug": "shop", "scheme": "hmac_sha256", "secret_ref": "env:TEST_HOOK"}],
    "workflows": [
        {"name": "note", "trigger": {"source": "shop", "event_type": "order.*"},
         "steps": [{"name": "say", "connector": "log", "action": "info",
                    "params": {"message": "order {{ event.payload.id }} noted"}}]},
        # fails for good (no message): the worker's own "is dead" line must carry the trace id too
        {"name": "broken", "trigger": {"source": "shop", "event_type": "order.*"},
         "steps": [{"name": "say", "connector": "log", "action": "info", "params": {}}]},
    ],
}  # fmt: skip


@pytest.mark.acceptance
@pytest.mark.usefixtures("live_db")
def test_one_grep_follows_one_event_through_web_and_worker_logs(
    load: Any, platform_env: dict[str, str]
) -> None:
    load(WORKFLOW)
    port = free_port()
    env = {**platform_env, "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    web = start(["serve", "--port", str(port), "--access-log", "--log-level", "info"], env)
    worker = start(["worker", "--poll-interval", "0.2"], env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        trace_id = post_order(port)
        deadline = time.monotonic() + 20
        while not OutboxJob.objects.filter(status="dead").exists():
            assert time.monotonic() < deadline, "the job did not end dead"
            time.sleep(0.1)
        assert ExecutionRun.objects.filter(workflow_name="note", status="succeeded").exists()
    finally:
        web_log, worker_log = stop(web), stop(worker)
    web_lines = [json.loads(line) for line in web_log.splitlines() if line.startswith("{")]
    worker_lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    # web: the access log line of the webhook request carries the event's trace id
    (access,) = [line for line in web_lines if line.get("trace_id") == trace_id]
    assert "/hooks/shop/" in access["message"] and "202" in access["message"]
    # worker: the connector's line, written while running the job, carries it too
    said = [line for line in worker_lines if line.get("trace_id") == trace_id]
    assert any(line["message"] == "order A-17 noted" for line in said), worker_log
    # ...and so does the worker's own line about the job, from the context of the job it runs
    assert any(" is dead after attempt " in line["message"] for line in said), worker_log
    # the worker froze its startup heap once (automate_core.heap)
    assert len([line for line in worker_lines if line["message"].startswith("gc: froze ")]) == 1, worker_log
    assert SECRET not in web_log + worker_log
