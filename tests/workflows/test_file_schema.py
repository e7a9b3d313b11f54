"""The published JSON Schema of the file format: it matches what the loader accepts."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from django.core.management import call_command

from automate_core import file_schema
from automate_core.execution import constructs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def validator() -> jsonschema.Draft202012Validator:
    schema = file_schema.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def yaml12(value: Any) -> Any:
    """PyYAML reads YAML 1.1, where ``on:`` is a boolean key; editors read YAML 1.2, where it is
    the string (the loader accepts both)."""
    if isinstance(value, dict):
        return {("on" if k is True else k): yaml12(v) for k, v in value.items()}
    if isinstance(value, list):
        return [yaml12(v) for v in value]
    return value


def documented_files() -> list[dict[str, Any]]:
    """Every YAML block of the workflow docs that is a whole file (sources/workflows/schedules)."""
    files = []
    for block in re.findall(r"```yaml\n(.*?)```", (DOCS / "workflows.md").read_text(), re.S):
        data = yaml12(yaml.safe_load(block))
        if isinstance(data, dict) and set(data) <= {"sources", "workflows", "schedules"} and data:
            files.append(data)
    return files


def test_every_key_the_loader_accepts_is_in_the_schema() -> None:
    for name, keys in file_schema.KEY_SETS.items():
        assert set(file_schema.TYPES[name]) == set(keys), name
    defs = file_schema.schema()["$defs"]
    steps = {next(iter(set(alt["required"]) - {"name"})) for alt in defs["step"]["oneOf"][1:]}
    assert steps == set(constructs.CONSTRUCTS)


@pytest.mark.parametrize("data", documented_files())
def test_the_documented_files_validate(data: dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(data), key=str)
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize(
    "bad",
    [
        {
            "workflows": [
                {"name": "w", "steps": [{"name": "s", "connector": "log", "action": "info", "colour": 1}]}
            ]
        },
        {"workflows": [{"name": "w", "steps": [{"name": "n", "sleep": {"for": "1h", "forever": True}}]}]},
        {"workflows": [{"name": "w", "steps": [{"name": "n", "approval": {"timeout": "1h"}}]}]},
        {"workflows": [{"name": "w", "steps": []}]},
        {
            "workflows": [
                {"name": "w", "steps": [{"name": "r", "for_each": "x", "step": {"sleep": {"for": 1}}}]}
            ]
        },
        {"sources": [{"slug": "s", "scheme": "nope"}]},
        {"schedule": []},
    ],
)
def test_what_the_loader_refuses_the_schema_refuses(bad: dict[str, Any]) -> None:
    assert list(validator().iter_errors(bad))


def test_automate_schema_prints_it() -> None:
    out = io.StringIO()
    call_command("automate", "schema", stdout=out)
    assert json.loads(out.getvalue())["$id"] == file_schema.SCHEMA_ID
