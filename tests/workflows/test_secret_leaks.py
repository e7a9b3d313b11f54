"""Secrets never reach the database, the logs or the admin in clear text.

A workflow reads a secret into its parameters; connectors echo it back in their output (a
probe, and the http connector calling a real server on 127.0.0.1 that answers with the request's
headers), a log step writes it, and a final step fails with an error message that contains it.
Then every column of every table (information_schema) and everything printed is searched for
the value: zero hits. The admin's run page shows it masked.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import Client

from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob
from tests.workflows.conftest import aload, drain, workflow

pytestmark = pytest.mark.usefixtures("live_db")

SECRET_VALUE = "s3cr3t-LEAK-7f9a2b6c"


@pytest.fixture
def secret_env() -> Iterator[None]:
    os.environ["AUTOMATE_SECRET_LEAK_TOKEN"] = SECRET_VALUE
    yield
    del os.environ["AUTOMATE_SECRET_LEAK_TOKEN"]


@pytest.fixture
def echo_server() -> Iterator[str]:
    """Answers every POST with the headers and body it received (as a careless API would)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            answer = json.dumps({"headers": dict(self.headers), "body": body.decode()}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("x-echo-auth", self.headers.get("authorization", ""))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console handler (settings.LOGGING, with its masking filter) prints."""
    from automate_core.masking import SecretMaskingFilter

    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and any(isinstance(f, SecretMaskingFilter) for f in h.filters)
    ]
    assert handlers, "settings.LOGGING has no masked console handler"
    buffer = io.StringIO()
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for handler, stream in zip(handlers, previous, strict=True):
        if stream is not None:
            handler.setStream(stream)


def hits_in_database(value: str) -> list[str]:
    """Every ``table.column`` of the public schema whose text contains ``value``."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
        columns = cursor.fetchall()
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s',  # names from the catalog
                [f"%{value}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    assert len(columns) > 50  # the search did look at the whole schema
    return found


@pytest.mark.usefixtures("secret_env")
async def test_secret_values_are_found_nowhere(
    echo_server: str, console: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    token = '{{ secret("LEAK_TOKEN") }}'
    await aload(
        workflow(
            "leaky",
            {"name": "probe_echo", "connector": "probe", "action": "echo",
             "params": {"token": token, "auth": f"Bearer {token}"}},
            {"name": "http_echo", "connector": "http", "action": "post",
             "params": {"url": echo_server + "/echo", "headers": {"Authorization": f"Bearer {token}"},
                        "json": {"token": token}}},
            {"name": "log_it", "connector": "log", "action": "warning",
             "params": {"message": f"using token {token} "
                                   "(from {{ steps.probe_echo.output.echo.token }})"}},
            {"name": "fail_with_it", "connector": "probe", "action": "leak", "params": {"token": token}},
            max_attempts=2,
        )
    )  # fmt: skip
    await sync_to_async(emit)("shop", "order.created", {"id": 1})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())

    run = await ExecutionRun.objects.aget()
    assert run.status == "failed"
    steps = {s.name: s.output async for s in run.steps.all()}
    probe_output, http_output = steps["probe_echo"] or {}, steps["http_echo"] or {}
    assert probe_output["echo"]["token"] == "***"  # the values were there, masked
    assert http_output["headers"]["x-echo-auth"] == "Bearer ***"
    failing = await run.steps.aget(name="fail_with_it")
    assert "***" in failing.error and "***" in run.error

    assert await sync_to_async(hits_in_database)(SECRET_VALUE) == []
    printed = console.getvalue()
    assert SECRET_VALUE not in printed
    assert "using token *** (from ***)" in printed  # the log step did write, masked by the filter
    assert "auth failed with token ***" in printed  # the dead job's error, logged by the worker
    for record in caplog.records:
        if record.name != "automate.connectors.log":  # that one is masked by the handler, above
            assert SECRET_VALUE not in record.getMessage(), record.name

    def admin_page() -> str:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_superuser("root", "root@localhost", "pw")
        client = Client()
        client.force_login(user)
        response = client.get(f"/admin/automate_core/executionrun/{run.pk}/change/")
        assert response.status_code == 200
        return response.content.decode()

    page = await sync_to_async(admin_page)()
    assert SECRET_VALUE not in page and "***" in page
