"""Debounce and batch settings are checked on load, each error naming its place; they are kept in
the version, exported, and in the file format's schema."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from automate_core import definitions, file_schema
from automate_core.models import Workflow
from automate_core.rules import versions
from automate_core.rules.engine import spec_from_definition

pytestmark = pytest.mark.django_db

LOG = {"name": "one", "connector": "log", "action": "info", "params": {"message": "hi"}}


def wf(**extra: Any) -> dict[str, Any]:
    return {"name": "w", "trigger": {"source": "shop"}, "steps": [LOG], **extra}


def error(**extra: Any) -> str:
    with pytest.raises(definitions.DefinitionError) as caught:
        definitions.load({"workflows": [wf(**extra)]})
    [message] = caught.value.errors
    return message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"debounce": {"key": "x"}}, "workflows[0].debounce: missing ['period']"),
        ({"debounce": {"period": "soon"}}, "workflows[0].debounce.period: expected a duration"),
        ({"debounce": {"period": 0}}, "workflows[0].debounce.period: the duration must be at least 0.1s"),
        (
            {"debounce": {"period": "1m", "max_wait": "30s"}},
            "workflows[0].debounce.max_wait: must be at least",
        ),
        ({"debounce": {"period": "1m", "key": "{{ oops"}}, "workflows[0].debounce.key: "),
        ({"debounce": {"period": "1m", "key": '{{ secret("X") }}'}}, "workflows[0].debounce.key: "),
        ({"debounce": {"period": "1m", "colour": 1}}, "workflows[0].debounce: unknown keys ['colour']"),
        ({"debounce": "30s"}, "workflows[0].debounce: expected a mapping"),
        ({"batch": {"max_size": 10}}, "workflows[0].batch: missing ['timeout']"),
        (
            {"batch": {"max_size": 0, "timeout": "1s"}},
            "workflows[0].batch.max_size: expected an integer of at least 1",
        ),
        ({"batch": {"max_size": 5000, "timeout": "1s"}}, "workflows[0].batch.max_size: at most 1000"),
        (
            {"batch": {"max_size": 5, "timeout": "1s", "key": 7}},
            "workflows[0].batch.key: expected a template",
        ),
        (
            {"batch": {"max_size": 5, "timeout": "1s"}, "debounce": {"period": "1s"}},
            "workflows[0]: debounce and batch do not combine",
        ),
    ],
)
def test_each_error_names_its_place(extra: dict[str, Any], expected: str) -> None:
    assert error(**extra).startswith(expected)
    assert not Workflow.objects.exists()


def test_a_batch_workflow_cannot_park() -> None:
    with pytest.raises(definitions.DefinitionError) as caught:
        definitions.load(
            {
                "workflows": [
                    {
                        **wf(batch={"max_size": 5, "timeout": "10s"}),
                        "steps": [LOG, {"name": "nap", "sleep": {"for": "1h"}}],
                    }
                ]
            }
        )
    assert str(caught.value).startswith("workflows[0].steps[1] (nap): a batch workflow's steps cannot sleep")


def test_the_settings_are_kept_in_the_version_and_exported() -> None:
    debounce = {"period": "30s", "key": "{{ event.payload.user }}", "max_wait": "5m"}
    definitions.load({"workflows": [wf(debounce=debounce)]})
    workflow = Workflow.objects.get()
    definition = workflow.current_version.definition  # type: ignore[union-attr]
    assert definition["debounce"] == {"period": 30.0, "max_wait": 300.0, "key": "{{ event.payload.user }}"}
    spec = spec_from_definition(workflow.pk, "w", None, 1, definition)
    assert spec.debounce == definition["debounce"] and spec.batch is None
    # a save that does not carry them (the admin's form) keeps them, like the secrets
    fresh = Workflow.objects.get()
    assert versions.definition_of(fresh)["debounce"] == definition["debounce"]
    exported = yaml.safe_load(versions.to_yaml([definition]))["workflows"][0]
    definitions.load({"workflows": [exported]})  # loads back as is: no new version
    assert Workflow.objects.get().current_version.number == 1  # type: ignore[union-attr]
    definitions.load({"workflows": [wf(batch={"max_size": 100, "timeout": "10s"})]})
    definition = Workflow.objects.get().current_version.definition  # type: ignore[union-attr]
    assert "debounce" not in definition and definition["batch"] == {
        "max_size": 100,
        "timeout": 10.0,
        "key": "",
    }


def test_a_plain_workflow_definition_is_unchanged() -> None:
    definitions.load({"workflows": [wf()]})
    definition = Workflow.objects.get().current_version.definition  # type: ignore[union-attr]
    assert "debounce" not in definition and "batch" not in definition


def test_the_schema_knows_both_keys() -> None:
    validator = jsonschema.Draft202012Validator(file_schema.schema())
    good = {
        "workflows": [
            wf(debounce={"period": "30s", "max_wait": 300, "key": "{{ event.payload.u }}"}),
            {**wf(batch={"max_size": 100, "timeout": "10s"}), "name": "b"},
        ]
    }
    assert not list(validator.iter_errors(good))
    bad = {"workflows": [wf(batch={"timeout": "10s", "size": 3})]}
    assert list(validator.iter_errors(bad))
