"""Settings are checked by their declared types at start, and secrets backends are configured as
``{NAME: {"BACKEND": ..., "OPTIONS": ...}}`` entries (two Vaults side by side), the old list too."""

from __future__ import annotations

import io
from typing import Any, get_type_hints

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from automate_core import checks
from automate_core.conf import SENSITIVE, Defaults, env_bool, settings_from_environ
from automate_core.conftypes import union_members
from automate_core.management.commands.automate import Command
from automate_governance.secrets import config
from automate_governance.secrets.resolver import SecretsResolver
from tests.conftest import database_url
from tests.devloop.cli import automate, one_line, user_env
from tests.plugins.servers import FakeServer
from tests.plugins.test_secrets import KEY_A

CREDENTIAL = "sk-live-do-not-print-4f2a"


def bad_texts(kind: Any) -> list[str]:
    """Texts that are not a value of ``kind``: the misspellings and wrong shapes people type."""
    names = {getattr(m, "__origin__", m) for m in union_members(kind)}
    if bool in names:
        return ["ture", "enabled", "2"]
    if int in names and float not in names:
        return ["lots", "3.5", "-1"]
    if float in names:
        return ["none", "nan", "-1", "1e999"]
    if dict in names and list in names:
        return ['{"x": 3}', "{not json"]
    if dict in names:
        return ["[1]", "{not json", '"text"']
    if list in names:
        return ["[1, 2]", '{"a": 1}', "[not json"]
    return []


@pytest.mark.parametrize("name", sorted(get_type_hints(Defaults)))
def test_every_setting_refuses_a_value_not_of_its_type_naming_the_variable(name: str) -> None:
    kind = get_type_hints(Defaults)[name]
    for text in bad_texts(kind):
        with pytest.raises(ImproperlyConfigured, match=f"AUTOMATE_{name}") as caught:
            settings_from_environ({f"AUTOMATE_{name}": text})
        if name in SENSITIVE:
            assert text not in str(caught.value)


def test_optional_numbers_take_null_and_the_issue_s_examples_are_refused() -> None:
    assert settings_from_environ({"AUTOMATE_RETENTION_EVENTS": "null"}) == {"AUTOMATE_RETENTION_EVENTS": None}
    with pytest.raises(ImproperlyConfigured, match=r"AUTOMATE_RETENTION_EVENTS='none' is not valid: .*null"):
        settings_from_environ({"AUTOMATE_RETENTION_EVENTS": "none"})
    with pytest.raises(ImproperlyConfigured, match=r"AUTOMATE_SCHEDULER_ENABLED='ture' .*0/false/no/off"):
        settings_from_environ({"AUTOMATE_SCHEDULER_ENABLED": "ture"})
    off = settings_from_environ({"AUTOMATE_SCHEDULER_ENABLED": "Off"})
    assert off == {"AUTOMATE_SCHEDULER_ENABLED": False}


def test_a_credential_in_a_bad_value_is_never_in_the_message() -> None:
    for name, text in [
        ("AUTOMATE_LLM_PROVIDERS", f'{{"openai": "{CREDENTIAL}"}}'),
        ("AUTOMATE_VAULT", f'["{CREDENTIAL}"]'),
        ("AUTOMATE_SECRETS_ENCRYPTION_KEYS", f'[1, "{CREDENTIAL}"]'),
        ("AUTOMATE_SECRETS_BACKENDS", f'["env", {{"token": "{CREDENTIAL}"}}]'),
    ]:
        with pytest.raises(ImproperlyConfigured, match=name) as caught:
            settings_from_environ({name: text})
        assert CREDENTIAL not in str(caught.value), caught.value


def test_plain_booleans_of_the_project_are_strict_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATE_HTTPS", "ture")
    with pytest.raises(ImproperlyConfigured, match="AUTOMATE_HTTPS='ture'"):
        env_bool("AUTOMATE_HTTPS", default=True)
    monkeypatch.setenv("AUTOMATE_HTTPS", "no")
    assert env_bool("AUTOMATE_HTTPS", default=True) is False


def ids(messages: list[Any]) -> list[tuple[str, str]]:
    return [(m.id, m.msg) for m in messages]


def test_the_system_check_validates_django_settings_ips_and_keys(settings: Any) -> None:
    assert checks.settings_have_their_types() == []
    settings.AUTOMATE_RETENTION_EVENTS = "none"
    settings.AUTOMATE_METRICS_ALLOWED_IPS = ["127.0.0.1", "10.0.0.300", "office"]
    settings.AUTOMATE_SECRETS_ENCRYPTION_KEYS = [KEY_A, CREDENTIAL]
    found = ids(checks.settings_have_their_types())
    assert [i for i, _ in found] == ["automate.E010", "automate.E011", "automate.E011", "automate.E012"]
    assert found[0][1].startswith("expected a number or null, got 'none'")
    assert "'10.0.0.300'" in found[1][1] and "'office'" in found[2][1]
    assert "AUTOMATE_SECRETS_ENCRYPTION_KEYS[1]" in found[3][1] and CREDENTIAL not in found[3][1]


def test_the_old_list_of_backends_works_with_a_deprecation_warning(settings: Any) -> None:
    settings.AUTOMATE_SECRETS_BACKENDS = ["env", "file"]
    assert [(e.name, e.backend) for e in config.entries()] == [("env", "env"), ("file", "file")]
    (warning,) = checks.settings_have_their_types()
    assert warning.id == "automate.W010" and '{"env": {"BACKEND": "env"}, "file": {"BACKEND": "file"}}' in (
        warning.hint or ""
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"v": {"OPTIONS": {}}}, '"BACKEND"'),
        ({"v": {"BACKEND": "vault", "OPTION": {}}}, "unknown key(s) OPTION"),
        ({"v": {"BACKEND": "vault", "OPTIONS": ["x"]}}, "must be a mapping"),
        ({"a:b": {"BACKEND": "env"}}, "not a usable name"),
        ("env", "must be a mapping"),
        ({"v": {"BACKEND": "nope"}}, "No plugin 'nope'"),
    ],
)
def test_a_bad_backend_entry_is_an_error_at_start(settings: Any, value: Any, says: str) -> None:
    settings.AUTOMATE_SECRETS_BACKENDS = value
    found = ids(checks.plugins_named_in_settings())
    assert [i for i, _ in found] == ["automate.E002"] and says in found[0][1], found


def test_options_a_backend_refuses_are_an_error_without_their_values(settings: Any) -> None:
    settings.AUTOMATE_SECRETS_BACKENDS = {"files": {"BACKEND": "file", "OPTIONS": {"token": CREDENTIAL}}}
    (error,) = checks.plugins_named_in_settings()
    assert error.id == "automate.E002" and "it takes directory" in error.msg and CREDENTIAL not in error.msg


@pytest.fixture
def two_vaults() -> Any:
    eu, us = FakeServer().start(), FakeServer().start()
    for server, region in ((eu, "eu"), (us, "us")):
        server.reply("GET", "/v1/secret/data/payments", 200, {"data": {"data": {"value": f"key-{region}"}}})
        server.reply("GET", "/v1/kv/data/only-us", 200, {"data": {"data": {"value": "us-only"}}})
    yield eu, us
    eu.stop()
    us.stop()


async def test_two_vaults_side_by_side_by_name_and_in_order(settings: Any, two_vaults: Any) -> None:
    eu, us = two_vaults
    settings.AUTOMATE_SECRETS_BACKENDS = {
        "vault_eu": {"BACKEND": "vault", "OPTIONS": {"url": eu.url, "token": "t-eu"}},
        "vault_us": {"BACKEND": "vault", "OPTIONS": {"url": us.url, "token": "t-us", "mount": "kv"}},
    }
    assert checks.plugins_named_in_settings() == []
    resolver = SecretsResolver(ttl=0)
    assert await resolver.aresolve("vault_eu:payments") == "key-eu"
    assert await resolver.aresolve("vault_us:only-us") == "us-only"
    assert await resolver.aresolve("payments") == "key-eu"  # searched in order: the EU one first
    assert [r.headers["x-vault-token"] for r in eu.requests] == ["t-eu", "t-eu"]
    assert [r.headers["x-vault-token"] for r in us.requests] == ["t-us"]


@pytest.mark.django_db(transaction=True)  # the command closes the connections when it ends
def test_serve_and_worker_refuse_a_bad_setting_at_start(
    settings: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = user_env(DATABASE_URL=database_url(), SECRET_KEY="x" * 50)
    for variable, text in (("AUTOMATE_RETENTION_EVENTS", "none"), ("AUTOMATE_SCHEDULER_ENABLED", "ture")):
        line = one_line(automate(tmp_path, "worker", env={**env, variable: text}))
        assert f"{variable}={text!r} is not valid" in line
    settings.AUTOMATE_RETENTION_EVENTS = "none"  # a project's settings module: the system check
    for command in ("worker", "serve", "up"):
        with pytest.raises(SystemExit) as stopped:  # as the console script runs it
            Command().run_from_argv(["automate", "automate", command])
        assert stopped.value.code == 1
        shown = capsys.readouterr().err
        assert "AUTOMATE_RETENTION_EVENTS: (automate.E010) expected a number or null, got 'none'" in shown
    out = io.StringIO()
    call_command("automate", "runs", stdout=out)  # reading needs no checks: it still works
    assert "No runs yet" in out.getvalue()
