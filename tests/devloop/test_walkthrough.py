"""A new user's first hour, as processes and without a restart: `automate up` in a fresh project
folder, the start page, a new secret with `automate secrets set` (from a sub-folder), a signing
secret and the allowed hosts in `.env`, a workflow with a local `http` step, fired, refused by the
SSRF guard with a message that names the fix, fixed in `.env`, replayed, succeeded."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from automate_core.models import ExecutionRun
from tests.acceptance.test_platform import AUTOMATE, free_port, wait_http
from tests.conftest import database_url, sign
from tests.devloop.cli import Output, automate, user_env

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("live_db")]

API_TOKEN = "shop-api-token-9b1e77"
HOOK_SECRET = "shop-hook-secret-51d0a2"

WORKFLOW = """
sources:
  - slug: shop
    scheme: hmac_sha256
    secret_ref: SHOP_HOOK            # a bare name: env (AUTOMATE_SECRET_SHOP_HOOK), then db
workflows:
  - name: charge_orders
    trigger: {{source: shop, event_type: "order.*"}}
    max_attempts: 1
    secrets: [SHOP_API]              # the secrets this workflow may read (docs/workflows.md)
    steps:
      - name: charge
        connector: http
        action: post
        params:
          url: {api}/charge
          headers: {{Authorization: 'Bearer {{{{ secret("SHOP_API") }}}}'}}
          json: {{order: "{{{{ event.payload.id }}}}"}}
"""


class Api:
    """The shop's API on 127.0.0.1: records what it is sent, answers a charge id."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                api.requests.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"charge_id": f"ch_{body['order']}"}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def wait_run(status: str, within: float = 30.0) -> ExecutionRun:
    deadline = time.monotonic() + within
    while True:
        run = ExecutionRun.objects.filter(status=status).order_by("-id").first()
        if run is not None:
            return run
        assert time.monotonic() < deadline, f"no {status} run: {list(ExecutionRun.objects.values('status'))}"
        time.sleep(0.1)


def test_first_workflow_with_a_local_http_step_and_new_secrets_without_a_restart(
    tmp_path: Path, api: Api
) -> None:
    project, flows = tmp_path / "shop", tmp_path / "shop" / "flows"
    flows.mkdir(parents=True)
    dotenv = project / ".env"
    dotenv.write_text("AUTOMATE_HTTP_ALLOWED_HOSTS=api.example.com\n")  # strict to start with
    env = user_env(DATABASE_URL=database_url())
    del env["AUTOMATE_DOTENV"]  # the project's own .env, found as a user's would be
    port = free_port()
    proc = subprocess.Popen(
        [AUTOMATE, "up", "--port", str(port), "--no-demo"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    up = Output(proc)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        start = httpx.get(f"http://127.0.0.1:{port}/")
        assert start.status_code == 200 and "Django Automate is running" in start.text
        assert 'href="/admin/automate/dashboard/"' in start.text and "automate secrets set" in start.text
        assert f"Settings and secrets: {dotenv}" in up.text()

        # a new secret for the step, from a sub-folder: the db backend is on, with a kept key
        stored = automate(flows, "secrets", "set", "SHOP_API", env=env, stdin=API_TOKEN)
        assert stored.returncode == 0, stored.stderr
        assert stored.stdout.startswith('stored SHOP_API: templates read it as secret("SHOP_API")')
        # the source's signing secret in .env: read again, no restart
        dotenv.write_text(dotenv.read_text() + f"AUTOMATE_SECRET_SHOP_HOOK={HOOK_SECRET}\n")
        up.wait_for("AUTOMATE_SECRET_SHOP_HOOK now in effect")

        (flows / "shop.yaml").write_text(WORKFLOW.format(api=api.url))
        loaded = automate(flows, "load", "shop.yaml", env=env)
        assert loaded.returncode == 0, loaded.stderr
        assert "1 source, 1 workflow (1 new version), 1 step, 0 schedules loaded" in loaded.stdout

        body = json.dumps({"type": "order.created", "id": "A1"}).encode()
        headers = {"content-type": "application/json", "x-automate-signature": sign(body, HOOK_SECRET)}
        response = httpx.post(f"http://127.0.0.1:{port}/hooks/shop/", content=body, headers=headers)
        assert response.status_code == 202, response.text

        # the SSRF guard refuses 127.0.0.1, and says which variable fixes it
        refused = wait_run("failed")
        assert "non-public address" in refused.error and "add 127.0.0.1 to AUTOMATE_HTTP_ALLOWED_HOSTS" in (
            refused.error
        )
        assert api.requests == []
        dotenv.write_text(
            f"AUTOMATE_HTTP_ALLOWED_HOSTS=127.0.0.1:*\nAUTOMATE_SECRET_SHOP_HOOK={HOOK_SECRET}\n"
        )
        up.wait_for("AUTOMATE_HTTP_ALLOWED_HOSTS now in effect")

        replayed = automate(flows, "replay", str(refused.pk), env=env)
        assert replayed.returncode == 0 and "replay queued as run" in replayed.stdout, replayed.stderr
        succeeded = wait_run("succeeded")
        assert succeeded.parent_id == refused.pk
        assert [(path, h["Authorization"], b) for path, h, b in api.requests] == [
            ("/charge", f"Bearer {API_TOKEN}", {"order": "A1"})
        ]
        shown = automate(flows, "runs", str(succeeded.pk), env=env)
        assert "charge [http.post] succeeded" in shown.stdout and API_TOKEN not in shown.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        up.close()
    log = up.text()
    assert proc.returncode == 0, log
    assert API_TOKEN not in log and HOOK_SECRET not in log
    assert not (flows / ".automate").exists() and (project / ".automate" / "secrets-key").is_file()
