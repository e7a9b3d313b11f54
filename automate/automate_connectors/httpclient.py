"""The one outgoing HTTP client of the built-in connectors: httpx, async, SSRF-guarded.

:func:`guarded_client` builds an ``httpx.AsyncClient`` whose connections are opened by
:class:`GuardedNetworkBackend`: the host is resolved once, every address checked against the
:class:`~automate_connectors.ssrf.Policy`, and the socket connected to a checked address. The
client never reads proxies or ``.netrc`` from the environment (``trust_env=False``): a proxy would
connect on our behalf to a place we did not check.

:func:`raise_for_status` turns an HTTP error answer into the matching :class:`ConnectorError`
(5xx, 408 and 429 retryable, ``Retry-After`` honoured; other 4xx not).
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import ssl
import time
import typing
from typing import Any

import httpcore
import httpx

from automate_connectors.ssrf import Policy
from automate_core.exceptions import ConnectorError, ConnectorTimeout

MAX_RESPONSE_BYTES = 1024 * 1024


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the policy allows."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.policy.resolve(host, port)
        last: Exception | None = None
        for ip in addresses:  # pinned: connect to the checked address, never to the name again
            try:
                return await self._backend.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not allowed for outgoing connector calls.")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The process's one TLS context (certifi's CAs, no SSLKEYLOGFILE). Building one loads the CA
    bundle, several milliseconds of CPU: built per call, it was most of a worker's time."""
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool uses :class:`GuardedNetworkBackend`."""

    def __init__(self, policy: Policy | None = None) -> None:
        super().__init__(verify=ssl_context(), trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context(),
            network_backend=GuardedNetworkBackend(policy or Policy.from_settings()),
        )


def guarded_client(
    *,
    timeout: float = 30.0,
    follow_redirects: bool = False,
    max_redirects: int = 5,
    policy: Policy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one connector call (see the module docstring)."""
    return httpx.AsyncClient(
        transport=transport or GuardedTransport(policy),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if there is one."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = response.text[:200].strip()
    raise ConnectorError(
        f"{what} answered {status}{': ' + detail if detail else ''}.",
        retryable=status >= 500 or status in (408, 425, 429),
        retry_after=retry_after(response),
        status_code=status,
    )


def body_of(response: httpx.Response) -> Any:
    """The answer's body: parsed JSON when it is JSON, else text (at most 1 MiB)."""
    raw = response.content[:MAX_RESPONSE_BYTES]
    if "json" in response.headers.get("content-type", ""):
        with contextlib.suppress(ValueError):
            return response.json()
    return raw.decode(response.encoding or "utf-8", "replace")


def transport_error(exc: httpx.HTTPError | httpx.InvalidURL, what: str, timeout: float) -> ConnectorError:
    """The ``ConnectorError`` for an httpx failure (the SSRF refusal passes through unchanged)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ConnectorError):
        return cause
    if isinstance(exc, httpx.TimeoutException):
        return ConnectorTimeout(f"{what} timed out after {timeout:g}s.")
    if isinstance(exc, httpx.TooManyRedirects):
        return ConnectorError(f"{what}: too many redirects.", retryable=False)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ConnectorError(f"{what}: {exc}", retryable=False)
    return ConnectorError(f"{what} failed: {type(exc).__name__}: {exc}")
