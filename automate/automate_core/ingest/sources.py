"""Webhook source configuration, as the web process needs it per request (cached briefly)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from automate_core import db
from automate_core.conf import settings
from automate_core.ingest import queries


@dataclass(frozen=True, slots=True)
class SourceConfig:
    slug: str
    scheme: str
    secret_refs: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


class SourceCache:
    """Looks sources up by slug; a found source is cached for ``SOURCE_CACHE_TTL`` seconds."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, SourceConfig]] = {}

    async def get(self, slug: str) -> SourceConfig | None:
        now = time.monotonic()
        hit = self._entries.get(slug)
        if hit is not None and hit[0] > now:
            return hit[1]
        pool = await db.get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(queries.SOURCE_BY_SLUG, {"slug": slug})
            row = await cur.fetchone()
        if row is None:
            self._entries.pop(slug, None)
            return None
        refs = tuple(r.strip() for r in (row[2] or "").split(",") if r.strip())
        source = SourceConfig(row[0], row[1], refs, row[3] or {}, row[4])
        self._entries[slug] = (now + settings.SOURCE_CACHE_TTL, source)
        return source

    def clear(self) -> None:
        self._entries.clear()
