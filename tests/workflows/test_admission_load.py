"""The admission keys on load: each bad key is refused with an error that names its place; good
ones are normalised, carried into the version, exported, and described by ``automate schema``."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from automate_core import definitions, file_schema
from automate_core.models import Workflow, WorkflowVersion
from automate_core.rules import versions
from automate_core.rules.admission import Admission, RateLimit, Singleton, Throttle, admission_of

pytestmark = pytest.mark.django_db

LOG = {"name": "say", "connector": "log", "action": "info", "params": {"message": "hi"}}


def item(**keys: Any) -> dict[str, Any]:
    return {"name": "wf", "trigger": {"source": "shop"}, "steps": [LOG], **keys}


BAD: list[tuple[dict[str, Any], str]] = [
    (
        {"throttle": {"limit": 0, "period": "1m"}},
        "workflows[0].throttle.limit: expected an integer of at least 1",
    ),
    ({"throttle": {"limit": 10}}, "workflows[0].throttle: missing ['period']"),
    ({"throttle": {"limit": 10, "period": "soon"}}, "workflows[0].throttle.period: expected a duration"),
    ({"throttle": {"limit": 10, "period": 0}}, "workflows[0].throttle.period: the duration must be at least"),
    ({"throttle": {"limit": 10, "period": "1m", "burst": 0}}, "workflows[0].throttle.burst:"),
    (
        {"throttle": {"limit": 10, "period": "1m", "colour": 1}},
        "workflows[0].throttle: unknown keys ['colour']",
    ),
    ({"throttle": {"limit": 1, "period": "1m", "key": "{{ oops"}}, "workflows[0].throttle.key:"),
    ({"throttle": "10/m"}, "workflows[0].throttle: expected a mapping, got str"),
    ({"rate_limit": {"limit": 1.5, "period": "1h"}}, "workflows[0].rate_limit.limit: expected an integer"),
    (
        {"rate_limit": {"limit": 1, "period": "1h", "key": 3}},
        "workflows[0].rate_limit.key: a key is a template",
    ),
    ({"rate_limit": {"limit": 1, "period": "1h", "key": "{{ secret('API') }}"}}, "cannot read secrets"),
    (
        {"singleton": {"mode": "later"}},
        "workflows[0].singleton.mode: 'later' is not a mode; use one of: queue",
    ),
    ({"singleton": {"key": "{{ x", "mode": "skip"}}, "workflows[0].singleton.key:"),
    ({"queue": "bill ing"}, "workflows[0].queue: 'bill ing' is not a queue name"),
    ({"queue": 7}, "workflows[0].queue: 7 is not a queue name"),
    ({"priority": 101}, "workflows[0].priority: expected an integer from -100 to 100, got 101"),
    ({"priority": True}, "workflows[0].priority: expected an integer"),
    ({"fairness": {}}, "workflows[0].fairness: missing ['key']"),
    ({"fairness": {"key": " "}}, "workflows[0].fairness.key: a fairness key cannot be empty"),
    (
        {"debounce": {"period": "30s"}, "throttle": {"limit": 1, "period": "1m"}},
        "workflows[0]: debounce cannot be combined with throttle yet",
    ),
]


@pytest.mark.parametrize(
    ("keys", "message"), BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)]
)
def test_a_bad_admission_key_is_refused_with_its_place(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(definitions.DefinitionError) as caught:
        definitions.load({"workflows": [item(**keys)]})
    assert message in str(caught.value), str(caught.value)
    assert not Workflow.objects.exists()


def test_the_keys_are_normalised_into_the_version_and_its_spec() -> None:
    definitions.load(
        {
            "workflows": [
                item(
                    throttle={"limit": 10, "period": "1m", "key": "{{ event.payload.customer }}"},
                    rate_limit={"limit": 100, "period": "1h30m"},
                    singleton={"key": "{{ event.payload.customer }}", "mode": "cancel"},
                    queue="billing",
                    priority=-5,
                    fairness={"key": "{{ event.payload.tenant }}"},
                )
            ]
        }
    )
    definition = WorkflowVersion.objects.get().definition
    assert definition["throttle"] == {
        "limit": 10,
        "period": 60.0,
        "key": "{{ event.payload.customer }}",
        "burst": 1,
    }
    assert definition["rate_limit"] == {"limit": 100, "period": 5400.0, "key": ""}
    assert admission_of(definition) == Admission(
        throttle=Throttle(10, 60.0, "{{ event.payload.customer }}", 1),
        rate_limit=RateLimit(100, 5400.0, ""),
        singleton=Singleton("{{ event.payload.customer }}", "cancel"),
        queue="billing",
        priority=-5,
        fair_key="{{ event.payload.tenant }}",
    )
    # the export loads back to the same definition, and loading it again publishes nothing new
    exported = versions.exported(definition)
    assert exported["queue"] == "billing" and exported["priority"] == -5
    counts = definitions.load({"workflows": [exported]})
    assert counts["versions"] == 0
    # removing a key publishes a version without it
    definitions.load({"workflows": [item(queue="billing")]})
    latest = WorkflowVersion.objects.order_by("-number").first()
    assert latest is not None and set(latest.definition) & {"throttle", "rate_limit", "singleton"} == set()


def test_a_plain_workflow_has_no_admission() -> None:
    definitions.load({"workflows": [item()]})
    definition = WorkflowVersion.objects.get().definition
    assert admission_of(definition) is None
    assert not set(definition) & {"throttle", "rate_limit", "singleton", "queue", "priority", "fairness"}


def test_automate_schema_describes_the_keys() -> None:
    schema = file_schema.schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = {"workflows": [item(throttle={"limit": 5, "period": "10s", "burst": 2}, singleton={"mode": "skip"},
                               queue="billing", priority=3, fairness={"key": "{{ event.payload.t }}"},
                               rate_limit={"limit": 1, "period": 60})]}  # fmt: skip
    assert list(validator.iter_errors(good)) == []
    for keys, _ in BAD[:2] + BAD[11:12] + BAD[15:16]:
        assert list(validator.iter_errors({"workflows": [item(**keys)]})), keys
