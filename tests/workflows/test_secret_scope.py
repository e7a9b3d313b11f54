"""A template reads only the secrets its workflow declares, never a signing key, and only through
the configured backends.

Before: ``secret('X')`` read any ``AUTOMATE_SECRET_*``, another source's webhook signing key, and
any installed backend's prefix. Now the loader refuses undeclared secrets (naming each place) and
declared signing keys; the runner refuses the same at run time (a version edited outside the
loader, an old version); the resolver answers only from ``AUTOMATE_SECRETS_BACKENDS``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from automate_core import definitions
from automate_core.definitions import DefinitionError
from automate_core.exceptions import SecretAccessDeniedError, TemplateError
from automate_core.ingest.ingestor import emit
from automate_core.models import ExecutionRun, OutboxJob, Workflow
from automate_core.rules import versions
from automate_governance.secrets import scope
from automate_governance.secrets.resolver import SecretsResolver
from tests.workflows.conftest import aload, drain, workflow

SOURCE = {"slug": "shop", "scheme": "hmac_sha256", "secret_ref": "env:TEST_HOOK"}


@pytest.fixture(autouse=True)
def _fresh_signing_keys() -> Iterator[None]:
    scope._signing_cache = None  # a process re-reads the sources' references every few seconds
    yield
    scope._signing_cache = None


@pytest.fixture
def api_token() -> Iterator[str]:
    os.environ["AUTOMATE_SECRET_SCOPE_API"] = "scope-api-value-91c3"
    yield "scope-api-value-91c3"
    del os.environ["AUTOMATE_SECRET_SCOPE_API"]


def echo(name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "connector": "probe", "action": "echo", "params": params}


@pytest.mark.django_db
def test_an_undeclared_secret_is_refused_at_load_naming_every_place() -> None:
    item = workflow(
        "wf",
        echo("first", {"headers": {"Authorization": 'Bearer {{ secret("SCOPE_API") }}'}}),
        echo("second", {"list": ["ok", '{{ secret("OTHER") }}']}),
        secrets=["SCOPE_API"],
    )
    with pytest.raises(DefinitionError) as caught:
        definitions.load({"workflows": [item]})
    message = str(caught.value)
    assert "workflows[0].steps[1].params.list[1]: secret('OTHER') is not declared" in message
    assert "SCOPE_API" not in message.replace("secrets", "")  # the declared one is fine
    assert not Workflow.objects.exists()  # nothing was written


@pytest.mark.django_db
def test_a_workflow_without_a_secrets_list_may_read_none() -> None:
    with pytest.raises(
        DefinitionError, match=r"steps\[0\]\.params\.t: secret\('SCOPE_API'\) is not declared"
    ):
        definitions.load({"workflows": [workflow("wf", echo("s", {"t": '{{ secret("SCOPE_API") }}'}))]})


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["TEST_HOOK", "env:TEST_HOOK"])
def test_a_source_signing_secret_cannot_be_declared(name: str) -> None:
    item = workflow("wf", echo("s", {"t": f'{{{{ secret("{name}") }}}}'}), secrets=[name])
    with pytest.raises(DefinitionError, match="signing secret; templates cannot read it"):
        definitions.load({"sources": [SOURCE], "workflows": [item]})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("SCOPE_API", "a list of secret names"),
        ([1], "a list of secret names"),
        (["has space"], "not a secret name"),
    ],
)
def test_a_bad_secrets_list_is_refused(value: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        definitions.load({"workflows": [workflow("wf", echo("s", {}), secrets=value)]})


@pytest.mark.django_db
def test_the_declaration_is_kept_in_every_version_and_exported() -> None:
    item = workflow("wf", echo("s", {"t": '{{ secret("SCOPE_API") }}'}), secrets=["SCOPE_API"])
    assert definitions.load({"workflows": [item]})["versions"] == 1
    assert definitions.load({"workflows": [item]})["versions"] == 0  # same file: no new version
    wf = Workflow.objects.get()
    assert wf.current_version is not None
    assert wf.current_version.definition["secrets"] == ["SCOPE_API"]
    wf.description = "edited elsewhere"  # e.g. in the admin: rows change, the declaration stays
    wf.save()
    assert versions.snapshot(wf).definition["secrets"] == ["SCOPE_API"]
    assert "secrets:\n  - SCOPE_API" in versions.to_yaml([versions.get_version(wf).definition])


@pytest.mark.usefixtures("live_db")
async def test_at_run_time_only_declared_names_resolve(api_token: str) -> None:
    assert await scope.resolve_for_template({"SCOPE_API"}, ["SCOPE_API"]) == {"SCOPE_API": api_token}
    with pytest.raises(TemplateError, match="reads secret 'SCOPE_API', which it does not declare"):
        await scope.resolve_for_template({"SCOPE_API"}, [], workflow="wf")


@pytest.mark.usefixtures("live_db")
@pytest.mark.parametrize("name", ["TEST_HOOK", "env:TEST_HOOK"])
async def test_a_signing_secret_is_refused_at_run_time_even_for_an_old_version(name: str) -> None:
    await aload(sources=[SOURCE])
    with pytest.raises(TemplateError, match="signing secret"):
        await scope.resolve_for_template({name}, None)  # None: a version from before declarations


@pytest.mark.usefixtures("live_db")
async def test_a_run_that_reads_an_undeclared_secret_fails_without_retrying(api_token: str) -> None:
    """A version whose declaration does not cover its templates (written outside the loader)."""
    await aload(workflow("wf", echo("s", {"t": '{{ secret("SCOPE_API") }}'}), secrets=["SCOPE_API"]))

    def narrow() -> None:
        version = Workflow.objects.get().current_version
        assert version is not None
        version.definition = {**version.definition, "secrets": ["SOMETHING_ELSE"]}
        version.save()

    await sync_to_async(narrow)()
    await sync_to_async(emit)("shop", "order.created", {"id": 1})
    await drain(lambda: OutboxJob.objects.filter(status__in=["dead", "completed"]).exists())
    run = await ExecutionRun.objects.aget()
    assert run.status == "failed" and "does not declare" in run.error
    assert await OutboxJob.objects.filter(status="dead", attempts=1).aexists()  # not retried
    assert api_token not in run.error


async def test_only_configured_backends_answer(settings: Any, api_token: str) -> None:
    resolver = SecretsResolver(order=["env"], ttl=0)
    assert await resolver.aresolve("env:SCOPE_API") == api_token
    with pytest.raises(SecretAccessDeniedError, match="'db', which is not in AUTOMATE_SECRETS_BACKENDS"):
        await resolver.aresolve("db:SCOPE_API")
    with pytest.raises(SecretAccessDeniedError, match="not in AUTOMATE_SECRETS_BACKENDS"):
        await SecretsResolver(order=["db"], ttl=0).aresolve("env:SCOPE_API")
