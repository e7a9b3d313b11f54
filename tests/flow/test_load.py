"""The file format of the constructs: every new key validated at load with the place named, the
limits enforced, call cycles refused, and an export that loads back to the same version."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from asgiref.sync import sync_to_async

from automate_core import definitions
from automate_core.models import Workflow, WorkflowVersion
from automate_core.rules import versions
from tests.flow.conftest import step
from tests.workflows.conftest import aload, workflow

pytestmark = pytest.mark.usefixtures("live_db")

A = step("a")
INNER = {"connector": "probe", "action": "echo"}


def deep_switch(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = step("leaf")
    for i in range(levels):
        node = {"name": f"s{i}", "switch": {"on": "x", "cases": {"x": [node]}}}
    return node


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown sleep key",
        {"name": "n", "sleep": {"for": "1h", "forever": True}},
        "steps[0].sleep: unknown keys",
    ),
    ("sleep for and until", {"name": "n", "sleep": {"for": "1h", "until": "x"}}, "exactly one of 'for'"),
    ("bad duration", {"name": "n", "sleep": {"for": "3 days"}}, "steps[0].sleep.for: expected a duration"),
    ("negative duration", {"name": "n", "sleep": {"for": -5}}, "at least 0s"),
    (
        "glob source",
        {
            "name": "n",
            "wait_for_event": {"source": "shop*", "event_type": "x", "match": "event.payload.a == 1"},
        },
        "wait_for_event.source: an exact source",
    ),
    (
        "bad match",
        {"name": "n", "wait_for_event": {"source": "s", "event_type": "x", "match": "payload.a = 1"}},
        "expected 'event.payload.<path> == <expression>'",
    ),
    (
        "bad match path",
        {
            "name": "n",
            "wait_for_event": {
                "source": "s",
                "event_type": "x",
                "match": {"path": "headers.a", "equals": "1"},
            },
        },
        "match.path: a dotted path under payload",
    ),
    (
        "bad on_timeout",
        {
            "name": "n",
            "wait_for_event": {
                "source": "s",
                "event_type": "x",
                "match": "event.payload.a == 1",
                "on_timeout": "explode",
            },
        },
        "continue or fail",
    ),
    (
        "approval on_timeout",
        {"name": "n", "approval": {"prompt": "ok?", "on_timeout": "maybe"}},
        "one of reject, approve, fail",
    ),
    ("approval without prompt", {"name": "n", "approval": {"timeout": "1h"}}, "missing ['prompt']"),
    (
        "wait in for_each",
        {"name": "n", "for_each": "{{ [1] }}", "step": {"sleep": {"for": 1}}},
        "cannot stand inside for_each or parallel",
    ),
    (
        "approval in parallel",
        {"name": "n", "parallel": [{"approval": {"prompt": "?"}}]},
        "cannot stand inside for_each or parallel",
    ),
    ("for_each without step", {"name": "n", "for_each": "{{ [1] }}"}, "needs the step to run per item"),
    (
        "for_each concurrency",
        {"name": "n", "for_each": "{{ [1] }}", "concurrency": 0, "step": INNER},
        "concurrency: expected an integer of at least 1",
    ),
    (
        "bad inner action",
        {"name": "n", "for_each": "{{ [1] }}", "step": {"connector": "probe", "action": "nope"}},
        "steps[0].step.action: connector 'probe' has no action 'nope'",
    ),
    ("empty parallel", {"name": "n", "parallel": []}, "a list of at least one step"),
    ("too many branches", {"name": "n", "parallel": [INNER] * 21}, "AUTOMATE_FLOW_MAX_BRANCHES"),
    (
        "two things",
        {"name": "n", "connector": "probe", "action": "echo", "sleep": {"for": 1}},
        "a step is one thing",
    ),
    ("nothing", {"name": "n", "params": {}}, "a step needs a connector"),
    (
        "empty case",
        {"name": "n", "switch": {"on": "x", "cases": {"x": []}}},
        "cases.x: a list of at least one step",
    ),
    ("no cases", {"name": "n", "switch": {"on": "x", "cases": {}}}, "switch.cases: a mapping"),
    ("too deep", deep_switch(5), "AUTOMATE_FLOW_MAX_DEPTH"),
    (
        "secret in a wait",
        {
            "name": "n",
            "wait_for_event": {"source": "s", "event_type": "x", "match": "event.payload.a == secret('K')"},
        },
        "cannot read secrets",
    ),
    ("secret in a prompt", {"name": "n", "approval": {"prompt": "{{ secret('K') }}"}}, "cannot read secrets"),
    ("broken template", {"name": "n", "switch": {"on": "{{ x", "cases": {"x": [A]}}}, "switch.on"),
    ("bad name", {"name": "1st", "sleep": {"for": 1}}, "steps[0].name: '1st'"),
]


@pytest.mark.parametrize(("case", "bad_step", "message"), BAD, ids=[c for c, _s, _m in BAD])
async def test_a_bad_construct_is_refused_with_its_place(
    case: str, bad_step: dict[str, Any], message: str
) -> None:
    with pytest.raises(definitions.DefinitionError) as caught:
        await aload(workflow("w", bad_step))
    assert message in str(caught.value)
    assert str(caught.value).startswith("workflows[0].steps[0]")
    assert not await Workflow.objects.aexists()  # nothing half written


async def test_a_name_used_twice_anywhere_is_refused() -> None:
    twice = {"name": "route", "switch": {"on": "x", "cases": {"x": [step("a")]}}}
    with pytest.raises(definitions.DefinitionError, match="the step name 'a' is used twice"):
        await aload(workflow("w", step("a"), twice))


async def test_call_cycles_missing_targets_and_long_chains_are_refused() -> None:
    def caller(name: str, target: str) -> dict[str, Any]:
        return workflow(name, {"name": "c", "call": {"workflow": target}})

    with pytest.raises(definitions.DefinitionError, match="calls form a cycle: a -> b -> a"):
        await aload(caller("a", "b"), caller("b", "a"))
    with pytest.raises(definitions.DefinitionError, match="calls form a cycle: me -> me"):
        await aload(caller("me", "me"))
    with pytest.raises(definitions.DefinitionError, match="calls workflow 'ghost', which does not exist"):
        await aload(caller("a", "ghost"))
    await aload(workflow("leaf", step("x")), caller("mid", "leaf"))
    with pytest.raises(definitions.DefinitionError, match="calls form a cycle: top -> mid -> leaf -> top"):
        await aload(caller("top", "mid"), caller("leaf", "top"))  # a cycle through a stored workflow
    chain = [caller(f"w{i}", f"w{i + 1}") for i in range(10)] + [workflow("w10", step("x"))]
    with pytest.raises(definitions.DefinitionError, match="AUTOMATE_FLOW_MAX_CALL_DEPTH"):
        await aload(*chain)


EVERY_CONSTRUCT = workflow(
    "all",
    {"name": "nap", "sleep": {"for": "1h30m"}},
    {
        "name": "shipped",
        "wait_for_event": {
            "source": "shop",
            "event_type": "shipment.created",
            "match": "event.payload.order == run.event.payload.order",
            "timeout": "2h",
            "lookback": "10m",
            "on_timeout": "fail",
        },
    },
    {
        "name": "approve",
        "approval": {
            "prompt": "ok?",
            "timeout": "1d",
            "on_timeout": "approve",
            "notify": {"connector": "probe", "action": "echo", "params": {"u": "{{ approval.url }}"}},
        },
    },
    {
        "name": "reserve",
        "for_each": "{{ event.payload['items'] }}",
        "concurrency": 5,
        "step": {"connector": "probe", "action": "echo", "params": {"sku": "{{ item.sku }}"}},
    },
    {"name": "notify", "parallel": [INNER, {**INNER, "continue_on_error": True}]},
    {
        "name": "route",
        "switch": {
            "on": "{{ event.payload.p }}",
            "cases": {"a": [step("in_a")]},
            "default": [step("in_default")],
        },
    },
    {
        "name": "customer",
        "call": {"workflow": "leaf", "input": {"x": "{{ event.id }}"}, "timeout": "1h"},
        "condition": "event.payload.p == 'a'",
        "continue_on_error": True,
    },
)


async def test_an_export_loads_back_to_the_same_version() -> None:
    await aload(workflow("leaf", step("x")), EVERY_CONSTRUCT)
    version = await WorkflowVersion.objects.aget(workflow__name="all")
    text = versions.to_yaml([version.definition])
    counts = await sync_to_async(definitions.load)(yaml.safe_load(text))
    assert counts["versions"] == 0, text  # the same definition: no new version
    assert await WorkflowVersion.objects.filter(workflow__name="all").acount() == 1
