"""Authenticated encryption of stored secrets (AES-256-GCM from ``cryptography``).

Keys come from ``AUTOMATE_SECRETS_ENCRYPTION_KEYS``: base64 strings of 32 random bytes. The first
key encrypts; every listed key decrypts, so rotation is: put a new key first, run
``automate secrets rotate`` (re-encrypts every value under the new key), then drop the old key.
Each ciphertext records the fingerprint of its key (``key_id``, not the key) and is bound to the
secret's name as associated data: a ciphertext copied onto another name does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from automate_core.conf import settings
from automate_core.exceptions import ConfigurationError, SecretsBackendUnavailable

NONCE_BYTES = 12


def generate_key() -> str:
    """A new random key, in the form ``AUTOMATE_SECRETS_ENCRYPTION_KEYS`` expects."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"automate-secret-key:" + key).hexdigest()[:16]


def keys() -> list[bytes]:
    """The configured keys, current first; a clear error when none or a malformed one is set."""
    configured = list(settings.SECRETS_ENCRYPTION_KEYS or [])
    if not configured:
        raise ConfigurationError(
            "The db secrets backend needs AUTOMATE_SECRETS_ENCRYPTION_KEYS (a list of base64 keys; "
            "make one with `automate secrets genkey`)."
        )
    out = []
    for i, text in enumerate(configured):
        try:
            key = base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise ConfigurationError(
                f"AUTOMATE_SECRETS_ENCRYPTION_KEYS[{i}] is not a base64 encoding of 32 bytes."
            )
        out.append(key)
    return out


def _aad(name: str) -> bytes:
    return b"automate-secret:" + name.encode()


def encrypt(name: str, value: str) -> tuple[str, bytes]:
    """``(key_id, nonce + ciphertext)`` of ``value`` under the current key."""
    key = keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    return key_id(key), nonce + AESGCM(key).encrypt(nonce, value.encode(), _aad(name))


def decrypt(name: str, kid: str, blob: bytes) -> str:
    for key in keys():
        if key_id(key) == kid:
            try:
                return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(name)).decode()
            except InvalidTag:
                raise SecretsBackendUnavailable(
                    f"Stored secret {name!r} failed authentication (tampered, or stored under another name)."
                ) from None
    raise SecretsBackendUnavailable(
        f"Stored secret {name!r} was encrypted with key {kid}, which is not in "
        "AUTOMATE_SECRETS_ENCRYPTION_KEYS (was a key removed before `automate secrets rotate`?)."
    )
