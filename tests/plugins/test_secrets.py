"""Secrets backends (file, db, vault) and the resolver that chains them.

Vault is a real HTTP server on 127.0.0.1 speaking KV v2 and AppRole login, with its error answers.
The db backend runs on the real database and is checked for what is actually stored.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core import masking
from automate_core.exceptions import (
    ConfigurationError,
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretsBackendUnavailable,
)
from automate_core.plugins import registry
from automate_governance.secrets import crypto, db
from automate_governance.secrets.db import DbSecretsBackend
from automate_governance.secrets.file import FileSecretsBackend
from automate_governance.secrets.interfaces import SecretsBackend
from automate_governance.secrets.resolver import SecretsResolver
from automate_governance.secrets.vault import VaultSecretsBackend
from tests.plugins.servers import FakeServer, Request

KEY_A = base64.urlsafe_b64encode(b"a" * 32).decode()
KEY_B = base64.urlsafe_b64encode(b"b" * 32).decode()


# --- file ---------------------------------------------------------------------------------------


def test_file_backend_reads_mounted_secrets(tmp_path: Path) -> None:
    (tmp_path / "db_password").write_text("s3cret-value\n")
    (tmp_path / "pem").write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    backend = FileSecretsBackend(tmp_path)
    assert backend.get_secret("db_password") == "s3cret-value"
    assert backend.get_secret("pem") == "-----BEGIN KEY-----\nabc\n-----END KEY-----"


def test_file_backend_follows_kubernetes_symlinks_inside_the_directory(tmp_path: Path) -> None:
    data = tmp_path / "..2026_11_26"
    data.mkdir()
    (data / "token").write_text("k8s-token-value")
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "token").symlink_to("..data/token")
    assert FileSecretsBackend(tmp_path).get_secret("token") == "k8s-token-value"


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", ".hidden", "missing", "escape", "", "sub"])
def test_file_backend_never_reads_outside_its_directory(tmp_path: Path, key: str) -> None:
    root = tmp_path / "secrets"
    root.mkdir()
    (root / "sub").mkdir()
    (tmp_path / "outside").write_text("outside-value")
    (root / "escape").symlink_to(tmp_path / "outside")
    (root / ".hidden").write_text("hidden-value")
    with pytest.raises(SecretNotFoundError) as caught:
        FileSecretsBackend(root).get_secret(key)
    assert "value" not in str(caught.value)


def test_file_backend_without_its_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SecretsBackendUnavailable, match="does not exist"):
        FileSecretsBackend(tmp_path / "nope").get_secret("x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_backend_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "locked"
    path.write_text("v")
    path.chmod(0)
    with pytest.raises(SecretAccessDeniedError):
        FileSecretsBackend(tmp_path).get_secret("locked")


# --- db -----------------------------------------------------------------------------------------


@pytest.fixture
def keys(settings: Any) -> None:
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_A]


@pytest.mark.django_db
@pytest.mark.usefixtures("keys")
def test_db_backend_stores_only_ciphertext() -> None:
    from automate_governance.models import StoredSecret

    db.set_secret("STRIPE_KEY", "sk_live_abcdef123456")
    row = StoredSecret.objects.get(name="STRIPE_KEY")
    assert b"sk_live_abcdef123456" not in bytes(row.ciphertext)
    assert "sk_live" not in repr(row) and "sk_live" not in str(row)
    assert DbSecretsBackend().get_secret("STRIPE_KEY") == "sk_live_abcdef123456"
    with pytest.raises(SecretNotFoundError):
        DbSecretsBackend().get_secret("OTHER")


@pytest.mark.django_db
@pytest.mark.usefixtures("keys")
def test_db_ciphertext_is_bound_to_its_name() -> None:
    from automate_governance.models import StoredSecret

    db.set_secret("A_SECRET", "value-of-a")
    db.set_secret("B_SECRET", "value-of-b")
    a = StoredSecret.objects.get(name="A_SECRET")
    StoredSecret.objects.filter(name="B_SECRET").update(ciphertext=a.ciphertext)
    with pytest.raises(SecretsBackendUnavailable, match="failed authentication") as caught:
        DbSecretsBackend().get_secret("B_SECRET")
    assert "value-of" not in str(caught.value)


@pytest.mark.django_db
def test_db_key_rotation(settings: Any) -> None:
    from automate_governance.models import StoredSecret

    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_A]
    db.set_secret("ROTATED", "rotate-me-please")
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # new key first, old still decrypts
    assert DbSecretsBackend().get_secret("ROTATED") == "rotate-me-please"
    assert db.rotate() == 1
    assert db.rotate() == 0
    assert StoredSecret.objects.get(name="ROTATED").key_id == crypto.key_id(b"b" * 32)
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_B]  # old key dropped after rotation
    assert DbSecretsBackend().get_secret("ROTATED") == "rotate-me-please"
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_A]  # the key it needs is gone
    with pytest.raises(SecretsBackendUnavailable, match="not in AUTOMATE_SECRETS_ENCRYPTION_KEYS"):
        DbSecretsBackend().get_secret("ROTATED")


@pytest.mark.django_db
def test_db_without_keys_says_what_to_do(settings: Any) -> None:
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = []
    with pytest.raises(ConfigurationError, match="genkey"):
        db.set_secret("X", "y")
    with pytest.raises(SecretsBackendUnavailable, match="AUTOMATE_SECRETS_ENCRYPTION_KEYS"):
        DbSecretsBackend().get_secret("X")
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = ["too-short"]
    with pytest.raises(ConfigurationError, match=r"\[0\] is not a base64 encoding of 32 bytes"):
        crypto.keys()


# --- vault --------------------------------------------------------------------------------------


class FakeVault:
    """Vault's KV v2 read and AppRole login, with tokens that can expire."""

    def __init__(self, server: FakeServer) -> None:
        self.data: dict[str, dict[str, Any]] = {"app/db": {"password": "vault-db-pass", "value": "v1"}}
        self.tokens = {"root-token"}
        self.logins = 0
        self.denied_paths: set[str] = set()
        server.route("POST", "/v1/auth/approle/login", self.login)
        server.route("GET", "/v1/secret/data/app/db", self.read)
        server.route("GET", "/v1/secret/data/app/missing", self.read)
        server.route("GET", "/v1/secret/data/app/denied", self.read)

    def login(self, req: Request) -> tuple[int, dict[str, str], Any]:
        body = req.json()
        if body != {"role_id": "role-1", "secret_id": "sid-1"}:
            return 400, {}, {"errors": ["invalid role or secret ID"]}
        self.logins += 1
        token = f"approle-token-{self.logins}"
        self.tokens.add(token)
        return 200, {}, {"auth": {"client_token": token, "lease_duration": 3600, "renewable": True}}

    def read(self, req: Request) -> tuple[int, dict[str, str], Any]:
        if req.headers.get("x-vault-token") not in self.tokens:
            return 403, {}, {"errors": ["permission denied"]}
        path = req.path.removeprefix("/v1/secret/data/")
        if path in self.denied_paths:
            return 403, {}, {"errors": ["permission denied"]}
        if path not in self.data:
            return 404, {}, {"errors": []}
        return 200, {}, {"data": {"data": self.data[path], "metadata": {"version": 3}}}


@pytest.fixture
def vault(server: FakeServer) -> Iterator[FakeVault]:
    yield FakeVault(server)


def test_vault_token_auth_reads_fields(server: FakeServer, vault: FakeVault) -> None:
    backend = VaultSecretsBackend({"url": server.url, "token": "root-token"})
    assert backend.get_secret("app/db#password") == "vault-db-pass"
    assert backend.get_secret("app/db") == "v1"
    assert server.requests[0].headers["x-vault-token"] == "root-token"
    with pytest.raises(SecretNotFoundError, match="no field 'nope'"):
        backend.get_secret("app/db#nope")
    with pytest.raises(SecretNotFoundError):
        backend.get_secret("app/missing")
    assert "root-token" not in repr(backend)


def test_vault_approle_logs_in_once_and_again_when_the_token_is_revoked(
    server: FakeServer, vault: FakeVault
) -> None:
    backend = VaultSecretsBackend(
        {"url": server.url, "auth": "approle", "role_id": "role-1", "secret_id": "sid-1"}
    )
    assert backend.get_secret("app/db#password") == "vault-db-pass"
    assert backend.get_secret("app/db#password") == "vault-db-pass"
    assert vault.logins == 1
    vault.tokens.clear()  # revoked: the next read gets 403, logs in again, and succeeds
    assert backend.get_secret("app/db#password") == "vault-db-pass"
    assert vault.logins == 2


def test_vault_denial_stops_and_bad_approle_is_denied(server: FakeServer, vault: FakeVault) -> None:
    vault.denied_paths.add("app/denied")
    backend = VaultSecretsBackend({"url": server.url, "token": "root-token"})
    with pytest.raises(SecretAccessDeniedError, match="denied"):
        backend.get_secret("app/denied")
    wrong = VaultSecretsBackend(
        {"url": server.url, "auth": "approle", "role_id": "role-1", "secret_id": "bad"}
    )
    with pytest.raises(SecretAccessDeniedError, match="AppRole login refused"):
        wrong.get_secret("app/db")


def test_vault_server_errors_and_timeouts_are_unavailable(server: FakeServer) -> None:
    server.reply("GET", "/v1/secret/data/app/db", 500, {"errors": ["internal"]})
    backend = VaultSecretsBackend({"url": server.url, "token": "t"})
    with pytest.raises(SecretsBackendUnavailable, match="500"):
        backend.get_secret("app/db")
    server.reply("GET", "/v1/secret/data/app/db", 429, {"errors": ["rate"]}, **{"Retry-After": "1"})
    with pytest.raises(SecretsBackendUnavailable, match="429"):
        backend.get_secret("app/db")
    server.delay = 1.0
    slow = VaultSecretsBackend({"url": server.url, "token": "t", "timeout": 0.2})
    with pytest.raises(SecretsBackendUnavailable, match="timed out"):
        slow.get_secret("app/db")
    closed = VaultSecretsBackend({"url": "http://127.0.0.1:9", "token": "t"})
    with pytest.raises(SecretsBackendUnavailable):
        closed.get_secret("app/db")


def test_vault_reads_the_standard_environment(
    server: FakeServer, vault: FakeVault, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.AUTOMATE_VAULT = {}
    monkeypatch.setenv("VAULT_ADDR", server.url)
    monkeypatch.setenv("VAULT_TOKEN", "root-token")
    assert VaultSecretsBackend().get_secret("app/db#password") == "vault-db-pass"


# --- the resolver -------------------------------------------------------------------------------


class Dict(SecretsBackend):
    code = "dict_a"
    name = "In memory"
    values: dict[str, str] = {}
    reads = 0

    def get_secret(self, key: str) -> str:
        type(self).reads += 1
        if key not in self.values:
            raise SecretNotFoundError(f"dict: no {key!r}")
        return self.values[key]


class Down(SecretsBackend):
    code = "down"
    name = "Unreachable"

    async def get_secret(self, key: str) -> str:  # type: ignore[override]
        raise ConnectionError("host unreachable")


class Denies(SecretsBackend):
    code = "denies"
    name = "Denies"

    def get_secret(self, key: str) -> str:
        raise SecretAccessDeniedError(f"denies: {key!r} is not yours")


@pytest.fixture
def backends() -> Iterator[None]:
    Dict.values, Dict.reads = {"API_TOKEN": "token-from-dict"}, 0
    for cls in (Dict, Down, Denies):
        registry.secrets_backends().override(cls.code, cls)
    yield
    for cls in (Dict, Down, Denies):
        registry.secrets_backends().override(cls.code, None)


@pytest.mark.usefixtures("backends")
async def test_resolver_tries_backends_in_order_and_masks_values() -> None:
    resolver = SecretsResolver(order=["down", "dict_a"], ttl=0)
    assert await resolver.aresolve("API_TOKEN") == "token-from-dict"
    assert masking.masker.mask("Bearer token-from-dict") == "Bearer ***"
    assert await resolver.aresolve("dict_a:API_TOKEN") == "token-from-dict"


@pytest.mark.usefixtures("backends")
async def test_resolver_tells_not_found_from_unavailable() -> None:
    with pytest.raises(SecretNotFoundError, match="dict_a"):
        await SecretsResolver(order=["dict_a"], ttl=0).aresolve("NOPE")
    with pytest.raises(SecretsBackendUnavailable, match=r"down \(.*ConnectionError"):
        await SecretsResolver(order=["dict_a", "down"], ttl=0).aresolve("NOPE")


@pytest.mark.usefixtures("backends")
async def test_access_denied_stops_the_search() -> None:
    with pytest.raises(SecretAccessDeniedError):
        await SecretsResolver(order=["denies", "dict_a"], ttl=0).aresolve("API_TOKEN")


@pytest.mark.usefixtures("backends")
async def test_resolver_caches_with_a_ttl_and_invalidates() -> None:
    resolver = SecretsResolver(order=["dict_a"], ttl=60)
    assert await resolver.aresolve("API_TOKEN") == "token-from-dict"
    Dict.values["API_TOKEN"] = "token-changed-value"
    assert await resolver.aresolve("API_TOKEN") == "token-from-dict"
    assert Dict.reads == 1
    resolver.invalidate("API_TOKEN")
    assert await resolver.aresolve("API_TOKEN") == "token-changed-value"
    expired = SecretsResolver(order=["dict_a"], ttl=0.0)
    await expired.aresolve("API_TOKEN")
    await expired.aresolve("API_TOKEN")
    assert Dict.reads == 4


async def test_a_broken_backend_named_in_settings_fails_loudly() -> None:
    class Broken(SecretsBackend):  # abstract: the registry records why it cannot be used
        code = "broken"

    reg = registry.secrets_backends()
    reg.override("broken", None)
    with pytest.raises(Exception, match="does not implement get_secret"):
        reg.validate("broken", Broken)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("keys", "_pool_lifetime")
async def test_db_backend_through_the_resolver_runs_off_the_event_loop() -> None:
    await sync_to_async(db.set_secret)("THROUGH_RESOLVER", "resolved-from-db")
    resolver = SecretsResolver(order=["env", "db"], ttl=0)
    assert await resolver.aresolve("THROUGH_RESOLVER") == "resolved-from-db"
    assert DbSecretsBackend.plugin_mode == "sync"


@pytest.mark.django_db
@pytest.mark.usefixtures("keys")
def test_the_admin_never_shows_a_stored_value(admin_client: Any) -> None:
    from automate_governance.models import StoredSecret

    db.set_secret("ADMIN_VISIBLE", "never-in-admin-value")
    pk = StoredSecret.objects.get(name="ADMIN_VISIBLE").pk
    for url in (
        "/admin/automate_governance/storedsecret/",
        f"/admin/automate_governance/storedsecret/{pk}/change/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert b"ADMIN_VISIBLE" in page.content and b"never-in-admin-value" not in page.content


@pytest.mark.django_db
def test_secrets_cli_stores_from_stdin_lists_names_and_rotates(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from automate_core.cli import secrets as cli

    def run(*args: str, stdin: str = "") -> tuple[int, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        out = io.StringIO()
        code = cli.run({"action": args[0], "name": args[1] if len(args) > 1 else None}, out)
        return code, out.getvalue()

    code, key = run("genkey")
    assert code == 0 and len(base64.urlsafe_b64decode(key.strip())) == 32
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_A]
    code, stored = run("set", "CLI_SECRET", stdin="from-stdin-value\n")
    assert code == 0 and stored.startswith("stored CLI_SECRET\nnote: the db backend is not in")
    assert run("set", "EMPTY", stdin="")[0] == 2
    code, listing = run("list")
    assert "CLI_SECRET" in listing and "from-stdin-value" not in listing
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    assert run("rotate") == (0, "re-encrypted 1 secret under the current key\n")
    assert DbSecretsBackend().get_secret("CLI_SECRET") == "from-stdin-value"
    assert run("delete", "CLI_SECRET")[0] == 0 and run("delete", "CLI_SECRET")[0] == 1


def test_vault_401_is_access_denied(server: FakeServer) -> None:
    server.reply("GET", "/v1/secret/data/app/db", 401, {"errors": ["missing client token"]})
    with pytest.raises(SecretAccessDeniedError, match="401"):
        VaultSecretsBackend({"url": server.url, "token": "t"}).get_secret("app/db")
