"""An open-loop sender of signed webhooks: request i leaves at ``start + i / rate``, answered or not.

Closed-loop tools (wrk: each connection sends its next request when the last one is answered)
slow down with the server and so hide its queueing; an open loop keeps the offered rate. Each
request goes out on an idle keep-alive connection, or a new one while fewer than ``connections``
are open; when all are waiting for answers the request waits too, and is counted as sent late
because of the server (``waited_for_connection``). A sender that falls behind for lack of CPU
shows as lag without such waits. Every request is signed when it is sent (Standard Webhooks:
``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), with a distinct id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

SECRET = "whsec_" + base64.b64encode(b"e2e-bench-signing-key-0123456789").decode()
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


def signed_request(host: str, path: str, msg_id: str, body: bytes) -> bytes:
    """One HTTP/1.1 POST of ``body`` with a Standard Webhooks signature, as bytes on the wire."""
    now = str(int(time.time()))
    mac = hmac.new(KEY, f"{msg_id}.{now}.".encode() + body, hashlib.sha256).digest()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nwebhook-id: {msg_id}\r\nwebhook-timestamp: {now}\r\n"
        f"webhook-signature: v1,{base64.b64encode(mac).decode()}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Sent:
    """What the sender did: how many requests, when, and what came back."""

    target_rate: float
    scheduled: int = 0
    sent: int = 0
    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    waited_for_connection: int = 0  # requests that found every connection busy (the server's pace)
    lags: list[float] = field(default_factory=list)  # seconds each request left after its time
    started_at: float = 0.0  # when request 0 was due: the schedule's start
    first_at: float = 0.0
    last_at: float = 0.0
    cpu_seconds: float = 0.0
    connections_opened: int = 0

    @property
    def seconds(self) -> float:
        """From the schedule's start to the last request sent."""
        return max(self.last_at - self.started_at, 1e-9)

    @property
    def achieved_rate(self) -> float:
        """Requests sent per second over the schedule: ``sent - 1`` intervals from the start to the
        last send (at most the target rate: no request leaves before its time)."""
        return (self.sent - 1) / self.seconds if self.sent > 1 else 0.0

    def lag_ms(self, q: float) -> float:
        if not self.lags:
            return 0.0
        ordered = sorted(self.lags)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def kept_rate(self) -> bool:
        """Within 2 % of the target rate, and no request more than 100 ms behind at p99."""
        return self.achieved_rate >= 0.98 * self.target_rate and self.lag_ms(0.99) <= 100

    def summary(self) -> dict[str, object]:
        return {
            "target_rate": self.target_rate,
            "scheduled": self.scheduled,
            "sent": self.sent,
            "answered": self.answered,
            "achieved_rate": round(self.achieved_rate, 1),
            "kept_rate": self.kept_rate(),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "waited_for_connection": self.waited_for_connection,
            "lag_p50_ms": round(self.lag_ms(0.5), 2),
            "lag_p99_ms": round(self.lag_ms(0.99), 2),
            "lag_max_ms": round(1000 * max(self.lags, default=0.0), 2),
            "connections_opened": self.connections_opened,
            "cpu_percent": round(100 * self.cpu_seconds / self.seconds, 1),
        }


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its answer; the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def send(
    host: str,
    port: int,
    path: str,
    rate: float,
    count: int,
    body_of: Callable[[int], dict[str, object]],
    connections: int = 64,
    tag: str = "",
) -> Sent:
    """Send ``count`` signed webhooks at ``rate`` per second (open loop); returns what happened."""
    sent = Sent(target_rate=rate, scheduled=count)
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    opened = 0
    inflight: set[asyncio.Task[None]] = set()
    authority = f"{host}:{port}"
    tag = tag or secrets.token_hex(8)  # ids never repeat between two sends (a repeat is a redelivery)

    async def exchange(conn: Connection | None, request: bytes) -> None:
        try:
            if conn is None:
                reader, writer = await asyncio.open_connection(host, port)
                conn = Connection(reader, writer)
            status = await conn.exchange(request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            sent.errors[type(exc).__name__] += 1
            if conn is not None:
                conn.close()
            nonlocal opened
            opened -= 1  # the next request opens a new one
            return
        sent.answered += 1
        sent.statuses[status] += 1
        idle.put_nowait(conn)

    loop = asyncio.get_running_loop()
    cpu = time.process_time()
    start = sent.started_at = loop.time()
    for i in range(count):
        due = start + i / rate
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
        conn: Connection | None = None
        if not idle.empty():
            conn = idle.get_nowait()
        elif opened < connections:
            opened += 1
            sent.connections_opened += 1
        else:
            sent.waited_for_connection += 1
            conn = await idle.get()
        body = json.dumps(body_of(i), separators=(",", ":")).encode()
        request = signed_request(authority, path, f"msg_{tag}_{i}", body)
        at = max(loop.time(), due)  # a timer may fire a clock tick early: count that as on time
        sent.lags.append(at - due)
        if i == 0:
            sent.first_at = at
        sent.last_at = at
        sent.sent += 1
        task = asyncio.create_task(exchange(conn, request))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    if inflight:
        await asyncio.wait(inflight, timeout=30)
    sent.cpu_seconds = time.process_time() - cpu
    while not idle.empty():
        idle.get_nowait().close()
    return sent
