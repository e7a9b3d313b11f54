"""The operator's console in a real browser, on the platform as a user runs it.

``automate serve`` and ``automate worker`` run as processes on the test database (DEBUG off, as
in production); headless Chromium logs in, creates a workflow in the admin (a bad template is
refused first), runs it on a payload, watches the run, makes a run fail through a signed webhook,
replays it from the run page and the dead job from the outbox page, follows the trace id to the
event, and reads the dashboard. Each main page is saved as a screenshot (``AUTOMATE_SCREENSHOTS=
docs/screenshots`` refreshes the ones in the docs).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from automate_core.models import ExecutionRun, OutboxJob, Workflow
from tests.acceptance.test_platform import free_port, platform_env, start, stop, wait_http
from tests.conftest import SECRET, sign
from tests.console import rows
from tests.console.browser import LAUNCH_ARGS, ensure_chromium, screenshot_dir
from tests.helpers import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("live_db")]

__all__ = ["platform_env"]  # a fixture, imported from the acceptance tests

PASSWORD = "console-test-password"
HEADER_BLUE = "rgb(65, 118, 144)"  # the admin's --header-bg: its CSS was served


class Peer:
    """The service the workflow posts to: records requests; answers 503 while ``failing``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failing = False
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                peer.requests.append(body)
                self.send_response(503 if peer.failing else 200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": false}' if peer.failing else b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    threading.Thread(target=p.server.serve_forever, daemon=True).start()
    yield p
    p.server.shutdown()
    p.server.server_close()


@pytest.fixture(scope="session")
def chromium() -> str:
    return ensure_chromium()


@pytest.fixture
def platform(platform_env: dict[str, str], load: Any) -> Iterator[str]:
    """Web and worker processes on the test database; the base URL. An operator account."""
    load({"sources": [{"slug": "shop", "scheme": "hmac_sha256", "secret_ref": "env:TEST_HOOK"}]})
    operator = get_user_model().objects.create_superuser("operator", "operator@localhost")
    # hashed for the server's settings (the tests' own MD5 hasher is unknown to it); few
    # iterations: the server upgrades the hash at the first login, as it would an old one
    operator.password = PBKDF2PasswordHasher().encode(PASSWORD, "console-salt", iterations=1000)
    operator.save(update_fields=["password"])
    env = {
        **platform_env,
        "AUTOMATE_HTTPS": "0",  # plain HTTP on 127.0.0.1: no TLS to redirect to
        "AUTOMATE_SECRET_PEER_TOKEN": SECRET,  # the step's token (templates cannot read signing keys)
    }
    port = free_port()
    web = start(["serve", "--port", str(port)], env)
    worker = start(["worker", "--poll-interval", "0.2"], env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        web_log, worker_log = stop(web), stop(worker)
    assert "Traceback" not in web_log, web_log
    assert "Traceback" not in worker_log, worker_log


@pytest.fixture
async def page(chromium: str, platform: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, base_url=platform)
        # the admin's navigation sidebar folded, as an operator keeps it on a laptop
        await context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        context.set_default_timeout(15_000)
        tab = await context.new_page()
        await tab.goto("/admin/login/")
        await tab.fill("#id_username", "operator")
        await tab.fill("#id_password", PASSWORD)
        await tab.click("input[type=submit]")
        await tab.wait_for_url("**/admin/")
        yield tab
        await browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshot_dir(tmp_path)


async def shoot(tab: Any, where: Path, name: str) -> None:
    path = where / f"{name}.png"
    await tab.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real picture, not a blank page


async def run_status(run_id: int) -> str:
    return str(await sync_to_async(lambda: ExecutionRun.objects.get(pk=run_id).status)())


async def wait_run(run_id: int, status: str, within: float = 20.0) -> None:
    await eventually(
        lambda: ExecutionRun.objects.filter(pk=run_id, status=status).exists(),
        within,
        f"run #{run_id} did not become {status}",
    )


def step_params(peer: Peer, *, bad: bool = False) -> str:
    order = "{{ event.payload.id }}" + ("\n{{ event.payload.id | shout }}" if bad else "")
    params = {"url": f"{peer.url}/orders", "json": {"order": order, "token": "{{ secret('PEER_TOKEN') }}"}}
    return json.dumps(params, indent=2)


async def test_an_operator_handles_a_failure_from_the_admin(page: Any, peer: Peer, shots: Path) -> None:
    tab = page
    header = await tab.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header == HEADER_BLUE, "the admin's stylesheet was not served"
    assert await tab.locator("a[href='/admin/automate/dashboard/']").count() == 1

    # 1. a workflow, created in the admin: a bad template is refused with its line and reason
    await tab.goto("/admin/automate_core/workflow/add/")
    await tab.fill("#id_name", "forward_orders")
    await tab.fill("#id_source_pattern", "shop")
    await tab.fill("#id_event_type_pattern", "order.*")
    await tab.fill("#id_max_attempts", "1")
    await tab.click("text=Add another Step")
    await tab.fill("#id_steps-0-position", "1")
    await tab.fill("#id_steps-0-name", "check")
    await tab.fill("#id_steps-0-connector", "log")
    await tab.fill("#id_steps-0-action", "info")
    await tab.fill("#id_steps-0-params", json.dumps({"message": "order {{ event.payload.id }} received"}))
    await tab.click("text=Add another Step")
    await tab.fill("#id_steps-1-position", "2")
    await tab.fill("#id_steps-1-name", "notify")
    await tab.fill("#id_steps-1-connector", "http")
    await tab.fill("#id_steps-1-action", "post")
    await tab.fill("#id_steps-1-params", step_params(peer, bad=True))
    await tab.click("input[name=_save]")
    error = tab.locator(".field-params .errorlist")
    assert (
        await error.inner_text()
        == "step notify.params.json.order: Template syntax error on line 2: No filter named 'shout'."
    )
    await shoot(tab, shots, "workflow-edit")
    assert not await sync_to_async(Workflow.objects.exists)()
    await tab.fill("#id_steps-1-params", step_params(peer))
    await tab.click("input[name=_save]")
    await tab.wait_for_url("**/admin/automate_core/workflow/")
    assert "Published forward_orders v1." in await tab.locator("ul.messagelist").inner_text()

    # 2. fired from the admin: the run is queued, a worker runs it, the timeline shows it
    await tab.click("#result_list a:text-is('forward_orders')")
    await tab.click("text=Run on a payload…")
    await tab.fill("#id_payload", json.dumps({"id": "A-17", "amount": 40}))
    await tab.click("input[type=submit][value='Queue the run']")
    await tab.wait_for_url("**/executionrun/*/change/")
    run_id = int(tab.url.rstrip("/").split("/")[-2])
    await wait_run(run_id, "succeeded")
    await tab.reload()
    timeline = tab.locator("table.automate-timeline")
    assert "log.info" in await timeline.inner_text() and "http.post" in await timeline.inner_text()
    await tab.click("tr.automate-step:has-text('http.post') summary:has-text('input')")
    shown = await timeline.inner_text()
    assert '"token": "***"' in shown and SECRET not in await tab.content()
    assert peer.requests[-1] == {"order": "A-17", "token": SECRET}  # the peer got the real value
    await shoot(tab, shots, "run-timeline")

    # 3. a signed webhook whose run fails: the peer is down, one attempt only, the job dies
    peer.failing = True
    body = json.dumps({"type": "order.created", "id": "B-2"}).encode()
    base = tab.url.split("/admin/")[0]
    async with httpx.AsyncClient() as http:
        sent = await http.post(
            f"{base}/hooks/shop/",
            content=body,
            headers={
                "content-type": "application/json",
                "x-automate-signature": sign(body),
                "idempotency-key": "b2",
            },
        )
    assert sent.status_code == 202, sent.text
    trace_id = sent.json()["trace_id"]
    await eventually(lambda: OutboxJob.objects.filter(status="dead").exists(), 20, "the job did not die")
    failed = await sync_to_async(lambda: ExecutionRun.objects.get(trace_id=trace_id))()
    assert failed.status == "failed"

    # 4. the operator finds it from the dashboard, reads the error, fixes the peer, replays the run
    await tab.goto("/admin/automate/dashboard/")
    await tab.click(".automate-card a[href*='status__exact=failed']")
    await tab.click(f"#result_list a[href*='/executionrun/{failed.pk}/change/']")
    assert "503" in await tab.locator("pre.automate-error").inner_text()
    peer.failing = False
    await tab.click("text=Replay…")
    await tab.click("input[type=submit][value='Queue the replay']")
    await tab.wait_for_url("**/executionrun/*/change/")
    replay_id = int(tab.url.rstrip("/").split("/")[-2])
    assert replay_id != failed.pk
    await wait_run(replay_id, "succeeded")
    await tab.reload()
    assert f"run #{failed.pk}" in await tab.locator(".fieldBox.field-parent_link").inner_text()
    assert peer.requests[-1]["order"] == "B-2"

    # 5. the dead job, from the outbox's dead letters: its last error, then replayed as a new job
    await tab.goto("/admin/automate/dashboard/")
    await tab.click(".automate-card a[href*='status__exact=dead']")
    dead = await sync_to_async(lambda: OutboxJob.objects.get(status="dead"))()
    row = tab.locator(f"tr:has(input.action-select[value='{dead.pk}'])")
    assert "503" in await row.inner_text()
    await shoot(tab, shots, "outbox-dead")
    await row.locator("input.action-select").check()
    await tab.select_option("select[name=action]", "replay_dead")
    await tab.click("button[name=index]")
    assert "queued again" in await tab.locator("ul.messagelist").inner_text()
    await eventually(
        lambda: OutboxJob.objects.filter(replay_of=dead.pk, status="completed").exists(),
        20,
        "replay not done",
    )
    assert [r["order"] for r in peer.requests].count("B-2") == 3  # failed, run replay, job replay

    # 6. the trace id leads to the event, its payload formatted, its runs and jobs
    await tab.goto(f"/admin/automate_core/event/?q={trace_id}")
    assert await tab.locator("#result_list tbody tr").count() == 1
    await shoot(tab, shots, "events")
    await tab.click("#result_list tbody tr th a")
    payload = await tab.locator(".field-payload_pretty pre").inner_text()
    assert json.loads(payload) == {"type": "order.created", "id": "B-2"} and "\n  " in payload
    assert f"run #{failed.pk}" in await tab.locator(".field-runs_and_jobs").inner_text()

    # 7. the workflows list: last run and the day's counts
    await tab.goto("/admin/automate_core/workflow/")
    listed = await tab.locator("#result_list tbody tr").first.inner_text()
    assert "succeeded" in listed and "3 succeeded" in listed and "1 failed" in listed
    await shoot(tab, shots, "workflows")


async def test_the_dashboard_draws_the_last_hour(page: Any, shots: Path) -> None:
    """An hour of traffic written at chosen minutes: the bars and the totals match it."""

    def history() -> dict[str, int]:
        wf = Workflow.objects.create(name="nightly_sync")
        received = succeeded = failed = dead = 0
        for minute in range(0, 58, 2):
            for _ in range(1 + (minute * 7) % 5):
                rows.event("shop", "order.created", ago=timedelta(minutes=minute, seconds=5))
                received += 1
            for _ in range(1 + (minute * 3) % 4):
                rows.run(wf, "succeeded", ago=timedelta(minutes=minute, seconds=5))
                succeeded += 1
            if minute % 10 == 4:
                e = rows.event("shop", "order.created", ago=timedelta(minutes=minute, seconds=5))
                rows.run(wf, "failed", ago=timedelta(minutes=minute, seconds=5), on=e)
                rows.dead_job(e, ago=timedelta(minutes=minute, seconds=5))
                received, failed, dead = received + 1, failed + 1, dead + 1
        received += succeeded  # rows.run() writes each run's event
        return {"received": received, "succeeded": succeeded, "failed": failed, "dead": dead}

    made = await sync_to_async(history)()
    await page.goto("/admin/automate/dashboard/")
    text = await page.locator("#content-main").inner_text()
    assert f"Events received per minute (total {made['received']}," in text
    assert f"Runs failed per minute (total {made['failed']}," in text
    bars = page.locator("svg rect.failed[height]:not([height='0.00'])")
    assert await bars.count() == made["failed"]  # one minute each
    await shoot(page, shots, "dashboard")
