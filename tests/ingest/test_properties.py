"""Property-based: random headers and bodies at every verifier and at the endpoint.

No exception but a SignatureError escapes a verifier; the endpoint answers every request with a
client error, a success, or 503, never another 5xx, and never stores anything it refused.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automate_core.ingest import schemes
from automate_core.ingest.schemes import SignatureError

HEADER_NAMES = [
    "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "svix-signature",
    "stripe-signature", "x-hub-signature-256", "x-github-delivery", "x-github-event", "x-slack-signature",
    "x-slack-request-timestamp", "x-shopify-hmac-sha256", "x-shopify-webhook-id", "x-automate-signature",
    "x-sig", "x-sig-time", "authorization", "x-automate-token", "idempotency-key", "x-automate-event",
]  # fmt: skip
NOW = int(time.time())

# values that look like what the schemes parse, and plain noise
# what can travel in an HTTP header: visible latin-1 (servers decode header bytes as latin-1)
header_text = st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=80)
header_values = st.one_of(
    header_text,
    st.from_regex(r"(v1|v1a|v0|sha256|t)[,=][A-Za-z0-9+/=]{0,90}", fullmatch=True),
    st.builds(lambda t, s: f"t={t},v1={s}", st.integers(NOW - 1000, NOW + 1000), st.text("0123456789abcdef")),
    st.integers(NOW - 1000, NOW + 1000).map(str),
    st.just("Bearer atk_x"),
)
headers_st = st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=8)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
)
SCHEME_OPTIONS = {"hmac": {"signature": {"header": "X-Sig", "timestamp_header": "X-Sig-Time"}}}
KEYS = [b"k" * 32, base64.b64decode(base64.b64encode(b"x" * 24))]


@pytest.mark.parametrize("name", sorted(schemes.SCHEMES))
@settings(max_examples=150, deadline=None)
@given(headers=headers_st, body=bodies, keyed=st.booleans())
def test_verifiers_raise_only_signature_errors(
    name: str, headers: dict[str, str], body: bytes, keyed: bool
) -> None:
    scheme = schemes.build(name, SCHEME_OPTIONS.get(name, {}))
    try:
        scheme.verify(headers, body, KEYS if keyed else [], float(NOW))
    except SignatureError as exc:
        assert exc.status == 401 and exc.reason
        assert "kkkk" not in str(exc)
    payload: Any = None
    with contextlib.suppress(ValueError):
        payload = json.loads(body)
    key, kind = scheme.idempotency_key(headers, payload), scheme.event_type(headers, payload)
    assert key is None or isinstance(key, str)
    assert kind is None or isinstance(kind, str)


CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
     "text/plain", "", "application/cloudevents+json"]
)  # fmt: skip
SLUGS = ["test", "std", "stripe", "github", "slack", "shopify", "generic", "tok", "open", "missing"]


@pytest.fixture
def every_scheme(
    demo_source: str, load: Callable[[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMATE_SECRET_PROP", "whsec_" + base64.b64encode(b"p" * 24).decode())
    ref = {"secret_ref": "env:PROP"}
    load(
        {
            "sources": [
                {"slug": "std", "scheme": "standard_webhooks", **ref},
                {"slug": "stripe", "scheme": "stripe", **ref},
                {"slug": "github", "scheme": "github", **ref},
                {"slug": "slack", "scheme": "slack", **ref},
                {"slug": "shopify", "scheme": "shopify", **ref, "config": {"max_body_bytes": 100}},
                {"slug": "generic", "scheme": "hmac", **ref, "config": SCHEME_OPTIONS["hmac"]},
                {"slug": "tok", "scheme": "token"},
                {"slug": "open", "scheme": "none"},
            ]
        }
    )


@pytest.mark.usefixtures("every_scheme")
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    slug=st.sampled_from(SLUGS),
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
    content_type=CONTENT_TYPES,
    headers=headers_st,
    body=bodies,
)
async def test_endpoint_never_fails_with_a_5xx_other_than_503(
    client: httpx.AsyncClient, slug: str, method: str, content_type: str, headers: dict[str, str], body: bytes
) -> None:
    sent = [(k.encode(), v.encode("latin-1")) for k, v in {**headers, "content-type": content_type}.items()]
    response = await client.request(method, f"/hooks/{slug}/", content=body, headers=sent)
    assert response.status_code in {200, 202, 400, 401, 404, 405, 413, 415, 429, 503}, response.text
    answer = response.json()
    if response.status_code >= 400:
        assert answer["error"] and answer["detail"]
        if response.status_code == 503:
            assert response.headers["retry-after"]
    elif "challenge" not in answer:
        assert answer["status"] in {"accepted", "duplicate"} and answer["event_id"] > 0
