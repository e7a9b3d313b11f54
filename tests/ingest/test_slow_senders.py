"""Issue 18.1: slow senders against a real ``automate serve``: cut off by the deadlines, and valid
webhooks to the same source accepted all the while.

The slow clients are raw sockets that send their request a byte at a time, never idle long
enough for an idle timeout: only a deadline on the whole headers (or body) stops them. There are
three times as many of each kind as the source has slots (``max_in_flight: 4``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from automate_core.models import Event, WebhookRejection
from tests.acceptance.test_platform import free_port, platform_env, start, stop, wait_http
from tests.conftest import sign

__all__ = ["platform_env"]  # the fixture

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("live_db")]

HEADER_TIMEOUT, BODY_TIMEOUT = 1.0, 1.5
SLOTS = 4
PACE = 0.1  # seconds between two bytes of a slow client: never idle long enough for an idle timeout


@dataclass
class Trickle:
    opened: float
    answer: bytes = b""
    closed_after: float | None = None


@pytest.fixture(params=["automate serve", "uvicorn --http ...:H11Protocol"])
def server(
    request: pytest.FixtureRequest, platform_env: dict[str, str], load: Callable[[dict[str, Any]], Any]
) -> Iterator[int]:
    """``automate serve`` (httptools), and uvicorn run by hand with the h11 protocol of ours."""
    load({"sources": [{"slug": "shop", "scheme": "hmac_sha256", "secret_ref": "env:TEST_HOOK",
                       "config": {"max_in_flight": SLOTS}}]})  # fmt: skip
    port = free_port()
    env = {
        **platform_env,
        "AUTOMATE_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "AUTOMATE_HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "AUTOMATE_METRICS_ALLOWED_IPS": "127.0.0.1",
    }
    if request.param == "automate serve":
        proc = start(["serve", "--port", str(port)], env)
    else:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "asgi.asgi:application", "--port", str(port),
             "--http", "automate_core.ingest.deadlines:H11Protocol", "--lifespan", "on", "--no-access-log"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield port
    finally:
        stop(proc)


async def trickle(port: int, request: bytes, give_up_after: float) -> Trickle:
    """Send ``request`` a byte at a time until the server answers and closes (or we give up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    result = Trickle(opened=time.monotonic())

    async def read() -> None:
        result.answer = await reader.read()  # to EOF: the server closed the connection
        result.closed_after = time.monotonic() - result.opened

    reading = asyncio.ensure_future(read())
    try:
        for byte in request:
            if reading.done() or time.monotonic() - result.opened > give_up_after:
                break
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(PACE)  # the slow client's pace, not a wait for a condition
        await asyncio.wait_for(reading, give_up_after)
    finally:
        writer.close()
    return result


def slow_headers(port: int) -> bytes:
    return (
        f"POST /hooks/shop/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        + "x-padding: " + "p" * 200 + "\r\n\r\n"
    ).encode()  # fmt: skip


def slow_body(port: int) -> tuple[bytes, bytes]:
    body = json.dumps({"type": "order.created", "pad": "x" * 200}).encode()
    head = (
        f"POST /hooks/shop/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"x-automate-signature: sha256={'0' * 64}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


async def test_slow_senders_are_cut_off_and_valid_webhooks_still_accepted(server: int) -> None:
    port = server
    give_up = 10.0
    header_trickles = [
        asyncio.ensure_future(trickle(port, slow_headers(port), give_up)) for _ in range(3 * SLOTS)
    ]

    async def body_trickle() -> Trickle:
        head, body = slow_body(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)  # the headers at once: the request reaches admission, then trickles
        await writer.drain()
        result = Trickle(opened=time.monotonic())

        async def read() -> None:
            result.answer = await reader.read()
            result.closed_after = time.monotonic() - result.opened

        reading = asyncio.ensure_future(read())
        try:
            for byte in body:
                if reading.done() or time.monotonic() - result.opened > give_up:
                    break
                writer.write(bytes([byte]))
                try:
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(PACE)  # the slow client's pace
            await asyncio.wait_for(reading, give_up)
        finally:
            writer.close()
        return result

    body_trickles = [asyncio.ensure_future(body_trickle()) for _ in range(3 * SLOTS)]
    # while all of them hold their connections, a legitimate sender gets through, every time
    accepted = []
    async with httpx.AsyncClient(timeout=10) as client:
        for n in range(10):
            body = json.dumps({"type": "order.created", "n": n}).encode()
            started = time.monotonic()
            response = await client.post(
                f"http://127.0.0.1:{port}/hooks/shop/",
                content=body,
                headers={"content-type": "application/json", "x-automate-signature": sign(body)},
            )
            assert response.status_code == 202, response.text
            accepted.append(time.monotonic() - started)
    slow = await asyncio.gather(*header_trickles, *body_trickles)
    for kind, results, limit in (
        ("headers", slow[: 3 * SLOTS], HEADER_TIMEOUT),
        ("body", slow[3 * SLOTS :], BODY_TIMEOUT),
    ):
        for result in results:
            assert result.closed_after is not None, f"a slow {kind} sender was never cut off"
            assert result.closed_after < limit + 1.0, (kind, result.closed_after)
            status_line = result.answer.split(b"\r\n", 1)[0]
            assert status_line == b"HTTP/1.1 408 Request Timeout", (kind, result.answer[:200])
            assert (
                b'"error": "request_timeout"' in result.answer
                or b'"error":"request_timeout"' in result.answer
            )
    assert await Event.objects.acount() == 10
    assert max(accepted) < 2.0, accepted
    async with httpx.AsyncClient(timeout=10) as client:
        page = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    headers_cut = [
        line
        for line in page.splitlines()
        if line.startswith('automate_http_request_timeouts_total{phase="headers"}')
    ]
    assert headers_cut and float(headers_cut[0].split()[-1]) >= 3 * SLOTS, headers_cut
    # the source's page in the admin learns of the cut-off bodies (written within a second or so)
    deadline = time.monotonic() + 10
    while not await WebhookRejection.objects.filter(source="shop").aexists():
        assert time.monotonic() < deadline, "the rejections were not written"
        await asyncio.sleep(0.1)
