"""The platform as a user runs it: `automate serve` and `automate worker` as processes, a signed
webhook sent with httpx, and the http connector's request arriving at a server this test runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from automate_core.models import ExecutionRun
from tests.conftest import SECRET, database_url, sign

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("live_db")]

AUTOMATE = str(Path(sys.executable).with_name("automate"))


class Received:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrived = threading.Event()


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A small HTTP server on 127.0.0.1 that records what it is sent."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            received.arrived.set()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def platform_env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "asgi.settings",
        "SECRET_KEY": "acceptance-test-secret-key-0123456789abcdefghijklmnop",
        "AUTOMATE_SECRET_TEST_HOOK": SECRET,
        "AUTOMATE_HTTP_ALLOWED_HOSTS": "127.0.0.1:*",
    }


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([AUTOMATE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in {timeout}s")


def post_order(port: int) -> str:
    """Send a signed ``order.created`` webhook to the ``shop`` source; its trace id once accepted."""
    body = json.dumps({"type": "order.created", "id": "A-17"}).encode()
    response = httpx.post(
        f"http://127.0.0.1:{port}/hooks/shop/",
        content=body,
        headers={"content-type": "application/json", "x-automate-signature": sign(body)},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["trace_id"])


def test_signed_webhook_reaches_the_http_connector(
    load: Any, receiver: tuple[str, Received], platform_env: dict[str, str]
) -> None:
    target, received = receiver
    load({
        "sources": [{"slug": "shop", "scheme": "hmac_sha256", "secret_ref": "env:TEST_HOOK"}],
        "workflows": [{"name": "forward", "trigger": {"source": "shop", "event_type": "order.*"},
                       "steps": [{"name": "notify", "connector": "http", "action": "post",
                                  "params": {"url": target + "/orders",
                                             "json": {"order": "{{ event.payload.id }}",
                                                      "trace": "{{ event.trace_id }}"}}}]}],
    })  # fmt: skip
    port = free_port()
    web = start(["serve", "--port", str(port)], platform_env)
    worker = start(["worker", "--poll-interval", "0.2"], platform_env)
    try:
        wait_http(f"http://127.0.0.1:{port}/admin/login/")
        trace_id = post_order(port)
        assert received.arrived.wait(20), "the connector's request never arrived"
        assert received.requests[0]["path"] == "/orders"
        assert received.requests[0]["body"] == {"order": "A-17", "trace": trace_id}
        deadline = time.monotonic() + 10
        while not ExecutionRun.objects.filter(status="succeeded").exists():
            assert time.monotonic() < deadline, "the run was not recorded as succeeded"
            time.sleep(0.1)
        run = ExecutionRun.objects.get()
        assert run.trace_id == trace_id
        runs = subprocess.run(
            [AUTOMATE, "runs"], env=platform_env, capture_output=True, text=True, check=True
        )
        assert "succeeded" in runs.stdout and "forward" in runs.stdout
    finally:
        web_log, worker_log = stop(web), stop(worker)
    assert web.returncode in (0, -signal.SIGTERM), web_log  # uvicorn re-raises SIGTERM after a clean shutdown
    assert worker.returncode == 0, worker_log
    assert "stopped after" in worker_log
