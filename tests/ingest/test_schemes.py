"""Each scheme against signatures made by the provider's own published algorithm.

Where the provider publishes an SDK on PyPI, the signature is made by it (``standardwebhooks``,
``stripe``, ``slack_sdk``); GitHub publishes a test vector in its docs; Shopify publishes only the
algorithm (base64 of HMAC-SHA256 of the raw body), computed here with the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
import stripe
from slack_sdk.signature import SignatureVerifier

from automate_core.ingest import schemes
from automate_core.ingest.schemes import SchemeConfigError, SignatureError
from automate_core.ingest.schemes.token import hash_token, new_token
from automate_core.models import SignatureScheme

NOW = time.time()
BODY = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"n": 1}}).encode()


def verify(
    name: str,
    headers: dict[str, str],
    secrets: list[str],
    body: bytes = BODY,
    options: dict[str, Any] | None = None,
) -> None:
    scheme = schemes.build(name, options or {})
    keys = [scheme.secret(s) for s in secrets]
    scheme.verify({k.lower(): v for k, v in headers.items()}, body, keys, NOW)


def refused(
    name: str,
    headers: dict[str, str],
    secrets: list[str],
    body: bytes = BODY,
    options: dict[str, Any] | None = None,
) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(name, headers, secrets, body, options)
    assert caught.value.status == 401
    for secret in secrets:
        assert secret not in str(caught.value)
    return caught.value.reason


def test_registry_and_model_choices_agree() -> None:
    assert set(schemes.SCHEMES) == set(SignatureScheme.values)


# --- Standard Webhooks / Svix ------------------------------------------------------------------

WHSEC = "whsec_" + base64.b64encode(b"a-standard-webhooks-key-32-bytes").decode()
WHSEC_OLD = "whsec_" + base64.b64encode(b"the-previous-key-before-rotation").decode()


def standard_headers(
    secret: str = WHSEC, ts: float = NOW, msg_id: str = "msg_1", prefix: str = "webhook"
) -> dict:
    signature = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), BODY.decode())
    return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(int(ts)), f"{prefix}-signature": signature}


def test_standard_webhooks_sdk_signature_verifies() -> None:
    verify("standard_webhooks", standard_headers(), [WHSEC])


def test_svix_header_names_verify() -> None:
    verify("standard_webhooks", standard_headers(prefix="svix"), [WHSEC])


def test_standard_webhooks_rotation_both_ways() -> None:
    # the sender signs with old and new keys (space-separated entries; a v1a entry is skipped) ...
    old = standard_headers(WHSEC_OLD)
    new = standard_headers(WHSEC)
    both = {**new, "webhook-signature": f"v1a,AAAA {old['webhook-signature']} {new['webhook-signature']}"}
    verify("standard_webhooks", both, [WHSEC])
    # ... or the receiver holds old and new secrets while the sender switches
    verify("standard_webhooks", old, [WHSEC, WHSEC_OLD])
    assert refused("standard_webhooks", old, [WHSEC]) == "signature_mismatch"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": ""}, "missing_signature"),
        ({"webhook-id": ""}, "missing_webhook_id"),
        ({"webhook-timestamp": ""}, "missing_timestamp"),
        ({"webhook-timestamp": "12.5"}, "malformed_timestamp"),
        ({"webhook-timestamp": str(int(NOW) - 301)}, "timestamp_out_of_tolerance"),
        ({"webhook-timestamp": str(int(NOW) + 301)}, "timestamp_out_of_tolerance"),
        ({"webhook-signature": "v1a,abcd"}, "malformed_signature"),
        ({"webhook-id": "msg_2"}, "signature_mismatch"),
    ],
)
def test_standard_webhooks_refusals(change: dict[str, str], reason: str) -> None:
    assert refused("standard_webhooks", {**standard_headers(), **change}, [WHSEC]) == reason


def test_tolerance_is_configurable_per_source() -> None:
    late = standard_headers(ts=NOW - 600)
    assert refused("standard_webhooks", late, [WHSEC]) == "timestamp_out_of_tolerance"
    verify("standard_webhooks", late, [WHSEC], options={"tolerance_seconds": 900})


def test_standard_webhooks_id_and_type() -> None:
    scheme = schemes.build("standard_webhooks")
    assert scheme.idempotency_key({"svix-id": "msg_9"}, {}) == "msg_9"
    assert scheme.event_type({}, {"type": "user.created"}) == "user.created"


def test_standard_webhooks_secret_must_be_base64() -> None:
    with pytest.raises(SchemeConfigError):
        schemes.build("standard_webhooks").secret("whsec_not base64!")


# --- Stripe ------------------------------------------------------------------------------------

STRIPE_SECRET = "whsec_stripe_test_secret_0123456789"


def stripe_header(secret: str = STRIPE_SECRET, ts: float = NOW) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret, timestamp=int(ts)))


def test_stripe_sdk_signature_verifies_and_sdk_accepts_the_same() -> None:
    header = stripe_header()
    verify("stripe", {"stripe-signature": header}, [STRIPE_SECRET])
    # the SDK's own tolerance check reads the wall clock, and NOW was taken when the module was
    # imported (minutes earlier in a long run): the signature is what this test compares
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, STRIPE_SECRET, tolerance=None)


def test_stripe_several_v1_during_a_secret_roll() -> None:
    old = stripe_header("whsec_the_old_one").split(",")[1]
    header = stripe_header() + "," + old + ",v0=00ff"
    verify("stripe", {"stripe-signature": header}, [STRIPE_SECRET])
    verify(
        "stripe",
        {"stripe-signature": stripe_header("whsec_the_old_one")},
        [STRIPE_SECRET, "whsec_the_old_one"],
    )


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "missing_signature"),
        ("v1=00", "missing_timestamp"),
        (f"t={int(NOW)}", "malformed_signature"),
        (f"t={int(NOW)},v1=zz", "malformed_signature"),
        (f"t=abc,v1={'0' * 64}", "malformed_timestamp"),
        (f"t={int(NOW)},v1={'0' * 64}", "signature_mismatch"),
    ],
)
def test_stripe_refusals(header: str, reason: str) -> None:
    assert refused("stripe", {"stripe-signature": header}, [STRIPE_SECRET]) == reason


def test_stripe_replay_refused_in_both_directions() -> None:
    for ts in (NOW - 400, NOW + 400):
        header = stripe_header(ts=ts)
        assert (
            refused("stripe", {"stripe-signature": header}, [STRIPE_SECRET]) == "timestamp_out_of_tolerance"
        )


def test_stripe_id_and_type_from_the_body() -> None:
    scheme = schemes.build("stripe")
    payload = json.loads(BODY)
    assert (scheme.idempotency_key({}, payload), scheme.event_type({}, payload)) == ("evt_1", "invoice.paid")


# --- GitHub ------------------------------------------------------------------------------------


def test_github_documented_test_vector() -> None:
    # docs.github.com, "Validating webhook deliveries": secret, payload and expected signature
    verify(
        "github",
        {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
        ["It's a Secret to Everybody"],
        body=b"Hello, World!",
    )


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({}, "missing_signature"),
        ({"x-hub-signature-256": "sha1=abcd"}, "malformed_signature"),
        ({"x-hub-signature-256": "sha256=not-hex"}, "malformed_signature"),
        ({"x-hub-signature-256": "sha256=" + "00" * 32}, "signature_mismatch"),
    ],
)
def test_github_refusals(header: dict[str, str], reason: str) -> None:
    assert refused("github", header, ["s3cret-but-long-enough"]) == reason


def test_github_delivery_and_event_headers() -> None:
    scheme = schemes.build("github")
    headers = {"x-github-delivery": "72d3162e", "x-github-event": "push"}
    assert (scheme.idempotency_key(headers, {}), scheme.event_type(headers, {})) == ("72d3162e", "push")


# --- Slack -------------------------------------------------------------------------------------

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def slack_headers(body: bytes = BODY, ts: float = NOW, secret: str = SLACK_SECRET) -> dict[str, str]:
    timestamp = str(int(ts))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


def test_slack_sdk_signature_verifies_json_and_form_bodies() -> None:
    verify("slack", slack_headers(), [SLACK_SECRET])
    form = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    verify("slack", slack_headers(form), [SLACK_SECRET], body=form)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"X-Slack-Signature": ""}, "missing_signature"),
        ({"X-Slack-Request-Timestamp": ""}, "missing_timestamp"),
        ({"X-Slack-Request-Timestamp": str(int(NOW) - 3600)}, "timestamp_out_of_tolerance"),
        ({"X-Slack-Signature": "v1=abcd"}, "malformed_signature"),
        ({"X-Slack-Signature": "v0=" + "ab" * 32}, "signature_mismatch"),
    ],
)
def test_slack_refusals(change: dict[str, str], reason: str) -> None:
    assert refused("slack", {**slack_headers(), **change}, [SLACK_SECRET]) == reason


def test_slack_event_id_and_types() -> None:
    scheme = schemes.build("slack")
    callback = {"type": "event_callback", "event_id": "Ev01", "event": {"type": "app_mention"}}
    assert scheme.idempotency_key({}, callback) == "Ev01"
    assert scheme.event_type({}, callback) == "app_mention"
    assert scheme.event_type({}, {"type": "block_actions"}) == "block_actions"
    assert scheme.event_type({}, {"command": "/deploy", "text": "now"}) == "slash_command"


# --- Shopify -----------------------------------------------------------------------------------


def shopify_hmac(secret: str, body: bytes) -> str:
    # shopify.dev, "Verify webhooks": base64(HMAC-SHA256(client secret, raw body))
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_shopify_signature_verifies() -> None:
    verify("shopify", {"X-Shopify-Hmac-Sha256": shopify_hmac("shpss_secret", BODY)}, ["shpss_secret"])


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({}, "missing_signature"),
        ({"x-shopify-hmac-sha256": "%%%"}, "malformed_signature"),
        ({"x-shopify-hmac-sha256": shopify_hmac("other", BODY)}, "signature_mismatch"),
    ],
)
def test_shopify_refusals(header: dict[str, str], reason: str) -> None:
    assert refused("shopify", header, ["shpss_secret"]) == reason


def test_shopify_webhook_id_and_topic() -> None:
    scheme = schemes.build("shopify")
    headers = {"x-shopify-webhook-id": "b54557e4", "x-shopify-topic": "orders/create"}
    assert (scheme.idempotency_key(headers, {}), scheme.event_type(headers, {})) == (
        "b54557e4",
        "orders/create",
    )


# --- generic HMAC ------------------------------------------------------------------------------

SHA512_B64 = {
    "signature": {
        "header": "X-Sig",
        "prefix": "v2=",
        "encoding": "base64",
        "algorithm": "sha512",
        "timestamp_header": "X-Sig-Time",
        "signed_content": "{timestamp}:{body}:end",
    }
}


def test_generic_hmac_sha512_base64_with_timestamp() -> None:
    ts = str(int(NOW))
    digest = hmac.new(b"generic-signing-key-1", ts.encode() + b":" + BODY + b":end", hashlib.sha512).digest()
    headers = {"X-Sig": "v2=" + base64.b64encode(digest).decode(), "X-Sig-Time": ts}
    verify("hmac", headers, ["generic-signing-key-1"], options=SHA512_B64)
    assert refused(
        "hmac", {**headers, "X-Sig-Time": str(int(NOW) - 999)}, ["generic-signing-key-1"], options=SHA512_B64
    ) == ("timestamp_out_of_tolerance")
    assert (
        refused("hmac", {**headers, "X-Sig": "sha512=00"}, ["generic-signing-key-1"], options=SHA512_B64)
        == "malformed_signature"
    )


def test_generic_hmac_plain_hex() -> None:
    headers = {"X-Signature": hmac.new(b"generic-signing-key-1", BODY, hashlib.sha256).hexdigest()}
    verify(
        "hmac",
        headers,
        ["old-generic-signing-key", "generic-signing-key-1"],
        options={"signature": {"header": "X-Signature"}},
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"signature": {"header": "X"}, "tolerance_seconds": -1},
        {"signature": {"header": "X", "encoding": "base32"}},
        {"signature": {"header": "X", "algorithm": "md5"}},
        {"signature": {"header": "X", "signed_content": "{timestamp}.{body}"}},
        {"signature": {"header": "X", "signed_content": "{body}{body}"}},
        {"signature": {"header": "X", "colour": "blue"}},
    ],
)
def test_generic_hmac_rejects_invalid_options(options: dict[str, Any]) -> None:
    with pytest.raises(SchemeConfigError):
        schemes.build("hmac", options)


def test_automate_preset_and_missing_secrets() -> None:
    from automate_core.ingest.signatures import sign_hmac_sha256

    verify(
        "hmac_sha256",
        {"X-Automate-Signature": sign_hmac_sha256(b"generic-signing-key-1", BODY)},
        ["generic-signing-key-1"],
    )
    header = {"X-Automate-Signature": sign_hmac_sha256(b"generic-signing-key-1", BODY)}
    assert refused("hmac_sha256", header, []) == "no_secret_configured"
    assert (
        refused("hmac_sha256", {"X-Automate-Signature": "md5=abc"}, ["generic-signing-key-1"])
        == "malformed_signature"
    )


# --- token and none ----------------------------------------------------------------------------


def test_token_scheme_compares_hashes() -> None:
    token = new_token()
    scheme = schemes.build("token")
    stored = [bytes.fromhex(hash_token(token))]
    scheme.verify({"authorization": f"Bearer {token}"}, BODY, stored, NOW)
    scheme.verify({"x-automate-token": token}, BODY, stored, NOW)
    for headers, reason in [
        ({}, "missing_token"),
        ({"authorization": f"Basic {token}"}, "missing_token"),
        ({"authorization": "Bearer atk_wrong"}, "token_mismatch"),
    ]:
        with pytest.raises(SignatureError) as caught:
            scheme.verify(headers, BODY, stored, NOW)
        assert caught.value.reason == reason
    with pytest.raises(SignatureError) as caught:
        scheme.verify({"authorization": f"Bearer {token}"}, BODY, [], NOW)
    assert caught.value.reason == "no_token_configured"


def test_none_accepts_anything() -> None:
    schemes.build("none").verify({}, b"\x00garbage", [], NOW)


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(SchemeConfigError, match="Unknown scheme"):
        schemes.build("md5")


# --- Standard Webhooks v1a (Ed25519), signed with a real key ----------------------------------


def ed25519_pair() -> tuple[Any, str]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, "whpk_" + base64.b64encode(raw).decode()


def v1a_headers(private: Any, body: bytes = BODY, msg_id: str = "msg_1", ts: float = NOW) -> dict[str, str]:
    signed = f"{msg_id}.{int(ts)}.".encode() + body
    signature = base64.b64encode(private.sign(signed)).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(ts)), "webhook-signature": f"v1a,{signature}"}


def test_standard_webhooks_v1a_ed25519_verifies() -> None:
    private, public = ed25519_pair()
    verify("standard_webhooks", v1a_headers(private), [public])
    verify("standard_webhooks", v1a_headers(private, msg_id="msg_2"), [WHSEC, public])  # rotation


def test_standard_webhooks_v1a_refusals() -> None:
    private, public = ed25519_pair()
    other, _ = ed25519_pair()
    assert refused("standard_webhooks", v1a_headers(other), [public]) == "signature_mismatch"
    assert refused("standard_webhooks", v1a_headers(private), [public], body=BODY + b" ") == (
        "signature_mismatch"
    )
    tampered = {**v1a_headers(private), "webhook-id": "msg_other"}
    assert refused("standard_webhooks", tampered, [public]) == "signature_mismatch"
    # a v1 (HMAC) entry does not satisfy a public key, and a v1a entry no HMAC secret
    assert refused("standard_webhooks", standard_headers(), [public]) == "signature_mismatch"
    assert refused("standard_webhooks", v1a_headers(private), [WHSEC]) == "signature_mismatch"
    late = v1a_headers(private, ts=NOW - 301)
    assert refused("standard_webhooks", late, [public]) == "timestamp_out_of_tolerance"
    both = {**v1a_headers(other), "webhook-signature": v1a_headers(other)["webhook-signature"]
            + " " + v1a_headers(private)["webhook-signature"]}  # fmt: skip
    verify("standard_webhooks", both, [public])  # any entry may match


@pytest.mark.parametrize(
    "value", ["whpk_", "whpk_not base64!", "whpk_" + base64.b64encode(b"short").decode()]
)
def test_standard_webhooks_public_key_must_be_32_bytes(value: str) -> None:
    with pytest.raises(SchemeConfigError, match="32-byte Ed25519 public key"):
        schemes.build("standard_webhooks").secret(value)


# --- hmac_sha256: the timestamped form ---------------------------------------------------------

KEY = "automate-signing-key-0123456789"


def test_hmac_sha256_timestamped_form() -> None:
    from automate_core.ingest.schemes.hmac import hmac_sha256_headers

    headers = hmac_sha256_headers(KEY.encode(), BODY, int(NOW))
    verify("hmac_sha256", headers, [KEY])
    # the timestamp is signed: changing it, or moving the signature to another time, fails
    moved = {**headers, "X-Automate-Timestamp": str(int(NOW) + 1)}
    assert refused("hmac_sha256", moved, [KEY]) == "signature_mismatch"
    for ts in (NOW - 301, NOW + 301):
        old = hmac_sha256_headers(KEY.encode(), BODY, int(ts))
        assert refused("hmac_sha256", old, [KEY]) == "timestamp_out_of_tolerance"
    assert refused("hmac_sha256", {**headers, "X-Automate-Timestamp": "soon"}, [KEY]) == "malformed_timestamp"
    # a body-only signature presented with a timestamp header is not the timestamped form
    from automate_core.ingest.signatures import sign_hmac_sha256

    mixed = {
        "X-Automate-Timestamp": str(int(NOW)),
        "X-Automate-Signature": sign_hmac_sha256(KEY.encode(), BODY),
    }
    assert refused("hmac_sha256", mixed, [KEY]) == "signature_mismatch"


def test_hmac_sha256_can_require_the_timestamp() -> None:
    from automate_core.ingest.signatures import sign_hmac_sha256

    body_only = {"X-Automate-Signature": sign_hmac_sha256(KEY.encode(), BODY)}
    verify("hmac_sha256", body_only, [KEY])  # accepted by default (the original form)
    strict = {"signature": {"require_timestamp": True}}
    assert refused("hmac_sha256", body_only, [KEY], options=strict) == "missing_timestamp"
    from automate_core.ingest.schemes.hmac import hmac_sha256_headers

    verify("hmac_sha256", hmac_sha256_headers(KEY.encode(), BODY, int(NOW)), [KEY], options=strict)
    for bad in ({"signature": {"require_timestamp": "yes"}}, {"signature": {"header": "X-Other"}}):
        with pytest.raises(SchemeConfigError, match="signature"):
            schemes.build("hmac_sha256", bad)


def test_hmac_sha256_keys_come_from_signed_material() -> None:
    from automate_core.ingest.schemes.hmac import hmac_sha256_headers

    scheme = schemes.build("hmac_sha256")
    timestamped = {k.lower(): v for k, v in hmac_sha256_headers(KEY.encode(), BODY, int(NOW)).items()}
    assert not scheme.trusts_idempotency_header(timestamped)
    assert not scheme.trusts_event_header(timestamped)
    key = scheme.derived_key(timestamped)
    assert key is not None and key.startswith("sig:")
    assert scheme.derived_key({**timestamped, "idempotency-key": "new"}) == key  # headers don't matter
    assert scheme.derived_key({"x-automate-signature": timestamped["x-automate-signature"]}) is None


# --- the shortest secret accepted ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["hmac_sha256", "hmac", "github"])
@pytest.mark.parametrize("secret", ["", " ", "x", "fifteen-bytes!!", " " * 20 + "short" + "\n"])
def test_short_secrets_are_refused_with_their_length_not_their_value(name: str, secret: str) -> None:
    options = {"signature": {"header": "X-Sig"}} if name == "hmac" else {}
    with pytest.raises(SchemeConfigError, match=r"needs at least 16") as caught:
        schemes.build(name, options).secret(secret)
    assert f"is {len(secret.strip())} byte(s) long" in str(caught.value)
    if secret.strip():
        assert secret.strip() not in str(caught.value)


@pytest.mark.parametrize("name", ["hmac_sha256", "hmac", "github"])
def test_sixteen_bytes_is_enough(name: str) -> None:
    options = {"signature": {"header": "X-Sig"}} if name == "hmac" else {}
    assert schemes.build(name, options).secret("0123456789abcdef") == b"0123456789abcdef"
