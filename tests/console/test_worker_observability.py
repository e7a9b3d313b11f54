"""``automate worker`` serves its own /healthz, /readyz and /metrics (the probes in deploy/ rely on it).

The port comes from ``--metrics-port`` or, by default, ``AUTOMATE_WORKER_METRICS_PORT``; 0 is off.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.acceptance.test_platform import free_port, platform_env, start, stop, wait_http

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("live_db")]

__all__ = ["platform_env"]  # a fixture, imported from the acceptance tests


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_worker_serves_its_probes_and_metrics_on_the_port_it_is_given(
    platform_env: dict[str, str],
) -> None:
    flag, env, off = free_port(), free_port(), free_port()
    by_flag = start(["worker", "--metrics-port", str(flag)], platform_env)
    by_env = start(["worker"], {**platform_env, "AUTOMATE_WORKER_METRICS_PORT": str(env)})
    switched_off = start(
        ["worker", "--metrics-port", "0"], {**platform_env, "AUTOMATE_WORKER_METRICS_PORT": str(off)}
    )
    try:
        for port in (flag, env):
            wait_http(f"http://127.0.0.1:{port}/healthz")
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, ready.text
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            assert "automate_event_loop_lag_seconds" in metrics
        assert not listening(off)
    finally:
        logs = [stop(p) for p in (by_flag, by_env, switched_off)]
    assert [p.returncode for p in (by_flag, by_env, switched_off)] == [0, 0, 0], logs
    assert not listening(flag) and not listening(env)  # the ops server stopped with the worker
