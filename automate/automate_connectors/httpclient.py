"""The one outgoing HTTP client of the built-in connectors: httpx, async, SSRF-guarded.

:func:`guarded_client` builds an ``httpx.AsyncClient`` whose connections are opened by
:class:`GuardedNetworkBackend`: the host is resolved once, every address checked against the
:class:`~automate_connectors.ssrf.Policy`, and the socket connected to a checked address. The
client never reads proxies or ``.netrc`` from the environment (``trust_env=False``): a proxy would
connect on our behalf to a place we did not check. Connections are pooled per process, event loop
and policy (:func:`shared_transport`), so calls to one API reuse their TCP and TLS connections.
:func:`request` follows redirects itself, dropping the caller's headers on a cross-origin hop.

:func:`raise_for_status` turns an HTTP error answer into the matching :class:`ConnectorError`
(5xx, 408 and 429 retryable, ``Retry-After`` honoured; other 4xx not).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import ssl
import time
import typing
import weakref
from typing import Any

import httpcore
import httpx

from automate_connectors.ssrf import Policy
from automate_core import masking
from automate_core.exceptions import ConnectorError, ConnectorTimeout

# httpx logs every request's URL at INFO and httpcore its events at DEBUG: a rendered URL can hold
# a secret. Their own loggers drop query strings and mask, whatever handlers a deployment has.
masking.guard_library_loggers(
    "httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"
)

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


_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    # most specific first: httpcore's timeouts and network errors, then their bases
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextlib.contextmanager
def _httpx_errors() -> typing.Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            with _httpx_errors():
                await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an ``httpcore.AsyncConnectionPool`` whose connections are opened by
    :class:`GuardedNetworkBackend` (public API of both libraries: the pool takes a network backend,
    httpx takes any transport). Its connections are kept alive and reused between calls."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy.from_settings()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(self.policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            answer = await self.pool.handle_async_request(core_request)
        assert isinstance(answer.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_ResponseStream(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


class _Borrowed(httpx.AsyncBaseTransport):
    """A process-wide :class:`GuardedTransport` lent to one client: closing the client (``async
    with guarded_client()``) returns the connections to the pool instead of closing them."""

    def __init__(self, transport: GuardedTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass


# One pool per event loop (connections belong to the loop that opened them) and destination policy.
_transports: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Policy, GuardedTransport]] = (
    weakref.WeakKeyDictionary()
)


def shared_transport(policy: Policy | None = None) -> httpx.AsyncBaseTransport:
    """The process's pooled, guarded transport for ``policy`` (default: the settings' policy)."""
    policy = policy or Policy.from_settings()
    per_loop = _transports.setdefault(asyncio.get_running_loop(), {})
    transport = per_loop.get(policy)
    if transport is None:
        transport = per_loop[policy] = GuardedTransport(policy)
    return _Borrowed(transport)


async def aclose_pools() -> None:
    """Close the pooled connections of the running event loop (a worker's clean shutdown)."""
    for transport in _transports.pop(asyncio.get_running_loop(), {}).values():
        await transport.aclose()


def guarded_client(
    *,
    timeout: float = 30.0,
    follow_redirects: bool = False,
    max_redirects: int = 5,
    policy: Policy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one connector call (see the module docstring). It is cheap: its
    connections come from the process's pool for the destination policy, and go back to it when
    the client closes. Cookies live and die with the client, so no call sees another's."""
    return httpx.AsyncClient(
        transport=transport or shared_transport(policy),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    follow_redirects: bool = False,
    max_redirects: int = 5,
    origin_only: typing.Collection[str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; with ``follow_redirects``, follow its redirects here rather than in httpx,
    which strips only ``Authorization`` on a cross-origin hop: every header the caller supplied
    (an ``X-Api-Key``, a signature) is dropped once a redirect leaves the first origin (scheme,
    host and port). ``origin_only`` names the headers dropped (default: all of ``headers``). Every
    hop opens its connections through the SSRF guard."""
    built = client.build_request(method, url, headers=headers, **kwargs)
    origin = _origin(built.url)
    supplied = {k.lower() for k in (headers or {} if origin_only is None else origin_only)}
    response = await client.send(built, follow_redirects=False)
    hops = 0
    while follow_redirects and response.next_request is not None:
        hops += 1
        if hops > max_redirects:
            raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=response.request)
        following = response.next_request
        if _origin(following.url) != origin:
            for name in supplied:
                following.headers.pop(name, None)
            supplied = set()  # gone for good: later hops are built from this one
        await response.aclose()
        response = await client.send(following, follow_redirects=False)
    return response


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
    detail = masking.masker.cut(response.text[:4096], 200).strip()  # masked before it is cut
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
