"""A registered secret is masked in every spelling a remote, a library or a cut gives it.

The spellings are written out here with the standard library, independently of the masker's list;
each is masked alone, inside text, and inside JSON-like data. Pieces are masked where a split or
a cut leaves them. Ordinary text is left alone, and a clean line costs microseconds.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.parse

import pytest

from automate_core.masking import MASK, LibraryRequestLogFilter, SecretMasker

SECRETS = ["s3cr3t/LEAK+7f9a2b6c-Qx", "xoxb-1234567890-abcdefghij", 'pa ss:wörd"quote\\slash', "k" * 40]


def encodings(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "plain": value,
        "upper": value.upper(),
        "lower": value.lower(),
        "base64": base64.b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
        "base64 urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "base64 urlsafe unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "quote": urllib.parse.quote(value, safe=""),
        "quote (path)": urllib.parse.quote(value),
        "quote_plus": urllib.parse.quote_plus(value),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "json": json.dumps(value)[1:-1],
        "json unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "json \\/": json.dumps(value)[1:-1].replace("/", "\\/"),
        "repr": repr(value)[1:-1],
    }


CASES = [(secret, name, spelled) for secret in SECRETS for name, spelled in encodings(secret).items()]


@pytest.mark.parametrize(("secret", "name", "spelled"), CASES, ids=[f"{s[:6]}-{n}" for s, n, _ in CASES])
def test_every_spelling_is_masked_alone_in_text_and_in_data(secret: str, name: str, spelled: str) -> None:
    masker = SecretMasker()
    masker.register(secret)
    assert masker.mask(spelled) == MASK
    assert spelled not in masker.mask(f"token={spelled}; next")
    assert spelled not in json.dumps(masker.mask_data({"a": [f"x {spelled} y"], spelled: 1}))


@pytest.mark.parametrize("secret", SECRETS[:2])
@pytest.mark.parametrize("prefix", [b"user:", b"u:", b"ab:"])
def test_base64_of_a_secret_inside_a_longer_value_is_masked_at_every_alignment(
    secret: str, prefix: bytes
) -> None:
    """``Authorization: Basic base64(user:secret)``: the secret starts at any byte offset."""
    masker = SecretMasker()
    masker.register(secret)
    encoded = base64.b64encode(prefix + secret.encode() + b"!").decode()
    masked = masker.mask(encoded)
    assert MASK in masked
    assert base64.b64decode(encoded).decode().count(secret[4:-4]) == 1
    core = encoded[len(prefix) * 4 // 3 + 2 : -6]  # characters that encode only the secret
    assert core not in masked


@pytest.mark.parametrize("secret", SECRETS[:2])
@pytest.mark.parametrize("cut", [0.5, 0.4, 0.6, 0.75])
def test_a_secret_split_across_two_fields_is_masked_in_both(secret: str, cut: float) -> None:
    masker = SecretMasker()
    masker.register(secret)
    at = int(len(secret) * cut)
    data = masker.mask_data(
        {"first": secret[:at], "second": secret[at:], "text": f"{secret[:at]} | {secret[at:]}"}
    )
    for value in data.values():
        assert secret[:at] not in value and secret[at:] not in value


@pytest.mark.parametrize("secret", SECRETS[:2])
@pytest.mark.parametrize("keep", [6, 8, 11, 15])  # EDGE_FRAGMENT: shorter pieces stay
def test_a_cut_that_keeps_the_start_of_a_secret_is_masked(secret: str, keep: int) -> None:
    masker = SecretMasker()
    masker.register(secret)
    body = "x" * 190 + " token " + secret + " rejected"
    assert secret[:keep] not in masker.mask(body[: 197 + keep])  # the text ends inside the secret
    assert masker.cut(body, 200).endswith(MASK) or secret[:3] not in masker.cut(body, 200)


def test_ordinary_text_is_left_alone() -> None:
    masker = SecretMasker()
    for secret in SECRETS:
        masker.register(secret)
    for text in (
        "hello world",
        "xoxb- prefixes alone",
        "superuser",
        "HTTP Request: GET http://api.test/x",
        "kkk",
    ):
        assert masker.mask(text) == text


def test_masking_a_clean_line_stays_cheap() -> None:
    masker = SecretMasker()
    for i in range(20):
        masker.register(f"token-{i:02d}-" + "abcdefghijklmnopqrstuvwxyz"[i:] + "0123456789")
    line = 'HTTP Request: POST http://example.com/orders/12345 "HTTP/1.1 200 OK" ' * 3
    started = time.perf_counter()
    for _ in range(2000):
        masker.mask(line)
    per_line = (time.perf_counter() - started) / 2000
    assert per_line < 500e-6, f"{per_line * 1e6:.0f} us per line"  # ~50 us here; room for a loaded box


def test_httpx_request_lines_lose_their_query_and_are_masked() -> None:
    """httpx logs ``HTTP Request: GET <url>``: the query is dropped before formatting, the rest masked
    (the filter sits on httpx's own logger, whatever handlers a deployment configures)."""
    import httpx

    from automate_core import masking

    masking.masker.register("q-secret-7d1e9c")
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s %d %s"',
        ("GET", httpx.URL("https://api.test/u/q-secret-7d1e9c?token=q-secret-7d1e9c"), "HTTP/1.1", 200, "OK"),
        None,
    )  # fmt: skip
    assert LibraryRequestLogFilter().filter(record)
    message = record.getMessage()
    assert "q-secret-7d1e9c" not in message and "token=" not in message
    assert message.startswith("HTTP Request: GET https://api.test/u/***?")
    import automate_connectors.httpclient  # noqa: F401  (installs the filter on import)

    assert any(isinstance(f, LibraryRequestLogFilter) for f in logging.getLogger("httpx").filters)
