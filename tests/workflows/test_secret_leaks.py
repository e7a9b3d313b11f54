"""Secrets never reach the database, the logs or the admin in clear text.

A workflow reads a secret into its parameters; connectors echo it back in their output (a
probe, and the http connector calling a real server on 127.0.0.1 that answers with the secret in
every common spelling: base64, URL-encoded, hex, other case, JSON-escaped, split over two fields,
cut by the 200-character error limit), sends it as a query parameter (which httpx's INFO log
prints) and as the HTTP method, a log step writes it, and a final step fails with an error
message that contains it. Then every column of every table (information_schema), everything
printed and every log record is searched for every spelling: zero hits. The admin's run page
shows it masked.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import threading
import urllib.parse
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

SECRET_VALUE = "s3cr3t/LEAK+7f9a2b6c-Qx"  # '/' and '+' change under base64, URL and JSON escaping


def spellings(value: str) -> dict[str, str]:
    """How a careless remote, a library or a cut echoes a secret: written out here, independently
    of the masker's own list."""
    raw, half = value.encode(), len(value) // 2
    return {
        "plain": value,
        "upper": value.upper(),
        "lower": value.lower(),
        "base64": base64.b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
        "base64 urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "basic auth": base64.b64encode(b"user:" + raw).decode(),
        "url quote": urllib.parse.quote(value, safe=""),
        "url quote_plus": urllib.parse.quote_plus(value),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "json escaped": json.dumps(value).strip('"').replace("/", "\\/"),
        "first half": value[:half],
        "second half": value[half:],
    }


# what must appear nowhere: every spelling (Basic auth: the part that encodes only the secret)
NEEDLES = {k: v for k, v in spellings(SECRET_VALUE).items() if k != "basic auth"}
NEEDLES["basic auth"] = spellings(SECRET_VALUE)["basic auth"][8:-4]


@pytest.fixture
def secret_env() -> Iterator[None]:
    os.environ["AUTOMATE_SECRET_LEAK_TOKEN"] = SECRET_VALUE
    yield
    del os.environ["AUTOMATE_SECRET_LEAK_TOKEN"]


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A careless API: echoes the token it got in every spelling, splits it over two fields, puts
    it near the end of a long error body (so a 200-character cut keeps half of it)."""

    class Handler(BaseHTTPRequestHandler):
        def token(self) -> str:
            return self.headers.get("authorization", "").removeprefix("Bearer ")

        def answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("x-echo-auth", self.headers.get("authorization", ""))
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            token = self.token()
            if self.path == "/error":
                self.answer(400, ("x" * 190 + " token " + token + " rejected").encode(), "text/plain")
            elif self.path == "/escaped":  # JSON-escaped, in a text body (kept as text, not parsed)
                self.answer(200, json.dumps({"t": token}).replace("/", "\\/").encode(), "text/plain")
            else:
                self.answer(200, json.dumps({"headers": dict(self.headers), **spellings(token)}).encode())

        def do_GET(self) -> None:  # the token arrives in the query string
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            self.answer(200, json.dumps({"query": query}).encode())

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


def hits_in_database(needles: dict[str, str]) -> list[str]:
    """``table.column (spelling)`` for every text column of the public schema holding a needle."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
        columns = cursor.fetchall()
        for table, column in columns:
            for name, needle in needles.items():  # strpos: no LIKE escapes ('\\', '_') to get wrong
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE strpos("{column}"::text, %s) > 0',  # catalog names
                    [needle],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column} ({name})")
    assert len(columns) > 50  # the search did look at the whole schema
    return found


def leaks_in(text: str) -> list[str]:
    return [name for name, needle in NEEDLES.items() if needle in text]


@pytest.mark.usefixtures("secret_env")
async def test_secret_values_are_found_nowhere_in_any_spelling(
    echo_server: str, console: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    """Every channel: step records (inputs, outputs, errors), the run's error, the dead job's error,
    worker log lines (the log connector, the worker's own), httpx's request log, the admin."""
    caplog.set_level(logging.INFO, logger="httpx")
    token = '{{ secret("LEAK_TOKEN") }}'
    bearer = {"Authorization": f"Bearer {token}"}
    await aload(
        workflow(
            "leaky",
            {"name": "probe_echo", "connector": "probe", "action": "echo",
             "params": {"token": token, "auth": f"Bearer {token}"}},
            {"name": "http_echo", "connector": "http", "action": "post",
             "params": {"url": echo_server + "/echo", "headers": bearer, "json": {"token": token}}},
            {"name": "http_escaped", "connector": "http", "action": "post",
             "params": {"url": echo_server + "/escaped", "headers": bearer, "json": {}}},
            {"name": "http_query", "connector": "http", "action": "get",
             "params": {"url": echo_server + "/q", "params": {"token": token}}},
            {"name": "http_error", "connector": "http", "action": "post", "continue_on_error": True,
             "params": {"url": echo_server + "/error", "headers": bearer, "json": {}}},
            {"name": "as_method", "connector": "http", "action": "request", "continue_on_error": True,
             "params": {"url": echo_server + "/echo", "method": token}},
            {"name": "log_it", "connector": "log", "action": "warning",
             "params": {"message": f"using token {token} "
                                   "(echoed {{ steps.http_echo.output.body }}, "
                                   "{{ steps.http_escaped.output.body }})"}},
            {"name": "fail_with_it", "connector": "probe", "action": "leak", "params": {"token": token}},
            max_attempts=2,
            secrets=["LEAK_TOKEN"],
        )
    )  # fmt: skip
    await sync_to_async(emit)("shop", "order.created", {"id": 1})
    await drain(lambda: OutboxJob.objects.filter(status="dead").exists())

    run = await ExecutionRun.objects.aget()
    assert run.status == "failed"
    steps = {s.name: s async for s in run.steps.all()}
    probe_output, http_output = steps["probe_echo"].output or {}, steps["http_echo"].output or {}
    assert probe_output["echo"]["token"] == "***"  # the values were there, masked
    assert http_output["headers"]["x-echo-auth"] == "Bearer ***"
    assert http_output["body"]["base64"] == "***" and http_output["body"]["first half"] == "***"
    assert "***" in steps["http_error"].error and "***" in steps["as_method"].error
    assert (steps["http_query"].output or {})["body"]["query"]["token"] == ["***"]
    assert "***" in steps["fail_with_it"].error and "***" in run.error

    assert await sync_to_async(hits_in_database)(NEEDLES) == []
    printed = console.getvalue()
    assert leaks_in(printed) == []
    assert "using token *** (echoed" in printed  # the log step did write, masked by the filter
    assert "auth failed with token ***" in printed  # the dead job's error, logged by the worker
    assert "HTTP Request: GET" in printed  # httpx's own request line was printed ...
    for record in caplog.records:  # ... and no record carried a spelling, whoever logged it
        assert leaks_in(record.getMessage()) == [], record.name

    def admin_page() -> str:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_superuser("root", "root@localhost", "pw")
        client = Client()
        client.force_login(user)
        response = client.get(f"/admin/automate_core/executionrun/{run.pk}/change/")
        assert response.status_code == 200
        return response.content.decode()

    page = await sync_to_async(admin_page)()
    assert leaks_in(html.unescape(page)) == [] and "***" in page
