"""`automate load` reports every error of a file at once, checks step references, and --check
validates without writing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command

from automate_core import definitions
from automate_core.models import Schedule, WebhookSource, Workflow

pytestmark = pytest.mark.django_db(transaction=True)


def wf(name: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "trigger": {"source": "shop"}, "steps": list(steps)}


def log(name: str, message: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"name": name, "connector": "log", "action": "info", "params": {"message": message}, **extra}


def test_every_error_of_the_file_is_reported_and_nothing_is_written() -> None:
    data = {
        "sources": [{"slug": "ok", "scheme": "none"}, {"slug": "bad", "scheme": "nope"}],
        "workflows": [
            wf("a", log("one"), {"name": "two", "connector": "log", "action": "info", "colour": "red"}),
            wf("b", log("x", "{{ oops"), {"name": "y", "connector": "nope", "action": "z"}),
        ],
        "schedules": [{"name": "s", "cron": "every tuesday"}],
    }
    with pytest.raises(definitions.DefinitionError) as caught:
        definitions.load(data)
    places = [e.split(":", 1)[0] for e in caught.value.errors]
    assert places == [
        "sources[1]",
        "workflows[0].steps[1]",
        "workflows[1].steps[0].params.message",
        "workflows[1].steps[1].connector",
        "schedules[0].cron",
    ], caught.value.errors
    assert "(5 errors; nothing was loaded.)" in str(caught.value)
    assert (
        not WebhookSource.objects.exists() and not Workflow.objects.exists() and not Schedule.objects.exists()
    )


REFERENCES = [
    ("params", log("notify", "{{ steps.open_isue.output.url }}"), "steps.open_isue"),
    ("condition", log("notify", condition="steps.opn_issue.status == 'succeeded'"), "steps.opn_issue"),
    ("brackets", log("notify", "{{ steps['open_issues'].output }}"), "steps.open_issues"),
    ("in a construct", {"name": "r", "switch": {"on": "{{ steps.nope.output }}", "cases": {"a": [log("c")]}}},
     "steps.nope"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "step", "bad"), REFERENCES, ids=[c for c, _s, _b in REFERENCES])
def test_a_reference_to_a_missing_step_is_refused_with_a_suggestion(
    case: str, step: dict[str, Any], bad: str
) -> None:
    with pytest.raises(definitions.DefinitionError) as caught:
        definitions.load({"workflows": [wf("w", log("open_issue"), step)]})
    message = str(caught.value)
    assert message.startswith("workflows[0].steps[1]") and f"refers to {bad}," in message
    if "open" in bad or "opn" in bad:
        assert "did you mean steps.open_issue?" in message


def test_references_to_real_steps_and_loop_variables_load() -> None:
    ok = wf("w", log("first"), log("second", "{{ steps.first.output.logged }} {{ steps['first'].status }}"))
    assert definitions.load({"workflows": [ok]})["workflows"] == 1


def test_load_check_validates_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump({"workflows": [wf("w", log("first"))]}))
    out = io.StringIO()
    call_command("automate", "load", "--check", str(path), stdout=out)
    assert "valid (1 workflows" in out.getvalue() and "nothing written" in out.getvalue()
    assert not Workflow.objects.exists()
    path.write_text(yaml.safe_dump({"workflows": [wf("w", log("first", "{{ steps.ghost.output }}"))]}))
    with pytest.raises(CommandError, match=r"refers to steps\.ghost"):
        call_command("automate", "load", "--check", str(path), stdout=io.StringIO())
