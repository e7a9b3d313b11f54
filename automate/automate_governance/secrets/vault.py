"""``vault``: HashiCorp Vault's KV version 2 engine over its HTTP API, token or AppRole auth.

A key is ``<path>`` or ``<path>#<field>``: ``secret("vault:payments/stripe#api_key")`` reads field
``api_key`` of ``GET /v1/<mount>/data/payments/stripe``; without ``#field`` the field ``value`` is
read. Settings: ``AUTOMATE_VAULT`` (see :mod:`automate_core.conf`), falling back to the standard
``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_ROLE_ID``, ``VAULT_SECRET_ID`` and ``VAULT_NAMESPACE``.

With ``auth: approle`` the backend logs in (``POST /v1/auth/approle/login``), keeps the client
token until shortly before its lease ends, and logs in again once when Vault answers 403 (an
expired or revoked token). Outcomes: 404 or a missing field is "not found"; 401/403 (after that
one retry) is "access denied", which stops the resolver; 5xx, 429, timeouts and connection errors
are "unavailable". Messages name paths and fields, never values or tokens.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import httpx

from automate_core.conf import settings
from automate_core.exceptions import ConfigurationError
from automate_governance.secrets.interfaces import (
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsBackend,
    SecretsBackendUnavailable,
)

_ENV = {
    "url": "VAULT_ADDR",
    "token": "VAULT_TOKEN",
    "role_id": "VAULT_ROLE_ID",
    "secret_id": "VAULT_SECRET_ID",
    "namespace": "VAULT_NAMESPACE",
}


class VaultSecretsBackend(SecretsBackend):
    code = "vault"
    name = "HashiCorp Vault (KV v2)"

    def __init__(self, config: dict[str, Any] | None = None, **options: Any) -> None:
        # options: an AUTOMATE_SECRETS_BACKENDS entry's OPTIONS (url=..., mount=...), one Vault each
        self._config = {**(config or {}), **options} if config is not None or options else None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0

    def __repr__(self) -> str:  # never the token
        return f"<VaultSecretsBackend code='vault' url={self.option('url')!r}>"

    def option(self, name: str, default: Any = None) -> Any:
        config = self._config if self._config is not None else dict(settings.VAULT or {})
        value = config.get(name)
        if value in (None, "") and name in _ENV:
            value = os.environ.get(_ENV[name])
        return default if value in (None, "") else value

    def _http(self) -> httpx.Client:
        """A client for one exchange (reads are few: the resolver caches values for a TTL)."""
        url = self.option("url")
        if not url:
            raise ConfigurationError("vault: set AUTOMATE_VAULT['url'] or VAULT_ADDR.")
        headers = {"X-Vault-Request": "true"}
        if self.option("namespace"):
            headers["X-Vault-Namespace"] = str(self.option("namespace"))
        return httpx.Client(
            base_url=str(url).rstrip("/"),
            headers=headers,
            timeout=float(self.option("timeout", 5.0)),
            trust_env=False,
        )

    # -- auth --------------------------------------------------------------------------------

    def _auth_token(self, *, renew: bool = False) -> str:
        method = self.option("auth", "approle" if self.option("role_id") else "token")
        if method == "token":
            token = self.option("token")
            if not token:
                raise ConfigurationError("vault: token auth needs AUTOMATE_VAULT['token'] or VAULT_TOKEN.")
            return str(token)
        if method != "approle":
            raise ConfigurationError(f"vault: unknown auth {method!r}; use 'token' or 'approle'.")
        with self._lock:
            if renew or self._token is None or time.monotonic() >= self._token_expires:
                self._token, self._token_expires = self._approle_login()
            return self._token

    def _approle_login(self) -> tuple[str, float]:
        role_id, secret_id = self.option("role_id"), self.option("secret_id")
        if not role_id or not secret_id:
            raise ConfigurationError("vault: approle auth needs role_id and secret_id.")
        mount = str(self.option("approle_mount", "approle")).strip("/")
        response = self._send("POST", f"/v1/auth/{mount}/login", "AppRole login",
                              json={"role_id": role_id, "secret_id": secret_id})  # fmt: skip
        if response.status_code in (400, 401, 403):
            raise SecretAccessDeniedError(f"vault: AppRole login refused ({response.status_code}).")
        self._unavailable_unless_ok(response, "AppRole login")
        auth = (response.json() or {}).get("auth") or {}
        token = auth.get("client_token")
        if not token:
            raise SecretsBackendUnavailable("vault: AppRole login answered without a client token.")
        lease = float(auth.get("lease_duration") or 0) or 3600.0
        return str(token), time.monotonic() + max(1.0, lease * 0.9)

    # -- reading -----------------------------------------------------------------------------

    def get_secret(self, key: str) -> str:
        path, _, field = key.partition("#")
        path, field = path.strip("/"), field or "value"
        if not path or ".." in path.split("/"):
            raise SecretNotFoundError(f"vault: {key!r} is not a valid secret path.")
        mount = str(self.option("mount", "secret")).strip("/")
        url, what = f"/v1/{mount}/data/{path}", f"secret {mount}/{path}"
        try:
            response = self._read(url, what, renew=False)
            if response.status_code == 403 and self.option("role_id"):
                response = self._read(url, what, renew=True)  # the token expired or was revoked
        except ConfigurationError as exc:
            raise SecretsBackendUnavailable(str(exc)) from exc
        if response.status_code == 404:
            raise SecretNotFoundError(f"vault: no {what}.")
        if response.status_code in (401, 403):
            raise SecretAccessDeniedError(f"vault: access to {what} denied ({response.status_code}).")
        self._unavailable_unless_ok(response, what)
        data = ((response.json() or {}).get("data") or {}).get("data")
        if not isinstance(data, dict) or field not in data:
            raise SecretNotFoundError(f"vault: {what} has no field {field!r}.")
        value = data[field]
        if value is None or value == "":
            raise SecretNotFoundError(f"vault: field {field!r} of {what} is empty.")
        return value if isinstance(value, str) else str(value)

    def _read(self, url: str, what: str, *, renew: bool) -> httpx.Response:
        token = self._auth_token(renew=renew)
        return self._send("GET", url, what, headers={"X-Vault-Token": token})

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            with self._http() as client:
                return client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise SecretsBackendUnavailable(f"vault: {what}: timed out.") from None
        except httpx.HTTPError as exc:
            raise SecretsBackendUnavailable(f"vault: {what}: {type(exc).__name__}.") from None

    @staticmethod
    def _unavailable_unless_ok(response: httpx.Response, what: str) -> None:
        if response.status_code >= 300:
            raise SecretsBackendUnavailable(f"vault: {what}: Vault answered {response.status_code}.")
