"""The soak tells what each webhook that was not accepted got, against real servers on 127.0.0.1:
a 5xx and a dropped connection are the platform's failures; a 4xx is a refusal; a sender that gave
up waiting is a timeout, reported apart (on an overloaded machine it is the sender's limit)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.chaos.soak import SoakResult, failure_kind

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer(status: int) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno".encode())
        await writer.drain()
        writer.close()

    return handle


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    writer.close()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.Event().wait()  # until the test ends


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hooks/chaos/"
    finally:
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def outcome_of(url: str) -> httpx.Response | Exception:
    async with httpx.AsyncClient(timeout=0.5) as client:
        try:
            return await client.post(url, content=b"{}")
        except httpx.TransportError as exc:
            return exc


@pytest.mark.parametrize(
    ("handler", "kind", "platform"),
    [
        (answer(503), "5xx", True),
        (answer(500), "5xx", True),
        (answer(429), "4xx", False),
        (answer(401), "4xx", False),
        (hang_up, "reset", True),
        (never_answer, "timeout", False),
    ],
    ids=["503", "500", "429", "401", "reset", "timeout"],
)
async def test_each_failure_is_told_by_its_kind(handler: Handler, kind: str, platform: bool) -> None:
    async with serve(handler) as url:
        got = await outcome_of(url)
    assert failure_kind(got) == kind
    result = SoakResult(1, 1, sent=1)
    result.record_failure(got, 12.0, 3.0)
    assert result.failures == {kind: 1}
    assert result.failed == (1 if platform else 0)
    assert result.sender_timeouts == (1 if kind == "timeout" else 0)
    (example,) = result.examples[kind]
    assert example.startswith("t=3.0s after 12 ms: ")
    summary = result.summary()
    assert summary["failures"] == {kind: 1} and summary["failed"] == result.failed


async def test_a_refused_connection_is_a_platform_failure() -> None:
    got = await outcome_of(f"http://127.0.0.1:{free_port()}/hooks/chaos/")
    assert failure_kind(got) == "refused"
    result = SoakResult(1, 1, sent=1)
    result.record_failure(got, 1.0, 0.0)
    assert result.failed == 1
