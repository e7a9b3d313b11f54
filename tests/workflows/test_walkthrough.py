"""A new user's first workflow, end to end, as processes: write a three-step file with a condition
and a secret, load it, fire it with a signed webhook, watch it in the admin, see a step break,
fix the file, and resume the run from the failed step without repeating the earlier steps."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from automate_core.models import ExecutionRun, StepRun
from tests.acceptance.test_platform import AUTOMATE, free_port, start, stop, wait_http
from tests.conftest import SECRET, database_url, sign

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("live_db")]

API_TOKEN = "shop-api-token-4c1d9e"

WORKFLOW_FILE = """
sources:
  - slug: shop
    scheme: hmac_sha256
    secret_ref: env:TEST_HOOK
workflows:
  - name: order_flow
    trigger:
      source: shop
      event_type: "order.*"
      condition: event.payload.total > 0          # free orders are ignored
    max_attempts: 2
    secrets: [SHOP_API]
    steps:
      - name: check
        connector: log
        action: info
        params:
          message: "order {{{{ event.payload.id }}}} for {{{{ event.payload.total }}}}"
      - name: charge
        connector: http
        action: post
        params:
          url: {api}/charge
          headers: {{Authorization: 'Bearer {{{{ secret("SHOP_API") }}}}'}}
          json: {{order: "{{{{ event.payload.id }}}}", amount: "{{{{ event.payload.total }}}}"}}
      - name: confirm
        connector: http
        action: post
        params:
          url: {api}/{confirm_path}
          json:
            order: "{{{{ event.payload.id }}}}"
            charge: "{{{{ steps.charge.output.body.charge_id }}}}"
"""


class Api:
    """The shop's API on 127.0.0.1: /charge answers a charge id, /confirm answers ok, else 404."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                api.requests.append((self.path, dict(self.headers), body))
                if self.path not in ("/charge", "/confirm"):
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                answer = {"charge_id": f"ch_{body['order']}"} if self.path == "/charge" else {"ok": True}
                self.wfile.write(json.dumps(answer).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for path, _headers, _body in self.requests]


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([AUTOMATE, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for(predicate: Any, what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_write_load_fire_watch_break_fix_resume(api: Api, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "asgi.settings",
        "SECRET_KEY": "walkthrough-secret-key-0123456789abcdefghijklmnopqrstuv",
        "AUTOMATE_SECRET_TEST_HOOK": SECRET,
        "AUTOMATE_SECRET_SHOP_API": API_TOKEN,
        "AUTOMATE_HTTP_ALLOWED_HOSTS": "127.0.0.1:*",
    }
    # 1. write the file (with a typo in the confirm step's path) and load it
    path = tmp_path / "shop.yaml"
    path.write_text(WORKFLOW_FILE.format(api=api.url, confirm_path="confrim"))
    assert "1 workflow (1 new version), 3 steps" in cli(env, "load", str(path))

    port = free_port()
    web = start(["serve", "--port", str(port)], env)
    worker = start(["worker", "--poll-interval", "0.2"], env)
    try:
        wait_http(f"http://127.0.0.1:{port}/admin/login/")

        # 2. fire it: a free order (the condition says no) and a paid one
        for order in ({"id": "A0", "total": 0}, {"id": "A1", "total": 25}):
            body = json.dumps({"type": "order.created", **order}).encode()
            response = httpx.post(
                f"http://127.0.0.1:{port}/hooks/shop/",
                content=body,
                headers={"content-type": "application/json", "x-automate-signature": sign(body)},
            )
            assert response.status_code == 202, response.text

        # 3. the confirm step breaks on the typo: a 404 is not retried, the run fails
        wait_for(lambda: ExecutionRun.objects.filter(status="failed").exists(), "the failed run")
        failed = ExecutionRun.objects.get()
        assert (
            failed.error.startswith("step confirm: ConnectorError: POST") and "answered 404" in failed.error
        )
        assert api.paths() == ["/charge", "/confrim"]
        assert api.requests[0][1]["Authorization"] == f"Bearer {API_TOKEN}"  # the secret was used...
        charge_input = StepRun.objects.get(run=failed, name="charge").input
        assert (
            charge_input is not None and charge_input["headers"]["Authorization"] == "Bearer ***"
        )  # ...and not recorded

        # 4. watch it in the admin: the timeline shows each step and the error
        admin = Client()
        admin.force_login(get_user_model().objects.create_superuser("ada", "ada@localhost", "pw"))
        page = admin.get(f"/admin/automate_core/executionrun/{failed.pk}/change/").content.decode()
        for text in ("check", "charge", "confirm", "answered 404", "Bearer ***", "Replay"):
            assert text in page, text
        assert API_TOKEN not in page

        # 5. fix the typo, load again: a new version; the diff shows the fix
        path.write_text(WORKFLOW_FILE.format(api=api.url, confirm_path="confirm"))
        assert "(1 new version)" in cli(env, "load", str(path))
        diff = cli(env, "diff", "order_flow", "1", "2")
        assert (
            "/confrim\n" in diff
            and "/confirm\n" in diff
            and "-      url: " in diff
            and "+      url: " in diff
        )

        # 6. resume from the failed step: the charge is reused, not made again
        assert "replay queued as run" in cli(env, "replay", str(failed.pk), "--mode", "resume")
        wait_for(lambda: ExecutionRun.objects.filter(status="succeeded").exists(), "the resumed run")
        resumed = ExecutionRun.objects.get(status="succeeded")
        assert (resumed.parent_id, resumed.mode, resumed.version.number) == (failed.pk, "resume", 2)  # type: ignore[union-attr]
        assert api.paths() == ["/charge", "/confrim", "/confirm"]  # one charge, ever
        assert api.requests[2][2] == {"order": "A1", "charge": "ch_A1"}  # the reused output flowed on
        shown = cli(env, "runs", str(resumed.pk))
        assert "charge [http.post] reused" in shown and "confirm [http.post] succeeded" in shown
    finally:
        web_log, worker_log = stop(web), stop(worker)
    assert API_TOKEN not in web_log + worker_log
    assert worker.returncode == 0, worker_log
