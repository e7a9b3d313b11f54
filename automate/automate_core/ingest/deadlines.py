"""Header and body read deadlines for uvicorn's HTTP protocols: slow senders are cut off.

uvicorn closes an idle keep-alive connection, but a request that *arrives* slowly is never timed
out: a client that sends its headers, or its body, a byte every few seconds holds its connection
for as long as it likes (and, before admission was moved after verification, a source's slots).
These protocols add two deadlines to every request on every route (webhooks, the admin, probes):

``AUTOMATE_HTTP_HEADER_TIMEOUT`` (10 s)
    from the opening of the connection, or the first byte of a later request on it, to the end
    of the request's headers;
``AUTOMATE_HTTP_BODY_TIMEOUT`` (30 s)
    from the end of the headers to the end of the body (a 1 MiB body at 35 kB/s still fits).

Past either, the client gets ``408 Request Timeout`` (JSON, ``{"error": "request_timeout"}``) if
no response has started, and the connection is closed (after a lingering close of at most
:data:`LINGER` seconds, so the client reads the 408 rather than a reset); a request already handed
to the application sees ``http.disconnect``. Each cut is counted in
``automate_http_request_timeouts_total{phase}``. The deadlines are totals, not idle timeouts: a
trickle of one byte a second does not extend them.

``automate serve`` runs uvicorn with :class:`HttpToolsProtocol` (or :class:`H11Protocol` without
httptools); to run uvicorn yourself, pass ``--http automate_core.ingest.deadlines:HttpToolsProtocol``
(``automate serve --print-command`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol

logger = logging.getLogger("automate.http")

HEADERS, BODY = "headers", "body"
#: Seconds a cut connection is still read (and what arrives discarded) after its 408 was sent, so
#: the client reads the answer before the close: closing a socket with unread input sends a
#: reset, which can destroy the 408 on its way (nginx's "lingering close").
LINGER = 2.0


def _timeouts() -> tuple[float, float]:
    from automate_core.conf import settings

    return float(settings.HTTP_HEADER_TIMEOUT), float(settings.HTTP_BODY_TIMEOUT)


def _answer(phase: str, limit: float) -> bytes:
    setting = "AUTOMATE_HTTP_HEADER_TIMEOUT" if phase == HEADERS else "AUTOMATE_HTTP_BODY_TIMEOUT"
    body = json.dumps(
        {
            "error": "request_timeout",
            "detail": f"The request's {phase} did not arrive within {limit:g} s ({setting}); "
            "nothing was recorded. Send the whole request at once.",
        }
    ).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class _Deadlines:
    """Mixed into a uvicorn protocol; follows its ``cycle`` (one per request whose headers are done)."""

    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None

    _deadline_timer: asyncio.TimerHandle | None = None
    _deadline_phase: str | None = None
    _deadline_cycle: Any = None
    _lingering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm(HEADERS)

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # cut off: what still arrives is read and dropped until the close
            return
        if self._deadline_phase is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(HEADERS)  # the first byte of the next request on a kept-alive connection
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not None and cycle is not self._deadline_cycle:  # its headers are complete
            self._deadline_cycle = cycle
            self._disarm()
            if cycle.more_body:
                self._arm(BODY)
        elif self._deadline_phase == BODY and cycle is not None and not cycle.more_body:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self, phase: str) -> None:
        self._disarm()
        header_timeout, body_timeout = _timeouts()
        limit = header_timeout if phase == HEADERS else body_timeout
        if limit > 0:
            self._deadline_phase = phase
            self._deadline_timer = self.loop.call_later(limit, self._expired, phase, limit)

    def _disarm(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        self._deadline_timer = None
        self._deadline_phase = None

    def _expired(self, phase: str, limit: float) -> None:
        self._deadline_timer = None
        self._deadline_phase = None
        if self.transport.is_closing():
            return
        from automate_core.observability import metrics

        metrics.http_request_timeouts.labels(phase).inc()
        logger.info("request %s not received within %g s from %s: closed", phase, limit, self.client)
        cycle = self.cycle if phase == BODY else None
        answered = cycle is None or not cycle.response_started
        if answered:
            self.transport.write(_answer(phase, limit))
        if cycle is not None:  # the application waits for the body: it sees a disconnect
            cycle.disconnected = True
            cycle.message_event.set()
        if not answered or not self.transport.can_write_eof():
            self.transport.close()
            return
        self._lingering = True
        with contextlib.suppress(RuntimeError):  # reading was paused by flow control: drain anyway
            self.transport.resume_reading()
        self.transport.write_eof()  # the 408, then FIN; keep reading until the client closes too
        self.loop.call_later(LINGER, self.transport.close)


class HttpToolsProtocol(_Deadlines, _HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines."""


class H11Protocol(_Deadlines, _H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines."""


def protocol_path(http: str) -> str:
    """The ``--http`` import string for ``httptools`` or ``h11``."""
    name = "HttpToolsProtocol" if http == "httptools" else "H11Protocol"
    return f"{__name__}:{name}"
