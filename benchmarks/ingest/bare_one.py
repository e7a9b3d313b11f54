"""The one-statement bare baseline: a plain ASGI app writing each webhook's event and job in one statement.

No framework and no platform code: a raw ASGI callable under uvicorn (uvloop, httptools), an
``AsyncConnectionPool`` of psycopg connections (autocommit; ``BARE_POOL_SIZE``, 16 by default),
and per request one statement (a CTE, one round trip, one commit) that writes the same rows
with the same columns as the platform's schema: the event (source, type taken from the JSON body
by PostgreSQL, the body as jsonb, the request headers as jsonb, the ``webhook-id`` as idempotency
key, a trace id) and its outbox job. It answers 202 with the event id after the commit (200 for
a redelivery, which writes nothing). It checks no signature, looks no source up, admits and
meters nothing: the plainest correct durable ingest, the baseline our whole path is held to.
"""

from __future__ import annotations

import json
import os
from typing import Any

from psycopg_pool import AsyncConnectionPool

# The body is parsed once, by PostgreSQL (jsonb), which also reads its "type". The event table
# is partitioned by day (migration 0017) and the dedupe is the key table's: the key goes in first
# (ON CONFLICT DO NOTHING on its primary key), and the event only if it did.
INSERT = """
WITH body AS (
    SELECT %(payload)s::jsonb AS p, automate_history_id('automate_event_id_seq'::regclass) AS id,
           md5(random()::text) AS trace_id
), held AS (
    INSERT INTO automate_event_key (source, idempotency_key, event_id, trace_id, received_at)
    SELECT 'bench', %(key)s::text, id, trace_id, now() FROM body WHERE %(key)s::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING event_id
), event AS (
    INSERT INTO automate_event
        (id, source, event_type, payload, headers, idempotency_key, trace_id, received_at)
    SELECT id, 'bench', left(coalesce(p->>'type', 'webhook'), 200), p, %(headers)s::jsonb, %(key)s::text,
           trace_id, now()
    FROM body
    WHERE %(key)s::text IS NULL OR id IN (SELECT event_id FROM held)
    RETURNING id
), job AS (
    INSERT INTO automate_outbox_job
        (event_id, kind, status, attempts, max_attempts, available_at, lease_owner, last_error,
         created_at, updated_at)
    SELECT id, 'event', 'ready', 0, 5, now(), '', '', now(), now() FROM event
)
SELECT id FROM event
"""
SIZE = int(os.environ.get("BARE_POOL_SIZE", "16"))

pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
    os.environ["DATABASE_URL"], min_size=SIZE, max_size=SIZE, kwargs={"autocommit": True}, open=False
)


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await pool.open(wait=True)
            await send({"type": "lifespan.startup.complete"})
        else:
            await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    params = {"payload": body.decode(), "headers": json.dumps(headers), "key": headers.get("webhook-id")}
    async with pool.connection() as conn:
        row = await (await conn.execute(INSERT, params)).fetchone()
    status, answer = (202, b'{"event_id":%d}' % row[0]) if row else (200, b'{"duplicate":true}')
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": answer})
