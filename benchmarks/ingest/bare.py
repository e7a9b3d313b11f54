"""The baseline: a bare ASGI app (no Django, no verification) doing the same insert through psycopg.

It reads the body, parses the JSON, and runs the platform's own one-statement insert
(``INSERT_EVENT``: event and job in one CTE) per request on an ``AsyncConnectionPool`` of 16,
answering 202 with the event id after the commit. It does less than the platform (no signature
check, no source lookup, no admission control, no metrics), so the platform's rate over this one's
is a fair ratio: what our whole path costs against the plainest correct insert.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from automate_core.ingest.queries import FIND_DUPLICATE, INSERT_EVENT

pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
    os.environ["DATABASE_URL"], min_size=16, max_size=16, kwargs={"autocommit": True}, open=False
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await pool.open(wait=True)
                await send({"type": "lifespan.startup.complete"})
            else:
                await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    payload = json.loads(body)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    params = {
        "source": "bench",
        "event_type": str(payload.get("type", "webhook")),
        "payload": body.decode(),
        "headers": json.dumps(headers),
        "idempotency_key": headers.get("webhook-id"),
        "trace_id": uuid.uuid4().hex,
        "max_attempts": 5,
        "queue": "default",
        "priority": 0,
        "fair_key": "",
    }
    async with pool.connection() as conn:
        row = await (await conn.execute(INSERT_EVENT, params)).fetchone()
        status = 202
        if row is None:
            row = await (await conn.execute(FIND_DUPLICATE, params)).fetchone()
            status = 200
    assert row is not None
    answer = json.dumps({"event_id": row[0], "trace_id": row[1]}).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": answer})
