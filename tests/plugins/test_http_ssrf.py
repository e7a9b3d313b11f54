"""The http connector against a real server on 127.0.0.1, and its SSRF guard.

Only loopback addresses are ever connected to. Private, CGNAT and metadata addresses are checked
at the policy level (the check happens before any connection), or reached through a stand-in
resolver whose answer the guard must refuse before connecting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from automate_connectors import ssrf
from automate_connectors.http import HttpConnector
from automate_connectors.ssrf import BlockedDestination, Policy
from automate_core.exceptions import ConnectorError, ConnectorTimeout
from tests.plugins.servers import FakeServer

CTX: dict[str, Any] = {"run_id": 1, "workflow": "wf", "step": "s", "trace_id": "t", "dry_run": False}


@pytest.fixture
def no_allowlist(settings: Any) -> None:
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = []


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """A stand-in DNS: ``{host: [addresses]}``; counts lookups in ``calls``."""
    answers: dict[str, list[str]] = {}
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[ssrf.IPAddress]:
        calls.append(host)
        if host not in answers:
            raise ConnectorError(f"Cannot resolve {host}")
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    answers["__calls__"] = calls
    yield answers


async def call(action: str, **params: Any) -> Any:
    return await HttpConnector().aexecute(action, params, CTX)


# --- the connector speaks HTTP ------------------------------------------------------------------


async def test_post_json_with_headers(server: FakeServer) -> None:
    server.reply("POST", "/orders", 201, {"id": 7})
    out = await call("post", url=server.url + "/orders", json={"a": 1}, headers={"X-Token": "abc"})
    assert out["status"] == 201 and out["body"] == {"id": 7}
    req = server.requests[0]
    assert req.json() == {"a": 1} and req.headers["x-token"] == "abc"
    assert req.headers["content-type"] == "application/json"


async def test_form_body_query_and_generic_request(server: FakeServer) -> None:
    server.reply("PUT", "/form", 200, "done")
    out = await call("request", method="put", url=server.url + "/form", data={"x": "1"}, params={"q": "z"})
    assert out["body"] == "done"
    req = server.requests[0]
    assert req.body == b"x=1" and req.path == "/form?q=z"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (500, {}, True, None),
        (429, {"Retry-After": "7"}, True, 7.0),
        (404, {}, False, None),
        (401, {}, False, None),
    ],
)
async def test_error_answers_are_classified(
    server: FakeServer, status: int, headers: dict[str, str], retryable: bool, retry_after: float | None
) -> None:
    server.reply("GET", "/x", status, {"error": "nope"}, **headers)
    with pytest.raises(ConnectorError) as caught:
        await call("get", url=server.url + "/x")
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == retry_after
    assert caught.value.status_code == status


async def test_timeout_is_a_retryable_connector_timeout(server: FakeServer) -> None:
    server.delay = 1.0
    server.reply("GET", "/slow", 200, {})
    with pytest.raises(ConnectorTimeout) as caught:
        await call("get", url=server.url + "/slow", timeout=0.2)
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"url": "file:///etc/passwd"}, "only calls http"),
        ({"url": "gopher://127.0.0.1/"}, "only calls http"),
        ({}, "needs a 'url'"),
        ({"url": "http://x.test/", "json": {}, "data": {"a": 1}}, "one body"),
        ({"url": "http://x.test/", "bogus": 1}, "unknown params"),
        ({"url": "http://x.test/", "timeout": -1}, "positive"),
    ],
)
async def test_bad_params_are_not_retryable(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorError, match=message) as caught:
        await call("post", **params)
    assert not caught.value.retryable


# --- SSRF: refused before anything is sent --------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "2130706433", "0x7f.0.0.1", "0x7f000001", "127.1", "[::ffff:127.0.0.1]",
     "[::ffff:7f00:1]", "[::1]", "0177.0.0.1"],
)  # fmt: skip
@pytest.mark.usefixtures("no_allowlist")
async def test_loopback_in_every_spelling_is_refused(server: FakeServer, host: str) -> None:
    server.reply("GET", "/", 200, {})
    port = server.url.rsplit(":", 1)[1]
    with pytest.raises(ConnectorError) as caught:
        await call("get", url=f"http://{host}:{port}/")
    assert not caught.value.retryable
    assert server.requests == []


@pytest.mark.usefixtures("no_allowlist")
async def test_redirects_are_rechecked_on_every_hop(server: FakeServer, settings: Any, resolver: Any) -> None:
    port = server.url.rsplit(":", 1)[1]
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = [f"public.test:{port}"]
    resolver["public.test"] = ["127.0.0.1"]
    server.reply("GET", "/hop", 302, "", Location=f"http://127.0.0.1:{port}/internal")
    server.reply("GET", "/internal", 200, {"secret": "data"})
    with pytest.raises(BlockedDestination, match="non-public"):
        await call("get", url=f"http://public.test:{port}/hop", follow_redirects=True)
    assert [r.path for r in server.requests] == ["/hop"]


async def test_redirects_are_not_followed_unless_asked(server: FakeServer) -> None:
    server.reply("GET", "/hop", 302, "", Location="/there")
    out = await call("get", url=server.url + "/hop")
    assert out["status"] == 302 and len(server.requests) == 1


@pytest.mark.usefixtures("no_allowlist")
async def test_connection_is_pinned_to_the_checked_address(
    server: FakeServer, settings: Any, resolver: Any
) -> None:
    """``pinned.test`` exists only in the stand-in resolver: the socket goes to the checked address,
    with no second lookup (which is what DNS rebinding exploits), and Host stays the URL's."""
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = ["*.test:*"]
    resolver["pinned.test"] = ["127.0.0.1"]
    port = server.url.rsplit(":", 1)[1]
    server.reply("GET", "/", 200, {"ok": True})
    out = await call("get", url=f"http://pinned.test:{port}/")
    assert out["body"] == {"ok": True}
    assert server.requests[0].headers["host"] == f"pinned.test:{port}"
    assert resolver["__calls__"] == ["pinned.test"]


@pytest.mark.usefixtures("no_allowlist")
async def test_one_private_answer_refuses_the_host(server: FakeServer, resolver: Any) -> None:
    resolver["mixed.test"] = ["93.184.216.34", "127.0.0.1"]
    with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1"):
        await call("get", url="http://mixed.test/")
    assert server.requests == []


async def test_allowlist_admits_internal_apis(server: FakeServer, settings: Any) -> None:
    port = server.url.rsplit(":", 1)[1]
    for allowed in ([f"127.0.0.1:{port}"], [f"127.0.0.0/8:{port}"], ["127.0.0.1:*"], [f"[127.0.0.1]:{port}"]):
        settings.AUTOMATE_HTTP_ALLOWED_HOSTS = allowed
        server.reply("GET", "/", 200, {"ok": True})
        assert (await call("get", url=server.url + "/"))["status"] == 200


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "198.18.0.1", "169.254.169.254", "169.254.1.1",
     "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::", "::ffff:10.0.0.1",
     "64:ff9b::a00:1", "2002:a00:1::1", "fd00:ec2::254"],
)  # fmt: skip
def test_policy_refuses_non_public_addresses(address: str) -> None:
    with pytest.raises(BlockedDestination):
        Policy.build([]).check_address("h", ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_policy_admits_public_addresses(address: str) -> None:
    Policy.build([]).check_address("h", ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["169.254.169.254", "::ffff:169.254.169.254", "100.100.100.200"])
def test_metadata_stays_refused_even_when_allowlisted(address: str) -> None:
    policy = Policy.build(["h", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/0"])
    with pytest.raises(BlockedDestination, match="metadata"):
        policy.check_address("h", ipaddress.ip_address(address))


async def test_metadata_host_names_are_refused_without_lookup(resolver: Any) -> None:
    policy = Policy.build(["metadata.google.internal"])
    with pytest.raises(BlockedDestination, match="metadata"):
        await policy.resolve("metadata.google.internal", 80)
    assert resolver["__calls__"] == []


@pytest.mark.parametrize(
    ("spelling", "address"),
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
     ("127.1", "127.0.0.1"), ("0xa9.254.169.254", "169.254.169.254"),
     ("[::ffff:a9fe:a9fe]", "::ffff:a9fe:a9fe")],
)  # fmt: skip
def test_address_spellings_are_normalised(spelling: str, address: str) -> None:
    assert ssrf.parse_literal(spelling) == ipaddress.ip_address(address)


def test_turning_protection_off_still_refuses_metadata() -> None:
    policy = Policy.build([], enabled=False)
    policy.check_address("h", ipaddress.ip_address("10.0.0.1"))
    with pytest.raises(BlockedDestination, match="metadata"):
        policy.check_address("h", ipaddress.ip_address("169.254.169.254"))


# --- allow-list entries name their ports ----------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "port", "allowed"),
    [("api.internal", 443, True), ("api.internal", 80, True), ("api.internal", 5432, False),
     ("api.internal", 9090, False), ("api.internal:8080", 8080, True), ("api.internal:8080", 443, False),
     ("api.internal:*", 5432, True), ("*.internal", 6379, False), ("*.internal:6379", 6379, True),
     ("10.0.0.0/8", 443, True), ("10.0.0.0/8", 5432, False), ("10.0.0.0/8:5432", 5432, True),
     ("[fd00::/8]:9000", 9000, True), ("[fd00::/8]:9000", 9001, False), ("fd00::/8", 22, False),
     ("fd00::/8", 443, True)],
)  # fmt: skip
def test_an_allowlist_entry_without_a_port_allows_only_the_web_ports(
    entry: str, port: int, allowed: bool
) -> None:
    policy = Policy.build([entry])
    ip = ipaddress.ip_address("fd00::5" if "fd00" in entry else "10.1.2.3")
    if allowed:
        policy.check_address("api.internal", ip, port)
    else:
        with pytest.raises(BlockedDestination, match=f"not {port}|non-public"):
            policy.check_address("api.internal", ip, port)


@pytest.mark.parametrize("entry", ["api.internal:0", "api.internal:http", "h:70000", "h:-1", "[::1]:x"])
def test_a_bad_port_in_the_allowlist_is_refused(entry: str) -> None:
    with pytest.raises(BlockedDestination, match="is not a port"):
        Policy.build([entry])


async def test_an_allowed_host_does_not_open_its_other_ports(server: FakeServer, settings: Any) -> None:
    """The audit reached PostgreSQL's port and /metrics through an entry meant for one API."""
    server.reply("GET", "/metrics", 200, "automate_jobs 1")
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]  # no port: 80 and 443 only
    with pytest.raises(BlockedDestination, match=r"ports 80 and 443 only") as caught:
        await call("get", url=server.url + "/metrics")
    assert "127.0.0.1:" in str(caught.value)  # the message names the entry that would allow it
    assert server.requests == []


# --- every reserved range, in every embedding ----------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["fec0::1", "fec0:1::a00:1",  # site-local (deprecated, still routed on some networks)
     "::ffff:0:7f00:1", "::ffff:0:808:808",  # IPv4-translated ::ffff:0:0:0/96
     "::7f00:1", "::a00:1", "::808:808",  # IPv4-compatible ::a.b.c.d
     "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1",  # NAT64 carrying private v4
     "64:ff9b:1::808:808",  # local-use NAT64
     "2002:7f00:1::1", "2002:a00:1::1", "2002:808:808::1",  # 6to4
     "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::7f00:1",  # Teredo
     "2620:0:2d0:200:0:5efe:7f00:1", "2620:0:2d0:200:200:5efe:a00:1",  # ISATAP carrying private v4
     "100::1", "2001:db8::1", "2001:10::1", "2001:2::1", "ff02::1", "ff0e::1",
     "192.0.2.1", "198.51.100.7", "203.0.113.9", "240.0.0.1", "192.0.0.8",
     "198.19.255.255", "0.1.2.3", "127.255.255.254"],
)  # fmt: skip
def test_every_reserved_range_is_refused(address: str) -> None:
    with pytest.raises(BlockedDestination):
        Policy.build([]).check_address("h", ipaddress.ip_address(address), 443)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "::ffff:8.8.8.8", "2620:0:2d0:200::7"])
def test_embeddings_of_public_addresses_stay_usable(address: str) -> None:
    """NAT64 (DNS64 networks) and mapped forms of a public address mean that address."""
    Policy.build([]).check_address("h", ipaddress.ip_address(address), 443)


@pytest.mark.usefixtures("no_allowlist")
@pytest.mark.parametrize("answer", ["fec0::1", "::ffff:0:7f00:1", "::7f00:1", "64:ff9b::7f00:1"])
async def test_a_name_resolving_to_a_reserved_ipv6_form_is_refused_before_connecting(
    server: FakeServer, resolver: Any, answer: str
) -> None:
    resolver["sneaky.test"] = [answer]
    with pytest.raises(BlockedDestination):
        await call("get", url="http://sneaky.test/")
    assert server.requests == []


# --- redirects: the step's headers stay with the step's origin -----------------------------------


@pytest.fixture
def other_server() -> Iterator[FakeServer]:
    fake = FakeServer().start()
    yield fake
    fake.stop()


STEP_HEADERS = {"X-Api-Key": "k-123", "Authorization": "Bearer t-456", "X-Signature": "sig", "Cookie": "c=1"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_cross_origin_redirect_drops_every_step_header(
    server: FakeServer, other_server: FakeServer, status: int
) -> None:
    server.reply("GET", "/hop", status, "", Location=other_server.url + "/landing")
    other_server.reply("GET", "/landing", 200, {"ok": True})
    out = await call("get", url=server.url + "/hop", headers=STEP_HEADERS, follow_redirects=True)
    assert out["body"] == {"ok": True}
    assert server.requests[0].headers["x-api-key"] == "k-123"  # the first origin got them
    landed = other_server.requests[0].headers
    for name in STEP_HEADERS:
        assert name.lower() not in landed, name
    assert "idempotency-key" in landed  # the platform's own headers carry on


async def test_a_redirect_that_comes_back_to_the_first_origin_does_not_regain_the_headers(
    server: FakeServer, other_server: FakeServer
) -> None:
    server.reply("GET", "/hop", 302, "", Location=other_server.url + "/bounce")
    other_server.reply("GET", "/bounce", 302, "", Location=server.url + "/home")
    server.reply("GET", "/home", 200, {"ok": True})
    await call("get", url=server.url + "/hop", headers=STEP_HEADERS, follow_redirects=True)
    assert "x-api-key" not in server.requests[-1].headers


async def test_a_same_origin_redirect_keeps_the_step_headers(server: FakeServer) -> None:
    server.reply("GET", "/hop", 302, "", Location="/there")
    server.reply("GET", "/there", 200, {"ok": True})
    await call("get", url=server.url + "/hop", headers={"X-Api-Key": "k-123"}, follow_redirects=True)
    assert server.requests[1].headers["x-api-key"] == "k-123"


async def test_too_many_redirects_is_a_clear_permanent_error(server: FakeServer) -> None:
    server.reply("GET", "/loop", 302, "", Location="/loop")
    with pytest.raises(ConnectorError, match="too many redirects") as caught:
        await call("get", url=server.url + "/loop", follow_redirects=True)
    assert not caught.value.retryable and len(server.requests) == 6


# --- connections are pooled per process and policy -----------------------------------------------


@pytest.mark.usefixtures("no_allowlist")
async def test_calls_to_one_destination_reuse_their_connection(
    server: FakeServer, settings: Any, resolver: Any
) -> None:
    """A new client per call opened a new connection (and resolved the host) every time."""
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = ["*.test:*"]
    resolver["pooled.test"] = ["127.0.0.1"]
    port = server.url.rsplit(":", 1)[1]
    server.reply("GET", "/", 200, {"ok": True})
    for _ in range(3):
        assert (await call("get", url=f"http://pooled.test:{port}/"))["status"] == 200
    assert resolver["__calls__"] == ["pooled.test"]  # one connection, opened (and checked) once
    assert len({r.client_port for r in server.requests}) == 1


async def test_a_changed_policy_gets_its_own_pool(server: FakeServer, settings: Any) -> None:
    port = server.url.rsplit(":", 1)[1]
    server.reply("GET", "/", 200, {"ok": True})
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    assert (await call("get", url=server.url + "/"))["status"] == 200
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = []  # a pooled connection must not outlive its permission
    with pytest.raises(BlockedDestination):
        await call("get", url=server.url + "/")
