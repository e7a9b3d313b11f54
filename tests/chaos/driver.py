"""The sender: signed webhooks at a steady rate, each retried until acknowledged, as providers do.

Every webhook carries a unique idempotency key, so a retry after a lost answer is recognised as a
redelivery; the ledger then expects exactly one event per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Outcome:
    key: str
    event_id: int | None = None
    status: int | None = None
    tries: int = 0
    acked_at: float | None = None


@dataclass
class DriveResult:
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    non_2xx: int = 0
    errors: int = 0

    @property
    def acked(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.event_id is not None]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def drive(
    url: str | Sequence[str],
    secret: str,
    *,
    count: int,
    rate: float,
    give_up_after: float = 90.0,
    run_id: str = "",
) -> DriveResult:
    """Send ``count`` signed webhooks at ``rate`` per second, each retried until it is accepted (or
    ``give_up_after``); with several URLs (web processes), webhook i goes to URL i mod n."""
    urls = [url] if isinstance(url, str) else list(url)
    result = DriveResult(started=time.monotonic())
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:

        async def send(i: int) -> None:
            outcome = Outcome(key=f"chaos-{run_id}-{i}")
            result.outcomes.append(outcome)
            body = json.dumps({"type": "chaos.tick", "n": i, "pad": "x" * 800}).encode()
            headers = {
                "content-type": "application/json",
                "x-automate-signature": sign(body, secret),
                "idempotency-key": outcome.key,
            }
            deadline = time.monotonic() + give_up_after
            delay = 0.1
            while time.monotonic() < deadline:
                outcome.tries += 1
                try:
                    response = await client.post(urls[i % len(urls)], content=body, headers=headers)
                except httpx.TransportError:
                    result.errors += 1
                else:
                    outcome.status = response.status_code
                    if response.status_code in (200, 202):
                        outcome.event_id = int(response.json()["event_id"])
                        outcome.acked_at = time.monotonic()
                        return
                    result.non_2xx += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(send(i)))
            await asyncio.sleep(1.0 / rate)
        await asyncio.gather(*tasks)
    result.finished = time.monotonic()
    return result
