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
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = ["public.test"]
    resolver["public.test"] = ["127.0.0.1"]
    port = server.url.rsplit(":", 1)[1]
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
    settings.AUTOMATE_HTTP_ALLOWED_HOSTS = ["*.test"]
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
    for allowed in (["127.0.0.1"], ["127.0.0.0/8"]):
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
