"""``automate_client`` against a real server: ``automate serve`` (uvicorn) started by the test.

Every call goes over HTTP to the platform on 127.0.0.1; the database it writes is the tests' own,
so each result is checked against the rows. Retries are provoked with a transport that loses the
answer of the first attempt (the request did reach the server): the event sent again with the
same idempotency key is recorded once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automate_client import (
    AsyncClient,
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Retry,
    TransportError,
    Unauthenticated,
)
from automate_core.api.auth import create_token
from automate_core.models import Event, ExecutionRun, Workflow
from tests.acceptance.test_platform import AUTOMATE, free_port, stop, wait_http
from tests.api.conftest import KEY
from tests.conftest import database_url

pytestmark = pytest.mark.acceptance
ROOT = Path(__file__).resolve().parents[2]
STEP = {"name": "s", "connector": "log", "action": "info", "params": {"message": "hi"}}


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """``automate serve`` on a free port, on the tests' database."""
    with django_db_blocker.unblock():
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "asgi.settings",
            "SECRET_KEY": "client-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "AUTOMATE_SECRETS_ENCRYPTION_KEYS": KEY,
            "AUTOMATE_HTTPS": "0",  # plain HTTP on 127.0.0.1 (no redirect to https://)
            "PYTHONPATH": f"{ROOT / 'automate'}:{ROOT}",
        }
    port = free_port()
    proc = subprocess.Popen(
        [AUTOMATE, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture
def admin(live_db: None) -> str:
    return create_token("client", ["admin"])[1]


def test_events_round_trip(server: str, admin: str) -> None:
    with Client(server, admin) as api:
        sent = api.send_event("shop", "order.created", {"id": 1}, idempotency_key="o-1")
        assert not sent.duplicate and Event.objects.filter(pk=sent.event_id, trace_id=sent.trace_id).exists()
        again = api.send_event("shop", "order.created", {"id": 1}, idempotency_key="o-1")
        assert again.duplicate and again.event_id == sent.event_id
        event = api.get_event(sent.event_id)
        assert (event.source, event.type, event.payload, event.runs) == (
            "shop",
            "order.created",
            {"id": 1},
            [],
        )
        assert event.received_at.tzinfo is not None
        items = api.send_events(
            [
                {"source": "shop", "type": "a", "payload": 1},
                {"source": "shop", "type": "b", "payload": 2, "idempotency_key": "o-1"},
            ]
        )
        assert [(i.status, i.ok) for i in items] == [(202, True), (200, True)]
        assert items[1].event_id == sent.event_id
        assert Event.objects.count() == 2


def runs_of(n: int, status: str = "failed") -> list[int]:
    event = Event.objects.create(source="shop", event_type="t", payload={}, trace_id="t" * 32)
    return [
        ExecutionRun.objects.create(workflow_name="flow", event=event, status=status, trace_id="t" * 32).pk
        for _ in range(n)
    ]


def test_pages_are_iterators(server: str, admin: str) -> None:
    ids = runs_of(25)
    with Client(server, admin) as api:
        assert [r.id for r in api.iter_runs(page_size=10)] == sorted(ids, reverse=True)
        assert [r.id for r in api.iter_runs(page_size=7, status="succeeded")] == []
        runs, cursor = api.list_runs(limit=5)
        assert len(runs) == 5 and cursor and runs[0].status == "failed"
        assert api.get_run(ids[0]).steps == []


def test_errors_carry_the_api_code(server: str, admin: str) -> None:
    reader = create_token("reader", ["runs:read"])[1]
    runs_of(1, status="succeeded")
    with Client(server, reader) as api:
        with pytest.raises(PermissionDenied) as denied:
            api.send_event("shop", "t", {})
        assert denied.value.code == "missing_scope" and "events:write" in denied.value.detail
        with pytest.raises(NotFound) as missing:
            api.get_run(99999999)
        assert missing.value.status == 404 and missing.value.code == "not_found"
        with pytest.raises(InvalidRequest) as bad:
            api.list_runs(status="exploded")
        assert bad.value.code == "invalid_request" and "status" in bad.value.detail
    with Client(server, "atk_not-a-token") as api, pytest.raises(Unauthenticated) as nobody:
        api.list_workflows()
    assert nobody.value.code == "unauthenticated"
    with Client(server, admin) as api:
        run_id = ExecutionRun.objects.get().pk
        with pytest.raises(Conflict) as conflict:
            api.cancel_run(run_id)
        assert conflict.value.code == "conflict" and "already ended" in conflict.value.detail


def test_rate_limited_calls_raise_with_retry_after(server: str, live_db: None) -> None:
    token = create_token("slow", ["runs:read"], rate_limit=1)[1]
    with Client(server, token, retry=Retry(max_wait=1.0)) as api:
        api.list_runs()
        with pytest.raises(RateLimited) as limited:  # the server asks for ~60 s: more than max_wait
            api.list_runs()
    assert limited.value.retry_after is not None and limited.value.retry_after > 1


def test_workflows_and_secrets(server: str, admin: str, settings: Any) -> None:
    from automate_governance.secrets.db import DbSecretsBackend

    file = {"workflows": [{"name": "flow", "trigger": {"source": "shop"}, "steps": [STEP]}]}
    with Client(server, admin) as api:
        preview = api.deploy(file, dry_run=True)
        assert preview.dry_run and preview.counts["workflows"] == 1 and not Workflow.objects.exists()
        assert not api.deploy(file).dry_run
        api.deploy({"workflows": [{**file["workflows"][0], "description": "v2"}]})
        flow = api.get_workflow("flow")
        assert flow.current_version == 2 and [v.number for v in flow.versions] == [2, 1]
        assert api.rollback("flow", 1).current_version == 3
        assert api.disable_workflow("flow") is False and not Workflow.objects.get().enabled
        assert api.enable_workflow("flow") is True
        assert [w.name for w in api.list_workflows()] == ["flow"]
        with pytest.raises(InvalidRequest) as bad:
            api.deploy({"workflows": [{"name": "x", "steps": [{**STEP, "connector": "nope"}]}]})
        assert "workflows[0].steps[0].connector" in bad.value.detail
        api.put_secret("SHOP_KEY", "a-secret-value-123")
        settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY]  # the server's key: read it back here
        assert DbSecretsBackend().get_secret("SHOP_KEY") == "a-secret-value-123"
        assert api.list_sources() == [] and api.list_schedules() == []


def test_a_lost_answer_is_retried_with_the_same_key(server: str, admin: str) -> None:
    """The first attempt reaches the server but its answer is lost: the retry is a duplicate."""
    real = httpx.HTTPTransport()
    attempts: list[bytes] = []

    def lossy(request: httpx.Request) -> httpx.Response:
        attempts.append(request.content)
        response = real.handle_request(request)
        if len(attempts) == 1:
            response.read()
            raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response

    with real, Client(server, admin, transport=httpx.MockTransport(lossy), retry=Retry(backoff=0.01)) as api:
        sent = api.send_event("shop", "t", {"n": 1})  # no key given: the client makes one
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # same body, same idempotency key
    assert sent.duplicate and Event.objects.count() == 1 and Event.objects.get().pk == sent.event_id


def test_writes_without_a_key_are_not_retried(server: str, admin: str) -> None:
    run_id = runs_of(1)[0]
    calls: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("refused", request=request)

    with Client(server, admin, transport=httpx.MockTransport(down), retry=Retry(backoff=0.01)) as api:
        with pytest.raises(TransportError):
            api.replay_run(run_id)
        assert len(calls) == 1
        with pytest.raises(TransportError):
            api.list_workflows()
        assert len(calls) == 1 + 4  # a read: four attempts


async def test_the_async_client(server: str, admin: str) -> None:
    from asgiref.sync import sync_to_async

    ids = await sync_to_async(runs_of)(12)
    async with AsyncClient(server, admin) as api:
        await api.deploy({"workflows": [{"name": "flow", "steps": [STEP]}]})
        flow = await Workflow.objects.select_related("current_version").aget(name="flow")
        await ExecutionRun.objects.filter(pk__in=ids).aupdate(workflow=flow, version=flow.current_version)
        sent = await api.send_event("shop", "t", {"a": 1}, idempotency_key="k")
        assert (await api.send_event("shop", "t", {}, idempotency_key="k")).event_id == sent.event_id
        assert [r.id async for r in api.iter_runs(page_size=5)] == sorted(ids, reverse=True)
        queued = await api.replay_run(ids[0], "original")
        assert queued.parent == ids[0] and queued.mode == "original"
        assert await ExecutionRun.objects.filter(
            pk=queued.run_id, parent_id=ids[0], status="queued"
        ).aexists()
        assert await api.cancel_run(queued.run_id) == "cancelled"
        with pytest.raises(NotFound):
            await api.get_workflow("nope")


def test_the_client_installs_on_its_own(tmp_path: Path) -> None:
    """A wheel of clients/python holds only automate_client and asks for httpx only; imported from
    it, the client pulls in no Django."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(ROOT / "clients" / "python"),
            "-w",
            str(tmp_path),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
        z.extractall(tmp_path / "site")
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "automate_client"
    }
    assert [line for line in metadata.splitlines() if line.startswith("Requires-Dist")] == [
        "Requires-Dist: httpx>=0.27"
    ]
    code = "import sys, automate_client; assert 'django' not in sys.modules; print(automate_client.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith(str(tmp_path / "site"))


def test_the_cli_lists_runs_over_the_api(server: str, admin: str, load: Any) -> None:
    """``automate --url ... --token ... runs``: what ``automate runs`` shows, read over HTTP."""
    ids = runs_of(3)
    env = {**os.environ, "AUTOMATE_TOKEN": admin, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    listed = subprocess.run(
        [AUTOMATE, "--url", server, "runs", "--json", "--limit", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [r["id"] for r in __import__("json").loads(listed.stdout)] == sorted(ids, reverse=True)[:2]
    text = subprocess.run(
        [AUTOMATE, "--url", server, "runs", "--status", "failed"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(f"#{i}" in text for i in ids) and "failed" in text
    one = subprocess.run(
        [AUTOMATE, "--url", server, "runs", str(ids[0])], env=env, capture_output=True, text=True
    )
    assert one.returncode == 0 and one.stdout.startswith(f"#{ids[0]}")
    missing = subprocess.run(
        [AUTOMATE, "--url", server, "runs", "99999999"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "(not_found)" in missing.stderr
    bad = subprocess.run(
        [AUTOMATE, "--url", server, "--token", "atk_x", "runs"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "(unauthenticated)" in bad.stderr and "atk_x" not in bad.stderr


async def test_the_rate_limit_is_shared_between_processes(server: str, live_db: None) -> None:
    """Two processes, one budget: this test's own application and the ``automate serve`` process."""
    from asgiref.sync import sync_to_async

    from asgi.asgi import application

    token = (await sync_to_async(create_token)("shared", ["runs:read"], rate_limit=2))[1]
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as here,
        httpx.AsyncClient(base_url=server) as there,
    ):
        assert (await here.get("/api/v1/runs", headers=headers)).status_code == 200
        assert (await there.get("/api/v1/runs", headers=headers)).status_code == 200
        refused_here = await here.get("/api/v1/runs", headers=headers)
        refused_there = await there.get("/api/v1/runs", headers=headers)
    assert (refused_here.status_code, refused_there.status_code) == (429, 429)
    assert int(refused_there.headers["retry-after"]) >= 1
